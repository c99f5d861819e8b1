//! What the peer sends us: session records, deletions, batch markers and
//! configuration, applied to the table and the config sink.

use crate::config_queue::{ConfigSink, ItemOutcome};
use crate::conn::{Conn, ConnKind, PerConn};
use crate::error::ProtoError;
use crate::event::{Event, Events};
use crate::jobs::{ConfigOutcome, JobKind};
use crate::stats::Stats;
use hotsync_table::{HashedRecord, SessionTable};
use hotsync_wire::{
    ArchivedConfigItemBatch, ArchivedConfigOp, ArchivedSessionDeleteBatch,
    ArchivedSessionUpsertBatch, Channel, ConfigBatchResult,
};
use std::time::Instant;

/// A batch the peer is sending us, as received so far.
#[derive(Default)]
struct IncomingBatch {
    received: u64,
    config: ConfigOutcome,
}

/// Receive-side state: the peer's batches under way, apply scratch.
pub(crate) struct Inbound {
    incoming: PerConn<Option<IncomingBatch>>,
    /// An incremental batch grouped by shard before it is applied.
    grouped: Vec<HashedRecord>,
    /// Its (shard, position) order.
    order: Vec<u64>,
}

impl Inbound {
    pub fn new(batch_records: usize) -> Self {
        Self {
            incoming: PerConn::default(),
            grouped: Vec::with_capacity(batch_records),
            order: Vec::with_capacity(batch_records),
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
        // A bulk chunk comes from one shard: apply it in order. An
        // incremental batch spans shards: group it by shard first.
        let bulk = &mut self.incoming.session;
        let full = if bulk.is_some() || table.shard_count() == 1 {
            table.apply_upserts(b.iter())
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

    /// The peer's batch sync on `conn` ended; a config batch is answered
    /// with our counts. Returns its kind if it ran whole on this connection
    /// (its start was seen here).
    pub fn batch_end(
        &mut self,
        conn: &mut Conn,
        job_id: u64,
        stats: &mut Stats,
        events: &mut Events,
        now: Instant,
    ) -> Result<Option<JobKind>, ProtoError> {
        let started = self.incoming[conn.kind].take();
        let whole = started.is_some();
        let inc = started.unwrap_or_default();
        let kind = match conn.kind {
            ConnKind::Config => {
                let r = ConfigBatchResult {
                    job_id,
                    added: inc.config.added,
                    equal: inc.config.equal,
                    conflicts: inc.config.conflicts,
                    rejected: inc.config.rejected,
                };
                conn.send(Channel::Config, &r, stats, now)?;
                JobKind::Config
            }
            ConnKind::Session => JobKind::ConnectionStatus,
        };
        events.push_back(Event::PeerBatchFinished {
            kind,
            received: inc.received,
        });
        Ok(whole.then_some(kind))
    }

    /// Applies the items of a config batch frame.
    pub fn config_items(
        &mut self,
        conn: ConnKind,
        b: &ArchivedConfigItemBatch,
        sink: &mut dyn ConfigSink,
        stats: &mut Stats,
    ) {
        let mut out = ConfigOutcome::default();
        for item in b.items.iter() {
            match sink.apply_batch_item(item.vsys.as_str(), item.text.as_str()) {
                ItemOutcome::Added => out.added += 1,
                ItemOutcome::Equal => out.equal += 1,
                ItemOutcome::Conflict => out.conflicts += 1,
                ItemOutcome::Rejected => out.rejected += 1,
            }
        }
        let n = b.items.len() as u64;
        stats.config_items_rx += n;
        if let Some(inc) = &mut self.incoming[conn] {
            inc.received += n;
            inc.config.added += out.added;
            inc.config.equal += out.equal;
            inc.config.conflicts += out.conflicts;
            inc.config.rejected += out.rejected;
        }
    }

    /// Replays one configuration change.
    pub fn config_op(
        op: &ArchivedConfigOp,
        sink: &mut dyn ConfigSink,
        stats: &mut Stats,
        events: &mut Events,
    ) {
        stats.config_ops_rx += 1;
        if let Err(e) = sink.apply_op(op.op, op.vsys.as_str(), op.text.as_str()) {
            stats.count_error("config_op_rejected");
            events.push_back(Event::Warning(format!(
                "configuration change from peer not applied: {e}"
            )));
        }
    }
}
