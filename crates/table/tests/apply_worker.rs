//! The receiver's two-thread apply (`ApplyWorker`) leaves the table exactly
//! as the one-thread apply does, and a change that follows a chunk is never
//! overwritten by it.

mod common;

use common::{drain_all, sessions};
use hotsync_table::*;
use std::sync::Arc;

fn table(max: usize, shards: usize) -> Arc<SessionTable> {
    Arc::new(SessionTable::new(TableConfig {
        shards,
        max_sessions: max,
        journal_capacity: 1 << 16,
    }))
}

fn contents(t: &SessionTable) -> Vec<(SessionKey, SessionEntry)> {
    let mut all = Vec::new();
    for s in 0..t.shard_count() {
        t.for_each_in_shard(s, |k, e| all.push((*k, *e)));
    }
    all.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    all
}

/// Chunks as a batch sync sends them: one shard each, in walk order, here
/// with a key sent twice (a session removed and re-created during the walk:
/// the later copy must win), local-only entries among them, and records
/// that overwrite entries the node's own data plane wrote (and journaled).
#[test]
fn a_parallel_apply_leaves_the_table_digests_and_journal_of_the_sequential_one() {
    let seq = table(40_000, 4);
    let par = table(40_000, 4);
    let worker = ApplyWorker::spawn(Arc::clone(&par)).unwrap();
    let mut recs = sessions(20_000, 3);
    for (i, (_, e)) in recs.iter_mut().enumerate() {
        if i % 7 == 0 {
            e.flags &= !flags::BACKUP;
        }
    }
    let own = sessions(3_000, 4);
    for t in [&seq, &par] {
        for (k, e) in own.iter().chain(&recs[..1_000]) {
            t.upsert(k, e).unwrap();
        }
        t.begin_resync(2, 77);
    }
    let mut recs: Vec<_> = recs
        .into_iter()
        .map(|(k, mut e)| {
            e.packets[0] += 1;
            (k, e)
        })
        .collect();
    let (k, mut newer) = recs[500];
    newer.bytes[1] += 1_000;
    recs.insert(12_345, (k, newer));
    recs.sort_by_key(|(k, _)| seq.shard_of(k));
    for chunk in recs.chunk_by(|a, b| seq.shard_of(&a.0) == seq.shard_of(&b.0)) {
        for part in chunk.chunks(4096) {
            assert_eq!(seq.apply_upserts(part.iter().copied()), 0);
            assert_eq!(worker.apply_upserts(part.iter().copied()), 0);
        }
    }
    assert_eq!(par.digest(), seq.digest());
    assert_eq!(par.len(), seq.len());
    assert_eq!(par.backup_len(), seq.backup_len());
    assert_eq!(contents(&par), contents(&seq));
    assert_eq!(par.get(&k), Some(newer));
    // Entries not resent in the resynced shard go the same way.
    assert_eq!(par.end_resync(2, 77), seq.end_resync(2, 77));
    assert_eq!(contents(&par), contents(&seq));
    let (jp, js) = (drain_all(&par), drain_all(&seq));
    assert!(!jp.is_empty());
    assert_eq!(
        jp, js,
        "the same journal: applied records are never journaled"
    );
}

#[test]
fn a_full_shard_refuses_the_same_records_on_either_path() {
    let seq = table(64, 1);
    let par = table(64, 1);
    let worker = ApplyWorker::spawn(Arc::clone(&par)).unwrap();
    let recs = sessions(1_000, 5);
    let refused_seq = seq.apply_upserts(recs.iter().copied());
    assert!(refused_seq > 0);
    assert_eq!(worker.apply_upserts(recs.iter().copied()), refused_seq);
    assert_eq!(contents(&par), contents(&seq));
}

/// Per-key order: the chunk is whole in the table when the call returns, so
/// an incremental change or a deletion that arrives after it stays (an
/// apply still running behind the caller would overwrite the change and
/// bring the deleted session back).
#[test]
fn a_change_after_a_parallel_chunk_is_never_overwritten() {
    let t = table(200_000, 1);
    let worker = ApplyWorker::spawn(Arc::clone(&t)).unwrap();
    let recs = sessions(100_000, 6);
    let mut order = Vec::new();
    for (round, chunk) in recs.chunks(4096).enumerate() {
        assert_eq!(worker.apply_upserts(chunk.iter().copied()), 0);
        // The last record of the chunk (the one applied last) changes, the
        // first is deleted, at once.
        let (k, e) = chunk[chunk.len() - 1];
        let mut changed = e;
        changed.packets[1] = 1_000_000 + round as u64;
        let hashed = [HashedRecord::new(k, changed)];
        assert_eq!(t.apply_upserts_grouped(&hashed, &mut order), 0);
        assert!(t.apply_remove(&chunk[0].0));
        assert_eq!(t.get(&k), Some(changed), "round {round}");
        assert_eq!(t.get(&chunk[0].0), None, "round {round}");
    }
    assert_eq!(t.len(), recs.len() - recs.chunks(4096).count());
}

#[test]
fn an_idle_worker_stops_with_its_owner() {
    let t = table(1_000, 1);
    let worker = ApplyWorker::spawn(Arc::clone(&t)).unwrap();
    assert_eq!(worker.apply_upserts(std::iter::empty()), 0);
    std::thread::sleep(std::time::Duration::from_millis(20));
    drop(worker);
    assert_eq!(
        Arc::strong_count(&t),
        1,
        "the worker's table handle is gone"
    );
}
