//! A shard's index: open addressing with linear probing over atomic 64-bit
//! words, each the low 32 bits of the key hash (the tag) and a slot number.
//!
//! Readers probe without a lock. The shard's writer inserts a word only
//! after the slot it names is filled (`Release`, so a reader that loads the
//! word sees the slot), and removes with backward shifting (no tombstones,
//! so probes stay short under churn). A shift moves a word backwards, which
//! a reader walking forwards could step over; the `moves` counter is odd
//! while a removal shifts and bumped after, and a lookup that misses while
//! it changed probes again. Hits need no such check: the slot's own
//! seqlock and key comparison validate them.

use crate::arena::{self, Share};
use crate::mem;
use crate::sync::{AtomicU32, AtomicU64, fence, spin};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

const EMPTY: u64 = 0;

#[inline]
fn tag(hash: u64) -> u32 {
    hash as u32
}

#[inline]
fn word(hash: u64, slot: u32) -> u64 {
    (u64::from(tag(hash)) << 32) | (u64::from(slot) + 1)
}

#[inline]
fn slot_of(w: u64) -> u32 {
    (w as u32).wrapping_sub(1)
}

#[inline]
fn tag_of(w: u64) -> u32 {
    (w >> 32) as u32
}

pub(crate) struct Index {
    words: Share<AtomicU64>,
    /// Odd while a removal shifts words, bumped by two per removal.
    moves: AtomicU32,
}

impl Index {
    /// Buckets for `capacity` keys: 1.5 per key (load at most 2/3, about 2
    /// probes per hit and 5 per miss, all in one or two cache lines).
    pub(crate) fn buckets_for(capacity: usize) -> usize {
        (capacity + capacity / 2)
            .max(capacity + 2)
            .next_multiple_of(8)
    }

    /// An index with its own allocation (tests; a table shares one
    /// allocation among its shards: [`Self::all_words`]).
    #[cfg(any(test, loom))]
    pub(crate) fn new(capacity: usize) -> Self {
        let words = Self::all_words(capacity, 1).pop().expect("one share");
        Self::with_words(words)
    }

    /// The words of `shards` indexes for `capacity` keys each, in one
    /// zeroed allocation.
    pub(crate) fn all_words(capacity: usize, shards: usize) -> Vec<Share<AtomicU64>> {
        let n = Self::buckets_for(capacity);
        #[cfg(not(loom))]
        let all = arena::zeroed::<AtomicU64>(n * shards);
        #[cfg(loom)]
        let all = (0..n * shards)
            .map(|_| AtomicU64::new(EMPTY))
            .collect::<Box<[_]>>();
        arena::share_out(all, shards, n)
    }

    /// An empty index over `words` (all zero).
    pub(crate) fn with_words(words: Share<AtomicU64>) -> Self {
        Self {
            words,
            moves: AtomicU32::new(0),
        }
    }

    /// Where probes for `tag` start: the tag scaled to the bucket count.
    #[inline]
    fn home(&self, tag: u32) -> usize {
        ((u64::from(tag) * self.words.len() as u64) >> 32) as usize
    }

    #[inline]
    fn next(&self, p: usize) -> usize {
        if p + 1 == self.words.len() { 0 } else { p + 1 }
    }

    /// Starts loading the cache line where a probe for `hash` begins.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        mem::prefetch(&self.words[self.home(tag(hash))]);
    }

    /// The slot named by the word at `hash`'s home, if its tag matches (a
    /// guess for prefetching the slot; nothing relies on it).
    #[inline]
    pub(crate) fn peek(&self, hash: u64) -> Option<u32> {
        let w = self.words[self.home(tag(hash))].load(Relaxed);
        (w != EMPTY && tag_of(w) == tag(hash)).then(|| slot_of(w))
    }

    /// Lock-free lookup: offers each slot whose tag matches to `probe`
    /// until it returns `Some`. A miss is final only if no removal shifted
    /// words meanwhile.
    #[inline]
    pub(crate) fn lookup<T>(
        &self,
        hash: u64,
        mut probe: impl FnMut(u32) -> Option<T>,
    ) -> Option<T> {
        let t = tag(hash);
        loop {
            let m1 = self.moves.load(Acquire);
            let mut p = self.home(t);
            for _ in 0..self.words.len() {
                let w = self.words[p].load(Acquire);
                if w == EMPTY {
                    break;
                }
                if tag_of(w) == t {
                    if let Some(x) = probe(slot_of(w)) {
                        return Some(x);
                    }
                }
                p = self.next(p);
            }
            fence(Acquire);
            if m1 & 1 == 0 && self.moves.load(Relaxed) == m1 {
                return None;
            }
            spin();
        }
    }

    // ----- writer (holds the shard's writer lock) --------------------------

    /// The position and slot of `hash`'s key (`is_key` confirms a slot), or
    /// the empty position where it would go.
    #[inline]
    pub(crate) fn find(
        &self,
        hash: u64,
        mut is_key: impl FnMut(u32) -> bool,
    ) -> Result<(usize, u32), usize> {
        let t = tag(hash);
        let mut p = self.home(t);
        loop {
            let w = self.words[p].load(Relaxed);
            if w == EMPTY {
                return Err(p);
            }
            if tag_of(w) == t && is_key(slot_of(w)) {
                return Ok((p, slot_of(w)));
            }
            p = self.next(p);
        }
    }

    /// Publishes `slot` (already filled) at `pos`, an empty position `find`
    /// returned.
    #[inline]
    pub(crate) fn insert_at(&self, pos: usize, hash: u64, slot: u32) {
        self.words[pos].store(word(hash, slot), Release);
    }

    /// Removes the word at `pos`, shifting later words of its cluster back
    /// into the gap so that no probe needs a tombstone.
    pub(crate) fn remove_at(&self, pos: usize) {
        let m = self.moves.load(Relaxed);
        self.moves.store(m.wrapping_add(1), Relaxed);
        fence(Release);
        let mut hole = pos;
        let mut q = self.next(pos);
        loop {
            let w = self.words[q].load(Relaxed);
            if w == EMPTY {
                break;
            }
            // `w` may stay only if its home lies cyclically in (hole, q].
            let h = self.home(tag_of(w));
            let stays = if hole <= q {
                hole < h && h <= q
            } else {
                hole < h || h <= q
            };
            if !stays {
                self.words[hole].store(w, Release);
                hole = q;
            }
            q = self.next(q);
        }
        self.words[hole].store(EMPTY, Release);
        self.moves.store(m.wrapping_add(2), Release);
    }

    /// Writes every page without changing a word (pre-faulting; a store,
    /// since an idempotent read-modify-write compiles to a load). The
    /// caller holds the writer lock, so no word changes meanwhile.
    pub(crate) fn touch(&self) {
        for w in self.words.iter().step_by(4096 / 8) {
            if w.load(Relaxed) == EMPTY {
                w.store(EMPTY, Relaxed);
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Removal keeps every other key reachable, whatever the clustering
    /// (tags chosen to collide on a few homes, including wrap-around).
    #[test]
    fn backward_shift_keeps_every_key_reachable() {
        let ix = Index::new(40);
        let n = ix.words.len() as u64;
        // Hashes whose home is bucket b: tag = ceil(b * 2^32 / n).
        let at = |b: u64, salt: u64| ((b << 32).div_ceil(n) + salt) & 0xffff_ffff;
        let mut live: Vec<(u64, u32)> = Vec::new();
        for (i, b) in [n - 2, n - 1, n - 2, 0, 1, 0, 5, 5, 5, 6, n - 1, 3]
            .into_iter()
            .enumerate()
        {
            let h = at(b, i as u64);
            let pos = ix.find(h, |_| false).unwrap_err();
            ix.insert_at(pos, h, i as u32);
            live.push((h, i as u32));
        }
        let mut order: Vec<usize> = (0..live.len()).collect();
        order.rotate_left(5);
        for (k, &i) in order.iter().enumerate() {
            let (h, s) = live[i];
            let (pos, _) = ix.find(h, |x| x == s).unwrap();
            ix.remove_at(pos);
            for &(h2, s2) in order[k + 1..].iter().map(|&j| &live[j]) {
                assert_eq!(ix.lookup(h2, |x| (x == s2).then_some(x)), Some(s2));
            }
            assert_eq!(ix.lookup(h, |x| (x == s).then_some(x)), None);
        }
        assert!(ix.words.iter().all(|w| w.load(Relaxed) == EMPTY));
    }

    /// A removal that shifts the wanted key back over a lookup's position
    /// while the lookup probes (injected from inside the probe) must not
    /// turn into a miss: the moves counter makes the lookup probe again.
    #[test]
    fn lookup_overlapping_a_shift_still_finds_the_key() {
        let ix = Index::new(40);
        let n = ix.words.len() as u64;
        let h = (7u64 << 32).div_ceil(n); // home 7
        let other = h + 1; // home 7 too, another tag
        // 7: other, 8: a tag twin of the wanted key (slot 100), 9: wanted.
        for (hash, slot) in [(other, 5), (h, 100), (h, 9)] {
            let pos = ix.find(hash, |_| false).unwrap_err();
            ix.insert_at(pos, hash, slot);
        }
        let injected = std::cell::Cell::new(false);
        let found = ix.lookup(h, |slot| {
            if slot == 100 && !injected.replace(true) {
                // The writer removes `other` now: the twin moves to 7 and
                // the wanted word to 8, behind this probe.
                let (pos, _) = ix.find(other, |s| s == 5).unwrap();
                ix.remove_at(pos);
            }
            (slot == 9).then_some(slot)
        });
        assert!(injected.get());
        assert_eq!(found, Some(9));
    }
}
