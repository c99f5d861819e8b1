//! The commands a node answers on its admin socket (server side).
//!
//! This module keeps the command dispatch (`Commands::execute`); each
//! command family is in its own submodule: `hrp` (role and batch syncs),
//! `displays` and `session_table` (the `display` commands), `generate`
//! and `import` (sessions put in the table by hand) and `configure`
//! (configuration commands).

mod configure;
mod displays;
mod generate;
mod hrp;
mod import;
mod session_table;

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotsync_config::{Category, ConfigStore, ROOT};
use hotsync_node::NodeHandle;

use crate::admin::Response;
use crate::display::JobView;
use crate::grammar;

/// Unix seconds now.
pub fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// The `sysname` of a configuration (`hotsync` if none).
pub fn sysname(store: &ConfigStore) -> String {
    store
        .items(ROOT)
        .and_then(|mut it| it.find(|i| i.category() == Category::Sysname))
        .and_then(|i| i.header().split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "hotsync".into())
}

/// Answers admin requests for one node.
#[derive(Debug, Clone)]
pub struct Commands {
    node: NodeHandle,
    /// Set by `shutdown node`; the daemon watches it.
    pub shutdown: Arc<AtomicBool>,
    /// The conntrack data plane, when configured.
    data_plane: Option<Arc<crate::dataplane::Conntrack>>,
}

fn err(e: impl std::fmt::Display) -> Response {
    let s = e.to_string();
    if s.starts_with("Error:") {
        Response::fail(s)
    } else {
        Response::fail(format!("Error: {s}"))
    }
}

impl Commands {
    pub fn new(node: NodeHandle) -> Self {
        Commands {
            node,
            shutdown: Arc::new(AtomicBool::new(false)),
            data_plane: None,
        }
    }

    /// Gives `hrp role` and `display conntrack statistics` their data plane.
    pub fn with_data_plane(mut self, dp: Option<Arc<crate::dataplane::Conntrack>>) -> Self {
        self.data_plane = dp;
        self
    }

    /// Runs one command line in system `vsys` (`""` = root).
    pub fn execute(&self, vsys: &str, line: &str) -> Response {
        let line = line.trim();
        if !vsys.is_empty() && !self.node.with_store(|s| s.has_vsys(vsys)) {
            return err(format!("virtual system `{vsys}` does not exist"));
        }
        if line == "help" {
            return Response::ok(grammar::help(""));
        }
        if let Some(typed) = line.strip_suffix('?') {
            return Response::ok(grammar::help(typed));
        }
        // `_job`, `_info`: the shell's own queries, not typed commands.
        let expanded;
        let line = if line.starts_with('_') {
            line
        } else {
            match grammar::expand(line) {
                Ok(full) => {
                    expanded = full;
                    expanded.as_str()
                }
                Err(_) if self.undoes_opaque(vsys, line) => line,
                Err(refused) => return Response::unknown(refused.render(line)),
            }
        };
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            [] => Response::ok(""),
            ["hrp", "sync", rest @ ..] => self.hrp_sync(vsys, rest),
            ["hrp", "role", "active"] => self.hrp_role(true),
            ["hrp", "role", "standby"] => self.hrp_role(false),
            ["display", "conntrack", "statistics"] => match &self.data_plane {
                Some(dp) => Response::ok(dp.statistics()),
                None => err("no data plane is configured (add `hrp data-plane conntrack`)"),
            },
            ["display", rest @ ..] => self.display(vsys, rest),
            ["session", "generate", rest @ ..] => self.generate(vsys, rest),
            ["session", "import", rest @ ..] => self.import(vsys, rest),
            ["wait", id] => match id.parse::<u64>() {
                Ok(id) => match self.node.wait_job(id, Duration::from_secs(600)) {
                    Some(j) => {
                        let v = JobView::from_status(&j, Instant::now());
                        let mut r = Response::ok(v.summary());
                        if v.state == "failed" {
                            r.status = crate::admin::FAILED;
                        }
                        r
                    }
                    None => err(format!("no job {id}")),
                },
                Err(_) => Response::unknown(format!("Error: expected a job number, found `{id}`")),
            },
            ["shutdown", "node"] => {
                self.shutdown.store(true, Ordering::Release);
                Response::ok("Info: the node is shutting down.")
            }
            ["_job", id] => {
                let Ok(id) = id.parse::<u64>() else {
                    return Response::unknown("Error: expected a job number");
                };
                match self.node.job(id) {
                    Some(j) => Response::ok(JobView::from_status(&j, Instant::now()).to_wire()),
                    None => err(format!("no job {id}")),
                }
            }
            ["_json", "display", rest @ ..] => self.display_json(rest),
            ["_json", ..] => self.display_json(&[]),
            ["_info"] => self.node.with_store(|s| {
                let mut o = format!("sysname {}\n", sysname(s));
                for v in s.vsys_names() {
                    let _ = writeln!(o, "vsys {v}");
                }
                Response::ok(o)
            }),
            ["switch", "vsys", ..] | ["quit"] | ["return"] | ["system-view"] => {
                Response::unknown(format!(
                    "Error: `{line}` changes the shell's view: it is handled by `hotsync cli`, which sends the virtual system with each command."
                ))
            }
            _ => self.configure(vsys, line),
        }
    }
}
