//! Batch-sync jobs: what `hrp sync ...` started and how far it got.

use std::time::{Duration, Instant};

/// What a job synchronizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// `hrp sync connection-status`: the session table.
    ConnectionStatus,
    /// `hrp sync config`: the configuration.
    Config,
}

impl JobKind {
    /// Name as the CLI prints it.
    pub fn name(self) -> &'static str {
        match self {
            JobKind::ConnectionStatus => "connection-status",
            JobKind::Config => "config",
        }
    }
}

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
