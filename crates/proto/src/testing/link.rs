//! One connection's simulated transport: up or not, bytes in flight each
//! way with their arrival times, and faults waiting for the next segment.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Which node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Node A (dials).
    A,
    /// Node B (accepts).
    B,
}

impl Side {
    /// Both, A first.
    pub const BOTH: [Side; 2] = [Side::A, Side::B];

    /// 0 for A, 1 for B.
    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }

    /// The other node.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// A fault waiting for the next segment one side sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mangle {
    /// One byte (at `pos` modulo the segment's length) xored with `xor`.
    Flip {
        /// Position, reduced modulo the segment length.
        pos: u64,
        /// The bits flipped.
        xor: u8,
    },
    /// The segment cut to `keep` modulo its length: its tail lost.
    Truncate {
        /// Bytes kept, reduced modulo the segment length.
        keep: u64,
    },
}

impl Mangle {
    fn apply(self, segment: &mut Vec<u8>) {
        let len = segment.len() as u64;
        match self {
            Mangle::Flip { pos, xor } => segment[(pos % len) as usize] ^= xor,
            Mangle::Truncate { keep } => segment.truncate((keep % len) as usize),
        }
    }
}

/// In-flight bytes: (arrival, segment).
type Queue = VecDeque<(Instant, Vec<u8>)>;

/// One connection's link between A and B.
#[derive(Debug, Default)]
pub struct Link {
    /// The transport is open.
    pub up: bool,
    /// Delivery paused: bytes queue until released.
    pub held: bool,
    /// One-way latency of what is sent from now on.
    pub latency: Duration,
    /// Segments in flight, by sender ([`Side::index`]).
    in_flight: [Queue; 2],
    /// Applied to the next segment each side sends.
    mangle: [Option<Mangle>; 2],
}

impl Link {
    /// An open link with `latency` each way.
    pub fn open(latency: Duration) -> Self {
        Self {
            up: true,
            latency,
            ..Self::default()
        }
    }

    /// The transport goes: what is in flight is lost; a fault waiting for
    /// the next segment still waits.
    pub fn close(&mut self) {
        self.up = false;
        self.in_flight = Default::default();
    }

    /// Arms `m` for the next segment `from` sends.
    pub fn mangle_next(&mut self, from: Side, m: Mangle) {
        self.mangle[from.index()] = Some(m);
    }

    /// Disarms the faults waiting for a segment.
    pub fn clear_mangles(&mut self) {
        self.mangle = [None, None];
    }

    /// Puts `segment` from `from` on the wire at `now`: it arrives after
    /// the latency. Returns the fault it carries, if one was armed.
    pub fn send(&mut self, from: Side, now: Instant, mut segment: Vec<u8>) -> Option<Mangle> {
        let m = self.mangle[from.index()].take();
        if let Some(m) = m {
            m.apply(&mut segment);
        }
        self.in_flight[from.index()].push_back((now + self.latency, segment));
        m
    }

    /// Whether a segment for `to` has arrived by `now` (and is not held).
    pub fn arrived(&self, to: Side, now: Instant) -> bool {
        self.up
            && !self.held
            && self.in_flight[to.other().index()]
                .front()
                .is_some_and(|(at, _)| *at <= now)
    }

    /// Takes the next segment for `to` that arrived by `now`.
    pub fn receive(&mut self, to: Side, now: Instant) -> Option<Vec<u8>> {
        if !self.arrived(to, now) {
            return None;
        }
        self.in_flight[to.other().index()]
            .pop_front()
            .map(|(_, b)| b)
    }

    /// The segments `from` has in flight, arrival times and all.
    pub fn in_flight(&mut self, from: Side) -> &mut VecDeque<(Instant, Vec<u8>)> {
        &mut self.in_flight[from.index()]
    }

    /// Nothing in flight either way.
    pub fn is_idle(&self) -> bool {
        self.in_flight.iter().all(VecDeque::is_empty)
    }
}
