//! Small helpers: ports, node settings, session generation, /proc readers,
//! text tables.

use hotsync_config::ConfigStore;
use hotsync_node::NodeConfig;
use hotsync_proto::ProtoConfig;
use hotsync_table::{SessionEntry, SessionGenerator, SessionKey, TableConfig, flags};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Idle timeout given to every generated session: long enough that the
/// active node's aging sweep never removes an entry during a run (the
/// generator's own 60 s UDP timeouts would expire mid-way through a 10M run).
pub const LONG_TIMEOUT: u32 = 30 * 86_400;

/// Unix seconds now.
pub fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Distinct, all backup-capable IPv4 sessions created "now" (so that the
/// active's aging never sees them as idle), one in four with NAT.
#[derive(Debug)]
pub struct LiveSessions {
    g: SessionGenerator,
}

impl LiveSessions {
    pub fn new(seed: u64) -> Self {
        let mut g = SessionGenerator::new(seed, 0, false, unix_now());
        g.local_only_every = 0;
        Self { g }
    }

    #[inline]
    pub fn next_session(&mut self) -> (SessionKey, SessionEntry) {
        let (k, mut e) = self.g.next_session();
        e.timeout = LONG_TIMEOUT;
        (k, e)
    }
}

/// Two consecutive free ports (session and config channel).
pub fn free_port_pair() -> u16 {
    for _ in 0..500 {
        let Ok(l) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(a) = l.local_addr() else { continue };
        let p = a.port();
        drop(l);
        if p < 65000 && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no free port pair on 127.0.0.1");
}

/// Port pairs for two nodes that do not overlap.
pub fn two_port_pairs() -> (u16, u16) {
    let pa = free_port_pair();
    loop {
        let pb = free_port_pair();
        if pb.abs_diff(pa) > 1 {
            return (pa, pb);
        }
    }
}

/// Settings of one benchmark node: default protocol settings (1 s hello,
/// 3 missed = dead, 4096 records per batch, 4 MiB transmit high water),
/// a table sized for `max_sessions`, shards as the table picks by default.
/// `--encrypt`: the `hrp encryption-key` both benchmark nodes use.
pub const BENCH_ENCRYPTION_KEY: &[u8] = b"hotsync-bench encryption key";

#[allow(clippy::too_many_arguments)]
pub fn node_config(
    node_id: u64,
    priority: u16,
    me: u16,
    peer: u16,
    max_sessions: usize,
    psk: Option<&str>,
    encrypt: bool,
    dead_count: u32,
    store: ConfigStore,
) -> NodeConfig {
    NodeConfig {
        proto: ProtoConfig {
            node_id,
            priority,
            psk: psk.map(|k| k.as_bytes().to_vec()),
            encryption_key: encrypt.then(|| BENCH_ENCRYPTION_KEY.to_vec()),
            dead_count,
            ..ProtoConfig::default()
        },
        table: TableConfig::with_capacity(max_sessions),
        listen: SocketAddr::from(([127, 0, 0, 1], me)),
        peer: SocketAddr::from(([127, 0, 0, 1], peer)),
        store,
        standby_config_enable: false,
    }
}

/// Backup-capable marker entry (used by the latency probe).
pub fn marker_entry(seq: u64, intended_ns: u64, written_ns: u64) -> SessionEntry {
    SessionEntry {
        packets: [1, seq],
        bytes: [written_ns, intended_ns],
        timeout: LONG_TIMEOUT,
        created: unix_now(),
        last_seen: unix_now(),
        src_zone: 1,
        dst_zone: 2,
        state: 0,
        flags: flags::BACKUP,
        ..SessionEntry::default()
    }
}

// ----- /proc ---------------------------------------------------------------

/// `VmHWM` and `VmRSS` of a process (`self` or a pid), bytes.
pub fn vm_hwm_rss(pid: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Scheduler time of every thread of this process, by thread name
/// (`/proc/self/task/*/schedstat`): nanoseconds on a CPU and nanoseconds
/// runnable but waiting for one. Threads sharing a name are summed.
pub fn thread_cpu_ns() -> Vec<(String, u64, u64)> {
    let mut out: Vec<(String, u64, u64)> = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in dir.flatten() {
        let p = t.path();
        let name = std::fs::read_to_string(p.join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let text = std::fs::read_to_string(p.join("schedstat")).unwrap_or_default();
        let mut f = text
            .split_whitespace()
            .map(|x| x.parse::<u64>().unwrap_or(0));
        let (run, wait) = (f.next().unwrap_or(0), f.next().unwrap_or(0));
        match out.iter_mut().find(|(n, _, _)| *n == name) {
            Some(e) => {
                e.1 += run;
                e.2 += wait;
            }
            None => out.push((name, run, wait)),
        }
    }
    out
}

/// On-CPU and run-queue-wait nanoseconds of this whole process (sum over
/// its live threads).
pub fn process_cpu_ns() -> (u64, u64) {
    thread_cpu_ns()
        .iter()
        .fold((0, 0), |(r, w), (_, a, b)| (r + a, w + b))
}

/// CPU used per thread name between two [`thread_cpu_ns`] snapshots, as
/// percentages of `wall`: (name, on-CPU %, runnable-but-waiting %).
pub fn cpu_delta(
    before: &[(String, u64, u64)],
    after: &[(String, u64, u64)],
    wall: Duration,
) -> Vec<(String, f64, f64)> {
    let w = wall.as_nanos().max(1) as f64;
    let mut v: Vec<(String, f64, f64)> = after
        .iter()
        .map(|(n, a, aw)| {
            let (b, bw) = before
                .iter()
                .find(|(m, _, _)| m == n)
                .map_or((0, 0), |x| (x.1, x.2));
            (
                n.clone(),
                a.saturating_sub(b) as f64 / w * 100.0,
                aw.saturating_sub(bw) as f64 / w * 100.0,
            )
        })
        .filter(|(_, p, _)| *p >= 0.05)
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

/// CPU time the calling thread has run, nanoseconds (its `schedstat`;
/// 0 where that is absent).
pub fn own_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Times the kernel took the calling thread off its core while it could
/// still run (preempted: `nonvoluntary_ctxt_switches`; 0 where absent).
pub fn own_preemptions() -> u64 {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:"))?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Interrupts every core has taken so far (all rows of
/// `/proc/interrupts`: timer ticks, IPIs, devices); 0 where absent.
pub fn interrupts_taken() -> u64 {
    let text = std::fs::read_to_string("/proc/interrupts").unwrap_or_default();
    let cores = text
        .lines()
        .next()
        .map_or(0, |l| l.split_whitespace().count());
    text.lines()
        .skip(1)
        .flat_map(|l| l.split_whitespace().skip(1).take(cores))
        .filter_map(|x| x.parse::<u64>().ok())
        .sum()
}

/// Busy CPU time of the whole machine so far, nanoseconds (`/proc/stat`
/// first line: everything but idle and iowait; USER_HZ is 100 on Linux).
pub fn machine_busy_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return 0;
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let busy: u64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, x)| x)
        .sum();
    busy * 10_000_000
}

/// Asks the kernel for 1 µs timer slack on the calling thread (default
/// 50 µs), so short sleeps of the paced writer and the probe are short.
/// Best effort: ignored where `/proc/thread-self/timerslack_ns` is absent.
pub fn tight_timer_slack() {
    let _ = std::fs::write("/proc/thread-self/timerslack_ns", "1000");
}

// ----- text output ---------------------------------------------------------

/// Prints a two-column table.
pub fn print_table(title: &str, rows: &[(String, String)]) {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("\n== {title} ==");
    for (k, v) in rows {
        println!("  {k:<w$}  {v}");
    }
}

/// 12345678.9 -> "12.35M".
pub fn si(x: f64) -> String {
    let a = x.abs();
    if a >= 1e9 {
        format!("{:.2}G", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.1}")
    }
}
