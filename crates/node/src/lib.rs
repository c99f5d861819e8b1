//! Drives the sans-IO protocol ([`hotsync_proto::Peer`]) over mio TCP
//! sockets, and gives an embedding firewall its API.
//!
//! One event-loop thread per node owns the sockets, the timers and the
//! `Peer`; a second one, at the lowest CPU priority (`SCHED_IDLE`), applies the peer's
//! configuration. Data-plane threads write the [`SessionTable`] directly;
//! the table's change notifier wakes the loop through a mio
//! [`mio::Waker`]. The control plane talks to the loop through a channel
//! (also waking it).
//!
//! ```no_run
//! # use hotsync_node::*;
//! # fn f(cfg: NodeConfig) -> Result<(), NodeError> {
//! let node = Node::start(cfg)?;
//! let table = node.table().clone();        // give this to the data plane
//! let job = node.sync_connection_status()?; // `hrp sync connection-status`
//! let status = node.wait_job(job, std::time::Duration::from_secs(60));
//! node.shutdown();
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod config_worker;
mod event_loop;
mod short_timer;
mod sink;
#[cfg(target_os = "linux")]
mod sys;

use crossbeam_channel::{RecvTimeoutError, Sender, bounded, unbounded};
use hotsync_config::{ChangeOp, ConfigChange, ConfigStore, HrpSettings};
use hotsync_proto::{
    ConfigItems, JobStatus, OpDelivery, PeerState, ProtoConfig, RequestError, Role,
};
use hotsync_table::{SessionTable, TableConfig};
use mio::Waker;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Protocol settings (node id, priority, timers, key, ...).
    pub proto: ProtoConfig,
    /// Session table sizing.
    pub table: TableConfig,
    /// Session-channel listen address; the config channel listens on the
    /// next port.
    pub listen: SocketAddr,
    /// The peer's session-channel address; its config channel is on the
    /// next port.
    pub peer: SocketAddr,
    /// The running configuration (node-local `hrp` lines included).
    pub store: ConfigStore,
    /// Accept configuration commands while standby (`hrp standby config
    /// enable`). Off: the standby refuses them (they would diverge from
    /// the active, which is the one replicated).
    pub standby_config_enable: bool,
}

impl NodeConfig {
    /// Builds the node settings from a parsed configuration file: the
    /// node-local `hrp` lines give addresses, priority, timers and key.
    /// `hrp table shards N`, when present, overrides `table`'s shard count
    /// (the journal keys are split over the new count).
    pub fn from_store(store: ConfigStore, table: TableConfig) -> Result<NodeConfig, NodeError> {
        let s = HrpSettings::from_store(&store).map_err(|e| NodeError::Config(e.to_string()))?;
        let table = match s.table_shards {
            Some(n) => TableConfig::with_shards(table.max_sessions, n),
            None => table,
        };
        let listen = s
            .local
            .ok_or_else(|| NodeError::Config("missing `hrp local-address IP port P`".into()))?;
        let peer = s
            .remote
            .ok_or_else(|| NodeError::Config("missing `hrp remote-address IP port P`".into()))?;
        let node_id = u64::from(s.node_id.unwrap_or_else(|| {
            // Without an explicit id, derive one from the listen address:
            // the two nodes of a pair always differ there.
            let sa = listen.session_addr();
            let ip = match sa.ip() {
                std::net::IpAddr::V4(a) => u32::from(a),
                std::net::IpAddr::V6(a) => a.octets()[12..]
                    .iter()
                    .fold(0, |x, b| x << 8 | u32::from(*b)),
            };
            ip.rotate_left(16) ^ u32::from(sa.port())
        }));
        if s.encryption_key.is_some() && s.authentication_key.is_none() {
            return Err(NodeError::Config(
                "`hrp encryption-key` needs `hrp authentication-key` too (the keys of each connection are derived from both)".into(),
            ));
        }
        let proto = ProtoConfig {
            node_id,
            priority: s.priority,
            preempt_delay: s.preempt,
            hello_interval: s.hello_interval,
            dead_count: s.dead_count,
            psk: s.authentication_key.as_ref().map(|k| k.as_bytes().to_vec()),
            encryption_key: s.encryption_key.as_ref().map(|k| k.as_bytes().to_vec()),
            auto_sync_on_establish: s.auto_sync_on_establish,
            external_role: s.role_control_external,
            ..ProtoConfig::default()
        };
        Ok(NodeConfig {
            proto,
            table,
            listen: listen.session_addr(),
            peer: peer.session_addr(),
            standby_config_enable: s.standby_config_enable,
            store,
        })
    }
}

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration is incomplete or invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A listener could not bind (address in use, permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// Setting up the event loop failed.
    #[error("event loop: {0}")]
    Io(#[from] io::Error),
    /// The protocol refused the request.
    #[error("{0}")]
    Request(#[from] RequestError),
    /// The request is not allowed here; the text says why.
    #[error("{0}")]
    Refused(String),
    /// A configuration command failed.
    #[error("{0}")]
    Command(#[from] hotsync_config::CommandError),
    /// The node was shut down.
    #[error("the node is stopped")]
    Stopped,
    /// The node took longer than this to answer: its threads are short of
    /// CPU. The request may still be carried out (a job then shows in
    /// `display hrp sync-status`).
    #[error(
        "the node did not answer within {0:?} (its threads are short of CPU); the request may still be carried out"
    )]
    NoAnswer(Duration),
}

/// A snapshot of the node, for `display hrp state`.
#[derive(Debug, Clone)]
pub struct NodeState {
    /// This node's id.
    pub node_id: u64,
    /// Session-channel listen address.
    pub listen: SocketAddr,
    /// The peer's session-channel address.
    pub peer_addr: SocketAddr,
    /// Protocol state (role, relationship, counters).
    pub peer: PeerState,
    /// The last connection failure while the peer does not answer.
    pub connect_error: Option<String>,
    /// Connection attempts made.
    pub connect_attempts: u64,
    /// HRP priority.
    pub priority: u16,
    /// Preemption delay, if preemption is on.
    pub preempt_delay: Option<Duration>,
    /// Heartbeat interval.
    pub hello_interval: Duration,
    /// Missed heartbeats before the peer is dead.
    pub dead_count: u32,
    /// `hrp auto-sync on-establish`.
    pub auto_sync_on_establish: bool,
    /// `hrp standby config enable`.
    pub standby_config_enable: bool,
    /// `hrp auto-sync config static-route`.
    pub static_route_sync: bool,
    /// Recent role and relationship changes, oldest first.
    pub state_changes: Vec<(SystemTime, String)>,
    /// What the event loop counts itself (socket bytes, heartbeats).
    pub io: IoCounters,
    /// Most sessions the table holds (`TableConfig::max_sessions`).
    pub sessions_capacity: usize,
}

/// What the event loop counts itself, for metrics: the protocol counts
/// frames and records, the loop the bytes each socket moved.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct IoCounters {
    /// Bytes written to each connection's socket (session, config).
    pub bytes_tx: [u64; 2],
    /// Bytes read from each connection's socket (session, config).
    pub bytes_rx: [u64; 2],
    /// Configuration items of finished `hrp sync config` jobs (sent).
    pub config_items_tx: u64,
    /// Times the configuration thread held work for a second without
    /// finishing any and was raised out of `SCHED_IDLE` (the session
    /// threads left it no CPU) until its queue emptied.
    pub config_thread_raised: u64,
    /// When the last heartbeat from the peer arrived.
    pub last_heartbeat: Option<Instant>,
}

/// What the loop reports for `NodeHandle::state`: protocol state, last
/// connect error, connect attempts, recent state changes, I/O counters.
pub(crate) type LoopState = (
    PeerState,
    Option<String>,
    u64,
    Vec<(SystemTime, String)>,
    IoCounters,
);

/// A configuration command applied on this node.
#[derive(Clone, Debug)]
pub struct Executed {
    /// What changed.
    pub change: ConfigChange,
    /// What became of it for the peer; `None` when it is not synchronized
    /// at all (node-local, user or SSL VPN data, static routes without
    /// `hrp auto-sync config static-route`).
    pub delivery: Option<OpDelivery>,
}

/// How long a request waits for the event loop's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `sync_config` waits for the configuration thread's render.
/// That thread runs only on CPU the session work leaves, so a saturated
/// machine stretches a render of tens of milliseconds.
const RENDER_TIMEOUT: Duration = Duration::from_secs(60);

/// The answer to a request that starts a job.
pub(crate) type JobReply = Sender<Result<u64, RequestError>>;

pub(crate) enum Request {
    SyncSessions(JobReply),
    /// `hrp sync config`: the configuration thread renders the items (100k
    /// take tens of milliseconds of CPU, which it spends at its low
    /// priority), then the loop starts the job and answers.
    SyncConfig(JobReply),
    ConfigOp {
        op: u8,
        vsys: String,
        text: String,
        reply: Sender<OpDelivery>,
    },
    Jobs(Sender<Vec<JobStatus>>),
    SetRole(Role, Sender<Result<bool, RequestError>>),
    State(Sender<LoopState>),
    DropConnections,
    Shutdown,
}

/// State shared by the handle and the loop.
pub(crate) struct Shared {
    pub table: Arc<SessionTable>,
    pub store: Mutex<ConfigStore>,
    pub role: AtomicU8,
    pub established: AtomicBool,
    pub stopped: AtomicBool,
    /// Jobs ended (or the loop stopped) so far: a caller waiting for a job
    /// sleeps on [`Self::job_ended`] instead of asking the loop again and
    /// again, which would cost the loop a turn each time.
    jobs_ended: Mutex<u64>,
    job_ended: Condvar,
}

impl Shared {
    pub fn new(table: Arc<SessionTable>, store: ConfigStore) -> Self {
        Self {
            table,
            store: Mutex::new(store),
            role: AtomicU8::new(Role::Initial.to_u8()),
            established: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            jobs_ended: Mutex::new(0),
            job_ended: Condvar::new(),
        }
    }

    pub fn store(&self) -> MutexGuard<'_, ConfigStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A job ended or the loop stopped: wakes every [`Self::wait_job_end`].
    pub fn note_job_ended(&self) {
        *self
            .jobs_ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += 1;
        self.job_ended.notify_all();
    }

    /// How many jobs have ended so far.
    fn jobs_ended(&self) -> u64 {
        *self
            .jobs_ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps until more than `seen` jobs have ended, or until `deadline`.
    fn wait_job_end(&self, seen: u64, deadline: Instant) {
        let mut n = self
            .jobs_ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while *n == seen {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return;
            };
            n = self
                .job_ended
                .wait_timeout(n, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Starts nodes.
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Binds both listeners, spawns the event-loop thread, and returns the
    /// handle. Fails at once if an address is in use.
    pub fn start(cfg: NodeConfig) -> Result<NodeHandle, NodeError> {
        let config_listen = SocketAddr::new(cfg.listen.ip(), cfg.listen.port().wrapping_add(1));
        let bind = |addr: SocketAddr| {
            let l = StdListener::bind(addr).map_err(|source| NodeError::Bind { addr, source })?;
            l.set_nonblocking(true)?;
            Ok::<_, NodeError>(l)
        };
        let listeners = [bind(cfg.listen)?, bind(config_listen)?];
        let table = Arc::new(SessionTable::new(cfg.table.clone()));
        // A firewall's table is sized for its maximum: back it now rather
        // than fault pages in on the data plane's write path.
        table.prefault();
        let shared = Arc::new(Shared::new(table.clone(), cfg.store.clone()));
        let poll = mio::Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), event_loop::WAKER)?);
        {
            let w = waker.clone();
            table.set_change_notifier(Box::new(move || {
                let _ = w.wake();
            }));
        }
        let (tx, rx) = unbounded();
        let config =
            config_worker::ConfigWorker::spawn(cfg.proto.node_id, shared.clone(), waker.clone())?;
        let lp =
            event_loop::EventLoop::new(cfg.clone(), shared.clone(), poll, listeners, rx, config)?;
        let thread = std::thread::Builder::new()
            .name(format!("hotsync-node-{}", cfg.proto.node_id))
            .spawn(move || lp.run())?;
        Ok(NodeHandle {
            inner: Arc::new(HandleInner {
                shared,
                tx,
                waker,
                thread: Mutex::new(Some(thread)),
                cfg,
            }),
        })
    }
}

struct HandleInner {
    shared: Arc<Shared>,
    tx: Sender<Request>,
    waker: Arc<Waker>,
    thread: Mutex<Option<JoinHandle<()>>>,
    cfg: NodeConfig,
}

/// The control-plane and data-plane handle of a running node. Cheap to
/// clone; every clone talks to the same node.
#[derive(Clone)]
pub struct NodeHandle {
    inner: Arc<HandleInner>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("node_id", &self.inner.cfg.proto.node_id)
            .field("listen", &self.inner.cfg.listen)
            .finish()
    }
}

impl NodeHandle {
    fn request(&self, r: Request) -> Result<(), NodeError> {
        if self.inner.shared.stopped.load(Ordering::Acquire) {
            return Err(NodeError::Stopped);
        }
        self.inner.tx.send(r).map_err(|_| NodeError::Stopped)?;
        self.inner.waker.wake().map_err(NodeError::Io)
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Request) -> Result<T, NodeError> {
        self.ask_within(ASK_TIMEOUT, make)
    }

    fn ask_within<T>(
        &self,
        timeout: Duration,
        make: impl FnOnce(Sender<T>) -> Request,
    ) -> Result<T, NodeError> {
        let (tx, rx) = bounded(1);
        self.request(make(tx))?;
        rx.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => NodeError::NoAnswer(timeout),
            RecvTimeoutError::Disconnected => NodeError::Stopped,
        })
    }

    /// The session table, for data-plane threads.
    pub fn table(&self) -> &Arc<SessionTable> {
        &self.inner.shared.table
    }

    /// `hrp sync connection-status` (B2): starts a background batch sync of
    /// every backup-capable session; returns its job id at once.
    pub fn sync_connection_status(&self) -> Result<u64, NodeError> {
        Ok(self.ask(Request::SyncSessions)??)
    }

    /// `hrp sync config` (B1): starts a background batch sync of the
    /// syncable configuration of the root system and every virtual system
    /// (static routes only with `hrp auto-sync config static-route`), and
    /// returns its job id once the configuration thread has rendered the
    /// items (tens of milliseconds for 100k rules at its low priority;
    /// [`NodeError::NoAnswer`] after a minute without CPU).
    pub fn sync_config(&self) -> Result<u64, NodeError> {
        if !self.is_established() {
            return Err(RequestError::NotEstablished.into());
        }
        Ok(self.ask_within(RENDER_TIMEOUT, Request::SyncConfig)??)
    }

    /// Running jobs, then recently finished ones.
    pub fn jobs(&self) -> Vec<JobStatus> {
        self.ask(Request::Jobs).unwrap_or_default()
    }

    /// One job's status.
    pub fn job(&self, id: u64) -> Option<JobStatus> {
        self.jobs().into_iter().find(|j| j.id == id)
    }

    /// Blocks until job `id` ends or `timeout` passes; returns its last
    /// status. It asks the event loop once per job that ends, not on a
    /// timer, so waiting costs the session work nothing.
    pub fn wait_job(&self, id: u64, timeout: Duration) -> Option<JobStatus> {
        let deadline = Instant::now() + timeout;
        let shared = &self.inner.shared;
        loop {
            let seen = shared.jobs_ended();
            let j = self.job(id);
            if j.as_ref().is_none_or(|j| j.finished.is_some()) || Instant::now() >= deadline {
                return j;
            }
            shared.wait_job_end(seen, deadline);
        }
    }

    /// The node's state.
    pub fn state(&self) -> NodeState {
        let cfg = &self.inner.cfg;
        let (peer, connect_error, connect_attempts, state_changes, io) =
            self.ask(Request::State).unwrap_or_else(|_| {
                (
                    stopped_state(),
                    Some("node stopped".into()),
                    0,
                    Vec::new(),
                    IoCounters::default(),
                )
            });
        NodeState {
            node_id: cfg.proto.node_id,
            listen: cfg.listen,
            peer_addr: cfg.peer,
            peer,
            connect_error,
            connect_attempts,
            priority: cfg.proto.priority,
            preempt_delay: cfg.proto.preempt_delay,
            hello_interval: cfg.proto.hello_interval,
            dead_count: cfg.proto.dead_count,
            auto_sync_on_establish: cfg.proto.auto_sync_on_establish,
            standby_config_enable: cfg.standby_config_enable,
            static_route_sync: self.inner.shared.store().static_route_sync(),
            state_changes,
            io,
            sessions_capacity: cfg.table.max_sessions,
        }
    }

    /// `hrp role active|standby` with `hrp role-control external`: sets
    /// this node's HRP role (keepalived decides); refused when hotsync's
    /// own election decides. Returns whether the role changed.
    pub fn set_role(&self, role: Role) -> Result<bool, NodeError> {
        Ok(self.ask(|tx| Request::SetRole(role, tx))??)
    }

    /// This node's role now.
    pub fn role(&self) -> Role {
        Role::from_u8(self.inner.shared.role.load(Ordering::Acquire))
    }

    /// Whether the relationship is established now.
    pub fn is_established(&self) -> bool {
        self.inner.shared.established.load(Ordering::Acquire)
    }

    /// Runs one configuration command typed in `system-view` (of `vsys`,
    /// or the root system). On the active node a syncable change is queued
    /// for the peer (B3), and the result says what became of it. On the
    /// standby, commands that would sync are refused unless `hrp standby
    /// config enable`.
    pub fn execute_config(&self, vsys: Option<&str>, line: &str) -> Result<Executed, NodeError> {
        let mut store = self.inner.shared.store();
        let mut trial = store.clone();
        let change = trial.execute(vsys, line)?;
        let syncable = change.is_syncable(trial.static_route_sync());
        if syncable && self.role() == Role::Standby && !self.inner.cfg.standby_config_enable {
            return Err(NodeError::Refused(
                "Error: configuration is refused on the standby node; make the change on the active node (or enable `hrp standby config enable`)".into(),
            ));
        }
        // A rule goes with its place in the list (first-match order).
        let placement = match change.op {
            ChangeOp::Delete => None,
            ChangeOp::Add | ChangeOp::Modify => trial.placement(&change.vsys, &change.item),
        };
        *store = trial;
        drop(store);
        let delivery = if syncable {
            Some(self.ask(|reply| Request::ConfigOp {
                op: change.op.code(),
                vsys: change.vsys.clone(),
                text: change.item.render_placed(placement.as_ref()),
                reply,
            })?)
        } else {
            None
        };
        Ok(Executed { change, delivery })
    }

    /// Reads the running configuration.
    pub fn with_store<R>(&self, f: impl FnOnce(&ConfigStore) -> R) -> R {
        f(&self.inner.shared.store())
    }

    /// Closes both connections to the peer now (they are re-established as
    /// usual). For fault tests and operators who want a clean reconnect.
    pub fn drop_connections(&self) -> Result<(), NodeError> {
        self.request(Request::DropConnections)
    }

    /// Stops the event loop and waits for it. Idempotent.
    pub fn shutdown(&self) {
        let _ = self.request(Request::Shutdown);
        self.inner.shared.stopped.store(true, Ordering::Release);
        let t = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

/// Every item `hrp sync config` sends, rendered: the root system and every
/// virtual system, static routes only when enabled (B8, B9, B10).
pub(crate) fn syncable_config(shared: &Shared) -> ConfigItems {
    let rendered = {
        let store = shared.store();
        let routes = store.static_route_sync();
        // Rules carry their place in the list (first-match order).
        store.syncable_rendered(routes)
    };
    // Packed and the pairs freed here, with the store unlocked.
    rendered.into()
}

fn stopped_state() -> PeerState {
    PeerState {
        role: Role::Initial,
        role_reason: "stopped",
        role_since: Instant::now(),
        established: false,
        authenticated: false,
        encrypted: false,
        last_failure: None,
        peer: None,
        conn_phase: hotsync_proto::PerConn::from_fn(|_| hotsync_proto::Phase::Down),
        uncertain_shards: 0,
        config_queue: 0,
        peer_unsynced: Default::default(),
        incarnation: 0,
        config_backlog: 0,
        stats: Default::default(),
    }
}
