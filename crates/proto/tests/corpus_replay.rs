//! Replays every committed `proto_input` fuzz corpus file through the same
//! function the fuzz target calls, so CI checks the corpus (and every past
//! crash) without a fuzzer.

use std::path::PathBuf;

#[test]
fn proto_input_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/proto_input");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "seed corpus missing");
    let (mut up_psk, mut up_open, mut up_encrypted, mut errors) = (0, 0, 0, 0);
    let mut encrypted_errors = std::collections::BTreeSet::new();
    let mut encrypted_records = 0;
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let o = hotsync_proto::fuzzing::proto_input(&data);
        eprintln!("{}: {o:?}", path.display());
        if o.encrypted {
            encrypted_errors.extend(o.error_kinds.iter().copied());
            encrypted_records += o.records_rx;
        }
        if o.handshake_done {
            if o.encrypted {
                up_encrypted += 1;
            } else if o.psk {
                up_psk += 1;
            } else {
                up_open += 1;
            }
        }
        errors += u64::from(o.errors > 0);
    }
    // The seeds must keep reaching the authenticated, encrypted and
    // unauthenticated established paths and the error paths, or the fuzzer
    // starts blind.
    assert!(
        up_psk > 0 && up_open > 0 && up_encrypted > 0 && errors > 0,
        "seed coverage lost"
    );
    // And, encrypted: records that went through decryption and were
    // applied, and each check an encrypted frame goes through: the tag
    // (wrong key, flipped bit), replay, order, and no clear text.
    assert!(encrypted_records > 0, "no encrypted seed applies records");
    for kind in [
        "decrypt_failed",
        "replayed",
        "out_of_order",
        "not_encrypted",
    ] {
        assert!(
            encrypted_errors.contains(kind),
            "no encrypted seed reaches `{kind}`: {encrypted_errors:?}"
        );
    }
}
