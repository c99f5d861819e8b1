//! Two nodes that both held the active role (a split brain healing, a
//! paused active resuming, preemption): what happens to the changes each
//! made while it was active.
//!
//! The node that keeps the role is authoritative (HRP's rule). The loser
//! first cancels the walks of its own table it was sending (a batch sync,
//! a shard resync: their chunks, encoded from its older copy, would land
//! on the winner after the hand-over). It ([`StepDown::stepped_down`])
//! then sends what its journals still hold at once
//! (its last changes, made while it was active: the sessions its data
//! plane carried), then asks the winner to resync every shard, so its copy
//! becomes the winner's. Changes that overflowed its journals never reach
//! the winner: counted and logged. The winner ([`StepDown::keep_own`])
//! applies those last changes only where it holds no version of its own:
//! the loser's sessions it lacks are added, every session it holds stays as
//! it is (what it did not apply is counted). Meanwhile it sends the loser
//! no session data (its own changes and walks wait in its journals and
//! ledger): the loser reads its journals before anything of the winner's
//! lands in its table, so a session the winner removed cannot make the
//! loser's newer one disappear unseen. The winner resumes when the loser's
//! resync request arrives (it follows the loser's last changes on the same
//! connection), or a dead interval after the session connection last came
//! up or the loser's last change arrived, without it. A node that preempts
//! is a winner from the moment it takes the role: the peer is still active
//! until it hears so.

use crate::resync::ShardLedger;
use crate::stats::Stats;
use hotsync_table::{SessionTable, ShardSet};
use hotsync_wire::{ArchivedSessionDeleteBatch, ArchivedSessionUpsertBatch};
use std::time::{Duration, Instant};

/// The winner's side: until when the peer's changes are a former active's.
#[derive(Default)]
pub(crate) struct StepDown {
    keep_own_until: Option<Instant>,
}

impl StepDown {
    /// This node kept the active role against a peer that claimed it too:
    /// the peer's changes until its resync request are a loser's.
    pub fn won_against_active(&mut self, dead: Duration, now: Instant) {
        if self.keep_own_until.is_none() {
            tracing::warn!(
                "the peer also claimed the active role; this node keeps it: its copy is authoritative, the peer's sessions it lacks are added"
            );
        }
        self.keep_own_until = Some(now + dead);
    }

    /// The peer asked for a resync: its last changes as an active node are
    /// all in (they precede the request on the connection).
    pub fn peer_requested_resync(&mut self) {
        self.keep_own_until = None;
    }

    /// The session connection is up again while the loser's request is
    /// awaited: the wait starts over (its changes and its request, if they
    /// were lost with the connection, come again on this one).
    pub fn reconnected(&mut self, dead: Duration, now: Instant) {
        self.still_coming(dead, now);
    }

    /// More of the loser's last changes arrived: the wait goes on (over a
    /// slow link its hand-over can take longer than a dead interval).
    pub fn still_coming(&mut self, dead: Duration, now: Instant) {
        if self.keep_own_until.is_some() {
            self.keep_own_until = Some(now + dead);
        }
    }

    /// This node is not active (any more): nothing to wait for.
    pub fn stop(&mut self) {
        self.keep_own_until = None;
    }

    /// Whether received changes are applied only where this node holds no
    /// version of its own, and its own session data waits.
    pub fn keeping_own(&self, now: Instant) -> bool {
        self.keep_own_until.is_some_and(|u| now < u)
    }

    /// When the wait ends at the latest (a timer).
    pub fn deadline(&self) -> Option<Instant> {
        self.keep_own_until
    }

    /// Applies a loser's upserts where this node holds no version of the
    /// session. Returns how many its full table refused.
    pub fn apply_upserts(
        b: &ArchivedSessionUpsertBatch,
        table: &SessionTable,
        stats: &mut Stats,
    ) -> usize {
        stats.batches_rx += 1;
        stats.records_rx += b.len() as u64;
        let mut full = 0;
        for (k, e) in b.iter() {
            // The loser's write of a session the winner removed is added
            // even while that removal is undrained: its journal then sends
            // the session back to the loser, whose last write it was.
            if table.contains(&k) {
                stats.split_brain_kept_own += 1;
            } else if table.apply_upsert(&k, &e).is_err() {
                full += 1;
            }
        }
        stats.apply_table_full += full as u64;
        full
    }

    /// A loser's deletions: this node keeps its own sessions.
    pub fn apply_deletes(b: &ArchivedSessionDeleteBatch, table: &SessionTable, stats: &mut Stats) {
        stats.batches_rx += 1;
        stats.deletes_rx += b.len() as u64;
        stats.split_brain_kept_own += b.iter().filter(|k| table.contains(k)).count() as u64;
    }

    /// This node left the active role to a peer that holds it: every shard
    /// is asked from the winner (its copy replaces ours, with our last
    /// changes merged into it); shards whose journal overflowed lost our
    /// changes there.
    pub fn stepped_down(table: &SessionTable, ledger: &mut ShardLedger, stats: &mut Stats) {
        let mut lost = ShardSet::new(table.shard_count());
        let n = table.take_overflowed(&mut lost);
        stats.journal_overflows += n as u64;
        stats.step_down_lost_shards += lost.len() as u64;
        let mut marked = 0;
        for s in 0..table.shard_count() {
            marked += u64::from(ledger.mark(s));
        }
        stats.resync_step_down += marked;
        if lost.is_empty() {
            tracing::warn!(
                "stepped down from active: this node's last changes go to the active peer, then every shard is resynced from it"
            );
        } else {
            tracing::warn!(
                lost_shards = lost.len(),
                "stepped down from active: changes made while active in shards whose journal overflowed are LOST (replaced by the active peer's copy); the rest go to the peer, then every shard is resynced from it"
            );
        }
    }
}
