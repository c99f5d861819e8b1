//! `hrp role-control external`: keepalived decides the role through `hrp
//! role` (`Peer::set_role_external`), hotsync's own election is off;
//! without it `hrp role` is refused. One authority at a time. (Moved down
//! from the node's `role_control.rs`: nothing here needs a socket.)

use hotsync_proto::testing::{Pair, PairConfig};
use hotsync_proto::{ConnKind, RequestError, Role};
use std::time::Duration;

/// Several dead intervals (300 ms each in the pair's settings).
const DEAD_INTERVALS: Duration = Duration::from_millis(1000);

fn external() -> Pair {
    let mut cfg = PairConfig::default().with_key();
    cfg.a.external_role = true;
    cfg.b.external_role = true;
    let mut p = Pair::new(cfg);
    p.establish();
    p
}

fn roles(p: &Pair) -> (Role, Role) {
    (p.a.peer.role(), p.b.peer.role())
}

#[test]
fn with_external_control_no_election_decides_a_role() {
    let mut p = external();
    p.run_for(DEAD_INTERVALS);
    assert_eq!(roles(&p), (Role::Initial, Role::Initial));
}

#[test]
fn with_external_control_hrp_role_sets_the_role_and_nothing_overrides_it() {
    let mut p = external();
    // keepalived makes the lower-priority node master: hotsync follows.
    let now = p.now;
    assert_eq!(p.b.peer.set_role_external(Role::Active, now), Ok(true));
    assert_eq!(p.a.peer.set_role_external(Role::Standby, now), Ok(true));
    assert_eq!(
        p.a.peer.set_role_external(Role::Standby, now),
        Ok(false),
        "already standby"
    );
    assert!(p.run_until(Duration::from_millis(50), |p| {
        p.a.peer
            .state()
            .peer
            .is_some_and(|b| b.role == Role::Active)
    }));
    // No preemption and no split-brain rule overrides it.
    p.run_for(DEAD_INTERVALS);
    assert_eq!(roles(&p), (Role::Standby, Role::Active));
}

#[test]
fn with_external_control_the_standby_does_not_take_over_by_itself() {
    let mut p = external();
    let now = p.now;
    p.b.peer.set_role_external(Role::Active, now).unwrap();
    p.a.peer.set_role_external(Role::Standby, now).unwrap();
    // The active goes silent.
    p.cut(ConnKind::Session);
    p.cut(ConnKind::Config);
    p.run_for(DEAD_INTERVALS);
    assert_eq!(p.a.peer.role(), Role::Standby);
    let now = p.now;
    assert_eq!(p.a.peer.set_role_external(Role::Active, now), Ok(true));
    assert_eq!(p.a.peer.role(), Role::Active);
}

#[test]
fn without_external_control_hrp_role_is_refused() {
    let mut p = Pair::new(PairConfig::default().with_key());
    p.establish();
    assert!(p.run_until(Duration::from_secs(1), |p| {
        roles(p) == (Role::Active, Role::Standby)
    }));
    let now = p.now;
    assert_eq!(
        p.b.peer.set_role_external(Role::Active, now),
        Err(RequestError::RoleNotExternal)
    );
    p.run_for(Duration::from_millis(50));
    assert_eq!(roles(&p), (Role::Active, Role::Standby));
}
