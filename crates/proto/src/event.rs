//! What the protocol reports: instructions the driver must carry out
//! ([`Action`]), notices for the driver and the control plane ([`Event`]),
//! and state snapshots for displays.

use crate::conn::{ConnKind, PerConn, Phase};
use crate::jobs::{JobKind, JobStatus};
use crate::relationship::Unsynced;
use crate::role::{Claim, Role};
use crate::stats::Stats;
use std::collections::VecDeque;
use std::time::Instant;

/// Work the driver must do, kept apart from the notices in [`Event`] as
/// quinn keeps `EndpointEvent` apart from `Event`: a driver may ignore a
/// notice, never an action. Taken with [`crate::Peer::poll_action`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Close this connection's transport: flush what
    /// [`crate::Peer::poll_transmit`] still has (the close frame), close,
    /// then call [`crate::Peer::handle_disconnected`]. The one path by
    /// which the protocol ends a connection.
    Close {
        /// Which connection.
        conn: ConnKind,
        /// Why (the error that closed it).
        reason: String,
    },
    /// The relationship formed and `auto-sync on-establish` is on: start a
    /// configuration batch sync (the driver owns the store it renders).
    StartConfigSync,
}

/// Notices: what the protocol tells its driver and the control plane.
/// Nothing here needs an answer; instructions come as [`Action`]s.
#[derive(Clone, Debug)]
pub enum Event {
    /// A connection finished its handshake.
    Connected(ConnKind),
    /// The relationship is established: authenticated, roles agreed.
    Established {
        /// The peer's node id.
        peer_node_id: u64,
        /// Our role.
        role: Role,
        /// Whether the link is authenticated with the pre-shared key.
        authenticated: bool,
    },
    /// The session connection was lost.
    RelationshipLost {
        /// Why.
        reason: String,
    },
    /// Nothing heard from the peer for the dead interval.
    PeerDead,
    /// Our role changed.
    RoleChanged {
        /// Before.
        from: Role,
        /// After.
        to: Role,
        /// Why.
        reason: &'static str,
    },
    /// A job of ours ended.
    JobFinished(JobStatus),
    /// The peer started a batch sync towards us.
    PeerBatchStarted {
        /// What.
        kind: JobKind,
        /// Items announced.
        total: u64,
    },
    /// The peer's batch sync towards us ended.
    PeerBatchFinished {
        /// What.
        kind: JobKind,
        /// Items received.
        received: u64,
    },
    /// Something the operator should know.
    Warning(String),
}

/// The queue of events not yet polled.
pub(crate) type Events = VecDeque<Event>;

/// The queue of actions not yet polled.
pub(crate) type Actions = VecDeque<Action>;

/// What we know of the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its node id.
    pub node_id: u64,
    /// Its priority.
    pub priority: u16,
    /// The role it last claimed.
    pub role: Role,
    /// Whether it preempts.
    pub preempt: bool,
    /// Its process's incarnation (random per start): another one than
    /// before means the peer was restarted.
    pub incarnation: u64,
}

impl PeerInfo {
    /// What it claims, for role resolution.
    pub fn claim(&self) -> Claim {
        Claim {
            role: self.role,
            priority: self.priority,
            node_id: self.node_id,
        }
    }
}

/// A snapshot of the protocol state, for `display hrp state`.
#[derive(Clone, Debug)]
pub struct PeerState {
    /// This node's role.
    pub role: Role,
    /// Why it has that role.
    pub role_reason: &'static str,
    /// When the role last changed.
    pub role_since: Instant,
    /// Whether the relationship is established now.
    pub established: bool,
    /// Whether the link is authenticated with the pre-shared key.
    pub authenticated: bool,
    /// Whether every frame after the handshake is encrypted
    /// (`hrp encryption-key`, AES-256-GCM).
    pub encrypted: bool,
    /// Why the last connection to the peer failed, if one did (a refused
    /// handshake shows here: wrong key, no encryption on the peer, ...).
    pub last_failure: Option<String>,
    /// The peer, once a connection to it completed its handshake.
    pub peer: Option<PeerInfo>,
    /// Phase of each connection.
    pub conn_phase: PerConn<Phase>,
    /// Shards waiting for a resync.
    pub uncertain_shards: usize,
    /// Configuration changes queued for the peer.
    pub config_queue: usize,
    /// Batch syncs the current relationship still lacks: while any is, the
    /// peer is incomplete (B4: a new relationship synchronizes nothing from
    /// before it).
    pub peer_unsynced: Unsynced,
    /// This process's incarnation.
    pub incarnation: u64,
    /// Configuration items from the peer received and not yet applied.
    pub config_backlog: usize,
    /// Counters.
    pub stats: Stats,
}
