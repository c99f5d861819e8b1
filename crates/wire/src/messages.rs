//! The messages: plain structs archived with rkyv and read in place.
//!
//! Archived structs are `repr(C)`, so field order decides padding; the record
//! types order fields by alignment to stay dense.

// rkyv's derive emits public `*Resolver` types without `Debug`; every type
// written here derives it.
#![allow(missing_debug_implementations)]

use crate::frame::{Channel, MessageKind};
use hotsync_table::{NatTranslation, SessionEntry, SessionKey};
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
        /// Current role, as a byte.
        pub role: u8,
        /// Whether the sender preempts a lower-priority active node.
        pub preempt: bool,
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
        /// Current role, as a byte.
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
        /// [`Channel`] as a byte.
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
        /// 0 sessions, 1 config.
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
        /// 0 add, 1 modify, 2 delete.
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
        /// Reason code.
        pub reason: u16,
        /// Human-readable detail.
        pub detail: String,
    }
}

message! {
    /// A session in the compact IPv4 form: the 12 always-zero bytes of each
    /// address and the family byte are dropped. 85 bytes of data, 88 archived.
    ///
    /// Fields are ordered by alignment so the archived `repr(C)` struct has
    /// only the 3 tail bytes of padding.
    pub struct CompactRecordV4 {
        /// Packets forward, reverse.
        pub packets: [u64; 2],
        /// Bytes forward, reverse.
        pub bytes: [u64; 2],
        /// Key source address (IPv4).
        pub src_addr: [u8; 4],
        /// Key destination address (IPv4).
        pub dst_addr: [u8; 4],
        /// NAT translated source address (IPv4).
        pub nat_src_addr: [u8; 4],
        /// NAT translated destination address (IPv4).
        pub nat_dst_addr: [u8; 4],
        /// Entry policy id.
        pub policy_id: u32,
        /// Entry application id.
        pub app_id: u32,
        /// Entry creation time.
        pub created: u32,
        /// Entry last-seen time.
        pub last_seen: u32,
        /// Entry idle timeout.
        pub timeout: u32,
        /// Key virtual system.
        pub vsys: u16,
        /// Key source port.
        pub src_port: u16,
        /// Key destination port.
        pub dst_port: u16,
        /// NAT translated source port.
        pub nat_src_port: u16,
        /// NAT translated destination port.
        pub nat_dst_port: u16,
        /// Entry source zone.
        pub src_zone: u16,
        /// Entry destination zone.
        pub dst_zone: u16,
        /// Key IP protocol.
        pub protocol: u8,
        /// Entry state byte.
        pub state: u8,
        /// Entry flag bits.
        pub flags: u8,
    }
}

message! {
    /// A session in the general form: every field of the key and the entry.
    pub struct FullRecord {
        /// Packets forward, reverse.
        pub packets: [u64; 2],
        /// Bytes forward, reverse.
        pub bytes: [u64; 2],
        /// Key source address.
        pub src_addr: [u8; 16],
        /// Key destination address.
        pub dst_addr: [u8; 16],
        /// NAT translated source address.
        pub nat_src_addr: [u8; 16],
        /// NAT translated destination address.
        pub nat_dst_addr: [u8; 16],
        /// Entry policy id.
        pub policy_id: u32,
        /// Entry application id.
        pub app_id: u32,
        /// Entry creation time.
        pub created: u32,
        /// Entry last-seen time.
        pub last_seen: u32,
        /// Entry idle timeout.
        pub timeout: u32,
        /// Key virtual system.
        pub vsys: u16,
        /// Key source port.
        pub src_port: u16,
        /// Key destination port.
        pub dst_port: u16,
        /// NAT translated source port.
        pub nat_src_port: u16,
        /// NAT translated destination port.
        pub nat_dst_port: u16,
        /// Entry source zone.
        pub src_zone: u16,
        /// Entry destination zone.
        pub dst_zone: u16,
        /// Key family byte.
        pub family: u8,
        /// Key IP protocol.
        pub protocol: u8,
        /// Entry state byte.
        pub state: u8,
        /// Entry flag bits.
        pub flags: u8,
        /// Entry reserved bytes (carried so the record is lossless).
        pub reserved: [u8; 2],
    }
}

message! {
    /// A session key in the compact IPv4 form.
    pub struct CompactKeyV4 {
        /// Source address (IPv4).
        pub src_addr: [u8; 4],
        /// Destination address (IPv4).
        pub dst_addr: [u8; 4],
        /// Virtual system.
        pub vsys: u16,
        /// Source port.
        pub src_port: u16,
        /// Destination port.
        pub dst_port: u16,
        /// IP protocol.
        pub protocol: u8,
    }
}

message! {
    /// A session key in the general form.
    pub struct FullKey {
        /// Source address.
        pub src_addr: [u8; 16],
        /// Destination address.
        pub dst_addr: [u8; 16],
        /// Virtual system.
        pub vsys: u16,
        /// Source port.
        pub src_port: u16,
        /// Destination port.
        pub dst_port: u16,
        /// Family byte.
        pub family: u8,
        /// IP protocol.
        pub protocol: u8,
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

/// First four bytes of an IPv4 address field whose other 12 bytes are zero.
fn v4_part(a: &[u8; 16]) -> Option<[u8; 4]> {
    if a[4..] == [0u8; 12] {
        Some([a[0], a[1], a[2], a[3]])
    } else {
        None
    }
}

/// Widens a compact address back to the 16-byte field.
fn widen(a: [u8; 4]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&a);
    b
}

const FAMILY_V4: u8 = hotsync_table::IpFamily::V4 as u8;

impl CompactKeyV4 {
    /// The compact form, when it represents `k` exactly.
    pub fn from_key(k: &SessionKey) -> Option<Self> {
        if k.family != FAMILY_V4 {
            return None;
        }
        Some(Self {
            src_addr: v4_part(&k.src_addr)?,
            dst_addr: v4_part(&k.dst_addr)?,
            vsys: k.vsys,
            src_port: k.src_port,
            dst_port: k.dst_port,
            protocol: k.protocol,
        })
    }
}

impl FullKey {
    /// The general form of `k`.
    pub fn from_key(k: &SessionKey) -> Self {
        Self {
            src_addr: k.src_addr,
            dst_addr: k.dst_addr,
            vsys: k.vsys,
            src_port: k.src_port,
            dst_port: k.dst_port,
            family: k.family,
            protocol: k.protocol,
        }
    }
}

impl CompactRecordV4 {
    /// The compact form, when it represents `(k, e)` exactly.
    pub fn from_session(k: &SessionKey, e: &SessionEntry) -> Option<Self> {
        if e.reserved != [0, 0] {
            return None;
        }
        let key = CompactKeyV4::from_key(k)?;
        Some(Self {
            packets: e.packets,
            bytes: e.bytes,
            src_addr: key.src_addr,
            dst_addr: key.dst_addr,
            nat_src_addr: v4_part(&e.nat.src_addr)?,
            nat_dst_addr: v4_part(&e.nat.dst_addr)?,
            policy_id: e.policy_id,
            app_id: e.app_id,
            created: e.created,
            last_seen: e.last_seen,
            timeout: e.timeout,
            vsys: k.vsys,
            src_port: k.src_port,
            dst_port: k.dst_port,
            nat_src_port: e.nat.src_port,
            nat_dst_port: e.nat.dst_port,
            src_zone: e.src_zone,
            dst_zone: e.dst_zone,
            protocol: k.protocol,
            state: e.state,
            flags: e.flags,
        })
    }
}

impl FullRecord {
    /// The general form of `(k, e)`.
    pub fn from_session(k: &SessionKey, e: &SessionEntry) -> Self {
        Self {
            packets: e.packets,
            bytes: e.bytes,
            src_addr: k.src_addr,
            dst_addr: k.dst_addr,
            nat_src_addr: e.nat.src_addr,
            nat_dst_addr: e.nat.dst_addr,
            policy_id: e.policy_id,
            app_id: e.app_id,
            created: e.created,
            last_seen: e.last_seen,
            timeout: e.timeout,
            vsys: k.vsys,
            src_port: k.src_port,
            dst_port: k.dst_port,
            nat_src_port: e.nat.src_port,
            nat_dst_port: e.nat.dst_port,
            src_zone: e.src_zone,
            dst_zone: e.dst_zone,
            family: k.family,
            protocol: k.protocol,
            state: e.state,
            flags: e.flags,
            reserved: e.reserved,
        }
    }
}

/// Converts archived `[u64_le; 2]` to native.
fn u64x2(a: &[rkyv::Archived<u64>; 2]) -> [u64; 2] {
    [a[0].to_native(), a[1].to_native()]
}

impl ArchivedCompactKeyV4 {
    /// The table key this archived record names.
    pub fn to_key(&self) -> SessionKey {
        SessionKey {
            src_addr: widen(self.src_addr),
            dst_addr: widen(self.dst_addr),
            vsys: self.vsys.to_native(),
            src_port: self.src_port.to_native(),
            dst_port: self.dst_port.to_native(),
            family: FAMILY_V4,
            protocol: self.protocol,
        }
    }
}

impl ArchivedFullKey {
    /// The table key this archived record names.
    pub fn to_key(&self) -> SessionKey {
        SessionKey {
            src_addr: self.src_addr,
            dst_addr: self.dst_addr,
            vsys: self.vsys.to_native(),
            src_port: self.src_port.to_native(),
            dst_port: self.dst_port.to_native(),
            family: self.family,
            protocol: self.protocol,
        }
    }
}

impl ArchivedCompactRecordV4 {
    /// The table key and entry, read straight from the archive.
    pub fn to_session(&self) -> (SessionKey, SessionEntry) {
        let key = SessionKey {
            src_addr: widen(self.src_addr),
            dst_addr: widen(self.dst_addr),
            vsys: self.vsys.to_native(),
            src_port: self.src_port.to_native(),
            dst_port: self.dst_port.to_native(),
            family: FAMILY_V4,
            protocol: self.protocol,
        };
        let entry = SessionEntry {
            packets: u64x2(&self.packets),
            bytes: u64x2(&self.bytes),
            nat: NatTranslation {
                src_addr: widen(self.nat_src_addr),
                dst_addr: widen(self.nat_dst_addr),
                src_port: self.nat_src_port.to_native(),
                dst_port: self.nat_dst_port.to_native(),
            },
            policy_id: self.policy_id.to_native(),
            app_id: self.app_id.to_native(),
            created: self.created.to_native(),
            last_seen: self.last_seen.to_native(),
            timeout: self.timeout.to_native(),
            src_zone: self.src_zone.to_native(),
            dst_zone: self.dst_zone.to_native(),
            state: self.state,
            flags: self.flags,
            reserved: [0, 0],
        };
        (key, entry)
    }
}

impl ArchivedFullRecord {
    /// The table key and entry, read straight from the archive.
    pub fn to_session(&self) -> (SessionKey, SessionEntry) {
        let key = SessionKey {
            src_addr: self.src_addr,
            dst_addr: self.dst_addr,
            vsys: self.vsys.to_native(),
            src_port: self.src_port.to_native(),
            dst_port: self.dst_port.to_native(),
            family: self.family,
            protocol: self.protocol,
        };
        let entry = SessionEntry {
            packets: u64x2(&self.packets),
            bytes: u64x2(&self.bytes),
            nat: NatTranslation {
                src_addr: self.nat_src_addr,
                dst_addr: self.nat_dst_addr,
                src_port: self.nat_src_port.to_native(),
                dst_port: self.nat_dst_port.to_native(),
            },
            policy_id: self.policy_id.to_native(),
            app_id: self.app_id.to_native(),
            created: self.created.to_native(),
            last_seen: self.last_seen.to_native(),
            timeout: self.timeout.to_native(),
            src_zone: self.src_zone.to_native(),
            dst_zone: self.dst_zone.to_native(),
            state: self.state,
            flags: self.flags,
            reserved: self.reserved,
        };
        (key, entry)
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
                Ok(match kind {
                    $(MessageKind::$name => Self::$name(
                        rkyv::access::<rkyv::Archived<$name>, rkyv::rancor::Error>(payload)
                            .map_err(invalid)?,
                    ),)*
                })
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

// The compact record must stay within the 96-byte budget per IPv4 session.
const _: () = assert!(size_of::<ArchivedCompactRecordV4>() <= 96);
const _: () = assert!(size_of::<ArchivedFullRecord>() == 136);
