//! Process restarts and failover over the in-memory pair, moved down from
//! the node's `restarts.rs`: a node "stopped" here loses both links and is
//! replaced by a fresh `Peer` with the same settings and an empty table (a
//! new process as far as the protocol can tell: role `initial`, another
//! incarnation). Timers: hello 100 ms, dead interval 300 ms; A (priority
//! 200) dials, B (priority 100) accepts.

use hotsync_proto::testing::{Node, Pair, PairConfig};
use hotsync_proto::{ConnKind, JobState, JobStatus, Role};
use hotsync_table::{SessionGenerator, SessionTable};
use std::time::Duration;

fn keyed() -> PairConfig {
    PairConfig::default().with_key()
}

fn fill(table: &SessionTable, n: usize, seed: u64) -> usize {
    let mut g = SessionGenerator::new(seed, 0, false, 1000);
    (0..n)
        .filter(|_| {
            let (k, e) = g.next_session();
            table.upsert(&k, &e).is_ok()
        })
        .count()
}

fn in_step(p: &Pair) -> bool {
    p.a.table.digest() == p.b.table.digest()
}

fn job(p: &Pair, from_b: bool, id: u64) -> JobStatus {
    let n = if from_b { &p.b } else { &p.a };
    n.peer.job(id).expect("job known")
}

/// Both links go: the stopped node hears and sends nothing more.
fn stop(p: &mut Pair) {
    p.cut(ConnKind::Session);
    p.cut(ConnKind::Config);
}

/// A fresh process with `old`'s settings and an empty table.
fn restarted(old: &Node, table: hotsync_table::TableConfig, seed: u64, p: &Pair) -> Node {
    Node::new(old.peer.config().clone(), table, seed, p.now)
}

/// The standby is stopped in the middle of a batch sync and started again,
/// empty. The active sees a fresh peer and starts the running batch over,
/// so the job cannot end "done" with the shards the old process had
/// acknowledged missing. A second batch afterwards changes nothing.
#[test]
fn a_standby_restarted_mid_batch_is_refilled() {
    let cfg = keyed();
    let mut p = Pair::new(cfg.clone());
    fill(&p.a.table, 3000, 1);
    p.establish();
    let id = p.a.peer.start_session_sync(p.now).unwrap();
    assert!(p.run_until(Duration::from_millis(200), |p| {
        let j = job(p, false, id);
        j.acked > 0 && j.finished.is_none()
    }));
    stop(&mut p);
    p.b = restarted(&p.b, cfg.table_b.clone(), 11, &p);
    assert_eq!(p.b.table.len(), 0);
    p.establish();
    assert!(p.run_until(Duration::from_secs(2), |p| {
        job(p, false, id).state == JobState::Done
    }));
    let st = job(&p, false, id);
    assert!(st.restarts >= 1, "{st:?}");
    p.run_for(Duration::from_millis(5));
    assert!(in_step(&p), "the fresh standby has holes");
    assert_eq!(p.b.table.backup_len(), p.a.table.backup_len());
    // A second batch is additive and idempotent.
    let id2 = p.a.peer.start_session_sync(p.now).unwrap();
    assert!(p.run_until(Duration::from_secs(2), |p| {
        job(p, false, id2).state == JobState::Done
    }));
    assert!(in_step(&p));
}

/// With `auto_sync_on_establish`, a standby restarted after the batch
/// finished is refilled by the batch that starts when the relationship
/// forms again (B4's opt-in), with no command.
#[test]
fn a_restarted_standby_is_refilled_on_establish_with_auto_sync() {
    let mut cfg = keyed();
    cfg.a.auto_sync_on_establish = true;
    let mut p = Pair::new(cfg.clone());
    fill(&p.a.table, 1000, 2);
    p.establish();
    assert!(p.run_until(Duration::from_secs(1), |p| {
        in_step(p) && p.a.peer.jobs().iter().all(|j| j.state == JobState::Done)
    }));
    // Stop B in the middle of new traffic, start it again, empty.
    fill(&p.a.table, 200, 3);
    stop(&mut p);
    fill(&p.a.table, 200, 4);
    p.b = restarted(&p.b, cfg.table_b.clone(), 12, &p);
    p.establish();
    assert!(p.run_until(Duration::from_secs(2), in_step));
    assert_eq!(p.b.table.len(), 1400);
    let jobs = p.a.peer.jobs();
    assert!(
        jobs.len() >= 2,
        "one automatic batch per establishment: {jobs:?}"
    );
    assert!(
        jobs.iter()
            .all(|j| j.state == JobState::Done || j.finished.is_none())
    );
}

/// The active stops: the standby takes over within the dead interval and
/// keeps every replicated session. The old active comes back (empty) and,
/// without preemption, stays standby though its priority is higher. It is
/// a new process, so a new relationship (B4): the new active's writes
/// during the outage do not reach it as a fragment, both nodes show the
/// peer incomplete, and a manual batch from the new active fills it.
#[test]
fn failover_then_the_old_active_returns_as_standby_without_preemption() {
    let cfg = keyed();
    let mut p = Pair::new(cfg.clone());
    p.establish();
    assert!(p.run_until(Duration::from_secs(1), |p| p.a.peer.role() == Role::Active));
    fill(&p.a.table, 2000, 5);
    assert!(p.run_until(Duration::from_secs(1), in_step));
    let n = p.b.table.len();
    let t0 = p.now;
    stop(&mut p);
    assert!(p.run_until(Duration::from_secs(2), |p| p.b.peer.role() == Role::Active));
    // Within the dead interval (300 ms) plus a heartbeat.
    assert!(p.now - t0 <= Duration::from_millis(400), "{:?}", p.now - t0);
    assert_eq!(p.b.table.len(), n, "the new active lost sessions");
    // The new active serves: its data plane writes during the outage.
    let outage = fill(&p.b.table, 200, 6);
    // The old active returns as a fresh process.
    p.a = restarted(&p.a, cfg.table_a.clone(), 13, &p);
    p.establish();
    assert_eq!(
        (p.a.peer.role(), p.b.peer.role()),
        (Role::Standby, Role::Active)
    );
    // No preemption: it stays standby.
    p.run_for(Duration::from_millis(800));
    assert_eq!(
        (p.a.peer.role(), p.b.peer.role()),
        (Role::Standby, Role::Active)
    );
    // B4: neither the sessions from before it joined nor the outage's.
    assert_eq!(p.a.table.backup_len(), 0, "an outage fragment was sent");
    assert!(p.b.peer.stats().outage_changes_dropped >= outage as u64 / 2);
    for node in [&p.a, &p.b] {
        assert!(node.peer.state().peer_unsynced.connection_status);
    }
    let id = p.b.peer.start_session_sync(p.now).unwrap();
    assert!(p.run_until(Duration::from_secs(2), |p| {
        job(p, true, id).state == JobState::Done
    }));
    p.run_for(Duration::from_millis(5));
    assert!(in_step(&p));
    for node in [&p.a, &p.b] {
        assert!(!node.peer.state().peer_unsynced.connection_status);
    }
}

/// With preemption, the old active returns as standby, is refilled by the
/// batch its peer runs on establishment, and takes over again after the
/// preemption delay, holding every session.
#[test]
fn with_preemption_the_old_active_is_refilled_then_takes_over() {
    let delay = Duration::from_millis(1500);
    let mut cfg = keyed();
    cfg.a.preempt_delay = Some(delay);
    cfg.a.auto_sync_on_establish = true;
    cfg.b.auto_sync_on_establish = true;
    let mut p = Pair::new(cfg.clone());
    p.establish();
    assert!(p.run_until(Duration::from_secs(1), |p| p.a.peer.role() == Role::Active));
    fill(&p.a.table, 2000, 7);
    assert!(p.run_until(Duration::from_secs(1), in_step));
    stop(&mut p);
    assert!(p.run_until(Duration::from_secs(2), |p| p.b.peer.role() == Role::Active));
    fill(&p.b.table, 200, 8);
    p.a = restarted(&p.a, cfg.table_a.clone(), 14, &p);
    let t0 = p.now;
    p.establish();
    assert_eq!(p.a.peer.role(), Role::Standby, "returns as standby first");
    // Refilled by B's automatic batch before the delay ends.
    assert!(p.run_until(delay, in_step));
    let refilled = p.now - t0;
    assert!(refilled < delay, "refill took {refilled:?}");
    assert!(p.run_until(Duration::from_secs(5), |p| {
        (p.a.peer.role(), p.b.peer.role()) == (Role::Active, Role::Standby)
    }));
    let preempted = p.now - t0;
    assert!(preempted >= delay, "preempted after {preempted:?}");
    assert_eq!(p.a.table.backup_len(), p.b.table.backup_len());
    // The new active's writes flow to the new standby.
    fill(&p.a.table, 100, 9);
    assert!(p.run_until(Duration::from_secs(1), in_step));
}
