//! Writes the seed corpus of the `ct_decode` fuzz target into
//! `fuzz/corpus/ct_decode/`: `cargo run -p hotsync-conntrack --example gen_corpus`.
//! Seeds are datagrams as the kernel sends them: entries of each protocol
//! and family, NAT, several entries per datagram, an error, a truncation.

use hotsync_conntrack::codec::Encoder;
use hotsync_table::{SessionEntry, SessionKey, flags, ip_proto};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

fn session(protocol: u8, v6: bool, nat: bool) -> (SessionKey, SessionEntry) {
    let (s, d) = if v6 {
        (
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        )
    };
    let icmp = protocol == ip_proto::ICMP || protocol == ip_proto::ICMPV6;
    let dport = if icmp {
        (if v6 { 128 } else { 8 }) << 8
    } else {
        443
    };
    let key = SessionKey::new(0, protocol, s, 40000, d, dport).with_ct_zone(u16::from(nat));
    let mut e = SessionEntry {
        timeout: 300,
        mark: 7,
        ct_status: 0xe,
        state: 3,
        flags: flags::BACKUP,
        tcp_wscale: [7, 7],
        ..SessionEntry::default()
    };
    if nat {
        e.flags |= flags::NAT;
        e.nat.src_addr = key.src_addr;
        e.nat.src_addr[0] = 192;
        e.nat.dst_addr = key.dst_addr;
        e.nat.src_port = 61000;
        e.nat.dst_port = key.dst_port;
    }
    (key, e)
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/ct_decode");
    std::fs::create_dir_all(&dir).unwrap();
    let mut all = Encoder::new();
    for (name, protocol, v6, nat) in [
        ("tcp4", ip_proto::TCP, false, false),
        ("tcp6", ip_proto::TCP, true, false),
        ("udp4-nat", ip_proto::UDP, false, true),
        ("icmp4", ip_proto::ICMP, false, false),
        ("icmp6", ip_proto::ICMPV6, true, false),
        ("icmp4-nat", ip_proto::ICMP, false, true),
        ("gre4", 47, false, false),
        ("sctp6-nat", 132, true, true),
    ] {
        let (k, e) = session(protocol, v6, nat);
        let mut enc = Encoder::new();
        enc.commit(&k, &e, 300, 1, false, true);
        std::fs::write(dir.join(name), enc.bytes()).unwrap();
        all.commit(&k, &e, 300, 2, false, true);
        // The same message cut in the middle of an attribute.
        let cut = &enc.bytes()[..enc.len() * 2 / 3];
        let mut cut = cut.to_vec();
        let len = cut.len() as u32;
        cut[..4].copy_from_slice(&len.to_ne_bytes());
        std::fs::write(dir.join(format!("{name}-cut")), cut).unwrap();
    }
    std::fs::write(dir.join("many"), all.bytes()).unwrap();
    // NLMSG_ERROR (-ENOMEM) answering seq 5, and NLMSG_DONE.
    let mut err = Vec::new();
    err.extend_from_slice(&36u32.to_ne_bytes());
    err.extend_from_slice(&2u16.to_ne_bytes());
    err.extend_from_slice(&0u16.to_ne_bytes());
    err.extend_from_slice(&5u32.to_ne_bytes());
    err.extend_from_slice(&0u32.to_ne_bytes());
    err.extend_from_slice(&(-12i32).to_ne_bytes());
    err.extend_from_slice(&[0u8; 16]);
    err.extend_from_slice(&20u32.to_ne_bytes());
    err.extend_from_slice(&3u16.to_ne_bytes());
    err.extend_from_slice(&2u16.to_ne_bytes());
    err.extend_from_slice(&[0u8; 12]);
    std::fs::write(dir.join("error-then-done"), err).unwrap();
    println!("wrote seeds to {}", dir.display());
}
