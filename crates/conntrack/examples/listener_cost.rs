//! What a subscribed event listener costs a batched commit: 100,000
//! entries committed into an empty table of a fresh network namespace
//! (deleted again after each step) with no listener, with one, with it
//! muted (its groups left, as the takeover does), and with it
//! joined again. Root only. `cargo run --release -p hotsync-conntrack
//! --example listener_cost` prints entries/s for each.
//!
//! The kernel builds an event message per created entry whenever any
//! socket on the host listens to the group (the netlink listener bitmap is
//! global): muting helps only where no other conntrack listener runs.

use hotsync_conntrack::{CtSocket, Subscribe};
use hotsync_table::{SessionEntry, SessionKey, flags, ip_proto, unix_now};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Instant;

fn sessions(n: u32, salt: u8) -> Vec<(SessionKey, SessionEntry)> {
    let now = unix_now();
    (0..n)
        .map(|i| {
            let k = SessionKey::new(
                0,
                ip_proto::TCP,
                IpAddr::V4(Ipv4Addr::new(10, salt, (i >> 8) as u8, i as u8)),
                1024 + (i >> 16) as u16,
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
        .collect()
}

fn main() {
    let ns = format!("hs-listener-{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("needs root and iproute2");
        std::process::exit(2);
    }
    let max = "/proc/sys/net/netfilter/nf_conntrack_max";
    let cur: u64 = std::fs::read_to_string(max)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if cur < 600_000 {
        let _ = std::fs::write(max, "600000");
    }
    let mut s = CtSocket::open(Some(&ns), Subscribe::Nothing).unwrap();
    s.set_recv_timeout_ms(1000).unwrap();
    let rate = |label: &str, salt: u8, s: &mut CtSocket| {
        let v = sessions(100_000, salt);
        let t = Instant::now();
        s.commit(&v, |e| e.timeout).unwrap();
        println!("{label}: {:.0}/s", 100_000.0 / t.elapsed().as_secs_f64());
        // Each step starts from the same (empty) table.
        let keys: Vec<SessionKey> = v.iter().map(|(k, _)| *k).collect();
        s.delete(&keys).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    rate("no listener", 1, &mut s);
    let ev = CtSocket::open(Some(&ns), Subscribe::Events).unwrap();
    rate("listener", 2, &mut s);
    let m = ev.membership().unwrap();
    println!("drop: {:?}", m.set(false));
    rate("listener muted", 3, &mut s);
    println!("add: {:?}", m.set(true));
    rate("listener joined again", 4, &mut s);
    drop((ev, m));
    rate("listener closed", 5, &mut s);
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}
