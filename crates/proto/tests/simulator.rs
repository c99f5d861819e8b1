//! Deterministic simulator: two protocol instances (the real `Peer` code)
//! over a simulated network and a simulated clock, driven by a seeded fault
//! schedule, VOPR style. The network, the clock and the nodes are
//! `hotsync_proto::testing::sim` (the same `Node` and `Link` as the targeted
//! tests' `testing::Pair`); this file holds the schedules ([`plan`]), the
//! data plane's load and the property checks ([`Checks`]), shrinking and the
//! seed lists.
//!
//! Every seed builds a schedule of named faults and operations at random
//! steps ([`Class`]): link cuts, partitions shorter and longer than the dead
//! interval (the longer ones are a split brain, with data-plane writes on
//! both sides), the standby or the active crashing and restarting (its table
//! lost, or kept as after a process restart with the data plane alive), a
//! crash long enough to fail over, a node paused past the dead interval then
//! resuming, corrupted and truncated frames, a slow receiver, data-plane
//! bursts that overflow the journals, configuration changes and both kinds of
//! batch job, strangers without the key, preemption. Per seed: a key or
//! none, journals of 4 to 1,024 keys, and in some seeds tables smaller than
//! the key space (full on both sides).
//!
//! After every schedule the network heals and traffic stops; then safety
//! (exactly one active, nothing echoed by a node that was never active, no
//! frame applied out of sequence, every established relationship
//! authenticated when there is a key, nothing a stranger sent applied, the
//! winner of a split brain authoritative and nothing the loser wrote lost
//! uncounted, and at every moment of the run an active node's own last
//! writes in its table as written ([`Checks::check_authority`]), a restarted standby never holding a fragment unsaid, the
//! resync counters balance) and
//! liveness (digests equal and every job finished within
//! [`liveness_bound`] of simulated time) are checked.
//!
//! A failing seed is shrunk (its schedule entries dropped one at a time
//! while it keeps failing) and printed with a replay line.
//!
//! `cargo test` runs a fixed set of seeds. `HOTSYNC_SIM_SEEDS=N` runs N
//! random seeds instead (`scripts/simulate.sh N` on every core);
//! `HOTSYNC_SIM_SEED=S` replays one seed, `HOTSYNC_SIM_KEEP=i,j,..` only
//! those entries of its schedule (as printed after shrinking).
//! `HOTSYNC_SIM_FINGERPRINT=1` prints a digest of each passing run
//! ([`fingerprint`]) to prove a harness change left every run as it was.

use hotsync_proto::testing::sim::{Observer, Sim, SimConfig};
use hotsync_proto::testing::{Mangle, Node, Rng};
use hotsync_proto::{ConnKind, Event, JobKind, Peer, ProtoConfig, Role};
use hotsync_table::{
    SessionEntry, SessionGenerator, SessionKey, SessionTable, TableConfig, entry_digest,
};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// A map iterated in the same order on every run (a failure names the
/// same key each time).
type DetMap<K, V> =
    HashMap<K, V, std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>>;

/// A named class of fault or operation. The fixed seed set must inject every
/// class at least once (`every_fault_class_is_exercised`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// One connection cut, redialled after a hold.
    Cut,
    /// Both connections cut for less than the dead interval.
    PartitionShort,
    /// Both connections cut past the dead interval: both become active and
    /// the data plane writes on both sides until the heal.
    SplitBrain,
    /// The standby process restarts with an empty table.
    StandbyRestart,
    /// The active process restarts within the dead interval, table lost.
    ActiveRestartTableLost,
    /// The active process restarts within the dead interval, table kept.
    ActiveRestartTableKept,
    /// The active is down past the dead interval: the standby takes over;
    /// the old active returns (table lost or kept).
    Failover,
    /// A node is paused (links up, nothing read, no timers) past the dead
    /// interval, then resumes with its backlog.
    Pause,
    /// Tables smaller than the key space on both sides.
    TablesFull,
    /// A data-plane burst larger than the journal.
    JournalOverflow,
    /// One byte of a frame flipped on the link.
    CorruptFrame,
    /// The tail of a segment lost on the link.
    TruncatedFrame,
    /// A receiver reading a few hundred bytes per millisecond for a while.
    SlowReceiver,
    /// A configuration change queued on the active.
    ConfigChange,
    /// `hrp sync connection-status` on the active.
    SessionBatch,
    /// `hrp sync connection-status` on the standby (B2): the active adds
    /// only what it lacks (B5), never an older version of its sessions,
    /// never one it removed.
    StandbyBatch,
    /// `hrp sync config` on the active.
    ConfigBatch,
    /// The pair has a pre-shared key.
    WithKey,
    /// The pair has no key.
    WithoutKey,
    /// A third party without the key takes a connection that is not up
    /// (as the node's accept path allows) and claims to be the peer: a
    /// hello with priority 65535 and role active, a forged proof, a
    /// heartbeat, session records, a resync, a configuration change.
    Stranger,
    /// Node 0 preempts: back as standby after a failover, it takes the
    /// role again after its delay and node 1 steps down.
    Preemption,
}

/// Which node a fault hits, resolved when it fires.
#[derive(Clone, Copy, Debug)]
enum Target {
    Active,
    Standby,
}

/// One schedule entry. Its parameters are drawn when the schedule is built,
/// so dropping an entry while shrinking does not change the others.
#[derive(Clone, Debug)]
enum Fault {
    Cut {
        link: usize,
        hold: u64,
    },
    Partition {
        hold: u64,
    },
    Restart {
        target: Target,
        down: u64,
        keep_table: bool,
        seed: u64,
    },
    Pause {
        target: Target,
        dur: u64,
    },
    Burst {
        seed: u64,
        n: u64,
    },
    Corrupt {
        link: usize,
        dir: usize,
        pos: u64,
        xor: u8,
    },
    Truncate {
        link: usize,
        dir: usize,
        keep: u64,
    },
    Slow {
        link: usize,
        dur: u64,
        budget: usize,
    },
    ConfigChange,
    SessionBatch {
        on_standby: bool,
    },
    ConfigBatch {
        items: u64,
    },
    Stranger {
        node: usize,
        link: usize,
        seed: u64,
    },
}

impl Fault {
    fn class(&self, dead_us: u64) -> Class {
        match self {
            Fault::Cut { .. } => Class::Cut,
            Fault::Partition { hold } if *hold > dead_us => Class::SplitBrain,
            Fault::Partition { .. } => Class::PartitionShort,
            Fault::Restart { down, .. } if *down > dead_us => Class::Failover,
            Fault::Restart {
                target: Target::Standby,
                ..
            } => Class::StandbyRestart,
            Fault::Restart {
                keep_table: true, ..
            } => Class::ActiveRestartTableKept,
            Fault::Restart { .. } => Class::ActiveRestartTableLost,
            Fault::Pause { .. } => Class::Pause,
            Fault::Burst { .. } => Class::JournalOverflow,
            Fault::Corrupt { .. } => Class::CorruptFrame,
            Fault::Truncate { .. } => Class::TruncatedFrame,
            Fault::Slow { .. } => Class::SlowReceiver,
            Fault::ConfigChange => Class::ConfigChange,
            Fault::SessionBatch { on_standby: false } => Class::SessionBatch,
            Fault::SessionBatch { on_standby: true } => Class::StandbyBatch,
            Fault::ConfigBatch { .. } => Class::ConfigBatch,
            Fault::Stranger { .. } => Class::Stranger,
        }
    }
}

/// What a seed draws besides its schedule.
#[derive(Clone, Debug)]
struct Params {
    psk: bool,
    journal: usize,
    max_sessions: usize,
    flush: Duration,
    seeds: [u64; 2],
    /// Node 0 preempts after `PREEMPT_DELAY`.
    preempt: bool,
}

const PREEMPT_DELAY: Duration = Duration::from_millis(100);

impl Params {
    /// Half the seeds apply configuration in the driver, a few pieces of
    /// work per step (as the node's configuration thread does), the others
    /// inline. Derived from a seed already drawn: the schedules stay as
    /// they were.
    fn config_in_driver(&self) -> bool {
        self.seeds[0] & 1 == 1
    }
}

/// Hello interval 100 ms, dead after three: 300 ms.
const HELLO: Duration = Duration::from_millis(100);
const DEAD_COUNT: u32 = 3;
const DEAD_US: u64 = 300_000;
/// Distinct keys the data plane touches.
const KEY_SPACE: u64 = 3000;
/// Ports of the sessions a stranger sends (outside the key space).
const STRANGER_PORT: u64 = 60000;
/// The configuration change a stranger sends.
const STRANGER_OP: &str = "stranger op";
/// Steps of traffic with faults (about 2 s of simulated time).
const STEPS: u32 = 2000;

/// Largest simulated time from the heal until the digests are equal and
/// every job finished (docs/RELIABILITY.md, "Simulated"): reconnect and
/// handshake, one dead interval for a node that must notice its peer is back
/// and settle roles, two more for a node whose heal reveals a stale role (a
/// split brain, a paused node), plus 1 ms per 100 entries to resend
/// (bandwidth 256 KiB/ms; the batches are resent whole on a restart).
fn liveness_bound(entries: usize) -> Duration {
    Duration::from_micros(4 * DEAD_US + 200_000 + entries as u64 * 10)
}

fn proto_config(node_id: u64, priority: u16, psk: bool, flush: Duration) -> ProtoConfig {
    ProtoConfig {
        flush_interval: flush,
        node_id,
        priority,
        hello_interval: HELLO,
        dead_count: DEAD_COUNT,
        psk: psk.then(|| b"sim-key".to_vec()),
        batch_records: 64,
        tx_high_water: 16 << 10,
        ..ProtoConfig::default()
    }
}

/// The nodes' settings and tables for the seed's parameters: node 0 has
/// priority 200 (it starts active) and, in some seeds, preempts.
fn sim_config(p: &Params) -> SimConfig {
    SimConfig {
        nodes: [
            ProtoConfig {
                preempt_delay: p.preempt.then_some(PREEMPT_DELAY),
                ..proto_config(1, 200, p.psk, p.flush)
            },
            proto_config(2, 100, p.psk, p.flush),
        ],
        table: TableConfig {
            shards: 16,
            max_sessions: p.max_sessions,
            journal_capacity: p.journal,
        },
        config_in_driver: p.config_in_driver(),
    }
}

/// One run: the simulated pair and what the checks remember of it.
struct Run {
    sim: Sim,
    ck: Checks,
}

/// What the property checks record while a schedule runs, and the data
/// plane's load (an [`Observer`] of the [`Sim`]).
struct Checks {
    p: Params,
    /// Data-plane randomness (light background load).
    load: Rng,
    /// The data plane writes this step (not while establishing or after
    /// the heal).
    writing: bool,
    /// Config changes queued on node 0 while it was active.
    config_sent: Vec<String>,
    /// Classes actually injected (a mangle counts when it hit a segment).
    injected: Vec<Class>,
    restarted: bool,
    ever_active: [bool; 2],
    /// The node ran a batch sync while not active (B2 on the standby).
    standby_batch: [bool; 2],
    truncated: bool,
    unauthenticated: u32,
    /// Per key, the node whose data plane wrote it last and the entry it
    /// left (`None`: removed), for [`check_step_down`].
    last_write: DetMap<SessionKey, (usize, Option<u64>)>,
    /// Per key, when each node's data plane last wrote it.
    written_at: DetMap<SessionKey, [u64; 2]>,
    /// When each node last took the active role.
    active_since: [u64; 2],
    /// The last node restarted with its table lost, and when.
    lost_table: Option<(usize, u64)>,
    /// Restarted standbys left holding a fragment without saying so, in a
    /// build with no "peer incomplete" state (see [`check_b4_fragment`]).
    unsaid_fragments: u32,
    trace_port: Option<u16>,
    /// Per-key order: the data plane's write stamps and what each node's
    /// table showed of its peer's.
    order: OrderCheck,
    /// The first time an active node's table did not hold what its own
    /// data plane last wrote (see [`Checks::check_authority`]).
    authority: Option<String>,
}

/// The node a targeted fault hits: the (first) active, or the other.
fn resolve(sim: &Sim, target: Target) -> usize {
    match target {
        Target::Active => sim.active(),
        Target::Standby => 1 - sim.active(),
    }
}

impl Run {
    fn new(seed: u64, p: &Params) -> Self {
        let sim = Sim::new(sim_config(p), seed, p.seeds);
        let mut injected = vec![if p.psk {
            Class::WithKey
        } else {
            Class::WithoutKey
        }];
        if p.max_sessions < KEY_SPACE as usize {
            injected.push(Class::TablesFull);
        }
        let ck = Checks {
            p: p.clone(),
            load: Rng::new(seed ^ 0x6c6f_6164_0000_0000),
            writing: false,
            config_sent: Vec::new(),
            injected,
            restarted: false,
            ever_active: [false, false],
            standby_batch: [false, false],
            truncated: false,
            unauthenticated: 0,
            last_write: DetMap::default(),
            written_at: DetMap::default(),
            active_since: [0, 0],
            lost_table: None,
            unsaid_fragments: 0,
            trace_port: std::env::var("HOTSYNC_SIM_TRACE_PORT")
                .ok()
                .map(|p| p.parse().expect("HOTSYNC_SIM_TRACE_PORT: a port")),
            order: OrderCheck::default(),
            authority: None,
        };
        Self { sim, ck }
    }

    /// One step of `dt` µs, the data plane writing or not.
    fn step(&mut self, dt: u64, data_plane: bool) {
        self.ck.writing = data_plane;
        self.sim.step(dt, &mut self.ck);
    }

    fn inject(&mut self, f: &Fault) {
        let class = f.class(DEAD_US);
        let (sim, ck) = (&mut self.sim, &mut self.ck);
        sim.log.push(format!("t={} {f:?}", sim.t));
        let now = sim.now();
        match *f {
            Fault::Cut { link, hold } => sim.cut(ConnKind::ALL[link], hold),
            Fault::Partition { hold } => sim.partition(hold),
            Fault::Restart {
                target,
                down,
                keep_table,
                seed,
            } => {
                if !sim.crash(resolve(sim, target), down, keep_table, seed) {
                    return;
                }
                ck.restarted = true;
            }
            Fault::Pause { target, dur } => sim.pause(resolve(sim, target), dur),
            Fault::Burst { seed, n } => {
                if !ck.burst(sim, seed, n) {
                    return;
                }
            }
            Fault::Corrupt {
                link,
                dir,
                pos,
                xor,
            } => {
                sim.mangle(ConnKind::ALL[link], dir, Mangle::Flip { pos, xor });
                return; // counted when it hits a segment
            }
            Fault::Truncate { link, dir, keep } => {
                sim.mangle(ConnKind::ALL[link], dir, Mangle::Truncate { keep });
                return;
            }
            Fault::Slow { link, dur, budget } => sim.slow(ConnKind::ALL[link], dur, budget),
            Fault::ConfigChange => {
                let ni = sim.active();
                let text = format!("op {}", ck.config_sent.len());
                if ni == 0 && sim.alive(0) && sim.nodes[0].peer.queue_config_op(0, "", &text) {
                    ck.config_sent.push(text);
                }
            }
            Fault::SessionBatch { on_standby } => {
                let active = sim.active();
                let ni = if on_standby { 1 - active } else { active };
                if !sim.alive(ni) || sim.nodes[ni].peer.start_session_sync(now).is_err() {
                    return;
                }
                if sim.nodes[ni].peer.role() != Role::Active {
                    ck.standby_batch[ni] = true;
                }
            }
            Fault::Stranger { node, link, seed } => {
                let (kind, claims) = (ConnKind::ALL[link], stranger_sessions(seed));
                if !ck.p.psk || !sim.stranger(node, kind, seed, &claims, STRANGER_OP) {
                    return;
                }
            }
            Fault::ConfigBatch { items } => {
                let ni = sim.active();
                let items: hotsync_proto::ConfigItems = (0..items)
                    .map(|i| (String::new(), format!("item {i}")))
                    .collect();
                if !sim.alive(ni) || sim.nodes[ni].peer.start_config_sync(items, now).is_err() {
                    return;
                }
            }
        }
        ck.injected.push(class);
    }
}

/// What a stranger claims to hold: three sessions outside the key space
/// ([`check_stranger`] looks for them).
fn stranger_sessions(seed: u64) -> Vec<(SessionKey, SessionEntry)> {
    let mut g = SessionGenerator::new(seed, 0, false, 1000);
    (0..3)
        .map(|i| {
            let (k, e) = g.next_session();
            (small_key(&k, STRANGER_PORT + i), e)
        })
        .collect()
}

impl Checks {
    /// A data-plane burst of `n` writes on the active node, if it runs.
    fn burst(&mut self, sim: &Sim, seed: u64, n: u64) -> bool {
        let mut g = SessionGenerator::new(seed, 0, false, 1000);
        let ni = sim.active();
        if !sim.alive(ni) {
            return false;
        }
        for i in 0..n {
            let (k, mut e) = g.next_session();
            e.packets[1] = self.order.stamp(ni);
            let k = small_key(&k, (seed + i) % KEY_SPACE);
            if sim.nodes[ni].table.upsert(&k, &e).is_ok() {
                self.wrote(sim, ni, &k);
            }
        }
        true
    }

    /// The light background load: whichever node is active writes (both,
    /// in a split brain); a paused or crashed node writes nothing.
    fn load(&mut self, sim: &Sim) {
        for ni in 0..2 {
            if !sim.alive(ni) || sim.nodes[ni].peer.role() != Role::Active {
                continue;
            }
            let mut g = SessionGenerator::new(self.load.next(), 0, false, 1000);
            for _ in 0..self.load.below(20) {
                let (k, mut e) = g.next_session();
                // IPv4 only: the keys are rewritten into a small IPv4 space
                // (an IPv6 entry's NAT address would be refused under an IPv4
                // key). A small key space so updates and removals hit
                // existing keys.
                let k = small_key(&k, self.load.below(KEY_SPACE));
                e.flags = if self.load.chance(100) { 0 } else { e.flags };
                let stamp = self.order.stamp(ni);
                e.packets[1] = stamp;
                let table = &sim.nodes[ni].table;
                let wrote = match self.load.below(10) {
                    0..=5 => table.upsert(&k, &e).is_ok(),
                    6..=7 => table.update(&k, |e| {
                        e.packets[0] += 1;
                        e.packets[1] = stamp;
                    }),
                    _ => table.remove(&k).is_some(),
                };
                if wrote {
                    self.wrote(sim, ni, &k);
                }
            }
        }
    }

    /// Node `ni`'s data plane wrote `k`.
    fn wrote(&mut self, sim: &Sim, ni: usize, k: &SessionKey) {
        let entry = sim.nodes[ni].table.get(k);
        if entry.is_some_and(|e| !e.is_backup()) {
            // Not backup-capable: never replicated, no claim about it.
            self.last_write.remove(k);
            return;
        }
        let now = entry.map(|e| entry_digest(k, &e));
        self.last_write.insert(*k, (ni, now));
        self.written_at.entry(*k).or_default()[ni] = sim.t;
    }

    /// The active node's copy is authoritative, at every moment and not
    /// only once the run settles: while node `ni` is active, each session
    /// its own data plane wrote last since it took the role is in its
    /// table as written. Nothing the peer sends replaces it: not the last
    /// changes of a node that stepped down (applied only where the winner
    /// holds no version), and not a chunk of a walk that node was sending
    /// when it stepped down (cancelled there). A removal is not checked:
    /// a loser's last change of a session the winner removed is added
    /// (docs/RELIABILITY.md §5).
    fn check_authority(&mut self, sim: &Sim, ni: usize) {
        if self.authority.is_some() || !sim.alive(ni) || sim.nodes[ni].peer.role() != Role::Active {
            return;
        }
        let table = &sim.nodes[ni].table;
        for (k, &(writer, digest)) in &self.last_write {
            let Some(d) = digest else { continue };
            if writer != ni || self.written_at[k][ni] < self.active_since[ni] {
                continue;
            }
            let have = table.get(k).map(|e| entry_digest(k, &e));
            if have != Some(d) {
                self.authority = Some(format!(
                    "t={} node{ni} (active since t={}) holds {have:?} for {k:?}, its own data plane wrote {d} at t={}",
                    sim.t, self.active_since[ni], self.written_at[k][ni]
                ));
                return;
            }
        }
    }

    /// `HOTSYNC_SIM_TRACE_PORT=P`: prints every change of the session with
    /// source port P (zone 0) on either node, for debugging a failure.
    fn trace(&self, sim: &Sim, what: impl FnOnce() -> String) {
        let Some(port) = self.trace_port else {
            return;
        };
        let what = what();
        let mut k = None;
        for key in self.last_write.keys() {
            if key.src_port == port && key.ct_zone == 0 {
                k = Some(*key);
            }
        }
        let Some(k) = k else { return };
        let d = |n: &Node| n.table.get(&k).map(|e| entry_digest(&k, &e) % 1000);
        let now = (d(&sim.nodes[0]), d(&sim.nodes[1]));
        thread_local!(static LAST: std::cell::Cell<Option<(Option<u64>, Option<u64>)>> = const { std::cell::Cell::new(None) });
        if LAST.with(|l| l.replace(Some(now))) == Some(now) {
            return;
        }
        eprintln!(
            "t={} {what} {:?} roles {} {}",
            sim.t,
            now,
            sim.nodes[0].peer.role(),
            sim.nodes[1].peer.role()
        );
    }
}

impl Observer for Checks {
    fn restarted(&mut self, sim: &Sim, ni: usize, table_kept: bool) {
        if !table_kept {
            self.lost_table = Some((ni, sim.t));
            self.order.forget(ni);
        }
    }

    fn delivered(&mut self, sim: &Sim, kind: ConnKind, to: usize) {
        let li = usize::from(kind == ConnKind::Config);
        self.trace(sim, || format!("delivered link{li} to node{to}"));
    }

    fn data_plane(&mut self, sim: &mut Sim) {
        if self.writing {
            self.load(sim);
        }
        self.trace(sim, || "data plane".into());
    }

    fn event(&mut self, sim: &Sim, ni: usize, ev: &Event) {
        match ev {
            Event::Established {
                authenticated: false,
                ..
            } if self.p.psk => self.unauthenticated += 1,
            Event::RoleChanged { to, reason, .. } => {
                if *to == Role::Active {
                    self.active_since[ni] = sim.t;
                }
                if reason.contains("preemption") {
                    self.injected.push(Class::Preemption);
                }
            }
            _ => {}
        }
    }

    fn polled(&mut self, sim: &Sim, ni: usize) {
        if sim.nodes[ni].peer.role() == Role::Active {
            self.ever_active[ni] = true;
        }
    }

    fn mangled(&mut self, m: Mangle) {
        match m {
            Mangle::Flip { .. } => self.injected.push(Class::CorruptFrame),
            Mangle::Truncate { .. } => {
                self.truncated = true;
                self.injected.push(Class::TruncatedFrame);
            }
        }
    }

    /// Per-key order, on a node whose table only its peer changes.
    fn stepped(&mut self, sim: &Sim) {
        self.order.steps += 1;
        if self.order.steps % ORDER_CHECK_EVERY == 0 {
            for ni in 0..2 {
                if sim.alive(ni) && !self.ever_active[ni] {
                    self.order.check(ni, &sim.nodes[ni].table, sim.t);
                }
                self.check_authority(sim, ni);
            }
        }
    }
}

/// Steps between two per-key order checks (a stale record stays until the
/// key's next write, a few hundred steps: sampling catches it).
const ORDER_CHECK_EVERY: u64 = 8;

/// Per-key order (docs/PROTOCOL.md): a record the peer encoded before a
/// newer change of the same key never replaces that change, and a session
/// deleted never comes back. Every data-plane write stamps its entry
/// (`packets[1]`: a write counter over the whole run, times two, plus the
/// writing node). A node that was never active has a table only its peer
/// changes; there the peer's stamp of each key never goes back, and once
/// the key vanished (deleted) only a newer write may bring it back.
#[derive(Default)]
struct OrderCheck {
    writes: u64,
    steps: u64,
    /// Per node, per key (`src_port`): the highest peer stamp its table
    /// showed, and whether the key vanished since.
    seen: [Vec<(u64, bool)>; 2],
    present: Vec<bool>,
    /// The first violation.
    violation: Option<String>,
}

impl OrderCheck {
    /// A fresh stamp for a write on node `ni`.
    fn stamp(&mut self, ni: usize) -> u64 {
        self.writes += 1;
        self.writes << 1 | ni as u64
    }

    /// Node `ni` restarted with an empty table.
    fn forget(&mut self, ni: usize) {
        self.seen[ni].clear();
    }

    fn check(&mut self, ni: usize, table: &SessionTable, t: u64) {
        let peer = (1 - ni) as u64;
        let seen = &mut self.seen[ni];
        seen.resize(KEY_SPACE as usize, (0, false));
        self.present.clear();
        self.present.resize(KEY_SPACE as usize, false);
        for shard in 0..table.shard_count() {
            table.for_each_in_shard(shard, |k, e| {
                let slot = k.src_port as usize;
                let stamp = e.packets[1];
                if slot >= seen.len() || stamp & 1 != peer {
                    return;
                }
                self.present[slot] = true;
                let (floor, vanished) = seen[slot];
                if (stamp < floor || (vanished && stamp == floor)) && self.violation.is_none() {
                    self.violation = Some(format!(
                        "t={t} node{ni} key {slot}: peer write #{} replaced #{}{}",
                        stamp >> 1,
                        floor >> 1,
                        if vanished {
                            " after it was deleted"
                        } else {
                            ""
                        }
                    ));
                }
                seen[slot] = (stamp.max(floor), false);
            });
        }
        for (slot, s) in seen.iter_mut().enumerate() {
            if !self.present[slot] && s.0 != 0 {
                s.1 = true;
            }
        }
    }
}

fn small_key(k: &SessionKey, slot: u64) -> SessionKey {
    let mut k = *k;
    k.src_port = slot as u16;
    k.dst_port = 80;
    k.src_addr = [0; 16];
    k.src_addr[0] = 10;
    k.dst_addr = [0; 16];
    k.dst_addr[..4].copy_from_slice(&[192, 0, 2, 1]);
    k.family = 4;
    k.protocol = 6;
    k
}

/// Fault classes kept out of the schedules unless `HOTSYNC_SIM_ALL=1`
/// because they expose a protocol bug not fixed yet (see the report in
/// docs/RELIABILITY.md §7).
fn held_back() -> &'static [Class] {
    if std::env::var("HOTSYNC_SIM_ALL").is_ok() {
        &[]
    } else {
        HELD_BACK
    }
}
/// Classes whose schedules fail today, kept out of the fixed set until
/// fixed (docs/RELIABILITY.md §7). None: split brain, pause and truncated
/// frames, held back before, are fixed (their schedules are in
/// `REGRESSIONS`).
const HELD_BACK: &[Class] = &[];

/// The seed's parameters and schedule: (step, entry), sorted by step.
fn plan(seed: u64) -> (Params, Vec<(u32, Fault)>) {
    let mut rng = Rng::new(seed);
    let psk = rng.chance(500);
    // Small journals in some schedules, so bursts overflow them.
    let journal = [4, 16, 64, 1024][rng.below(4) as usize];
    // Tables smaller than the key space in some schedules.
    let max_sessions = if rng.chance(150) { 1024 } else { 8192 };
    // Half the schedules coalesce changes for a few ms before sending (the
    // open batch then spans drain passes).
    let flush = Duration::from_micros([0, 0, 800, 3000][rng.below(4) as usize]);
    let p = Params {
        psk,
        journal,
        max_sessions,
        flush,
        seeds: [rng.next(), rng.next()],
        preempt: false,
    };
    let mut sched = Vec::new();
    let faults = 1 + rng.below(6);
    let target = |rng: &mut Rng| {
        if rng.chance(500) {
            Target::Active
        } else {
            Target::Standby
        }
    };
    for _ in 0..faults {
        let step = rng.below(STEPS as u64) as u32;
        let f = match rng.below(12) {
            0 | 1 => Fault::Cut {
                link: rng.below(2) as usize,
                hold: rng.below(50_000),
            },
            2 => Fault::Partition {
                hold: if rng.chance(500) {
                    rng.below(DEAD_US / 2)
                } else {
                    DEAD_US + rng.below(500_000)
                },
            },
            3 => Fault::Restart {
                target: target(&mut rng),
                down: if rng.chance(300) {
                    DEAD_US + 50_000 + rng.below(400_000)
                } else {
                    5_000 + rng.below(DEAD_US / 3)
                },
                keep_table: rng.chance(500),
                seed: rng.next(),
            },
            4 => Fault::Pause {
                target: target(&mut rng),
                dur: DEAD_US + 50_000 + rng.below(400_000),
            },
            5 | 6 => Fault::Corrupt {
                link: rng.below(2) as usize,
                dir: rng.below(2) as usize,
                pos: rng.next(),
                xor: 1 + rng.below(255) as u8,
            },
            7 => Fault::Truncate {
                link: rng.below(2) as usize,
                dir: rng.below(2) as usize,
                keep: rng.next(),
            },
            8 => Fault::Slow {
                link: rng.below(2) as usize,
                dur: 50_000 + rng.below(300_000),
                budget: 64 + rng.below(1024) as usize,
            },
            // From the step already drawn, so the schedules of every
            // other seed (and the regression seeds) stay as they were.
            9 => Fault::SessionBatch {
                on_standby: step % 3 == 0,
            },
            10 => Fault::ConfigBatch {
                items: 1 + rng.below(50),
            },
            _ => Fault::Burst {
                seed: rng.next(),
                n: 100 + rng.below(400),
            },
        };
        sched.push((step, f));
    }
    // Operations: configuration changes and bursts through the run.
    for _ in 0..rng.below(40) {
        sched.push((rng.below(STEPS as u64) as u32, Fault::ConfigChange));
    }
    for _ in 0..rng.below(6) {
        sched.push((
            rng.below(STEPS as u64) as u32,
            Fault::Burst {
                seed: rng.next(),
                n: 300,
            },
        ));
    }
    sched.sort_by_key(|(s, _)| *s);
    // Drawn after the rest (and not sorted in), so the replay lines of
    // older findings keep their indices; `run_schedule` sorts by step.
    let mut p = p;
    p.preempt = rng.chance(250);
    if p.psk {
        for _ in 0..rng.below(3) {
            sched.push((
                rng.below(STEPS as u64) as u32,
                Fault::Stranger {
                    node: rng.below(2) as usize,
                    link: rng.below(2) as usize,
                    seed: rng.next(),
                },
            ));
        }
    }
    (p, sched)
}

/// What one schedule did, for the coverage test.
struct Outcome {
    injected: Vec<Class>,
    unsaid_fragments: u32,
    /// See [`fingerprint`].
    fingerprint: u64,
}

/// A digest of everything a run did: the clock at its end, the bytes
/// delivered per link and direction, the log (each fault with the time it
/// fired, every role change and close), the classes injected, both tables
/// and both nodes' counters. `HOTSYNC_SIM_FINGERPRINT=1` prints it per
/// seed: a change to the harness that must not change any run (a
/// refactoring) is checked by comparing these lines before and after.
fn fingerprint(r: &Run) -> u64 {
    use std::hash::{Hash, Hasher};
    let text = format!(
        "{} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
        r.sim.t,
        r.sim.delivered,
        r.sim.log,
        r.ck.injected,
        r.sim.nodes[0].table.digest(),
        r.sim.nodes[1].table.digest(),
        r.sim.nodes[0].peer.stats(),
        r.sim.nodes[1].peer.stats(),
    );
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

fn run_schedule(seed: u64, p: &Params, sched: &[(u32, Fault)]) -> Result<Outcome, String> {
    let mut sched = sched.to_vec();
    sched.sort_by_key(|(s, _)| *s);
    let mut r = Run::new(seed, p);
    r.establish()?;
    r.run_faults(&sched);
    // Heal: crashed nodes back, pauses and throttles over, links allowed up,
    // traffic stopped.
    r.sim.heal();
    let healed = r.sim.t;
    let ai = r.settle_roles()?;
    check_b4_fragment(&mut r, ai)?;
    r.refill(ai)?;
    let entries = r.sim.nodes[ai].table.len();
    let mut bound = liveness_bound(entries).as_micros() as u64;
    if p.preempt {
        bound += PREEMPT_DELAY.as_micros() as u64;
    }
    // Settled: quiet and one relationship with one active. Quiet alone is
    // not enough: a paused active resumed at the heal is still active
    // until its peer's dead timer fires, and the peer's takeover closes the
    // link; both are active, the tables equal and nothing in flight until
    // the redial, where the priority rule decides (seeds
    // 523396013147223482, 4043895032223201649). A connection a corrupted
    // frame dropped at the heal comes back the same way (seed
    // 9687282105382455245).
    while !(r.quiet() && r.one_active()) && r.sim.t - healed <= bound {
        r.step(1000, false);
    }
    let ai = r.sim.active();
    let after = |r: &Run| {
        format!(
            "{} ms after heal (bound {} ms)",
            (r.sim.t - healed) / 1000,
            bound / 1000
        )
    };
    r.check_converged(ai, &after(&r))?;
    if !r.ck.restarted {
        check_step_down(&r, ai)?;
    }
    check_stranger(&r)?;
    if r.ck.unauthenticated > 0 {
        return Err(format!(
            "{} relationships established without authentication despite the key",
            r.ck.unauthenticated
        ));
    }
    for ni in 0..2 {
        r.check_counters(ni)?;
    }
    if std::env::var("HOTSYNC_SIM_VERBOSE").is_ok() {
        eprintln!(
            "seed {seed}: entries {} heal->quiet {} ms, injected {:?}",
            r.sim.nodes[ai].table.digest().entries,
            (r.sim.t - healed) / 1000,
            r.ck.injected
        );
    }
    r.check_config_order()?;
    if let Some(v) = &r.ck.order.violation {
        return Err(format!("per-key order: {v}\n  {}", r.tail()));
    }
    if let Some(v) = &r.ck.authority {
        return Err(format!("active authority: {v}\n  {}", r.tail()));
    }
    Ok(Outcome {
        fingerprint: fingerprint(&r),
        unsaid_fragments: r.ck.unsaid_fragments,
        injected: r.ck.injected,
    })
}

impl Run {
    /// Steps until both nodes are established, so B4 (nothing before
    /// establishment) does not apply to what the schedule does.
    fn establish(&mut self) -> Result<(), String> {
        for _ in 0..200 {
            self.step(1000, false);
            if self.sim.nodes[0].peer.is_established() && self.sim.nodes[1].peer.is_established() {
                break;
            }
        }
        if !self.sim.nodes[0].peer.is_established() {
            return Err(format!("never established: {:?}", self.sim.log));
        }
        Ok(())
    }

    /// [`STEPS`] steps of traffic, each schedule entry injected at its step.
    fn run_faults(&mut self, sched: &[(u32, Fault)]) {
        let mut next = 0;
        for step in 0..STEPS {
            while next < sched.len() && sched[next].0 <= step {
                self.inject(&sched[next].1);
                next += 1;
            }
            let dt = 500 + self.sim.net.below(1000);
            self.step(dt, true);
        }
    }

    /// One active, both established (with preemption, node 0 active: it
    /// takes the role back).
    fn one_active(&self) -> bool {
        let nodes = &self.sim.nodes;
        nodes
            .iter()
            .filter(|n| n.peer.role() == Role::Active)
            .count()
            == 1
            && nodes.iter().all(|n| n.peer.is_established())
            && (!self.ck.p.preempt || nodes[0].peer.role() == Role::Active)
    }

    /// Steps after the heal until there is one active; returns it.
    fn settle_roles(&mut self) -> Result<usize, String> {
        for _ in 0..4000 {
            self.step(1000, false);
            if self.one_active() {
                break;
            }
        }
        if !self.one_active() {
            return Err(format!(
                "no single active after the heal: {} / {}, log tail {:?}",
                self.sim.nodes[0].peer.role(),
                self.sim.nodes[1].peer.role(),
                self.sim.log.iter().rev().take(12).collect::<Vec<_>>()
            ));
        }
        Ok(self.sim.active())
    }

    /// A restarted node lost what it had (B4): the operator's batch sync
    /// refills it, as in `restarts.rs`. A batch already running does it
    /// (it starts over for a fresh peer).
    fn refill(&mut self, ai: usize) -> Result<(), String> {
        let running = self.sim.nodes[ai]
            .peer
            .jobs()
            .iter()
            .any(|j| j.kind == JobKind::ConnectionStatus && j.finished.is_none());
        if self.ck.restarted && !running {
            let now = self.sim.now();
            self.sim.nodes[ai]
                .peer
                .start_session_sync(now)
                .map_err(|e| format!("batch sync refused: {e}"))?;
        }
        Ok(())
    }

    /// Converged: the digests are equal; after a restart the batch sync is
    /// additive (B5), so the standby may keep entries the restarted process
    /// lost or deleted unseen, and every active entry must be on the
    /// standby, equal. A restart forms a new relationship (B4), so deletions
    /// of the outage never reach a restarted node that kept its table: when
    /// those stale entries fill it, an entry it refused is missing, counted
    /// (`apply_table_full`), not silently.
    fn converged(&self) -> bool {
        let ai = self.sim.active();
        let (a, b) = (&self.sim.nodes[ai].table, &self.sim.nodes[1 - ai].table);
        if !self.ck.restarted {
            return a.digest() == b.digest();
        }
        let (mut differ, mut missing) = (false, 0);
        for shard in 0..16 {
            a.for_each_in_shard(shard, |k, e| {
                if e.is_backup() {
                    match b.get(k) {
                        None => missing += 1,
                        Some(f) => differ |= entry_digest(k, &f) != entry_digest(k, e),
                    }
                }
            });
        }
        let refused = self.sim.nodes[1 - ai].peer.stats().apply_table_full;
        !differ && (missing == 0 || missing <= refused)
    }

    /// Converged, every job finished, nothing queued or in flight.
    fn quiet(&self) -> bool {
        let nodes = &self.sim.nodes;
        nodes
            .iter()
            .all(|n| n.peer.jobs().iter().all(|j| j.finished.is_some()))
            && self.converged()
            && nodes.iter().all(|n| {
                !n.peer.wants_transmit(ConnKind::Session)
                    && !n.peer.wants_transmit(ConnKind::Config)
                    && n.peer.state().config_queue == 0
                    && n.peer.state().config_backlog == 0
            })
            && self.sim.links_idle()
    }

    /// The last lines of the log, for a failure report.
    fn tail(&self) -> String {
        let log = &self.sim.log;
        log[log.len().saturating_sub(16)..].join("\n  ")
    }

    /// Liveness after the heal: converged, every job finished, node `ai`
    /// active and the other standby.
    fn check_converged(&self, ai: usize, after: &str) -> Result<(), String> {
        let (a, b) = (&self.sim.nodes[ai], &self.sim.nodes[1 - ai]);
        if !self.converged() {
            let (da, db) = (a.table.digest(), b.table.digest());
            return Err(format!(
                "not converged (restarted: {}) {after}: active node{ai} {} entries, standby {} entries, shards {:?}\nactive stats {:?}\nlog tail:\n  {}",
                self.ck.restarted,
                da.entries,
                db.entries,
                da.mismatches(&db),
                a.peer.state().stats,
                self.tail()
            ));
        }
        for (i, n) in self.sim.nodes.iter().enumerate() {
            if let Some(j) = n.peer.jobs().iter().find(|j| j.finished.is_none()) {
                return Err(format!(
                    "node{i}: job {} ({}) not finished {after}",
                    j.id,
                    j.kind.name(),
                ));
            }
        }
        let preempted = !self.ck.p.preempt || ai == 0;
        if !self.one_active()
            || a.peer.role() != Role::Active
            || b.peer.role() != Role::Standby
            || !preempted
        {
            return Err(format!(
                "roles after heal: node{ai} {} / node{} {}, established {} / {} (node0 preempts: {}) {after}\n  {}",
                a.peer.role(),
                1 - ai,
                b.peer.role(),
                a.peer.is_established(),
                b.peer.is_established(),
                self.ck.p.preempt,
                self.tail()
            ));
        }
        Ok(())
    }

    /// Node `ni`'s counters: nothing sent by a node never active, the
    /// resync counters balance, no sequence gap (unless a segment was
    /// truncated: the gap is then the detection).
    fn check_counters(&self, ni: usize) -> Result<(), String> {
        let st = self.sim.nodes[ni].peer.state();
        let s = &st.stats;
        // A standby's own batch sync (B2) sends records; nothing else of a
        // node never active does.
        let batch_records = self.ck.standby_batch[ni] && s.deletes_tx == 0;
        if !self.ck.ever_active[ni] && !batch_records && (s.records_tx != 0 || s.deletes_tx != 0) {
            return Err(format!(
                "node{ni} was never active but sent {} records and {} deletions",
                s.records_tx, s.deletes_tx
            ));
        }
        // Every shard marked uncertain was resynced, aborted (and marked
        // again) or handed to the peer: the counters account for every fault.
        if s.resync_balance() != st.uncertain_shards as i64 {
            return Err(format!(
                "node{ni}: resync counters do not balance: overflow {} + disconnect {} + request {} != resynced {} + aborted {} + requested {} + pending {}",
                s.resync_overflow,
                s.resync_disconnect,
                s.resync_request,
                s.shards_resynced,
                s.resync_aborted,
                s.resync_requested,
                st.uncertain_shards
            ));
        }
        if let Some(g) = s.errors.get("sequence_gap").filter(|_| !self.ck.truncated) {
            return Err(format!(
                "node{ni}: {g} sequence gaps: a frame was lost or applied twice"
            ));
        }
        Ok(())
    }

    /// Configuration changes: every change replayed, in order (a change may
    /// be replayed twice after a reconnect; replays are idempotent). Only
    /// when node 0 held the role throughout and nothing restarted.
    fn check_config_order(&self) -> Result<(), String> {
        if self.ck.restarted || self.ck.ever_active[1] {
            return Ok(());
        }
        let applied = self.sim.nodes[1].changes_applied();
        let mut last = BTreeMap::new();
        for (i, op) in applied.iter().enumerate() {
            last.insert(op.clone(), i);
        }
        let mut order: Vec<_> = last.into_iter().collect();
        order.sort_by_key(|(_, i)| *i);
        let order: Vec<String> = order.into_iter().map(|(op, _)| op).collect();
        if order != self.ck.config_sent {
            return Err(format!(
                "config changes: sent {} applied (distinct, by last replay) {} - out of order or missing\nlog tail:\n  {}",
                self.ck.config_sent.len(),
                order.len(),
                self.tail()
            ));
        }
        Ok(())
    }
}

/// Nothing a stranger sent was applied: none of its sessions in either
/// table, none of its configuration changes replayed.
fn check_stranger(r: &Run) -> Result<(), String> {
    for (i, n) in r.sim.nodes.iter().enumerate() {
        let mut found = 0;
        for shard in 0..n.table.shard_count() {
            n.table.for_each_in_shard(shard, |k, _| {
                found += usize::from(u64::from(k.src_port) >= STRANGER_PORT);
            });
        }
        if found > 0 {
            return Err(format!("node{i} holds {found} sessions a stranger sent"));
        }
        if n.changes_applied().iter().any(|op| op == STRANGER_OP) {
            return Err(format!("node{i} applied a stranger's configuration change"));
        }
    }
    Ok(())
}

/// B4/B5: a restarted standby (its table lost) that holds a fragment of the
/// active's sessions at the heal, before any refill, must not hold it
/// without saying so: a batch sync running for it on the active, or the
/// "peer incomplete" state (issue #14) on either node. A fragment: it
/// holds something, and lacks a session of the active that nobody wrote
/// since it restarted (incremental sync can never bring that one).
///
/// The incomplete state is looked up by name in `PeerState`'s debug output
/// (`peer_unsynced`, `peer_incomplete`) so this check works before and
/// after that field lands; where the build has no such field, an unsaid
/// fragment is counted (`Sim::unsaid_fragments`, printed) rather than
/// failed.
fn check_b4_fragment(r: &mut Run, ai: usize) -> Result<(), String> {
    let Some((ni, at)) = r.ck.lost_table else {
        return Ok(());
    };
    if ni != 1 - ai {
        return Ok(());
    }
    let (a, b) = (&r.sim.nodes[ai], &r.sim.nodes[ni]);
    if b.table.is_empty() {
        return Ok(());
    }
    let mut missing = 0;
    for shard in 0..a.table.shard_count() {
        a.table.for_each_in_shard(shard, |k, e| {
            let old =
                r.ck.written_at
                    .get(k)
                    .is_none_or(|w| w[0] < at && w[1] < at);
            missing += usize::from(e.is_backup() && old && !b.table.contains(k));
        });
    }
    if missing == 0 {
        return Ok(());
    }
    let batch = a
        .peer
        .jobs()
        .iter()
        .any(|j| j.kind == JobKind::ConnectionStatus && j.finished.is_none());
    let flags = [says_peer_incomplete(&a.peer), says_peer_incomplete(&b.peer)];
    if batch || flags.contains(&Some(true)) {
        return Ok(());
    }
    if flags.contains(&Some(false)) {
        return Err(format!(
            "B4: restarted standby node{ni} holds {} sessions, lacks {missing} old ones of the active, and neither node says the peer is incomplete",
            b.table.len()
        ));
    }
    r.ck.unsaid_fragments += 1;
    Ok(())
}

/// The "peer incomplete" state, if this build's `PeerState` has it.
fn says_peer_incomplete(peer: &Peer) -> Option<bool> {
    let s = format!("{:?}", peer.state());
    let at = ["peer_unsynced", "peer_incomplete"]
        .iter()
        .find_map(|f| s.find(&format!("{f}: ")).map(|i| i + f.len() + 2))?;
    let v = &s[at..];
    if v.starts_with("true") || v.starts_with("false") {
        return Some(v.starts_with("true"));
    }
    let end = v.find('}')?;
    Some(v[..end].contains("true"))
}

/// The semantics of two nodes that both held the active role (split brain,
/// paused active, docs/RELIABILITY.md §5), for a schedule without restarts:
/// - the node active at the end is authoritative: every session its own
///   data plane wrote last is there as it wrote it;
/// - nothing the other node wrote is lost silently: a session its data
///   plane created or changed last is on the active node (in some
///   version), unless the active node changed it too while both were
///   active (its copy wins), the step-down counted shards lost or a full
///   table refused records.
fn check_step_down(r: &Run, ai: usize) -> Result<(), String> {
    let (a, b) = (&r.sim.nodes[ai], &r.sim.nodes[1 - ai]);
    let loser_lost = b.peer.stats().step_down_lost_shards > 0
        || a.peer.stats().apply_table_full > 0
        || b.peer.stats().apply_table_full > 0;
    for (k, &(writer, digest)) in &r.ck.last_write {
        let have = a.table.get(k).map(|e| entry_digest(k, &e));
        if writer == ai {
            if let Some(d) = digest {
                if have != Some(d) {
                    return Err(format!(
                        "node{ai} (active) lost its own last write of {k:?}: {have:?}, wrote {d}\nactive {:?}\nother {:?}\n  {}",
                        a.peer.stats(),
                        b.peer.stats(),
                        r.sim.log.join("\n  ")
                    ));
                }
            }
        } else if digest.is_some()
            && have.is_none()
            && !loser_lost
            && r.ck.written_at[k][ai] < r.ck.active_since[1 - ai]
        {
            return Err(format!(
                "node{} wrote {k:?} last (while active) and it is not on the active node{ai}, with no loss counted (step_down_lost_shards 0)\nactive {:?}\nother {:?}\n  {}",
                1 - ai,
                a.peer.stats(),
                b.peer.stats(),
                r.sim.log.join("\n  ")
            ));
        }
    }
    Ok(())
}

/// Drops schedule entries one at a time while the seed keeps failing.
/// Returns the indices kept and the last failure.
fn shrink(seed: u64, p: &Params, sched: &[(u32, Fault)], mut err: String) -> (Vec<usize>, String) {
    let mut keep: Vec<usize> = (0..sched.len()).collect();
    let mut i = 0;
    while i < keep.len() {
        let mut trial = keep.clone();
        trial.remove(i);
        let s: Vec<_> = trial.iter().map(|&j| sched[j].clone()).collect();
        match run_schedule(seed, p, &s) {
            Err(e) => {
                keep = trial;
                err = e;
            }
            Ok(_) => i += 1,
        }
    }
    (keep, err)
}

/// Runs one seed (shrinking it on failure); the error is the report.
/// Entries of held-back classes are skipped; `HOTSYNC_SIM_KEEP` indices
/// refer to the whole schedule, so a replay line stays valid whatever is
/// held back.
fn run_seed(seed: u64, keep: Option<&[usize]>) -> Result<Outcome, String> {
    let (p, all) = plan(seed);
    let env_keep: Option<Vec<usize>> = std::env::var("HOTSYNC_SIM_KEEP").ok().map(|k| {
        k.split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("HOTSYNC_SIM_KEEP: indices"))
            .collect()
    });
    if let Some(keep) = env_keep.as_deref().or(keep) {
        let sched: Vec<_> = keep.iter().map(|&i| all[i].clone()).collect();
        return run_schedule(seed, &p, &sched).map_err(|e| {
            format!(
                "seed {seed} FAILED (schedule entries {keep:?} kept)\n  replay: HOTSYNC_SIM_SEED={seed} HOTSYNC_SIM_KEEP={} cargo test -p hotsync-proto --test simulator\n  {e}",
                keep.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
            )
        });
    }
    let held = held_back();
    let index: Vec<usize> = (0..all.len())
        .filter(|&i| !held.contains(&all[i].1.class(DEAD_US)))
        .collect();
    let sched: Vec<_> = index.iter().map(|&i| all[i].clone()).collect();
    let err = match run_schedule(seed, &p, &sched) {
        Ok(o) => return Ok(o),
        Err(e) => e,
    };
    let (keep, err) = shrink(seed, &p, &sched, err);
    let list = keep
        .iter()
        .map(|&i| index[i].to_string())
        .collect::<Vec<_>>()
        .join(",");
    let shown: Vec<_> = keep.iter().map(|&i| &sched[i]).collect();
    Err(format!(
        "seed {seed} FAILED ({} of {} schedule entries kept: {shown:?}; params {p:?})\n  replay: HOTSYNC_SIM_SEED={seed} HOTSYNC_SIM_KEEP={list} cargo test -p hotsync-proto --test simulator\n  {err}",
        keep.len(),
        sched.len(),
    ))
}

/// The fixed set run by `cargo test`: seeds 0..FIXED_SEEDS, plus regression
/// seeds found by random runs.
const FIXED_SEEDS: u64 = 400;
/// Regression seeds, with the (shrunk) schedule entries that failed
/// (`None`: the whole schedule). See docs/RELIABILITY.md §7.
const REGRESSIONS: &[(u64, Option<&[usize]>)] = &[
    // A batch still running at the heal made the simulator's own refill
    // request fail (a simulator bug).
    (15556954759625895673, None),
    // Split brain, writes on both sides: each side's version of a key
    // both wrote crossed on the heal and the digests stayed different.
    (5839268658252983093, Some(&[20])),
    // A paused active resumed and won the role back: the shards the
    // standby wrote meanwhile were never repaired.
    (11143910267819265724, Some(&[6])),
    // A cut, then a corrupted hello: the standby took over for 40 ms and
    // kept 2 entries it wrote then (the same split brain, briefly).
    (13539024873141223510, Some(&[2, 4, 7, 8])),
    // A truncated config segment just before the end: the simulator
    // stopped before the heartbeat that detects it (a simulator bug).
    (11514304270969513312, Some(&[11, 12])),
    // A paused active resumed and won; the loser's hand-over frames were
    // truncated on the link: its last changes were lost uncounted (now
    // counted in `step_down_lost_shards`). 2 of 3,000 random seeds.
    (8434064783062406927, Some(&[0, 2, 3])),
    (3661530074606779860, Some(&[11, 15])),
    // The same over a slow link, cut by a second partition: every shard was
    // already uncertain, so the changes in flight were not counted (now
    // the unacknowledged shards are). 1 of 6,000 random seeds.
    (17135379527048095164, Some(&[17, 23, 27])),
    // A configuration change at the last step, applied in the driver: the
    // simulator called the run quiet while the receiver still held it
    // unapplied (a simulator bug; 7 of 10,000 random seeds).
    (4250457705816524743, Some(&[20, 21, 22, 39])),
    // The standby resumed from a pause past the dead interval and took the
    // role during a session handshake, its hello still saying "standby";
    // the active agreed roles on that hello and sent its session data at
    // once, which landed on the loser before it read its journals: its
    // last write was lost uncounted. A role change now restarts a session
    // handshake (1 of 100,000 random seeds).
    (
        10133906088416419527,
        Some(&[
            2, 7, 10, 11, 12, 13, 14, 15, 16, 17, 18, 24, 26, 27, 28, 29, 35,
        ]),
    ),
    // The lower-priority active, paused past the dead interval, resumed at
    // the heal, one step before the standby's dead timer fired: the
    // simulator took it for the final active; the standby then took over
    // and kept the role by priority, as the docs say (a simulator bug; 1
    // of 100,000 random seeds).
    (
        523396013147223482,
        Some(&[
            0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 20, 31, 40, 41, 43,
        ]),
    ),
    // A corrupted frame right at the heal dropped the session connection
    // and the run was quiet before it came back: the check waits for the
    // relationship to settle, not only for quiet (1 of 20,000 random seeds).
    (
        9687282105382455245,
        Some(&[
            1, 9, 14, 16, 18, 23, 24, 25, 27, 28, 29, 30, 31, 32, 33, 34, 36, 37, 38,
        ]),
    ),
    // The former active's batch kept running after it stepped down; a chunk
    // of it crossed the winner's walk of the same shard: the winner held
    // the chunk's session, the loser not. A non-active node's batch chunks
    // now count as its changes for the crossing check (1 of 20,000).
    (9680971406373191153, Some(&[1, 3, 5, 7, 8, 9, 10, 16, 19])),
    // The active, paused past the dead interval, resumed at the heal; its
    // peer's takeover a few milliseconds later closed the link, and the
    // run was quiet (tables equal, nothing in flight) with both active
    // until the redial: judged before the relationship settled (a
    // simulator bug; 1 of 100,000 random seeds).
    (4043895032223201649, Some(&[0, 1, 2, 4, 5, 7, 8, 9, 12])),
    // Preemption: the node that took the role back wrote a session at once;
    // the former active's frames still on their way (sent before it heard)
    // replaced it, the preempting node not yet treating them as a former
    // active's. Found by the active-authority check when it was added (1 of
    // 2,000 random seeds).
    (8339352101352174604, Some(&[0, 4, 5, 6, 10])),
    // A first version of that fix also ran the step-down logic when a node
    // took over from a dead peer, which cleared its pending hand-over
    // before the lost connection could count what it cut short: its last
    // write, never delivered, was lost uncounted (1 of 2,300 random seeds,
    // never on main).
    (14119745859864588823, Some(&[1, 2, 3, 5, 8, 12, 13, 15, 33])),
];

fn seeds() -> Vec<(u64, Option<&'static [usize]>)> {
    if let Ok(s) = std::env::var("HOTSYNC_SIM_SEED") {
        return vec![(s.parse().expect("HOTSYNC_SIM_SEED must be a number"), None)];
    }
    if let Ok(n) = std::env::var("HOTSYNC_SIM_SEEDS") {
        let n: u64 = n.parse().expect("HOTSYNC_SIM_SEEDS must be a number");
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut r = Rng::new(std::process::id() as u64 ^ t ^ 0x5eed);
        return (0..n).map(|_| (r.next(), None)).collect();
    }
    (0..FIXED_SEEDS)
        .map(|s| (s, None))
        .chain(REGRESSIONS.iter().copied())
        .collect()
}

#[test]
fn fault_schedules_stay_safe_and_converge() {
    let seeds = seeds();
    let progress = std::env::var("HOTSYNC_SIM_PROGRESS").is_ok();
    let print_fingerprints = std::env::var("HOTSYNC_SIM_FINGERPRINT").is_ok();
    let mut failures = Vec::new();
    let mut covered: BTreeMap<Class, u64> = BTreeMap::new();
    let mut unsaid = 0;
    for (done, &(seed, keep)) in seeds.iter().enumerate() {
        match run_seed(seed, keep) {
            Ok(o) => {
                if print_fingerprints {
                    eprintln!("fingerprint {seed} {:016x}", o.fingerprint);
                }
                unsaid += o.unsaid_fragments;
                for c in o.injected {
                    *covered.entry(c).or_default() += 1;
                }
            }
            Err(e) => {
                eprintln!("{e}");
                failures.push(seed);
                if failures.len() >= 5 {
                    break;
                }
            }
        }
        if progress && (done + 1) % 100 == 0 {
            eprintln!("progress {} {}", done + 1, failures.len());
        }
    }
    eprintln!(
        "{} seeds, {} failed; injected: {covered:?}",
        seeds.len(),
        failures.len()
    );
    if unsaid > 0 {
        eprintln!(
            "B4: {unsaid} schedules left a restarted standby holding a fragment without saying so (this build has no peer-incomplete state to check)"
        );
    }
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
    // The fixed set must exercise every class not held back: a class cannot
    // silently stop being injected.
    if std::env::var("HOTSYNC_SIM_SEED").is_err() && std::env::var("HOTSYNC_SIM_SEEDS").is_err() {
        let missing: Vec<Class> = ALL_CLASSES
            .iter()
            .copied()
            .filter(|c| !covered.contains_key(c) && !held_back().contains(c))
            .collect();
        assert!(
            missing.is_empty(),
            "fault classes never injected by the fixed seeds: {missing:?}"
        );
    }
}

const ALL_CLASSES: &[Class] = &[
    Class::Cut,
    Class::PartitionShort,
    Class::SplitBrain,
    Class::StandbyRestart,
    Class::ActiveRestartTableLost,
    Class::ActiveRestartTableKept,
    Class::Failover,
    Class::Pause,
    Class::TablesFull,
    Class::JournalOverflow,
    Class::CorruptFrame,
    Class::TruncatedFrame,
    Class::SlowReceiver,
    Class::ConfigChange,
    Class::SessionBatch,
    Class::StandbyBatch,
    Class::ConfigBatch,
    Class::WithKey,
    Class::WithoutKey,
    Class::Stranger,
    Class::Preemption,
];
