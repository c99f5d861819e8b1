//! Handshake cases over the in-memory pair, including the hostile ones of
//! issue 13: a connection that has not completed its handshake changes no
//! shared state (role, the peer shown by `display hrp state`, the proof
//! check of the real peer, the table, the configuration).

use hotsync_proto::testing::{Pair, PairConfig, Side, Stranger, TEST_PSK};
use hotsync_proto::{ConnKind, Event, Phase, Role};
use hotsync_wire::{AuthProof, Channel, Close, FORMAT_FINGERPRINT, Heartbeat, SessionUpsertBatch};
use std::time::Duration;

const SESSION: ConnKind = ConnKind::Session;
const CONFIG: ConnKind = ConnKind::Config;

fn sessions(n: usize) -> Vec<(hotsync_table::SessionKey, hotsync_table::SessionEntry)> {
    let mut g = hotsync_table::SessionGenerator::new(7, 0, false, 1000);
    (0..n).map(|_| g.next_session()).collect()
}

/// A pair whose node A has been alone long enough to become active.
fn with_active_a(cfg: PairConfig) -> Pair {
    let mut p = Pair::new(cfg);
    p.run_for(Duration::from_millis(350));
    assert_eq!(p.a.peer.role(), Role::Active);
    p
}

#[test]
fn an_open_pair_establishes_unauthenticated_and_warns() {
    let mut p = Pair::new(PairConfig::default());
    p.establish();
    for n in [&p.a, &p.b] {
        let st = n.peer.state();
        assert!(st.established && !st.authenticated);
        assert!(n.saw(|e| matches!(e, Event::Warning(w) if w.contains("WITHOUT authentication"))));
    }
    assert_eq!(p.a.peer.state().peer.map(|p| p.node_id), Some(2));
    assert_eq!(p.b.peer.state().peer.map(|p| p.node_id), Some(1));
}

#[test]
fn a_keyed_pair_establishes_authenticated() {
    let mut p = Pair::new(PairConfig::default().with_key());
    p.establish();
    assert!(p.a.peer.state().authenticated && p.b.peer.state().authenticated);
    assert!(p.a.saw(|e| matches!(
        e,
        Event::Established {
            authenticated: true,
            peer_node_id: 2,
            ..
        }
    )));
    assert_eq!(p.a.peer.stats().error_total(), 0);
}

#[test]
fn a_wrong_key_is_refused_and_nothing_is_established() {
    let mut cfg = PairConfig::default().with_key();
    cfg.b.psk = Some(b"another key".to_vec());
    let mut p = Pair::new(cfg);
    p.connect(SESSION);
    p.run_for(Duration::from_millis(20));
    assert!(p.a.errors("auth_failed") + p.b.errors("auth_failed") > 0);
    assert!(!p.a.peer.is_established() && !p.b.peer.is_established());
    assert_eq!(
        p.a.peer.state().peer,
        None,
        "a failed proof adopts no claims"
    );
}

#[test]
fn a_key_on_one_side_only_is_refused_on_both() {
    let mut cfg = PairConfig::default();
    cfg.a.psk = Some(TEST_PSK.to_vec());
    let mut p = Pair::new(cfg);
    p.connect(SESSION);
    p.run_for(Duration::from_millis(20));
    assert_eq!(p.a.errors("auth_required"), 1);
    assert_eq!(p.b.errors("no_key_configured"), 1);
    assert!(!p.a.peer.is_established() && !p.b.peer.is_established());
}

#[test]
fn different_shard_counts_are_refused_with_their_own_error() {
    let mut cfg = PairConfig::default();
    cfg.table_b.shards = 32;
    let mut p = Pair::new(cfg);
    p.connect(SESSION);
    p.run_for(Duration::from_millis(20));
    assert_eq!(p.a.errors("shard_count_mismatch"), 1);
    assert!(
        p.closes
            .iter()
            .any(|(s, _, r)| *s == Side::A && r.contains("shard"))
    );
}

#[test]
fn the_same_node_id_on_both_sides_is_refused() {
    let mut cfg = PairConfig::default();
    cfg.b.node_id = cfg.a.node_id;
    let mut p = Pair::new(cfg);
    p.connect(SESSION);
    p.run_for(Duration::from_millis(20));
    assert_eq!(p.a.errors("same_node_id"), 1);
    assert!(!p.a.peer.is_established());
}

#[test]
fn another_protocol_version_is_refused() {
    let mut p = Pair::new(PairConfig::default());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [9; 32], now);
    let mut hello = s.hello(2, 100, 0, 16, false);
    hello.protocol_version += 1;
    s.send(&mut p.a, Channel::Control, &hello, now);
    assert_eq!(p.a.errors("version_mismatch"), 1);
    assert_eq!(p.a.peer.state().conn_phase.session, Phase::Closing);
}

#[test]
fn another_wire_format_is_refused() {
    let mut p = Pair::new(PairConfig::default());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [9; 32], now);
    let mut hello = s.hello(2, 100, 0, 16, false);
    hello.format_fingerprint = FORMAT_FINGERPRINT ^ 1;
    s.send(&mut p.a, Channel::Control, &hello, now);
    assert_eq!(p.a.errors("format_mismatch"), 1);
}

#[test]
fn a_hello_for_the_other_channel_is_refused() {
    let mut p = Pair::new(PairConfig::default());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [9; 32], now);
    let mut hello = s.hello(2, 100, 0, 16, false);
    hello.channel = Channel::Config as u8;
    s.send(&mut p.a, Channel::Control, &hello, now);
    assert_eq!(p.a.errors("wrong_channel"), 1);
}

#[test]
fn a_reflected_nonce_is_refused() {
    let mut p = Pair::new(PairConfig::default().with_key());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [9; 32], now);
    let mut hello = s.hello(2, 100, 0, 16, true);
    hello.nonce = s.local_nonce();
    s.send(&mut p.a, Channel::Control, &hello, now);
    assert_eq!(p.a.errors("nonce_reflected"), 1);
}

#[test]
fn data_before_the_hello_is_refused() {
    let mut p = Pair::new(PairConfig::default());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [9; 32], now);
    let hb = Heartbeat {
        role: 1,
        priority: 1,
        sent_at_ms: 0,
    };
    s.send(&mut p.a, Channel::Control, &hb, now);
    assert_eq!(p.a.errors("unexpected_message"), 1);
}

#[test]
fn records_before_the_proof_are_refused_and_not_applied() {
    let mut p = Pair::new(PairConfig::default().with_key());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [9; 32], now);
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(2, 100, 0, 16, true),
        now,
    );
    let mut batch = SessionUpsertBatch::default();
    for (k, e) in sessions(5) {
        batch.push(&k, &e);
    }
    s.send(&mut p.a, Channel::Session, &batch, now);
    assert_eq!(p.a.errors("auth_required"), 1);
    assert!(p.a.table.is_empty(), "unauthenticated records were applied");
}

#[test]
fn a_proof_made_without_the_key_is_refused() {
    let mut p = Pair::new(PairConfig::default().with_key());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [9; 32], now);
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(2, 100, 0, 16, true),
        now,
    );
    s.send(&mut p.a, Channel::Control, &AuthProof { mac: [0; 32] }, now);
    assert_eq!(p.a.errors("auth_failed"), 1);
    assert!(!p.a.peer.is_established());
}

#[test]
fn a_silent_handshake_times_out() {
    let mut p = Pair::new(PairConfig::default());
    let now = p.now;
    let _s = Stranger::connect(&mut p.a, SESSION, [9; 32], now);
    p.run_for(Duration::from_millis(350));
    assert_eq!(p.a.errors("timeout"), 1);
}

#[test]
fn a_hello_after_the_handshake_is_refused() {
    let mut p = Pair::new(PairConfig::default());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [9; 32], now);
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(2, 100, 0, 16, false),
        now,
    );
    assert!(p.a.peer.is_established());
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(2, 100, 0, 16, false),
        now,
    );
    assert_eq!(p.a.errors("unexpected_message"), 1);
}

#[test]
fn a_sequence_gap_is_refused() {
    let mut p = Pair::new(PairConfig::default());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [9; 32], now);
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(2, 100, 0, 16, false),
        now,
    );
    s.skip_seq(3);
    let hb = Heartbeat {
        role: 2,
        priority: 100,
        sent_at_ms: 0,
    };
    s.send(&mut p.a, Channel::Control, &hb, now);
    assert_eq!(p.a.errors("sequence_gap"), 1);
}

#[test]
fn a_close_from_the_peer_is_counted_with_its_reason() {
    let mut p = Pair::new(PairConfig::default());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [9; 32], now);
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(2, 100, 0, 16, false),
        now,
    );
    let close = Close {
        reason: 3,
        detail: "bye".into(),
    };
    s.send(&mut p.a, Channel::Control, &close, now);
    assert_eq!(p.a.errors("peer_closed"), 1);
}

/// Runs the real peer B's session handshake with A up to the point where
/// A holds B's hello and waits for B's proof.
fn session_handshake_half_done(p: &mut Pair) {
    p.connect(SESSION);
    p.transmit(Side::B, SESSION);
    p.now += Duration::from_millis(1);
    p.deliver(SESSION);
    assert_eq!(p.a.peer.state().conn_phase.session, Phase::AwaitAuth);
}

/// Lets B's proof reach A.
fn session_handshake_finish(p: &mut Pair) {
    for _ in 0..3 {
        p.transmit(Side::A, SESSION);
        p.transmit(Side::B, SESSION);
        p.now += Duration::from_millis(1);
        p.deliver(SESSION);
    }
    p.poll();
}

#[test]
fn a_strangers_hello_during_the_real_handshake_does_not_change_roles() {
    let mut p = with_active_a(PairConfig::default().with_key());
    session_handshake_half_done(&mut p);
    // A stranger without the key claims to be B, with the top priority,
    // active, on the other channel.
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, CONFIG, [0x55; 32], now);
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(2, 65535, 1, 16, true),
        now,
    );
    session_handshake_finish(&mut p);
    assert!(p.a.peer.is_established());
    assert_eq!(
        p.a.peer.role(),
        Role::Active,
        "stepped down on a stranger's claims"
    );
    assert!(!p.a.saw(|e| matches!(
        e,
        Event::RoleChanged {
            to: Role::Standby,
            ..
        }
    )));
    let peer = p.a.peer.state().peer.expect("peer adopted");
    assert_eq!((peer.node_id, peer.priority), (2, 100));
}

#[test]
fn a_strangers_node_id_does_not_make_the_real_proof_fail() {
    let mut p = with_active_a(PairConfig::default().with_key());
    session_handshake_half_done(&mut p);
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, CONFIG, [0x55; 32], now);
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(99, 65535, 1, 16, true),
        now,
    );
    session_handshake_finish(&mut p);
    assert_eq!(p.a.errors("auth_failed"), 0);
    assert!(p.a.peer.state().authenticated);
    assert_eq!(p.a.peer.state().peer.map(|p| p.node_id), Some(2));
}

#[test]
fn an_unauthenticated_hello_then_silence_changes_nothing_shared() {
    let mut p = with_active_a(PairConfig::default().with_key());
    let before = p.a.peer.state();
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [0x55; 32], now);
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(42, 65535, 1, 16, true),
        now,
    );
    let during = p.a.peer.state();
    p.run_for(Duration::from_millis(400));
    let after = p.a.peer.state();
    for st in [&during, &after] {
        assert_eq!(st.peer, None, "display shows the stranger's claims");
        assert_eq!(st.role, before.role);
        assert_eq!(st.role_reason, before.role_reason);
        assert!(!st.established);
    }
    assert_eq!(after.stats.connections, 0);
    assert_eq!(p.a.errors("timeout"), 1, "its own error, counted");
}

#[test]
fn a_strangers_hello_before_a_key_proof_leaves_the_table_and_config_alone() {
    let mut p = with_active_a(PairConfig::default().with_key());
    let digest = p.a.table.digest();
    let now = p.now;
    for kind in [SESSION, CONFIG] {
        let mut s = Stranger::connect(&mut p.a, kind, [0x66; 32], now);
        s.send(
            &mut p.a,
            Channel::Control,
            &s.hello(2, 100, 2, 16, true),
            now,
        );
        let op = hotsync_wire::ConfigOp {
            op: 0,
            vsys: String::new(),
            text: "security-policy".into(),
        };
        s.send(&mut p.a, Channel::Config, &op, now);
    }
    assert_eq!(p.a.table.digest(), digest);
    assert!(p.a.config.lock().unwrap().is_empty());
}
