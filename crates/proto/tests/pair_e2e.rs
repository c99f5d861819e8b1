//! Whole-relationship cases moved down from the node's `e2e.rs`: what
//! they assert is protocol behaviour, so they run over the in-memory pair,
//! deterministic and in simulated time. The node keeps the cases that need
//! real sockets and threads (a million sessions over TCP, concurrent
//! writers, a cut mid-batch on a real link).

use hotsync_proto::testing::{Pair, PairConfig};
use hotsync_proto::{ConnKind, JobState, RequestError, Role};
use hotsync_table::{SessionGenerator, SessionTable};
use std::time::Duration;

fn fill(table: &SessionTable, n: usize, seed: u64) {
    let mut g = SessionGenerator::new(seed, 0, false, 1000);
    for _ in 0..n {
        let (k, e) = g.next_session();
        table.upsert(&k, &e).unwrap();
    }
}

fn in_step(p: &Pair) -> bool {
    p.a.table.digest() == p.b.table.digest()
}

#[test]
fn sessions_before_establishment_wait_for_a_manual_sync() {
    let mut p = Pair::new(PairConfig::default());
    fill(&p.a.table, 500, 2);
    p.establish();
    p.run_for(Duration::from_millis(300));
    assert_eq!(p.b.table.len(), 0, "B4: nothing synchronized automatically");
    // New sessions after establishment are synchronized automatically (B3).
    fill(&p.a.table, 100, 3);
    assert!(p.run_until(Duration::from_millis(100), |p| p.b.table.len() == 100));
    let id = p.a.peer.start_session_sync(p.now).unwrap();
    assert!(p.run_until(Duration::from_secs(1), in_step));
    p.run_for(Duration::from_millis(5));
    assert_eq!(p.a.peer.job(id).map(|j| j.state), Some(JobState::Done));
    assert_eq!(p.b.table.len(), 600);
}

#[test]
fn a_peer_with_the_wrong_key_is_refused_and_changes_nothing() {
    let mut cfg = PairConfig::default().with_key();
    cfg.b.psk = Some(b"wrong".to_vec());
    let mut p = Pair::new(cfg);
    fill(&p.b.table, 1000, 6);
    for kind in ConnKind::ALL {
        p.connect(kind);
    }
    p.run_for(Duration::from_millis(800));
    assert!(!p.a.peer.is_established() && !p.b.peer.is_established());
    let now = p.now;
    assert_eq!(
        p.a.peer.start_session_sync(now),
        Err(RequestError::NotEstablished)
    );
    assert_eq!(p.a.table.len(), 0);
    assert!(p.a.errors("auth_failed") + p.b.errors("auth_failed") > 0);
}

#[test]
fn the_standby_takes_over_when_the_active_stops_and_keeps_its_sessions() {
    let mut p = Pair::new(PairConfig::default());
    p.establish();
    assert!(p.run_until(Duration::from_secs(1), |p| p.a.peer.role() == Role::Active));
    fill(&p.a.table, 2000, 7);
    assert!(p.run_until(Duration::from_secs(1), in_step));
    let n = p.b.table.len();
    assert_eq!(n, 2000);
    // A stops: both transports go, B hears nothing more.
    let t0 = p.now;
    p.cut(ConnKind::Session);
    p.cut(ConnKind::Config);
    assert!(p.run_until(Duration::from_secs(3), |p| p.b.peer.role() == Role::Active));
    // Within the dead interval (300 ms) plus a heartbeat.
    assert!(p.now - t0 <= Duration::from_millis(400), "{:?}", p.now - t0);
    assert_eq!(p.b.table.len(), n);
}
