//! Active/standby roles and the rule that picks them.

pub use hotsync_wire::Role;

/// What a node says about itself when roles are decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Role it currently holds.
    pub role: Role,
    /// Its priority.
    pub priority: u16,
    /// Its node id.
    pub node_id: u64,
}

/// Whether `a` beats `b` by the static rule: higher priority, then lower
/// node id.
pub fn outranks(a: &Claim, b: &Claim) -> bool {
    (a.priority, std::cmp::Reverse(a.node_id)) > (b.priority, std::cmp::Reverse(b.node_id))
}

/// The role `local` takes once it hears `remote`. Both nodes evaluate it
/// with the arguments swapped and reach complementary answers:
/// - exactly one claims active: it stays active (no preemption here; a
///   preempting node takes over later, after its delay);
/// - both or neither claim active (fresh pair, or split brain healing):
///   the static rule decides.
pub fn resolve(local: &Claim, remote: &Claim) -> Role {
    let la = local.role == Role::Active;
    let ra = remote.role == Role::Active;
    match (la, ra) {
        (true, false) => Role::Active,
        (false, true) => Role::Standby,
        _ => {
            if outranks(local, remote) {
                Role::Active
            } else {
                Role::Standby
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(role: Role, priority: u16, node_id: u64) -> Claim {
        Claim {
            role,
            priority,
            node_id,
        }
    }

    #[test]
    fn resolution_is_complementary() {
        let roles = [Role::Initial, Role::Active, Role::Standby];
        for &ra in &roles {
            for &rb in &roles {
                for (pa, pb) in [(100, 100), (120, 100), (100, 120)] {
                    let a = c(ra, pa, 1);
                    let b = c(rb, pb, 2);
                    let (x, y) = (resolve(&a, &b), resolve(&b, &a));
                    assert_ne!(x, y, "{a:?} vs {b:?} gave {x} and {y}");
                    assert!(x != Role::Initial && y != Role::Initial);
                }
            }
        }
    }

    #[test]
    fn priority_then_lower_id_wins_a_fresh_pair() {
        assert_eq!(
            resolve(&c(Role::Initial, 120, 9), &c(Role::Initial, 100, 1)),
            Role::Active
        );
        assert_eq!(
            resolve(&c(Role::Initial, 100, 1), &c(Role::Initial, 100, 2)),
            Role::Active
        );
        assert_eq!(
            resolve(&c(Role::Initial, 100, 2), &c(Role::Initial, 100, 1)),
            Role::Standby
        );
    }

    #[test]
    fn an_active_node_keeps_its_role_against_a_newcomer() {
        assert_eq!(
            resolve(&c(Role::Active, 50, 2), &c(Role::Initial, 200, 1)),
            Role::Active
        );
        assert_eq!(
            resolve(&c(Role::Initial, 200, 1), &c(Role::Active, 50, 2)),
            Role::Standby
        );
    }
}
