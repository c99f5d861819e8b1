//! Golden bytes: fixed messages encoded with CRC32C integrity must match the
//! committed `tests/golden/*.hex` exactly. A mismatch means the wire format
//! changed (rkyv release, features, field order, header): that needs a
//! PROTOCOL_VERSION bump, then `UPDATE_GOLDEN=1 cargo test -p hotsync-wire
//! --test golden` to regenerate.

mod common;

use common::*;
use hotsync_wire::*;
use std::path::PathBuf;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// 16 bytes per line, lowercase hex.
fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::new();
    for line in bytes.chunks(16) {
        for b in line {
            s.push_str(&format!("{b:02x}"));
        }
        s.push('\n');
    }
    s
}

#[test]
fn golden_frames() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut enc = FrameEncoder::default();
    enc.set_integrity(Integrity::Crc32c);
    let mut changed = Vec::new();
    for (seq, (name, msg)) in samples().into_iter().enumerate() {
        let mut out = Vec::new();
        msg.encode(&mut enc, channel_for(msg.kind()), seq as u64, &mut out)
            .unwrap();
        let hex = to_hex(&out);
        let path = golden_dir().join(format!("{name}.hex"));
        if update {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&path, &hex).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if want != hex {
            changed.push(name);
        }
    }
    let fp = format!("{FORMAT_FINGERPRINT:#018x}\n");
    let fp_path = golden_dir().join("format_fingerprint.txt");
    if update {
        std::fs::write(&fp_path, &fp).unwrap();
    } else if std::fs::read_to_string(&fp_path).unwrap_or_default() != fp {
        changed.push("format_fingerprint");
    }
    assert!(
        changed.is_empty(),
        "wire format changed: bump PROTOCOL_VERSION and regenerate with UPDATE_GOLDEN=1 \
         (differing: {changed:?})"
    );
}

#[test]
fn golden_files_decode() {
    // The committed bytes are not just equal to today's encoder output: they
    // decode to the sample messages, so a regenerated file cannot silently
    // hold garbage.
    for (name, msg) in samples() {
        let path = golden_dir().join(format!("{name}.hex"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            panic!(
                "missing {}: regenerate with UPDATE_GOLDEN=1",
                path.display()
            )
        };
        let hex: String = text.split_whitespace().collect();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
        let got = decode_all(&mut dec, &bytes);
        assert_eq!(got.len(), 1, "{name}");
        assert_eq!(got[0].1, msg, "{name}");
    }
}
