//! The event loop: one thread, mio readiness, the protocol in the middle.
//!
//! Sockets are edge-triggered, so every read and write loops until
//! `WouldBlock`. The session connection is always serviced before the
//! config connection, and configuration is parsed and applied on the
//! configuration thread (`config_worker.rs`), never here.

use crate::config_worker::{ConfigWorker, Output, Task};
use crate::short_timer::ShortTimer;
use crate::{IoCounters, NodeConfig, Request, Shared};
use crossbeam_channel::Receiver;
use hotsync_proto::{Action, ConnKind, Event, Peer, Phase};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(crate) const WAKER: Token = Token(0);
const LISTEN: [Token; 2] = [Token(1), Token(2)];
const CONN: [Token; 2] = [Token(3), Token(4)];
const SHORT_TIMER: Token = Token(5);

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
const STATE_HISTORY: usize = 32;
/// The aging sweep goes in small steps: `AGING_BUDGET` slots of the whole
/// table every `AGING_PERIOD` (about 400k slots/s, a step of some tens of
/// µs), never a whole-table pass that would stall the loop and the
/// replication behind it (a per-shard budget at 256 shards had made it a
/// 1M-slot scan of several ms once a second).
const AGING_PERIOD: Duration = Duration::from_millis(10);
const AGING_BUDGET: usize = 4096;
/// Bytes one connection may read, or write, before the loop moves on to
/// the other work (timers, heartbeats, acknowledgements, the other
/// connection). Without a bound, a peer that sends faster than this node
/// applies keeps the read loop busy forever: no heartbeat or ack goes out
/// and the peer declares this node dead.
const IO_BUDGET: usize = 1 << 20;
/// The config connection reads less per turn: the session connection must
/// not wait behind a long run of configuration frames (invariant 5).
const CONFIG_READ_BUDGET: usize = 64 << 10;

#[derive(Default)]
struct Slot {
    stream: Option<TcpStream>,
    /// A non-blocking connect is in progress.
    connecting: bool,
    connect_started: Option<Instant>,
    next_attempt: Option<Instant>,
    backoff: Duration,
    /// The connection completed its handshake (`Event::Connected`).
    up: bool,
    /// Bytes read and written before that: they join the I/O counters only
    /// when it completes, so a stranger moves no counter but its error.
    handshake_rx: u64,
    handshake_tx: u64,
    /// The last read or write stopped at [`IO_BUDGET`], not at
    /// `WouldBlock`: no readiness edge will come, so poll again at once.
    read_more: bool,
    write_more: bool,
    /// Reading stopped because the protocol's configuration backlog is
    /// full: read again once it is not (no readiness edge will come).
    read_paused: bool,
}

pub(crate) struct EventLoop {
    cfg: NodeConfig,
    shared: Arc<Shared>,
    poll: Poll,
    listeners: [TcpListener; 2],
    rx: Receiver<Request>,
    peer: Peer,
    /// Applies the peer's configuration off this thread.
    config: ConfigWorker,
    /// Deadlines sooner than epoll's millisecond.
    timer: ShortTimer,
    slots: [Slot; 2],
    /// We dial (the node with the lower listen address does).
    is_connector: bool,
    connect_error: Option<String>,
    attempts: u64,
    state_changes: VecDeque<(SystemTime, String)>,
    next_aging: Instant,
    io: IoCounters,
    /// `heartbeats_rx` when last looked at (a change stamps `last_heartbeat`).
    heartbeats_seen: u64,
}

fn random_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !filled {
        // No urandom: fall back to std's per-process random hasher keys
        // mixed with the time. Nonces need uniqueness more than secrecy.
        use std::hash::{BuildHasher, Hasher};
        for (i, c) in b.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            c.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    b
}

fn config_port(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip(), addr.port().wrapping_add(1))
}

impl EventLoop {
    pub fn new(
        cfg: NodeConfig,
        shared: Arc<Shared>,
        poll: Poll,
        listeners: [std::net::TcpListener; 2],
        rx: Receiver<Request>,
        config: ConfigWorker,
    ) -> io::Result<Self> {
        let [l0, l1] = listeners;
        let mut listeners = [TcpListener::from_std(l0), TcpListener::from_std(l1)];
        for (l, t) in listeners.iter_mut().zip(LISTEN) {
            poll.registry().register(l, t, Interest::READABLE)?;
        }
        let now = Instant::now();
        let seed = u64::from_le_bytes(random_bytes()[..8].try_into().unwrap_or([0; 8]));
        let peer = Peer::with_config_in_driver(cfg.proto.clone(), shared.table.clone(), seed, now);
        let is_connector = Peer::dials(cfg.listen, cfg.peer);
        let timer = ShortTimer::new(poll.registry(), SHORT_TIMER);
        Ok(Self {
            cfg,
            shared,
            poll,
            listeners,
            rx,
            peer,
            config,
            timer,
            slots: Default::default(),
            is_connector,
            connect_error: None,
            attempts: 0,
            state_changes: VecDeque::new(),
            next_aging: now + AGING_PERIOD,
            io: IoCounters::default(),
            heartbeats_seen: 0,
        })
    }

    pub fn run(mut self) {
        // Every line this thread logs (the protocol's too) names the node:
        // two nodes in one process stay apart.
        let _span = tracing::info_span!("hrp", node = self.cfg.proto.node_id).entered();
        let mut events = Events::with_capacity(256);
        tracing::info!(
            node = self.cfg.proto.node_id,
            listen = %self.cfg.listen,
            peer = %self.cfg.peer,
            dials = self.is_connector,
            "HRP node started"
        );
        loop {
            let now = Instant::now();
            let deadline = self.next_deadline(now);
            let mut timeout = deadline.map(|d| d.saturating_duration_since(now));
            let mut sleep_instead = None;
            if let (Some(at), Some(t)) = (deadline, timeout) {
                // epoll counts in whole milliseconds (mio rounds up): a
                // sooner deadline goes on the timer (`short_timer.rs`).
                if !t.is_zero() && t < Duration::from_millis(1) && self.timer.arm(at, now).is_err()
                {
                    // No timer: check readiness, then sleep it out.
                    timeout = Some(Duration::ZERO);
                    sleep_instead = Some(t);
                }
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(error = %e, "poll failed; node stopping");
                break;
            }
            if let Some(t) = sleep_instead.filter(|_| events.is_empty()) {
                std::thread::sleep(t);
            }
            let now = Instant::now();
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {}
                    SHORT_TIMER => self.timer.fired(),
                    t if t == LISTEN[0] => self.accept(ConnKind::Session, now),
                    t if t == LISTEN[1] => self.accept(ConnKind::Config, now),
                    t if t == CONN[0] || t == CONN[1] => {
                        let kind = if t == CONN[0] {
                            ConnKind::Session
                        } else {
                            ConnKind::Config
                        };
                        let i = idx(kind);
                        if self.slots[i].connecting {
                            self.finish_connect(kind, now);
                        }
                        if !self.slots[i].connecting && self.slots[i].stream.is_some() {
                            self.read(kind, now);
                        }
                    }
                    _ => {}
                }
            }
            // Connections whose last read stopped at the budget.
            for kind in ConnKind::ALL {
                let slot = &self.slots[idx(kind)];
                if slot.read_more && !slot.connecting && slot.stream.is_some() {
                    self.read(kind, now);
                }
            }
            self.exchange_config(now);
            while let Ok(req) = self.rx.try_recv() {
                if !self.request(req, now) {
                    self.stop();
                    return;
                }
            }
            self.peer.handle_timeout(now);
            self.process_events(now);
            self.maybe_connect(now);
            for kind in ConnKind::ALL {
                self.write(kind, now);
            }
            self.process_events(now);
            if now >= self.next_aging {
                self.next_aging = now + AGING_PERIOD;
                if self.peer.role() == hotsync_proto::Role::Active {
                    let unix = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as u32);
                    self.shared.table.expire(unix, AGING_BUDGET);
                }
            }
        }
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.note_job_ended();
        for kind in ConnKind::ALL {
            self.write(kind, Instant::now());
            if let Some(mut s) = self.slots[idx(kind)].stream.take() {
                let _ = self.poll.registry().deregister(&mut s);
            }
        }
        tracing::info!(node = self.cfg.proto.node_id, "HRP node stopped");
    }

    fn next_deadline(&self, now: Instant) -> Option<Instant> {
        if self.peer.wants_poll(now) {
            return Some(now);
        }
        if self
            .slots
            .iter()
            .any(|s| s.stream.is_some() && (s.read_more || s.write_more))
        {
            return Some(now);
        }
        let mut t = self.peer.poll_timeout();
        let mut at = |x: Instant| t = Some(t.map_or(x, |t: Instant| t.min(x)));
        at(self.next_aging);
        for s in &self.slots {
            // Never tried yet: dial at once. (Waiting for the first timer
            // instead held the first attempt back by a whole dead interval,
            // so a restarted node always declared "no peer", became active,
            // and then won the split-brain rule on priority against the
            // node that had been serving.)
            if s.stream.is_none() && self.is_connector {
                at(s.next_attempt.unwrap_or(now));
            }
            if let Some(c) = s.connect_started {
                at(c + self.cfg.proto.dead_interval());
            }
        }
        t
    }

    fn request(&mut self, req: Request, now: Instant) -> bool {
        match req {
            Request::SyncSessions(tx) => {
                let r = self.peer.start_session_sync(now);
                self.log_job_started(&r, hotsync_proto::JobKind::ConnectionStatus);
                let _ = tx.send(r);
            }
            Request::SyncConfig(tx) => self.config.send(Task::Render { reply: Some(tx) }, now),
            Request::ConfigOp {
                op,
                vsys,
                text,
                reply,
            } => {
                let _ = reply.send(self.peer.queue_config_change(op, &vsys, &text));
            }
            Request::SetRole(role, tx) => {
                let r = self.peer.set_role_external(role, now);
                self.process_events(now);
                let _ = tx.send(r);
            }
            Request::Jobs(tx) => {
                let _ = tx.send(self.peer.jobs());
            }
            Request::State(tx) => {
                let _ = tx.send((
                    self.peer.state(),
                    self.connect_error.clone(),
                    self.attempts,
                    self.state_changes.iter().cloned().collect(),
                    IoCounters {
                        config_thread_raised: self.config.raised,
                        ..self.io.clone()
                    },
                ));
            }
            Request::DropConnections => {
                for kind in ConnKind::ALL {
                    self.close(kind, "dropped on request", now);
                }
            }
            Request::Shutdown => return false,
        }
        true
    }

    /// Takes the configuration thread's results (in order) and hands it
    /// the protocol's new work; resumes reading the config connection once
    /// the protocol's backlog has room again.
    fn exchange_config(&mut self, now: Instant) {
        while let Some(out) = self.config.try_recv() {
            match out {
                Output::Applied(done) => self.peer.handle_config_done(done, now),
                Output::Rendered { items, reply } => {
                    let r = self.peer.start_config_sync(items, now);
                    self.log_job_started(&r, hotsync_proto::JobKind::Config);
                    match reply {
                        Some(tx) => {
                            let _ = tx.send(r);
                        }
                        None => {
                            if let Err(e) = r {
                                tracing::warn!(error = %e, "automatic config batch sync not started");
                            }
                        }
                    }
                }
            }
        }
        while let Some(work) = self.peer.poll_config_work() {
            self.config.send(Task::Apply(work), now);
        }
        self.config.keep_floor(now);
        let slot = &mut self.slots[idx(ConnKind::Config)];
        if slot.read_paused && self.peer.may_read(ConnKind::Config) {
            slot.read_paused = false;
            slot.read_more = true;
        }
    }

    /// The one line for a job start (its end is the protocol's `batch sync
    /// finished`).
    fn log_job_started(
        &self,
        r: &Result<u64, hotsync_proto::RequestError>,
        kind: hotsync_proto::JobKind,
    ) {
        if let Ok(id) = r {
            let total = self.peer.job(*id).map_or(0, |j| j.total);
            tracing::info!(job = id, kind = kind.name(), total, "batch sync started");
        }
    }

    /// Records a state change for `display hrp state`. Not logged here: the
    /// protocol logs each change once, with its fields, as it happens.
    fn note(&mut self, what: String) {
        self.state_changes.push_back((SystemTime::now(), what));
        while self.state_changes.len() > STATE_HISTORY {
            self.state_changes.pop_front();
        }
    }

    /// Records the protocol's notices and carries out its actions, in
    /// rounds: closing a connection raises more notices (a notice raised
    /// before a close, such as `Connected`, is seen before it).
    fn process_events(&mut self, now: Instant) {
        loop {
            while let Some(ev) = self.peer.poll_event() {
                self.on_event(ev);
            }
            let Some(action) = self.peer.poll_action() else {
                break;
            };
            match action {
                Action::Close { conn, reason } => {
                    self.write(conn, now);
                    self.close(conn, &reason, now);
                }
                // Rendered off this thread; started when it is back.
                Action::StartConfigSync => self.config.send(Task::Render { reply: None }, now),
            }
        }
        self.shared
            .role
            .store(self.peer.role().to_u8(), Ordering::Release);
        self.shared
            .established
            .store(self.peer.is_established(), Ordering::Release);
    }

    /// Records a notice: the state history, logs, I/O counters.
    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::RoleChanged { from, to, reason } => {
                self.note(format!("role {from} -> {to}: {reason}"));
            }
            Event::Established {
                peer_node_id,
                role,
                authenticated,
            } => {
                let auth = if authenticated {
                    "authenticated"
                } else {
                    "UNAUTHENTICATED"
                };
                self.note(format!(
                    "relationship established with node {peer_node_id} ({auth}); this node is {role}"
                ));
            }
            Event::RelationshipLost { reason } => {
                self.note(format!("relationship lost: {reason}"));
            }
            Event::PeerDead => self.note("peer dead (no heartbeat for the dead interval)".into()),
            Event::Warning(w) => tracing::warn!(node = self.cfg.proto.node_id, "{w}"),
            // Logged by the protocol (`batch sync finished`).
            Event::JobFinished(st) => {
                if st.kind == hotsync_proto::JobKind::Config {
                    self.io.config_items_tx += st.sent;
                }
                self.shared.note_job_ended();
            }
            Event::PeerBatchStarted { kind, total } => {
                tracing::info!(kind = kind.name(), total, "peer batch sync started");
            }
            Event::PeerBatchFinished { kind, received } => {
                tracing::info!(kind = kind.name(), received, "peer batch sync finished");
            }
            Event::Connected(kind) => {
                let i = idx(kind);
                let slot = &mut self.slots[i];
                slot.up = true;
                self.io.bytes_rx[i] += std::mem::take(&mut slot.handshake_rx);
                self.io.bytes_tx[i] += std::mem::take(&mut slot.handshake_tx);
            }
        }
    }

    // ----- sockets ----------------------------------------------------------

    fn accept(&mut self, kind: ConnKind, now: Instant) {
        let i = idx(kind);
        loop {
            let (mut stream, from) = match self.listeners[i].accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.peer.count_error("accept");
                    tracing::warn!(error = %e, "accept failed");
                    return;
                }
            };
            // The accept rule is the protocol's (`Peer::may_accept`).
            if self.slots[i].stream.is_some() && !self.peer.may_accept(kind) {
                tracing::debug!(%from, conn = kind.name(), "refusing a second connection");
                continue;
            }
            if self.slots[i].stream.is_some() {
                self.count_if_in_handshake(kind);
                self.close(kind, "replaced by a new connection", now);
            }
            let _ = stream.set_nodelay(true);
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                CONN[i],
                Interest::READABLE | Interest::WRITABLE,
            ) {
                tracing::warn!(error = %e, "register failed");
                continue;
            }
            tracing::debug!(%from, conn = kind.name(), "accepted");
            self.slots[i].stream = Some(stream);
            self.slots[i].connecting = false;
            self.peer.handle_connected(kind, false, random_bytes(), now);
            self.read(kind, now);
        }
    }

    fn maybe_connect(&mut self, now: Instant) {
        if !self.is_connector {
            return;
        }
        for kind in ConnKind::ALL {
            let i = idx(kind);
            let slot = &mut self.slots[i];
            if slot.connecting {
                if slot
                    .connect_started
                    .is_some_and(|t| now >= t + self.cfg.proto.dead_interval())
                {
                    self.connect_failed(kind, "connect timed out".into(), now);
                }
                continue;
            }
            if slot.stream.is_some() || slot.next_attempt.is_some_and(|t| now < t) {
                continue;
            }
            let addr = match kind {
                ConnKind::Session => self.cfg.peer,
                ConnKind::Config => config_port(self.cfg.peer),
            };
            self.attempts += 1;
            match TcpStream::connect(addr) {
                Ok(mut s) => {
                    if let Err(e) = self.poll.registry().register(
                        &mut s,
                        CONN[i],
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        self.connect_failed(kind, e.to_string(), now);
                        continue;
                    }
                    let slot = &mut self.slots[i];
                    slot.stream = Some(s);
                    slot.connecting = true;
                    slot.connect_started = Some(now);
                }
                Err(e) => self.connect_failed(kind, format!("{addr}: {e}"), now),
            }
        }
    }

    fn finish_connect(&mut self, kind: ConnKind, now: Instant) {
        let i = idx(kind);
        let Some(s) = self.slots[i].stream.as_mut() else {
            return;
        };
        let err = match s.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => None,
        };
        if let Some(e) = err {
            let addr = s
                .peer_addr()
                .map_or_else(|_| "peer".to_string(), |a| a.to_string());
            self.connect_failed(kind, format!("{addr}: {e}"), now);
            return;
        }
        match s.peer_addr() {
            Ok(_) => {
                let _ = s.set_nodelay(true);
                let slot = &mut self.slots[i];
                slot.connecting = false;
                slot.connect_started = None;
                slot.backoff = BACKOFF_MIN;
                self.connect_error = None;
                tracing::debug!(conn = kind.name(), "connected");
                self.peer.handle_connected(kind, true, random_bytes(), now);
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {} // not yet
            Err(e) => self.connect_failed(kind, e.to_string(), now),
        }
    }

    fn connect_failed(&mut self, kind: ConnKind, why: String, now: Instant) {
        let i = idx(kind);
        if let Some(mut s) = self.slots[i].stream.take() {
            let _ = self.poll.registry().deregister(&mut s);
        }
        let slot = &mut self.slots[i];
        slot.forget_connection_io();
        slot.connecting = false;
        slot.connect_started = None;
        slot.backoff = (slot.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
        slot.next_attempt = Some(now + slot.backoff);
        if self.connect_error.as_deref() != Some(&why) {
            tracing::info!(conn = kind.name(), "peer does not answer: {why}; retrying");
        }
        self.connect_error = Some(why);
    }

    fn read(&mut self, kind: ConnKind, now: Instant) {
        let i = idx(kind);
        let mut budget = match kind {
            ConnKind::Session => IO_BUDGET,
            ConnKind::Config => CONFIG_READ_BUDGET,
        };
        self.slots[i].read_more = false;
        loop {
            if budget == 0 {
                self.slots[i].read_more = true;
                return;
            }
            if !self.peer.may_read(kind) {
                self.slots[i].read_paused = true;
                return;
            }
            let Some(stream) = self.slots[i].stream.as_mut() else {
                return;
            };
            let buf = self.peer.recv_buf(kind);
            if buf.is_empty() {
                self.close(kind, "receive buffer full", now);
                return;
            }
            match stream.read(buf) {
                Ok(0) => {
                    self.count_if_in_handshake(kind);
                    self.close(kind, "peer closed the connection", now);
                    return;
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    let slot = &mut self.slots[i];
                    if slot.up {
                        self.io.bytes_rx[i] += n as u64;
                    } else {
                        slot.handshake_rx += n as u64;
                    }
                    let r = self.peer.handle_received(kind, n, now);
                    let heartbeats = self.peer.stats().heartbeats_rx;
                    if heartbeats != self.heartbeats_seen {
                        self.heartbeats_seen = heartbeats;
                        self.io.last_heartbeat = Some(now);
                    }
                    if r.is_err() {
                        // Counted, and the connection is closing: its
                        // `Action::Close` flushes the close frame and drops
                        // the socket (the one close path).
                        self.process_events(now);
                        return;
                    }
                    if kind == ConnKind::Session {
                        // Acknowledge what was just applied at once, not
                        // after the whole read budget: the peer keeps only
                        // a few bulk chunks in flight while incremental
                        // changes flow, and sends the next on this ack.
                        self.write(kind, now);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.peer.count_error("io");
                    self.close(kind, &e.to_string(), now);
                    return;
                }
            }
        }
    }

    fn write(&mut self, kind: ConnKind, now: Instant) {
        let i = idx(kind);
        let mut budget = IO_BUDGET;
        self.slots[i].write_more = false;
        loop {
            let slot = &mut self.slots[i];
            if slot.connecting {
                return;
            }
            if budget == 0 {
                slot.write_more = true;
                return;
            }
            let Some(stream) = slot.stream.as_mut() else {
                return;
            };
            let Some(bytes) = self.peer.poll_transmit(kind, now) else {
                return;
            };
            match stream.write(bytes) {
                Ok(0) => {
                    self.close(kind, "socket closed", now);
                    return;
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    let slot = &mut self.slots[i];
                    if slot.up {
                        self.io.bytes_tx[i] += n as u64;
                    } else {
                        slot.handshake_tx += n as u64;
                    }
                    self.peer.consume(kind, n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.peer.count_error("io");
                    self.close(kind, &e.to_string(), now);
                    return;
                }
            }
        }
    }

    /// A connection that ends inside its handshake without a protocol
    /// error (the other end hung up, or a newer connection replaced it) is
    /// counted as `handshake_incomplete`, so probes and connection floods
    /// are visible like every other failure.
    fn count_if_in_handshake(&mut self, kind: ConnKind) {
        let phase = self.peer.state().conn_phase[kind];
        if matches!(phase, Phase::AwaitHello | Phase::AwaitAuth) {
            self.peer.count_error("handshake_incomplete");
        }
    }

    fn close(&mut self, kind: ConnKind, reason: &str, now: Instant) {
        let i = idx(kind);
        let Some(mut s) = self.slots[i].stream.take() else {
            self.peer.handle_disconnected(kind, now);
            return;
        };
        let _ = self.poll.registry().deregister(&mut s);
        drop(s);
        tracing::info!(conn = kind.name(), reason, "HRP connection closed");
        let slot = &mut self.slots[i];
        slot.forget_connection_io();
        slot.connecting = false;
        slot.connect_started = None;
        slot.backoff = BACKOFF_MIN;
        slot.next_attempt = Some(now + BACKOFF_MIN);
        slot.read_more = false;
        slot.write_more = false;
        slot.read_paused = false;
        self.peer.handle_disconnected(kind, now);
    }
}

fn idx(kind: ConnKind) -> usize {
    match kind {
        ConnKind::Session => 0,
        ConnKind::Config => 1,
    }
}

impl Slot {
    /// The transport is gone: what its handshake moved is dropped uncounted.
    fn forget_connection_io(&mut self) {
        self.up = false;
        self.handshake_rx = 0;
        self.handshake_tx = 0;
    }
}
