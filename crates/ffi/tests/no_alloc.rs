//! The data-plane calls of the C ABI never allocate: upsert (insert and
//! replace), update, remove, lookup, on success and on every failure path,
//! on a node whose relationship is established (so changes are journaled
//! and the node's waker runs on the writing thread).
//!
//! A global allocator counts the allocations made by the test thread while
//! counting is on.
#![allow(unsafe_code)] // a GlobalAlloc impl is unsafe by definition

use hotsync::types::*;
use hotsync::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::net::TcpListener;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Const-initialized, no destructor: reading it never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; counting touches only an atomic and a const thread-local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations `f` makes on this thread.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

/// A free port p with p + 1 free too (released on return: a small race).
fn port_pair() -> u16 {
    loop {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < 65000 && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

fn start(id: u16, listen: u16, peer: u16) -> *mut hotsync_node {
    let text = CString::new(format!(
        " hrp enable\n hrp node-id {id}\n hrp local-address 127.0.0.1 port {listen}\n \
         hrp remote-address 127.0.0.1 port {peer}\n hrp priority {}\n hrp timer hello 100\n",
        200 - id
    ))
    .unwrap();
    let opts = hotsync_node_options {
        max_sessions: 4096,
        shards: 16,
        journal_capacity: 0,
    };
    let mut node = null_mut();
    // SAFETY: `text` is a NUL-terminated string alive for the call.
    let status = unsafe { hotsync_node_start(text.as_ptr(), Some(&opts), Some(&mut node)) };
    assert_eq!(status, hotsync_status::Ok, "{:?}", last_error());
    node
}

fn last_error() -> String {
    // SAFETY: `hotsync_last_error` returns a NUL-terminated string valid
    // until this thread's next failing call.
    unsafe { CStr::from_ptr(hotsync_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn key(i: u32) -> hotsync_session_key {
    let mut k = hotsync_session_key {
        family: HOTSYNC_FAMILY_IPV4,
        protocol: 17,
        src_port: 5000,
        dst_port: 53,
        ..Default::default()
    };
    k.src_addr[..4].copy_from_slice(&[10, 9, (i >> 8) as u8, i as u8]);
    k.dst_addr[..4].copy_from_slice(&[10, 8, 8, 8]);
    k
}

unsafe extern "C" fn bump(e: *mut hotsync_session_entry, _ctx: *mut std::ffi::c_void) {
    // SAFETY: the library passes a valid, exclusive entry pointer.
    unsafe { (*e).packets[0] += 1 };
}

#[test]
fn data_plane_calls_never_allocate() {
    let (pa, pb) = (port_pair(), port_pair());
    let (a, b) = (start(1, pa, pb), start(2, pb, pa));
    // SAFETY: both were just returned by `hotsync_node_start`.
    let (na, nb) = unsafe { (&*a, &*b) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let established = |n| {
        let mut up = false;
        assert_eq!(
            hotsync_node_is_established(Some(n), Some(&mut up)),
            hotsync_status::Ok
        );
        up
    };
    while !(established(na) && established(nb)) {
        assert!(Instant::now() < deadline, "no relationship");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (mut ta, mut tb) = (null_mut(), null_mut());
    assert_eq!(
        hotsync_node_table(Some(na), Some(&mut ta)),
        hotsync_status::Ok
    );
    assert_eq!(
        hotsync_node_table(Some(nb), Some(&mut tb)),
        hotsync_status::Ok
    );
    // SAFETY: just returned by `hotsync_node_table`.
    let (table, peer) = unsafe { (&*ta, &*tb) };

    // Seen now: a session idle since 1970 is expired by the node's aging
    // sweep (every 10 ms) before the peers are compared.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    let entry = hotsync_session_entry {
        created: now,
        last_seen: now,
        timeout: 600,
        state: HOTSYNC_STATE_ESTABLISHED,
        flags: HOTSYNC_FLAG_BACKUP,
        ..Default::default()
    };
    let mut outcomes = Vec::with_capacity(16);
    let n = allocations_in(|| {
        let mut inserted = false;
        let mut out = hotsync_session_entry::default();
        let mut ok = [0u32; 7];
        for i in 0..1000 {
            let k = key(i);
            ok[0] +=
                (hotsync_table_upsert(Some(table), Some(&k), Some(&entry), Some(&mut inserted))
                    == hotsync_status::Ok
                    && inserted) as u32;
            ok[1] += (hotsync_table_upsert(Some(table), Some(&k), Some(&entry), None)
                == hotsync_status::Ok) as u32;
            // SAFETY: `bump` returns normally and ignores its context.
            ok[2] +=
                (unsafe { hotsync_table_update(Some(table), Some(&k), Some(bump), null_mut()) }
                    == hotsync_status::Ok) as u32;
            ok[3] += (hotsync_table_lookup(Some(table), Some(&k), Some(&mut out))
                == hotsync_status::Ok
                && out.packets[0] == 1) as u32;
            if i % 2 == 0 {
                ok[4] += (hotsync_table_remove(Some(table), Some(&k), Some(&mut out))
                    == hotsync_status::Ok) as u32;
            }
        }
        // A burst of 40 (half of them removed just above).
        let burst: [hotsync_session_key; 40] = std::array::from_fn(|i| key(i as u32));
        let mut entries = [hotsync_session_entry::default(); 40];
        let mut found = [0u8; 40];
        // SAFETY: three arrays of 40 elements, live for the call.
        let s = unsafe {
            hotsync_table_lookup_burst(
                Some(table),
                burst.as_ptr(),
                40,
                entries.as_mut_ptr(),
                found.as_mut_ptr(),
            )
        };
        ok[6] =
            u32::from(s == hotsync_status::Ok) * found.iter().map(|&f| u32::from(f)).sum::<u32>();
        // Every failure path, with its message.
        let gone = key(0);
        outcomes.push(hotsync_table_lookup(
            Some(table),
            Some(&gone),
            Some(&mut out),
        ));
        // SAFETY: `bump` returns normally and ignores its context.
        outcomes.push(unsafe {
            hotsync_table_update(Some(table), Some(&gone), Some(bump), null_mut())
        });
        outcomes.push(hotsync_table_remove(Some(table), Some(&gone), None));
        outcomes.push(hotsync_table_upsert(Some(table), None, Some(&entry), None));
        outcomes.push(hotsync_table_upsert(None, Some(&gone), Some(&entry), None));
        let _ = hotsync_last_error();
        // Fill the table until a shard refuses.
        let mut i = 1000;
        loop {
            let s = hotsync_table_upsert(Some(table), Some(&key(i)), Some(&entry), None);
            if s != hotsync_status::Ok {
                outcomes.push(s);
                break;
            }
            i += 1;
        }
        ok[5] = i;
        outcomes.push(hotsync_status::Ok);
        assert_eq!(&ok[..5], &[1000, 1000, 1000, 1000, 500]);
        assert!(ok[5] > 2000, "table full after only {} sessions", ok[5]);
        assert_eq!(ok[6], 20, "the burst found the 20 odd keys");
    });
    assert_eq!(n, 0, "{n} allocations on the data-plane calls");
    assert_eq!(
        outcomes,
        [
            hotsync_status::NotFound,
            hotsync_status::NotFound,
            hotsync_status::NotFound,
            hotsync_status::NullArgument,
            hotsync_status::NullArgument,
            hotsync_status::TableFull,
            hotsync_status::Ok,
        ]
    );
    assert!(last_error().contains("table full"), "{}", last_error());

    // The counter does see allocations: the digest (a control-plane call)
    // builds a per-shard vector.
    let mut d = hotsync_digest::default();
    assert!(
        allocations_in(|| assert_eq!(
            hotsync_table_digest(Some(table), Some(&mut d)),
            hotsync_status::Ok
        )) > 0
    );

    // And the changes were journaled and replicated: the peer converges.
    let mut dp = hotsync_digest::default();
    while {
        let _ = hotsync_table_digest(Some(table), Some(&mut d));
        let _ = hotsync_table_digest(Some(peer), Some(&mut dp));
        d != dp
    } {
        assert!(
            Instant::now() < deadline + Duration::from_secs(20),
            "{d:?} vs {dp:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(d.entries > 2000);

    // SAFETY: each handle is freed once, and not used afterwards.
    unsafe {
        hotsync_table_free(ta);
        hotsync_table_free(tb);
        hotsync_node_free(a);
        hotsync_node_free(b);
    }
}
