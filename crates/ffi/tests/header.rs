//! Regenerates `include/hotsync.h` from this crate with cbindgen (pinned in
//! Cargo.toml) and fails if the committed header was stale, leaving the new
//! one in place to review and commit. CI then checks
//! `git diff --exit-code include/hotsync.h`.

use std::path::Path;

#[test]
fn committed_header_matches_the_code() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = crate_dir.join("../../include/hotsync.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("crates/ffi/cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen")
        .write(&mut generated);
    let committed = std::fs::read(&header).unwrap_or_default();
    if committed != generated {
        std::fs::write(&header, &generated).expect("write include/hotsync.h");
        panic!("include/hotsync.h was stale: regenerated it from the code; review and commit it");
    }
}
