//! The `display` commands (the session table's listing is in
//! `session_table`): the pair's state, sync jobs, statistics,
//! configuration and conflicts, and the JSON `hotsync cli --json` reads.

use std::fmt::Write as _;
use std::time::Instant;

use hotsync_config::{ConfigStore, ROOT};

use super::{Commands, err, sysname};
use crate::admin::Response;
use crate::display::{self, JobView};

impl Commands {
    pub(super) fn display(&self, vsys: &str, rest: &[&str]) -> Response {
        match rest {
            ["hrp", "state"] => self.hrp_state(false),
            ["hrp", "state", "verbose"] => self.hrp_state(true),
            ["hrp", "sync-status"] => {
                Response::ok(display::sync_status(&self.job_views(Instant::now())))
            }
            ["hrp", "sync-status", "job", id] => {
                let Ok(id) = id.parse::<u64>() else {
                    return Response::unknown("Error: expected a job number");
                };
                match self.node.job(id) {
                    Some(j) => Response::ok(display::sync_status(&[JobView::from_status(
                        &j,
                        Instant::now(),
                    )])),
                    None => err(format!("no job {id}")),
                }
            }
            ["hrp", "configuration", "conflicts"] => self.conflicts(),
            ["hrp", "statistics"] => {
                Response::ok(display::statistics(&self.node.state().peer.stats))
            }
            ["current-configuration"] => {
                if vsys.is_empty() {
                    Response::ok(self.node.with_store(ConfigStore::render_masked))
                } else {
                    self.render_vsys(vsys)
                }
            }
            ["current-configuration", "vsys", name] => self.render_vsys(name),
            ["session", "table", "digest"] => {
                let t = self.node.table();
                Response::ok(display::digest(&t.digest(), t.len()))
            }
            ["session", "table", args @ ..] => self.session_table(vsys, args),
            _ => Response::unknown(format!(
                "Error: unrecognized command `display {}`",
                rest.join(" ")
            )),
        }
    }

    fn render_vsys(&self, name: &str) -> Response {
        let name = if name == "root" { ROOT } else { name };
        match self.node.with_store(|s| s.render_vsys(name)) {
            Some(text) => Response::ok(text),
            None => err(format!("virtual system `{name}` does not exist")),
        }
    }

    /// `hotsync cli --json`: the display commands scripts read.
    pub(super) fn display_json(&self, rest: &[&str]) -> Response {
        let now = Instant::now();
        let v = match rest {
            ["hrp", "state"] => {
                let name = self.node.with_store(sysname);
                crate::json::hrp_state(&self.node.state(), &name, now)
            }
            ["hrp", "statistics"] => crate::json::statistics(&self.node.state().peer.stats),
            ["hrp", "sync-status"] => crate::json::sync_status(&self.job_views(now)),
            _ => {
                return Response::unknown(
                    "Error: --json applies to `display hrp state`, `display hrp statistics` and `display hrp sync-status`",
                );
            }
        };
        Response::ok(format!("{v}\n"))
    }

    fn hrp_state(&self, verbose: bool) -> Response {
        let st = self.node.state();
        let name = self.node.with_store(sysname);
        Response::ok(display::hrp_state(&st, &name, verbose))
    }

    fn conflicts(&self) -> Response {
        let list = self.node.with_store(|s| s.conflicts().to_vec());
        let mut o = String::new();
        if list.is_empty() {
            o.push_str("Info: no configuration conflicts recorded.\n");
        } else {
            let _ = writeln!(
                o,
                " {} configuration conflict(s) with the peer: the same command with other parameters (nothing was applied), or a rule whose place in its first-match list differs (`order differs`); fix by hand.",
                list.len()
            );
            for c in &list {
                let _ = writeln!(o, "#\n{c}");
            }
        }
        // Conflicts our own batches found on the peer.
        let now = Instant::now();
        for j in self.node.jobs() {
            let v = JobView::from_status(&j, now);
            if let Some([_, _, c, _]) = v.config {
                if c > 0 {
                    let _ = writeln!(
                        o,
                        "Info: job {} (hrp sync config from this node) found {c} conflict(s) on the peer; see this command on the peer.",
                        v.id
                    );
                }
            }
        }
        Response::ok(o)
    }

    /// Every job (running and in the history) as the displays show it.
    fn job_views(&self, now: Instant) -> Vec<JobView> {
        self.node
            .jobs()
            .iter()
            .map(|j| JobView::from_status(j, now))
            .collect()
    }
}
