//! A second thread for the receiver's apply of a large chunk.
//!
//! A bulk chunk comes from one shard, whose writers share one lock, so its
//! records cannot be applied by two threads at once. What splits is the
//! work per record: the calling thread (the node's event loop) decodes the
//! records and hashes their keys, a block of [`APPLY_RUN`] records at a
//! time, while the worker thread computes the digest contributions of the
//! block before, probes the index and fills the slots, in order. The call
//! returns only when the worker has applied the whole chunk, so the table
//! sees exactly the sequential apply: the same records in the same order,
//! nothing applied after the call returns (a change that follows the chunk
//! can never be overwritten by it), and the same digests. The worker never
//! journals (received records never are) and allocates nothing once its
//! blocks are sized.
//!
//! Waiting is a short spin, then `yield_now` rounds, then a park: the worker
//! sleeps between chunks, so an idle receiver costs no CPU. On two cores
//! shared with the sender this costs more CPU in all than it saves the
//! event loop (docs/PERFORMANCE.md), which is why the protocol uses it only
//! when configured.

use crate::model::{SessionEntry, SessionKey};
use crate::table::{APPLY_RUN, HashedRecord, SessionTable};
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{JoinHandle, Thread};

/// Blocks the worker may be behind the caller.
const RING: usize = 4;
/// Waiting rounds before a waiting thread parks: the first [`SPINS`] a
/// `spin_loop` hint (a microsecond or two), the rest a `yield_now`, which
/// leaves the core to whatever else is runnable (on two cores, the peer's
/// or the data plane's threads) while the other side finishes its block.
const ROUNDS: u32 = 256;
const SPINS: u32 = 64;

/// One waiting round.
fn pause(round: u32) {
    if round < SPINS {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// The apply thread and the blocks it shares with the caller.
pub struct ApplyWorker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    table: Arc<SessionTable>,
    blocks: [Mutex<Vec<HashedRecord>>; RING],
    /// Blocks handed to the worker since it started (the caller's count).
    published: AtomicUsize,
    /// Blocks the worker has applied.
    applied: AtomicUsize,
    /// Records of the current chunk refused because their shard was full.
    full: AtomicUsize,
    /// The worker is parked or about to park: the caller unparks it.
    worker_idle: AtomicBool,
    /// The caller is parked or about to park: the worker unparks it.
    caller_idle: AtomicBool,
    /// The thread of the current [`ApplyWorker::apply_upserts`] call.
    caller: Mutex<Option<Thread>>,
    stop: AtomicBool,
}

impl std::fmt::Debug for ApplyWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyWorker").finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Vec<HashedRecord>>) -> MutexGuard<'_, Vec<HashedRecord>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ApplyWorker {
    /// Starts the worker thread (`hotsync-apply`) for `table`.
    pub fn spawn(table: Arc<SessionTable>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            table,
            blocks: std::array::from_fn(|_| Mutex::new(Vec::with_capacity(APPLY_RUN))),
            published: AtomicUsize::new(0),
            applied: AtomicUsize::new(0),
            full: AtomicUsize::new(0),
            worker_idle: AtomicBool::new(false),
            caller_idle: AtomicBool::new(false),
            caller: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("hotsync-apply".into())
            .spawn(move || s.run())?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// [`SessionTable::apply_upserts`] of one chunk, the decoding and key
    /// hashing on this thread, the digests and the apply on the worker,
    /// overlapped block by block. Returns when every record is applied, in order, with how many
    /// were refused because their shard was full.
    pub fn apply_upserts(
        &self,
        records: impl Iterator<Item = (SessionKey, SessionEntry)>,
    ) -> usize {
        let s = &*self.shared;
        *s.caller.lock().unwrap_or_else(PoisonError::into_inner) = Some(std::thread::current());
        // The digest contributions are left to the worker: it balances the
        // two threads' shares (decoding and the key hash here).
        let mut records = records.map(|(key, entry)| HashedRecord {
            hash: crate::table::key_hash(&key),
            digest: 0,
            key,
            entry,
        });
        let mut p = s.published.load(Relaxed);
        loop {
            // The ring slot is free once the block that used it is applied.
            self.wait(|| s.applied.load(SeqCst) + RING > p);
            let mut block = lock(&s.blocks[p % RING]);
            block.clear();
            block.extend(records.by_ref().take(APPLY_RUN));
            let last = block.len() < APPLY_RUN;
            let empty = block.is_empty();
            drop(block);
            if !empty {
                p += 1;
                s.published.store(p, SeqCst);
                if s.worker_idle.load(SeqCst) {
                    if let Some(t) = &self.thread {
                        t.thread().unpark();
                    }
                }
            }
            if last {
                break;
            }
        }
        self.wait(|| s.applied.load(SeqCst) == p);
        s.full.swap(0, Relaxed)
    }

    /// Spins, then parks, until `done`. The worker unparks this thread
    /// after each block while `caller_idle` is set.
    fn wait(&self, done: impl Fn() -> bool) {
        let s = &*self.shared;
        let mut spins = 0;
        while !done() {
            if spins < ROUNDS {
                pause(spins);
                spins += 1;
                continue;
            }
            s.caller_idle.store(true, SeqCst);
            if !done() {
                assert!(
                    self.thread.as_ref().is_some_and(|t| !t.is_finished()),
                    "the apply worker thread ended"
                );
                std::thread::park_timeout(std::time::Duration::from_millis(10));
            }
            s.caller_idle.store(false, SeqCst);
        }
    }
}

impl Shared {
    /// The worker: applies each published block in turn.
    fn run(&self) {
        let mut next = self.applied.load(Relaxed);
        loop {
            let mut spins = 0;
            while self.published.load(Acquire) <= next {
                if self.stop.load(Acquire) {
                    return;
                }
                if spins < ROUNDS {
                    pause(spins);
                    spins += 1;
                    continue;
                }
                self.worker_idle.store(true, SeqCst);
                if self.published.load(SeqCst) <= next && !self.stop.load(SeqCst) {
                    std::thread::park();
                }
                self.worker_idle.store(false, SeqCst);
            }
            let mut block = lock(&self.blocks[next % RING]);
            for r in block.iter_mut() {
                r.digest = crate::table::digest_of(&r.key, &r.entry);
            }
            let full = self.table.apply_hashed(&block);
            drop(block);
            if full > 0 {
                self.full.fetch_add(full, Relaxed);
            }
            next += 1;
            self.applied.store(next, SeqCst);
            if self.caller_idle.load(SeqCst) {
                if let Some(t) = &*self.caller.lock().unwrap_or_else(PoisonError::into_inner) {
                    t.unpark();
                }
            }
        }
    }
}

impl Drop for ApplyWorker {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
