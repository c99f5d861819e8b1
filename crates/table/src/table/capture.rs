//! Change capture, the sync engine's side: draining the journals the data
//! plane's writes fill, the marks that say which shards to drain, and the
//! overflow marks that turn a full journal into a shard resync.

use super::*;

impl SessionTable {
    /// Moves up to `max` changes of `shard` into `out` (appended), oldest
    /// first, and returns how many. Each key appears once however often it
    /// changed since it was journaled; the entry is read now, so it is the
    /// latest. The shard's writer lock is held for this call only (readers
    /// never wait for it). A shard drained empty loses its
    /// [`Self::may_have_changes`] mark.
    pub fn drain_changes(&self, shard: usize, max: usize, out: &mut Vec<Change>) -> usize {
        let mut s = self.lock(shard);
        let n = self.drain_locked(&mut s, max, out);
        if s.w.journal.is_empty() {
            self.journaled[shard / 64].fetch_and(!(1 << (shard % 64)), Ordering::AcqRel);
        }
        n
    }

    /// [`Self::drain_changes`] of a shard whose mark the caller took with
    /// [`Self::take_journaled`]: the mark is left alone (it is clear, or a
    /// writer set it again for a later change), so the drain never touches
    /// the bitmap line the data plane's writers set bits in.
    pub fn drain_taken(&self, shard: usize, max: usize, out: &mut Vec<Change>) -> usize {
        self.drain_locked(&mut self.lock(shard), max, out)
    }

    fn drain_locked(&self, s: &mut Locked<'_>, max: usize, out: &mut Vec<Change>) -> usize {
        for &(_, idx) in s.w.journal.iter().take(PREFETCH_AHEAD.min(max)) {
            if idx != NO_SLOT {
                crate::mem::prefetch(s.slot(idx).head());
            }
        }
        let mut n = 0;
        while n < max {
            let Some((key, hint)) = s.w.journal.pop_front() else {
                break;
            };
            // The slots of the keys a few places ahead: their cache misses
            // overlap this one's.
            if let Some(&(_, ahead)) = s.w.journal.get(PREFETCH_AHEAD) {
                if ahead != NO_SLOT {
                    crate::mem::prefetch(s.slot(ahead).head());
                }
            }
            // The key's slot when journaled, if it still holds the key (a
            // slot changes key only when freed and refilled).
            let at = if hint != NO_SLOT && s.is_live(hint) && s.slot(hint).key() == key {
                Some(hint)
            } else {
                s.find(key_hash(&key), &key)
            };
            match at {
                Some(idx) => {
                    let slot = s.slot(idx);
                    let entry = slot.entry();
                    if slot.flags() & crate::slot::DIRTY == 0 && entry.is_backup() {
                        // Removed and re-inserted since journaled, and its
                        // current state was drained already. (Re-inserted
                        // local-only, it falls through: the peer must
                        // delete the version it has.)
                        continue;
                    }
                    slot.set_dirty(false);
                    out.push(Change {
                        key,
                        entry: entry.is_backup().then_some(entry),
                    });
                }
                None => out.push(Change { key, entry: None }),
            }
            n += 1;
        }
        n
    }

    /// Moves the marks of shards whose journal turned non-empty into `into`
    /// and clears them, one atomic swap per 64 shards. The caller then owns
    /// those shards: it must drain each (with [`Self::drain_taken`]) until
    /// it returns fewer than asked, keeping the shard in `into` until then,
    /// because a writer marks a shard only when its journal turns
    /// non-empty. This is what the sync engine's drain pass uses: clearing
    /// marks shard by shard as it drains bounces the bitmap's cache line
    /// between the data plane's cores and the sync thread once per write,
    /// taking them all at once moves it about once per pass.
    pub fn take_journaled(&self, into: &mut ShardSet) {
        for (i, word) in self.journaled.iter().enumerate() {
            if word.load(Ordering::Relaxed) != 0 {
                into.insert_word(i, word.swap(0, Ordering::AcqRel));
            }
        }
    }

    /// Number of keys waiting in `shard`'s journal.
    pub fn journal_len(&self, shard: usize) -> usize {
        self.lock(shard).w.journal.len()
    }

    /// Takes the overflow marks: returns the shards whose journal overflowed
    /// since the last call and clears their marks, so journaling resumes.
    /// The caller must then resync each returned shard whole (start its
    /// snapshot walk after this call: changes from now on are journaled,
    /// earlier ones are in the walk).
    pub fn take_overflowed(&self, into: &mut ShardSet) -> usize {
        if !self.any_overflowed.swap(false, Ordering::AcqRel) {
            return 0;
        }
        let mut n = 0;
        for (i, shard) in self.shards.iter().enumerate() {
            let mut s = shard.lock();
            if s.w.overflowed {
                s.w.overflowed = false;
                into.insert(i);
                n += 1;
                self.overflow_events.fetch_add(1, Ordering::Relaxed);
            }
        }
        n
    }

    /// Journal overflows seen by [`Self::take_overflowed`] since creation.
    pub fn overflow_count(&self) -> u64 {
        self.overflow_events.load(Ordering::Relaxed)
    }
}
