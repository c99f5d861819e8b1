//! Incremental changes go ahead of bulk, and bulk never undoes them: the
//! bulk window and per-key order over the in-memory pair.

use hotsync_proto::testing::{Pair, PairConfig};
use hotsync_proto::{ConnKind, JobState};
use hotsync_table::{SessionEntry, SessionGenerator, SessionKey};
use std::time::Duration;

const SESSION: ConnKind = ConnKind::Session;
/// `PairConfig::default()`'s `batch_records`: a bulk chunk's size there.
const CHUNK: u64 = 64;

fn write(p: &Pair, seed: u64, n: usize) -> Vec<(SessionKey, SessionEntry)> {
    let mut g = SessionGenerator::new(seed, 0, false, 1000);
    let s: Vec<_> = (0..n).map(|_| g.next_session()).collect();
    for (k, e) in &s {
        p.a.table.upsert(k, e).unwrap();
    }
    s
}

fn in_step(p: &Pair) -> bool {
    p.a.table.digest() == p.b.table.digest()
}

fn bump(p: &Pair, key: &SessionKey) {
    assert!(p.a.table.update(key, |e| e.packets[0] += 1));
}

#[test]
fn incremental_changes_go_ahead_of_a_running_batch_sync() {
    let mut p = Pair::new(PairConfig::default());
    let all = write(&p, 1, 3000);
    p.establish();
    let id = p.a.peer.start_session_sync(p.now).unwrap();
    // The peer applies nothing meanwhile: whatever A sends stays in flight.
    p.hold(SESSION, true);
    for (k, _) in &all[..40] {
        bump(&p, k);
        p.step();
    }
    let sent = p.a.peer.job(id).unwrap().sent;
    assert!(
        sent <= 2 * CHUNK,
        "{sent} bulk records in flight ahead of incremental changes (at most two short chunks)"
    );
    p.hold(SESSION, false);
    assert!(p.run_until(Duration::from_secs(2), |p| {
        in_step(p) && p.a.peer.job(id).is_some_and(|j| j.state == JobState::Done)
    }));
}

#[test]
fn a_batch_sync_alone_keeps_many_chunks_in_flight() {
    let mut p = Pair::new(PairConfig::default());
    write(&p, 1, 3000);
    p.establish();
    let id = p.a.peer.start_session_sync(p.now).unwrap();
    p.hold(SESSION, true);
    p.run_for(Duration::from_millis(20));
    let sent = p.a.peer.job(id).unwrap().sent;
    assert!(
        sent >= 20 * CHUNK,
        "only {sent} records sent: with no incremental traffic bulk is not throttled"
    );
    p.hold(SESSION, false);
    assert!(p.run_until(Duration::from_secs(2), in_step));
}

#[test]
fn a_chunk_encoded_before_a_change_never_undoes_it() {
    let mut p = Pair::new(PairConfig::default());
    let all = write(&p, 1, 2000);
    p.establish();
    let id = p.a.peer.start_session_sync(p.now).unwrap();
    p.hold(SESSION, true);
    p.step();
    p.step();
    assert!(p.a.peer.job(id).unwrap().sent > 0, "chunks are in flight");
    // Change and delete every session after the chunks in flight read them.
    let (kept, gone) = all.split_at(1000);
    for (k, _) in kept {
        bump(&p, k);
    }
    for (k, _) in gone {
        p.a.table.remove(k).unwrap();
    }
    p.hold(SESSION, false);
    assert!(p.run_until(Duration::from_secs(2), |p| {
        p.a.peer.job(id).is_some_and(|j| j.state == JobState::Done)
    }));
    p.run_for(Duration::from_millis(20));
    for (k, e) in kept {
        let got = p.b.table.get(k).expect("kept session on the peer");
        assert_eq!(got.packets[0], e.packets[0] + 1, "the newer change stays");
    }
    for (k, _) in gone {
        assert!(p.b.table.get(k).is_none(), "a deleted session came back");
    }
    assert!(in_step(&p));
}
