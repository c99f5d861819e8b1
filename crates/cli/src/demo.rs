//! `hotsync demo`: an active/standby pair on loopback in one process.
//!
//! Node A (FW-A, priority 120) gets a realistic configuration (two virtual
//! systems, policies, NAT, address sets, static routes with
//! `hrp auto-sync config static-route`, an SSL VPN gateway and a user
//! database that must stay behind) and N sessions before the pair forms;
//! node B (FW-B) has a smaller configuration with a few parameters that
//! differ for the same identities (conflicts). Then: the relationship
//! forms, `hrp sync config` and `hrp sync connection-status` run with
//! progress while a data-plane thread keeps writing on A, replication
//! latency is sampled with marker sessions, and the two tables' digests
//! are compared.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hotsync_config::{Category, ConfigStore, Conflict, is_syncable};
use hotsync_node::{Node, NodeConfig, NodeHandle};
use hotsync_proto::Role;
use hotsync_table::{
    SessionEntry, SessionGenerator, SessionKey, SessionTable, TableConfig, flags, ip_proto,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::commands::{sysname, unix_now};
use crate::display::{JobView, count, secs};
use crate::progress::{self, Mode};

const NODE_A: &str = include_str!("demo/node-a.cfg");
const NODE_B: &str = include_str!("demo/node-b.cfg");

/// Options of `hotsync demo`.
#[derive(Debug)]
pub struct DemoOptions {
    pub sessions: u64,
    pub no_progress: bool,
    pub json: Option<PathBuf>,
    pub traffic_seconds: u64,
    pub rate: u64,
    pub log_level: String,
}

/// Two consecutive free loopback ports (session channel, config channel).
fn free_port_pair(avoid: &[u16]) -> Option<u16> {
    for _ in 0..200 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
        let p = l.local_addr().ok()?.port();
        if p == u16::MAX || avoid.iter().any(|a| a.abs_diff(p) <= 1) {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, p + 1)).is_ok() {
            return Some(p);
        }
    }
    None
}

fn start_node(text: &str, pa: u16, pb: u16, capacity: usize) -> Result<NodeHandle, String> {
    let text = text
        .replace("{PORT_A}", &pa.to_string())
        .replace("{PORT_B}", &pb.to_string());
    let store = ConfigStore::parse(&text).map_err(|e| format!("demo configuration: {e}"))?;
    let cfg = NodeConfig::from_store(store, TableConfig::with_capacity(capacity))
        .map_err(|e| e.to_string())?;
    Node::start(cfg).map_err(|e| e.to_string())
}

/// What the data-plane writer did.
#[derive(Debug, Default)]
struct Traffic {
    updates: AtomicU64,
    inserts: AtomicU64,
    removes: AtomicU64,
}

impl Traffic {
    fn total(&self) -> u64 {
        self.updates.load(Ordering::Relaxed)
            + self.inserts.load(Ordering::Relaxed)
            + self.removes.load(Ordering::Relaxed)
    }
}

/// A data-plane thread on A: `rate` operations per second (70 % updates of
/// existing sessions, 15 % new sessions, 15 % removals of those), until
/// `stop`.
fn spawn_writer(
    table: Arc<SessionTable>,
    sample: Arc<Vec<SessionKey>>,
    rate: u64,
    stop: Arc<AtomicBool>,
    traffic: Arc<Traffic>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut generator = SessionGenerator::new(0xfeed, 0, false, unix_now());
        generator.local_only_every = 100;
        let mut toucher = SessionGenerator::new(0xbeef, 0, false, 0);
        let mut fresh: VecDeque<SessionKey> = VecDeque::new();
        let tick = Duration::from_millis(10);
        let per_tick = (rate / 100).max(1);
        let start = Instant::now();
        let mut ticks = 0u32;
        while !stop.load(Ordering::Acquire) {
            let now = unix_now();
            for _ in 0..per_tick {
                let r = toucher.next_u64() % 100;
                if r < 15 {
                    let (k, e) = generator.next_session();
                    if table.upsert(&k, &e).is_ok() {
                        fresh.push_back(k);
                        traffic.inserts.fetch_add(1, Ordering::Relaxed);
                    }
                } else if r < 30 && !fresh.is_empty() {
                    if let Some(k) = fresh.pop_front() {
                        table.remove(&k);
                        traffic.removes.fetch_add(1, Ordering::Relaxed);
                    }
                } else if !sample.is_empty() {
                    let k = sample[(toucher.next_u64() % sample.len() as u64) as usize];
                    let mut t2 = toucher.clone();
                    table.update(&k, |e| t2.touch(e, now));
                    toucher.next_u64();
                    traffic.updates.fetch_add(1, Ordering::Relaxed);
                }
            }
            ticks += 1;
            let next = start + tick * ticks;
            if let Some(d) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }
    })
}

/// Replication latency samples, split by whether a batch sync was running.
#[derive(Debug)]
struct Latency {
    during_batch: Histogram<u64>,
    steady: Histogram<u64>,
    lost: u64,
}

/// Every ~10 ms: upsert a marker session on A, poll B's table until it
/// appears, record the time, remove the marker.
fn spawn_sampler(
    a: Arc<SessionTable>,
    b: Arc<SessionTable>,
    stop: Arc<AtomicBool>,
    batch_running: Arc<AtomicBool>,
    out: Arc<Mutex<Latency>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut i: u32 = 0;
        while !stop.load(Ordering::Acquire) {
            i = i.wrapping_add(1);
            let src = IpAddr::V4(Ipv4Addr::from(0xc612_0000 | (i >> 16)));
            let key = SessionKey::new(
                0,
                ip_proto::UDP,
                src,
                (i & 0xffff) as u16,
                IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1)),
                9,
            );
            let now = unix_now();
            let entry = SessionEntry {
                created: now,
                last_seen: now,
                timeout: 60,
                flags: flags::BACKUP,
                ..SessionEntry::default()
            };
            let during = batch_running.load(Ordering::Acquire);
            let t0 = Instant::now();
            if a.upsert(&key, &entry).is_err() {
                break;
            }
            let mut seen = false;
            while t0.elapsed() < Duration::from_secs(5) {
                if b.get(&key).is_some() {
                    seen = true;
                    break;
                }
                std::thread::sleep(Duration::from_micros(50));
            }
            let us = t0.elapsed().as_micros() as u64;
            {
                let mut l = out
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if seen {
                    let h = if during || batch_running.load(Ordering::Acquire) {
                        &mut l.during_batch
                    } else {
                        &mut l.steady
                    };
                    let _ = h.record(us.max(1));
                } else {
                    l.lost += 1;
                }
            }
            a.remove(&key);
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

fn pct(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".into();
    }
    let f = |us: u64| {
        if us >= 1000 {
            format!("{:.2} ms", us as f64 / 1000.0)
        } else {
            format!("{us} us")
        }
    };
    format!(
        "p50 {}  p90 {}  p99 {}  max {}  ({} samples)",
        f(h.value_at_quantile(0.5)),
        f(h.value_at_quantile(0.9)),
        f(h.value_at_quantile(0.99)),
        f(h.max()),
        h.len()
    )
}

fn json_hist(h: &Histogram<u64>) -> serde_json::Value {
    if h.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::json!({
        "samples": h.len(),
        "p50_us": h.value_at_quantile(0.5),
        "p90_us": h.value_at_quantile(0.9),
        "p99_us": h.value_at_quantile(0.99),
        "max_us": h.max(),
    })
}

fn wait_established(a: &NodeHandle, b: &NodeHandle, timeout: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if a.is_established() && b.is_established() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn role_line(name: &str, n: &NodeHandle) -> String {
    let st = n.state();
    format!(
        "{name}: {} ({}), priority {}",
        st.peer.role, st.peer.role_reason, st.priority
    )
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

pub fn run(o: DemoOptions) -> ExitCode {
    match run_inner(&o) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(o: &DemoOptions) -> Result<bool, String> {
    crate::init_logging(&o.log_level, crate::LogFormat::Text)?;
    let mode = Mode::detect(!o.no_progress);
    let t_start = Instant::now();
    let pa = free_port_pair(&[]).ok_or("no free loopback port")?;
    let pb = free_port_pair(&[pa]).ok_or("no free loopback port")?;
    let capacity = (o.sessions + o.sessions / 4 + 200_000) as usize;

    println!("hotsync demo: an active/standby pair on loopback");
    let a = start_node(NODE_A, pa, pb, capacity)?;
    let a_name = a.with_store(sysname);
    println!(
        "  {a_name} started: session channel 127.0.0.1:{pa}, config channel :{}",
        pa + 1
    );

    // 1. Sessions on A before the pair forms (B4: they wait for a batch sync).
    let ids = a.with_store(crate::vsys::vsys_ids);
    let mut plan: Vec<(u16, bool, u64)> = Vec::new(); // (vsys id, ipv6, count)
    let root_n = o.sessions / 2;
    let per_vsys = (o.sessions - root_n) / ids.len().max(1) as u64;
    let mut assigned = 0;
    let mut systems = vec![0u16];
    systems.extend(ids.iter().map(|(_, id)| *id));
    for (i, sys) in systems.iter().enumerate() {
        let n = if i == 0 {
            root_n
        } else if i == systems.len() - 1 {
            o.sessions - assigned
        } else {
            per_vsys
        };
        assigned += n;
        let v6 = n / 10;
        plan.push((*sys, false, n - v6));
        plan.push((*sys, true, v6));
    }
    let gen_bar = (mode == Mode::Bar).then(|| {
        let b = ProgressBar::new(o.sessions.max(1));
        b.set_style(
            ProgressStyle::with_template(
                "{prefix:>24} [{bar:36.cyan/blue}] {human_pos}/{human_len} ({percent}%)",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b.set_prefix(format!("sessions on {a_name}"));
        b
    });
    let t_gen = Instant::now();
    let table_a = Arc::clone(a.table());
    let mut sample: Vec<SessionKey> = Vec::new();
    let mut local_only = 0u64;
    let now = unix_now();
    for (seed, (sys, v6, n)) in plan.iter().enumerate() {
        let mut g = SessionGenerator::new(seed as u64 + 1, *sys, *v6, now);
        g.local_only_every = 100;
        for i in 0..*n {
            let (k, e) = g.next_session();
            table_a.upsert(&k, &e).map_err(|e| e.to_string())?;
            if !e.is_backup() {
                local_only += 1;
            } else if i % 8 == 0 {
                sample.push(k);
            }
            if i % 65_536 == 0 {
                if let Some(b) = &gen_bar {
                    b.inc(65_536.min(*n - i));
                }
            }
        }
    }
    if let Some(b) = gen_bar {
        b.finish_and_clear();
    }
    let gen_time = t_gen.elapsed();
    let per_sys: BTreeMap<String, u64> = plan.iter().fold(BTreeMap::new(), |mut m, (s, _, n)| {
        *m.entry(crate::vsys::name_of(&ids, *s)).or_default() += n;
        m
    });
    println!(
        "  generated {} sessions on {a_name} in {} ({}; {} IPv6, {} local-only)",
        count(o.sessions),
        secs(gen_time),
        per_sys
            .iter()
            .map(|(k, v)| format!("{k} {}", count(*v)))
            .collect::<Vec<_>>()
            .join(", "),
        count(plan.iter().filter(|p| p.1).map(|p| p.2).sum()),
        count(local_only)
    );

    // 2. B joins; the relationship forms.
    let b = start_node(NODE_B, pa, pb, capacity)?;
    let b_name = b.with_store(sysname);
    println!(
        "  {b_name} started: session channel 127.0.0.1:{pb}, config channel :{}",
        pb + 1
    );
    let t_rel = Instant::now();
    if !wait_established(&a, &b, Duration::from_secs(20)) {
        let st = a.state();
        return Err(format!(
            "the relationship did not form within 20 s ({a_name}: {}, {})",
            st.peer.role,
            st.connect_error.unwrap_or_default()
        ));
    }
    println!(
        "\nRelationship established in {} (authenticated with the pre-shared key: {})",
        secs(t_rel.elapsed()),
        if a.state().peer.authenticated {
            "yes"
        } else {
            "no"
        }
    );
    println!("  {}", role_line(&a_name, &a));
    println!("  {}", role_line(&b_name, &b));
    if a.role() != Role::Active {
        println!("  (unexpected: {a_name} should be active)");
    }
    println!(
        "  {b_name} holds {} sessions: existing entries are not synchronized automatically (B4)",
        count(b.table().len() as u64)
    );

    // 3. Data-plane traffic and latency sampling on A, from now on.
    let stop = Arc::new(AtomicBool::new(false));
    let batch_running = Arc::new(AtomicBool::new(true));
    let traffic = Arc::new(Traffic::default());
    let latency = Arc::new(Mutex::new(Latency {
        during_batch: Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?,
        steady: Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?,
        lost: 0,
    }));
    let writer = spawn_writer(
        Arc::clone(a.table()),
        Arc::new(sample),
        o.rate,
        Arc::clone(&stop),
        Arc::clone(&traffic),
    );
    let sampler = spawn_sampler(
        Arc::clone(a.table()),
        Arc::clone(b.table()),
        Arc::clone(&stop),
        Arc::clone(&batch_running),
        Arc::clone(&latency),
    );
    println!(
        "  data plane on {a_name}: {}/s updates, new and closed sessions (incremental sync, B3)",
        count(o.rate)
    );

    // 4. hrp sync config.
    println!("\n<{a_name}> hrp sync config");
    let poll = |n: &NodeHandle, id: u64| {
        let n = n.clone();
        move || {
            n.job(id)
                .map(|j| JobView::from_status(&j, Instant::now()))
                .ok_or_else(|| format!("job {id} vanished"))
        }
    };
    let cfg_id = a.sync_config().map_err(|e| e.to_string())?;
    println!("Info: batch sync of configuration started as job {cfg_id}.");
    let cfg_job = progress::wait_job(
        "configuration",
        mode,
        Duration::from_secs(60),
        poll(&a, cfg_id),
    )?;
    println!("{}", cfg_job.summary());

    // 5. hrp sync connection-status.
    println!("\n<{a_name}> hrp sync connection-status");
    let ses_id = a.sync_connection_status().map_err(|e| e.to_string())?;
    println!("Info: batch sync of connection-status started as job {ses_id}.");
    let ses_job = progress::wait_job(
        "connection-status",
        mode,
        Duration::from_secs(120),
        poll(&a, ses_id),
    )?;
    println!("{}", ses_job.summary());
    batch_running.store(false, Ordering::Release);

    // 6. Incremental updates go on for a while, then stop.
    println!(
        "\nIncremental sync: data plane keeps writing on {a_name} for {} s",
        o.traffic_seconds
    );
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_secs(o.traffic_seconds));
    stop.store(true, Ordering::Release);
    let _ = writer.join();
    let _ = sampler.join();
    let ops = traffic.total();

    // 7. Converge: B's digest must equal A's.
    let t_conv = Instant::now();
    let (mut da, mut db) = (a.table().digest(), b.table().digest());
    while da != db && t_conv.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
        da = a.table().digest();
        db = b.table().digest();
    }
    let equal = da == db;
    let mismatched = da.mismatches(&db).len();

    // 8. Summary.
    let conflicts: Vec<Conflict> = b.with_store(|s| s.conflicts().to_vec());
    let (behind, static_routes) = a.with_store(|s| {
        let routes = s.static_route_sync();
        let mut m: BTreeMap<&'static str, u64> = BTreeMap::new();
        for (_, it) in s.all_items() {
            if !is_syncable(it.category(), routes) {
                *m.entry(it.category().name()).or_default() += 1;
            }
        }
        (m, routes)
    });
    let b_leak = b.with_store(|s| {
        let ssl = s
            .all_items()
            .filter(|(_, i)| i.category() == Category::SslVpn)
            .count();
        let users: Vec<String> = s
            .all_items()
            .filter(|(_, i)| i.category() == Category::UserDatabase)
            .map(|(_, i)| i.header().to_owned())
            .collect();
        (ssl, users)
    });
    let lat = latency
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut all = lat.steady.clone();
    let _ = all.add(&lat.during_batch);
    let (a_len, a_backup) = (a.table().len(), a.table().backup_len());
    let b_len = b.table().len();

    let mut s = String::new();
    let _ = writeln!(s, "\n================ Summary ================");
    let [added, eq, confl, rej] = cfg_job.config.unwrap_or_default();
    let _ = writeln!(
        s,
        "Configuration (hrp sync config, job {}): {} items sent: {added} added, {eq} equal, {confl} conflicts, {rej} rejected ({})",
        cfg_job.id, cfg_job.total, cfg_job.state
    );
    let _ = writeln!(
        s,
        "  static routes included: {}",
        if static_routes {
            "yes (hrp auto-sync config static-route)"
        } else {
            "no"
        }
    );
    let _ = writeln!(
        s,
        "Conflicts on {b_name} (same command, other parameters; not applied, fix by hand): {}",
        conflicts.len()
    );
    for c in &conflicts {
        let vs = if c.vsys.is_empty() { "root" } else { &c.vsys };
        let _ = writeln!(s, "  [{vs}] {}", c.identity);
        let _ = write!(s, "    local ({b_name}):\n{}", indent(&c.local, "      "));
        let _ = write!(s, "    remote ({a_name}):\n{}", indent(&c.remote, "      "));
    }
    let _ = writeln!(
        s,
        "Stayed behind on {a_name} (never sent): {}",
        behind
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "  {b_name} has {} SSL VPN items and only its own users: {}",
        b_leak.0,
        if b_leak.1.is_empty() {
            "none".into()
        } else {
            b_leak.1.join(", ")
        }
    );
    let _ = writeln!(
        s,
        "Sessions (hrp sync connection-status, job {}): {} entries synced in {}, {} entries/s ({})",
        ses_job.id,
        count(ses_job.acked),
        secs(ses_job.elapsed),
        count(ses_job.rate() as u64),
        ses_job.state
    );
    let _ = writeln!(
        s,
        "Incremental: {} data-plane operations on {a_name} ({} updates, {} new, {} closed)",
        count(ops),
        count(traffic.updates.load(Ordering::Relaxed)),
        count(traffic.inserts.load(Ordering::Relaxed)),
        count(traffic.removes.load(Ordering::Relaxed))
    );
    let _ = writeln!(
        s,
        "Replication latency (marker session on {a_name} until seen on {b_name}):"
    );
    let _ = writeln!(s, "  all:                    {}", pct(&all));
    let _ = writeln!(s, "  during the batch sync:  {}", pct(&lat.during_batch));
    let _ = writeln!(s, "  after it:               {}", pct(&lat.steady));
    if lat.lost > 0 {
        let _ = writeln!(s, "  markers not seen within 5 s: {}", lat.lost);
    }
    let _ = writeln!(
        s,
        "Tables: {a_name} {} sessions ({} local-only, not replicated: B11), {b_name} {} sessions",
        count(a_len as u64),
        count((a_len - a_backup) as u64),
        count(b_len as u64)
    );
    if equal {
        let _ = writeln!(
            s,
            "digests equal ({} entries in {} shards, combined {:016x}; converged {} after the writer stopped)",
            count(da.entries),
            da.shards.len(),
            da.combined(),
            secs(t_conv.elapsed())
        );
    } else {
        let _ = writeln!(
            s,
            "digests differ ({mismatched} of {} shards mismatch; {} vs {} entries)",
            da.shards.len(),
            count(da.entries),
            count(db.entries)
        );
    }
    let _ = writeln!(s, "Total demo time: {}", secs(t_start.elapsed()));
    print!("{s}");
    let _ = std::io::stdout().flush();

    if let Some(path) = &o.json {
        let conf_json: Vec<serde_json::Value> = conflicts
            .iter()
            .map(|c| {
                serde_json::json!({
                    "vsys": c.vsys,
                    "identity": c.identity.to_string(),
                    "local": c.local,
                    "remote": c.remote,
                })
            })
            .collect();
        let behind_json: serde_json::Map<String, serde_json::Value> = behind
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect();
        let report = serde_json::json!({
            "sessions_generated": o.sessions,
            "config": {
                "job": cfg_job.id,
                "state": cfg_job.state,
                "sent": cfg_job.total,
                "added": added,
                "equal": eq,
                "conflicts": confl,
                "rejected": rej,
            },
            "conflicts": conf_json,
            "stayed_behind": behind_json,
            "connection_status": {
                "job": ses_job.id,
                "state": ses_job.state,
                "entries": ses_job.acked,
                "seconds": ses_job.elapsed.as_secs_f64(),
                "entries_per_second": ses_job.rate(),
            },
            "incremental_ops": ops,
            "latency": {
                "all": json_hist(&all),
                "during_batch": json_hist(&lat.during_batch),
                "steady": json_hist(&lat.steady),
                "lost": lat.lost,
            },
            "tables": { "a_sessions": a_len, "a_backup": a_backup, "b_sessions": b_len },
            "digests_equal": equal,
            "mismatched_shards": mismatched,
            "entries": da.entries,
            "seconds": t_start.elapsed().as_secs_f64(),
        });
        let mut json = serde_json::to_string_pretty(&report).unwrap_or_default();
        json.push('\n');
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
        if std::io::stdout().is_terminal() {
            println!("(summary written to {})", path.display());
        }
    }
    drop(lat);
    a.shutdown();
    b.shutdown();
    Ok(equal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_configurations_parse() {
        for text in [NODE_A, NODE_B] {
            let text = text
                .replace("{PORT_A}", "20000")
                .replace("{PORT_B}", "20002");
            let store = ConfigStore::parse(&text).unwrap();
            hotsync_config::HrpSettings::from_store(&store).unwrap();
        }
    }
}
