//! Two nodes that both held the active role, healed over the in-memory
//! pair, and what a node that stepped down still sends: the cases the
//! simulator found (docs/RELIABILITY.md §7).

use hotsync_proto::testing::{Node, Pair, PairConfig, Side};
use hotsync_proto::{ConnKind, Event, JobKind, JobState, Role};
use hotsync_table::{SessionEntry, SessionGenerator, SessionKey};
use std::time::Duration;

const SESSION: ConnKind = ConnKind::Session;
const CONFIG: ConnKind = ConnKind::Config;

fn sessions(seed: u64, n: usize) -> Vec<(SessionKey, SessionEntry)> {
    let mut g = SessionGenerator::new(seed, 0, false, 1000);
    (0..n).map(|_| g.next_session()).collect()
}

/// The standby's hello on a new session connection says "standby"; the
/// dead interval then makes it active before the handshake completes, and
/// it writes. Had the active resolved roles on that stale hello, it would
/// not wait for the loser's last changes: its own journaled deletion of a
/// session would land on the loser before the loser read its journal, and
/// the loser's newer write of that session would be lost without a count
/// (simulator seed 10133906088416419527). The hello is not left stale: the
/// connection starts over, and the active learns the peer was active.
#[test]
fn a_takeover_during_the_handshake_keeps_the_losers_last_write() {
    let mut p = Pair::new(PairConfig::default().with_key());
    p.establish();
    let s = sessions(7, 20);
    for (k, e) in &s {
        p.a.table.upsert(k, e).unwrap();
    }
    assert!(p.run_until(Duration::from_millis(100), |p| {
        p.a.table.digest() == p.b.table.digest()
    }));
    let (k, e) = s[0];
    p.cut(SESSION);
    p.cut(CONFIG);
    // The active removes the session while the link is down (journaled
    // for the peer).
    p.a.table.remove(&k);
    p.run_for(Duration::from_millis(150));
    assert_eq!(p.b.peer.role(), Role::Standby);
    // A new session connection; its hellos wait in the link while the
    // standby's dead interval runs out.
    p.connect(SESSION);
    p.hold(SESSION, true);
    assert!(p.run_until(Duration::from_millis(300), |p| p.b.peer.role()
        == Role::Active));
    // The standby, now active, writes the session anew.
    let mut newer = e;
    newer.packets[0] = 4242;
    p.b.table.upsert(&k, &newer).unwrap();
    // The active's hello reaches the (former) standby first, which sends
    // its proof; then the active gets the stale hello and the proof, and
    // its own proof reaches the other side together with its session
    // data, as when the active was paused meanwhile.
    let mut hello = Vec::new();
    p.tamper(Side::A, SESSION, |chunks| {
        hello = std::mem::take(chunks).concat()
    });
    let now = p.now;
    let _ = p.b.peer.handle_bytes(SESSION, &hello, now);
    p.transmit(Side::B, SESSION);
    p.hold(SESSION, false);
    // The heal: the driver dials what is not up.
    for kind in [SESSION, CONFIG] {
        if !p.is_up(kind) {
            p.connect(kind);
        }
    }
    let healed = p.run_until(Duration::from_secs(1), |p| {
        p.a.peer.is_established()
            && p.b.peer.is_established()
            && p.a.table.digest() == p.b.table.digest()
    });
    assert!(healed, "the pair did not heal: {p:?}");
    assert_eq!(
        (p.a.peer.role(), p.b.peer.role()),
        (Role::Active, Role::Standby)
    );
    assert_eq!(p.b.errors("role_changed_in_handshake"), 1);
    assert_eq!(p.b.peer.stats().step_down_lost_shards, 0);
    assert_eq!(
        p.a.table.get(&k).map(|e| e.packets[0]),
        Some(4242),
        "the loser's last write of a session the winner had removed is added (docs/RELIABILITY.md §5)"
    );
}

/// The standby runs a batch sync (B2) while the active walks a shard into
/// it (its journal overflowed): a chunk of the standby's copy of that shard
/// crosses the walk. The standby's copy of a shard being walked is stale
/// (the walk exists because the active's removals there were lost), so the
/// active takes nothing from that chunk: a session it removed would come
/// back. The walk, encoded before, removes the standby's extra session;
/// the standby sees the crossing, asks for the shard again, and both end
/// with the active's copy. (Until the fifth session the active applied the
/// chunk: simulator seed 9680971406373191153, then a batch a node kept
/// running after it stepped down.)
#[test]
fn a_standbys_batch_chunk_crossing_the_actives_walk_is_walked_again() {
    let mut cfg = PairConfig::default();
    cfg.table_a.journal_capacity = 4;
    let mut p = Pair::new(cfg);
    // A session only the standby holds: written before the relationship
    // formed, so only a batch sync carries it (B4).
    let (x, ex) = sessions(9, 1)[0];
    p.b.table.upsert(&x, &ex).unwrap();
    p.establish();
    assert_eq!(p.b.peer.role(), Role::Standby);
    let shard = p.a.table.shard_of(&x);
    // Both sides' frames wait in the link: the standby's batch (with the
    // chunk of that shard), and the active's walk of the same shard (its
    // journal overflowed).
    p.hold(SESSION, true);
    let now = p.now;
    p.b.peer.start_session_sync(now).unwrap();
    let burst: Vec<_> = sessions(10, 2000)
        .into_iter()
        .filter(|(k, _)| p.a.table.shard_of(k) == shard && *k != x)
        .take(20)
        .collect();
    for (k, e) in &burst {
        p.a.table.upsert(k, e).unwrap();
    }
    p.run_for(Duration::from_millis(5));
    assert!(p.a.peer.stats().resync_overflow > 0);
    p.hold(SESSION, false);
    let converged = p.run_until(Duration::from_millis(500), |p| {
        p.a.table.digest() == p.b.table.digest()
            && p.a.peer.state().uncertain_shards == 0
            && p.b.peer.state().uncertain_shards == 0
    });
    assert!(converged, "the pair did not converge: {p:?}");
    assert!(!p.a.table.contains(&x) && !p.b.table.contains(&x));
    assert!(p.a.peer.stats().standby_batch_kept_own > 0);
    assert!(p.b.peer.stats().resync_crossed > 0);
}

/// The active runs a batch sync (`hrp sync connection-status`) and loses
/// the role mid-walk (`hrp role`, external control: the peer is made
/// active, then this node standby). The new active's data plane then
/// writes a session of a shard the walk has not reached. The winner's copy
/// is authoritative: the stepped-down node's walk, encoded from its older
/// copy, must never land over that write, neither for a moment nor in the
/// copy both converge to. The walk is cancelled when the node steps down
/// (the job ends failed, counted); the winner resyncs every shard into it.
#[test]
fn a_batch_sync_running_when_its_node_steps_down_never_overwrites_the_new_active() {
    let mut cfg = PairConfig::default().with_key();
    cfg.a.external_role = true;
    cfg.b.external_role = true;
    // The new active's write reaches the stepped-down node only after a
    // coalescing window, while its walk would go on.
    cfg.b.flush_interval = Duration::from_millis(50);
    cfg.bytes_per_tick = 8 << 10;
    let mut p = Pair::new(cfg);
    p.establish();
    let now = p.now;
    p.a.peer.set_role_external(Role::Active, now).unwrap();
    p.b.peer.set_role_external(Role::Standby, now).unwrap();
    let s = sessions(11, 3000);
    for (k, e) in &s {
        p.a.table.upsert(k, e).unwrap();
    }
    assert!(p.run_until(Duration::from_secs(2), |p| {
        p.a.table.digest() == p.b.table.digest()
            && p.a.peer.state().uncertain_shards == 0
            && p.b.peer.state().uncertain_shards == 0
    }));
    // The batch sync walks the shards in order: stop it early in the walk.
    let now = p.now;
    let job = p.a.peer.start_session_sync(now).unwrap();
    assert!(p.run_until(Duration::from_millis(100), |p| {
        p.a.peer.job(job).is_some_and(|j| j.acked > 0)
    }));
    let last = p.a.table.shard_count() - 1;
    let (k, e) = *s
        .iter()
        .find(|(k, _)| p.a.table.shard_of(k) == last)
        .unwrap();
    let walked = p.a.peer.job(job).unwrap().sent;
    assert!(walked < 1000, "the walk went too far already: {walked}");
    // The roles swap; the new active writes the session at once.
    let now = p.now;
    p.b.peer.set_role_external(Role::Active, now).unwrap();
    p.a.peer.set_role_external(Role::Standby, now).unwrap();
    let mut newer = e;
    newer.packets[0] = 4242;
    p.b.table.upsert(&k, &newer).unwrap();
    let packets = |t: &hotsync_table::SessionTable| t.get(&k).map(|e| e.packets[0]);
    let end = p.now + Duration::from_secs(2);
    while p.now < end {
        p.step();
        assert_eq!(
            packets(&p.b.table),
            Some(4242),
            "the stepped-down node's walk overwrote the new active's write at {:?}",
            p.now
        );
        if p.a.table.digest() == p.b.table.digest()
            && p.a.peer.state().uncertain_shards == 0
            && p.b.peer.state().uncertain_shards == 0
            && !p.a.peer.jobs().iter().any(|j| j.state == JobState::Running)
        {
            break;
        }
    }
    assert_eq!(p.a.table.digest(), p.b.table.digest(), "{p:?}");
    assert_eq!(packets(&p.a.table), Some(4242));
    assert!(
        matches!(p.a.peer.job(job).unwrap().state, JobState::Failed(_)),
        "the job ends failed: {:?}",
        p.a.peer.job(job)
    );
    assert_eq!(p.a.peer.stats().step_down_walks_cancelled, 1);
    // The receiver's view of that batch ends with it, not whole.
    assert!(p.b.saw(|e| matches!(
        e,
        Event::PeerBatchFinished { kind: JobKind::ConnectionStatus, received } if *received < 3000
    )));
}

/// Preemption: the higher-priority node, back as standby, takes the role
/// after its delay while the active's batch sync is on its way to it. The
/// former active learns of it only from the preempting node's heartbeat,
/// and its chunks keep coming until then. They are a former active's: the
/// preempting node, authoritative from the moment it takes the role,
/// applies them as any batch that reaches the active (counted in
/// `standby_batch_kept_own`): only where it holds no version of its own,
/// so what its data plane writes from then on stands (simulator seed
/// 8339352101352174604: a session written right after preempting was
/// replaced by the former active's older copy).
#[test]
fn a_preempting_node_keeps_its_own_writes_against_the_former_actives_walk() {
    let mut cfg = PairConfig::default().with_key();
    cfg.a.preempt_delay = Some(Duration::from_millis(50));
    cfg.bytes_per_tick = 2 << 10;
    let mut p = Pair::new(cfg.clone());
    p.establish();
    // A (priority 200) stops; B takes over and its data plane writes.
    p.cut(SESSION);
    p.cut(CONFIG);
    assert!(p.run_until(Duration::from_millis(400), |p| p.b.peer.role()
        == Role::Active));
    p.a = Node::new(cfg.a.clone(), cfg.table_a.clone(), 33, p.now);
    let s = sessions(12, 3000);
    for (k, e) in &s {
        p.b.table.upsert(k, e).unwrap();
    }
    // A is back, empty, as standby; the operator refills it from B (B4).
    p.establish();
    assert_eq!(
        (p.a.peer.role(), p.b.peer.role()),
        (Role::Standby, Role::Active)
    );
    let now = p.now;
    let job = p.b.peer.start_session_sync(now).unwrap();
    assert!(p.run_until(Duration::from_millis(200), |p| p.a.peer.role()
        == Role::Active));
    let st = p.b.peer.job(job).unwrap();
    assert!(st.sent > 0 && st.acked < st.total, "{st:?}");
    // A's data plane writes every session anew the moment it is active.
    let newer = |e: &SessionEntry| {
        let mut n = *e;
        n.packets[0] = 4242;
        n
    };
    for (k, e) in &s {
        p.a.table.upsert(k, &newer(e)).unwrap();
    }
    let end = p.now + Duration::from_secs(2);
    while p.now < end {
        p.step();
        for (k, _) in &s {
            assert_eq!(
                p.a.table.get(k).map(|e| e.packets[0]),
                Some(4242),
                "the former active's walk replaced the preempting node's write"
            );
        }
        if p.a.table.digest() == p.b.table.digest()
            && p.a.peer.state().uncertain_shards == 0
            && p.b.peer.state().uncertain_shards == 0
        {
            break;
        }
    }
    assert_eq!(p.a.table.digest(), p.b.table.digest(), "{p:?}");
    assert_eq!(
        (p.a.peer.role(), p.b.peer.role()),
        (Role::Active, Role::Standby)
    );
    assert!(p.a.peer.stats().standby_batch_kept_own > 0);
    assert_eq!(p.b.peer.stats().step_down_walks_cancelled, 1);
    assert!(matches!(
        p.b.peer.job(job).unwrap().state,
        JobState::Failed(_)
    ));
}

/// B5: a batch sync adds what the peer lacks. The standby's batch
/// (`hrp sync connection-status` run on the standby, B2) carries its own
/// copy of sessions the active holds, encoded before the active's newest
/// changes reach it. Applied over them, it would take the active back to
/// the older versions (and both would converge on them). The active adds
/// what it lacks from that batch and keeps every session it holds.
#[test]
fn a_standbys_batch_never_replaces_the_actives_newer_sessions() {
    let mut p = Pair::new(PairConfig::default());
    p.establish();
    assert_eq!(
        (p.a.peer.role(), p.b.peer.role()),
        (Role::Active, Role::Standby)
    );
    let s = sessions(21, 40);
    for (k, e) in &s {
        p.a.table.upsert(k, e).unwrap();
    }
    assert!(p.run_until(Duration::from_millis(100), |p| {
        p.a.table.digest() == p.b.table.digest()
    }));
    // A session only the standby holds (written before it was connected
    // to this active, as B2's use on a standby expects).
    let (only_b, eb) = sessions(22, 1)[0];
    p.b.table.apply_upsert(&only_b, &eb).unwrap();
    // Both sides' frames wait in the link: the active's newer versions of
    // every session, and the standby's batch of its older copy.
    p.hold(SESSION, true);
    let mut newer = Vec::new();
    for (k, e) in &s {
        let mut e2 = *e;
        e2.packets[0] += 1_000;
        p.a.table.upsert(k, &e2).unwrap();
        newer.push((*k, e2));
    }
    let now = p.now;
    let job = p.b.peer.start_session_sync(now).unwrap();
    p.run_for(Duration::from_millis(5));
    p.hold(SESSION, false);
    let converged = p.run_until(Duration::from_secs(2), |p| {
        p.b.peer.job(job).is_some_and(|j| j.state == JobState::Done)
            && p.a.table.digest() == p.b.table.digest()
    });
    assert!(converged, "the pair did not converge: {p:?}");
    for (k, e) in &newer {
        assert_eq!(
            p.a.table.get(k),
            Some(*e),
            "the active went back to an older version"
        );
        assert_eq!(p.b.table.get(k), Some(*e));
    }
    assert_eq!(
        p.a.table.get(&only_b),
        Some(eb),
        "what the active lacked is added"
    );
    assert!(p.a.peer.stats().standby_batch_kept_own >= s.len() as u64);
}
