//! The simulator's network (`hotsync_proto::testing::sim`) does what the
//! fault schedules of `simulator.rs` rely on: a seed replays the same run,
//! a mangled segment is detected and the connection redialled, a crash
//! keeps or loses the table as asked, a paused active is replaced, and a
//! stranger only gets a connection that is not up.

use hotsync_proto::testing::sim::{Observer, Sim, SimConfig};
use hotsync_proto::testing::{Mangle, TEST_PSK};
use hotsync_proto::{ConnKind, Event, ProtoConfig, Role};
use hotsync_table::{SessionGenerator, TableConfig};
use std::time::Duration;

/// One step of the simulated clock, µs.
const STEP: u64 = 1000;

fn config(psk: bool) -> SimConfig {
    let node = |node_id, priority| ProtoConfig {
        node_id,
        priority,
        hello_interval: Duration::from_millis(100),
        dead_count: 3,
        psk: psk.then(|| TEST_PSK.to_vec()),
        flush_interval: Duration::ZERO,
        ..ProtoConfig::default()
    };
    SimConfig {
        nodes: [node(1, 200), node(2, 100)],
        table: TableConfig {
            shards: 16,
            max_sessions: 4096,
            journal_capacity: 1024,
        },
        config_in_driver: false,
    }
}

/// Writes `per_step` sessions on the active node each step while
/// `writing`, and records what the network reported.
#[derive(Default)]
struct Load {
    writing: bool,
    per_step: u64,
    written: u64,
    role_changes: Vec<(usize, Role)>,
    restarted_with: Vec<(usize, usize)>,
}

impl Observer for Load {
    fn data_plane(&mut self, sim: &mut Sim) {
        let ni = sim.active();
        if !self.writing || !sim.alive(ni) || sim.nodes[ni].peer.role() != Role::Active {
            return;
        }
        let mut g = SessionGenerator::new(self.written, 0, false, 1000);
        for _ in 0..self.per_step {
            let (k, e) = g.next_session();
            let _ = sim.nodes[ni].table.upsert(&k, &e);
            self.written += 1;
        }
    }

    fn event(&mut self, _sim: &Sim, ni: usize, ev: &Event) {
        if let Event::RoleChanged { to, .. } = ev {
            self.role_changes.push((ni, *to));
        }
    }

    fn restarted(&mut self, sim: &Sim, ni: usize, _table_kept: bool) {
        self.restarted_with.push((ni, sim.nodes[ni].table.len()));
    }
}

/// Steps until `done` or `limit_ms` of simulated time; whether it held.
fn run_until(sim: &mut Sim, obs: &mut Load, limit_ms: u64, done: impl Fn(&Sim) -> bool) -> bool {
    for _ in 0..limit_ms * 1000 / STEP {
        if done(sim) {
            return true;
        }
        sim.step(STEP, obs);
    }
    done(sim)
}

fn established(sim: &Sim) -> bool {
    sim.nodes.iter().all(|n| n.peer.is_established())
}

fn in_step(sim: &Sim) -> bool {
    established(sim)
        && sim.nodes[0].table.digest() == sim.nodes[1].table.digest()
        && sim.links_idle()
}

/// A pair established with `n` sessions written on node 0 and replicated.
fn loaded(psk: bool, seed: u64, n: u64) -> (Sim, Load) {
    let mut sim = Sim::new(config(psk), seed, [11, 22]);
    let mut obs = Load {
        per_step: n / 10,
        ..Load::default()
    };
    assert!(run_until(&mut sim, &mut obs, 500, established));
    obs.writing = true;
    for _ in 0..10 {
        sim.step(STEP, &mut obs);
    }
    obs.writing = false;
    assert!(run_until(&mut sim, &mut obs, 500, in_step), "not in step");
    assert_eq!(sim.nodes[1].table.len() as u64, n);
    (sim, obs)
}

#[test]
fn a_seed_replays_the_same_run() {
    let run = |seed| {
        let (mut sim, mut obs) = loaded(true, seed, 200);
        sim.mangle(ConnKind::Config, 1, Mangle::Truncate { keep: 3 });
        sim.partition(50_000);
        run_until(&mut sim, &mut obs, 1000, in_step);
        (
            sim.t,
            sim.log.clone(),
            sim.delivered,
            format!("{:?}", sim.nodes[1].peer.stats()),
        )
    };
    let first = run(7);
    assert_eq!(first, run(7));
    // The seed matters: latencies and read splits differ.
    assert_ne!(first.2, run(8).2);
}

#[test]
fn a_flipped_byte_is_detected_and_the_connection_redialled() {
    let (mut sim, mut obs) = loaded(false, 1, 100);
    let before = sim.nodes[1].peer.stats().error_total();
    sim.mangle(ConnKind::Session, 0, Mangle::Flip { pos: 5, xor: 0x40 });
    // A heartbeat carries the flip within one hello interval.
    let hit = run_until(&mut sim, &mut obs, 300, |s| {
        s.nodes[1].peer.stats().error_total() > before
    });
    assert!(hit, "the flipped segment was not refused: {:?}", sim.log);
    assert!(
        sim.log
            .iter()
            .any(|l| l.contains("mangled link 0 from node0"))
    );
    obs.writing = true;
    sim.step(STEP, &mut obs);
    obs.writing = false;
    assert!(
        run_until(&mut sim, &mut obs, 1000, in_step),
        "{:?}",
        sim.log
    );
}

#[test]
fn a_crash_keeps_or_loses_the_table_as_asked() {
    for keep in [true, false] {
        let (mut sim, mut obs) = loaded(false, 2, 100);
        assert!(sim.crash(1, 20_000, keep, 99));
        assert!(!sim.crash(1, 20_000, keep, 99), "down already");
        assert!(!sim.alive(1));
        run_until(&mut sim, &mut obs, 100, |s| s.alive(1));
        let held = if keep { 100 } else { 0 };
        assert_eq!(obs.restarted_with, vec![(1, held)]);
        assert!(run_until(&mut sim, &mut obs, 500, established));
    }
}

#[test]
fn a_paused_active_is_replaced_then_one_active_remains() {
    let (mut sim, mut obs) = loaded(false, 3, 50);
    sim.pause(0, 500_000);
    assert!(!sim.alive(0));
    let took_over = run_until(&mut sim, &mut obs, 450, |s| {
        s.nodes[1].peer.role() == Role::Active
    });
    assert!(took_over, "the standby never took over: {:?}", sim.log);
    assert!(obs.role_changes.contains(&(1, Role::Active)));
    let one = |s: &Sim| {
        established(s)
            && s.nodes
                .iter()
                .filter(|n| n.peer.role() == Role::Active)
                .count()
                == 1
    };
    assert!(run_until(&mut sim, &mut obs, 2000, one), "{:?}", sim.log);
}

#[test]
fn a_stranger_gets_only_a_connection_that_is_not_up_and_changes_nothing() {
    let (mut sim, _obs) = loaded(true, 4, 50);
    let mut g = SessionGenerator::new(4242, 0, false, 1000);
    let claims: Vec<_> = (0..3).map(|_| g.next_session()).collect();
    assert!(!sim.stranger(0, ConnKind::Session, 5, &claims, "op"));
    sim.cut(ConnKind::Session, 1_000_000);
    let digest = sim.nodes[0].table.digest();
    let errors = sim.nodes[0].peer.stats().error_total();
    assert!(sim.stranger(0, ConnKind::Session, 5, &claims, "op"));
    assert_eq!(sim.nodes[0].table.digest(), digest);
    assert!(claims.iter().all(|(k, _)| !sim.nodes[0].table.contains(k)));
    assert!(sim.nodes[0].peer.stats().error_total() > errors);
    assert!(
        sim.log
            .iter()
            .any(|l| l.contains("stranger on node0 session"))
    );
}
