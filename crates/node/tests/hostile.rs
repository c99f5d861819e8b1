//! Hostile peers against a running node, over real sockets (std
//! `TcpStream` straight to its listen port): garbage, malformed and
//! oversized frames, silence, wrong versions, wrong keys, replayed and
//! reflected handshakes, garbage after a valid handshake, and floods of
//! connections.
//!
//! Every case must end with the connection dropped by the node, one typed
//! error counted (`state().peer.stats.errors`), memory bounded (process RSS
//! and the decoder's refusal to buffer an oversized frame), no state
//! changed (table digest and configuration unchanged) and the node still
//! serving its real peer afterwards.
//!
//! The node under attack (B) has the higher listen port, so it accepts and
//! never dials: with its real peer (A) not started, its listener is free
//! for the attacker (a node refuses a second connection while one is up).

mod support;

use hotsync_node::{Node, NodeConfig, NodeHandle};
use hotsync_proto::{ConnKind, Peer, Phase, ProtoConfig, RejectConfig, Role};
use hotsync_table::{SessionTable, TableConfig};
use hotsync_wire::{
    Channel, FORMAT_FINGERPRINT, FrameEncoder, FrameHeader, HEADER_LEN, Hello, Message,
    MessageKind, PROTOCOL_VERSION,
};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

const KEY: &str = "hostile-test-key";
const MIB: u64 = 1 << 20;

/// B: the node under attack (priority 200, accepts); A: its real peer
/// (priority 100, dials), not started.
fn setup() -> (NodeHandle, NodeConfig, u16) {
    let p = port_pairs(2);
    let (pa, pb) = (p[0], p[1]);
    let b = Node::start(node_config(2, 200, pb, addr(pa), Some(KEY), 200_000)).unwrap();
    let a_cfg = node_config(1, 100, pa, addr(pb), Some(KEY), 200_000);
    fill(b.table(), 2_000, 100);
    // No peer within the dead interval: B serves alone.
    wait_until("B active alone", Duration::from_secs(5), || {
        b.role() == Role::Active
    });
    (b, a_cfg, pb)
}

fn errors(n: &NodeHandle) -> std::collections::BTreeMap<&'static str, u64> {
    n.state().peer.stats.errors
}

fn error_count(n: &NodeHandle, kind: &str) -> u64 {
    errors(n).get(kind).copied().unwrap_or(0)
}

/// How an attack connection ended.
#[derive(Debug, PartialEq)]
enum End {
    /// The node closed it (EOF or reset).
    Dropped,
    /// Still open when we gave up.
    Open,
}

/// Reads (and discards: the node's hello, its close frame) until the node
/// drops the connection or `wait` passes.
fn await_drop(s: &mut TcpStream, wait: Duration) -> End {
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 16 << 10];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return End::Dropped,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() >= deadline {
                    return End::Open;
                }
            }
            Err(_) => return End::Dropped,
        }
    }
}

/// Connects to `port`, sends `bytes`, and waits for the node to drop us.
fn attack(port: u16, bytes: &[u8], wait: Duration) -> End {
    let mut s = TcpStream::connect(addr(port)).unwrap();
    s.set_nodelay(true).unwrap();
    // The node may drop us before it read everything: a failed write is
    // fine, the read below sees the drop.
    let _ = s.write_all(bytes);
    await_drop(&mut s, wait)
}

fn header(version: u16, kind: MessageKind, payload_len: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    FrameHeader {
        version,
        channel: Channel::Control,
        kind,
        flags: 0,
        payload_len,
        seq: 1,
        tag: [0; 16],
    }
    .write(&mut h);
    h
}

fn hello(node_id: u64, version: u16, nonce: u8) -> Hello {
    Hello {
        protocol_version: version,
        format_fingerprint: FORMAT_FINGERPRINT,
        node_id,
        priority: 10,
        capabilities: hotsync_proto::CAP_AUTH,
        nonce: [nonce; 32],
        channel: Channel::Session as u8,
        shard_count: 16,
        role: 0,
        preempt: false,
        incarnation: 1,
    }
}

/// One frame, CRC integrity (what a hello travels with).
fn frame(msg: &Message, seq: u64) -> Vec<u8> {
    let mut enc = FrameEncoder::default();
    let mut out = Vec::new();
    msg.encode(&mut enc, Channel::Control, seq, &mut out)
        .unwrap();
    out
}

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut g = hotsync_table::SessionGenerator::new(seed, 0, false, 0);
    (0..n).map(|_| g.next_u64() as u8).collect()
}

/// A peer driven by the test itself (the real protocol state machine,
/// `hotsync_proto::Peer`, over a blocking socket): does a real handshake,
/// with the right key or not, and records every byte it sent.
struct Puppet {
    peer: Peer,
    stream: TcpStream,
    sent: Vec<u8>,
}

impl Puppet {
    fn connect(port: u16, node_id: u64, psk: Option<&str>) -> Puppet {
        let mut tc = TableConfig::with_capacity(1024);
        tc.shards = 16;
        let cfg = ProtoConfig {
            node_id,
            priority: 10,
            hello_interval: Duration::from_millis(100),
            dead_count: 3,
            psk: psk.map(|k| k.as_bytes().to_vec()),
            ..ProtoConfig::default()
        };
        let now = Instant::now();
        let mut peer = Peer::new(
            cfg,
            Arc::new(SessionTable::new(tc)),
            Box::new(RejectConfig),
            node_id,
            now,
        );
        let stream = TcpStream::connect(addr(port)).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let mut nonce = [0u8; 32];
        nonce.copy_from_slice(&pseudo_random(32, node_id ^ now.elapsed().as_nanos() as u64)[..]);
        nonce[0] = node_id as u8;
        peer.handle_connected(ConnKind::Session, true, nonce, now);
        Puppet {
            peer,
            stream,
            sent: Vec::new(),
        }
    }

    /// Writes what the peer queued (recording it).
    fn flush(&mut self) -> bool {
        while let Some(b) = self.peer.poll_transmit(ConnKind::Session, Instant::now()) {
            let b = b.to_vec();
            if self.stream.write_all(&b).is_err() {
                return false;
            }
            self.sent.extend_from_slice(&b);
            self.peer.consume(ConnKind::Session, b.len());
        }
        true
    }

    /// Pumps bytes until the handshake completes (true) or fails (false).
    /// On failure what the peer still queued (its proof, its close) is
    /// sent first, as a node would.
    fn handshake(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 16 << 10];
        while Instant::now() < deadline {
            if !self.flush() {
                return false;
            }
            match self.peer.state().conn_phase.session {
                Phase::Up => return true,
                Phase::Closing | Phase::Down => return false,
                _ => {}
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    if self
                        .peer
                        .handle_bytes(ConnKind::Session, &buf[..n], Instant::now())
                        .is_err()
                    {
                        self.flush();
                        return false;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return false,
            }
        }
        false
    }
}

/// Everything that must hold after each attack.
struct Guard<'a> {
    b: &'a NodeHandle,
    digest: hotsync_table::TableDigest,
    config: String,
    rss0: u64,
    rss_max: u64,
}

impl Guard<'_> {
    fn check(&mut self, case: &str, kind: &str, before: u64) {
        wait_until(
            &format!("{case}: error {kind} counted"),
            Duration::from_secs(5),
            || error_count(self.b, kind) > before,
        );
        assert_eq!(
            error_count(self.b, kind),
            before + 1,
            "{case}: exactly one {kind} error"
        );
        assert_eq!(
            self.b.table().digest(),
            self.digest,
            "{case}: table changed"
        );
        assert_eq!(
            self.b.with_store(|s| s.render()),
            self.config,
            "{case}: configuration changed"
        );
        assert!(!self.b.is_established(), "{case}: still established");
        if let Some(r) = rss_bytes() {
            self.rss_max = self.rss_max.max(r);
        }
    }
}

/// Each hostile input, one connection at a time, against a node with no
/// peer; then its real peer joins and is served.
#[test]
fn hostile_inputs_are_dropped_counted_bounded_and_change_nothing() {
    let _serial = serial();
    let (b, a_cfg, port) = setup();
    let rss0 = rss_bytes().unwrap_or(0);
    let mut g = Guard {
        b: &b,
        digest: b.table().digest(),
        config: b.with_store(|s| s.render()),
        rss0,
        rss_max: rss0,
    };
    let dead = Duration::from_millis(300);
    let wait = Duration::from_secs(5);
    let mut cases = 0;
    let mut case = |g: &mut Guard, name: &str, kind: &str, run: &mut dyn FnMut() -> End| {
        let before = error_count(g.b, kind);
        let end = run();
        assert_eq!(
            end,
            End::Dropped,
            "{name}: the node did not drop the connection"
        );
        g.check(name, kind, before);
        cases += 1;
    };

    // 1. Random bytes.
    let junk = pseudo_random(64 << 10, 1);
    case(&mut g, "random bytes", "bad_magic", &mut || {
        attack(port, &junk, wait)
    });

    // 2. A valid header announcing an enormous payload: refused from the
    //    header alone, before any room for the payload is made.
    let rss_before_huge = rss_bytes().unwrap_or(0);
    let huge = header(PROTOCOL_VERSION, MessageKind::Hello, u32::MAX);
    case(&mut g, "enormous length", "frame_too_large", &mut || {
        attack(port, &huge, wait)
    });
    let rss_after_huge = rss_bytes().unwrap_or(0);
    assert!(
        rss_after_huge < rss_before_huge + 16 * MIB,
        "a 4 GiB length header grew RSS by {} MiB",
        (rss_after_huge - rss_before_huge) / MIB
    );

    // 3. Wrong magic in an otherwise valid hello frame.
    let mut bad_magic = frame(&Message::Hello(hello(9, PROTOCOL_VERSION, 9)), 1);
    bad_magic[..4].copy_from_slice(b"HSYM");
    case(&mut g, "wrong magic", "bad_magic", &mut || {
        attack(port, &bad_magic, wait)
    });

    // 4. Wrong frame version (header), then wrong protocol version (hello).
    let mut bad_version = frame(&Message::Hello(hello(9, PROTOCOL_VERSION, 9)), 1);
    bad_version[4..6].copy_from_slice(&(PROTOCOL_VERSION + 1).to_le_bytes());
    case(
        &mut g,
        "wrong frame version",
        "unsupported_version",
        &mut || attack(port, &bad_version, wait),
    );
    let old_hello = frame(&Message::Hello(hello(9, PROTOCOL_VERSION + 7, 9)), 1);
    case(
        &mut g,
        "wrong protocol version",
        "version_mismatch",
        &mut || attack(port, &old_hello, wait),
    );

    // 5. A truncated frame, then silence: the handshake timer (the dead
    //    interval) drops it.
    let good_hello = frame(&Message::Hello(hello(9, PROTOCOL_VERSION, 9)), 1);
    let t0 = Instant::now();
    case(
        &mut g,
        "truncated frame then silence",
        "timeout",
        &mut || attack(port, &good_hello[..good_hello.len() / 2], wait),
    );
    let held = t0.elapsed();
    assert!(held >= dead && held < dead * 10, "dropped after {held:?}");

    // 6. Many large (allowed) frames started and never finished, each
    //    then abandoned (and the next one replacing it): buffers are
    //    bounded per connection and released.
    let near_max = (hotsync_wire::DEFAULT_MAX_FRAME_LEN - HEADER_LEN - 16) as u32;
    let mut big = header(PROTOCOL_VERSION, MessageKind::Hello, near_max).to_vec();
    big.extend(std::iter::repeat_n(0u8, 2 << 20));
    for i in 0..8 {
        case(
            &mut g,
            &format!("large frame then silence #{i}"),
            "timeout",
            &mut || attack(port, &big, wait),
        );
    }

    // 7. No key where one is required.
    case(&mut g, "unauthenticated peer", "auth_required", &mut || {
        let mut p = Puppet::connect(port, 7, None);
        assert!(!p.handshake(wait));
        await_drop(&mut p.stream, wait)
    });

    // 8. The wrong key.
    case(&mut g, "wrong key", "auth_failed", &mut || {
        let mut p = Puppet::connect(port, 7, Some("not-the-key"));
        assert!(!p.handshake(wait));
        await_drop(&mut p.stream, wait)
    });

    // 9. A valid handshake (this peer has the key), then garbage: the
    //    frame MAC (or the header check) catches it. Nothing it sent
    //    before the garbage changed anything either.
    let mut recorded = Vec::new();
    case(
        &mut g,
        "valid handshake then garbage",
        "bad_magic",
        &mut || {
            let mut p = Puppet::connect(port, 7, Some(KEY));
            assert!(p.handshake(wait), "the puppet's handshake failed");
            recorded = p.sent.clone();
            let _ = p.stream.write_all(&pseudo_random(4096, 2));
            await_drop(&mut p.stream, wait)
        },
    );
    case(
        &mut g,
        "valid handshake then an unsigned frame",
        "missing_mac",
        &mut || {
            let mut p = Puppet::connect(port, 7, Some(KEY));
            assert!(p.handshake(wait));
            // The next sequence number, a valid message, but CRC instead of
            // the frame MAC.
            let hb = Message::Heartbeat(hotsync_wire::Heartbeat {
                role: 1,
                priority: 65535,
                sent_at_ms: 0,
            });
            let seq = 1 + p.sent.len() as u64; // any: the tag is checked first
            let _ = p.stream.write_all(&frame(&hb, seq));
            await_drop(&mut p.stream, wait)
        },
    );

    // 10. The recorded handshake replayed on a new connection: the node's
    //     fresh nonce makes the recorded proof worthless.
    assert!(!recorded.is_empty());
    case(&mut g, "replayed handshake", "auth_failed", &mut || {
        attack(port, &recorded, wait)
    });

    // 11. The node's own hello reflected back to it.
    case(&mut g, "reflected hello", "same_node_id", &mut || {
        let mut s = TcpStream::connect(addr(port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut theirs = vec![0u8; 4096];
        let n = s.read(&mut theirs).unwrap();
        let _ = s.write_all(&theirs[..n]);
        await_drop(&mut s, wait)
    });

    // 12. Hellos the node must refuse for what they say: another shard
    //     count, another wire format, the session channel on the config
    //     port, the node's own nonce under another id.
    let mut h = hello(9, PROTOCOL_VERSION, 9);
    h.shard_count = 8;
    let shards = frame(&Message::Hello(h), 1);
    case(
        &mut g,
        "another shard count",
        "shard_count_mismatch",
        &mut || attack(port, &shards, wait),
    );
    let mut h = hello(9, PROTOCOL_VERSION, 9);
    h.format_fingerprint ^= 1;
    let format = frame(&Message::Hello(h), 1);
    case(
        &mut g,
        "another wire format",
        "format_mismatch",
        &mut || attack(port, &format, wait),
    );
    case(
        &mut g,
        "session hello on the config port",
        "wrong_channel",
        &mut || attack(port + 1, &good_hello, wait),
    );
    case(
        &mut g,
        "own nonce reflected",
        "nonce_reflected",
        &mut || {
            let mut s = TcpStream::connect(addr(port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut theirs = vec![0u8; 4096];
            let n = s.read(&mut theirs).unwrap();
            let mut dec = hotsync_wire::FrameDecoder::new(1 << 20);
            dec.feed(&theirs[..n]).unwrap();
            let f = dec.next_frame().unwrap().expect("the node's hello");
            let Message::Hello(mut h) = f.message().unwrap().to_message().unwrap() else {
                panic!("the node did not start with a hello")
            };
            h.node_id = 9;
            let _ = s.write_all(&frame(&Message::Hello(h), 1));
            await_drop(&mut s, wait)
        },
    );

    let rss_growth = g.rss_max.saturating_sub(g.rss0);
    eprintln!(
        "hostile: {cases} cases, all dropped and counted: {:?}; RSS {} MiB at start, at most {} MiB (+{} MiB); enormous-length header: RSS {} -> {} MiB",
        errors(&b),
        g.rss0 / MIB,
        g.rss_max / MIB,
        rss_growth / MIB,
        rss_before_huge / MIB,
        rss_after_huge / MIB
    );
    // Two connections (session, config) may each hold one maximal frame
    // plus a read chunk: about 2 x 4.25 MiB. Allow allocator slack.
    assert!(
        rss_growth < 32 * MIB,
        "RSS grew by {} MiB",
        rss_growth / MIB
    );

    // The node still serves its real peer: A joins (as standby: B is
    // active and there is no preemption), B's writes reach it, and a
    // batch carries what B had before.
    let a = Node::start(a_cfg).unwrap();
    established(&a, &b, Duration::from_secs(10));
    assert_eq!(b.role(), Role::Active);
    fill(b.table(), 3_000, 101);
    let job = b.sync_connection_status().unwrap();
    b.wait_job(job, Duration::from_secs(30)).unwrap();
    digests_equal(&a, &b, Duration::from_secs(10));
    a.shutdown();
    b.shutdown();
}

/// Thousands of connection attempts, first against a node with no peer
/// (each is accepted, then dropped and counted when the attacker hangs up
/// or the next one replaces it), then against an established pair (each
/// is refused at once: a working connection is never displaced). Memory
/// stays flat, the real relationship never drops, and incremental sync
/// keeps converging during the flood.
#[test]
fn a_connection_flood_is_counted_refused_and_harmless() {
    let _serial = serial();
    let (b, a_cfg, port) = setup();
    let digest = b.table().digest();
    let rss0 = rss_bytes().unwrap_or(0);
    let flood = |n: usize| -> u64 {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut ok = 0u64;
                    for _ in 0..n / 4 {
                        if let Ok(mut s) =
                            TcpStream::connect_timeout(&addr(port), Duration::from_secs(2))
                        {
                            ok += 1;
                            // Take the node's hello (or its refusal: EOF),
                            // then hang up. (Hanging up on unread data
                            // resets the connection, and a burst of resets
                            // on loopback makes the kernel drop SYNs for a
                            // second: slow, not more hostile.)
                            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                            let mut buf = [0u8; 1024];
                            let _ = s.read(&mut buf);
                            drop(s);
                        }
                    }
                    ok
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    };
    let counted = |b: &NodeHandle| -> u64 {
        let e = errors(b);
        ["handshake_incomplete", "io", "connection_refused_busy"]
            .iter()
            .map(|k| e.get(k).copied().unwrap_or(0))
            .sum()
    };

    // Against a lone node.
    let before = counted(&b);
    let t0 = Instant::now();
    let made = flood(2_000);
    wait_until("every attempt counted", Duration::from_secs(10), || {
        counted(&b) - before >= made
    });
    let idle_time = t0.elapsed();
    assert_eq!(counted(&b) - before, made, "{:?}", errors(&b));
    assert_eq!(b.table().digest(), digest);
    let rss1 = rss_bytes().unwrap_or(0);

    // Against an established pair, with incremental traffic.
    let a = Node::start(a_cfg).unwrap();
    established(&a, &b, Duration::from_secs(10));
    let job = b.sync_connection_status().unwrap();
    b.wait_job(job, Duration::from_secs(30)).unwrap();
    let disconnects = b.state().peer.stats.disconnects;
    let busy0 = error_count(&b, "connection_refused_busy");
    let keys = fill(b.table(), 1_000, 102);
    let load = Load::start(b.table().clone(), keys, 20_000, 103);
    let t1 = Instant::now();
    let made_up = flood(2_000);
    let up_time = t1.elapsed();
    load.stop();
    digests_equal(&a, &b, Duration::from_secs(10));
    wait_until("refusals counted", Duration::from_secs(10), || {
        error_count(&b, "connection_refused_busy") - busy0 >= made_up
    });
    let rss2 = rss_bytes().unwrap_or(0);
    eprintln!(
        "flood: {made} connections to a lone node in {idle_time:?}, all counted; {made_up} to an established node in {up_time:?}, all refused; RSS {} -> {} -> {} MiB; errors {:?}",
        rss0 / MIB,
        rss1 / MIB,
        rss2 / MIB,
        errors(&b)
    );
    assert!(made >= 1_900 && made_up >= 1_900, "{made} {made_up}");
    assert_eq!(error_count(&b, "connection_refused_busy") - busy0, made_up);
    assert_eq!(
        b.state().peer.stats.disconnects,
        disconnects,
        "the flood displaced the real peer"
    );
    assert!(b.is_established() && a.is_established());
    assert!(rss1 < rss0 + 32 * MIB && rss2 < rss0 + 64 * MIB);
    a.shutdown();
    b.shutdown();
}
