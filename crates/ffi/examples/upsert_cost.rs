//! Per-call cost of `SessionTable::upsert` from Rust: the same loop, table
//! sizing and keys as `examples/c/upsert_cost.c`, to compare the C ABI's
//! cost with the native call (`make -C examples/c bench` runs both).
//!
//! `cargo run --release -p hotsync-ffi --example upsert_cost [N]`
//!
//! Time is the thread's CPU time, as in the C program.
#![allow(unsafe_code)] // one clock_gettime call

use hotsync_table::{SessionEntry, SessionKey, SessionState, SessionTable, TableConfig, flags};
use std::hint::black_box;

/// This thread's CPU time in nanoseconds.
fn cpu_ns() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0);
    t.tv_sec as f64 * 1e9 + t.tv_nsec as f64
}

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
    let n: u32 = std::env::args()
        .nth(1)
        .map_or(N, |a| a.parse().expect("N: a number"));
    assert!(n > 0 && n <= N, "N in 1..={N}");
    let keys: Vec<SessionKey> = (0..n).map(key).collect();
    let mut e = SessionEntry {
        timeout: 600,
        state: SessionState::Established as u8,
        flags: flags::BACKUP,
        ..SessionEntry::default()
    };
    let (mut insert, mut best) = (0.0, f64::MAX);
    for r in 0..=ROUNDS {
        let t0 = cpu_ns();
        for (i, k) in keys.iter().enumerate() {
            e.packets[0] = u64::from(r) << 32 | i as u64;
            black_box(table.upsert(k, &e)).expect("table sized for N");
        }
        let per_call = (cpu_ns() - t0) / f64::from(n);
        if r == 0 {
            insert = per_call;
        } else {
            best = best.min(per_call);
        }
    }
    assert_eq!(table.len(), n as usize);
    println!(
        "Rust upsert: insert {insert:.1} ns/call, replace {best:.1} ns/call (best of {ROUNDS} rounds of {n})"
    );
}
