//! The relationship belongs to a pair of node incarnations.
//!
//! Every process draws a random incarnation when it starts and announces
//! it in its hello. When the session connection completes its handshake,
//! the peer's incarnation says what the relationship is:
//!
//! - the first one of this process, or one with another incarnation of the
//!   peer (it was restarted): a **new** relationship. B4 applies: nothing
//!   from before it is synchronized automatically (unless `hrp auto-sync
//!   on-establish`), nothing kept for a previous incarnation is sent, and
//!   the peer is incomplete until a batch sync of each kind completes;
//! - the same incarnation as before an outage (the same two processes, for
//!   example a standby frozen past the dead interval, then resumed): the
//!   relationship **resumes**, and everything changed during the outage is
//!   delivered.

use crate::jobs::JobKind;

/// How a relationship came about when the session connection came up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Formed {
    /// This process's first relationship.
    First,
    /// The same peer process as before the outage.
    Resumed,
    /// Another process of the peer: the previous one was restarted.
    PeerRestarted,
}

/// The batch syncs a new relationship still lacks. Until one of each kind
/// has completed over it (sent or received), the two nodes may hold
/// different sessions or configuration from before the relationship, and
/// both show the peer as incomplete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unsynced {
    /// No `hrp sync connection-status` completed yet.
    pub connection_status: bool,
    /// No `hrp sync config` completed yet.
    pub config: bool,
}

impl Unsynced {
    /// Whether any batch sync is still lacking.
    pub fn any(self) -> bool {
        self.connection_status || self.config
    }

    /// The commands that complete the peer, as the operator types them.
    pub fn commands(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.connection_status {
            v.push("hrp sync connection-status");
        }
        if self.config {
            v.push("hrp sync config");
        }
        v
    }
}

/// This node's incarnation, the peer incarnation of the current (or last)
/// relationship, and what that relationship has not synchronized yet.
pub(crate) struct Relationship {
    local: u64,
    peer: Option<u64>,
    unsynced: Unsynced,
}

impl Relationship {
    pub fn new(local: u64) -> Self {
        Self {
            local,
            peer: None,
            unsynced: Unsynced::default(),
        }
    }

    /// This process's incarnation.
    pub fn local(&self) -> u64 {
        self.local
    }

    /// Whether a relationship was ever established (and may resume).
    pub fn exists(&self) -> bool {
        self.peer.is_some()
    }

    /// The peer incarnation of the current (or last) relationship.
    pub fn peer(&self) -> Option<u64> {
        self.peer
    }

    /// What the current relationship still lacks.
    pub fn unsynced(&self) -> Unsynced {
        self.unsynced
    }

    /// The session connection came up with a peer of `incarnation`.
    pub fn on_established(&mut self, incarnation: u64) -> Formed {
        let formed = match self.peer {
            None => Formed::First,
            Some(p) if p == incarnation => Formed::Resumed,
            Some(_) => Formed::PeerRestarted,
        };
        if formed != Formed::Resumed {
            self.peer = Some(incarnation);
            self.unsynced = Unsynced {
                connection_status: true,
                config: true,
            };
        }
        formed
    }

    /// A batch sync of `kind` completed over this relationship, in either
    /// direction.
    pub fn synced(&mut self, kind: JobKind) {
        match kind {
            JobKind::ConnectionStatus => self.unsynced.connection_status = false,
            JobKind::Config => self.unsynced.config = false,
        }
    }
}

/// An incarnation from a seed: splitmix64, so nearby seeds give unrelated
/// values.
pub(crate) fn incarnation_from(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_incarnation_resumes_another_starts_over() {
        let mut r = Relationship::new(1);
        assert!(!r.exists());
        assert_eq!(r.on_established(7), Formed::First);
        assert!(r.unsynced().connection_status && r.unsynced().config);
        r.synced(JobKind::Config);
        assert_eq!(r.unsynced().commands(), ["hrp sync connection-status"]);
        assert_eq!(r.on_established(7), Formed::Resumed);
        assert_eq!(r.unsynced().commands(), ["hrp sync connection-status"]);
        r.synced(JobKind::ConnectionStatus);
        assert!(!r.unsynced().any());
        assert_eq!(r.on_established(8), Formed::PeerRestarted);
        assert!(r.unsynced().connection_status && r.unsynced().config);
    }

    #[test]
    fn seeds_give_distinct_incarnations() {
        let v: std::collections::BTreeSet<u64> = (0..1000).map(incarnation_from).collect();
        assert_eq!(v.len(), 1000);
    }
}
