//! The configuration thread: parses and applies the peer's configuration
//! (and renders ours for an automatic `hrp sync config`) at the lowest CPU
//! priority, so that configuration work never delays the event loop's
//! session work (invariant 5).
//!
//! The loop hands it the protocol's [`ConfigWork`] in arrival order and
//! takes the results back in the same order. The thread wakes the loop when
//! it has nothing left to do (not after every result: a wake-up is a whole
//! turn of the loop), so the loop always learns of the last result before
//! the thread waits. The channels need no bound of their own: the protocol
//! stops handing out work (and reading the config socket) at
//! `CONFIG_BACKLOG_ITEMS`.

use crate::sink::StoreSink;
use crate::{JobReply, Shared};
use crossbeam_channel::{Receiver, Sender, unbounded};
use hotsync_proto::{ConfigDone, ConfigItems, ConfigWork};
use mio::Waker;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The configuration thread's nice value: the lowest normal priority. It
/// is set before `SCHED_IDLE` (which ignores it), so the thread may leave
/// `SCHED_IDLE` again without `CAP_SYS_NICE` where `RLIMIT_NICE` allows
/// nice 19; where `SCHED_IDLE` is refused (a sandbox's syscall filter), it
/// is the thread's priority.
#[cfg(target_os = "linux")]
const NICE: i32 = 19;

/// The nice value the thread is raised to when starved (needs
/// `CAP_SYS_NICE`; without it, the thread stays at [`NICE`] under the
/// normal policy, still five times `SCHED_IDLE`'s weight).
#[cfg(target_os = "linux")]
const RAISED_NICE: i32 = 10;

/// How long the thread must have held work, with little CPU, before it
/// leaves `SCHED_IDLE`. Under `SCHED_IDLE` it gets a weight of 3 against a
/// normal thread's 1024, so on cores the session threads fill it still
/// makes progress, but at a few tenths of a percent of a core: a large
/// batch would take minutes. Raised, it gets a small but real share
/// (weight 110 at nice 10: some 5% of a core beside two busy threads)
/// until its queue is empty.
const STARVED_AFTER: Duration = Duration::from_secs(1);

/// Below this share of [`STARVED_AFTER`] on a CPU, the thread is starved.
const STARVED_SHARE: u32 = 10;

/// Busy periods shorter than this are not measured: at the paced rate of a
/// batch beside session traffic, the thread empties its queue every few
/// milliseconds, and the loop reads no clock for it.
const MEASURE_AFTER: Duration = Duration::from_millis(100);

/// What the loop asks of the configuration thread.
pub(crate) enum Task {
    /// Apply the peer's configuration.
    Apply(ConfigWork),
    /// Render our syncable configuration for a batch sync (tens of
    /// milliseconds for 100k items); `reply` is handed back with it (`None`:
    /// the protocol's automatic sync).
    Render { reply: Option<JobReply> },
}

/// What it hands back.
pub(crate) enum Output {
    /// The result of the oldest [`Task::Apply`] not yet answered.
    Applied(ConfigDone),
    /// The (vsys, item) pairs of a [`Task::Render`], and whom to answer.
    Rendered {
        items: ConfigItems,
        reply: Option<JobReply>,
    },
}

/// The handle the event loop keeps. Dropping it stops the thread (after
/// the task it is on) and waits for it.
pub(crate) struct ConfigWorker {
    tx: Option<Sender<Task>>,
    rx: Receiver<Output>,
    thread: Option<JoinHandle<()>>,
    /// The thread's id once it has started (0 before), to raise it.
    tid: Arc<AtomicI32>,
    floor: Floor,
    /// Times the thread was raised out of `SCHED_IDLE`.
    pub raised: u64,
}

/// Whether the configuration thread is starved: it has held work
/// without a break for [`STARVED_AFTER`] and was on a CPU for less than a
/// [`STARVED_SHARE`]th of it.
#[derive(Debug, Default)]
struct Floor {
    /// Tasks sent and not yet answered.
    outstanding: usize,
    /// Since when it has held work without a break.
    busy_since: Option<Instant>,
    /// Start of the measured window: the time and the thread's CPU time.
    window: Option<(Instant, Duration)>,
    raised: bool,
}

/// What the floor asks of the thread's priority.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    Raise,
    Lower,
}

impl Floor {
    fn sent(&mut self, now: Instant) {
        if self.outstanding == 0 {
            self.busy_since = Some(now);
        }
        self.outstanding += 1;
    }

    fn answered(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
        if self.outstanding == 0 {
            self.busy_since = None;
            self.window = None;
        }
    }

    /// `cpu` reads the thread's CPU time; it is called only while the
    /// thread has been busy for [`MEASURE_AFTER`], once a window.
    fn check(&mut self, now: Instant, cpu: impl FnOnce() -> Option<Duration>) -> Option<Change> {
        if self.outstanding == 0 {
            return std::mem::take(&mut self.raised).then_some(Change::Lower);
        }
        if self.raised {
            return None;
        }
        let busy = now.saturating_duration_since(self.busy_since?);
        if busy < MEASURE_AFTER {
            return None;
        }
        let Some((start, used_before)) = self.window else {
            self.window = cpu().map(|c| (now, c));
            return None;
        };
        let span = now.saturating_duration_since(start);
        if span < STARVED_AFTER {
            return None;
        }
        let used_now = cpu()?;
        if used_now.saturating_sub(used_before) < span / STARVED_SHARE {
            self.raised = true;
            self.window = None;
            Some(Change::Raise)
        } else {
            self.window = Some((now, used_now));
            None
        }
    }
}

impl ConfigWorker {
    /// Starts the thread; it wakes the loop through `waker`.
    pub fn spawn(node_id: u64, shared: Arc<Shared>, waker: Arc<Waker>) -> io::Result<Self> {
        let (tx, tasks) = unbounded::<Task>();
        let (outputs, rx) = unbounded();
        let tid = Arc::new(AtomicI32::new(0));
        let published = tid.clone();
        let thread = std::thread::Builder::new()
            .name(format!("hotsync-cfg-{node_id}"))
            .spawn(move || run(shared, tasks, outputs, waker, &published))?;
        Ok(Self {
            tx: Some(tx),
            rx,
            thread: Some(thread),
            tid,
            floor: Floor::default(),
            raised: 0,
        })
    }

    /// Queues a task.
    pub fn send(&mut self, task: Task, now: Instant) {
        if let Some(tx) = &self.tx {
            // Only fails if the thread is gone; its work is then lost with
            // the node, which is stopping.
            if tx.send(task).is_ok() {
                self.floor.sent(now);
            }
        }
    }

    /// The next output, if one is ready.
    pub fn try_recv(&mut self) -> Option<Output> {
        let out = self.rx.try_recv().ok()?;
        self.floor.answered();
        Some(out)
    }

    /// Raises the thread out of `SCHED_IDLE` when it has held work for
    /// [`STARVED_AFTER`] and got less than a [`STARVED_SHARE`]th of it on
    /// a CPU, and lowers it again once its queue is empty. Called every
    /// turn of the loop (which turns at least every aging period).
    pub fn keep_floor(&mut self, now: Instant) {
        // A thread that ended (it only does at drop, or by a bug) no longer
        // owns its id: the id may name another thread by now.
        let Some(thread) = self.thread.as_ref().filter(|t| !t.is_finished()) else {
            return;
        };
        let Some(change) = self.floor.check(now, || cpu_time(thread)) else {
            return;
        };
        let tid = self.tid.load(Ordering::Acquire);
        if tid == 0 {
            return;
        }
        let raise = change == Change::Raise;
        match set_priority(tid, change) {
            Ok(()) if raise => {
                self.raised += 1;
                tracing::info!(
                    after = ?STARVED_AFTER,
                    "configuration thread held work and had no CPU: raised out of SCHED_IDLE until its queue is empty"
                );
            }
            Ok(()) => {}
            // Leaving SCHED_IDLE needs CAP_SYS_NICE or an RLIMIT_NICE that
            // allows nice 19: the thread stays there, only slower.
            Err(e) => tracing::debug!(error = %e, raise, "configuration thread priority unchanged"),
        }
    }
}

impl Drop for ConfigWorker {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    shared: Arc<Shared>,
    tasks: Receiver<Task>,
    outputs: Sender<Output>,
    waker: Arc<Waker>,
    tid: &AtomicI32,
) {
    lower_priority();
    #[cfg(target_os = "linux")]
    tid.store(crate::sys::thread_id(), Ordering::Release);
    #[cfg(not(target_os = "linux"))]
    let _ = tid;
    let mut sink = StoreSink {
        shared: shared.clone(),
    };
    for task in tasks.iter() {
        let out = match task {
            Task::Apply(work) => Output::Applied(work.apply(&mut sink)),
            Task::Render { reply } => Output::Rendered {
                items: crate::syncable_config(&shared),
                reply,
            },
        };
        if outputs.send(out).is_err() {
            return;
        }
        if tasks.is_empty() {
            let _ = waker.wake();
        }
    }
}

/// Puts this thread at nice 19, then under `SCHED_IDLE`: it runs on CPU
/// time the session threads leave, and one of them waking up preempts it at
/// once (a nice-19 thread may keep the core for the rest of its slice,
/// about a millisecond, which is what session p99 had been paying). It
/// still gets a small share on a saturated machine (weight 3 against 1024),
/// and [`ConfigWorker::keep_floor`] raises it when that is not enough.
/// Failing `SCHED_IDLE`, nice 19; without the platform it runs at normal
/// priority, still off the event loop.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        if let Err(e) = crate::sys::set_nice(0, NICE) {
            tracing::debug!(error = %e, "configuration thread keeps its nice value");
        }
        if let Err(e) = crate::sys::set_idle_policy(0) {
            tracing::debug!(error = %e, "SCHED_IDLE refused; configuration thread at nice {NICE}");
        }
    }
}

/// Applies a [`Change`] to the thread `tid`.
#[cfg(target_os = "linux")]
fn set_priority(tid: crate::sys::Tid, change: Change) -> io::Result<()> {
    use crate::sys::{set_idle_policy, set_nice, set_normal_policy};
    match change {
        Change::Raise => set_normal_policy(tid).map(|()| {
            // Without CAP_SYS_NICE it stays at nice 19.
            let _ = set_nice(tid, RAISED_NICE);
        }),
        Change::Lower => set_nice(tid, NICE).and_then(|()| set_idle_policy(tid)),
    }
}

#[cfg(not(target_os = "linux"))]
fn set_priority(_tid: i32, _change: Change) -> io::Result<()> {
    Ok(())
}

/// The CPU time the configuration thread has used.
#[cfg(target_os = "linux")]
fn cpu_time(thread: &JoinHandle<()>) -> Option<Duration> {
    use std::os::unix::thread::JoinHandleExt;
    crate::sys::thread_cpu_time(thread.as_pthread_t()).ok()
}

#[cfg(not(target_os = "linux"))]
fn cpu_time(_thread: &JoinHandle<()>) -> Option<Duration> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread that had work for `secs` seconds and ran `cpu` of them.
    fn busy(f: &mut Floor, t0: Instant, secs: u32, cpu: Duration) -> Option<Change> {
        let start = t0 + MEASURE_AFTER;
        assert_eq!(
            f.check(start, || Some(Duration::ZERO)),
            None,
            "window opens"
        );
        f.check(start + STARVED_AFTER * secs, || Some(cpu))
    }

    #[test]
    fn a_thread_holding_work_without_cpu_is_raised_then_lowered_when_done() {
        let t0 = Instant::now();
        let mut f = Floor::default();
        assert_eq!(f.check(t0, || panic!("no work: no clock")), None);
        f.sent(t0);
        f.sent(t0);
        assert_eq!(
            f.check(t0 + MEASURE_AFTER / 2, || panic!(
                "short busy periods are not measured"
            )),
            None
        );
        // 3 ms of CPU in a second: what SCHED_IDLE gets beside busy threads.
        assert_eq!(
            busy(&mut f, t0, 1, Duration::from_millis(3)),
            Some(Change::Raise)
        );
        assert_eq!(
            f.check(t0 + STARVED_AFTER * 2, || Some(Duration::ZERO)),
            None,
            "raised once"
        );
        f.answered();
        assert_eq!(
            f.check(t0 + STARVED_AFTER * 3, || None),
            None,
            "one task still queued"
        );
        f.answered();
        assert_eq!(
            f.check(t0 + STARVED_AFTER * 3, || None),
            Some(Change::Lower)
        );
        assert_eq!(f.check(t0 + STARVED_AFTER * 4, || None), None);
    }

    #[test]
    fn a_busy_thread_that_gets_the_cpu_is_left_alone() {
        let t0 = Instant::now();
        let mut f = Floor::default();
        f.sent(t0);
        // A long apply with half a core: working, not starved.
        assert_eq!(busy(&mut f, t0, 2, STARVED_AFTER), None);
    }

    #[test]
    fn a_thread_that_empties_its_queue_between_frames_is_never_measured() {
        let t0 = Instant::now();
        let mut f = Floor::default();
        // A paced batch: a frame every 1.28 ms, done 0.5 ms later.
        for i in 0..5000u32 {
            let t = t0 + Duration::from_micros(1280) * i;
            f.sent(t);
            assert_eq!(
                f.check(t + Duration::from_micros(300), || panic!("clock read")),
                None
            );
            f.answered();
        }
    }
}
