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
use std::thread::JoinHandle;

/// The configuration thread's nice value where `SCHED_IDLE` is refused
/// (a sandbox's syscall filter): the lowest normal priority.
#[cfg(target_os = "linux")]
const NICE: i32 = 19;

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
}

impl ConfigWorker {
    /// Starts the thread; it wakes the loop through `waker`.
    pub fn spawn(node_id: u64, shared: Arc<Shared>, waker: Arc<Waker>) -> io::Result<Self> {
        let (tx, tasks) = unbounded::<Task>();
        let (outputs, rx) = unbounded();
        let thread = std::thread::Builder::new()
            .name(format!("hotsync-cfg-{node_id}"))
            .spawn(move || run(shared, tasks, outputs, waker))?;
        Ok(Self {
            tx: Some(tx),
            rx,
            thread: Some(thread),
        })
    }

    /// Queues a task.
    pub fn send(&self, task: Task) {
        if let Some(tx) = &self.tx {
            // Only fails if the thread is gone; its work is then lost with
            // the node, which is stopping.
            let _ = tx.send(task);
        }
    }

    /// The next output, if one is ready.
    pub fn try_recv(&self) -> Option<Output> {
        self.rx.try_recv().ok()
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

fn run(shared: Arc<Shared>, tasks: Receiver<Task>, outputs: Sender<Output>, waker: Arc<Waker>) {
    lower_priority();
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

/// Puts this thread under `SCHED_IDLE`: it runs on CPU time the session
/// threads leave, and one of them waking up preempts it at once (a nice-19
/// thread may keep the core for the rest of its slice, about a
/// millisecond, which is what session p99 had been paying). It still gets
/// a small share on a saturated machine (weight 3 against 1024), so a
/// batch never stops outright. Failing that, nice 19; without the platform
/// it runs at normal priority, still off the event loop.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = crate::sys::set_idle_policy() {
        tracing::debug!(error = %e, "SCHED_IDLE refused; configuration thread at nice {NICE}");
        if let Err(e) = crate::sys::set_nice(NICE) {
            tracing::debug!(error = %e, "configuration thread keeps its priority");
        }
    }
}
