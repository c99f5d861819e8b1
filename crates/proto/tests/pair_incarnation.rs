//! A relationship belongs to a pair of node incarnations: the same two
//! processes reconnecting after an outage resume it and deliver everything
//! changed meanwhile; a restarted process forms a new relationship, where
//! B4 applies (nothing from before, no fragment of the outage window, the
//! peer incomplete on both nodes until the batch syncs).

use hotsync_proto::testing::{Node, Pair, PairConfig, Stranger};
use hotsync_proto::{Action, ConnKind, Event, JobKind, JobState, OpDelivery, Role, Unsynced};
use hotsync_table::{SessionEntry, SessionGenerator, SessionKey};
use hotsync_wire::Channel;
use std::time::Duration;

const SESSION: ConnKind = ConnKind::Session;
const CONFIG: ConnKind = ConnKind::Config;

const COMPLETE: Unsynced = Unsynced {
    connection_status: false,
    config: false,
};
const INCOMPLETE: Unsynced = Unsynced {
    connection_status: true,
    config: true,
};

fn write(p: &Pair, seed: u64, n: usize) -> Vec<(SessionKey, SessionEntry)> {
    let mut g = SessionGenerator::new(seed, 0, false, 1000);
    let s: Vec<_> = (0..n).map(|_| g.next_session()).collect();
    for (k, e) in &s {
        p.a.table.upsert(k, e).unwrap();
    }
    s
}

fn unsynced(n: &Node) -> Unsynced {
    n.peer.state().peer_unsynced
}

/// Runs both batch syncs from A to completion.
fn sync_both(p: &mut Pair) {
    let now = p.now;
    let s = p.a.peer.start_session_sync(now).unwrap();
    let items = vec![(String::new(), "ip address-set base".to_string())];
    let c = p.a.peer.start_config_sync(items, now).unwrap();
    let done = p.run_until(Duration::from_secs(1), |p| {
        [s, c]
            .iter()
            .all(|&id| p.a.peer.job(id).is_some_and(|j| j.state == JobState::Done))
    });
    assert!(done, "batch syncs did not finish");
    p.run_for(Duration::from_millis(5));
}

/// An established pair with the first relationship completed by both
/// batch syncs, holding `n` sessions written before.
fn synced_pair(n: usize) -> Pair {
    let mut p = Pair::new(PairConfig::default());
    write(&p, 1, n);
    p.establish();
    sync_both(&mut p);
    assert_eq!((unsynced(&p.a), unsynced(&p.b)), (COMPLETE, COMPLETE));
    assert_eq!(p.b.table.len(), n);
    p
}

/// B stops answering (as with `kill -STOP`) until the dead interval has
/// passed and both sides dropped the connections; its process and state
/// stay as they were.
fn freeze_past_dead_interval(p: &mut Pair) {
    p.hold(SESSION, true);
    p.hold(CONFIG, true);
    let down = p.run_until(Duration::from_secs(2), |p| {
        !p.is_up(SESSION) && !p.is_up(CONFIG) && !p.a.peer.is_established()
    });
    assert!(down, "the outage was not detected");
    // Close events the last step queued concern the old connections: let
    // them be handled before new ones open.
    p.run_for(Duration::from_millis(1));
}

/// B is replaced by a new process (an empty table), as after a restart.
fn restart_b(p: &mut Pair, seed: u64) {
    p.cut(SESSION);
    p.cut(CONFIG);
    let cfg = p.b.peer.config().clone();
    p.b = Node::new(cfg, PairConfig::default().table_b, seed, p.now);
}

fn config_texts(n: &Node) -> Vec<String> {
    n.config
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, t)| t.clone())
        .collect()
}

#[test]
fn a_frozen_standby_resumes_and_receives_everything_changed_meanwhile() {
    let mut p = synced_pair(50);
    let b_incarnation = p.b.peer.incarnation();
    freeze_past_dead_interval(&mut p);
    // During the outage, on the active: a rule and 100 sessions.
    assert_eq!(
        p.a.peer.queue_config_change(0, "", "rule during outage"),
        OpDelivery::HeldForPeer
    );
    let outage = write(&p, 2, 100);
    p.establish();
    assert_eq!(p.b.peer.incarnation(), b_incarnation);
    let ok = p.run_until(Duration::from_secs(1), |p| {
        p.a.table.digest() == p.b.table.digest()
    });
    assert!(ok, "the outage sessions did not reach the resumed standby");
    for (k, _) in &outage {
        assert!(p.b.table.get(k).is_some());
    }
    assert_eq!(p.b.table.len(), 150);
    p.run_for(Duration::from_millis(20));
    assert!(config_texts(&p.b).contains(&"rule during outage".to_string()));
    // The relationship resumed: still complete, nothing dropped, no batch.
    for n in [&p.a, &p.b] {
        let s = n.peer.stats();
        assert_eq!(s.relationships_resumed, 1);
        assert_eq!(s.peer_restarts, 0);
        assert_eq!(
            s.outage_changes_dropped + s.outage_shards_dropped + s.outage_config_ops_dropped,
            0
        );
        assert_eq!(unsynced(n), COMPLETE);
    }
}

#[test]
fn a_restarted_standby_forms_a_new_relationship_without_an_outage_fragment() {
    let mut p = synced_pair(50);
    restart_b(&mut p, 99);
    // During the outage, on the active: a rule and 100 sessions. The change
    // is held for the same peer process, which never comes back.
    assert_eq!(
        p.a.peer.queue_config_change(0, "", "rule during outage"),
        OpDelivery::HeldForPeer
    );
    write(&p, 2, 100);
    p.run_for(Duration::from_millis(400));
    p.establish();
    p.run_for(Duration::from_millis(200));
    // B4: nothing from before the new relationship, and no outage fragment.
    assert_eq!(p.b.table.len(), 0, "the fresh standby got a fragment");
    assert!(
        config_texts(&p.b).is_empty(),
        "the fresh standby got a fragment"
    );
    let s = p.a.peer.stats();
    assert_eq!(s.peer_restarts, 1);
    assert_eq!(s.outage_config_ops_dropped, 1);
    assert!(s.outage_changes_dropped + s.outage_shards_dropped > 0);
    assert_eq!(s.resync_balance(), p.a.peer.state().uncertain_shards as i64);
    // Both nodes show the peer incomplete.
    assert_eq!((unsynced(&p.a), unsynced(&p.b)), (INCOMPLETE, INCOMPLETE));
    assert!(p.a.saw(|e| matches!(e, Event::Warning(w) if w.contains("peer incomplete"))));
    // New changes are incremental again (B3).
    let after = write(&p, 3, 1);
    assert!(p.run_until(Duration::from_millis(100), |p| p.b.table.len() == 1));
    assert!(p.b.table.get(&after[0].0).is_some());
    // The batch syncs complete the peer, on both nodes.
    sync_both(&mut p);
    assert_eq!(p.b.table.len(), 151);
    assert_eq!((unsynced(&p.a), unsynced(&p.b)), (COMPLETE, COMPLETE));
}

#[test]
fn one_batch_kind_leaves_the_other_missing() {
    let mut p = Pair::new(PairConfig::default());
    p.establish();
    assert_eq!((unsynced(&p.a), unsynced(&p.b)), (INCOMPLETE, INCOMPLETE));
    let id = p.a.peer.start_session_sync(p.now).unwrap();
    assert!(p.run_until(Duration::from_secs(1), |p| {
        p.a.peer.job(id).is_some_and(|j| j.state == JobState::Done)
    }));
    p.run_for(Duration::from_millis(5));
    for n in [&p.a, &p.b] {
        assert_eq!(unsynced(n).commands(), ["hrp sync config"]);
    }
}

#[test]
fn a_restarted_active_is_a_new_relationship_for_the_survivor_too() {
    let mut p = synced_pair(10);
    // A (the active) restarts this time: B takes over alone meanwhile.
    p.cut(SESSION);
    p.cut(CONFIG);
    let cfg = p.a.peer.config().clone();
    p.a = Node::new(cfg, PairConfig::default().table_a, 77, p.now);
    assert_eq!(
        p.b.peer
            .queue_config_change(0, "", "change on the survivor"),
        OpDelivery::HeldForPeer
    );
    p.run_for(Duration::from_millis(400));
    assert_eq!(p.b.peer.role(), Role::Active);
    p.establish();
    p.run_for(Duration::from_millis(100));
    assert_eq!(p.b.peer.stats().peer_restarts, 1);
    assert!(config_texts(&p.a).is_empty());
    assert_eq!(p.a.table.len(), 0);
    assert_eq!((unsynced(&p.a), unsynced(&p.b)), (INCOMPLETE, INCOMPLETE));
}

#[test]
fn a_batch_sync_starts_over_for_a_restarted_peer_that_already_took_a_role() {
    // The restarted standby runs alone past the dead interval first, so its
    // hello claims a role: only its incarnation tells it is another process.
    let mut p = Pair::new(PairConfig::default());
    write(&p, 1, 2000);
    p.establish();
    let id = p.a.peer.start_session_sync(p.now).unwrap();
    p.run_until(Duration::from_millis(100), |p| {
        p.a.peer.job(id).is_some_and(|j| j.acked > 500)
    });
    restart_b(&mut p, 4);
    p.run_for(Duration::from_millis(400));
    assert_eq!(p.b.peer.role(), Role::Active);
    p.establish();
    assert!(p.run_until(Duration::from_secs(2), |p| {
        p.a.peer.job(id).is_some_and(|j| j.state == JobState::Done)
    }));
    p.run_for(Duration::from_millis(5));
    assert_eq!(p.b.table.len(), 2000, "the fresh peer has holes");
    assert_eq!(unsynced(&p.a).commands(), ["hrp sync config"]);
    assert_eq!(unsynced(&p.b).commands(), ["hrp sync config"]);
}

#[test]
fn auto_sync_on_establish_runs_for_a_new_relationship_not_a_resumed_one() {
    let mut cfg = PairConfig::default();
    cfg.a.auto_sync_on_establish = true;
    let mut p = Pair::new(cfg);
    write(&p, 1, 100);
    p.establish();
    assert!(p.run_until(Duration::from_millis(300), |p| {
        p.b.table.len() == 100 && p.a.peer.jobs().iter().all(|j| j.state == JobState::Done)
    }));
    let sessions_jobs = |p: &Pair| {
        p.a.peer
            .jobs()
            .iter()
            .filter(|j| j.kind == JobKind::ConnectionStatus)
            .count()
    };
    assert_eq!(sessions_jobs(&p), 1);
    freeze_past_dead_interval(&mut p);
    p.establish();
    p.run_for(Duration::from_millis(100));
    assert_eq!(sessions_jobs(&p), 1, "a resumed relationship ran a batch");
    restart_b(&mut p, 5);
    p.establish();
    assert!(p.run_until(Duration::from_millis(300), |p| p.b.table.len() == 100));
    assert_eq!(sessions_jobs(&p), 2);
}

#[test]
fn a_change_says_what_becomes_of_it() {
    let mut p = Pair::new(PairConfig::default());
    assert_eq!(
        p.a.peer.queue_config_change(0, "", "x"),
        OpDelivery::NoRelationship
    );
    assert_eq!(
        p.a.peer.queue_config_change(9, "", "x"),
        OpDelivery::Invalid
    );
    p.establish();
    assert_eq!(
        p.a.peer.queue_config_change(0, "", "x"),
        OpDelivery::Sending
    );
    freeze_past_dead_interval(&mut p);
    assert_eq!(
        p.a.peer.queue_config_change(1, "", "x"),
        OpDelivery::HeldForPeer
    );
}

#[test]
fn a_config_connection_from_another_process_is_refused_while_established() {
    let mut p = Pair::new(PairConfig::default());
    p.establish();
    assert_eq!(
        p.a.peer.queue_config_change(0, "", "for B's process only"),
        OpDelivery::Sending
    );
    // Another process with B's node id takes the config channel while the
    // session connection still belongs to B: its changes must not go there.
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, CONFIG, [9; 32], now);
    let hello = s.hello(2, 100, Role::Standby.to_u8(), 16, false);
    s.send(&mut p.a, Channel::Control, &hello, now);
    assert_eq!(p.a.errors("unexpected_message"), 1);
    assert!(p.a.peer.is_established(), "the session connection stays");
    assert!(p.a.did(|a| matches!(a, Action::Close { conn, .. } if *conn == CONFIG)));
}
