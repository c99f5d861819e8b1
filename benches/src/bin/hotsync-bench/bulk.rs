//! `bulk`: a batch sync (`hrp sync connection-status`) of N sessions between
//! two nodes, each in its own child process (this binary re-executed with
//! the hidden `node-child` subcommand, driven by lines on stdin/stdout), so
//! each node's peak RSS is its own `VmHWM`.
//!
//! Order of events: A starts alone and its data plane creates N sessions;
//! only then B starts. B4: entries that existed before the relationship
//! formed are not synced automatically, so the batch sync carries all N
//! alone (no incremental traffic overlaps it).

use crate::util::{
    LiveSessions, machine_busy_ns, node_config, process_cpu_ns, si, thread_cpu_ns, two_port_pairs,
    vm_hwm_rss,
};
use hotsync_config::ConfigStore;
use hotsync_node::{Node, NodeHandle};
use hotsync_proto::JobState;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Arguments of the hidden child.
#[derive(clap::Args, Debug, Clone)]
pub struct ChildArgs {
    #[arg(long)]
    pub node_id: u64,
    #[arg(long)]
    pub priority: u16,
    #[arg(long)]
    pub listen: u16,
    #[arg(long)]
    pub peer: u16,
    #[arg(long)]
    pub max_sessions: usize,
    #[arg(long)]
    pub psk: Option<String>,
    #[arg(long)]
    pub encrypt: bool,
    #[arg(long)]
    pub dead_count: u32,
    /// `ProtoConfig::parallel_apply_min_records` (0: one apply thread).
    #[arg(long, default_value_t = 0)]
    pub parallel_apply: usize,
}

/// The child: starts one node, then answers one line per command.
pub fn child_main(a: &ChildArgs) {
    let mut cfg = node_config(
        a.node_id,
        a.priority,
        a.listen,
        a.peer,
        a.max_sessions,
        a.psk.as_deref(),
        a.encrypt,
        a.dead_count,
        ConfigStore::new(),
    );
    cfg.proto.parallel_apply_min_records = a.parallel_apply;
    let node = match Node::start(cfg) {
        Ok(n) => n,
        Err(e) => {
            println!("err {e}");
            return;
        }
    };
    println!("ready");
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = child_command(&node, &words);
        let _ = writeln!(out, "{reply}");
        let _ = out.flush();
        if words.first() == Some(&"quit") {
            break;
        }
    }
    node.shutdown();
}

/// One command of the node children (shared with the `conntrack` scenario).
pub fn child_command(node: &NodeHandle, w: &[&str]) -> String {
    let arg = |i: usize| w.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    match w.first().copied().unwrap_or("") {
        "fill" => {
            let (n, seed) = (arg(1), arg(2));
            let mut g = LiveSessions::new(seed);
            let t = Instant::now();
            for _ in 0..n {
                let (k, e) = g.next_session();
                if node.table().upsert(&k, &e).is_err() {
                    return "err table full".into();
                }
            }
            format!("ok {}", t.elapsed().as_secs_f64())
        }
        "established" => format!("{}", u8::from(node.is_established())),
        "sync" => match node.sync_connection_status() {
            Ok(id) => format!("job {id}"),
            Err(e) => format!("err {e}"),
        },
        "job" => match node.job(arg(1)) {
            Some(j) => {
                let state = match j.state {
                    JobState::Running => "running".to_string(),
                    JobState::Done => "done".to_string(),
                    JobState::Failed(why) => format!("failed:{}", why.replace(' ', "_")),
                };
                let el = j.finished.map_or(-1.0, |f| (f - j.started).as_secs_f64());
                format!(
                    "job {state} {} {} {} {el} {}",
                    j.sent, j.acked, j.total, j.restarts
                )
            }
            None => "job none 0 0 0 -1".into(),
        },
        "digest" => {
            let d = node.table().digest();
            format!("digest {} {}", d.combined(), d.entries)
        }
        "stats" => {
            let s = node.state().peer.stats;
            let errs = s
                .errors
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            format!(
                "stats {} {} {} {} {} {} {} {} {} {} {}",
                s.bytes_tx,
                s.records_tx,
                s.frames_tx,
                s.bytes_rx,
                s.records_rx,
                s.error_total(),
                s.changes_before_establish,
                s.shards_resynced,
                s.connections,
                s.disconnects,
                if errs.is_empty() { "-".into() } else { errs }
            )
        }
        "mem" => {
            let (hwm, rss) = vm_hwm_rss("self");
            format!("mem {hwm} {rss}")
        }
        "cpu" => {
            let threads = thread_cpu_ns();
            let (lp, lw) = threads
                .iter()
                .filter(|(n, _, _)| n.starts_with("hotsync-node"))
                .fold((0, 0), |(r, w), (_, a, b)| (r + a, w + b));
            let (p, pw) = process_cpu_ns();
            format!("cpu {p} {lp} {pw} {lw}")
        }
        "quit" => "bye".into(),
        other => format!("err unknown command {other}"),
    }
}

/// A node child process, driven by lines on its stdin.
pub struct NodeProc {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl NodeProc {
    fn spawn(name: &'static str, a: &ChildArgs) -> NodeProc {
        let exe = std::env::current_exe().expect("own executable");
        let mut cmd = Command::new(exe);
        cmd.arg("node-child")
            .args(["--node-id", &a.node_id.to_string()])
            .args(["--priority", &a.priority.to_string()])
            .args(["--listen", &a.listen.to_string()])
            .args(["--peer", &a.peer.to_string()])
            .args(["--max-sessions", &a.max_sessions.to_string()])
            .args(["--dead-count", &a.dead_count.to_string()])
            .args(["--parallel-apply", &a.parallel_apply.to_string()]);
        if let Some(k) = &a.psk {
            cmd.args(["--psk", k]);
        }
        if a.encrypt {
            cmd.arg("--encrypt");
        }
        Self::spawn_cmd(name, cmd)
    }

    /// Starts `cmd` (a node child) and waits for its `ready` line.
    pub fn spawn_cmd(name: &'static str, mut cmd: Command) -> NodeProc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn node child");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut p = NodeProc {
            name,
            child,
            stdin,
            stdout,
        };
        let hello = p.read_line();
        assert_eq!(hello, "ready", "node {name} did not start: {hello}");
        p
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    fn read_line(&mut self) -> String {
        let mut s = String::new();
        self.stdout.read_line(&mut s).expect("child stdout");
        s.trim().to_string()
    }

    /// Sends one command; panics on an `err` reply.
    pub fn cmd(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").expect("child stdin");
        self.stdin.flush().expect("child stdin");
        let r = self.read_line();
        assert!(!r.starts_with("err"), "node {}: {line}: {r}", self.name);
        r
    }

    /// The numbers of a reply (after its first word).
    pub fn nums(&mut self, line: &str) -> Vec<f64> {
        self.cmd(line)
            .split_whitespace()
            .skip(1)
            .map(|w| w.parse().unwrap_or(f64::NAN))
            .collect()
    }

    /// Asks the child to stop and waits for it.
    pub fn quit(mut self) {
        let _ = self.cmd("quit");
        let _ = self.child.wait();
    }
}

/// Everything one bulk run measured.
#[derive(Debug, Clone, Default)]
pub struct BulkRun {
    pub n: u64,
    pub fill_s: f64,
    pub establish_s: f64,
    /// Job start until every record acknowledged (the sender's job clock).
    pub job_s: f64,
    /// From the `sync` command until the parent saw the job done.
    pub job_wall_s: f64,
    /// From the `sync` command until the parent saw equal digests.
    pub digest_equal_s: f64,
    pub bytes_tx: u64,
    pub records_tx: u64,
    pub frames_tx: u64,
    pub records_rx: u64,
    pub errors: u64,
    pub discarded_before_establish: u64,
    pub restarts: u64,
    pub disconnects: u64,
    pub error_kinds: String,
    pub hwm: [u64; 2],
    pub rss: [u64; 2],
    /// CPU seconds during the sync: [A process, A loop, B process, B loop].
    pub cpu_s: [f64; 4],
    /// Busy CPU seconds of the whole machine during the sync.
    pub machine_busy_s: f64,
    /// Seconds runnable but waiting for a CPU, same order.
    pub wait_s: [f64; 4],
    /// Progress of the job: (seconds since the sync command, entries
    /// acknowledged), sampled every [`PROGRESS_POLL`] or so.
    pub progress: Vec<(f64, u64)>,
}

impl BulkRun {
    pub fn entries_per_s(&self) -> f64 {
        self.n as f64 / self.job_s
    }
    pub fn wire_bytes_per_entry(&self) -> f64 {
        self.bytes_tx as f64 / self.records_tx.max(1) as f64
    }
}

/// How often the parent asks A how far the job is (its progress samples).
pub const PROGRESS_POLL: Duration = Duration::from_millis(2);

/// One bulk run of `n` sessions.
pub fn run(
    n: usize,
    psk: Option<&str>,
    encrypt: bool,
    dead_count: u32,
    parallel_apply: usize,
) -> BulkRun {
    let (pa, pb) = two_port_pairs();
    let max = n + n / 8 + 1024;
    let args = |id, prio, me, peer| ChildArgs {
        node_id: id,
        priority: prio,
        listen: me,
        peer,
        max_sessions: max,
        psk: psk.map(str::to_owned),
        encrypt,
        dead_count,
        parallel_apply,
    };
    let mut r = BulkRun {
        n: n as u64,
        ..BulkRun::default()
    };
    let mut a = NodeProc::spawn("A", &args(1, 200, pa, pb));
    let f = a.nums(&format!("fill {n} 1"));
    r.fill_s = f[0];
    eprintln!(
        "  A: {} sessions created by the data plane in {:.2} s ({}/s)",
        n,
        r.fill_s,
        si(n as f64 / r.fill_s)
    );
    let t_est = Instant::now();
    let mut b = NodeProc::spawn("B", &args(2, 100, pb, pa));
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.cmd("established") != "1" || b.cmd("established") != "1" {
        assert!(Instant::now() < deadline, "no relationship within 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    r.establish_s = t_est.elapsed().as_secs_f64();
    let db = b.nums("digest");
    assert_eq!(db[1], 0.0, "B4: nothing may reach B before the batch sync");
    let s0 = a.nums("stats");
    let ca0 = a.nums("cpu");
    let cb0 = b.nums("cpu");
    let m0 = machine_busy_ns();
    let t0 = Instant::now();
    let id = a.cmd("sync");
    let id = id.trim_start_matches("job ").to_string();
    r.progress.push((0.0, 0));
    let job = loop {
        let j = a.cmd(&format!("job {id}"));
        let w: Vec<&str> = j.split_whitespace().collect();
        let acked = w.get(3).and_then(|x| x.parse().ok()).unwrap_or(0);
        r.progress.push((t0.elapsed().as_secs_f64(), acked));
        if w[1] != "running" {
            break w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        }
        std::thread::sleep(PROGRESS_POLL);
    };
    r.job_wall_s = t0.elapsed().as_secs_f64();
    assert_eq!(job[1], "done", "batch sync failed: {job:?}");
    r.job_s = job[5].parse().unwrap_or(r.job_wall_s);
    r.machine_busy_s = (machine_busy_ns() - m0) as f64 / 1e9;
    let ca1 = a.nums("cpu");
    let cb1 = b.nums("cpu");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let da = a.cmd("digest");
        let db = b.cmd("digest");
        if da == db {
            break;
        }
        assert!(Instant::now() < deadline, "digests differ: {da} / {db}");
        std::thread::sleep(Duration::from_millis(1));
    }
    r.digest_equal_s = t0.elapsed().as_secs_f64();
    let s1 = a.nums("stats");
    let sb = b.nums("stats");
    r.restarts = job[6].parse().unwrap_or(0);
    r.disconnects = (s1[9] - s0[9]) as u64;
    let errs = |n: &mut NodeProc| {
        n.cmd("stats")
            .split_whitespace()
            .last()
            .unwrap_or("-")
            .to_string()
    };
    r.error_kinds = format!("A: {}, B: {}", errs(&mut a), errs(&mut b));
    r.bytes_tx = (s1[0] - s0[0]) as u64;
    r.records_tx = (s1[1] - s0[1]) as u64;
    r.frames_tx = (s1[2] - s0[2]) as u64;
    r.records_rx = sb[4] as u64;
    r.errors = (s1[5] + sb[5]) as u64;
    r.discarded_before_establish = s1[6] as u64;
    let ma = a.nums("mem");
    let mb = b.nums("mem");
    r.hwm = [ma[0] as u64, mb[0] as u64];
    r.rss = [ma[1] as u64, mb[1] as u64];
    r.cpu_s = [
        (ca1[0] - ca0[0]) / 1e9,
        (ca1[1] - ca0[1]) / 1e9,
        (cb1[0] - cb0[0]) / 1e9,
        (cb1[1] - cb0[1]) / 1e9,
    ];
    r.wait_s = [
        (ca1[2] - ca0[2]) / 1e9,
        (ca1[3] - ca0[3]) / 1e9,
        (cb1[2] - cb0[2]) / 1e9,
        (cb1[3] - cb0[3]) / 1e9,
    ];
    a.quit();
    b.quit();
    r
}
