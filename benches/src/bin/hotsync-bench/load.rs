//! `incremental`, `mixed` and `during-bulk`: a paced data-plane writer on
//! the active node and a replication-latency probe on the standby, both
//! nodes in this process (so each node's CPU is read per thread: its event
//! loop thread is `hotsync-node-<id>`, the data plane is the writer
//! thread). `mixed` and `during-bulk` keep a [`Background`] job running
//! through their second window.
//!
//! Latency measurement (see docs/PERFORMANCE.md):
//! - Writers follow a fixed schedule: op `i` of a writer is *intended* at
//!   `start + i / rate`. A writer executes every op whose intended time has
//!   come, then sleeps until the next one (plus `pace_us`, so ops are
//!   released in bursts of at most that many microseconds). Latency is
//!   measured from the intended time, so a writer that falls behind
//!   (descheduled, blocked on a shard lock) adds its delay to every sample:
//!   coordinated omission is corrected by construction.
//! - One op in `marker_every` (writer 0) is a *marker*: an upsert of one of
//!   4096 dedicated sessions (vsys 4095) whose entry carries the marker's
//!   sequence number (`packets[1]`), intended time (`bytes[1]`) and the
//!   time the writer wrote it (`bytes[0]`), which splits each sample into
//!   the writer's delay and the replication's. All
//!   other ops update a working-set session in place (`SessionTable::update`:
//!   counters up, last-seen on), like a data plane per packet.
//! - A probe thread knows the schedule: it sleeps until the next marker's
//!   intended time, then polls the standby's table (`get`, yielding between
//!   polls) until the marker's sequence number is there. Latency = the time
//!   the probe saw it on the standby minus the intended time. The probe
//!   samples the real path (journal, drain, batch, socket, decode, apply);
//!   markers are ordinary backup-capable sessions.

use crate::util::{
    LiveSessions, cpu_delta, machine_busy_ns, marker_entry, node_config, si, thread_cpu_ns,
    tight_timer_slack, two_port_pairs,
};
use hdrhistogram::Histogram;
use hotsync_bench::{bump, config_text};
use hotsync_config::ConfigStore;
use hotsync_node::{Node, NodeHandle};
use hotsync_proto::JobState;
use hotsync_table::{SessionKey, SessionTable};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Marker sessions (a marker's slot is its sequence number modulo this).
const MARKER_KEYS: u64 = 4096;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOpts {
    pub rate: f64,
    pub duration: Duration,
    pub warmup: Duration,
    pub writers: usize,
    pub working_set: usize,
    pub marker_every: u64,
    pub pace_us: u64,
    pub probe_us: u64,
    /// Both nodes' coalescing window, if not the protocol's default.
    pub flush_interval: Option<Duration>,
    pub psk: Option<String>,
    /// `--encrypt`: AES-256-GCM frames (needs the pre-shared key).
    pub encrypt: bool,
    pub dead_count: u32,
    /// Work run again and again through the second window.
    pub background: Option<Background>,
}

/// A job kept running through the whole second window: started at its
/// start, restarted as soon as it ends.
#[derive(Debug, Clone, Copy)]
pub enum Background {
    /// `mixed`: a config store with this many security rules on the
    /// active; `hrp sync config`.
    ConfigSync { items: usize },
    /// `during-bulk`: `hrp sync connection-status` of the whole table (the
    /// working set).
    BatchSync,
}

/// One measured window.
#[derive(Debug)]
pub struct Phase {
    pub name: &'static str,
    pub hist: Histogram<u64>,
    /// Of each sample: intended time to the writer's upsert (the data
    /// plane late: descheduled, or behind its schedule).
    pub writer_hist: Histogram<u64>,
    /// Of each sample: the writer's upsert to the probe seeing it on the
    /// standby (journal, drain, socket, apply, the probe's poll).
    pub replication_hist: Histogram<u64>,
    /// Of each sample: the probe's resolution (its last look that missed
    /// the marker, or the write if later, to the look that saw it).
    pub probe_hist: Histogram<u64>,
    pub ops: u64,
    pub wall: Duration,
    pub cpu: Vec<(String, f64, f64)>,
    pub records_tx: u64,
    pub batches_tx: u64,
    pub bytes_tx: u64,
    pub resyncs: u64,
    pub lost: u64,
    /// Busy CPU of the whole machine (all processes), % of one core.
    pub machine_busy: f64,
}

impl Phase {
    pub fn achieved_rate(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }
    /// Latency percentile in µs.
    pub fn q_us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1e3
    }
    pub fn max_us(&self) -> f64 {
        self.hist.max() as f64 / 1e3
    }
}

/// The background jobs of the second window.
#[derive(Debug, Default, Clone)]
pub struct BackgroundRuns {
    /// Config items in the active's store (config sync only).
    pub items: usize,
    pub parse_s: f64,
    pub jobs_done: u64,
    /// Items (entries or config items) acknowledged in the window,
    /// including the part of a job still running at its end.
    pub items_done: u64,
    /// Duration of every job that completed in the window.
    pub job_s: Vec<f64>,
    pub first_outcome: String,
    /// Time of the window with no job running (between one ending and the
    /// next starting, and after the last one if it ended early).
    pub idle_s: f64,
}

impl BackgroundRuns {
    pub fn first_job_s(&self) -> Option<f64> {
        self.job_s.first().copied()
    }
}

#[derive(Debug)]
pub struct LoadResult {
    pub prefill_s: f64,
    pub prefill_sync_s: f64,
    pub phases: Vec<Phase>,
    pub max_lag_us: f64,
    pub background: Option<BackgroundRuns>,
}

fn marker_key(seq: u64) -> SessionKey {
    let slot = (seq % MARKER_KEYS) as u16;
    let mut k = SessionKey {
        vsys: 4095,
        family: 4,
        protocol: 17,
        src_port: slot,
        dst_port: 9,
        ..SessionKey::default()
    };
    k.src_addr[..4].copy_from_slice(&[198, 18, (slot >> 8) as u8, slot as u8]);
    k.dst_addr[..4].copy_from_slice(&[198, 19, 0, 1]);
    k
}

struct Clock {
    base: Instant,
}

impl Clock {
    #[inline]
    fn ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
    fn at(&self, ns: u64) -> Instant {
        self.base + Duration::from_nanos(ns)
    }
    fn sleep_until(&self, ns: u64) {
        let now = self.ns();
        if ns > now {
            std::thread::sleep(Duration::from_nanos(ns - now));
        }
    }
}

struct Schedule {
    start_ns: u64,
    per_op_ns: f64,
    marker_every: u64,
}

impl Schedule {
    #[inline]
    fn intended(&self, i: u64) -> u64 {
        self.start_ns + (i as f64 * self.per_op_ns) as u64
    }
    fn marker_intended(&self, j: u64) -> u64 {
        self.intended(j * self.marker_every)
    }
}

fn wait_established(a: &NodeHandle, b: &NodeHandle) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(a.is_established() && b.is_established()) {
        assert!(Instant::now() < deadline, "no relationship within 30 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_digests(a: &NodeHandle, b: &NodeHandle, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if a.table().digest() == b.table().digest() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[allow(clippy::too_many_arguments)]
fn writer(
    w: usize,
    table: Arc<SessionTable>,
    keys: Vec<SessionKey>,
    clock: Arc<Clock>,
    sched: Schedule,
    total: u64,
    pace_ns: u64,
    ops_done: Arc<AtomicU64>,
    markers: Arc<AtomicU64>,
    max_lag: Arc<AtomicU64>,
    release: Arc<AtomicBool>,
) {
    tight_timer_slack();
    let mut i = 0u64;
    let mut j = 0u64;
    let mut lag = 0u64;
    let nkeys = keys.len() as u64;
    while i < total {
        let now = clock.ns();
        let first = sched.intended(i);
        if first > now {
            clock.sleep_until(first + pace_ns);
            continue;
        }
        lag = lag.max(now - first);
        let mut burst = 0;
        while i < total && sched.intended(i) <= now && burst < 1024 {
            if w == 0 && i % sched.marker_every == 0 {
                let e = marker_entry(j, sched.intended(i), clock.ns());
                // Inserted the first time a slot is used: pre-sized table.
                let _ = table.upsert(&marker_key(j), &e);
                j += 1;
                markers.store(j, Ordering::Release);
            } else {
                let k = &keys[(i % nkeys) as usize];
                table.update(k, bump);
            }
            i += 1;
            burst += 1;
        }
        ops_done.store(i, Ordering::Relaxed);
    }
    max_lag.fetch_max(lag, Ordering::Relaxed);
    // Stay alive until the last CPU snapshot has been taken, so this
    // thread's CPU time is still in /proc when it is read.
    while !release.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A window's latency samples, whole and split at the writer's upsert.
struct ProbeHists {
    total: Histogram<u64>,
    writer: Histogram<u64>,
    replication: Histogram<u64>,
    /// The probe's own share: from the later of the write and its last
    /// look that missed the marker, to the look that saw it.
    probe: Histogram<u64>,
}

impl ProbeHists {
    fn new() -> Self {
        let h = || Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("histogram");
        Self {
            total: h(),
            writer: h(),
            replication: h(),
            probe: h(),
        }
    }

    fn record(&mut self, intended: u64, written: u64, last_look: u64, seen: u64) {
        let _ = self
            .probe
            .record(seen.saturating_sub(last_look.max(written)).max(1));
        let _ = self.total.record(seen.saturating_sub(intended).max(1));
        let _ = self.writer.record(written.saturating_sub(intended).max(1));
        let _ = self.replication.record(seen.saturating_sub(written).max(1));
    }
}

/// Window boundaries (ns on the clock): `[bounds[p], bounds[p+1])` is phase p.
#[allow(clippy::too_many_arguments)]
fn probe(
    table: Arc<SessionTable>,
    clock: Arc<Clock>,
    sched: Schedule,
    bounds: Vec<u64>,
    markers: Arc<AtomicU64>,
    writers_done: Arc<AtomicBool>,
    poll: Duration,
) -> (Vec<ProbeHists>, Vec<u64>) {
    tight_timer_slack();
    let phases = bounds.len() - 1;
    let mut hists: Vec<ProbeHists> = (0..phases).map(|_| ProbeHists::new()).collect();
    let mut lost = vec![0u64; phases];
    let phase_of = |t: u64| (0..phases).find(|&p| t >= bounds[p] && t < bounds[p + 1]);
    let mut outstanding: VecDeque<u64> = VecDeque::new();
    let mut next = 0u64;
    let mut give_up: Option<u64> = None;
    // When the last look at the standby began: a marker seen now arrived
    // after it (or after its write, if later).
    let mut last_look = 0u64;
    loop {
        let published = markers.load(Ordering::Acquire);
        while next < published {
            outstanding.push_back(next);
            next += 1;
        }
        if outstanding.is_empty() {
            if writers_done.load(Ordering::Acquire) && markers.load(Ordering::Acquire) == next {
                break;
            }
            let t = sched.marker_intended(next);
            let now = clock.ns();
            if t > now + 40_000 {
                clock.sleep_until(t - 20_000);
            } else {
                std::thread::sleep(poll);
            }
            continue;
        }
        let look = clock.ns();
        outstanding.retain(|&j| match table.get(&marker_key(j)) {
            Some(e) if e.packets[1] >= j => {
                let seen = clock.ns();
                let intended = sched.marker_intended(j);
                if let Some(p) = phase_of(intended) {
                    hists[p].record(intended, e.bytes[0], last_look, seen);
                }
                false
            }
            _ => true,
        });
        last_look = look;
        if writers_done.load(Ordering::Acquire) {
            let now = clock.ns();
            let g = *give_up.get_or_insert(now + 5_000_000_000);
            if now > g {
                for &j in &outstanding {
                    if let Some(p) = phase_of(sched.marker_intended(j)) {
                        lost[p] += 1;
                    }
                }
                break;
            }
        }
        if !outstanding.is_empty() {
            std::thread::sleep(poll);
        }
    }
    (hists, lost)
}

/// Runs the paced load; `phase_names` are the measured windows (after the
/// warmup), each `opts.duration` long. The background job, if any, runs
/// through the second window.
pub fn run(opts: &LoadOpts, phase_names: &[&'static str]) -> LoadResult {
    let (pa, pb) = two_port_pairs();
    let max = opts.working_set + opts.working_set / 8 + MARKER_KEYS as usize + 4096;
    let mut background = opts.background.map(|_| BackgroundRuns::default());
    let store_a = match opts.background {
        Some(Background::ConfigSync { items: n }) => {
            let t = Instant::now();
            let store = ConfigStore::parse(&config_text(n)).expect("generated config parses");
            let parse_s = t.elapsed().as_secs_f64();
            eprintln!("  config: {} items parsed in {parse_s:.2} s", store.len());
            background = Some(BackgroundRuns {
                items: store.len(),
                parse_s,
                ..BackgroundRuns::default()
            });
            store
        }
        _ => ConfigStore::new(),
    };
    let psk = opts.psk.as_deref();
    let flush = |mut c: hotsync_node::NodeConfig| {
        if let Some(f) = opts.flush_interval {
            c.proto.flush_interval = f;
        }
        c
    };
    let a = Node::start(flush(node_config(
        1,
        200,
        pa,
        pb,
        max,
        psk,
        opts.encrypt,
        opts.dead_count,
        store_a,
    )))
    .expect("node A");
    let b = Node::start(flush(node_config(
        2,
        100,
        pb,
        pa,
        max,
        psk,
        opts.encrypt,
        opts.dead_count,
        ConfigStore::new(),
    )))
    .expect("node B");
    wait_established(&a, &b);

    // Working set: created on the active after establishment (it flows
    // incrementally), then the writer only updates it.
    let t = Instant::now();
    let mut g = LiveSessions::new(3);
    let mut keys = Vec::with_capacity(opts.working_set);
    for _ in 0..opts.working_set {
        let (k, e) = g.next_session();
        a.table().upsert(&k, &e).expect("pre-sized");
        keys.push(k);
    }
    let prefill_s = t.elapsed().as_secs_f64();
    let synced = wait_digests(&a, &b, Duration::from_secs(120));
    assert!(synced, "working set did not replicate within 120 s");
    let prefill_sync_s = t.elapsed().as_secs_f64();
    eprintln!(
        "  working set: {} sessions created in {prefill_s:.2} s, replicated after {prefill_sync_s:.2} s",
        opts.working_set
    );

    let clock = Arc::new(Clock {
        base: Instant::now(),
    });
    let start_ns = 200_000_000u64;
    let d = opts.duration.as_nanos() as u64;
    let w0 = start_ns + opts.warmup.as_nanos() as u64;
    let bounds: Vec<u64> = (0..=phase_names.len() as u64).map(|p| w0 + p * d).collect();
    let end_ns = *bounds.last().expect("bounds");
    let writers = opts.writers.max(1);
    let per_op_ns = 1e9 / (opts.rate / writers as f64);
    let marker_every = (opts.marker_every / writers as u64).max(1);
    let total = ((end_ns - start_ns) as f64 / per_op_ns) as u64;
    let sched = |_: usize| Schedule {
        start_ns,
        per_op_ns,
        marker_every,
    };
    let markers = Arc::new(AtomicU64::new(0));
    let writers_done = Arc::new(AtomicBool::new(false));
    let max_lag = Arc::new(AtomicU64::new(0));
    let release = Arc::new(AtomicBool::new(false));
    let ops: Vec<Arc<AtomicU64>> = (0..writers).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut per_writer_keys: Vec<Vec<SessionKey>> = vec![Vec::new(); writers];
    for (i, k) in keys.into_iter().enumerate() {
        per_writer_keys[i % writers].push(k);
    }
    let probe_h = {
        let poll = Duration::from_micros(opts.probe_us);
        let (t, c, s, bo, m, wd) = (
            b.table().clone(),
            clock.clone(),
            sched(0),
            bounds.clone(),
            markers.clone(),
            writers_done.clone(),
        );
        std::thread::Builder::new()
            .name("hs-probe".into())
            .spawn(move || probe(t, c, s, bo, m, wd, poll))
            .expect("spawn probe")
    };
    let writer_h: Vec<_> = per_writer_keys
        .into_iter()
        .enumerate()
        .map(|(w, k)| {
            let (t, c, s, o, m, l, r) = (
                a.table().clone(),
                clock.clone(),
                sched(w),
                ops[w].clone(),
                markers.clone(),
                max_lag.clone(),
                release.clone(),
            );
            let pace = opts.pace_us * 1000;
            std::thread::Builder::new()
                .name(format!("hs-writer-{w}"))
                .spawn(move || writer(w, t, k, c, s, total, pace, o, m, l, r))
                .expect("spawn writer")
        })
        .collect();

    // Phase boundaries: snapshot CPU, counters; drive the config sync.
    let ops_now = || ops.iter().map(|o| o.load(Ordering::Relaxed)).sum::<u64>();
    let mut snaps = Vec::new();
    for (p, &bound) in bounds.iter().enumerate() {
        std::thread::sleep(clock.at(bound).saturating_duration_since(Instant::now()));
        let st = a.state().peer.stats;
        snaps.push((
            Instant::now(),
            thread_cpu_ns(),
            machine_busy_ns(),
            ops_now(),
            st.records_tx,
            st.batches_tx,
            st.bytes_tx,
            st.shards_resynced,
        ));
        if let (Some(kind), Some(bg)) = (opts.background, background.as_mut()) {
            if p == 1 && p < phase_names.len() {
                drive_background(&a, kind, bg, clock.at(bounds[p + 1]));
            }
        }
    }
    release.store(true, Ordering::Release);
    for h in writer_h {
        h.join().expect("writer");
    }
    writers_done.store(true, Ordering::Release);
    let (hists, lost) = probe_h.join().expect("probe");
    let phases = hists
        .into_iter()
        .zip(lost)
        .enumerate()
        .map(|(p, (hist, lost))| {
            let (t0, c0, m0, o0, r0, b0, y0, s0) = &snaps[p];
            let (t1, c1, m1, o1, r1, b1, y1, s1) = &snaps[p + 1];
            let wall = *t1 - *t0;
            Phase {
                name: phase_names[p],
                hist: hist.total,
                writer_hist: hist.writer,
                replication_hist: hist.replication,
                probe_hist: hist.probe,
                ops: o1 - o0,
                wall,
                cpu: cpu_delta(c0, c1, wall),
                records_tx: r1 - r0,
                batches_tx: b1 - b0,
                bytes_tx: y1 - y0,
                resyncs: s1 - s0,
                lost,
                machine_busy: (m1 - m0) as f64 / wall.as_nanos() as f64 * 100.0,
            }
        })
        .collect();
    let synced = wait_digests(&a, &b, Duration::from_secs(30));
    if !synced {
        eprintln!("  WARNING: digests still differ 30 s after the load stopped");
    }
    a.shutdown();
    b.shutdown();
    LoadResult {
        prefill_s,
        prefill_sync_s,
        phases,
        max_lag_us: max_lag.load(Ordering::Relaxed) as f64 / 1e3,
        background,
    }
}

fn start_job(a: &NodeHandle, kind: Background) -> u64 {
    match kind {
        Background::ConfigSync { .. } => a.sync_config().expect("sync config"),
        Background::BatchSync => a.sync_connection_status().expect("sync connection-status"),
    }
}

/// Keeps a `kind` job running until `end`: starts one, and whenever it has
/// finished starts the next. It sleeps until a job ends
/// ([`NodeHandle::wait_job`]) rather than asking A's event loop on a timer,
/// which would cost the window it measures a turn of that loop each time.
fn drive_background(a: &NodeHandle, kind: Background, bg: &mut BackgroundRuns, end: Instant) {
    let mut job = start_job(a, kind);
    let mut started = Instant::now();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let Some(j) = a.wait_job(job, end - now) else {
            break;
        };
        let Some(finished) = j.finished else { continue };
        assert_eq!(j.state, JobState::Done, "background job: {j:?}");
        bg.jobs_done += 1;
        bg.items_done += j.total;
        bg.job_s.push(j.elapsed(finished).as_secs_f64());
        if bg.first_outcome.is_empty() {
            bg.first_outcome = j.config.map_or("-".into(), |c| format!("{c:?}"));
        }
        let now = Instant::now();
        bg.idle_s += now
            .min(end)
            .saturating_duration_since(finished)
            .as_secs_f64();
        if now < end {
            job = start_job(a, kind);
            started = Instant::now();
        }
    }
    // Partial progress of the running job counts as items done.
    if let Some(j) = a.job(job) {
        if j.finished.is_none() {
            bg.items_done += j.acked;
            eprintln!(
                "  background job still running at window end: {}/{} acked after {:.2} s",
                j.acked,
                j.total,
                started.elapsed().as_secs_f64()
            );
        }
    }
}

/// Rows of the text table for one phase.
pub fn phase_rows(p: &Phase) -> Vec<(String, String)> {
    let mut rows = vec![
        (
            format!("[{}] achieved rate", p.name),
            format!(
                "{}/s ({} ops in {:.2} s)",
                si(p.achieved_rate()),
                p.ops,
                p.wall.as_secs_f64()
            ),
        ),
        (
            format!("[{}] latency µs p50/p90/p99/p99.9/max", p.name),
            format!(
                "{:.0} / {:.0} / {:.0} / {:.0} / {:.0}  ({} samples, {} lost)",
                p.q_us(0.5),
                p.q_us(0.9),
                p.q_us(0.99),
                p.q_us(0.999),
                p.max_us(),
                p.hist.len(),
                p.lost
            ),
        ),
        (
            format!("[{}] p99 of writer late / replication / probe", p.name),
            format!(
                "{:.0} / {:.0} / {:.0} µs (each its own p99: they need not add up)",
                p.writer_hist.value_at_quantile(0.99) as f64 / 1e3,
                p.replication_hist.value_at_quantile(0.99) as f64 / 1e3,
                p.probe_hist.value_at_quantile(0.99) as f64 / 1e3,
            ),
        ),
        (
            format!("[{}] sent by A (bytes: both channels)", p.name),
            format!(
                "{} records in {} batches ({:.0} records/batch), {:.1} B/record, {} shard resyncs",
                p.records_tx,
                p.batches_tx,
                p.records_tx as f64 / p.batches_tx.max(1) as f64,
                p.bytes_tx as f64 / p.records_tx.max(1) as f64,
                p.resyncs
            ),
        ),
    ];
    let cpu = p
        .cpu
        .iter()
        .map(|(n, c, w)| format!("{n} {c:.0}% (+{w:.0}% waiting)"))
        .collect::<Vec<_>>()
        .join(", ");
    rows.push((format!("[{}] CPU (% of one core)", p.name), cpu));
    let ours: f64 = p.cpu.iter().map(|c| c.1).sum();
    rows.push((
        format!("[{}] machine busy (all processes)", p.name),
        format!(
            "{:.0}% of one core, of which this process {ours:.0}%, others {:.0}%",
            p.machine_busy,
            (p.machine_busy - ours).max(0.0)
        ),
    ));
    rows
}
