//! Decoding: a bounded, 16-aligned receive buffer and in-place frames.

use crate::error::DecodeError;
use crate::frame::{FrameHeader, HEADER_LEN, Integrity, TagState};
use crate::messages::MessageRef;
use rkyv::util::AlignedVec;

/// Extra room beyond one maximal frame, so a socket read can always pull a
/// useful amount even while a large frame is pending.
pub const READ_CHUNK: usize = 256 << 10;

/// One complete frame, borrowed from the decoder's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The checked header.
    pub header: FrameHeader,
    /// Exactly `header.payload_len` bytes, 16-aligned.
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Validates the payload as the archive its kind names (bytecheck) and
    /// borrows it in place.
    pub fn message(&self) -> Result<MessageRef<'a>, DecodeError> {
        MessageRef::access(self.header.kind, self.payload)
    }
}

/// Splits a byte stream into frames, checking every header before buffering
/// the payload it announces and never holding more than
/// `max_frame_len + READ_CHUNK` bytes.
#[derive(Debug)]
pub struct FrameDecoder {
    /// Storage; `len()` is the usable size (zero-initialised, no unsafe).
    buf: AlignedVec<16>,
    /// Start of unconsumed bytes (always a multiple of 16).
    start: usize,
    /// End of received bytes.
    end: usize,
    /// Total length of the frame at `start`, once its header is known.
    need: usize,
    max_frame_len: usize,
    tag: TagState,
    /// Set on the first error; every later call returns it.
    poisoned: Option<DecodeError>,
    /// Sequence number of the last frame returned (an encrypted stream must
    /// continue from it).
    last_seq: Option<u64>,
}

impl FrameDecoder {
    /// A decoder accepting frames up to `max_frame_len` bytes (header,
    /// payload and padding), with CRC32C integrity.
    pub fn new(max_frame_len: usize) -> Self {
        Self {
            buf: AlignedVec::new(),
            start: 0,
            end: 0,
            need: 0,
            max_frame_len,
            tag: TagState::new(&Integrity::Crc32c, None),
            poisoned: None,
            last_seq: None,
        }
    }

    /// Switches integrity for frames not yet returned.
    pub fn set_integrity(&mut self, integrity: Integrity) {
        self.tag = TagState::new(&integrity, self.last_seq);
    }

    /// The configured maximum frame length.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Hard cap on the buffer size.
    fn cap_limit(&self) -> usize {
        self.max_frame_len.saturating_add(READ_CHUNK)
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Current buffer allocation (for tests and memory accounting).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The error that poisoned the decoder, if any.
    pub fn error(&self) -> Option<&DecodeError> {
        self.poisoned.as_ref()
    }

    /// Moves unconsumed bytes to the buffer start so payloads stay aligned
    /// and the spare space is contiguous.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        if self.start != self.end {
            self.buf.as_mut_slice().copy_within(self.start..self.end, 0);
        }
        self.end -= self.start;
        self.start = 0;
    }

    /// Spare space to read a socket into; follow with [`Self::commit`].
    ///
    /// Compacts first, and grows the buffer only as far as the pending frame
    /// needs (bounded by `max_frame_len + READ_CHUNK`). May be empty when a
    /// complete frame is buffered: call [`Self::next_frame`] first.
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.compact();
        let target = if self.buf.is_empty() {
            READ_CHUNK.min(self.cap_limit())
        } else if self.need > self.buf.len() {
            self.need.saturating_add(READ_CHUNK).min(self.cap_limit())
        } else {
            self.buf.len()
        };
        if target > self.buf.len() {
            self.buf.reserve_exact(target - self.buf.len());
            self.buf.resize(target, 0);
        }
        &mut self.buf.as_mut_slice()[self.end..]
    }

    /// Marks `n` bytes of the last [`Self::read_buf`] as received.
    ///
    /// # Panics
    /// If `n` exceeds the slice `read_buf` returned (a caller bug, not a
    /// peer fault).
    pub fn commit(&mut self, n: usize) {
        assert!(
            n <= self.buf.len() - self.end,
            "commit({n}) beyond read_buf space"
        );
        self.end += n;
    }

    /// Copies `data` in (convenience for tests and non-socket sources).
    ///
    /// Fails with [`DecodeError::BufferFull`], consuming nothing, if the data
    /// does not fit the bounded buffer: drain frames and feed the rest.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), DecodeError> {
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        self.compact();
        if self.end + data.len() > self.cap_limit().max(self.buf.len()) {
            return Err(DecodeError::BufferFull { len: data.len() });
        }
        let want = self.end + data.len();
        if want > self.buf.len() {
            self.buf.reserve_exact(want - self.buf.len());
            self.buf.resize(want, 0);
        }
        while !data.is_empty() {
            let spare = self.read_buf();
            let n = spare.len().min(data.len());
            spare[..n].copy_from_slice(&data[..n]);
            self.commit(n);
            data = &data[n..];
        }
        Ok(())
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    ///
    /// The header is checked (magic, version, channel, kind, reserved, kind
    /// vs channel, length bound) as soon as its 48 bytes are in, before any
    /// room for the payload is made; then the tag and the padding once the
    /// whole frame is in. The payload archive is validated by
    /// [`Frame::message`].
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, DecodeError> {
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        match self.check_next() {
            Ok(None) => Ok(None),
            Ok(Some(header)) => {
                let p = self.start + HEADER_LEN;
                let total = self.need;
                self.start += total;
                self.need = 0;
                self.last_seq = Some(header.seq);
                let payload = &self.buf.as_slice()[p..p + header.payload_len as usize];
                Ok(Some(Frame { header, payload }))
            }
            Err(e) => {
                self.poisoned = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Checks the frame at `start`; `Some(header)` when it is complete and
    /// valid (its length left in `self.need`).
    fn check_next(&mut self) -> Result<Option<FrameHeader>, DecodeError> {
        if self.buffered() < HEADER_LEN {
            return Ok(None);
        }
        let mut hbytes = [0u8; HEADER_LEN];
        hbytes.copy_from_slice(&self.buf.as_slice()[self.start..self.start + HEADER_LEN]);
        let header = FrameHeader::parse(&hbytes)?;
        let len = header.frame_len();
        if len > self.max_frame_len as u64 {
            return Err(DecodeError::FrameTooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        if !header.kind.allowed_on(header.channel) {
            return Err(DecodeError::KindChannelMismatch {
                kind: header.kind,
                channel: header.channel,
            });
        }
        // Bounded by max_frame_len, which is a usize.
        let len = len as usize;
        self.need = len;
        if self.buffered() < len {
            return Ok(None);
        }
        let frame = &mut self.buf.as_mut_slice()[self.start..self.start + len];
        let payload_end = HEADER_LEN + header.payload_len as usize;
        if frame[payload_end..].iter().any(|&b| b != 0) {
            return Err(DecodeError::ReservedNonZero);
        }
        self.tag
            .open(&header, &hbytes, &mut frame[HEADER_LEN..payload_end])?;
        Ok(Some(header))
    }
}
