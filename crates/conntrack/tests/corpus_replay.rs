//! Replays the committed `ct_decode` fuzz corpus through the function the
//! fuzz target calls, so CI checks it without a fuzzer.

use std::path::PathBuf;

#[test]
fn ct_decode_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/ct_decode");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "seed corpus missing");
    for path in files {
        eprintln!("{}", path.display());
        hotsync_conntrack::fuzzing::decode_datagram(&std::fs::read(&path).unwrap());
    }
}
