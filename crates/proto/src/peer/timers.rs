//! Timers: heartbeats, the dead interval, handshakes that never finish,
//! and the deadlines of the election, the coalescing window and a
//! step-down.

use super::Core;
use crate::conn::{ConnKind, Phase};
use crate::error::ProtoError;
use crate::role::Role;
use hotsync_wire::Channel;
use std::time::Instant;

impl Core {
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let dead = self.cfg.dead_interval();
        let conns = self.conns.iter().flat_map(|(_, c)| {
            let (a, b) = match c.phase {
                Phase::Up => (
                    Some(c.last_tx + self.cfg.hello_interval),
                    Some(c.last_rx + dead),
                ),
                Phase::AwaitHello | Phase::AwaitAuth => (Some(c.opened + dead), None),
                Phase::Down | Phase::Closing => (None, None),
            };
            a.into_iter().chain(b)
        });
        conns
            .chain(self.election.next_deadline())
            .chain(self.incremental.deadline(&self.cfg))
            .chain(self.step_down.deadline())
            .chain(self.config_pace.deadline())
            .min()
    }

    pub(super) fn on_timeout(&mut self, now: Instant) {
        let dead = self.cfg.dead_interval();
        if self.config_apply.is_full() {
            // We are not reading the config connection while our own
            // backlog is full: its silence is ours, not the peer's.
            self.conns.config.last_rx = now;
        }
        for kind in ConnKind::ALL {
            let c = &self.conns[kind];
            match c.phase {
                Phase::Up if now >= c.last_rx + dead => self.fail(kind, &ProtoError::Timeout),
                Phase::Up if now >= c.last_tx + self.cfg.hello_interval => {
                    let hb = self.election.heartbeat(now);
                    if self.send_or_fail(kind, Channel::Control, &hb, now) {
                        self.stats.heartbeats_tx += 1;
                    }
                }
                Phase::AwaitHello | Phase::AwaitAuth if now >= c.opened + dead => {
                    self.fail(kind, &ProtoError::Timeout);
                }
                _ => {}
            }
        }
        let (est, up) = (self.established, self.conns.session.is_up());
        let before = self.election.role;
        if self.election.on_timeout(est, up, now, &mut self.events) {
            match self.election.peer {
                // Preemption takes the role from a peer still active until
                // it hears so: what it sends meanwhile is a former active's,
                // and this node's copy is authoritative from now.
                Some(p) if up && p.role == Role::Active => {
                    self.roles_settled(before, p.role, true, now);
                }
                // A dead peer, no peer at start: nothing of the peer's is
                // coming. (A hand-over of ours still unacknowledged stays
                // pending: the lost connection counts what it cut short.)
                _ => self.announce_role(now),
            }
        }
    }
}
