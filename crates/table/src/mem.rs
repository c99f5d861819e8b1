//! The table's only `unsafe` code: a CPU prefetch hint and the huge-page
//! advice for its large arrays. Both are hints: neither changes any value,
//! and the table behaves the same (only slower) where they do nothing.
#![allow(unsafe_code)]

/// Asks the CPU to start loading `r`'s cache line, so a batch can overlap
/// the misses of the records it will probe next.
#[inline(always)]
pub(crate) fn prefetch<T>(r: &T) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: `_mm_prefetch` only needs SSE, part of the x86_64 baseline;
    // a prefetch never faults and reads nothing into the program, and the
    // pointer comes from a live reference anyway.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(r).cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = r;
}

/// Asks the kernel to back the 2 MiB-aligned part of `s` with transparent
/// huge pages (one TLB entry per 2 MiB instead of per 4 KiB: lookups of a
/// 10M-session table miss the TLB on nearly every probe otherwise). Call it
/// before the memory is first touched. Returns whether the kernel accepted;
/// a kernel without THP, or set to `never`, refuses and nothing changes.
pub(crate) fn advise_huge_pages<T>(s: &[T]) -> bool {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        const HUGE: usize = 2 << 20;
        let start = s.as_ptr() as usize;
        let end = start + std::mem::size_of_val(s);
        let (a, b) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if b <= a {
            return false;
        }
        // SAFETY: [a, b) lies inside the allocation of `s`, mapped for as
        // long as `s` is borrowed; MADV_HUGEPAGE changes only how the kernel
        // backs those pages, never their contents.
        unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_HUGEPAGE) == 0 }
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    {
        let _ = s;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_leave_memory_unchanged() {
        let v: Vec<u64> = (0..(1 << 20)).collect();
        prefetch(&v[12345]);
        let _ = advise_huge_pages(&v);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64));
    }
}
