//! End to end on loopback: two nodes in one process, real sockets. The
//! cases that need no socket run over the protocol's in-memory pair
//! (`crates/proto/tests/pair_e2e.rs`).

mod support;

use hotsync_node::{Node, NodeHandle};
use hotsync_proto::{JobState, Role};
use hotsync_table::SessionGenerator;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{addr, node_config, port_pairs, wait_until};

fn two_port_pairs() -> (u16, u16) {
    let p = port_pairs(2);
    (p[0], p[1])
}

fn config(
    node_id: u64,
    priority: u16,
    me: u16,
    peer: u16,
    psk: Option<&str>,
) -> hotsync_node::NodeConfig {
    node_config(node_id, priority, me, addr(peer), psk, 1_200_000)
}

fn pair(psk_a: Option<&str>, psk_b: Option<&str>) -> (NodeHandle, NodeHandle) {
    let (pa, pb) = two_port_pairs();
    let a = Node::start(config(1, 200, pa, pb, psk_a)).unwrap();
    let b = Node::start(config(2, 100, pb, pa, psk_b)).unwrap();
    (a, b)
}

fn established(a: &NodeHandle, b: &NodeHandle) {
    support::established(a, b, Duration::from_secs(10));
}

fn digests_equal(a: &NodeHandle, b: &NodeHandle, timeout: Duration) {
    support::digests_equal(a, b, timeout);
}

fn fill(node: &NodeHandle, n: usize, seed: u64) {
    support::fill(node.table(), n, seed);
}

#[test]
fn batch_sync_of_a_million_sessions_ends_with_equal_digests() {
    let (a, b) = pair(Some("secret"), Some("secret"));
    established(&a, &b);
    assert_eq!(a.role(), Role::Active);
    assert_eq!(b.role(), Role::Standby);
    fill(&a, 1_000_000, 1);
    // B4: sessions that existed before... were created after establishment
    // here, so they flow incrementally too; the batch must still be additive
    // and complete.
    let started = Instant::now();
    let job = a.sync_connection_status().unwrap();
    let st = a.wait_job(job, Duration::from_secs(120)).unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(st.state, JobState::Done, "{st:?}");
    digests_equal(&a, &b, Duration::from_secs(30));
    let d = b.table().digest();
    assert_eq!(d.entries, a.table().backup_len() as u64);
    assert!(
        b.table().len() < a.table().len(),
        "local-only entries stayed behind"
    );
    eprintln!(
        "batch sync: {} entries in {secs:.2} s = {:.0} entries/s",
        st.sent,
        st.sent as f64 / secs
    );
    a.shutdown();
    b.shutdown();
}

#[test]
fn incremental_sync_under_concurrent_writers() {
    let (a, b) = pair(None, None);
    established(&a, &b);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let t = a.table().clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut g =
                    SessionGenerator::new(100 + w, w as u16, w == 1, hotsync_table::unix_now());
                let mut keys = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (k, e) = g.next_session();
                    // A fast machine fills the table within the 2 s: past
                    // that, keep churning the keys already there.
                    if t.upsert(&k, &e).is_ok() {
                        keys.push(k);
                    }
                    if keys.is_empty() {
                        continue;
                    }
                    if i % 3 == 0 {
                        let victim = keys.swap_remove((i as usize * 7) % keys.len());
                        t.remove(&victim);
                    } else if let Some(k) = keys.get(i as usize % keys.len()) {
                        t.update(k, |e| e.packets[0] += 1);
                    }
                    i += 1;
                    if keys.len() > 50_000 {
                        keys.truncate(25_000);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(a.table().len() > 1000);
    digests_equal(&a, &b, Duration::from_secs(10));
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_cut_in_the_middle_of_a_batch_resumes_and_converges() {
    let (a, b) = pair(Some("k"), Some("k"));
    established(&a, &b);
    fill(&a, 300_000, 4);
    let job = a.sync_connection_status().unwrap();
    wait_until("batch under way", Duration::from_secs(10), || {
        a.job(job).is_some_and(|j| j.acked > 0)
    });
    a.drop_connections().unwrap();
    // Writes during the outage are journaled and resynced.
    fill(&a, 10_000, 5);
    let st = a.wait_job(job, Duration::from_secs(60)).unwrap();
    assert_eq!(st.state, JobState::Done);
    digests_equal(&a, &b, Duration::from_secs(20));
    let s = a.state().peer.stats;
    assert!(s.disconnects >= 1);
    a.shutdown();
    b.shutdown();
}
