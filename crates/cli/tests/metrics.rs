//! The Prometheus endpoint of two real `hotsync node` processes: scraped
//! during a batch sync, the counters move as the protocol does; a cut shows
//! in the resync counter; the JSON logs hold one line per role change.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hotsync");

/// A `hotsync node` process, killed on drop.
struct NodeProc {
    child: Child,
    sock: PathBuf,
    metrics: u16,
    log: PathBuf,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` free loopback ports, each with its successor free too.
fn free_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut out = Vec::new();
    while out.len() < n {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let p = l.local_addr().unwrap().port();
        if p < 65000 {
            if let Ok(l2) = TcpListener::bind((Ipv4Addr::LOCALHOST, p + 1)) {
                out.push(p);
                held.push(l2);
            }
        }
        held.push(l);
    }
    out
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(dir: &Path, name: &str, id: u32, prio: u16, me: u16, peer: u16, metrics: u16) -> NodeProc {
    let sock = dir.join(format!("{name}.sock"));
    let text = format!(
        "#\n sysname {name}\n#\n hrp enable\n hrp node-id {id}\n hrp local-address 127.0.0.1 port {me}\n hrp remote-address 127.0.0.1 port {peer}\n hrp priority {prio}\n hrp timer hello 200\n hrp dead-count 5\n hrp authentication-key test-Key-1\n hrp admin-socket {}\n hrp metrics listen 127.0.0.1 port {metrics}\n#\n",
        sock.display()
    );
    let file = dir.join(format!("{name}.cfg"));
    std::fs::write(&file, text).unwrap();
    let log = dir.join(format!("{name}.log"));
    let child = Command::new(BIN)
        .args(["node", "--config"])
        .arg(&file)
        .args(["--log-format", "json", "--sessions-capacity", "1000000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut n = NodeProc {
        child,
        sock,
        metrics,
        log,
    };
    wait_for("the admin socket", Duration::from_secs(10), || {
        if let Ok(Some(status)) = n.child.try_wait() {
            panic!("node {name} exited early: {status}");
        }
        n.sock.exists()
    });
    n
}

fn cli(n: &NodeProc, cmd: &str) -> String {
    let out = Command::new(BIN)
        .arg("cli")
        .arg("--admin")
        .arg(&n.sock)
        .arg(cmd)
        .output()
        .unwrap();
    assert!(out.status.success(), "{cmd}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cli_json(n: &NodeProc, cmd: &str) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg("cli")
        .arg("--admin")
        .arg(&n.sock)
        .arg("--json")
        .arg(cmd)
        .output()
        .unwrap();
    assert!(out.status.success(), "{cmd}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{cmd}: {e}: {out:?}"))
}

/// The body of one scrape.
fn exposition(n: &NodeProc) -> String {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, n.metrics)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_owned()
}

/// One scrape, parsed: `name{labels}` -> value. Checks the format on the
/// way: every sample belongs to a family announced by `# TYPE`, counters
/// end in `_total`, values parse.
fn scrape(n: &NodeProc) -> HashMap<String, f64> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, n.metrics)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut out = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(matches!(kind, "counter" | "gauge"), "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        assert!(types.contains_key(name), "sample without # TYPE: {line}");
        assert!(name.starts_with("hotsync_"), "{line}");
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        assert!(
            out.insert(series.to_owned(), v).is_none(),
            "duplicate {line}"
        );
    }
    out
}

fn get(m: &HashMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no {series} in {m:#?}"))
}

const SENT: &str = "hotsync_records_sent_total{channel=\"session\"}";
const RECEIVED: &str = "hotsync_records_received_total{channel=\"session\"}";
const RUNNING: &str = "hotsync_sync_jobs_running{kind=\"connection-status\"}";
const PROGRESS: &str = "hotsync_sync_job_progress_ratio{kind=\"connection-status\"}";
const INCOMPLETE_SESSIONS: &str = "hotsync_peer_incomplete{sync=\"connection-status\"}";
const INCOMPLETE_CONFIG: &str = "hotsync_peer_incomplete{sync=\"config\"}";

fn resyncs(m: &HashMap<String, f64>) -> f64 {
    ["journal_overflow", "disconnect", "peer_request"]
        .iter()
        .map(|c| get(m, &format!("hotsync_resync_shards_total{{cause=\"{c}\"}}")))
        .sum()
}

/// Every `hotsync_*` name in the example alert rules and dashboard is one
/// the node exports.
fn examples_use_existing_names(n: &NodeProc) {
    let body = exposition(n);
    let families: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for file in [
        "examples/prometheus/alerts.yml",
        "examples/grafana/hotsync-dashboard.json",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut used = 0;
        for (i, _) in text.match_indices("hotsync_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                families.contains(&name.as_str()),
                "{file}: unknown metric {name}"
            );
            used += 1;
        }
        assert!(used >= 5, "{file} uses {used} metrics");
    }
}

#[test]
fn metrics_follow_a_batch_sync_and_a_cut() {
    let dir = std::env::temp_dir().join(format!("hotsync-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = free_ports(4);
    let (pa, pb) = (p[0], p[1]);
    let (ma, mb) = (p[2], p[3]);

    // A alone fills its table: before the relationship, nothing is synced (B4).
    let a = start(&dir, "a", 1, 120, pa, pb, ma);
    let m = scrape(&a);
    assert_eq!(get(&m, "hotsync_peer_up"), 0.0);
    assert_eq!(get(&m, "hotsync_heartbeat_age_seconds"), f64::INFINITY);
    assert_eq!(get(&m, "hotsync_sessions_capacity"), 1_000_000.0);
    examples_use_existing_names(&a);
    cli(&a, "session generate 400000 seed 3");
    let sessions = get(&scrape(&a), "hotsync_sessions");
    assert!(sessions > 390_000.0, "{sessions}");

    let b = start(&dir, "b", 2, 100, pb, pa, mb);
    wait_for("the relationship", Duration::from_secs(15), || {
        [&a, &b]
            .iter()
            .all(|n| get(&scrape(n), "hotsync_relationship_established") == 1.0)
    });
    let (ma0, mb0) = (scrape(&a), scrape(&b));
    assert_eq!(get(&ma0, "hotsync_role{role=\"active\"}"), 1.0);
    assert_eq!(get(&mb0, "hotsync_role{role=\"standby\"}"), 1.0);
    assert_eq!(get(&ma0, "hotsync_peer_up"), 1.0);
    assert!(get(&ma0, "hotsync_heartbeat_age_seconds") < 1.0);
    assert_eq!(get(&ma0, SENT), 0.0, "nothing synced before the batch (B4)");
    // A new relationship: both nodes say the peer is incomplete.
    for m in [&ma0, &mb0] {
        assert_eq!(get(m, INCOMPLETE_SESSIONS), 1.0);
        assert_eq!(get(m, INCOMPLETE_CONFIG), 1.0);
    }

    // The batch sync, scraped on both sides while it runs. B is frozen
    // while the job starts, so the job cannot finish (it waits for B's
    // acknowledgements) before A is scraped, however fast the machine.
    let signal = |sig: &str| {
        let pid = b.child.id().to_string();
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success());
    };
    signal("-STOP");
    cli(&a, "hrp sync connection-status");
    let started = scrape(&a);
    signal("-CONT");
    let mut seen_running = get(&started, RUNNING) == 1.0;
    assert!(get(&started, PROGRESS) < 1.0, "done before B acknowledged");
    let mut last = (0.0, 0.0);
    loop {
        let (sa, sb) = (scrape(&a), scrape(&b));
        let running = get(&sa, RUNNING) == 1.0;
        seen_running |= running;
        let now = (get(&sa, PROGRESS), get(&sb, RECEIVED));
        assert!(now.0 >= last.0 && now.1 >= last.1, "{last:?} -> {now:?}");
        last = now;
        if !running {
            assert_eq!(now.0, 1.0);
            break;
        }
    }
    assert!(seen_running, "no scrape caught the job running");
    // After the job: what A sent, B received (every record acknowledged).
    wait_for(
        "B to have received what A sent",
        Duration::from_secs(10),
        || get(&scrape(&a), SENT) == get(&scrape(&b), RECEIVED),
    );
    let (sa, sb) = (scrape(&a), scrape(&b));
    assert_eq!(get(&sa, SENT), sessions);
    assert_eq!(get(&sb, "hotsync_sessions"), sessions);
    assert!(get(&sa, "hotsync_bytes_sent_total{channel=\"session\"}") > sessions * 10.0);
    assert!(get(&sb, "hotsync_bytes_received_total{channel=\"session\"}") > sessions * 10.0);
    assert!(get(&sa, "hotsync_session_batches_sent_total") > 0.0);
    let resyncs_before = resyncs(&sa);
    // The sessions batch completed the peer's sessions on both nodes, not
    // its configuration.
    for m in [&sa, &sb] {
        assert_eq!(get(m, INCOMPLETE_SESSIONS), 0.0);
        assert_eq!(get(m, INCOMPLETE_CONFIG), 1.0);
    }
    let state = cli_json(&b, "display hrp state");
    assert_eq!(state["peer_incomplete"], true);
    assert_eq!(
        state["peer_incomplete_syncs"],
        serde_json::json!(["config"])
    );

    // `hotsync cli --json`: the same figures, for scripts.
    let state = cli_json(&a, "display hrp state");
    assert_eq!(state["role"], "active");
    assert_eq!(state["established"], true);
    assert_eq!(state["peer"]["node_id"], 2);
    assert_eq!(state["peer"]["role"], "standby");
    let stats = cli_json(&a, "display hrp statistics");
    assert_eq!(stats["records_tx"].as_f64(), Some(get(&sa, SENT)));
    let jobs = cli_json(&a, "display hrp sync-status");
    assert_eq!(jobs["jobs"][0]["kind"], "connection-status");
    assert_eq!(jobs["jobs"][0]["state"], "done");
    assert_eq!(jobs["jobs"][0]["total"].as_f64(), Some(sessions));
    let out = Command::new(BIN)
        .arg("cli")
        .arg("--admin")
        .arg(&a.sock)
        .args(["--json", "hrp sync config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    // A cut: B freezes past the dead interval while A keeps changing
    // sessions. A drops the connection with changes unacknowledged: those
    // shards are resynced when B is back.
    let pid = b.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    cli(&a, "session generate 50000 seed 4");
    wait_for("A to see the peer down", Duration::from_secs(15), || {
        get(&scrape(&a), "hotsync_peer_up") == 0.0
    });
    let down = scrape(&a);
    assert!(get(&down, "hotsync_errors_total{kind=\"timeout\"}") >= 1.0);
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_for("the relationship again", Duration::from_secs(15), || {
        get(&scrape(&a), "hotsync_relationship_established") == 1.0
    });
    wait_for(
        "the resync counter to rise",
        Duration::from_secs(15),
        || resyncs(&scrape(&a)) > resyncs_before,
    );
    wait_for("the tables to agree", Duration::from_secs(30), || {
        get(&scrape(&a), "hotsync_sessions") == get(&scrape(&b), "hotsync_sessions")
            && get(&scrape(&a), "hotsync_uncertain_shards") == 0.0
    });

    // The logs: JSON, one line per role change.
    drop(b);
    let log = std::fs::read_to_string(&a.log).unwrap();
    let mut role_changes = 0;
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["fields"]["message"] == "HRP role changed" {
            role_changes += 1;
            assert_eq!(v["fields"]["to"], "active", "{line}");
            assert_eq!(v["span"]["node"], 1, "{line}");
        }
    }
    assert_eq!(role_changes, 1, "{log}");
    drop(a);
    let _ = std::fs::remove_dir_all(&dir);
}
