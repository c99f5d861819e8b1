//! One shard: a slab of seqlocked slots and an atomic index over it, both
//! read without a lock, and the writer state (free list, journal, digest,
//! resync epoch) behind the one lock its writers share.

use crate::arena::{self, Share};
use crate::index::Index;
use crate::mem;
use crate::model::{SessionEntry, SessionKey};
use crate::slot::{DIRTY, KeyWords, LIVE, Slot, key_words};
use crate::sync::{AtomicU32, AtomicU64, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::sync::PoisonError;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

pub(crate) const NO_SLOT: u32 = u32::MAX;

pub(crate) struct Shard {
    pub(crate) index: Index,
    pub(crate) slots: Share<Slot>,
    /// Slots `0..used` have held a session at some time; walks stop there.
    used: AtomicU32,
    writer: Mutex<Writer>,
}

/// What only writers touch, under the shard's lock.
pub(crate) struct Writer {
    free_head: u32,
    pub(crate) len: usize,
    pub(crate) capacity: usize,
    /// Changed keys, each with the slot it had when journaled ([`NO_SLOT`]
    /// for a removal): the drain reads that slot directly when it still
    /// holds the key, without hashing and probing the index again.
    pub(crate) journal: VecDeque<(SessionKey, u32)>,
    journal_capacity: usize,
    pub(crate) overflowed: bool,
    /// Sum of the digest hashes of backup-capable entries.
    pub(crate) digest: u64,
    pub(crate) backup_len: usize,
    /// While the peer resyncs this shard into us: the epoch applies stamp.
    pub(crate) resync_epoch: Option<u32>,
    /// Where the aging sweep resumes.
    pub(crate) aging_pos: usize,
}

/// A slot just freed: what it held.
pub(crate) struct Freed {
    pub(crate) key: SessionKey,
    pub(crate) entry: SessionEntry,
    pub(crate) dirty: bool,
}

impl Shard {
    /// A shard with its own allocations (the loom model; a table shares one
    /// allocation per kind among its shards: [`Self::storage`]).
    #[cfg(loom)]
    pub(crate) fn new(capacity: usize, journal_capacity: usize) -> Self {
        let (mut slots, mut words) = Self::storage(capacity, 1);
        let (Some(slots), Some(words)) = (slots.pop(), words.pop()) else {
            unreachable!("one share each");
        };
        Self::with_storage(capacity, journal_capacity, slots, words)
    }

    /// The slabs and index words of `shards` shards of `capacity` sessions,
    /// one allocation for all slabs and one for all indexes.
    pub(crate) fn storage(
        capacity: usize,
        shards: usize,
    ) -> (Vec<Share<Slot>>, Vec<Share<AtomicU64>>) {
        // Zeroed memory is a free slot; the pages stay unbacked until used
        // (or pre-faulted).
        #[cfg(not(loom))]
        let all = arena::zeroed::<Slot>(capacity * shards);
        #[cfg(loom)]
        let all = (0..capacity * shards)
            .map(|_| Slot::free_slot())
            .collect::<Box<[_]>>();
        (
            arena::share_out(all, shards, capacity),
            Index::all_words(capacity, shards),
        )
    }

    /// A shard of `capacity` sessions over `slots` and index `words` from
    /// [`Self::storage`].
    pub(crate) fn with_storage(
        capacity: usize,
        journal_capacity: usize,
        slots: Share<Slot>,
        words: Share<AtomicU64>,
    ) -> Self {
        Self {
            index: Index::with_words(words),
            slots,
            used: AtomicU32::new(0),
            writer: Mutex::new(Writer {
                free_head: NO_SLOT,
                len: 0,
                capacity,
                journal: VecDeque::with_capacity(journal_capacity),
                journal_capacity,
                overflowed: false,
                digest: 0,
                backup_len: 0,
                resync_epoch: None,
                aging_pos: 0,
            }),
        }
    }

    /// Takes the writer lock.
    #[inline]
    pub(crate) fn lock(&self) -> Locked<'_> {
        // A data-plane thread that panicked mid-write leaves at worst one
        // entry half-updated; the table stays usable rather than poisoning
        // every later packet.
        Locked {
            shard: self,
            w: self.writer.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Lock-free lookup.
    #[inline]
    pub(crate) fn get(&self, hash: u64, key: &KeyWords) -> Option<SessionEntry> {
        self.index
            .lookup(hash, |s| self.slots[s as usize].read_if(key))
    }

    /// How many slots a walk covers now.
    #[inline]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Acquire) as usize
    }

    /// Starts loading the index line an upsert of `hash` will probe first.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Second stage of [`Self::prefetch`]: the slot the home word names.
    #[inline]
    pub(crate) fn prefetch_slot(&self, hash: u64) {
        if let Some(s) = self.index.peek(hash) {
            if let Some(slot) = self.slots.get(s as usize) {
                mem::prefetch(slot.head());
            }
        }
    }

    /// Like [`Self::prefetch_slot`], for a lookup: every line of the slot.
    #[inline]
    pub(crate) fn prefetch_slot_for_read(&self, hash: u64) {
        if let Some(s) = self.index.peek(hash) {
            if let Some(slot) = self.slots.get(s as usize) {
                slot.prefetch_all();
            }
        }
    }

    /// Backs every page of the slab and index with memory, under the
    /// writer lock (slots in use are backed already; the rest are zero).
    pub(crate) fn prefault(&self) {
        let _writer = self.lock();
        let stride = (4096 / std::mem::size_of::<Slot>()).max(1);
        for s in self.slots[self.used()..].iter().step_by(stride) {
            s.touch_unused();
        }
        self.index.touch();
    }
}

/// A shard with its writer lock held.
pub(crate) struct Locked<'a> {
    shard: &'a Shard,
    pub(crate) w: MutexGuard<'a, Writer>,
}

impl Locked<'_> {
    #[inline]
    pub(crate) fn slot(&self, idx: u32) -> &Slot {
        &self.shard.slots[idx as usize]
    }

    /// How many slots have ever been used.
    pub(crate) fn used(&self) -> usize {
        self.shard.used.load(Relaxed) as usize
    }

    #[inline]
    pub(crate) fn find(&self, hash: u64, key: &SessionKey) -> Option<u32> {
        let kw = key_words(key);
        let slots = &self.shard.slots;
        self.shard
            .index
            .find(hash, |s| slots[s as usize].holds(&kw))
            .ok()
            .map(|(_, s)| s)
    }

    /// Replaces slot `idx`'s entry, keeping the shard digest current.
    /// `digest` is the new entry's contribution (computed by the caller,
    /// outside the lock where it can be).
    #[inline]
    pub(crate) fn replace(&mut self, idx: u32, entry: &SessionEntry, digest: u64) -> SessionEntry {
        let slot = &self.shard.slots[idx as usize];
        let old = slot.entry();
        let old_digest = slot.digest();
        slot.write_entry(entry, digest);
        let w = &mut *self.w;
        w.backup_len = w.backup_len + usize::from(entry.is_backup()) - usize::from(old.is_backup());
        w.digest = w.digest.wrapping_sub(old_digest).wrapping_add(digest);
        old
    }

    /// Records a change of `idx`'s key. Returns true when the journal went
    /// from empty to non-empty or overflowed (the engine should be woken).
    #[inline]
    pub(crate) fn journal_slot(&mut self, idx: u32, overflow_flag: &AtomicBool) -> bool {
        let slot = &self.shard.slots[idx as usize];
        if slot.flags() & DIRTY != 0 {
            return false; // coalesced into the record already queued
        }
        let w = &mut *self.w;
        if w.overflowed {
            return false; // the whole shard will be resynced
        }
        if w.journal.len() >= w.journal_capacity {
            w.overflowed = true;
            overflow_flag.store(true, Release);
            return true;
        }
        slot.set_dirty(true);
        w.journal.push_back((slot.key(), idx));
        w.journal.len() == 1
    }

    /// Records the removal of a key whose slot is already freed.
    pub(crate) fn journal_removed(
        &mut self,
        key: &SessionKey,
        was_dirty: bool,
        overflow_flag: &AtomicBool,
    ) -> bool {
        let w = &mut *self.w;
        if was_dirty || w.overflowed {
            return false;
        }
        if w.journal.len() >= w.journal_capacity {
            w.overflowed = true;
            overflow_flag.store(true, Release);
            return true;
        }
        w.journal.push_back((*key, NO_SLOT));
        w.journal.len() == 1
    }

    /// Finds `key` or inserts it, with a single index probe. Returns the
    /// slot and, if the key existed, its previous entry (replaced). A new
    /// slot gets `aux` (the resync epoch). `Err` when the shard is full.
    #[inline]
    pub(crate) fn upsert_slot(
        &mut self,
        hash: u64,
        key: &SessionKey,
        entry: &SessionEntry,
        digest: u64,
        aux: u32,
    ) -> Result<(u32, Option<SessionEntry>), ()> {
        let kw = key_words(key);
        let shard = self.shard;
        let slots = &shard.slots;
        match shard.index.find(hash, |s| slots[s as usize].holds(&kw)) {
            Ok((_, idx)) => Ok((idx, Some(self.replace(idx, entry, digest)))),
            Err(pos) => {
                let w = &mut *self.w;
                if w.len >= w.capacity {
                    return Err(());
                }
                let idx = if w.free_head != NO_SLOT {
                    let idx = w.free_head;
                    w.free_head = slots[idx as usize].aux();
                    idx
                } else {
                    shard.used.load(Relaxed)
                };
                slots[idx as usize].fill(&kw, entry, digest, aux);
                if idx == shard.used.load(Relaxed) {
                    shard.used.store(idx + 1, Release);
                }
                shard.index.insert_at(pos, hash, idx);
                w.len += 1;
                w.backup_len += usize::from(entry.is_backup());
                w.digest = w.digest.wrapping_add(digest);
                Ok((idx, None))
            }
        }
    }

    /// Frees `idx`, whose key hashes to `hash`: out of the index first, then
    /// the slot (a reader holding a stale word then misses).
    pub(crate) fn free(&mut self, hash: u64, idx: u32) -> Freed {
        let shard = self.shard;
        if let Ok((pos, _)) = shard.index.find(hash, |s| s == idx) {
            shard.index.remove_at(pos);
        }
        let slot = &shard.slots[idx as usize];
        let freed = Freed {
            key: slot.key(),
            entry: slot.entry(),
            dirty: slot.flags() & DIRTY != 0,
        };
        let w = &mut *self.w;
        w.digest = w.digest.wrapping_sub(slot.digest());
        slot.free(w.free_head);
        w.free_head = idx;
        w.len -= 1;
        w.backup_len -= usize::from(freed.entry.is_backup());
        freed
    }

    /// Whether slot `idx` holds a session.
    #[inline]
    pub(crate) fn is_live(&self, idx: u32) -> bool {
        self.slot(idx).flags() & LIVE != 0
    }
}
