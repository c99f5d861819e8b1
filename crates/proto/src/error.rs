//! Why a connection was dropped.

use hotsync_wire::{DecodeError, EncodeError, InvalidCode, MessageKind};

/// A fatal error on one connection. The driver drops that connection (the
/// process and the other connection live on) and counts the error under
/// [`ProtoError::kind_name`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The byte stream did not decode (framing, integrity, validation).
    #[error("bad frame from peer: {0}")]
    Decode(#[from] DecodeError),
    /// A frame could not be encoded (a local bug or an oversized item).
    #[error("cannot encode frame: {0}")]
    Encode(#[from] EncodeError),
    /// The peer speaks another protocol version.
    #[error("peer speaks protocol version {peer}, this node {local}")]
    VersionMismatch {
        /// Ours.
        local: u16,
        /// Theirs.
        peer: u16,
    },
    /// The peer's archived layout differs (another rkyv build or features).
    #[error(
        "peer's wire format fingerprint {peer:#x} differs from ours {local:#x}: build both nodes from the same release"
    )]
    FormatMismatch {
        /// Ours.
        local: u64,
        /// Theirs.
        peer: u64,
    },
    /// Shards must match: resync works shard by shard.
    #[error(
        "peer has {peer} table shards, this node {local}: configure the same shard count on both"
    )]
    ShardCountMismatch {
        /// Ours.
        local: u32,
        /// Theirs.
        peer: u32,
    },
    /// The peer uses our node id.
    #[error("peer uses this node's id {0}: node ids must differ")]
    SameNodeId(u64),
    /// The peer's hello names another channel than this connection carries.
    #[error("peer opened a {got} connection where a {expected} connection was expected")]
    WrongChannel {
        /// What this connection is.
        expected: &'static str,
        /// What the peer said.
        got: &'static str,
    },
    /// The peer's proof of the pre-shared key is wrong.
    #[error("peer failed authentication (wrong pre-shared key?)")]
    AuthFailed,
    /// We have a key and the peer tried to proceed without proving it.
    #[error("peer did not authenticate but this node requires the pre-shared key")]
    AuthRequired,
    /// The peer wants a key proof and we have no key.
    #[error("peer requires a pre-shared key and none is configured here")]
    NoKeyConfigured,
    /// This node encrypts (`hrp encryption-key`) and the peer does not offer
    /// encryption: refused rather than downgraded.
    #[error("peer does not encrypt but this node requires encryption (hrp encryption-key)")]
    EncryptionRequired,
    /// The peer encrypts and this node has no encryption key.
    #[error("peer requires encryption and no hrp encryption-key is configured here")]
    NoEncryptionKey,
    /// The peer replayed our own nonce.
    #[error("peer echoed this node's nonce (reflection attempt)")]
    NonceReflected,
    /// A message arrived that the connection's state does not allow.
    #[error("unexpected {kind:?} {state}")]
    Unexpected {
        /// The kind received.
        kind: MessageKind,
        /// Where we were.
        state: &'static str,
    },
    /// Frames must carry consecutive sequence numbers.
    #[error("sequence gap: expected {expected}, got {got}")]
    SequenceGap {
        /// Next expected.
        expected: u64,
        /// Received.
        got: u64,
    },
    /// An acknowledgement for data never sent.
    #[error("peer acknowledged seq {got} but only {sent} were sent")]
    AckBeyondSent {
        /// Acknowledged.
        got: u64,
        /// Sent.
        sent: u64,
    },
    /// The peer closed the connection with a reason.
    #[error("peer closed the connection: {detail} ({reason})")]
    PeerClosed {
        /// Why, by its code.
        reason: CloseReason,
        /// Text.
        detail: String,
    },
    /// A field holds a value the protocol does not define (a role of 9, a
    /// batch kind of 7, an acknowledgement for another channel...).
    #[error("{kind:?} carries {field} {value}, which is not defined")]
    InvalidField {
        /// The message that carried it.
        kind: MessageKind,
        /// Which field.
        field: Field,
        /// The value received.
        value: u32,
    },
    /// Nothing heard for the dead interval.
    #[error("peer silent for the dead interval")]
    Timeout,
    /// This node's role changed while the session connection was in its
    /// handshake: the hello it sent claims the old role, and the peer
    /// would agree roles (and decide whether to wait for a former active's
    /// last changes) on it. The connection starts over with a new hello.
    #[error("this node's role changed during the handshake: its hello is stale")]
    RoleChangedInHandshake,
}

impl ProtoError {
    /// Stable short label, used as a counter key.
    pub fn kind_name(&self) -> &'static str {
        match self {
            ProtoError::Decode(d) => d.kind_name(),
            ProtoError::Encode(_) => "encode",
            ProtoError::VersionMismatch { .. } => "version_mismatch",
            ProtoError::FormatMismatch { .. } => "format_mismatch",
            ProtoError::ShardCountMismatch { .. } => "shard_count_mismatch",
            ProtoError::SameNodeId(_) => "same_node_id",
            ProtoError::WrongChannel { .. } => "wrong_channel",
            ProtoError::AuthFailed => "auth_failed",
            ProtoError::AuthRequired => "auth_required",
            ProtoError::NoKeyConfigured => "no_key_configured",
            ProtoError::EncryptionRequired => "encryption_required",
            ProtoError::NoEncryptionKey => "no_encryption_key",
            ProtoError::NonceReflected => "nonce_reflected",
            ProtoError::Unexpected { .. } => "unexpected_message",
            ProtoError::SequenceGap { .. } => "sequence_gap",
            ProtoError::AckBeyondSent { .. } => "ack_beyond_sent",
            ProtoError::PeerClosed { .. } => "peer_closed",
            ProtoError::InvalidField { field, .. } => field.error_name(),
            ProtoError::Timeout => "timeout",
            ProtoError::RoleChangedInHandshake => "role_changed_in_handshake",
        }
    }

    /// The close reason sent to the peer.
    pub fn close_reason(&self) -> CloseReason {
        match self {
            ProtoError::VersionMismatch { .. } | ProtoError::FormatMismatch { .. } => {
                CloseReason::Incompatible
            }
            ProtoError::AuthFailed
            | ProtoError::AuthRequired
            | ProtoError::NoKeyConfigured
            | ProtoError::EncryptionRequired
            | ProtoError::NoEncryptionKey => CloseReason::Authentication,
            ProtoError::ShardCountMismatch { .. } | ProtoError::SameNodeId(_) => {
                CloseReason::Configuration
            }
            _ => CloseReason::Protocol,
        }
    }
}

pub use hotsync_wire::{CloseReason, Field};

impl From<InvalidCode> for ProtoError {
    fn from(e: InvalidCode) -> Self {
        ProtoError::InvalidField {
            kind: e.kind,
            field: e.field,
            value: e.value,
        }
    }
}

/// Why a control-plane request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Batch syncs need an established relationship.
    #[error("the hot-standby relationship is not established")]
    NotEstablished,
    /// One batch sync of a kind at a time.
    #[error("a batch sync of this kind is already running (job {0})")]
    AlreadyRunning(u64),
    /// `hrp role` while hotsync's own election decides the role.
    #[error(
        "the role is decided by hotsync's election: `hrp role` needs `hrp role-control external`"
    )]
    RoleNotExternal,
}
