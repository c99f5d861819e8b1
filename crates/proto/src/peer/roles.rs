//! What follows a role decision: the hand-over of a node that left the
//! active role, the winner holding its own sessions, and announcing a new
//! role at once.

use super::Core;
use crate::conn::{ConnKind, Phase};
use crate::error::ProtoError;
use crate::role::Role;
use crate::step_down::StepDown;
use hotsync_wire::{Channel, ResyncRequest};
use std::time::Instant;

impl Core {
    /// The election ran (our role was `before`, the peer claims
    /// `peer_role`): a node that left the active role cancels its own
    /// walks, hands its last changes over and asks the winner for every
    /// shard; one that kept or took it against an active peer keeps its
    /// own sessions (see [`crate::step_down`]). A changed role is
    /// announced at once.
    pub(super) fn roles_settled(
        &mut self,
        before: Role,
        peer_role: Role,
        changed: bool,
        now: Instant,
    ) {
        let role = self.election.role;
        if before == Role::Active && role != Role::Active {
            self.cancel_own_walks(now);
            if self.relationship.exists() {
                StepDown::stepped_down(&self.table, &mut self.ledger, &mut self.stats);
                self.handover = Some(u64::MAX);
                self.say_was_active(now);
            } else if self.conns.session.is_up() {
                // Nothing captured yet (B4), nothing to hand over: an empty
                // request tells a winner waiting for it not to wait.
                let none = ResyncRequest { shards: Vec::new() };
                self.send_or_fail(ConnKind::Session, Channel::Session, &none, now);
            }
        }
        if role == Role::Active {
            self.handover = None;
        }
        // A node that was never established has nothing of its own the
        // loser's changes could overwrite.
        if role == Role::Active && peer_role == Role::Active && self.relationship.exists() {
            let dead = self.cfg.dead_interval();
            self.step_down.won_against_active(dead, now);
        } else if role != Role::Active {
            self.step_down.stop();
        }
        if changed {
            self.announce_role(now);
        }
    }

    /// This node left the active role: the walks of its own table it was
    /// sending (a batch sync, a shard resync) stop here, before its
    /// hand-over. Their chunks would reach the winner after the hand-over
    /// and replace the winner's newer sessions with this node's older
    /// copy; the winner resyncs every shard into this node instead.
    /// Counted in `step_down_walks_cancelled`.
    fn cancel_own_walks(&mut self, now: Instant) {
        let job = self.jobs.cancel_session_on_step_down(now, &mut self.events);
        let walk = self.resync.abandon(&mut self.ledger, &mut self.stats);
        self.stats.step_down_walks_cancelled += u64::from(job) + u64::from(walk);
    }

    /// The peer may never have seen this node active (its hello was sent
    /// before it took the role, or the frames that said so were lost with
    /// a connection): while its hand-over is not acknowledged, it says so
    /// first on every session connection, so the peer treats the changes
    /// that follow as a former active's.
    pub(super) fn say_was_active(&mut self, now: Instant) {
        if self.handover.is_some() && self.conns.session.is_up() {
            let mut was = self.election.heartbeat(now);
            was.role = Role::Active.to_u8();
            self.send_or_fail(ConnKind::Session, Channel::Control, &was, now);
        }
    }

    /// Whether this node, active, holds its session data back until a
    /// former active's last changes are in (see [`crate::step_down`]).
    pub(super) fn holding(&self, now: Instant) -> bool {
        self.election.role == Role::Active && self.step_down.keeping_own(now)
    }

    /// Our role changed: tell the peer at once rather than at the next
    /// heartbeat. A session connection still in its handshake sent a hello
    /// that claims the old role: the peer would agree roles on it and, not
    /// knowing this node was active, send its session data before this
    /// node's hand-over. It starts over, with a hello that says the role.
    pub(super) fn announce_role(&mut self, now: Instant) {
        match self.conns.session.phase {
            Phase::Up => {
                let hb = self.election.heartbeat(now);
                self.send_or_fail(ConnKind::Session, Channel::Control, &hb, now);
            }
            Phase::AwaitHello | Phase::AwaitAuth => {
                self.fail(ConnKind::Session, &ProtoError::RoleChangedInHandshake);
            }
            Phase::Down | Phase::Closing => {}
        }
    }
}
