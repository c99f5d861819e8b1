//! `hrp role-control external`: keepalived decides the role through `hrp
//! role`, hotsync's own election is off; without it `hrp role` is refused.
//! One authority at a time.

mod support;

use hotsync_node::{Node, NodeError};
use hotsync_proto::{RequestError, Role};
use std::time::Duration;
use support::{addr, node_config, port_pairs, wait_until};

fn external(id: u64, prio: u16, me: u16, peer: u16) -> hotsync_node::NodeConfig {
    let mut c = node_config(id, prio, me, addr(peer), Some("k"), 10_000);
    c.proto.external_role = true;
    c
}

#[test]
fn with_external_control_only_hrp_role_changes_the_role() {
    let p = port_pairs(2);
    let a = Node::start(external(1, 200, p[0], p[1])).unwrap();
    let b = Node::start(external(2, 100, p[1], p[0])).unwrap();
    support::established(&a, &b, Duration::from_secs(10));
    // Several dead intervals (300 ms): no election, no "no peer" takeover.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!((a.role(), b.role()), (Role::Initial, Role::Initial));

    // keepalived makes the lower-priority node master: hotsync follows.
    assert!(b.set_role(Role::Active).unwrap());
    assert!(a.set_role(Role::Standby).unwrap());
    assert!(!a.set_role(Role::Standby).unwrap(), "already standby");
    wait_until("a to see b active", Duration::from_secs(5), || {
        a.state().peer.peer.is_some_and(|p| p.role == Role::Active)
    });
    std::thread::sleep(Duration::from_millis(700));
    // No preemption and no split-brain rule overrides it.
    assert_eq!((a.role(), b.role()), (Role::Standby, Role::Active));

    // The active dies: the standby does not take over by itself.
    b.shutdown();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(a.role(), Role::Standby);
    assert!(a.set_role(Role::Active).unwrap());
    assert_eq!(a.role(), Role::Active);
    a.shutdown();
}

#[test]
fn without_external_control_hrp_role_is_refused() {
    let p = port_pairs(2);
    let a = Node::start(node_config(1, 200, p[0], addr(p[1]), Some("k"), 10_000)).unwrap();
    let b = Node::start(node_config(2, 100, p[1], addr(p[0]), Some("k"), 10_000)).unwrap();
    support::established(&a, &b, Duration::from_secs(10));
    wait_until("the election", Duration::from_secs(5), || {
        a.role() == Role::Active && b.role() == Role::Standby
    });
    match b.set_role(Role::Active) {
        Err(NodeError::Request(RequestError::RoleNotExternal)) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!((a.role(), b.role()), (Role::Active, Role::Standby));
    a.shutdown();
    b.shutdown();
}
