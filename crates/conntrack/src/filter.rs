//! Which kernel entries stay local (B11): conntrackd's `Filter` section as
//! ignore lists by address, protocol and TCP state. A filtered entry is
//! still put in the table (the node sees it) but without the backup flag,
//! so it is never journaled, sent or committed on the peer.

use hotsync_table::{SessionEntry, SessionKey, SessionState};
use std::net::IpAddr;

/// Ignore lists; an entry matching any of them is local-only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Entries whose original source or destination is one of these (for
    /// example the firewalls' own addresses, as conntrackd's
    /// `Address Ignore`).
    pub addresses: Vec<IpAddr>,
    /// IP protocol numbers to ignore (conntrackd's `Protocol Ignore`).
    pub protocols: Vec<u8>,
    /// TCP states to ignore (conntrackd's `State Ignore`, e.g. SYN_SENT).
    pub tcp_states: Vec<SessionState>,
}

impl Filter {
    /// Whether nothing is filtered.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.protocols.is_empty() && self.tcp_states.is_empty()
    }

    /// Whether the entry is to stay local.
    pub fn is_local(&self, key: &SessionKey, entry: &SessionEntry) -> bool {
        if self.protocols.contains(&key.protocol) {
            return true;
        }
        if key.protocol == hotsync_table::ip_proto::TCP
            && self.tcp_states.iter().any(|s| *s as u8 == entry.state)
        {
            return true;
        }
        !self.addresses.is_empty()
            && (self.addresses.contains(&key.src()) || self.addresses.contains(&key.dst()))
    }

    /// Clears the backup flag of an entry the filter keeps local.
    pub fn apply(&self, key: &SessionKey, entry: &mut SessionEntry) {
        if self.is_local(key, entry) {
            entry.flags &= !hotsync_table::flags::BACKUP;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotsync_table::{flags, ip_proto};
    use std::net::Ipv4Addr;

    fn tcp(state: SessionState) -> (SessionKey, SessionEntry) {
        let k = SessionKey::new(
            0,
            ip_proto::TCP,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            1000,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            22,
        );
        let e = SessionEntry {
            state: state as u8,
            flags: flags::BACKUP,
            ..SessionEntry::default()
        };
        (k, e)
    }

    #[test]
    fn each_list_makes_entries_local_only() {
        let (k, e) = tcp(SessionState::Established);
        assert!(!Filter::default().is_local(&k, &e));
        let by_addr = Filter {
            addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))],
            ..Filter::default()
        };
        let by_proto = Filter {
            protocols: vec![ip_proto::TCP],
            ..Filter::default()
        };
        let by_state = Filter {
            tcp_states: vec![SessionState::SynSent],
            ..Filter::default()
        };
        assert!(by_addr.is_local(&k, &e));
        assert!(by_proto.is_local(&k, &e));
        assert!(!by_state.is_local(&k, &e));
        let (k2, mut e2) = tcp(SessionState::SynSent);
        assert!(by_state.is_local(&k2, &e2));
        by_state.apply(&k2, &mut e2);
        assert!(!e2.is_backup());
    }
}
