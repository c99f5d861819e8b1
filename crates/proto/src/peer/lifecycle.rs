//! The end of a connection: a fatal error closes it (one path: a close
//! frame and one `Close` action), and a lost session connection makes
//! everything the peer did not acknowledge uncertain.

use super::Core;
use crate::conn::{ConnKind, Phase};
use crate::error::ProtoError;
use crate::event::{Action, Event};
use hotsync_wire::{Channel, Close};
use std::time::Instant;

impl Core {
    /// Records a fatal connection error and queues a close frame.
    pub(super) fn fail(&mut self, kind: ConnKind, e: &ProtoError) {
        if !self.conns[kind].is_open() {
            return;
        }
        self.stats.count_error(e.kind_name());
        tracing::warn!(conn = kind.name(), error = %e, "dropping HRP connection");
        // A peer's close text is its own bytes: no control characters reach
        // an operator's terminal.
        let why: String = e
            .to_string()
            .chars()
            .map(|c| {
                if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .take(300)
            .collect();
        self.last_failure = Some(format!("{} connection: {why}", kind.name()));
        if !matches!(e, ProtoError::PeerClosed { .. } | ProtoError::Encode(_)) {
            let mut detail = e.to_string();
            detail.truncate(200);
            let close = Close {
                reason: e.close_reason().code(),
                detail,
            };
            let c = &mut self.conns[kind];
            let at = c.last_tx;
            let _ = c.send(Channel::Control, &close, &mut self.stats, at);
        }
        self.conns[kind].phase = Phase::Closing;
        self.actions.push_back(Action::Close {
            conn: kind,
            reason: e.to_string(),
        });
    }

    pub(super) fn disconnected(&mut self, kind: ConnKind, _now: Instant) {
        let conn = &mut self.conns[kind];
        if conn.phase == Phase::Down {
            return;
        }
        let was_up = conn.is_up();
        let acked = conn.peer_acked;
        conn.close();
        self.inbound.on_disconnect(kind);
        self.stats.disconnects += 1;
        match kind {
            ConnKind::Session => self.session_lost(acked, was_up),
            ConnKind::Config => {
                self.config_queue.on_disconnect();
                self.config_apply.on_disconnect();
                self.jobs.on_config_lost();
                self.config_pace.clear();
            }
        }
    }

    /// Every shard with data the peer did not acknowledge, or drained into
    /// a batch not yet sent, or under repair, is now uncertain.
    pub(super) fn session_lost(&mut self, acked: u64, was_up: bool) {
        self.bulk_window.clear();
        // During a hand-over every shard is already uncertain: count the
        // ones whose last changes were in flight before they are reset.
        let handed = if self.handover.is_some() {
            self.ledger.unacked(acked) + self.incremental.open_shard_count()
        } else {
            0
        };
        let mut lost = self.ledger.on_session_lost(acked);
        lost += self.incremental.on_session_lost(&mut self.ledger);
        lost += self
            .resync
            .on_session_lost(&mut self.ledger, &mut self.stats);
        self.stats.resync_disconnect += lost;
        if self.handover.is_some() {
            // A hand-over cut short: last changes not acknowledged may not
            // have reached the winner, and this node (not active) cannot
            // resend them as state; the winner's copy replaces them. Counted
            // as possibly lost. The request is made again on the next
            // connection.
            if handed > 0 {
                self.stats.step_down_lost_shards += handed;
                tracing::warn!(
                    shards = handed,
                    "hand-over to the active peer cut short: changes made while active in these shards may be LOST"
                );
            }
            self.handover = Some(u64::MAX);
        }
        self.jobs.on_session_lost(self.table.shard_count());
        if self.established {
            self.established = false;
            self.authenticated = false;
            self.events.push_back(Event::RelationshipLost {
                reason: "session connection lost".into(),
            });
        }
        if was_up {
            tracing::info!(
                uncertain = self.ledger.uncertain.len(),
                "session connection lost"
            );
        }
    }
}
