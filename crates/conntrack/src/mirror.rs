//! Mirror mode: while standby, the replicated entries are written to the
//! kernel continuously, so a takeover has (almost) nothing left to commit.
//!
//! A pass walks the table (every [`MIRROR_INTERVAL_MS`]) and commits the
//! entries that are new, changed (a fingerprint of the entry without its
//! counters), or whose kernel copy would expire within
//! [`REFRESH_MARGIN`] seconds: the kernel counts a mirrored entry's
//! timeout down with no packet to refresh it, so live flows would expire
//! on the standby. Entries gone from the table are deleted from the
//! kernel.

use crate::dataplane::commit_timeout;
use crate::socket::{Counts, CtError, CtSocket};
use hotsync_table::{SessionEntry, SessionKey, SessionTable};
use std::hash::BuildHasher;

/// Milliseconds between mirror passes.
pub const MIRROR_INTERVAL_MS: u64 = 1000;

/// A mirrored entry is committed again when its kernel copy has less than
/// this many seconds left: half the shortest timeout a commit gives
/// ([`crate::dataplane::MIN_COMMIT_TIMEOUT`]), so an entry is refreshed
/// at most every 30 s.
pub const REFRESH_MARGIN: u32 = crate::dataplane::MIN_COMMIT_TIMEOUT / 2;

/// What the kernel holds of a mirrored entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mirrored {
    /// [`fingerprint`] of the entry committed.
    pub fingerprint: u64,
    /// Unix second at which the kernel's copy expires.
    pub expires: u32,
}

/// The entry's state as the kernel sees it: counters left out (they
/// change on the active without changing the kernel entry).
pub fn fingerprint(e: &SessionEntry) -> u64 {
    let mut e = *e;
    e.packets = [0; 2];
    e.bytes = [0; 2];
    foldhash::fast::FixedState::with_seed(0x6d69_7272).hash_one(e)
}

/// Whether a pass must commit the entry: new, changed, or due for a
/// timeout refresh.
pub fn due(prev: Option<&Mirrored>, fingerprint: u64, now: u32) -> bool {
    match prev {
        None => true,
        Some(m) => m.fingerprint != fingerprint || m.expires <= now.saturating_add(REFRESH_MARGIN),
    }
}

/// The entries mirrored so far.
#[derive(Debug, Default)]
pub struct Mirror {
    mirrored: hashbrown::HashMap<SessionKey, Mirrored, foldhash::fast::RandomState>,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pass {
    /// The commit of the due entries.
    pub committed: Counts,
    /// Entries deleted from the kernel (gone from the table).
    pub deleted: u64,
}

impl Mirror {
    /// Commits the due backup entries of `vsys` (most recently active
    /// first) and deletes the ones gone from the table.
    pub fn pass(
        &mut self,
        table: &SessionTable,
        vsys: u16,
        sock: &mut CtSocket,
        now: u32,
    ) -> Result<Pass, CtError> {
        let mut batch = Vec::new();
        let mut seen: hashbrown::HashSet<SessionKey, foldhash::fast::RandomState> =
            hashbrown::HashSet::with_capacity_and_hasher(self.mirrored.len(), Default::default());
        for shard in 0..table.shard_count() {
            table.for_each_in_shard(shard, |k, e| {
                if k.vsys != vsys || !e.is_backup() {
                    return;
                }
                seen.insert(*k);
                let fp = fingerprint(e);
                if due(self.mirrored.get(k), fp, now) {
                    batch.push((*k, *e, fp));
                }
            });
        }
        batch.sort_unstable_by_key(|(_, e, _)| {
            std::cmp::Reverse((e.last_seen, e.last_seen.saturating_add(e.timeout)))
        });
        let sessions: Vec<(SessionKey, SessionEntry)> =
            batch.iter().map(|&(k, e, _)| (k, e)).collect();
        let committed = sock.commit(&sessions, |e| commit_timeout(e, now))?;
        for &(k, e, fingerprint) in &batch {
            let expires = now.saturating_add(commit_timeout(&e, now));
            self.mirrored.insert(
                k,
                Mirrored {
                    fingerprint,
                    expires,
                },
            );
        }
        let gone: Vec<SessionKey> = self
            .mirrored
            .keys()
            .filter(|k| !seen.contains(*k))
            .copied()
            .collect();
        if !gone.is_empty() {
            sock.delete(&gone)?;
        }
        for k in &gone {
            self.mirrored.remove(k);
        }
        Ok(Pass {
            committed,
            deleted: gone.len() as u64,
        })
    }

    /// Forgets what was mirrored (the node became active: the kernel's
    /// table is the source from now on).
    pub fn clear(&mut self) {
        self.mirrored.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_changed_and_expiring_entries_are_due_others_not() {
        let e = SessionEntry {
            timeout: 3600,
            mark: 1,
            ..SessionEntry::default()
        };
        let fp = fingerprint(&e);
        let now = 1_000_000;
        assert!(due(None, fp, now), "new");
        let fresh = Mirrored {
            fingerprint: fp,
            expires: now + 3600,
        };
        assert!(!due(Some(&fresh), fp, now), "unchanged and far from expiry");
        let mut changed = e;
        changed.mark = 2;
        assert!(due(Some(&fresh), fingerprint(&changed), now), "changed");
        let expiring = Mirrored {
            fingerprint: fp,
            expires: now + REFRESH_MARGIN - 1,
        };
        assert!(due(Some(&expiring), fp, now), "kernel copy about to expire");
        // The shortest commit timeout is not due again at once.
        let shortest = Mirrored {
            fingerprint: fp,
            expires: now + crate::dataplane::MIN_COMMIT_TIMEOUT,
        };
        assert!(!due(Some(&shortest), fp, now));
        // Counters change on the active with every packet: not a change
        // of the kernel entry.
        let mut counted = e;
        counted.packets = [10, 20];
        counted.bytes = [1000, 2000];
        assert_eq!(fingerprint(&counted), fp);
    }
}
