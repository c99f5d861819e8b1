//! Text of the `display ...` commands.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use hotsync_node::NodeState;
use hotsync_proto::{JobKind, JobState, JobStatus, Stats};
use hotsync_table::{SessionEntry, SessionKey, SessionState, TableDigest, addr_from_bytes};

/// A job as the CLI shows and waits for it (built from a [`JobStatus`] on
/// the node, or parsed from the `_job` answer on the client).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobView {
    pub id: u64,
    pub kind: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub error: String,
    pub total: u64,
    pub sent: u64,
    pub acked: u64,
    pub restarts: u32,
    pub elapsed: Duration,
    /// Config jobs: the peer's counts (added, equal, conflicts, rejected).
    pub config: Option<[u64; 4]>,
}

impl JobView {
    pub fn from_status(j: &JobStatus, now: Instant) -> JobView {
        let (state, error) = match &j.state {
            JobState::Running => ("running", String::new()),
            JobState::Done => ("done", String::new()),
            JobState::Failed(why) => ("failed", why.clone()),
        };
        JobView {
            id: j.id,
            kind: j.kind.name().to_owned(),
            state: state.to_owned(),
            error,
            total: j.total,
            sent: j.sent,
            acked: j.acked,
            restarts: j.restarts,
            elapsed: j.elapsed(now),
            config: j
                .config
                .map(|c| [c.added, c.equal, c.conflicts, c.rejected]),
        }
    }

    pub fn finished(&self) -> bool {
        self.state != "running"
    }

    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.acked as f64 / s } else { 0.0 }
    }

    pub fn eta(&self) -> Option<Duration> {
        let r = self.rate();
        (!self.finished() && r > 0.0)
            .then(|| Duration::from_secs_f64(self.total.saturating_sub(self.acked) as f64 / r))
    }

    /// The one-line machine form answered to `_job N`.
    pub fn to_wire(&self) -> String {
        let [a, e, c, r] = self.config.unwrap_or_default();
        format!(
            "id={} kind={} state={} total={} sent={} acked={} restarts={} elapsed_us={} config={} added={a} equal={e} conflicts={c} rejected={r} error={}",
            self.id,
            self.kind,
            self.state,
            self.total,
            self.sent,
            self.acked,
            self.restarts,
            // Microseconds: a small config job ends within a millisecond,
            // and its rate must not read 0/s.
            self.elapsed.as_micros(),
            u8::from(self.config.is_some()),
            self.error.replace('\n', " "),
        )
    }

    /// Parses [`JobView::to_wire`].
    pub fn from_wire(line: &str) -> Option<JobView> {
        let (head, error) = line.trim_end().split_once(" error=")?;
        let mut v = JobView {
            error: error.to_owned(),
            ..JobView::default()
        };
        let mut cfg = [0u64; 4];
        let mut has_cfg = false;
        for kv in head.split_whitespace() {
            let (k, val) = kv.split_once('=')?;
            let n = || val.parse::<u64>().ok();
            match k {
                "id" => v.id = n()?,
                "kind" => v.kind = val.to_owned(),
                "state" => v.state = val.to_owned(),
                "total" => v.total = n()?,
                "sent" => v.sent = n()?,
                "acked" => v.acked = n()?,
                "restarts" => v.restarts = u32::try_from(n()?).ok()?,
                "elapsed_us" => v.elapsed = Duration::from_micros(n()?),
                "config" => has_cfg = val == "1",
                "added" => cfg[0] = n()?,
                "equal" => cfg[1] = n()?,
                "conflicts" => cfg[2] = n()?,
                "rejected" => cfg[3] = n()?,
                _ => {}
            }
        }
        v.config = has_cfg.then_some(cfg);
        Some(v)
    }

    /// The human summary printed when a job ends (and by `wait`).
    pub fn summary(&self) -> String {
        let what = if self.kind == JobKind::Config.name() {
            "items"
        } else {
            "entries"
        };
        let mut s = match self.state.as_str() {
            "done" if self.total == 0 && self.acked == 0 => format!(
                "Info: job {} ({}) finished: nothing to send (0 {what}).",
                self.id, self.kind
            ),
            "done" if self.acked > self.total => format!(
                "Info: job {} ({}) finished: {} {what} acknowledged in {}, {}/s ({} when it started; entries written during the walk are included).",
                self.id,
                self.kind,
                count(self.acked),
                secs(self.elapsed),
                count(self.rate() as u64),
                count(self.total)
            ),
            "done" => format!(
                "Info: job {} ({}) finished: {} of {} {what} acknowledged in {}, {}/s.",
                self.id,
                self.kind,
                count(self.acked),
                count(self.total),
                secs(self.elapsed),
                count(self.rate() as u64)
            ),
            "failed" => format!(
                "Error: job {} ({}) failed after {} of {} {what}: {}",
                self.id,
                self.kind,
                count(self.acked),
                count(self.total),
                self.error
            ),
            _ => format!(
                "Info: job {} ({}) is running: {} of {} {what} acknowledged.",
                self.id,
                self.kind,
                count(self.acked),
                count(self.total)
            ),
        };
        if let Some([a, e, c, r]) = self.config {
            let _ = write!(
                s,
                "\n      peer: {a} added, {e} equal, {c} conflicts, {r} rejected."
            );
            if c > 0 {
                s.push_str(
                    "\n      Run `display hrp configuration conflicts` on the peer to see them.",
                );
            }
        }
        s
    }
}

/// `1234567` -> `1,234,567`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in seconds with sensible precision.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 100.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.0} s")
    }
}

fn ago(t: SystemTime) -> String {
    match SystemTime::now().duration_since(t) {
        Ok(d) => format!("{} ago", secs(d)),
        Err(_) => "just now".into(),
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "enabled" } else { "disabled" }
}

/// Whether the relationship synchronized what predates it (B4): a new
/// relationship (also after either node restarted) leaves the peer
/// incomplete until a batch sync of each kind completes.
pub fn peer_sync(p: &hotsync_proto::PeerState) -> String {
    let missing = p.peer_unsynced.commands();
    if missing.is_empty() {
        if p.peer.is_some() {
            "complete".into()
        } else {
            "no relationship yet".into()
        }
    } else {
        format!("peer incomplete: run `{}`", missing.join("` and `"))
    }
}

/// `display hrp state [verbose]`.
pub fn hrp_state(st: &NodeState, sysname: &str, verbose: bool) -> String {
    let p = &st.peer;
    let mut o = String::new();
    let since = Instant::now().saturating_duration_since(p.role_since);
    let _ = writeln!(o, " HRP state of {sysname} (node-id {})", st.node_id);
    let _ = writeln!(
        o,
        "  Role:               {} ({}), for {}",
        p.role,
        p.role_reason,
        secs(since)
    );
    let relation = if p.established {
        if p.encrypted {
            "established (encrypted with AES-256-GCM, authenticated with the pre-shared key)"
        } else if p.authenticated {
            "established (authenticated with the pre-shared key, not encrypted)"
        } else {
            "established (not authenticated: no pre-shared key)"
        }
    } else {
        "not established"
    };
    let _ = writeln!(o, "  Relationship:       {relation}");
    let _ = writeln!(o, "  Peer sync:          {}", peer_sync(p));
    match &p.peer {
        Some(peer) => {
            let _ = writeln!(
                o,
                "  Peer:               {}  node-id {}  priority {}  role {}{}",
                st.peer_addr,
                peer.node_id,
                peer.priority,
                peer.role,
                if peer.preempt { "  preempt" } else { "" }
            );
        }
        None => {
            let _ = writeln!(o, "  Peer:               {}  (not heard yet)", st.peer_addr);
        }
    }
    if !p.established {
        if let Some(why) = &p.last_failure {
            let _ = writeln!(o, "  Last failure:       {why}");
        }
        if let Some(err) = &st.connect_error {
            let _ = writeln!(
                o,
                "  Peer not answering: {err} (attempt {}, retrying)",
                st.connect_attempts
            );
        }
    }
    let _ = writeln!(
        o,
        "  Channels:           session {}, config {}",
        p.conn_phase.session.name(),
        p.conn_phase.config.name()
    );
    let _ = writeln!(
        o,
        "  Local:              {} (config channel port {})  priority {}",
        st.listen,
        st.listen.port().wrapping_add(1),
        st.priority
    );
    let _ = writeln!(
        o,
        "  Preempt:            {}",
        st.preempt_delay.map_or_else(
            || "disabled".to_owned(),
            |d| format!("enabled, delay {}", secs(d))
        )
    );
    let _ = writeln!(
        o,
        "  Hello interval:     {} ms, dead count {} (peer down after {} ms of silence)",
        st.hello_interval.as_millis(),
        st.dead_count,
        (st.hello_interval * st.dead_count.max(1)).as_millis()
    );
    let _ = writeln!(
        o,
        "  Incremental sync:   {}",
        if p.established {
            "running (relationship established)"
        } else {
            "waiting for the relationship"
        }
    );
    let _ = writeln!(
        o,
        "  Auto-sync on establish: {}",
        on_off(st.auto_sync_on_establish)
    );
    let _ = writeln!(o, "  Static-route sync:  {}", on_off(st.static_route_sync));
    let _ = writeln!(
        o,
        "  Standby config:     {}",
        on_off(st.standby_config_enable)
    );
    let s = &p.stats;
    let _ = writeln!(
        o,
        "  Counters:           {} records sent, {} applied, {} config changes sent, {} applied, {} resyncs, {} errors",
        count(s.records_tx),
        count(s.records_rx),
        count(s.config_ops_tx),
        count(s.config_ops_rx),
        count(s.shards_resynced),
        count(s.error_total())
    );
    let _ = writeln!(
        o,
        "  Uncertain shards:   {}   Config queue: {}   Config backlog: {}",
        p.uncertain_shards, p.config_queue, p.config_backlog
    );
    match st.state_changes.last() {
        Some((t, what)) => {
            let _ = writeln!(o, "  Last state change:  {} ({})", what, ago(*t));
        }
        None => {
            let _ = writeln!(o, "  Last state change:  none");
        }
    }
    if verbose {
        let _ = writeln!(o, "  State changes (oldest first):");
        for (t, what) in &st.state_changes {
            let _ = writeln!(o, "    {:>12}  {what}", ago(*t));
        }
        o.push_str(&statistics(s));
    }
    o
}

/// `display hrp statistics`.
pub fn statistics(s: &Stats) -> String {
    let mut o = String::new();
    let rows: [(&str, u64, u64); 7] = [
        ("frames", s.frames_tx, s.frames_rx),
        ("bytes", s.bytes_tx, s.bytes_rx),
        ("session batches", s.batches_tx, s.batches_rx),
        ("session records", s.records_tx, s.records_rx),
        ("session deletions", s.deletes_tx, s.deletes_rx),
        ("acknowledgements", s.acks_tx, s.acks_rx),
        ("heartbeats", s.heartbeats_tx, s.heartbeats_rx),
    ];
    let _ = writeln!(o, " HRP statistics");
    let _ = writeln!(o, "  {:<26} {:>15} {:>15}", "", "sent", "received");
    for (name, tx, rx) in rows {
        let _ = writeln!(o, "  {name:<26} {:>15} {:>15}", count(tx), count(rx));
    }
    let _ = writeln!(
        o,
        "  {:<26} {:>15} {:>15}",
        "config changes",
        count(s.config_ops_tx),
        count(s.config_ops_rx)
    );
    let _ = writeln!(
        o,
        "  {:<26} {:>15} {:>15}",
        "config batch items",
        "-",
        count(s.config_items_rx)
    );
    let single: [(&str, u64); 24] = [
        ("connections established", s.connections),
        ("connections lost", s.disconnects),
        ("shards resynced", s.shards_resynced),
        ("  after journal overflow", s.resync_overflow),
        ("  after disconnect", s.resync_disconnect),
        ("  on peer request", s.resync_request),
        ("  after stepping down", s.resync_step_down),
        ("  after a full table", s.resync_table_full),
        ("  crossed by own changes", s.resync_crossed),
        ("step-down lost shards", s.step_down_lost_shards),
        ("split brain: kept own", s.split_brain_kept_own),
        ("standby batch: kept own", s.standby_batch_kept_own),
        ("step-down walks cancelled", s.step_down_walks_cancelled),
        ("stale entries removed", s.resync_removed),
        ("journal overflows", s.journal_overflows),
        ("changes before establish", s.changes_before_establish),
        ("records refused (table full)", s.apply_table_full),
        ("config changes dropped", s.config_ops_dropped),
        ("relationships resumed", s.relationships_resumed),
        ("peer restarts", s.peer_restarts),
        ("  outage changes dropped", s.outage_changes_dropped),
        ("  outage shards dropped", s.outage_shards_dropped),
        ("  outage config dropped", s.outage_config_ops_dropped),
        ("errors", s.error_total()),
    ];
    for (name, v) in single {
        let _ = writeln!(o, "  {name:<30} {:>11}", count(v));
    }
    for (kind, n) in &s.errors {
        let _ = writeln!(o, "    {kind:<28} {:>11}", count(*n));
    }
    o
}

/// `display hrp sync-status`.
pub fn sync_status(jobs: &[JobView]) -> String {
    if jobs.is_empty() {
        return "Info: no batch sync has run since the node started.\n".into();
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "  {:>4}  {:<18} {:<8} {:>21} {:>7} {:>12} {:>9} {:>8}",
        "Job", "Kind", "State", "Acked/Total", "Done", "Rate/s", "Elapsed", "ETA"
    );
    for j in jobs {
        let pct = if j.total == 0 {
            100.0
        } else {
            j.acked as f64 * 100.0 / j.total as f64
        };
        let _ = writeln!(
            o,
            "  {:>4}  {:<18} {:<8} {:>21} {:>6.1}% {:>12} {:>9} {:>8}",
            j.id,
            j.kind,
            j.state,
            format!("{}/{}", count(j.acked), count(j.total)),
            pct,
            count(j.rate() as u64),
            secs(j.elapsed),
            j.eta().map_or_else(|| "-".into(), secs)
        );
        if let Some([a, e, c, r]) = j.config {
            let _ = writeln!(
                o,
                "        result: {a} added, {e} equal, {c} conflicts, {r} rejected"
            );
        }
        if !j.error.is_empty() {
            let _ = writeln!(o, "        error: {}", j.error);
        }
        if j.restarts > 0 {
            let _ = writeln!(o, "        resumed {} times after reconnects", j.restarts);
        }
    }
    o
}

fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        n => format!("proto{n}"),
    }
}

fn endpoint(family: u8, addr: &[u8; 16], port: u16) -> String {
    let a = addr_from_bytes(family, addr);
    if a.is_ipv6() {
        format!("[{a}]:{port}")
    } else {
        format!("{a}:{port}")
    }
}

/// One session, brief.
pub fn session_brief(vsys: &str, k: &SessionKey, e: &SessionEntry) -> String {
    let icmp = k.protocol == 1 || k.protocol == 58;
    let mut s = if icmp {
        // ICMP keys carry the identifier and type/code in the port fields.
        format!(
            "  {:<6} vsys {:<8} {} --> {}  type {} code {} id {}",
            proto_name(k.protocol),
            vsys,
            addr_from_bytes(k.family, &k.src_addr),
            addr_from_bytes(k.family, &k.dst_addr),
            k.dst_port >> 8,
            k.dst_port & 0xff,
            k.src_port
        )
    } else {
        format!(
            "  {:<6} vsys {:<8} {} --> {}",
            proto_name(k.protocol),
            vsys,
            endpoint(k.family, &k.src_addr, k.src_port),
            endpoint(k.family, &k.dst_addr, k.dst_port)
        )
    };
    if e.has_nat() {
        let _ = write!(
            s,
            "  NAT {} --> {}",
            endpoint(k.family, &e.nat.src_addr, e.nat.src_port),
            endpoint(k.family, &e.nat.dst_addr, e.nat.dst_port)
        );
    }
    if !e.is_backup() {
        s.push_str("  local-only");
    }
    s
}

/// One session, verbose.
pub fn session_verbose(vsys: &str, k: &SessionKey, e: &SessionEntry) -> String {
    let state = SessionState::from_u8(e.state).map_or("?", SessionState::name);
    let mut s = session_brief(vsys, k, e);
    let _ = write!(
        s,
        "\n    State: {state}  TTL: {} s  Created: {}  Last seen: {}\n    Zones: {} --> {}  Policy: {}  App: {}  Flags:{}{}{}\n    Packets: {}/{}  Bytes: {}/{}",
        e.timeout,
        e.created,
        e.last_seen,
        e.src_zone,
        e.dst_zone,
        e.policy_id,
        e.app_id,
        if e.is_backup() {
            " backup"
        } else {
            " local-only"
        },
        if e.has_nat() { " nat" } else { "" },
        if e.flags & hotsync_table::flags::ASSURED != 0 {
            " assured"
        } else {
            ""
        },
        e.packets[0],
        e.packets[1],
        e.bytes[0],
        e.bytes[1]
    );
    s
}

/// `display session table digest`.
pub fn digest(d: &TableDigest, total: usize) -> String {
    let mut o = String::new();
    let _ = writeln!(o, " Session table digest ({} shards)", d.shards.len());
    for (i, v) in d.shards.iter().enumerate() {
        let _ = writeln!(o, "  shard {i:>4}  {v:016x}");
    }
    let _ = writeln!(o, " Combined:  {:016x}", d.combined());
    let _ = writeln!(
        o,
        " Entries:   {} (backup-capable, in the digest)",
        d.entries
    );
    let _ = writeln!(o, " Sessions:  {total} (all, local-only included)");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node state whose peer has sent configuration not yet applied.
    fn state_with_backlog(config_backlog: usize) -> NodeState {
        let addr: std::net::SocketAddr = "127.0.0.1:18514".parse().expect("addr");
        NodeState {
            node_id: 2,
            listen: addr,
            peer_addr: addr,
            peer: hotsync_proto::PeerState {
                role: hotsync_proto::Role::Standby,
                role_reason: "peer has higher priority",
                role_since: Instant::now(),
                established: true,
                authenticated: false,
                encrypted: false,
                last_failure: None,
                peer: None,
                conn_phase: hotsync_proto::PerConn::from_fn(|_| hotsync_proto::Phase::Up),
                uncertain_shards: 0,
                config_queue: 3,
                peer_unsynced: Default::default(),
                incarnation: 1,
                config_backlog,
                stats: Stats::default(),
            },
            connect_error: None,
            connect_attempts: 0,
            priority: 100,
            preempt_delay: None,
            hello_interval: Duration::from_secs(1),
            dead_count: 3,
            auto_sync_on_establish: false,
            standby_config_enable: false,
            static_route_sync: false,
            state_changes: Vec::new(),
            io: Default::default(),
            sessions_capacity: 1000,
        }
    }

    #[test]
    fn config_backlog_is_shown_in_text_json_and_metrics() {
        let st = state_with_backlog(777);
        let text = hrp_state(&st, "fw-b", false);
        assert!(
            text.contains("Config queue: 3   Config backlog: 777"),
            "{text}"
        );
        let json = crate::json::hrp_state(&st, "fw-b", Instant::now());
        assert_eq!(json["config_backlog"], 777);
        assert_eq!(json["config_queue"], 3);
        let metrics = crate::metrics::render(&st, &[], 0, Instant::now());
        assert!(
            metrics.contains("# TYPE hotsync_config_backlog gauge\nhotsync_config_backlog 777\n"),
            "{metrics}"
        );
    }

    #[test]
    fn job_wire_round_trip() {
        let j = JobView {
            id: 7,
            kind: "config".into(),
            state: "failed".into(),
            error: "peer went away = gone".into(),
            total: 10,
            sent: 9,
            acked: 8,
            restarts: 1,
            elapsed: Duration::from_millis(1234),
            config: Some([1, 2, 3, 4]),
        };
        assert_eq!(JobView::from_wire(&j.to_wire()), Some(j));
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
    }
}
