//! Entry points for the fuzz targets (`fuzz/fuzz_targets/config_parse.rs`)
//! and the corpus replay test.

use crate::item::ConfigItem;
use crate::store::ConfigStore;

/// Parse arbitrary bytes as a configuration text (non-UTF-8 is rejected,
/// like any malformed text). If it parses: render it, parse the rendering,
/// and assert the round trip; render and re-parse every item alone and
/// assert that round trip too. Then replay each line as a one-line command
/// on the parsed store and assert the result still round-trips.
///
/// Panics only when an invariant is broken (which is what the fuzzer looks
/// for); malformed input returns quietly.
pub fn parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut store) = ConfigStore::parse(text) else {
        // Still exercise the command parser on the lines.
        let mut empty = ConfigStore::new();
        for line in text.lines().take(64) {
            let _ = empty.execute(None, line);
        }
        assert_round_trip(&empty);
        return;
    };
    assert_round_trip(&store);
    for (_, item) in store.all_items() {
        let text = item.render();
        let back = ConfigItem::parse(&text)
            .unwrap_or_else(|e| panic!("rendered item does not parse: {e}\n{text}"));
        assert_eq!(&back, item, "item round trip");
    }
    let vsys: Vec<String> = store.vsys_names().map(str::to_owned).collect();
    for (n, line) in text.lines().take(64).enumerate() {
        let target = if vsys.is_empty() {
            None
        } else {
            vsys.get(n % (vsys.len() + 1)).map(String::as_str)
        };
        let _ = store.execute(target, line);
        let _ = store.execute(target, &format!("undo {line}"));
    }
    assert_round_trip(&store);
}

fn assert_round_trip(store: &ConfigStore) {
    let rendered = store.render();
    let again = ConfigStore::parse(&rendered)
        .unwrap_or_else(|e| panic!("rendered configuration does not parse: {e}\n{rendered}"));
    assert!(
        *store == again,
        "round trip changed the configuration:\n{rendered}"
    );
}
