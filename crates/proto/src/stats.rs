//! Counters: everything the engine did, and everything that went wrong.

use std::collections::BTreeMap;

/// Cumulative counters of one node's protocol instance.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Frames sent. This and the next three count connections that
    /// completed their handshake (its own frames included, added when it
    /// completes): one that never does moves only its error counter.
    pub frames_tx: u64,
    /// Frames received.
    pub frames_rx: u64,
    /// Bytes sent (queued for the socket).
    pub bytes_tx: u64,
    /// Bytes received.
    pub bytes_rx: u64,
    /// Session batches sent (upsert and delete).
    pub batches_tx: u64,
    /// Session batches received and applied.
    pub batches_rx: u64,
    /// Session records sent (upserts).
    pub records_tx: u64,
    /// Session records applied (upserts).
    pub records_rx: u64,
    /// Deletions sent.
    pub deletes_tx: u64,
    /// Deletions applied.
    pub deletes_rx: u64,
    /// Acknowledgements sent.
    pub acks_tx: u64,
    /// Acknowledgements received.
    pub acks_rx: u64,
    /// Heartbeats sent.
    pub heartbeats_tx: u64,
    /// Heartbeats received.
    pub heartbeats_rx: u64,
    /// Shards resent whole because the peer's copy was uncertain.
    pub shards_resynced: u64,
    /// Shards that became uncertain because a journal overflowed (counted
    /// once per shard newly marked; see [`Self::journal_overflows`] for the
    /// raw overflow count).
    pub resync_overflow: u64,
    /// Shards that became uncertain because the session connection dropped
    /// with their data unacknowledged (or their resync under way).
    pub resync_disconnect: u64,
    /// Shards that became uncertain because the peer asked.
    pub resync_request: u64,
    /// Shard resyncs cut short by a disconnect (the shard is uncertain
    /// again, counted in `resync_disconnect`). Every shard marked uncertain
    /// is resynced or aborted, so once nothing is pending:
    /// `resync_overflow + resync_disconnect + resync_request +
    /// resync_step_down + resync_table_full + resync_crossed ==
    /// shards_resynced +
    /// resync_aborted + resync_requested + outage_shards_dropped` (see
    /// [`Self::resync_balance`]).
    pub resync_aborted: u64,
    /// Uncertain shards this node asked the peer to resync instead of
    /// resyncing them itself: a node that is not active never replaces the
    /// active's copy of a shard with its own.
    pub resync_requested: u64,
    /// Shards that became uncertain because this node left the active
    /// role to a peer that also claimed it (a split brain healing, a paused
    /// active returning, preemption): it asks the winner for every shard,
    /// so its copy becomes the winner's (docs/RELIABILITY.md §5).
    pub resync_step_down: u64,
    /// Shards whose changes, made while this node was active, overflowed
    /// their journal before it stepped down, or were in flight when the
    /// session connection dropped during the hand-over: those changes may
    /// never reach the winner and are replaced by its copy (lost, counted,
    /// logged).
    pub step_down_lost_shards: u64,
    /// Walks of this node's own table (a batch sync, a shard resync) it was
    /// sending when it left the active role, cancelled there: the winner's
    /// copy is authoritative, and their chunks, encoded from this node's
    /// older copy, would replace the winner's newer sessions. A cancelled
    /// batch sync ends failed; the winner resyncs every shard into this
    /// node.
    pub step_down_walks_cancelled: u64,
    /// Records and deletions from a peer that also claimed the active role
    /// which this node, keeping the role, did not apply because it holds
    /// its own version of the session (the winner's copy is authoritative;
    /// the loser's sessions it lacked are added).
    pub split_brain_kept_own: u64,
    /// Records of a batch sync that reached this node while it held the
    /// active role (the standby's `hrp sync connection-status`, or a
    /// former active's still arriving) that it did not apply: it holds its
    /// own version of the session, or its removal of it is on the way to
    /// the peer, or it walked that shard into the peer and the walk is not
    /// acknowledged (B5: a batch adds what the peer lacks; the peer's
    /// copy, encoded before this node's newest changes reached it, would
    /// take it back to older versions or bring back what it removed).
    pub standby_batch_kept_own: u64,
    /// Shards that became uncertain because this node (not active) had
    /// refused records of them for a full table, and room freed up since:
    /// it asks the active to resync them.
    pub resync_table_full: u64,
    /// Shards whose resync from the peer crossed this node's own changes
    /// of them (sent after the peer's walk started): the walk undid them
    /// here while the peer applied them, so the shard is asked for again.
    pub resync_crossed: u64,
    /// Stale entries removed at the end of a resync received.
    pub resync_removed: u64,
    /// Journal overflows seen.
    pub journal_overflows: u64,
    /// Changes found journaled when the relationship was first established
    /// and dropped (B4: existing entries wait for a manual batch sync). Zero
    /// unless the table was capturing before this instance took it over:
    /// the protocol keeps capture off until then.
    pub changes_before_establish: u64,
    /// Relationships formed with a new incarnation of the peer (it was
    /// restarted): nothing kept for the previous one was sent (B4).
    pub peer_restarts: u64,
    /// Relationships resumed with the same peer process after an outage:
    /// what changed meanwhile was delivered.
    pub relationships_resumed: u64,
    /// Session changes journaled while the peer was down and not sent,
    /// because it came back restarted (a new relationship, B4).
    pub outage_changes_dropped: u64,
    /// Uncertain shards not resynced, because the peer came back restarted
    /// (a new relationship starts from nothing; see
    /// [`Self::resync_balance`]).
    pub outage_shards_dropped: u64,
    /// Configuration changes queued while the peer was down and not sent,
    /// because it came back restarted.
    pub outage_config_ops_dropped: u64,
    /// Records the table refused because it was full.
    pub apply_table_full: u64,
    /// Configuration changes sent incrementally.
    pub config_ops_tx: u64,
    /// Configuration changes applied.
    pub config_ops_rx: u64,
    /// Configuration changes dropped because the queue was full.
    pub config_ops_dropped: u64,
    /// Configuration items received in batch syncs.
    pub config_items_rx: u64,
    /// Replication latency: smoothed time (7/8 old, 1/8 new) from sending
    /// a data frame on the session connection to the peer's
    /// acknowledgement, which it sends once the frame is applied. In µs;
    /// 0 until a first sample.
    pub ack_rtt_us: u64,
    /// Connections established (handshake complete).
    pub connections: u64,
    /// Connections lost.
    pub disconnects: u64,
    /// Errors by [`crate::ProtoError::kind_name`].
    pub errors: BTreeMap<&'static str, u64>,
}

impl Stats {
    /// Counts one error.
    pub fn count_error(&mut self, kind: &'static str) {
        *self.errors.entry(kind).or_default() += 1;
    }

    /// Takes one replication-latency sample.
    pub(crate) fn rtt_sample(&mut self, d: std::time::Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.ack_rtt_us = if self.ack_rtt_us == 0 {
            us
        } else {
            (self.ack_rtt_us * 7 + us) / 8
        };
    }

    /// All errors.
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Shards marked uncertain minus shards resynced, aborted, handed to
    /// the peer or dropped for a restarted peer: the number of shards still
    /// waiting
    /// (`PeerState::uncertain_shards`). Any other value means a resync
    /// went uncounted.
    pub fn resync_balance(&self) -> i64 {
        (self.resync_overflow
            + self.resync_disconnect
            + self.resync_request
            + self.resync_step_down
            + self.resync_table_full
            + self.resync_crossed) as i64
            - (self.shards_resynced
                + self.resync_aborted
                + self.resync_requested
                + self.outage_shards_dropped) as i64
    }
}
