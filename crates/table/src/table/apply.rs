//! The receiving side: records from the peer applied to the table (never
//! journaled, so never echoed back), stamped while their shard resyncs.

use super::*;

impl SessionTable {
    /// Inserts or overwrites a session received from the peer. Never
    /// journaled, so it is not echoed back. While the shard is being
    /// resynced, the entry is stamped with the resync epoch.
    pub fn apply_upsert(
        &self,
        key: &SessionKey,
        entry: &SessionEntry,
    ) -> Result<Upsert, TableFull> {
        let (hash, si) = self.shard_for(key);
        let digest = digest_of(key, entry);
        let mut shard = self.lock(si);
        Ok(
            if store_received(&mut shard, si, hash, key, entry, digest)? {
                Upsert::Updated
            } else {
                Upsert::Inserted
            },
        )
    }

    /// Inserts a session received from the peer only if this table holds
    /// no version of it and has no undrained removal of it: what an
    /// authoritative node takes from a peer whose copy is not. Checked and
    /// inserted under the shard's writer lock, so a data-plane write or
    /// removal cannot slip between. Never journaled. (The journal is
    /// searched only for a key the table lacks, which is rare in such a
    /// stream.)
    pub fn apply_upsert_if_absent(
        &self,
        key: &SessionKey,
        entry: &SessionEntry,
    ) -> Result<IfAbsent, TableFull> {
        let (hash, si) = self.shard_for(key);
        let mut shard = self.lock(si);
        if shard.find(hash, key).is_some() {
            return Ok(IfAbsent::Present);
        }
        if shard.w.journal.iter().any(|(k, _)| k == key) {
            return Ok(IfAbsent::Removing);
        }
        store_received(&mut shard, si, hash, key, entry, digest_of(key, entry))?;
        Ok(IfAbsent::Inserted)
    }

    /// [`Self::apply_upsert`] for a whole received batch. Consecutive
    /// records of one shard (a batch-sync or resync chunk comes from one
    /// shard) are applied under one writer-lock hold of at most
    /// [`APPLY_RUN`] records, and the index line (then the slot) of the
    /// records a few places ahead is prefetched, so their cache misses
    /// overlap instead of each being waited for in turn. Readers are never
    /// held up by the run. Returns how many records were refused because
    /// their shard was full.
    pub fn apply_upserts(
        &self,
        records: impl Iterator<Item = (SessionKey, SessionEntry)>,
    ) -> usize {
        // Digests are filled in by `Lookahead::next`.
        let keyed = records.map(|(key, entry)| HashedRecord {
            hash: key_hash(&key),
            digest: 0,
            key,
            entry,
        });
        let mut ahead = Lookahead::new(self, keyed);
        let mut full = 0;
        let mut held: Option<(usize, Locked<'_>, usize)> = None;
        while let Some(r) = ahead.next(self) {
            let si = Self::shard_of_hash(r.hash, self.shard_mask);
            let reuse = matches!(&held, Some((s, _, n)) if *s == si && *n < APPLY_RUN);
            if !reuse {
                drop(held.take()); // release before taking the next lock
                held = Some((si, self.lock(si), 0));
            }
            let Some((_, shard, n)) = held.as_mut() else {
                continue;
            };
            *n += 1;
            let epoch = shard.w.resync_epoch.unwrap_or(0);
            match shard.upsert_slot(r.hash, &r.key, &r.entry, r.digest, epoch) {
                Ok((idx, _)) => shard.slot(idx).set_aux(epoch),
                Err(()) => full += 1,
            }
        }
        full
    }

    /// [`Self::apply_upserts`] for records already hashed (a received chunk
    /// decoded into a reused buffer), in order: each run of consecutive
    /// records of one shard is applied as [`Self::apply_upserts`] applies
    /// it, the index line and the slot of the records a few places ahead
    /// prefetched by position. Hashing and copying happen before, outside
    /// the lock and away from the probes, so the probe loop only waits for
    /// memory. Returns how many records were refused because their shard
    /// was full.
    pub fn apply_hashed(&self, records: &[HashedRecord]) -> usize {
        let mask = self.shard_mask;
        self.apply_sequence(|j| {
            records
                .get(j)
                .map(|r| (Self::shard_of_hash(r.hash, mask), r))
        })
    }

    /// [`Self::apply_upserts`] for records of many shards (an incremental
    /// batch): orders them by shard first, so each shard's records are
    /// applied under one writer-lock hold and their cache misses overlap.
    /// Records of one key keep their order. `order` is scratch (reused, so
    /// nothing is allocated once it has grown to a batch): the sort moves
    /// 8-byte (shard, position) words, not the 160-byte records. Returns
    /// how many records were refused because their shard was full.
    pub fn apply_upserts_grouped(&self, records: &[HashedRecord], order: &mut Vec<u64>) -> usize {
        let mask = self.shard_mask;
        order.clear();
        order.extend(
            records
                .iter()
                .enumerate()
                .map(|(i, r)| (Self::shard_of_hash(r.hash, mask) as u64) << 32 | i as u64),
        );
        // Position in the low word: each shard's records stay in arrival
        // order.
        order.sort_unstable();
        let order = &order[..];
        self.apply_sequence(|j| {
            order
                .get(j)
                .map(|&o| ((o >> 32) as usize, &records[(o & 0xffff_ffff) as usize]))
        })
    }

    /// Applies the records `at(0)`, `at(1)`, ... (each with its shard) in
    /// order, until `at` returns `None`. Each run of consecutive records of
    /// one shard is applied under writer-lock holds of at most
    /// [`APPLY_RUN`] records. The index line [`PREFETCH_AHEAD`] records
    /// ahead and the slot it names half as far ahead are prefetched along
    /// the whole sequence, across shard boundaries: an incremental batch has
    /// about one record per shard, and a pipeline kept within each shard's
    /// run never filled. Returns how many records were refused because
    /// their shard was full.
    #[inline]
    fn apply_sequence<'r>(&self, at: impl Fn(usize) -> Option<(usize, &'r HashedRecord)>) -> usize {
        for j in 0..PREFETCH_AHEAD {
            if let Some((si, r)) = at(j) {
                self.shards[si].prefetch(r.hash);
            }
        }
        let mut full = 0;
        let mut j = 0;
        while let Some((si, _)) = at(j) {
            let mut shard = self.lock(si);
            let epoch = shard.w.resync_epoch.unwrap_or(0);
            let mut held = 0;
            while let Some((s, r)) = at(j) {
                if s != si || held == APPLY_RUN {
                    break;
                }
                if let Some((s, ahead)) = at(j + PREFETCH_AHEAD) {
                    self.shards[s].prefetch(ahead.hash);
                }
                if let Some((s, ahead)) = at(j + PREFETCH_AHEAD / 2) {
                    self.shards[s].prefetch_slot(ahead.hash);
                }
                match shard.upsert_slot(r.hash, &r.key, &r.entry, r.digest, epoch) {
                    Ok((idx, _)) => shard.slot(idx).set_aux(epoch),
                    Err(()) => full += 1,
                }
                j += 1;
                held += 1;
            }
        }
        full
    }

    /// Removes a session because the peer removed it. Never journaled.
    pub fn apply_remove(&self, key: &SessionKey) -> bool {
        let (hash, si) = self.shard_for(key);
        let mut shard = self.lock(si);
        match shard.find(hash, key) {
            Some(idx) => {
                shard.free(hash, idx);
                true
            }
            None => false,
        }
    }

    /// The peer starts resending `shard` whole: stamp what it sends with
    /// `epoch` (non-zero, new for each resync).
    pub fn begin_resync(&self, shard: usize, epoch: u32) {
        if let Some(s) = self.shards.get(shard) {
            s.lock().w.resync_epoch = Some(epoch);
        }
    }

    /// The peer finished resending `shard`: remove the backup-capable
    /// entries it did not send (their deletions were lost). Returns how
    /// many were removed. Local-only entries stay, and so do entries our
    /// data plane changed and the journal still holds: the walk could not
    /// carry them (the peer has not seen them yet), and the drain sends
    /// them next, so both sides end with them.
    pub fn end_resync(&self, shard: usize, epoch: u32) -> usize {
        let Some(s) = self.shards.get(shard) else {
            return 0;
        };
        let mut s = s.lock();
        if s.w.resync_epoch != Some(epoch) {
            return 0;
        }
        s.w.resync_epoch = None;
        let mut removed = 0;
        for idx in 0..s.used() as u32 {
            if !s.is_live(idx) {
                continue;
            }
            let slot = s.slot(idx);
            let pending = slot.flags() & crate::slot::DIRTY != 0;
            if slot.entry().is_backup() && slot.aux() != epoch && !pending {
                let hash = key_hash(&slot.key());
                s.free(hash, idx);
                removed += 1;
            }
        }
        removed
    }
}

/// Stores a received record in `shard` (index `si`, lock held), stamped
/// with the shard's resync epoch; returns whether the key was there.
fn store_received(
    shard: &mut Locked<'_>,
    si: usize,
    hash: u64,
    key: &SessionKey,
    entry: &SessionEntry,
    digest: u64,
) -> Result<bool, TableFull> {
    let epoch = shard.w.resync_epoch.unwrap_or(0);
    let (idx, old) = shard
        .upsert_slot(hash, key, entry, digest, epoch)
        .map_err(|()| TableFull {
            shard: si,
            capacity: shard.w.capacity,
        })?;
    shard.slot(idx).set_aux(epoch);
    Ok(old.is_some())
}
