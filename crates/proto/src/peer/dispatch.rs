//! Message dispatch: each received frame goes to the handshake or, on an
//! up connection, to the piece of state its message concerns.

use super::Core;
use crate::conn::{ConnKind, Phase};
use crate::error::ProtoError;
use crate::event::{Action, Event, PeerInfo};
use crate::handshake::{self, Progress};
use crate::jobs::JobKind;
use crate::receive::Inbound;
use crate::relationship::Formed;
use crate::role::Role;
use crate::step_down::StepDown;
use hotsync_wire::{Channel, Frame, Integrity, MessageKind, MessageRef};
use std::time::Instant;

impl Core {
    /// Handles one frame; returns the frame key the decoder switches to
    /// when the handshake completed with one.
    pub(super) fn on_frame(
        &mut self,
        kind: ConnKind,
        frame: &Frame<'_>,
        now: Instant,
    ) -> Result<Option<Integrity>, ProtoError> {
        let h = frame.header;
        let c = &mut self.conns[kind];
        if h.seq != c.rx_seq + 1 {
            return Err(ProtoError::SequenceGap {
                expected: c.rx_seq + 1,
                got: h.seq,
            });
        }
        c.rx_seq = h.seq;
        c.last_rx = now;
        c.count_rx_frame(&mut self.stats);
        if h.channel != Channel::Control && h.channel != kind.channel() {
            return Err(ProtoError::WrongChannel {
                expected: kind.name(),
                got: match h.channel {
                    Channel::Session => "session",
                    Channel::Config => "config",
                    Channel::Control => "control",
                },
            });
        }
        let msg = frame.message()?;
        let progress = match (self.conns[kind].phase, msg) {
            (Phase::AwaitHello, MessageRef::Hello(hello)) => {
                let shards = self.table.shard_count();
                let c = &mut self.conns[kind];
                handshake::on_hello(c, hello, &self.cfg, shards, &mut self.stats, now)?
            }
            (Phase::AwaitHello, _) => {
                return Err(ProtoError::Unexpected {
                    kind: h.kind,
                    state: "before hello",
                });
            }
            (Phase::AwaitAuth, MessageRef::AuthProof(p)) => {
                handshake::on_proof(&self.conns[kind], &p.mac, &self.cfg)?
            }
            (Phase::AwaitAuth, MessageRef::Close(c)) => return Err(peer_closed(c)),
            (Phase::AwaitAuth, _) => return Err(ProtoError::AuthRequired),
            (Phase::Up, msg) => {
                if kind == ConnKind::Session {
                    self.election.heard(now);
                }
                self.on_message(kind, h.kind, msg, now)?;
                return Ok(None);
            }
            (Phase::Down | Phase::Closing, _) => return Ok(None),
        };
        match progress {
            Progress::AwaitProof => Ok(None),
            Progress::Complete {
                authenticated,
                receive,
            } => {
                self.check_same_process(kind)?;
                self.conn_up(kind, authenticated, now);
                Ok(receive)
            }
        }
    }

    /// A config connection that completes its handshake while the
    /// relationship is established must come from the same peer process
    /// as the session connection: changes queued for that process must
    /// not reach another one (a restarted peer forms a new relationship on
    /// its session connection first, B4).
    fn check_same_process(&self, kind: ConnKind) -> Result<(), ProtoError> {
        let claimed = self.conns[kind].claim.map(|c| c.incarnation);
        if kind == ConnKind::Config && self.established && claimed != self.relationship.peer() {
            return Err(ProtoError::Unexpected {
                kind: MessageKind::Hello,
                state: "from another process than the session connection's peer",
            });
        }
        Ok(())
    }

    /// A connection completed its handshake. The session connection
    /// carries the relationship: its claims become our view of the peer.
    fn conn_up(&mut self, kind: ConnKind, authenticated: bool, now: Instant) {
        let conn = &mut self.conns[kind];
        conn.phase = Phase::Up;
        let held = std::mem::take(&mut conn.handshake_io);
        held.fold_into(&mut self.stats);
        let claim = conn.claim;
        self.stats.connections += 1;
        self.events.push_back(Event::Connected(kind));
        if kind == ConnKind::Config {
            return;
        }
        let peer = claim.unwrap_or(PeerInfo {
            node_id: 0,
            priority: 0,
            role: Role::Initial,
            preempt: false,
            incarnation: 0,
        });
        self.establish(peer, authenticated, now);
    }

    fn establish(&mut self, peer: PeerInfo, authenticated: bool, now: Instant) {
        let before = self.election.role;
        // Still waiting for a former active's request: it comes on this
        // connection (a request lost with the old one is made again).
        self.step_down.reconnected(self.cfg.dead_interval(), now);
        let (role, changed) = self.election.on_established(peer, now, &mut self.events);
        self.roles_settled(before, peer.role, changed, now);
        if !changed && self.election.role != Role::Active {
            self.say_was_active(now);
        }
        self.established = true;
        self.authenticated = authenticated;
        let formed = self.relationship.on_established(peer.incarnation);
        match formed {
            Formed::First => {
                // B4: what existed before the relationship formed waits for
                // a manual batch sync; only changes from now on are
                // incremental.
                let n = self.incremental.discard_journals(&self.table);
                self.stats.changes_before_establish += n;
                self.table.set_capture(true);
            }
            Formed::PeerRestarted => self.forget_previous_peer(),
            Formed::Resumed => self.stats.relationships_resumed += 1,
        }
        if !authenticated {
            self.events.push_back(Event::Warning(
                "HRP link established WITHOUT authentication: configure a pre-shared key".into(),
            ));
        }
        self.events.push_back(Event::Established {
            peer_node_id: peer.node_id,
            role,
            authenticated,
        });
        tracing::info!(peer = peer.node_id, %role, authenticated, ?formed, "HRP relationship established");
        if formed != Formed::Resumed {
            let missing = self.relationship.unsynced().commands().join("` and `");
            self.events.push_back(Event::Warning(format!(
                "peer incomplete: a new relationship synchronizes nothing from before it (B4); run `{missing}`"
            )));
        }
        self.election.check_preempt(true, now);
        // Resuming delivers what changed during the outage: no batch needed.
        if formed != Formed::Resumed && self.cfg.auto_sync_on_establish {
            // Already running is fine: that job covers it.
            let _ = self.start_session_sync(now);
            self.actions.push_back(Action::StartConfigSync);
        }
    }

    /// The peer came back as another process: the relationship is new
    /// (B4). What was kept for the previous process (changes journaled
    /// during the outage, uncertain shards, queued configuration changes)
    /// is not sent: a fragment of the outage window would look like a
    /// synchronized peer. Counted; the peer shows incomplete until batch
    /// syncs. A batch sync still running was asked for by the operator: it
    /// starts over for the new process.
    fn forget_previous_peer(&mut self) {
        self.stats.peer_restarts += 1;
        self.stats.outage_changes_dropped += self.incremental.discard_journals(&self.table);
        let shards = self.ledger.uncertain.len() as u64;
        self.ledger.uncertain.clear();
        self.stats.outage_shards_dropped += shards;
        let ops = self.config_queue.clear() as u64;
        self.stats.outage_config_ops_dropped += ops;
        self.jobs.on_peer_restarted(&self.table);
        tracing::info!(
            shards,
            config_changes = ops,
            "peer restarted: a new relationship; nothing from the outage is sent"
        );
    }

    fn on_message(
        &mut self,
        kind: ConnKind,
        msg_kind: MessageKind,
        msg: MessageRef<'_>,
        now: Instant,
    ) -> Result<(), ProtoError> {
        if !matches!(msg, MessageRef::Heartbeat(_) | MessageRef::Ack(_)) {
            self.conns[kind].ack_due = true;
        }
        match msg {
            MessageRef::Heartbeat(hb) => {
                self.stats.heartbeats_rx += 1;
                if kind == ConnKind::Session {
                    let role = hb.role()?;
                    let prio = hb.priority.to_native();
                    let est = self.established;
                    let before = self.election.role;
                    let peer_was = self.election.peer.map(|p| p.role);
                    if peer_was == Some(Role::Active) && role != Role::Active {
                        self.inbound.peer_left_active(&mut self.events);
                    }
                    let changed =
                        self.election
                            .on_heartbeat(role, prio, est, now, &mut self.events);
                    self.roles_settled(before, role, changed, now);
                }
                Ok(())
            }
            MessageRef::Ack(a) => {
                a.channel(kind.channel())?;
                self.on_ack(kind, a.seq.to_native(), now)
            }
            MessageRef::Close(c) => Err(peer_closed(c)),
            MessageRef::Hello(_) | MessageRef::AuthProof(_) => Err(ProtoError::Unexpected {
                kind: msg_kind,
                state: "after the handshake",
            }),
            MessageRef::SessionUpsertBatch(_)
            | MessageRef::SessionDeleteBatch(_)
            | MessageRef::ResyncStart(_)
            | MessageRef::ResyncEnd(_)
            | MessageRef::ResyncRequest(_) => self.on_session_data(msg_kind, msg, now),
            _ => self.on_batch_message(kind, msg, now),
        }
    }

    /// Session records, deletions and resync markers.
    fn on_session_data(
        &mut self,
        msg_kind: MessageKind,
        msg: MessageRef<'_>,
        now: Instant,
    ) -> Result<(), ProtoError> {
        let keep_own = self.step_down.keeping_own(now);
        // The peer's batch sync reaching us while we hold the active role
        // is never authoritative, whatever role the peer still claims (a
        // split brain's loser claims it until its hand-over is
        // acknowledged; if we step down instead, we ask the winner for
        // every shard anyway): see `Inbound::standby_batch_upserts`. Its
        // incremental changes of sessions we hold are kept out too while
        // the batch runs: records of both kinds share the connection
        // unmarked.
        let standby_batch = self.inbound.peer_batch_running() && self.election.role == Role::Active;
        match msg {
            MessageRef::SessionUpsertBatch(b) if standby_batch => {
                let acked = self.conns[ConnKind::Session].peer_acked;
                let removed = self.incremental.removals_on_the_way().copied().collect();
                let ledger = &self.ledger;
                let settled = |s| ledger.walked_and_settled(s, acked);
                self.inbound.standby_batch_upserts(
                    b,
                    &self.table,
                    &removed,
                    settled,
                    &mut self.stats,
                );
                if keep_own {
                    self.step_down.still_coming(self.cfg.dead_interval(), now);
                }
            }
            MessageRef::SessionUpsertBatch(b) if keep_own => {
                StepDown::apply_upserts(b, &self.table, &mut self.stats);
                self.step_down.still_coming(self.cfg.dead_interval(), now);
            }
            MessageRef::SessionDeleteBatch(b) if keep_own => {
                StepDown::apply_deletes(b, &self.table, &mut self.stats);
                self.step_down.still_coming(self.cfg.dead_interval(), now);
            }
            MessageRef::SessionUpsertBatch(b) => {
                let before = self.stats.apply_table_full;
                self.inbound.upserts(b, &self.table, &mut self.stats);
                if self.stats.apply_table_full > before {
                    // Rare: find the shards that refused, to ask for them
                    // again once room frees up (see `fill_session`).
                    for (k, _) in b.iter().filter(|(k, _)| !self.table.contains(k)) {
                        let s = self.table.shard_of(&k);
                        self.ledger.refused(s, self.table.shard_len(s));
                    }
                }
            }
            MessageRef::SessionDeleteBatch(b) => {
                Inbound::deletes(b, &self.table, &mut self.stats);
            }
            MessageRef::ResyncStart(r) => {
                let shard = self.check_shard(r.shard.to_native(), msg_kind)?;
                self.table.begin_resync(shard, r.epoch.to_native());
                let acked = self.conns[ConnKind::Session].peer_acked;
                self.ledger.walk_started(shard, acked);
            }
            MessageRef::ResyncEnd(r) => {
                let shard = self.check_shard(r.shard.to_native(), msg_kind)?;
                let removed = self.table.end_resync(shard, r.epoch.to_native());
                self.stats.resync_removed += removed as u64;
                if self.ledger.walk_crossed(shard) && self.ledger.mark(shard) {
                    // Asked for again (`crate::resync`): our changes it
                    // crossed are in the peer's copy, not in ours.
                    self.stats.resync_crossed += 1;
                }
            }
            MessageRef::ResyncRequest(r) => {
                // Validated whole before any shard is marked: a refused
                // request changes nothing.
                for s in r.shards.iter() {
                    self.check_shard(s.to_native(), msg_kind)?;
                }
                for s in r.shards.iter() {
                    if self.ledger.mark(s.to_native() as usize) {
                        self.stats.resync_request += 1;
                    }
                }
                self.step_down.peer_requested_resync();
            }
            _ => {}
        }
        Ok(())
    }

    /// Batch-sync markers and configuration.
    fn on_batch_message(
        &mut self,
        kind: ConnKind,
        msg: MessageRef<'_>,
        now: Instant,
    ) -> Result<(), ProtoError> {
        match msg {
            MessageRef::BatchStart(b) => {
                let job = b.what()?;
                let total = b.total.to_native();
                if kind == ConnKind::Config {
                    self.config_apply.batch_start();
                }
                self.inbound.batch_start(kind, job, total, &mut self.events);
            }
            MessageRef::BatchEnd(b) => {
                let id = b.job_id.to_native();
                match kind {
                    ConnKind::Session => {
                        // Only the active's batch fills a new relationship's
                        // standby (B4); the standby's adds to the active.
                        let from_active = self.election.role != Role::Active;
                        if self.inbound.batch_end(&mut self.events) && from_active {
                            self.relationship.synced(JobKind::ConnectionStatus);
                        }
                    }
                    ConnKind::Config => {
                        let (apply, cx) = self.config_apply(now);
                        let res = apply.batch_end(id, cx);
                        self.note_config_batch_answered();
                        res?;
                    }
                }
            }
            MessageRef::ConfigItemBatch(b) => {
                let (apply, cx) = self.config_apply(now);
                let res = apply.items(b, cx);
                self.note_config_batch_answered();
                res?;
            }
            MessageRef::ConfigOp(op) => {
                let what = op.op()?;
                let (apply, cx) = self.config_apply(now);
                apply.op(what, op, cx)?;
            }
            MessageRef::ConfigBatchResult(r) => {
                let ours = self.jobs.on_config_result(r, now, &mut self.events);
                if ours {
                    self.relationship.synced(JobKind::Config);
                }
            }
            // Never sent; acknowledged like any data.
            _ => {}
        }
        Ok(())
    }

    fn on_ack(&mut self, kind: ConnKind, seq: u64, now: Instant) -> Result<(), ProtoError> {
        self.stats.acks_rx += 1;
        let conn = &mut self.conns[kind];
        if seq > conn.tx_seq {
            return Err(ProtoError::AckBeyondSent {
                got: seq,
                sent: conn.tx_seq,
            });
        }
        if seq <= conn.peer_acked {
            return Ok(());
        }
        conn.peer_acked = seq;
        if kind == ConnKind::Session {
            self.incremental.acked(seq);
        }
        if let Some(d) = conn.rtt_sample(seq, now) {
            if kind == ConnKind::Session {
                self.stats.rtt_sample(d);
            }
        }
        match kind {
            ConnKind::Session => {
                if self.handover.is_some_and(|h| seq >= h) {
                    self.handover = None;
                }
                if self.jobs.on_session_ack(seq, now, &mut self.events)
                    && self.election.role == Role::Active
                {
                    self.relationship.synced(JobKind::ConnectionStatus);
                }
            }
            ConnKind::Config => {
                self.config_queue.on_ack(seq);
                self.jobs.on_config_ack(seq);
            }
        }
        Ok(())
    }

    /// A shard number from the peer, checked against our shard count; the
    /// error names the message that carried it.
    fn check_shard(&self, s: u32, carrier: MessageKind) -> Result<usize, ProtoError> {
        if (s as usize) < self.table.shard_count() {
            Ok(s as usize)
        } else {
            Err(ProtoError::Unexpected {
                kind: carrier,
                state: "naming a shard out of range",
            })
        }
    }
}

pub(super) fn peer_closed(c: &hotsync_wire::ArchivedClose) -> ProtoError {
    match c.reason() {
        Ok(reason) => ProtoError::PeerClosed {
            reason,
            detail: c.detail.as_str().chars().take(200).collect(),
        },
        Err(e) => e.into(),
    }
}
