//! The node's frame and byte counters (`display hrp statistics`, the
//! metrics) count only connections that completed their handshake: a
//! stranger, a probe or a refused peer moves none of them, only its own
//! error (issue 13). A connection that does complete adds what its
//! handshake moved, so the two nodes' counts still agree.

use hotsync_proto::testing::{Pair, PairConfig, Side, Stranger};
use hotsync_proto::{ConnKind, Stats};
use hotsync_wire::{AuthProof, Channel, Heartbeat};
use std::time::Duration;

const SESSION: ConnKind = ConnKind::Session;

/// The shared traffic counters of one node.
fn io(s: &Stats) -> [u64; 4] {
    [s.frames_rx, s.bytes_rx, s.frames_tx, s.bytes_tx]
}

#[test]
fn a_stranger_that_never_completes_its_handshake_moves_no_traffic_counter() {
    let mut p = Pair::new(PairConfig::default().with_key());
    let before = io(p.a.peer.stats());
    let now = p.now;
    // A hello announcing a key, then a proof made without it.
    let mut s = Stranger::connect(&mut p.a, SESSION, [9; 32], now);
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(2, 100, 0, 16, true),
        now,
    );
    s.send(&mut p.a, Channel::Control, &AuthProof { mac: [7; 32] }, now);
    assert_eq!(p.a.errors("auth_failed"), 1);
    // Another that says hello and then sends data before any proof.
    let mut s = Stranger::connect(&mut p.a, SESSION, [10; 32], now);
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(2, 100, 0, 16, true),
        now,
    );
    let hb = Heartbeat {
        role: 1,
        priority: 1,
        sent_at_ms: 0,
    };
    s.send(&mut p.a, Channel::Control, &hb, now);
    assert_eq!(p.a.errors("auth_required"), 1);
    // Raw bytes on a fresh connection.
    let _ = Stranger::connect(&mut p.a, SESSION, [11; 32], now);
    let _ = p.a.peer.handle_bytes(SESSION, &[0x55; 100], now);
    assert_eq!(p.a.errors("bad_magic"), 1);
    assert_eq!(
        io(p.a.peer.stats()),
        before,
        "frames_rx, bytes_rx, frames_tx, bytes_tx moved for connections that never completed a handshake"
    );
    assert_eq!(p.a.peer.stats().connections, 0);
}

#[test]
fn a_completed_handshake_counts_its_own_frames_and_both_sides_agree() {
    let mut p = Pair::new(PairConfig::default().with_key());
    p.establish();
    p.run_for(Duration::from_millis(50));
    // Let everything queued cross, without new timers firing.
    let settled = (0..50).any(|_| {
        for kind in ConnKind::ALL {
            p.transmit(Side::A, kind);
            p.transmit(Side::B, kind);
        }
        p.now += Duration::from_millis(1);
        for kind in ConnKind::ALL {
            p.deliver(kind);
        }
        let (a, b) = (p.a.peer.stats(), p.b.peer.stats());
        a.frames_tx == b.frames_rx
            && a.bytes_tx == b.bytes_rx
            && b.frames_tx == a.frames_rx
            && b.bytes_tx == a.bytes_rx
    });
    let (a, b) = (p.a.peer.stats(), p.b.peer.stats());
    assert!(settled, "A {:?} B {:?}", io(a), io(b));
    // Hello and proof on each connection, at least.
    assert!(a.frames_rx >= 4 && b.frames_rx >= 4);
}
