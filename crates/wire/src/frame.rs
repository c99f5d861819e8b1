//! The 48-byte frame header, channels, message kinds and the integrity tag.

use crate::aead::FrameCipher;
use crate::error::{DecodeError, EncodeError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// First four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"HSYN";
/// Version of the header and of every archived layout. Any change to either
/// is a bump (the golden tests fail until it happens).
pub const PROTOCOL_VERSION: u16 = 3;
/// Length of the fixed frame header.
pub const HEADER_LEN: usize = 48;
/// Every frame's total length is a multiple of this, so payloads stay
/// 16-aligned in a 16-aligned receive buffer and can be read in place.
pub const FRAME_ALIGN: usize = 16;
/// Default bound on one frame (header + payload + padding).
pub const DEFAULT_MAX_FRAME_LEN: usize = 4 << 20;
/// Header flag: the tag is a truncated HMAC-SHA256, not a CRC32C.
pub const FLAG_MAC: u16 = 1;
/// Header flag: the payload is AES-256-GCM ciphertext and the tag is the GCM
/// tag (see [`crate::aead`]).
pub const FLAG_AEAD: u16 = 2;
/// Flag bits this version defines; any other bit set is rejected.
const KNOWN_FLAGS: u16 = FLAG_MAC | FLAG_AEAD;

/// Where each header field lies (smoltcp's style: one place names every
/// offset; `docs/PROTOCOL.md` has the same table). Integers are
/// little-endian.
pub mod field {
    /// A byte range of the header.
    pub type Field = std::ops::Range<usize>;

    /// `b"HSYN"`.
    pub const MAGIC: Field = 0..4;
    /// Protocol version, u16.
    pub const VERSION: Field = 4..6;
    /// Channel, one byte.
    pub const CHANNEL: usize = 6;
    /// Message kind, one byte.
    pub const KIND: usize = 7;
    /// Flag bits, u16.
    pub const FLAGS: Field = 8..10;
    /// Reserved, zero.
    pub const RESERVED: Field = 10..12;
    /// Payload length, u32.
    pub const PAYLOAD_LEN: Field = 12..16;
    /// Sequence number, u64.
    pub const SEQ: Field = 16..24;
    /// Tag: CRC32C, truncated HMAC-SHA256 or GCM tag (zero while it is
    /// computed).
    pub const TAG: Field = 24..40;
    /// Reserved, zero, up to the header's end.
    pub const RESERVED_END: Field = 40..super::HEADER_LEN;
}

#[cfg(test)]
mod field_tests {
    use super::{HEADER_LEN, field};

    #[test]
    fn the_fields_tile_the_header_in_order() {
        let one = |i: usize| i..i + 1;
        let fields = [
            field::MAGIC,
            field::VERSION,
            one(field::CHANNEL),
            one(field::KIND),
            field::FLAGS,
            field::RESERVED,
            field::PAYLOAD_LEN,
            field::SEQ,
            field::TAG,
            field::RESERVED_END,
        ];
        let mut at = 0;
        for f in fields {
            assert_eq!(f.start, at, "{f:?}");
            at = f.end;
        }
        assert_eq!(at, HEADER_LEN);
    }
}

/// The header's bytes in `range` as an array (the ranges above have
/// constant lengths, so `N` always matches).
fn bytes<const N: usize>(b: &[u8; HEADER_LEN], range: field::Field) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[range]);
    out
}

/// Rounds a frame length up to [`FRAME_ALIGN`].
pub(crate) const fn padded_len(len: u64) -> u64 {
    (len + (FRAME_ALIGN as u64 - 1)) & !(FRAME_ALIGN as u64 - 1)
}

/// Logical stream a frame belongs to. Session and config traffic ride separate
/// connections so config never delays sessions (invariant 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[repr(u8)]
pub enum Channel {
    /// Connection-level control.
    Control = 0,
    /// Session (connection-status) replication.
    Session = 1,
    /// Configuration replication.
    Config = 2,
}

impl Channel {
    /// Decodes the header byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Control,
            1 => Self::Session,
            2 => Self::Config,
            _ => return None,
        })
    }
}

macro_rules! kinds {
    ($($(#[$m:meta])* $name:ident = $v:literal,)*) => {
        /// Which message a frame's payload archives.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum MessageKind {
            $($(#[$m])* $name = $v,)*
        }

        impl MessageKind {
            /// Every kind, in numeric order.
            pub const ALL: &'static [MessageKind] = &[$(Self::$name,)*];

            /// Decodes the header byte.
            pub fn from_u8(v: u8) -> Option<Self> {
                match v {
                    $($v => Some(Self::$name),)*
                    _ => None,
                }
            }
        }
    };
}

kinds! {
    /// [`crate::Hello`].
    Hello = 1,
    /// [`crate::AuthProof`].
    AuthProof = 2,
    /// [`crate::Heartbeat`].
    Heartbeat = 3,
    /// [`crate::Ack`].
    Ack = 4,
    /// [`crate::Close`].
    Close = 5,
    /// [`crate::SessionUpsertBatch`].
    SessionUpsertBatch = 16,
    /// [`crate::SessionDeleteBatch`].
    SessionDeleteBatch = 17,
    /// [`crate::ResyncStart`].
    ResyncStart = 18,
    /// [`crate::ResyncEnd`].
    ResyncEnd = 19,
    /// [`crate::ResyncRequest`].
    ResyncRequest = 20,
    /// [`crate::BatchStart`].
    BatchStart = 24,
    /// [`crate::BatchProgress`].
    BatchProgress = 25,
    /// [`crate::BatchEnd`].
    BatchEnd = 26,
    /// [`crate::ConfigItemBatch`].
    ConfigItemBatch = 32,
    /// [`crate::ConfigOp`].
    ConfigOp = 33,
    /// [`crate::ConfigBatchResult`].
    ConfigBatchResult = 34,
}

impl MessageKind {
    /// Whether this kind may travel on `channel`.
    ///
    /// Connection-level messages (hello, auth, heartbeat, ack, close) go on
    /// any channel; session data only on the session channel; config data
    /// only on the config channel; batch-job markers on either data channel.
    pub fn allowed_on(self, channel: Channel) -> bool {
        use MessageKind::*;
        match self {
            Hello | AuthProof | Heartbeat | Ack | Close => true,
            SessionUpsertBatch | SessionDeleteBatch | ResyncStart | ResyncEnd | ResyncRequest => {
                channel == Channel::Session
            }
            ConfigItemBatch | ConfigOp | ConfigBatchResult => channel == Channel::Config,
            BatchStart | BatchProgress | BatchEnd => channel != Channel::Control,
        }
    }
}

/// The parsed fixed header of one frame (all integers little-endian on the
/// wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Protocol version; always [`PROTOCOL_VERSION`] once parsed.
    pub version: u16,
    /// Logical channel.
    pub channel: Channel,
    /// Message kind of the payload.
    pub kind: MessageKind,
    /// Flag bits ([`FLAG_MAC`]).
    pub flags: u16,
    /// Exact length of the rkyv archive that follows.
    pub payload_len: u32,
    /// Per-channel sequence number (what [`crate::Ack`] acknowledges).
    pub seq: u64,
    /// CRC32C (first 4 bytes, LE) or truncated HMAC-SHA256.
    pub tag: [u8; 16],
}

impl FrameHeader {
    /// Parses and checks the header fields that need no payload: magic,
    /// version, channel, kind, flags and reserved bytes. The length bound and
    /// the tag are checked by the decoder.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Result<FrameHeader, DecodeError> {
        let magic = bytes(b, field::MAGIC);
        if magic != MAGIC {
            return Err(DecodeError::BadMagic { got: magic });
        }
        let version = u16::from_le_bytes(bytes(b, field::VERSION));
        if version != PROTOCOL_VERSION {
            return Err(DecodeError::UnsupportedVersion { got: version });
        }
        let (channel, kind) = (b[field::CHANNEL], b[field::KIND]);
        let channel =
            Channel::from_u8(channel).ok_or(DecodeError::UnknownChannel { got: channel })?;
        let kind = MessageKind::from_u8(kind).ok_or(DecodeError::UnknownKind { got: kind })?;
        let flags = u16::from_le_bytes(bytes(b, field::FLAGS));
        if flags & !KNOWN_FLAGS != 0
            || flags == FLAG_MAC | FLAG_AEAD
            || b[field::RESERVED].iter().any(|&x| x != 0)
            || b[field::RESERVED_END].iter().any(|&x| x != 0)
        {
            return Err(DecodeError::ReservedNonZero);
        }
        Ok(FrameHeader {
            version,
            channel,
            kind,
            flags,
            payload_len: u32::from_le_bytes(bytes(b, field::PAYLOAD_LEN)),
            seq: u64::from_le_bytes(bytes(b, field::SEQ)),
            tag: bytes(b, field::TAG),
        })
    }

    /// Writes the header (reserved bytes zero).
    pub fn write(&self, out: &mut [u8; HEADER_LEN]) {
        out[field::MAGIC].copy_from_slice(&MAGIC);
        out[field::VERSION].copy_from_slice(&self.version.to_le_bytes());
        out[field::CHANNEL] = self.channel as u8;
        out[field::KIND] = self.kind as u8;
        out[field::FLAGS].copy_from_slice(&self.flags.to_le_bytes());
        out[field::RESERVED].fill(0);
        out[field::PAYLOAD_LEN].copy_from_slice(&self.payload_len.to_le_bytes());
        out[field::SEQ].copy_from_slice(&self.seq.to_le_bytes());
        out[field::TAG].copy_from_slice(&self.tag);
        out[field::RESERVED_END].fill(0);
    }

    /// Whether the tag is an HMAC.
    pub fn has_mac(&self) -> bool {
        self.flags & FLAG_MAC != 0
    }

    /// Whether the payload is encrypted (the tag is an AEAD tag).
    pub fn is_encrypted(&self) -> bool {
        self.flags & FLAG_AEAD != 0
    }

    /// Total bytes of the frame on the wire, padding included.
    pub fn frame_len(&self) -> u64 {
        padded_len(HEADER_LEN as u64 + u64::from(self.payload_len))
    }
}

/// How frames are protected. The key never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub enum Integrity {
    /// CRC32C: detects corruption only. Used before keys are agreed or on
    /// trusted links.
    Crc32c,
    /// HMAC-SHA256 under a 32-byte key, truncated to 16 bytes: detects
    /// tampering.
    Hmac([u8; 32]),
    /// AES-256-GCM under a 32-byte key of one connection and one direction:
    /// hides the payload and detects tampering, replay and reordering.
    Aead([u8; 32]),
}

impl fmt::Debug for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Crc32c => f.write_str("Crc32c"),
            Self::Hmac(_) => f.write_str("Hmac(<redacted>)"),
            Self::Aead(_) => f.write_str("Aead(<redacted>)"),
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

/// Keys HMAC-SHA256 without a fallible call: HMAC zero-pads keys shorter than
/// the 64-byte block, so padding the 32-byte key ourselves is the same key.
fn keyed_hmac(key: &[u8; 32]) -> HmacSha256 {
    let mut block = hmac::digest::generic_array::GenericArray::default();
    block[..32].copy_from_slice(key);
    <HmacSha256 as hmac::digest::KeyInit>::new(&block)
}

/// Keyed state ready to tag or verify: the HMAC is keyed once and cloned per
/// frame so the hot path does not rehash the key; the AEAD key is expanded
/// once and remembers the last sequence number it sealed or opened.
pub(crate) enum TagState {
    Crc32c,
    Hmac(Box<HmacSha256>),
    Aead(Box<FrameCipher>),
}

impl fmt::Debug for TagState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Crc32c => f.write_str("Crc32c"),
            Self::Hmac(_) => f.write_str("Hmac(<redacted>)"),
            Self::Aead(_) => f.write_str("Aead(<redacted>)"),
        }
    }
}

impl TagState {
    /// `last_seq` is the last sequence number the stream carried before
    /// this state takes over: an encrypted stream continues from it.
    pub(crate) fn new(integrity: &Integrity, last_seq: Option<u64>) -> Self {
        match integrity {
            Integrity::Crc32c => Self::Crc32c,
            Integrity::Hmac(key) => Self::Hmac(Box::new(keyed_hmac(key))),
            Integrity::Aead(key) => Self::Aead(Box::new(FrameCipher::new(key, last_seq))),
        }
    }

    /// Flag bits frames produced under this state carry.
    pub(crate) fn flags(&self) -> u16 {
        match self {
            Self::Crc32c => 0,
            Self::Hmac(_) => FLAG_MAC,
            Self::Aead(_) => FLAG_AEAD,
        }
    }

    /// Protects one outgoing frame: `header` is the frame's header with a zero
    /// tag; the returned tag goes into it. An AEAD state encrypts `payload`
    /// in place and refuses a sequence number it has already used.
    pub(crate) fn seal(
        &mut self,
        seq: u64,
        header: &[u8; HEADER_LEN],
        payload: &mut [u8],
    ) -> Result<[u8; 16], EncodeError> {
        let mut tag = [0u8; 16];
        match self {
            Self::Crc32c => {
                let crc = crc32c::crc32c_append(crc32c::crc32c(header), payload);
                tag[..4].copy_from_slice(&crc.to_le_bytes());
            }
            Self::Hmac(m) => {
                let mut m = (**m).clone();
                m.update(header);
                m.update(payload);
                tag.copy_from_slice(&m.finalize().into_bytes()[..16]);
            }
            Self::Aead(c) => tag = c.seal(seq, header, payload)?,
        }
        Ok(tag)
    }

    /// Checks a received frame's tag (and decrypts an AEAD payload in place).
    /// `header` is the raw header as received.
    pub(crate) fn open(
        &mut self,
        h: &FrameHeader,
        header: &[u8; HEADER_LEN],
        payload: &mut [u8],
    ) -> Result<(), DecodeError> {
        let mut zeroed = *header;
        zeroed[field::TAG].fill(0);
        match self {
            Self::Crc32c => {
                if h.is_encrypted() {
                    return Err(DecodeError::UnexpectedEncryption);
                }
                if h.has_mac() {
                    return Err(DecodeError::UnexpectedMac);
                }
                let crc = crc32c::crc32c_append(crc32c::crc32c(&zeroed), payload);
                let mut want = [0u8; 16];
                want[..4].copy_from_slice(&crc.to_le_bytes());
                if want != h.tag {
                    return Err(DecodeError::BadChecksum);
                }
            }
            Self::Hmac(m) => {
                if h.is_encrypted() {
                    return Err(DecodeError::UnexpectedEncryption);
                }
                if !h.has_mac() {
                    return Err(DecodeError::MissingMac);
                }
                let mut m = (**m).clone();
                m.update(&zeroed);
                m.update(payload);
                // Constant-time comparison of the leftmost 16 bytes.
                m.verify_truncated_left(&h.tag)
                    .map_err(|_| DecodeError::BadMac)?;
            }
            Self::Aead(c) => {
                if !h.is_encrypted() {
                    return Err(DecodeError::NotEncrypted);
                }
                c.open(h.seq, &zeroed, payload, &h.tag)?;
            }
        }
        Ok(())
    }
}
