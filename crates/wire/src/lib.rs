//! Frames and rkyv-archived messages between two hotsync nodes; no I/O.
//!
//! A frame is a 48-byte header, one rkyv archive of exactly `payload_len`
//! bytes, and zero padding to a multiple of 16 bytes. Because every frame is
//! a multiple of 16 and the [`FrameDecoder`] buffer is 16-aligned, every
//! payload is aligned in place and is validated (bytecheck) and read without
//! copying. See `docs/PROTOCOL.md` for the byte layout.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aead;
mod codes;
mod decode;
mod encode;
mod error;
mod fingerprint;
mod frame;
pub mod fuzzing;
mod messages;
mod records;

pub use codes::{CloseReason, ConfigOpKind, Field, InvalidCode, JobKind, Role};
pub use decode::{Frame, FrameDecoder, READ_CHUNK};
pub use encode::FrameEncoder;
pub use error::{DecodeError, EncodeError};
pub use fingerprint::{FORMAT_FINGERPRINT, RKYV_VERSION};
pub use frame::{
    Channel, DEFAULT_MAX_FRAME_LEN, FLAG_AEAD, FLAG_MAC, FRAME_ALIGN, FrameHeader, HEADER_LEN,
    Integrity, MAGIC, MessageKind, PROTOCOL_VERSION, field,
};
pub use messages::*;
pub use records::{
    ArchivedCompactKeyV4, ArchivedCompactRecordV4, ArchivedFullKey, ArchivedFullRecord,
    CompactKeyV4, CompactRecordV4, FullKey, FullRecord, RecordError,
};
