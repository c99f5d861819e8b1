//! Interleaved A/B runs of the update and insert paths (min of several
//! rounds), to separate the costs of change capture on a noisy machine.
//!
//! `cargo run --release -p hotsync-bench --example capture-ab -- 7`: the
//! interleaved table. `ISO=lo|lo_digest|lo_one_digest_in_lock|
//! lo_digest_in_lock|ov|map` runs one update variant alone;
//! `ISO_INSERT=lo|lo_digest_before_lock|capture` one insert variant alone.
//! `*_in_lock` variants emulate the digest work of change capture inside the
//! shard lock (in the update closure) on local-only entries.

use hotsync_bench::{bare_map, bump, drain_all, sessions};
use hotsync_table::{SessionTable, ShardSet, TableConfig, entry_digest, flags};
use std::hint::black_box;
use std::time::Instant;

const N: usize = 1_000_000;
const DRAIN_EVERY: usize = 8192;

fn table(journal: usize) -> SessionTable {
    let mut c = TableConfig::with_capacity(N);
    c.journal_capacity = journal;
    SessionTable::new(c)
}

fn main() {
    let rounds: usize = std::env::args().nth(1).map_or(5, |a| a.parse().unwrap());
    let s = sessions(N, 2);
    let lo: Vec<_> = s
        .iter()
        .map(|(k, e)| {
            let mut e = *e;
            e.flags &= !flags::BACKUP;
            (*k, e)
        })
        .collect();
    let map = bare_map(N);
    for (k, e) in &s {
        map.insert(*k, *e);
    }
    let t_lo = table(16 * 1024);
    let t16 = table(16 * 1024);
    let t1 = table(1024);
    let tov = table(16 * 1024);
    let mut out = Vec::new();
    for (t, src) in [(&t_lo, &lo), (&t16, &s), (&t1, &s), (&tov, &s)] {
        for (k, e) in src.iter() {
            t.upsert(k, e).unwrap();
        }
        drain_all(t, &mut out);
        let mut set = ShardSet::new(t.shard_count());
        t.take_overflowed(&mut set);
    }
    let mut best = [f64::MAX; 7];
    let names = [
        "dashmap get_mut",
        "table update local-only (no capture)",
        "table update capture, journal 16Ki, drain untimed",
        "table update capture, journal 1Ki, drain untimed",
        "table update capture, overflowed (digest only, no journal writes)",
        "entry_digest alone (x2 per update)",
        "drain_all per change (journal 16Ki)",
    ];
    if let Ok(mode) = std::env::var("ISO_INSERT") {
        // Insert paths: every round empties the table (untimed) first.
        let (tb, src) = if mode == "capture" {
            (&t16, &s)
        } else {
            (&t_lo, &lo)
        };
        for _ in 0..rounds {
            for (k, _) in src.iter().rev() {
                black_box(tb.remove(k));
            }
            drain_all(tb, &mut out);
            let mut timed = 0u128;
            for chunk in src.chunks(DRAIN_EVERY) {
                let t = Instant::now();
                for (k, e) in chunk {
                    if mode == "lo_digest_before_lock" {
                        black_box(entry_digest(k, e));
                    }
                    black_box(tb.upsert(k, e).unwrap());
                }
                timed += t.elapsed().as_nanos();
                drain_all(tb, &mut out);
            }
            println!("insert {mode}: {:.1} ns/op", timed as f64 / N as f64);
        }
        return;
    }
    if let Ok(mode) = std::env::var("ISO") {
        for _ in 0..rounds {
            let t = Instant::now();
            match mode.as_str() {
                "lo" => s.iter().for_each(|(k, _)| {
                    black_box(t_lo.update(k, bump));
                }),
                "lo_digest" => s.iter().for_each(|(k, e)| {
                    black_box(t_lo.update(k, bump));
                    black_box(entry_digest(k, e).wrapping_add(entry_digest(k, e)));
                }),
                "lo_digest_in_lock" => s.iter().for_each(|(k, _)| {
                    black_box(t_lo.update(k, |e| {
                        let before = entry_digest(k, e);
                        bump(e);
                        black_box(before.wrapping_add(entry_digest(k, e)));
                    }));
                }),
                "lo_one_digest_in_lock" => s.iter().for_each(|(k, _)| {
                    black_box(t_lo.update(k, |e| {
                        bump(e);
                        black_box(entry_digest(k, e));
                    }));
                }),
                "ov" => s.iter().for_each(|(k, _)| {
                    black_box(tov.update(k, bump));
                }),
                "map" => s.iter().for_each(|(k, _)| {
                    if let Some(mut e) = map.get_mut(k) {
                        bump(&mut e)
                    }
                }),
                _ => panic!(),
            }
            println!(
                "{mode}: {:.1} ns/op",
                t.elapsed().as_nanos() as f64 / N as f64
            );
        }
        return;
    }
    for _ in 0..rounds {
        let t = Instant::now();
        for (k, _) in &s {
            if let Some(mut e) = map.get_mut(k) {
                bump(&mut e);
            }
        }
        best[0] = best[0].min(t.elapsed().as_nanos() as f64 / N as f64);

        let t = Instant::now();
        for (k, _) in &lo {
            black_box(t_lo.update(k, bump));
        }
        best[1] = best[1].min(t.elapsed().as_nanos() as f64 / N as f64);

        for (i, tb) in [(2, &t16), (3, &t1)] {
            let mut timed = 0u128;
            let mut drain_ns = 0u128;
            for chunk in s.chunks(DRAIN_EVERY) {
                let t = Instant::now();
                for (k, _) in chunk {
                    black_box(tb.update(k, bump));
                }
                timed += t.elapsed().as_nanos();
                let t = Instant::now();
                drain_all(tb, &mut out);
                drain_ns += t.elapsed().as_nanos();
            }
            best[i] = best[i].min(timed as f64 / N as f64);
            if i == 2 {
                best[6] = best[6].min(drain_ns as f64 / N as f64);
            }
        }

        if std::env::var("ONLY_OVERFLOW").is_ok() {
            for _ in 0..20 {
                for (k, _) in &s {
                    black_box(tov.update(k, bump));
                }
            }
            return;
        }
        // Overflow every journal first, so updates only digest.
        for (k, _) in &s {
            black_box(tov.update(k, bump));
        }
        let t = Instant::now();
        for (k, _) in &s {
            black_box(tov.update(k, bump));
        }
        best[4] = best[4].min(t.elapsed().as_nanos() as f64 / N as f64);
        drain_all(&tov, &mut out);
        let mut set = ShardSet::new(tov.shard_count());
        tov.take_overflowed(&mut set);

        let t = Instant::now();
        let mut acc = 0u64;
        for (k, e) in &s {
            acc = acc.wrapping_add(entry_digest(black_box(k), black_box(e)));
        }
        black_box(acc);
        best[5] = best[5].min(t.elapsed().as_nanos() as f64 / N as f64);
    }
    for (n, b) in names.iter().zip(best) {
        println!("{b:7.1} ns/op  {n}");
    }
}
