//! Writes the seed corpus of the fuzz targets into `fuzz/corpus/`:
//! `cargo run -p hotsync-wire --example gen_corpus`.
//!
//! frame_decode inputs are 4 option bytes (see `hotsync_wire::fuzzing`)
//! followed by a frame stream; message_roundtrip inputs are raw bytes for
//! `arbitrary`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use hotsync_wire::fuzzing::FUZZ_KEY;
use hotsync_wire::*;
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let fd = root.join("frame_decode");
    let mr = root.join("message_roundtrip");
    std::fs::create_dir_all(&fd).unwrap();
    std::fs::create_dir_all(&mr).unwrap();
    let write = |dir: &PathBuf, name: &str, opts: [u8; 4], body: &[u8]| {
        let mut v = opts.to_vec();
        v.extend_from_slice(body);
        std::fs::write(dir.join(name), v).unwrap();
    };

    let mut enc = FrameEncoder::new(fuzzing::FUZZ_MAX_FRAME_LEN);
    for (i, (name, msg)) in samples().into_iter().enumerate() {
        let mut out = Vec::new();
        msg.encode(&mut enc, channel_for(msg.kind()), i as u64, &mut out)
            .unwrap();
        // Vary read sizes: whole, tiny, odd.
        let opts = [0, 255, (i * 7) as u8, 15];
        write(&fd, &format!("valid-{name}"), opts, &out);
    }
    let (stream, _) = sample_stream(Integrity::Crc32c);
    write(&fd, "stream-crc-bytewise", [0, 0, 0, 0], &stream);
    write(&fd, "stream-crc-feed", [2, 100, 3, 47], &stream);
    let (mac_stream, _) = sample_stream(Integrity::Hmac(FUZZ_KEY));
    write(&fd, "stream-hmac", [1, 63, 200, 9], &mac_stream);
    write(&fd, "stream-hmac-to-crc", [0, 63, 200, 9], &mac_stream);
    write(&fd, "stream-crc-to-hmac", [1, 63, 200, 9], &stream);

    // Malformed seeds, each hitting one error path.
    let one = {
        let mut out = Vec::new();
        enc.encode(
            Channel::Control,
            1,
            &Close {
                reason: 1,
                detail: "malformed seed".into(),
            },
            &mut out,
        )
        .unwrap();
        out
    };
    let mutate = |name: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = one.clone();
        f(&mut v);
        write(&fd, name, [0, 255, 255, 255], &v);
    };
    mutate("bad-magic", &|v| v[0] = b'X');
    mutate("bad-version", &|v| v[4] = 9);
    mutate("bad-channel", &|v| v[6] = 7);
    mutate("bad-kind", &|v| v[7] = 99);
    mutate("reserved", &|v| v[44] = 1);
    mutate("huge-len", &|v| {
        v[12..16].copy_from_slice(&u32::MAX.to_le_bytes())
    });
    mutate("bad-crc", &|v| v[52] ^= 0x10);
    mutate("truncated", &|v| v.truncate(40));
    mutate("kind-on-wrong-channel", &|v| v[6] = Channel::Config as u8);

    // message_roundtrip: deterministic pseudo-random byte strings.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..16usize {
        let len = 8 + i * 37;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(mr.join(format!("seed-{i:02}")), bytes).unwrap();
    }
    println!("wrote seeds to {}", root.display());
}
