//! Against the real kernel, each test in its own network namespace (root
//! only; skipped with a printed reason elsewhere).

mod support;

use hotsync_conntrack::codec::reply_tuple;
use hotsync_conntrack::{ConntrackConfig, CtError, CtSocket, DataPlane, Mode, Subscribe};
use hotsync_table::{
    SessionEntry, SessionKey, SessionTable, TableConfig, flags, ip_proto, unix_now,
};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use support::{Netns, can_run, wait_for};

const IPS_SEEN_REPLY: u32 = 0x2;
const IPS_ASSURED: u32 = 0x4;

/// `n` distinct sessions: TCP in every state 1..=8 (mostly established),
/// UDP, ICMP echo, IPv6, zones and marks; every 7th TCP/UDP one translated.
fn sessions(n: u32, salt: u8) -> Vec<(SessionKey, SessionEntry)> {
    let now = unix_now();
    (0..n)
        .map(|i| {
            let v6 = i % 11 == 0;
            let src = if v6 {
                IpAddr::V6(Ipv6Addr::new(
                    0xfd00,
                    u16::from(salt),
                    0,
                    0,
                    0,
                    0,
                    (i >> 16) as u16,
                    i as u16,
                ))
            } else {
                IpAddr::V4(Ipv4Addr::new(10, salt, (i >> 8) as u8, i as u8))
            };
            let dst = if v6 {
                IpAddr::V6(Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 1))
            } else {
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 200) as u8 + 1))
            };
            let protocol = match i % 10 {
                0..=6 => ip_proto::TCP,
                7 | 8 => ip_proto::UDP,
                _ if v6 => ip_proto::ICMPV6,
                _ => ip_proto::ICMP,
            };
            let icmp = protocol == ip_proto::ICMP || protocol == ip_proto::ICMPV6;
            let (sport, dport) = if icmp {
                let echo: u16 = if v6 { 128 } else { 8 };
                ((i >> 4) as u16, echo << 8)
            } else {
                (1024 + (i % 60000) as u16, 443)
            };
            let key =
                SessionKey::new(0, protocol, src, sport, dst, dport).with_ct_zone((i % 3) as u16);
            let state = if protocol == ip_proto::TCP {
                if i % 13 == 0 {
                    1 + (i / 13 % 8) as u8
                } else {
                    3
                }
            } else {
                3
            };
            let mut e = SessionEntry {
                created: now,
                last_seen: now,
                timeout: 3600,
                mark: i % 5,
                ct_status: IPS_SEEN_REPLY | IPS_ASSURED,
                state,
                flags: flags::BACKUP | flags::ASSURED,
                tcp_wscale: if protocol == ip_proto::TCP {
                    [7, 7]
                } else {
                    [0, 0]
                },
                ..SessionEntry::default()
            };
            if !icmp && !v6 && i % 7 == 0 {
                e.flags |= flags::NAT;
                e.nat.src_addr = key.src_addr;
                e.nat.src_addr[..4].copy_from_slice(&[100, 64 + salt, (i >> 8) as u8, i as u8]);
                e.nat.dst_addr = key.dst_addr;
                e.nat.src_port = 30000 + (i % 30000) as u16;
                e.nat.dst_port = key.dst_port;
                e.ct_status |= 0x10; // IPS_SRC_NAT
            }
            (key, e)
        })
        .collect()
}

fn dump(ns: &Netns) -> HashMap<SessionKey, hotsync_conntrack::codec::CtEntry> {
    let mut s = CtSocket::open(Some(&ns.name), Subscribe::Nothing).expect("open");
    let mut m = HashMap::new();
    s.dump(unix_now(), |c| {
        m.insert(c.key, c);
    })
    .expect("dump");
    m
}

fn raise_conntrack_max(n: u64) {
    let p = "/proc/sys/net/netfilter/nf_conntrack_max";
    let cur: u64 = std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if cur < n {
        let _ = std::fs::write(p, n.to_string());
    }
}

/// Compares a kernel entry with the session it was committed from: the
/// tuples, protocol, state, mark, zone, the settable status bits, the
/// timeout within `tolerance` seconds.
fn assert_same(
    k: &SessionKey,
    e: &SessionEntry,
    got: &hotsync_conntrack::codec::CtEntry,
    tolerance: u32,
) {
    assert_eq!(got.key, *k);
    assert_eq!(got.reply, reply_tuple(k, e), "{k:?}");
    assert_eq!(got.entry.mark, e.mark, "{k:?}");
    assert_eq!(got.entry.state, e.state, "{k:?}");
    assert_eq!(got.entry.has_nat(), e.has_nat(), "{k:?}");
    if e.has_nat() {
        assert_eq!(got.entry.nat, e.nat, "{k:?}");
    }
    // The NAT bits are the kernel's to set (from the NAT setup, with nf_nat).
    let settable = IPS_SEEN_REPLY | IPS_ASSURED;
    assert_eq!(
        got.entry.ct_status & settable,
        e.ct_status & settable,
        "{k:?}"
    );
    assert!(
        got.entry.timeout.abs_diff(e.timeout) <= tolerance,
        "{k:?}: timeout {} vs {}",
        got.entry.timeout,
        e.timeout
    );
}

#[test]
fn commit_then_dump_field_by_field_and_conntrack_l_agrees() {
    if !can_run("commit_then_dump") {
        return;
    }
    let Some(ns) = Netns::new("ctdump") else {
        return;
    };
    raise_conntrack_max(300_000);
    let want = sessions(20_000, 1);
    let mut s = CtSocket::open(Some(&ns.name), Subscribe::Nothing).expect("open");
    s.set_recv_timeout_ms(1000).unwrap();
    let counts = s.commit(&want, |e| e.timeout).expect("commit");
    assert_eq!(counts.ok, want.len() as u64, "{counts:?}");
    assert_eq!(counts.refused, 0);
    let got = dump(&ns);
    assert_eq!(got.len(), want.len());
    for (k, e) in &want {
        let g = got
            .get(k)
            .unwrap_or_else(|| panic!("{k:?} not in the kernel"));
        assert_same(k, e, g, 5);
    }
    // The conntrack tool reads the same table (when installed).
    let out = ns.exec(&["conntrack", "-L"]);
    if !out.status.success() && out.stdout.is_empty() {
        eprintln!("conntrack -L unavailable: the dump comparison stands alone");
        return;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("src=")).collect();
    assert_eq!(lines.len(), want.len());
    // Spot-check every 97th session's line field by field.
    for (k, e) in want.iter().step_by(97) {
        if k.protocol != ip_proto::TCP || k.family != 4 {
            continue;
        }
        let needle = format!(
            "src={} dst={} sport={} dport={} ",
            k.src(),
            k.dst(),
            k.src_port,
            k.dst_port
        );
        let line = lines
            .iter()
            .find(|l| l.contains(&needle) && (k.ct_zone == 0) != l.contains("zone="))
            .unwrap_or_else(|| panic!("no conntrack -L line for {needle}"));
        let state = hotsync_table::SessionState::from_u8(e.state)
            .unwrap()
            .name();
        assert!(line.contains(state), "{line}");
        assert!(line.contains(&format!("mark={}", e.mark)), "{line}");
        if k.ct_zone != 0 {
            assert!(line.contains(&format!("zone={}", k.ct_zone)), "{line}");
        }
        assert!(line.contains("[ASSURED]"), "{line}");
        let r = reply_tuple(k, e);
        let rdst = Ipv4Addr::new(r.dst[0], r.dst[1], r.dst[2], r.dst[3]);
        assert!(
            line.contains(&format!(
                "dst={rdst} sport={} dport={}",
                r.src_port, r.dst_port
            )),
            "{line}"
        );
    }
}

fn start(ns: &Netns, table: &Arc<SessionTable>, active: bool) -> DataPlane {
    let cfg = ConntrackConfig {
        mode: Mode::Commit,
        netns: Some(ns.name.clone()),
        ..ConntrackConfig::default()
    };
    DataPlane::start(cfg, table.clone(), active).expect("data plane")
}

fn table() -> Arc<SessionTable> {
    Arc::new(SessionTable::new(TableConfig::with_capacity(200_000)))
}

#[test]
fn events_feed_the_active_table_and_echoes_do_not() {
    if !can_run("events") {
        return;
    }
    let Some(ns) = Netns::new("ctev") else { return };
    // Entries present before the start arrive by the dump.
    let mut outside = CtSocket::open(Some(&ns.name), Subscribe::Nothing).unwrap();
    outside.set_recv_timeout_ms(1000).unwrap();
    let before = sessions(300, 2);
    outside.commit(&before, |e| e.timeout).unwrap();
    let t = table();
    let dp = start(&ns, &t, true);
    assert!(wait_for(10, || t.len() == 300), "dump: {}", t.len());
    // New entries arrive by events.
    let after = sessions(200, 3);
    outside.commit(&after, |e| e.timeout).unwrap();
    assert!(wait_for(10, || t.len() == 500), "events: {}", t.len());
    assert!(dp.stats().events_upsert.load(Ordering::Relaxed) >= 200);
    let got = t.get(&after[5].0).expect("event entry");
    assert_eq!(got.mark, after[5].1.mark);
    // Destroy events remove.
    let gone: Vec<SessionKey> = after.iter().take(50).map(|(k, _)| *k).collect();
    assert_eq!(outside.delete(&gone).unwrap().ok, 50);
    assert!(wait_for(10, || t.len() == 450), "destroy: {}", t.len());
    // The data plane's own commits come back as echoes and are dropped:
    // entries in the table the kernel lacks (as replicated ones are).
    let upserts = dp.stats().events_upsert.load(Ordering::Relaxed);
    for (k, e) in &sessions(100, 6) {
        t.upsert(k, e).unwrap();
    }
    let c = dp.commit_table().unwrap();
    assert_eq!(c.ok, 550, "{c:?}");
    assert!(wait_for(10, || dp
        .stats()
        .events_echo
        .load(Ordering::Relaxed)
        >= 100));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(dp.stats().events_upsert.load(Ordering::Relaxed), upserts);
    assert_eq!(t.len(), 550);
}

#[test]
fn standby_ignores_kernel_events_and_takeover_commits_before_returning() {
    if !can_run("takeover") {
        return;
    }
    let Some(ns) = Netns::new("cttk") else { return };
    raise_conntrack_max(300_000);
    let t = table();
    let mut dp = start(&ns, &t, false);
    // While standby, kernel events do not reach the table.
    let mut outside = CtSocket::open(Some(&ns.name), Subscribe::Nothing).unwrap();
    outside.set_recv_timeout_ms(1000).unwrap();
    outside.commit(&sessions(100, 4), |e| e.timeout).unwrap();
    assert!(wait_for(10, || dp
        .stats()
        .events_standby
        .load(Ordering::Relaxed)
        >= 100));
    assert_eq!(t.len(), 0);
    // Replicated entries (as the peer's batch sync leaves them).
    let replicated = sessions(20_000, 5);
    for (k, e) in &replicated {
        t.upsert(k, e).unwrap();
    }
    let echo0 = dp.stats().events_echo.load(Ordering::Relaxed);
    let counts = dp.set_active(true).expect("takeover");
    assert_eq!(counts.ok, 20_000, "{counts:?}");
    // The event socket left its groups during the commit: none of the
    // commit's events reached it.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(dp.stats().events_echo.load(Ordering::Relaxed), echo0);
    // Complete on return: every entry is in the kernel now.
    let got = dump(&ns);
    for (k, e) in &replicated {
        let g = got
            .get(k)
            .unwrap_or_else(|| panic!("{k:?} missing after takeover"));
        assert_same(k, e, g, 5);
    }
    // The commit's own events are echoes; the kernel's other 100 entries
    // arrive by the re-dump after takeover.
    assert!(wait_for(10, || t.len() == 20_100), "{}", t.len());
    assert_eq!(dp.stats().events_upsert.load(Ordering::Relaxed), 0);
    dp.shutdown();
}

#[test]
fn lost_events_are_counted_and_repaired_by_a_redump() {
    if !can_run("lost_events") {
        return;
    }
    let Some(ns) = Netns::new("ctlost") else {
        return;
    };
    raise_conntrack_max(300_000);
    let t = table();
    // A receive buffer of a few events: a storm overruns it (ENOBUFS).
    let cfg = ConntrackConfig {
        netns: Some(ns.name.clone()),
        event_buffer: Some(4096),
        ..ConntrackConfig::default()
    };
    let dp = DataPlane::start(cfg, t.clone(), true).expect("data plane");
    let stats = dp.stats();
    assert!(wait_for(10, || stats.dumps.load(Ordering::Relaxed) >= 1));
    // The storm: 20,000 entries created, then every fourth destroyed.
    let mut outside = CtSocket::open(Some(&ns.name), Subscribe::Nothing).unwrap();
    outside.set_recv_timeout_ms(1000).unwrap();
    let storm = sessions(20_000, 7);
    assert_eq!(outside.commit(&storm, |e| e.timeout).unwrap().refused, 0);
    let gone: Vec<SessionKey> = storm.iter().step_by(4).map(|(k, _)| *k).collect();
    assert_eq!(outside.delete(&gone).unwrap().refused, 0);
    assert!(
        wait_for(20, || stats.events_lost.load(Ordering::Relaxed) >= 1),
        "no ENOBUFS with a 4 KiB buffer"
    );
    // Repaired: the table equals the kernel's table, entry by entry.
    let equal = || {
        let kernel = dump(&ns);
        kernel.len() == 15_000
            && t.len() == kernel.len()
            && kernel.iter().all(|(k, c)| {
                t.get(k)
                    .is_some_and(|e| e.mark == c.entry.mark && e.state == c.entry.state)
            })
    };
    assert!(
        wait_for(30, equal),
        "table {} entries, kernel {}",
        t.len(),
        dump(&ns).len()
    );
    // By re-dumps (the first fill, then at least one resync), counted.
    assert!(stats.dumps.load(Ordering::Relaxed) >= 2);
    eprintln!(
        "events lost {} times, {} dumps, {} removed by resync",
        stats.events_lost.load(Ordering::Relaxed),
        stats.dumps.load(Ordering::Relaxed),
        stats.resync_removed.load(Ordering::Relaxed)
    );
}

#[test]
fn mirror_mode_writes_the_table_to_the_standby_kernel_continuously() {
    if !can_run("mirror") {
        return;
    }
    let Some(ns) = Netns::new("ctmir") else {
        return;
    };
    raise_conntrack_max(300_000);
    let t = table();
    let cfg = ConntrackConfig {
        mode: Mode::Mirror,
        netns: Some(ns.name.clone()),
        ..ConntrackConfig::default()
    };
    let mut dp = DataPlane::start(cfg, t.clone(), false).expect("data plane");
    // Replicated entries reach the standby's kernel while it is standby.
    let want = sessions(2_000, 8);
    for (k, e) in &want {
        t.upsert(k, e).unwrap();
    }
    assert!(wait_for(10, || dump(&ns).len() == want.len()));
    let got = dump(&ns);
    for (k, e) in &want {
        assert_same(k, e, &got[k], 5);
    }
    // Changes and removals follow.
    let (k0, mut e0) = want[0];
    e0.mark = 4242;
    t.upsert(&k0, &e0).unwrap();
    for (k, _) in &want[1..101] {
        t.remove(k);
    }
    assert!(
        wait_for(10, || {
            let g = dump(&ns);
            g.len() == want.len() - 100 && g.get(&k0).is_some_and(|c| c.entry.mark == 4242)
        }),
        "kernel holds {}",
        dump(&ns).len()
    );
    assert!(dp.stats().mirror_deleted.load(Ordering::Relaxed) >= 100);
    // The takeover has nothing left to commit: the kernel has it all.
    let c = dp.set_active(true).expect("takeover");
    assert!(c.ok < 10, "{c:?}");
    assert_eq!(dump(&ns).len(), want.len() - 100);
    dp.shutdown();
}

#[test]
fn a_missing_namespace_is_a_clear_error() {
    let cfg = ConntrackConfig {
        netns: Some("hs-no-such-namespace".into()),
        ..ConntrackConfig::default()
    };
    let err = DataPlane::start(cfg, table(), true).unwrap_err();
    assert!(matches!(err, CtError::NoNamespace { .. }), "{err}");
    assert!(err.to_string().contains("hs-no-such-namespace"));
}
