//! Session-table micro-benchmarks against a bare `DashMap` baseline.
//!
//! - `insert_1M`: 1M distinct sessions into a pre-sized, empty map.
//!   * `*_warm`: the map's memory was touched by an earlier fill and emptied
//!     (DashMap `clear`, table `remove` of every key), so the figure is the
//!     steady-state cost of a long-lived, pre-sized table.
//!   * `*_fresh`: a newly created map per iteration, so first-touch page
//!     faults are part of the figure (what a node pays while it fills up).
//!   * `table_*` with change capture on (backup-capable entries, journals,
//!     digests). `drain_excluded`: a drainer empties every journal after each
//!     8 Ki inserts, outside the timing; `drain_included`: the same drain is
//!     timed (one thread does both: the honest total CPU cost);
//!     `journal_overflow`: nobody drains, the 16 Ki-key journals overflow
//!     half-way and journaling stops (a lower bound of capture cost);
//!     `local_only`: entries without the backup flag, so no journal and no
//!     digest: the slab+index layout alone.
//! - `update_1M`: counters of every existing key updated in place, in
//!   generation order (random with respect to shards and buckets).
//! - `snapshot_1M`: a full snapshot walk of a 1M table in 4 Ki chunks, with
//!   two references: the table's visitor walk (no copy out) and copying
//!   every record out of the bare map.

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, black_box, criterion_group,
    criterion_main,
};
use hotsync_bench::{BareMap, bare_map, bump, drain_all, sessions};
use hotsync_table::{SessionEntry, SessionKey, SessionTable, ShardSet, TableConfig, Upsert, flags};
use std::time::{Duration, Instant};

const N: usize = 1_000_000;
/// Inserts between two drains of every journal.
const DRAIN_EVERY: usize = 8 * 1024;
/// Entries per snapshot chunk.
const CHUNK: usize = 4096;

type Sessions = [(SessionKey, SessionEntry)];

fn new_table() -> SessionTable {
    SessionTable::new(TableConfig::with_capacity(N))
}

/// Removes every session (last first, so the free lists hand slots back in
/// their original order) and empties the journals and overflow marks.
fn empty_table(table: &SessionTable, s: &Sessions) {
    for (k, _) in s.iter().rev() {
        black_box(table.remove(k));
    }
    reset_capture(table);
    debug_assert!(table.is_empty());
}

fn reset_capture(table: &SessionTable) {
    let mut out = Vec::with_capacity(DRAIN_EVERY * 2);
    drain_all(table, &mut out);
    let mut set = ShardSet::new(table.shard_count());
    table.take_overflowed(&mut set);
}

fn fill_table(table: &SessionTable, s: &Sessions) {
    for (k, e) in s {
        table.upsert(k, e).expect("pre-sized");
    }
    reset_capture(table);
}

#[derive(Clone, Copy)]
enum Drain {
    /// Drain after every chunk, outside the timing.
    Excluded,
    /// Drain after every chunk, inside the timing.
    Included,
    /// Never drain inside the loop (journals overflow).
    Never,
}

/// Upserts `s` in chunks of [`DRAIN_EVERY`] with the given drain policy;
/// returns the timed part.
fn upsert_all(table: &SessionTable, s: &Sessions, drain: Drain, expect: Upsert) -> Duration {
    let mut out = Vec::with_capacity(DRAIN_EVERY * 2);
    let mut timed = Duration::ZERO;
    for chunk in s.chunks(DRAIN_EVERY) {
        let t = Instant::now();
        for (k, e) in chunk {
            let r = table.upsert(k, e).expect("pre-sized");
            debug_assert_eq!(r, expect);
            black_box(r);
        }
        match drain {
            Drain::Included => {
                black_box(drain_all(table, &mut out));
                timed += t.elapsed();
            }
            Drain::Excluded => {
                timed += t.elapsed();
                black_box(drain_all(table, &mut out));
            }
            Drain::Never => timed += t.elapsed(),
        }
    }
    timed
}

/// Updates every key of `s` in place, same drain policies as [`upsert_all`].
fn update_all(table: &SessionTable, s: &Sessions, drain: Drain) -> Duration {
    let mut out = Vec::with_capacity(DRAIN_EVERY * 2);
    let mut timed = Duration::ZERO;
    for chunk in s.chunks(DRAIN_EVERY) {
        let t = Instant::now();
        for (k, _) in chunk {
            let found = table.update(k, bump);
            debug_assert!(found);
            black_box(found);
        }
        match drain {
            Drain::Included => {
                black_box(drain_all(table, &mut out));
                timed += t.elapsed();
            }
            Drain::Excluded => {
                timed += t.elapsed();
                black_box(drain_all(table, &mut out));
            }
            Drain::Never => timed += t.elapsed(),
        }
    }
    timed
}

fn map_insert_all(map: &BareMap, s: &Sessions) {
    for (k, e) in s {
        black_box(map.insert(*k, *e));
    }
}

fn local_only(s: &Sessions) -> Vec<(SessionKey, SessionEntry)> {
    s.iter()
        .map(|(k, e)| {
            let mut e = *e;
            e.flags &= !flags::BACKUP;
            (*k, e)
        })
        .collect()
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(N as u64));
    g
}

fn bench_insert(c: &mut Criterion) {
    let s = sessions(N, 1);
    let lo = local_only(&s);
    let mut g = configure(c, "insert_1M");

    // Bare map, warm: fill once to touch its memory, `clear` keeps it.
    {
        let map = bare_map(N);
        map_insert_all(&map, &s);
        g.bench_function("dashmap_warm", |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    map.clear();
                    let t = Instant::now();
                    map_insert_all(&map, &s);
                    timed += t.elapsed();
                }
                timed
            })
        });
    }

    // Table, warm: fill once, then each iteration starts from `remove` of
    // every key (untimed).
    {
        let table = new_table();
        fill_table(&table, &s);
        for (name, drain) in [
            ("table_warm_drain_excluded", Drain::Excluded),
            ("table_warm_drain_included", Drain::Included),
            ("table_warm_journal_overflow", Drain::Never),
        ] {
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        empty_table(&table, &s);
                        timed += upsert_all(&table, &s, drain, Upsert::Inserted);
                    }
                    timed
                })
            });
        }
        empty_table(&table, &s);
        g.bench_function("table_warm_local_only", |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    empty_table(&table, &lo);
                    timed += upsert_all(&table, &lo, Drain::Never, Upsert::Inserted);
                }
                timed
            })
        });
    }

    // Fresh maps: creation and drop untimed, first-touch faults timed.
    g.bench_function("dashmap_fresh", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let map = bare_map(N);
                let t = Instant::now();
                map_insert_all(&map, &s);
                timed += t.elapsed();
                drop(map);
            }
            timed
        })
    });
    g.bench_function("table_fresh_drain_included", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let table = new_table();
                timed += upsert_all(&table, &s, Drain::Included, Upsert::Inserted);
                drop(table);
            }
            timed
        })
    });
    g.finish();
}

fn bench_update(c: &mut Criterion) {
    let s = sessions(N, 2);
    let lo = local_only(&s);
    let mut g = configure(c, "update_1M");
    {
        let map = bare_map(N);
        map_insert_all(&map, &s);
        g.bench_function("dashmap_get_mut", |b| {
            b.iter(|| {
                for (k, _) in s.iter() {
                    if let Some(mut e) = map.get_mut(k) {
                        bump(&mut e);
                    }
                }
            })
        });
        g.bench_function("dashmap_insert_existing", |b| {
            b.iter(|| map_insert_all(&map, &s))
        });
    }
    {
        let table = new_table();
        fill_table(&table, &s);
        for (name, drain) in [
            ("table_update_drain_excluded", Drain::Excluded),
            ("table_update_drain_included", Drain::Included),
        ] {
            g.bench_function(name, |b| {
                b.iter_custom(|iters| (0..iters).map(|_| update_all(&table, &s, drain)).sum())
            });
        }
        g.bench_function("table_upsert_existing_drain_excluded", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| upsert_all(&table, &s, Drain::Excluded, Upsert::Updated))
                    .sum()
            })
        });
        empty_table(&table, &s);
        fill_table(&table, &lo);
        g.bench_function("table_update_local_only", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| update_all(&table, &lo, Drain::Never))
                    .sum()
            })
        });
    }
    g.finish();
}

fn bench_snapshot(c: &mut Criterion) {
    let s = sessions(N, 3);
    let mut g = configure(c, "snapshot_1M");
    let table = new_table();
    fill_table(&table, &s);
    let mut out = Vec::with_capacity(CHUNK);
    g.bench_function(BenchmarkId::new("table_snapshot_chunk", CHUNK), |b| {
        b.iter(|| {
            let mut cursor = table.snapshot();
            let mut walked = 0;
            while !cursor.is_done() {
                walked += table.snapshot_chunk(&mut cursor, CHUNK, &mut out);
                black_box(&out);
                out.clear();
            }
            assert_eq!(walked, N);
        })
    });
    // Reference: the same walk through the visitor API (no copy into `out`,
    // one lock per shard): what the walk costs without the per-entry copy.
    g.bench_function("table_for_each_in_shard_visit", |b| {
        b.iter(|| {
            let mut walked = 0usize;
            for shard in 0..table.shard_count() {
                table.for_each_in_shard(shard, |k, e| {
                    black_box((k, e));
                    walked += usize::from(e.is_backup());
                });
            }
            assert_eq!(walked, N);
        })
    });
    drop(table);

    // Reference: copying every record out of the bare map.
    let map = bare_map(N);
    map_insert_all(&map, &s);
    g.bench_function(BenchmarkId::new("dashmap_iter_copy", CHUNK), |b| {
        b.iter(|| {
            let mut walked = 0;
            for r in map.iter() {
                out.push((*r.key(), *r.value()));
                if out.len() == CHUNK {
                    walked += out.len();
                    black_box(&out);
                    out.clear();
                }
            }
            walked += out.len();
            out.clear();
            assert_eq!(walked, N);
        })
    });
    g.finish();
}

criterion_group!(benches, bench_insert, bench_update, bench_snapshot);
criterion_main!(benches);
