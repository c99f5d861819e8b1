//! Configuration applied by the driver, off the protocol's thread
//! (`Peer::with_config_in_driver`): batch counts, the batch answer, order,
//! the bound on what waits, and sessions that never wait behind it. The
//! pair's drivers apply a fixed number of work pieces per tick, like a slow
//! thread of their own; 0 stalls them.

use hotsync_proto::testing::{Pair, PairConfig};
use hotsync_proto::{CONFIG_BACKLOG_ITEMS, ConnKind, Event, JobKind};
use hotsync_proto::{JobState, JobStatus};
use hotsync_table::{SessionEntry, SessionGenerator, SessionKey};
use std::time::Duration;

const CONFIG: ConnKind = ConnKind::Config;
/// The sender's items per config frame (`jobs.rs`).
const ITEMS_PER_FRAME: usize = 128;

fn pair(per_tick: usize) -> Pair {
    let mut p = Pair::new(PairConfig {
        config_per_tick: Some(per_tick),
        ..PairConfig::default()
    });
    p.establish();
    p
}

/// `n` items; every tenth a conflict on the receiving sink.
fn items(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let text = if i % 10 == 0 {
                format!("conflict rule r{i}")
            } else {
                format!("ip address-set s{i}")
            };
            (format!("vs{}", i % 3), text)
        })
        .collect()
}

fn sessions(seed: u64, n: usize) -> Vec<(SessionKey, SessionEntry)> {
    let mut g = SessionGenerator::new(seed, 0, false, 1000);
    (0..n).map(|_| g.next_session()).collect()
}

fn job(p: &Pair, id: u64) -> JobStatus {
    p.a.peer.job(id).expect("job known")
}

fn done(p: &Pair, id: u64) -> bool {
    job(p, id).state == JobState::Done
}

/// What B's sink applied (op 255 for batch items), in order.
fn applied(p: &Pair) -> Vec<(u8, String)> {
    let log = p.b.config.lock().unwrap();
    log.iter()
        .map(|(op, _, text)| (*op, text.clone()))
        .collect()
}

#[test]
fn a_batch_applied_by_a_slow_driver_reports_every_items_outcome() {
    let mut p = pair(1);
    let id = p.a.peer.start_config_sync(items(3000), p.now).unwrap();
    assert!(p.run_until(Duration::from_secs(5), |p| done(p, id)));
    let out = job(&p, id).config.expect("the peer's counts");
    assert_eq!((out.added, out.conflicts), (2700, 300));
    assert_eq!((out.equal, out.rejected), (0, 0));
    assert_eq!(applied(&p).len(), 3000);
    assert!(p.b.saw(|e| matches!(
        e,
        Event::PeerBatchFinished {
            kind: JobKind::Config,
            received: 3000
        }
    )));
}

#[test]
fn the_batch_is_answered_only_after_its_last_item_is_applied() {
    let mut p = pair(0);
    let n = 4 * ITEMS_PER_FRAME;
    let id = p.a.peer.start_config_sync(items(n), p.now).unwrap();
    // Everything reaches B, end marker included; its driver is stalled.
    p.run_for(Duration::from_millis(50));
    assert_eq!(p.b.peer.stats().config_items_rx, n as u64);
    assert!(applied(&p).is_empty());
    assert!(!done(&p, id));
    // One piece a tick: no answer until the last one is applied.
    p.set_config_per_tick(1);
    while applied(&p).len() < n {
        p.step();
        assert!(!done(&p, id), "answered before every item was applied");
    }
    assert!(p.run_until(Duration::from_secs(1), |p| done(p, id)));
    let out = job(&p, id).config.unwrap();
    assert_eq!((out.added, out.conflicts), (460, 52));
}

#[test]
fn sessions_keep_replicating_while_a_large_config_batch_waits_to_be_applied() {
    let mut p = pair(0);
    let id = p.a.peer.start_config_sync(items(20_000), p.now).unwrap();
    p.run_for(Duration::from_millis(20));
    assert!(p.b.peer.state().config_backlog > 0, "no config reached B");
    // Sessions written now reach B while its configuration apply is
    // stalled with a batch under way.
    for (k, e) in sessions(7, 500) {
        p.a.table.upsert(&k, &e).unwrap();
    }
    assert!(p.run_until(Duration::from_millis(200), |p| {
        p.a.table.digest() == p.b.table.digest()
    }));
    assert!(!done(&p, id));
    assert!(p.b.peer.is_established() && p.a.peer.is_established());
    // Well past the dead interval (300 ms): the config connection B does
    // not read for its own backlog is not declared dead.
    p.run_for(Duration::from_secs(1));
    assert!(p.closes.is_empty(), "{:?}", p.closes);
    p.set_config_per_tick(8);
    assert!(p.run_until(Duration::from_secs(10), |p| done(p, id)));
    let out = job(&p, id).config.unwrap();
    assert_eq!((out.added, out.conflicts), (18_000, 2000));
    assert_eq!(job(&p, id).restarts, 0);
}

#[test]
fn what_waits_to_be_applied_stays_bounded() {
    let mut p = pair(0);
    let id = p.a.peer.start_config_sync(items(20_000), p.now).unwrap();
    let mut most = 0;
    for _ in 0..400 {
        p.step();
        most = most.max(p.b.peer.state().config_backlog);
    }
    // The bound, plus the one frame that crossed it.
    assert!(most >= CONFIG_BACKLOG_ITEMS, "the backlog never filled");
    assert!(most < CONFIG_BACKLOG_ITEMS + ITEMS_PER_FRAME, "{most}");
    assert!(!done(&p, id));
}

#[test]
fn changes_and_batch_items_are_applied_in_the_order_sent() {
    let mut p = pair(1);
    assert!(p.a.peer.queue_config_op(0, "", "op before"));
    let id = p.a.peer.start_config_sync(items(600), p.now).unwrap();
    p.run_for(Duration::from_millis(5));
    assert!(p.a.peer.queue_config_op(2, "", "op during"));
    assert!(p.run_until(Duration::from_secs(2), |p| done(p, id)));
    p.run_for(Duration::from_millis(50));
    let got = applied(&p);
    let batch: Vec<String> = items(600).into_iter().map(|(_, t)| t).collect();
    let got_batch: Vec<String> = got
        .iter()
        .filter(|(op, _)| *op == 255)
        .map(|(_, t)| t.clone())
        .collect();
    assert_eq!(got_batch, batch);
    let ops: Vec<&(u8, String)> = got.iter().filter(|(op, _)| *op != 255).collect();
    assert_eq!(
        ops,
        [&(0, "op before".to_string()), &(2, "op during".to_string())]
    );
    assert_eq!(got[0], (0, "op before".to_string()));
}

#[test]
fn a_batch_cut_while_being_applied_counts_each_item_once() {
    let mut p = pair(0);
    let n = 3000;
    let id = p.a.peer.start_config_sync(items(n), p.now).unwrap();
    p.run_for(Duration::from_millis(20));
    assert!(p.b.peer.state().config_backlog > 0);
    p.cut(CONFIG);
    // The new connection's batch starts while old work is still applied.
    p.establish();
    p.set_config_per_tick(1);
    assert!(p.run_until(Duration::from_secs(5), |p| done(p, id)));
    let j = job(&p, id);
    assert_eq!(j.restarts, 1);
    // The old connection's items were still applied (the sink saw them
    // twice), but the answer counts the restarted batch only.
    let out = j.config.unwrap();
    assert_eq!(out.added + out.conflicts, n as u64);
    assert!(applied(&p).len() > n);
}

#[test]
fn the_relationship_has_its_configuration_only_once_the_batch_is_applied() {
    let mut p = pair(0);
    assert!(p.b.peer.state().peer_unsynced.config);
    let id = p.a.peer.start_config_sync(items(300), p.now).unwrap();
    p.run_for(Duration::from_millis(50));
    assert_eq!(p.b.peer.stats().config_items_rx, 300);
    assert!(
        p.b.peer.state().peer_unsynced.config,
        "synced before the batch was applied"
    );
    p.set_config_per_tick(1);
    assert!(p.run_until(Duration::from_secs(1), |p| done(p, id)));
    assert!(!p.b.peer.state().peer_unsynced.config);
    assert!(!p.a.peer.state().peer_unsynced.config);
}

/// Items per second a config batch may send while session changes flow
/// (`config_pace.rs`).
const BUSY_ITEMS_PER_SEC: u64 = 100_000;

#[test]
fn a_batch_is_paced_while_session_changes_flow_and_runs_at_full_speed_alone() {
    let mut p = pair(1000);
    // Alone: far faster than the pace (20,000 items would take 0.2 s).
    let id = p.a.peer.start_config_sync(items(20_000), p.now).unwrap();
    let t0 = p.now;
    assert!(p.run_until(Duration::from_secs(1), |p| done(p, id)));
    let alone = p.now - t0;
    assert!(alone < Duration::from_millis(50), "alone: {alone:?}");

    // Beside session changes written every tick: at the pace, and it
    // still completes.
    let id = p.a.peer.start_config_sync(items(20_000), p.now).unwrap();
    let mut writes = sessions(11, 400).into_iter().cycle();
    let t0 = p.now;
    let window = Duration::from_millis(100);
    while p.now - t0 < window {
        for _ in 0..4 {
            let (k, e) = writes.next().unwrap();
            p.a.table.upsert(&k, &e).unwrap();
        }
        p.step();
    }
    let sent = job(&p, id).sent;
    let most = BUSY_ITEMS_PER_SEC * window.as_millis() as u64 / 1000 + ITEMS_PER_FRAME as u64;
    assert!(
        sent <= most,
        "{sent} items sent in {window:?} beside sessions"
    );
    assert!(sent >= most / 2, "only {sent} items sent in {window:?}");
    assert!(p.run_until(Duration::from_secs(1), |p| done(p, id)));
    let out = job(&p, id).config.unwrap();
    assert_eq!(out.added + out.equal + out.conflicts, 20_000, "{out:?}");
}
