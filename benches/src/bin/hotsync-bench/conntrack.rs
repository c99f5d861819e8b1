//! `conntrack`: hotsync's netfilter data plane (`crates/conntrack`) against
//! conntrackd FTFW on the same topology in the same run (`ctlab`): each
//! firewall in its own network namespace, the pair synced over a veth.
//!
//! For N entries (default 1M) created in fw-a's kernel table:
//! - kernel bounds, no sync: a bare batched insert (no listener) and a
//!   bare dump with decoding;
//! - hotsync: the dump into the active's table, the batch sync to the
//!   standby's table (`conntrack_bulk_entries_per_s`, the job's clock),
//!   the event path (entries created in fw-a's kernel reaching the
//!   active's table, then the standby's), the takeover commit into fw-b's
//!   kernel (`conntrack_commit_entries_per_s`);
//! - conntrackd: the dump into its internal cache at start, `-B` until the
//!   peer's external cache holds them all (`conntrackd_bulk_entries_per_s`,
//!   the same thing: from one cache to the peer's), `-c` until fw-b's
//!   kernel holds them (`conntrackd_commit_entries_per_s`).
//!
//! Then the takeover of K entries (default 100k) plus a live TCP flow
//! through nftables firewalls: fw-a fails, the routes move to fw-b, and
//! the clock runs from the command to fw-b (hotsync: `hrp role active`'s
//! commit; conntrackd: `-c`, `-f`, `-R`, `-B`) until fw-b's kernel holds
//! every entry and a line the client sent at the command is echoed
//! (`conntrack_takeover_100k_s`, `conntrackd_takeover_100k_s`).

use crate::bulk::{NodeProc, child_command};
use crate::ctlab::{self, Client, Lab, SYNC_A, SYNC_B};
use crate::util::{node_config, si};
use hotsync_config::ConfigStore;
use hotsync_conntrack::{ConntrackConfig, CtSocket, DataPlane, Mode, Subscribe};
use hotsync_node::{Node, NodeHandle};
use hotsync_table::{SessionEntry, SessionKey, flags, ip_proto, unix_now};
use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The session port of both nodes (each on its own sync-link address).
const NODE_PORT: u16 = 7100;

#[derive(clap::Args, Debug)]
pub struct ConntrackArgs {
    /// Entries in fw-a's kernel table for the bulk, dump and commit figures.
    #[arg(long, default_value_t = 1_000_000)]
    pub entries: u32,
    /// Entries (besides the live flow) for the takeover figure.
    #[arg(long, default_value_t = 100_000)]
    pub takeover_entries: u32,
    /// Entries created in fw-a's kernel while hotsync follows events.
    #[arg(long, default_value_t = 100_000)]
    pub event_entries: u32,
    /// Skip conntrackd even when it is installed.
    #[arg(long)]
    pub no_conntrackd: bool,
    /// Skip the takeover runs.
    #[arg(long)]
    pub no_takeover: bool,
    /// hotsync's standby in mirror mode for the takeover (writes the
    /// replicated entries to fw-b's kernel continuously); default commit.
    #[arg(long)]
    pub mirror: bool,
}

/// Arguments of the hidden node child of this scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct CtChildArgs {
    #[arg(long)]
    pub node_id: u64,
    #[arg(long)]
    pub priority: u16,
    #[arg(long)]
    pub listen: SocketAddr,
    #[arg(long)]
    pub peer: SocketAddr,
    #[arg(long)]
    pub max_sessions: usize,
}

// ----- the node child (runs inside a firewall's namespace) ----------------

/// One node with a conntrack data plane on its own namespace's kernel,
/// answering one line per command (the `bulk` child's commands plus the
/// data plane's).
pub fn child_main(a: &CtChildArgs) {
    let mut cfg = node_config(
        a.node_id,
        a.priority,
        0,
        0,
        a.max_sessions,
        None,
        false,
        3,
        ConfigStore::new(),
    );
    cfg.listen = a.listen;
    cfg.peer = a.peer;
    let node = match Node::start(cfg) {
        Ok(n) => n,
        Err(e) => {
            println!("err {e}");
            return;
        }
    };
    println!("ready");
    let mut dp: Option<DataPlane> = None;
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = dp_command(&node, &mut dp, &words);
        let _ = writeln!(out, "{reply}");
        let _ = out.flush();
        if words.first() == Some(&"quit") {
            break;
        }
    }
    drop(dp);
    node.shutdown();
}

fn dp_command(node: &NodeHandle, dp: &mut Option<DataPlane>, w: &[&str]) -> String {
    let arg = |i: usize| w.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let wait = |dp: &DataPlane, f: &dyn Fn(&DataPlane) -> bool| {
        let end = Instant::now() + Duration::from_secs(600);
        while !f(dp) && Instant::now() < end {
            std::thread::sleep(Duration::from_micros(200));
        }
        f(dp)
    };
    match w.first().copied().unwrap_or("") {
        // Start the data plane (in this process's namespace); when
        // active, wait for its first dump: seconds, entries dumped.
        "dp-start" => {
            let active = arg(1) == 1;
            let cfg = ConntrackConfig {
                mode: if w.get(2) == Some(&"mirror") {
                    Mode::Mirror
                } else {
                    Mode::Commit
                },
                ..ConntrackConfig::default()
            };
            let t = Instant::now();
            let d = match DataPlane::start(cfg, node.table().clone(), active) {
                Ok(d) => d,
                Err(e) => return format!("err data plane: {e}"),
            };
            if active && !wait(&d, &|d| d.stats().dumps.load(Ordering::Acquire) >= 1) {
                return "err no dump within 600 s".into();
            }
            let r = format!(
                "ok {} {}",
                t.elapsed().as_secs_f64(),
                d.stats().dumped.load(Ordering::Relaxed)
            );
            *dp = Some(d);
            r
        }
        "dp-stats" => match dp {
            Some(d) => {
                let s = d.stats();
                let v = [
                    &s.dumps,
                    &s.dumped,
                    &s.events_upsert,
                    &s.events_lost,
                    &s.dump_restarts,
                    &s.events_echo,
                    &s.committed,
                    &s.commit_refused,
                ]
                .map(|c| c.load(Ordering::Relaxed).to_string());
                format!("stats {}", v.join(" "))
            }
            None => "err no data plane".into(),
        },
        // Block until the table holds at least N entries: seconds waited.
        "wait-len" => {
            let (n, t) = (arg(1) as usize, Instant::now());
            let end = t + Duration::from_secs(120);
            while node.table().len() < n && Instant::now() < end {
                std::thread::sleep(Duration::from_micros(200));
            }
            if node.table().len() < n {
                return format!("err table holds {} of {n}", node.table().len());
            }
            format!("ok {}", t.elapsed().as_secs_f64())
        }
        // Block until the table holds at most N - 1 entries.
        "wait-len-below" => {
            let (n, t) = (arg(1) as usize, Instant::now());
            let end = t + Duration::from_secs(120);
            while node.table().len() >= n && Instant::now() < end {
                std::thread::sleep(Duration::from_micros(200));
            }
            if node.table().len() >= n {
                return format!("err table holds {} (wanted < {n})", node.table().len());
            }
            format!("ok {}", t.elapsed().as_secs_f64())
        }
        "len" => format!("len {}", node.table().len()),
        // Take over: commit the table to the kernel; seconds, committed,
        // refused.
        "takeover" => match dp {
            Some(d) => {
                let t = Instant::now();
                match d.set_active(true) {
                    Ok(c) => format!("ok {} {} {}", t.elapsed().as_secs_f64(), c.ok, c.refused),
                    Err(e) => format!("err takeover: {e}"),
                }
            }
            None => "err no data plane".into(),
        },
        _ => child_command(node, w),
    }
}

// ----- the parent ----------------------------------------------------------

/// `n` distinct kernel entries, `salt` keeping sets apart: mostly
/// established TCP (timeouts 1-2 h), one in five UDP, marks and zones.
pub fn synthetic(n: u32, salt: u8) -> Vec<(SessionKey, SessionEntry)> {
    let now = unix_now();
    (0..n)
        .map(|i| {
            let udp = i % 5 == 4;
            let k = SessionKey::new(
                0,
                if udp { ip_proto::UDP } else { ip_proto::TCP },
                IpAddr::V4(Ipv4Addr::new(10, 100 + salt, (i >> 8) as u8, i as u8)),
                1024 + (i >> 16) as u16,
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 200) as u8 + 1)),
                if udp { 53 } else { 443 },
            )
            .with_ct_zone((i % 2) as u16);
            let e = SessionEntry {
                created: now,
                last_seen: now,
                timeout: 3600 + i % 3600,
                mark: i % 7,
                ct_status: 0x6, // SEEN_REPLY | ASSURED
                state: 3,
                flags: flags::BACKUP | flags::ASSURED,
                tcp_wscale: if udp { [0, 0] } else { [7, 7] },
                ..SessionEntry::default()
            };
            (k, e)
        })
        .collect()
}

/// Creates `entries` in a namespace's kernel in batches (no listener on
/// the socket); entries/s.
fn bare_insert(ns: &str, entries: &[(SessionKey, SessionEntry)]) -> f64 {
    let mut s = CtSocket::open(Some(ns), Subscribe::Nothing).expect("netlink socket");
    s.set_recv_timeout_ms(1000).expect("timeout");
    let t = Instant::now();
    let c = s.commit(entries, |e| e.timeout).expect("commit");
    let el = t.elapsed().as_secs_f64();
    assert_eq!(c.refused, 0, "kernel refused entries: {c:?}");
    entries.len() as f64 / el
}

/// The kernel's bound for a commit into fw-b in the state the commit
/// meets (fw-a full, no event listener): the same entries inserted bare
/// into fw-b (the second of two passes), then flushed again; entries/s.
fn commit_bound(lab: &Lab, entries: &[(SessionKey, SessionEntry)]) -> f64 {
    // A first, untimed pass grows the kernel's conntrack slab as the
    // commits later find it grown (a first insert pays for new pages).
    let mut bound = 0.0;
    for _pass in 0..2 {
        bound = bare_insert(&lab.ns("b"), entries);
        lab.flush("b");
        // The flush frees the entries after an RCU grace period: settle.
        std::thread::sleep(Duration::from_secs(2));
    }
    eprintln!(
        "    kernel bound for the commit (bare insert of {} entries into fw-b, fw-a full, no listener): {}/s",
        entries.len(),
        si(bound)
    );
    bound
}

/// Dumps a namespace's kernel table with decoding, nothing stored:
/// (entries, entries/s).
fn bare_dump(ns: &str) -> (u64, f64) {
    let mut s = CtSocket::open(Some(ns), Subscribe::Nothing).expect("netlink socket");
    let t = Instant::now();
    let mut n = 0u64;
    s.dump(unix_now(), |_| n += 1).expect("dump");
    (n, n as f64 / t.elapsed().as_secs_f64())
}

fn spawn_node(lab: &Lab, fw: &str, max: usize) -> NodeProc {
    let (me, peer, id, prio, name) = if fw == "a" {
        (SYNC_A, SYNC_B, 1, 200, "fw-a")
    } else {
        (SYNC_B, SYNC_A, 2, 100, "fw-b")
    };
    let exe = std::env::current_exe().expect("own executable");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.ns(fw)])
        .arg(exe)
        .arg("ct-node-child")
        .args(["--node-id", &id.to_string()])
        .args(["--priority", &prio.to_string()])
        .args(["--listen", &format!("{me}:{NODE_PORT}")])
        .args(["--peer", &format!("{peer}:{NODE_PORT}")])
        .args(["--max-sessions", &max.to_string()]);
    let p = NodeProc::spawn_cmd(name, cmd);
    ctlab::register_pid(p.id());
    p
}

fn quit(p: NodeProc) {
    let pid = p.id();
    p.quit();
    ctlab::forget_pid(pid);
}

fn established(a: &mut NodeProc, b: &mut NodeProc) {
    let end = Instant::now() + Duration::from_secs(60);
    while a.cmd("established") != "1" || b.cmd("established") != "1" {
        assert!(Instant::now() < end, "no relationship within 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs a batch sync job on `a`; the job's own duration in seconds.
fn batch_sync(a: &mut NodeProc) -> f64 {
    let id = a.cmd("sync");
    let id = id.trim_start_matches("job ").to_string();
    loop {
        let j = a.cmd(&format!("job {id}"));
        let w: Vec<&str> = j.split_whitespace().collect();
        if w.get(1) != Some(&"running") {
            assert_eq!(w.get(1), Some(&"done"), "batch sync failed: {j}");
            return w.get(5).and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The figures of one run.
#[derive(Debug, Default, Clone)]
pub struct CtFigures {
    pub values: Vec<(String, f64)>,
    pub notes: Vec<String>,
}

impl CtFigures {
    fn put(&mut self, key: &str, v: f64) {
        self.values.push((key.to_string(), v));
    }

    pub fn put_owned(&mut self, key: String, v: f64) {
        self.values.push((key, v));
    }
}

/// hotsync on N entries: kernel bounds, dump, bulk, events, commit.
pub fn hotsync_rates(a: &ConntrackArgs, f: &mut CtFigures) {
    let n = a.entries;
    let lab = Lab::new();
    let entries = synthetic(n, 0);
    eprintln!("  kernel bounds: bare insert of {n} entries into fw-a, bare dump");
    let ins = bare_insert(&lab.ns("a"), &entries);
    f.put("kernel_insert_entries_per_s", ins);
    let (dumped, dump) = bare_dump(&lab.ns("a"));
    assert!(dumped >= u64::from(n), "dumped {dumped} of {n}");
    f.put("kernel_dump_entries_per_s", dump);
    eprintln!("    bare insert {}/s, bare dump {}/s", si(ins), si(dump));

    let bound = commit_bound(&lab, &entries);
    f.put("kernel_insert_at_commit_entries_per_s", bound);
    drop(entries);
    let max = (n + a.event_entries) as usize * 5 / 4 + 4096;
    let mut na = spawn_node(&lab, "a", max);
    let d = na.nums("dp-start 1");
    f.put("conntrack_dump_entries_per_s", d[1] / d[0]);
    eprintln!(
        "  hotsync: fw-a's kernel dumped into A's table: {} entries in {:.2} s ({}/s)",
        d[1],
        d[0],
        si(d[1] / d[0])
    );
    let mut nb = spawn_node(&lab, "b", max);
    nb.nums("dp-start 0");
    established(&mut na, &mut nb);
    let job_s = batch_sync(&mut na);
    let total = na.nums("len")[0] as u64;
    nb.cmd(&format!("wait-len {total}"));
    f.put("conntrack_bulk_entries_per_s", total as f64 / job_s);
    eprintln!(
        "  hotsync: batch sync of {total} entries A -> B in {job_s:.2} s ({}/s)",
        si(total as f64 / job_s)
    );

    // Event path: entries created in fw-a's kernel while A follows events.
    let m = a.event_entries;
    let before = na.nums("dp-stats");
    let (upserts0, lost0) = (before[2], before[3]);
    let fresh = synthetic(m, 1);
    let fresh_keys: Vec<SessionKey> = fresh.iter().map(|(k, _)| *k).collect();
    let ns_a = lab.ns("a");
    let t = Instant::now();
    let inserter = std::thread::spawn(move || bare_insert(&ns_a, &fresh));
    let end = Instant::now() + Duration::from_secs(300);
    let mut after;
    loop {
        after = na.nums("dp-stats");
        if after[2] - upserts0 >= f64::from(m) || Instant::now() > end {
            break;
        }
        // A lost-events resync brings them in by a dump instead.
        if after[3] > lost0 && na.nums("len")[0] as u64 >= total + u64::from(m) {
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let ev_s = t.elapsed().as_secs_f64();
    let ins_ev = inserter.join().expect("inserter");
    nb.cmd(&format!("wait-len {}", total + u64::from(m)));
    let rep_s = t.elapsed().as_secs_f64();
    f.put("conntrack_event_entries_per_s", f64::from(m) / ev_s);
    f.put(
        "conntrack_event_replicated_entries_per_s",
        f64::from(m) / rep_s,
    );
    f.put("conntrack_event_kernel_insert_entries_per_s", ins_ev);
    f.put("conntrack_events_lost", after[3] - lost0);
    eprintln!(
        "  hotsync: {m} kernel-created entries reached A's table in {ev_s:.2} s ({}/s; the insert itself ran at {}/s; ENOBUFS {}), B's table in {rep_s:.2} s",
        si(f64::from(m) / ev_s),
        si(ins_ev),
        after[3] - lost0
    );

    // Their destroy events take them out of both tables again, so the
    // commit below carries the same N entries as conntrackd's.
    let mut del = CtSocket::open(Some(&lab.ns("a")), Subscribe::Nothing).expect("socket");
    del.set_recv_timeout_ms(1000).expect("timeout");
    del.delete(&fresh_keys).expect("delete");
    // (A few entries of the nodes' own connections may come and go.)
    nb.cmd(&format!("wait-len-below {}", total + 8));

    // The active fails (on a real failure its host, and so its event
    // listener, is gone); B takes over: every entry into fw-b's kernel.
    quit(na);
    std::thread::sleep(Duration::from_millis(500));
    let c = nb.nums("takeover");
    f.put("conntrack_commit_entries_per_s", c[1] / c[0]);
    let in_kernel = lab.kernel_count("b");
    eprintln!(
        "  hotsync: B's takeover committed {} entries ({} refused) in {:.2} s ({}/s); fw-b's kernel holds {in_kernel}",
        c[1],
        c[2],
        c[0],
        si(c[1] / c[0])
    );
    f.notes.push(format!(
        "hotsync commit: {} entries, {} refused, fw-b kernel count {in_kernel}",
        c[1], c[2]
    ));
    quit(nb);
}

// ----- conntrackd -----------------------------------------------------------

/// Whether conntrackd and conntrack are installed.
pub fn conntrackd_installed() -> bool {
    ["conntrackd", "conntrack"].iter().all(|t| {
        Command::new(t)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
}

/// One conntrackd in a firewall's namespace (FTFW over UDP on the sync
/// link, external cache on), killed on drop.
struct Conntrackd {
    ns: String,
    conf: String,
    child: Child,
}

impl Conntrackd {
    fn start(lab: &Lab, fw: &str, dir: &Path, max: u32) -> Conntrackd {
        let (me, peer, dev) = if fw == "a" {
            (SYNC_A, SYNC_B, "synca")
        } else {
            (SYNC_B, SYNC_A, "syncb")
        };
        let d = dir.display();
        let conf = format!(
            "Sync {{\n\tMode FTFW {{\n\t\tDisableExternalCache Off\n\t}}\n\tUDP {{\n\t\tIPv4_address {me}\n\t\tIPv4_Destination_Address {peer}\n\t\tPort 3780\n\t\tInterface {dev}\n\t\tSndSocketBuffer 24985600\n\t\tRcvSocketBuffer 24985600\n\t\tChecksum on\n\t}}\n}}\nGeneral {{\n\tHashSize {hash}\n\tHashLimit {limit}\n\tLogFile {d}/{fw}.log\n\tSyslog off\n\tLockFile {d}/{fw}.lock\n\tUNIX {{\n\t\tPath {d}/{fw}.ctl\n\t}}\n\tNetlinkBufferSize 2097152\n\tNetlinkBufferSizeMaxGrowth 134217728\n\tFilter From Userspace {{\n\t\tAddress Ignore {{\n\t\t\tIPv4_address 127.0.0.1\n\t\t\tIPv4_address {SYNC_A}\n\t\t\tIPv4_address {SYNC_B}\n\t\t}}\n\t}}\n}}\n",
            hash = (max / 2).max(32768),
            limit = u64::from(max) * 2,
        );
        let path = dir.join(format!("{fw}.conf"));
        std::fs::write(&path, conf).expect("conntrackd.conf");
        let conf = path.display().to_string();
        let ns = lab.ns(fw);
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, "conntrackd", "-C", &conf])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("conntrackd");
        ctlab::register_pid(child.id());
        let c = Conntrackd { ns, conf, child };
        let end = Instant::now() + Duration::from_secs(30);
        while c.stats().is_none() {
            assert!(Instant::now() < end, "conntrackd in {fw} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        c
    }

    /// `conntrackd -C conf ARGS` in the namespace; its success.
    fn ctl(&self, args: &[&str]) -> CtlOutput {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.ns, "conntrackd", "-C", &self.conf])
            .args(args)
            .output()
            .expect("conntrackd client");
        CtlOutput {
            ok: o.status.success(),
            text: String::from_utf8_lossy(&o.stdout).into_owned(),
        }
    }

    /// (internal, external) cache sizes, `None` while not answering.
    fn stats(&self) -> Option<(u64, u64)> {
        let o = self.ctl(&["-s"]);
        if !o.ok {
            return None;
        }
        let current = |cache: &str| {
            let mut lines = o.text.lines().skip_while(|l| !l.starts_with(cache));
            lines.nth(1).and_then(|l| {
                l.split_whitespace()
                    .last()
                    .and_then(|x| x.parse::<u64>().ok())
            })
        };
        Some((
            current("cache internal")?,
            current("cache external").unwrap_or(0),
        ))
    }

    /// Polls until `f(stats)`; seconds waited, or `None` after `stall`
    /// seconds without progress (the last value is in `last`).
    fn wait(&self, stall: f64, last: &mut u64, f: impl Fn((u64, u64)) -> u64, goal: u64) -> bool {
        let mut progress = Instant::now();
        loop {
            if let Some(s) = self.stats() {
                let v = f(s);
                if v != *last {
                    *last = v;
                    progress = Instant::now();
                }
                if v >= goal {
                    return true;
                }
            }
            if progress.elapsed().as_secs_f64() > stall {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

struct CtlOutput {
    ok: bool,
    text: String,
}

impl Drop for Conntrackd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        ctlab::forget_pid(self.child.id());
    }
}

/// conntrackd on N entries: dump into its internal cache, bulk to the
/// peer's external cache, commit into fw-b's kernel.
pub fn conntrackd_rates(a: &ConntrackArgs, f: &mut CtFigures) {
    let n = a.entries;
    let lab = Lab::new();
    let dir = ctlab::temp_dir("conntrackd");
    let entries = synthetic(n, 0);
    let ins = bare_insert(&lab.ns("a"), &entries);
    f.put("conntrackd_run_kernel_insert_entries_per_s", ins);
    let bound = commit_bound(&lab, &entries);
    f.put(
        "conntrackd_run_kernel_insert_at_commit_entries_per_s",
        bound,
    );
    drop(entries);
    let t = Instant::now();
    let ca = Conntrackd::start(&lab, "a", &dir, n);
    let mut last = 0;
    let full = ca.wait(60.0, &mut last, |s| s.0, u64::from(n));
    let dump_s = t.elapsed().as_secs_f64();
    f.put("conntrackd_dump_entries_per_s", last as f64 / dump_s);
    eprintln!(
        "  conntrackd: fw-a's kernel into its internal cache: {last} entries in {dump_s:.2} s ({}/s){}",
        si(last as f64 / dump_s),
        if full { "" } else { " (stalled short)" }
    );
    let internal = last;
    let cb = Conntrackd::start(&lab, "b", &dir, n);
    std::thread::sleep(Duration::from_millis(500));
    let ext0 = cb.stats().map_or(0, |s| s.1);
    let t = Instant::now();
    assert!(ca.ctl(&["-B"]).ok, "conntrackd -B");
    let mut got = ext0;
    let full = cb.wait(10.0, &mut got, |s| s.1, internal);
    let bulk_s = t.elapsed().as_secs_f64() - if full { 0.0 } else { 10.0 };
    f.put("conntrackd_bulk_entries_per_s", got as f64 / bulk_s);
    eprintln!(
        "  conntrackd: -B: {got} of {internal} entries in B's external cache after {bulk_s:.2} s ({}/s){}",
        si(got as f64 / bulk_s),
        if full {
            String::new()
        } else {
            format!(" (stalled: {} never arrived)", internal - got)
        }
    );
    if !full {
        f.notes.push(format!(
            "conntrackd bulk: {} of {internal} entries reached the peer's external cache (the rest lost)",
            got
        ));
    }
    // The active fails, as in the hotsync run.
    drop(ca);
    std::thread::sleep(Duration::from_millis(500));
    let k0 = lab.kernel_count("b");
    let t = Instant::now();
    assert!(cb.ctl(&["-c"]).ok, "conntrackd -c");
    let end = Instant::now() + Duration::from_secs(600);
    let mut k = lab.kernel_count("b");
    while k < k0 + got && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
        k = lab.kernel_count("b");
    }
    let commit_s = t.elapsed().as_secs_f64();
    f.put(
        "conntrackd_commit_entries_per_s",
        (k - k0) as f64 / commit_s,
    );
    eprintln!(
        "  conntrackd: -c: fw-b's kernel holds {} entries after {commit_s:.2} s ({}/s)",
        k - k0,
        si((k - k0) as f64 / commit_s)
    );
    drop(cb);
}

// ----- takeover with a live flow -------------------------------------------

/// Who takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Hotsync,
    Conntrackd,
}

/// Takeover of `k` entries plus a live TCP flow: seconds from the command
/// until fw-b's kernel holds every entry and the line the client sent at
/// the command is echoed; whether the flow survived (echo within 2 s of
/// the command); seconds until the flow passed.
pub fn takeover(tool: Tool, k: u32, mirror: bool) -> (f64, bool, f64) {
    let lab = Lab::new();
    ctlab::echo_server(&lab);
    let mut client = Client::connect(&lab);
    assert!(client.echo().is_some(), "no echo through fw-a");
    let entries = synthetic(k, 2);
    bare_insert(&lab.ns("a"), &entries);
    drop(entries);
    let want = lab.kernel_count("a");
    let dir = ctlab::temp_dir("takeover");
    let mut hs: Option<NodeProc> = None;
    let mut ctd: Option<Conntrackd> = None;
    match tool {
        Tool::Hotsync => {
            let max = k as usize * 2 + 4096;
            let mut na = spawn_node(&lab, "a", max);
            na.nums("dp-start 1");
            let mut nb = spawn_node(&lab, "b", max);
            nb.nums(if mirror {
                "dp-start 0 mirror"
            } else {
                "dp-start 0"
            });
            established(&mut na, &mut nb);
            batch_sync(&mut na);
            let total = na.nums("len")[0] as u64;
            nb.cmd(&format!("wait-len {total}"));
            if mirror {
                // The mirror has written them all to fw-b's kernel.
                let end = Instant::now() + Duration::from_secs(300);
                while lab.kernel_count("b") < want && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(50));
                }
                eprintln!(
                    "    mirror: fw-b's kernel holds {} entries before the failure",
                    lab.kernel_count("b")
                );
            }
            assert!(client.echo().is_some(), "no echo through fw-a");
            std::thread::sleep(Duration::from_millis(200));
            lab.fail_a();
            quit(na);
            hs = Some(nb);
        }
        Tool::Conntrackd => {
            let ca = Conntrackd::start(&lab, "a", &dir, k * 2);
            let mut last = 0;
            assert!(
                ca.wait(60.0, &mut last, |s| s.0, want.saturating_sub(2)),
                "conntrackd A's cache: {last} of {want}"
            );
            let cb = Conntrackd::start(&lab, "b", &dir, k * 2);
            std::thread::sleep(Duration::from_millis(300));
            assert!(ca.ctl(&["-B"]).ok, "conntrackd -B");
            let mut got = 0;
            cb.wait(10.0, &mut got, |s| s.1, last);
            assert!(client.echo().is_some(), "no echo through fw-a");
            std::thread::sleep(Duration::from_millis(200));
            lab.fail_a();
            drop(ca);
            ctd = Some(cb);
        }
    }
    lab.route_via("b");
    // The client's line is in flight during the takeover (dropped by fw-b
    // until its entry is in, then retransmitted by TCP).
    let t0 = Instant::now();
    let echo = std::thread::spawn(move || client.echo());
    match tool {
        Tool::Hotsync => {
            let mut nb = hs.take().expect("node B");
            nb.nums("takeover");
            hs = Some(nb);
        }
        Tool::Conntrackd => {
            let cb = ctd.as_ref().expect("conntrackd B");
            for step in ["-c", "-f", "-R", "-B"] {
                cb.ctl(&[step]);
            }
        }
    }
    let end = Instant::now() + Duration::from_secs(120);
    while lab.kernel_count("b") < want.saturating_sub(2) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(2));
    }
    let in_kernel = t0.elapsed().as_secs_f64();
    let echoed = echo.join().expect("client");
    let flow_s = echoed.map_or(f64::NAN, |t| (t - t0).as_secs_f64());
    let total = in_kernel.max(flow_s);
    if let Some(nb) = hs {
        quit(nb);
    }
    drop(ctd);
    (total, flow_s <= 2.0, flow_s)
}
