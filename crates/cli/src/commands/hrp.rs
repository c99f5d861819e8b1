//! The `hrp` commands: the role set from outside (`hrp role`) and the
//! batch syncs started by hand (`hrp sync`).

use hotsync_proto::Role;

use super::{Commands, err};
use crate::admin::Response;
use crate::display::count;

impl Commands {
    /// `hrp role active|standby`: returns once the data plane is there.
    pub(super) fn hrp_role(&self, active: bool) -> Response {
        // One authority: refused unless `hrp role-control external`.
        let role = if active { Role::Active } else { Role::Standby };
        let changed = match self.node.set_role(role) {
            Ok(c) => c,
            Err(e) => return err(e),
        };
        let mut msg = if changed {
            format!("Info: HRP role is now {role}.\n")
        } else {
            format!("Info: HRP role was already {role}.\n")
        };
        if let Some(dp) = &self.data_plane {
            match dp.set_role(active) {
                Ok(m) => msg.push_str(&m),
                Err(e) => return err(e),
            }
        }
        Response::ok(msg)
    }

    pub(super) fn hrp_sync(&self, vsys: &str, rest: &[&str]) -> Response {
        let rest: Vec<&str> = rest.iter().copied().filter(|w| *w != "--wait").collect();
        if !vsys.is_empty() {
            return Response::fail(format!(
                "Error: `hrp sync` runs only in the root system; it covers the root system and every virtual system (now in virtual system `{vsys}`: `quit` first)."
            ));
        }
        let (what, r) = match rest.as_slice() {
            ["config"] => ("configuration", self.node.sync_config()),
            ["connection-status"] => ("connection-status", self.node.sync_connection_status()),
            _ => {
                return Response::unknown(
                    "Error: expected `hrp sync config` or `hrp sync connection-status`",
                );
            }
        };
        match r {
            Ok(id) => {
                let total = self
                    .node
                    .job(id)
                    .map(|j| {
                        let unit = if what == "configuration" {
                            "items"
                        } else {
                            "entries"
                        };
                        format!(" ({} {unit})", count(j.total))
                    })
                    .unwrap_or_default();
                Response::ok(format!(
                    "Info: batch sync of {what}{total} started as job {id}; see `display hrp sync-status` or `wait {id}`."
                ))
            }
            Err(e) => err(e),
        }
    }
}
