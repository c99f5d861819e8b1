//! Replays every committed fuzz corpus file through the same functions the
//! fuzz targets call, so CI checks the corpus without a fuzzer.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn frame_decode_corpus() {
    let files = corpus("frame_decode");
    assert!(files.len() >= 10, "seed corpus missing");
    for (path, data) in files {
        eprintln!("{}", path.display());
        hotsync_wire::fuzzing::frame_decode(&data);
    }
}

#[test]
fn message_roundtrip_corpus() {
    let files = corpus("message_roundtrip");
    assert!(files.len() >= 10, "seed corpus missing");
    for (path, data) in files {
        eprintln!("{}", path.display());
        hotsync_wire::fuzzing::message_roundtrip(&data);
    }
}
