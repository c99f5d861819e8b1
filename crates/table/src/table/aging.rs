//! Aging: sessions idle past their timeout removed, a bounded slice of
//! the table per call.

use super::*;

impl SessionTable {
    /// Removes entries idle past their timeout at `now` (Unix seconds),
    /// examining at most `budget` slots in all, resuming where the last
    /// sweep stopped (shard by shard). The budget is the whole table's, not
    /// each shard's: one call holds the event loop (and each shard's writer
    /// lock it visits) for a bounded time whatever the shard count, and the
    /// caller sets the sweep's pace by how often it calls. Removals are
    /// journaled like data-plane removals. Returns how many expired.
    pub fn expire(&self, now: u32, budget: usize) -> usize {
        let shards = self.shards.len();
        let mut si = self.aging_shard.load(Ordering::Relaxed) % shards;
        let mut left = budget;
        let mut expired = 0;
        let mut notify = false;
        // Every shard at most once per call, so an empty table ends it.
        for _ in 0..shards {
            if left == 0 {
                break;
            }
            let mut s = self.shards[si].lock();
            let len = s.used();
            let start = s.w.aging_pos.min(len);
            let end = len.min(start + left);
            for idx in start..end {
                let idx = idx as u32;
                if !s.is_live(idx) || !s.slot(idx).entry().is_expired(now) {
                    continue;
                }
                let hash = key_hash(&s.slot(idx).key());
                let old = s.free(hash, idx);
                if old.entry.is_backup()
                    && self.capturing()
                    && s.journal_removed(&old.key, old.dirty, &self.any_overflowed)
                {
                    self.mark_journaled(si);
                    notify = true;
                }
                expired += 1;
            }
            left -= end - start;
            if end < len {
                s.w.aging_pos = end;
                break;
            }
            // This shard is swept: the next call goes on with the next one.
            s.w.aging_pos = 0;
            si = (si + 1) % shards;
        }
        self.aging_shard.store(si, Ordering::Relaxed);
        if notify {
            self.signal();
        }
        expired
    }
}
