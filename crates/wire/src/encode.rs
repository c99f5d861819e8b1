//! Encoding: one message into one padded frame appended to a caller buffer.

use crate::error::EncodeError;
use crate::frame::{
    Channel, DEFAULT_MAX_FRAME_LEN, FrameHeader, HEADER_LEN, Integrity, PROTOCOL_VERSION, TagState,
    padded_len,
};
use crate::messages::WireMessage;
use rkyv::rancor::{Error as RkyvError, Source};
use rkyv::ser::allocator::Arena;
use rkyv::ser::{Positional, Writer};

/// rkyv writer that appends straight into the caller's output buffer, with
/// positions relative to the payload start, and refuses to grow past the
/// frame budget (so an oversized message never allocates past the bound).
#[doc(hidden)]
#[derive(Debug)]
pub struct PayloadWriter<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    limit: usize,
    overflowed: bool,
}

impl Positional for PayloadWriter<'_> {
    fn pos(&self) -> usize {
        self.out.len() - self.start
    }
}

impl<E: Source> Writer<E> for PayloadWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), E> {
        if self.pos() + bytes.len() > self.limit {
            self.overflowed = true;
            return Err(E::new(Overflow));
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }
}

/// Error handed to rkyv when the frame budget is exceeded.
#[derive(Debug)]
struct Overflow;

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("frame budget exceeded")
    }
}

impl std::error::Error for Overflow {}

/// Encodes messages into frames. Holds scratch reused across calls so the
/// steady state does not allocate (given `out` has capacity).
pub struct FrameEncoder {
    arena: Arena,
    tag: TagState,
    max_frame_len: usize,
    /// Sequence number of the last frame encoded (an encrypted stream
    /// continues from it and never reuses one).
    last_seq: Option<u64>,
}

impl std::fmt::Debug for FrameEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameEncoder")
            .field("tag", &self.tag)
            .field("max_frame_len", &self.max_frame_len)
            .finish_non_exhaustive()
    }
}

impl Default for FrameEncoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl FrameEncoder {
    /// An encoder with CRC32C integrity producing frames of at most
    /// `max_frame_len` bytes (use the peer decoder's bound).
    pub fn new(max_frame_len: usize) -> Self {
        Self {
            arena: Arena::new(),
            tag: TagState::new(&Integrity::Crc32c, None),
            max_frame_len,
            last_seq: None,
        }
    }

    /// Switches integrity for the following frames (e.g. to HMAC once the
    /// session key is agreed).
    pub fn set_integrity(&mut self, integrity: Integrity) {
        self.tag = TagState::new(&integrity, self.last_seq);
    }

    /// The configured maximum frame length.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Appends one complete padded frame carrying `msg` to `out` and returns
    /// the bytes appended. On error `out` is left as it was.
    ///
    /// `out.len()` should be a multiple of 16 so that a buffer of several
    /// frames keeps every payload aligned; the frame itself does not depend
    /// on it.
    pub fn encode<M: WireMessage>(
        &mut self,
        channel: Channel,
        seq: u64,
        msg: &M,
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeError> {
        if !M::KIND.allowed_on(channel) {
            return Err(EncodeError::KindChannelMismatch {
                kind: M::KIND,
                channel,
            });
        }
        let max = self.max_frame_len;
        if max < HEADER_LEN {
            return Err(EncodeError::TooLarge { max });
        }
        let frame_start = out.len();
        out.resize(frame_start + HEADER_LEN, 0);
        let payload_start = out.len();
        // The payload may use what is left after the header and padding; the
        // padding rounds up, so the budget is rounded down to 16.
        let limit = (max - HEADER_LEN) & !15;
        let mut w = PayloadWriter {
            out,
            start: payload_start,
            limit: limit.min(u32::MAX as usize),
            overflowed: false,
        };
        let res = msg.serialize_payload(&mut w, &mut self.arena);
        let overflowed = w.overflowed;
        if let Err(e) = res {
            out.truncate(frame_start);
            return Err(if overflowed {
                EncodeError::TooLarge { max }
            } else {
                EncodeError::Serialize {
                    detail: RkyvError::to_string(&e),
                }
            });
        }
        let payload_len = out.len() - payload_start;
        let total = padded_len((HEADER_LEN + payload_len) as u64) as usize;
        let mut header = FrameHeader {
            version: PROTOCOL_VERSION,
            channel,
            kind: M::KIND,
            flags: self.tag.flags(),
            // Bounded by `limit`, itself clamped to u32::MAX above.
            payload_len: payload_len as u32,
            seq,
            tag: [0; 16],
        };
        let mut hbytes = [0u8; HEADER_LEN];
        header.write(&mut hbytes);
        header.tag = match self.tag.seal(seq, &hbytes, &mut out[payload_start..]) {
            Ok(tag) => tag,
            Err(e) => {
                out.truncate(frame_start);
                return Err(e);
            }
        };
        header.write(&mut hbytes);
        self.last_seq = Some(seq);
        out[frame_start..payload_start].copy_from_slice(&hbytes);
        out.resize(frame_start + total, 0);
        Ok(total)
    }
}
