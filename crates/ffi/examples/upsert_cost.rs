//! Per-call cost of `SessionTable::upsert` from Rust: the same loop, table
//! sizing and keys as `examples/c/upsert_cost.c`, to compare the C ABI's
//! cost with the native call (`make -C examples/c bench` runs both).
//!
//! `cargo run --release -p hotsync-ffi --example upsert_cost`

use hotsync_table::{SessionEntry, SessionKey, SessionState, SessionTable, TableConfig, flags};
use std::hint::black_box;
use std::time::Instant;

const N: u32 = 1 << 20;
const ROUNDS: u32 = 7;

/// Must match `make_key` in upsert_cost.c.
fn key(i: u32) -> SessionKey {
    let mut k = SessionKey {
        family: 4,
        protocol: 6,
        src_port: (1024 + i % 50000) as u16,
        dst_port: 443,
        ..SessionKey::default()
    };
    k.src_addr[..4].copy_from_slice(&[10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
    k.dst_addr[..4].copy_from_slice(&[192, 0, 2, (1 + i % 200) as u8]);
    k
}

fn main() {
    let mut cfg = TableConfig::with_capacity(1 << 21);
    cfg.shards = 64;
    let table = SessionTable::new(cfg);
    table.prefault();
    let keys: Vec<SessionKey> = (0..N).map(key).collect();
    let mut e = SessionEntry {
        timeout: 600,
        state: SessionState::Established as u8,
        flags: flags::BACKUP,
        ..SessionEntry::default()
    };
    let (mut insert, mut best) = (0.0, f64::MAX);
    for r in 0..=ROUNDS {
        let t0 = Instant::now();
        for (i, k) in keys.iter().enumerate() {
            e.packets[0] = u64::from(r) << 32 | i as u64;
            black_box(table.upsert(k, &e)).expect("table sized for N");
        }
        let per_call = t0.elapsed().as_nanos() as f64 / f64::from(N);
        if r == 0 {
            insert = per_call;
        } else {
            best = best.min(per_call);
        }
    }
    assert_eq!(table.len(), N as usize);
    println!(
        "Rust upsert: insert {insert:.1} ns/call, replace {best:.1} ns/call (best of {ROUNDS} rounds of {N})"
    );
}
