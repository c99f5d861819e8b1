//! The Prometheus endpoint of `hotsync node` (`hrp metrics listen IP port P`).
//!
//! Every scrape takes one snapshot of the node (`NodeHandle::state`, the
//! jobs, the table size) and renders it in the text exposition format
//! (version 0.0.4). The encoder is the dozen lines below rather than a
//! registry crate: every value already lives in the protocol's counters, so
//! there is nothing to register, only to print. Served by one plain thread
//! (one scrape at a time, bounded request, timeouts): a scraper cannot
//! reach the event loop except through the snapshot request.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hotsync_node::{NodeHandle, NodeState};
use hotsync_proto::{ConnKind, JobKind, JobState, JobStatus, Phase, Role};

/// Largest request read (a scraper sends a few hundred bytes).
const MAX_REQUEST: usize = 8 << 10;
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The text exposition format: `# HELP`, `# TYPE`, then samples.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a metric family.
    fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        self
    }

    /// One sample of the family just started.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = if value.is_infinite() {
            writeln!(self.out, " {}Inf", if value > 0.0 { "+" } else { "-" })
        } else {
            writeln!(self.out, " {value}")
        };
        self
    }

    /// A family with a single unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help).sample(name, &[], value);
    }

    pub fn into_string(self) -> String {
        self.out
    }
}

/// Renders a snapshot. `jobs`: running jobs, then recent finished ones.
pub fn render(st: &NodeState, jobs: &[JobStatus], sessions: usize, now: Instant) -> String {
    let s = &st.peer.stats;
    let mut e = Exposition::default();
    let n = |v: u64| v as f64;
    let flag = |b: bool| if b { 1.0 } else { 0.0 };

    e.single(
        "hotsync_peer_up",
        "gauge",
        "1 while the session connection to the peer is up (handshake done).",
        flag(st.peer.conn_phase[ConnKind::Session] == Phase::Up),
    );
    e.single(
        "hotsync_relationship_established",
        "gauge",
        "1 while the HRP relationship is established (roles agreed).",
        flag(st.peer.established),
    );
    e.family(
        "hotsync_peer_incomplete",
        "gauge",
        "1 while the relationship lacks this batch sync: a new relationship (also after either node restarted) synchronizes nothing from before it (B4) until `hrp sync connection-status` and `hrp sync config` complete.",
    );
    let unsynced = st.peer.peer_unsynced;
    for (sync, missing) in [
        ("connection-status", unsynced.connection_status),
        ("config", unsynced.config),
    ] {
        e.sample("hotsync_peer_incomplete", &[("sync", sync)], flag(missing));
    }
    e.family(
        "hotsync_relationships_total",
        "counter",
        "Relationships established again after an outage: resumed with the same peer process (what changed meanwhile delivered), or new with a restarted one (B4).",
    );
    for (how, v) in [
        ("resumed", s.relationships_resumed),
        ("peer_restarted", s.peer_restarts),
    ] {
        e.sample("hotsync_relationships_total", &[("how", how)], n(v));
    }
    e.family(
        "hotsync_outage_dropped_total",
        "counter",
        "What was kept for a peer process that came back restarted and was not sent (a new relationship, B4).",
    );
    for (what, v) in [
        ("session_changes", s.outage_changes_dropped),
        ("shards", s.outage_shards_dropped),
        ("config_changes", s.outage_config_ops_dropped),
    ] {
        e.sample("hotsync_outage_dropped_total", &[("what", what)], n(v));
    }
    e.family(
        "hotsync_role",
        "gauge",
        "This node's role: 1 for the current role, 0 for the others.",
    );
    for r in [Role::Initial, Role::Active, Role::Standby] {
        let name = r.to_string();
        e.sample("hotsync_role", &[("role", &name)], flag(st.peer.role == r));
    }
    e.single(
        "hotsync_heartbeat_age_seconds",
        "gauge",
        "Seconds since the last heartbeat from the peer (+Inf: none yet).",
        st.io.last_heartbeat.map_or(f64::INFINITY, |t| {
            now.saturating_duration_since(t).as_secs_f64()
        }),
    );

    let per_channel = |e: &mut Exposition, name: &str, help: &str, v: [u64; 2]| {
        e.family(name, "counter", help);
        for (ch, v) in ["session", "config"].into_iter().zip(v) {
            e.sample(name, &[("channel", ch)], n(v));
        }
    };
    per_channel(
        &mut e,
        "hotsync_records_sent_total",
        "Records sent: session upserts (incremental, batch sync, resync); configuration changes and batch items (batch items counted when the job ends).",
        [s.records_tx, s.config_ops_tx + st.io.config_items_tx],
    );
    per_channel(
        &mut e,
        "hotsync_records_received_total",
        "Records received and applied: session upserts; configuration changes and batch items.",
        [s.records_rx, s.config_ops_rx + s.config_items_rx],
    );
    per_channel(
        &mut e,
        "hotsync_bytes_sent_total",
        "Bytes written to the connection's socket.",
        st.io.bytes_tx,
    );
    per_channel(
        &mut e,
        "hotsync_bytes_received_total",
        "Bytes read from the connection's socket.",
        st.io.bytes_rx,
    );
    e.single(
        "hotsync_session_deletes_sent_total",
        "counter",
        "Session deletions sent.",
        n(s.deletes_tx),
    );
    e.single(
        "hotsync_session_deletes_received_total",
        "counter",
        "Session deletions applied.",
        n(s.deletes_rx),
    );
    e.single(
        "hotsync_session_batches_sent_total",
        "counter",
        "Session record frames sent (incremental batches, batch sync and resync frames).",
        n(s.batches_tx),
    );
    e.single(
        "hotsync_session_batches_received_total",
        "counter",
        "Session record frames received and applied.",
        n(s.batches_rx),
    );
    e.single(
        "hotsync_config_thread_raised_total",
        "counter",
        "Times the configuration thread held work for a second without finishing any and was raised out of SCHED_IDLE until its queue emptied.",
        n(st.io.config_thread_raised),
    );
    e.family(
        "hotsync_resync_shards_total",
        "counter",
        "Shards marked uncertain (to be resent whole), by cause.",
    );
    for (cause, v) in [
        ("journal_overflow", s.resync_overflow),
        ("disconnect", s.resync_disconnect),
        ("peer_request", s.resync_request),
        ("step_down", s.resync_step_down),
        ("table_full", s.resync_table_full),
    ] {
        e.sample("hotsync_resync_shards_total", &[("cause", cause)], n(v));
    }
    e.single(
        "hotsync_resynced_shards_total",
        "counter",
        "Shards resent whole to the peer.",
        n(s.shards_resynced),
    );
    e.single(
        "hotsync_uncertain_shards",
        "gauge",
        "Shards waiting for a resync.",
        st.peer.uncertain_shards as f64,
    );
    e.single(
        "hotsync_journal_overflows_total",
        "counter",
        "Change-journal overflows (each turns into a shard resync).",
        n(s.journal_overflows),
    );
    e.family(
        "hotsync_errors_total",
        "counter",
        "Errors by kind: protocol errors (the connection was dropped), refused records, dropped changes.",
    );
    let mut errors: Vec<(&str, u64)> = s.errors.iter().map(|(k, v)| (*k, *v)).collect();
    errors.push(("table_full", s.apply_table_full));
    errors.push(("config_queue_full", s.config_ops_dropped));
    errors.push(("step_down_lost_shards", s.step_down_lost_shards));
    for (kind, v) in errors {
        e.sample("hotsync_errors_total", &[("kind", kind)], n(v));
    }
    e.single(
        "hotsync_connections_total",
        "counter",
        "Connections that completed their handshake.",
        n(s.connections),
    );
    e.single(
        "hotsync_disconnects_total",
        "counter",
        "Connections lost.",
        n(s.disconnects),
    );
    e.single(
        "hotsync_config_queue",
        "gauge",
        "Configuration changes queued for the peer.",
        st.peer.config_queue as f64,
    );
    e.single(
        "hotsync_config_backlog",
        "gauge",
        "Configuration items received from the peer and not yet applied.",
        st.peer.config_backlog as f64,
    );
    e.single(
        "hotsync_sessions",
        "gauge",
        "Sessions in the table.",
        sessions as f64,
    );
    e.single(
        "hotsync_sessions_capacity",
        "gauge",
        "Most sessions the table holds (--sessions-capacity).",
        st.sessions_capacity as f64,
    );

    let kinds = [JobKind::ConnectionStatus, JobKind::Config];
    e.family(
        "hotsync_sync_jobs_running",
        "gauge",
        "Batch-sync jobs running, by kind.",
    );
    for k in kinds {
        let running = jobs
            .iter()
            .filter(|j| j.kind == k && j.state == JobState::Running)
            .count();
        e.sample(
            "hotsync_sync_jobs_running",
            &[("kind", k.name())],
            running as f64,
        );
    }
    e.family(
        "hotsync_sync_job_progress_ratio",
        "gauge",
        "Acknowledged / total items of the latest batch-sync job of the kind (1 when it ended done).",
    );
    for k in kinds {
        // Running jobs come first, then finished ones, oldest first.
        let latest = jobs
            .iter()
            .filter(|j| j.kind == k)
            .max_by_key(|j| (j.state == JobState::Running, j.id));
        if let Some(j) = latest {
            let ratio = if j.state == JobState::Done || j.total == 0 {
                1.0
            } else {
                (j.acked as f64 / j.total as f64).min(1.0)
            };
            e.sample(
                "hotsync_sync_job_progress_ratio",
                &[("kind", k.name())],
                ratio,
            );
        }
    }
    e.into_string()
}

/// The endpoint's thread; stopped on drop.
pub struct Exporter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Binds `addr` and serves `GET /metrics` from a thread.
    pub fn start(addr: SocketAddr, node: NodeHandle) -> std::io::Result<Exporter> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("hotsync-metrics".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if let Err(e) = serve(stream, &node) {
                                tracing::debug!(error = %e, "metrics: request failed");
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "metrics: accept failed");
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            })?;
        Ok(Exporter {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (up to the blank line, bounded) and answers it.
fn serve(mut stream: TcpStream, node: &NodeHandle) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut req = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && !req.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
        if req.len() > MAX_REQUEST {
            return respond(&mut stream, "431 Request Header Fields Too Large", "");
        }
    }
    let line = req.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return respond(&mut stream, "405 Method Not Allowed", "");
    }
    if path != "/metrics" && !path.starts_with("/metrics?") {
        return respond(&mut stream, "404 Not Found", "try /metrics\n");
    }
    let state = node.state();
    let body = render(&state, &node.jobs(), node.table().len(), Instant::now());
    respond(&mut stream, "200 OK", &body)
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}
