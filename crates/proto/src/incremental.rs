//! Incremental sync (B3): draining the table's change journals, coalescing
//! changes for a short window, and sending them in as few batches as
//! possible.

use crate::conn::Conn;
use crate::error::ProtoError;
use crate::resync::ShardLedger;
use crate::settings::ProtoConfig;
use crate::stats::Stats;
use hotsync_table::{Change, SessionKey, SessionTable, ShardSet};
use hotsync_wire::{Channel, SessionDeleteBatch, SessionUpsertBatch};
use std::collections::VecDeque;
use std::time::Instant;

/// The open batch and where the next drain pass resumes.
pub(crate) struct Incremental {
    changes: Vec<Change>,
    upserts: SessionUpsertBatch,
    deletes: SessionDeleteBatch,
    /// Shards whose changes sit in `upserts`/`deletes`, not yet sent.
    open_shards: ShardSet,
    /// When the first change of the open batch was seen.
    open_since: Option<Instant>,
    /// Shards whose journal mark was taken ([`SessionTable::take_journaled`])
    /// and that are not drained empty yet: this set now stands for the mark.
    to_drain: ShardSet,
    next_drain_shard: usize,
    /// When the last batch was sent (bulk yields to incremental for a
    /// while after it: `bulk_window`).
    last_batch: Option<Instant>,
    /// Removals drained and not yet acknowledged by the peer, oldest
    /// first, with the sequence number of the frame that carried them
    /// (`u64::MAX` while in the open batch). A standby's batch chunk
    /// encoded before one reached it still holds the session: it must not
    /// bring it back here (`Inbound::standby_batch_upserts`). Bounded by
    /// the unacknowledged window (`tx_high_water`).
    removals: VecDeque<(u64, SessionKey)>,
}

/// What draining works with.
pub(crate) struct Drain<'a> {
    pub conn: &'a mut Conn,
    pub table: &'a SessionTable,
    pub cfg: &'a ProtoConfig,
    pub ledger: &'a mut ShardLedger,
    pub stats: &'a mut Stats,
    /// Whether changes wait for the coalescing window. A node that is not
    /// active sends at once: its changes must precede the resync request
    /// it sends next (see `crate::step_down`).
    pub coalesce: bool,
}

impl Incremental {
    pub fn new(shards: usize, batch_records: usize) -> Self {
        Self {
            changes: Vec::with_capacity(batch_records),
            upserts: SessionUpsertBatch::default(),
            deletes: SessionDeleteBatch::default(),
            open_shards: ShardSet::new(shards),
            open_since: None,
            to_drain: ShardSet::new(shards),
            next_drain_shard: 0,
            last_batch: None,
            removals: VecDeque::new(),
        }
    }

    /// The peer acknowledged frames up to `seq`: their removals are there.
    pub fn acked(&mut self, seq: u64) {
        while self.removals.front().is_some_and(|&(s, _)| s <= seq) {
            self.removals.pop_front();
        }
    }

    /// Keys whose removal left this node's journals and has not been
    /// acknowledged by the peer.
    pub fn removals_on_the_way(&self) -> impl Iterator<Item = &SessionKey> {
        self.removals.iter().map(|(_, k)| k)
    }

    /// Shards whose drained changes wait to be sent.
    pub fn open_shard_count(&self) -> u64 {
        self.open_shards.len() as u64
    }

    /// Drained changes wait to be sent.
    pub fn has_open_batch(&self) -> bool {
        !self.upserts.is_empty() || !self.deletes.is_empty()
    }

    /// Whether incremental changes flow now (pending, open, or a batch
    /// sent a moment ago): bulk then goes in small steps behind them.
    pub fn busy(&self, table: &SessionTable, now: Instant) -> bool {
        crate::bulk_window::incremental_busy(
            table.has_pending() || self.has_open_batch(),
            self.last_batch,
            now,
        )
    }

    /// When the coalescing window closes.
    pub fn deadline(&self, cfg: &ProtoConfig) -> Option<Instant> {
        self.open_since.map(|b| b + cfg.flush_interval)
    }

    /// Whether the coalescing window is open now.
    pub fn window_open(&self, cfg: &ProtoConfig, now: Instant) -> bool {
        self.open_since
            .is_some_and(|t| now.saturating_duration_since(t) < cfg.flush_interval)
    }

    /// The session connection dropped: what was drained and not sent is
    /// lost, so its shards are uncertain. Returns how many were newly
    /// marked.
    pub fn on_session_lost(&mut self, ledger: &mut ShardLedger) -> u64 {
        let lost = self
            .open_shards
            .iter()
            .map(|s| u64::from(ledger.mark(s)))
            .sum();
        self.open_shards.clear();
        self.upserts.clear();
        self.deletes.clear();
        self.open_since = None;
        // Sequence numbers start over; what was not acknowledged is in
        // shards now uncertain.
        self.removals.clear();
        lost
    }

    /// B4 when a new relationship forms: what the journals hold from before
    /// waits for a manual batch sync; only later changes are incremental.
    /// Returns how many changes were dropped.
    pub fn discard_journals(&mut self, table: &SessionTable) -> u64 {
        let mut dropped = 0;
        table.clear_pending();
        let mut sink = ShardSet::new(table.shard_count());
        table.take_overflowed(&mut sink);
        for s in 0..table.shard_count() {
            loop {
                self.changes.clear();
                let n = table.drain_changes(s, 4096, &mut self.changes);
                dropped += n as u64;
                if n == 0 {
                    break;
                }
            }
        }
        self.changes.clear();
        dropped
    }

    /// Drains the journals into batches and sends them once the coalescing
    /// window closed.
    pub fn drain(&mut self, cx: &mut Drain<'_>, now: Instant) -> Result<(), ProtoError> {
        if !cx.table.has_pending() {
            return Ok(());
        }
        // Coalescing window: the first change seen opens it; the journals
        // gather (and coalesce) changes until it closes, then everything
        // goes out in as few batches as possible.
        let opened = *self.open_since.get_or_insert(now);
        if cx.coalesce && now.saturating_duration_since(opened) < cx.cfg.flush_interval {
            return Ok(());
        }
        let before = cx.ledger.uncertain.len();
        let n = cx.table.take_overflowed(&mut cx.ledger.uncertain);
        if n > 0 {
            cx.stats.journal_overflows += n as u64;
            // Only shards newly marked: one already waiting is resynced
            // once, so counting it again would break the balance.
            cx.stats.resync_overflow += (cx.ledger.uncertain.len() - before) as u64;
            tracing::warn!(
                shards = n,
                "change journal overflow: resyncing those shards"
            );
        }
        // While changes keep coming the pending signal stays set, so
        // writers do not wake this loop (a syscall on the data plane) for
        // every batch; it is cleared only after a pass found the journals
        // empty, and a second pass closes the race with a write that landed
        // in between.
        if self.drain_pass(cx, now)? == 0 {
            cx.table.clear_pending();
            if self.drain_pass(cx, now)? > 0 {
                cx.table.mark_pending();
            }
        }
        self.flush(cx, now)
    }

    /// One pass over the journals, resuming at the shard where the last
    /// pass stopped; returns how many changes it drained.
    fn drain_pass(&mut self, cx: &mut Drain<'_>, now: Instant) -> Result<usize, ProtoError> {
        let mut drained = 0;
        let shards = cx.table.shard_count();
        // Only shards whose journal turned non-empty are locked (with 256
        // shards, locking each one every pass cost more than draining).
        cx.table.take_journaled(&mut self.to_drain);
        let mut idle = 0;
        while idle < shards && cx.conn.has_room(cx.cfg.tx_high_water) {
            let s = self.next_drain_shard;
            if !self.to_drain.contains(s) {
                idle += 1;
                self.next_drain_shard = (s + 1) % shards;
                continue;
            }
            if self.open_shards.contains(s) {
                // This shard's changes from an earlier pass (only with a
                // flush interval) are still open: send them before
                // draining it again, so a key is in the open batch once
                // and the order between its two lists does not matter.
                self.flush(cx, now)?;
            }
            let space = cx.cfg.batch_records - (self.upserts.len() + self.deletes.len());
            self.changes.clear();
            let n = cx.table.drain_taken(s, space, &mut self.changes);
            drained += n;
            for c in &self.changes {
                match &c.entry {
                    Some(e) => self.upserts.push(&c.key, e),
                    None => {
                        self.deletes.push(&c.key);
                        self.removals.push_back((u64::MAX, c.key));
                    }
                }
            }
            if n > 0 {
                self.open_shards.insert(s);
            }
            if n < space {
                // Drained empty: a later write marks it again.
                self.to_drain.remove(s);
                idle += 1;
                self.next_drain_shard = (s + 1) % shards;
            } else {
                // Batch full: send it and keep draining this shard.
                idle = 0;
                self.flush(cx, now)?;
            }
        }
        if idle < shards {
            // Stopped for lack of room: come back for the rest.
            cx.table.mark_pending();
        }
        Ok(drained)
    }

    /// Sends the open batch.
    fn flush(&mut self, cx: &mut Drain<'_>, now: Instant) -> Result<(), ProtoError> {
        let mut seq = None;
        // Deletions go before upserts. The open batch holds each shard's
        // changes from one drain only (see `drain_pass`: a shard's open
        // changes are sent before it is drained again), where a key appears
        // once, so the order between the two lists is free; and this one is
        // the one a full table needs: the standby applies the removal that
        // freed a slot before the insert that took it (upserts first, its
        // full shard refused the insert and the session was lost).
        if !self.deletes.is_empty() {
            let n = self.deletes.len() as u64;
            let sent = cx
                .conn
                .send(Channel::Session, &self.deletes, cx.stats, now)?;
            for r in self.removals.iter_mut().rev() {
                if r.0 != u64::MAX {
                    break;
                }
                r.0 = sent;
            }
            seq = Some(sent);
            cx.stats.batches_tx += 1;
            cx.stats.deletes_tx += n;
            self.deletes.clear();
        }
        if !self.upserts.is_empty() {
            let n = self.upserts.len() as u64;
            seq = Some(
                cx.conn
                    .send(Channel::Session, &self.upserts, cx.stats, now)?,
            );
            cx.stats.batches_tx += 1;
            cx.stats.records_tx += n;
            self.upserts.clear();
        }
        if let Some(seq) = seq {
            self.last_batch = Some(now);
            for s in self.open_shards.iter() {
                cx.ledger.sent_changes(s, seq);
            }
        }
        self.open_shards.clear();
        self.open_since = None;
        Ok(())
    }
}
