//! `display session table`: sessions counted or listed, the first ones
//! in a total key order so two nodes holding the same sessions list the
//! same lines whatever their shard layout.

use std::collections::BinaryHeap;
use std::fmt::Write as _;

use hotsync_table::{SessionEntry, SessionKey};

use super::{Commands, err};
use crate::admin::Response;
use crate::display::{self, count};
use crate::vsys;

/// Most sessions `display session table` lists (use `count` for totals).
const LIST_LIMIT: usize = 50;

/// A session in `display session table` order: system, family, source,
/// destination, protocol, then every other byte of the key (a total order,
/// so the listing is the same on two nodes holding the same sessions).
#[derive(Debug, Clone, Copy)]
struct Listed(SessionKey, SessionEntry);

impl Listed {
    fn order(&self) -> impl Ord + '_ {
        let k = &self.0;
        (
            k.vsys,
            k.family,
            k.src_addr,
            k.src_port,
            k.dst_addr,
            k.dst_port,
            k.protocol,
            bytemuck::bytes_of(k),
        )
    }
}

impl PartialEq for Listed {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Listed {}

impl PartialOrd for Listed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Listed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order().cmp(&other.order())
    }
}

impl Commands {
    /// `display session table [vsys NAME] [count | verbose]`.
    pub(super) fn session_table(&self, vsys: &str, args: &[&str]) -> Response {
        let mut filter: Option<String> = (!vsys.is_empty()).then(|| vsys.to_owned());
        let mut mode = "brief";
        let mut i = 0;
        while i < args.len() {
            match args[i] {
                "vsys" => {
                    let Some(n) = args.get(i + 1) else {
                        return Response::unknown("Error: expected a virtual system after `vsys`");
                    };
                    filter = Some((*n).to_owned());
                    i += 2;
                }
                "count" | "verbose" | "brief" => {
                    mode = args[i];
                    i += 1;
                }
                other => {
                    return Response::unknown(format!(
                        "Error: expected `vsys NAME`, `count`, `verbose` or `digest`, found `{other}`"
                    ));
                }
            }
        }
        let (ids, want) = self.node.with_store(|s| {
            let ids = vsys::vsys_ids(s);
            let want = filter.as_deref().map(|f| vsys::resolve(s, f));
            (ids, want)
        });
        let want = match want {
            Some(None) => {
                return err(format!(
                    "virtual system `{}` does not exist",
                    filter.unwrap_or_default()
                ));
            }
            Some(Some(id)) => Some(id),
            None => None,
        };
        let table = self.node.table();
        if mode == "count" && want.is_none() {
            let total = table.len();
            let backup = table.backup_len();
            return Response::ok(format!(
                " Current total sessions: {}\n  backup-capable (replicated): {}\n  local-only: {}\n",
                count(total as u64),
                count(backup as u64),
                count((total - backup.min(total)) as u64)
            ));
        }
        let mut total = 0u64;
        let mut backup = 0u64;
        // The first LIST_LIMIT in key order, whatever the shard layout: two
        // nodes with equal digests list the same sessions.
        let mut shown: BinaryHeap<Listed> = BinaryHeap::with_capacity(LIST_LIMIT + 1);
        for shard in 0..table.shard_count() {
            table.for_each_in_shard(shard, |k, e| {
                if want.is_some_and(|w| w != k.vsys) {
                    return;
                }
                total += 1;
                if e.is_backup() {
                    backup += 1;
                }
                if mode != "count" {
                    let listed = Listed(*k, *e);
                    if shown.len() < LIST_LIMIT {
                        shown.push(listed);
                    } else if shown.peek().is_some_and(|last| listed < *last) {
                        shown.pop();
                        shown.push(listed);
                    }
                }
            });
        }
        let scope = want.map_or_else(|| "all systems".to_owned(), |id| vsys::name_of(&ids, id));
        if mode == "count" {
            return Response::ok(format!(
                " Current total sessions ({scope}): {}\n  backup-capable (replicated): {}\n  local-only: {}\n",
                count(total),
                count(backup),
                count(total - backup)
            ));
        }
        let shown: Vec<(SessionKey, SessionEntry)> = shown
            .into_sorted_vec()
            .into_iter()
            .map(|Listed(k, e)| (k, e))
            .collect();
        let mut o = format!(" Current total sessions ({scope}): {}\n", count(total));
        for (k, e) in &shown {
            let name = vsys::name_of(&ids, k.vsys);
            let line = if mode == "verbose" {
                display::session_verbose(&name, k, e)
            } else {
                display::session_brief(&name, k, e)
            };
            o.push_str(&line);
            o.push('\n');
        }
        if total > shown.len() as u64 {
            let _ = writeln!(
                o,
                "  ... {} more (showing the first {LIST_LIMIT}; `display session table count` counts them)",
                count(total - shown.len() as u64)
            );
        }
        Response::ok(o)
    }
}
