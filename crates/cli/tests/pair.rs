//! Two real `hotsync node` processes on loopback, driven only through
//! `hotsync cli --admin SOCKET COMMAND...`: each of B1-B11 is checked.

mod common;

use common::{TempDir, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hotsync");

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

/// Two consecutive free loopback ports, from this binary's own range.
/// `display hrp state` of a node whose relationship synchronized nothing
/// from before it yet (B4).
const INCOMPLETE: &str =
    "Peer sync:          peer incomplete: run `hrp sync connection-status` and `hrp sync config`";

fn free_ports(avoid: &[u16]) -> u16 {
    common::free_ports(12000, 20000, avoid)
}

fn start_node(dir: &Path, name: &str, config: &str) -> NodeProc {
    let file = dir.join(format!("{name}.cfg"));
    std::fs::write(&file, config).unwrap();
    let child = Command::new(BIN)
        .args(["node", "--config"])
        .arg(&file)
        .args(["--log-level", "warn", "--sessions-capacity", "100000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let sock = dir.join(format!("{name}.sock"));
    let mut node = NodeProc { child, sock };
    wait_for("the admin socket", Duration::from_secs(10), || {
        if let Ok(Some(status)) = node.child.try_wait() {
            panic!("node {name} exited early: {status}");
        }
        node.sock.exists().then_some(())
    });
    node
}

fn cli_raw(sock: &Path, cmds: &[&str]) -> Output {
    Command::new(BIN)
        .arg("cli")
        .arg("--admin")
        .arg(sock)
        .args(cmds)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs commands; panics unless they all succeed; returns stdout.
fn cli(n: &NodeProc, cmds: &[&str]) -> String {
    let out = cli_raw(&n.sock, cmds);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmds:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn config(n: &NodeProc) -> String {
    cli(n, &["display current-configuration"])
}

/// `Current total sessions (...): N` of `display session table ... count`.
fn session_count(n: &NodeProc, scope: &str) -> u64 {
    let out = cli(n, &[&format!("display session table vsys {scope} count")]);
    let line = out
        .lines()
        .find(|l| l.contains("Current total sessions"))
        .unwrap_or_else(|| panic!("no count in {out}"));
    line.rsplit(' ')
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

fn combined_digest(n: &NodeProc) -> String {
    let out = cli(n, &["display session table digest"]);
    out.lines()
        .find(|l| l.starts_with(" Combined:"))
        .unwrap()
        .to_owned()
}

fn hrp_lines(id: u32, me: u16, peer: u16, prio: u16, dir: &Path, name: &str) -> String {
    format!(
        "#\n hrp enable\n hrp node-id {id}\n hrp local-address 127.0.0.1 port {me}\n hrp remote-address 127.0.0.1 port {peer}\n hrp priority {prio}\n hrp timer hello 200\n hrp dead-count 5\n hrp authentication-key test-Key-1\n hrp admin-socket {}\n",
        dir.join(format!("{name}.sock")).display()
    )
}

fn config_a(pa: u16, pb: u16, dir: &Path) -> String {
    format!(
        "#\n sysname TA\n{}#\nvsys name v1 id 1\n#\nip address-set web-servers type object\n address 0 10.1.1.10 mask 32\n#\nip address-set office type object\n address 0 10.1.0.0 mask 16\n#\nip route-static 10.50.0.0 255.255.0.0 10.1.1.254\n#\nuser-manage user alice\n parent-group /default\n#\nv-gateway sslvpn interface GigabitEthernet1/0/1 private www.example.com\n#\nsslvpn session-timeout 30\n#\nsecurity-policy\n rule name allow-web\n  destination-address address-set web-servers\n  action permit\n#\nswitch vsys v1\n#\nsecurity-policy\n rule name v1-rule\n  action permit\n#\nreturn\n",
        hrp_lines(1, pa, pb, 120, dir, "a")
    )
}

fn config_b(pa: u16, pb: u16, dir: &Path) -> String {
    format!(
        "#\n sysname TB\n{} hrp auto-sync config static-route\n#\nip address-set office type object\n address 0 10.2.0.0 mask 16\n#\nsecurity-policy\n rule name b-only\n  action deny\n#\nreturn\n",
        hrp_lines(2, pb, pa, 100, dir, "b")
    )
}

#[test]
fn a_pair_behaves_like_hrp_sync() {
    let dir = TempDir::new("pair");
    let pa = free_ports(&[]);
    let pb = free_ports(&[pa]);

    // B runs alone first and sees traffic of its own: 50 sessions that exist
    // before any relationship (B4) and that A will never have (B5).
    let b = start_node(&dir.0, "b", &config_b(pa, pb, &dir.0));
    let out = cli(&b, &["session generate 50 seed 99"]);
    assert!(out.contains("generated 50 sessions"), "{out}");
    let st = cli(&b, &["display hrp state"]);
    assert!(st.contains("not established"), "{st}");

    // A joins; the relationship forms; A (priority 120) is active.
    let a = start_node(&dir.0, "a", &config_a(pa, pb, &dir.0));
    for n in [&a, &b] {
        wait_for("the relationship", Duration::from_secs(15), || {
            cli(n, &["display hrp state"])
                .contains("Relationship:       established")
                .then_some(())
        });
    }
    assert!(cli(&a, &["display hrp state"]).contains("Role:               active"));
    assert!(cli(&b, &["display hrp state verbose"]).contains("Role:               standby"));

    // B4: what existed before the relationship is not synchronized
    // automatically: neither A's configuration nor B's sessions. Both nodes
    // say the peer is incomplete until the batch syncs ran.
    for n in [&a, &b] {
        let st = cli(n, &["display hrp state"]);
        assert!(st.contains(INCOMPLETE), "{st}");
    }
    assert!(!config(&b).contains("allow-web"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(session_count(&a, "root"), 0);

    // B6 + B1: `hrp sync config` returns a job id at once; sync-status shows it finish.
    let t0 = Instant::now();
    let out = cli(&a, &["hrp sync config"]);
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(out.contains("started as job"), "{out}");
    let job: String = out
        .split("as job ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    wait_for("the config job", Duration::from_secs(10), || {
        let st = cli(&a, &["display hrp sync-status"]);
        st.lines()
            .any(|l| l.trim_start().starts_with(&format!("{job} ")) && l.contains("done"))
            .then_some(())
    });
    let cb = config(&b);
    assert!(cb.contains("rule name allow-web"), "B1: {cb}");
    assert!(cb.contains("ip address-set web-servers"), "B1: {cb}");
    assert!(
        cb.contains("switch vsys v1") && cb.contains("rule name v1-rule"),
        "B1/B9: {cb}"
    );
    // B5: B's own extra configuration survives.
    assert!(cb.contains("rule name b-only"), "B5: {cb}");
    // B7: same identity, other parameters: B keeps its own and lists a conflict.
    assert!(
        cb.contains("address 0 10.2.0.0 mask 16") && !cb.contains("10.1.0.0"),
        "B7: {cb}"
    );
    let conflicts = cli(&b, &["display hrp configuration conflicts"]);
    assert!(
        conflicts.contains("address-set `office`"),
        "B7: {conflicts}"
    );
    assert!(conflicts.contains("10.1.0.0") && conflicts.contains("10.2.0.0"));
    // B8: no static routes without `hrp auto-sync config static-route`.
    assert!(!cb.contains("10.50.0.0"), "B8: {cb}");
    // B10: no SSL VPN, no user database, no node-local settings.
    for never in [
        "alice",
        "sslvpn",
        "v-gateway",
        "sysname TA",
        "hrp node-id 1",
    ] {
        assert!(!cb.contains(never), "B10: `{never}` crossed:\n{cb}");
    }
    assert!(cb.contains("sysname TB"));

    // B8: once enabled, static routes are part of `hrp sync config`.
    let out = cli(
        &a,
        &[
            "hrp auto-sync config static-route",
            "hrp sync config --wait",
        ],
    );
    assert!(out.contains("finished"), "{out}");
    assert!(config(&b).contains("ip route-static 10.50.0.0 255.255.0.0 10.1.1.254"));
    // ... and `undo` disables them again (incremental sync included).
    cli(
        &a,
        &[
            "undo hrp auto-sync config static-route",
            "ip route-static 10.70.0.0 255.255.0.0 10.1.1.254",
            // B3: an incremental change after establishment arrives by itself.
            "security-policy rule name inc-rule source-zone trust action permit",
        ],
    );
    wait_for("the incremental change", Duration::from_secs(10), || {
        config(&b).contains("rule name inc-rule").then_some(())
    });
    assert!(!config(&b).contains("10.70.0.0"), "B8: undo");

    // B3 + B11: new sessions after establishment arrive by themselves,
    // except the local-only ones.
    let out = cli(
        &a,
        &["session generate 1000 vsys v1 local-only-every 10 seed 7"],
    );
    assert!(out.contains("100 local-only"), "{out}");
    wait_for("incremental sessions", Duration::from_secs(10), || {
        (session_count(&b, "v1") == 900).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(session_count(&b, "v1"), 900, "B11");
    assert_eq!(session_count(&a, "v1"), 1000);

    for n in [&a, &b] {
        let st = cli(n, &["display hrp state"]);
        assert!(
            st.contains("peer incomplete: run `hrp sync connection-status`\n"),
            "{st}"
        );
    }
    // B5: A's batch adds, never deletes: B's 50 extra sessions stay.
    let out = cli(&a, &["hrp sync connection-status --wait"]);
    assert!(out.contains("finished"), "{out}");
    for n in [&a, &b] {
        let st = cli(n, &["display hrp state"]);
        assert!(st.contains("Peer sync:          complete"), "{st}");
    }
    assert_eq!(session_count(&b, "root"), 50, "B5");
    // B4: B's pre-existing sessions still are not on A...
    assert_eq!(session_count(&a, "root"), 0, "B4");
    // B2: ... until `hrp sync connection-status` on B pushes them.
    let out = cli(&b, &["hrp sync connection-status --wait"]);
    assert!(out.contains("finished"), "{out}");
    assert_eq!(session_count(&a, "root"), 50, "B2");

    // B9: not inside a virtual system.
    let out = cli_raw(&a.sock, &["switch vsys v1", "hrp sync config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only in the root system"), "B9: {err}");
    // A vsys context applies to configuration commands.
    cli(
        &a,
        &[
            "switch vsys v1",
            "security-policy rule name v1-new action permit",
        ],
    );
    wait_for("the vsys change", Duration::from_secs(10), || {
        cli(&b, &["display current-configuration vsys v1"])
            .contains("rule name v1-new")
            .then_some(())
    });

    // `session import` of real conntrack output; bad lines are reported.
    let ct = dir.0.join("conntrack.txt");
    std::fs::write(
        &ct,
        "tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=51234 dport=443 src=10.0.0.2 dst=10.0.0.1 sport=443 dport=51234 [ASSURED] mark=0 use=1\n\
         udp      17 29 src=9.0.0.1 dst=8.8.8.8 sport=5353 dport=53 src=8.8.8.8 dst=203.0.113.9 sport=53 dport=40001 mark=0 use=1\n\
         ipv6     10 tcp      6 300 ESTABLISHED src=fd00::1 dst=fd00::2 sport=40000 dport=22 src=fd00::2 dst=fd00::1 sport=22 dport=40000 [ASSURED] mark=0 use=1\n\
         garbage line\n",
    )
    .unwrap();
    let out = cli(&a, &[&format!("session import {}", ct.display())]);
    assert!(
        out.contains("imported 3 sessions") && out.contains("1 with NAT"),
        "{out}"
    );
    assert!(out.contains("line 4:"), "{out}");
    wait_for("imported sessions on B", Duration::from_secs(10), || {
        (session_count(&b, "root") == 53).then_some(())
    });
    // The listing shows the first sessions in key order: 9.0.0.1 is among them.
    let out = cli(&b, &["display session table vsys root verbose"]);
    assert!(out.contains("NAT 203.0.113.9:40001"), "{out}");

    // After traffic stops the digests are equal.
    wait_for("equal digests", Duration::from_secs(10), || {
        (combined_digest(&a) == combined_digest(&b)).then_some(())
    });
    let stats = cli(&a, &["display hrp statistics"]);
    assert!(stats.contains("session records"), "{stats}");

    // A restarted peer is a new relationship (B4): a change made while it
    // is down waits for the same process, which never returns; the new one
    // gets nothing from before, and both nodes say the peer is incomplete.
    let mut b = b;
    cli(&b, &["shutdown node"]);
    wait_for("B to exit", Duration::from_secs(10), || {
        b.child.try_wait().unwrap()
    });
    wait_for("A to see B gone", Duration::from_secs(10), || {
        cli(&a, &["display hrp state"])
            .contains("Relationship:       not established")
            .then_some(())
    });
    let out = cli(&a, &["security-policy rule name outage-rule action permit"]);
    assert!(
        out.contains("queued for the peer: the relationship is down; it is delivered if the same peer process reconnects"),
        "{out}"
    );
    let b = start_node(&dir.0, "b", &config_b(pa, pb, &dir.0));
    for n in [&a, &b] {
        wait_for("the new relationship", Duration::from_secs(15), || {
            let st = cli(n, &["display hrp state"]);
            (st.contains("Relationship:       established") && st.contains(INCOMPLETE))
                .then_some(())
        });
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !config(&b).contains("outage-rule"),
        "an outage fragment was sent"
    );
    assert_eq!(
        session_count(&b, "root"),
        0,
        "sessions from before were sent"
    );

    // Clean shutdown through the admin socket.
    for mut n in [a, b] {
        cli(&n, &["shutdown node"]);
        let status = wait_for("the node to exit", Duration::from_secs(10), || {
            n.child.try_wait().unwrap()
        });
        assert!(status.success());
        assert!(!n.sock.exists());
    }
}

#[test]
fn errors_are_clear() {
    let dir = TempDir::new("errors");

    // A bad file: FILE:line:column, exit 2.
    let bad = dir.0.join("bad.cfg");
    std::fs::write(&bad, "sysname X\n#\ninterface G1\n\tundo shutdown\n").unwrap();
    let out = Command::new(BIN)
        .args(["node", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("{}:4:1: expected", bad.display())),
        "{err}"
    );

    std::fs::write(&bad, "hrp timer hello 5\n").unwrap();
    let out = Command::new(BIN)
        .args(["node", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&format!("{}:1:", bad.display())), "{err}");

    // A peer that does not answer: the node keeps retrying and says so.
    let pa = free_ports(&[]);
    let pb = free_ports(&[pa]);
    let a = start_node(&dir.0, "a", &config_a(pa, pb, &dir.0));
    wait_for("the connect error", Duration::from_secs(10), || {
        cli(&a, &["display hrp state"])
            .contains("Peer not answering")
            .then_some(())
    });
    // `hrp sync` needs the relationship.
    let out = cli_raw(&a.sock, &["hrp sync config"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not established"));
    // A change before any relationship is not synchronized (B4), and says so.
    let out = cli(&a, &["security-policy rule name early action permit"]);
    assert!(
        out.contains("not synchronized: no relationship with the peer has been established yet"),
        "{out}"
    );
    // Unknown commands fail with status 2.
    let out = cli_raw(&a.sock, &["display nonsense"]);
    assert_eq!(out.status.code(), Some(2));

    // An address in use.
    let other = dir.0.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let file = other.join("a.cfg");
    std::fs::write(&file, config_a(pa, pb, &other)).unwrap();
    let out = Command::new(BIN)
        .args(["node", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{pa}")),
        "{err}"
    );
}
