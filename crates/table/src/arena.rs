//! One allocation for every shard's slab (and one for every shard's index),
//! each shard owning a fixed share of it.
//!
//! A shard's own index at 10M sessions is about 480 KiB and its slab about
//! 6.5 MiB; allocated one by one, most of that memory cannot be backed by
//! 2 MiB transparent huge pages (an allocation smaller than a huge page,
//! or the unaligned ends of a larger one, stays on 4 KiB pages), and a
//! lookup pays a TLB miss on nearly every probe. One large allocation per
//! kind is huge-page backed but for its two ends.

use crate::mem;
use std::sync::Arc;

/// A shard's share `start..start + len` of an allocation shared by all
/// shards; reads as a slice.
pub(crate) struct Share<T> {
    all: Arc<Box<[T]>>,
    start: usize,
    len: usize,
}

impl<T> std::ops::Deref for Share<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        &self.all[self.start..self.start + self.len]
    }
}

/// Splits `all` into `parts` shares of `len` elements each (in order),
/// after asking the kernel for huge pages over it (`all` must not have been
/// touched yet for the advice to take effect).
pub(crate) fn share_out<T>(all: Box<[T]>, parts: usize, len: usize) -> Vec<Share<T>> {
    assert!(
        all.len() >= parts * len,
        "allocation too small for its shares"
    );
    mem::advise_huge_pages(&all);
    let all = Arc::new(all);
    (0..parts)
        .map(|i| Share {
            all: Arc::clone(&all),
            start: i * len,
            len,
        })
        .collect()
}

/// A zeroed allocation of `n` elements, untouched (the pages stay unbacked
/// until used, or pre-faulted).
#[cfg(not(loom))]
pub(crate) fn zeroed<T: bytemuck::Zeroable>(n: usize) -> Box<[T]> {
    bytemuck::zeroed_slice_box::<T>(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_disjoint_and_cover_their_part() {
        let all: Box<[u32]> = (0..100).collect();
        let shares = share_out(all, 4, 25);
        assert_eq!(shares.len(), 4);
        for (i, s) in shares.iter().enumerate() {
            assert_eq!(s.len(), 25);
            assert_eq!(s[0] as usize, i * 25);
            assert_eq!(s[24] as usize, i * 25 + 24);
        }
    }
}
