//! Two nodes, a clock that moves only when told, and one [`Link`] per
//! connection.

use super::link::{Link, Side};
use super::node::Node;
use crate::conn::{ConnKind, PerConn};
use crate::event::Action;
use crate::settings::ProtoConfig;
use hotsync_table::TableConfig;
use std::time::{Duration, Instant};

/// The pre-shared key of a pair built `with_key`.
pub const TEST_PSK: &[u8] = b"pair-test-key";

/// Settings of a pair.
#[derive(Clone, Debug)]
pub struct PairConfig {
    /// Node A (it dials).
    pub a: ProtoConfig,
    /// Node B.
    pub b: ProtoConfig,
    /// A's table.
    pub table_a: TableConfig,
    /// B's table.
    pub table_b: TableConfig,
    /// One-way latency of both links.
    pub latency: Duration,
    /// Time one [`Pair::step`] advances.
    pub tick: Duration,
    /// Bytes each node may put on each link per [`Pair::transmit`]: the
    /// link's bandwidth per tick.
    pub bytes_per_tick: usize,
    /// `None`: both nodes apply configuration inline, as it arrives.
    /// `Some(n)`: their drivers apply it, `n` pieces of work per node per
    /// tick, like a slow thread of their own (0: stalled; change it with
    /// [`Pair::set_config_per_tick`]).
    pub config_per_tick: Option<usize>,
}

/// Small, fast settings: 100 ms heartbeats, dead after 300 ms, no
/// coalescing window, 16 shards, no key. A has priority 200 (it becomes
/// active), B 100.
impl Default for PairConfig {
    fn default() -> Self {
        let proto = |node_id, priority| ProtoConfig {
            node_id,
            priority,
            hello_interval: Duration::from_millis(100),
            dead_count: 3,
            batch_records: 64,
            flush_interval: Duration::ZERO,
            tx_high_water: 64 << 10,
            ..ProtoConfig::default()
        };
        let table = TableConfig {
            shards: 16,
            max_sessions: 4096,
            journal_capacity: 1024,
        };
        Self {
            a: proto(1, 200),
            b: proto(2, 100),
            table_a: table.clone(),
            table_b: table,
            latency: Duration::from_micros(200),
            tick: Duration::from_micros(500),
            bytes_per_tick: 32 << 10,
            config_per_tick: None,
        }
    }
}

impl PairConfig {
    /// Both nodes with [`TEST_PSK`].
    pub fn with_key(mut self) -> Self {
        self.a.psk = Some(TEST_PSK.to_vec());
        self.b.psk = Some(TEST_PSK.to_vec());
        self
    }
}

/// Two nodes, a clock and two links.
pub struct Pair {
    /// Node A.
    pub a: Node,
    /// Node B.
    pub b: Node,
    /// The current time.
    pub now: Instant,
    cfg: PairConfig,
    links: PerConn<Link>,
    nonce: u8,
    /// Connections reported closed by either node, in order.
    pub closes: Vec<(Side, ConnKind, String)>,
}

impl Pair {
    /// A pair with nothing connected.
    pub fn new(cfg: PairConfig) -> Self {
        let now = Instant::now();
        let node = match cfg.config_per_tick {
            None => Node::new,
            Some(_) => Node::with_config_in_driver,
        };
        Self {
            a: node(cfg.a.clone(), cfg.table_a.clone(), 11, now),
            b: node(cfg.b.clone(), cfg.table_b.clone(), 22, now),
            now,
            cfg,
            links: PerConn::default(),
            nonce: 0,
            closes: Vec::new(),
        }
    }

    /// The node on `side`.
    pub fn node(&mut self, side: Side) -> &mut Node {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// A fresh nonce, never repeated within the pair.
    pub fn nonce(&mut self) -> [u8; 32] {
        self.nonce = self.nonce.wrapping_add(1);
        let mut n = [self.nonce; 32];
        n[31] = 0xa5;
        n
    }

    /// Opens the transport of `kind`: A dials, B accepts.
    pub fn connect(&mut self, kind: ConnKind) {
        let (na, nb) = (self.nonce(), self.nonce());
        self.links[kind] = Link::open(self.cfg.latency);
        let now = self.now;
        self.a.peer.handle_connected(kind, true, na, now);
        self.b.peer.handle_connected(kind, false, nb, now);
    }

    /// Both connections, then steps until both nodes are established (at
    /// most a simulated second). Panics if they do not establish.
    pub fn establish(&mut self) {
        for kind in ConnKind::ALL {
            self.connect(kind);
        }
        let ok = self.run_until(Duration::from_secs(1), |p| {
            p.a.peer.is_established()
                && p.b.peer.is_established()
                && p.a.peer.state().conn_phase.config == crate::Phase::Up
                && p.b.peer.state().conn_phase.config == crate::Phase::Up
        });
        assert!(ok, "the pair did not establish");
    }

    /// Cuts `kind`: bytes in flight are lost, both nodes see the transport
    /// go.
    pub fn cut(&mut self, kind: ConnKind) {
        self.links[kind] = Link::default();
        let now = self.now;
        self.a.peer.handle_disconnected(kind, now);
        self.b.peer.handle_disconnected(kind, now);
    }

    /// Pauses (or resumes) delivery on `kind`: bytes wait in the link.
    pub fn hold(&mut self, kind: ConnKind, held: bool) {
        self.links[kind].held = held;
    }

    /// Configuration work each driver applies per tick from now on (see
    /// [`PairConfig::config_per_tick`]; no effect on inline nodes).
    pub fn set_config_per_tick(&mut self, n: usize) {
        self.cfg.config_per_tick = Some(n);
    }

    /// Whether `kind`'s link is up.
    pub fn is_up(&self, kind: ConnKind) -> bool {
        self.links[kind].up
    }

    /// Moves what `from` has queued on `kind` into the link, up to the
    /// link's bandwidth per tick, as one segment.
    pub fn transmit(&mut self, from: Side, kind: ConnKind) {
        if !self.links[kind].up {
            return;
        }
        let (now, budget) = (self.now, self.cfg.bytes_per_tick);
        let node = match from {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        };
        let mut out = Vec::new();
        while out.len() < budget {
            let Some(bytes) = node.peer.poll_transmit(kind, now) else {
                break;
            };
            let n = bytes.len().min(budget - out.len());
            out.extend_from_slice(&bytes[..n]);
            node.peer.consume(kind, n);
        }
        if !out.is_empty() {
            self.links[kind].send(from, now, out);
        }
    }

    /// Lets `f` rewrite the bytes `from` has in flight on `kind` (one entry
    /// per transmit), as a man in the middle would: corrupt, drop, repeat
    /// or reorder them. Hold the link first to catch bytes before delivery.
    pub fn tamper(&mut self, from: Side, kind: ConnKind, f: impl FnOnce(&mut Vec<Vec<u8>>)) {
        let q = self.links[kind].in_flight(from);
        let at = q.front().map(|(at, _)| *at);
        let mut chunks: Vec<Vec<u8>> = q.drain(..).map(|(_, b)| b).collect();
        f(&mut chunks);
        let at = at.unwrap_or(self.now);
        q.extend(chunks.into_iter().map(|b| (at, b)));
    }

    /// Sends the bytes `from` has in flight on `kind` back to it, as a
    /// reflecting attacker would.
    pub fn reflect(&mut self, from: Side, kind: ConnKind) {
        let link = &mut self.links[kind];
        let out: Vec<_> = link.in_flight(from).drain(..).collect();
        link.in_flight(from.other()).extend(out);
    }

    /// Delivers the bytes that arrived by now on `kind` (unless held).
    pub fn deliver(&mut self, kind: ConnKind) {
        let now = self.now;
        for to in Side::BOTH {
            // A driver reads no more while the node says so (its
            // configuration backlog is full): bytes wait in the link.
            while self.links[kind].arrived(to, now) && self.node(to).peer.may_read(kind) {
                let Some(bytes) = self.links[kind].receive(to, now) else {
                    break;
                };
                // An error is reported as a close event, handled in `step`.
                let _ = self.node(to).peer.handle_bytes(kind, &bytes, now);
            }
        }
    }

    /// Timers, events and actions of both nodes; a close action closes the
    /// link as a driver would: flush the close frame, then drop the transport.
    pub fn poll(&mut self) {
        let now = self.now;
        for side in Side::BOTH {
            self.node(side).peer.handle_timeout(now);
            self.take_events(side, None);
        }
    }

    /// Records `side`'s events and actions; a close action closes its
    /// link, except one for `ended`, a connection already going down (a
    /// close it raised while that link delivered its last bytes must not
    /// cut the next connection).
    fn take_events(&mut self, side: Side, ended: Option<ConnKind>) {
        loop {
            while let Some(ev) = self.node(side).peer.poll_event() {
                self.node(side).events.push(ev);
            }
            let Some(action) = self.node(side).peer.poll_action() else {
                break;
            };
            let close = match &action {
                Action::Close { conn, reason } => Some((*conn, reason.clone())),
                Action::StartConfigSync => None,
            };
            self.node(side).actions.push(action);
            if let Some((conn, reason)) = close {
                self.closes.push((side, conn, reason));
                if Some(conn) != ended {
                    self.close_link(side, conn);
                }
            }
        }
    }

    /// `side` closes `kind`: what it queued still reaches the other side,
    /// then both see the transport go.
    fn close_link(&mut self, side: Side, kind: ConnKind) {
        self.transmit(side, kind);
        let mut link = std::mem::take(&mut self.links[kind]);
        let now = self.now;
        if link.up {
            for (_, bytes) in link.in_flight(Side::A).drain(..) {
                let _ = self.b.peer.handle_bytes(kind, &bytes, now);
            }
            for (_, bytes) in link.in_flight(Side::B).drain(..) {
                let _ = self.a.peer.handle_bytes(kind, &bytes, now);
            }
        }
        self.cut(kind);
        // What that delivery raised (the peer's answer to our close frame)
        // concerns this connection, not one opened before the next step.
        self.take_events(Side::A, Some(kind));
        self.take_events(Side::B, Some(kind));
    }

    /// One tick: deliver, apply configuration (drivers that do), run
    /// timers and events, transmit.
    pub fn step(&mut self) {
        self.now += self.cfg.tick;
        for kind in ConnKind::ALL {
            self.deliver(kind);
        }
        if let Some(n) = self.cfg.config_per_tick {
            let now = self.now;
            self.a.apply_config(n, now);
            self.b.apply_config(n, now);
        }
        self.poll();
        for kind in ConnKind::ALL {
            self.transmit(Side::A, kind);
            self.transmit(Side::B, kind);
        }
    }

    /// Steps for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    /// Steps until `done` holds (true) or `limit` of simulated time passed
    /// (false).
    pub fn run_until(&mut self, limit: Duration, done: impl Fn(&Pair) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("a", &self.a)
            .field("b", &self.b)
            .field("closes", &self.closes)
            .finish_non_exhaustive()
    }
}
