//! What the peer sends us on the session connection: session records,
//! deletions and batch markers, applied to the table. (Configuration is
//! `config_apply.rs`.)

use crate::conn::{ConnKind, PerConn};
use crate::event::{Event, Events};
use crate::jobs::JobKind;
use crate::settings::ProtoConfig;
use crate::stats::Stats;
use hotsync_table::{ApplyWorker, HashedRecord, IfAbsent, SessionKey, SessionTable};
use hotsync_wire::{ArchivedSessionDeleteBatch, ArchivedSessionUpsertBatch};
use std::collections::HashSet;
use std::sync::Arc;

/// A batch the peer is sending us, as received so far.
#[derive(Default)]
struct IncomingBatch {
    received: u64,
}

/// Receive-side state: the peer's batches under way, apply scratch.
pub(crate) struct Inbound {
    incoming: PerConn<Option<IncomingBatch>>,
    /// An incremental batch grouped by shard before it is applied.
    grouped: Vec<HashedRecord>,
    /// Its (shard, position) order.
    order: Vec<u64>,
    /// The second apply thread and the chunk size from which it is used
    /// (`ProtoConfig::parallel_apply_min_records`).
    worker: Option<(ApplyWorker, usize)>,
}

/// The apply worker `cfg` asks for, if the machine has a second core.
pub(crate) fn apply_worker(
    cfg: &ProtoConfig,
    table: &Arc<SessionTable>,
) -> Option<(ApplyWorker, usize)> {
    let min = cfg.parallel_apply_min_records;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if min == 0 || cores < 2 {
        return None;
    }
    match ApplyWorker::spawn(Arc::clone(table)) {
        Ok(w) => Some((w, min)),
        Err(e) => {
            tracing::warn!(
                "no apply worker thread ({e}): received chunks are applied by one thread"
            );
            None
        }
    }
}

impl Inbound {
    pub fn new(batch_records: usize, worker: Option<(ApplyWorker, usize)>) -> Self {
        Self {
            incoming: PerConn::default(),
            grouped: Vec::with_capacity(batch_records),
            order: Vec::with_capacity(batch_records),
            worker,
        }
    }

    /// The connection dropped: a batch under way on it is abandoned.
    pub fn on_disconnect(&mut self, kind: ConnKind) {
        self.incoming[kind] = None;
    }

    /// Applies session upserts.
    pub fn upserts(
        &mut self,
        b: &ArchivedSessionUpsertBatch,
        table: &SessionTable,
        stats: &mut Stats,
    ) {
        stats.batches_rx += 1;
        // A bulk chunk comes from one shard: apply it in order (a large one
        // on two threads, whole before this returns). An incremental batch
        // spans shards: group it by shard first.
        let bulk = &mut self.incoming.session;
        let full = if bulk.is_some() || table.shard_count() == 1 {
            match &self.worker {
                Some((w, min)) if b.len() >= *min => w.apply_upserts(b.iter()),
                _ => table.apply_upserts(b.iter()),
            }
        } else {
            self.grouped.clear();
            self.grouped
                .extend(b.iter().map(|(k, e)| HashedRecord::new(k, e)));
            table.apply_upserts_grouped(&self.grouped, &mut self.order)
        };
        stats.apply_table_full += full as u64;
        let n = b.len() as u64;
        stats.records_rx += n;
        if let Some(inc) = bulk {
            inc.received += n;
        }
    }

    /// Whether the peer is sending us a session batch sync (its start seen
    /// on this connection, its end not yet).
    pub fn peer_batch_running(&self) -> bool {
        self.incoming[ConnKind::Session].is_some()
    }

    /// Applies upserts of a batch sync the standby runs towards us, the
    /// active (B5: it adds what we lack; our copy is authoritative). The
    /// standby encoded its chunk before our newest changes reached it, so a
    /// record is inserted only where we hold no version of the session, no
    /// removal of it is on the way to the standby (`removed`: drained and
    /// not acknowledged; the table checks its journal) and its shard is
    /// `settled` (no walk of ours the standby may not have applied: a
    /// walk's end marker drops what it did not carry). Otherwise the
    /// session we removed would come back here while the standby drops it.
    /// The records kept out are counted in `standby_batch_kept_own`.
    /// Returns how many records our full table refused.
    pub fn standby_batch_upserts(
        &mut self,
        b: &ArchivedSessionUpsertBatch,
        table: &SessionTable,
        removed: &HashSet<SessionKey>,
        settled: impl Fn(usize) -> bool,
        stats: &mut Stats,
    ) -> usize {
        stats.batches_rx += 1;
        stats.records_rx += b.len() as u64;
        let mut full = 0;
        for (k, e) in b.iter() {
            // Most keys of such a batch are ours already: a lock-free look
            // settles them without taking the shard's writer lock.
            let outcome = if table.contains(&k) {
                Ok(IfAbsent::Present)
            } else if removed.contains(&k) || !settled(table.shard_of(&k)) {
                Ok(IfAbsent::Removing)
            } else {
                table.apply_upsert_if_absent(&k, &e)
            };
            match outcome {
                Ok(IfAbsent::Inserted) => {}
                Ok(IfAbsent::Present | IfAbsent::Removing) => stats.standby_batch_kept_own += 1,
                Err(_) => full += 1,
            }
        }
        stats.apply_table_full += full as u64;
        if let Some(inc) = &mut self.incoming[ConnKind::Session] {
            inc.received += b.len() as u64;
        }
        full
    }

    /// Applies session deletions.
    pub fn deletes(b: &ArchivedSessionDeleteBatch, table: &SessionTable, stats: &mut Stats) {
        stats.batches_rx += 1;
        for k in b.iter() {
            table.apply_remove(&k);
        }
        stats.deletes_rx += b.len() as u64;
    }

    /// The peer starts a batch sync of `kind` on connection `conn`.
    pub fn batch_start(&mut self, conn: ConnKind, kind: JobKind, total: u64, events: &mut Events) {
        self.incoming[conn] = Some(IncomingBatch::default());
        events.push_back(Event::PeerBatchStarted { kind, total });
    }

    /// The peer left the active role: it cancelled the session batch sync
    /// it was sending us (its chunks all came before the heartbeat that
    /// said so), which ends here, not whole.
    pub fn peer_left_active(&mut self, events: &mut Events) {
        if let Some(inc) = self.incoming[ConnKind::Session].take() {
            tracing::info!(
                received = inc.received,
                "the peer stepped down from active: its batch sync towards us is cancelled"
            );
            events.push_back(Event::PeerBatchFinished {
                kind: JobKind::ConnectionStatus,
                received: inc.received,
            });
        }
    }

    /// The peer's session batch sync ended. Returns whether it ran whole
    /// on this connection (its start was seen here).
    pub fn batch_end(&mut self, events: &mut Events) -> bool {
        let started = self.incoming[ConnKind::Session].take();
        let whole = started.is_some();
        let inc = started.unwrap_or_default();
        events.push_back(Event::PeerBatchFinished {
            kind: JobKind::ConnectionStatus,
            received: inc.received,
        });
        whole
    }
}
