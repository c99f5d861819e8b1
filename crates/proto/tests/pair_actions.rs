//! What the protocol asks of its driver comes as an [`Action`], apart from
//! the notices in [`Event`]: a refused or failed connection is one
//! `Action::Close` (the one close path), and an automatic configuration
//! sync is an instruction, not a notice a driver may skip.

use hotsync_proto::testing::{Node, Pair, PairConfig, Side, Stranger};
use hotsync_proto::{Action, ConnKind, Event, Phase};
use hotsync_wire::Channel;
use std::time::Duration;

const SESSION: ConnKind = ConnKind::Session;

fn closes(n: &Node, kind: ConnKind) -> usize {
    n.actions
        .iter()
        .filter(|a| matches!(a, Action::Close { conn, .. } if *conn == kind))
        .count()
}

#[test]
fn a_refused_handshake_is_one_close_action_and_no_connected_notice() {
    let mut cfg = PairConfig::default().with_key();
    cfg.b.psk = Some(b"another key".to_vec());
    let mut p = Pair::new(cfg);
    p.connect(SESSION);
    p.run_for(Duration::from_millis(20));
    let refused = p.a.errors("auth_failed") + p.b.errors("auth_failed");
    assert!(refused > 0);
    let (a, b) = (closes(&p.a, SESSION), closes(&p.b, SESSION));
    assert!(a + b > 0, "the refusing side asks its driver to close");
    // One close per refusal counted on that side, never a second one.
    assert_eq!(a as u64, p.a.errors("auth_failed"));
    assert_eq!(b as u64, p.b.errors("auth_failed"));
    for n in [&p.a, &p.b] {
        assert!(!n.saw(|e| matches!(e, Event::Connected(_) | Event::Established { .. })));
    }
}

#[test]
fn a_close_action_names_its_cause() {
    let mut cfg = PairConfig::default();
    cfg.table_b.shards = 32;
    let mut p = Pair::new(cfg);
    p.connect(SESSION);
    p.run_for(Duration::from_millis(20));
    assert!(p.a.did(|a| matches!(
        a,
        Action::Close { conn: SESSION, reason } if reason.contains("shard")
    )));
}

#[test]
fn bytes_after_a_fatal_error_raise_no_second_close() {
    let mut p = Pair::new(PairConfig::default());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [3; 32], now);
    let mut hello = s.hello(2, 100, 0, 16, false);
    hello.protocol_version += 1;
    s.send(&mut p.a, Channel::Control, &hello, now);
    assert_eq!(closes(&p.a, SESSION), 1);
    assert_eq!(p.a.peer.state().conn_phase.session, Phase::Closing);
    // The driver has not closed the transport yet: more bytes arrive.
    s.send(&mut p.a, Channel::Control, &hello, now);
    let _ = p.a.peer.handle_bytes(SESSION, &[0xff; 64], now);
    while let Some(a) = p.a.peer.poll_action() {
        p.a.actions.push(a);
    }
    assert_eq!(closes(&p.a, SESSION), 1, "{:?}", p.a.actions);
    assert_eq!(p.a.errors("version_mismatch"), 1);
}

#[test]
fn an_error_returned_to_the_driver_also_queues_its_close() {
    let mut p = Pair::new(PairConfig::default());
    let now = p.now;
    let _ = Stranger::connect(&mut p.a, SESSION, [3; 32], now);
    // Not a frame: the decoder refuses it.
    let r = p.a.peer.handle_bytes(SESSION, &[0xff; 64], now);
    assert!(r.is_err());
    let action = p.a.peer.poll_action();
    assert!(
        matches!(&action, Some(Action::Close { conn: SESSION, .. })),
        "{action:?}"
    );
    assert_eq!(p.a.peer.poll_action(), None);
}

#[test]
fn closing_on_the_action_ends_the_connection_and_it_comes_back() {
    let mut p = Pair::new(PairConfig::default());
    p.establish();
    // B sends A garbage on the session link: A refuses, its driver closes.
    p.tamper(Side::B, SESSION, |frames| frames.push(vec![0xff; 64]));
    p.run_for(Duration::from_millis(5));
    assert_eq!(closes(&p.a, SESSION), 1, "{:?}", p.a.actions);
    assert!(p.a.saw(|e| matches!(e, Event::RelationshipLost { .. })));
    assert!(!p.is_up(SESSION), "the pair's driver closed the link");
    // The driver dials again; the same processes resume.
    p.connect(SESSION);
    assert!(p.run_until(Duration::from_secs(1), |p| p.a.peer.is_established()));
}

#[test]
fn auto_sync_is_asked_of_the_driver_once_per_new_relationship() {
    let mut cfg = PairConfig::default();
    cfg.a.auto_sync_on_establish = true;
    let mut p = Pair::new(cfg);
    p.establish();
    let wanted = |n: &Node| {
        n.actions
            .iter()
            .filter(|a| matches!(a, Action::StartConfigSync))
            .count()
    };
    assert_eq!(wanted(&p.a), 1);
    assert_eq!(wanted(&p.b), 0, "B has it off");
    // The same peer process reconnecting resumes the relationship: what
    // changed meanwhile is delivered incrementally, no batch asked for.
    p.cut(SESSION);
    p.run_for(Duration::from_millis(50));
    p.connect(SESSION);
    assert!(p.run_until(Duration::from_secs(1), |p| p.a.peer.is_established()));
    assert_eq!(wanted(&p.a), 1);
}
