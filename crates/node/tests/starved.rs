//! `hrp sync config` on cores that normal-priority threads fill: the
//! configuration threads (`SCHED_IDLE`) get almost no CPU there, are
//! raised once they have held work for a second with next to none, and
//! the batch completes. In a test binary of its own: the spinning threads
//! would slow every test beside them.

mod support;

use hotsync_config::ConfigStore;
use hotsync_node::Node;
use hotsync_proto::JobState;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::{addr, node_config, port_pairs};

/// Whether this process may raise a thread's priority (`CAP_SYS_NICE` in
/// its effective capabilities): leaving `SCHED_IDLE` needs it here.
fn may_raise_priority() -> bool {
    const CAP_SYS_NICE: u32 = 23;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_owned();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_NICE) != 0)
}

#[test]
fn a_config_batch_completes_on_cores_that_busy_threads_fill() {
    if !may_raise_priority() {
        eprintln!("skipped: without CAP_SYS_NICE the configuration thread cannot leave SCHED_IDLE");
        return;
    }
    let n = 20_000;
    let mut text = String::from("security-policy\n");
    for i in 0..n {
        let _ = write!(text, " rule name r{i}\n  action permit\n");
    }
    let p = port_pairs(2);
    let mut ca = node_config(1, 200, p[0], addr(p[1]), Some("k"), 10_000);
    ca.store = ConfigStore::parse(&text).unwrap();
    let cb = node_config(2, 100, p[1], addr(p[0]), Some("k"), 10_000);
    let a = Node::start(ca).unwrap();
    let b = Node::start(cb).unwrap();
    support::established(&a, &b, Duration::from_secs(10));

    // Two normal-priority spinners per core: SCHED_IDLE's weight (3
    // against their 1024) leaves the configuration threads a few tenths
    // of a percent of a core.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..cores * 2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    // A renders on its configuration thread, B applies on its own.
    let job = a.sync_config();
    let st = job.map(|job| a.wait_job(job, Duration::from_secs(120)));
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    let st = st.unwrap().unwrap();
    assert_eq!(st.state, JobState::Done, "{st:?}");
    assert_eq!(st.config.unwrap().added, n);
    let raised = a.state().io.config_thread_raised + b.state().io.config_thread_raised;
    assert!(raised >= 1, "neither configuration thread was raised");
    a.shutdown();
    b.shutdown();
}
