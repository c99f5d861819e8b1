//! Message dispatch: each received frame goes to the handshake or, on an
//! up connection, to the piece of state its message concerns.

use super::Core;
use crate::config_queue::ConfigOpKind;
use crate::conn::{ConnKind, Phase};
use crate::error::ProtoError;
use crate::error::{CloseReason, Field};
use crate::event::{Event, PeerInfo};
use crate::handshake::{self, Progress};
use crate::jobs::JobKind;
use crate::receive::Inbound;
use crate::role::Role;
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
        self.stats.frames_rx += 1;
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
                self.conn_up(kind, authenticated, now);
                Ok(receive)
            }
        }
    }

    /// A connection completed its handshake. The session connection
    /// carries the relationship: its claims become our view of the peer.
    fn conn_up(&mut self, kind: ConnKind, authenticated: bool, now: Instant) {
        let conn = &mut self.conns[kind];
        conn.phase = Phase::Up;
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
        });
        self.establish(peer, authenticated, now);
    }

    fn establish(&mut self, peer: PeerInfo, authenticated: bool, now: Instant) {
        let (role, changed) = self.election.on_established(peer, now, &mut self.events);
        if changed {
            self.announce_role(now);
        }
        self.established = true;
        self.authenticated = authenticated;
        if !self.ever_established {
            // B4: what existed before the relationship formed waits for a
            // manual batch sync; only changes from now on are incremental.
            self.incremental
                .discard_journals(&self.table, &mut self.stats);
            self.table.set_capture(true);
            self.ever_established = true;
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
        tracing::info!(peer = peer.node_id, %role, authenticated, "HRP relationship established");
        if peer.role == Role::Initial {
            self.jobs.on_peer_restarted(&self.table);
        }
        self.election.check_preempt(true, now);
        if self.cfg.auto_sync_on_establish {
            // Already running is fine: that job covers it.
            let _ = self.start_session_sync(now);
            self.events.push_back(Event::ConfigSyncWanted);
        }
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
                    let role = Role::from_wire(hb.role)
                        .ok_or_else(|| invalid(msg_kind, Field::Role, hb.role))?;
                    let prio = hb.priority.to_native();
                    let est = self.established;
                    if self
                        .election
                        .on_heartbeat(role, prio, est, now, &mut self.events)
                    {
                        self.announce_role(now);
                    }
                }
                Ok(())
            }
            MessageRef::Ack(a) => {
                if a.channel != kind.channel() as u8 {
                    return Err(invalid(msg_kind, Field::AckChannel, a.channel));
                }
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
            | MessageRef::ResyncRequest(_) => self.on_session_data(msg_kind, msg),
            _ => self.on_batch_message(kind, msg, now),
        }
    }

    /// Session records, deletions and resync markers.
    fn on_session_data(
        &mut self,
        msg_kind: MessageKind,
        msg: MessageRef<'_>,
    ) -> Result<(), ProtoError> {
        match msg {
            MessageRef::SessionUpsertBatch(b) => {
                self.inbound.upserts(b, &self.table, &mut self.stats);
            }
            MessageRef::SessionDeleteBatch(b) => {
                Inbound::deletes(b, &self.table, &mut self.stats);
            }
            MessageRef::ResyncStart(r) => {
                let shard = self.check_shard(r.shard.to_native(), msg_kind)?;
                self.table.begin_resync(shard, r.epoch.to_native());
            }
            MessageRef::ResyncEnd(r) => {
                let shard = self.check_shard(r.shard.to_native(), msg_kind)?;
                let removed = self.table.end_resync(shard, r.epoch.to_native());
                self.stats.resync_removed += removed as u64;
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
                let job = JobKind::from_wire(b.what)
                    .ok_or_else(|| invalid(MessageKind::BatchStart, Field::BatchKind, b.what))?;
                let total = b.total.to_native();
                if kind == ConnKind::Config {
                    self.config_apply.batch_start();
                }
                self.inbound.batch_start(kind, job, total, &mut self.events);
            }
            MessageRef::BatchEnd(b) => {
                let id = b.job_id.to_native();
                match kind {
                    ConnKind::Session => self.inbound.batch_end(&mut self.events),
                    ConnKind::Config => {
                        let (apply, cx) = self.config_apply(now);
                        apply.batch_end(id, cx)?;
                    }
                }
            }
            MessageRef::ConfigItemBatch(b) => {
                let (apply, cx) = self.config_apply(now);
                apply.items(b, cx)?;
            }
            MessageRef::ConfigOp(op) => {
                if ConfigOpKind::from_wire(op.op).is_none() {
                    return Err(invalid(MessageKind::ConfigOp, Field::ConfigOp, op.op));
                }
                let (apply, cx) = self.config_apply(now);
                apply.op(op, cx)?;
            }
            MessageRef::ConfigBatchResult(r) => {
                self.jobs.on_config_result(r, now, &mut self.events);
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
        if let Some(d) = conn.rtt_sample(seq, now) {
            if kind == ConnKind::Session {
                self.stats.rtt_sample(d);
            }
        }
        match kind {
            ConnKind::Session => self.jobs.on_session_ack(seq, now, &mut self.events),
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
    let code = c.reason.to_native();
    match CloseReason::from_code(code) {
        Some(reason) => ProtoError::PeerClosed {
            reason,
            detail: c.detail.as_str().chars().take(200).collect(),
        },
        None => invalid(MessageKind::Close, Field::CloseReason, code),
    }
}

fn invalid(kind: MessageKind, field: Field, value: impl Into<u32>) -> ProtoError {
    ProtoError::InvalidField {
        kind,
        field,
        value: value.into(),
    }
}
