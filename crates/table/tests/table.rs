//! Behaviour of the session table that the sync engine relies on.

mod common;

use common::{drain_all, sessions};
use hotsync_table::*;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

fn table(max: usize, shards: usize, journal: usize) -> SessionTable {
    SessionTable::new(TableConfig {
        shards,
        max_sessions: max,
        journal_capacity: journal,
    })
}

#[test]
fn upsert_get_update_remove() {
    let t = table(1000, 16, 1024);
    let (k, e) = sessions(1, 1)[0];
    assert_eq!(t.upsert(&k, &e), Ok(Upsert::Inserted));
    assert_eq!(t.get(&k), Some(e));
    assert!(t.update(&k, |e| e.packets[0] += 5));
    assert_eq!(t.get(&k).unwrap().packets[0], e.packets[0] + 5);
    assert_eq!(t.upsert(&k, &e), Ok(Upsert::Updated));
    assert_eq!(t.len(), 1);
    assert_eq!(t.remove(&k), Some(e));
    assert_eq!(t.get(&k), None);
    assert!(!t.update(&k, |_| {}));
    assert!(t.is_empty());
}

#[test]
fn prefault_keeps_the_table_empty_and_usable() {
    let t = table(10_000, 4, 1024);
    t.prefault();
    assert!(t.is_empty());
    let all = sessions(5000, 15);
    for (k, e) in &all {
        t.upsert(k, e).unwrap();
    }
    let mut cur = t.snapshot();
    let mut out = Vec::new();
    while !cur.is_done() {
        t.snapshot_chunk(&mut cur, 1000, &mut out);
    }
    assert_eq!(out.len(), 5000, "pre-faulted slots are not entries");
}

#[test]
fn table_full_is_an_error_not_a_reallocation() {
    let t = table(64, 1, 1024);
    let all = sessions(10_000, 2);
    let mut inserted = 0;
    let mut full = None;
    for (k, e) in &all {
        match t.upsert(k, e) {
            Ok(_) => inserted += 1,
            Err(f) => {
                full = Some(f);
                break;
            }
        }
    }
    let full = full.expect("a 64-session table must refuse 10,000 sessions");
    assert_eq!(full.shard, 0);
    assert_eq!(inserted, full.capacity);
    // Removing one makes room again (the freed slot is reused).
    t.remove(&all[0].0);
    assert!(t.upsert(&all[inserted].0, &all[inserted].1).is_ok());
}

#[test]
fn journal_coalesces_repeated_updates_of_one_key() {
    let t = table(1000, 16, 1024);
    let (k, e) = sessions(1, 3)[0];
    t.upsert(&k, &e).unwrap();
    for _ in 0..100 {
        t.update(&k, |e| e.packets[0] += 1);
    }
    let changes = drain_all(&t);
    assert_eq!(changes.len(), 1, "one record for 101 changes of one key");
    assert_eq!(changes[0].entry.unwrap().packets[0], e.packets[0] + 100);
    // Once drained, a new change is journaled again.
    t.update(&k, |e| e.packets[0] += 1);
    assert_eq!(drain_all(&t).len(), 1);
}

#[test]
fn removal_is_journaled_as_delete() {
    let t = table(1000, 16, 1024);
    let all = sessions(10, 4);
    for (k, e) in &all {
        t.upsert(k, e).unwrap();
    }
    drain_all(&t);
    t.remove(&all[3].0);
    let c = drain_all(&t);
    assert_eq!(
        c,
        vec![Change {
            key: all[3].0,
            entry: None
        }]
    );
    // Insert-then-remove before a drain still yields a delete (harmless for
    // a peer that never saw it), never a stale upsert.
    t.update(&all[4].0, |e| e.packets[0] += 1);
    t.remove(&all[4].0);
    let c = drain_all(&t);
    assert_eq!(
        c,
        vec![Change {
            key: all[4].0,
            entry: None
        }]
    );
}

#[test]
fn local_only_entries_are_never_journaled_or_digested() {
    let t = table(1000, 16, 1024);
    let (k, mut e) = sessions(1, 5)[0];
    e.flags &= !flags::BACKUP;
    t.upsert(&k, &e).unwrap();
    t.update(&k, |e| e.packets[0] += 1);
    assert!(drain_all(&t).is_empty());
    assert_eq!(t.digest().entries, 0);
    assert!(t.digest().shards.iter().all(|&d| d == 0));
    // Becoming local-only after being replicated tells the peer to delete.
    let (k2, e2) = sessions(2, 5)[1];
    t.upsert(&k2, &e2).unwrap();
    drain_all(&t);
    t.update(&k2, |e| e.flags &= !flags::BACKUP);
    assert_eq!(
        drain_all(&t),
        vec![Change {
            key: k2,
            entry: None
        }]
    );
}

#[test]
fn reinserting_a_removed_key_as_local_only_still_deletes_it_on_the_peer() {
    let t = table(1000, 16, 1024);
    let (k, e) = sessions(1, 13)[0];
    t.upsert(&k, &e).unwrap();
    drain_all(&t);
    t.remove(&k);
    let mut local = e;
    local.flags &= !flags::BACKUP;
    t.upsert(&k, &local).unwrap();
    assert_eq!(
        drain_all(&t),
        vec![Change {
            key: k,
            entry: None
        }]
    );
}

#[test]
fn full_journal_marks_the_shard_overflowed_and_resumes_after_take() {
    let t = table(10_000, 1, 8);
    let all = sessions(20, 6);
    let woke = Arc::new(AtomicUsize::new(0));
    let w = woke.clone();
    t.set_change_notifier(Box::new(move || {
        w.fetch_add(1, Ordering::Relaxed);
    }));
    for (k, e) in &all {
        t.upsert(k, e).unwrap();
    }
    assert_eq!(t.journal_len(0), 8, "journal never grows past its capacity");
    assert_eq!(woke.load(Ordering::Relaxed), 1, "one wake for the burst");
    let mut set = ShardSet::new(1);
    assert_eq!(t.take_overflowed(&mut set), 1);
    assert!(set.contains(0));
    assert_eq!(t.overflow_count(), 1);
    assert_eq!(t.take_overflowed(&mut set), 0, "mark cleared");
    // The 8 queued keys still drain; journaling works again afterwards.
    assert_eq!(drain_all(&t).len(), 8);
    t.update(&all[15].0, |e| e.packets[0] += 1);
    assert_eq!(drain_all(&t).len(), 1);
}

/// What an authoritative node takes from a peer whose copy is not: only
/// sessions it lacks, never over its own version or an undrained removal,
/// and never journaled.
#[test]
fn apply_if_absent_keeps_the_tables_own_version() {
    let t = table(64, 4, 16);
    let s = sessions(2, 5);
    let ((k, mine), (absent, theirs_new)) = (s[0], s[1]);
    t.upsert(&k, &mine).unwrap();
    drain_all(&t);
    let mut theirs = mine;
    theirs.packets[0] += 7;
    assert_eq!(t.apply_upsert_if_absent(&k, &theirs), Ok(IfAbsent::Present));
    assert_eq!(t.get(&k), Some(mine));
    assert_eq!(
        t.apply_upsert_if_absent(&absent, &theirs_new),
        Ok(IfAbsent::Inserted)
    );
    assert_eq!(t.get(&absent), Some(theirs_new));
    assert!(drain_all(&t).is_empty(), "journaled");
    // A removal not drained yet is not undone.
    t.remove(&k).unwrap();
    assert_eq!(
        t.apply_upsert_if_absent(&k, &theirs),
        Ok(IfAbsent::Removing)
    );
    assert_eq!(t.get(&k), None);
    assert_eq!(drain_all(&t).len(), 1);
    assert_eq!(
        t.apply_upsert_if_absent(&k, &theirs),
        Ok(IfAbsent::Inserted)
    );
}

#[test]
fn apply_does_not_journal() {
    let t = table(1000, 16, 1024);
    for (k, e) in sessions(50, 7) {
        t.apply_upsert(&k, &e).unwrap();
    }
    assert!(drain_all(&t).is_empty());
    assert!(!t.has_pending());
    assert_eq!(t.digest().entries, 50);
}

#[test]
fn batch_apply_matches_one_by_one_apply_and_keeps_per_key_order() {
    let all = sessions(3000, 14);
    let one = table(10_000, 16, 1024);
    let batch = table(10_000, 16, 1024);
    let grouped = table(10_000, 16, 1024);
    // The same key twice in one batch: the later record must win.
    let mut recs = all.clone();
    let mut newer = all[7].1;
    newer.packets[0] += 99;
    recs.push((all[7].0, newer));
    for (k, e) in &recs {
        one.apply_upsert(k, e).unwrap();
    }
    assert_eq!(batch.apply_upserts(recs.iter().copied()), 0);
    let hashed: Vec<_> = recs
        .iter()
        .map(|(k, e)| HashedRecord::new(*k, *e))
        .collect();
    let mut order = Vec::new();
    assert_eq!(grouped.apply_upserts_grouped(&hashed, &mut order), 0);
    assert_eq!(one.digest(), batch.digest());
    assert_eq!(one.digest(), grouped.digest());
    assert_eq!(grouped.get(&all[7].0).unwrap().packets[0], newer.packets[0]);
    assert!(drain_all(&grouped).is_empty(), "apply never journals");
    // A full table counts refusals instead of failing the batch.
    let tiny = table(16, 1, 1024);
    let hashed: Vec<_> = all.iter().map(|(k, e)| HashedRecord::new(*k, *e)).collect();
    let refused = tiny.apply_upserts_grouped(&hashed, &mut order);
    assert_eq!(refused + tiny.len(), all.len());
}

#[test]
fn resync_removes_only_entries_the_peer_did_not_resend() {
    let t = table(1000, 1, 1024);
    let all = sessions(10, 8);
    for (k, e) in &all {
        t.apply_upsert(k, e).unwrap();
    }
    let (lk, mut le) = sessions(11, 8)[10];
    le.flags &= !flags::BACKUP;
    t.upsert(&lk, &le).unwrap();
    t.begin_resync(0, 7);
    for (k, e) in &all[..6] {
        t.apply_upsert(k, e).unwrap();
    }
    assert_eq!(t.end_resync(0, 7), 4);
    assert_eq!(t.len(), 7, "six resent + the local-only entry");
    assert!(t.get(&lk).is_some());
    assert!(t.get(&all[8].0).is_none());
}

#[test]
fn resync_keeps_a_local_change_not_yet_drained() {
    let t = table(1000, 1, 1024);
    let all = sessions(4, 12);
    for (k, e) in &all {
        t.apply_upsert(k, e).unwrap();
    }
    t.begin_resync(0, 9);
    // The data plane creates one session and changes another while the
    // peer's walk (which carries neither) is under way.
    let (nk, ne) = sessions(5, 12)[4];
    t.upsert(&nk, &ne).unwrap();
    assert!(t.update(&all[0].0, |e| e.packets[0] += 1));
    assert_eq!(t.end_resync(0, 9), 3, "the three the walk dropped");
    assert!(t.get(&nk).is_some() && t.get(&all[0].0).is_some());
    // Both go to the peer next, as they are now.
    let keys: Vec<_> = drain_all(&t)
        .iter()
        .map(|c| (c.key, c.entry.is_some()))
        .collect();
    assert_eq!(keys, vec![(nk, true), (all[0].0, true)]);
}

#[test]
fn expire_removes_idle_entries_and_journals_them() {
    let t = table(1000, 4, 1024);
    let all = sessions(100, 9);
    for (i, (k, e)) in all.iter().enumerate() {
        let mut e = *e;
        e.timeout = if i % 2 == 0 { 10 } else { 10_000 };
        e.last_seen = 1000;
        t.upsert(k, &e).unwrap();
    }
    drain_all(&t);
    let mut expired = 0;
    // 100 slots in all, 8 examined per call.
    for _ in 0..13 {
        expired += t.expire(1100, 8);
    }
    assert_eq!(expired, 50);
    assert_eq!(t.len(), 50);
    let c = drain_all(&t);
    assert_eq!(c.len(), 50);
    assert!(c.iter().all(|c| c.entry.is_none()));
}

#[test]
fn expire_budget_bounds_the_whole_sweep_not_each_shard() {
    // Many shards, every entry idle: one call must stop after `budget`
    // slots (the event loop calls it between other work), and the calls
    // together still reach every shard.
    let t = table(100_000, 256, 64);
    for (k, e) in sessions(1000, 3) {
        let mut e = e;
        e.timeout = 10;
        e.last_seen = 1000;
        t.upsert(&k, &e).unwrap();
    }
    let mut calls = 0;
    while !t.is_empty() {
        let n = t.expire(1100, 16);
        assert!(n <= 16, "one call expired {n} entries with a budget of 16");
        calls += 1;
        assert!(calls <= 1000 / 16 + 256 + 1, "the sweep stalled");
    }
}

#[test]
fn snapshot_visits_every_backup_entry_once() {
    let t = table(100_000, 8, 1024);
    let mut g = SessionGenerator::new(10, 1, true, 1_700_000_000);
    g.local_only_every = 10;
    let all: Vec<_> = (0..20_000).map(|_| g.next_session()).collect();
    for (k, e) in &all {
        t.upsert(k, e).unwrap();
    }
    let mut cur = t.snapshot();
    let mut out = Vec::new();
    let mut finished = Vec::new();
    while !cur.is_done() {
        t.snapshot_chunk(&mut cur, 333, &mut out);
        finished.extend(cur.finished_shard());
    }
    assert_eq!(finished, (0..8).collect::<Vec<_>>());
    let want: HashSet<_> = all
        .iter()
        .filter(|(_, e)| e.is_backup())
        .map(|(k, _)| *k)
        .collect();
    let got: HashSet<_> = out.iter().map(|(k, _)| *k).collect();
    assert_eq!(out.len(), want.len(), "no duplicates");
    assert_eq!(got, want);
}

#[test]
fn snapshot_is_complete_under_concurrent_writers() {
    let t = Arc::new(table(400_000, 16, 1 << 16));
    let initial = sessions(100_000, 11);
    for (k, e) in &initial {
        t.upsert(k, e).unwrap();
    }
    // Writers: remove every 7th initial key, update others, insert new ones.
    let stop = Arc::new(AtomicBool::new(false));
    let removed: HashSet<SessionKey> = initial.iter().step_by(7).map(|(k, _)| *k).collect();
    let writer = {
        let (t, stop) = (t.clone(), stop.clone());
        let initial = initial.clone();
        std::thread::spawn(move || {
            let mut fresh = SessionGenerator::new(12, 2, false, 1_700_000_000);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) || i < initial.len() {
                if i < initial.len() {
                    let (k, _) = &initial[i];
                    if i % 7 == 0 {
                        t.remove(k);
                    } else {
                        t.update(k, |e| e.packets[0] += 1);
                    }
                }
                let (k, e) = fresh.next_session();
                let _ = t.upsert(&k, &e);
                i += 1;
            }
        })
    };
    let mut cur = t.snapshot();
    let mut seen: HashMap<SessionKey, usize> = HashMap::new();
    let mut out = Vec::new();
    while !cur.is_done() {
        out.clear();
        t.snapshot_chunk(&mut cur, 256, &mut out);
        for (k, _) in &out {
            *seen.entry(*k).or_default() += 1;
        }
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(seen.values().all(|&n| n == 1), "an entry was visited twice");
    for (k, _) in &initial {
        if !removed.contains(k) {
            assert!(seen.contains_key(k), "surviving key {k:?} missed");
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(usize, u64),
    Remove(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..64usize, any::<u64>()).prop_map(|(i, v)| Op::Upsert(i, v)),
        (0..64usize).prop_map(Op::Remove),
    ]
}

fn final_state(
    ops: &[Op],
    pool: &[(SessionKey, SessionEntry)],
) -> HashMap<SessionKey, SessionEntry> {
    let mut m = HashMap::new();
    for op in ops {
        match *op {
            Op::Upsert(i, v) => {
                let (k, mut e) = pool[i];
                e.packets[1] = v;
                m.insert(k, e);
            }
            Op::Remove(i) => {
                m.remove(&pool[i].0);
            }
        }
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Two tables holding the same entries have equal digests, whatever the
    /// order of operations that produced them; replaying the drained
    /// changes on a peer makes the peer's digest equal.
    #[test]
    fn digest_is_order_independent_and_replication_converges(ops in prop::collection::vec(op(), 1..300), seed in any::<u64>()) {
        let pool = sessions(64, seed);
        let a = table(1000, 4, 16); // small journal: overflows happen
        let peer = table(1000, 4, 16);
        let mut overflowed = ShardSet::new(4);
        for op in &ops {
            match *op {
                Op::Upsert(i, v) => {
                    let (k, mut e) = pool[i];
                    e.packets[1] = v;
                    a.upsert(&k, &e).unwrap();
                }
                Op::Remove(i) => {
                    a.remove(&pool[i].0);
                }
            }
            if i64::from(seed as u8) % 3 == 0 {
                for c in drain_all(&a) {
                    match c.entry {
                        Some(e) => { peer.apply_upsert(&c.key, &e).unwrap(); }
                        None => { peer.apply_remove(&c.key); }
                    }
                }
            }
        }
        // The final map inserted in key order into a fresh table.
        let b = table(1000, 4, 16);
        let mut fin: Vec<_> = final_state(&ops, &pool).into_iter().collect();
        fin.sort_by_key(|(k, _)| *k.as_bytes().first().unwrap_or(&0));
        for (k, e) in fin.iter().rev() {
            b.upsert(k, e).unwrap();
        }
        prop_assert_eq!(a.digest(), b.digest());

        // Replicate: drained changes, plus a whole-shard resync of any
        // shard whose journal overflowed.
        a.take_overflowed(&mut overflowed);
        for c in drain_all(&a) {
            match c.entry {
                Some(e) => { peer.apply_upsert(&c.key, &e).unwrap(); }
                None => { peer.apply_remove(&c.key); }
            }
        }
        for (n, s) in overflowed.iter().enumerate() {
            let epoch = n as u32 + 1;
            peer.begin_resync(s, epoch);
            let mut one = ShardSet::new(4);
            one.insert(s);
            let mut cur = SnapshotCursor::over(one);
            let mut out = Vec::new();
            while !cur.is_done() { a.snapshot_chunk(&mut cur, 5, &mut out); }
            for (k, e) in &out { peer.apply_upsert(k, e).unwrap(); }
            peer.end_resync(s, epoch);
        }
        prop_assert_eq!(a.digest(), peer.digest());
    }
}

#[test]
fn only_shards_with_journaled_keys_are_marked_for_the_drain() {
    let t = table(10_000, 16, 1024);
    assert!((0..16).all(|s| !t.may_have_changes(s)));
    let (k, e) = sessions(1, 5)[0];
    t.upsert(&k, &e).unwrap();
    let marked: Vec<usize> = (0..16).filter(|&s| t.may_have_changes(s)).collect();
    assert_eq!(marked.len(), 1, "the one shard written");
    let s = marked[0];
    let mut out = Vec::new();
    assert_eq!(t.drain_changes(s, 100, &mut out), 1);
    assert!(!t.may_have_changes(s), "drained empty: unmarked");
    t.remove(&k).unwrap();
    assert!(t.may_have_changes(s), "a removal marks it again");
    // A partial drain leaves the mark.
    for (k, e) in sessions(50, 6) {
        t.upsert(&k, &e).unwrap();
    }
    for s in 0..16 {
        if t.may_have_changes(s) {
            out.clear();
            t.drain_changes(s, 1, &mut out);
            assert_eq!(t.may_have_changes(s), t.journal_len(s) > 0);
        }
    }
}

#[test]
fn a_journaled_slot_refilled_by_another_key_drains_as_a_deletion() {
    let t = table(100, 1, 1024);
    let s = sessions(2, 8);
    let ((k1, e1), (k2, e2)) = (s[0], s[1]);
    t.upsert(&k1, &e1).unwrap();
    drain_all(&t);
    assert!(t.update(&k1, |e| e.packets[0] += 1));
    t.remove(&k1).unwrap();
    // The freed slot goes to the next insert.
    t.upsert(&k2, &e2).unwrap();
    let c = drain_all(&t);
    assert_eq!(c.len(), 2);
    assert_eq!((c[0].key, c[0].entry), (k1, None), "k1 is gone");
    assert_eq!((c[1].key, c[1].entry), (k2, Some(e2)));
}

#[test]
fn a_burst_lookup_answers_what_single_lookups_answer() {
    let t = table(4_000, 8, 1 << 16);
    let present = sessions(3_000, 11);
    let absent = sessions(1_000, 12);
    for (k, e) in &present {
        t.upsert(k, e).unwrap();
    }
    // Present and absent keys interleaved, over many prefetch groups and a
    // last partial one.
    let keys: Vec<SessionKey> = present
        .iter()
        .zip(&absent)
        .flat_map(|((p, _), (a, _))| [*p, *a])
        .chain(present[1_000..1_007].iter().map(|(k, _)| *k))
        .collect();
    let mut out = vec![None; keys.len()];
    assert_eq!(t.get_burst(&keys, &mut out), keys.len());
    for (k, got) in keys.iter().zip(&out) {
        assert_eq!(*got, t.get(k));
    }
    assert_eq!(out.iter().filter(|e| e.is_some()).count(), 1_007);
    // A shorter output fills what fits and says so; the rest is untouched.
    let mut short = [None; 5];
    assert_eq!(t.get_burst(&keys[..9], &mut short), 5);
    assert_eq!(short[0], Some(present[0].1));
    assert_eq!(short[1], None);
}
