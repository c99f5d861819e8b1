//! Repair of uncertain shards: which shards the peer may not hold exactly,
//! and the walk that resends one whole.
//!
//! A shard becomes uncertain when its journal overflowed, when the session
//! connection dropped with its data unacknowledged, or when the peer asks.
//! The active node walks it (start marker, every entry, end marker: the
//! receiver drops what the walk did not carry); a node that is not active
//! asks the active to walk it instead.
//!
//! A walk and the walked node's own changes can cross: the standby sends a
//! change of a shard while the active's walk of that shard is already on
//! its way. The walk does not carry it (the active did not have it yet), so
//! the walk's chunks and end marker undo the standby's copy while the
//! active applies the change right after. The standby sees it happen (its
//! change left after the last frame the active had acknowledged when it
//! started the walk) and asks for the shard again, now with the change in.

use crate::conn::Conn;
use crate::error::ProtoError;
use crate::role::Role;
use crate::stats::Stats;
use hotsync_table::{SessionTable, ShardSet, SnapshotCursor};
use hotsync_wire::{Channel, ResyncEnd, ResyncRequest, ResyncStart, SessionUpsertBatch};
use std::time::Instant;

/// Per shard: whether it is uncertain, and the last session-connection
/// sequence number that carried its data (unacknowledged data makes it
/// uncertain when the connection drops).
pub(crate) struct ShardLedger {
    pub uncertain: ShardSet,
    last_sent_seq: Vec<u64>,
    /// Per shard: its length when its full table refused a record from
    /// the peer (0: none refused). Once it holds fewer, room freed up and
    /// the shard is asked for again.
    refused_at_len: Vec<usize>,
    /// Per shard: the last frame that carried this node's own changes of
    /// it (incremental batches; not walks or requests).
    changes_seq: Vec<u64>,
    /// Per shard whose walk the peer is sending us: how far the peer had
    /// acknowledged our frames when its walk started.
    walk_sees: Vec<Option<u64>>,
    /// Per shard: the frame that carried the end marker of our last walk
    /// of it into the peer (`u64::MAX` while one is under way).
    walk_end_seq: Vec<u64>,
}

impl ShardLedger {
    pub fn new(shards: usize) -> Self {
        Self {
            uncertain: ShardSet::new(shards),
            last_sent_seq: vec![0; shards],
            refused_at_len: vec![0; shards],
            changes_seq: vec![0; shards],
            walk_sees: vec![None; shards],
            walk_end_seq: vec![0; shards],
        }
    }

    /// A record of `shard` (holding `len` entries) was refused: the table
    /// was full.
    pub fn refused(&mut self, shard: usize, len: usize) {
        self.refused_at_len[shard] = len.max(1);
    }

    /// Marks uncertain every shard that refused records and has room now;
    /// returns how many were newly marked.
    pub fn room_freed(&mut self, table: &SessionTable) -> u64 {
        let mut n = 0;
        for (s, at) in self.refused_at_len.iter_mut().enumerate() {
            if *at > 0 && table.shard_len(s) < *at {
                *at = 0;
                n += u64::from(self.uncertain.insert(s));
            }
        }
        n
    }

    /// Frame `seq` carried data of `shard`.
    pub fn sent(&mut self, shard: usize, seq: u64) {
        self.last_sent_seq[shard] = seq;
    }

    /// Frame `seq` carried this node's own changes of `shard`.
    pub fn sent_changes(&mut self, shard: usize, seq: u64) {
        self.sent(shard, seq);
        self.changes_seq[shard] = seq;
    }

    /// Frame `seq` carried part of this node's own copy of `shard` (a
    /// batch chunk of a node that is not active): a walk of the peer's it
    /// crosses is asked for again, as for its changes.
    pub fn sent_own_copy(&mut self, shard: usize, seq: u64) {
        self.changes_seq[shard] = seq;
    }

    /// The peer starts walking `shard` into us, having acknowledged our
    /// frames up to `peer_acked`: our changes in those frames are in its
    /// walk.
    pub fn walk_started(&mut self, shard: usize, peer_acked: u64) {
        self.walk_sees[shard] = Some(peer_acked);
    }

    /// The peer's walk of `shard` ended. True if our own changes of it left
    /// after the walk started on the peer's side: the walk may have undone
    /// them here while the peer applied them, so the shard must be walked
    /// again.
    pub fn walk_crossed(&mut self, shard: usize) -> bool {
        self.walk_sees[shard]
            .take()
            .is_some_and(|seen| self.changes_seq[shard] > seen)
    }

    /// Marks `shard` uncertain; true if it was not already.
    pub fn mark(&mut self, shard: usize) -> bool {
        self.uncertain.insert(shard)
    }

    /// The session connection dropped after the peer acknowledged `acked`:
    /// every shard with later data is uncertain. Returns how many were
    /// newly marked.
    pub fn on_session_lost(&mut self, acked: u64) -> u64 {
        let mut lost = 0;
        for (s, seq) in self.last_sent_seq.iter_mut().enumerate() {
            if *seq > acked {
                lost += u64::from(self.uncertain.insert(s));
            }
            *seq = 0;
        }
        // Sequence numbers start over on the next connection.
        self.changes_seq.fill(0);
        self.walk_end_seq.fill(0);
        self.walk_sees.fill(None);
        lost
    }

    /// A walk of `shard` into the peer starts (its end marker not sent).
    pub fn walk_sending(&mut self, shard: usize) {
        self.walk_end_seq[shard] = u64::MAX;
    }

    /// The end marker of `shard`'s walk left in frame `seq`.
    pub fn walk_end_sent(&mut self, shard: usize, seq: u64) {
        self.walk_end_seq[shard] = seq;
    }

    /// Whether the peer holds `shard` as this node last walked it (no walk
    /// under way or unacknowledged: its end marker drops what the walk did
    /// not carry, so a copy the peer encoded before it is stale) and the
    /// shard is not waiting to be walked.
    pub fn walked_and_settled(&self, shard: usize, acked: u64) -> bool {
        self.walk_end_seq[shard] <= acked && !self.uncertain.contains(shard)
    }

    /// Shards with data after `acked` (not acknowledged by the peer).
    pub fn unacked(&self, acked: u64) -> u64 {
        self.last_sent_seq.iter().filter(|&&s| s > acked).count() as u64
    }

    /// Invariant the fuzz harness relies on: nothing recorded as sent
    /// beyond what the connection sent.
    pub fn debug_check(&self, tx_seq: u64) {
        debug_assert!(
            self.last_sent_seq.iter().all(|&s| s <= tx_seq),
            "a shard's last sent seq is beyond the connection's tx_seq {tx_seq}"
        );
    }
}

struct Walk {
    shard: u32,
    epoch: u32,
    cursor: SnapshotCursor,
    start_sent: bool,
}

/// The walk of one uncertain shard at a time.
pub(crate) struct Resync {
    walk: Option<Walk>,
    next_epoch: u32,
    /// Encoding scratch: chunks go straight from the slab into it.
    bulk: SessionUpsertBatch,
}

impl Resync {
    pub fn new(nonce_seed: u64) -> Self {
        Self {
            walk: None,
            next_epoch: (nonce_seed as u32) | 1,
            bulk: SessionUpsertBatch::default(),
        }
    }

    /// Whether a walk is under way.
    pub fn walking(&self) -> bool {
        self.walk.is_some()
    }

    /// The session connection dropped: a walk under way is cut short and
    /// its shard is uncertain again. Returns how many shards were newly
    /// marked.
    pub fn on_session_lost(&mut self, ledger: &mut ShardLedger, stats: &mut Stats) -> u64 {
        let Some(w) = self.walk.take() else {
            return 0;
        };
        stats.resync_aborted += 1;
        u64::from(ledger.mark(w.shard as usize))
    }

    /// A walk under way is abandoned without its end marker (what it sent
    /// is merged, nothing is deleted) and its shard is uncertain again.
    /// True if there was one.
    pub fn abandon(&mut self, ledger: &mut ShardLedger, stats: &mut Stats) -> bool {
        let Some(w) = self.walk.take() else {
            return false;
        };
        if !ledger.mark(w.shard as usize) {
            // Marked again meanwhile: that mark covers it.
            stats.resync_aborted += 1;
        }
        true
    }

    /// Sends the next piece of repair; false if there was nothing to do.
    pub fn step(&mut self, cx: Step<'_>, now: Instant) -> Result<bool, ProtoError> {
        if cx.role != Role::Active {
            return self.request(cx, now);
        }
        if self.walk.is_none() {
            let Some(shard) = cx.ledger.uncertain.pop_first() else {
                return Ok(false);
            };
            let epoch = self.next_epoch;
            self.next_epoch = self.next_epoch.wrapping_add(1).max(1);
            let mut only = ShardSet::new(cx.table.shard_count());
            only.insert(shard);
            self.walk = Some(Walk {
                shard: shard as u32,
                epoch,
                cursor: SnapshotCursor::over(only),
                start_sent: false,
            });
        }
        let Some(w) = &mut self.walk else {
            return Ok(false);
        };
        let (shard, epoch) = (w.shard, w.epoch);
        if !w.start_sent {
            w.start_sent = true;
            let msg = ResyncStart { shard, epoch };
            let seq = cx.conn.send(Channel::Session, &msg, cx.stats, now)?;
            cx.ledger.sent(shard as usize, seq);
            cx.ledger.walk_sending(shard as usize);
        }
        // Encode straight from the slab: no intermediate copy.
        self.bulk.clear();
        let bulk = &mut self.bulk;
        cx.table
            .snapshot_chunk_with(&mut w.cursor, cx.chunk_records, |k, e| bulk.push(k, e));
        let done = w.cursor.is_done();
        if !self.bulk.is_empty() {
            let n = self.bulk.len() as u64;
            let seq = cx.conn.send(Channel::Session, &self.bulk, cx.stats, now)?;
            cx.stats.batches_tx += 1;
            cx.stats.records_tx += n;
            cx.ledger.sent(shard as usize, seq);
        }
        if done {
            let msg = ResyncEnd { shard, epoch };
            let seq = cx.conn.send(Channel::Session, &msg, cx.stats, now)?;
            cx.ledger.sent(shard as usize, seq);
            cx.ledger.walk_end_sent(shard as usize, seq);
            self.walk = None;
            cx.stats.shards_resynced += 1;
        }
        Ok(true)
    }

    /// A node that is not active does not walk its uncertain shards: a
    /// walk's end marker makes the receiver drop what the walk did not
    /// carry, so a standby (or a node that lost a split brain) would
    /// replace the active's authoritative shards with its own stale copy.
    /// It asks the active to resync them instead. A walk under way when
    /// the role changed is abandoned without its end marker (what it sent
    /// is merged, nothing is deleted).
    fn request(&mut self, cx: Step<'_>, now: Instant) -> Result<bool, ProtoError> {
        self.abandon(cx.ledger, cx.stats);
        if cx.ledger.uncertain.is_empty() {
            return Ok(false);
        }
        let shards: Vec<u32> = cx.ledger.uncertain.iter().map(|s| s as u32).collect();
        cx.ledger.uncertain.clear();
        let n = shards.len() as u64;
        let msg = ResyncRequest { shards };
        let seq = cx.conn.send(Channel::Session, &msg, cx.stats, now)?;
        // Lost with the connection, the request is made again.
        for &s in &msg.shards {
            cx.ledger.sent(s as usize, seq);
        }
        cx.stats.resync_requested += n;
        tracing::info!(
            shards = n,
            "asking the active peer to resync uncertain shards"
        );
        Ok(true)
    }
}

/// What a repair step works with.
pub(crate) struct Step<'a> {
    pub role: Role,
    pub conn: &'a mut Conn,
    pub table: &'a SessionTable,
    pub ledger: &'a mut ShardLedger,
    pub stats: &'a mut Stats,
    /// Records per chunk (smaller while incremental changes flow).
    pub chunk_records: usize,
}
