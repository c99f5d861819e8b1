//! A real TCP connection through a Linux firewall pair survives failover.
//!
//! Topology, each box its own network namespace (unique names, removed on
//! drop, also when the test fails):
//!
//! ```text
//!            +-- fw-a --+
//!  client ---+          +--- server        client 10.9.0.1, server 10.9.0.2
//!            +-- fw-b --+
//! ```
//!
//! Each firewall runs nftables with a stateful ruleset (established and
//! related accepted, new connections only from the client side, everything
//! else dropped) and `nf_conntrack_tcp_loose=0`, so a mid-stream packet
//! without a conntrack entry is dropped. A hotsync node per firewall
//! (`hrp data-plane conntrack netns ...`, commit mode) runs as a real
//! `hotsync node` process, the two paired over loopback.
//!
//! Control first: without hotsync, moving the route from fw-a to fw-b
//! breaks the connection (fw-b drops it). Then with hotsync: fw-a fails
//! (links down, node killed), `hrp role active` on fw-b returns once its
//! kernel has the entries, the routes move, and every line the client sends
//! is still echoed within 2 s. Root only; skipped with a printed reason
//! elsewhere.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hotsync");
const SERVER: &str = "10.9.0.2:7000";

fn run(args: &[&str]) -> Output {
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

fn can_run() -> bool {
    let uid = run(&["id", "-u"]);
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("SKIP failover: needs root (network namespaces, CAP_NET_ADMIN)");
        return false;
    }
    for tool in ["ip", "nft"] {
        if Command::new(tool).arg("-V").output().is_err() {
            eprintln!("SKIP failover: `{tool}` not installed (scripts/install-system-deps.sh)");
            return false;
        }
    }
    true
}

/// The four namespaces and their links; deleted on drop.
struct Lab {
    tag: String,
}

impl Lab {
    fn ns(&self, short: &str) -> String {
        format!("hs{short}{}", self.tag)
    }

    fn exec(&self, ns: &str, args: &[&str]) {
        let ns = self.ns(ns);
        let mut full = vec!["ip", "netns", "exec", &ns];
        full.extend_from_slice(args);
        ok(&full);
    }

    fn new() -> Option<Lab> {
        static N: AtomicU32 = AtomicU32::new(0);
        let lab = Lab {
            tag: format!(
                "{}x{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
        };
        for n in ["c", "a", "b", "s"] {
            let o = run(&["ip", "netns", "add", &lab.ns(n)]);
            if !o.status.success() {
                eprintln!(
                    "SKIP failover: cannot create a network namespace: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                return None;
            }
            lab.exec(n, &["ip", "link", "set", "lo", "up"]);
        }
        // veth pairs: client-fwa, client-fwb, fwa-server, fwb-server.
        for (x, xi, y, yi) in [
            ("c", "ca", "a", "ac"),
            ("c", "cb", "b", "bc"),
            ("a", "as", "s", "sa"),
            ("b", "bs", "s", "sb"),
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
            ("b", "bc", "10.1.2.1/24"),
            ("b", "bs", "10.2.2.1/24"),
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
                "table inet hs {{\n chain forward_filter {{\n  type filter hook forward priority 0; policy drop;\n  ct state established,related accept\n  iifname \"{cif}\" ct state new accept\n }}\n}}\n"
            );
            let ns = lab.ns(fw);
            let mut nft = Command::new("ip")
                .args(["netns", "exec", &ns, "nft", "-f", "-"])
                .stdin(Stdio::piped())
                .spawn()
                .expect("nft");
            nft.stdin
                .take()
                .unwrap()
                .write_all(rules.as_bytes())
                .unwrap();
            assert!(nft.wait().unwrap().success(), "nft ruleset");
            lab.exec(
                fw,
                &["sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0"],
            );
        }
        for n in ["c", "s"] {
            lab.exec(n, &["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"]);
        }
        lab.route_via("a");
        Some(lab)
    }

    /// Client and server reach each other through firewall `fw`.
    fn route_via(&self, fw: &str) {
        let (c, s) = if fw == "a" {
            ("10.1.1.1", "10.2.1.1")
        } else {
            ("10.1.2.1", "10.2.2.1")
        };
        self.exec(
            "c",
            &[
                "ip",
                "route",
                "replace",
                "10.9.0.2/32",
                "via",
                c,
                "src",
                "10.9.0.1",
            ],
        );
        self.exec(
            "s",
            &[
                "ip",
                "route",
                "replace",
                "10.9.0.1/32",
                "via",
                s,
                "src",
                "10.9.0.2",
            ],
        );
    }

    /// fw-a fails: its links go down.
    fn fail_a(&self) {
        self.exec("a", &["ip", "link", "set", "ac", "down"]);
        self.exec("a", &["ip", "link", "set", "as", "down"]);
    }

    fn repair_a(&self) {
        self.exec("a", &["ip", "link", "set", "ac", "up"]);
        self.exec("a", &["ip", "link", "set", "as", "up"]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in ["c", "a", "b", "s"] {
            let _ = run(&["ip", "netns", "del", &self.ns(n)]);
        }
    }
}

/// An echo server in the server namespace (one thread per connection).
fn echo_server(lab: &Lab) {
    let addr: SocketAddr = SERVER.parse().unwrap();
    let listener = hotsync_conntrack::in_netns(&lab.ns("s"), move || TcpListener::bind(addr))
        .expect("netns")
        .expect("bind");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
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

/// A long-lived client connection from the client namespace.
struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
    n: u32,
}

impl Client {
    fn connect(lab: &Lab) -> Client {
        let addr: SocketAddr = SERVER.parse().unwrap();
        let s = hotsync_conntrack::in_netns(&lab.ns("c"), move || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        })
        .expect("netns")
        .expect("connect through fw-a");
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
            n: 0,
        }
    }

    /// Sends a line; `true` when it is echoed within 2 s.
    fn echo(&mut self) -> bool {
        self.n += 1;
        let line = format!("line {}", self.n);
        if writeln!(self.w, "{line}").is_err() {
            return false;
        }
        let mut got = String::new();
        match self.r.read_line(&mut got) {
            Ok(n) if n > 0 => got.trim_end() == line,
            _ => false,
        }
    }
}

/// A `hotsync node` process, killed on drop.
struct NodeProc {
    child: Child,
    sock: PathBuf,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli(n: &NodeProc, cmd: &str) -> String {
    let o = run(&[BIN, "cli", "--admin", n.sock.to_str().unwrap(), cmd]);
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn start_node(
    dir: &Path,
    name: &str,
    id: u32,
    me: u16,
    peer: u16,
    prio: u16,
    netns: &str,
) -> NodeProc {
    start_node_with(dir, name, id, me, peer, prio, netns, &[])
}

#[allow(clippy::too_many_arguments)]
fn start_node_with(
    dir: &Path,
    name: &str,
    id: u32,
    me: u16,
    peer: u16,
    prio: u16,
    netns: &str,
    extra_args: &[&str],
) -> NodeProc {
    let sock = dir.join(format!("{name}.sock"));
    let cfg = format!(
        "#\n sysname {name}\n hrp enable\n hrp node-id {id}\n hrp local-address 127.0.0.1 port {me}\n hrp remote-address 127.0.0.1 port {peer}\n hrp priority {prio}\n hrp timer hello 200\n hrp dead-count 5\n hrp admin-socket {}\n hrp data-plane conntrack mode commit netns {netns}\n#\nreturn\n",
        sock.display()
    );
    let file = dir.join(format!("{name}.cfg"));
    std::fs::write(&file, cfg).unwrap();
    let child = Command::new(BIN)
        .args(["node", "--config", file.to_str().unwrap()])
        .args(extra_args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("hotsync node");
    let n = NodeProc { child, sock };
    wait("admin socket", || {
        cli(&n, "display hrp state").contains("Role")
    });
    n
}

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn free_port() -> u16 {
    // Two consecutive free ports (session and config channel).
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if p < 65000 && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no free ports");
}

#[test]
fn a_tcp_connection_survives_failover_only_with_hotsync() {
    if !can_run() {
        return;
    }
    let Some(lab) = Lab::new() else { return };
    echo_server(&lab);

    // Control: without hotsync, moving the route breaks the connection.
    let mut c = Client::connect(&lab);
    for _ in 0..3 {
        assert!(c.echo(), "through fw-a");
    }
    lab.route_via("b");
    assert!(!c.echo(), "fw-b must drop a connection it has no entry for");
    drop(c);
    lab.route_via("a");

    // With hotsync: fw-b's node holds fw-a's entries and commits them on
    // takeover.
    let dir = std::env::temp_dir().join(format!("hotsync-failover-{}", lab.tag));
    let _ = std::fs::remove_dir_all(&dir);
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .unwrap();
    let (pa, pb) = (free_port(), free_port());
    let a = start_node(&dir, "fwa", 1, pa, pb, 120, &lab.ns("a"));
    let b = start_node(&dir, "fwb", 2, pb, pa, 100, &lab.ns("b"));
    wait("a active, b standby", || {
        cli(&a, "display hrp state").contains("active")
            && cli(&b, "display hrp state").contains("standby")
    });
    wait("a's data plane active", || {
        cli(&a, "display conntrack statistics").contains("conntrack, active")
    });
    let mut c = Client::connect(&lab);
    for _ in 0..3 {
        assert!(c.echo(), "through fw-a with hotsync");
    }
    // The flow's entry reaches fw-b's table (incremental sync).
    wait("fw-b holds the flow", || {
        cli(&b, "display session table verbose").contains("10.9.0.1")
    });
    // fw-a fails; fw-b takes over before the address (here: the routes) moves.
    lab.fail_a();
    drop(a);
    let out = cli(&b, "hrp role active");
    assert!(out.contains("committed to the kernel"), "{out}");
    lab.route_via("b");
    for i in 0..5 {
        assert!(c.echo(), "line {i} after failover not echoed within 2 s");
    }
    lab.repair_a();
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

fn session_count(n: &NodeProc) -> u64 {
    let out = cli(n, "display session table count");
    out.lines()
        .find(|l| l.contains("Current total sessions"))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.replace(',', ""))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// 100,000 entries created in fw-a's kernel reach fw-b's kernel after a
/// batch sync and takeover, equal field by field: tuples (NAT included),
/// protocol, TCP state, status bits, mark, zone, and the timeout within 10 s.
#[test]
fn a_hundred_thousand_kernel_entries_reach_the_standby_kernel_field_by_field() {
    use hotsync_conntrack::{CtSocket, Subscribe};
    use hotsync_table::{SessionEntry, SessionKey, flags, ip_proto, unix_now};
    use std::collections::HashMap;
    use std::net::{IpAddr, Ipv4Addr};

    if !can_run() {
        return;
    }
    let Some(lab) = Lab::new() else { return };
    const N: u32 = 100_000;
    let p = "/proc/sys/net/netfilter/nf_conntrack_max";
    let cur: u64 = std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if cur < 4 * u64::from(N) {
        let _ = std::fs::write(p, (4 * N).to_string());
    }
    // fw-a's kernel table: TCP in several states, UDP, ICMP, zones, marks,
    // every 9th translated (the "traffic", inserted by another socket).
    let now = unix_now();
    let sessions: Vec<(SessionKey, SessionEntry)> = (0..N)
        .map(|i| {
            let src = IpAddr::V4(Ipv4Addr::new(
                10,
                50 + (i >> 16) as u8,
                (i >> 8) as u8,
                i as u8,
            ));
            let dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + (i % 200) as u8));
            let (protocol, sport, dport) = match i % 10 {
                0..=6 => (ip_proto::TCP, 1024 + (i % 60_000) as u16, 443),
                7 | 8 => (ip_proto::UDP, 1024 + (i % 60_000) as u16, 53),
                _ => (ip_proto::ICMP, (i >> 4) as u16, 8 << 8),
            };
            let key =
                SessionKey::new(0, protocol, src, sport, dst, dport).with_ct_zone((i % 4) as u16);
            let mut e = SessionEntry {
                created: now,
                last_seen: now,
                timeout: 3000 + i % 500,
                mark: i % 7,
                ct_status: 0x6,
                state: if protocol == ip_proto::TCP && i % 11 == 0 {
                    7
                } else {
                    3
                },
                flags: flags::BACKUP | flags::ASSURED,
                ..SessionEntry::default()
            };
            if protocol != ip_proto::ICMP && i % 9 == 0 {
                e.flags |= flags::NAT;
                e.nat.src_addr = key.src_addr;
                e.nat.src_addr[..4].copy_from_slice(&[
                    100,
                    64 + (i >> 16) as u8,
                    (i >> 8) as u8,
                    i as u8,
                ]);
                e.nat.dst_addr = key.dst_addr;
                e.nat.src_port = 20_000 + (i % 40_000) as u16;
                e.nat.dst_port = key.dst_port;
            }
            (key, e)
        })
        .collect();
    let mut traffic = CtSocket::open(Some(&lab.ns("a")), Subscribe::Nothing).unwrap();
    traffic.set_recv_timeout_ms(2000).unwrap();
    let c = traffic.commit(&sessions, |e| e.timeout).unwrap();
    assert_eq!(c.ok, u64::from(N), "{c:?}");

    let dir = std::env::temp_dir().join(format!("hotsync-ct100k-{}", lab.tag));
    let _ = std::fs::remove_dir_all(&dir);
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .unwrap();
    let (pa, pb) = (free_port(), free_port());
    let cap = ["--sessions-capacity", "400000"];
    let a = start_node_with(&dir, "fwa", 1, pa, pb, 120, &lab.ns("a"), &cap);
    let b = start_node_with(&dir, "fwb", 2, pb, pa, 100, &lab.ns("b"), &cap);
    wait("a active, b standby", || {
        cli(&a, "display hrp state").contains("active")
            && cli(&b, "display hrp state").contains("standby")
    });
    wait("a's table holds fw-a's kernel table", || {
        session_count(&a) >= u64::from(N)
    });
    let out = cli(&a, "hrp sync connection-status --wait");
    assert!(out.contains("finished"), "{out}");
    eprintln!("batch sync: {}", out.trim());
    wait("b's table holds them", || session_count(&b) >= u64::from(N));
    let out = cli(&b, "hrp role active");
    assert!(out.contains(&format!("{N} entries committed")), "{out}");
    eprintln!("takeover: {}", out.trim());

    let dump = |ns: &str| {
        let mut s = CtSocket::open(Some(&lab.ns(ns)), Subscribe::Nothing).unwrap();
        let mut m = HashMap::new();
        s.dump(unix_now(), |c| {
            m.insert(c.key, c);
        })
        .unwrap();
        m
    };
    let (ka, kb) = (dump("a"), dump("b"));
    assert_eq!(ka.len(), N as usize);
    assert_eq!(kb.len(), N as usize);
    for (k, ea) in &ka {
        let eb = kb
            .get(k)
            .unwrap_or_else(|| panic!("{k:?} missing in fw-b's kernel"));
        assert_eq!(eb.reply, ea.reply, "{k:?}");
        assert_eq!(eb.entry.state, ea.entry.state, "{k:?}");
        assert_eq!(eb.entry.mark, ea.entry.mark, "{k:?}");
        assert_eq!(eb.entry.nat, ea.entry.nat, "{k:?}");
        assert_eq!(eb.entry.ct_status & 0x6, ea.entry.ct_status & 0x6, "{k:?}");
        assert!(
            eb.entry.timeout.abs_diff(ea.entry.timeout) <= 10,
            "{k:?}: {} vs {}",
            eb.entry.timeout,
            ea.entry.timeout
        );
    }
    // And as `conntrack -L` prints them, when installed: the same lines but
    // for the timeout column and the use count.
    let listing = |ns: &str| -> Option<Vec<String>> {
        let o = Command::new("ip")
            .args(["netns", "exec", &lab.ns(ns), "conntrack", "-L"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&o.stdout);
        let mut v: Vec<String> = text
            .lines()
            .filter(|l| l.contains("src="))
            .map(|l| {
                let mut w: Vec<&str> = l.split_whitespace().collect();
                w.remove(2); // the timeout
                w.retain(|t| !t.starts_with("use="));
                w.join(" ")
            })
            .collect();
        v.sort();
        Some(v)
    };
    if let (Some(la), Some(lb)) = (listing("a"), listing("b")) {
        assert_eq!(la.len(), N as usize);
        assert!(la == lb, "conntrack -L differs between fw-a and fw-b");
    } else {
        eprintln!("conntrack -L unavailable: the dump comparison stands alone");
    }
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
