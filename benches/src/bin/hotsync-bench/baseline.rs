//! The baselines measured in the same run as the bulk sync:
//!
//! 1. a raw TCP blast of the same byte volume over loopback (the transport
//!    limit): std `TcpStream`, 1 MiB writes, a receiver thread reading 1 MiB
//!    at a time;
//! 2. the naive pipeline (what one would write in an afternoon): iterate a
//!    `DashMap`, rkyv-serialize batches of a plain `#[derive(Archive)]`
//!    struct of key+entry, length-prefix them on a blocking socket; the
//!    receiver validates (`rkyv::access`, like hotsync's decoder) and inserts
//!    every record single-threaded into a pre-sized `DashMap`;
//! 3. a bare single-thread insert (`apply_upsert`, the receive path) of N
//!    entries into a fresh, pre-sized `SessionTable` (the apply limit).

use hotsync_bench::bare_map;
use hotsync_table::{NatTranslation, SessionEntry, SessionKey, SessionTable, TableConfig};
use rkyv::rancor::Error as RkyvError;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::util::LiveSessions;

const MIB: usize = 1 << 20;

/// Raw TCP: `bytes` over loopback in 1 MiB writes. Returns the elapsed time
/// from the first write until the receiver has read the last byte.
pub fn tcp_blast(bytes: u64) -> Duration {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let rx = std::thread::Builder::new()
        .name("bl-tcp-rx".into())
        .spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            let mut buf = vec![0u8; MIB];
            let mut got = 0u64;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got += n as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => panic!("read: {e}"),
                }
            }
            (got, Instant::now())
        })
        .expect("spawn");
    let mut s = TcpStream::connect(addr).expect("connect");
    let buf = vec![0x5au8; MIB];
    let t0 = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(MIB as u64) as usize;
        s.write_all(&buf[..n]).expect("write");
        left -= n as u64;
    }
    drop(s);
    let (got, end) = rx.join().expect("receiver");
    assert_eq!(got, bytes);
    end - t0
}

/// The naive pipeline's record: key and entry fields, derived as is.
#[derive(Archive, Serialize, Deserialize, Debug, Clone)]
pub struct NaiveRecord {
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub vsys: u16,
    pub ct_zone: u16,
    pub src_port: u16,
    pub dst_port: u16,
    pub family: u8,
    pub protocol: u8,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub nat_src_addr: [u8; 16],
    pub nat_dst_addr: [u8; 16],
    pub nat_src_port: u16,
    pub nat_dst_port: u16,
    pub policy_id: u32,
    pub app_id: u32,
    pub created: u32,
    pub last_seen: u32,
    pub timeout: u32,
    pub mark: u32,
    pub ct_status: u32,
    pub src_zone: u16,
    pub dst_zone: u16,
    pub state: u8,
    pub flags: u8,
    pub tcp_wscale: [u8; 2],
}

impl NaiveRecord {
    fn new(k: &SessionKey, e: &SessionEntry) -> Self {
        Self {
            src_addr: k.src_addr,
            dst_addr: k.dst_addr,
            vsys: k.vsys,
            ct_zone: k.ct_zone,
            src_port: k.src_port,
            dst_port: k.dst_port,
            family: k.family,
            protocol: k.protocol,
            packets: e.packets,
            bytes: e.bytes,
            nat_src_addr: e.nat.src_addr,
            nat_dst_addr: e.nat.dst_addr,
            nat_src_port: e.nat.src_port,
            nat_dst_port: e.nat.dst_port,
            policy_id: e.policy_id,
            app_id: e.app_id,
            created: e.created,
            last_seen: e.last_seen,
            timeout: e.timeout,
            mark: e.mark,
            ct_status: e.ct_status,
            src_zone: e.src_zone,
            dst_zone: e.dst_zone,
            state: e.state,
            flags: e.flags,
            tcp_wscale: e.tcp_wscale,
        }
    }
}

impl ArchivedNaiveRecord {
    fn to_session(&self) -> (SessionKey, SessionEntry) {
        let k = SessionKey {
            src_addr: self.src_addr,
            dst_addr: self.dst_addr,
            vsys: self.vsys.to_native(),
            ct_zone: self.ct_zone.to_native(),
            src_port: self.src_port.to_native(),
            dst_port: self.dst_port.to_native(),
            family: self.family,
            protocol: self.protocol,
        };
        let e = SessionEntry {
            packets: [self.packets[0].to_native(), self.packets[1].to_native()],
            bytes: [self.bytes[0].to_native(), self.bytes[1].to_native()],
            nat: NatTranslation {
                src_addr: self.nat_src_addr,
                dst_addr: self.nat_dst_addr,
                src_port: self.nat_src_port.to_native(),
                dst_port: self.nat_dst_port.to_native(),
            },
            policy_id: self.policy_id.to_native(),
            app_id: self.app_id.to_native(),
            created: self.created.to_native(),
            last_seen: self.last_seen.to_native(),
            timeout: self.timeout.to_native(),
            mark: self.mark.to_native(),
            ct_status: self.ct_status.to_native(),
            src_zone: self.src_zone.to_native(),
            dst_zone: self.dst_zone.to_native(),
            state: self.state,
            flags: self.flags,
            tcp_wscale: self.tcp_wscale,
        };
        (k, e)
    }
}

/// Result of one naive-pipeline run.
#[derive(Debug, Clone, Copy)]
pub struct NaiveRun {
    pub elapsed: Duration,
    pub wire_bytes: u64,
}

/// The naive pipeline over `n` sessions (seed 1, like the bulk run), in
/// batches of 4096 records. The sender's map is filled before the clock
/// starts; the receiver's map is created pre-sized before it starts too.
pub fn naive(n: usize) -> NaiveRun {
    const BATCH: usize = 4096;
    let src = bare_map(n);
    let mut g = LiveSessions::new(1);
    for _ in 0..n {
        let (k, e) = g.next_session();
        src.insert(k, e);
    }
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let dst = bare_map(n);
    let rx = std::thread::Builder::new()
        .name("bl-naive-rx".into())
        .spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            let mut buf = AlignedVec::<16>::new();
            let mut len = [0u8; 4];
            let mut got = 0usize;
            loop {
                match s.read_exact(&mut len) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                    Err(e) => panic!("read: {e}"),
                }
                let len = u32::from_le_bytes(len) as usize;
                buf.clear();
                buf.resize(len, 0);
                s.read_exact(&mut buf).expect("read batch");
                let batch = rkyv::access::<rkyv::Archived<Vec<NaiveRecord>>, RkyvError>(&buf)
                    .expect("valid batch");
                for r in batch.iter() {
                    let (k, e) = r.to_session();
                    dst.insert(k, e);
                }
                got += batch.len();
            }
            (got, Instant::now(), dst)
        })
        .expect("spawn");
    let mut s = TcpStream::connect(addr).expect("connect");
    let t0 = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    let mut wire = 0u64;
    let mut send = |batch: &mut Vec<NaiveRecord>, s: &mut TcpStream| {
        let bytes = rkyv::to_bytes::<RkyvError>(&*batch).expect("serialize");
        s.write_all(&(bytes.len() as u32).to_le_bytes())
            .expect("write");
        s.write_all(&bytes).expect("write");
        wire += 4 + bytes.len() as u64;
        batch.clear();
    };
    for r in src.iter() {
        batch.push(NaiveRecord::new(r.key(), r.value()));
        if batch.len() == BATCH {
            send(&mut batch, &mut s);
        }
    }
    if !batch.is_empty() {
        send(&mut batch, &mut s);
    }
    drop(s);
    let (got, end, dst) = rx.join().expect("receiver");
    assert_eq!(got, n);
    assert_eq!(dst.len(), n);
    let elapsed = end - t0;
    drop(dst);
    drop(src);
    NaiveRun {
        elapsed,
        wire_bytes: wire,
    }
}

/// Bare single-thread `apply_upsert` of `n` pre-generated sessions into a
/// fresh table sized for them (page faults included, as on a standby
/// receiving its first batch sync).
pub fn bare_insert(n: usize) -> Duration {
    let mut g = LiveSessions::new(1);
    let s: Vec<(SessionKey, SessionEntry)> = (0..n).map(|_| g.next_session()).collect();
    let table = SessionTable::new(TableConfig::with_capacity(n));
    let t0 = Instant::now();
    for (k, e) in &s {
        table.apply_upsert(k, e).expect("pre-sized");
    }
    let d = t0.elapsed();
    assert_eq!(table.len(), n);
    d
}
