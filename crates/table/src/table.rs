//! The sharded table itself.
//!
//! Layout of one shard ([`crate::shard`]): a dense slab of slots (key, entry,
//! bookkeeping; [`crate::slot`]) and an index of atomic words, each a hash
//! tag and a slot number ([`crate::index`]). The index costs 12 bytes per
//! session instead of a 146-byte record per bucket, so the table stays near
//! 1.2x the key+entry bytes per session.
//!
//! Readers (`get`, the snapshot walk) take no lock: they probe the index
//! and copy a slot under its seqlock. Writers of one shard share its writer
//! lock, which also guards its free list, journal, digest and resync state.
//! Freed slots go to an intrusive free list and are reused; slots never move,
//! which is what lets the snapshot cursor walk a shard while writers go on
//! and still visit every surviving entry exactly once.

mod aging;
mod apply;
mod capture;

use crate::model::{SessionEntry, SessionKey};
use crate::shard::{Locked, NO_SLOT, Shard};
use crate::shard_set::ShardSet;
use crate::slot::key_words;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Seed of the key hash that picks the shard and the index bucket. Fixed, so
/// that both nodes put a key in the same shard (resync works per shard).
const KEY_SEED: u64 = 0x686f_7473_796e_6331; // "hotsync1"
/// Seed of the digest hash, distinct from the key hash.
const DIGEST_SEED: u64 = 0x6469_6765_7374_7631; // "digestv1"

/// Most records [`SessionTable::apply_upserts`] applies under one writer-lock
/// hold.
pub const APPLY_RUN: usize = 256;

/// Largest supported shard count.
pub const MAX_SHARDS: usize = 4096;

/// How many records ahead a batch apply prefetches the index line (and,
/// half as far ahead, the slot) it will probe.
const PREFETCH_AHEAD: usize = 8;

/// Keys [`SessionTable::get_burst`] prefetches together: enough to keep a
/// core's outstanding misses busy (10 to 24 line fill buffers on current
/// x86 cores), few enough that the first lines are still in L1 when the
/// group is probed.
pub const LOOKUP_BURST: usize = 16;

/// Sizing of a [`SessionTable`].
#[derive(Clone, Debug)]
pub struct TableConfig {
    /// Number of shards; a power of two, at most [`MAX_SHARDS`].
    pub shards: usize,
    /// Most sessions the table holds; storage for them is reserved up
    /// front, so writes never allocate. An insert beyond it fails with
    /// [`TableFull`].
    pub max_sessions: usize,
    /// Change-journal capacity per shard (keys). A full journal marks its
    /// shard overflowed instead of blocking or growing.
    pub journal_capacity: usize,
}

/// Shards of a table unless configured otherwise (`hrp table shards N`).
///
/// A protocol setting, not a property of the machine: resync works shard by
/// shard, so both nodes of a pair must use the same count, and two
/// firewalls with different core counts must still pair. 256 is sized for
/// the largest tables (10 M sessions: about 40 k per shard, so the resync
/// of one uncertain shard moves 0.4 % of the table) and gives more lock
/// stripes than any data plane has threads.
pub const DEFAULT_SHARDS: usize = 256;

/// Change-journal keys of a whole table by default, split evenly over its
/// shards: journal memory does not grow with the shard count.
pub const DEFAULT_JOURNAL_KEYS: usize = 512 * 1024;

impl TableConfig {
    /// Defaults for `max_sessions` sessions: [`DEFAULT_SHARDS`] shards and
    /// [`DEFAULT_JOURNAL_KEYS`] journal keys in all. The same on every
    /// machine.
    pub fn with_capacity(max_sessions: usize) -> Self {
        Self::with_shards(max_sessions, DEFAULT_SHARDS)
    }

    /// `shards` shards (a power of two, at most [`MAX_SHARDS`]) for
    /// `max_sessions` sessions, with the journal keys split over them.
    pub fn with_shards(max_sessions: usize, shards: usize) -> Self {
        Self {
            shards,
            max_sessions,
            journal_capacity: (DEFAULT_JOURNAL_KEYS / shards.max(1)).max(1024),
        }
    }
}

impl Default for TableConfig {
    fn default() -> Self {
        Self::with_capacity(1 << 20)
    }
}

/// Error returned when an insert finds its shard at capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("session table full: shard {shard} holds its maximum of {capacity} sessions")]
pub struct TableFull {
    /// The full shard.
    pub shard: usize,
    /// Its capacity.
    pub capacity: usize,
}

/// What an [`SessionTable::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// The key was new.
    Inserted,
    /// The key existed; its entry was replaced.
    Updated,
}

/// What [`SessionTable::apply_upsert_if_absent`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfAbsent {
    /// The key was absent: the record was inserted.
    Inserted,
    /// The table holds its own version of the key: left as it is.
    Present,
    /// The key is absent and its shard's journal still holds a change of
    /// it (its removal, not drained yet): inserting would undo the removal.
    Removing,
}

/// One drained change: the key and its entry now, or `None` if the key is
/// gone (or no longer backup-capable): the peer should delete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The changed session.
    pub key: SessionKey,
    /// Current entry, or `None` for a deletion.
    pub entry: Option<SessionEntry>,
}

/// A received record with its key hash and digest contribution computed
/// once, outside any lock, for [`SessionTable::apply_hashed`] and
/// [`SessionTable::apply_upserts_grouped`].
#[derive(Debug, Clone, Copy, Default)]
pub struct HashedRecord {
    /// [`key_hash`] of `key`.
    pub hash: u64,
    /// What the entry adds to its shard digest ([`entry_digest`] when it is
    /// backup-capable, else 0).
    pub digest: u64,
    /// The session.
    pub key: SessionKey,
    /// Its entry.
    pub entry: SessionEntry,
}

impl HashedRecord {
    /// Hashes the key and the digest contribution.
    #[inline]
    pub fn new(key: SessionKey, entry: SessionEntry) -> Self {
        Self {
            hash: key_hash(&key),
            digest: digest_of(&key, &entry),
            key,
            entry,
        }
    }
}

/// Per-shard digests of the backup-capable entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDigest {
    /// One order-independent digest per shard.
    pub shards: Vec<u64>,
    /// Backup-capable entries counted in the digests.
    pub entries: u64,
}

impl TableDigest {
    /// A single value over all shards.
    pub fn combined(&self) -> u64 {
        self.shards.iter().enumerate().fold(0u64, |acc, (i, d)| {
            acc.wrapping_add(d.rotate_left(i as u32 % 64))
        })
    }

    /// Shards whose digests differ from `other`'s (all shards if the shard
    /// counts differ).
    pub fn mismatches(&self, other: &TableDigest) -> Vec<usize> {
        if self.shards.len() != other.shards.len() {
            return (0..self.shards.len().max(other.shards.len())).collect();
        }
        (0..self.shards.len())
            .filter(|&i| self.shards[i] != other.shards[i])
            .collect()
    }
}

/// The sharded session table. Shared by reference between data-plane
/// threads and the sync engine (`Arc<SessionTable>`).
pub struct SessionTable {
    shards: Box<[CachePadded<Shard>]>,
    shard_mask: u64,
    /// Set when a journal goes from empty to non-empty or overflows; the
    /// sync engine clears it before draining.
    pending: CachePadded<AtomicBool>,
    notifier: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
    overflow_events: AtomicU64,
    /// Whether changes are recorded at all (see [`SessionTable::set_capture`]).
    capture: AtomicBool,
    /// Some shard may have its overflow mark set: lets the sync engine skip
    /// visiting every shard when none overflowed.
    any_overflowed: AtomicBool,
    /// The shard the aging sweep resumes in (only [`SessionTable::expire`]
    /// uses it).
    aging_shard: AtomicUsize,
    /// One bit per shard whose journal may hold keys: set by a writer whose
    /// key made the journal non-empty (before it signals), cleared by
    /// [`SessionTable::drain_changes`] under the shard's lock once the
    /// journal is empty. The sync engine's drain visits only these shards
    /// instead of locking every shard on every pass.
    journaled: Box<[AtomicU64]>,
}

impl std::fmt::Debug for SessionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTable")
            .field("shards", &self.shards.len())
            .field("len", &self.len())
            .finish()
    }
}

/// Hash of a key: shard and index bucket come from it.
#[inline]
pub fn key_hash(key: &SessionKey) -> u64 {
    xxh3_64_with_seed(key.as_bytes(), KEY_SEED)
}

/// What an entry adds to its shard digest: [`entry_digest`] when it is
/// backup-capable, else nothing (local-only entries are not compared).
#[inline]
pub(crate) fn digest_of(key: &SessionKey, entry: &SessionEntry) -> u64 {
    if entry.is_backup() {
        entry_digest(key, entry)
    } else {
        0
    }
}

/// Digest contribution of one entry: a keyed 64-bit hash of key and entry.
#[inline]
pub fn entry_digest(key: &SessionKey, entry: &SessionEntry) -> u64 {
    let k = xxh3_64_with_seed(key.as_bytes(), DIGEST_SEED);
    xxh3_64_with_seed(entry.as_bytes(), k)
}

/// A small ring of records whose index lines are being prefetched: a batch
/// apply issues the loads of the next records before it probes this one,
/// so their cache misses overlap.
struct Lookahead<I> {
    records: I,
    ring: [HashedRecord; PREFETCH_AHEAD],
    head: usize,
    len: usize,
}

impl<I: Iterator<Item = HashedRecord>> Lookahead<I> {
    fn new(table: &SessionTable, records: I) -> Self {
        let mut l = Self {
            records,
            ring: [HashedRecord::default(); PREFETCH_AHEAD],
            head: 0,
            len: 0,
        };
        while l.len < PREFETCH_AHEAD && l.pull(table) {}
        l
    }

    fn pull(&mut self, table: &SessionTable) -> bool {
        let Some(r) = self.records.next() else {
            return false;
        };
        table.shard_by_hash(r.hash).prefetch(r.hash);
        self.ring[(self.head + self.len) % PREFETCH_AHEAD] = r;
        self.len += 1;
        true
    }

    /// The next record; refills the ring and prefetches the slot of the
    /// record half-way ahead (its index line has arrived by now).
    fn next(&mut self, table: &SessionTable) -> Option<HashedRecord> {
        if self.len == 0 {
            return None;
        }
        // The digest is hashed here, from the ring, not when the record is
        // pulled: its bytes were stored a few records ago, so the loads no
        // longer wait on store forwarding across the key's odd-sized stores.
        let slot = &mut self.ring[self.head];
        slot.digest = digest_of(&slot.key, &slot.entry);
        let r = *slot;
        self.head = (self.head + 1) % PREFETCH_AHEAD;
        self.len -= 1;
        self.pull(table);
        if self.len > PREFETCH_AHEAD / 2 {
            let mid = self.ring[(self.head + PREFETCH_AHEAD / 2) % PREFETCH_AHEAD].hash;
            table.shard_by_hash(mid).prefetch_slot(mid);
        }
        Some(r)
    }
}

impl SessionTable {
    /// Creates a table with storage reserved for `config.max_sessions`.
    ///
    /// # Panics
    /// If `config.shards` is not a power of two in `1..=MAX_SHARDS`: that is
    /// a programming error, not an input.
    pub fn new(config: TableConfig) -> Self {
        assert!(
            config.shards.is_power_of_two() && config.shards <= MAX_SHARDS,
            "shard count must be a power of two <= {MAX_SHARDS}, got {}",
            config.shards
        );
        let per_shard = config.max_sessions.div_ceil(config.shards);
        // Keys spread by hash: leave room for the imbalance (a few standard
        // deviations, sqrt(n), plus a small floor).
        let slack = (per_shard as f64).sqrt() as usize * 6 + 64;
        let capacity = per_shard + slack;
        let (slots, words) = Shard::storage(capacity, config.shards);
        let shards = slots
            .into_iter()
            .zip(words)
            .map(|(slots, words)| {
                CachePadded::new(Shard::with_storage(
                    capacity,
                    config.journal_capacity.max(1),
                    slots,
                    words,
                ))
            })
            .collect();
        Self {
            shards,
            shard_mask: (config.shards - 1) as u64,
            pending: CachePadded::new(AtomicBool::new(false)),
            notifier: std::sync::OnceLock::new(),
            overflow_events: AtomicU64::new(0),
            capture: AtomicBool::new(true),
            any_overflowed: AtomicBool::new(false),
            aging_shard: AtomicUsize::new(0),
            journaled: (0..config.shards.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// Backs the reserved slab memory with real pages now, so that neither
    /// the data plane nor a batch sync takes first-touch page faults later
    /// (at 10M sessions they were the largest cost of a batch sync: the
    /// kernel zeroing 1.4 GB page by page). Costs that time once, up front,
    /// and makes the table's resident size its capacity from the start.
    pub fn prefault(&self) {
        for s in self.shards.iter() {
            s.prefault();
        }
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard a key lives in (the same on every node with the same
    /// shard count).
    #[inline]
    pub fn shard_of(&self, key: &SessionKey) -> usize {
        Self::shard_of_hash(key_hash(key), self.shard_mask)
    }

    #[inline]
    fn shard_of_hash(hash: u64, mask: u64) -> usize {
        // Bits 40.. : disjoint from the index's tag and home (the low 32
        // bits), so keys of one shard still spread in its index.
        ((hash >> 40) & mask) as usize
    }

    #[inline]
    fn shard_by_hash(&self, hash: u64) -> &Shard {
        &self.shards[Self::shard_of_hash(hash, self.shard_mask)]
    }

    #[inline]
    fn lock(&self, shard: usize) -> Locked<'_> {
        self.shards[shard].lock()
    }

    /// Takes `shard`'s writer lock for a write of `hash`'s key, starting the
    /// load of the index line it will probe first: the lock's atomic
    /// exchange and that cache miss overlap instead of following each other.
    #[inline]
    fn lock_for(&self, hash: u64, shard: usize) -> Locked<'_> {
        let s = &self.shards[shard];
        s.prefetch(hash);
        s.lock()
    }

    #[inline]
    fn shard_for(&self, key: &SessionKey) -> (u64, usize) {
        let h = key_hash(key);
        (h, Self::shard_of_hash(h, self.shard_mask))
    }

    /// Installs the callback run when changes become pending (a journal
    /// turned non-empty, or overflowed). Call once; later calls are ignored.
    /// It runs on a data-plane thread: keep it cheap (a mio `Waker::wake`).
    pub fn set_change_notifier(&self, f: Box<dyn Fn() + Send + Sync>) {
        let _ = self.notifier.set(f);
    }

    /// Turns change capture on or off. Off, writes record nothing: the sync
    /// engine keeps it off until the relationship is first established,
    /// since what exists before then is left to a manual batch sync (B4).
    /// On by default.
    pub fn set_capture(&self, on: bool) {
        self.capture.store(on, Ordering::Release);
    }

    /// Whether changes are being recorded.
    #[inline]
    pub fn capturing(&self) -> bool {
        self.capture.load(Ordering::Relaxed)
    }

    /// Shard `si`'s journal became non-empty (or overflowed): marks it for
    /// the drain, then wakes the sync engine.
    #[inline]
    fn journaled(&self, si: usize) {
        self.mark_journaled(si);
        self.signal();
    }

    #[inline]
    fn mark_journaled(&self, si: usize) {
        self.journaled[si / 64].fetch_or(1 << (si % 64), Ordering::AcqRel);
    }

    /// Whether `shard`'s journal may hold keys (a shard not marked holds
    /// none, or its writer is about to mark it and signal).
    #[inline]
    pub fn may_have_changes(&self, shard: usize) -> bool {
        self.journaled[shard / 64].load(Ordering::Acquire) & (1 << (shard % 64)) != 0
    }

    #[inline]
    fn signal(&self) {
        if !self.pending.load(Ordering::Relaxed) && !self.pending.swap(true, Ordering::AcqRel) {
            if let Some(f) = self.notifier.get() {
                f();
            }
        }
    }

    /// Whether changes were signalled since the last [`Self::clear_pending`].
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Marks changes as pending without running the notifier: the sync
    /// engine stopped draining early and will come back.
    pub fn mark_pending(&self) {
        self.pending.store(true, Ordering::Release);
    }

    /// Clears the pending signal; call before draining every shard, so a
    /// change recorded during the drain signals again.
    pub fn clear_pending(&self) {
        self.pending.store(false, Ordering::Release);
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().w.len).sum()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of backup-capable sessions (those replicated).
    pub fn backup_len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().w.backup_len).sum()
    }

    /// Sessions in one shard.
    pub fn shard_len(&self, shard: usize) -> usize {
        self.lock(shard).w.len
    }

    // ----- data-plane API -------------------------------------------------

    /// Inserts or replaces a session. Records the change for the peer when
    /// the entry is (or was) backup-capable.
    pub fn upsert(&self, key: &SessionKey, entry: &SessionEntry) -> Result<Upsert, TableFull> {
        let (hash, si) = self.shard_for(key);
        let digest = digest_of(key, entry);
        let mut shard = self.lock_for(hash, si);
        let (idx, old) = shard
            .upsert_slot(hash, key, entry, digest, 0)
            .map_err(|()| TableFull {
                shard: si,
                capacity: shard.w.capacity,
            })?;
        let was_backup = old.is_some_and(|o| o.is_backup());
        let notify = (was_backup || entry.is_backup())
            && self.capturing()
            && shard.journal_slot(idx, &self.any_overflowed);
        drop(shard);
        if notify {
            self.journaled(si);
        }
        Ok(if old.is_some() {
            Upsert::Updated
        } else {
            Upsert::Inserted
        })
    }

    /// Changes a session in place (counters, state, last-seen) and returns
    /// whether it existed. Concurrent readers see the entry before or after
    /// `f`'s change, never part of it.
    pub fn update(&self, key: &SessionKey, f: impl FnOnce(&mut SessionEntry)) -> bool {
        let (hash, si) = self.shard_for(key);
        let mut shard = self.lock_for(hash, si);
        let Some(idx) = shard.find(hash, key) else {
            return false;
        };
        let old = shard.slot(idx).entry();
        let mut new = old;
        f(&mut new);
        if new == old {
            return true;
        }
        shard.replace(idx, &new, digest_of(key, &new));
        let notify = (old.is_backup() || new.is_backup())
            && self.capturing()
            && shard.journal_slot(idx, &self.any_overflowed);
        drop(shard);
        if notify {
            self.journaled(si);
        }
        true
    }

    /// Removes a session; returns its last entry.
    pub fn remove(&self, key: &SessionKey) -> Option<SessionEntry> {
        let (hash, si) = self.shard_for(key);
        let mut shard = self.lock_for(hash, si);
        let idx = shard.find(hash, key)?;
        let old = shard.free(hash, idx);
        let notify = old.entry.is_backup()
            && self.capturing()
            && shard.journal_removed(key, old.dirty, &self.any_overflowed);
        drop(shard);
        if notify {
            self.journaled(si);
        }
        Some(old.entry)
    }

    /// A copy of a session's entry. Takes no lock and never waits for a
    /// writer: it probes the shard's index and copies the slot under its
    /// seqlock, retrying only if a write of that very slot (or, for a miss,
    /// a removal in that shard) overlapped the copy. A lookup racing a
    /// writer returns the entry before or after the write.
    #[inline]
    pub fn get(&self, key: &SessionKey) -> Option<SessionEntry> {
        let hash = key_hash(key);
        self.shard_by_hash(hash).get(hash, &key_words(key))
    }

    /// Lookups of a burst of keys (a data plane's vector of packets), the
    /// way `rte_hash_lookup_bulk` and VPP's bihash prefetching do them:
    /// for each group of [`LOOKUP_BURST`] keys, first the index lines of all
    /// of them are requested, then the slots their home words name, then
    /// each is looked up as [`Self::get`] does. One lookup costs two
    /// dependent cache misses (index word, then slot); a burst overlaps them
    /// across keys instead of paying them one after another.
    ///
    /// Writes `out[i]` for every `i` below `keys.len().min(out.len())` and
    /// returns that count. Takes no lock, allocates nothing.
    pub fn get_burst(&self, keys: &[SessionKey], out: &mut [Option<SessionEntry>]) -> usize {
        let n = keys.len().min(out.len());
        let mut hashes = [0u64; LOOKUP_BURST];
        for (keys, out) in keys[..n]
            .chunks(LOOKUP_BURST)
            .zip(out[..n].chunks_mut(LOOKUP_BURST))
        {
            for (h, k) in hashes.iter_mut().zip(keys) {
                *h = key_hash(k);
                self.shard_by_hash(*h).prefetch(*h);
            }
            for &h in &hashes[..keys.len()] {
                self.shard_by_hash(h).prefetch_slot_for_read(h);
            }
            for ((o, k), &h) in out.iter_mut().zip(keys).zip(&hashes) {
                *o = self.shard_by_hash(h).get(h, &key_words(k));
            }
        }
        n
    }

    /// Whether a session exists (a lock-free [`Self::get`] without the copy
    /// handed out).
    #[inline]
    pub fn contains(&self, key: &SessionKey) -> bool {
        self.get(key).is_some()
    }

    // ----- digests ----------------------------------------------------------

    /// Digest of one shard's backup-capable entries.
    pub fn shard_digest(&self, shard: usize) -> u64 {
        self.lock(shard).w.digest
    }

    /// Per-shard digests, so two tables compare in O(shards).
    pub fn digest(&self) -> TableDigest {
        let mut entries = 0;
        let shards = self
            .shards
            .iter()
            .map(|s| {
                let s = s.lock();
                entries += s.w.backup_len as u64;
                s.w.digest
            })
            .collect();
        TableDigest { shards, entries }
    }

    /// Visits every entry (any flag) of one shard, each a consistent copy;
    /// for displays and tests, not the data path.
    pub fn for_each_in_shard(&self, shard: usize, mut f: impl FnMut(&SessionKey, &SessionEntry)) {
        let s = &self.shards[shard];
        for slot in &s.slots[..s.used()] {
            if let Some((k, e)) = slot.read() {
                f(&k, &e);
            }
        }
    }

    // ----- snapshot ---------------------------------------------------------

    /// A cursor over every shard, for a batch sync.
    pub fn snapshot(&self) -> SnapshotCursor {
        SnapshotCursor::over(ShardSet::full(self.shard_count()))
    }

    /// Copies up to `max` backup-capable entries at the cursor into `out`
    /// (appended) and advances it. Takes no lock: each record is copied
    /// under its slot's seqlock, so writers wait for nothing and a record
    /// is seen before or after a concurrent write. Returns how many entries
    /// it copied; the walk is over when [`SnapshotCursor::is_done`].
    pub fn snapshot_chunk(
        &self,
        cursor: &mut SnapshotCursor,
        max: usize,
        out: &mut Vec<(SessionKey, SessionEntry)>,
    ) -> usize {
        self.snapshot_chunk_with(cursor, max, |k, e| out.push((*k, *e)))
    }

    /// [`Self::snapshot_chunk`] handing each entry to `visit` (a consistent
    /// copy on the stack, no lock held).
    pub fn snapshot_chunk_with(
        &self,
        cursor: &mut SnapshotCursor,
        max: usize,
        mut visit: impl FnMut(&SessionKey, &SessionEntry),
    ) -> usize {
        cursor.finished_shard = None;
        let Some(shard) = cursor.current else {
            return 0;
        };
        let s = &self.shards[shard];
        let mut taken = 0;
        let end = s.used();
        while cursor.pos < end && taken < max {
            let slot = &s.slots[cursor.pos];
            cursor.pos += 1;
            if let Some((k, e)) = slot.read() {
                if e.is_backup() {
                    visit(&k, &e);
                    taken += 1;
                }
            }
        }
        if cursor.pos >= end {
            cursor.finished_shard = Some(shard);
            cursor.current = cursor.remaining.pop_first();
            cursor.pos = 0;
        }
        taken
    }
}

/// Position of a walk over a set of shards: the shard being walked and the
/// slot inside it. Slots never move, so entries present when the walk
/// starts and not removed during it are visited exactly once.
#[derive(Debug, Clone)]
pub struct SnapshotCursor {
    current: Option<usize>,
    pos: usize,
    remaining: ShardSet,
    finished_shard: Option<usize>,
}

impl SnapshotCursor {
    /// A cursor over the given shards, in ascending order.
    pub fn over(mut shards: ShardSet) -> Self {
        let current = shards.pop_first();
        Self {
            current,
            pos: 0,
            remaining: shards,
            finished_shard: None,
        }
    }

    /// The shard the next chunk comes from, `None` when done.
    pub fn current_shard(&self) -> Option<usize> {
        self.current
    }

    /// The shard the last chunk completed, if it completed one.
    pub fn finished_shard(&self) -> Option<usize> {
        self.finished_shard
    }

    /// Whether every shard has been walked.
    pub fn is_done(&self) -> bool {
        self.current.is_none()
    }
}
