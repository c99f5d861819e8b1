//! `hrp sync config` between two nodes on loopback, the peer's
//! configuration applied on its configuration thread: the batch's counts
//! (B5, B7), the order of changes (B3), and sessions replicating while a
//! large batch is applied.

mod support;

use hotsync_config::ConfigStore;
use hotsync_node::{Node, NodeHandle};
use hotsync_proto::JobState;
use std::fmt::Write;
use std::time::{Duration, Instant};
use support::{addr, node_config, port_pairs};

/// `n` security rules `r0..`; `action` for every one.
fn rules(n: usize, action: &str) -> String {
    let mut s = String::from("security-policy\n");
    for i in 0..n {
        let _ = write!(
            s,
            " rule name r{i}\n  source-zone trust\n  destination-zone untrust\n  action {action}\n"
        );
    }
    s
}

fn pair(store_a: ConfigStore, store_b: ConfigStore) -> (NodeHandle, NodeHandle) {
    pair_with(store_a, store_b, false)
}

fn pair_with(store_a: ConfigStore, store_b: ConfigStore, auto: bool) -> (NodeHandle, NodeHandle) {
    let p = port_pairs(2);
    let mut ca = node_config(1, 200, p[0], addr(p[1]), Some("k"), 200_000);
    ca.store = store_a;
    ca.proto.auto_sync_on_establish = auto;
    let mut cb = node_config(2, 100, p[1], addr(p[0]), Some("k"), 200_000);
    cb.store = store_b;
    let a = Node::start(ca).unwrap();
    let b = Node::start(cb).unwrap();
    support::established(&a, &b, Duration::from_secs(10));
    (a, b)
}

#[test]
fn a_large_config_batch_is_applied_with_its_counts_while_sessions_replicate() {
    let n = 8000;
    // B already has r0..r99 with other parameters (conflicts, B7), and a
    // rule of its own that the additive batch keeps (B5).
    let mut b_text = rules(100, "deny");
    b_text.push_str(" rule name b-only\n  action permit\n");
    let (a, b) = pair(
        ConfigStore::parse(&rules(n, "permit")).unwrap(),
        ConfigStore::parse(&b_text).unwrap(),
    );
    let job = a.sync_config().unwrap();
    // Sessions written during the batch reach B.
    support::fill(a.table(), 5000, 3);
    support::digests_equal(&a, &b, Duration::from_secs(30));
    let st = a.wait_job(job, Duration::from_secs(60)).unwrap();
    assert_eq!(st.state, JobState::Done, "{st:?}");
    let out = st.config.unwrap();
    assert_eq!((out.added, out.conflicts), (n as u64 - 100, 100), "{out:?}");
    assert_eq!((out.equal, out.rejected), (0, 0), "{out:?}");
    b.with_store(|s| {
        assert_eq!(s.len(), n + 1, "B holds A's rules and its own");
        let text = s.render();
        assert!(text.contains("rule name b-only"));
        assert!(text.contains(&format!("rule name r{}", n - 1)));
    });
    assert_eq!(b.state().peer.config_backlog, 0);
    // A second run finds everything equal or still in conflict.
    let again = a.sync_config().unwrap();
    let out = a.wait_job(again, Duration::from_secs(60)).unwrap().config;
    let out = out.unwrap();
    assert_eq!(
        (out.added, out.equal, out.conflicts),
        (0, n as u64 - 100, 100)
    );
    a.shutdown();
    b.shutdown();
}

#[test]
fn changes_made_during_a_batch_are_applied_after_it_in_order() {
    let n = 5000;
    let (a, b) = pair(
        ConfigStore::parse(&rules(n, "permit")).unwrap(),
        ConfigStore::new(),
    );
    let job = a.sync_config().unwrap();
    // Queued behind the batch's items on the config connection: r7 is
    // added by the batch, then changed, then a new rule added and removed.
    for line in [
        "security-policy rule name r7 source-zone trust destination-zone untrust action deny",
        "security-policy rule name late action permit",
        "undo security-policy rule name late",
    ] {
        a.execute_config(None, line).unwrap();
    }
    assert_eq!(
        a.wait_job(job, Duration::from_secs(60)).unwrap().state,
        JobState::Done
    );
    support::wait_until("B applies A's changes", Duration::from_secs(10), || {
        a.with_store(ConfigStore::render) == b.with_store(ConfigStore::render)
    });
    a.shutdown();
    b.shutdown();
}

#[test]
fn the_automatic_sync_on_establishment_renders_and_sends_the_whole_configuration() {
    let n = 3000;
    let (a, b) = pair_with(
        ConfigStore::parse(&rules(n, "permit")).unwrap(),
        ConfigStore::new(),
        true,
    );
    support::wait_until(
        "the automatic config batch",
        Duration::from_secs(30),
        || {
            a.jobs()
                .iter()
                .any(|j| j.kind == hotsync_proto::JobKind::Config && j.state == JobState::Done)
        },
    );
    let job = a
        .jobs()
        .into_iter()
        .find(|j| j.kind == hotsync_proto::JobKind::Config);
    assert_eq!(job.unwrap().config.unwrap().added, n as u64);
    assert_eq!(b.with_store(ConfigStore::len), n);
    a.shutdown();
    b.shutdown();
}

/// The configuration threads' (name, scheduling policy: field 41 of
/// `stat`) in this process.
#[cfg(target_os = "linux")]
fn config_thread_policies() -> Vec<(String, u32)> {
    let mut policies = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with("hotsync-cfg-") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue; // exited meanwhile
        };
        // Fields after the parenthesised name start at field 3.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let policy: u32 = rest.split(' ').nth(41 - 3).unwrap().parse().unwrap();
        policies.push((comm.trim().to_owned(), policy));
    }
    policies
}

/// The configuration thread runs under `SCHED_IDLE`: a session thread
/// that wakes preempts it at once.
#[cfg(target_os = "linux")]
#[test]
fn the_configuration_thread_runs_at_idle_priority() {
    const SCHED_IDLE: u32 = 5;
    let (a, b) = pair(ConfigStore::new(), ConfigStore::new());
    // Other tests of this binary start nodes too: a thread spawned a
    // moment ago may not have lowered itself yet, so look again briefly.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut policies = config_thread_policies();
    while policies.iter().any(|(_, p)| *p != SCHED_IDLE) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        policies = config_thread_policies();
    }
    assert!(policies.len() >= 2, "both nodes' threads: {policies:?}");
    assert!(
        policies.iter().all(|(_, p)| *p == SCHED_IDLE),
        "{policies:?}"
    );
    a.shutdown();
    b.shutdown();
}

/// A caller waiting for a job learns of its end when it ends, not at its
/// timeout; a finished or unknown job is answered at once.
#[test]
fn waiting_for_a_job_returns_when_it_ends() {
    let (a, b) = pair(
        ConfigStore::parse(&rules(200, "permit")).unwrap(),
        ConfigStore::new(),
    );
    let job = a.sync_config().unwrap();
    let long = Duration::from_secs(600);
    let t = Instant::now();
    let st = a.wait_job(job, long).unwrap();
    assert_eq!(st.state, JobState::Done, "{st:?}");
    // A 200-rule job takes milliseconds; only a wait that missed the end
    // would come near the ten-minute timeout.
    assert!(t.elapsed() < long / 2, "woke after {:?}", t.elapsed());
    let t = Instant::now();
    assert_eq!(a.wait_job(job, long).unwrap().state, JobState::Done);
    assert!(a.wait_job(u64::MAX, long).is_none(), "no such job");
    assert!(t.elapsed() < long / 2);
    a.shutdown();
    b.shutdown();
}
