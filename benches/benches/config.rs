//! What B's configuration thread pays per item of `hrp sync config`: each
//! item's wire text parsed (`ConfigItem::parse_placed`) and applied with the
//! batch rules (`ConfigStore::apply_batch_item_placed`), for the 100k-rule
//! policy `hotsync-bench mixed` syncs.
//!
//! - `apply_100k/added`: into an empty store (a standby's first sync).
//! - `apply_100k/equal`: into a store that already holds every item (each
//!   later sync: the common case, and `mixed`'s steady state).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hotsync_bench::config_text;
use hotsync_config::{ConfigItem, ConfigStore};
use std::hint::black_box;
use std::time::Duration;

const RULES: usize = 100_000;

fn apply_all(store: &mut ConfigStore, items: &[(String, String)]) -> usize {
    let mut added = 0;
    for (vsys, text) in items {
        let (item, placement) = ConfigItem::parse_placed(text).expect("rendered item parses");
        let outcome = store.apply_batch_item_placed(vsys, item, placement.as_ref(), false, 0);
        added += usize::from(outcome == hotsync_config::BatchOutcome::Added);
    }
    added
}

fn apply(c: &mut Criterion) {
    let source = ConfigStore::parse(&config_text(RULES)).expect("generated config parses");
    let items = source.syncable_rendered(false);
    let empty = ConfigStore::parse("").expect("empty config parses");
    let mut g = c.benchmark_group("apply_100k");
    g.throughput(Throughput::Elements(items.len() as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    g.bench_function("added", |b| {
        b.iter_batched(
            || empty.clone(),
            |mut store| black_box(apply_all(&mut store, &items)),
            BatchSize::PerIteration,
        )
    });
    let mut full = source.clone();
    g.bench_function("equal", |b| {
        b.iter(|| black_box(apply_all(&mut full, &items)))
    });
    g.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
