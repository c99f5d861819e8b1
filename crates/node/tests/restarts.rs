//! Process restarts and failover, two real nodes on loopback. A node
//! "killed" here is stopped with `shutdown()` and started again with
//! `Node::start` and the same settings: a fresh process as far as the
//! protocol can tell (empty table, role `initial`).
//!
//! A (priority 200) has the lower listen port, so A dials; B (priority
//! 100) accepts. Timers: hello 100 ms, dead interval 300 ms.

mod support;

use hotsync_node::{Node, NodeConfig, NodeHandle};
use hotsync_proto::{JobState, Role};
use std::time::{Duration, Instant};
use support::*;

fn configs() -> (NodeConfig, NodeConfig) {
    let p = port_pairs(2);
    let a = node_config(1, 200, p[0], addr(p[1]), Some("restart-key"), 600_000);
    let b = node_config(2, 100, p[1], addr(p[0]), Some("restart-key"), 600_000);
    (a, b)
}

fn job_state(n: &NodeHandle, id: u64) -> hotsync_proto::JobStatus {
    n.job(id).expect("job known")
}

/// The standby is stopped in the middle of a batch sync and started again,
/// empty. The active sees a fresh peer (its hello says role `initial`) and
/// starts the running batch over, so the job cannot end "done" with the
/// shards the old process had acknowledged missing; the tables converge
/// without a second command. A manual batch afterwards changes nothing
/// (additive, idempotent).
#[test]
fn a_standby_restarted_mid_batch_is_refilled() {
    let (ca, cb) = configs();
    let a = Node::start(ca).unwrap();
    fill(a.table(), 400_000, 1);
    let b = Node::start(cb.clone()).unwrap();
    established(&a, &b, Duration::from_secs(10));
    let job = a.sync_connection_status().unwrap();
    wait_until("batch under way", Duration::from_secs(20), || {
        let j = job_state(&a, job);
        j.acked > 0 && j.finished.is_none()
    });
    b.shutdown();
    let got_before = b.table().backup_len();
    let b = Node::start(cb).unwrap();
    assert_eq!(b.table().len(), 0);
    established(&a, &b, Duration::from_secs(10));
    let st = a.wait_job(job, Duration::from_secs(60)).unwrap();
    assert_eq!(st.state, JobState::Done, "{st:?}");
    assert!(st.restarts >= 1, "{st:?}");
    let t = digests_equal(&a, &b, Duration::from_secs(20));
    eprintln!(
        "standby restart mid-batch: old process had {got_before} of {} entries; job restarted {} time(s), sent {}; digests equal {t:?} after the job ended",
        st.total, st.restarts, st.sent
    );
    assert_eq!(b.table().backup_len(), a.table().backup_len());
    // A second batch is additive and idempotent.
    let job2 = a.sync_connection_status().unwrap();
    let st2 = a.wait_job(job2, Duration::from_secs(60)).unwrap();
    assert_eq!(st2.state, JobState::Done);
    digests_equal(&a, &b, Duration::from_secs(10));
    a.shutdown();
    b.shutdown();
}

/// With `auto_sync_on_establish`, a standby restarted after the batch
/// finished is refilled by the batch that starts when the relationship
/// forms again (B4's opt-in), with no command.
#[test]
fn a_restarted_standby_is_refilled_on_establish_with_auto_sync() {
    let (mut ca, cb) = configs();
    ca.proto.auto_sync_on_establish = true;
    let a = Node::start(ca).unwrap();
    fill(a.table(), 100_000, 2);
    let b = Node::start(cb.clone()).unwrap();
    established(&a, &b, Duration::from_secs(10));
    digests_equal(&a, &b, Duration::from_secs(20));
    // Stop B in the middle of new traffic, start it again, empty.
    fill(a.table(), 20_000, 3);
    b.shutdown();
    fill(a.table(), 20_000, 4);
    let b = Node::start(cb).unwrap();
    established(&a, &b, Duration::from_secs(10));
    let t = digests_equal(&a, &b, Duration::from_secs(30));
    eprintln!("auto-sync refill of a restarted standby: digests equal {t:?} after establishment");
    let jobs = a.jobs();
    assert!(
        jobs.len() >= 2,
        "one automatic batch per establishment: {jobs:?}"
    );
    assert!(
        jobs.iter()
            .all(|j| j.state == JobState::Done || j.finished.is_none())
    );
    a.shutdown();
    b.shutdown();
}

/// The active stops: the standby takes over within the dead interval and
/// keeps every replicated session. The old active comes back (empty) and,
/// without preemption, stays standby even though its priority is higher.
/// It is a new process, so a new relationship (B4): the writes made on the
/// new active during the outage do not reach it as a fragment, both nodes
/// show the peer incomplete, and a manual batch from the new active fills
/// it.
#[test]
fn failover_then_the_old_active_returns_as_standby_without_preemption() {
    let (ca, cb) = configs();
    let a = Node::start(ca.clone()).unwrap();
    let b = Node::start(cb).unwrap();
    established(&a, &b, Duration::from_secs(10));
    fill(a.table(), 50_000, 5);
    digests_equal(&a, &b, Duration::from_secs(20));
    let n = b.table().len();
    let t0 = Instant::now();
    a.shutdown();
    wait_until("failover", Duration::from_secs(5), || {
        b.role() == Role::Active
    });
    let takeover = t0.elapsed();
    assert_eq!(b.table().len(), n, "the new active lost sessions");
    // The new active serves: its data plane writes during the outage.
    let outage = fill(b.table(), 2_000, 6);
    // The old active returns as a fresh process.
    let a = Node::start(ca).unwrap();
    established(&a, &b, Duration::from_secs(10));
    assert_eq!(a.role(), Role::Standby);
    assert_eq!(b.role(), Role::Active);
    // No preemption: it stays standby.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(a.role(), Role::Standby);
    assert_eq!(b.role(), Role::Active);
    // B4: neither the sessions from before it joined nor the outage's.
    assert_eq!(a.table().backup_len(), 0, "an outage fragment was sent");
    assert!(b.state().peer.stats.outage_changes_dropped >= outage.len() as u64 / 2);
    for n in [&a, &b] {
        assert!(n.state().peer.peer_unsynced.connection_status);
    }
    let job = b.sync_connection_status().unwrap();
    assert_eq!(
        b.wait_job(job, Duration::from_secs(60)).unwrap().state,
        JobState::Done
    );
    digests_equal(&a, &b, Duration::from_secs(10));
    for n in [&a, &b] {
        assert!(!n.state().peer.peer_unsynced.connection_status);
    }
    eprintln!(
        "failover: standby active {takeover:?} after the active stopped (dead interval 300 ms)"
    );
    // Dead interval 300 ms plus a heartbeat and scheduling slack.
    assert!(takeover < Duration::from_millis(1500), "{takeover:?}");
    a.shutdown();
    b.shutdown();
}

/// With preemption, the old active returns as standby, is refilled by the
/// batch its peer runs on establishment, and takes over again after the
/// preemption delay, holding every session.
#[test]
fn with_preemption_the_old_active_is_refilled_then_takes_over() {
    let (mut ca, mut cb) = configs();
    let delay = Duration::from_millis(1500);
    ca.proto.preempt_delay = Some(delay);
    ca.proto.auto_sync_on_establish = true;
    cb.proto.auto_sync_on_establish = true;
    let a = Node::start(ca.clone()).unwrap();
    let b = Node::start(cb).unwrap();
    established(&a, &b, Duration::from_secs(10));
    assert_eq!(a.role(), Role::Active);
    fill(a.table(), 50_000, 7);
    digests_equal(&a, &b, Duration::from_secs(20));
    a.shutdown();
    wait_until("failover", Duration::from_secs(5), || {
        b.role() == Role::Active
    });
    fill(b.table(), 2_000, 8);
    let a = Node::start(ca).unwrap();
    let t0 = Instant::now();
    established(&a, &b, Duration::from_secs(10));
    assert_eq!(a.role(), Role::Standby, "returns as standby first");
    // Refilled by B's automatic batch before the delay ends.
    let refilled = digests_equal(&a, &b, Duration::from_secs(20));
    assert!(
        refilled < delay,
        "refill took {refilled:?}, longer than the preemption delay"
    );
    wait_until("preemption", Duration::from_secs(10), || {
        a.role() == Role::Active && b.role() == Role::Standby
    });
    let preempted = t0.elapsed();
    assert!(
        preempted >= delay,
        "preempted after {preempted:?}, before the delay"
    );
    assert_eq!(a.table().backup_len(), b.table().backup_len());
    // The new active's writes flow to the new standby.
    fill(a.table(), 1_000, 9);
    digests_equal(&a, &b, Duration::from_secs(10));
    eprintln!(
        "preemption: refilled {refilled:?}, took over {preempted:?} after rejoining (delay {delay:?})"
    );
    a.shutdown();
    b.shutdown();
}
