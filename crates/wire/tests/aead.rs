//! Encrypted frames (`hrp encryption-key`): what a receiver accepts and what
//! it refuses, and golden vectors for the key schedule and one frame.

mod common;

use common::*;
use hotsync_wire::aead::{SEQ_LIMIT, derive_keys};
use hotsync_wire::*;

const ENC_KEY: &[u8] = b"golden-encryption-key";
const AUTH_KEY: &[u8] = b"golden-authentication-key";
const CONNECTOR_NONCE: [u8; 32] = [0x11; 32];
const ACCEPTOR_NONCE: [u8; 32] = [0x22; 32];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn config_item(text: &str) -> Message {
    Message::ConfigItemBatch(ConfigItemBatch {
        job_id: 1,
        items: vec![ConfigItem {
            vsys: "root".into(),
            text: text.into(),
        }],
    })
}

/// The connector's sealing encoder and the acceptor's opening decoder.
fn link() -> (FrameEncoder, FrameDecoder) {
    let keys = derive_keys(ENC_KEY, AUTH_KEY, &CONNECTOR_NONCE, &ACCEPTOR_NONCE);
    let (send, _) = keys.for_side(true);
    let (_, receive) = keys.for_side(false);
    let mut enc = FrameEncoder::default();
    enc.set_integrity(Integrity::Aead(send));
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    dec.set_integrity(Integrity::Aead(receive));
    (enc, dec)
}

fn frame(enc: &mut FrameEncoder, seq: u64, msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(enc, channel_for(msg.kind()), seq, &mut out)
        .unwrap();
    out
}

fn first_error(dec: &mut FrameDecoder, bytes: &[u8]) -> Option<DecodeError> {
    dec.feed(bytes).unwrap();
    loop {
        match dec.next_frame() {
            Ok(Some(f)) => {
                if let Err(e) = f.message() {
                    return Some(e);
                }
            }
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

#[test]
fn encrypted_stream_round_trips_and_hides_the_payload() {
    let (mut enc, mut dec) = link();
    let (_, msgs) = sample_stream(Integrity::Crc32c);
    let mut stream = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        m.encode(&mut enc, channel_for(m.kind()), i as u64 + 1, &mut stream)
            .unwrap();
    }
    let got = decode_all(&mut dec, &stream);
    assert_eq!(got.len(), msgs.len());
    for ((h, m), want) in got.iter().zip(&msgs) {
        assert!(h.is_encrypted());
        assert_eq!(m, want);
    }

    let secret = "security-policy rule name SECRET-RULE-NAME";
    let bytes = frame(&mut enc, 1000, &config_item(secret));
    let needle = b"SECRET-RULE-NAME";
    assert!(
        !bytes.windows(needle.len()).any(|w| w == needle),
        "plain text visible in an encrypted frame"
    );
}

#[test]
fn tampered_payload_header_and_length_are_refused() {
    let (mut enc, _) = link();
    let good = frame(&mut enc, 1, &config_item("rule name a"));
    let cases: [(&str, usize); 3] = [
        ("payload byte", HEADER_LEN + 3),
        ("sequence number", 16),
        ("tag", 30),
    ];
    for (what, at) in cases {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let (_, mut dec) = link();
        let err = first_error(&mut dec, &bad);
        assert!(
            matches!(
                err,
                Some(DecodeError::DecryptFailed) | Some(DecodeError::ReservedNonZero)
            ),
            "{what}: {err:?}"
        );
    }
}

#[test]
fn truncated_frame_is_refused() {
    let (mut enc, _) = link();
    let good = frame(&mut enc, 1, &config_item(&"x".repeat(100)));
    // Cut 16 bytes of ciphertext and announce the shorter length.
    let len = u32::from_le_bytes(good[12..16].try_into().unwrap());
    let mut cut = good[..good.len() - 16].to_vec();
    cut[12..16].copy_from_slice(&(len - 16).to_le_bytes());
    let (_, mut dec) = link();
    let err = first_error(&mut dec, &cut);
    assert!(
        matches!(
            err,
            Some(DecodeError::DecryptFailed | DecodeError::ReservedNonZero)
        ),
        "{err:?}"
    );
}

#[test]
fn replayed_and_reordered_frames_are_refused() {
    let (mut enc, mut dec) = link();
    let one = frame(&mut enc, 1, &config_item("rule name a"));
    let two = frame(&mut enc, 2, &config_item("rule name b"));
    assert_eq!(first_error(&mut dec, &one), None);
    assert_eq!(
        first_error(&mut dec, &one),
        Some(DecodeError::Replayed { seq: 1, last: 1 })
    );

    let (_, mut dec) = link();
    assert_eq!(first_error(&mut dec, &two), None);
    assert_eq!(
        first_error(&mut dec, &one),
        Some(DecodeError::Replayed { seq: 1, last: 2 })
    );

    let (mut enc, mut dec) = link();
    let one = frame(&mut enc, 1, &config_item("rule name a"));
    let _dropped = frame(&mut enc, 2, &config_item("rule name b"));
    let three = frame(&mut enc, 3, &config_item("rule name c"));
    assert_eq!(first_error(&mut dec, &one), None);
    assert_eq!(
        first_error(&mut dec, &three),
        Some(DecodeError::OutOfOrder {
            seq: 3,
            expected: 2
        })
    );
}

#[test]
fn reflected_and_cross_connection_frames_are_refused() {
    let (mut enc, _) = link();
    let sent = frame(&mut enc, 1, &config_item("rule name a"));

    // Sent back to the connector: it opens with the other direction's key.
    let keys = derive_keys(ENC_KEY, AUTH_KEY, &CONNECTOR_NONCE, &ACCEPTOR_NONCE);
    let mut back = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    back.set_integrity(Integrity::Aead(keys.for_side(true).1));
    assert_eq!(
        first_error(&mut back, &sent),
        Some(DecodeError::DecryptFailed)
    );

    // Another connection of the same pair: other nonces, other keys.
    let other = derive_keys(ENC_KEY, AUTH_KEY, &CONNECTOR_NONCE, &[0x33; 32]);
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    dec.set_integrity(Integrity::Aead(other.for_side(false).1));
    assert_eq!(
        first_error(&mut dec, &sent),
        Some(DecodeError::DecryptFailed)
    );
}

#[test]
fn no_downgrade_either_way() {
    let (_, mut dec) = link();
    let mut clear = FrameEncoder::default();
    clear.set_integrity(Integrity::Hmac([5; 32]));
    let hmac_frame = frame(&mut clear, 1, &config_item("rule name a"));
    assert_eq!(
        first_error(&mut dec, &hmac_frame),
        Some(DecodeError::NotEncrypted)
    );

    let (mut enc, _) = link();
    let sealed = frame(&mut enc, 1, &config_item("rule name a"));
    for integrity in [Integrity::Crc32c, Integrity::Hmac([5; 32])] {
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
        dec.set_integrity(integrity);
        assert_eq!(
            first_error(&mut dec, &sealed),
            Some(DecodeError::UnexpectedEncryption)
        );
    }

    // Both flags at once is no valid frame.
    let mut both = sealed.clone();
    both[8] |= FLAG_MAC as u8;
    let (_, mut dec) = link();
    assert_eq!(
        first_error(&mut dec, &both),
        Some(DecodeError::ReservedNonZero)
    );
}

#[test]
fn encoder_never_reuses_a_nonce_and_stops_at_the_limit() {
    let (mut enc, _) = link();
    let msg = config_item("rule name a");
    let mut out = Vec::new();
    msg.encode(&mut enc, Channel::Config, 9, &mut out).unwrap();
    let before = out.len();
    assert_eq!(
        msg.encode(&mut enc, Channel::Config, 9, &mut out),
        Err(EncodeError::SequenceReused { seq: 9 })
    );
    assert_eq!(
        msg.encode(&mut enc, Channel::Config, SEQ_LIMIT, &mut out),
        Err(EncodeError::RekeyRequired { seq: SEQ_LIMIT })
    );
    assert_eq!(out.len(), before, "a refused frame leaves nothing behind");
}

/// Fixed keys and nonces give fixed bytes: another implementation can check
/// itself against these (docs/PROTOCOL.md shows the same values).
#[test]
fn golden_vectors() {
    let keys = derive_keys(ENC_KEY, AUTH_KEY, &CONNECTOR_NONCE, &ACCEPTOR_NONCE);
    assert_eq!(
        hex(&keys.from_connector),
        "c6856cc1183ef8f32bac93f5bed86b01f509a3e18fb06694675ad2bb74a55993",
        "key schedule changed"
    );
    assert_eq!(
        hex(&keys.from_acceptor),
        "11e05aea4cab60d9047634264ed4a2ceb600f7573218167c38edb6ba72cf0e48",
        "key schedule changed"
    );
    let (mut enc, mut dec) = link();
    let bytes = frame(&mut enc, 1, &config_item("rule name a"));
    // The frame depends on the header and the archive layout too, so it lives
    // with the other golden frames and is regenerated with them.
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/aead_config_item.hex");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, hex(&bytes) + "\n").unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        hex(&bytes),
        want.trim(),
        "encrypted frame changed: bump PROTOCOL_VERSION and regenerate with UPDATE_GOLDEN=1"
    );
    let got = decode_all(&mut dec, &bytes);
    assert_eq!(got[0].1, config_item("rule name a"));
}
