//! The messages: plain structs archived with rkyv and read in place.
//!
//! Archived structs are `repr(C)`, so field order decides padding; the record
//! types order fields by alignment to stay dense.

// rkyv's derive emits public `*Resolver` types without `Debug`; every type
// written here derives it.
#![allow(missing_debug_implementations)]

use crate::frame::{Channel, MessageKind};
use crate::records::*;
use hotsync_table::{SessionEntry, SessionKey};
use rkyv::{Archive, Deserialize, Serialize};

/// Declares a message struct with the derives every message shares.
macro_rules! message {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty,)* }) => {
        $(#[$m])*
        #[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
        #[rkyv(derive(Debug))]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub struct $name { $($(#[$fm])* pub $f: $t,)* }
    };
}

message! {
    /// First message on every connection, both ways: who the sender is and
    /// whether its build can read ours.
    pub struct Hello {
        /// [`crate::PROTOCOL_VERSION`] of the sender.
        pub protocol_version: u16,
        /// [`crate::FORMAT_FINGERPRINT`] of the sender's build.
        pub format_fingerprint: u64,
        /// Stable node id; breaks priority ties.
        pub node_id: u64,
        /// Election priority: higher becomes active.
        pub priority: u16,
        /// Capability bits.
        pub capabilities: u32,
        /// Fresh random challenge for the mutual authentication.
        pub nonce: [u8; 32],
        /// [`Channel`] this connection carries, as a byte.
        pub channel: u8,
        /// Shard count of the sender's table (must match for resync).
        pub shard_count: u32,
        /// Current role, a [`crate::Role`] code (read with `role()`).
        pub role: u8,
        /// Whether the sender preempts a lower-priority active node.
        pub preempt: bool,
        /// Random per process start: a relationship belongs to a pair of
        /// incarnations, so a peer that comes back with another one was
        /// restarted and forms a new relationship (B4).
        pub incarnation: u64,
    }
}

message! {
    /// Proof of the pre-shared key over both nonces (see `docs/PROTOCOL.md`).
    pub struct AuthProof {
        /// HMAC-SHA256 output.
        pub mac: [u8; 32],
    }
}

message! {
    /// Liveness and role announcement.
    pub struct Heartbeat {
        /// Current role, a [`crate::Role`] code (read with `role()`).
        pub role: u8,
        /// Current priority.
        pub priority: u16,
        /// Sender's clock in milliseconds (for RTT estimates only).
        pub sent_at_ms: u64,
    }
}

message! {
    /// Cumulative acknowledgement: every frame up to `seq` on `channel` has
    /// been applied.
    pub struct Ack {
        /// [`Channel`] as a byte (read with `channel(expected)`).
        pub channel: u8,
        /// Highest applied sequence number.
        pub seq: u64,
    }
}

message! {
    /// Start of a background batch job (B6).
    pub struct BatchStart {
        /// Job id chosen by the sender.
        pub job_id: u64,
        /// A [`crate::JobKind`] code: 0 sessions, 1 config (read with
        /// `what()`).
        pub what: u8,
        /// Items the job expects to send.
        pub total: u64,
    }
}

message! {
    /// Progress of a batch job.
    pub struct BatchProgress {
        /// Job id.
        pub job_id: u64,
        /// Items sent so far.
        pub sent: u64,
    }
}

message! {
    /// End of a batch job.
    pub struct BatchEnd {
        /// Job id.
        pub job_id: u64,
        /// Items sent in total.
        pub sent: u64,
    }
}

message! {
    /// A full resync of one shard begins; upserts until the matching end
    /// replace the peer's view of the shard.
    pub struct ResyncStart {
        /// Shard index.
        pub shard: u32,
        /// Resync epoch, so a stale end is not mistaken for the current one.
        pub epoch: u32,
    }
}

message! {
    /// A full resync of one shard is complete.
    pub struct ResyncEnd {
        /// Shard index.
        pub shard: u32,
        /// Epoch from the matching start.
        pub epoch: u32,
    }
}

message! {
    /// Receiver asks for these shards to be resynced (its view is uncertain).
    pub struct ResyncRequest {
        /// Shard indices.
        pub shards: Vec<u32>,
    }
}

message! {
    /// One configuration item of a batch sync.
    pub struct ConfigItem {
        /// Virtual system name.
        pub vsys: String,
        /// The item's VRP text block.
        pub text: String,
    }
}

message! {
    /// A batch of configuration items (B1).
    pub struct ConfigItemBatch {
        /// Job id from [`BatchStart`].
        pub job_id: u64,
        /// The items.
        pub items: Vec<ConfigItem>,
    }
}

message! {
    /// One incremental configuration change (B3).
    pub struct ConfigOp {
        /// A [`crate::ConfigOpKind`] code: 0 add, 1 modify, 2 delete (read
        /// with `op()`).
        pub op: u8,
        /// Virtual system name.
        pub vsys: String,
        /// The item's VRP text block.
        pub text: String,
    }
}

message! {
    /// The receiver's verdict on a config batch job (B5, B7).
    pub struct ConfigBatchResult {
        /// Job id.
        pub job_id: u64,
        /// Items added.
        pub added: u64,
        /// Items already present and equal.
        pub equal: u64,
        /// Items present with other parameters (reported, not applied).
        pub conflicts: u64,
        /// Items refused (parse errors, excluded kinds).
        pub rejected: u64,
    }
}

message! {
    /// Orderly close with a reason.
    pub struct Close {
        /// A [`crate::CloseReason`] code (read with `reason()`).
        pub reason: u16,
        /// Human-readable detail.
        pub detail: String,
    }
}

message! {
    /// Inserted or updated sessions. Records that fit the compact IPv4 form
    /// go in `compact_v4`, the rest in `full`; order is kept within each list.
    pub struct SessionUpsertBatch {
        /// Compact IPv4 records.
        pub compact_v4: Vec<CompactRecordV4>,
        /// General records.
        pub full: Vec<FullRecord>,
    }
}

message! {
    /// Removed sessions, same split as [`SessionUpsertBatch`].
    pub struct SessionDeleteBatch {
        /// Compact IPv4 keys.
        pub compact_v4: Vec<CompactKeyV4>,
        /// General keys.
        pub full: Vec<FullKey>,
    }
}

impl SessionUpsertBatch {
    /// Empties the batch, keeping the allocations for the next one.
    pub fn clear(&mut self) {
        self.compact_v4.clear();
        self.full.clear();
    }

    /// Adds a session in the compact form when that is lossless, else in
    /// the full form.
    pub fn push(&mut self, k: &SessionKey, e: &SessionEntry) {
        match CompactRecordV4::from_session(k, e) {
            Some(c) => self.compact_v4.push(c),
            None => self.full.push(FullRecord::from_session(k, e)),
        }
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.compact_v4.len() + self.full.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Archived bytes the records take (excluding the fixed root), for
    /// callers that fill a batch up to a frame budget.
    pub fn encoded_records_len(&self) -> usize {
        self.compact_v4.len() * size_of::<ArchivedCompactRecordV4>()
            + self.full.len() * size_of::<ArchivedFullRecord>()
    }
}

impl ArchivedSessionUpsertBatch {
    /// Every record as table types: compact ones first, then full ones, each
    /// list in the sender's order. No deserialization, no allocation.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (SessionKey, SessionEntry)> + '_ {
        let compact = self
            .compact_v4
            .iter()
            .map(ArchivedCompactRecordV4::to_session);
        let full = self.full.iter().map(ArchivedFullRecord::to_session);
        ChainExact::new(compact, full)
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.compact_v4.len() + self.full.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SessionDeleteBatch {
    /// Empties the batch, keeping the allocations.
    pub fn clear(&mut self) {
        self.compact_v4.clear();
        self.full.clear();
    }

    /// Adds a key in the compact form when lossless, else the full form.
    pub fn push(&mut self, k: &SessionKey) {
        match CompactKeyV4::from_key(k) {
            Some(c) => self.compact_v4.push(c),
            None => self.full.push(FullKey::from_key(k)),
        }
    }

    /// Keys in the batch.
    pub fn len(&self) -> usize {
        self.compact_v4.len() + self.full.len()
    }

    /// Whether the batch holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Archived bytes the keys take (excluding the fixed root).
    pub fn encoded_records_len(&self) -> usize {
        self.compact_v4.len() * size_of::<ArchivedCompactKeyV4>()
            + self.full.len() * size_of::<ArchivedFullKey>()
    }
}

impl ArchivedSessionDeleteBatch {
    /// Every key as a table key: compact ones first, then full ones.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = SessionKey> + '_ {
        let compact = self.compact_v4.iter().map(ArchivedCompactKeyV4::to_key);
        let full = self.full.iter().map(ArchivedFullKey::to_key);
        ChainExact::new(compact, full)
    }

    /// Keys in the batch.
    pub fn len(&self) -> usize {
        self.compact_v4.len() + self.full.len()
    }

    /// Whether the batch holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl MessageRef<'_> {
    /// Refuses a session batch holding a structurally invalid full record
    /// (compact records cannot be invalid).
    fn check_records(&self) -> Result<(), crate::DecodeError> {
        let (kind, result) = match self {
            Self::SessionUpsertBatch(b) => (
                MessageKind::SessionUpsertBatch,
                first_error(b.full.iter().map(ArchivedFullRecord::check)),
            ),
            Self::SessionDeleteBatch(b) => (
                MessageKind::SessionDeleteBatch,
                first_error(b.full.iter().map(ArchivedFullKey::check)),
            ),
            _ => return Ok(()),
        };
        match result {
            None => Ok(()),
            Some((index, reason)) => Err(crate::DecodeError::InvalidRecord {
                kind,
                index,
                reason,
            }),
        }
    }
}

/// Position and reason of the first failed check.
fn first_error(
    checks: impl Iterator<Item = Result<(), crate::RecordError>>,
) -> Option<(usize, crate::RecordError)> {
    checks
        .enumerate()
        .find_map(|(i, r)| r.err().map(|e| (i, e)))
}

/// `Chain` that keeps `ExactSizeIterator` (std's does not, since the sum
/// could overflow; ours cannot, both halves index one buffer).
struct ChainExact<A, B> {
    a: A,
    b: B,
}

impl<A, B> ChainExact<A, B> {
    fn new(a: A, b: B) -> Self {
        Self { a, b }
    }
}

impl<T, A: Iterator<Item = T>, B: Iterator<Item = T>> Iterator for ChainExact<A, B> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        match self.a.next() {
            Some(x) => Some(x),
            None => self.b.next(),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let (a, _) = self.a.size_hint();
        let (b, _) = self.b.size_hint();
        let n = a.saturating_add(b);
        (n, Some(n))
    }
}

impl<T, A: ExactSizeIterator<Item = T>, B: ExactSizeIterator<Item = T>> ExactSizeIterator
    for ChainExact<A, B>
{
}

/// Implemented by every message type: its kind, and the bounds the codec
/// needs. Sealed: the set of messages is the protocol.
pub trait WireMessage: sealed::Sealed + Sized {
    /// The header kind of this message.
    const KIND: MessageKind;

    /// Serializes `self` into `w`. Called by [`crate::FrameEncoder`].
    #[doc(hidden)]
    fn serialize_payload(
        &self,
        w: &mut crate::encode::PayloadWriter<'_>,
        arena: &mut rkyv::ser::allocator::Arena,
    ) -> Result<(), rkyv::rancor::Error>;
}

pub(crate) mod sealed {
    /// Seals [`super::WireMessage`].
    pub trait Sealed {}
}

macro_rules! messages {
    ($($name:ident,)*) => {
        $(
            impl sealed::Sealed for $name {}
            impl WireMessage for $name {
                const KIND: MessageKind = MessageKind::$name;
                fn serialize_payload(
                    &self,
                    w: &mut crate::encode::PayloadWriter<'_>,
                    arena: &mut rkyv::ser::allocator::Arena,
                ) -> Result<(), rkyv::rancor::Error> {
                    rkyv::api::high::to_bytes_in_with_alloc::<_, _, rkyv::rancor::Error>(
                        self,
                        w,
                        arena.acquire(),
                    )
                    .map(|_| ())
                }
            }
            impl From<$name> for Message {
                fn from(m: $name) -> Message {
                    Message::$name(m)
                }
            }
        )*

        /// Any message, owned. For tests, fuzzing and paths where a copy is fine.
        #[derive(Debug, Clone, PartialEq, Eq)]
        ///
        /// Exhaustive on purpose: a new kind is a protocol version bump, and
        /// every dispatcher in the workspace should be forced to handle it.
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub enum Message {
            $(
                #[doc = concat!("[`", stringify!($name), "`].")]
                $name($name),
            )*
        }

        /// Any message, borrowed from a validated archive in the receive
        /// buffer (zero copy).
        #[derive(Debug, Clone, Copy)]
        pub enum MessageRef<'a> {
            $(
                #[doc = concat!("Archived [`", stringify!($name), "`].")]
                $name(&'a rkyv::Archived<$name>),
            )*
        }

        impl Message {
            /// The header kind.
            pub fn kind(&self) -> MessageKind {
                match self {
                    $(Self::$name(_) => MessageKind::$name,)*
                }
            }

            /// Encodes this message as one frame appended to `out`.
            pub fn encode(
                &self,
                enc: &mut crate::FrameEncoder,
                channel: Channel,
                seq: u64,
                out: &mut Vec<u8>,
            ) -> Result<usize, crate::EncodeError> {
                match self {
                    $(Self::$name(m) => enc.encode(channel, seq, m, out),)*
                }
            }
        }

        impl<'a> MessageRef<'a> {
            /// Validates `payload` as the archive of `kind` (bytecheck; never
            /// unchecked). `payload` must be 16-aligned, as frame payloads in
            /// the decoder's buffer are.
            pub fn access(kind: MessageKind, payload: &'a [u8]) -> Result<Self, crate::DecodeError> {
                let invalid = |e: rkyv::rancor::Error| crate::DecodeError::InvalidPayload {
                    kind,
                    detail: e.to_string(),
                };
                let msg = match kind {
                    $(MessageKind::$name => Self::$name(
                        rkyv::access::<rkyv::Archived<$name>, rkyv::rancor::Error>(payload)
                            .map_err(invalid)?,
                    ),)*
                };
                msg.check_records()?;
                Ok(msg)
            }

            /// The header kind.
            pub fn kind(&self) -> MessageKind {
                match self {
                    $(Self::$name(_) => MessageKind::$name,)*
                }
            }

            /// Deserializes into an owned [`Message`] (allocates). Cannot fail
            /// for a validated archive; the error path exists so nothing panics.
            pub fn to_message(&self) -> Result<Message, crate::DecodeError> {
                let kind = self.kind();
                let invalid = |e: rkyv::rancor::Error| crate::DecodeError::InvalidPayload {
                    kind,
                    detail: e.to_string(),
                };
                Ok(match self {
                    $(Self::$name(a) => Message::$name(
                        rkyv::deserialize::<$name, rkyv::rancor::Error>(*a).map_err(invalid)?,
                    ),)*
                })
            }
        }

        /// `(name, size, align)` of every archived message and record type,
        /// folded into [`crate::FORMAT_FINGERPRINT`].
        pub(crate) const ARCHIVED_LAYOUTS: &[(&str, usize, usize)] = &[
            $((stringify!($name), size_of::<rkyv::Archived<$name>>(), align_of::<rkyv::Archived<$name>>()),)*
            ("CompactRecordV4", size_of::<ArchivedCompactRecordV4>(), align_of::<ArchivedCompactRecordV4>()),
            ("FullRecord", size_of::<ArchivedFullRecord>(), align_of::<ArchivedFullRecord>()),
            ("CompactKeyV4", size_of::<ArchivedCompactKeyV4>(), align_of::<ArchivedCompactKeyV4>()),
            ("FullKey", size_of::<ArchivedFullKey>(), align_of::<ArchivedFullKey>()),
            ("ConfigItem", size_of::<ArchivedConfigItem>(), align_of::<ArchivedConfigItem>()),
        ];
    };
}

messages! {
    Hello,
    AuthProof,
    Heartbeat,
    Ack,
    Close,
    SessionUpsertBatch,
    SessionDeleteBatch,
    ResyncStart,
    ResyncEnd,
    ResyncRequest,
    BatchStart,
    BatchProgress,
    BatchEnd,
    ConfigItemBatch,
    ConfigOp,
    ConfigBatchResult,
}
