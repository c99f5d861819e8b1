//! One TCP connection's protocol state: handshake phase, sequence numbers,
//! acknowledgements, and the outgoing byte queue.

use crate::error::ProtoError;
use crate::event::PeerInfo;
use crate::stats::Stats;
use hotsync_wire::{Channel, FrameEncoder, Integrity, WireMessage};
use std::ops::{Index, IndexMut};
use std::time::Instant;

/// Which of the two connections between the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnKind {
    /// Heartbeats, acknowledgements and session records: the urgent one.
    Session,
    /// Configuration batches and changes: low priority, its own TCP
    /// connection so it never delays the session channel.
    Config,
}

impl ConnKind {
    /// Both kinds, session first (the order the driver services them in).
    pub const ALL: [ConnKind; 2] = [ConnKind::Session, ConnKind::Config];

    /// The wire channel of this connection's data frames.
    pub fn channel(self) -> Channel {
        match self {
            ConnKind::Session => Channel::Session,
            ConnKind::Config => Channel::Config,
        }
    }

    /// Name for logs and displays.
    pub fn name(self) -> &'static str {
        match self {
            ConnKind::Session => "session",
            ConnKind::Config => "config",
        }
    }

    pub(crate) fn from_wire(v: u8) -> Option<ConnKind> {
        match Channel::from_u8(v)? {
            Channel::Session => Some(ConnKind::Session),
            Channel::Config => Some(ConnKind::Config),
            _ => None,
        }
    }
}

/// One value per connection, addressed by [`ConnKind`]: no slot numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerConn<T> {
    /// The session connection's.
    pub session: T,
    /// The config connection's.
    pub config: T,
}

impl<T> PerConn<T> {
    /// Builds both values from their kind.
    pub fn from_fn(mut f: impl FnMut(ConnKind) -> T) -> Self {
        Self {
            session: f(ConnKind::Session),
            config: f(ConnKind::Config),
        }
    }

    /// Both values with their kind, session first.
    pub fn iter(&self) -> impl Iterator<Item = (ConnKind, &T)> {
        [
            (ConnKind::Session, &self.session),
            (ConnKind::Config, &self.config),
        ]
        .into_iter()
    }

    /// Maps both values.
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> PerConn<U> {
        PerConn {
            session: f(&self.session),
            config: f(&self.config),
        }
    }
}

impl<T> Index<ConnKind> for PerConn<T> {
    type Output = T;
    fn index(&self, kind: ConnKind) -> &T {
        match kind {
            ConnKind::Session => &self.session,
            ConnKind::Config => &self.config,
        }
    }
}

impl<T> IndexMut<ConnKind> for PerConn<T> {
    fn index_mut(&mut self, kind: ConnKind) -> &mut T {
        match kind {
            ConnKind::Session => &mut self.session,
            ConnKind::Config => &mut self.config,
        }
    }
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No transport.
    Down,
    /// Transport up, waiting for the peer's hello.
    AwaitHello,
    /// Hello exchanged, waiting for the peer's key proof.
    AwaitAuth,
    /// Handshake complete.
    Up,
    /// A fatal error: waiting for the driver to close the transport.
    Closing,
}

impl Phase {
    /// Name for displays.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Down => "down",
            Phase::AwaitHello => "hello",
            Phase::AwaitAuth => "authenticating",
            Phase::Up => "up",
            Phase::Closing => "closing",
        }
    }
}

/// Frames and bytes a connection moved before its handshake completed.
/// They join the node's counters only when it completes: a connection that
/// never does (a stranger, a probe) moves no shared counter but its error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HandshakeIo {
    pub frames_rx: u64,
    pub bytes_rx: u64,
    pub frames_tx: u64,
    pub bytes_tx: u64,
}

impl HandshakeIo {
    /// Adds these counts to the node's (the handshake completed).
    pub fn fold_into(self, stats: &mut Stats) {
        stats.frames_rx += self.frames_rx;
        stats.bytes_rx += self.bytes_rx;
        stats.frames_tx += self.frames_tx;
        stats.bytes_tx += self.bytes_tx;
    }
}

pub(crate) struct Conn {
    pub kind: ConnKind,
    pub phase: Phase,
    pub is_connector: bool,
    pub nonce: [u8; 32],
    pub peer_nonce: [u8; 32],
    /// What the remote's hello claimed on this connection. It becomes the
    /// node's view of its peer only once this connection completes its
    /// handshake (authenticated, with a key): a stranger's hello on the
    /// other channel changes nothing shared.
    pub claim: Option<PeerInfo>,
    pub encoder: FrameEncoder,
    /// Frames waiting for the socket, from `out_pos`.
    pub out: Vec<u8>,
    pub out_pos: usize,
    /// Last sequence number sent.
    pub tx_seq: u64,
    /// Last sequence number received.
    pub rx_seq: u64,
    /// Highest of our sequence numbers the peer acknowledged.
    pub peer_acked: u64,
    /// Data arrived that we have not acknowledged yet.
    pub ack_due: bool,
    /// One data frame being timed until its acknowledgement: (seq, sent).
    pub rtt_probe: Option<(u64, Instant)>,
    pub last_rx: Instant,
    pub last_tx: Instant,
    pub opened: Instant,
    /// What moved before the handshake completed (see [`HandshakeIo`]).
    pub handshake_io: HandshakeIo,
}

impl Conn {
    pub fn new(kind: ConnKind, max_frame_len: usize, now: Instant) -> Self {
        Self {
            kind,
            phase: Phase::Down,
            is_connector: false,
            nonce: [0; 32],
            peer_nonce: [0; 32],
            claim: None,
            encoder: FrameEncoder::new(max_frame_len),
            out: Vec::new(),
            out_pos: 0,
            tx_seq: 0,
            rx_seq: 0,
            peer_acked: 0,
            ack_due: false,
            rtt_probe: None,
            last_rx: now,
            last_tx: now,
            opened: now,
            handshake_io: HandshakeIo::default(),
        }
    }

    /// Resets for a new transport.
    pub fn open(&mut self, is_connector: bool, nonce: [u8; 32], now: Instant) {
        self.phase = Phase::AwaitHello;
        self.is_connector = is_connector;
        self.nonce = nonce;
        self.peer_nonce = [0; 32];
        self.claim = None;
        self.encoder.set_integrity(Integrity::Crc32c);
        self.out.clear();
        self.out_pos = 0;
        self.tx_seq = 0;
        self.rx_seq = 0;
        self.peer_acked = 0;
        self.ack_due = false;
        self.rtt_probe = None;
        self.last_rx = now;
        self.last_tx = now;
        self.opened = now;
        self.handshake_io = HandshakeIo::default();
    }

    pub fn close(&mut self) {
        self.phase = Phase::Down;
        self.claim = None;
        self.out.clear();
        self.out_pos = 0;
    }

    pub fn is_up(&self) -> bool {
        self.phase == Phase::Up
    }

    /// Counts `n` bytes received: the node's once up, the connection's own
    /// before.
    pub fn count_rx_bytes(&mut self, n: usize, stats: &mut Stats) {
        if self.is_up() {
            stats.bytes_rx += n as u64;
        } else {
            self.handshake_io.bytes_rx += n as u64;
        }
    }

    /// Counts one frame received (as [`Self::count_rx_bytes`]).
    pub fn count_rx_frame(&mut self, stats: &mut Stats) {
        if self.is_up() {
            stats.frames_rx += 1;
        } else {
            self.handshake_io.frames_rx += 1;
        }
    }

    /// Whether the phase allows frames to be processed.
    pub fn is_open(&self) -> bool {
        !matches!(self.phase, Phase::Down | Phase::Closing)
    }

    /// Whether fewer than `limit` bytes are queued.
    pub fn has_room(&self, limit: usize) -> bool {
        self.pending() < limit
    }

    /// Bytes queued and not yet taken by the socket.
    pub fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Encodes `msg` as the next frame; returns its sequence number.
    pub fn send<M: WireMessage>(
        &mut self,
        channel: Channel,
        msg: &M,
        stats: &mut Stats,
        now: Instant,
    ) -> Result<u64, ProtoError> {
        // Reclaim what the socket took, keeping the queue's length a
        // multiple of 16 (frames stay aligned relative to the buffer).
        if self.out_pos >= 64 * 1024 && self.out_pos * 2 >= self.out.len() {
            let cut = self.out_pos & !15;
            self.out.drain(..cut);
            self.out_pos -= cut;
        }
        let seq = self.tx_seq + 1;
        let n = self.encoder.encode(channel, seq, msg, &mut self.out)?;
        self.tx_seq = seq;
        self.last_tx = now;
        // Data frames are acknowledged once applied (control frames are
        // not acknowledged): time one at a time.
        if channel != Channel::Control && self.rtt_probe.is_none() {
            self.rtt_probe = Some((seq, now));
        }
        if self.is_up() {
            stats.frames_tx += 1;
            stats.bytes_tx += n as u64;
        } else {
            self.handshake_io.frames_tx += 1;
            self.handshake_io.bytes_tx += n as u64;
        }
        Ok(seq)
    }

    /// The peer acknowledged up to `seq` at `now`: the time the timed
    /// frame took, if this acknowledges it.
    pub fn rtt_sample(&mut self, seq: u64, now: Instant) -> Option<std::time::Duration> {
        let (probe, sent) = self.rtt_probe?;
        (seq >= probe).then(|| {
            self.rtt_probe = None;
            now.saturating_duration_since(sent)
        })
    }

    /// The queued bytes.
    pub fn transmit(&self) -> Option<&[u8]> {
        (self.pending() > 0).then(|| &self.out[self.out_pos..])
    }

    /// The socket took `n` bytes.
    pub fn consume(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
    }
}
