//! Replays the fuzz seed corpus through `fuzzing::parse` (no panic, round
//! trip holds for every file that parses).

use std::path::Path;

#[test]
fn replay_seed_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/config_parse");
    let mut files = 0;
    let mut parsed = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if !path.is_file() {
            continue;
        }
        let data = std::fs::read(&path).expect("readable corpus file");
        hotsync_config::fuzzing::parse(&data);
        files += 1;
        if std::str::from_utf8(&data)
            .ok()
            .and_then(|t| hotsync_config::ConfigStore::parse(t).ok())
            .is_some()
        {
            parsed += 1;
        }
    }
    assert!(
        files >= 10,
        "only {files} corpus files in {}",
        dir.display()
    );
    assert!(
        parsed >= 5 && parsed < files,
        "{parsed} of {files} parse: want valid and broken seeds"
    );
}
