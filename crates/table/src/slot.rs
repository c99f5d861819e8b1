//! One record of a shard's slab: a key and entry that readers copy without a
//! lock, guarded by a sequence word the shard's writer bumps around every
//! write (a seqlock). A reader that overlaps a write sees the sequence change
//! and copies again, so it returns the entry before or after the write,
//! never a mix.
//!
//! Every field is an atomic word, so the protocol needs no `unsafe`: readers
//! load words `Relaxed` between an `Acquire` load of the sequence and an
//! `Acquire` fence, the writer stores them between a `Release` fence and a
//! `Release` store (the fence-based seqlock of Boehm, "Can seqlocks get along
//! with programming language memory models?", 2012).

use crate::model::{SessionEntry, SessionKey};
use crate::sync::{AtomicU32, AtomicU64, fence, spin};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// Words a key takes (the 42-byte key padded with zeros to whole words).
const KEY_WORDS: usize = size_of::<SessionKey>().div_ceil(8);
/// Words an entry takes.
const ENTRY_WORDS: usize = size_of::<SessionEntry>().div_ceil(8);

/// A key as the slot stores it.
pub(crate) type KeyWords = [u64; KEY_WORDS];
type EntryWords = [u64; ENTRY_WORDS];

/// A write is in progress: readers wait for it to end (a few nanoseconds).
const WRITING: u32 = 1;
/// The slot holds a session.
pub(crate) const LIVE: u32 = 2;
/// The key is in the shard's journal and not drained yet (writer-only
/// bookkeeping: readers ignore it).
pub(crate) const DIRTY: u32 = 4;
const FLAGS: u32 = WRITING | LIVE | DIRTY;
/// One write: the version lives above the flag bits.
const VERSION: u32 = 8;

/// The words of a key.
#[inline]
pub(crate) fn key_words(key: &SessionKey) -> KeyWords {
    to_words(key)
}

/// The value's bytes in zero-padded words.
#[inline]
fn to_words<T: bytemuck::Pod, const N: usize>(v: &T) -> [u64; N] {
    let mut w = [0u64; N];
    bytemuck::cast_slice_mut::<u64, u8>(&mut w)[..size_of::<T>()]
        .copy_from_slice(bytemuck::bytes_of(v));
    w
}

/// The value stored in zero-padded words.
#[inline]
fn from_words<T: bytemuck::Pod, const N: usize>(w: &[u64; N]) -> T {
    bytemuck::pod_read_unaligned(&bytemuck::cast_slice::<u64, u8>(w)[..size_of::<T>()])
}

/// 168 bytes: 152 of payload (the key padded to whole words), the sequence
/// word, the writer's `aux` and the entry's digest contribution.
#[cfg_attr(not(loom), derive(bytemuck::Zeroable))]
#[repr(C)]
pub(crate) struct Slot {
    /// Version (bits 3..), `WRITING`, `LIVE`, `DIRTY`.
    seq: AtomicU32,
    /// Writer-only. Live slot: the resync epoch that last wrote it. Free
    /// slot: the next free slot, or `u32::MAX`.
    aux: AtomicU32,
    key: [AtomicU64; KEY_WORDS],
    entry: [AtomicU64; ENTRY_WORDS],
    /// Writer-only: this entry's digest contribution (0 unless
    /// backup-capable), so a replace or removal subtracts it without
    /// hashing again.
    digest: AtomicU64,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Slot>() == 168);

/// Whether two sequence words name the same version (the writer-only
/// `DIRTY` bit may differ).
#[inline]
fn same_version(a: u32, b: u32) -> bool {
    (a ^ b) & !DIRTY == 0
}

impl Slot {
    // ----- readers (any thread, no lock) -----------------------------------

    /// The entry, if the slot holds `want`'s session.
    ///
    /// A key that differs is not re-checked: key words change only when a
    /// slot is refilled, and a reader only reaches a refilled slot through an
    /// index word that a removal has since taken out, which the index's
    /// move counter makes the lookup's miss path retry.
    #[inline]
    pub(crate) fn read_if(&self, want: &KeyWords) -> Option<SessionEntry> {
        loop {
            let s1 = self.seq.load(Acquire);
            if s1 & WRITING != 0 {
                spin();
                continue;
            }
            if s1 & LIVE == 0 {
                return None;
            }
            if self
                .key
                .iter()
                .zip(want)
                .any(|(w, k)| w.load(Relaxed) != *k)
            {
                return None;
            }
            let entry = self.load_entry();
            fence(Acquire);
            if same_version(s1, self.seq.load(Relaxed)) {
                return Some(from_words(&entry));
            }
        }
    }

    /// A consistent copy of the slot's session, `None` if it is free.
    #[inline]
    pub(crate) fn read(&self) -> Option<(SessionKey, SessionEntry)> {
        loop {
            let s1 = self.seq.load(Acquire);
            if s1 & WRITING != 0 {
                spin();
                continue;
            }
            if s1 & LIVE == 0 {
                return None;
            }
            let key: KeyWords = std::array::from_fn(|i| self.key[i].load(Relaxed));
            let entry = self.load_entry();
            fence(Acquire);
            if same_version(s1, self.seq.load(Relaxed)) {
                return Some((from_words(&key), from_words(&entry)));
            }
        }
    }

    #[inline]
    fn load_entry(&self) -> EntryWords {
        std::array::from_fn(|i| self.entry[i].load(Relaxed))
    }

    /// The first line of the slot, for a prefetch.
    #[inline]
    pub(crate) fn head(&self) -> &AtomicU32 {
        &self.seq
    }

    /// Starts loading every cache line a lookup copies: a 168-byte slot
    /// spans three or four lines, and a word at offsets 0, 64, 128 and
    /// 160 lies in each (an aligned word never straddles two lines).
    #[inline]
    pub(crate) fn prefetch_all(&self) {
        crate::mem::prefetch(&self.seq);
        crate::mem::prefetch(&self.entry[1]); // offset 64
        crate::mem::prefetch(&self.entry[9]); // offset 128
        crate::mem::prefetch(&self.digest); // offset 160
    }

    // ----- writer (holds the shard's writer lock) --------------------------
    //
    // Only the lock holder stores, so its own loads are exact with `Relaxed`.

    /// `LIVE` and `DIRTY` bits.
    #[inline]
    pub(crate) fn flags(&self) -> u32 {
        self.seq.load(Relaxed) & (LIVE | DIRTY)
    }

    /// Whether the slot is live and holds `want`.
    #[inline]
    pub(crate) fn holds(&self, want: &KeyWords) -> bool {
        self.flags() & LIVE != 0
            && self
                .key
                .iter()
                .zip(want)
                .all(|(w, k)| w.load(Relaxed) == *k)
    }

    /// The stored key.
    #[inline]
    pub(crate) fn key(&self) -> SessionKey {
        let k: KeyWords = std::array::from_fn(|i| self.key[i].load(Relaxed));
        from_words(&k)
    }

    /// The stored entry.
    #[inline]
    pub(crate) fn entry(&self) -> SessionEntry {
        from_words(&self.load_entry())
    }

    #[inline]
    pub(crate) fn digest(&self) -> u64 {
        self.digest.load(Relaxed)
    }

    #[inline]
    pub(crate) fn aux(&self) -> u32 {
        self.aux.load(Relaxed)
    }

    #[inline]
    pub(crate) fn set_aux(&self, aux: u32) {
        self.aux.store(aux, Relaxed);
    }

    /// Sets or clears `DIRTY` without a new version (readers ignore it).
    /// `Release`, so a reader that loads this word still sees the data the
    /// last write published.
    #[inline]
    pub(crate) fn set_dirty(&self, on: bool) {
        let s = self.seq.load(Relaxed);
        let s = if on { s | DIRTY } else { s & !DIRTY };
        self.seq.store(s, Release);
    }

    #[inline]
    fn begin_write(&self) -> u32 {
        let s = self.seq.load(Relaxed);
        self.seq.store(s | WRITING, Relaxed);
        fence(Release);
        s
    }

    #[inline]
    fn end_write(&self, s: u32, flags: u32) {
        self.seq
            .store((s & !FLAGS).wrapping_add(VERSION) | flags, Release);
    }

    /// Replaces the entry of a live slot.
    #[inline]
    pub(crate) fn write_entry(&self, entry: &SessionEntry, digest: u64) {
        let e: EntryWords = to_words(entry);
        let s = self.begin_write();
        for (w, v) in self.entry.iter().zip(e) {
            w.store(v, Relaxed);
        }
        self.digest.store(digest, Relaxed);
        self.end_write(s, s & (LIVE | DIRTY));
    }

    /// Fills a free slot with a new session (not yet reachable from the
    /// index, unless a stale reader holds an old word for it).
    #[inline]
    pub(crate) fn fill(&self, key: &KeyWords, entry: &SessionEntry, digest: u64, aux: u32) {
        let e: EntryWords = to_words(entry);
        let s = self.begin_write();
        for (w, v) in self.key.iter().zip(key) {
            w.store(*v, Relaxed);
        }
        for (w, v) in self.entry.iter().zip(e) {
            w.store(v, Relaxed);
        }
        self.digest.store(digest, Relaxed);
        self.aux.store(aux, Relaxed);
        self.end_write(s, LIVE);
    }

    /// Frees the slot: readers holding a stale index word for it now miss.
    /// `next_free` goes in `aux`.
    #[inline]
    pub(crate) fn free(&self, next_free: u32) {
        let s = self.begin_write();
        self.aux.store(next_free, Relaxed);
        self.end_write(s, 0);
    }

    /// A free slot (what zeroed memory is), built field by field.
    #[cfg(loom)]
    pub(crate) fn free_slot() -> Self {
        Self {
            seq: AtomicU32::new(0),
            aux: AtomicU32::new(0),
            key: std::array::from_fn(|_| AtomicU64::new(0)),
            entry: std::array::from_fn(|_| AtomicU64::new(0)),
            digest: AtomicU64::new(0),
        }
    }

    /// Writes the slot's memory without changing it (page pre-faulting; a
    /// store, since an idempotent read-modify-write compiles to a load).
    /// Only for a slot never used: all zero, not reachable by a reader.
    pub(crate) fn touch_unused(&self) {
        self.digest.store(0, Relaxed);
    }
}
