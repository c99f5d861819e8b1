//! The deterministic simulator's network: the two [`Node`]s of a pair on a
//! microsecond clock, one [`Link`] per connection with a latency drawn at
//! each dial, bytes delivered in random splits, a bounded bandwidth per
//! step, and the faults a schedule injects (`faults.rs`: cuts and
//! partitions with a redial hold, crashes and restarts with the table kept
//! or lost, pauses, mangled segments, slow receivers, strangers).
//!
//! Everything random comes from two [`Rng`]s seeded from the run's seed,
//! drawn in a fixed order, so a seed replays the same run. What a test
//! checks (the data plane's writes, the roles, the order of records) it
//! does in an [`Observer`], called at fixed points of each [`Sim::step`].

mod faults;

use super::link::{Link, Mangle, Side};
use super::node::Node;
use super::rng::Rng;
use crate::conn::ConnKind;
use crate::event::{Action, Event};
use crate::role::Role;
use crate::settings::ProtoConfig;
use hotsync_table::{SessionTable, TableConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shortest one-way latency drawn at a dial, in µs.
const LATENCY_MIN_US: u64 = 100;
/// Latencies are drawn from `LATENCY_MIN_US` to this much more, in µs.
const LATENCY_SPREAD_US: u64 = 3000;
/// Bytes each node may send per connection per step: the bandwidth.
const BANDWIDTH: usize = 256 << 10;
/// A driver applies fewer than this many pieces of configuration work
/// per step (drawn each step, as a thread of its own would).
const CONFIG_WORK_BELOW: u64 = 4;
/// A connection closed by a node (an error, a close frame) is redialled
/// after this long, in µs.
const REDIAL_US: u64 = 1000;

/// What the two nodes are.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Node 0's and node 1's settings (node 0 dials).
    pub nodes: [ProtoConfig; 2],
    /// Both tables (a restarted node that lost its table gets a new one).
    pub table: TableConfig,
    /// The drivers apply configuration (a few pieces of work per step)
    /// rather than the peers inline.
    pub config_in_driver: bool,
}

/// What a test watches and does at fixed points of [`Sim::step`]. Every
/// method does nothing by default.
pub trait Observer {
    /// Node `ni` came back from a crash, its table kept or a new one.
    fn restarted(&mut self, _sim: &Sim, _ni: usize, _table_kept: bool) {}
    /// A segment of `kind` was delivered to node `to`.
    fn delivered(&mut self, _sim: &Sim, _kind: ConnKind, _to: usize) {}
    /// After delivery and configuration work, before timers: the data
    /// plane's turn to write.
    fn data_plane(&mut self, _sim: &mut Sim) {}
    /// Node `ni` reported `ev` (closes and role changes are logged and
    /// closes acted on already).
    fn event(&mut self, _sim: &Sim, _ni: usize, _ev: &Event) {}
    /// Node `ni` ran its timers and its events were handled.
    fn polled(&mut self, _sim: &Sim, _ni: usize) {}
    /// An armed fault hit a segment.
    fn mangled(&mut self, _m: Mangle) {}
    /// The step is over.
    fn stepped(&mut self, _sim: &Sim) {}
}

/// A crashed node: down until `until`, then restarted.
#[derive(Clone, Copy, Debug)]
struct Down {
    until: u64,
    keep_table: bool,
    seed: u64,
}

/// One connection as the simulator drives it.
#[derive(Debug, Default)]
struct Channel {
    link: Link,
    /// Not redialled before this time (after a cut or a partition), µs.
    down_until: u64,
    /// A slow receiver: bytes per step each way, and until when (µs).
    slow: Option<(usize, u64)>,
}

/// Two nodes, their links and the clock.
pub struct Sim {
    cfg: SimConfig,
    /// Network randomness: latencies, read splits, nonces, step lengths.
    pub net: Rng,
    /// How much configuration work drivers apply per step.
    config_rng: Rng,
    base: Instant,
    /// Simulated time since the start, µs.
    pub t: u64,
    /// The nodes (node 0 dials).
    pub nodes: [Node; 2],
    /// Session link, config link ([`ConnKind::ALL`] order).
    channels: [Channel; 2],
    down: [Option<Down>; 2],
    paused_until: [u64; 2],
    /// What happened, with times: faults, restarts, closes, role changes.
    pub log: Vec<String>,
    /// Bytes delivered per link and direction, `[link][from]`.
    pub delivered: [[u64; 2]; 2],
}

/// The position of `kind` in [`ConnKind::ALL`].
fn slot(kind: ConnKind) -> usize {
    match kind {
        ConnKind::Session => 0,
        ConnKind::Config => 1,
    }
}

impl Sim {
    /// Two fresh nodes (peers seeded with `seeds`), nothing connected; the
    /// network's randomness derives from `seed`.
    pub fn new(cfg: SimConfig, seed: u64, seeds: [u64; 2]) -> Self {
        let base = Instant::now();
        let nodes = [0, 1].map(|ni| {
            let table = Arc::new(SessionTable::new(cfg.table.clone()));
            Node::build(
                cfg.nodes[ni].clone(),
                table,
                cfg.config_in_driver,
                seeds[ni],
                base,
            )
        });
        Self {
            cfg,
            net: Rng::new(seed ^ 0x6e65_7477_6f72_6b00),
            config_rng: Rng::new(seed ^ 0x636f_6e66_6967_0000),
            base,
            t: 0,
            nodes,
            channels: Default::default(),
            down: [None, None],
            paused_until: [0, 0],
            log: Vec::new(),
            delivered: [[0; 2]; 2],
        }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.base + Duration::from_micros(self.t)
    }

    /// Node `ni` runs: not crashed, not paused.
    pub fn alive(&self, ni: usize) -> bool {
        self.down[ni].is_none() && self.t >= self.paused_until[ni]
    }

    /// The (first) active node, or node 0 when there is none.
    pub fn active(&self) -> usize {
        (0..2)
            .find(|&i| self.nodes[i].peer.role() == Role::Active)
            .unwrap_or(0)
    }

    /// Nothing in flight on any link.
    pub fn links_idle(&self) -> bool {
        self.channels.iter().all(|c| c.link.is_idle())
    }

    /// Advances the clock by `dt` µs and runs one step: restarts due,
    /// redials, delivery, configuration work, the data plane
    /// ([`Observer::data_plane`]), timers and events, transmission.
    pub fn step(&mut self, dt: u64, obs: &mut impl Observer) {
        self.t += dt;
        let now = self.now();
        self.restart_due(now, obs);
        let alive = [self.alive(0), self.alive(1)];
        self.redial(alive, now);
        for kind in ConnKind::ALL {
            for to in [1, 0] {
                if alive[to] {
                    self.deliver(kind, to, now, obs);
                }
            }
        }
        for (node, alive) in self.nodes.iter_mut().zip(alive) {
            if alive {
                let n = self.config_rng.below(CONFIG_WORK_BELOW);
                node.apply_config(n as usize, now);
            }
        }
        obs.data_plane(self);
        for ni in 0..2 {
            if self.alive(ni) {
                self.poll(ni, now, obs);
            }
        }
        for kind in ConnKind::ALL {
            self.transmit(kind, now, obs);
        }
        obs.stepped(self);
    }

    /// Crashed nodes whose downtime passed start again.
    fn restart_due(&mut self, now: Instant, obs: &mut impl Observer) {
        for ni in 0..2 {
            let Some(d) = self.down[ni] else { continue };
            if self.t < d.until {
                continue;
            }
            let table = if d.keep_table {
                self.nodes[ni].table.clone()
            } else {
                Arc::new(SessionTable::new(self.cfg.table.clone()))
            };
            self.nodes[ni] = Node::build(
                self.cfg.nodes[ni].clone(),
                table,
                self.cfg.config_in_driver,
                d.seed,
                now,
            );
            self.down[ni] = None;
            self.log.push(format!("t={} node{ni} restarted", self.t));
            obs.restarted(self, ni, d.keep_table);
        }
    }

    /// (Re)connects links whose hold time passed, when both can accept.
    fn redial(&mut self, alive: [bool; 2], now: Instant) {
        for kind in ConnKind::ALL {
            let c = &mut self.channels[slot(kind)];
            if c.link.up || self.t < c.down_until || !alive[0] || !alive[1] {
                continue;
            }
            c.link.up = true;
            let latency = LATENCY_MIN_US + self.net.below(LATENCY_SPREAD_US);
            c.link.latency = Duration::from_micros(latency);
            let (n0, n1) = (self.net.nonce(), self.net.nonce());
            self.nodes[0].peer.handle_connected(kind, true, n0, now);
            self.nodes[1].peer.handle_connected(kind, false, n1, now);
        }
    }

    /// Delivers what arrived for node `to` on `kind`, each segment in
    /// random splits; an error closes the connection.
    fn deliver(&mut self, kind: ConnKind, to: usize, now: Instant, obs: &mut impl Observer) {
        let li = slot(kind);
        loop {
            // Not read while the node's configuration backlog is full
            // (never for inline nodes).
            let link = &mut self.channels[li].link;
            if !link.arrived(Side::BOTH[to], now) || !self.nodes[to].peer.may_read(kind) {
                return;
            }
            let Some(bytes) = link.receive(Side::BOTH[to], now) else {
                return;
            };
            let mut rest = &bytes[..];
            let mut failed = None;
            while !rest.is_empty() {
                let n = (1 + self.net.below(rest.len() as u64) as usize).min(rest.len());
                if let Err(e) = self.nodes[to].peer.handle_bytes(kind, &rest[..n], now) {
                    failed = Some(e);
                    break;
                }
                self.delivered[li][1 - to] += n as u64;
                rest = &rest[n..];
            }
            obs.delivered(self, kind, to);
            if let Some(e) = failed {
                self.log
                    .push(format!("t={} node{to} {}: {e}", self.t, kind.name()));
                self.cut(kind, REDIAL_US);
                return;
            }
        }
    }

    /// Node `ni`'s timers, events and actions: a role change is logged, a
    /// close action drops the connection (and holds it down briefly).
    fn poll(&mut self, ni: usize, now: Instant, obs: &mut impl Observer) {
        self.nodes[ni].peer.handle_timeout(now);
        while let Some(ev) = self.nodes[ni].peer.poll_event() {
            if let Event::RoleChanged { from, to, reason } = &ev {
                self.log
                    .push(format!("t={} node{ni} {from} -> {to}: {reason}", self.t));
            }
            obs.event(self, ni, &ev);
        }
        while let Some(action) = self.nodes[ni].peer.poll_action() {
            if let Action::Close { conn, reason } = action {
                self.log.push(format!(
                    "t={} node{ni} close {}: {reason}",
                    self.t,
                    conn.name()
                ));
                self.cut(conn, REDIAL_US);
            }
        }
        obs.polled(self, ni);
    }

    /// Moves what each running node queued on `kind` onto its link, up to
    /// the bandwidth (or a slow receiver's reads) per step.
    fn transmit(&mut self, kind: ConnKind, now: Instant, obs: &mut impl Observer) {
        let li = slot(kind);
        let c = &mut self.channels[li];
        if c.slow.is_some_and(|(_, until)| self.t >= until) {
            c.slow = None;
        }
        for ni in 0..2 {
            if !self.channels[li].link.up || !self.alive(ni) {
                continue;
            }
            let mut budget = self.channels[li].slow.map_or(BANDWIDTH, |(b, _)| b);
            while budget > 0 {
                let Some(bytes) = self.nodes[ni].peer.poll_transmit(kind, now) else {
                    break;
                };
                let n = bytes.len().min(budget);
                let segment = bytes[..n].to_vec();
                self.nodes[ni].peer.consume(kind, n);
                budget -= n;
                if let Some(m) = self.channels[li].link.send(Side::BOTH[ni], now, segment) {
                    obs.mangled(m);
                    self.log
                        .push(format!("t={} mangled link {li} from node{ni}", self.t));
                }
            }
        }
    }
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("t", &self.t)
            .field("nodes", &self.nodes)
            .field("down", &self.down)
            .field("paused_until", &self.paused_until)
            .finish_non_exhaustive()
    }
}
