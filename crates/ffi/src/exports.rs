//! The exported `extern "C"` functions: the only module with `unsafe`.
//!
//! What is unsafe here, and only here:
//! - `#[unsafe(no_mangle)]` on each export (every symbol is `hotsync_`-prefixed
//!   and defined once, so none can clash with another library's);
//! - reading the two C-string arguments (`CStr::from_ptr`);
//! - taking the two handle kinds back in their `*_free` (`Box::from_raw`);
//! - calling the C update callback.
//!
//! Pointer arguments are typed `Option<&T>` / `Option<&mut T>`: a C pointer
//! that is NULL or valid, as the header requires, is exactly that, so most
//! functions need no `unsafe` at all. Every body runs inside
//! [`guard`]: a panic becomes `HOTSYNC_STATUS_PANIC`, never an unwind into C.
//!
//! The doc comments are the header's documentation.
#![allow(unsafe_code)]

use crate::error::{fail_static, guard, hotsync_status, required};
use crate::node::{self, hotsync_node, hotsync_table};
use crate::types::{
    hotsync_digest, hotsync_job_status, hotsync_node_options, hotsync_node_state, hotsync_role,
    hotsync_session_entry, hotsync_session_key, hotsync_stats,
};
use ::hotsync_table::{LOOKUP_BURST, SessionEntry, SessionKey, SessionTable, Upsert};
use std::ffi::{CStr, c_char, c_void};
use std::sync::Arc;

// ----- library -----------------------------------------------------------

/// The library's ABI version. Compare it with `HOTSYNC_ABI_VERSION` from
/// the header you compiled against; if they differ, do not call anything
/// else.
///
/// Thread safety: any thread, any time. Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_abi_version() -> u32 {
    crate::HOTSYNC_ABI_VERSION
}

/// The library's version, e.g. `"0.1.0"`: a static NUL-terminated string
/// (do not free it).
///
/// Thread safety: any thread, any time. Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("version with a NUL"),
        };
    VERSION.as_ptr()
}

/// The message of the calling thread's last failed call, `""` if none:
/// a NUL-terminated string owned by the library, valid until the next
/// failing hotsync call on the same thread (copy it to keep it).
/// Successful calls leave it unchanged.
///
/// Thread safety: per thread; each thread sees its own failures. The
/// data-plane calls (`hotsync_table_upsert`, `_update`, `_remove`,
/// `_lookup`) only ever leave static messages: they never allocate.
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_last_error() -> *const c_char {
    crate::error::last_message()
}

/// A fixed, static name for a status code (`"table full"`); `"unknown"`
/// for values this library does not define.
///
/// Thread safety: any thread. Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_status_name(status: i32) -> *const c_char {
    use hotsync_status as S;
    const ALL: [hotsync_status; 12] = [
        S::Ok,
        S::NullArgument,
        S::InvalidArgument,
        S::Config,
        S::Io,
        S::NotEstablished,
        S::AlreadyRunning,
        S::Refused,
        S::Stopped,
        S::TableFull,
        S::NotFound,
        S::Panic,
    ];
    ALL.iter()
        .find(|s| **s as i32 == status)
        .map_or(c"unknown", |s| s.name())
        .as_ptr()
}

// ----- nodes ---------------------------------------------------------------

/// Starts a node from configuration text: the format of `hotsync node
/// --config FILE` (docs/CONFIG.md), whose `hrp local-address` and
/// `hrp remote-address` lines give its listen address and its peer.
///
/// Binds both listeners (session channel on the port, configuration
/// channel on port + 1), reserves and pre-faults the session table, and
/// spawns the node's event-loop thread; returns at once, before the peer
/// is reached.
///
/// - `config_text`: NUL-terminated UTF-8; read during the call only.
/// - `options`: table sizing, or NULL for the defaults.
/// - `out`: receives the new node; set only on success. The caller owns
///   it and releases it with `hotsync_node_free`.
///
/// Errors: `NULL_ARGUMENT`; `INVALID_ARGUMENT` (not UTF-8, bad options);
/// `CONFIG` (the message gives line and column); `IO` (address in use).
///
/// Thread safety: any thread.
///
/// # Safety
/// `config_text` is NULL or a NUL-terminated string readable for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hotsync_node_start(
    config_text: *const c_char,
    options: Option<&hotsync_node_options>,
    out: Option<&mut *mut hotsync_node>,
) -> hotsync_status {
    guard(|| {
        let out = required!(out);
        if config_text.is_null() {
            return fail_static(hotsync_status::NullArgument, c"`config_text` is NULL");
        }
        // SAFETY: the header requires `config_text` to be NULL or a
        // NUL-terminated string valid for the duration of the call, and
        // NULL was ruled out above; it is only read before returning.
        let text = unsafe { CStr::from_ptr(config_text) };
        let Ok(text) = text.to_str() else {
            return fail_static(
                hotsync_status::InvalidArgument,
                c"`config_text` is not UTF-8",
            );
        };
        match node::start(text, options) {
            Ok(n) => {
                *out = Box::into_raw(Box::new(n));
                hotsync_status::Ok
            }
            Err(status) => status,
        }
    })
}

/// Starts a node from a configuration file (at most 256 MiB): as
/// `hotsync_node_start` on the file's text; messages name the file.
///
/// - `path`: NUL-terminated UTF-8 path; read during the call only.
///
/// Errors: as `hotsync_node_start`; `IO` also when the file cannot be read.
///
/// Thread safety: any thread.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string readable for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hotsync_node_start_file(
    path: *const c_char,
    options: Option<&hotsync_node_options>,
    out: Option<&mut *mut hotsync_node>,
) -> hotsync_status {
    guard(|| {
        let out = required!(out);
        if path.is_null() {
            return fail_static(hotsync_status::NullArgument, c"`path` is NULL");
        }
        // SAFETY: the header requires `path` to be NULL or a NUL-terminated
        // string valid for the duration of the call, and NULL was ruled
        // out above; it is only read before returning.
        let path = unsafe { CStr::from_ptr(path) };
        let Ok(path) = path.to_str() else {
            return fail_static(hotsync_status::InvalidArgument, c"`path` is not UTF-8");
        };
        match node::start_file(path.as_ref(), options) {
            Ok(n) => {
                *out = Box::into_raw(Box::new(n));
                hotsync_status::Ok
            }
            Err(status) => status,
        }
    })
}

/// Stops the node: closes its connections and listeners and joins its
/// event-loop thread (a few milliseconds). Idempotent. Afterwards control
/// calls fail with `STOPPED`; table handles stay valid (writes are kept
/// locally, nothing is sent).
///
/// Thread safety: any thread; not concurrently with `hotsync_node_free`
/// of the same node.
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_node_stop(node: Option<&hotsync_node>) -> hotsync_status {
    guard(|| {
        required!(node).handle.shutdown();
        hotsync_status::Ok
    })
}

/// Stops the node if it runs, and frees it. NULL is ignored.
///
/// Ownership: `node` must come from `hotsync_node_start*` and not have
/// been freed; it is invalid afterwards. Table handles obtained from it
/// stay valid until their own `hotsync_table_free`.
///
/// Thread safety: no other call may use `node` at the same time or after.
///
/// # Safety
/// `node` is NULL or a node from `hotsync_node_start*` not freed yet, and
/// no other call uses it concurrently or afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hotsync_node_free(node: *mut hotsync_node) {
    if node.is_null() {
        return;
    }
    // SAFETY: the header requires `node` to come from `hotsync_node_start*`
    // (a `Box::into_raw`), freed at most once, and unused by any other
    // call from now on: this takes the box back exactly once.
    let node = unsafe { Box::from_raw(node) };
    let _ = guard(|| {
        node.handle.shutdown();
        hotsync_status::Ok
    });
}

/// A new handle on the node's session table, for data-plane threads.
///
/// Ownership: the caller owns `*out` and releases it with
/// `hotsync_table_free`; it keeps the table alive on its own (it may
/// outlive the node). Take one per thread or share one: the table calls
/// are thread-safe.
///
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_node_table(
    node: Option<&hotsync_node>,
    out: Option<&mut *mut hotsync_table>,
) -> hotsync_status {
    guard(|| {
        let node = required!(node);
        let out = required!(out);
        *out = Box::into_raw(Box::new(hotsync_table {
            table: Arc::clone(node.handle.table()),
        }));
        hotsync_status::Ok
    })
}

/// `hrp sync connection-status` (B2): starts a background batch sync of
/// every backup-capable session to the peer and returns its job id in
/// `*job` at once. Follow it with `hotsync_node_job_status`.
///
/// Errors: `NOT_ESTABLISHED`; `ALREADY_RUNNING` (one per kind at a time);
/// `STOPPED`.
///
/// Thread safety: any thread. Control plane: blocks for a round trip to
/// the node's event loop (microseconds).
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_node_sync_connection_status(
    node: Option<&hotsync_node>,
    job: Option<&mut u64>,
) -> hotsync_status {
    guard(|| {
        let node = required!(node);
        let job = required!(job);
        match node.handle.sync_connection_status() {
            Ok(id) => {
                *job = id;
                hotsync_status::Ok
            }
            Err(e) => node::node_failure(e),
        }
    })
}

/// `hrp sync config` (B1): starts a background batch sync of the
/// configuration (root system and every virtual system; static routes only
/// with `hrp auto-sync config static-route`; never the SSL VPN, the user
/// database or node-local settings) and returns its job id in `*job`.
///
/// Errors: as `hotsync_node_sync_connection_status`.
///
/// Thread safety: any thread. Control plane: renders the configuration on
/// the calling thread (tens of milliseconds for 100,000 items).
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_node_sync_config(
    node: Option<&hotsync_node>,
    job: Option<&mut u64>,
) -> hotsync_status {
    guard(|| {
        let node = required!(node);
        let job = required!(job);
        match node.handle.sync_config() {
            Ok(id) => {
                *job = id;
                hotsync_status::Ok
            }
            Err(e) => node::node_failure(e),
        }
    })
}

/// The progress and result of batch-sync job `job`: `state` is RUNNING
/// until the peer acknowledged everything (DONE) or the job gave up
/// (FAILED, with `message`); progress is `acked / total`.
///
/// Errors: `NOT_FOUND` (no such job, or the node is stopped).
///
/// Thread safety: any thread. Control plane: a round trip to the event
/// loop.
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_node_job_status(
    node: Option<&hotsync_node>,
    job: u64,
    out: Option<&mut hotsync_job_status>,
) -> hotsync_status {
    guard(|| {
        let node = required!(node);
        let out = required!(out);
        match node.job(job) {
            Ok(s) => {
                *out = s;
                hotsync_status::Ok
            }
            Err(status) => status,
        }
    })
}

/// Blocks until job `job` ends or `timeout_ms` passes, then writes its
/// last status (check `state`: still RUNNING means the time ran out).
///
/// Errors: as `hotsync_node_job_status`.
///
/// Thread safety: any thread; never call it from a data-plane thread.
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_node_wait_job(
    node: Option<&hotsync_node>,
    job: u64,
    timeout_ms: u32,
    out: Option<&mut hotsync_job_status>,
) -> hotsync_status {
    guard(|| {
        let node = required!(node);
        let out = required!(out);
        match node.wait_job(job, timeout_ms) {
            Ok(s) => {
                *out = s;
                hotsync_status::Ok
            }
            Err(status) => status,
        }
    })
}

/// The node's role now (an atomic read: cheap enough to poll).
///
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_node_role(
    node: Option<&hotsync_node>,
    out: Option<&mut hotsync_role>,
) -> hotsync_status {
    guard(|| {
        *required!(out) = required!(node).handle.role().into();
        hotsync_status::Ok
    })
}

/// Whether the hot-standby relationship is established now (an atomic
/// read). Sessions written while it is not are not replicated until a
/// `hotsync_node_sync_connection_status` (B4).
///
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_node_is_established(
    node: Option<&hotsync_node>,
    out: Option<&mut bool>,
) -> hotsync_status {
    guard(|| {
        *required!(out) = required!(node).handle.is_established();
        hotsync_status::Ok
    })
}

/// The relationship: roles, peer, authentication, pending repairs.
/// A stopped node reports role INITIAL, not established.
///
/// Thread safety: any thread. Control plane: a round trip to the event
/// loop.
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_node_get_state(
    node: Option<&hotsync_node>,
    out: Option<&mut hotsync_node_state>,
) -> hotsync_status {
    guard(|| {
        let node = required!(node);
        *required!(out) = node.state();
        hotsync_status::Ok
    })
}

/// The node's cumulative counters (`display hrp statistics`) and the
/// number of sessions in its table.
///
/// Thread safety: any thread. Control plane: a round trip to the event
/// loop, and a pass over the shards to count sessions.
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_node_stats(
    node: Option<&hotsync_node>,
    out: Option<&mut hotsync_stats>,
) -> hotsync_status {
    guard(|| {
        let node = required!(node);
        *required!(out) = node.stats();
        hotsync_status::Ok
    })
}

// ----- tables --------------------------------------------------------------

/// A session table of its own, not attached to a node: for tests and
/// benchmarks of a data plane. Changes are journaled as in a node, but
/// nothing drains the journals (a full one only marks its shard).
///
/// Ownership: the caller owns `*out`; release it with `hotsync_table_free`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (options).
///
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_table_new(
    options: Option<&hotsync_node_options>,
    out: Option<&mut *mut hotsync_table>,
) -> hotsync_status {
    guard(|| {
        let out = required!(out);
        match node::new_table(options) {
            Ok(t) => {
                *out = Box::into_raw(Box::new(t));
                hotsync_status::Ok
            }
            Err(status) => status,
        }
    })
}

/// Releases a table handle. NULL is ignored. The table itself is freed
/// with its last handle (the node holds one while it exists).
///
/// Thread safety: no other call may use this handle at the same time or
/// after; other handles on the same table are unaffected.
///
/// # Safety
/// `table` is NULL or a handle from `hotsync_node_table`/`hotsync_table_new`
/// not freed yet, and no other call uses it concurrently or afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hotsync_table_free(table: *mut hotsync_table) {
    if table.is_null() {
        return;
    }
    // SAFETY: the header requires `table` to come from
    // `hotsync_node_table` or `hotsync_table_new` (a `Box::into_raw`),
    // freed at most once and unused from now on: the box is taken back
    // exactly once.
    drop(unsafe { Box::from_raw(table) });
}

/// Inserts or replaces a session. If the session has `HOTSYNC_FLAG_BACKUP`
/// (or had it) and the relationship is established, the change is queued
/// for the peer; the queue is drained by the node's thread.
///
/// `*inserted` (if `inserted` is not NULL) is set to whether the key was
/// new. Errors: `NULL_ARGUMENT`, `TABLE_FULL`.
///
/// Data plane: thread-safe, lock held for this one operation on the key's
/// shard only, never waits for the sync engine, never allocates (the
/// message on failure is static).
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_table_upsert(
    table: Option<&hotsync_table>,
    key: Option<&hotsync_session_key>,
    entry: Option<&hotsync_session_entry>,
    inserted: Option<&mut bool>,
) -> hotsync_status {
    guard(|| {
        let table = required!(table);
        let key = SessionKey::from(required!(key));
        let entry = SessionEntry::from(required!(entry));
        match table.table.upsert(&key, &entry) {
            Ok(done) => {
                if let Some(inserted) = inserted {
                    *inserted = done == Upsert::Inserted;
                }
                hotsync_status::Ok
            }
            Err(_) => fail_static(
                hotsync_status::TableFull,
                c"session table full: the key's shard holds its maximum (size max_sessions for the peak)",
            ),
        }
    })
}

/// The callback of `hotsync_table_update`: changes `*entry` in place.
/// `context` is the caller's pointer, passed through.
pub type hotsync_update_fn =
    Option<unsafe extern "C" fn(entry: *mut hotsync_session_entry, context: *mut c_void)>;

/// Changes a session in place: calls `update(entry, context)` on a copy of
/// its entry under the shard's lock and stores the result (read-modify-write
/// with no lost update between threads, e.g. counters). A change is queued
/// for the peer as in `hotsync_table_upsert`; none if nothing changed.
///
/// `update` runs on the calling thread, under the lock: keep it short, and
/// never call a `hotsync_table_*` function from it (deadlock), nor unwind
/// or `longjmp` out of it.
///
/// Errors: `NULL_ARGUMENT`, `NOT_FOUND` (no such session; `update` is not
/// called).
///
/// Data plane: as `hotsync_table_upsert`.
///
/// # Safety
/// `update` is NULL or a function of this type that returns normally;
/// `context` is whatever `update` expects.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hotsync_table_update(
    table: Option<&hotsync_table>,
    key: Option<&hotsync_session_key>,
    update: hotsync_update_fn,
    context: *mut c_void,
) -> hotsync_status {
    guard(|| {
        let table = required!(table);
        let key = SessionKey::from(required!(key));
        let update = required!(update);
        let found = table.table.update(&key, |e| {
            let mut c = hotsync_session_entry::from(&*e);
            // SAFETY: `update` is the caller's function of the documented
            // type; it gets a pointer to a live, exclusively borrowed local
            // for the duration of the call and the caller's own `context`.
            // The header forbids unwinding out of it.
            unsafe { update(&mut c, context) };
            *e = SessionEntry::from(&c);
        });
        if found {
            hotsync_status::Ok
        } else {
            fail_static(hotsync_status::NotFound, c"no such session")
        }
    })
}

/// Removes a session; its last entry is copied to `*removed` if `removed`
/// is not NULL. The removal is queued for the peer if it was backup-capable.
///
/// Errors: `NULL_ARGUMENT`, `NOT_FOUND`.
///
/// Data plane: as `hotsync_table_upsert`.
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_table_remove(
    table: Option<&hotsync_table>,
    key: Option<&hotsync_session_key>,
    removed: Option<&mut hotsync_session_entry>,
) -> hotsync_status {
    guard(|| {
        let table = required!(table);
        let key = SessionKey::from(required!(key));
        match table.table.remove(&key) {
            Some(old) => {
                if let Some(out) = removed {
                    *out = hotsync_session_entry::from(&old);
                }
                hotsync_status::Ok
            }
            None => fail_static(hotsync_status::NotFound, c"no such session"),
        }
    })
}

/// Copies a session's entry to `*out`.
///
/// Errors: `NULL_ARGUMENT`, `NOT_FOUND`.
///
/// Data plane: thread-safe, never allocates, takes no lock and never waits
/// for a writer (it copies the session under its slot's sequence counter;
/// racing a write, it returns the entry before or after it).
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_table_lookup(
    table: Option<&hotsync_table>,
    key: Option<&hotsync_session_key>,
    out: Option<&mut hotsync_session_entry>,
) -> hotsync_status {
    guard(|| {
        let table = required!(table);
        let key = SessionKey::from(required!(key));
        let out = required!(out);
        match table.table.get(&key) {
            Some(e) => {
                *out = hotsync_session_entry::from(&e);
                hotsync_status::Ok
            }
            None => fail_static(hotsync_status::NotFound, c"no such session"),
        }
    })
}

/// Looks up `count` sessions at once, the way a data plane handles a vector
/// of packets (like DPDK's `rte_hash_lookup_bulk`): for each key `keys[i]`,
/// `found[i]` is set to 1 and `out[i]` to its entry, or `found[i]` to 0 and
/// `out[i]` left as it was. The lookups of a group of keys overlap their
/// cache misses, so a burst of 16 or more costs a fraction of `count`
/// single lookups.
///
/// Errors: `NULL_ARGUMENT` (any pointer NULL while `count` is not 0).
///
/// Data plane: thread-safe, never allocates, takes no lock and never waits
/// for a writer (each key as in `hotsync_table_lookup`).
///
/// # Safety
/// `keys` points to `count` readable keys, `out` to `count` writable
/// entries and `found` to `count` writable bytes, none overlapping another,
/// all valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hotsync_table_lookup_burst(
    table: Option<&hotsync_table>,
    keys: *const hotsync_session_key,
    count: usize,
    out: *mut hotsync_session_entry,
    found: *mut u8,
) -> hotsync_status {
    guard(|| {
        let table = required!(table);
        if count == 0 {
            return hotsync_status::Ok;
        }
        if keys.is_null() || out.is_null() || found.is_null() {
            return fail_static(hotsync_status::NullArgument, c"NULL keys, out or found");
        }
        // SAFETY: non-NULL (checked above), and the header requires `keys`
        // to point to `count` readable keys, `out` to `count` writable
        // entries and `found` to `count` writable bytes, not overlapping,
        // valid for this call, which keeps no reference after it returns.
        let (keys, out, found) = unsafe {
            (
                std::slice::from_raw_parts(keys, count),
                std::slice::from_raw_parts_mut(out, count),
                std::slice::from_raw_parts_mut(found, count),
            )
        };
        lookup_burst(&table.table, keys, out, found);
        hotsync_status::Ok
    })
}

/// [`hotsync_table_lookup_burst`] on slices: converts one prefetch group of
/// keys at a time on the stack.
fn lookup_burst(
    table: &SessionTable,
    keys: &[hotsync_session_key],
    out: &mut [hotsync_session_entry],
    found: &mut [u8],
) {
    let mut group = [SessionKey::default(); LOOKUP_BURST];
    let mut entries = [None; LOOKUP_BURST];
    for ((keys, out), found) in keys
        .chunks(LOOKUP_BURST)
        .zip(out.chunks_mut(LOOKUP_BURST))
        .zip(found.chunks_mut(LOOKUP_BURST))
    {
        for (g, k) in group.iter_mut().zip(keys) {
            *g = SessionKey::from(k);
        }
        let n = table.get_burst(&group[..keys.len()], &mut entries);
        for ((e, o), f) in entries[..n].iter().zip(out).zip(found) {
            *f = u8::from(e.is_some());
            if let Some(e) = e {
                *o = hotsync_session_entry::from(e);
            }
        }
    }
}

/// The number of sessions in the table.
///
/// Thread safety: any thread; visits every shard (not a per-packet call).
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_table_len(
    table: Option<&hotsync_table>,
    out: Option<&mut u64>,
) -> hotsync_status {
    guard(|| {
        let table = required!(table);
        *required!(out) = table.table.len() as u64;
        hotsync_status::Ok
    })
}

/// The table digest over its backup-capable sessions: two nodes are in
/// step when their digests are equal (`combined` and `entries`).
///
/// Thread safety: any thread; reads every shard's digest under its lock
/// (microseconds; not a per-packet call).
#[unsafe(no_mangle)]
pub extern "C" fn hotsync_table_digest(
    table: Option<&hotsync_table>,
    out: Option<&mut hotsync_digest>,
) -> hotsync_status {
    guard(|| {
        let table = required!(table);
        *required!(out) = table.digest();
        hotsync_status::Ok
    })
}

#[cfg(test)]
mod tests;
