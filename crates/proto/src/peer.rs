//! The peer state machine: one node's side of the relationship with its
//! peer, over two connections (session and config).
//!
//! The driver (the `node` crate, or the simulator) owns the sockets and the
//! clock. It tells the [`Peer`] when a connection opens or closes, hands it
//! received bytes, asks it for bytes to send, and calls
//! [`Peer::handle_timeout`] when [`Peer::poll_timeout`] says so or when the
//! table signals changes. Everything else happens here.

use crate::auth;
use crate::conn::{Conn, ConnKind, Phase};
use crate::error::{ProtoError, RequestError};
use crate::jobs::{ConfigOutcome, JobKind, JobState, JobStatus};
use crate::role::{Claim, Role, outranks, resolve};
use crate::settings::ProtoConfig;
use crate::stats::Stats;
use hotsync_table::{Change, HashedRecord, SessionTable, ShardSet, SnapshotCursor};
use hotsync_wire::{
    Ack, AuthProof, BatchEnd, BatchStart, Channel, Close, ConfigBatchResult, ConfigItem,
    ConfigItemBatch, ConfigOp, FORMAT_FINGERPRINT, Frame, FrameDecoder, Heartbeat, Hello,
    Integrity, MessageKind, MessageRef, PROTOCOL_VERSION, ResyncEnd, ResyncRequest, ResyncStart,
    SessionDeleteBatch, SessionUpsertBatch,
};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// Capability bit: this node requires the pre-shared-key proof.
pub const CAP_AUTH: u32 = 1;

/// `BatchStart::what` values.
const WHAT_SESSIONS: u8 = 0;
const WHAT_CONFIG: u8 = 1;

/// How many finished jobs are remembered for `display hrp sync-status`.
const JOB_HISTORY: usize = 16;

/// Config items per batch frame, and the bytes at which a frame is cut.
const CONFIG_ITEMS_PER_FRAME: usize = 128;
const CONFIG_BYTES_PER_FRAME: usize = 64 << 10;

/// Result of applying one configuration item from a batch sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// We lacked it; it was added.
    Added,
    /// We had it, equal.
    Equal,
    /// Same identity, other parameters: not applied, recorded (B7).
    Conflict,
    /// Refused (not syncable, unparsable, unknown virtual system).
    Rejected,
}

/// Where configuration from the peer goes. The node implements it over its
/// configuration store; the protocol only moves the text.
pub trait ConfigSink: Send {
    /// Applies one item of a batch sync: additive, conflicts reported.
    fn apply_batch_item(&mut self, vsys: &str, text: &str) -> ItemOutcome;
    /// Replays one incremental change (`op`: 0 add, 1 modify, 2 delete).
    fn apply_op(&mut self, op: u8, vsys: &str, text: &str) -> Result<(), String>;
}

/// A sink that refuses all configuration (for session-only embeddings).
#[derive(Debug, Default)]
pub struct RejectConfig;

impl ConfigSink for RejectConfig {
    fn apply_batch_item(&mut self, _: &str, _: &str) -> ItemOutcome {
        ItemOutcome::Rejected
    }
    fn apply_op(&mut self, _: u8, _: &str, _: &str) -> Result<(), String> {
        Err("this node takes no configuration".into())
    }
}

/// What the protocol tells its driver and the control plane.
#[derive(Clone, Debug)]
pub enum Event {
    /// A connection finished its handshake.
    Connected(ConnKind),
    /// The relationship is established: authenticated, roles agreed.
    Established {
        /// The peer's node id.
        peer_node_id: u64,
        /// Our role.
        role: Role,
        /// Whether the link is authenticated with the pre-shared key.
        authenticated: bool,
    },
    /// The session connection was lost.
    RelationshipLost {
        /// Why.
        reason: String,
    },
    /// Nothing heard from the peer for the dead interval.
    PeerDead,
    /// Our role changed.
    RoleChanged {
        /// Before.
        from: Role,
        /// After.
        to: Role,
        /// Why.
        reason: &'static str,
    },
    /// The driver must close this connection's transport (after flushing
    /// what [`Peer::poll_transmit`] still has) and call
    /// [`Peer::handle_disconnected`].
    Close {
        /// Which connection.
        conn: ConnKind,
        /// Why.
        reason: String,
    },
    /// A job of ours ended.
    JobFinished(JobStatus),
    /// The peer started a batch sync towards us.
    PeerBatchStarted {
        /// What.
        kind: JobKind,
        /// Items announced.
        total: u64,
    },
    /// The peer's batch sync towards us ended.
    PeerBatchFinished {
        /// What.
        kind: JobKind,
        /// Items received.
        received: u64,
    },
    /// The relationship formed and `auto-sync on-establish` is on: the
    /// driver should start a configuration batch sync (it owns the store).
    ConfigSyncWanted,
    /// Something the operator should know.
    Warning(String),
}

/// What we know of the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its node id.
    pub node_id: u64,
    /// Its priority.
    pub priority: u16,
    /// The role it last claimed.
    pub role: Role,
    /// Whether it preempts.
    pub preempt: bool,
}

/// A snapshot of the protocol state, for `display hrp state`.
#[derive(Clone, Debug)]
pub struct PeerState {
    /// This node's role.
    pub role: Role,
    /// Why it has that role.
    pub role_reason: &'static str,
    /// When the role last changed.
    pub role_since: Instant,
    /// Whether the relationship is established now.
    pub established: bool,
    /// Whether the link is authenticated with the pre-shared key.
    pub authenticated: bool,
    /// The peer, once heard.
    pub peer: Option<PeerInfo>,
    /// Phase of each connection (session, config).
    pub conn_phase: [Phase; 2],
    /// Shards waiting for a resync.
    pub uncertain_shards: usize,
    /// Configuration changes queued for the peer.
    pub config_queue: usize,
    /// Counters.
    pub stats: Stats,
}

struct SessionJob {
    status: JobStatus,
    cursor: SnapshotCursor,
    acked_shards: ShardSet,
    acked_in_done_shards: u64,
    /// (seq, entries, shard finished by this frame, is the end marker)
    inflight: VecDeque<(u64, u32, Option<u32>, bool)>,
    start_sent: bool,
    end_sent: bool,
}

struct ConfigJob {
    status: JobStatus,
    items: Vec<(String, String)>,
    next: usize,
    inflight: VecDeque<(u64, u32)>,
    start_sent: bool,
    end_sent: bool,
}

struct QueuedOp {
    /// Sequence number of the frame that last carried it (valid while it
    /// is among the sent ones, see `config_sent`).
    seq: u64,
    op: ConfigOp,
}

struct ResyncWalk {
    shard: u32,
    epoch: u32,
    cursor: SnapshotCursor,
    start_sent: bool,
}

/// Receive-side state of a batch the peer is sending us.
#[derive(Default)]
struct IncomingBatch {
    received: u64,
    config: ConfigOutcome,
}

/// One node's protocol instance. See the module docs for how to drive it.
pub struct Peer {
    decoders: [FrameDecoder; 2],
    core: Core,
}

struct Core {
    cfg: ProtoConfig,
    table: Arc<SessionTable>,
    sink: Box<dyn ConfigSink>,
    conns: [Conn; 2],
    started: Instant,
    role: Role,
    role_since: Instant,
    role_reason: &'static str,
    established: bool,
    ever_established: bool,
    authenticated: bool,
    peer: Option<PeerInfo>,
    /// Last frame from the peer on the session connection, across
    /// reconnects; `None` once declared dead.
    peer_heard: Option<Instant>,
    preempt_at: Option<Instant>,
    events: VecDeque<Event>,
    stats: Stats,

    // Incremental sync.
    changes: Vec<Change>,
    upserts: SessionUpsertBatch,
    deletes: SessionDeleteBatch,
    /// Shards whose changes sit in `upserts`/`deletes`, not yet sent.
    open_shards: ShardSet,
    batch_open_since: Option<Instant>,
    next_drain_shard: usize,
    /// Per shard: the last session-connection seq that carried its data.
    last_sent_seq: Vec<u64>,

    // Resync of uncertain shards.
    uncertain: ShardSet,
    resync: Option<ResyncWalk>,
    next_epoch: u32,

    // Receive scratch: an incremental batch grouped by shard.
    grouped: Vec<HashedRecord>,
    // Bulk scratch.
    bulk: SessionUpsertBatch,

    // Jobs.
    next_job_id: u64,
    session_job: Option<SessionJob>,
    config_job: Option<ConfigJob>,
    history: VecDeque<JobStatus>,
    config_ops: VecDeque<QueuedOp>,
    /// `config_ops[..config_sent]` are on the wire awaiting their ack; the
    /// rest are not sent yet (changes go out in order).
    config_sent: usize,
    incoming: [Option<IncomingBatch>; 2],
}

enum AfterFrame {
    Nothing,
    /// Switch the decoder to frame MACs with this key.
    Keyed([u8; 32]),
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("node_id", &self.core.cfg.node_id)
            .field("role", &self.core.role)
            .field("established", &self.core.established)
            .finish()
    }
}

impl Peer {
    /// A protocol instance for `table`, with configuration from the peer
    /// going to `sink`. `nonce_seed` seeds resync epochs (any random value).
    pub fn new(
        cfg: ProtoConfig,
        table: Arc<SessionTable>,
        sink: Box<dyn ConfigSink>,
        nonce_seed: u64,
        now: Instant,
    ) -> Self {
        let shards = table.shard_count();
        let max = cfg.max_frame_len;
        // B4: nothing is recorded for the peer until the relationship is
        // first established (writes before that cost no journaling).
        table.set_capture(false);
        if cfg.psk.is_none() {
            tracing::warn!(
                "no pre-shared key configured: the HRP link is UNAUTHENTICATED; anyone who can reach the port can replace sessions and configuration"
            );
        }
        let core = Core {
            conns: [
                Conn::new(ConnKind::Session, max, now),
                Conn::new(ConnKind::Config, max, now),
            ],
            started: now,
            role: Role::Initial,
            role_since: now,
            role_reason: "starting",
            established: false,
            ever_established: false,
            authenticated: false,
            peer: None,
            peer_heard: None,
            preempt_at: None,
            events: VecDeque::new(),
            stats: Stats::default(),
            changes: Vec::with_capacity(cfg.batch_records),
            upserts: SessionUpsertBatch::default(),
            deletes: SessionDeleteBatch::default(),
            open_shards: ShardSet::new(shards),
            batch_open_since: None,
            next_drain_shard: 0,
            last_sent_seq: vec![0; shards],
            uncertain: ShardSet::new(shards),
            resync: None,
            next_epoch: (nonce_seed as u32) | 1,
            bulk: SessionUpsertBatch::default(),
            grouped: Vec::with_capacity(cfg.batch_records),
            next_job_id: 1,
            session_job: None,
            config_job: None,
            history: VecDeque::new(),
            config_ops: VecDeque::new(),
            config_sent: 0,
            incoming: [None, None],
            table,
            sink,
            cfg,
        };
        Self {
            decoders: [FrameDecoder::new(max), FrameDecoder::new(max)],
            core,
        }
    }

    /// The settings this instance runs with.
    pub fn config(&self) -> &ProtoConfig {
        &self.core.cfg
    }

    /// The session table.
    pub fn table(&self) -> &Arc<SessionTable> {
        &self.core.table
    }

    // ----- transport events ---------------------------------------------

    /// A transport for `kind` is up. `is_connector`: we dialled. `nonce`:
    /// 32 fresh random bytes.
    pub fn handle_connected(
        &mut self,
        kind: ConnKind,
        is_connector: bool,
        nonce: [u8; 32],
        now: Instant,
    ) {
        let i = kind.index();
        if self.core.conns[i].phase != Phase::Down {
            self.handle_disconnected(kind, now);
        }
        self.decoders[i] = FrameDecoder::new(self.core.cfg.max_frame_len);
        self.core.conns[i].open(is_connector, nonce, now);
        let hello = self.core.hello(kind);
        if let Err(e) = self.core.send(i, Channel::Control, &hello, now) {
            self.core.fail(i, &e);
        }
    }

    /// The transport for `kind` is gone (closed by either side or failed).
    pub fn handle_disconnected(&mut self, kind: ConnKind, now: Instant) {
        self.core.disconnected(kind, now);
    }

    /// Buffer to read the socket into (then call [`Self::handle_received`]).
    pub fn recv_buf(&mut self, kind: ConnKind) -> &mut [u8] {
        self.decoders[kind.index()].read_buf()
    }

    /// `n` bytes were read into [`Self::recv_buf`]. On error the connection
    /// must be closed: flush [`Self::poll_transmit`] (it may hold a close
    /// frame), close, and call [`Self::handle_disconnected`].
    pub fn handle_received(
        &mut self,
        kind: ConnKind,
        n: usize,
        now: Instant,
    ) -> Result<(), ProtoError> {
        let i = kind.index();
        self.decoders[i].commit(n);
        self.core.stats.bytes_rx += n as u64;
        self.process(i, now)
    }

    /// Copying convenience over [`Self::recv_buf`] and
    /// [`Self::handle_received`] (tests, simulators).
    pub fn handle_bytes(
        &mut self,
        kind: ConnKind,
        mut data: &[u8],
        now: Instant,
    ) -> Result<(), ProtoError> {
        while !data.is_empty() {
            let buf = self.recv_buf(kind);
            if buf.is_empty() {
                // The decoder is poisoned or full of an unfinished frame it
                // refuses; surface its error.
                let i = kind.index();
                return self.process(i, now).and(Err(ProtoError::Decode(
                    hotsync_wire::DecodeError::BufferFull { len: data.len() },
                )));
            }
            let n = buf.len().min(data.len());
            buf[..n].copy_from_slice(&data[..n]);
            data = &data[n..];
            self.handle_received(kind, n, now)?;
        }
        Ok(())
    }

    fn process(&mut self, i: usize, now: Instant) -> Result<(), ProtoError> {
        if self.core.conns[i].phase == Phase::Down || self.core.conns[i].phase == Phase::Closing {
            return Ok(());
        }
        let res = loop {
            let frame = match self.decoders[i].next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break Ok(()),
                Err(e) => break Err(ProtoError::Decode(e)),
            };
            match self.core.on_frame(i, &frame, now) {
                Ok(AfterFrame::Nothing) => {}
                Ok(AfterFrame::Keyed(key)) => self.decoders[i].set_integrity(Integrity::Hmac(key)),
                Err(e) => break Err(e),
            }
        };
        if let Err(e) = &res {
            self.core.fail(i, e);
        }
        res
    }

    // ----- output ---------------------------------------------------------

    /// Bytes to write to `kind`'s socket, generating more frames when the
    /// queue is low. Call [`Self::consume`] with what the socket took.
    pub fn poll_transmit(&mut self, kind: ConnKind, now: Instant) -> Option<&[u8]> {
        let i = kind.index();
        if let Err(e) = self.core.fill(i, now) {
            self.core.fail(i, &e);
        }
        self.core.conns[i].transmit()
    }

    /// The socket took `n` bytes of what [`Self::poll_transmit`] returned.
    pub fn consume(&mut self, kind: ConnKind, n: usize) {
        self.core.conns[kind.index()].consume(n);
    }

    /// Whether `kind` has bytes queued or work that will produce some.
    pub fn wants_transmit(&self, kind: ConnKind) -> bool {
        let c = &self.core.conns[kind.index()];
        c.pending() > 0 || (c.is_up() && self.core.has_work(kind))
    }

    /// Memory held for `kind` now: the receive buffer's allocation and the
    /// bytes queued for the socket. Bounded by `max_frame_len + READ_CHUNK`
    /// and by `tx_high_water` plus a few frames (invariant 3); exposed so
    /// tests and fuzzers can check it.
    pub fn buffered(&self, kind: ConnKind) -> (usize, usize) {
        let i = kind.index();
        (self.decoders[i].capacity(), self.core.conns[i].pending())
    }

    /// Whether the driver should call [`Self::poll_transmit`] again at once
    /// rather than wait for readiness or a timer: table changes are pending
    /// and the session queue has room. While this holds, writers do not
    /// wake the driver (see `drain_incremental`), so it must not sleep.
    pub fn wants_poll(&self, now: Instant) -> bool {
        let c = &self.core;
        // Waiting out the coalescing window: `poll_timeout` says when.
        let window_open = c
            .batch_open_since
            .is_some_and(|t| now.saturating_duration_since(t) < c.cfg.flush_interval);
        c.established && c.conns[0].is_up() && c.room(0) && c.table.has_pending() && !window_open
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.events.pop_front()
    }

    /// When [`Self::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    /// Runs timers (heartbeats, dead peer, preemption, flush) and picks up
    /// table changes. Safe to call at any time.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.on_timeout(now);
    }

    // ----- control plane --------------------------------------------------

    /// `hrp sync connection-status` (B2): streams every backup-capable
    /// session to the peer in the background. Returns the job id.
    pub fn start_session_sync(&mut self, now: Instant) -> Result<u64, RequestError> {
        self.core.start_session_sync(now)
    }

    /// `hrp sync config` (B1): sends these (virtual system, item text)
    /// pairs; the peer adds what it lacks and reports conflicts.
    pub fn start_config_sync(
        &mut self,
        items: Vec<(String, String)>,
        now: Instant,
    ) -> Result<u64, RequestError> {
        self.core.start_config_sync(items, now)
    }

    /// Queues one configuration change for the peer (B3), in order. Returns
    /// false (and does nothing) before the relationship was ever
    /// established; drops and counts the change if the queue is full.
    pub fn queue_config_op(&mut self, op: u8, vsys: &str, text: &str) -> bool {
        self.core.queue_config_op(op, vsys, text)
    }

    /// Status of a job (running or among the recent finished ones).
    pub fn job(&self, id: u64) -> Option<JobStatus> {
        self.jobs().into_iter().find(|j| j.id == id)
    }

    /// Running jobs, then recently finished ones (newest first).
    pub fn jobs(&self) -> Vec<JobStatus> {
        let c = &self.core;
        let mut v = Vec::new();
        v.extend(c.session_job.as_ref().map(|j| j.status.clone()));
        v.extend(c.config_job.as_ref().map(|j| j.status.clone()));
        v.extend(c.history.iter().rev().cloned());
        v
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        self.core.role
    }

    /// Whether the relationship is established.
    pub fn is_established(&self) -> bool {
        self.core.established
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// Counts an error the driver saw (accept/connect/socket errors).
    pub fn count_error(&mut self, kind: &'static str) {
        self.core.stats.count_error(kind);
    }

    /// A snapshot for displays.
    pub fn state(&self) -> PeerState {
        let c = &self.core;
        PeerState {
            role: c.role,
            role_reason: c.role_reason,
            role_since: c.role_since,
            established: c.established,
            authenticated: c.authenticated,
            peer: c.peer,
            conn_phase: [c.conns[0].phase, c.conns[1].phase],
            uncertain_shards: c.uncertain.len() + usize::from(c.resync.is_some()),
            config_queue: c.config_ops.len(),
            stats: c.stats.clone(),
        }
    }
}

impl Core {
    fn send<M: hotsync_wire::WireMessage>(
        &mut self,
        i: usize,
        channel: Channel,
        msg: &M,
        now: Instant,
    ) -> Result<u64, ProtoError> {
        self.conns[i].send(channel, msg, &mut self.stats, now)
    }

    fn hello(&self, kind: ConnKind) -> Hello {
        let c = &self.conns[kind.index()];
        Hello {
            protocol_version: PROTOCOL_VERSION,
            format_fingerprint: FORMAT_FINGERPRINT,
            node_id: self.cfg.node_id,
            priority: self.cfg.priority,
            capabilities: if self.cfg.psk.is_some() { CAP_AUTH } else { 0 },
            nonce: c.nonce,
            channel: kind.channel() as u8,
            shard_count: self.table.shard_count() as u32,
            role: self.role.to_u8(),
            preempt: self.cfg.preempt_delay.is_some(),
        }
    }

    fn claim(&self) -> Claim {
        Claim {
            role: self.role,
            priority: self.cfg.priority,
            node_id: self.cfg.node_id,
        }
    }

    fn set_role(&mut self, to: Role, reason: &'static str, now: Instant) {
        if self.role != to {
            let from = self.role;
            self.role = to;
            self.role_since = now;
            self.role_reason = reason;
            tracing::info!(%from, %to, reason, "HRP role changed");
            self.events
                .push_back(Event::RoleChanged { from, to, reason });
            // Tell the peer at once rather than at the next heartbeat.
            if self.conns[0].is_up() {
                let hb = self.heartbeat(now);
                if let Err(e) = self.send(0, Channel::Control, &hb, now) {
                    self.fail(0, &e);
                }
            }
        }
    }

    fn heartbeat(&self, now: Instant) -> Heartbeat {
        Heartbeat {
            role: self.role.to_u8(),
            priority: self.cfg.priority,
            sent_at_ms: now.saturating_duration_since(self.started).as_millis() as u64,
        }
    }

    /// Records a fatal connection error and queues a close frame.
    fn fail(&mut self, i: usize, e: &ProtoError) {
        let kind = self.conns[i].kind;
        if self.conns[i].phase == Phase::Closing || self.conns[i].phase == Phase::Down {
            return;
        }
        self.stats.count_error(e.kind_name());
        tracing::warn!(conn = kind.name(), error = %e, "dropping HRP connection");
        if !matches!(e, ProtoError::PeerClosed { .. } | ProtoError::Encode(_)) {
            let mut detail = e.to_string();
            detail.truncate(200);
            let close = Close {
                reason: e.close_code(),
                detail,
            };
            let at = self.conns[i].last_tx;
            let _ = self.send(i, Channel::Control, &close, at);
        }
        self.conns[i].phase = Phase::Closing;
        self.events.push_back(Event::Close {
            conn: kind,
            reason: e.to_string(),
        });
    }

    fn disconnected(&mut self, kind: ConnKind, now: Instant) {
        let i = kind.index();
        let was_up = self.conns[i].is_up();
        let phase = self.conns[i].phase;
        if phase == Phase::Down {
            return;
        }
        let acked = self.conns[i].peer_acked;
        self.conns[i].close();
        self.incoming[i] = None;
        self.stats.disconnects += 1;
        match kind {
            ConnKind::Session => {
                // Every shard with data the peer did not acknowledge, or
                // drained into a batch not yet sent, is now uncertain.
                let mut lost = 0;
                for s in 0..self.last_sent_seq.len() {
                    if self.last_sent_seq[s] > acked {
                        lost += u64::from(self.uncertain.insert(s));
                    }
                    self.last_sent_seq[s] = 0;
                }
                for s in self.open_shards.iter().collect::<Vec<_>>() {
                    lost += u64::from(self.uncertain.insert(s));
                }
                self.open_shards.clear();
                self.upserts.clear();
                self.deletes.clear();
                self.batch_open_since = None;
                if let Some(w) = self.resync.take() {
                    lost += u64::from(self.uncertain.insert(w.shard as usize));
                    self.stats.resync_aborted += 1;
                }
                self.stats.resync_disconnect += lost;
                if let Some(job) = &mut self.session_job {
                    let remaining = {
                        let mut all = ShardSet::full(self.table.shard_count());
                        for s in job.acked_shards.iter() {
                            all.remove(s);
                        }
                        all
                    };
                    job.cursor = SnapshotCursor::over(remaining);
                    job.status.acked = job.acked_in_done_shards;
                    job.status.sent = job.acked_in_done_shards;
                    job.inflight.clear();
                    job.start_sent = false;
                    job.end_sent = false;
                    job.status.restarts += 1;
                }
                if self.established {
                    self.established = false;
                    self.authenticated = false;
                    self.events.push_back(Event::RelationshipLost {
                        reason: "session connection lost".into(),
                    });
                }
                if was_up {
                    tracing::info!(uncertain = self.uncertain.len(), "session connection lost");
                }
            }
            ConnKind::Config => {
                // Resend what was not acknowledged: replaying a change is
                // idempotent.
                self.config_sent = 0;
                if let Some(job) = &mut self.config_job {
                    job.next = 0;
                    job.status.sent = 0;
                    job.status.acked = 0;
                    job.inflight.clear();
                    job.start_sent = false;
                    job.end_sent = false;
                    job.status.restarts += 1;
                }
            }
        }
        let _ = now;
    }

    // ----- receiving ------------------------------------------------------

    fn on_frame(
        &mut self,
        i: usize,
        frame: &Frame<'_>,
        now: Instant,
    ) -> Result<AfterFrame, ProtoError> {
        let h = frame.header;
        let kind = self.conns[i].kind;
        {
            let c = &mut self.conns[i];
            if h.seq != c.rx_seq + 1 {
                return Err(ProtoError::SequenceGap {
                    expected: c.rx_seq + 1,
                    got: h.seq,
                });
            }
            c.rx_seq = h.seq;
            c.last_rx = now;
        }
        self.stats.frames_rx += 1;
        if h.channel != Channel::Control && h.channel != kind.channel() {
            return Err(ProtoError::WrongChannel {
                expected: kind.name(),
                got: match h.channel {
                    Channel::Session => "session",
                    Channel::Config => "config",
                    Channel::Control => "control",
                },
            });
        }
        let msg = frame.message()?;
        match self.conns[i].phase {
            Phase::AwaitHello => match msg {
                MessageRef::Hello(hello) => self.on_hello(i, hello, now),
                _ => Err(ProtoError::Unexpected {
                    kind: h.kind,
                    state: "before hello",
                }),
            },
            Phase::AwaitAuth => match msg {
                MessageRef::AuthProof(p) => self.on_auth(i, &p.mac, now),
                MessageRef::Close(c) => Err(peer_closed(c)),
                _ => Err(ProtoError::AuthRequired),
            },
            Phase::Up => {
                if kind == ConnKind::Session {
                    self.peer_heard = Some(now);
                }
                self.on_message(i, h.kind, msg, now)
                    .map(|()| AfterFrame::Nothing)
            }
            Phase::Down | Phase::Closing => Ok(AfterFrame::Nothing),
        }
    }

    fn on_hello(
        &mut self,
        i: usize,
        hello: &hotsync_wire::ArchivedHello,
        now: Instant,
    ) -> Result<AfterFrame, ProtoError> {
        let version = hello.protocol_version.to_native();
        if version != PROTOCOL_VERSION {
            return Err(ProtoError::VersionMismatch {
                local: PROTOCOL_VERSION,
                peer: version,
            });
        }
        let fp = hello.format_fingerprint.to_native();
        if fp != FORMAT_FINGERPRINT {
            return Err(ProtoError::FormatMismatch {
                local: FORMAT_FINGERPRINT,
                peer: fp,
            });
        }
        let shards = hello.shard_count.to_native();
        if shards as usize != self.table.shard_count() {
            return Err(ProtoError::ShardCountMismatch {
                local: self.table.shard_count() as u32,
                peer: shards,
            });
        }
        let node_id = hello.node_id.to_native();
        if node_id == self.cfg.node_id {
            return Err(ProtoError::SameNodeId(node_id));
        }
        let kind = self.conns[i].kind;
        if ConnKind::from_wire(hello.channel) != Some(kind) {
            return Err(ProtoError::WrongChannel {
                expected: kind.name(),
                got: "other",
            });
        }
        if hello.nonce == self.conns[i].nonce {
            return Err(ProtoError::NonceReflected);
        }
        let peer_requires_auth = hello.capabilities.to_native() & CAP_AUTH != 0;
        self.conns[i].peer_nonce = hello.nonce;
        self.peer = Some(PeerInfo {
            node_id,
            priority: hello.priority.to_native(),
            role: Role::from_u8(hello.role),
            preempt: hello.preempt,
        });
        match self.cfg.psk.clone() {
            Some(psk) => {
                if !peer_requires_auth {
                    return Err(ProtoError::AuthRequired);
                }
                let c = &self.conns[i];
                let mac = auth::proof(
                    &psk,
                    c.is_connector,
                    self.cfg.node_id,
                    &c.nonce,
                    &c.peer_nonce,
                );
                self.send(i, Channel::Control, &AuthProof { mac }, now)?;
                // Everything we send after the proof carries a frame MAC.
                let key = self.frame_key(i, &psk);
                self.conns[i].encoder.set_integrity(Integrity::Hmac(key));
                self.conns[i].phase = Phase::AwaitAuth;
                Ok(AfterFrame::Nothing)
            }
            None => {
                if peer_requires_auth {
                    return Err(ProtoError::NoKeyConfigured);
                }
                self.conn_up(i, false, now);
                Ok(AfterFrame::Nothing)
            }
        }
    }

    fn frame_key(&self, i: usize, psk: &[u8]) -> [u8; 32] {
        let c = &self.conns[i];
        let (connector, acceptor) = if c.is_connector {
            (&c.nonce, &c.peer_nonce)
        } else {
            (&c.peer_nonce, &c.nonce)
        };
        auth::frame_key(psk, connector, acceptor)
    }

    fn on_auth(
        &mut self,
        i: usize,
        mac: &[u8; 32],
        now: Instant,
    ) -> Result<AfterFrame, ProtoError> {
        let Some(psk) = self.cfg.psk.clone() else {
            return Err(ProtoError::NoKeyConfigured);
        };
        let peer_id = self.peer.map_or(0, |p| p.node_id);
        let c = &self.conns[i];
        let expected = auth::proof(&psk, !c.is_connector, peer_id, &c.peer_nonce, &c.nonce);
        if !auth::proofs_equal(&expected, mac) {
            return Err(ProtoError::AuthFailed);
        }
        let key = self.frame_key(i, &psk);
        self.conn_up(i, true, now);
        Ok(AfterFrame::Keyed(key))
    }

    fn conn_up(&mut self, i: usize, authenticated: bool, now: Instant) {
        let kind = self.conns[i].kind;
        self.conns[i].phase = Phase::Up;
        self.stats.connections += 1;
        self.events.push_back(Event::Connected(kind));
        if kind == ConnKind::Config {
            return;
        }
        // The session connection carries the relationship.
        let peer = self.peer.unwrap_or(PeerInfo {
            node_id: 0,
            priority: 0,
            role: Role::Initial,
            preempt: false,
        });
        let remote = Claim {
            role: peer.role,
            priority: peer.priority,
            node_id: peer.node_id,
        };
        let role = resolve(&self.claim(), &remote);
        self.set_role(role, "roles agreed with peer", now);
        self.peer_heard = Some(now);
        self.established = true;
        self.authenticated = authenticated;
        if !self.ever_established {
            // B4: what existed before the relationship formed waits for a
            // manual batch sync; only changes from now on are incremental.
            self.discard_journals();
            self.table.set_capture(true);
            self.ever_established = true;
        }
        if !authenticated {
            self.events.push_back(Event::Warning(
                "HRP link established WITHOUT authentication: configure a pre-shared key".into(),
            ));
        }
        self.events.push_back(Event::Established {
            peer_node_id: peer.node_id,
            role,
            authenticated,
        });
        tracing::info!(peer = peer.node_id, %role, authenticated, "HRP relationship established");
        if peer.role == Role::Initial {
            if let Some(job) = &mut self.session_job {
                // The peer says it has held no role yet: it is a fresh
                // process. What the running batch delivered to its previous
                // incarnation is gone, so resuming from the acknowledged
                // shards would end "done" with holes: start over.
                job.cursor = self.table.snapshot();
                job.acked_shards = ShardSet::new(self.table.shard_count());
                job.acked_in_done_shards = 0;
                job.status.acked = 0;
                job.status.sent = 0;
                tracing::info!(
                    job = job.status.id,
                    "peer restarted: batch sync starts over"
                );
            }
        }
        self.check_preempt(now);
        if self.cfg.auto_sync_on_establish {
            if self.session_job.is_none() {
                let _ = self.start_session_sync(now);
            }
            self.events.push_back(Event::ConfigSyncWanted);
        }
    }

    fn discard_journals(&mut self) {
        self.table.clear_pending();
        let mut sink = ShardSet::new(self.table.shard_count());
        self.table.take_overflowed(&mut sink);
        for s in 0..self.table.shard_count() {
            loop {
                self.changes.clear();
                let n = self.table.drain_changes(s, 4096, &mut self.changes);
                self.stats.changes_before_establish += n as u64;
                if n == 0 {
                    break;
                }
            }
        }
        self.changes.clear();
    }

    fn on_message(
        &mut self,
        i: usize,
        kind: MessageKind,
        msg: MessageRef<'_>,
        now: Instant,
    ) -> Result<(), ProtoError> {
        match msg {
            MessageRef::Heartbeat(hb) => {
                self.stats.heartbeats_rx += 1;
                if i == 0 {
                    self.on_heartbeat(Role::from_u8(hb.role), hb.priority.to_native(), now);
                }
            }
            MessageRef::Ack(a) => {
                self.stats.acks_rx += 1;
                let seq = a.seq.to_native();
                let sent = self.conns[i].tx_seq;
                if seq > sent {
                    return Err(ProtoError::AckBeyondSent { got: seq, sent });
                }
                if seq > self.conns[i].peer_acked {
                    self.conns[i].peer_acked = seq;
                    self.on_ack(i, seq, now);
                }
            }
            MessageRef::SessionUpsertBatch(b) => {
                self.conns[i].ack_due = true;
                self.stats.batches_rx += 1;
                // A bulk chunk comes from one shard: apply it in order. An
                // incremental batch spans shards: group it by shard first.
                let full = if self.incoming[0].is_some() || self.table.shard_count() == 1 {
                    self.table.apply_upserts(b.iter())
                } else {
                    self.grouped.clear();
                    self.grouped
                        .extend(b.iter().map(|(k, e)| HashedRecord::new(k, e)));
                    self.table.apply_upserts_grouped(&mut self.grouped)
                };
                self.stats.apply_table_full += full as u64;
                let n = b.len() as u64;
                self.stats.records_rx += n;
                if let Some(inc) = &mut self.incoming[0] {
                    inc.received += n;
                }
            }
            MessageRef::SessionDeleteBatch(b) => {
                self.conns[i].ack_due = true;
                self.stats.batches_rx += 1;
                for k in b.iter() {
                    self.table.apply_remove(&k);
                }
                self.stats.deletes_rx += b.len() as u64;
            }
            MessageRef::ResyncStart(r) => {
                self.conns[i].ack_due = true;
                let shard = self.check_shard(r.shard.to_native())?;
                self.table.begin_resync(shard, r.epoch.to_native());
            }
            MessageRef::ResyncEnd(r) => {
                self.conns[i].ack_due = true;
                let shard = self.check_shard(r.shard.to_native())?;
                let removed = self.table.end_resync(shard, r.epoch.to_native());
                self.stats.resync_removed += removed as u64;
            }
            MessageRef::ResyncRequest(r) => {
                self.conns[i].ack_due = true;
                for s in r.shards.iter() {
                    let s = self.check_shard(s.to_native())?;
                    if self.uncertain.insert(s) {
                        self.stats.resync_request += 1;
                    }
                }
            }
            MessageRef::BatchStart(b) => {
                self.conns[i].ack_due = true;
                let kind = if b.what == WHAT_CONFIG {
                    JobKind::Config
                } else {
                    JobKind::ConnectionStatus
                };
                self.incoming[i] = Some(IncomingBatch::default());
                self.events.push_back(Event::PeerBatchStarted {
                    kind,
                    total: b.total.to_native(),
                });
            }
            MessageRef::BatchProgress(_) => {
                self.conns[i].ack_due = true;
            }
            MessageRef::BatchEnd(b) => {
                self.conns[i].ack_due = true;
                let inc = self.incoming[i].take().unwrap_or_default();
                let job_id = b.job_id.to_native();
                if self.conns[i].kind == ConnKind::Config {
                    let r = ConfigBatchResult {
                        job_id,
                        added: inc.config.added,
                        equal: inc.config.equal,
                        conflicts: inc.config.conflicts,
                        rejected: inc.config.rejected,
                    };
                    self.send(i, Channel::Config, &r, now)?;
                }
                self.events.push_back(Event::PeerBatchFinished {
                    kind: if self.conns[i].kind == ConnKind::Config {
                        JobKind::Config
                    } else {
                        JobKind::ConnectionStatus
                    },
                    received: inc.received,
                });
            }
            MessageRef::ConfigItemBatch(b) => {
                self.conns[i].ack_due = true;
                let mut out = ConfigOutcome::default();
                for item in b.items.iter() {
                    match self
                        .sink
                        .apply_batch_item(item.vsys.as_str(), item.text.as_str())
                    {
                        ItemOutcome::Added => out.added += 1,
                        ItemOutcome::Equal => out.equal += 1,
                        ItemOutcome::Conflict => out.conflicts += 1,
                        ItemOutcome::Rejected => out.rejected += 1,
                    }
                }
                let n = b.items.len() as u64;
                self.stats.config_items_rx += n;
                if let Some(inc) = &mut self.incoming[i] {
                    inc.received += n;
                    inc.config.added += out.added;
                    inc.config.equal += out.equal;
                    inc.config.conflicts += out.conflicts;
                    inc.config.rejected += out.rejected;
                }
            }
            MessageRef::ConfigOp(op) => {
                self.conns[i].ack_due = true;
                self.stats.config_ops_rx += 1;
                if let Err(e) = self
                    .sink
                    .apply_op(op.op, op.vsys.as_str(), op.text.as_str())
                {
                    self.stats.count_error("config_op_rejected");
                    self.events.push_back(Event::Warning(format!(
                        "configuration change from peer not applied: {e}"
                    )));
                }
            }
            MessageRef::ConfigBatchResult(r) => {
                self.conns[i].ack_due = true;
                let id = r.job_id.to_native();
                if let Some(job) = self.config_job.take_if(|j| j.status.id == id) {
                    let mut st = job.status;
                    st.config = Some(ConfigOutcome {
                        added: r.added.to_native(),
                        equal: r.equal.to_native(),
                        conflicts: r.conflicts.to_native(),
                        rejected: r.rejected.to_native(),
                    });
                    st.acked = st.total;
                    self.finish_job(st, JobState::Done, now);
                }
            }
            MessageRef::Close(c) => return Err(peer_closed(c)),
            MessageRef::Hello(_) | MessageRef::AuthProof(_) => {
                return Err(ProtoError::Unexpected {
                    kind,
                    state: "after the handshake",
                });
            }
        }
        Ok(())
    }

    fn check_shard(&self, s: u32) -> Result<usize, ProtoError> {
        if (s as usize) < self.table.shard_count() {
            Ok(s as usize)
        } else {
            Err(ProtoError::Unexpected {
                kind: MessageKind::ResyncStart,
                state: "naming a shard out of range",
            })
        }
    }

    fn on_heartbeat(&mut self, peer_role: Role, priority: u16, now: Instant) {
        if let Some(p) = &mut self.peer {
            p.role = peer_role;
            p.priority = priority;
        }
        let Some(peer) = self.peer else { return };
        let remote = Claim {
            role: peer_role,
            priority,
            node_id: peer.node_id,
        };
        let local = self.claim();
        let wins = outranks(&local, &remote);
        match (self.role, peer_role) {
            // Split brain (or a preempting peer): the static rule decides.
            (Role::Active, Role::Active) if !wins => self.set_role(
                Role::Standby,
                "peer outranks this node (split brain or preemption)",
                now,
            ),
            (Role::Standby | Role::Initial, Role::Standby) if wins => self.set_role(
                Role::Active,
                "both standby: this node outranks the peer",
                now,
            ),
            _ => {}
        }
        self.check_preempt(now);
    }

    fn check_preempt(&mut self, now: Instant) {
        let Some(delay) = self.cfg.preempt_delay else {
            return;
        };
        let Some(peer) = self.peer else { return };
        let remote = Claim {
            role: peer.role,
            priority: peer.priority,
            node_id: peer.node_id,
        };
        if self.established && self.role == Role::Standby && outranks(&self.claim(), &remote) {
            if self.preempt_at.is_none() {
                self.preempt_at = Some(now + delay);
            }
        } else {
            self.preempt_at = None;
        }
    }

    fn on_ack(&mut self, i: usize, seq: u64, now: Instant) {
        if i == 0 {
            if let Some(job) = &mut self.session_job {
                let mut finished = false;
                while let Some(&(s, n, shard, end)) = job.inflight.front() {
                    if s > seq {
                        break;
                    }
                    job.inflight.pop_front();
                    job.status.acked += u64::from(n);
                    if let Some(shard) = shard {
                        job.acked_shards.insert(shard as usize);
                        job.acked_in_done_shards = job.status.acked;
                    }
                    finished |= end;
                }
                if finished {
                    let st = self.session_job.take().map(|j| j.status);
                    if let Some(st) = st {
                        self.finish_job(st, JobState::Done, now);
                    }
                }
            }
        } else {
            while self.config_sent > 0 && self.config_ops.front().is_some_and(|o| o.seq <= seq) {
                self.config_ops.pop_front();
                self.config_sent -= 1;
            }
            if let Some(job) = &mut self.config_job {
                while let Some(&(s, n)) = job.inflight.front() {
                    if s > seq {
                        break;
                    }
                    job.inflight.pop_front();
                    job.status.acked += u64::from(n);
                }
            }
        }
    }

    fn finish_job(&mut self, mut st: JobStatus, state: JobState, now: Instant) {
        st.state = state;
        st.finished = Some(now);
        tracing::info!(job = st.id, kind = st.kind.name(), sent = st.sent, state = ?st.state, "batch sync finished");
        self.events.push_back(Event::JobFinished(st.clone()));
        self.history.push_back(st);
        while self.history.len() > JOB_HISTORY {
            self.history.pop_front();
        }
    }

    // ----- sending --------------------------------------------------------

    fn has_work(&self, kind: ConnKind) -> bool {
        let c = &self.conns[kind.index()];
        if c.ack_due {
            return true;
        }
        if !self.established {
            return false;
        }
        match kind {
            ConnKind::Session => {
                self.table.has_pending()
                    || !self.upserts.is_empty()
                    || !self.deletes.is_empty()
                    || !self.uncertain.is_empty()
                    || self.resync.is_some()
                    || self.session_job.as_ref().is_some_and(|j| !j.end_sent)
            }
            ConnKind::Config => {
                self.config_sent < self.config_ops.len()
                    || self.config_job.as_ref().is_some_and(|j| !j.end_sent)
            }
        }
    }

    fn fill(&mut self, i: usize, now: Instant) -> Result<(), ProtoError> {
        if !self.conns[i].is_up() {
            return Ok(());
        }
        if self.conns[i].ack_due {
            self.conns[i].ack_due = false;
            let ack = Ack {
                channel: self.conns[i].kind.channel() as u8,
                seq: self.conns[i].rx_seq,
            };
            self.send(i, Channel::Control, &ack, now)?;
            self.stats.acks_tx += 1;
        }
        if !self.established {
            return Ok(());
        }
        if i == 0 {
            self.fill_session(now)
        } else {
            self.fill_config(now)
        }
    }

    fn room(&self, i: usize) -> bool {
        self.conns[i].pending() < self.cfg.tx_high_water
    }

    /// Bulk (resync, batch sync) stops at a quarter of the high-water
    /// mark: enough queued to keep the socket busy with large writes, little
    /// enough that incremental records queued behind it are not delayed long.
    fn room_for_bulk(&self) -> bool {
        self.conns[0].pending() < self.cfg.tx_high_water / 4
    }

    fn fill_session(&mut self, now: Instant) -> Result<(), ProtoError> {
        // Incremental first: it is what the latency target is about.
        self.drain_incremental(now)?;
        // Then the repair of uncertain shards, then the bulk batch sync.
        while self.room_for_bulk() {
            if !self.resync_step(now)? && !self.session_job_step(now)? {
                break;
            }
            // New changes may have arrived while bulk was being encoded.
            self.drain_incremental(now)?;
        }
        Ok(())
    }

    fn drain_incremental(&mut self, now: Instant) -> Result<(), ProtoError> {
        if self.table.has_pending() {
            // Coalescing window: the first change seen opens it; the
            // journals gather (and coalesce) changes until it closes, then
            // everything goes out in as few batches as possible.
            let opened = *self.batch_open_since.get_or_insert(now);
            if now.saturating_duration_since(opened) < self.cfg.flush_interval {
                return Ok(());
            }
            let before = self.uncertain.len();
            let n = self.table.take_overflowed(&mut self.uncertain);
            if n > 0 {
                self.stats.journal_overflows += n as u64;
                // Only shards newly marked: one already waiting is resynced
                // once, so counting it again would break the balance.
                self.stats.resync_overflow += (self.uncertain.len() - before) as u64;
                tracing::warn!(
                    shards = n,
                    "change journal overflow: resyncing those shards"
                );
            }
            // While changes keep coming the pending signal stays set, so
            // writers do not wake this loop (a syscall on the data plane)
            // for every batch; it is cleared only after a pass found the
            // journals empty, and a second pass closes the race with a
            // write that landed in between.
            if self.drain_pass(now)? == 0 {
                self.table.clear_pending();
                if self.drain_pass(now)? > 0 {
                    self.table.mark_pending();
                }
            }
            self.flush_incremental(now)?;
        }
        Ok(())
    }

    /// One pass over the journals, resuming at the shard where the last
    /// pass stopped; returns how many changes it drained.
    fn drain_pass(&mut self, now: Instant) -> Result<usize, ProtoError> {
        let mut drained = 0;
        let shards = self.table.shard_count();
        let mut idle = 0;
        // One pass over the shards, resuming where the last one stopped.
        while idle < shards && self.room(0) {
            let s = self.next_drain_shard;
            if self.open_shards.contains(s) {
                // This shard's changes from an earlier pass (only with a
                // flush interval) are still open: send them before
                // draining it again, so a key is in the open batch once
                // and the order between its two lists does not matter.
                self.flush_incremental(now)?;
            }
            let space = self.cfg.batch_records - (self.upserts.len() + self.deletes.len());
            self.changes.clear();
            let n = self.table.drain_changes(s, space, &mut self.changes);
            drained += n;
            for c in &self.changes {
                match &c.entry {
                    Some(e) => self.upserts.push(&c.key, e),
                    None => self.deletes.push(&c.key),
                }
            }
            if n > 0 {
                self.open_shards.insert(s);
            }
            if n < space {
                idle += 1;
                self.next_drain_shard = (s + 1) % shards;
            } else {
                // Batch full: send it and keep draining this shard.
                idle = 0;
                self.flush_incremental(now)?;
            }
        }
        if idle < shards {
            // Stopped for lack of room: come back for the rest.
            self.table.mark_pending();
        }
        Ok(drained)
    }

    fn flush_incremental(&mut self, now: Instant) -> Result<(), ProtoError> {
        let mut seq = None;
        // Deletions go before upserts. The open batch holds each shard's
        // changes from one drain only (see `drain_pass`: a shard's open
        // changes are sent before it is drained again), where a key
        // appears once, so the order between
        // the two lists is free; and this one is the one a full table
        // needs: the standby applies the removal that freed a slot before
        // the insert that took it (upserts first, its full shard refused
        // the insert and the session was lost).
        if !self.deletes.is_empty() {
            let n = self.deletes.len() as u64;
            seq =
                Some(self.conns[0].send(Channel::Session, &self.deletes, &mut self.stats, now)?);
            self.stats.batches_tx += 1;
            self.stats.deletes_tx += n;
            self.deletes.clear();
        }
        if !self.upserts.is_empty() {
            let n = self.upserts.len() as u64;
            seq =
                Some(self.conns[0].send(Channel::Session, &self.upserts, &mut self.stats, now)?);
            self.stats.batches_tx += 1;
            self.stats.records_tx += n;
            self.upserts.clear();
        }
        if let Some(seq) = seq {
            for s in self.open_shards.iter() {
                self.last_sent_seq[s] = seq;
            }
        }
        self.open_shards.clear();
        self.batch_open_since = None;
        Ok(())
    }

    fn resync_step(&mut self, now: Instant) -> Result<bool, ProtoError> {
        if self.role != Role::Active {
            return self.request_resync(now);
        }
        if self.resync.is_none() {
            let Some(shard) = self.uncertain.pop_first() else {
                return Ok(false);
            };
            let epoch = self.next_epoch;
            self.next_epoch = self.next_epoch.wrapping_add(1).max(1);
            let mut only = ShardSet::new(self.table.shard_count());
            only.insert(shard);
            self.resync = Some(ResyncWalk {
                shard: shard as u32,
                epoch,
                cursor: SnapshotCursor::over(only),
                start_sent: false,
            });
        }
        let Some(w) = &mut self.resync else {
            return Ok(false);
        };
        let (shard, epoch) = (w.shard, w.epoch);
        if !w.start_sent {
            w.start_sent = true;
            let seq = self.send(0, Channel::Session, &ResyncStart { shard, epoch }, now)?;
            self.last_sent_seq[shard as usize] = seq;
        }
        let Some(w) = &mut self.resync else {
            return Ok(false);
        };
        // Encode straight from the slab: no intermediate copy.
        self.bulk.clear();
        let bulk = &mut self.bulk;
        self.table
            .snapshot_chunk_with(&mut w.cursor, self.cfg.batch_records, |k, e| {
                bulk.push(k, e)
            });
        let done = w.cursor.is_done();
        if !self.bulk.is_empty() {
            let n = self.bulk.len() as u64;
            let seq = self.conns[0].send(Channel::Session, &self.bulk, &mut self.stats, now)?;
            self.stats.batches_tx += 1;
            self.stats.records_tx += n;
            self.last_sent_seq[shard as usize] = seq;
        }
        if done {
            let seq = self.send(0, Channel::Session, &ResyncEnd { shard, epoch }, now)?;
            self.last_sent_seq[shard as usize] = seq;
            self.resync = None;
            self.stats.shards_resynced += 1;
        }
        Ok(true)
    }

    /// A node that is not active does not walk its uncertain shards: a
    /// walk's end marker makes the receiver drop what the walk did not
    /// carry, so a standby (or a node that lost a split brain) would
    /// replace the active's authoritative shards with its own stale copy.
    /// It asks the active to resync them instead. A walk under way when
    /// the role changed is abandoned without its end marker (what it sent
    /// is merged, nothing is deleted).
    fn request_resync(&mut self, now: Instant) -> Result<bool, ProtoError> {
        if let Some(w) = self.resync.take() {
            if !self.uncertain.insert(w.shard as usize) {
                // Marked again meanwhile: that mark covers it.
                self.stats.resync_aborted += 1;
            }
        }
        if self.uncertain.is_empty() {
            return Ok(false);
        }
        let shards: Vec<u32> = self.uncertain.iter().map(|s| s as u32).collect();
        self.uncertain.clear();
        let n = shards.len() as u64;
        let seq = self.send(
            0,
            Channel::Session,
            &ResyncRequest {
                shards: shards.clone(),
            },
            now,
        )?;
        // Lost with the connection, the request is made again.
        for s in shards {
            self.last_sent_seq[s as usize] = seq;
        }
        self.stats.resync_requested += n;
        tracing::info!(
            shards = n,
            "asking the active peer to resync uncertain shards"
        );
        Ok(true)
    }

    fn session_job_step(&mut self, now: Instant) -> Result<bool, ProtoError> {
        let Some(job) = &mut self.session_job else {
            return Ok(false);
        };
        if job.end_sent {
            return Ok(false);
        }
        if !job.start_sent {
            job.start_sent = true;
            let msg = BatchStart {
                job_id: job.status.id,
                what: WHAT_SESSIONS,
                total: job.status.total,
            };
            self.conns[0].send(Channel::Session, &msg, &mut self.stats, now)?;
            return Ok(true);
        }
        self.bulk.clear();
        let bulk = &mut self.bulk;
        let n = self
            .table
            .snapshot_chunk_with(&mut job.cursor, self.cfg.batch_records, |k, e| {
                bulk.push(k, e)
            });
        let finished = job.cursor.finished_shard().map(|s| s as u32);
        let mut seq = self.conns[0].tx_seq;
        if n > 0 {
            seq = self.conns[0].send(Channel::Session, &self.bulk, &mut self.stats, now)?;
            self.stats.batches_tx += 1;
            self.stats.records_tx += n as u64;
            job.status.sent += n as u64;
        }
        if n > 0 || finished.is_some() {
            job.inflight.push_back((seq, n as u32, finished, false));
        }
        if job.cursor.is_done() {
            let msg = BatchEnd {
                job_id: job.status.id,
                sent: job.status.sent,
            };
            let seq = self.conns[0].send(Channel::Session, &msg, &mut self.stats, now)?;
            job.inflight.push_back((seq, 0, None, true));
            job.end_sent = true;
        }
        Ok(true)
    }

    fn fill_config(&mut self, now: Instant) -> Result<(), ProtoError> {
        // Incremental changes, in order.
        while self.config_sent < self.config_ops.len() && self.room(1) {
            let k = self.config_sent;
            let seq = self.conns[1].send(
                Channel::Config,
                &self.config_ops[k].op,
                &mut self.stats,
                now,
            )?;
            self.config_ops[k].seq = seq;
            self.config_sent += 1;
            self.stats.config_ops_tx += 1;
        }
        // Then the batch, a bounded amount per call: low priority.
        let Some(job) = &mut self.config_job else {
            return Ok(());
        };
        if job.end_sent {
            return Ok(());
        }
        if !job.start_sent {
            job.start_sent = true;
            let msg = BatchStart {
                job_id: job.status.id,
                what: WHAT_CONFIG,
                total: job.status.total,
            };
            self.conns[1].send(Channel::Config, &msg, &mut self.stats, now)?;
        }
        let mut frames = 0;
        while job.next < job.items.len()
            && frames < 4
            && self.conns[1].pending() < self.cfg.tx_high_water
        {
            let mut batch = ConfigItemBatch {
                job_id: job.status.id,
                items: Vec::new(),
            };
            let mut bytes = 0;
            while job.next < job.items.len()
                && batch.items.len() < CONFIG_ITEMS_PER_FRAME
                && bytes < CONFIG_BYTES_PER_FRAME
            {
                let (vsys, text) = &job.items[job.next];
                bytes += vsys.len() + text.len() + 16;
                batch.items.push(ConfigItem {
                    vsys: vsys.clone(),
                    text: text.clone(),
                });
                job.next += 1;
            }
            let n = batch.items.len() as u32;
            let seq = self.conns[1].send(Channel::Config, &batch, &mut self.stats, now)?;
            job.status.sent += u64::from(n);
            job.inflight.push_back((seq, n));
            frames += 1;
        }
        if job.next >= job.items.len() {
            let msg = BatchEnd {
                job_id: job.status.id,
                sent: job.status.sent,
            };
            self.conns[1].send(Channel::Config, &msg, &mut self.stats, now)?;
            job.end_sent = true;
        }
        Ok(())
    }

    // ----- timers -----------------------------------------------------------

    fn poll_timeout(&self) -> Option<Instant> {
        let dead = self.cfg.dead_interval();
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        for c in &self.conns {
            match c.phase {
                Phase::Up => {
                    at(c.last_tx + self.cfg.hello_interval);
                    at(c.last_rx + dead);
                }
                Phase::AwaitHello | Phase::AwaitAuth => at(c.opened + dead),
                Phase::Down | Phase::Closing => {}
            }
        }
        if self.role == Role::Initial {
            at(self.started + dead);
        }
        if let Some(h) = self.peer_heard {
            at(h + dead);
        }
        if let Some(p) = self.preempt_at {
            at(p);
        }
        if let Some(b) = self.batch_open_since {
            at(b + self.cfg.flush_interval);
        }
        t
    }

    fn on_timeout(&mut self, now: Instant) {
        let dead = self.cfg.dead_interval();
        for i in 0..2 {
            let c = &self.conns[i];
            match c.phase {
                Phase::Up => {
                    if now >= c.last_rx + dead {
                        self.fail(i, &ProtoError::Timeout);
                    } else if now >= c.last_tx + self.cfg.hello_interval {
                        let hb = self.heartbeat(now);
                        match self.send(i, Channel::Control, &hb, now) {
                            Ok(_) => self.stats.heartbeats_tx += 1,
                            Err(e) => self.fail(i, &e),
                        }
                    }
                }
                Phase::AwaitHello | Phase::AwaitAuth => {
                    if now >= c.opened + dead {
                        self.fail(i, &ProtoError::Timeout);
                    }
                }
                Phase::Down | Phase::Closing => {}
            }
        }
        if self.role == Role::Initial && !self.established && now >= self.started + dead {
            self.set_role(Role::Active, "no peer within the dead interval", now);
        }
        if let Some(h) = self.peer_heard {
            if now >= h + dead && !self.conns[0].is_up() {
                self.peer_heard = None;
                self.events.push_back(Event::PeerDead);
                tracing::warn!("HRP peer dead");
                if self.role != Role::Active {
                    self.set_role(Role::Active, "peer dead: taking over", now);
                }
            }
        }
        if let Some(p) = self.preempt_at {
            if now >= p {
                self.preempt_at = None;
                if self.established && self.role == Role::Standby {
                    self.set_role(
                        Role::Active,
                        "preemption: this node has the higher priority",
                        now,
                    );
                }
            }
        }
    }

    // ----- control plane --------------------------------------------------

    fn new_status(&mut self, kind: JobKind, total: u64, now: Instant) -> JobStatus {
        let id = self.next_job_id;
        self.next_job_id += 1;
        JobStatus {
            id,
            kind,
            state: JobState::Running,
            total,
            sent: 0,
            acked: 0,
            restarts: 0,
            started: now,
            finished: None,
            config: None,
        }
    }

    fn start_session_sync(&mut self, now: Instant) -> Result<u64, RequestError> {
        if !self.established {
            return Err(RequestError::NotEstablished);
        }
        if let Some(j) = &self.session_job {
            return Err(RequestError::AlreadyRunning(j.status.id));
        }
        let total = self.table.backup_len() as u64;
        let status = self.new_status(JobKind::ConnectionStatus, total, now);
        let id = status.id;
        self.session_job = Some(SessionJob {
            status,
            cursor: self.table.snapshot(),
            acked_shards: ShardSet::new(self.table.shard_count()),
            acked_in_done_shards: 0,
            inflight: VecDeque::new(),
            start_sent: false,
            end_sent: false,
        });
        Ok(id)
    }

    fn start_config_sync(
        &mut self,
        items: Vec<(String, String)>,
        now: Instant,
    ) -> Result<u64, RequestError> {
        if !self.established {
            return Err(RequestError::NotEstablished);
        }
        if let Some(j) = &self.config_job {
            return Err(RequestError::AlreadyRunning(j.status.id));
        }
        let status = self.new_status(JobKind::Config, items.len() as u64, now);
        let id = status.id;
        self.config_job = Some(ConfigJob {
            status,
            items,
            next: 0,
            inflight: VecDeque::new(),
            start_sent: false,
            end_sent: false,
        });
        Ok(id)
    }

    fn queue_config_op(&mut self, op: u8, vsys: &str, text: &str) -> bool {
        if !self.ever_established {
            return false;
        }
        if self.config_ops.len() >= self.cfg.config_queue_limit {
            self.stats.config_ops_dropped += 1;
            self.events.push_back(Event::Warning(
                "configuration change queue full: change dropped; run `hrp sync config` once the link is back".into(),
            ));
            return false;
        }
        self.config_ops.push_back(QueuedOp {
            seq: 0,
            op: ConfigOp {
                op,
                vsys: vsys.to_owned(),
                text: text.to_owned(),
            },
        });
        true
    }
}

fn peer_closed(c: &hotsync_wire::ArchivedClose) -> ProtoError {
    ProtoError::PeerClosed {
        reason: c.reason.to_native(),
        detail: c.detail.as_str().chars().take(200).collect(),
    }
}
