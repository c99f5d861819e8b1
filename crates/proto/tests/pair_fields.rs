//! Every coded field is checked on receipt: a value the protocol does not
//! define drops the connection with a typed error, counted under its own
//! name, and changes nothing.

use hotsync_proto::testing::{Node, Pair, PairConfig, Stranger};
use hotsync_proto::{Action, CloseReason, ConnKind, Event, Field, ProtoError, Role};
use hotsync_wire::{Ack, BatchStart, Channel, Close, ConfigOp, Heartbeat};

/// A node with an unauthenticated scripted peer up on `kind`.
fn up(kind: ConnKind) -> (Pair, Stranger) {
    let mut p = Pair::new(PairConfig::default());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, ConnKind::Session, [3; 32], now);
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(2, 100, 2, 16, false),
        now,
    );
    if kind == ConnKind::Session {
        return (p, s);
    }
    let mut c = Stranger::connect(&mut p.a, ConnKind::Config, [4; 32], now);
    c.send(
        &mut p.a,
        Channel::Control,
        &c.hello(2, 100, 2, 16, false),
        now,
    );
    (p, c)
}

fn closed_with(n: &Node, counter: &str) -> bool {
    n.errors(counter) == 1 && n.did(|a| matches!(a, Action::Close { .. }))
}

#[test]
fn an_undefined_role_in_a_hello_is_refused_before_any_claim_is_kept() {
    let mut p = Pair::new(PairConfig::default());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, ConnKind::Session, [3; 32], now);
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(2, 100, 9, 16, false),
        now,
    );
    assert!(closed_with(&p.a, "invalid_role"));
    assert!(!p.a.peer.is_established() && p.a.peer.state().peer.is_none());
}

#[test]
fn an_undefined_role_in_a_heartbeat_is_refused() {
    let (mut p, mut s) = up(ConnKind::Session);
    let role = p.a.peer.role();
    let hb = Heartbeat {
        role: 9,
        priority: 65535,
        sent_at_ms: 0,
    };
    s.send(&mut p.a, Channel::Control, &hb, p.now);
    assert!(closed_with(&p.a, "invalid_role"));
    assert_eq!(p.a.peer.role(), role);
}

#[test]
fn an_undefined_batch_kind_is_refused() {
    let (mut p, mut s) = up(ConnKind::Session);
    let msg = BatchStart {
        job_id: 1,
        what: 7,
        total: 10,
    };
    s.send(&mut p.a, Channel::Session, &msg, p.now);
    assert!(closed_with(&p.a, "invalid_batch_kind"));
    assert!(!p.a.saw(|e| matches!(e, Event::PeerBatchStarted { .. })));
}

#[test]
fn an_ack_for_another_channel_is_refused() {
    let (mut p, mut s) = up(ConnKind::Session);
    s.send(
        &mut p.a,
        Channel::Control,
        &Ack {
            channel: 77,
            seq: 0,
        },
        p.now,
    );
    assert!(closed_with(&p.a, "invalid_ack_channel"));
}

#[test]
fn an_undefined_config_op_is_refused_and_not_applied() {
    let (mut p, mut s) = up(ConnKind::Config);
    let op = ConfigOp {
        op: 5,
        vsys: String::new(),
        text: "ip address-set x".into(),
    };
    s.send(&mut p.a, Channel::Config, &op, p.now);
    assert!(closed_with(&p.a, "invalid_config_op"));
    assert!(p.a.config.lock().unwrap().is_empty());
}

#[test]
fn an_undefined_close_reason_is_counted_as_such() {
    let (mut p, mut s) = up(ConnKind::Session);
    let close = Close {
        reason: 999,
        detail: "?".into(),
    };
    s.send(&mut p.a, Channel::Control, &close, p.now);
    assert!(closed_with(&p.a, "invalid_close_reason"));
}

#[test]
fn close_reasons_round_trip_and_name_their_cause() {
    for r in [
        CloseReason::Protocol,
        CloseReason::Incompatible,
        CloseReason::Authentication,
        CloseReason::Configuration,
    ] {
        assert_eq!(CloseReason::from_code(r.code()), Some(r));
    }
    assert_eq!(CloseReason::from_code(0), None);
    let e = ProtoError::ShardCountMismatch { local: 1, peer: 2 };
    assert_eq!(e.close_reason(), CloseReason::Configuration);
    assert_eq!(
        ProtoError::AuthFailed.close_reason(),
        CloseReason::Authentication
    );
    let f = ProtoError::InvalidField {
        kind: hotsync_wire::MessageKind::Ack,
        field: Field::AckChannel,
        value: 77,
    };
    assert_eq!(f.kind_name(), "invalid_ack_channel");
}

#[test]
fn a_peer_sees_the_close_reason_of_a_refusal() {
    let mut cfg = PairConfig::default();
    cfg.table_b.shards = 32;
    let mut p = Pair::new(cfg);
    p.connect(ConnKind::Session);
    p.run_for(std::time::Duration::from_millis(10));
    // Both refuse; whichever closed second saw the other's reason 4.
    let reasons: Vec<&String> = p.closes.iter().map(|c| &c.2).collect();
    assert!(reasons.iter().any(|r| r.contains("shard")), "{reasons:?}");
}

#[test]
fn locally_queued_changes_must_be_defined_ops() {
    let mut p = Pair::new(PairConfig::default());
    p.establish();
    assert!(!p.a.peer.queue_config_op(3, "", "x"));
    assert!(p.a.peer.queue_config_op(2, "", "x"));
    assert_eq!(p.a.peer.role(), Role::Active);
}
