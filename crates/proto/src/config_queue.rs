//! Configuration: where the peer's configuration goes (the [`ConfigSink`])
//! and the queue of our changes waiting for the peer (B3), sent in order
//! and resent after a reconnect until acknowledged.

use crate::conn::Conn;
use crate::error::ProtoError;
use crate::event::{Event, Events};
use crate::stats::Stats;
use hotsync_wire::{Channel, ConfigOp};
use std::collections::VecDeque;
use std::time::Instant;

/// Result of applying one configuration item from a batch sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// We lacked it; it was added.
    Added,
    /// We had it, equal.
    Equal,
    /// Same identity, other parameters: not applied, recorded (B7).
    Conflict,
    /// Refused (not syncable, unparsable, unknown virtual system).
    Rejected,
}

pub use hotsync_wire::ConfigOpKind;

/// Where configuration from the peer goes. The node implements it over its
/// configuration store; the protocol only moves the text.
pub trait ConfigSink: Send {
    /// Applies one item of a batch sync: additive, conflicts reported.
    fn apply_batch_item(&mut self, vsys: &str, text: &str) -> ItemOutcome;
    /// Replays one incremental change (`op`: a [`ConfigOpKind`] code, checked
    /// on receipt).
    fn apply_op(&mut self, op: u8, vsys: &str, text: &str) -> Result<(), String>;
}

/// A sink that refuses all configuration (for session-only embeddings).
#[derive(Debug, Default)]
pub struct RejectConfig;

impl ConfigSink for RejectConfig {
    fn apply_batch_item(&mut self, _: &str, _: &str) -> ItemOutcome {
        ItemOutcome::Rejected
    }
    fn apply_op(&mut self, _: u8, _: &str, _: &str) -> Result<(), String> {
        Err("this node takes no configuration".into())
    }
}

/// What became of a configuration change handed to
/// [`crate::Peer::queue_config_change`]: what the operator is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpDelivery {
    /// The relationship is established: it goes to the peer now (B3).
    Sending,
    /// The relationship is down: it waits for the same peer process and is
    /// delivered when it reconnects. A restarted peer forms a new
    /// relationship instead, and the change is not sent (B4: `hrp sync
    /// config`).
    HeldForPeer,
    /// No relationship was ever established: not synchronized (B4).
    NoRelationship,
    /// The queue was full: dropped, counted and warned about.
    Dropped,
    /// Not a [`ConfigOpKind`] code: the peer would refuse it.
    Invalid,
}

impl OpDelivery {
    /// Whether the change was queued for the peer.
    pub fn is_queued(self) -> bool {
        matches!(self, OpDelivery::Sending | OpDelivery::HeldForPeer)
    }
}

struct QueuedOp {
    /// Sequence number of the frame that last carried it (valid while it
    /// is among the sent ones, see `ConfigQueue::sent`).
    seq: u64,
    op: ConfigOp,
}

/// Our configuration changes for the peer, in order.
pub(crate) struct ConfigQueue {
    ops: VecDeque<QueuedOp>,
    /// `ops[..sent]` are on the wire awaiting their ack; the rest are not
    /// sent yet (changes go out in order).
    sent: usize,
    limit: usize,
}

impl ConfigQueue {
    pub fn new(limit: usize) -> Self {
        Self {
            ops: VecDeque::new(),
            sent: 0,
            limit,
        }
    }

    /// Changes queued (sent and not).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether changes wait to be sent.
    pub fn has_unsent(&self) -> bool {
        self.sent < self.ops.len()
    }

    /// Queues a change; false (dropped, counted, warned) if the queue is
    /// full.
    pub fn push(
        &mut self,
        op: u8,
        vsys: &str,
        text: &str,
        stats: &mut Stats,
        events: &mut Events,
    ) -> bool {
        if self.ops.len() >= self.limit {
            stats.config_ops_dropped += 1;
            events.push_back(Event::Warning(
                "configuration change queue full: change dropped; run `hrp sync config` once the link is back".into(),
            ));
            return false;
        }
        self.ops.push_back(QueuedOp {
            seq: 0,
            op: ConfigOp {
                op,
                vsys: vsys.to_owned(),
                text: text.to_owned(),
            },
        });
        true
    }

    /// Sends unsent changes, in order, while the connection has room.
    pub fn fill(
        &mut self,
        conn: &mut Conn,
        high_water: usize,
        stats: &mut Stats,
        now: Instant,
    ) -> Result<(), ProtoError> {
        while self.sent < self.ops.len() && conn.has_room(high_water) {
            let queued = &mut self.ops[self.sent];
            queued.seq = conn.send(Channel::Config, &queued.op, stats, now)?;
            self.sent += 1;
            stats.config_ops_tx += 1;
        }
        self.debug_check();
        Ok(())
    }

    /// The peer acknowledged config frames up to `seq`.
    pub fn on_ack(&mut self, seq: u64) {
        while self.sent > 0 && self.ops.front().is_some_and(|o| o.seq <= seq) {
            self.ops.pop_front();
            self.sent -= 1;
        }
        self.debug_check();
    }

    /// The config connection dropped: resend what was not acknowledged
    /// (replaying a change is idempotent).
    pub fn on_disconnect(&mut self) {
        self.sent = 0;
    }

    /// Forgets every change (they were for a peer process that is gone);
    /// returns how many.
    pub fn clear(&mut self) -> usize {
        let n = self.ops.len();
        self.ops.clear();
        self.sent = 0;
        n
    }

    pub(crate) fn debug_check(&self) {
        debug_assert!(
            self.sent <= self.ops.len(),
            "config_sent {} beyond the queue's {}",
            self.sent,
            self.ops.len()
        );
    }
}
