//! The lock-free read protocol under concurrent writers: readers must never
//! see a torn entry, an entry of another key, or miss a key that is present
//! throughout; writers must never lose an update.
//!
//! Every entry the writers store carries a checksum of itself and its key
//! (`bytes[1]`), so a reader can tell a whole entry from a mix of two writes
//! or from a reused slot's new tenant.

use hotsync_table::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

fn table(max: usize, shards: usize) -> SessionTable {
    SessionTable::new(TableConfig {
        shards,
        max_sessions: max,
        journal_capacity: 256,
    })
}

fn keys(n: usize, seed: u64) -> Vec<(SessionKey, SessionEntry)> {
    let mut g = SessionGenerator::new(seed, 0, false, 1_700_000_000);
    (0..n).map(|_| g.next_session()).collect()
}

/// Every word of the entry derived from `v`, plus a key-bound checksum.
fn stamped(key: &SessionKey, template: &SessionEntry, v: u64) -> SessionEntry {
    let mut e = *template;
    e.packets = [v, !v];
    e.bytes[0] = v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    e.nat.src_addr = [v as u8; 16];
    e.nat.dst_addr = [(v >> 8) as u8; 16];
    e.policy_id = v as u32;
    e.app_id = (v >> 32) as u32;
    e.bytes[1] = checksum(key, &e);
    e
}

fn checksum(key: &SessionKey, e: &SessionEntry) -> u64 {
    let mut c = *e;
    c.bytes[1] = 0;
    entry_digest(key, &c)
}

/// Panics unless `e` is a whole entry written for `key`.
fn check(key: &SessionKey, e: &SessionEntry) {
    let v = e.packets[0];
    assert_eq!(e.packets[1], !v, "torn entry for {key:?}");
    assert_eq!(e.bytes[0], v.wrapping_mul(0x9e37_79b9_7f4a_7c15), "torn");
    assert_eq!(e.nat.src_addr, [v as u8; 16], "torn");
    assert_eq!(e.nat.dst_addr, [(v >> 8) as u8; 16], "torn");
    assert_eq!(
        (e.policy_id, e.app_id),
        (v as u32, (v >> 32) as u32),
        "torn"
    );
    assert_eq!(e.bytes[1], checksum(key, e), "entry of another key");
}

#[test]
fn readers_never_see_a_torn_entry_nor_miss_a_present_key() {
    // One shard and few keys: writes, removals (backward shifts) and slot
    // reuse all land where the readers are reading.
    let t = table(96, 1);
    let stable = keys(16, 1);
    let churn = keys(64, 2);
    for (k, e) in &stable {
        t.upsert(k, &stamped(k, e, 1)).unwrap();
    }
    let done = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    const ROUNDS: u64 = 4_000;
    std::thread::scope(|s| {
        // Rewrites the stable keys in place: `update`, `upsert`, and batch
        // `apply_upserts`, each with a new stamp.
        s.spawn(|| {
            for round in 2..ROUNDS {
                for (i, (k, e)) in stable.iter().enumerate() {
                    let v = round << 32 | i as u64;
                    match i % 3 {
                        0 => assert!(t.update(k, |x| *x = stamped(k, e, v))),
                        1 => assert_eq!(t.upsert(k, &stamped(k, e, v)), Ok(Upsert::Updated)),
                        _ => {}
                    }
                }
                let batch = stable
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 3 == 2)
                    .map(|(i, (k, e))| (*k, stamped(k, e, round << 32 | i as u64)));
                assert_eq!(t.apply_upserts(batch), 0);
                let mut out = Vec::new();
                for sh in 0..t.shard_count() {
                    t.drain_changes(sh, usize::MAX, &mut out);
                }
            }
        });
        // Inserts and removes other keys of the same shards: index words
        // shift back over the stable keys' probe paths, slots are reused.
        s.spawn(|| {
            for round in 0..ROUNDS {
                for (i, (k, e)) in churn.iter().enumerate() {
                    t.upsert(k, &stamped(k, e, round << 32 | i as u64)).unwrap();
                }
                for (k, _) in churn.iter().skip(round as usize % 2) {
                    t.remove(k);
                }
            }
            done.store(true, Ordering::Release);
        });
        for r in 0..2u64 {
            let (t, stable, churn, done, reads) = (&t, &stable, &churn, &done, &reads);
            s.spawn(move || {
                let mut x = 0x9e37_79b9_u64 + r;
                let mut n = 0u64;
                while !done.load(Ordering::Acquire) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if r == 0 {
                        let (k, _) = &stable[x as usize % stable.len()];
                        let e = t.get(k).expect("a present key was missed");
                        check(k, &e);
                        let (k, _) = &churn[(x >> 32) as usize % churn.len()];
                        if let Some(e) = t.get(k) {
                            check(k, &e);
                        }
                        n += 1;
                    } else {
                        // The data plane's burst lookup: stable and churned
                        // keys mixed, more than one prefetch group.
                        let burst: [SessionKey; 21] = std::array::from_fn(|i| {
                            let y = x.rotate_left(i as u32 * 3);
                            if i % 2 == 0 {
                                stable[y as usize % stable.len()].0
                            } else {
                                churn[y as usize % churn.len()].0
                            }
                        });
                        let mut out = [None; 21];
                        assert_eq!(t.get_burst(&burst, &mut out), 21);
                        for (i, (k, e)) in burst.iter().zip(&out).enumerate() {
                            match e {
                                Some(e) => check(k, e),
                                None => assert!(i % 2 == 1, "a present key was missed"),
                            }
                        }
                        n += 21;
                    }
                }
                reads.fetch_add(n, Ordering::Relaxed);
            });
        }
        // The snapshot walk reads without a lock too. Keys present for the
        // whole walk are visited exactly once (a churned key removed and
        // re-inserted elsewhere may be met in both slots).
        s.spawn(|| {
            let stable_keys: HashSet<_> = stable.iter().map(|(k, _)| *k).collect();
            while !done.load(Ordering::Acquire) {
                let mut cur = t.snapshot();
                let mut seen = HashSet::new();
                while !cur.is_done() {
                    t.snapshot_chunk_with(&mut cur, 64, |k, e| {
                        check(k, e);
                        if stable_keys.contains(k) {
                            assert!(seen.insert(*k), "visited twice in one walk");
                        }
                    });
                }
                assert_eq!(seen, stable_keys, "a present key was not visited");
            }
        });
    });
    assert!(reads.load(Ordering::Relaxed) > 0);
    for (k, _) in &stable {
        check(k, &t.get(k).unwrap());
    }
}

#[test]
fn concurrent_writers_never_lose_an_update() {
    let t = table(1_000, 4);
    let all = keys(64, 3);
    for (k, e) in &all {
        let mut e = *e;
        e.packets[0] = 0;
        t.upsert(k, &e).unwrap();
    }
    const PER_THREAD: usize = 20_000;
    std::thread::scope(|s| {
        for w in 0..4 {
            let (t, all) = (&t, &all);
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let (k, _) = &all[(i * 7 + w) % all.len()];
                    assert!(t.update(k, |e| e.packets[0] += 1));
                }
            });
        }
        s.spawn(|| {
            for _ in 0..PER_THREAD {
                for (k, _) in &all {
                    assert!(t.get(k).is_some());
                }
            }
        });
    });
    let total: u64 = all.iter().map(|(k, _)| t.get(k).unwrap().packets[0]).sum();
    assert_eq!(total, 4 * PER_THREAD as u64);
    // The digests kept on every write match a table built from the result.
    let fresh = table(1_000, 4);
    for (k, _) in &all {
        fresh.upsert(k, &t.get(k).unwrap()).unwrap();
    }
    assert_eq!(t.digest(), fresh.digest());
}

#[test]
fn a_key_rewritten_without_pause_is_never_read_torn() {
    let t = table(64, 1);
    let (k, e) = keys(1, 4)[0];
    t.upsert(&k, &stamped(&k, &e, 0)).unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for v in 1..300_000u64 {
                match v % 3 {
                    0 => assert!(t.update(&k, |x| *x = stamped(&k, &e, v))),
                    1 => assert_eq!(t.upsert(&k, &stamped(&k, &e, v)), Ok(Upsert::Updated)),
                    _ => assert_eq!(t.apply_upserts([(k, stamped(&k, &e, v))].into_iter()), 0),
                }
            }
            done.store(true, Ordering::Release);
        });
        s.spawn(|| {
            let mut last = 0;
            while !done.load(Ordering::Acquire) {
                let e = t.get(&k).expect("the key is never removed");
                check(&k, &e);
                assert!(e.packets[0] >= last, "went back in time");
                last = e.packets[0];
                let mut cur = t.snapshot();
                t.snapshot_chunk_with(&mut cur, 8, check);
            }
        });
    });
}

/// The sync engine's drain: it takes the journal marks in one swap per 64
/// shards and owns the shards it took until it drains them empty. A write
/// that lands between the swap and the drain, or just after a shard was
/// drained empty, must still reach the drain: no key's last change may be
/// stranded in a journal without a mark.
#[test]
fn marks_taken_in_bulk_never_strand_a_change() {
    // Journals large enough never to overflow (an overflow stops journaling
    // for a resync, by design; it is checked below).
    let t = SessionTable::new(TableConfig {
        shards: 64,
        max_sessions: 4_096,
        journal_capacity: 1 << 16,
    });
    let sessions = keys(2_000, 9);
    let finished = AtomicU64::new(0);
    let mut last_drained = std::collections::HashMap::new();
    std::thread::scope(|s| {
        for w in 0..2u64 {
            let (t, sessions, finished) = (&t, &sessions, &finished);
            s.spawn(move || {
                let mut x = 0x2545_f491_4f6c_dd1d_u64 ^ w;
                for round in 1..=40_000u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (k, e) = &sessions[x as usize % sessions.len()];
                    match round % 7 {
                        0 => {
                            t.remove(k);
                        }
                        _ => {
                            t.upsert(k, &stamped(k, e, round << 8 | w)).unwrap();
                        }
                    }
                }
                finished.fetch_add(1, Ordering::Release);
            });
        }
        // The drain, as `hotsync-proto`'s drain pass runs it: small drains
        // (4 keys) so shards often stay owned across passes.
        let mut owned = ShardSet::new(t.shard_count());
        let mut out = Vec::new();
        let mut pass = |owned: &mut ShardSet| {
            t.take_journaled(owned);
            for sh in owned.iter().collect::<Vec<_>>() {
                out.clear();
                if t.drain_taken(sh, 4, &mut out) < 4 {
                    owned.remove(sh);
                }
                for c in &out {
                    last_drained.insert(c.key, c.entry);
                }
            }
        };
        while finished.load(Ordering::Acquire) < 2 {
            pass(&mut owned);
        }
        // The writers are gone: what is left takes a few more passes.
        for _ in 0..1_000 {
            pass(&mut owned);
        }
    });
    let mut overflowed = ShardSet::new(t.shard_count());
    assert_eq!(
        t.take_overflowed(&mut overflowed),
        0,
        "no journal overflowed"
    );
    for sh in 0..t.shard_count() {
        assert_eq!(
            t.journal_len(sh),
            0,
            "shard {sh}: changes stranded unmarked"
        );
    }
    assert!(last_drained.len() > 1_900, "most keys were written");
    for (k, _) in &sessions {
        let drained = last_drained.get(k).copied().flatten();
        assert_eq!(
            drained,
            t.get(k),
            "the last change of a key was not drained"
        );
    }
}
