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
//! The input starts with two option bytes (see [`Options`]); the second
//! turns on frame encryption (`hrp encryption-key`) and the link attacks
//! that only make sense against it: replaying the remote's last frame,
//! sending a frame with one bit flipped, reflecting the peer's own frame
//! back to it. With encryption, the remote encrypts everything after its
//! proof (with the right key, or a wrong one when the handshake op asks),
//! so the fuzzer's frames reach the replay, order and tag checks and, when
//! well formed, the message decoders behind them.
//!
//! The harness plays the remote byte by byte rather than through
//! [`crate::testing::Pair`]: a `Pair` holds two honest peers, and what is
//! fuzzed here is a dishonest one (frames with chosen sequence numbers,
//! keys and bits).
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
//! - an error on a connection leaves it closing (never up);
//! - with encryption: everything the peer sends after its proof is
//!   encrypted under the right key (no downgrade), and a remote that never
//!   completed a handshake with the right encryption key changed nothing.
//!
//! [`Options`]: self#options

mod remote;

use crate::config_queue::{ConfigSink, ItemOutcome};
use crate::conn::{ConnKind, PerConn, Phase};
use crate::event::Action;
use crate::peer::Peer;
use crate::settings::ProtoConfig;
use arbitrary::{Arbitrary, Unstructured};
use hotsync_table::{SessionGenerator, SessionTable, TableConfig};
use hotsync_wire::{Channel, FrameDecoder, FrameEncoder, Message};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Frame bound of the fuzzed peer: small, so "too large" is reachable.
pub const FUZZ_MAX_FRAME_LEN: usize = 64 << 10;
/// The pre-shared key, when the input asks for one.
pub const FUZZ_PSK: &[u8] = b"fuzz-psk";
/// The encryption key, when the input asks for one (with the pre-shared
/// key: encryption requires it).
pub const FUZZ_ENCRYPTION_KEY: &[u8] = b"fuzz-encryption-key";
/// The encryption key of a remote that does not have the right one.
const WRONG_ENCRYPTION_KEY: &[u8] = b"not-the-encryption-key";
/// Second option byte: the peer encrypts (`hrp encryption-key`).
const OPT2_ENCRYPT: u8 = 1;
/// Second option byte: operation 15 runs the link attacks (replay, bit
/// flip, reflection) instead of the idle poll.
const OPT2_LINK_ATTACKS: u8 = 2;
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
    /// The remote's handshake on this connection used a wrong encryption
    /// key (its frames after the proof cannot be opened).
    wrong_encryption_key: bool,
    /// The last frame the remote sent, as sent (for replays).
    last_sent: Vec<u8>,
    /// The first frame of the peer's last output (for reflections).
    last_received: Vec<u8>,
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
            wrong_encryption_key: false,
            last_sent: Vec::new(),
            last_received: Vec::new(),
        }
    }
}

struct Harness {
    peer: Peer,
    table: Arc<SessionTable>,
    sink_calls: Arc<AtomicU64>,
    psk: bool,
    /// The peer encrypts (a pre-shared key and an encryption key).
    encrypt: bool,
    /// Operation 15 runs the link attacks.
    link_attacks: bool,
    base: Instant,
    t_ms: u64,
    remotes: PerConn<Remote>,
    nonce_counter: u8,
    /// Some connection reached `Up` at some point.
    ever_up: bool,
    /// The remote sent a proof made with the right key.
    sent_valid_proof: bool,
    /// The remote completed a handshake whose frames the peer can open
    /// (the right encryption key, or no encryption).
    sent_openable_handshake: bool,
    /// Local data-plane writes happened (the table may change legitimately).
    local_writes: bool,
    initial_digest: hotsync_table::TableDigest,
    gen_seed: u64,
}

impl Harness {
    fn now(&self) -> Instant {
        self.base + Duration::from_millis(self.t_ms)
    }

    fn nonce(&mut self) -> [u8; 32] {
        self.nonce_counter = self.nonce_counter.wrapping_add(1);
        [self.nonce_counter; 32]
    }

    /// Handles the peer's events as the node does, then checks invariants.
    fn after_op(&mut self) {
        let now = self.now();
        while self.peer.poll_event().is_some() {}
        while let Some(action) = self.peer.poll_action() {
            if let Action::Close { conn, .. } = action {
                // The driver flushes (the close frame) and drops the socket.
                self.flush(conn);
                self.remotes[conn].open = false;
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
            if st.conn_phase[kind] == Phase::Up {
                self.ever_up = true;
                if self.psk {
                    assert!(
                        self.sent_valid_proof,
                        "a connection came up without a valid proof"
                    );
                }
            }
        }
        // Before a connection came up, or (encrypted) before the remote
        // completed a handshake with the right encryption key, nothing the
        // remote sent can have been applied.
        if !self.ever_up || !self.sent_openable_handshake {
            assert_eq!(
                self.sink_calls.load(Ordering::Relaxed),
                0,
                "configuration applied before any (openable) handshake"
            );
            if !self.local_writes {
                assert_eq!(
                    self.table.digest(),
                    self.initial_digest,
                    "table changed before any (openable) handshake"
                );
            }
        }
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
    /// With an encryption key too: every frame after the handshake is
    /// encrypted.
    pub encrypted: bool,
    /// Some connection completed its handshake.
    pub handshake_done: bool,
    /// The relationship was established at the end.
    pub established: bool,
    /// Connection errors counted.
    pub errors: u64,
    /// Records applied from the remote.
    pub records_rx: u64,
    /// The kinds of the errors counted (`ProtoError::kind_name`).
    pub error_kinds: Vec<&'static str>,
}

/// The two option bytes that start an input.
///
/// First byte: bit 0 pre-shared key, bit 1 preemption, bit 2 auto-sync on
/// establish, bit 3 flush interval, bit 4 external role control, bits 5-7
/// sessions pre-filled (4 each). Second byte: bit 0 encryption (with bit 0
/// of the first), bit 1 link attacks (operation 15).
#[derive(Clone, Copy, Debug)]
pub struct Options(pub u8, pub u8);

/// Runs one fuzz input. See the module docs.
pub fn proto_input(data: &[u8]) -> Outcome {
    let mut u = Unstructured::new(data);
    let (Ok(opts), Ok(opts2)) = (u8::arbitrary(&mut u), u8::arbitrary(&mut u)) else {
        return Outcome::default();
    };
    let mut h = Harness::new(Options(opts, opts2));
    for _ in 0..MAX_OPS {
        let Ok(op) = u8::arbitrary(&mut u) else { break };
        if !h.run_op(op, &mut u) {
            break;
        }
        h.after_op();
    }
    h.finish()
}

impl Harness {
    fn new(Options(opts, opts2): Options) -> Self {
        let psk = opts & 1 != 0;
        let encrypt = psk && opts2 & OPT2_ENCRYPT != 0;
        let cfg = ProtoConfig {
            node_id: LOCAL_NODE_ID,
            priority: 100,
            preempt_delay: (opts & 2 != 0).then(|| Duration::from_millis(300)),
            hello_interval: Duration::from_millis(100),
            dead_count: 3,
            psk: psk.then(|| FUZZ_PSK.to_vec()),
            encryption_key: encrypt.then(|| FUZZ_ENCRYPTION_KEY.to_vec()),
            auto_sync_on_establish: opts & 4 != 0,
            external_role: opts & 16 != 0,
            max_frame_len: FUZZ_MAX_FRAME_LEN,
            batch_records: 8,
            parallel_apply_min_records: 0,
            flush_interval: Duration::from_millis(if opts & 8 != 0 { 5 } else { 0 }),
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
        let sink = Box::new(CountingSink(sink_calls.clone()));
        let peer = Peer::new(cfg, table.clone(), sink, 7, base);
        Self {
            peer,
            initial_digest: table.digest(),
            table,
            sink_calls,
            psk,
            encrypt,
            link_attacks: opts2 & OPT2_LINK_ATTACKS != 0,
            base,
            t_ms: 0,
            remotes: PerConn::from_fn(|_| Remote::new()),
            nonce_counter: 0,
            ever_up: false,
            sent_valid_proof: false,
            sent_openable_handshake: !encrypt,
            local_writes: false,
            gen_seed: u64::from(opts) << 8,
        }
    }

    /// One operation of the input; false when the input ran out.
    fn run_op(&mut self, op: u8, u: &mut Unstructured<'_>) -> bool {
        let kind = kind_of(op >> 4);
        let split = usize::from(op >> 5) * 7 + 1;
        let now = self.now();
        match op & 15 {
            // Raw bytes: garbage, truncated frames, replays.
            0 | 1 => {
                let len = u.int_in_range(0..=512u32).unwrap_or(0) as usize;
                let bytes = u.bytes(len.min(u.len())).unwrap_or(&[]).to_vec();
                self.feed(kind, &bytes, split);
            }
            // A well-formed frame carrying an arbitrary message.
            2..=4 => {
                let Ok(msg) = Message::arbitrary(u) else {
                    return false;
                };
                let channel = if msg.kind().allowed_on(kind.channel()) {
                    kind.channel()
                } else {
                    Channel::Control
                };
                let skew = if op & 15 == 4 {
                    u64::from(u8::arbitrary(u).unwrap_or(0))
                } else {
                    0
                };
                self.send(kind, channel, &msg, skew, split);
            }
            // A valid handshake (or one with the wrong key).
            5 => {
                let role = u8::arbitrary(u).unwrap_or(0) % 4;
                let priority = u16::arbitrary(u).unwrap_or(0);
                let wrong_key = op & 0x40 != 0 && self.psk;
                let wrong_encryption_key = op & 0x80 != 0 && self.encrypt;
                self.handshake(kind, role, priority, wrong_key, wrong_encryption_key, split);
            }
            // (Re)connect.
            6 => self.connect(kind, op & 0x20 != 0),
            7 => self.disconnect(kind),
            // Time passes.
            8 => {
                self.t_ms += u.int_in_range(0..=1000u64).unwrap_or(0);
                let now = self.now();
                self.peer.handle_timeout(now);
            }
            // The socket takes what the peer queued.
            9 => self.flush(kind),
            // Control plane.
            10 => {
                let _ = self.peer.start_session_sync(now);
            }
            11 => {
                let n = u.int_in_range(0..=40u32).unwrap_or(0);
                let items: crate::ConfigItems = (0..n)
                    .map(|i| ("vsys".repeat(i as usize % 3), format!("item {i}")))
                    .collect();
                let _ = self.peer.start_config_sync(items, now);
            }
            12 => {
                let _ = self.peer.queue_config_op(op >> 6, "", "op");
            }
            15 if self.link_attacks && op & 0x60 != 0 => {
                return self.link_attack(kind, (op >> 5) & 3, split, u);
            }
            // Data plane.
            13 | 14 => self.write_locally(op & 15 == 14, u),
            _ => {
                let _ = self.peer.wants_transmit(kind);
                let _ = self.peer.poll_timeout();
                let _ = self.peer.jobs();
                self.peer.handle_timeout(now);
            }
        }
        true
    }

    fn write_locally(&mut self, removals: bool, u: &mut Unstructured<'_>) {
        self.local_writes = true;
        self.gen_seed += 1;
        let mut g = SessionGenerator::new(self.gen_seed, 0, false, 1000);
        let n = u.int_in_range(0..=64u32).unwrap_or(0);
        for i in 0..n {
            let (k, e) = g.next_session();
            if removals && i % 3 == 0 {
                self.table.remove(&k);
            } else {
                let _ = self.table.upsert(&k, &e);
            }
        }
        let now = self.now();
        self.peer.handle_timeout(now);
    }

    /// Lets the peer finish: flush, then run out every timer.
    fn finish(mut self) -> Outcome {
        for kind in ConnKind::ALL {
            self.flush(kind);
        }
        self.after_op();
        self.t_ms += 10_000;
        let now = self.now();
        self.peer.handle_timeout(now);
        self.after_op();
        for kind in ConnKind::ALL {
            self.flush(kind);
        }
        self.after_op();
        let st = self.peer.state();
        Outcome {
            psk: self.psk,
            encrypted: self.encrypt,
            handshake_done: self.ever_up,
            established: st.established,
            errors: st.stats.error_total(),
            records_rx: st.stats.records_rx,
            error_kinds: st.stats.errors.keys().copied().collect(),
        }
    }
}
