//! The sharded session table: where the data plane writes sessions and the
//! sync engine finds what to send.
//!
//! - [`SessionTable::upsert`], [`SessionTable::update`],
//!   [`SessionTable::remove`], [`SessionTable::get`]: the data-plane API.
//!   `get` takes no lock and never waits for a writer (an atomic index and
//!   seqlocked slots); a write takes its shard's writer lock for one
//!   operation, never waits on sync work and never allocates once the table
//!   is created.
//! - Change capture: every change of a backup-capable entry puts its key in
//!   its shard's bounded journal (once, however often it changes before the
//!   sync engine drains it). A full journal marks the shard overflowed; the
//!   engine resyncs that shard whole ([`SessionTable::take_overflowed`]).
//! - [`SessionTable::digest`]: an order-independent digest per shard, kept
//!   current on every write, so two tables compare in O(shards).
//! - [`SnapshotCursor`]: walks shards in bounded chunks for batch sync,
//!   lock-free, while writers go on.
//! - `apply_*`: the receiving side; never journaled, so nothing echoes back.
//!   [`ApplyWorker`] applies a large received chunk on a second thread while
//!   the caller decodes and hashes it, whole before the call returns.
#![warn(missing_docs)]

#[cfg(not(loom))]
mod apply_worker;
mod arena;
pub mod generate;
mod index;
mod mem;
pub mod model;
mod shard;
mod shard_set;
mod slot;
mod sync;
mod table;

#[cfg(all(test, loom))]
mod loom_model;

#[cfg(not(loom))]
pub use apply_worker::ApplyWorker;
pub use generate::SessionGenerator;
pub use model::*;
pub use shard_set::ShardSet;
pub use table::{
    APPLY_RUN, Change, DEFAULT_JOURNAL_KEYS, DEFAULT_SHARDS, HashedRecord, IfAbsent, LOOKUP_BURST,
    MAX_SHARDS, SessionTable, SnapshotCursor, TableConfig, TableDigest, TableFull, Upsert,
    entry_digest, key_hash,
};
