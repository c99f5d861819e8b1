//! Configuration commands typed in `system-view`: applied through the
//! node, and the operator told exactly whether and how the change
//! reaches the peer.

use hotsync_config::{Category, ChangeOp, ConfigStore};
use hotsync_node::{Executed, NodeError};
use hotsync_proto::OpDelivery;

use super::{Commands, err};
use crate::admin::Response;

impl Commands {
    /// `undo X` for an opaque line `X` of the configuration (read from the
    /// node file or synchronized): removable though `X` is not a command
    /// this shell knows.
    pub(super) fn undoes_opaque(&self, vsys: &str, line: &str) -> bool {
        let Some(rest) = line.strip_prefix("undo ") else {
            return false;
        };
        let rest = rest.split_whitespace().collect::<Vec<_>>().join(" ");
        self.node.with_store(|s| {
            s.items(vsys).is_some_and(|mut items| {
                items.any(|i| {
                    i.category() == Category::Opaque
                        && i.container().is_none()
                        && i.header() == rest
                })
            })
        })
    }

    /// Anything else: a configuration command typed in `system-view`.
    pub(super) fn configure(&self, vsys: &str, line: &str) -> Response {
        let v = (!vsys.is_empty()).then_some(vsys);
        let routes_before = self.node.with_store(ConfigStore::static_route_sync);
        match self.node.execute_config(v, line) {
            Ok(Executed { change, delivery }) => {
                let op = match change.op {
                    ChangeOp::Add => "added",
                    ChangeOp::Modify => "modified",
                    ChangeOp::Delete => "deleted",
                };
                let cat = change.item.category();
                let routes = self.node.with_store(ConfigStore::static_route_sync);
                let place = if change.vsys.is_empty() {
                    "root system".to_owned()
                } else {
                    format!("virtual system {}", change.vsys)
                };
                let sync = if let Some(d) = delivery {
                    delivery_text(d)
                } else if cat == Category::StaticRoute {
                    "not synchronized: static-route sync is disabled"
                } else if cat == Category::UserDatabase || cat == Category::SslVpn {
                    "never synchronized: user and SSL VPN data stay on this node"
                } else {
                    "node-local, never synchronized"
                };
                let mut s = format!(
                    "Info: {op} {} in the {place} ({sync}).",
                    change.item.identity()
                );
                if routes != routes_before {
                    s.push_str(if routes {
                        "\nInfo: static routes are now part of `hrp sync config` and incremental sync."
                    } else {
                        "\nInfo: static routes are no longer synchronized."
                    });
                }
                Response::ok(s)
            }
            Err(NodeError::Command(hotsync_config::CommandError::NotAConfigCommand {
                command,
            })) => Response::unknown(format!("Error: unrecognized command `{command}`")),
            Err(e) => err(e),
        }
    }
}

/// What the operator is told about a change for the peer: exactly which
/// case applies (B3, B4, and the relationship's incarnations).
fn delivery_text(d: OpDelivery) -> &'static str {
    match d {
        OpDelivery::Sending => "synchronized to the peer",
        OpDelivery::HeldForPeer => {
            "queued for the peer: the relationship is down; it is delivered if the same peer process reconnects; if the peer restarts instead, a new relationship forms and this change is not sent (run `hrp sync config` then)"
        }
        OpDelivery::NoRelationship => {
            "not synchronized: no relationship with the peer has been established yet (B4: run `hrp sync config` once it is)"
        }
        OpDelivery::Dropped => {
            "not synchronized: the change queue for the peer is full (run `hrp sync config`)"
        }
        OpDelivery::Invalid => "not synchronized: not a change the peer accepts",
    }
}
