//! Link faults between two real nodes, injected by a TCP proxy on the link
//! (`support/proxy.rs`): cuts, stalls, delays, tiny writes, corruption; and
//! journal overflow under a data-plane burst. Each test ends with the
//! standby's digests equal to the active's and with the counters
//! accounting for every fault.
//!
//! Topology: node A (active, priority 200) dials; its peer address is the
//! proxy, which forwards to node B (standby, priority 100), which accepts.
//! The dialler is the node with the lower listen address, so A gets the
//! lowest port.

mod support;

use hotsync_node::{Node, NodeConfig, NodeHandle};
use hotsync_proto::{JobState, Role, Stats};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::proxy::{Fault, Faults, Proxy, ProxyStats};
use support::*;

struct Pair {
    a: NodeHandle,
    b: NodeHandle,
    proxy: Arc<Proxy>,
}

/// Ports for A, the proxy and B (A lowest, so A dials).
fn ports() -> (u16, u16, u16) {
    let p = port_pairs(3);
    (p[0], p[1], p[2])
}

fn configs(cap: usize, journal: usize) -> (NodeConfig, NodeConfig, u16) {
    let (pa, pp, pb) = ports();
    let mut a = node_config(1, 200, pa, addr(pp), Some("fault-key"), cap);
    let mut b = node_config(2, 100, pb, addr(pa), Some("fault-key"), cap);
    a.table.journal_capacity = journal;
    b.table.journal_capacity = journal;
    (a, b, pp)
}

/// Starts A, then B and the proxy (A's table may be filled first by
/// `prefill`).
fn start_pair(cap: usize, journal: usize, prefill: impl FnOnce(&NodeHandle)) -> Pair {
    start_pair_with(cap, journal, |_| {}, prefill)
}

/// [`start_pair`], with both nodes' settings adjusted by `tweak`.
fn start_pair_with(
    cap: usize,
    journal: usize,
    tweak: impl Fn(&mut NodeConfig),
    prefill: impl FnOnce(&NodeHandle),
) -> Pair {
    let (mut ca, mut cb, pp) = configs(cap, journal);
    tweak(&mut ca);
    tweak(&mut cb);
    let a = Node::start(ca).unwrap();
    prefill(&a);
    let b = Node::start(cb.clone()).unwrap();
    let proxy = Arc::new(Proxy::start(pp, cb.listen));
    established(&a, &b, Duration::from_secs(10));
    assert_eq!(a.role(), Role::Active);
    assert_eq!(b.role(), Role::Standby);
    Pair { a, b, proxy }
}

fn stats(n: &NodeHandle) -> (Stats, usize) {
    let st = n.state().peer;
    (st.stats, st.uncertain_shards)
}

/// Every shard marked uncertain was resynced or aborted-and-marked-again.
fn assert_resync_balance(name: &str, n: &NodeHandle) {
    let (s, pending) = stats(n);
    assert_eq!(
        s.resync_balance(),
        pending as i64,
        "{name}: overflow {} + disconnect {} + request {} != resynced {} + aborted {} + pending {pending}",
        s.resync_overflow,
        s.resync_disconnect,
        s.resync_request,
        s.shards_resynced,
        s.resync_aborted
    );
}

/// Both nodes saw every connection the proxy carried end: each cut and
/// each connection an endpoint closed is one disconnect on each side.
fn assert_disconnects_match(p: &Pair) {
    let ps = p.proxy.stats();
    let ended: u64 = ProxyStats::get(&ps.cut).iter().sum::<u64>()
        + ProxyStats::get(&ps.ended).iter().sum::<u64>();
    let refused: u64 = ProxyStats::get(&ps.refused).iter().sum();
    let (sa, _) = stats(&p.a);
    let (sb, _) = stats(&p.b);
    // A dialled every connection the proxy took (refused ones included:
    // A's connect succeeded, then the proxy dropped it).
    assert_eq!(sa.disconnects, ended + refused, "A disconnects vs proxy");
    // B took each one, or refused it because its previous connection was
    // still up (still applying what arrived before the cut, it had not read
    // the end of it yet): counted as `connection_refused_busy`.
    let busy = sb
        .errors
        .get("connection_refused_busy")
        .copied()
        .unwrap_or(0);
    assert_eq!(
        sb.disconnects + busy,
        ended,
        "B disconnects + busy refusals vs proxy"
    );
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v != "0" && !v.is_empty())
}

/// The issue-8 soak: a batch sync of N sessions plus incremental load while
/// the link is cut every 200 ms; after the heal the digests must be equal
/// within a bound, and the counters must account for every cut.
///
/// Default (CI): 1M sessions, 100k updates/s, cuts for 10 s. With
/// `HOTSYNC_SOAK=1`: 2M sessions and 30 s of cuts.
#[test]
fn batch_and_load_under_cuts_every_200ms_converge_after_heal() {
    let _serial = serial();
    let soak = env_flag("HOTSYNC_SOAK");
    let (sessions, cut_for) = if soak {
        (2_000_000, Duration::from_secs(30))
    } else {
        (1_000_000, Duration::from_secs(10))
    };
    let rate = 100_000;
    let cut_every = Duration::from_millis(200);
    let cap = sessions + sessions / 2;
    let mut keys = Vec::new();
    let t_fill = Instant::now();
    let p = start_pair(cap, 16 * 1024, |a| {
        keys = fill(a.table(), sessions, 11);
    });
    let fill_time = t_fill.elapsed();
    // B4: what existed before the relationship formed is not sent
    // automatically; the batch sync carries it.
    assert_eq!(p.b.table().len(), 0);

    let job = p.a.sync_connection_status().unwrap();
    let load = Load::start(p.a.table().clone(), keys, rate, 12);
    let steps: Vec<(Duration, Fault)> = (1..=(cut_for.as_millis() / cut_every.as_millis()) as u32)
        .map(|i| (cut_every * i, Fault::Cut))
        .collect();
    let n_steps = steps.len();
    p.proxy.schedule(steps).join().unwrap();
    // Heal: no more cuts, traffic stops.
    let ops = load.stop();
    let healed = Instant::now();
    let cuts = ProxyStats::get(&p.proxy.stats().cut);
    let converged = digests_equal(&p.a, &p.b, Duration::from_secs(60));
    let st = p.a.wait_job(job, Duration::from_secs(60)).unwrap();
    let job_done = healed.elapsed();
    assert_eq!(st.state, JobState::Done, "{st:?}");
    // Quiet: nothing pending, nothing in flight.
    wait_until("no uncertain shards", Duration::from_secs(10), || {
        p.a.state().peer.uncertain_shards == 0
    });
    digests_equal(&p.a, &p.b, Duration::from_secs(10));

    let (sa, _) = stats(&p.a);
    let (sb, _) = stats(&p.b);
    eprintln!(
        "soak: {sessions} sessions (filled in {fill_time:.2?}), {ops} data-plane ops in {cut_for:?} \
         ({:.0}/s), {n_steps} cut steps; proxy cut {cuts:?} live connections; \
         digests equal {converged:.3?} after the heal, job done after {job_done:.3?} \
         (restarts {}); A: disconnects {} resync_disconnect {} resync_overflow {} \
         journal_overflows {} shards_resynced {} resync_aborted {} records_tx {} errors {:?}; \
         B: disconnects {} records_rx {} resync_removed {} errors {:?}",
        ops as f64 / cut_for.as_secs_f64(),
        st.restarts,
        sa.disconnects,
        sa.resync_disconnect,
        sa.resync_overflow,
        sa.journal_overflows,
        sa.shards_resynced,
        sa.resync_aborted,
        sa.records_tx,
        sa.errors,
        sb.disconnects,
        sb.records_rx,
        sb.resync_removed,
        sb.errors,
    );
    // The target is 2 s; the assertion is generous for loaded CI
    // machines, the measured figure is printed above.
    assert!(
        converged < Duration::from_secs(20),
        "converged after {converged:?}"
    );
    // The link really was cut, again and again, mid-transfer.
    assert!(cuts[0] as usize >= n_steps / 2, "session cuts {cuts:?}");
    // Every cut is a disconnect on both sides, nothing else dropped.
    assert_disconnects_match(&p);
    // Each cut of the session connection restarted the running batch
    // (from the shards the standby acknowledged).
    let session_ends = cuts[0] + ProxyStats::get(&p.proxy.stats().ended)[0];
    assert!(
        st.restarts >= 1 && u64::from(st.restarts) <= session_ends,
        "{st:?}"
    );
    if st.finished.is_some_and(|f| f > healed) {
        // It ran through every cut: one restart per session connection lost.
        assert_eq!(u64::from(st.restarts), session_ends, "{st:?}");
    }
    // Cuts with data in flight left shards uncertain; all were repaired.
    assert!(sa.resync_disconnect >= 1);
    assert!(sa.shards_resynced >= 1);
    assert_resync_balance("A", &p.a);
    assert_resync_balance("B", &p.b);
    // The only errors are the cuts' side effects (resets, a cut inside a
    // handshake, timeouts), never a malformed frame.
    for (k, _) in sa.errors.iter().chain(sb.errors.iter()) {
        assert!(
            matches!(
                *k,
                "io" | "timeout"
                    | "peer_closed"
                    | "connection_refused_busy"
                    | "handshake_incomplete"
            ),
            "unexpected error kind {k}: A {:?} B {:?}",
            sa.errors,
            sb.errors
        );
    }
    assert_eq!(sb.records_tx, 0, "the standby echoed records back");
    p.a.shutdown();
    p.b.shutdown();
}

/// Tiny writes (a few bytes per segment), added latency and a short stall
/// (below the dead interval): frames arrive in pieces, late and bunched.
/// Nothing drops, nothing is counted as an error, everything arrives.
#[test]
fn tiny_writes_delay_and_short_stalls_lose_nothing() {
    // A 2 s dead interval: a heartbeat queued in the proxy behind a batch
    // written 3 bytes at a time may wait long on a loaded machine, and this
    // test is about reassembly, not about the dead timer.
    let p = start_pair_with(200_000, 16 * 1024, |c| c.proto.dead_count = 20, |_| {});
    p.proxy.set(Faults {
        split: Some(3),
        delay: Duration::from_millis(20),
        ..Faults::default()
    });
    // Incremental under tiny writes.
    let keys = fill(p.a.table(), 5_000, 21);
    // A stall shorter than the dead interval.
    p.proxy.update(|f| f.stall = true);
    std::thread::sleep(Duration::from_millis(150));
    p.proxy.update(|f| f.stall = false);
    for k in keys.iter().step_by(3) {
        p.a.table().remove(k);
    }
    digests_equal(&p.a, &p.b, Duration::from_secs(30));
    // A batch under tiny writes and delay (additive: nothing changes).
    let job = p.a.sync_connection_status().unwrap();
    let st = p.a.wait_job(job, Duration::from_secs(60)).unwrap();
    assert_eq!(st.state, JobState::Done);
    assert_eq!(st.restarts, 0);
    digests_equal(&p.a, &p.b, Duration::from_secs(10));
    let (sa, _) = stats(&p.a);
    let (sb, _) = stats(&p.b);
    assert_eq!(sa.disconnects, 0, "{sa:?}");
    assert_eq!(sb.disconnects, 0, "{sb:?}");
    assert_eq!(
        sa.error_total() + sb.error_total(),
        0,
        "{:?} {:?}",
        sa.errors,
        sb.errors
    );
    assert_eq!(sa.shards_resynced, 0);
    assert!(ProxyStats::get(&p.proxy.stats().bytes)[0] > 5_000 * 64);
    assert_resync_balance("A", &p.a);
    assert_resync_balance("B", &p.b);
    p.a.shutdown();
    p.b.shutdown();
}

/// Bytes flipped on the link, both directions, under load: every corrupted
/// frame is caught by its tag (CRC32C before the handshake, HMAC after),
/// counted as a typed error, the connection dropped and the shards it left
/// uncertain resynced. Nothing corrupted reaches the standby's table: once
/// the link is clean the digests are equal.
#[test]
fn corrupted_bytes_are_detected_counted_and_repaired() {
    let p = start_pair(400_000, 16 * 1024, |_| {});
    let keys = fill(p.a.table(), 20_000, 31);
    digests_equal(&p.a, &p.b, Duration::from_secs(10));
    let load = Load::start(p.a.table().clone(), keys, 20_000, 32);
    p.proxy.set(Faults {
        corrupt_every: 40,
        ..Faults::default()
    });
    std::thread::sleep(Duration::from_secs(3));
    p.proxy.set(Faults::default());
    load.stop();
    let t = digests_equal(&p.a, &p.b, Duration::from_secs(30));
    wait_until("no uncertain shards", Duration::from_secs(10), || {
        p.a.state().peer.uncertain_shards == 0
    });
    let corrupted = p
        .proxy
        .stats()
        .corrupted
        .load(std::sync::atomic::Ordering::SeqCst);
    let (sa, _) = stats(&p.a);
    let (sb, _) = stats(&p.b);
    let tag_errors = |s: &Stats| -> u64 {
        s.errors
            .iter()
            .filter(|(k, _)| {
                matches!(
                    **k,
                    "bad_mac"
                        | "bad_checksum"
                        | "bad_magic"
                        | "unsupported_version"
                        | "unknown_channel"
                        | "unknown_kind"
                        | "reserved_nonzero"
                        | "frame_too_large"
                        | "kind_channel_mismatch"
                        | "missing_mac"
                        | "unexpected_mac"
                        | "invalid_payload"
                        | "sequence_gap"
                        | "auth_failed"
                )
            })
            .map(|(_, v)| *v)
            .sum()
    };
    let detected = tag_errors(&sa) + tag_errors(&sb);
    eprintln!(
        "corruption: {corrupted} bytes flipped, {detected} detected (A {:?}, B {:?}), \
         {} + {} disconnects, {} shards resynced, digests equal {t:?} after the link was cleaned",
        sa.errors, sb.errors, sa.disconnects, sb.disconnects, sa.shards_resynced
    );
    assert!(
        corrupted >= 5,
        "the proxy corrupted too little: {corrupted}"
    );
    // Every corruption reaching a live connection is detected; a flip in
    // bytes that follow a detected one on the same (dropped) connection is
    // discarded with it.
    assert!(
        detected >= 1 && detected <= corrupted,
        "{detected} of {corrupted}"
    );
    assert!(sa.disconnects >= detected.min(1));
    assert_resync_balance("A", &p.a);
    assert_disconnects_match(&p);
    p.a.shutdown();
    p.b.shutdown();
}

/// A stall longer than the dead interval: both sides declare the peer dead
/// and the standby takes over (split brain while the link is stalled).
/// When the link heals, the roles are resolved by priority again (A
/// active, B standby) and writes made during the outage reach B.
#[test]
fn a_stall_beyond_the_dead_interval_fails_over_then_heals() {
    let p = start_pair(200_000, 16 * 1024, |_| {});
    fill(p.a.table(), 10_000, 41);
    digests_equal(&p.a, &p.b, Duration::from_secs(10));
    p.proxy.update(|f| f.stall = true);
    let t0 = Instant::now();
    wait_until("B takes over", Duration::from_secs(5), || {
        p.b.role() == Role::Active
    });
    let takeover = t0.elapsed();
    // Writes during the outage.
    fill(p.a.table(), 5_000, 42);
    p.proxy.cut(None);
    p.proxy.set(Faults::default());
    established(&p.a, &p.b, Duration::from_secs(10));
    wait_until("roles resolved", Duration::from_secs(5), || {
        p.a.role() == Role::Active && p.b.role() == Role::Standby
    });
    digests_equal(&p.a, &p.b, Duration::from_secs(20));
    let (sa, _) = stats(&p.a);
    let (sb, _) = stats(&p.b);
    eprintln!(
        "stall: B took over after {takeover:?}; A {:?} B {:?}",
        sa.errors, sb.errors
    );
    // Dead interval 300 ms, heartbeat 100 ms: generous bound for CI.
    assert!(takeover < Duration::from_secs(3), "{takeover:?}");
    assert!(
        sa.errors.get("timeout").copied().unwrap_or(0) >= 1,
        "{:?}",
        sa.errors
    );
    // The outage writes waited in A's journal (it did not overflow) and
    // went out incrementally after the heal.
    assert_eq!(p.b.table().backup_len(), p.a.table().backup_len());
    assert_resync_balance("A", &p.a);
    assert_resync_balance("B", &p.b);
    p.a.shutdown();
    p.b.shutdown();
}

/// A data-plane burst far larger than the change journals (64 keys per
/// shard): the journals overflow, the overflowed shards are resynced whole,
/// and the tables converge. Through the proxy, with a cut in the middle of
/// the burst for good measure.
#[test]
fn journal_overflow_under_a_burst_resyncs_and_converges() {
    let p = start_pair(400_000, 64, |_| {});
    let keys = fill(p.a.table(), 150_000, 51);
    p.proxy.cut(None);
    for (i, k) in keys.iter().enumerate() {
        if i % 4 == 0 {
            p.a.table().remove(k);
        } else {
            p.a.table().update(k, |e| e.packets[1] += 1);
        }
    }
    let t = digests_equal(&p.a, &p.b, Duration::from_secs(30));
    wait_until("no uncertain shards", Duration::from_secs(10), || {
        p.a.state().peer.uncertain_shards == 0
    });
    digests_equal(&p.a, &p.b, Duration::from_secs(5));
    let (sa, _) = stats(&p.a);
    eprintln!(
        "overflow: journal_overflows {} resync_overflow {} resync_disconnect {} shards_resynced {} aborted {}; converged {t:?}",
        sa.journal_overflows,
        sa.resync_overflow,
        sa.resync_disconnect,
        sa.shards_resynced,
        sa.resync_aborted
    );
    assert!(sa.journal_overflows >= 1, "{sa:?}");
    assert!(sa.resync_overflow >= 1);
    assert!(sa.shards_resynced >= sa.resync_overflow.min(16));
    assert_resync_balance("A", &p.a);
    assert_eq!(p.a.table().overflow_count(), sa.journal_overflows);
    p.a.shutdown();
    p.b.shutdown();
}

/// The standby's copy is never authoritative. Here A holds sessions B lacks
/// (created before the relationship formed, B4), and a burst written on
/// the standby overflows its journals. B must not resync its shards to A
/// (the end marker of a resync deletes what it did not carry: A would lose
/// the sessions B lacks); it asks A to resync them instead, and A's copy
/// wins.
#[test]
fn a_standby_never_overwrites_the_active_with_its_own_copy() {
    let mut before = Vec::new();
    let p = start_pair(200_000, 64, |a| {
        before = fill(a.table(), 10_000, 61);
    });
    let a_backup = p.a.table().backup_len();
    assert_eq!(p.b.table().len(), 0, "B4");
    // A burst on the standby's data plane: 16 shards x 64-key journals
    // overflow (most of them: B's engine drains while the burst runs).
    let burst = fill(p.b.table(), 20_000, 62);
    wait_until("B asked A to resync", Duration::from_secs(10), || {
        p.b.state().peer.stats.resync_requested > 0
    });
    // Quiet means the requests reached A and its walks of them ended, not
    // only that B handed its uncertain shards over (B's are 0 the moment
    // its request leaves).
    wait_until("A resynced what B asked", Duration::from_secs(10), || {
        let ((sa, ua), (sb, ub)) = (stats(&p.a), stats(&p.b));
        sa.resync_request >= 1
            && ua == 0
            && ub == 0
            && sa.resync_balance() == 0
            && sb.resync_balance() == 0
    });
    // A lost nothing: all its sessions are still there.
    for k in &before {
        assert!(p.a.table().get(k).is_some(), "the active lost {k:?}");
    }
    assert!(p.a.table().backup_len() >= a_backup);
    let (sa, _) = stats(&p.a);
    let (sb, _) = stats(&p.b);
    eprintln!(
        "standby burst: B overflowed {} shards, requested {}; A resynced {} (requests {}); A {} entries, B {}",
        sb.resync_overflow,
        sb.resync_requested,
        sa.shards_resynced,
        sa.resync_request,
        p.a.table().backup_len(),
        p.b.table().backup_len()
    );
    assert_eq!(
        sb.shards_resynced, 0,
        "the standby resynced shards to the active"
    );
    assert!(sa.resync_request >= 1);
    // B converges to A: every replicated session of B's burst is on both
    // sides alike or on neither (what overflowed B's journals is gone with
    // A's walk; what crossed A's walks is asked for again,
    // `resync_crossed`), and of A's sessions from before the relationship
    // B holds A's version or none (B4: a shard whose journal never
    // overflowed is not walked, so equal digests are not the criterion).
    let replicated = |t: &hotsync_table::SessionTable, k| t.get(k).filter(|e| e.is_backup());
    let agree = || {
        burst
            .iter()
            .all(|k| replicated(p.a.table(), k) == replicated(p.b.table(), k))
            && before.iter().all(|k| {
                let b = replicated(p.b.table(), k);
                b.is_none() || b == replicated(p.a.table(), k)
            })
    };
    // A walk asked for again may still be under way.
    wait_until("B converged to A", Duration::from_secs(10), || {
        let ((sa, ua), (sb, ub)) = (stats(&p.a), stats(&p.b));
        ua == 0 && ub == 0 && sa.resync_balance() == 0 && sb.resync_balance() == 0 && agree()
    });
    let on_a = burst
        .iter()
        .filter(|k| replicated(p.a.table(), k).is_some());
    eprintln!(
        "standby burst: B crossed {}; {} of the burst on both sides",
        stats(&p.b).0.resync_crossed,
        on_a.count()
    );
    assert_resync_balance("A", &p.a);
    assert_resync_balance("B", &p.b);
    p.a.shutdown();
    p.b.shutdown();
}

/// Both tables full, and the data plane churning at the limit: every
/// insert on the active takes the slot a removal just freed. The standby
/// must apply the removal before the insert, or its full shard refuses the
/// insert and the session is lost (counted as `apply_table_full`, never
/// repaired).
#[test]
fn full_tables_under_churn_converge_without_refusals() {
    let p = start_pair(16_000, 16 * 1024, |_| {});
    let t = p.a.table().clone();
    let mut g = hotsync_table::SessionGenerator::new(71, 0, false, hotsync_table::unix_now());
    let mut keys = Vec::new();
    // Fill every shard to its capacity.
    let mut refused = 0;
    while refused < 2_000 {
        let (k, e) = g.next_session();
        if t.upsert(&k, &e).is_ok() {
            keys.push(k);
        } else {
            refused += 1;
        }
    }
    digests_equal(&p.a, &p.b, Duration::from_secs(20));
    let full = t.len();
    // Churn: remove one, insert until an insert finds the freed slot.
    let mut i = 0usize;
    let t0 = Instant::now();
    let mut churned = 0;
    while t0.elapsed() < Duration::from_secs(2) {
        i = (i + 7919) % keys.len();
        t.remove(&keys[i]);
        loop {
            let (k, e) = g.next_session();
            if t.upsert(&k, &e).is_ok() {
                keys[i] = k;
                break;
            }
        }
        churned += 1;
    }
    let conv = digests_equal(&p.a, &p.b, Duration::from_secs(20));
    let (sa, _) = stats(&p.a);
    let (sb, _) = stats(&p.b);
    eprintln!(
        "full-table churn: {full} sessions, {churned} replacements; B refused {} applies; converged {conv:?}; A resynced {}",
        sb.apply_table_full, sa.shards_resynced
    );
    assert_eq!(
        sb.apply_table_full, 0,
        "the standby refused inserts: sessions lost"
    );
    assert_resync_balance("A", &p.a);
    assert_resync_balance("B", &p.b);
    p.a.shutdown();
    p.b.shutdown();
}
