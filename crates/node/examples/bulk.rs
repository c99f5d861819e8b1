//! Quick bulk-sync timing on loopback: `cargo run --release -p hotsync-node --example bulk -- 1000000`.
//! (The full benchmark suite with baselines is `hotsync-bench bulk`.)

use hotsync_config::ConfigStore;
use hotsync_node::{Node, NodeConfig};
use hotsync_proto::ProtoConfig;
use hotsync_table::{SessionGenerator, TableConfig};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn cfg(id: u64, prio: u16, me: u16, peer: u16, n: usize) -> NodeConfig {
    NodeConfig {
        proto: ProtoConfig {
            node_id: id,
            priority: prio,
            ..ProtoConfig::default()
        },
        table: TableConfig::with_capacity(n),
        listen: SocketAddr::from(([127, 0, 0, 1], me)),
        peer: SocketAddr::from(([127, 0, 0, 1], peer)),
        store: ConfigStore::new(),
        standby_config_enable: false,
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |s| s.parse().expect("count"));
    let a = Node::start(cfg(1, 200, 27110, 27120, n)).expect("start a");
    let mut g = SessionGenerator::new(1, 0, false, hotsync_table::unix_now());
    for _ in 0..n {
        let (k, e) = g.next_session();
        a.table().upsert(&k, &e).expect("capacity");
    }
    let b = Node::start(cfg(2, 100, 27120, 27110, n)).expect("start b");
    while !(a.is_established() && b.is_established()) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let t0 = Instant::now();
    let job = a.sync_connection_status().expect("sync");
    let st = a.wait_job(job, Duration::from_secs(300)).expect("job");
    let t_job = t0.elapsed();
    while a.table().digest() != b.table().digest() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let t_eq = t0.elapsed();
    let s = a.state().peer.stats;
    println!(
        "{} entries: job {:.3} s ({:.2} M entries/s), digests equal after {:.3} s, {:.1} wire bytes/entry",
        st.sent,
        t_job.as_secs_f64(),
        st.sent as f64 / t_job.as_secs_f64() / 1e6,
        t_eq.as_secs_f64(),
        s.bytes_tx as f64 / s.records_tx.max(1) as f64
    );
    println!(
        "active: {} sessions ({} backup-capable); standby: {} sessions; job total {}",
        a.table().len(),
        a.table().backup_len(),
        b.table().len(),
        st.total
    );
    a.shutdown();
    b.shutdown();
}
