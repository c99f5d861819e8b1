//! The kernel's own bounds, without any sync: a batched commit of N
//! entries into a fresh network namespace, then a dump of them back.
//! Root only. `cargo run --release -p hotsync-conntrack --example
//! kernel_rates -- 200000` prints entries/s for both (and the load average).

use hotsync_conntrack::{CtSocket, Subscribe};
use hotsync_table::{SessionEntry, SessionKey, flags, ip_proto, unix_now};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Instant;

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let ns = format!("hs-rates-{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("needs root and iproute2");
        std::process::exit(2);
    }
    let _ = std::fs::write(
        "/proc/sys/net/netfilter/nf_conntrack_max",
        (2 * n).to_string(),
    );
    let now = unix_now();
    let sessions: Vec<(SessionKey, SessionEntry)> = (0..n)
        .map(|i| {
            let k = SessionKey::new(
                0,
                ip_proto::TCP,
                IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)),
                1024 + (i % 50_000) as u16,
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                443,
            );
            let e = SessionEntry {
                created: now,
                last_seen: now,
                timeout: 3600,
                ct_status: 0x6,
                state: 3,
                flags: flags::BACKUP,
                ..SessionEntry::default()
            };
            (k, e)
        })
        .collect();
    let mut s = CtSocket::open(Some(&ns), Subscribe::Nothing).expect("socket");
    s.set_recv_timeout_ms(1000).unwrap();
    let t0 = Instant::now();
    let c = s.commit(&sessions, |e| e.timeout).expect("commit");
    let commit = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let mut got = 0u64;
    s.dump(unix_now(), |_| got += 1).expect("dump");
    let dump = t0.elapsed().as_secs_f64();
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{{\"entries\": {n}, \"committed\": {}, \"refused\": {}, \"kernel_commit_entries_per_s\": {:.0}, \"dumped\": {got}, \"kernel_dump_entries_per_s\": {:.0}, \"loadavg\": \"{}\"}}",
        c.ok,
        c.refused,
        f64::from(n) / commit,
        got as f64 / dump,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}
