//! Fixed sample data shared by the tests and the corpus generator.
#![allow(dead_code)]

use hotsync_table::{NatTranslation, SessionEntry, SessionKey, flags, ip_proto};
use hotsync_wire::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 TCP session with NAT: fits the compact form.
pub fn v4_session(i: u32) -> (SessionKey, SessionEntry) {
    let key = SessionKey::new(
        (i % 3) as u16,
        ip_proto::TCP,
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
        1024 + (i % 50000) as u16,
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 251) as u8)),
        443,
    );
    let entry = SessionEntry {
        packets: [u64::from(i) * 3, u64::from(i) * 2],
        bytes: [u64::from(i) * 1500, u64::from(i) * 900],
        nat: NatTranslation {
            src_addr: hotsync_table::addr_bytes(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
            dst_addr: hotsync_table::addr_bytes(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            src_port: 40000 + (i % 1000) as u16,
            dst_port: 443,
        },
        policy_id: 7,
        app_id: 99,
        created: 1_700_000_000 + i,
        last_seen: 1_700_000_100 + i,
        timeout: 1200,
        src_zone: 1,
        dst_zone: 2,
        state: 3,
        flags: flags::BACKUP | flags::NAT | flags::ASSURED,
        mark: 0x10,
        ct_status: 0x18e,
        tcp_wscale: [7, 7],
    };
    (key, entry)
}

/// An IPv6 UDP session: needs the full form.
pub fn v6_session(i: u32) -> (SessionKey, SessionEntry) {
    let key = SessionKey::new(
        1,
        ip_proto::UDP,
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16)),
        5353,
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1)),
        53,
    );
    let entry = SessionEntry {
        packets: [1, 1],
        bytes: [80, 120],
        policy_id: 3,
        timeout: 30,
        state: 3,
        flags: flags::BACKUP,
        ..Default::default()
    };
    (key, entry)
}

/// One fixed instance of every message kind (in `MessageKind::ALL` order).
pub fn samples() -> Vec<(&'static str, Message)> {
    let mut upsert = SessionUpsertBatch::default();
    for i in 0..3 {
        let (k, e) = v4_session(i);
        upsert.push(&k, &e);
    }
    let (k, e) = v6_session(1);
    upsert.push(&k, &e);
    let mut delete = SessionDeleteBatch::default();
    delete.push(&v4_session(5).0);
    delete.push(&v6_session(2).0);
    vec![
        (
            "hello",
            Hello {
                protocol_version: PROTOCOL_VERSION,
                format_fingerprint: 0x0123_4567_89ab_cdef,
                node_id: 42,
                priority: 200,
                capabilities: 0b101,
                nonce: [7; 32],
                channel: Channel::Session as u8,
                shard_count: 64,
                role: 1,
                preempt: true,
                incarnation: 0x1122_3344_5566_7788,
            }
            .into(),
        ),
        ("auth_proof", AuthProof { mac: [0xa5; 32] }.into()),
        (
            "heartbeat",
            Heartbeat {
                role: 1,
                priority: 200,
                sent_at_ms: 1_700_000_000_123,
            }
            .into(),
        ),
        (
            "ack",
            Ack {
                channel: 1,
                seq: 99,
            }
            .into(),
        ),
        (
            "close",
            Close {
                reason: 3,
                detail: "shutting down".into(),
            }
            .into(),
        ),
        ("session_upsert_batch", upsert.into()),
        ("session_delete_batch", delete.into()),
        ("resync_start", ResyncStart { shard: 5, epoch: 2 }.into()),
        ("resync_end", ResyncEnd { shard: 5, epoch: 2 }.into()),
        (
            "resync_request",
            ResyncRequest {
                shards: vec![1, 2, 63],
            }
            .into(),
        ),
        (
            "batch_start",
            BatchStart {
                job_id: 9,
                what: 0,
                total: 1_000_000,
            }
            .into(),
        ),
        (
            "batch_progress",
            BatchProgress {
                job_id: 9,
                sent: 5000,
            }
            .into(),
        ),
        (
            "batch_end",
            BatchEnd {
                job_id: 9,
                sent: 1_000_000,
            }
            .into(),
        ),
        (
            "config_item_batch",
            ConfigItemBatch {
                job_id: 10,
                items: vec![
                    ConfigItem {
                        vsys: "root".into(),
                        text: "security-policy\n rule name allow-web\n  action permit\n".into(),
                    },
                    ConfigItem {
                        vsys: "vsys1".into(),
                        text: "ip address-set office type object\n address 0 10.1.0.0 mask 16\n"
                            .into(),
                    },
                ],
            }
            .into(),
        ),
        (
            "config_op",
            ConfigOp {
                op: 1,
                vsys: "root".into(),
                text: "nat address-group pool1\n section 0 203.0.113.1 203.0.113.9\n".into(),
            }
            .into(),
        ),
        (
            "config_batch_result",
            ConfigBatchResult {
                job_id: 10,
                added: 1,
                equal: 5,
                conflicts: 2,
                rejected: 0,
            }
            .into(),
        ),
    ]
}

/// A channel the message may travel on.
pub fn channel_for(kind: MessageKind) -> Channel {
    [Channel::Session, Channel::Config, Channel::Control]
        .into_iter()
        .find(|c| kind.allowed_on(*c))
        .expect("every kind has a channel")
}

/// Encodes all samples into one stream.
pub fn sample_stream(integrity: Integrity) -> (Vec<u8>, Vec<Message>) {
    let mut enc = FrameEncoder::default();
    enc.set_integrity(integrity);
    let mut out = Vec::new();
    let mut msgs = Vec::new();
    for (seq, (_, m)) in samples().into_iter().enumerate() {
        m.encode(&mut enc, channel_for(m.kind()), seq as u64, &mut out)
            .unwrap();
        msgs.push(m);
    }
    (out, msgs)
}

/// Decodes every frame of `stream` fed in one piece; panics on error.
pub fn decode_all(dec: &mut FrameDecoder, stream: &[u8]) -> Vec<(FrameHeader, Message)> {
    dec.feed(stream).unwrap();
    let mut v = Vec::new();
    while let Some(f) = dec.next_frame().unwrap() {
        v.push((f.header, f.message().unwrap().to_message().unwrap()));
    }
    v
}
