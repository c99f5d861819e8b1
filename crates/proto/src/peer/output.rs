//! The fill order: what each connection sends next when the driver asks
//! for bytes.

use super::Core;
use crate::bulk_window::Pace;
use crate::conn::ConnKind;
use crate::error::ProtoError;
use crate::incremental::Drain;
use crate::jobs::{self, SessionStep};
use crate::resync;
use crate::role::Role;
use hotsync_wire::{Ack, Channel};
use std::time::Instant;

impl Core {
    pub(super) fn has_work(&self, kind: ConnKind) -> bool {
        if self.conns[kind].ack_due {
            return true;
        }
        if !self.established {
            return false;
        }
        match kind {
            ConnKind::Session => {
                self.table.has_pending()
                    || self.incremental.has_open_batch()
                    || !self.ledger.uncertain.is_empty()
                    || self.resync.walking()
                    || self.jobs.session_pending()
            }
            ConnKind::Config => self.config_queue.has_unsent() || self.jobs.config_pending(),
        }
    }

    /// The fill order: the acknowledgement first, then (once established)
    /// the connection's own data.
    pub(super) fn fill(&mut self, kind: ConnKind, now: Instant) -> Result<(), ProtoError> {
        let conn = &mut self.conns[kind];
        if !conn.is_up() {
            return Ok(());
        }
        if conn.ack_due {
            conn.ack_due = false;
            let ack = Ack {
                channel: kind.channel() as u8,
                seq: conn.rx_seq,
            };
            conn.send(Channel::Control, &ack, &mut self.stats, now)?;
            self.stats.acks_tx += 1;
        }
        if !self.established {
            return Ok(());
        }
        match kind {
            ConnKind::Session => self.fill_session(now),
            ConnKind::Config => self.fill_config(now),
        }
    }

    /// Incremental first (it is what the latency target is about), then the
    /// repair of uncertain shards, then the bulk batch sync, each chunk
    /// encoded only when the bulk window has room (`bulk_window`: while
    /// incremental changes flow, few short chunks are in flight ahead of
    /// them).
    fn fill_session(&mut self, now: Instant) -> Result<(), ProtoError> {
        if self.holding(now) {
            return Ok(());
        }
        self.drain_incremental(now)?;
        // Records a full table refused: once their shard has room, a node
        // that is not active asks for the shard again (the active's own
        // refusals are its data plane's to handle).
        if self.election.role != Role::Active {
            self.stats.resync_table_full += self.ledger.room_freed(&self.table);
        }
        // Bulk also stops at a quarter of the high-water mark: enough
        // queued to keep the socket busy with large writes.
        loop {
            let pace = Pace::new(
                self.incremental.busy(&self.table, now),
                self.cfg.batch_records,
            );
            let conn = &self.conns.session;
            if !conn.has_room(self.cfg.tx_high_water / 4)
                || !self.bulk_window.has_room(conn.peer_acked, pace)
            {
                break;
            }
            let repair = resync::Step {
                role: self.election.role,
                conn: &mut self.conns.session,
                table: &self.table,
                ledger: &mut self.ledger,
                stats: &mut self.stats,
                chunk_records: pace.chunk_records,
            };
            if !self.resync.step(repair, now)? {
                let job = jobs::Step {
                    conn: &mut self.conns.session,
                    table: &self.table,
                    cfg: &self.cfg,
                    stats: &mut self.stats,
                    chunk_records: pace.chunk_records,
                };
                let SessionStep::Sent { chunk } = self.jobs.session_step(job, now)? else {
                    break;
                };
                // A node that is not active sends its own copy in a batch
                // chunk: it crosses the active's walk of that shard as its
                // changes do, and the walk is asked for again.
                if let Some((shard, seq)) = chunk {
                    if self.election.role != Role::Active {
                        self.ledger.sent_own_copy(shard, seq);
                    }
                }
            }
            self.bulk_window.sent(self.conns.session.tx_seq);
            // New changes may have arrived while bulk was being encoded.
            self.drain_incremental(now)?;
        }
        if self.handover == Some(u64::MAX)
            && self.ledger.uncertain.is_empty()
            && !self.resync.walking()
        {
            // The request went out: the hand-over is complete once the peer
            // acknowledges it.
            self.handover = Some(self.conns.session.tx_seq);
        }
        self.ledger.debug_check(self.conns.session.tx_seq);
        Ok(())
    }

    fn drain_incremental(&mut self, now: Instant) -> Result<(), ProtoError> {
        let mut cx = Drain {
            conn: &mut self.conns.session,
            table: &self.table,
            cfg: &self.cfg,
            ledger: &mut self.ledger,
            stats: &mut self.stats,
            coalesce: self.election.role == Role::Active,
        };
        self.incremental.drain(&mut cx, now)
    }

    /// Incremental changes in order, then a bounded part of the batch: the
    /// config connection is low priority, and paced while incremental
    /// session changes flow (`config_pace`).
    fn fill_config(&mut self, now: Instant) -> Result<(), ProtoError> {
        let busy = self.incremental.busy(&self.table, now);
        let conn = &mut self.conns.config;
        let high_water = self.cfg.tx_high_water;
        self.config_queue
            .fill(conn, high_water, &mut self.stats, now)?;
        let job = jobs::Step {
            conn,
            table: &self.table,
            cfg: &self.cfg,
            stats: &mut self.stats,
            chunk_records: self.cfg.batch_records,
        };
        self.jobs.config_step(job, &mut self.config_pace, busy, now)
    }
}
