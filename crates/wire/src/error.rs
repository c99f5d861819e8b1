//! Typed errors. Every failure caused by peer bytes maps to one
//! [`DecodeError`] variant so the caller can count it and drop the connection.

use crate::frame::{Channel, MessageKind};

/// Why a received byte stream was rejected.
///
/// After any of these (except [`DecodeError::BufferFull`]) the
/// [`FrameDecoder`](crate::FrameDecoder) is poisoned: the stream position is
/// unknown, so the connection must be dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The first four bytes of a header are not `b"HSYN"`: not our protocol,
    /// or the stream lost framing.
    #[error("bad frame magic {got:02x?}")]
    BadMagic {
        /// The four bytes found.
        got: [u8; 4],
    },
    /// The peer speaks another protocol version; archived layouts differ.
    #[error(
        "unsupported protocol version {got} (this build speaks {})",
        crate::PROTOCOL_VERSION
    )]
    UnsupportedVersion {
        /// The version in the header.
        got: u16,
    },
    /// The channel byte names no known channel.
    #[error("unknown channel {got}")]
    UnknownChannel {
        /// The channel byte.
        got: u8,
    },
    /// The kind byte names no known message.
    #[error("unknown message kind {got}")]
    UnknownKind {
        /// The kind byte.
        got: u8,
    },
    /// A reserved header field, an undefined flag bit or the frame padding is
    /// not zero; refusing keeps those bits free for future versions.
    #[error("reserved bits or padding not zero")]
    ReservedNonZero,
    /// The header announces a frame larger than the configured maximum;
    /// detected before any byte of the payload is buffered.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// Total frame length the header implies (header + payload + padding).
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// The message kind may not travel on this channel (e.g. a session batch
    /// on the config channel).
    #[error("{kind:?} is not allowed on the {channel:?} channel")]
    KindChannelMismatch {
        /// The message kind.
        kind: MessageKind,
        /// The channel it arrived on.
        channel: Channel,
    },
    /// The CRC32C tag does not match: corruption on the path.
    #[error("frame checksum mismatch")]
    BadChecksum,
    /// The HMAC tag does not match: wrong key or tampering.
    #[error("frame MAC mismatch")]
    BadMac,
    /// HMAC integrity is required but the frame carries only a checksum.
    #[error("frame has no MAC but one is required")]
    MissingMac,
    /// The frame carries a MAC but this decoder has no key to check it.
    #[error("frame has a MAC but no key is configured")]
    UnexpectedMac,
    /// The payload failed rkyv/bytecheck validation for its kind.
    #[error("invalid {kind:?} payload: {detail}")]
    InvalidPayload {
        /// The kind from the header.
        kind: MessageKind,
        /// What bytecheck reported.
        detail: String,
    },
    /// A session record in a valid archive is structurally invalid (a family
    /// other than IPv4/IPv6, non-zero bytes where the format has none). The
    /// whole batch is refused before any of it is applied.
    #[error("invalid session record {index} in {kind:?}: {reason}")]
    InvalidRecord {
        /// The kind from the header.
        kind: MessageKind,
        /// Position of the record in its list.
        index: usize,
        /// What is wrong with it.
        reason: crate::RecordError,
    },
    /// [`FrameDecoder::feed`](crate::FrameDecoder::feed) was given more bytes
    /// than the bounded buffer can hold; drain frames first. Not a peer fault:
    /// nothing was consumed and the decoder is not poisoned.
    #[error("decoder buffer full: {len} bytes do not fit")]
    BufferFull {
        /// Bytes offered.
        len: usize,
    },
}

impl DecodeError {
    /// A stable short label, used as a counter key by the caller.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::BadMagic { .. } => "bad_magic",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::UnknownChannel { .. } => "unknown_channel",
            Self::UnknownKind { .. } => "unknown_kind",
            Self::ReservedNonZero => "reserved_nonzero",
            Self::FrameTooLarge { .. } => "frame_too_large",
            Self::KindChannelMismatch { .. } => "kind_channel_mismatch",
            Self::BadChecksum => "bad_checksum",
            Self::BadMac => "bad_mac",
            Self::MissingMac => "missing_mac",
            Self::UnexpectedMac => "unexpected_mac",
            Self::InvalidPayload { .. } => "invalid_payload",
            Self::InvalidRecord { .. } => "invalid_record",
            Self::BufferFull { .. } => "buffer_full",
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The frame would exceed the encoder's maximum frame length (which must
    /// not exceed the peer decoder's); split the batch.
    #[error("frame would exceed the maximum of {max} bytes")]
    TooLarge {
        /// The configured maximum frame length.
        max: usize,
    },
    /// The message kind may not travel on this channel.
    #[error("{kind:?} is not allowed on the {channel:?} channel")]
    KindChannelMismatch {
        /// The message kind.
        kind: MessageKind,
        /// The requested channel.
        channel: Channel,
    },
    /// rkyv reported an error while serializing (not expected for these
    /// types; kept so no path panics).
    #[error("serialization failed: {detail}")]
    Serialize {
        /// rkyv's message.
        detail: String,
    },
}
