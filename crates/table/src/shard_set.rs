//! A fixed-size set of shard indices.

/// A set of shard indices, sized once for a table's shard count.
///
/// The sync engine uses it for "shards whose replica is uncertain": shards
/// whose journal overflowed, or that unacknowledged batches touched when a
/// connection dropped. Those shards are resynced whole.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ShardSet {
    words: Vec<u64>,
    len: usize,
}

impl ShardSet {
    /// An empty set able to hold indices `0..shards`.
    pub fn new(shards: usize) -> Self {
        Self {
            words: vec![0; shards.div_ceil(64)],
            len: 0,
        }
    }

    /// A set holding every index `0..shards`.
    pub fn full(shards: usize) -> Self {
        let mut s = Self::new(shards);
        for i in 0..shards {
            s.insert(i);
        }
        s
    }

    /// Capacity: the number of shards this set was sized for.
    pub fn capacity(&self) -> usize {
        self.words.len() * 64
    }

    /// Adds `shard`; returns whether it was newly added. Out-of-range
    /// indices are ignored (returns false).
    pub fn insert(&mut self, shard: usize) -> bool {
        let Some(w) = self.words.get_mut(shard / 64) else {
            return false;
        };
        let bit = 1u64 << (shard % 64);
        let new = *w & bit == 0;
        *w |= bit;
        self.len += usize::from(new);
        new
    }

    /// Removes `shard`; returns whether it was present.
    pub fn remove(&mut self, shard: usize) -> bool {
        let Some(w) = self.words.get_mut(shard / 64) else {
            return false;
        };
        let bit = 1u64 << (shard % 64);
        let had = *w & bit != 0;
        *w &= !bit;
        self.len -= usize::from(had);
        had
    }

    /// Adds the members in `bits`, the 64-bit word of indices
    /// `64 * word ..` (a word of a table's atomic shard bitmaps). Bits
    /// beyond the set's capacity are ignored.
    pub(crate) fn insert_word(&mut self, word: usize, bits: u64) {
        if let Some(w) = self.words.get_mut(word) {
            self.len += (bits & !*w).count_ones() as usize;
            *w |= bits;
        }
    }

    /// Whether `shard` is in the set.
    pub fn contains(&self, shard: usize) -> bool {
        self.words
            .get(shard / 64)
            .is_some_and(|w| w & (1u64 << (shard % 64)) != 0)
    }

    /// Adds every member of `other`.
    pub fn union_with(&mut self, other: &ShardSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= *b;
        }
        self.len = self.words.iter().map(|w| w.count_ones() as usize).sum();
    }

    /// Removes every member.
    pub fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
        self.len = 0;
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Members in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(wi * 64 + b)
            })
        })
    }

    /// Removes and returns the smallest member.
    pub fn pop_first(&mut self) -> Option<usize> {
        let first = self.iter().next()?;
        self.remove(first);
        Some(first)
    }
}

impl std::fmt::Debug for ShardSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_iterate() {
        let mut s = ShardSet::new(130);
        assert!(s.insert(0));
        assert!(s.insert(129));
        assert!(!s.insert(129));
        assert!(s.insert(64));
        assert!(!s.insert(4096), "out of range is ignored");
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 64, 129]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.pop_first(), Some(0));
        assert!(s.remove(64));
        assert!(!s.contains(64));
        let mut t = ShardSet::new(130);
        t.insert(3);
        s.union_with(&t);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![3, 129]);
        assert_eq!(s.len(), 2);
    }
}
