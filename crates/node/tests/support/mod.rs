//! Shared helpers of the node integration tests: ports, node settings,
//! polling, data-plane load, memory.
#![allow(dead_code)]

pub mod proxy;

use hotsync_config::ConfigStore;
use hotsync_node::{NodeConfig, NodeHandle};
use hotsync_proto::ProtoConfig;
use hotsync_table::{SessionGenerator, SessionKey, SessionTable, TableConfig};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Two consecutive free ports (session and config channel), held.
fn grab_pair() -> (u16, TcpListener, TcpListener) {
    for _ in 0..500 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if p >= 65000 {
            continue;
        }
        if let Ok(l2) = TcpListener::bind(("127.0.0.1", p + 1)) {
            return (p, l, l2);
        }
    }
    panic!("no free port pair");
}

/// `n` disjoint pairs of consecutive free ports, ascending. The listeners
/// are held until all are found, so the pairs do not overlap; they are
/// released on return (a small race with other processes remains).
pub fn port_pairs(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let (p, a, b) = grab_pair();
        ports.push(p);
        held.push((a, b));
    }
    ports.sort_unstable();
    ports
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Test-node settings: fast timers (hello 100 ms, dead interval 300 ms),
/// 16 shards.
pub fn node_config(
    node_id: u64,
    priority: u16,
    listen: u16,
    peer: SocketAddr,
    psk: Option<&str>,
    max_sessions: usize,
) -> NodeConfig {
    // 16 shards with the journal keys split over them (overriding only
    // `shards` would keep the 256-shard split: 16x smaller journals).
    let table = TableConfig::with_shards(max_sessions, 16);
    NodeConfig {
        proto: ProtoConfig {
            node_id,
            priority,
            hello_interval: Duration::from_millis(100),
            dead_count: 3,
            psk: psk.map(|k| k.as_bytes().to_vec()),
            ..ProtoConfig::default()
        },
        table,
        listen: addr(listen),
        peer,
        store: ConfigStore::new(),
        standby_config_enable: false,
    }
}

/// Polls `f` every 5 ms until it holds; panics after `timeout`. Returns the
/// time it took.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    t0.elapsed()
}

pub fn established(a: &NodeHandle, b: &NodeHandle, timeout: Duration) -> Duration {
    wait_until("relationship", timeout, || {
        a.is_established() && b.is_established()
    })
}

/// Waits for equal digests; returns the time it took.
pub fn digests_equal(a: &NodeHandle, b: &NodeHandle, timeout: Duration) -> Duration {
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    loop {
        let (da, db) = (a.table().digest(), b.table().digest());
        if da == db {
            return t0.elapsed();
        }
        if Instant::now() >= deadline {
            panic!(
                "digests differ after {timeout:?}: {} vs {} entries, shards {:?}\nA {:?}\nB {:?}",
                da.entries,
                db.entries,
                da.mismatches(&db),
                a.state().peer,
                b.state().peer
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Inserts `n` generated sessions (1 in 100 local-only).
pub fn fill(table: &SessionTable, n: usize, seed: u64) -> Vec<SessionKey> {
    let mut g = SessionGenerator::new(seed, 0, false, hotsync_table::unix_now());
    g.local_only_every = 100;
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        let (k, e) = g.next_session();
        table.upsert(&k, &e).unwrap();
        keys.push(k);
    }
    keys
}

/// A data-plane writer at a target rate: updates existing sessions,
/// inserts new ones and removes old ones (the table size stays about the
/// same). Stops when the handle's flag is set.
pub struct Load {
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Load {
    /// `rate` operations per second on `table`, touching `keys` (updated in
    /// place, replaced by new ones as they are removed).
    pub fn start(
        table: Arc<SessionTable>,
        mut keys: Vec<SessionKey>,
        rate: u64,
        seed: u64,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let (s, o) = (stop.clone(), ops.clone());
        let thread = std::thread::spawn(move || {
            let mut g = SessionGenerator::new(seed, 1, false, hotsync_table::unix_now());
            let t0 = Instant::now();
            let mut done = 0u64;
            let mut i = 0usize;
            while !s.load(Ordering::Relaxed) {
                // Catch up with the schedule in bursts of at most 1 ms.
                let due = (t0.elapsed().as_secs_f64() * rate as f64) as u64;
                if done >= due {
                    std::thread::sleep(Duration::from_micros(500));
                    continue;
                }
                for _ in 0..(due - done).min(rate / 1000 + 1) {
                    i = i.wrapping_add(7919);
                    let slot = i % keys.len().max(1);
                    match done % 10 {
                        0 if !keys.is_empty() => {
                            // Replace: remove one, insert a new one.
                            table.remove(&keys[slot]);
                            let (k, e) = g.next_session();
                            if table.upsert(&k, &e).is_ok() {
                                keys[slot] = k;
                            }
                        }
                        1 => {
                            let (k, e) = g.next_session();
                            if table.upsert(&k, &e).is_ok() {
                                keys.push(k);
                            }
                        }
                        _ if !keys.is_empty() => {
                            table.update(&keys[slot], |e| {
                                e.packets[0] += 1;
                                e.bytes[0] += 1500;
                            });
                        }
                        _ => {}
                    }
                    done += 1;
                }
                o.store(done, Ordering::Relaxed);
            }
        });
        Load {
            stop,
            ops,
            thread: Some(thread),
        }
    }

    /// Stops the writer; returns the operations done.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.ops.load(Ordering::Relaxed)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Resident set size of this process (Linux), in bytes.
pub fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Serialises tests that measure process-wide things (RSS, timing).
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
