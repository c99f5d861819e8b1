//! Batch-sync jobs: what `hrp sync ...` started, how far it got, and how
//! it resumes after the connection drops.
//!
//! A session job walks the table shard by shard; a shard whose frames the
//! peer acknowledged is never sent again, so a job cut by a disconnect
//! resumes at the first unacknowledged shard. A config job resends from
//! the start (the peer's apply is additive and idempotent).

use crate::config_items::ConfigItems;
use crate::config_pace::ConfigPace;
use crate::conn::Conn;
use crate::error::{ProtoError, RequestError};
use crate::event::{Event, Events};
use crate::settings::ProtoConfig;
use crate::stats::Stats;
use hotsync_table::{SessionTable, ShardSet, SnapshotCursor};
use hotsync_wire::{
    ArchivedConfigBatchResult, BatchEnd, BatchStart, Channel, ConfigItem, ConfigItemBatch,
    SessionUpsertBatch,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many finished jobs are remembered for `display hrp sync-status`.
const JOB_HISTORY: usize = 16;

/// Config items per batch frame, and the bytes at which a frame is cut.
const CONFIG_ITEMS_PER_FRAME: usize = 128;
const CONFIG_BYTES_PER_FRAME: usize = 64 << 10;
/// Config batch frames generated per fill: the config connection is low
/// priority.
const CONFIG_FRAMES_PER_FILL: usize = 4;

pub use hotsync_wire::JobKind;

/// Where a job is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Sending or waiting for acknowledgements.
    Running,
    /// Every item sent was acknowledged by the peer.
    Done,
    /// Gave up; the text says why. A batch sync is additive: run it again.
    Failed(String),
}

/// Counts a config batch sync reports (from the receiver).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfigOutcome {
    /// Items the peer lacked and added.
    pub added: u64,
    /// Items the peer already had, equal.
    pub equal: u64,
    /// Items with the same identity and other parameters: not applied,
    /// listed as conflicts on the peer (B7).
    pub conflicts: u64,
    /// Items the peer refused (for example a category it never accepts).
    pub rejected: u64,
}

/// Progress and result of one batch sync.
#[derive(Clone, Debug)]
pub struct JobStatus {
    /// Job id, unique per node.
    pub id: u64,
    /// What it syncs.
    pub kind: JobKind,
    /// Where it is.
    pub state: JobState,
    /// Items (entries or configuration items) to send.
    pub total: u64,
    /// Items sent so far.
    pub sent: u64,
    /// Items the peer acknowledged.
    pub acked: u64,
    /// Times the job resumed after the connection dropped.
    pub restarts: u32,
    /// When it started.
    pub started: Instant,
    /// When it ended.
    pub finished: Option<Instant>,
    /// Config jobs: the peer's counts.
    pub config: Option<ConfigOutcome>,
}

impl JobStatus {
    /// Elapsed time until now or the end.
    pub fn elapsed(&self, now: Instant) -> Duration {
        self.finished
            .unwrap_or(now)
            .saturating_duration_since(self.started)
    }

    /// Acknowledged items per second.
    pub fn rate(&self, now: Instant) -> f64 {
        let s = self.elapsed(now).as_secs_f64();
        if s > 0.0 { self.acked as f64 / s } else { 0.0 }
    }

    /// Estimated time left at the current rate.
    pub fn eta(&self, now: Instant) -> Option<Duration> {
        let r = self.rate(now);
        (self.state == JobState::Running && r > 0.0)
            .then(|| Duration::from_secs_f64(self.total.saturating_sub(self.acked) as f64 / r))
    }
}

/// One frame of a session job not yet acknowledged.
struct InFlight {
    seq: u64,
    entries: u32,
    /// The shard this frame finished, if any.
    finished_shard: Option<u32>,
    /// The end marker.
    end: bool,
}

struct SessionJob {
    status: JobStatus,
    cursor: SnapshotCursor,
    acked_shards: ShardSet,
    acked_in_done_shards: u64,
    inflight: VecDeque<InFlight>,
    start_sent: bool,
    end_sent: bool,
}

struct ConfigJob {
    status: JobStatus,
    /// Kept whole until the peer's result (a dropped connection resends
    /// from the start); packed, so ending the job frees three buffers.
    items: ConfigItems,
    next: usize,
    /// (seq, items) of frames not yet acknowledged.
    inflight: VecDeque<(u64, u32)>,
    start_sent: bool,
    end_sent: bool,
}

/// The running jobs (at most one of each kind) and the recent finished ones.
pub(crate) struct Jobs {
    next_id: u64,
    session: Option<SessionJob>,
    config: Option<ConfigJob>,
    history: VecDeque<JobStatus>,
    /// Encoding scratch for session chunks.
    bulk: SessionUpsertBatch,
}

/// What one step of the session job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionStep {
    /// Nothing to send: no job, or its end already sent.
    Idle,
    /// A frame went out; `chunk` names the shard and frame sequence number
    /// of the session chunk among them, if one was sent.
    Sent { chunk: Option<(usize, u64)> },
}

/// What a job step works with.
pub(crate) struct Step<'a> {
    pub conn: &'a mut Conn,
    pub table: &'a SessionTable,
    pub cfg: &'a ProtoConfig,
    pub stats: &'a mut Stats,
    /// Records per session chunk (smaller while incremental changes flow).
    pub chunk_records: usize,
}

impl Jobs {
    pub fn new() -> Self {
        Self {
            next_id: 1,
            session: None,
            config: None,
            history: VecDeque::new(),
            bulk: SessionUpsertBatch::default(),
        }
    }

    fn new_status(&mut self, kind: JobKind, total: u64, now: Instant) -> JobStatus {
        let id = self.next_id;
        self.next_id += 1;
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

    /// Running jobs, then recently finished ones (newest first).
    pub fn list(&self) -> Vec<JobStatus> {
        let mut v = Vec::new();
        v.extend(self.session.as_ref().map(|j| j.status.clone()));
        v.extend(self.config.as_ref().map(|j| j.status.clone()));
        v.extend(self.history.iter().rev().cloned());
        v
    }

    /// Whether a session job has frames left to send.
    pub fn session_pending(&self) -> bool {
        self.session.as_ref().is_some_and(|j| !j.end_sent)
    }

    /// Whether a config job has frames left to send.
    pub fn config_pending(&self) -> bool {
        self.config.as_ref().is_some_and(|j| !j.end_sent)
    }

    /// Starts a session job over the whole table.
    pub fn start_session(
        &mut self,
        table: &SessionTable,
        now: Instant,
    ) -> Result<u64, RequestError> {
        if let Some(j) = &self.session {
            return Err(RequestError::AlreadyRunning(j.status.id));
        }
        let total = table.backup_len() as u64;
        let status = self.new_status(JobKind::ConnectionStatus, total, now);
        let id = status.id;
        self.session = Some(SessionJob {
            status,
            cursor: table.snapshot(),
            acked_shards: ShardSet::new(table.shard_count()),
            acked_in_done_shards: 0,
            inflight: VecDeque::new(),
            start_sent: false,
            end_sent: false,
        });
        Ok(id)
    }

    /// Starts a config job over these (virtual system, text) items.
    pub fn start_config(&mut self, items: ConfigItems, now: Instant) -> Result<u64, RequestError> {
        if let Some(j) = &self.config {
            return Err(RequestError::AlreadyRunning(j.status.id));
        }
        let status = self.new_status(JobKind::Config, items.len() as u64, now);
        let id = status.id;
        self.config = Some(ConfigJob {
            status,
            items,
            next: 0,
            inflight: VecDeque::new(),
            start_sent: false,
            end_sent: false,
        });
        Ok(id)
    }

    /// Sends the next piece of the session job.
    pub fn session_step(&mut self, cx: Step<'_>, now: Instant) -> Result<SessionStep, ProtoError> {
        let Some(job) = &mut self.session else {
            return Ok(SessionStep::Idle);
        };
        if job.end_sent {
            return Ok(SessionStep::Idle);
        }
        if !job.start_sent {
            job.start_sent = true;
            let msg = BatchStart {
                job_id: job.status.id,
                what: JobKind::ConnectionStatus.to_wire(),
                total: job.status.total,
            };
            cx.conn.send(Channel::Session, &msg, cx.stats, now)?;
            return Ok(SessionStep::Sent { chunk: None });
        }
        self.bulk.clear();
        let bulk = &mut self.bulk;
        let shard = job.cursor.current_shard();
        let n = cx
            .table
            .snapshot_chunk_with(&mut job.cursor, cx.chunk_records, |k, e| bulk.push(k, e));
        let finished_shard = job.cursor.finished_shard().map(|s| s as u32);
        let mut seq = cx.conn.tx_seq;
        let mut chunk = None;
        if n > 0 {
            seq = cx.conn.send(Channel::Session, &self.bulk, cx.stats, now)?;
            chunk = shard.map(|s| (s, seq));
            cx.stats.batches_tx += 1;
            cx.stats.records_tx += n as u64;
            job.status.sent += n as u64;
        }
        if n > 0 || finished_shard.is_some() {
            job.inflight.push_back(InFlight {
                seq,
                entries: n as u32,
                finished_shard,
                end: false,
            });
        }
        if job.cursor.is_done() {
            let msg = BatchEnd {
                job_id: job.status.id,
                sent: job.status.sent,
            };
            let seq = cx.conn.send(Channel::Session, &msg, cx.stats, now)?;
            job.inflight.push_back(InFlight {
                seq,
                entries: 0,
                finished_shard: None,
                end: true,
            });
            job.end_sent = true;
        }
        Ok(SessionStep::Sent { chunk })
    }

    /// Sends a bounded part of the config job (low priority): a few
    /// frames, at `pace` while incremental changes flow (`busy`).
    pub fn config_step(
        &mut self,
        cx: Step<'_>,
        pace: &mut ConfigPace,
        busy: bool,
        now: Instant,
    ) -> Result<(), ProtoError> {
        let Some(job) = &mut self.config else {
            pace.clear();
            return Ok(());
        };
        if job.end_sent {
            return Ok(());
        }
        if !job.start_sent {
            job.start_sent = true;
            let msg = BatchStart {
                job_id: job.status.id,
                what: JobKind::Config.to_wire(),
                total: job.status.total,
            };
            cx.conn.send(Channel::Config, &msg, cx.stats, now)?;
        }
        let mut frames = 0;
        while job.next < job.items.len()
            && frames < CONFIG_FRAMES_PER_FILL
            && cx.conn.has_room(cx.cfg.tx_high_water)
            && pace.may_send(busy, now)
        {
            let batch = job.next_frame();
            let n = batch.items.len() as u32;
            let seq = cx.conn.send(Channel::Config, &batch, cx.stats, now)?;
            pace.sent(batch.items.len(), busy, now);
            job.status.sent += u64::from(n);
            job.inflight.push_back((seq, n));
            frames += 1;
        }
        if job.next >= job.items.len() {
            let msg = BatchEnd {
                job_id: job.status.id,
                sent: job.status.sent,
            };
            cx.conn.send(Channel::Config, &msg, cx.stats, now)?;
            job.end_sent = true;
        }
        Ok(())
    }

    /// The peer acknowledged session frames up to `seq`; whether that
    /// completed the session job.
    pub fn on_session_ack(&mut self, seq: u64, now: Instant, events: &mut Events) -> bool {
        let Some(job) = &mut self.session else {
            return false;
        };
        let mut finished = false;
        while let Some(f) = job.inflight.front() {
            if f.seq > seq {
                break;
            }
            job.status.acked += u64::from(f.entries);
            if let Some(shard) = f.finished_shard {
                job.acked_shards.insert(shard as usize);
                job.acked_in_done_shards = job.status.acked;
            }
            finished |= f.end;
            job.inflight.pop_front();
        }
        if finished {
            if let Some(job) = self.session.take() {
                self.finish(job.status, JobState::Done, now, events);
            }
        }
        finished
    }

    /// The peer acknowledged config frames up to `seq`.
    pub fn on_config_ack(&mut self, seq: u64) {
        let Some(job) = &mut self.config else {
            return;
        };
        while let Some(&(s, n)) = job.inflight.front() {
            if s > seq {
                break;
            }
            job.inflight.pop_front();
            job.status.acked += u64::from(n);
        }
    }

    /// The peer's counts for a config job: it is done (true if it was
    /// ours).
    pub fn on_config_result(
        &mut self,
        r: &ArchivedConfigBatchResult,
        now: Instant,
        events: &mut Events,
    ) -> bool {
        let id = r.job_id.to_native();
        if let Some(job) = self.config.take_if(|j| j.status.id == id) {
            let mut st = job.status;
            st.config = Some(ConfigOutcome {
                added: r.added.to_native(),
                equal: r.equal.to_native(),
                conflicts: r.conflicts.to_native(),
                rejected: r.rejected.to_native(),
            });
            st.acked = st.total;
            self.finish(st, JobState::Done, now, events);
            return true;
        }
        false
    }

    /// This node left the active role: its session job is cancelled (ends
    /// failed, the reason said). Its chunks are its own copy, encoded
    /// before the winner's changes reached it: applied on the winner, now
    /// authoritative, they would replace its newer sessions. The winner
    /// resyncs every shard into this node instead. True if a job ran.
    pub fn cancel_session_on_step_down(&mut self, now: Instant, events: &mut Events) -> bool {
        let Some(job) = self.session.take() else {
            return false;
        };
        tracing::warn!(
            job = job.status.id,
            sent = job.status.sent,
            total = job.status.total,
            "stepped down from active: batch sync cancelled (the active peer's copy is authoritative)"
        );
        let why = "cancelled: this node stepped down from active (the active peer's copy is authoritative; it resyncs this node)";
        self.finish(job.status, JobState::Failed(why.into()), now, events);
        true
    }

    /// The session connection dropped: resume at the first shard the peer
    /// did not acknowledge whole.
    pub fn on_session_lost(&mut self, shard_count: usize) {
        let Some(job) = &mut self.session else {
            return;
        };
        let mut remaining = ShardSet::full(shard_count);
        for s in job.acked_shards.iter() {
            remaining.remove(s);
        }
        job.cursor = SnapshotCursor::over(remaining);
        job.status.acked = job.acked_in_done_shards;
        job.status.sent = job.acked_in_done_shards;
        job.inflight.clear();
        job.start_sent = false;
        job.end_sent = false;
        job.status.restarts += 1;
    }

    /// The config connection dropped: resend from the start (the peer's
    /// apply is additive, a replayed item is equal).
    pub fn on_config_lost(&mut self) {
        let Some(job) = &mut self.config else {
            return;
        };
        job.next = 0;
        job.status.sent = 0;
        job.status.acked = 0;
        job.inflight.clear();
        job.start_sent = false;
        job.end_sent = false;
        job.status.restarts += 1;
    }

    /// The peer is another process (a new incarnation). What the running
    /// session job delivered to the previous one is gone, so resuming from
    /// the acknowledged shards would end "done" with holes: start over.
    pub fn on_peer_restarted(&mut self, table: &SessionTable) {
        let Some(job) = &mut self.session else {
            return;
        };
        job.cursor = table.snapshot();
        job.acked_shards = ShardSet::new(table.shard_count());
        job.acked_in_done_shards = 0;
        job.status.acked = 0;
        job.status.sent = 0;
        tracing::info!(
            job = job.status.id,
            "peer restarted: batch sync starts over"
        );
    }

    fn finish(&mut self, mut st: JobStatus, state: JobState, now: Instant, events: &mut Events) {
        st.state = state;
        st.finished = Some(now);
        tracing::info!(job = st.id, kind = st.kind.name(), sent = st.sent, state = ?st.state, "batch sync finished");
        events.push_back(Event::JobFinished(st.clone()));
        self.history.push_back(st);
        while self.history.len() > JOB_HISTORY {
            self.history.pop_front();
        }
    }
}

impl ConfigJob {
    /// The next frame of items, bounded by count and bytes.
    fn next_frame(&mut self) -> ConfigItemBatch {
        let mut batch = ConfigItemBatch {
            job_id: self.status.id,
            items: Vec::new(),
        };
        let mut bytes = 0;
        while self.next < self.items.len()
            && batch.items.len() < CONFIG_ITEMS_PER_FRAME
            && bytes < CONFIG_BYTES_PER_FRAME
        {
            let Some((vsys, text)) = self.items.get(self.next) else {
                break;
            };
            bytes += vsys.len() + text.len() + 16;
            batch.items.push(ConfigItem {
                vsys: vsys.to_owned(),
                text: text.to_owned(),
            });
            self.next += 1;
        }
        batch
    }
}
