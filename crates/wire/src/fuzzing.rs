//! Fuzz target logic, kept in the library so the committed corpus is replayed
//! by ordinary tests (`tests/corpus_replay.rs`) without a fuzzer.

use crate::{Channel, DecodeError, FrameDecoder, FrameEncoder, Integrity, MessageRef};

/// Key used when a fuzz input asks for HMAC integrity.
pub const FUZZ_KEY: [u8; 32] = [0x5a; 32];

/// Frame limit used by [`frame_decode`]: small, so the too-large path is
/// reachable by small inputs.
pub const FUZZ_MAX_FRAME_LEN: usize = 64 << 10;

/// Bytes of [`frame_decode`] input that are options, not stream.
pub const FRAME_DECODE_PREFIX: usize = 4;

/// Feeds `data[4..]` to a decoder in reads sized by `data[1..4]`, decoding
/// every frame and message. Byte 0: bit 0 selects HMAC integrity with
/// [`FUZZ_KEY`], bit 1 feeds through [`FrameDecoder::feed`] instead of
/// `read_buf`/`commit`.
///
/// Checks, beyond "never panics": every valid message re-encodes and decodes
/// to an equal message; an error poisons the decoder (the same error again).
pub fn frame_decode(data: &[u8]) {
    if data.len() < FRAME_DECODE_PREFIX {
        return;
    }
    let (opts, stream) = data.split_at(FRAME_DECODE_PREFIX);
    let integrity = if opts[0] & 1 != 0 {
        Integrity::Hmac(FUZZ_KEY)
    } else {
        Integrity::Crc32c
    };
    let use_feed = opts[0] & 2 != 0;
    let sizes = [opts[1], opts[2], opts[3]].map(|b| usize::from(b) + 1);
    let mut dec = FrameDecoder::new(FUZZ_MAX_FRAME_LEN);
    dec.set_integrity(integrity.clone());
    let mut enc = FrameEncoder::new(FUZZ_MAX_FRAME_LEN);
    enc.set_integrity(integrity.clone());

    let mut pos = 0;
    let mut i = 0;
    while pos < stream.len() {
        let want = sizes[i % sizes.len()].min(stream.len() - pos);
        i += 1;
        let n = if use_feed {
            match dec.feed(&stream[pos..pos + want]) {
                Ok(()) => want,
                Err(DecodeError::BufferFull { .. }) => return,
                Err(e) => {
                    assert_eq!(dec.next_frame().err(), Some(e), "feed error must persist");
                    return;
                }
            }
        } else {
            let buf = dec.read_buf();
            let n = want.min(buf.len());
            buf[..n].copy_from_slice(&stream[pos..pos + n]);
            dec.commit(n);
            n
        };
        assert!(
            dec.capacity() <= FUZZ_MAX_FRAME_LEN + crate::READ_CHUNK,
            "buffer over bound"
        );
        pos += n;
        if !drain(&mut dec, &mut enc, &integrity) {
            return;
        }
        if n == 0 {
            // No room and no frame: cannot happen with a bounded frame
            // length; stop rather than spin if it ever does.
            panic!("decoder made no progress");
        }
    }
}

/// Decodes every buffered frame; false once the decoder is poisoned.
fn drain(dec: &mut FrameDecoder, enc: &mut FrameEncoder, integrity: &Integrity) -> bool {
    loop {
        let frame = match dec.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => return true,
            Err(e) => {
                assert_eq!(
                    dec.next_frame().err(),
                    Some(e),
                    "decoder must stay poisoned"
                );
                return false;
            }
        };
        assert_eq!(
            frame.payload.as_ptr() as usize % 16,
            0,
            "payload not aligned"
        );
        let channel = frame.header.channel;
        let Ok(msg) = frame.message() else { continue };
        assert_eq!(msg.kind(), frame.header.kind);
        // Exercise the zero-copy iterators.
        match msg {
            MessageRef::SessionUpsertBatch(b) => {
                assert_eq!(b.iter().count(), b.len());
            }
            MessageRef::SessionDeleteBatch(b) => {
                assert_eq!(b.iter().count(), b.len());
            }
            _ => {}
        }
        let Ok(owned) = msg.to_message() else {
            panic!("validated archive failed to deserialize")
        };
        roundtrip(enc, integrity, channel, &owned);
    }
}

/// Encodes `msg`, decodes it with a fresh decoder and asserts equality.
fn roundtrip(
    enc: &mut FrameEncoder,
    integrity: &Integrity,
    channel: Channel,
    msg: &crate::Message,
) {
    let mut out = Vec::new();
    match msg.encode(enc, channel, 7, &mut out) {
        Ok(n) => assert_eq!(n, out.len()),
        Err(crate::EncodeError::TooLarge { .. }) => return,
        Err(e) => panic!("encode failed: {e}"),
    }
    let mut dec = FrameDecoder::new(enc.max_frame_len());
    dec.set_integrity(integrity.clone());
    dec.feed(&out).expect("one frame fits the decoder");
    let frame = dec
        .next_frame()
        .expect("own frame decodes")
        .expect("own frame is complete");
    assert_eq!(frame.header.seq, 7);
    assert_eq!(frame.header.channel, channel);
    assert_eq!(frame.header.kind, msg.kind());
    let decoded = frame.message();
    if let Err(crate::DecodeError::InvalidRecord { .. }) = decoded {
        assert!(
            has_invalid_record(msg),
            "a valid record was refused: {decoded:?}"
        );
        return;
    }
    let back = decoded
        .expect("own payload validates")
        .to_message()
        .expect("own payload deserializes");
    assert_eq!(&back, msg);
    assert!(matches!(dec.next_frame(), Ok(None)));
}

/// Whether `msg` is a session batch with a structurally invalid full record.
fn has_invalid_record(msg: &crate::Message) -> bool {
    match msg {
        crate::Message::SessionUpsertBatch(b) => b.full.iter().any(|r| r.check().is_err()),
        crate::Message::SessionDeleteBatch(b) => b.full.iter().any(|k| k.check().is_err()),
        _ => false,
    }
}

/// Builds a [`crate::Message`] from fuzz bytes, encodes it on a channel that
/// allows its kind, decodes it and asserts it comes back equal.
#[cfg(feature = "arbitrary")]
pub fn message_roundtrip(data: &[u8]) {
    use arbitrary::{Arbitrary, Unstructured};
    let mut u = Unstructured::new(data);
    let Ok(hmac) = bool::arbitrary(&mut u) else {
        return;
    };
    let Ok(msg) = crate::Message::arbitrary(&mut u) else {
        return;
    };
    let integrity = if hmac {
        Integrity::Hmac(FUZZ_KEY)
    } else {
        Integrity::Crc32c
    };
    let channel = [Channel::Control, Channel::Session, Channel::Config]
        .into_iter()
        .find(|c| msg.kind().allowed_on(*c))
        .expect("every kind has a channel");
    let mut enc = FrameEncoder::new(crate::DEFAULT_MAX_FRAME_LEN);
    enc.set_integrity(integrity.clone());
    roundtrip(&mut enc, &integrity, channel, &msg);
}
