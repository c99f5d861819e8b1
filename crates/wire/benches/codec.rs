//! Codec micro-benchmarks: encode a 4096-record IPv4 batch into a reused
//! buffer; decode it with validation and iterate; and the unchecked baseline.
// The unchecked baseline below needs one `unsafe` block; nothing else here
// (or anywhere in the crate) uses unsafe.
#![allow(unsafe_code)]

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use hotsync_table::{NatTranslation, SessionEntry, SessionKey, addr_bytes, flags, ip_proto};
use hotsync_wire::*;
use std::net::{IpAddr, Ipv4Addr};

const N: u32 = 4096;

fn session(i: u32) -> (SessionKey, SessionEntry) {
    let key = SessionKey::new(
        0,
        ip_proto::TCP,
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
        1024 + (i % 60000) as u16,
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        443,
    );
    let entry = SessionEntry {
        packets: [u64::from(i), 2],
        bytes: [u64::from(i) * 100, 200],
        nat: NatTranslation {
            src_addr: addr_bytes(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1))),
            dst_addr: addr_bytes(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))),
            src_port: 30000 + (i % 30000) as u16,
            dst_port: 443,
        },
        policy_id: 1,
        app_id: 2,
        created: 1_700_000_000,
        last_seen: 1_700_000_000 + i,
        timeout: 600,
        src_zone: 1,
        dst_zone: 2,
        state: 3,
        flags: flags::BACKUP | flags::NAT,
        mark: 0x10,
        ct_status: 0x18e,
        tcp_wscale: [7, 7],
    };
    (key, entry)
}

/// Folds a record into a checksum so the iteration cannot be optimised away.
fn fold(acc: u64, (k, e): (SessionKey, SessionEntry)) -> u64 {
    acc.wrapping_add(u64::from(k.src_port))
        .wrapping_add(e.packets[0])
        .wrapping_add(u64::from(e.last_seen))
}

fn bench(c: &mut Criterion) {
    let mut batch = SessionUpsertBatch::default();
    for i in 0..N {
        let (k, e) = session(i);
        batch.push(&k, &e);
    }
    let mut enc = FrameEncoder::default();
    let mut out = Vec::with_capacity(1 << 20);
    enc.encode(Channel::Session, 0, &batch, &mut out).unwrap();
    let frame_len = out.len();
    eprintln!(
        "frame: {frame_len} bytes for {N} sessions = {:.2} bytes/session",
        frame_len as f64 / f64::from(N)
    );

    let mut g = c.benchmark_group("codec_4096_v4");
    g.throughput(Throughput::Elements(u64::from(N)));
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            enc.encode(Channel::Session, 1, black_box(&batch), &mut out)
                .unwrap()
        })
    });

    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    dec.feed(&out).unwrap();
    let payload = {
        let f = dec.next_frame().unwrap().unwrap();
        let mut v = rkyv::util::AlignedVec::<16>::new();
        v.extend_from_slice(f.payload);
        v
    };
    g.bench_function("decode_checked_iter", |b| {
        b.iter(|| {
            let a = rkyv::access::<ArchivedSessionUpsertBatch, rkyv::rancor::Error>(black_box(
                &payload[..],
            ))
            .unwrap();
            a.iter().fold(0u64, fold)
        })
    });
    g.bench_function("decode_unchecked_iter", |b| {
        b.iter(|| {
            // SAFETY: `payload` was produced by our own encoder in this
            // process from a valid `SessionUpsertBatch`, is 16-aligned, and
            // was validated once above by the decoder; this is the baseline
            // that the checked path is compared against.
            let a = unsafe {
                rkyv::access_unchecked::<ArchivedSessionUpsertBatch>(black_box(&payload[..]))
            };
            a.iter().fold(0u64, fold)
        })
    });
    g.bench_function("frame_decode_full", |b| {
        // Through the FrameDecoder: header, CRC32C, bytecheck, iterate.
        b.iter(|| {
            dec.feed(black_box(&out)).unwrap();
            let f = dec.next_frame().unwrap().unwrap();
            let MessageRef::SessionUpsertBatch(a) = f.message().unwrap() else {
                unreachable!()
            };
            a.iter().fold(0u64, fold)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
