//! Logic of the `proto_input` fuzz target, kept in the library so the
//! committed corpus is replayed by an ordinary test
//! (`tests/corpus_replay.rs`) without a fuzzer.
//!
//! The fuzz input drives one [`Peer`] as a hostile (or merely broken)
//! remote would: raw bytes, well-formed frames carrying arbitrary messages
//! (with the right sequence numbers and, when the input asks for it, the
//! right keys), handshakes done right or wrong, disconnects, reconnects,
//! timer ticks, data-plane writes and control-plane requests, on both
//! connections, in any order.
//!
//! Checked beyond "never panics":
//! - memory stays bounded: the receive buffer never exceeds
//!   `max_frame_len + READ_CHUNK`, the send queue never exceeds
//!   `tx_high_water` plus a few frames;
//! - everything the peer sends decodes (valid frames, consecutive sequence
//!   numbers, the right integrity after the key switch);
//! - a peer that never completed a handshake changed nothing: the table
//!   digest and the configuration sink are untouched (and with a key, a
//!   remote that never sent a valid proof never gets a connection up);
//! - an error on a connection leaves it closing (never up).

use crate::auth;
use crate::conn::{ConnKind, Phase};
use crate::peer::{CAP_AUTH, ConfigSink, Event, ItemOutcome, Peer};
use crate::settings::ProtoConfig;
use arbitrary::{Arbitrary, Unstructured};
use hotsync_table::{SessionGenerator, SessionTable, TableConfig};
use hotsync_wire::{
    AuthProof, Channel, FORMAT_FINGERPRINT, FrameDecoder, FrameEncoder, Hello, Integrity, Message,
    MessageRef, PROTOCOL_VERSION,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Frame bound of the fuzzed peer: small, so "too large" is reachable.
pub const FUZZ_MAX_FRAME_LEN: usize = 64 << 10;
/// The pre-shared key, when the input asks for one.
pub const FUZZ_PSK: &[u8] = b"fuzz-psk";
/// The fuzzed peer's node id; the remote is [`REMOTE_NODE_ID`].
pub const LOCAL_NODE_ID: u64 = 1;
/// The remote's node id.
pub const REMOTE_NODE_ID: u64 = 2;
/// Shards of the fuzzed peer's table.
pub const FUZZ_SHARDS: usize = 4;
const TX_HIGH_WATER: usize = 4096;
/// Most operations one input runs (bounds the time per input).
const MAX_OPS: usize = 256;

/// Counts what the configuration sink was asked to do.
struct CountingSink(Arc<AtomicU64>);

impl ConfigSink for CountingSink {
    fn apply_batch_item(&mut self, vsys: &str, _text: &str) -> ItemOutcome {
        self.0.fetch_add(1, Ordering::Relaxed);
        match vsys.len() % 4 {
            0 => ItemOutcome::Added,
            1 => ItemOutcome::Equal,
            2 => ItemOutcome::Conflict,
            _ => ItemOutcome::Rejected,
        }
    }
    fn apply_op(&mut self, op: u8, _vsys: &str, _text: &str) -> Result<(), String> {
        self.0.fetch_add(1, Ordering::Relaxed);
        if op > 2 {
            Err("unknown op".into())
        } else {
            Ok(())
        }
    }
}

/// The remote end of one connection, as the fuzz input plays it.
struct Remote {
    /// The transport is open (the peer was told `handle_connected`).
    open: bool,
    /// Nonce the peer was given for this connection.
    local_nonce: [u8; 32],
    /// Nonce of the hello the peer accepted (for the frame key).
    remote_nonce: Option<[u8; 32]>,
    /// Whether the peer dialled this connection.
    peer_is_connector: bool,
    /// Next sequence number the remote sends.
    tx_seq: u64,
    enc: FrameEncoder,
    /// Decodes what the peer sends.
    dec: FrameDecoder,
    /// Sequence number of the last frame received from the peer.
    rx_seq: u64,
    /// The peer's output switched to frame MACs.
    rx_keyed: bool,
    /// The peer sent a close frame (anything after it is not checked).
    closed: bool,
}

impl Remote {
    fn new() -> Self {
        Self {
            open: false,
            local_nonce: [0; 32],
            remote_nonce: None,
            peer_is_connector: false,
            tx_seq: 0,
            enc: FrameEncoder::new(FUZZ_MAX_FRAME_LEN),
            dec: FrameDecoder::new(FUZZ_MAX_FRAME_LEN),
            rx_seq: 0,
            rx_keyed: false,
            closed: false,
        }
    }
}

struct Harness {
    peer: Peer,
    table: Arc<SessionTable>,
    sink_calls: Arc<AtomicU64>,
    psk: bool,
    base: Instant,
    t_ms: u64,
    remotes: [Remote; 2],
    nonce_counter: u8,
    /// Some connection reached `Up` at some point.
    ever_up: bool,
    /// The remote sent a proof made with the right key.
    sent_valid_proof: bool,
    /// Local data-plane writes happened (the table may change legitimately).
    local_writes: bool,
    initial_digest: hotsync_table::TableDigest,
    gen_seed: u64,
}

fn idx(kind: ConnKind) -> usize {
    kind.index()
}

impl Harness {
    fn now(&self) -> Instant {
        self.base + Duration::from_millis(self.t_ms)
    }

    fn nonce(&mut self) -> [u8; 32] {
        self.nonce_counter = self.nonce_counter.wrapping_add(1);
        [self.nonce_counter; 32]
    }

    fn connect(&mut self, kind: ConnKind, peer_is_connector: bool) {
        let now = self.now();
        let nonce = self.nonce();
        let r = &mut self.remotes[idx(kind)];
        *r = Remote::new();
        r.open = true;
        r.local_nonce = nonce;
        r.peer_is_connector = peer_is_connector;
        self.peer
            .handle_connected(kind, peer_is_connector, nonce, now);
        self.after_op();
    }

    fn disconnect(&mut self, kind: ConnKind) {
        let now = self.now();
        self.flush(kind);
        self.remotes[idx(kind)].open = false;
        self.peer.handle_disconnected(kind, now);
        self.after_op();
    }

    /// Feeds bytes to the peer in pieces of `split` bytes, as a socket would.
    fn feed(&mut self, kind: ConnKind, bytes: &[u8], split: usize) {
        if !self.remotes[idx(kind)].open {
            return;
        }
        let now = self.now();
        let mut failed = false;
        for chunk in bytes.chunks(split.max(1)) {
            if self.peer.handle_bytes(kind, chunk, now).is_err() {
                failed = true;
                break;
            }
        }
        if failed {
            assert_ne!(
                self.phase(kind),
                Phase::Up,
                "an error left the connection up"
            );
        }
    }

    fn phase(&self, kind: ConnKind) -> Phase {
        self.peer.state().conn_phase[idx(kind)]
    }

    /// Encodes `msg` as the remote's next frame on `kind`.
    fn send(
        &mut self,
        kind: ConnKind,
        channel: Channel,
        msg: &Message,
        seq_skew: u64,
        split: usize,
    ) {
        let r = &mut self.remotes[idx(kind)];
        if !r.open {
            return;
        }
        r.tx_seq += 1;
        let seq = r.tx_seq.wrapping_add(seq_skew);
        let mut out = Vec::new();
        if msg.encode(&mut r.enc, channel, seq, &mut out).is_err() {
            r.tx_seq -= 1;
            return;
        }
        let before = self.phase(kind);
        let hello_nonce = match msg {
            Message::Hello(h) => Some(h.nonce),
            _ => None,
        };
        let is_proof = matches!(msg, Message::AuthProof(_));
        self.feed(kind, &out, split);
        let after = self.phase(kind);
        let r = &mut self.remotes[idx(kind)];
        if before == Phase::AwaitHello && after != Phase::AwaitHello {
            // Accepted (or accepted, then failed on later bytes): the peer
            // derives its frame key from this nonce.
            if let Some(n) = hello_nonce {
                r.remote_nonce = Some(n);
            }
        }
        // After our proof, we send with frame MACs (as a real node does).
        if is_proof && self.psk {
            if let Some(rn) = r.remote_nonce {
                let key = frame_key(r, &rn);
                r.enc.set_integrity(Integrity::Hmac(key));
            }
        }
    }

    /// A complete, valid handshake on `kind` (with a wrong key when
    /// `wrong_key`), as a real peer would do it.
    fn handshake(
        &mut self,
        kind: ConnKind,
        role: u8,
        priority: u16,
        wrong_key: bool,
        split: usize,
    ) {
        let nonce = {
            let mut n = self.nonce();
            n[0] ^= 0x80; // never equal to a local nonce
            n
        };
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            format_fingerprint: FORMAT_FINGERPRINT,
            node_id: REMOTE_NODE_ID,
            priority,
            capabilities: if self.psk { CAP_AUTH } else { 0 },
            nonce,
            channel: kind.channel() as u8,
            shard_count: FUZZ_SHARDS as u32,
            role,
            preempt: priority % 2 == 0,
        };
        self.send(kind, Channel::Control, &Message::Hello(hello), 0, split);
        if self.psk {
            let r = &self.remotes[idx(kind)];
            let key: &[u8] = if wrong_key { b"not-the-key" } else { FUZZ_PSK };
            let mac = auth::proof(
                key,
                !r.peer_is_connector,
                REMOTE_NODE_ID,
                &nonce,
                &r.local_nonce,
            );
            if !wrong_key && r.remote_nonce == Some(nonce) {
                self.sent_valid_proof = true;
            }
            self.send(
                kind,
                Channel::Control,
                &Message::AuthProof(AuthProof { mac }),
                0,
                split,
            );
        }
    }

    /// Takes everything the peer wants to send on `kind` and checks it.
    fn flush(&mut self, kind: ConnKind) {
        let now = self.now();
        let mut rounds = 0;
        while let Some(bytes) = self.peer.poll_transmit(kind, now) {
            let bytes = bytes.to_vec();
            self.peer.consume(kind, bytes.len());
            self.check_output(kind, &bytes);
            rounds += 1;
            if rounds > 64 {
                break; // a long batch: enough for one op
            }
        }
    }

    /// Everything the peer sends must decode.
    fn check_output(&mut self, kind: ConnKind, bytes: &[u8]) {
        let psk = self.psk;
        let r = &mut self.remotes[idx(kind)];
        if r.closed || !r.open {
            return;
        }
        let mut data = bytes;
        while !data.is_empty() {
            let buf = r.dec.read_buf();
            assert!(!buf.is_empty(), "peer output: decoder full without a frame");
            let n = buf.len().min(data.len());
            buf[..n].copy_from_slice(&data[..n]);
            r.dec.commit(n);
            data = &data[n..];
            loop {
                let frame = match r.dec.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => panic!("the peer sent an undecodable frame: {e}"),
                };
                assert_eq!(frame.header.seq, r.rx_seq + 1, "peer output sequence");
                r.rx_seq = frame.header.seq;
                let msg = frame
                    .message()
                    .unwrap_or_else(|e| panic!("the peer sent an invalid payload: {e}"));
                let switch = match msg {
                    MessageRef::Close(_) => {
                        r.closed = true;
                        return;
                    }
                    MessageRef::AuthProof(_) => psk,
                    _ => false,
                };
                if switch {
                    assert!(!r.rx_keyed, "second proof from the peer");
                    let rn = r.remote_nonce.expect("proof before a hello was accepted");
                    let key = frame_key(r, &rn);
                    r.dec.set_integrity(Integrity::Hmac(key));
                    r.rx_keyed = true;
                }
            }
        }
    }

    /// Handles the peer's events as the node does, then checks invariants.
    fn after_op(&mut self) {
        let now = self.now();
        while let Some(ev) = self.peer.poll_event() {
            if let Event::Close { conn, .. } = ev {
                // The driver flushes (the close frame) and drops the socket.
                self.flush(conn);
                self.remotes[idx(conn)].open = false;
                self.peer.handle_disconnected(conn, now);
            }
        }
        self.check_invariants();
    }

    fn check_invariants(&mut self) {
        let st = self.peer.state();
        for kind in ConnKind::ALL {
            let (rx, tx) = self.peer.buffered(kind);
            assert!(
                rx <= FUZZ_MAX_FRAME_LEN + hotsync_wire::READ_CHUNK,
                "receive buffer {rx} over bound"
            );
            assert!(
                tx <= TX_HIGH_WATER + 8 * FUZZ_MAX_FRAME_LEN,
                "send queue {tx} over bound"
            );
            if st.conn_phase[idx(kind)] == Phase::Up {
                self.ever_up = true;
                if self.psk {
                    assert!(
                        self.sent_valid_proof,
                        "a connection came up without a valid proof"
                    );
                }
            }
        }
        if !self.ever_up {
            assert_eq!(
                self.sink_calls.load(Ordering::Relaxed),
                0,
                "configuration applied before any handshake"
            );
            if !self.local_writes {
                assert_eq!(
                    self.table.digest(),
                    self.initial_digest,
                    "table changed before any handshake"
                );
            }
        }
    }
}

fn frame_key(r: &Remote, remote_nonce: &[u8; 32]) -> [u8; 32] {
    if r.peer_is_connector {
        auth::frame_key(FUZZ_PSK, &r.local_nonce, remote_nonce)
    } else {
        auth::frame_key(FUZZ_PSK, remote_nonce, &r.local_nonce)
    }
}

fn kind_of(b: u8) -> ConnKind {
    if b & 1 == 0 {
        ConnKind::Session
    } else {
        ConnKind::Config
    }
}

/// What one input reached (so the corpus replay can check the seeds cover
/// the interesting paths).
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// With a pre-shared key.
    pub psk: bool,
    /// Some connection completed its handshake.
    pub handshake_done: bool,
    /// The relationship was established at the end.
    pub established: bool,
    /// Connection errors counted.
    pub errors: u64,
    /// Records applied from the remote.
    pub records_rx: u64,
}

/// Runs one fuzz input. See the module docs.
pub fn proto_input(data: &[u8]) -> Outcome {
    let mut u = Unstructured::new(data);
    let Ok(opts) = u8::arbitrary(&mut u) else {
        return Outcome::default();
    };
    let psk = opts & 1 != 0;
    let cfg = ProtoConfig {
        node_id: LOCAL_NODE_ID,
        priority: 100,
        preempt_delay: (opts & 2 != 0).then(|| Duration::from_millis(300)),
        hello_interval: Duration::from_millis(100),
        dead_count: 3,
        psk: psk.then(|| FUZZ_PSK.to_vec()),
        auto_sync_on_establish: opts & 4 != 0,
        max_frame_len: FUZZ_MAX_FRAME_LEN,
        batch_records: 8,
        flush_interval: if opts & 8 != 0 {
            Duration::from_millis(5)
        } else {
            Duration::ZERO
        },
        tx_high_water: TX_HIGH_WATER,
        config_queue_limit: 16,
    };
    let mut tc = TableConfig::with_capacity(256);
    tc.shards = FUZZ_SHARDS;
    tc.journal_capacity = 8;
    let table = Arc::new(SessionTable::new(tc));
    // A few sessions of our own, so batches and resyncs have something.
    let mut g = SessionGenerator::new(u64::from(opts), 0, opts & 16 != 0, 1000);
    for _ in 0..(opts >> 5) * 4 {
        let (k, e) = g.next_session();
        let _ = table.upsert(&k, &e);
    }
    let sink_calls = Arc::new(AtomicU64::new(0));
    let base = Instant::now();
    let peer = Peer::new(
        cfg,
        table.clone(),
        Box::new(CountingSink(sink_calls.clone())),
        7,
        base,
    );
    let initial_digest = table.digest();
    let mut h = Harness {
        peer,
        table,
        sink_calls,
        psk,
        base,
        t_ms: 0,
        remotes: [Remote::new(), Remote::new()],
        nonce_counter: 0,
        ever_up: false,
        sent_valid_proof: false,
        local_writes: false,
        initial_digest,
        gen_seed: u64::from(opts) << 8,
    };
    for _ in 0..MAX_OPS {
        let Ok(op) = u8::arbitrary(&mut u) else { break };
        let kind = kind_of(op >> 4);
        let split = usize::from(op >> 5) * 7 + 1;
        match op & 15 {
            // Raw bytes: garbage, truncated frames, replays.
            0 | 1 => {
                let len = u.int_in_range(0..=512u32).unwrap_or(0) as usize;
                let bytes = u.bytes(len.min(u.len())).unwrap_or(&[]).to_vec();
                h.feed(kind, &bytes, split);
            }
            // A well-formed frame carrying an arbitrary message.
            2..=4 => {
                let Ok(msg) = Message::arbitrary(&mut u) else {
                    break;
                };
                let channel = if msg.kind().allowed_on(kind.channel()) {
                    kind.channel()
                } else {
                    Channel::Control
                };
                let skew = if op & 15 == 4 {
                    u64::from(u8::arbitrary(&mut u).unwrap_or(0))
                } else {
                    0
                };
                h.send(kind, channel, &msg, skew, split);
            }
            // A valid handshake (or one with the wrong key).
            5 => {
                let role = u8::arbitrary(&mut u).unwrap_or(0) % 4;
                let priority = u16::arbitrary(&mut u).unwrap_or(0);
                let wrong_key = op & 0x40 != 0 && psk;
                h.handshake(kind, role, priority, wrong_key, split);
            }
            // (Re)connect.
            6 => h.connect(kind, op & 0x20 != 0),
            7 => h.disconnect(kind),
            // Time passes.
            8 => {
                let dt = u.int_in_range(0..=1000u64).unwrap_or(0);
                h.t_ms += dt;
                let now = h.now();
                h.peer.handle_timeout(now);
            }
            // The socket takes what the peer queued.
            9 => h.flush(kind),
            // Control plane.
            10 => {
                let now = h.now();
                let _ = h.peer.start_session_sync(now);
            }
            11 => {
                let n = u.int_in_range(0..=40u32).unwrap_or(0);
                let items = (0..n)
                    .map(|i| ("vsys".repeat(i as usize % 3), format!("item {i}")))
                    .collect();
                let now = h.now();
                let _ = h.peer.start_config_sync(items, now);
            }
            12 => {
                let _ = h.peer.queue_config_op(op >> 6, "", "op");
            }
            // Data plane.
            13 | 14 => {
                h.local_writes = true;
                h.gen_seed += 1;
                let mut g = SessionGenerator::new(h.gen_seed, 0, false, 1000);
                let n = u.int_in_range(0..=64u32).unwrap_or(0);
                for i in 0..n {
                    let (k, e) = g.next_session();
                    if op & 15 == 14 && i % 3 == 0 {
                        h.table.remove(&k);
                    } else {
                        let _ = h.table.upsert(&k, &e);
                    }
                }
                let now = h.now();
                h.peer.handle_timeout(now);
            }
            _ => {
                let now = h.now();
                let _ = h.peer.wants_transmit(kind);
                let _ = h.peer.poll_timeout();
                let _ = h.peer.jobs();
                h.peer.handle_timeout(now);
            }
        }
        h.after_op();
    }
    // Let the peer finish: flush, then run out every timer.
    for kind in ConnKind::ALL {
        h.flush(kind);
    }
    h.after_op();
    h.t_ms += 10_000;
    let now = h.now();
    h.peer.handle_timeout(now);
    h.after_op();
    for kind in ConnKind::ALL {
        h.flush(kind);
    }
    h.after_op();
    let st = h.peer.state();
    Outcome {
        psk,
        handshake_done: h.ever_up,
        established: st.established,
        errors: st.stats.error_total(),
        records_rx: st.stats.records_rx,
    }
}
