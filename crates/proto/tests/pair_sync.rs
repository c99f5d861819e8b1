//! Role election, incremental sync, resync and batch-job cases over the
//! in-memory pair: one short deterministic test per behaviour.

use hotsync_proto::testing::{Node, Pair, PairConfig, Side, Stranger};
use hotsync_proto::{Action, ConnKind, Event, JobState, RequestError, Role};
use hotsync_table::{SessionEntry, SessionGenerator, SessionKey};
use hotsync_wire::{Channel, ResyncRequest, ResyncStart};
use std::time::Duration;

const SESSION: ConnKind = ConnKind::Session;
const CONFIG: ConnKind = ConnKind::Config;

fn sessions(seed: u64, n: usize) -> Vec<(SessionKey, SessionEntry)> {
    let mut g = SessionGenerator::new(seed, 0, false, 1000);
    (0..n).map(|_| g.next_session()).collect()
}

fn write(p: &Pair, seed: u64, n: usize) -> Vec<(SessionKey, SessionEntry)> {
    let s = sessions(seed, n);
    for (k, e) in &s {
        p.a.table.upsert(k, e).unwrap();
    }
    s
}

fn in_step(p: &Pair) -> bool {
    p.a.table.digest() == p.b.table.digest()
}

fn established() -> Pair {
    let mut p = Pair::new(PairConfig::default());
    p.establish();
    p
}

// ----- roles ---------------------------------------------------------------

#[test]
fn the_higher_priority_becomes_active() {
    let p = established();
    assert_eq!(
        (p.a.peer.role(), p.b.peer.role()),
        (Role::Active, Role::Standby)
    );
}

#[test]
fn on_equal_priority_the_lower_node_id_wins() {
    let mut cfg = PairConfig::default();
    cfg.a.priority = 100;
    cfg.a.node_id = 9;
    let mut p = Pair::new(cfg);
    p.establish();
    assert_eq!(
        (p.a.peer.role(), p.b.peer.role()),
        (Role::Standby, Role::Active)
    );
}

#[test]
fn a_node_alone_for_the_dead_interval_becomes_active() {
    let mut p = Pair::new(PairConfig::default());
    p.run_for(Duration::from_millis(250));
    assert_eq!(p.a.peer.role(), Role::Initial);
    p.run_for(Duration::from_millis(100));
    assert_eq!(p.a.peer.role(), Role::Active);
    assert_eq!(
        p.a.peer.state().role_reason,
        "no peer within the dead interval"
    );
}

#[test]
fn an_active_node_keeps_its_role_against_a_higher_priority_newcomer() {
    let mut cfg = PairConfig::default();
    cfg.b.priority = 250;
    let mut p = Pair::new(cfg);
    // A is alone first and takes over; B arrives later.
    p.run_for(Duration::from_millis(350));
    p.b = Node::new(
        p.b.peer.config().clone(),
        PairConfig::default().table_b,
        3,
        p.now,
    );
    p.establish();
    assert_eq!(
        (p.a.peer.role(), p.b.peer.role()),
        (Role::Active, Role::Standby)
    );
}

#[test]
fn with_preemption_the_higher_priority_takes_over_after_its_delay() {
    let mut cfg = PairConfig::default();
    cfg.b.priority = 250;
    cfg.b.preempt_delay = Some(Duration::from_millis(50));
    let mut p = Pair::new(cfg);
    p.run_for(Duration::from_millis(350));
    p.b = Node::new(
        p.b.peer.config().clone(),
        PairConfig::default().table_b,
        3,
        p.now,
    );
    p.establish();
    assert_eq!(p.b.peer.role(), Role::Standby);
    let ok = p.run_until(Duration::from_millis(200), |p| {
        p.b.peer.role() == Role::Active && p.a.peer.role() == Role::Standby
    });
    assert!(ok, "no preemption");
    assert!(
        p.b.saw(
            |e| matches!(e, Event::RoleChanged { reason, .. } if reason.contains("preemption"))
        )
    );
}

#[test]
fn the_standby_takes_over_when_the_active_goes_silent() {
    let mut p = established();
    p.hold(SESSION, true);
    p.hold(CONFIG, true);
    let ok = p.run_until(Duration::from_secs(1), |p| p.b.peer.role() == Role::Active);
    assert!(ok);
    assert!(p.b.saw(|e| matches!(e, Event::PeerDead)));
    // B's session timed out, or A's did first and its close reached B.
    assert!(p.b.errors("timeout") + p.b.errors("peer_closed") >= 1);
}

#[test]
fn a_healed_split_brain_leaves_one_active() {
    let mut p = established();
    p.cut(SESSION);
    p.cut(CONFIG);
    p.run_for(Duration::from_millis(400));
    assert_eq!(
        (p.a.peer.role(), p.b.peer.role()),
        (Role::Active, Role::Active)
    );
    p.establish();
    p.run_for(Duration::from_millis(50));
    assert_eq!(
        (p.a.peer.role(), p.b.peer.role()),
        (Role::Active, Role::Standby)
    );
}

#[test]
fn a_role_change_is_announced_at_once() {
    let mut cfg = PairConfig::default();
    cfg.b.priority = 250;
    cfg.b.preempt_delay = Some(Duration::from_millis(20));
    let mut p = Pair::new(cfg);
    p.run_for(Duration::from_millis(350));
    p.b = Node::new(
        p.b.peer.config().clone(),
        PairConfig::default().table_b,
        3,
        p.now,
    );
    p.establish();
    // Well within one heartbeat interval (100 ms) of the takeover.
    let ok = p.run_until(Duration::from_millis(60), |p| {
        p.a.peer.role() == Role::Standby
    });
    assert!(
        ok,
        "the old active learnt of the takeover only at a heartbeat"
    );
}

// ----- incremental ---------------------------------------------------------

#[test]
fn sessions_written_after_establishment_replicate() {
    let mut p = established();
    write(&p, 1, 300);
    assert!(p.run_until(Duration::from_millis(50), in_step));
    assert_eq!(p.b.table.len(), 300);
}

#[test]
fn deletions_replicate() {
    let mut p = established();
    let s = write(&p, 1, 50);
    p.run_for(Duration::from_millis(10));
    for (k, _) in &s[..20] {
        p.a.table.remove(k);
    }
    assert!(p.run_until(Duration::from_millis(50), in_step));
    assert_eq!(p.b.table.len(), 30);
    assert!(p.a.peer.stats().deletes_tx >= 20);
}

#[test]
fn sessions_from_before_establishment_wait_for_a_batch_sync() {
    let mut p = Pair::new(PairConfig::default());
    write(&p, 1, 100);
    p.establish();
    p.run_for(Duration::from_millis(50));
    assert!(p.b.table.is_empty(), "B4: nothing before the relationship");
}

#[test]
fn the_standby_never_echoes_what_it_applied() {
    let mut p = established();
    write(&p, 1, 200);
    p.run_for(Duration::from_millis(50));
    let st = p.b.peer.stats();
    assert_eq!((st.records_tx, st.deletes_tx), (0, 0));
    assert_eq!(st.records_rx, 200);
}

#[test]
fn the_coalescing_window_holds_changes_until_it_closes() {
    let mut cfg = PairConfig::default();
    cfg.a.flush_interval = Duration::from_millis(5);
    let mut p = Pair::new(cfg);
    p.establish();
    write(&p, 1, 10);
    p.run_for(Duration::from_millis(3));
    assert!(p.b.table.is_empty(), "sent inside the window");
    assert!(p.run_until(Duration::from_millis(10), in_step));
    assert_eq!(p.a.peer.stats().batches_tx, 1, "one batch for the window");
}

// ----- resync --------------------------------------------------------------

#[test]
fn a_journal_overflow_resyncs_the_shard_and_converges() {
    let mut cfg = PairConfig::default();
    cfg.table_a.journal_capacity = 4;
    let mut p = Pair::new(cfg);
    p.establish();
    write(&p, 1, 500);
    assert!(p.run_until(Duration::from_millis(200), in_step));
    let st = p.a.peer.state();
    assert!(st.stats.resync_overflow > 0 && st.stats.shards_resynced > 0);
    assert_eq!(st.stats.resync_balance(), st.uncertain_shards as i64);
}

#[test]
fn unacknowledged_data_at_a_disconnect_is_resynced_after_reconnect() {
    let mut p = established();
    write(&p, 1, 200);
    p.step();
    p.step();
    p.cut(SESSION);
    let st = p.a.peer.state();
    assert!(st.uncertain_shards > 0 && st.stats.resync_disconnect > 0);
    p.establish();
    // The repair walks go a few chunks per round trip behind incremental
    // changes: wait for them to end, not only for equal digests.
    assert!(p.run_until(Duration::from_millis(200), |p| {
        in_step(p) && p.a.peer.state().uncertain_shards == 0
    }));
    let st = p.a.peer.state();
    assert_eq!(st.stats.resync_balance(), 0);
}

#[test]
fn the_standby_asks_the_active_to_resync_instead_of_walking() {
    let mut cfg = PairConfig::default();
    cfg.table_b.journal_capacity = 2;
    let mut p = Pair::new(cfg);
    p.establish();
    // Local writes on the standby overflow its journals.
    for (k, e) in sessions(5, 100) {
        p.b.table.upsert(&k, &e).unwrap();
    }
    assert!(p.run_until(Duration::from_millis(300), in_step));
    let (a, b) = (p.a.peer.stats(), p.b.peer.stats());
    assert!(b.resync_requested > 0, "standby did not ask");
    assert!(a.resync_request > 0 && a.shards_resynced > 0);
    assert_eq!(b.shards_resynced, 0, "a standby walked its own shards");
    // The active's walk replaced the standby's copy: what only the standby
    // had is gone.
    assert!(b.resync_removed > 0);
}

/// The standby's own changes cross the active's walk of the same shard: it
/// sends a new session while the active's resync of that shard (start,
/// chunks, end marker) is already on its way. The walk did not carry the
/// session (the active did not have it yet), so the end marker removes the
/// standby's copy, and the active adds it right after: without a repair the
/// two tables never agree again.
#[test]
fn a_standby_change_crossing_the_actives_walk_is_not_lost_on_either_side() {
    let mut cfg = PairConfig::default();
    cfg.table_b.journal_capacity = 8;
    let mut p = Pair::new(cfg);
    p.establish();
    // A burst on the standby overflows its journals: it asks the active to
    // resync those shards.
    for (k, e) in sessions(31, 400) {
        p.b.table.upsert(&k, &e).unwrap();
    }
    assert!(p.run_until(Duration::from_millis(100), |p| {
        p.a.peer.stats().resync_request > 0
    }));
    // The active walks them; its walks stay in the link, and meanwhile the
    // standby writes new sessions and sends them.
    p.hold(SESSION, true);
    let crossing = sessions(32, 16);
    for (k, e) in &crossing {
        p.b.table.upsert(k, e).unwrap();
    }
    p.run_for(Duration::from_millis(5));
    let a = p.a.peer.stats();
    assert!(a.shards_resynced > 0, "no walk crossed: {a:?}");
    p.hold(SESSION, false);
    assert!(
        p.run_until(Duration::from_millis(500), |p| {
            in_step(p)
                && p.a.peer.state().uncertain_shards == 0
                && p.b.peer.state().uncertain_shards == 0
        }),
        "A {} entries, B {}",
        p.a.table.backup_len(),
        p.b.table.backup_len()
    );
    // The standby's new sessions are on both sides.
    for (k, _) in &crossing {
        assert!(p.a.table.contains(k) && p.b.table.contains(k));
    }
    let (a, b) = (p.a.peer.stats(), p.b.peer.stats());
    assert_eq!(b.shards_resynced, 0, "a standby walked its own shards");
    // It saw its changes cross the walks and asked for those shards again.
    assert!(b.resync_crossed > 0, "{b:?}");
    assert_eq!(a.resync_balance(), 0);
    assert_eq!(b.resync_balance(), 0);
}

/// A node closes the session connection; the close frame it sends makes
/// the other node raise its own close while the link goes down. That close
/// concerns the connection that just ended: the next one must survive it.
#[test]
fn a_close_raised_while_the_link_goes_down_spares_the_next_connection() {
    let mut p = established();
    p.hold(SESSION, true);
    write(&p, 9, 20);
    for _ in 0..4 {
        p.step();
    }
    // A corrupted frame: B drops the connection and tells A.
    p.tamper(Side::A, SESSION, |chunks| chunks[0][48] ^= 0x40);
    p.hold(SESSION, false);
    assert!(p.run_until(Duration::from_millis(5), |p| !p.is_up(SESSION)));
    p.connect(SESSION);
    let up = p.run_until(Duration::from_millis(200), |p| {
        p.a.peer.is_established() && p.b.peer.is_established() && in_step(p)
    });
    assert!(up, "closes {:?}", p.closes);
    assert!(p.is_up(SESSION));
}

#[test]
fn a_resync_request_is_validated_whole_before_any_shard_is_marked() {
    let mut p = Pair::new(PairConfig::default());
    p.run_for(Duration::from_millis(350));
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [3; 32], now);
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(2, 100, 2, 16, false),
        now,
    );
    assert!(p.a.peer.is_established());
    let req = ResyncRequest {
        shards: vec![1, 2, 999],
    };
    s.send(&mut p.a, Channel::Session, &req, now);
    let st = p.a.peer.state();
    assert_eq!(
        st.uncertain_shards, 0,
        "valid shards marked before the refusal"
    );
    assert_eq!(st.stats.resync_request, 0);
    assert_eq!(p.a.errors("unexpected_message"), 1);
}

#[test]
fn a_shard_out_of_range_is_reported_with_the_message_that_carried_it() {
    for (i, msg) in ["ResyncRequest", "ResyncStart"].iter().enumerate() {
        let mut p = Pair::new(PairConfig::default());
        let now = p.now;
        let mut s = Stranger::connect(&mut p.a, SESSION, [3; 32], now);
        s.send(
            &mut p.a,
            Channel::Control,
            &s.hello(2, 100, 2, 16, false),
            now,
        );
        if i == 0 {
            s.send(
                &mut p.a,
                Channel::Session,
                &ResyncRequest { shards: vec![16] },
                now,
            );
        } else {
            s.send(
                &mut p.a,
                Channel::Session,
                &ResyncStart {
                    shard: 16,
                    epoch: 1,
                },
                now,
            );
        }
        let close = p.a.actions.iter().find_map(|a| match a {
            Action::Close { reason, .. } => Some(reason.clone()),
            Action::StartConfigSync => None,
        });
        assert!(close.is_some_and(|r| r.contains(msg)), "{msg} not named");
    }
}

// ----- jobs ----------------------------------------------------------------

#[test]
fn a_session_batch_sync_delivers_everything_and_reports_done() {
    let mut p = Pair::new(PairConfig::default());
    write(&p, 1, 1000);
    p.establish();
    let id = p.a.peer.start_session_sync(p.now).unwrap();
    assert!(p.run_until(Duration::from_millis(500), in_step));
    p.run_for(Duration::from_millis(5));
    let job = p.a.peer.job(id).unwrap();
    assert_eq!(job.state, JobState::Done);
    assert_eq!((job.total, job.sent, job.acked), (1000, 1000, 1000));
    assert!(p.b.saw(|e| matches!(e, Event::PeerBatchFinished { received: 1000, .. })));
}

#[test]
fn a_batch_sync_needs_an_established_relationship() {
    let mut p = Pair::new(PairConfig::default());
    let now = p.now;
    assert_eq!(
        p.a.peer.start_session_sync(now),
        Err(RequestError::NotEstablished)
    );
    assert_eq!(
        p.a.peer
            .start_config_sync(hotsync_proto::ConfigItems::new(), now),
        Err(RequestError::NotEstablished)
    );
}

#[test]
fn one_batch_sync_of_a_kind_at_a_time() {
    let mut p = Pair::new(PairConfig::default());
    write(&p, 1, 100);
    p.establish();
    let id = p.a.peer.start_session_sync(p.now).unwrap();
    assert_eq!(
        p.a.peer.start_session_sync(p.now),
        Err(RequestError::AlreadyRunning(id))
    );
}

#[test]
fn a_session_batch_sync_resumes_after_a_cut() {
    let mut p = Pair::new(PairConfig::default());
    write(&p, 1, 3000);
    p.establish();
    let id = p.a.peer.start_session_sync(p.now).unwrap();
    p.run_until(Duration::from_millis(100), |p| {
        p.a.peer.job(id).is_some_and(|j| j.acked > 500)
    });
    p.cut(SESSION);
    p.establish();
    assert!(p.run_until(Duration::from_secs(1), |p| {
        p.a.peer.job(id).is_some_and(|j| j.state == JobState::Done)
    }));
    let job = p.a.peer.job(id).unwrap();
    assert_eq!(job.restarts, 1);
    assert_eq!(job.acked, 3000);
    assert!(in_step(&p));
    assert!(p.b.peer.stats().records_rx < 6000, "resumed from the start");
}

#[test]
fn a_restarted_peer_gets_the_whole_batch_again() {
    let mut p = Pair::new(PairConfig::default());
    write(&p, 1, 2000);
    p.establish();
    let id = p.a.peer.start_session_sync(p.now).unwrap();
    p.run_until(Duration::from_millis(100), |p| {
        p.a.peer.job(id).is_some_and(|j| j.acked > 500)
    });
    p.cut(SESSION);
    p.cut(CONFIG);
    let cfg = p.b.peer.config().clone();
    p.b = Node::new(cfg, PairConfig::default().table_b, 4, p.now);
    p.establish();
    assert!(p.run_until(Duration::from_secs(1), |p| {
        p.a.peer.job(id).is_some_and(|j| j.state == JobState::Done)
    }));
    assert!(in_step(&p), "the fresh peer has holes");
}

#[test]
fn a_config_batch_sync_reports_the_peers_counts() {
    let mut p = established();
    let items = vec![
        (String::new(), "ip address-set a".to_string()),
        ("vs1".to_string(), "conflict rule".to_string()),
        (String::new(), "ip address-set b".to_string()),
    ];
    let id = p.a.peer.start_config_sync(items, p.now).unwrap();
    assert!(p.run_until(Duration::from_millis(100), |p| {
        p.a.peer.job(id).is_some_and(|j| j.state == JobState::Done)
    }));
    let out = p.a.peer.job(id).unwrap().config.unwrap();
    assert_eq!((out.added, out.conflicts), (2, 1));
    assert_eq!(p.b.config.lock().unwrap().len(), 3);
}

#[test]
fn a_config_batch_sync_resumes_after_a_cut() {
    let mut p = established();
    let items: Vec<_> = (0..2000)
        .map(|i| (String::new(), format!("ip address-set s{i}")))
        .collect();
    let id = p.a.peer.start_config_sync(items, p.now).unwrap();
    p.run_for(Duration::from_millis(2));
    p.cut(CONFIG);
    p.establish();
    assert!(p.run_until(Duration::from_secs(1), |p| {
        p.a.peer.job(id).is_some_and(|j| j.state == JobState::Done)
    }));
    let job = p.a.peer.job(id).unwrap();
    assert_eq!(job.restarts, 1);
    assert_eq!(job.config.unwrap().added, 2000);
}

#[test]
fn config_changes_replicate_in_order() {
    let mut p = established();
    for i in 0..20 {
        assert!(p.a.peer.queue_config_op(0, "", &format!("op {i}")));
    }
    p.run_for(Duration::from_millis(20));
    let got: Vec<String> =
        p.b.config
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.2.clone())
            .collect();
    let want: Vec<String> = (0..20).map(|i| format!("op {i}")).collect();
    assert_eq!(got, want);
    assert_eq!(
        p.a.peer.state().config_queue,
        0,
        "acknowledged changes still queued"
    );
}

#[test]
fn config_changes_before_the_first_establishment_are_not_queued() {
    let mut p = Pair::new(PairConfig::default());
    assert!(!p.a.peer.queue_config_op(0, "", "early"));
    p.establish();
    p.run_for(Duration::from_millis(10));
    assert!(p.b.config.lock().unwrap().is_empty());
}

#[test]
fn a_full_config_queue_drops_counts_and_warns() {
    let mut cfg = PairConfig::default();
    cfg.a.config_queue_limit = 3;
    let mut p = Pair::new(cfg);
    p.establish();
    p.cut(CONFIG);
    let queued = (0..5)
        .filter(|i| p.a.peer.queue_config_op(0, "", &format!("{i}")))
        .count();
    assert_eq!(queued, 3);
    assert_eq!(p.a.peer.stats().config_ops_dropped, 2);
    p.poll();
    assert!(p.a.saw(|e| matches!(e, Event::Warning(w) if w.contains("queue full"))));
}

#[test]
fn config_changes_cut_in_flight_are_resent_in_order() {
    let mut p = established();
    for i in 0..10 {
        p.a.peer.queue_config_op(0, "", &format!("op {i}"));
    }
    p.transmit(Side::A, CONFIG);
    p.cut(CONFIG);
    p.establish();
    p.run_for(Duration::from_millis(20));
    let got: Vec<String> =
        p.b.config
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.2.clone())
            .collect();
    let want: Vec<String> = (0..10).map(|i| format!("op {i}")).collect();
    assert_eq!(got, want);
}

#[test]
fn auto_sync_on_establish_starts_both_batch_syncs() {
    let mut cfg = PairConfig::default();
    cfg.a.auto_sync_on_establish = true;
    let mut p = Pair::new(cfg);
    write(&p, 1, 100);
    p.establish();
    assert!(p.a.did(|a| matches!(a, Action::StartConfigSync)));
    assert!(
        !p.b.did(|a| matches!(a, Action::StartConfigSync)),
        "B has it off"
    );
    assert!(p.run_until(Duration::from_millis(200), in_step));
    assert_eq!(p.b.table.len(), 100);
}

#[test]
fn an_ack_beyond_what_was_sent_drops_the_connection() {
    let mut p = Pair::new(PairConfig::default());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [3; 32], now);
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(2, 100, 2, 16, false),
        now,
    );
    let ack = hotsync_wire::Ack {
        channel: 1,
        seq: 1000,
    };
    s.send(&mut p.a, Channel::Control, &ack, now);
    assert_eq!(p.a.errors("ack_beyond_sent"), 1);
}

#[test]
fn the_send_queue_stays_bounded_while_the_link_is_held() {
    let mut p = established();
    write(&p, 1, 3000);
    p.hold(SESSION, true);
    for _ in 0..50 {
        p.step();
        let (_, tx) = p.a.peer.buffered(SESSION);
        assert!(tx <= (64 << 10) + 4 * (64 << 10), "queue {tx}");
    }
}

#[test]
fn the_replication_latency_is_measured_from_acknowledgements() {
    let mut p = Pair::new(PairConfig {
        latency: Duration::from_millis(2),
        ..PairConfig::default()
    });
    p.establish();
    assert_eq!(p.a.peer.stats().ack_rtt_us, 0);
    write(&p, 1, 50);
    assert!(p.run_until(Duration::from_millis(50), in_step));
    p.run_for(Duration::from_millis(10));
    let rtt = p.a.peer.stats().ack_rtt_us;
    // Two link latencies, plus up to a tick on each side to be polled.
    assert!((4_000..=6_000).contains(&rtt), "rtt {rtt} us");
}

#[test]
fn a_connected_peer_is_never_displaced_by_a_newcomer() {
    let mut p = Pair::new(PairConfig::default());
    assert!(p.a.peer.may_accept(SESSION), "nothing to displace");
    p.establish();
    assert!(!p.a.peer.may_accept(SESSION));
    assert_eq!(p.a.errors("connection_refused_busy"), 1);
    let local: std::net::SocketAddr = "10.0.0.1:18514".parse().unwrap();
    let peer: std::net::SocketAddr = "10.0.0.2:18514".parse().unwrap();
    assert!(hotsync_proto::Peer::dials(local, peer) && !hotsync_proto::Peer::dials(peer, local));
}

#[test]
fn records_a_full_standby_refused_are_resynced_once_room_frees_up() {
    let mut cfg = PairConfig::default();
    cfg.table_b.max_sessions = 256;
    let mut p = Pair::new(cfg);
    p.establish();
    let written = write(&p, 7, 2500);
    p.run_for(Duration::from_millis(100));
    let refused = p.b.peer.stats().apply_table_full;
    assert!(refused > 0, "the standby's table never filled");
    assert_ne!(p.a.table.digest(), p.b.table.digest());
    // The data plane ends most sessions: the standby has room again.
    for (k, _) in &written[..2300] {
        p.a.table.remove(k);
    }
    assert!(
        p.run_until(Duration::from_millis(500), in_step),
        "the refused records were never repaired"
    );
    let st = p.b.peer.state();
    assert!(st.stats.resync_table_full > 0);
    assert_eq!(st.stats.resync_balance(), st.uncertain_shards as i64);
    let a = p.a.peer.state();
    assert_eq!(a.stats.resync_balance(), a.uncertain_shards as i64);
}

/// The semantics of a healed split brain (docs/RELIABILITY.md §5): the
/// node that keeps the role is authoritative for every session it holds;
/// the sessions only the loser created while cut off are added to it; the
/// loser ends with the winner's copy.
#[test]
fn a_healed_split_brain_keeps_the_winners_sessions_and_adds_the_losers_new_ones() {
    let mut p = established();
    let shared = write(&p, 40, 50);
    assert!(p.run_until(Duration::from_millis(200), in_step));
    p.cut(SESSION);
    p.cut(CONFIG);
    p.run_for(Duration::from_millis(400));
    assert_eq!(p.b.peer.role(), Role::Active);
    // Both data planes write while cut off: each changes the shared
    // sessions its own way, each creates new ones.
    let (k0, mut on_a) = shared[0];
    on_a.packets[0] = 111;
    p.a.table.upsert(&k0, &on_a).unwrap();
    let mut on_b = shared[0].1;
    on_b.packets[0] = 222;
    p.b.table.upsert(&k0, &on_b).unwrap();
    p.b.table.remove(&shared[1].0);
    let only_a = write(&p, 41, 30);
    let only_b = sessions(42, 30);
    for (k, e) in &only_b {
        p.b.table.upsert(k, e).unwrap();
    }
    p.establish();
    assert!(
        p.run_until(Duration::from_millis(500), in_step),
        "the healed pair did not converge"
    );
    assert_eq!(
        (p.a.peer.role(), p.b.peer.role()),
        (Role::Active, Role::Standby)
    );
    assert_eq!(
        p.a.table.get(&k0).unwrap().packets[0],
        111,
        "the winner's version"
    );
    assert!(
        p.a.table.contains(&shared[1].0),
        "the winner keeps what it holds"
    );
    for (k, _) in only_a.iter().chain(&only_b) {
        assert!(p.a.table.contains(k) && p.b.table.contains(k));
    }
    let (a, b) = (p.a.peer.stats(), p.b.peer.stats());
    assert_eq!(b.resync_step_down, 16, "the loser asks for every shard");
    assert_eq!(b.step_down_lost_shards, 0);
    assert!(a.split_brain_kept_own >= 2, "{}", a.split_brain_kept_own);
    for n in [&p.a, &p.b] {
        let st = n.peer.state();
        assert_eq!(st.stats.resync_balance(), st.uncertain_shards as i64);
    }
}

/// Changes the loser's journal could not hold are lost: counted, never
/// silent.
#[test]
fn a_split_brain_loser_whose_journal_overflowed_counts_the_lost_shards() {
    let mut cfg = PairConfig::default();
    cfg.table_b.journal_capacity = 2;
    let mut p = Pair::new(cfg);
    p.establish();
    p.cut(SESSION);
    p.cut(CONFIG);
    p.run_for(Duration::from_millis(400));
    for (k, e) in sessions(43, 200) {
        p.b.table.upsert(&k, &e).unwrap();
    }
    p.establish();
    assert!(p.run_until(Duration::from_millis(500), in_step));
    assert!(p.b.peer.stats().step_down_lost_shards > 0);
}
