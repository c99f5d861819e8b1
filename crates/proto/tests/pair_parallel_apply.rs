//! A batch sync that the standby applies on two threads
//! (`ProtoConfig::parallel_apply_min_records`), while the active's data
//! plane changes and deletes sessions the walk has sent or has yet to send:
//! every change that follows a chunk stays applied after it (per-key
//! order), so the standby ends equal and no deleted session comes back.

use hotsync_proto::JobState;
use hotsync_proto::testing::{Pair, PairConfig};
use hotsync_table::{SessionGenerator, TableConfig};
use std::time::Duration;

#[test]
fn changes_during_a_parallel_applied_batch_sync_are_not_overwritten() {
    let mut cfg = PairConfig::default();
    cfg.b.parallel_apply_min_records = 1;
    // Few shards: the walk's chunks are large (a chunk is one shard's).
    cfg.table_a = TableConfig::with_shards(10_000, 4);
    cfg.table_b = TableConfig::with_shards(10_000, 4);
    let mut p = Pair::new(cfg);
    let mut g = SessionGenerator::new(1, 0, false, 1000);
    let s: Vec<_> = (0..6_000).map(|_| g.next_session()).collect();
    for (k, e) in &s {
        p.a.table.upsert(k, e).unwrap();
    }
    p.establish();
    let id = p.a.peer.start_session_sync(p.now).unwrap();
    assert!(p.run_until(Duration::from_millis(500), |p| {
        p.a.peer.job(id).is_some_and(|j| j.acked > 1_000)
    }));
    let job = p.a.peer.job(id).unwrap();
    assert!(
        job.state != JobState::Done && job.sent < s.len() as u64,
        "the changes land while the walk runs: {job:?}"
    );
    for (i, (k, _)) in s.iter().enumerate() {
        match i % 3 {
            0 => assert!(p.a.table.remove(k).is_some()),
            1 => assert!(p.a.table.update(k, |e| e.packets[0] += 7)),
            _ => {}
        }
    }
    assert!(p.run_until(Duration::from_secs(2), |p| {
        p.a.peer.job(id).is_some_and(|j| j.state == JobState::Done)
            && p.a.table.digest() == p.b.table.digest()
    }));
    assert_eq!(p.b.table.len(), s.len() - s.len().div_ceil(3));
    for (i, (k, _)) in s.iter().enumerate() {
        assert_eq!(p.b.table.get(k), p.a.table.get(k), "session {i}");
    }
}
