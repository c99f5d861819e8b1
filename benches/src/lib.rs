//! Benchmark support: shared fixtures for the criterion benches and the
//! measurement binaries.

pub mod report;

use dashmap::DashMap;
use hotsync_table::{Change, SessionEntry, SessionGenerator, SessionKey, SessionTable};

/// Key plus entry, the payload a session costs at minimum (146 bytes).
pub const PAYLOAD_BYTES: usize =
    std::mem::size_of::<SessionKey>() + std::mem::size_of::<SessionEntry>();

/// Fixed "now" for generated sessions, so runs are reproducible.
pub const NOW: u32 = 1_700_000_000;

/// The baseline map: a bare sharded map holding the records inline, with a
/// fast (non-DoS-resistant) hasher.
pub type BareMap = DashMap<SessionKey, SessionEntry, foldhash::fast::RandomState>;

/// A [`BareMap`] pre-sized for `capacity` sessions (default shard count).
pub fn bare_map(capacity: usize) -> BareMap {
    DashMap::with_capacity_and_hasher(capacity, foldhash::fast::RandomState::default())
}

/// A generator of distinct, all backup-capable IPv4 sessions.
pub fn generator(seed: u64) -> SessionGenerator {
    let mut g = SessionGenerator::new(seed, 0, false, NOW);
    g.local_only_every = 0;
    g
}

/// `n` distinct backup-capable sessions from `seed`.
pub fn sessions(n: usize, seed: u64) -> Vec<(SessionKey, SessionEntry)> {
    let mut g = generator(seed);
    (0..n).map(|_| g.next_session()).collect()
}

/// The data-plane update the benches apply: counters up, seen later.
#[inline]
pub fn bump(e: &mut SessionEntry) {
    e.packets[0] += 1;
    e.bytes[0] += 1500;
    e.last_seen = e.last_seen.wrapping_add(1);
}

/// Drains every shard's journal the way the sync engine does (clear the
/// pending flag, then take everything), reusing `out`. Returns how many
/// changes came out.
pub fn drain_all(table: &SessionTable, out: &mut Vec<Change>) -> usize {
    table.clear_pending();
    let mut n = 0;
    for shard in 0..table.shard_count() {
        n += table.drain_changes(shard, usize::MAX, out);
        out.clear();
    }
    n
}

/// Reads a whitespace-separated field (0-based) of a `/proc` file.
fn proc_field(path: &str, field: usize) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.split_whitespace().nth(field)?.parse().ok()
}

/// The kernel page size in bytes (from `/proc/self/smaps`; 4096 if unknown).
pub fn page_size() -> u64 {
    std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("KernelPageSize:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(4096, |kb| kb * 1024)
}

/// Resident set size in bytes, from `/proc/self/statm` (second field, pages).
pub fn rss_bytes() -> u64 {
    proc_field("/proc/self/statm", 1).unwrap_or(0) * page_size()
}

/// Minor page faults of this process so far (`/proc/self/stat` field 10).
pub fn minor_faults() -> u64 {
    // The command name (field 2) may contain spaces: count after its ')'.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|t| {
            let rest = &t[t.rfind(')')? + 1..];
            // rest starts at field 3 (state); minflt is field 10.
            rest.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}

/// `n` security rules as VRP text: the policy `mixed` syncs and the
/// `config` benchmark applies.
pub fn config_text(n: usize) -> String {
    let mut s = String::with_capacity(n * 100 + 32);
    s.push_str("security-policy\n");
    for i in 0..n {
        s.push_str(&format!(
            " rule name r{i}\n  source-zone trust\n  destination-zone untrust\n  action permit\n"
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_146_bytes() {
        assert_eq!(PAYLOAD_BYTES, 146);
    }

    #[test]
    fn proc_readers_work() {
        assert!(rss_bytes() > 0);
        assert!(page_size() >= 4096);
        assert!(minor_faults() > 0);
    }

    #[test]
    fn sessions_are_distinct_and_backup() {
        let s = sessions(10_000, 1);
        let keys: std::collections::HashSet<_> = s.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys.len(), s.len());
        assert!(s.iter().all(|(_, e)| e.is_backup()));
    }
}
