//! The commands a node answers on its admin socket (server side).

use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotsync_config::{Category, ChangeOp, ConfigStore, ROOT, printable};
use hotsync_node::{Executed, NodeError, NodeHandle};
use hotsync_proto::{OpDelivery, Role};
use hotsync_table::{SessionEntry, SessionGenerator, SessionKey, Upsert};

use crate::admin::Response;
use crate::display::{self, JobView, count};
use crate::{conntrack, grammar, vsys};

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

/// Lines in a row that are not conntrack entries after which an import
/// stops (a binary or unrelated file).
const MAX_SKIPPED_RUN: usize = 10_000;

fn set_bit(bits: &mut Vec<u64>, i: u64) {
    let word = usize::try_from(i / 64).unwrap_or(usize::MAX);
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    bits[word] |= 1 << (i % 64);
}

fn bit(bits: &[u64], i: u64) -> bool {
    usize::try_from(i / 64)
        .ok()
        .and_then(|w| bits.get(w))
        .is_some_and(|b| b & (1 << (i % 64)) != 0)
}

/// An import's input, bounded: ends with an error when the client has
/// gone away (checked a few times a second) or after a megabyte without a
/// line break (`/dev/zero`, a binary file). Conntrack lines are ~250 bytes.
struct Guarded<R> {
    inner: R,
    since_newline: usize,
    checked: Instant,
}

/// Bytes without a line break after which an import stops.
const MAX_WITHOUT_NEWLINE: usize = 1 << 20;

impl<R> Guarded<R> {
    fn new(inner: R) -> Self {
        Guarded {
            inner,
            since_newline: 0,
            checked: Instant::now(),
        }
    }
}

impl<R: std::io::Read> std::io::Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.checked.elapsed() >= Duration::from_millis(200) {
            self.checked = Instant::now();
            if crate::admin::client_gone() {
                return Err(std::io::Error::other("the client went away"));
            }
        }
        let n = self.inner.read(buf)?;
        match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(p) => self.since_newline = n - p - 1,
            None => self.since_newline += n,
        }
        if self.since_newline > MAX_WITHOUT_NEWLINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no line break in a megabyte: not a conntrack text dump",
            ));
        }
        Ok(n)
    }
}

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

    /// `hrp role active|standby`: returns once the data plane is there.
    fn hrp_role(&self, active: bool) -> Response {
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

    fn hrp_sync(&self, vsys: &str, rest: &[&str]) -> Response {
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

    fn display(&self, vsys: &str, rest: &[&str]) -> Response {
        match rest {
            ["hrp", "state"] => self.hrp_state(false),
            ["hrp", "state", "verbose"] => self.hrp_state(true),
            ["hrp", "sync-status"] => {
                let now = Instant::now();
                let jobs: Vec<JobView> = self
                    .node
                    .jobs()
                    .iter()
                    .map(|j| JobView::from_status(j, now))
                    .collect();
                Response::ok(display::sync_status(&jobs))
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
    fn display_json(&self, rest: &[&str]) -> Response {
        let now = Instant::now();
        let v = match rest {
            ["hrp", "state"] => {
                let name = self.node.with_store(sysname);
                crate::json::hrp_state(&self.node.state(), &name, now)
            }
            ["hrp", "statistics"] => crate::json::statistics(&self.node.state().peer.stats),
            ["hrp", "sync-status"] => {
                let jobs: Vec<JobView> = self
                    .node
                    .jobs()
                    .iter()
                    .map(|j| JobView::from_status(j, now))
                    .collect();
                crate::json::sync_status(&jobs)
            }
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

    /// `display session table [vsys NAME] [count | verbose]`.
    fn session_table(&self, vsys: &str, args: &[&str]) -> Response {
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

    /// `session generate COUNT [vsys NAME|ID] [ipv6] [seed N] [local-only-every N]`.
    fn generate(&self, vsys: &str, args: &[&str]) -> Response {
        let Some(n) = args.first().and_then(|a| a.parse::<u64>().ok()) else {
            return Response::unknown(
                "Error: expected `session generate COUNT [vsys NAME|ID] [ipv6] [seed N] [local-only-every N]`",
            );
        };
        let mut target = vsys.to_owned();
        let mut ipv6 = false;
        let mut seed = 1u64;
        let mut local_every = 0u64;
        let mut i = 1;
        while i < args.len() {
            let val = args.get(i + 1).copied();
            match (args[i], val) {
                ("ipv6", _) => {
                    ipv6 = true;
                    i += 1;
                    continue;
                }
                ("vsys", Some(v)) => target = v.to_owned(),
                ("seed", Some(v)) => match v.parse() {
                    Ok(s) => seed = s,
                    Err(_) => {
                        return Response::unknown(format!("Error: expected a seed, found `{v}`"));
                    }
                },
                ("local-only-every", Some(v)) => match v.parse() {
                    Ok(s) => local_every = s,
                    Err(_) => {
                        return Response::unknown(format!("Error: expected a number, found `{v}`"));
                    }
                },
                (w, _) => {
                    return Response::unknown(format!(
                        "Error: expected `vsys NAME`, `ipv6`, `seed N` or `local-only-every N`, found `{w}`"
                    ));
                }
            }
            i += 2;
        }
        let Some(id) = self.node.with_store(|s| vsys::resolve(s, &target)) else {
            return err(format!("virtual system `{target}` does not exist"));
        };
        let start = Instant::now();
        let now = unix_now();
        let generator = || {
            let mut g = SessionGenerator::new(seed, id, ipv6, now);
            g.local_only_every = local_every;
            g
        };
        let mut sessions = generator();
        let table = self.node.table();
        let (mut inserted, mut updated, mut local) = (0u64, 0u64, 0u64);
        // Which of the sessions made so far were new: what a rollback removes.
        let mut new_at: Vec<u64> = Vec::new();
        for i in 0..n {
            let (k, e) = sessions.next_session();
            match table.upsert(&k, &e) {
                Ok(Upsert::Inserted) => {
                    inserted += 1;
                    set_bit(&mut new_at, i);
                }
                Ok(Upsert::Updated) => updated += 1,
                Err(full) => {
                    // All or nothing: take back the sessions this command added.
                    let mut again = generator();
                    for j in 0..i {
                        let (k, _) = again.next_session();
                        if bit(&new_at, j) {
                            table.remove(&k);
                        }
                    }
                    return Response::fail(format!(
                        "Error: {full}; no session generated ({} would not fit; the {} new ones made before are removed again). Start the node with a larger --sessions-capacity.",
                        count(n),
                        count(inserted)
                    ));
                }
            }
            if !e.is_backup() {
                local += 1;
            }
        }
        let name = self
            .node
            .with_store(|s| vsys::name_of(&vsys::vsys_ids(s), id));
        Response::ok(format!(
            "Info: generated {} sessions in {name} (vsys id {id}{}): {} new, {} updated, {} local-only, in {}.",
            count(n),
            if ipv6 { ", IPv6" } else { "" },
            count(inserted),
            count(updated),
            count(local),
            display::secs(start.elapsed())
        ))
    }

    /// `session import FILE [vsys NAME|ID]`.
    ///
    /// Fails (status 1) when the file cannot be read (a directory, say),
    /// when reading stops on an error, and when nothing in it is a
    /// conntrack entry. The read is bounded: it stops when the client goes
    /// away, at a megabyte without a line break (`/dev/zero`), and after
    /// [`MAX_SKIPPED_RUN`] lines in a row that are not entries.
    fn import(&self, vsys: &str, args: &[&str]) -> Response {
        let (path, target) = match args {
            [p] => (*p, vsys.to_owned()),
            [p, "vsys", v] => (*p, (*v).to_owned()),
            _ => return Response::unknown("Error: expected `session import FILE [vsys NAME|ID]`"),
        };
        let shown_path = printable(path);
        let Some(id) = self.node.with_store(|s| vsys::resolve(s, &target)) else {
            return err(format!(
                "virtual system `{}` does not exist",
                printable(&target)
            ));
        };
        let file = match std::fs::File::open(path) {
            Ok(f) if f.metadata().is_ok_and(|m| m.is_dir()) => {
                return err(format!("cannot read {shown_path}: it is a directory"));
            }
            Ok(f) => std::io::BufReader::new(Guarded::new(f)),
            Err(e) => return err(format!("cannot read {shown_path}: {e}")),
        };
        // Streamed: a dump of millions of sessions is never held whole.
        let table = self.node.table();
        let (mut sessions, mut inserted, mut updated, mut nat) = (0u64, 0u64, 0u64, 0u64);
        let mut skipped: Vec<(usize, String)> = Vec::new();
        let mut skipped_count = 0usize;
        let mut skipped_run = 0usize;
        let mut failed = false;
        let mut o = String::new();
        let read = conntrack::for_each(file, id, unix_now(), |line, r| match r {
            Ok((k, e)) => {
                sessions += 1;
                skipped_run = 0;
                nat += u64::from(e.has_nat());
                match table.upsert(&k, &e) {
                    Ok(Upsert::Inserted) => inserted += 1,
                    Ok(Upsert::Updated) => updated += 1,
                    Err(full) => {
                        let _ = writeln!(o, "Error: {full}; import stopped.");
                        failed = true;
                        return false;
                    }
                }
                true
            }
            Err(why) => {
                skipped_count += 1;
                skipped_run += 1;
                if skipped.len() < 20 {
                    skipped.push((line, printable(&why).into_owned()));
                }
                if skipped_run >= MAX_SKIPPED_RUN {
                    let _ = writeln!(
                        o,
                        "Error: {} lines in a row are not conntrack entries; import stopped.",
                        count(MAX_SKIPPED_RUN as u64)
                    );
                    failed = true;
                    return false;
                }
                true
            }
        });
        if let Err(e) = read {
            let _ = writeln!(
                o,
                "Error: reading {shown_path}: {}; import stopped.",
                printable(&e.to_string())
            );
            failed = true;
        }
        if sessions == 0 && skipped_count > 0 {
            // Not a conntrack dump at all.
            failed = true;
        }
        // After an error that read nothing, a count of zeros says nothing.
        let read_nothing = sessions == 0 && skipped_count == 0;
        if !(failed && read_nothing) {
            let _ = writeln!(
                o,
                "Info: imported {} sessions from {shown_path} ({} new, {} updated, {} with NAT); {} lines skipped.",
                count(sessions),
                count(inserted),
                count(updated),
                count(nat),
                skipped_count
            );
        }
        for (line, why) in &skipped {
            let _ = writeln!(o, "  line {line}: {why}");
        }
        if skipped_count > skipped.len() {
            let _ = writeln!(o, "  ... {} more", skipped_count - skipped.len());
        }
        if failed {
            Response::fail(o)
        } else {
            Response::ok(o)
        }
    }

    /// `undo X` for an opaque line `X` of the configuration (read from the
    /// node file or synchronized): removable though `X` is not a command
    /// this shell knows.
    fn undoes_opaque(&self, vsys: &str, line: &str) -> bool {
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
    fn configure(&self, vsys: &str, line: &str) -> Response {
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
