//! Roles: who is active, why, and when that changes (the relationship
//! forming, heartbeats, preemption, a dead peer).
//!
//! [`Election`] owns the role and what is known of the peer. Its methods
//! return whether the role changed; the caller then tells the peer at once
//! (a heartbeat) rather than at the next interval.

use crate::event::{Event, Events, PeerInfo};
use crate::role::{Claim, Role, outranks, resolve};
use crate::settings::ProtoConfig;
use hotsync_wire::Heartbeat;
use std::time::{Duration, Instant};

/// The role state of one node.
pub(crate) struct Election {
    node_id: u64,
    priority: u16,
    preempt_delay: Option<Duration>,
    dead: Duration,
    /// When this instance started (the "no peer" timer runs from here).
    started: Instant,
    pub role: Role,
    pub role_since: Instant,
    pub role_reason: &'static str,
    /// The peer, adopted from a connection that completed its handshake.
    pub peer: Option<PeerInfo>,
    /// Last frame from the peer on the session connection, across
    /// reconnects; `None` once declared dead.
    peer_heard: Option<Instant>,
    preempt_at: Option<Instant>,
}

impl Election {
    pub fn new(cfg: &ProtoConfig, now: Instant) -> Self {
        Self {
            node_id: cfg.node_id,
            priority: cfg.priority,
            preempt_delay: cfg.preempt_delay,
            dead: cfg.dead_interval(),
            started: now,
            role: Role::Initial,
            role_since: now,
            role_reason: "starting",
            peer: None,
            peer_heard: None,
            preempt_at: None,
        }
    }

    /// What this node claims.
    pub fn claim(&self) -> Claim {
        Claim {
            role: self.role,
            priority: self.priority,
            node_id: self.node_id,
        }
    }

    /// Our heartbeat now.
    pub fn heartbeat(&self, now: Instant) -> Heartbeat {
        Heartbeat {
            role: self.role.to_u8(),
            priority: self.priority,
            sent_at_ms: now.saturating_duration_since(self.started).as_millis() as u64,
        }
    }

    /// Takes role `to`; true if it changed.
    pub fn set_role(
        &mut self,
        to: Role,
        reason: &'static str,
        now: Instant,
        events: &mut Events,
    ) -> bool {
        if self.role == to {
            return false;
        }
        let from = self.role;
        self.role = to;
        self.role_since = now;
        self.role_reason = reason;
        tracing::info!(%from, %to, reason, "HRP role changed");
        events.push_back(Event::RoleChanged { from, to, reason });
        true
    }

    /// The session connection completed its handshake with `peer`: adopt
    /// its claims and agree roles. Returns the role taken and whether it
    /// changed.
    pub fn on_established(
        &mut self,
        peer: PeerInfo,
        now: Instant,
        events: &mut Events,
    ) -> (Role, bool) {
        self.peer = Some(peer);
        let role = resolve(&self.claim(), &peer.claim());
        let changed = self.set_role(role, "roles agreed with peer", now, events);
        self.peer_heard = Some(now);
        (role, changed)
    }

    /// A frame arrived on the up session connection.
    pub fn heard(&mut self, now: Instant) {
        self.peer_heard = Some(now);
    }

    /// The peer's heartbeat; true if our role changed.
    pub fn on_heartbeat(
        &mut self,
        peer_role: Role,
        priority: u16,
        established: bool,
        now: Instant,
        events: &mut Events,
    ) -> bool {
        let Some(peer) = self.peer.as_mut() else {
            return false;
        };
        peer.role = peer_role;
        peer.priority = priority;
        let remote = peer.claim();
        let wins = outranks(&self.claim(), &remote);
        let changed = match (self.role, peer_role) {
            // Split brain (or a preempting peer): the static rule decides.
            (Role::Active, Role::Active) if !wins => self.set_role(
                Role::Standby,
                "peer outranks this node (split brain or preemption)",
                now,
                events,
            ),
            (Role::Standby | Role::Initial, Role::Standby) if wins => self.set_role(
                Role::Active,
                "both standby: this node outranks the peer",
                now,
                events,
            ),
            _ => false,
        };
        self.check_preempt(established, now);
        changed
    }

    /// Arms or disarms the preemption timer.
    pub fn check_preempt(&mut self, established: bool, now: Instant) {
        let Some(delay) = self.preempt_delay else {
            return;
        };
        let Some(peer) = self.peer else { return };
        if established && self.role == Role::Standby && outranks(&self.claim(), &peer.claim()) {
            if self.preempt_at.is_none() {
                self.preempt_at = Some(now + delay);
            }
        } else {
            self.preempt_at = None;
        }
    }

    /// The role timers: no peer at start, a dead peer, preemption. True if
    /// the role changed.
    pub fn on_timeout(
        &mut self,
        established: bool,
        session_up: bool,
        now: Instant,
        events: &mut Events,
    ) -> bool {
        let mut changed = false;
        if self.role == Role::Initial && !established && now >= self.started + self.dead {
            changed |= self.set_role(
                Role::Active,
                "no peer within the dead interval",
                now,
                events,
            );
        }
        if let Some(h) = self.peer_heard {
            if now >= h + self.dead && !session_up {
                self.peer_heard = None;
                events.push_back(Event::PeerDead);
                tracing::warn!("HRP peer dead");
                if self.role != Role::Active {
                    changed |= self.set_role(Role::Active, "peer dead: taking over", now, events);
                }
            }
        }
        if let Some(p) = self.preempt_at {
            if now >= p {
                self.preempt_at = None;
                if established && self.role == Role::Standby {
                    changed |= self.set_role(
                        Role::Active,
                        "preemption: this node has the higher priority",
                        now,
                        events,
                    );
                }
            }
        }
        changed
    }

    /// The earliest of the role timers.
    pub fn next_deadline(&self) -> impl Iterator<Item = Instant> {
        let initial = (self.role == Role::Initial).then_some(self.started + self.dead);
        let dead = self.peer_heard.map(|h| h + self.dead);
        initial.into_iter().chain(dead).chain(self.preempt_at)
    }
}
