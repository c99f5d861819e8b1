//! The codec's round trips (a commit decodes back to its session) and its
//! refusals of hostile bytes.

use super::netlink::align4;
use super::tuples::is_icmp;
use super::*;
use crate::consts::*;
use hotsync_table::{SessionEntry, SessionKey, flags, ip_proto};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn session(protocol: u8, v6: bool) -> (SessionKey, SessionEntry) {
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
    let dport = if is_icmp(protocol) { 8 << 8 } else { 443 };
    let key = SessionKey::new(0, protocol, s, 40000, d, dport).with_ct_zone(3);
    let entry = SessionEntry {
        timeout: 300,
        mark: 0x42,
        ct_status: ips::SEEN_REPLY | ips::ASSURED | 0x8, // + IPS_CONFIRMED, not settable
        state: 3,
        flags: flags::BACKUP | flags::ASSURED,
        tcp_wscale: if protocol == ip_proto::TCP {
            [7, 9]
        } else {
            [0, 0]
        },
        created: 1000,
        last_seen: 1000,
        ..SessionEntry::default()
    };
    (key, entry)
}

/// The commit encoding decodes back to the same session (what the
/// kernel would report, status bits aside).
#[test]
fn commit_message_decodes_to_the_session() {
    for protocol in [ip_proto::TCP, ip_proto::UDP, ip_proto::ICMP, 47, 132] {
        for v6 in [false, true] {
            let protocol = if protocol == ip_proto::ICMP && v6 {
                ip_proto::ICMPV6
            } else {
                protocol
            };
            let (k, mut e) = session(protocol, v6);
            let mut enc = Encoder::new();
            enc.commit(&k, &e, e.timeout, 1, false, true);
            let msg = Messages::new(enc.bytes()).next().unwrap().unwrap();
            assert_eq!(msg.ct_type(), Some(IPCTNL_MSG_CT_NEW));
            let got = decode_entry(msg.payload, 1000).unwrap();
            e.ct_status = e.ct_status & ips::SETTABLE | ips::CONFIRMED;
            assert_eq!(got.key, k, "{protocol} v6={v6}");
            assert_eq!(got.entry, e, "{protocol} v6={v6}");
        }
    }
}

#[test]
fn nat_reply_tuple_roundtrips() {
    let (k, mut e) = session(ip_proto::TCP, false);
    e.flags |= flags::NAT;
    e.nat.src_addr[..4].copy_from_slice(&[203, 0, 113, 9]);
    e.nat.dst_addr = k.dst_addr;
    e.nat.src_port = 61000;
    e.nat.dst_port = k.dst_port;
    let mut enc = Encoder::new();
    enc.commit(&k, &e, 300, 1, false, true);
    let msg = Messages::new(enc.bytes()).next().unwrap().unwrap();
    let got = decode_entry(msg.payload, 1000).unwrap();
    assert_eq!(got.entry.nat, e.nat);
    assert!(got.entry.has_nat());
    assert_eq!(got.reply.dst[..4], [203, 0, 113, 9]);
    assert_eq!(got.reply.dst_port, 61000);
}

#[test]
fn icmp_echo_reply_is_not_nat() {
    let (k, e) = session(ip_proto::ICMP, false);
    let r = reply_tuple(&k, &e);
    assert_eq!(r.dst_port >> 8, 0, "echo request's reply is an echo reply");
    assert_eq!(r.src_port, k.src_port);
}

#[test]
fn hostile_lengths_are_typed_errors() {
    let (k, e) = session(ip_proto::TCP, false);
    let mut enc = Encoder::new();
    enc.commit(&k, &e, 300, 1, false, true);
    let good = enc.bytes().to_vec();
    // Every truncation of the message is refused or decodes; none panics.
    for n in 0..good.len() {
        let mut b = good[..n].to_vec();
        if b.len() >= 4 {
            b[..4].copy_from_slice(&(n as u32).to_ne_bytes());
        }
        for m in Messages::new(&b).flatten() {
            let _ = decode_entry(m.payload, 0);
        }
    }
    // A netlink length beyond the buffer.
    let mut b = good.clone();
    b[..4].copy_from_slice(&(good.len() as u32 + 4).to_ne_bytes());
    assert!(matches!(
        Messages::new(&b).next(),
        Some(Err(CodecError::Truncated(_)))
    ));
    // An unknown family.
    let mut b = good.clone();
    b[NLMSG_HDRLEN] = 7;
    let m = Messages::new(&b).next().unwrap().unwrap();
    assert_eq!(
        decode_entry(m.payload, 0),
        Err(CodecError::UnsupportedFamily(7))
    );
    // A status of the wrong size: find CTA_STATUS and stretch its length.
    let payload = &good[NLMSG_HDRLEN + NFGENMSG_LEN..];
    let mut off = NLMSG_HDRLEN + NFGENMSG_LEN;
    for a in Attrs::new(payload) {
        let (ty, v) = a.unwrap();
        if ty == cta::STATUS {
            let mut b = good.clone();
            b[off..off + 2].copy_from_slice(&6u16.to_ne_bytes());
            let m = Messages::new(&b).next().unwrap().unwrap();
            assert!(matches!(
                decode_entry(m.payload, 0),
                Err(CodecError::BadLength(..)) | Err(CodecError::Truncated(_))
            ));
        }
        off += align4(NLA_HDRLEN + v.len());
    }
}

#[test]
fn unknown_attributes_are_skipped() {
    let (k, e) = session(ip_proto::UDP, false);
    let mut enc = Encoder::new();
    enc.commit(&k, &e, 300, 1, false, true);
    // Re-encode with an unknown top-level attribute and an unknown nest.
    let mut enc2 = Encoder::new();
    enc2.begin(IPCTNL_MSG_CT_NEW, 0, 1, AF_INET);
    enc2.attr(200, &[1, 2, 3]);
    enc2.nest(201);
    enc2.attr(1, &[9; 9]);
    enc2.nest_end();
    let m = Messages::new(enc.bytes()).next().unwrap().unwrap();
    enc2.buf.extend_from_slice(&m.payload[NFGENMSG_LEN..]);
    enc2.end();
    let m2 = Messages::new(enc2.bytes()).next().unwrap().unwrap();
    assert_eq!(
        decode_entry(m2.payload, 0).unwrap(),
        decode_entry(m.payload, 0).unwrap()
    );
}
