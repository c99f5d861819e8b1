//! Encoder/decoder behaviour: roundtrips, framing, bounds, integrity and
//! every malformed-input path.

mod common;

use common::*;
use hotsync_table::{SessionEntry, SessionKey};
use hotsync_wire::*;
use proptest::prelude::*;

/// Builds a frame by hand, following docs/PROTOCOL.md rather than the
/// encoder, so the spec and the code are checked against each other.
fn hand_frame(channel: u8, kind: u8, flags: u16, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(b"HSYN");
    h[4..6].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    h[6] = channel;
    h[7] = kind;
    h[8..10].copy_from_slice(&flags.to_le_bytes());
    h[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&h), payload);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    let mut f = h.to_vec();
    f.extend_from_slice(payload);
    while f.len() % 16 != 0 {
        f.push(0);
    }
    f
}

/// Re-tags a frame's CRC after a test modified its header or payload.
fn retag_crc(frame: &mut [u8]) {
    let len = u32::from_le_bytes(frame[12..16].try_into().unwrap()) as usize;
    frame[24..40].fill(0);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&frame[..48]), &frame[48..48 + len]);
    frame[24..28].copy_from_slice(&crc.to_le_bytes());
}

fn encode_one(msg: &Message, integrity: Integrity) -> Vec<u8> {
    let mut enc = FrameEncoder::default();
    enc.set_integrity(integrity);
    let mut out = Vec::new();
    msg.encode(&mut enc, channel_for(msg.kind()), 1, &mut out)
        .unwrap();
    out
}

fn first_error(integrity: Integrity, bytes: &[u8]) -> DecodeError {
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    dec.set_integrity(integrity);
    dec.feed(bytes).unwrap();
    loop {
        match dec.next_frame() {
            Ok(Some(f)) => {
                if let Err(e) = f.message() {
                    return e;
                }
            }
            Ok(None) => panic!("stream decoded without error"),
            Err(e) => {
                // Poisoned: the same error again, and feed refuses too.
                assert_eq!(dec.next_frame().unwrap_err(), e);
                assert_eq!(dec.feed(&[0; 16]).unwrap_err(), e);
                return e;
            }
        }
    }
}

#[test]
fn samples_cover_every_kind() {
    let kinds: Vec<MessageKind> = samples().iter().map(|(_, m)| m.kind()).collect();
    assert_eq!(kinds, MessageKind::ALL);
}

#[test]
fn every_message_roundtrips() {
    for (name, msg) in samples() {
        for integrity in [Integrity::Crc32c, Integrity::Hmac([3; 32])] {
            let bytes = encode_one(&msg, integrity.clone());
            assert_eq!(bytes.len() % 16, 0, "{name}: frame not padded");
            let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
            dec.set_integrity(integrity.clone());
            let got = decode_all(&mut dec, &bytes);
            assert_eq!(got.len(), 1, "{name}");
            let (h, back) = &got[0];
            assert_eq!(back, &msg, "{name}");
            assert_eq!(h.kind, msg.kind());
            assert_eq!(h.seq, 1);
            assert_eq!(h.version, PROTOCOL_VERSION);
            assert_eq!(h.has_mac(), matches!(integrity, Integrity::Hmac(_)));
            assert_eq!(h.frame_len(), bytes.len() as u64);
        }
    }
}

#[test]
fn hand_built_frame_matches_encoder() {
    // The encoder's CRC frame equals one assembled byte by byte from the spec.
    let msg = Message::from(Ack { channel: 1, seq: 5 });
    let bytes = encode_one(&msg, Integrity::Crc32c);
    let payload_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let hand = hand_frame(
        1,
        MessageKind::Ack as u8,
        0,
        1,
        &bytes[48..48 + payload_len],
    );
    assert_eq!(hand, bytes);
}

#[test]
fn encode_appends_and_keeps_alignment() {
    let (stream, msgs) = sample_stream(Integrity::Crc32c);
    assert_eq!(stream.len() % 16, 0);
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    let got = decode_all(&mut dec, &stream);
    let back: Vec<Message> = got.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(back, msgs);
    let seqs: Vec<u64> = got.iter().map(|(h, _)| h.seq).collect();
    assert_eq!(seqs, (0..msgs.len() as u64).collect::<Vec<_>>());
}

#[test]
fn compact_record_fits_budget() {
    assert_eq!(size_of::<ArchivedCompactRecordV4>(), 96);
    assert_eq!(size_of::<ArchivedFullRecord>(), 152);
}

#[test]
fn ipv4_batch_costs_96_bytes_per_session_plus_one_frame() {
    let mut batch = SessionUpsertBatch::default();
    for i in 0..4096 {
        let (k, e) = v4_session(i);
        batch.push(&k, &e);
    }
    assert_eq!(batch.compact_v4.len(), 4096);
    let bytes = encode_one(&batch.into(), Integrity::Crc32c);
    let per = bytes.len() as f64 / 4096.0;
    assert!(per <= 96.0 + 128.0 / 4096.0, "{per} bytes per session");
}

#[test]
fn compact_choice_is_lossless_and_falls_back() {
    let (k, e) = v4_session(1);
    let mut cases: Vec<(SessionKey, SessionEntry, bool)> = vec![(k, e, true)];
    let mut e2 = e;
    e2.ct_status = 0x1_0000; // status bits beyond 16 take the full form
    cases.push((k, e2, false));
    // A stray byte past an IPv4 address's fourth is refused, not carried
    // (see structurally_invalid_records_are_refused_whole_batch).
    let mut e3 = e;
    e3.ct_status = u32::MAX;
    cases.push((k, e3, false));
    let mut k3 = k;
    k3.family = 6;
    cases.push((k3, e, false));
    let (k6, e6) = v6_session(3);
    cases.push((k6, e6, false));
    for (k, e, compact) in cases {
        let mut b = SessionUpsertBatch::default();
        b.push(&k, &e);
        assert_eq!(b.compact_v4.len() == 1, compact, "{k:?}");
        let bytes = encode_one(&b.into(), Integrity::Crc32c);
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
        dec.feed(&bytes).unwrap();
        let f = dec.next_frame().unwrap().unwrap();
        let MessageRef::SessionUpsertBatch(a) = f.message().unwrap() else {
            panic!("wrong kind")
        };
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![(k, e)]);

        let mut d = SessionDeleteBatch::default();
        d.push(&k);
        let key_compact = k.family == 4 && k.src_addr[4..] == [0; 12] && k.dst_addr[4..] == [0; 12];
        assert_eq!(d.compact_v4.len() == 1, key_compact);
        let bytes = encode_one(&d.into(), Integrity::Crc32c);
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
        dec.feed(&bytes).unwrap();
        let f = dec.next_frame().unwrap().unwrap();
        let MessageRef::SessionDeleteBatch(a) = f.message().unwrap() else {
            panic!("wrong kind")
        };
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![k]);
    }
}

/// A batch holding one full record of `(k, e)`, bypassing `push`'s choice.
fn full_only(k: &SessionKey, e: &SessionEntry) -> Vec<u8> {
    let b = SessionUpsertBatch {
        compact_v4: Vec::new(),
        full: vec![FullRecord::from_session(k, e)],
    };
    encode_one(&b.into(), Integrity::Crc32c)
}

#[test]
fn structurally_invalid_records_are_refused_whole_batch() {
    let (k, e) = v4_session(1);
    let refused = |bytes: &[u8]| match first_error(Integrity::Crc32c, bytes) {
        DecodeError::InvalidRecord { reason, .. } => reason,
        other => panic!("expected invalid_record, got {other:?}"),
    };
    for family in [0u8, 5, 255] {
        let mut bad = k;
        bad.family = family;
        assert_eq!(
            refused(&full_only(&bad, &e)),
            RecordError::UnknownFamily(family)
        );
        // Delete batches too.
        let d = SessionDeleteBatch {
            compact_v4: Vec::new(),
            full: vec![FullKey::from_key(&bad)],
        };
        let bytes = encode_one(&d.into(), Integrity::Crc32c);
        assert_eq!(refused(&bytes), RecordError::UnknownFamily(family));
    }
    // IPv4 with a stray byte past the fourth, in a key or a NAT address.
    let mut bad = k;
    bad.src_addr[4] = 1;
    assert_eq!(refused(&full_only(&bad, &e)), RecordError::Ipv4TailNonZero);
    let mut bad_nat = e;
    bad_nat.nat.dst_addr[15] = 1;
    assert_eq!(
        refused(&full_only(&k, &bad_nat)),
        RecordError::Ipv4TailNonZero
    );
    // The error names its counter label.
    let err = first_error(Integrity::Crc32c, &full_only(&bad, &e));
    assert_eq!(err.kind_name(), "invalid_record");
}

#[test]
fn what_a_kernel_reports_is_accepted() {
    // Any protocol number, every TCP state byte, every status bit, zones and
    // GRE keys: all kept exactly, in both forms.
    let (k, e) = v4_session(1);
    let mut cases = Vec::new();
    for protocol in [0u8, 6, 17, 47, 132, 136, 255] {
        for state in [0u8, 3, 9, 10, 11, 255] {
            let mut k2 = k.with_ct_zone(state as u16 * 7);
            k2.protocol = protocol;
            let mut e2 = e;
            e2.state = state;
            e2.ct_status = if state == 255 { u32::MAX } else { 0x3fff };
            e2.mark = 0xdead_beef;
            cases.push((k2, e2));
        }
    }
    let (k6, e6) = v6_session(3);
    cases.push((k6, e6));
    let mut b = SessionUpsertBatch::default();
    for (k, e) in &cases {
        b.push(k, e);
    }
    assert!(!b.full.is_empty() && !b.compact_v4.is_empty());
    let bytes = encode_one(&b.into(), Integrity::Crc32c);
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    dec.feed(&bytes).unwrap();
    let f = dec.next_frame().unwrap().unwrap();
    let MessageRef::SessionUpsertBatch(a) = f.message().unwrap() else {
        panic!("wrong kind")
    };
    let mut got: Vec<_> = a.iter().collect();
    let mut want = cases.clone();
    let order = |s: &(SessionKey, SessionEntry)| (s.0.as_bytes().to_vec(), s.1.as_bytes().to_vec());
    got.sort_by_key(order);
    want.sort_by_key(order);
    assert_eq!(got, want);
}

#[test]
fn zone_and_gre_keys_make_distinct_keys() {
    let (k, _) = v4_session(1);
    let mut gre = k;
    gre.protocol = 47;
    let mut gre2 = gre;
    gre2.src_port ^= 1;
    let keys = [k, k.with_ct_zone(1), k.with_ct_zone(2), gre, gre2];
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // And the compact and full key forms keep the zone.
    let z = k.with_ct_zone(9);
    let mut d = SessionDeleteBatch::default();
    d.push(&z);
    let mut v6 = v6_session(2).0.with_ct_zone(11);
    v6.src_port = 1;
    d.push(&v6);
    let bytes = encode_one(&d.into(), Integrity::Crc32c);
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    dec.feed(&bytes).unwrap();
    let f = dec.next_frame().unwrap().unwrap();
    let MessageRef::SessionDeleteBatch(a) = f.message().unwrap() else {
        panic!("wrong kind")
    };
    assert_eq!(a.iter().collect::<Vec<_>>(), vec![z, v6]);
}

#[test]
fn batch_clear_and_len() {
    let mut b = SessionUpsertBatch::default();
    let (k, e) = v4_session(1);
    let (k6, e6) = v6_session(1);
    b.push(&k, &e);
    b.push(&k6, &e6);
    assert_eq!(b.len(), 2);
    assert_eq!(b.encoded_records_len(), 96 + 152);
    b.clear();
    assert!(b.is_empty());
    let mut d = SessionDeleteBatch::default();
    d.push(&k);
    d.push(&k6);
    assert_eq!(d.len(), 2);
    d.clear();
    assert!(d.is_empty());
}

#[test]
fn byte_by_byte_and_every_two_way_split() {
    let (stream, msgs) = sample_stream(Integrity::Crc32c);
    // Byte by byte through read_buf/commit.
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    let mut got = Vec::new();
    for b in &stream {
        let buf = dec.read_buf();
        buf[0] = *b;
        dec.commit(1);
        while let Some(f) = dec.next_frame().unwrap() {
            got.push(f.message().unwrap().to_message().unwrap());
        }
    }
    assert_eq!(got, msgs);
    // Every split point of the first 3 frames.
    let head = &stream[..stream.len().min(600)];
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    let whole = decode_all(&mut dec, head);
    for cut in 0..=head.len() {
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
        let mut v = decode_all(&mut dec, &head[..cut]);
        v.extend(decode_all(&mut dec, &head[cut..]));
        assert_eq!(v, whole, "cut at {cut}");
    }
}

#[test]
fn header_claiming_4gib_is_rejected_before_buffering() {
    let mut h = [0u8; HEADER_LEN];
    FrameHeader {
        version: PROTOCOL_VERSION,
        channel: Channel::Session,
        kind: MessageKind::SessionUpsertBatch,
        flags: 0,
        payload_len: u32::MAX,
        seq: 0,
        tag: [0; 16],
    }
    .write(&mut h);
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    dec.feed(&h).unwrap();
    let cap = dec.capacity();
    let e = dec.next_frame().unwrap_err();
    assert_eq!(
        e,
        DecodeError::FrameTooLarge {
            len: (48 + u64::from(u32::MAX)).div_ceil(16) * 16,
            max: DEFAULT_MAX_FRAME_LEN
        }
    );
    assert_eq!(e.kind_name(), "frame_too_large");
    assert!(cap <= READ_CHUNK, "buffer grew to {cap}");
    // A frame just over a small bound is rejected too, at the header.
    let mut dec = FrameDecoder::new(256);
    let big = encode_one(
        &Close {
            reason: 0,
            detail: "x".repeat(300),
        }
        .into(),
        Integrity::Crc32c,
    );
    dec.feed(&big[..48]).unwrap();
    assert!(matches!(
        dec.next_frame(),
        Err(DecodeError::FrameTooLarge { max: 256, .. })
    ));
}

#[test]
fn buffer_stays_bounded_with_maximal_frames() {
    let max = 64 << 10;
    let mut enc = FrameEncoder::new(max);
    let mut out = Vec::new();
    let mut msgs = Vec::new();
    for i in 0..6u8 {
        let m = Close {
            reason: u16::from(i),
            detail: String::from_utf8(vec![b'a' + i; max - 48 - 64]).unwrap(),
        };
        enc.encode(Channel::Control, u64::from(i), &m, &mut out)
            .unwrap();
        msgs.push(Message::from(m));
    }
    let mut dec = FrameDecoder::new(max);
    let mut got = Vec::new();
    let mut pos = 0;
    while pos < out.len() {
        let buf = dec.read_buf();
        let n = buf.len().min(out.len() - pos).min(10_000);
        buf[..n].copy_from_slice(&out[pos..pos + n]);
        dec.commit(n);
        pos += n;
        assert!(dec.capacity() <= max + READ_CHUNK);
        while let Some(f) = dec.next_frame().unwrap() {
            got.push(f.message().unwrap().to_message().unwrap());
        }
    }
    assert_eq!(got, msgs);
}

#[test]
fn feed_beyond_bound_is_refused_without_poisoning() {
    let mut dec = FrameDecoder::new(1024);
    let e = dec.feed(&vec![0u8; 1024 + READ_CHUNK + 1]).unwrap_err();
    assert!(matches!(e, DecodeError::BufferFull { .. }));
    assert_eq!(dec.buffered(), 0);
    let bytes = encode_one(&Ack { channel: 0, seq: 1 }.into(), Integrity::Crc32c);
    dec.feed(&bytes).unwrap();
    assert!(dec.next_frame().unwrap().is_some());
}

#[test]
fn encoder_rejects_too_large_and_leaves_out_untouched() {
    let mut enc = FrameEncoder::new(4096);
    let mut out = vec![0u8; 32];
    let mut batch = SessionUpsertBatch::default();
    for i in 0..100 {
        let (k, e) = v4_session(i);
        batch.push(&k, &e);
    }
    assert_eq!(
        enc.encode(Channel::Session, 0, &batch, &mut out),
        Err(EncodeError::TooLarge { max: 4096 })
    );
    assert_eq!(out, vec![0u8; 32]);
    // A batch that fits right up to the bound is accepted and decodable.
    batch.compact_v4.truncate(40);
    let n = enc.encode(Channel::Session, 0, &batch, &mut out).unwrap();
    assert!(n <= 4096);
    let mut dec = FrameDecoder::new(4096);
    dec.feed(&out[32..]).unwrap();
    assert!(dec.next_frame().unwrap().is_some());
}

#[test]
fn encoder_rejects_kind_on_wrong_channel() {
    let mut enc = FrameEncoder::default();
    let mut out = Vec::new();
    let e = enc
        .encode(Channel::Config, 0, &SessionDeleteBatch::default(), &mut out)
        .unwrap_err();
    assert!(matches!(e, EncodeError::KindChannelMismatch { .. }));
    assert!(out.is_empty());
}

fn sample_frame() -> Vec<u8> {
    encode_one(
        &Close {
            reason: 1,
            detail: "bye".into(),
        }
        .into(),
        Integrity::Crc32c,
    )
}

#[test]
fn malformed_headers() {
    let good = sample_frame();
    type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|f| f[0] = b'X'), "bad_magic"),
        (Box::new(|f| f[4] = 9), "unsupported_version"),
        (Box::new(|f| f[6] = 3), "unknown_channel"),
        (Box::new(|f| f[7] = 0), "unknown_kind"),
        (Box::new(|f| f[7] = 200), "unknown_kind"),
        (Box::new(|f| f[8] = 0x02), "reserved_nonzero"),
        (Box::new(|f| f[11] = 1), "reserved_nonzero"),
        (Box::new(|f| f[47] = 1), "reserved_nonzero"),
        (
            Box::new(|f| {
                let last = f.len() - 1;
                f[last] = 1;
            }),
            "reserved_nonzero",
        ),
        (
            Box::new(|f| {
                f[6] = Channel::Config as u8;
                f[7] = MessageKind::SessionUpsertBatch as u8;
            }),
            "kind_channel_mismatch",
        ),
        (Box::new(|f| f[50] ^= 1), "bad_checksum"),
        (Box::new(|f| f[16] ^= 1), "bad_checksum"),
        (Box::new(|f| f[24] ^= 1), "bad_checksum"),
    ];
    for (mutate, want) in cases {
        let mut f = good.clone();
        mutate(&mut f);
        let e = first_error(Integrity::Crc32c, &f);
        assert_eq!(e.kind_name(), want, "{e}");
    }
}

#[test]
fn unknown_version_reports_what_it_got() {
    let mut f = sample_frame();
    f[4..6].copy_from_slice(&7u16.to_le_bytes());
    assert_eq!(
        first_error(Integrity::Crc32c, &f),
        DecodeError::UnsupportedVersion { got: 7 }
    );
}

#[test]
fn invalid_payload_with_valid_checksum() {
    // A Close whose out-of-line string points outside the payload: the CRC
    // is right, the archive is not; bytecheck must catch it.
    let mut f = encode_one(
        &Close {
            reason: 1,
            detail: "a detail longer than eight bytes".into(),
        }
        .into(),
        Integrity::Crc32c,
    );
    let len = u32::from_le_bytes(f[12..16].try_into().unwrap()) as usize;
    // The root is last: its final 4 bytes are the string's relative offset.
    f[48 + len - 4..48 + len].copy_from_slice(&0x4000_0000i32.to_le_bytes());
    retag_crc(&mut f);
    let e = first_error(Integrity::Crc32c, &f);
    assert!(
        matches!(
            e,
            DecodeError::InvalidPayload {
                kind: MessageKind::Close,
                ..
            }
        ),
        "{e:?}"
    );
    // Invalid UTF-8 inside an otherwise well-formed string.
    let mut f = encode_one(
        &Close {
            reason: 1,
            detail: "a detail longer than eight bytes".into(),
        }
        .into(),
        Integrity::Crc32c,
    );
    f[48] = 0xc3;
    f[49] = 0x28;
    retag_crc(&mut f);
    assert_eq!(
        first_error(Integrity::Crc32c, &f).kind_name(),
        "invalid_payload"
    );
    // Payload of the wrong kind: an Ack archive labelled as a SessionUpsertBatch.
    let ack = encode_one(&Ack { channel: 0, seq: 1 }.into(), Integrity::Crc32c);
    let plen = u32::from_le_bytes(ack[12..16].try_into().unwrap()) as usize;
    let mut payload = ack[48..48 + plen].to_vec();
    payload.extend_from_slice(&[0xee; 8]);
    let f = hand_frame(1, MessageKind::SessionUpsertBatch as u8, 0, 0, &payload);
    assert_eq!(
        first_error(Integrity::Crc32c, &f).kind_name(),
        "invalid_payload"
    );
    // Empty payload.
    let f = hand_frame(0, MessageKind::Hello as u8, 0, 0, &[]);
    assert_eq!(
        first_error(Integrity::Crc32c, &f).kind_name(),
        "invalid_payload"
    );
}

#[test]
fn hmac_rules() {
    let key = [9u8; 32];
    let msg = Message::from(Heartbeat {
        role: 0,
        priority: 1,
        sent_at_ms: 2,
    });
    let mac_frame = encode_one(&msg, Integrity::Hmac(key));
    let crc_frame = encode_one(&msg, Integrity::Crc32c);
    // Right key: accepted.
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    dec.set_integrity(Integrity::Hmac(key));
    assert_eq!(decode_all(&mut dec, &mac_frame)[0].1, msg);
    // Wrong key.
    assert_eq!(
        first_error(Integrity::Hmac([8; 32]), &mac_frame),
        DecodeError::BadMac
    );
    // Tampered payload under the right key.
    let mut t = mac_frame.clone();
    t[60] ^= 0x40;
    assert_eq!(first_error(Integrity::Hmac(key), &t), DecodeError::BadMac);
    // Missing MAC (a CRC frame) where a MAC is required.
    assert_eq!(
        first_error(Integrity::Hmac(key), &crc_frame),
        DecodeError::MissingMac
    );
    // A MAC frame where no key is configured.
    assert_eq!(
        first_error(Integrity::Crc32c, &mac_frame),
        DecodeError::UnexpectedMac
    );
    // The HMAC tag is HMAC-SHA256(key, header with zero tag || payload)[..16].
    use hmac::Mac;
    let plen = u32::from_le_bytes(mac_frame[12..16].try_into().unwrap()) as usize;
    let mut hdr = mac_frame[..48].to_vec();
    hdr[24..40].fill(0);
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    m.update(&hdr);
    m.update(&mac_frame[48..48 + plen]);
    assert_eq!(&m.finalize().into_bytes()[..16], &mac_frame[24..40]);
    // The key does not leak through Debug.
    assert!(!format!("{:?}", Integrity::Hmac(key)).contains('9'));
}

#[test]
fn kind_names_are_distinct() {
    let errs = [
        DecodeError::BadMagic { got: [0; 4] },
        DecodeError::UnsupportedVersion { got: 0 },
        DecodeError::UnknownChannel { got: 9 },
        DecodeError::UnknownKind { got: 0 },
        DecodeError::ReservedNonZero,
        DecodeError::FrameTooLarge { len: 0, max: 0 },
        DecodeError::KindChannelMismatch {
            kind: MessageKind::Hello,
            channel: Channel::Control,
        },
        DecodeError::BadChecksum,
        DecodeError::BadMac,
        DecodeError::MissingMac,
        DecodeError::UnexpectedMac,
        DecodeError::InvalidPayload {
            kind: MessageKind::Hello,
            detail: String::new(),
        },
        DecodeError::InvalidRecord {
            kind: MessageKind::SessionUpsertBatch,
            index: 0,
            reason: RecordError::UnknownFamily(0),
        },
        DecodeError::BufferFull { len: 0 },
    ];
    let mut names: Vec<&str> = errs.iter().map(|e| e.kind_name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), errs.len());
}

#[test]
fn fingerprint_tracks_the_pinned_rkyv() {
    let root =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml")).unwrap();
    let pin = format!("rkyv = {{ version = \"={RKYV_VERSION}\"");
    assert!(
        root.contains(&pin),
        "workspace rkyv pin differs from RKYV_VERSION: update fingerprint.rs and bump PROTOCOL_VERSION"
    );
    for f in ["little_endian", "aligned", "pointer_width_32"] {
        assert!(
            root.contains(&format!("\"{f}\"")),
            "rkyv feature {f} missing"
        );
    }
    assert_ne!(FORMAT_FINGERPRINT, 0);
}

/// A (key, entry) pair biased towards the compact-eligible shape.
fn session_strategy() -> impl Strategy<Value = (SessionKey, SessionEntry)> {
    (
        proptest::collection::vec(any::<u8>(), size_of::<SessionKey>()),
        proptest::collection::vec(any::<u8>(), size_of::<SessionEntry>()),
        0u8..4,
    )
        .prop_map(|(kb, eb, shape)| {
            let mut k: SessionKey = bytemuck::pod_read_unaligned(&kb);
            let mut e: SessionEntry = bytemuck::pod_read_unaligned(&eb);
            // A random shape is a valid full record (the invalid ones are
            // refused, see structurally_invalid_records_are_refused_whole_batch).
            k.family = 6;
            if shape < 3 {
                k.family = 4;
                k.src_addr[4..].fill(0);
                k.dst_addr[4..].fill(0);
                e.nat.src_addr[4..].fill(0);
                e.nat.dst_addr[4..].fill(0);
                e.ct_status &= 0xffff;
                if shape == 1 {
                    // Near miss: one status bit beyond 16 forces the full form.
                    e.ct_status |= 0x1_0000;
                } else if shape == 2 {
                    k.family = 6;
                    k.dst_addr[15] = 1;
                }
            }
            (k, e)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn batches_roundtrip_in_order(items in proptest::collection::vec(session_strategy(), 0..200)) {
        let mut up = SessionUpsertBatch::default();
        let mut del = SessionDeleteBatch::default();
        for (k, e) in &items {
            up.push(k, e);
            del.push(k);
        }
        prop_assert_eq!(up.len(), items.len());
        let (mut compact, mut full) = (Vec::new(), Vec::new());
        for (k, e) in &items {
            if CompactRecordV4::from_session(k, e).is_some() { compact.push((*k, *e)) } else { full.push((*k, *e)) }
        }
        prop_assert_eq!(up.compact_v4.len(), compact.len());
        let mut enc = FrameEncoder::default();
        let mut out = Vec::new();
        enc.encode(Channel::Session, 1, &up, &mut out).unwrap();
        enc.encode(Channel::Session, 2, &del, &mut out).unwrap();
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
        dec.feed(&out).unwrap();
        let f = dec.next_frame().unwrap().unwrap();
        let MessageRef::SessionUpsertBatch(a) = f.message().unwrap() else { panic!() };
        let got: Vec<_> = a.iter().collect();
        prop_assert_eq!(a.iter().len(), items.len());
        let want: Vec<_> = compact.iter().chain(full.iter()).copied().collect();
        prop_assert_eq!(got, want);
        let f = dec.next_frame().unwrap().unwrap();
        let MessageRef::SessionDeleteBatch(d) = f.message().unwrap() else { panic!() };
        let got: Vec<SessionKey> = d.iter().collect();
        let mut ck = Vec::new();
        let mut fk = Vec::new();
        for (k, _) in &items {
            if CompactKeyV4::from_key(k).is_some() { ck.push(*k) } else { fk.push(*k) }
        }
        ck.extend(fk);
        prop_assert_eq!(got, ck);
    }

    #[test]
    fn random_splits_yield_the_same_frames(
        splits in proptest::collection::vec(1usize..700, 1..40),
        hmac in any::<bool>(),
    ) {
        let integrity = if hmac { Integrity::Hmac([1; 32]) } else { Integrity::Crc32c };
        let (stream, msgs) = sample_stream(integrity.clone());
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
        dec.set_integrity(integrity);
        let mut got = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < stream.len() {
            let n = splits[i % splits.len()].min(stream.len() - pos);
            i += 1;
            if i % 2 == 0 {
                dec.feed(&stream[pos..pos + n]).unwrap();
            } else {
                let buf = dec.read_buf();
                buf[..n].copy_from_slice(&stream[pos..pos + n]);
                dec.commit(n);
            }
            pos += n;
            while let Some(f) = dec.next_frame().unwrap() {
                prop_assert_eq!(f.payload.as_ptr() as usize % 16, 0);
                got.push(f.message().unwrap().to_message().unwrap());
            }
        }
        prop_assert_eq!(got, msgs);
    }
}

#[test]
fn misaligned_payload_is_an_error_not_ub() {
    let bytes = encode_one(
        &Heartbeat {
            role: 1,
            priority: 2,
            sent_at_ms: 3,
        }
        .into(),
        Integrity::Crc32c,
    );
    let plen = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut buf = rkyv::util::AlignedVec::<16>::new();
    buf.extend_from_slice(&[0]);
    buf.extend_from_slice(&bytes[48..48 + plen]);
    let e = MessageRef::access(MessageKind::Heartbeat, &buf[1..]).unwrap_err();
    assert_eq!(e.kind_name(), "invalid_payload");
    // The same bytes aligned are fine.
    let mut ok = rkyv::util::AlignedVec::<16>::new();
    ok.extend_from_slice(&bytes[48..48 + plen]);
    assert!(MessageRef::access(MessageKind::Heartbeat, &ok).is_ok());
}
