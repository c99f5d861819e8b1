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
//! - `lookup`: reader threads' lookups while one writer applies records,
//!   for the table, a mutex-table baseline and a DashMap.
//!
//! `--json FILE` writes every figure.

mod baseline;
mod bulk;
mod load;
mod lookup;
mod util;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use std::time::Duration;
use util::{Report, print_table, si};

#[derive(Parser, Debug)]
#[command(
    name = "hotsync-bench",
    about = "hotsync end-to-end benchmarks with baselines"
)]
struct Cli {
    /// Write every figure to this file as JSON.
    #[arg(long, global = true)]
    json: Option<std::path::PathBuf>,
    /// Pre-shared key for the pair (HMAC-SHA256 frame tags after the
    /// handshake); without it frames carry CRC32C.
    #[arg(long, global = true)]
    psk: Option<String>,
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
    /// Lookups racing a writer: the table, a mutex table, a DashMap.
    Lookup(lookup::LookupArgs),
    /// One node in a child process (driven by the bulk scenario).
    #[command(hide = true)]
    NodeChild(bulk::ChildArgs),
}

#[derive(Args, Debug)]
struct BulkArgs {
    /// Sessions to create on the active and batch-sync.
    #[arg(long, default_value_t = 1_000_000)]
    sessions: usize,
    /// Runs of the whole scenario (fresh processes each); figures are
    /// the median run's.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Runs of each baseline (median reported); default 3 up to 2M
    /// sessions, else 1.
    #[arg(long)]
    baseline_repeat: Option<usize>,
    /// Skip the baselines.
    #[arg(long)]
    no_baselines: bool,
}

#[derive(Args, Debug, Clone)]
struct LoadArgs {
    /// Updates per second (all writers together).
    #[arg(long, default_value_t = 1_000_000.0)]
    rate: f64,
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
}

#[derive(Args, Debug)]
struct MixedArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Security rules in the active's configuration (synced in phase 2).
    #[arg(long, default_value_t = 100_000)]
    config_items: usize,
}

fn median_by<T: Clone>(v: &[T], key: impl Fn(&T) -> f64) -> T {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| key(&v[a]).total_cmp(&key(&v[b])));
    v[idx[(idx.len() - 1) / 2]].clone()
}

fn median(v: &[f64]) -> f64 {
    median_by(v, |x| *x)
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn bulk_cmd(a: &BulkArgs, psk: Option<&str>, dead_count: u32, rep: &mut Report) {
    let n = a.sessions;
    println!(
        "bulk: batch sync of {n} sessions, node A and node B in child processes{}",
        if psk.is_some() {
            ", HMAC-SHA256 frames"
        } else {
            ", CRC32C frames"
        }
    );
    let mut runs = Vec::new();
    for i in 0..a.repeat.max(1) {
        eprintln!("run {}/{}", i + 1, a.repeat.max(1));
        let r = bulk::run(n, psk, dead_count);
        eprintln!(
            "  batch sync: {}/s, equal digests after {:.2} s",
            si(r.entries_per_s()),
            r.digest_equal_s
        );
        runs.push(r);
    }
    let r = median_by(&runs, bulk::BulkRun::entries_per_s);
    let eps = r.entries_per_s();
    let bpe = r.wire_bytes_per_entry();
    let mbps = r.bytes_tx as f64 / r.job_s / 1e6;
    let rss_per = r.hwm.iter().copied().max().unwrap_or(0) as f64 / n as f64;
    let mut rows = vec![
        ("sessions".to_string(), n.to_string()),
        (
            "A: data plane created them in".into(),
            format!(
                "{:.2} s ({}/s, before B started)",
                r.fill_s,
                si(n as f64 / r.fill_s)
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
        ("entries/s".into(), si(eps)),
        (
            "wire bytes/entry".into(),
            format!("{bpe:.1} ({} frames, {} bytes)", r.frames_tx, r.bytes_tx),
        ),
        ("wire MB/s".into(), format!("{mbps:.0}")),
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
            format!(
                "{:.1} / {:.1} B",
                r.hwm[0] as f64 / n as f64,
                r.hwm[1] as f64 / n as f64
            ),
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
    ];
    rows.push((
        "runnable but waiting for a CPU: A (loop) / B (loop)".into(),
        format!(
            "{:.2} s ({:.2} s) / {:.2} s ({:.2} s)",
            r.wait_s[0], r.wait_s[1], r.wait_s[2], r.wait_s[3]
        ),
    ));
    rows.push((
        "machine busy during sync (all processes)".into(),
        format!(
            "{:.2} CPU-s of {:.2} available; others (not A, B) {:.2} CPU-s",
            r.machine_busy_s,
            r.job_wall_s * std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
            (r.machine_busy_s - r.cpu_s[0] - r.cpu_s[2]).max(0.0)
        ),
    ));
    if runs.len() > 1 {
        rows.push((
            "entries/s of every run".into(),
            runs.iter()
                .map(|r| si(r.entries_per_s()))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    rep.str("scenario", "bulk");
    rep.int("sessions", n as u64);
    rep.str(
        "frame_integrity",
        if psk.is_some() {
            "hmac-sha256"
        } else {
            "crc32c"
        },
    );
    rep.num("entries_per_s", eps);
    rep.num("wire_bytes_per_entry", bpe);
    rep.num("wire_mb_per_s", mbps);
    rep.num("job_s", r.job_s);
    rep.num("digest_equal_s", r.digest_equal_s);
    rep.int("rss_peak_bytes_a", r.hwm[0]);
    rep.int("rss_peak_bytes_b", r.hwm[1]);
    rep.num("rss_bytes_per_session", rss_per);
    rep.num("rss_bytes_per_session_a", r.hwm[0] as f64 / n as f64);
    rep.num("rss_bytes_per_session_b", r.hwm[1] as f64 / n as f64);
    rep.num("fill_entries_per_s", n as f64 / r.fill_s);
    rep.num("cpu_s_a", r.cpu_s[0]);
    rep.num("cpu_s_a_loop", r.cpu_s[1]);
    rep.num("cpu_s_b", r.cpu_s[2]);
    rep.num("cpu_s_b_loop", r.cpu_s[3]);
    rep.num("wait_s_a", r.wait_s[0]);
    rep.num("wait_s_b", r.wait_s[2]);
    rep.num("machine_busy_cpu_s", r.machine_busy_s);
    rep.int("job_restarts", r.restarts);
    rep.int("disconnects", r.disconnects);
    if runs.len() > 1 {
        rep.str(
            "runs_entries_per_s",
            &runs
                .iter()
                .map(|r| format!("{:.0}", r.entries_per_s()))
                .collect::<Vec<_>>()
                .join(","),
        );
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
    rep.num("baseline_tcp_bytes_per_s", tcp_m);
    rep.num("baseline_naive_entries_per_s", naive_m);
    rep.num("baseline_naive_wire_bytes_per_entry", naive_bpe);
    rep.num("baseline_insert_entries_per_s", insert_m);
    rep.num("ratio_vs_naive", eps / naive_m);
    rep.num("ratio_wire_vs_tcp", mbps * 1e6 / tcp_m);
    rep.num("ratio_vs_insert", eps / insert_m);
}

fn load_opts(
    a: &LoadArgs,
    psk: Option<&str>,
    dead_count: u32,
    config_items: Option<usize>,
) -> load::LoadOpts {
    load::LoadOpts {
        rate: a.rate,
        duration: Duration::from_secs_f64(a.duration),
        warmup: Duration::from_secs_f64(a.warmup),
        writers: a.writers,
        working_set: a.working_set,
        marker_every: a.marker_every,
        pace_us: a.pace_us,
        probe_us: a.probe_us,
        psk: psk.map(str::to_owned),
        dead_count,
        config_items,
    }
}

fn latency_obj(p: &load::Phase) -> Value {
    json!({
        "p50": p.q_us(0.5),
        "p90": p.q_us(0.9),
        "p99": p.q_us(0.99),
        "p999": p.q_us(0.999),
        "max": p.max_us(),
    })
}

fn cpu_obj(p: &load::Phase) -> Value {
    Value::Object(
        p.cpu
            .iter()
            .map(|(n, c, _)| (n.clone(), json!(c)))
            .collect(),
    )
}

fn load_header(a: &LoadArgs, what: &str) {
    println!(
        "{what}: {}/s for {} s (+{} s warmup), {} writer(s), working set {}, marker every {} updates, bursts <= {} µs; both nodes in this process",
        si(a.rate),
        a.duration,
        a.warmup,
        a.writers,
        a.working_set,
        a.marker_every,
        a.pace_us
    );
}

fn incremental_cmd(a: &LoadArgs, psk: Option<&str>, dead_count: u32, rep: &mut Report) {
    load_header(a, "incremental");
    let r = load::run(&load_opts(a, psk, dead_count, None), &["incremental"]);
    let p = &r.phases[0];
    let mut rows = phase_rows_with_lag(p, r.max_lag_us);
    rows.insert(
        0,
        (
            "working set created / replicated".into(),
            format!("{:.2} s / {:.2} s", r.prefill_s, r.prefill_sync_s),
        ),
    );
    print_table("incremental", &rows);
    rep.str("scenario", "incremental");
    rep.num("rate", a.rate);
    rep.num("achieved_rate", p.achieved_rate());
    rep.obj("latency_us", latency_obj(p));
    rep.int("latency_samples", p.hist.len());
    rep.int("latency_lost", p.lost);
    rep.num("writer_max_lag_us", r.max_lag_us);
    rep.num(
        "records_per_batch",
        p.records_tx as f64 / p.batches_tx.max(1) as f64,
    );
    rep.obj("cpu_percent", cpu_obj(p));
    rep.num("machine_busy_percent", p.machine_busy);
}

fn phase_rows_with_lag(p: &load::Phase, lag: f64) -> Vec<(String, String)> {
    let mut rows = load::phase_rows(p);
    rows.push((
        "writer: worst lag behind schedule".into(),
        format!("{lag:.0} µs"),
    ));
    rows
}

fn mixed_cmd(a: &MixedArgs, psk: Option<&str>, dead_count: u32, rep: &mut Report) {
    load_header(&a.load, "mixed");
    let r = load::run(
        &load_opts(&a.load, psk, dead_count, Some(a.config_items)),
        &["without config sync", "with config sync"],
    );
    let (p0, p1) = (&r.phases[0], &r.phases[1]);
    let mut rows = load::phase_rows(p0);
    rows.extend(load::phase_rows(p1));
    let cfg = r.config.clone().unwrap_or_default();
    let inc = (p1.q_us(0.99) / p0.q_us(0.99) - 1.0) * 100.0;
    rows.push((
        "config batch sync".into(),
        format!(
            "{} items (parsed in {:.2} s); {} job(s) completed in the window, first in {}; {} items/s; outcome {}",
            cfg.items,
            cfg.parse_s,
            cfg.jobs_done,
            cfg.first_job_s.map_or("-".into(), |s| format!("{s:.2} s")),
            si(cfg.items_done as f64 / p1.wall.as_secs_f64()),
            cfg.first_outcome
        ),
    ));
    rows.push((
        "p99 with / without config sync".into(),
        format!("{:+.1}%", inc),
    ));
    rows.push((
        "writer: worst lag behind schedule".into(),
        format!("{:.0} µs", r.max_lag_us),
    ));
    print_table("mixed", &rows);
    rep.str("scenario", "mixed");
    rep.num("rate", a.load.rate);
    rep.int("config_items", cfg.items as u64);
    rep.num("achieved_rate", p1.achieved_rate());
    rep.obj("latency_us", latency_obj(p1));
    rep.num("achieved_rate_without_config", p0.achieved_rate());
    rep.obj("latency_us_without_config", latency_obj(p0));
    rep.num("p99_increase_percent", inc);
    rep.num(
        "config_items_per_s",
        cfg.items_done as f64 / p1.wall.as_secs_f64(),
    );
    rep.int("config_jobs_done", cfg.jobs_done);
    rep.obj("cpu_percent", cpu_obj(p1));
    rep.obj("cpu_percent_without_config", cpu_obj(p0));
    rep.num("machine_busy_percent", p1.machine_busy);
    rep.num("machine_busy_percent_without_config", p0.machine_busy);
}

fn main() {
    let cli = Cli::parse();
    let psk = cli.psk.as_deref();
    let mut rep = Report::default();
    match &cli.cmd {
        Cmd::NodeChild(c) => return bulk::child_main(c),
        Cmd::Bulk(a) => bulk_cmd(a, psk, cli.dead_count, &mut rep),
        Cmd::Incremental(a) => incremental_cmd(a, psk, cli.dead_count, &mut rep),
        Cmd::Mixed(a) => mixed_cmd(a, psk, cli.dead_count, &mut rep),
        Cmd::Lookup(a) => lookup::run(a).into_iter().for_each(|(k, v)| rep.obj(&k, v)),
    }
    let args: Vec<String> = std::env::args().collect();
    rep.str("command", &args.join(" "));
    rep.int("dead_count", u64::from(cli.dead_count));
    rep.int(
        "cores",
        std::thread::available_parallelism().map_or(0, |n| n.get() as u64),
    );
    if let Some(path) = &cli.json {
        std::fs::write(path, rep.render()).expect("write JSON");
        println!("\nJSON: {}", path.display());
    }
}
