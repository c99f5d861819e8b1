//! The `conntrack` scenario's topology: four network namespaces (client,
//! fw-a, fw-b, server) with uniquely named links, a sync link between the
//! firewalls, nftables stateful rulesets and `nf_conntrack_tcp_loose=0` on
//! both firewalls. Everything it creates (namespaces, child processes,
//! temporary files) is registered, and removed on drop, on a panic and on
//! SIGINT/SIGTERM ([`install_cleanup`]).
//!
//! ```text
//!            +-- fw-a --+
//!  client ---+   |sync  +--- server        client 10.9.0.1, server 10.9.0.2
//!            +-- fw-b --+                  sync link 10.99.0.1 - 10.99.0.2
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The echo server's address (on the server namespace's loopback).
pub const SERVER: &str = "10.9.0.2:7000";
/// fw-a's and fw-b's addresses on the sync link.
pub const SYNC_A: &str = "10.99.0.1";
pub const SYNC_B: &str = "10.99.0.2";

/// What a run created and must remove, whatever way it ends.
#[derive(Default)]
struct Created {
    netns: Vec<String>,
    pids: Vec<u32>,
    dirs: Vec<PathBuf>,
}

static CREATED: Mutex<Created> = Mutex::new(Created {
    netns: Vec::new(),
    pids: Vec::new(),
    dirs: Vec::new(),
});

fn created() -> std::sync::MutexGuard<'static, Created> {
    CREATED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Kills the registered children, deletes the registered namespaces and
/// directories (idempotent).
pub fn cleanup_all() {
    let c = std::mem::take(&mut *created());
    for pid in c.pids {
        let _ = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
    for ns in c.netns {
        let _ = Command::new("ip")
            .args(["netns", "del", &ns])
            .stderr(Stdio::null())
            .status();
    }
    for d in c.dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Cleans up on SIGINT/SIGTERM (then exits with 130) and on a panic.
pub fn install_cleanup() {
    let _ = ctrlc::set_handler(|| {
        eprintln!("interrupted: removing the benchmark's namespaces");
        cleanup_all();
        std::process::exit(130);
    });
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        prev(info);
        cleanup_all();
    }));
}

/// Registers a child process to kill on cleanup.
pub fn register_pid(pid: u32) {
    created().pids.push(pid);
}

/// Forgets a child that has exited.
pub fn forget_pid(pid: u32) {
    created().pids.retain(|p| *p != pid);
}

/// A fresh temporary directory, removed on cleanup.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "hsb-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::create_dir_all(&d);
    created().dirs.push(d.clone());
    d
}

pub fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn ok(args: &[&str]) {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Why the scenario cannot run here, if it cannot.
pub fn cannot_run() -> Option<String> {
    let uid = run(&["id", "-u"]);
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("needs root (network namespaces, CAP_NET_ADMIN)".into());
    }
    for tool in ["ip", "nft"] {
        if Command::new(tool).arg("-V").output().is_err() {
            return Some(format!(
                "`{tool}` not installed (scripts/install-system-deps.sh)"
            ));
        }
    }
    None
}

/// The four namespaces and their links.
pub struct Lab {
    tag: String,
}

impl Lab {
    /// The full name of namespace `short` (`c`, `a`, `b`, `s`).
    pub fn ns(&self, short: &str) -> String {
        format!("hsb{short}{}", self.tag)
    }

    pub fn exec(&self, ns: &str, args: &[&str]) {
        let ns = self.ns(ns);
        let mut full = vec!["ip", "netns", "exec", &ns];
        full.extend_from_slice(args);
        ok(&full);
    }

    pub fn new() -> Lab {
        static N: AtomicU32 = AtomicU32::new(0);
        let lab = Lab {
            tag: format!(
                "{}x{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
        };
        for n in ["c", "a", "b", "s"] {
            let name = lab.ns(n);
            ok(&["ip", "netns", "add", &name]);
            created().netns.push(name);
            lab.exec(n, &["ip", "link", "set", "lo", "up"]);
        }
        for (x, xi, y, yi) in [
            ("c", "ca", "a", "ac"),
            ("c", "cb", "b", "bc"),
            ("a", "as", "s", "sa"),
            ("b", "bs", "s", "sb"),
            ("a", "synca", "b", "syncb"),
        ] {
            let (nx, ny) = (lab.ns(x), lab.ns(y));
            ok(&[
                "ip", "link", "add", xi, "netns", &nx, "type", "veth", "peer", "name", yi, "netns",
                &ny,
            ]);
            lab.exec(x, &["ip", "link", "set", xi, "up"]);
            lab.exec(y, &["ip", "link", "set", yi, "up"]);
        }
        for (n, dev, addr) in [
            ("c", "ca", "10.1.1.2/24"),
            ("c", "cb", "10.1.2.2/24"),
            ("c", "lo", "10.9.0.1/32"),
            ("a", "ac", "10.1.1.1/24"),
            ("a", "as", "10.2.1.1/24"),
            ("a", "synca", "10.99.0.1/30"),
            ("b", "bc", "10.1.2.1/24"),
            ("b", "bs", "10.2.2.1/24"),
            ("b", "syncb", "10.99.0.2/30"),
            ("s", "sa", "10.2.1.2/24"),
            ("s", "sb", "10.2.2.2/24"),
            ("s", "lo", "10.9.0.2/32"),
        ] {
            lab.exec(n, &["ip", "addr", "add", addr, "dev", dev]);
        }
        for (fw, cside, sside) in [("a", "10.1.1.2", "10.2.1.2"), ("b", "10.1.2.2", "10.2.2.2")] {
            lab.exec(fw, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            lab.exec(fw, &["ip", "route", "add", "10.9.0.1/32", "via", cside]);
            lab.exec(fw, &["ip", "route", "add", "10.9.0.2/32", "via", sside]);
            let cif = if fw == "a" { "ac" } else { "bc" };
            let rules = format!(
                "table inet hsb {{\n chain forward_filter {{\n  type filter hook forward priority 0; policy drop;\n  ct state established,related accept\n  iifname \"{cif}\" ct state new accept\n }}\n}}\n"
            );
            let ns = lab.ns(fw);
            let mut nft = Command::new("ip")
                .args(["netns", "exec", &ns, "nft", "-f", "-"])
                .stdin(Stdio::piped())
                .spawn()
                .expect("nft");
            nft.stdin
                .take()
                .expect("nft stdin")
                .write_all(rules.as_bytes())
                .expect("nft ruleset");
            assert!(nft.wait().expect("nft").success(), "nft ruleset");
            lab.exec(
                fw,
                &["sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0"],
            );
        }
        for n in ["c", "s"] {
            lab.exec(n, &["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"]);
        }
        lab.route_via("a");
        lab
    }

    /// Client and server reach each other through firewall `fw`.
    pub fn route_via(&self, fw: &str) {
        let (c, s) = if fw == "a" {
            ("10.1.1.1", "10.2.1.1")
        } else {
            ("10.1.2.1", "10.2.2.1")
        };
        let r = |ns, dst, via, src| {
            self.exec(ns, &["ip", "route", "replace", dst, "via", via, "src", src]);
        };
        r("c", "10.9.0.2/32", c, "10.9.0.1");
        r("s", "10.9.0.1/32", s, "10.9.0.2");
    }

    /// fw-a fails: its links go down (the sync link too).
    pub fn fail_a(&self) {
        for dev in ["ac", "as", "synca"] {
            self.exec("a", &["ip", "link", "set", dev, "down"]);
        }
    }

    /// Empties a firewall's kernel table (`conntrack -F`, synchronous).
    pub fn flush(&self, fw: &str) {
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.ns(fw), "conntrack", "-F"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Entries in a firewall's kernel table (`nf_conntrack_count`).
    pub fn kernel_count(&self, fw: &str) -> u64 {
        hotsync_conntrack::in_netns(&self.ns(fw), || {
            std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count")
        })
        .ok()
        .and_then(Result::ok)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Flush the firewalls' tables first: the kernel frees the entries
        // of a deleted namespace in the background, which would slow the
        // next phase (the conntrack hash is shared by all namespaces).
        for fw in ["a", "b"] {
            self.flush(fw);
        }
        let mine: Vec<String> = ["c", "a", "b", "s"].iter().map(|n| self.ns(n)).collect();
        for ns in &mine {
            let _ = run(&["ip", "netns", "del", ns]);
        }
        created().netns.retain(|n| !mine.contains(n));
    }
}

/// An echo server in the server namespace (one thread per connection;
/// the threads end with the namespace's links).
pub fn echo_server(lab: &Lab) {
    let addr: SocketAddr = SERVER.parse().expect("address");
    let listener = hotsync_conntrack::in_netns(&lab.ns("s"), move || TcpListener::bind(addr))
        .expect("netns")
        .expect("bind the echo server");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || {
                let Ok(mut w) = conn.try_clone() else { return };
                for line in BufReader::new(conn).lines() {
                    let Ok(line) = line else { return };
                    if writeln!(w, "{line}").is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// A long-lived client connection from the client namespace through fw-a.
pub struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
    n: u32,
}

impl Client {
    pub fn connect(lab: &Lab) -> Client {
        let addr: SocketAddr = SERVER.parse().expect("address");
        let s = hotsync_conntrack::in_netns(&lab.ns("c"), move || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        })
        .expect("netns")
        .expect("connect through fw-a");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Client {
            r: BufReader::new(s.try_clone().expect("clone")),
            w: s,
            n: 0,
        }
    }

    /// Sends a line; the instant its echo arrived (`None` when it did
    /// not within 10 s).
    pub fn echo(&mut self) -> Option<Instant> {
        self.n += 1;
        let line = format!("line {}", self.n);
        writeln!(self.w, "{line}").ok()?;
        let mut got = String::new();
        match self.r.read_line(&mut got) {
            Ok(n) if n > 0 && got.trim_end() == line => Some(Instant::now()),
            _ => None,
        }
    }
}

/// Raises the global `nf_conntrack_max` to at least `n` (never lowers it).
pub fn raise_conntrack_max(n: u64) {
    let p = "/proc/sys/net/netfilter/nf_conntrack_max";
    let cur: u64 = std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if cur < n {
        let _ = std::fs::write(p, n.to_string());
    }
}
