//! What a network engineer meets in the first hour, through real
//! `hotsync node` processes and `hotsync cli` only: typos refused at their
//! position, abbreviations, bounded imports with honest exit codes, rule
//! order across the pair, masked keys, one log line per event.

mod common;

use common::{TempDir, wait_for};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hotsync");

struct NodeProc {
    child: Child,
    sock: PathBuf,
    log: PathBuf,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeProc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Two consecutive free loopback ports, from this binary's own range.
fn free_ports(avoid: &[u16]) -> u16 {
    common::free_ports(34000, 14000, avoid)
}

fn start_node(dir: &Path, name: &str, config: &str, level: &str) -> NodeProc {
    let file = dir.join(format!("{name}.cfg"));
    std::fs::write(&file, config).unwrap();
    let log = dir.join(format!("{name}.log"));
    let child = Command::new(BIN)
        .args(["node", "--config"])
        .arg(&file)
        .args(["--log-level", level, "--sessions-capacity", "100000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let sock = dir.join(format!("{name}.sock"));
    let mut node = NodeProc { child, sock, log };
    wait_for("the admin socket", Duration::from_secs(10), || {
        if let Ok(Some(status)) = node.child.try_wait() {
            panic!("node {name} exited early: {status}: {}", node.log());
        }
        node.sock.exists().then_some(())
    });
    node
}

fn cli_raw(n: &NodeProc, cmds: &[&str]) -> Output {
    Command::new(BIN)
        .arg("cli")
        .arg("--admin")
        .arg(&n.sock)
        .args(cmds)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn cli(n: &NodeProc, cmds: &[&str]) -> String {
    let out = cli_raw(n, cmds);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmds:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn hrp(id: u32, me: u16, peer: u16, prio: u16, dir: &Path, name: &str) -> String {
    format!(
        "#\n hrp enable\n hrp node-id {id}\n hrp local-address 127.0.0.1 port {me}\n hrp remote-address 127.0.0.1 port {peer}\n hrp priority {prio}\n hrp timer hello 200\n hrp dead-count 5\n hrp authentication-key First-Key-1\n hrp admin-socket {}\n",
        dir.join(format!("{name}.sock")).display()
    )
}

fn rules(names: &[&str]) -> String {
    let mut s = String::from("#\nsecurity-policy\n");
    for r in names {
        s.push_str(&format!(" rule name {r}\n  action permit\n"));
    }
    s
}

/// The security rules of a `display current-configuration`, in order.
fn rule_order(config: &str) -> Vec<String> {
    config
        .lines()
        .filter_map(|l| l.strip_prefix(" rule name "))
        .map(str::to_owned)
        .collect()
}

/// A node whose peer never answers.
fn lone_node(dir: &TempDir) -> NodeProc {
    let p = free_ports(&[]);
    let q = free_ports(&[p]);
    let cfg = format!(
        "#\n sysname LONE\n{}#\nvsys name v1 id 1\n#\nreturn\n",
        hrp(1, p, q, 100, &dir.0, "lone")
    );
    start_node(&dir.0, "lone", &cfg, "warn")
}

#[test]
fn typos_are_refused_where_they_are_and_abbreviations_work() {
    let dir = TempDir::new("typos");
    let n = lone_node(&dir);
    let before = cli(&n, &["display current-configuration"]);

    for (typo, caret) in [
        ("dispaly hrp state", "  ^\n"),
        ("sesion generate 10", "  ^\n"),
        ("display hrp stat", "              ^\n"),
        ("hrp priorty 120", "      ^\n"),
        ("wait", "       ^\n"),
    ] {
        let out = cli_raw(&n, &[typo]);
        assert_eq!(out.status.code(), Some(2), "{typo}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("  {typo}\n{caret}")),
            "{typo}:\n{err}"
        );
        assert!(err.contains("found at '^' position."), "{err}");
    }
    // Nothing of it became configuration.
    assert_eq!(cli(&n, &["display current-configuration"]), before);

    // VRP abbreviations.
    assert!(cli(&n, &["disp hrp state"]).contains("Role:"));
    assert_eq!(cli(&n, &["dis cur"]), before);
    // `?` and `help` list commands; `dis ?` what may follow.
    for h in ["?", "help"] {
        assert!(cli(&n, &[h]).contains("display current-configuration"));
    }
    let next = cli(&n, &["dis ?"]);
    assert!(
        next.contains("  hrp\n") && next.contains("  session\n"),
        "{next}"
    );
    assert_eq!(cli(&n, &["display current-configuration"]), before);

    // `wait` for a job that does not exist: one `Error:`.
    let out = cli_raw(&n, &["wait 99"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "Error: no job 99\n");

    // An opaque line from the node file can still be removed.
    let out = cli_raw(&n, &["undo firewall defend land enable"]);
    assert_eq!(out.status.code(), Some(2), "absent: still a typo");
}

#[test]
fn imports_end_and_say_so() {
    let dir = TempDir::new("imports");
    let n = lone_node(&dir);

    // A directory: an error, no "imported 0 sessions", status 1.
    let out = cli_raw(&n, &[&format!("session import {}", dir.0.display())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("imported"));

    // /dev/zero: ends (a megabyte without a line break), status 1.
    let t0 = Instant::now();
    let out = cli_raw(&n, &["session import /dev/zero"]);
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no line break"), "{}", stderr(&out));

    // Binary garbage: reported escaped, never raw; status 1.
    let bin = dir.0.join("garbage.bin");
    std::fs::write(
        &bin,
        b"\x1b[2J\x1b]0;pwned\x07 \x00\x01\xff\xfe\ntcp 6 \x1b[31m\n",
    )
    .unwrap();
    let out = cli_raw(&n, &[&format!("session import {}", bin.display())]);
    assert_eq!(out.status.code(), Some(1));
    let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
    assert!(!all.contains(&0x1b) && !all.contains(&0x07) && !all.contains(&0));
    assert!(stderr(&out).contains("\\u{1b}"), "{}", stderr(&out));

    // A client that goes away stops an endless import of valid lines.
    let fifo = dir.0.join("ct.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let line = b"udp 17 29 src=10.0.0.1 dst=8.8.8.8 sport=5353 dport=53 src=8.8.8.8 dst=10.0.0.1 sport=53 dport=5353 mark=0 use=1\n";
            let t0 = Instant::now();
            while f.write_all(line).is_ok() {
                assert!(
                    t0.elapsed() < Duration::from_secs(60),
                    "the node kept reading"
                );
            }
        })
    };
    let mut client = Command::new(BIN)
        .arg("cli")
        .arg("--admin")
        .arg(&n.sock)
        .arg(format!("session import {}", fifo.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    client.kill().unwrap();
    client.wait().unwrap();
    writer.join().unwrap();
    // The node serves the next client.
    assert!(cli(&n, &["display hrp state"]).contains("Role:"));

    // Too many sessions: nothing is left behind.
    let out = cli_raw(&n, &["session generate 99999999999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no session generated"),
        "{}",
        stderr(&out)
    );
    let count = cli(&n, &["display session table count"]);
    assert!(count.contains("Current total sessions: 1\n"), "{count}");
}

#[test]
fn a_pair_keeps_rule_order_masks_keys_and_logs_each_event_once() {
    let dir = TempDir::new("pair");
    let pa = free_ports(&[]);
    let pb = free_ports(&[pa]);
    let cfg_a = format!(
        "#\n sysname FA\n{}#\nvsys name v1 id 1\n{}#\nreturn\n",
        hrp(1, pa, pb, 120, &dir.0, "a"),
        rules(&["r1", "r2", "r3"])
    );
    let cfg_b = format!(
        "#\n sysname FB\n{}{}#\nreturn\n",
        hrp(2, pb, pa, 100, &dir.0, "b"),
        rules(&["r1", "b-only", "r3", "b-last"])
    );
    let a = start_node(&dir.0, "a", &cfg_a, "debug");
    let b = start_node(&dir.0, "b", &cfg_b, "debug");
    for n in [&a, &b] {
        wait_for("the relationship", Duration::from_secs(15), || {
            cli(n, &["display hrp state"])
                .contains("Relationship:       established")
                .then_some(())
        });
    }

    // Batch: r2 lands after r1 as on A, not at the end.
    let out = cli(&a, &["hrp sync config"]);
    let job: String = out
        .split("as job ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let waited = cli(&a, &[&format!("wait {job}")]);
    assert!(waited.contains("finished"), "{waited}");
    assert!(!waited.contains(" 0/s"), "a config job's rate: {waited}");
    assert_eq!(
        rule_order(&cli(&b, &["display current-configuration"])),
        ["r1", "r2", "b-only", "r3", "b-last"]
    );
    // Incremental: after r3, its predecessor on A, not after b-last.
    cli(&a, &["security-policy rule name r4 action deny"]);
    wait_for("r4 on B", Duration::from_secs(10), || {
        let order = rule_order(&cli(&b, &["display current-configuration"]));
        (order.len() == 6).then_some(order)
    });
    assert_eq!(
        rule_order(&cli(&b, &["display current-configuration"])),
        ["r1", "r2", "b-only", "r3", "r4", "b-last"]
    );

    // A job with nothing to send says so.
    let out = cli(&a, &["hrp sync connection-status --wait"]);
    assert!(out.contains("nothing to send"), "{out}");
    assert!(!out.contains("1/1"), "{out}");

    // Equal tables list equal sessions: the first ones in key order.
    cli(
        &a,
        &["session generate 1000 vsys v1", "session generate 1000"],
    );
    wait_for("the sessions on B", Duration::from_secs(10), || {
        cli(&b, &["display session table count"])
            .contains("Current total sessions: 2,000")
            .then_some(())
    });
    let la = cli(&a, &["display session table"]);
    assert_eq!(la, cli(&b, &["display session table"]));
    assert!(!la.contains("vsys v1"), "root sessions come first:\n{la}");

    // Keys: masked in displays, never in logs, even typed at run time.
    cli(&a, &["hrp authentication-key Second-Key-2"]);
    let shown = cli(&a, &["display current-configuration"]);
    assert!(shown.contains("hrp authentication-key %^%#"), "{shown}");
    for n in [&a, &b] {
        let shown = cli(n, &["display current-configuration"]);
        assert!(!shown.contains("-Key-"), "{shown}");
    }

    for mut n in [a, b] {
        cli(&n, &["shutdown node"]);
        wait_for("the node to exit", Duration::from_secs(10), || {
            n.child.try_wait().unwrap()
        });
        let log = n.log();
        assert!(log.contains("admin request"), "debug logging is on:\n{log}");
        assert!(!log.contains("First-Key-1") && !log.contains("Second-Key-2"));
        // One line per event: the protocol core's.
        assert_eq!(
            log.matches("HRP relationship established").count(),
            1,
            "{log}"
        );
        assert!(!log.contains("relationship established with node"), "{log}");
        assert!(!log.contains("batch sync done"), "{log}");
        assert!(
            !log.contains(" -> active:") && !log.contains(" -> standby:"),
            "{log}"
        );
    }
}
