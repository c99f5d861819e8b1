//! Helpers the table's test files share.
#![allow(dead_code)]

use hotsync_table::{Change, SessionEntry, SessionGenerator, SessionKey, SessionTable};

/// `n` generated sessions, the same for the same `seed`.
pub fn sessions(n: usize, seed: u64) -> Vec<(SessionKey, SessionEntry)> {
    let mut g = SessionGenerator::new(seed, 0, false, 1_700_000_000);
    (0..n).map(|_| g.next_session()).collect()
}

/// Every change captured in `t`'s journals, shard by shard.
pub fn drain_all(t: &SessionTable) -> Vec<Change> {
    let mut out = Vec::new();
    for s in 0..t.shard_count() {
        while t.drain_changes(s, 1000, &mut out) > 0 {}
    }
    out
}
