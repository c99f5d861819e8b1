//! `hotsync-bench`: end-to-end figures of a hotsync pair on loopback, with
//! baselines measured in the same run. See docs/PERFORMANCE.md.
//!
//! - `bulk --sessions N`: batch sync of N sessions (`hrp sync
//!   connection-status`), each node in its own process; entries/s, wire
//!   bytes per entry, MB/s, time to equal digests, peak RSS per node; the
//!   raw-TCP, naive-pipeline and bare-insert baselines.
//! - `incremental --rate R --duration D`: paced data-plane updates on the
//!   active, replication latency percentiles (coordinated-omission
//!   corrected), achieved rate, CPU per node.
//! - `mixed`: the incremental load without, then with a 100k-item config
//!   batch sync running.
//! - `during-bulk`: the incremental load (200k/s) alone, then while batch
//!   syncs of the whole table run back to back.
//! - `lookup`: reader threads' lookups while one writer applies records,
//!   for the table, a mutex-table baseline and a DashMap.
//! - `conntrack`: the Linux conntrack data plane against conntrackd FTFW,
//!   each firewall in its own network namespace (root; see
//!   docs/CONNTRACK.md): bulk, commit, event and takeover rates.
//! - `compare OLD.json NEW.json [...]`: the figures two reports share.
//!
//! On every scenario: `--repeat N` runs, `--json FILE` writes every figure
//! (medians, and every run's values under `runs`), `--hgrm DIR` one
//! HdrHistogram file per latency window, `--plot FILE.svg` a chart
//! (`hotsync_bench::report`).

mod baseline;
mod bulk;
mod conntrack;
mod ctlab;
mod load;
mod lookup;
mod util;

use clap::{Args, Parser, Subcommand};
use hotsync_bench::report::{self, Figures, Outputs, Report, Unit, compare, median};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use util::{print_table, si};

#[derive(Parser, Debug)]
#[command(
    name = "hotsync-bench",
    about = "hotsync end-to-end benchmarks with baselines"
)]
struct Cli {
    /// Write every figure to this file as JSON (the median of the runs
    /// under each key, every run's values under `runs`).
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Runs of the whole scenario (fresh nodes each).
    #[arg(long, global = true, default_value_t = 1)]
    repeat: usize,
    /// Latency scenarios: write one HdrHistogram percentile distribution
    /// per window to DIR/SCENARIO-WINDOW.hgrm (all runs merged).
    #[arg(long, global = true, value_name = "DIR")]
    hgrm: Option<PathBuf>,
    /// Write an SVG chart: percentile curves of the latency windows, or
    /// `bulk`'s entries acknowledged per 100 ms.
    #[arg(long, global = true, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Pre-shared key for the pair (HMAC-SHA256 frame tags after the
    /// handshake); without it frames carry CRC32C.
    #[arg(long, global = true)]
    psk: Option<String>,
    /// Encrypt every frame after the handshake (`hrp encryption-key`,
    /// AES-256-GCM); needs --psk.
    #[arg(long, global = true, requires = "psk")]
    encrypt: bool,
    /// Missed 1 s heartbeats before a node declares its peer dead (the
    /// protocol default is 3).
    #[arg(long, global = true, default_value_t = 3)]
    dead_count: u32,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Batch sync of N sessions between two node processes, plus baselines.
    Bulk(BulkArgs),
    /// Fixed-rate data-plane updates; replication latency.
    Incremental(LoadArgs),
    /// The incremental load without, then with a config batch sync.
    Mixed(MixedArgs),
    /// The incremental load alone, then during batch syncs of the table.
    DuringBulk(DuringBulkArgs),
    /// Lookups racing a writer: the table, a mutex table, a DashMap.
    Lookup(lookup::LookupArgs),
    /// Linux conntrack data plane against conntrackd FTFW (root).
    Conntrack(conntrack::ConntrackArgs),
    /// Compare reports written with --json (new/old of every figure).
    Compare(CompareArgs),
    /// One node in a child process (driven by the bulk scenario).
    #[command(hide = true)]
    NodeChild(bulk::ChildArgs),
    /// One node with a conntrack data plane, inside a firewall namespace
    /// (driven by the conntrack scenario).
    #[command(hide = true)]
    CtNodeChild(conntrack::CtChildArgs),
}

#[derive(Args, Debug)]
struct BulkArgs {
    /// Sessions to create on the active and batch-sync.
    #[arg(long, default_value_t = 1_000_000)]
    sessions: usize,
    /// Runs of each baseline (median reported); default 3 up to 2M
    /// sessions, else 1.
    #[arg(long)]
    baseline_repeat: Option<usize>,
    /// Skip the baselines.
    #[arg(long)]
    no_baselines: bool,
    /// Apply received chunks of at least this many records on two threads
    /// (`ProtoConfig::parallel_apply_min_records`; 0, the default: one).
    #[arg(long, default_value_t = 0)]
    parallel_apply: usize,
}

#[derive(Args, Debug, Clone)]
struct LoadArgs {
    /// Updates per second (all writers together); default 1,000,000
    /// (`during-bulk`: 200,000).
    #[arg(long)]
    rate: Option<f64>,
    /// Measured seconds (per phase).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Writer threads (each paced at rate / writers).
    #[arg(long, default_value_t = 1)]
    writers: usize,
    /// Sessions the writers update (created and replicated first).
    #[arg(long, default_value_t = 1_000_000)]
    working_set: usize,
    /// One latency marker per this many updates.
    #[arg(long, default_value_t = 1000)]
    marker_every: u64,
    /// Writers release due updates in bursts of at most this many µs.
    #[arg(long, default_value_t = 20)]
    pace_us: u64,
    /// The probe polls the standby every this many µs while a marker is
    /// in flight (its resolution).
    #[arg(long, default_value_t = 20)]
    probe_us: u64,
    /// The nodes' incremental coalescing window in µs
    /// (`ProtoConfig::flush_interval`; the protocol's default if absent).
    #[arg(long)]
    flush_us: Option<u64>,
}

#[derive(Args, Debug)]
struct MixedArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Security rules in the active's configuration (synced in phase 2).
    #[arg(long, default_value_t = 100_000)]
    config_items: usize,
}

#[derive(Args, Debug)]
struct DuringBulkArgs {
    /// The load; the batch sync carries the working set (default 1M).
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Args, Debug)]
struct CompareArgs {
    /// Reports written by `--json`: the first is the old one, each other
    /// is compared with it.
    #[arg(required = true, num_args = 2..)]
    files: Vec<PathBuf>,
}

fn median_by<T: Clone>(v: &[T], key: impl Fn(&T) -> f64) -> T {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| key(&v[a]).total_cmp(&key(&v[b])));
    v[idx[(idx.len() - 1) / 2]].clone()
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

/// What every scenario is given besides its own arguments.
#[derive(Debug)]
struct Ctx {
    psk: Option<String>,
    encrypt: bool,
    dead_count: u32,
    repeat: usize,
}

impl Ctx {
    fn psk(&self) -> Option<&str> {
        self.psk.as_deref()
    }

    fn run_label(&self, i: usize) -> String {
        if self.repeat > 1 {
            format!(" (run {}/{})", i + 1, self.repeat)
        } else {
            String::new()
        }
    }
}

fn bulk_rows(r: &bulk::BulkRun) -> Vec<(String, String)> {
    let n = r.n as f64;
    vec![
        ("sessions".to_string(), r.n.to_string()),
        (
            "A: data plane created them in".into(),
            format!(
                "{:.2} s ({}/s, before B started)",
                r.fill_s,
                si(n / r.fill_s)
            ),
        ),
        (
            "B started -> established".into(),
            format!("{:.2} s", r.establish_s),
        ),
        (
            "batch sync (job start -> all acked)".into(),
            format!("{:.3} s", r.job_s),
        ),
        ("entries/s".into(), si(r.entries_per_s())),
        (
            "wire bytes/entry".into(),
            format!(
                "{:.1} ({} frames, {} bytes)",
                r.wire_bytes_per_entry(),
                r.frames_tx,
                r.bytes_tx
            ),
        ),
        (
            "wire MB/s".into(),
            format!("{:.0}", r.bytes_tx as f64 / r.job_s / 1e6),
        ),
        (
            "sync command -> equal digests".into(),
            format!(
                "{:.3} s (job seen done at {:.3} s)",
                r.digest_equal_s, r.job_wall_s
            ),
        ),
        (
            "peak RSS A / B".into(),
            format!("{} / {}", mib(r.hwm[0]), mib(r.hwm[1])),
        ),
        (
            "peak RSS per session A / B".into(),
            format!("{:.1} / {:.1} B", r.hwm[0] as f64 / n, r.hwm[1] as f64 / n),
        ),
        (
            "CPU during sync: A (loop) / B (loop)".into(),
            format!(
                "{:.2} s ({:.2} s) / {:.2} s ({:.2} s) = {:.0}% / {:.0}% of one core",
                r.cpu_s[0],
                r.cpu_s[1],
                r.cpu_s[2],
                r.cpu_s[3],
                r.cpu_s[0] / r.job_s * 100.0,
                r.cpu_s[2] / r.job_s * 100.0
            ),
        ),
        (
            "records sent / applied, errors".into(),
            format!("{} / {}, {}", r.records_tx, r.records_rx, r.errors),
        ),
        (
            "job restarts, disconnects (A), error kinds".into(),
            format!("{}, {}, {}", r.restarts, r.disconnects, r.error_kinds),
        ),
        (
            "runnable but waiting for a CPU: A (loop) / B (loop)".into(),
            format!(
                "{:.2} s ({:.2} s) / {:.2} s ({:.2} s)",
                r.wait_s[0], r.wait_s[1], r.wait_s[2], r.wait_s[3]
            ),
        ),
        (
            "machine busy during sync (all processes)".into(),
            format!(
                "{:.2} CPU-s of {:.2} available; others (not A, B) {:.2} CPU-s",
                r.machine_busy_s,
                r.job_wall_s * std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
                (r.machine_busy_s - r.cpu_s[0] - r.cpu_s[2]).max(0.0)
            ),
        ),
    ]
}

fn bulk_figures(r: &bulk::BulkRun, f: &mut Figures) {
    let n = r.n as f64;
    f.num("entries_per_s", r.entries_per_s());
    f.num("wire_bytes_per_entry", r.wire_bytes_per_entry());
    f.num("wire_mb_per_s", r.bytes_tx as f64 / r.job_s / 1e6);
    f.num("job_s", r.job_s);
    f.num("digest_equal_s", r.digest_equal_s);
    f.int("rss_peak_bytes_a", r.hwm[0]);
    f.int("rss_peak_bytes_b", r.hwm[1]);
    f.num(
        "rss_bytes_per_session",
        r.hwm.iter().copied().max().unwrap_or(0) as f64 / n,
    );
    f.num("rss_bytes_per_session_a", r.hwm[0] as f64 / n);
    f.num("rss_bytes_per_session_b", r.hwm[1] as f64 / n);
    f.num("fill_entries_per_s", n / r.fill_s);
    f.num("cpu_s_a", r.cpu_s[0]);
    f.num("cpu_s_a_loop", r.cpu_s[1]);
    f.num("cpu_s_b", r.cpu_s[2]);
    f.num("cpu_s_b_loop", r.cpu_s[3]);
    f.num("wait_s_a", r.wait_s[0]);
    f.num("wait_s_b", r.wait_s[2]);
    f.num("machine_busy_cpu_s", r.machine_busy_s);
    f.int("job_restarts", r.restarts);
    f.int("disconnects", r.disconnects);
}

fn bulk_cmd(a: &BulkArgs, ctx: &Ctx, rep: &mut Report) {
    let n = a.sessions;
    println!(
        "bulk: batch sync of {n} sessions, node A and node B in child processes{}",
        if ctx.encrypt {
            ", AES-256-GCM frames"
        } else if ctx.psk.is_some() {
            ", HMAC-SHA256 frames"
        } else {
            ", CRC32C frames"
        }
    );
    rep.param("sessions", n as u64);
    rep.param("parallel_apply_min_records", a.parallel_apply as u64);
    rep.param(
        "frame_integrity",
        if ctx.encrypt {
            "aes-256-gcm"
        } else if ctx.psk.is_some() {
            "hmac-sha256"
        } else {
            "crc32c"
        },
    );
    let mut runs = Vec::new();
    for i in 0..ctx.repeat {
        eprintln!("run {}/{}", i + 1, ctx.repeat);
        let r = bulk::run(n, ctx.psk(), ctx.encrypt, ctx.dead_count, a.parallel_apply);
        eprintln!(
            "  batch sync: {}/s, equal digests after {:.2} s",
            si(r.entries_per_s()),
            r.digest_equal_s
        );
        bulk_figures(&r, rep.run());
        rep.series(&format!("run {}", i + 1), report::rates(&r.progress, 0.1));
        runs.push(r);
    }
    rep.series_axes(
        "seconds since the sync command",
        "entries acknowledged per second (each 100 ms)",
    );
    let r = median_by(&runs, bulk::BulkRun::entries_per_s);
    let eps = r.entries_per_s();
    let mbps = r.bytes_tx as f64 / r.job_s / 1e6;
    let mut rows = bulk_rows(&r);
    if runs.len() > 1 {
        rows.push((
            "entries/s of every run".into(),
            runs.iter()
                .map(|r| si(r.entries_per_s()))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    print_table("bulk (median run)", &rows);

    if a.no_baselines {
        return;
    }
    let reps = a
        .baseline_repeat
        .unwrap_or(if n <= 2_000_000 { 3 } else { 1 })
        .max(1);
    eprintln!("baselines ({reps} run(s) each)...");
    let tcp: Vec<f64> = (0..reps)
        .map(|_| r.bytes_tx as f64 / baseline::tcp_blast(r.bytes_tx).as_secs_f64())
        .collect();
    let naive_runs: Vec<baseline::NaiveRun> = (0..reps).map(|_| baseline::naive(n)).collect();
    let naive: Vec<f64> = naive_runs
        .iter()
        .map(|x| n as f64 / x.elapsed.as_secs_f64())
        .collect();
    let naive_bpe = naive_runs[0].wire_bytes as f64 / n as f64;
    let insert: Vec<f64> = (0..reps)
        .map(|_| n as f64 / baseline::bare_insert(n).as_secs_f64())
        .collect();
    let (tcp_m, naive_m, insert_m) = (median(&tcp), median(&naive), median(&insert));
    let fmt_all = |v: &[f64]| v.iter().map(|x| si(*x)).collect::<Vec<_>>().join(", ");
    let rows = vec![
        (
            "raw TCP, 1 MiB writes, same bytes".to_string(),
            format!(
                "{:.0} MB/s (runs: {}); hotsync wire MB/s = {:.2}x of it",
                tcp_m / 1e6,
                fmt_all(&tcp),
                mbps * 1e6 / tcp_m
            ),
        ),
        (
            "naive pipeline (rkyv + DashMap)".into(),
            format!(
                "{}/s, {naive_bpe:.1} wire B/entry (runs: {}); hotsync = {:.2}x",
                si(naive_m),
                fmt_all(&naive),
                eps / naive_m
            ),
        ),
        (
            "bare apply_upsert, 1 thread".into(),
            format!(
                "{}/s (runs: {}); hotsync = {:.2}x of it",
                si(insert_m),
                fmt_all(&insert),
                eps / insert_m
            ),
        ),
    ];
    print_table("baselines (same run, medians)", &rows);
    rep.figure_values("baseline_tcp_bytes_per_s", &tcp);
    rep.figure_values("baseline_naive_entries_per_s", &naive);
    rep.figure_values("baseline_naive_wire_bytes_per_entry", &[naive_bpe]);
    rep.figure_values("baseline_insert_entries_per_s", &insert);
    // Each run against the baselines' medians.
    let of_runs = |f: &dyn Fn(&bulk::BulkRun) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    rep.figure_values(
        "ratio_vs_naive",
        &of_runs(&|r: &bulk::BulkRun| r.entries_per_s() / naive_m),
    );
    rep.figure_values(
        "ratio_wire_vs_tcp",
        &of_runs(&|r: &bulk::BulkRun| r.bytes_tx as f64 / r.job_s / tcp_m),
    );
    rep.figure_values(
        "ratio_vs_insert",
        &of_runs(&|r: &bulk::BulkRun| r.entries_per_s() / insert_m),
    );
    rep.reference(
        "naive pipeline (average)",
        naive.iter().sum::<f64>() / naive.len() as f64,
    );
}

fn load_opts(a: &LoadArgs, ctx: &Ctx, background: Option<load::Background>) -> load::LoadOpts {
    load::LoadOpts {
        rate: a.rate.unwrap_or(1_000_000.0),
        duration: Duration::from_secs_f64(a.duration),
        warmup: Duration::from_secs_f64(a.warmup),
        writers: a.writers,
        working_set: a.working_set,
        marker_every: a.marker_every,
        pace_us: a.pace_us,
        probe_us: a.probe_us,
        flush_interval: a.flush_us.map(Duration::from_micros),
        psk: ctx.psk.clone(),
        encrypt: ctx.encrypt,
        dead_count: ctx.dead_count,
        background,
    }
}

fn cpu_obj(p: &load::Phase) -> Value {
    Value::Object(
        p.cpu
            .iter()
            .map(|(n, c, _)| (n.clone(), json!(c)))
            .collect(),
    )
}

fn load_header(o: &load::LoadOpts, what: &str) {
    println!(
        "{what}: {}/s for {} s (+{} s warmup), {} writer(s), working set {}, marker every {} updates, bursts <= {} µs; both nodes in this process",
        si(o.rate),
        o.duration.as_secs_f64(),
        o.warmup.as_secs_f64(),
        o.writers,
        o.working_set,
        o.marker_every,
        o.pace_us
    );
}

fn load_params(o: &load::LoadOpts, rep: &mut Report) {
    rep.param("rate", o.rate);
    rep.param("duration_s", o.duration.as_secs_f64());
    rep.param("writers", o.writers as u64);
    rep.param("working_set", o.working_set as u64);
    if let Some(f) = o.flush_interval {
        rep.param("flush_us", f.as_micros() as u64);
    }
}

/// Runs the load `ctx.repeat` times; `each` prints and records one run.
fn repeat_load(
    o: &load::LoadOpts,
    windows: &[&'static str],
    ctx: &Ctx,
    rep: &mut Report,
    mut each: impl FnMut(&load::LoadResult, &str, &mut Figures),
) {
    for i in 0..ctx.repeat {
        if ctx.repeat > 1 {
            eprintln!("run {}/{}", i + 1, ctx.repeat);
        }
        let r = load::run(o, windows);
        each(&r, &ctx.run_label(i), rep.run());
        for p in &r.phases {
            rep.latency(p.name, &p.hist);
        }
    }
    print_spread(rep);
}

/// With several runs: every figure's median and range.
fn print_spread(rep: &Report) {
    if rep.runs().len() < 2 {
        return;
    }
    let rows: Vec<(String, String)> = compare::figures(&rep.to_json())
        .into_iter()
        .filter(|f| f.runs.len() > 1)
        .map(|f| {
            let all = f
                .runs
                .iter()
                .map(|x| compare::fmt_value(*x))
                .collect::<Vec<_>>()
                .join(", ");
            (
                f.path.clone(),
                format!(
                    "{} (±{:.1}%; runs: {all})",
                    compare::fmt_value(f.value),
                    f.spread() * 100.0
                ),
            )
        })
        .collect();
    print_table(
        &format!(
            "median of {} runs (± half the range around its middle)",
            rep.runs().len()
        ),
        &rows,
    );
}

fn incremental_cmd(a: &LoadArgs, ctx: &Ctx, rep: &mut Report) {
    let o = load_opts(a, ctx, None);
    load_header(&o, "incremental");
    load_params(&o, rep);
    repeat_load(&o, &["load"], ctx, rep, |r, label, f| {
        let p = &r.phases[0];
        let mut rows = phase_rows_with_lag(p, r.max_lag_us);
        rows.insert(
            0,
            (
                "working set created / replicated".into(),
                format!("{:.2} s / {:.2} s", r.prefill_s, r.prefill_sync_s),
            ),
        );
        print_table(&format!("incremental{label}"), &rows);
        f.num("achieved_rate", p.achieved_rate());
        f.obj("latency_us", report::latency_us(&p.hist));
        f.obj("writer_late_us", report::latency_us(&p.writer_hist));
        f.obj("replication_us", report::latency_us(&p.replication_hist));
        f.obj("probe_us", report::latency_us(&p.probe_hist));
        f.int("latency_samples", p.hist.len());
        f.int("latency_lost", p.lost);
        f.num("writer_max_lag_us", r.max_lag_us);
        f.num(
            "records_per_batch",
            p.records_tx as f64 / p.batches_tx.max(1) as f64,
        );
        f.obj("cpu_percent", cpu_obj(p));
        f.num("machine_busy_percent", p.machine_busy);
    });
}

fn phase_rows_with_lag(p: &load::Phase, lag: f64) -> Vec<(String, String)> {
    let mut rows = load::phase_rows(p);
    rows.push((
        "writer: worst lag behind schedule".into(),
        format!("{lag:.0} µs"),
    ));
    rows
}

fn mixed_cmd(a: &MixedArgs, ctx: &Ctx, rep: &mut Report) {
    let bg = load::Background::ConfigSync {
        items: a.config_items,
    };
    let o = load_opts(&a.load, ctx, Some(bg));
    load_header(&o, "mixed");
    load_params(&o, rep);
    rep.param("config_items", a.config_items as u64);
    let windows = ["without config sync", "with config sync"];
    repeat_load(&o, &windows, ctx, rep, |r, label, f| {
        let (p0, p1) = (&r.phases[0], &r.phases[1]);
        let mut rows = load::phase_rows(p0);
        rows.extend(load::phase_rows(p1));
        let cfg = r.background.clone().unwrap_or_default();
        let ratio = p1.q_us(0.99) / p0.q_us(0.99);
        rows.push((
            "config batch sync".into(),
            format!(
                "{} items (parsed in {:.2} s); {} job(s) completed in the window, first in {}; {} items/s; no job running {:.2} s of the window; outcome {}",
                cfg.items,
                cfg.parse_s,
                cfg.jobs_done,
                cfg.first_job_s().map_or("-".into(), |s| format!("{s:.2} s")),
                si(cfg.items_done as f64 / p1.wall.as_secs_f64()),
                cfg.idle_s,
                cfg.first_outcome
            ),
        ));
        rows.push((
            "p99 with / without config sync".into(),
            format!("{ratio:.2}x ({:+.1}%)", (ratio - 1.0) * 100.0),
        ));
        rows.push((
            "writer: worst lag behind schedule".into(),
            format!("{:.0} µs", r.max_lag_us),
        ));
        print_table(&format!("mixed{label}"), &rows);
        f.num("achieved_rate", p1.achieved_rate());
        f.obj("latency_us", report::latency_us(&p1.hist));
        f.num("achieved_rate_without_config", p0.achieved_rate());
        f.obj("latency_us_without_config", report::latency_us(&p0.hist));
        f.num("p99_increase_percent", (ratio - 1.0) * 100.0);
        f.num("p99_ratio_with_config", ratio);
        f.num(
            "config_items_per_s",
            cfg.items_done as f64 / p1.wall.as_secs_f64(),
        );
        f.int("config_jobs_done", cfg.jobs_done);
        if let Some(s) = cfg.first_job_s() {
            f.num("config_job_s", s);
        }
        f.obj("cpu_percent", cpu_obj(p1));
        f.obj("cpu_percent_without_config", cpu_obj(p0));
        f.num("machine_busy_percent", p1.machine_busy);
        f.num("machine_busy_percent_without_config", p0.machine_busy);
    });
}

fn during_bulk_cmd(a: &DuringBulkArgs, ctx: &Ctx, rep: &mut Report) {
    let mut o = load_opts(&a.load, ctx, Some(load::Background::BatchSync));
    o.rate = a.load.rate.unwrap_or(200_000.0);
    load_header(&o, "during-bulk");
    println!(
        "  window 2: batch syncs of the whole table ({} sessions), restarted as each ends",
        o.working_set
    );
    load_params(&o, rep);
    rep.param("bulk_sessions", o.working_set as u64);
    let windows = ["alone", "during batch sync"];
    repeat_load(&o, &windows, ctx, rep, |r, label, f| {
        let (p0, p1) = (&r.phases[0], &r.phases[1]);
        let mut rows = load::phase_rows(p0);
        rows.extend(load::phase_rows(p1));
        let bg = r.background.clone().unwrap_or_default();
        let ratio = p1.q_us(0.99) / p0.q_us(0.99);
        let job_s = median(&bg.job_s);
        rows.push((
            "batch syncs in window 2".into(),
            format!(
                "{} completed (median {:.3} s each), {}/s entries acknowledged; no job running {:.3} s of {:.2} s",
                bg.jobs_done,
                job_s,
                si(bg.items_done as f64 / p1.wall.as_secs_f64()),
                bg.idle_s,
                p1.wall.as_secs_f64()
            ),
        ));
        rows.push((
            "p99 during / without batch sync".into(),
            format!("{ratio:.2}x"),
        ));
        rows.push((
            "writer: worst lag behind schedule".into(),
            format!("{:.0} µs", r.max_lag_us),
        ));
        print_table(&format!("during-bulk{label}"), &rows);
        f.num("achieved_rate", p1.achieved_rate());
        f.obj("latency_us", report::latency_us(&p1.hist));
        f.num("achieved_rate_alone", p0.achieved_rate());
        f.obj("latency_us_alone", report::latency_us(&p0.hist));
        f.num("p99_ratio_during_bulk", ratio);
        f.int("latency_lost", p0.lost + p1.lost);
        f.int("bulk_jobs_done", bg.jobs_done);
        f.num("bulk_job_s", job_s);
        f.num(
            "bulk_entries_per_s",
            bg.items_done as f64 / p1.wall.as_secs_f64(),
        );
        f.num("bulk_idle_s", bg.idle_s);
        f.obj("cpu_percent", cpu_obj(p1));
        f.obj("cpu_percent_alone", cpu_obj(p0));
        f.num("machine_busy_percent", p1.machine_busy);
        f.num("machine_busy_percent_alone", p0.machine_busy);
    });
}

fn lookup_cmd(a: &lookup::LookupArgs, ctx: &Ctx, rep: &mut Report) {
    rep.latency_title("lookup latency");
    rep.latency_units(Unit::Nanos, Unit::Nanos);
    for i in 0..ctx.repeat {
        if ctx.repeat > 1 {
            eprintln!("run {}/{}", i + 1, ctx.repeat);
        }
        let (fields, windows) = lookup::run(a);
        let (params, figures): (Vec<_>, Vec<_>) = fields
            .into_iter()
            .partition(|(k, _)| matches!(k.as_str(), "scenario" | "sessions" | "readers"));
        for (k, v) in params {
            rep.param(&k, v);
        }
        rep.run().extend(figures);
        for (name, hist) in &windows {
            rep.latency(name, hist);
        }
    }
    print_spread(rep);
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn conntrack_cmd(a: &conntrack::ConntrackArgs, ctx: &Ctx, rep: &mut Report) {
    if let Some(why) = ctlab::cannot_run() {
        eprintln!("conntrack: cannot run here: {why}");
        std::process::exit(2);
    }
    ctlab::install_cleanup();
    let with_ctd = !a.no_conntrackd && conntrack::conntrackd_installed();
    if !a.no_conntrackd && !with_ctd {
        eprintln!("conntrack: conntrackd/conntrack not installed: hotsync only");
    }
    // Two firewalls' tables at once, plus the event entries.
    ctlab::raise_conntrack_max(2 * u64::from(a.entries + a.event_entries) + 100_000);
    println!(
        "conntrack: {} entries, takeover of {} + a live flow, fw-a and fw-b in network namespaces over a veth{}",
        a.entries,
        a.takeover_entries,
        if with_ctd {
            "; conntrackd FTFW on the same topology"
        } else {
            ""
        }
    );
    rep.param("entries", u64::from(a.entries));
    rep.param("takeover_entries", u64::from(a.takeover_entries));
    rep.param("event_entries", u64::from(a.event_entries));
    rep.param("conntrackd", with_ctd);
    rep.param("mode", if a.mirror { "mirror" } else { "commit" });
    let mut notes = Vec::new();
    for i in 0..ctx.repeat {
        eprintln!("run {}/{} (load average {})", i + 1, ctx.repeat, loadavg());
        let mut f = conntrack::CtFigures::default();
        conntrack::hotsync_rates(a, &mut f);
        if with_ctd {
            conntrack::conntrackd_rates(a, &mut f);
        }
        if !a.no_takeover {
            // Mirror mode's figures under their own keys.
            let ours = if a.mirror {
                "conntrack_mirror"
            } else {
                "conntrack"
            };
            let mut tools = vec![(ours, conntrack::Tool::Hotsync)];
            if with_ctd {
                tools.push(("conntrackd", conntrack::Tool::Conntrackd));
            }
            for (name, tool) in tools {
                let (s, survived, flow) = conntrack::takeover(tool, a.takeover_entries, a.mirror);
                eprintln!(
                    "  {name}: takeover of {} entries + a live flow: {s:.3} s (the flow passed after {flow:.3} s; {})",
                    a.takeover_entries,
                    if survived {
                        "survived"
                    } else {
                        "broken: no echo within 2 s"
                    }
                );
                let key = |what: &str| {
                    if a.takeover_entries == 100_000 {
                        format!("{name}_takeover_100k_{what}")
                    } else {
                        format!("{name}_takeover_{}_{what}", a.takeover_entries)
                    }
                };
                f.put_owned(key("s"), s);
                f.put_owned(key("flow_s"), flow);
                f.put_owned(key("flow_survived"), f64::from(u8::from(survived)));
            }
        }
        let get = |f: &conntrack::CtFigures, k: &str| {
            f.values
                .iter()
                .find(|(n, _)| n == k)
                .map_or(f64::NAN, |(_, v)| *v)
        };
        for (ratio, ours, theirs, inverse) in [
            (
                "ratio_bulk_vs_conntrackd",
                "conntrack_bulk_entries_per_s",
                "conntrackd_bulk_entries_per_s",
                false,
            ),
            (
                "ratio_commit_vs_conntrackd",
                "conntrack_commit_entries_per_s",
                "conntrackd_commit_entries_per_s",
                false,
            ),
            (
                "ratio_takeover_vs_conntrackd",
                "conntrack_takeover_100k_s",
                "conntrackd_takeover_100k_s",
                true,
            ),
            (
                "ratio_commit_vs_kernel_insert",
                "conntrack_commit_entries_per_s",
                "kernel_insert_at_commit_entries_per_s",
                false,
            ),
            (
                "ratio_conntrackd_commit_vs_kernel_insert",
                "conntrackd_commit_entries_per_s",
                "conntrackd_run_kernel_insert_at_commit_entries_per_s",
                false,
            ),
            (
                "ratio_dump_vs_kernel_dump",
                "conntrack_dump_entries_per_s",
                "kernel_dump_entries_per_s",
                false,
            ),
        ] {
            let (o, t) = (get(&f, ours), get(&f, theirs));
            if o.is_finite() && t.is_finite() {
                f.put_owned(ratio.into(), if inverse { t / o } else { o / t });
            }
        }
        f.put_owned(
            "loadavg_1m_after".into(),
            loadavg()
                .split(' ')
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(f64::NAN),
        );
        let rows: Vec<(String, String)> = f
            .values
            .iter()
            .map(|(k, v)| {
                let shown = if k.ends_with("_per_s") {
                    format!("{}/s", si(*v))
                } else {
                    format!("{v:.3}")
                };
                (k.to_string(), shown)
            })
            .collect();
        print_table(
            &format!("conntrack{} (load average {})", ctx.run_label(i), loadavg()),
            &rows,
        );
        let figs = rep.run();
        for (k, v) in &f.values {
            if v.is_finite() {
                figs.num(k, *v);
            }
        }
        notes.extend(f.notes);
    }
    for n in &notes {
        println!("note: {n}");
    }
    ctlab::cleanup_all();
}

fn compare_cmd(a: &CompareArgs) -> i32 {
    let mut reports = Vec::new();
    for path in &a.files {
        let read = std::fs::read_to_string(path).map_err(|e| e.to_string());
        match read.and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string())) {
            Ok(v) => reports.push((path.display().to_string(), v)),
            Err(e) => {
                eprintln!("hotsync-bench compare: {}: {e}", path.display());
                return 2;
            }
        }
    }
    let (old_name, old) = &reports[0];
    for (i, (name, new)) in reports.iter().enumerate().skip(1) {
        if i > 1 {
            println!();
        }
        print!("{}", compare::render(old_name, old, name, new));
    }
    0
}

fn main() {
    let cli = Cli::parse();
    let ctx = Ctx {
        psk: cli.psk.clone(),
        encrypt: cli.encrypt,
        dead_count: cli.dead_count,
        repeat: cli.repeat.max(1),
    };
    let mut rep = match &cli.cmd {
        Cmd::NodeChild(c) => return bulk::child_main(c),
        Cmd::CtNodeChild(c) => return conntrack::child_main(c),
        Cmd::Compare(a) => std::process::exit(compare_cmd(a)),
        Cmd::Bulk(_) => Report::new("bulk"),
        Cmd::Incremental(_) => Report::new("incremental"),
        Cmd::Mixed(_) => Report::new("mixed"),
        Cmd::DuringBulk(_) => Report::new("during-bulk"),
        Cmd::Lookup(_) => Report::new("lookup"),
        Cmd::Conntrack(_) => Report::new("conntrack"),
    };
    let args: Vec<String> = std::env::args().collect();
    rep.param("command", args.join(" "));
    rep.param("dead_count", u64::from(cli.dead_count));
    rep.param(
        "cores",
        std::thread::available_parallelism().map_or(0, |n| n.get() as u64),
    );
    match &cli.cmd {
        Cmd::Bulk(a) => bulk_cmd(a, &ctx, &mut rep),
        Cmd::Incremental(a) => incremental_cmd(a, &ctx, &mut rep),
        Cmd::Mixed(a) => mixed_cmd(a, &ctx, &mut rep),
        Cmd::DuringBulk(a) => during_bulk_cmd(a, &ctx, &mut rep),
        Cmd::Lookup(a) => lookup_cmd(a, &ctx, &mut rep),
        Cmd::Conntrack(a) => conntrack_cmd(a, &ctx, &mut rep),
        Cmd::NodeChild(_) | Cmd::CtNodeChild(_) | Cmd::Compare(_) => {
            unreachable!("handled above")
        }
    }
    if cli.hgrm.is_some() && rep.windows().is_empty() {
        eprintln!("--hgrm: {} has no latency histograms", rep.scenario());
    }
    let out = Outputs {
        json: cli.json.clone(),
        hgrm: cli.hgrm.clone().filter(|_| !rep.windows().is_empty()),
        plot: cli.plot.clone(),
    };
    match rep.write(&out) {
        Ok(files) if !files.is_empty() => {
            println!();
            for f in files {
                println!("wrote {}", f.display());
            }
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("hotsync-bench: writing the report: {e}");
            std::process::exit(1);
        }
    }
}
