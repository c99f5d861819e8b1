//! The peer state machine: one node's side of the relationship with its
//! peer, over two connections (session and config).
//!
//! The driver (the `node` crate, or the simulator) owns the sockets and the
//! clock. It tells the [`Peer`] when a connection opens or closes, hands it
//! received bytes, asks it for bytes to send, and calls
//! [`Peer::handle_timeout`] when [`Peer::poll_timeout`] says so or when the
//! table signals changes.
//!
//! This module keeps the public API; its submodules the dispatch of
//! received messages (`dispatch`), the order in which output is generated
//! (`output`), what follows a role decision (`roles`), the end of a
//! connection (`lifecycle`), the timers (`timers`), the debug checks of
//! the invariants (`invariants`) and the snapshot displays read
//! (`snapshot`). The state lives in one module per concern:
//! [`crate::handshake`], [`crate::election`], [`crate::incremental`],
//! [`crate::resync`], [`crate::jobs`], [`crate::config_queue`],
//! [`crate::config_apply`] and [`crate::receive`].

mod dispatch;
mod invariants;
mod lifecycle;
mod output;
mod roles;
mod snapshot;
mod timers;

use crate::bulk_window::BulkWindow;
use crate::config_apply::{Answer, ConfigApply, ConfigDone, ConfigWork};
use crate::config_items::ConfigItems;
use crate::config_pace::ConfigPace;
use crate::config_queue::{ConfigQueue, ConfigSink, OpDelivery};
use crate::conn::{Conn, ConnKind, PerConn, Phase};
use crate::election::Election;
use crate::error::{ProtoError, RequestError};
use crate::event::{Action, Actions, Event, Events};
use crate::handshake;
use crate::incremental::Incremental;
use crate::jobs::{JobKind, JobStatus, Jobs};
use crate::receive::Inbound;
use crate::relationship::{self, Relationship};
use crate::resync::{Resync, ShardLedger};
use crate::role::Role;
use crate::settings::ProtoConfig;
use crate::stats::Stats;
use crate::step_down::StepDown;
use hotsync_table::SessionTable;
use hotsync_wire::{Channel, FrameDecoder, WireMessage};
use std::sync::Arc;
use std::time::Instant;

/// One node's protocol instance. See the module docs for how to drive it.
pub struct Peer {
    decoders: PerConn<FrameDecoder>,
    core: Core,
}

/// Everything but the decoders (a decoded frame borrows its decoder while
/// the core handles it).
struct Core {
    cfg: ProtoConfig,
    table: Arc<SessionTable>,
    conns: PerConn<Conn>,
    /// The session connection is up and roles are agreed.
    established: bool,
    /// Which pair of incarnations the relationship belongs to; once there
    /// is one, capture is on and configuration changes are queued (B4).
    relationship: Relationship,
    authenticated: bool,
    /// Why the last connection failed (for `display hrp state`).
    last_failure: Option<String>,
    election: Election,
    incremental: Incremental,
    /// Bulk chunks in flight: incremental changes go ahead of bulk.
    bulk_window: BulkWindow,
    config_pace: ConfigPace,
    ledger: ShardLedger,
    resync: Resync,
    jobs: Jobs,
    config_queue: ConfigQueue,
    config_apply: ConfigApply,
    inbound: Inbound,
    /// Changes from a peer that also held the active role.
    step_down: StepDown,
    /// This node stepped down and its hand-over (last changes, then the
    /// resync request) is not acknowledged yet: the session frame that
    /// completes it, `u64::MAX` until the request is sent.
    handover: Option<u64>,
    events: Events,
    actions: Actions,
    stats: Stats,
}

impl Peer {
    /// A protocol instance for `table`, with configuration from the peer
    /// applied to `sink` as it arrives. `nonce_seed` (random, fresh per
    /// process) seeds resync epochs and this process's incarnation: a
    /// relationship belongs to a pair of incarnations (see
    /// [`Self::incarnation`]).
    pub fn new(
        cfg: ProtoConfig,
        table: Arc<SessionTable>,
        sink: Box<dyn ConfigSink>,
        nonce_seed: u64,
        now: Instant,
    ) -> Self {
        Self::build(cfg, table, Some(sink), nonce_seed, now)
    }

    /// Like [`Self::new`], but configuration from the peer is applied by
    /// the driver, where it likes (the node: on a low-priority thread):
    /// take it with [`Self::poll_config_work`], give the results back with
    /// [`Self::handle_config_done`].
    pub fn with_config_in_driver(
        cfg: ProtoConfig,
        table: Arc<SessionTable>,
        nonce_seed: u64,
        now: Instant,
    ) -> Self {
        Self::build(cfg, table, None, nonce_seed, now)
    }

    fn build(
        cfg: ProtoConfig,
        table: Arc<SessionTable>,
        sink: Option<Box<dyn ConfigSink>>,
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
            conns: PerConn::from_fn(|kind| Conn::new(kind, max, now)),
            established: false,
            relationship: Relationship::new(relationship::incarnation_from(nonce_seed)),
            authenticated: false,
            last_failure: None,
            election: Election::new(&cfg, now),
            incremental: Incremental::new(shards, cfg.batch_records),
            bulk_window: BulkWindow::default(),
            config_pace: ConfigPace::default(),
            ledger: ShardLedger::new(shards),
            resync: Resync::new(nonce_seed),
            jobs: Jobs::new(),
            config_queue: ConfigQueue::new(cfg.config_queue_limit),
            config_apply: ConfigApply::new(sink),
            inbound: Inbound::new(
                cfg.batch_records,
                crate::receive::apply_worker(&cfg, &table),
            ),
            step_down: StepDown::default(),
            handover: None,
            events: Events::new(),
            actions: Actions::new(),
            stats: Stats::default(),
            table,
            cfg,
        };
        Self {
            decoders: PerConn::from_fn(|_| FrameDecoder::new(max)),
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
        if self.core.conns[kind].phase != Phase::Down {
            self.handle_disconnected(kind, now);
        }
        self.decoders[kind] = FrameDecoder::new(self.core.cfg.max_frame_len);
        let c = &mut self.core;
        c.conns[kind].open(is_connector, nonce, now);
        let hello = handshake::hello(
            &c.conns[kind],
            &c.cfg,
            c.table.shard_count(),
            c.election.role,
            c.relationship.local(),
        );
        c.send_or_fail(kind, Channel::Control, &hello, now);
    }

    /// Whether this node dials its peer: the node with the lower listen
    /// address does (the other accepts), so the two never dial each other
    /// at once.
    pub fn dials(local: std::net::SocketAddr, peer: std::net::SocketAddr) -> bool {
        (local.ip(), local.port()) < (peer.ip(), peer.port())
    }

    /// Whether a transport just accepted for `kind` may take its place. A
    /// connection that completed its handshake is never displaced by a
    /// newcomer (a stranger must not be able to cut the real peer off: a
    /// stale one is closed by its dead timer, then the peer gets in); one
    /// still in its handshake is (the driver closes it). A refusal is
    /// counted as `connection_refused_busy`.
    pub fn may_accept(&mut self, kind: ConnKind) -> bool {
        let up = self.core.conns[kind].is_up();
        if up {
            self.core.stats.count_error("connection_refused_busy");
        }
        !up
    }

    /// The transport for `kind` is gone (closed by either side or failed).
    pub fn handle_disconnected(&mut self, kind: ConnKind, now: Instant) {
        self.core.disconnected(kind, now);
        self.core.debug_check();
    }

    /// Buffer to read the socket into (then call [`Self::handle_received`]).
    pub fn recv_buf(&mut self, kind: ConnKind) -> &mut [u8] {
        self.decoders[kind].read_buf()
    }

    /// `n` bytes were read into [`Self::recv_buf`]. An error is counted and
    /// the connection is closing: the [`Action::Close`] queued with it is
    /// the one path to close the transport (flush [`Self::poll_transmit`],
    /// it holds the close frame; close; call [`Self::handle_disconnected`]).
    pub fn handle_received(
        &mut self,
        kind: ConnKind,
        n: usize,
        now: Instant,
    ) -> Result<(), ProtoError> {
        self.decoders[kind].commit(n);
        let core = &mut self.core;
        core.conns[kind].count_rx_bytes(n, &mut core.stats);
        self.process(kind, now)
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
                return self.process(kind, now).and(Err(ProtoError::Decode(
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

    fn process(&mut self, kind: ConnKind, now: Instant) -> Result<(), ProtoError> {
        if !self.core.conns[kind].is_open() {
            return Ok(());
        }
        let res = loop {
            // Configuration not yet applied is bounded: frames stay in the
            // decoder (and bytes in the socket) until work is done.
            if !self.may_read(kind) {
                break Ok(());
            }
            let frame = match self.decoders[kind].next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break Ok(()),
                Err(e) => break Err(ProtoError::Decode(e)),
            };
            match self.core.on_frame(kind, &frame, now) {
                Ok(None) => {}
                Ok(Some(receive)) => self.decoders[kind].set_integrity(receive),
                Err(e) => break Err(e),
            }
        };
        if let Err(e) = &res {
            self.core.fail(kind, e);
        }
        self.core.debug_check();
        res
    }

    /// Whether the driver may read `kind`'s socket. False while the
    /// configuration received and not yet applied is at its bound
    /// (`CONFIG_BACKLOG_ITEMS`): read again after
    /// [`Self::handle_config_done`] makes it true.
    pub fn may_read(&self, kind: ConnKind) -> bool {
        // A new connection's handshake is read regardless: its data waits.
        kind == ConnKind::Session
            || !self.core.conns[kind].is_up()
            || !self.core.config_apply.is_full()
    }

    // ----- configuration applied by the driver ---------------------------

    /// The next configuration from the peer to apply, in arrival order
    /// (never any for a peer built with [`Self::new`], which applies it
    /// inline). Apply it with [`ConfigWork::apply`] anywhere, then give
    /// the result to [`Self::handle_config_done`], results in the order
    /// the work was taken.
    pub fn poll_config_work(&mut self) -> Option<ConfigWork> {
        self.core.config_apply.poll_work()
    }

    /// The oldest work taken with [`Self::poll_config_work`] is applied.
    /// A batch whose items are all applied is answered with its counts,
    /// and frames held back while the backlog was full are decoded.
    pub fn handle_config_done(&mut self, done: ConfigDone, now: Instant) {
        let (apply, cx) = self.core.config_apply(now);
        let res = apply.done(done, cx);
        self.core.note_config_batch_answered();
        if let Err(e) = res {
            self.core.fail(ConnKind::Config, &e);
            return;
        }
        // Errors are counted and close the connection (`Action::Close`).
        let _ = self.process(ConnKind::Config, now);
    }

    // ----- output ---------------------------------------------------------

    /// Bytes to write to `kind`'s socket, generating more frames when the
    /// queue is low. Call [`Self::consume`] with what the socket took.
    pub fn poll_transmit(&mut self, kind: ConnKind, now: Instant) -> Option<&[u8]> {
        if let Err(e) = self.core.fill(kind, now) {
            self.core.fail(kind, &e);
        }
        self.core.debug_check();
        self.core.conns[kind].transmit()
    }

    /// The socket took `n` bytes of what [`Self::poll_transmit`] returned.
    pub fn consume(&mut self, kind: ConnKind, n: usize) {
        self.core.conns[kind].consume(n);
    }

    /// Whether `kind` has bytes queued or work that will produce some.
    pub fn wants_transmit(&self, kind: ConnKind) -> bool {
        let c = &self.core.conns[kind];
        c.pending() > 0 || (c.is_up() && self.core.has_work(kind))
    }

    /// Memory held for `kind` now: the receive buffer's allocation and the
    /// bytes queued for the socket. Bounded by `max_frame_len + READ_CHUNK`
    /// and by `tx_high_water` plus a few frames (invariant 3); exposed so
    /// tests and fuzzers can check it.
    pub fn buffered(&self, kind: ConnKind) -> (usize, usize) {
        (
            self.decoders[kind].capacity(),
            self.core.conns[kind].pending(),
        )
    }

    /// Whether the driver should call [`Self::poll_transmit`] again at once
    /// rather than wait for readiness or a timer: table changes are pending
    /// and the session queue has room. While this holds, writers do not
    /// wake the driver (see `Incremental::drain`), so it must not sleep.
    pub fn wants_poll(&self, now: Instant) -> bool {
        let c = &self.core;
        let session = &c.conns.session;
        c.established
            && session.is_up()
            && session.has_room(c.cfg.tx_high_water)
            && c.table.has_pending()
            // Waiting out the coalescing window: `poll_timeout` says when.
            && !c.incremental.window_open(&c.cfg, now)
            // Waiting for a former active's last changes: the hold's
            // deadline is a timer.
            && !c.holding(now)
    }

    /// The next notice, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.events.pop_front()
    }

    /// The next instruction the driver must carry out, if any. Poll it
    /// after every call that takes bytes or time (`handle_*`,
    /// `poll_transmit`).
    pub fn poll_action(&mut self) -> Option<Action> {
        self.core.actions.pop_front()
    }

    /// When [`Self::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    /// Runs timers (heartbeats, dead peer, preemption, flush) and picks up
    /// table changes. Safe to call at any time.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.on_timeout(now);
        self.core.debug_check();
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
        items: impl Into<ConfigItems>,
        now: Instant,
    ) -> Result<u64, RequestError> {
        if !self.core.established {
            return Err(RequestError::NotEstablished);
        }
        self.core.jobs.start_config(items.into(), now)
    }

    /// Queues one configuration change for the peer (B3), in order; whether
    /// it was queued. See [`Self::queue_config_change`].
    pub fn queue_config_op(&mut self, op: u8, vsys: &str, text: &str) -> bool {
        self.queue_config_change(op, vsys, text).is_queued()
    }

    /// Queues one configuration change for the peer (B3), in order, and
    /// says what becomes of it: sent now, held for the same peer process
    /// while the relationship is down, or not synchronized (no relationship
    /// yet, B4; an `op` that is no [`crate::ConfigOpKind`] code, which the
    /// peer would refuse; the queue full, dropped and counted).
    pub fn queue_config_change(&mut self, op: u8, vsys: &str, text: &str) -> OpDelivery {
        let c = &mut self.core;
        if crate::ConfigOpKind::from_wire(op).is_none() {
            return OpDelivery::Invalid;
        }
        if !c.relationship.exists() {
            return OpDelivery::NoRelationship;
        }
        if !c
            .config_queue
            .push(op, vsys, text, &mut c.stats, &mut c.events)
        {
            return OpDelivery::Dropped;
        }
        if c.established {
            OpDelivery::Sending
        } else {
            OpDelivery::HeldForPeer
        }
    }

    /// Status of a job (running or among the recent finished ones).
    pub fn job(&self, id: u64) -> Option<JobStatus> {
        self.jobs().into_iter().find(|j| j.id == id)
    }

    /// Running jobs, then recently finished ones (newest first).
    pub fn jobs(&self) -> Vec<JobStatus> {
        self.core.jobs.list()
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        self.core.election.role
    }

    /// `hrp role active|standby` with `hrp role-control external`: takes
    /// `role` and tells the peer at once. Refused when this node's own
    /// election decides. Returns whether the role changed.
    pub fn set_role_external(&mut self, role: Role, now: Instant) -> Result<bool, RequestError> {
        let core = &mut self.core;
        let before = core.election.role;
        let changed = core
            .election
            .set_external(role, now, &mut core.events)
            .ok_or(RequestError::RoleNotExternal)?;
        let peer_role = core.election.peer.map_or(Role::Initial, |p| p.role);
        core.roles_settled(before, peer_role, changed, now);
        Ok(changed)
    }

    /// Whether the relationship is established.
    pub fn is_established(&self) -> bool {
        self.core.established
    }

    /// This process's incarnation (announced in every hello).
    pub fn incarnation(&self) -> u64 {
        self.core.relationship.local()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// Counts an error the driver saw (accept/connect/socket errors).
    pub fn count_error(&mut self, kind: &'static str) {
        self.core.stats.count_error(kind);
    }
}

impl Core {
    /// The peer's whole configuration batch was applied and answered: the
    /// relationship no longer lacks a configuration sync (B4).
    fn note_config_batch_answered(&mut self) {
        if self.config_apply.take_whole_answered() {
            self.relationship.synced(JobKind::Config);
        }
    }

    /// The configuration backlog, and what it needs to answer the peer's
    /// batch.
    fn config_apply(&mut self, now: Instant) -> (&mut ConfigApply, Answer<'_>) {
        let cx = Answer {
            conn: &mut self.conns.config,
            stats: &mut self.stats,
            events: &mut self.events,
            now,
        };
        (&mut self.config_apply, cx)
    }

    fn send_or_fail<M: WireMessage>(
        &mut self,
        kind: ConnKind,
        channel: Channel,
        msg: &M,
        now: Instant,
    ) -> bool {
        match self.conns[kind].send(channel, msg, &mut self.stats, now) {
            Ok(_) => true,
            Err(e) => {
                self.fail(kind, &e);
                false
            }
        }
    }

    // ----- control plane --------------------------------------------------

    fn start_session_sync(&mut self, now: Instant) -> Result<u64, RequestError> {
        if !self.established {
            return Err(RequestError::NotEstablished);
        }
        self.jobs.start_session(&self.table, now)
    }
}
