//! Hostile peers against a node with `hrp encryption-key`, over real
//! sockets: a peer that sends a frame in clear text after the handshake,
//! one whose encryption key is wrong, one that replays an encrypted frame,
//! one that reorders two, one that flips a bit of a frame's tag.
//!
//! The attacker is a real `hotsync_proto::Peer` with the pre-shared key (a
//! "puppet"): it completes the handshake, then the test takes the
//! encrypted frames it would send (a batch of sessions) and replays,
//! reorders or tampers with them before writing them to the socket.
//!
//! Every case must end with the connection dropped by the node, exactly one
//! typed error counted, the table and the configuration unchanged (no
//! record of a refused frame is applied), and the node still serving its
//! real, encrypting peer afterwards.

mod support;

use hotsync_node::{Node, NodeConfig, NodeHandle};
use hotsync_proto::{ConnKind, Peer, Phase, ProtoConfig, RejectConfig, Role};
use hotsync_table::{SessionTable, TableConfig};
use hotsync_wire::{Channel, FrameEncoder, HEADER_LEN, Heartbeat, Message, MessageKind, field};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

const KEY: &str = "hostile-encrypted-auth-key";
const ENCRYPTION_KEY: &str = "hostile-encrypted-encryption-key";
const SESSION: ConnKind = ConnKind::Session;

fn encrypting(mut cfg: NodeConfig, encryption_key: &str) -> NodeConfig {
    cfg.proto.encryption_key = Some(encryption_key.as_bytes().to_vec());
    cfg
}

/// B: the node under attack (priority 200, accepts, encrypting); A: its
/// real peer (priority 100, dials, same keys), not started.
fn setup() -> (NodeHandle, NodeConfig, u16) {
    let p = port_pairs(2);
    let (pa, pb) = (p[0], p[1]);
    let b_cfg = node_config(2, 200, pb, addr(pa), Some(KEY), 200_000);
    let b = Node::start(encrypting(b_cfg, ENCRYPTION_KEY)).unwrap();
    let a_cfg = node_config(1, 100, pa, addr(pb), Some(KEY), 200_000);
    fill(b.table(), 2_000, 300);
    wait_until("B active alone", Duration::from_secs(5), || {
        b.role() == Role::Active
    });
    (b, encrypting(a_cfg, ENCRYPTION_KEY), pb)
}

fn error_count(n: &NodeHandle, kind: &str) -> u64 {
    n.state().peer.stats.errors.get(kind).copied().unwrap_or(0)
}

/// Cuts a byte stream into whole frames (frames padded to 16 bytes).
fn split_frames(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while bytes.len() >= HEADER_LEN {
        let len_field = bytes[field::PAYLOAD_LEN].try_into().unwrap();
        let payload = u32::from_le_bytes(len_field) as usize;
        let len = (HEADER_LEN + payload).div_ceil(16) * 16;
        frames.push(bytes[..len.min(bytes.len())].to_vec());
        bytes = &bytes[len.min(bytes.len())..];
    }
    frames
}

fn kind_of(frame: &[u8]) -> Option<MessageKind> {
    MessageKind::from_u8(frame[field::KIND])
}

/// A real peer with the pre-shared key and an encryption key (the right
/// one or not), with 3,000 sessions of its own to send in a batch.
struct Puppet {
    peer: Peer,
    stream: TcpStream,
}

impl Puppet {
    fn connect(port: u16, encryption_key: &str, nonce: u8) -> Puppet {
        Self::connect_with(port, KEY, encryption_key, nonce)
    }

    fn connect_with(port: u16, psk: &str, encryption_key: &str, nonce: u8) -> Puppet {
        let table = SessionTable::new(TableConfig::with_shards(8192, 16));
        fill(&table, 3_000, 400 + u64::from(nonce));
        let cfg = ProtoConfig {
            node_id: 7,
            priority: 10,
            hello_interval: Duration::from_millis(100),
            dead_count: 3,
            psk: Some(psk.as_bytes().to_vec()),
            encryption_key: Some(encryption_key.as_bytes().to_vec()),
            batch_records: 512,
            ..ProtoConfig::default()
        };
        let now = Instant::now();
        let mut peer = Peer::new(cfg, Arc::new(table), Box::new(RejectConfig), 7, now);
        let stream = TcpStream::connect(addr(port)).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let mut n = [nonce; 32];
        n[31] = 0x5a;
        peer.handle_connected(SESSION, true, n, now);
        Puppet { peer, stream }
    }

    /// What the puppet queued, taken without writing it.
    fn take_output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(b) = self.peer.poll_transmit(SESSION, Instant::now()) {
            out.extend_from_slice(b);
            let n = b.len();
            self.peer.consume(SESSION, n);
        }
        out
    }

    fn write(&mut self, bytes: &[u8]) {
        // The node may have dropped us already: the drop is checked after.
        let _ = self.stream.write_all(bytes);
    }

    /// Exchanges bytes until the puppet's handshake completes (`Up`) or
    /// fails. Its proof, the last frame it sends in clear, is written; what
    /// it queues after it is left queued.
    fn handshake(&mut self, wait: Duration) -> Phase {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 16 << 10];
        while Instant::now() < deadline {
            let out = self.take_output();
            self.write(&out);
            let phase = self.peer.state().conn_phase.session;
            if !matches!(phase, Phase::AwaitHello | Phase::AwaitAuth) {
                return phase;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Phase::Down,
                Ok(n) => {
                    // Up on the node's proof; the node's encrypted frames
                    // after it may arrive in the same read.
                    let _ = self.peer.handle_bytes(SESSION, &buf[..n], Instant::now());
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return Phase::Down,
            }
        }
        Phase::Down
    }

    /// The encrypted frames of a session batch, as the puppet would send
    /// them (nothing written).
    fn batch_frames(&mut self) -> Vec<Vec<u8>> {
        let _ = self.take_output();
        self.peer
            .start_session_sync(Instant::now())
            .expect("the puppet is established");
        let frames = split_frames(&self.take_output());
        assert!(frames.len() >= 3, "{} frames", frames.len());
        frames
    }

    /// Reads until the node drops the connection (true) or `wait` passes.
    fn dropped(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 16 << 10];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                }
                Err(_) => return true,
            }
        }
    }
}

/// Index of the first frame carrying session records.
fn first_records(frames: &[Vec<u8>]) -> usize {
    frames
        .iter()
        .position(|f| kind_of(f) == Some(MessageKind::SessionUpsertBatch))
        .expect("a batch carries records")
}

#[test]
fn refused_encrypted_frames_drop_the_connection_count_and_change_nothing() {
    let _serial = serial();
    let (b, a_cfg, port) = setup();
    let digest = b.table().digest();
    let config = b.with_store(|s| s.render());
    let wait = Duration::from_secs(5);
    let mut cases = Vec::new();
    let mut case =
        |name: &str, error: &str, key: &str, nonce: u8, attack: &mut dyn FnMut(&mut Puppet)| {
            let before = error_count(&b, error);
            let mut p = Puppet::connect(port, key, nonce);
            let phase = p.handshake(wait);
            // With the wrong encryption key the puppet may already have failed
            // on the node's first encrypted frame (its close frame is queued).
            let wrong_key = key != ENCRYPTION_KEY;
            assert!(
                phase == Phase::Up || wrong_key && phase == Phase::Closing,
                "{name}: handshake ended {phase:?}"
            );
            attack(&mut p);
            assert!(
                p.dropped(wait),
                "{name}: the node did not drop the connection"
            );
            wait_until(&format!("{name}: {error} counted"), wait, || {
                error_count(&b, error) > before
            });
            wait_until(&format!("{name}: relationship down"), wait, || {
                !b.is_established()
            });
            assert_eq!(error_count(&b, error), before + 1, "{name}: one {error}");
            assert_eq!(b.table().digest(), digest, "{name}: table changed");
            assert_eq!(
                b.with_store(|s| s.render()),
                config,
                "{name}: configuration changed"
            );
            cases.push(name.to_owned());
        };

    // 1. A clear-text frame after the handshake (a downgrade).
    case(
        "clear frame",
        "not_encrypted",
        ENCRYPTION_KEY,
        1,
        &mut |p| {
            let hb = Message::Heartbeat(Heartbeat {
                role: 2,
                priority: 10,
                sent_at_ms: 0,
            });
            let mut out = Vec::new();
            hb.encode(&mut FrameEncoder::default(), Channel::Control, 3, &mut out)
                .unwrap();
            p.write(&out);
        },
    );

    // 2. The right authentication key, the wrong encryption key: the proof
    //    verifies, the first encrypted frame does not open.
    let wrong = "not-the-encryption-key";
    case(
        "wrong encryption key",
        "decrypt_failed",
        wrong,
        2,
        &mut |p| {
            // A batch if the puppet is still up, else its close frame: either
            // way encrypted under its key.
            let _ = p.peer.start_session_sync(Instant::now());
            let out = p.take_output();
            assert!(!out.is_empty());
            p.write(&out);
        },
    );

    // 3. An accepted frame sent again.
    case("replayed frame", "replayed", ENCRYPTION_KEY, 3, &mut |p| {
        let frames = p.batch_frames();
        assert_ne!(kind_of(&frames[0]), Some(MessageKind::SessionUpsertBatch));
        p.write(&frames[0]);
        p.write(&frames[0]);
    });

    // 4. A records frame sent before the one that precedes it.
    case(
        "reordered frames",
        "out_of_order",
        ENCRYPTION_KEY,
        4,
        &mut |p| {
            let frames = p.batch_frames();
            let i = first_records(&frames);
            p.write(&frames[..i].concat());
            p.write(&frames[i + 1]);
            p.write(&frames[i]);
        },
    );

    // 5. A records frame with one bit of its tag flipped.
    case(
        "flipped tag",
        "decrypt_failed",
        ENCRYPTION_KEY,
        5,
        &mut |p| {
            let frames = p.batch_frames();
            let i = first_records(&frames);
            let mut tampered = frames[i].clone();
            tampered[field::TAG.start + 7] ^= 0x10;
            p.write(&frames[..i].concat());
            p.write(&tampered);
        },
    );

    eprintln!(
        "hostile encrypted: {} cases dropped and counted: {:?}",
        cases.len(),
        b.state().peer.stats.errors
    );
    assert_eq!(cases.len(), 5);

    // Control: the same batch, untouched, is applied (2,970 records: one
    // session in 100 is local-only and stays behind). (So "table unchanged"
    // above is what the refusals kept, not a batch the node ignores.)
    let mut p = Puppet::connect(port, ENCRYPTION_KEY, 6);
    assert_eq!(p.handshake(wait), Phase::Up);
    let frames = p.batch_frames();
    p.write(&frames.concat());
    wait_until("the untouched batch applied", wait, || {
        b.table().digest().entries > digest.entries + 2_000
    });
    drop(p);

    // The node still serves its real peer, encrypted.
    let a = Node::start(a_cfg).unwrap();
    established(&a, &b, Duration::from_secs(10));
    assert!(b.state().peer.encrypted && a.state().peer.encrypted);
    let job = b.sync_connection_status().unwrap();
    b.wait_job(job, Duration::from_secs(30)).unwrap();
    digests_equal(&a, &b, Duration::from_secs(10));
    a.shutdown();
    b.shutdown();
}

/// The node's traffic counters (frames and bytes in `display hrp
/// statistics`, socket bytes in the metrics).
fn traffic(n: &NodeHandle) -> [u64; 8] {
    let st = n.state();
    let s = &st.peer.stats;
    [
        s.frames_rx,
        s.bytes_rx,
        s.frames_tx,
        s.bytes_tx,
        st.io.bytes_rx[0],
        st.io.bytes_rx[1],
        st.io.bytes_tx[0],
        st.io.bytes_tx[1],
    ]
}

/// Connections that never complete a handshake (garbage, a hello then
/// silence, a wrong authentication key) move only their own error: no
/// frame or byte counter, in the protocol or on the sockets.
#[test]
fn strangers_move_no_traffic_counter() {
    let _serial = serial();
    let (b, _, port) = setup();
    let before = traffic(&b);
    let errors = b.state().peer.stats.error_total();
    let wait = Duration::from_secs(5);

    let mut s = TcpStream::connect(addr(port)).unwrap();
    let _ = s.write_all(&[0x55; 4096]);
    wait_until("bad_magic", wait, || error_count(&b, "bad_magic") == 1);

    let mut p = Puppet::connect_with(port, "not-the-key", ENCRYPTION_KEY, 8);
    assert_ne!(p.handshake(wait), Phase::Up);
    assert!(p.dropped(wait));
    wait_until("auth_failed", wait, || error_count(&b, "auth_failed") == 1);

    // A hello (the puppet's), then silence until the handshake timer.
    let mut p = Puppet::connect(port, ENCRYPTION_KEY, 9);
    let hello = p.take_output();
    p.write(&hello);
    assert!(p.dropped(wait));
    wait_until("timeout", wait, || error_count(&b, "timeout") == 1);
    drop(s);
    wait_until("every stranger counted", wait, || {
        b.state().peer.stats.error_total() >= errors + 3
    });

    assert_eq!(
        traffic(&b),
        before,
        "frames/bytes (protocol), bytes (sockets) moved: {:?}",
        b.state().peer.stats.errors
    );
    assert_eq!(b.state().peer.stats.connections, 0);
    b.shutdown();
}
