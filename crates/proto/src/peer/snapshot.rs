//! What displays and logs see of a peer: the state snapshot behind
//! `display hrp state` and the short `Debug` form.

use super::Peer;
use crate::event::PeerState;

impl Peer {
    /// A snapshot for displays.
    pub fn state(&self) -> PeerState {
        let c = &self.core;
        PeerState {
            role: c.election.role,
            role_reason: c.election.role_reason,
            role_since: c.election.role_since,
            established: c.established,
            authenticated: c.authenticated,
            encrypted: c.authenticated && c.cfg.encryption_key.is_some(),
            last_failure: c.last_failure.clone(),
            peer: c.election.peer,
            conn_phase: c.conns.map(|c| c.phase),
            uncertain_shards: c.ledger.uncertain.len() + usize::from(c.resync.walking()),
            config_queue: c.config_queue.len(),
            peer_unsynced: c.relationship.unsynced(),
            incarnation: c.relationship.local(),
            config_backlog: c.config_apply.backlog(),
            stats: c.stats.clone(),
        }
    }
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("node_id", &self.core.cfg.node_id)
            .field("role", &self.core.election.role)
            .field("established", &self.core.established)
            .finish()
    }
}
