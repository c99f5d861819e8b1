//! Scale check: 100,000 security rules parse, enumerate and apply (batch
//! sync into an empty peer and into an equal peer), and cross the wire item
//! by item (render + parse).

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hotsync_config::{ConfigItem, ConfigStore};

const RULES: usize = 100_000;

fn config_text(rules: usize) -> String {
    let mut s = String::from(
        "#\n sysname FW-A\n#\nip address-set web type object\n address 0 10.1.1.0 mask 24\n#\nsecurity-policy\n",
    );
    for i in 0..rules {
        let _ = write!(
            s,
            " rule name rule-{i}\n  source-zone trust\n  destination-zone untrust\n  \
             source-address 10.{}.{}.0 mask 255.255.255.0\n  destination-address address-set web\n  \
             service http\n  action permit\n",
            (i >> 8) & 255,
            i & 255
        );
    }
    s.push_str("#\nreturn\n");
    s
}

fn bench(c: &mut Criterion) {
    let text = config_text(RULES);
    let store = ConfigStore::parse(&text).expect("parses");
    let items = store.syncable_items(false);
    assert_eq!(items.len(), RULES + 1);

    let mut g = c.benchmark_group("config_100k_rules");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Elements(RULES as u64));
    g.bench_function("parse", |b| {
        b.iter(|| ConfigStore::parse(black_box(&text)).expect("parses"))
    });
    g.bench_function("render", |b| b.iter(|| black_box(&store).render()));
    g.bench_function("enumerate_syncable_items", |b| {
        b.iter(|| black_box(&store).syncable_items(false))
    });
    g.bench_function("apply_batch_into_empty", |b| {
        b.iter_batched(
            || items.clone(),
            |items| {
                let mut peer = ConfigStore::new();
                let r = peer.apply_batch(items, false, 0);
                assert_eq!(r.added, r.sent);
                peer
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("apply_batch_into_equal", |b| {
        b.iter_batched(
            || (store.clone(), items.clone()),
            |(mut peer, items)| {
                let r = peer.apply_batch(items, false, 0);
                assert_eq!(r.equal, r.sent);
                peer
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("wire_render_parse_each_item", |b| {
        b.iter(|| {
            for (_, item) in store.syncable(false) {
                let text = item.render();
                black_box(ConfigItem::parse(&text).expect("parses"));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
