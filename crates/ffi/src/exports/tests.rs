//! The C ABI driven as a C caller would (Miri runs these: `scripts/miri.sh`).

use super::*;

/// A table small enough for Miri (the default pre-faults a million
/// sessions).
fn small_table() -> *mut hotsync_table {
    let options = hotsync_node_options {
        max_sessions: 256,
        shards: 4,
        journal_capacity: 64,
    };
    let mut t = std::ptr::null_mut();
    assert_eq!(
        hotsync_table_new(Some(&options), Some(&mut t)),
        hotsync_status::Ok
    );
    assert!(!t.is_null());
    t
}

fn key(n: u8) -> hotsync_session_key {
    let mut k = hotsync_session_key {
        family: 4,
        protocol: 6,
        src_port: 40000 + u16::from(n),
        dst_port: 443,
        ..Default::default()
    };
    k.src_addr[..4].copy_from_slice(&[10, 0, 0, n]);
    k.dst_addr[..4].copy_from_slice(&[192, 0, 2, 1]);
    k
}

/// The callback a C data plane passes to `hotsync_table_update`.
unsafe extern "C" fn add_packets(entry: *mut hotsync_session_entry, context: *mut c_void) {
    // SAFETY: `hotsync_table_update` passes a live, exclusive entry, and
    // the test passes a pointer to a live `u64` as the context.
    unsafe { (*entry).packets[0] += *context.cast::<u64>() };
}

/// The life of a session through the C ABI, every pointer a C caller
/// hands over included: what Miri checks for undefined behaviour.
#[test]
fn a_session_lives_and_dies_through_the_c_abi() {
    let t = small_table();
    // SAFETY: `t` is a live handle until `hotsync_table_free` below.
    let table = unsafe { &*t };
    let entry = hotsync_session_entry {
        packets: [1, 0],
        ..Default::default()
    };
    let mut inserted = false;
    for n in 0..8 {
        assert_eq!(
            hotsync_table_upsert(
                Some(table),
                Some(&key(n)),
                Some(&entry),
                Some(&mut inserted)
            ),
            hotsync_status::Ok
        );
        assert!(inserted);
    }
    let mut more = 41_u64;
    // SAFETY: `add_packets` returns normally and expects a `*mut u64`.
    let status = unsafe {
        hotsync_table_update(
            Some(table),
            Some(&key(3)),
            Some(add_packets),
            std::ptr::from_mut(&mut more).cast(),
        )
    };
    assert_eq!(status, hotsync_status::Ok);
    let mut out = hotsync_session_entry::default();
    assert_eq!(
        hotsync_table_lookup(Some(table), Some(&key(3)), Some(&mut out)),
        hotsync_status::Ok
    );
    assert_eq!(out.packets, [42, 0]);
    let mut removed = hotsync_session_entry::default();
    assert_eq!(
        hotsync_table_remove(Some(table), Some(&key(3)), Some(&mut removed)),
        hotsync_status::Ok
    );
    assert_eq!(removed.packets, [42, 0]);
    assert_eq!(
        hotsync_table_lookup(Some(table), Some(&key(3)), Some(&mut out)),
        hotsync_status::NotFound
    );
    let mut len = 0;
    assert_eq!(
        hotsync_table_len(Some(table), Some(&mut len)),
        hotsync_status::Ok
    );
    assert_eq!(len, 7);
    // SAFETY: `t` is freed once and not used afterwards.
    unsafe { hotsync_table_free(t) };
}

/// A reader thread looks sessions up while the writer rewrites them: a
/// lookup returns a whole entry (old or new), never a torn one.
#[test]
fn lookups_racing_a_writer_see_whole_entries() {
    let t = small_table();
    // SAFETY: `t` lives until `hotsync_table_free`, after both threads
    // have ended (the scope joins them).
    let table = unsafe { &*t };
    let write = |n: u64| hotsync_session_entry {
        packets: [n, n],
        bytes: [n * 100, n * 100],
        ..Default::default()
    };
    assert_eq!(
        hotsync_table_upsert(Some(table), Some(&key(1)), Some(&write(0)), None),
        hotsync_status::Ok
    );
    std::thread::scope(|s| {
        s.spawn(|| {
            for n in 1..=20 {
                let status =
                    hotsync_table_upsert(Some(table), Some(&key(1)), Some(&write(n)), None);
                assert_eq!(status, hotsync_status::Ok);
            }
        });
        for _ in 0..20 {
            let mut out = hotsync_session_entry::default();
            let status = hotsync_table_lookup(Some(table), Some(&key(1)), Some(&mut out));
            assert_eq!(status, hotsync_status::Ok);
            assert_eq!(out.bytes, out.packets.map(|p| p * 100), "a torn entry");
        }
    });
    // SAFETY: `t` is freed once and not used afterwards.
    unsafe { hotsync_table_free(t) };
}

#[test]
fn every_status_has_a_name_and_unknown_values_too() {
    // SAFETY: `hotsync_status_name` returns static NUL-terminated
    // strings.
    let name = |v| unsafe { CStr::from_ptr(hotsync_status_name(v)) };
    assert_eq!(name(0), c"ok");
    assert_eq!(name(9), c"table full");
    assert_eq!(name(11), c"panic");
    assert_eq!(name(12), c"unknown");
    assert_eq!(name(-1), c"unknown");
}

#[test]
fn null_arguments_are_refused_not_dereferenced() {
    let key = hotsync_session_key::default();
    let entry = hotsync_session_entry::default();
    assert_eq!(
        hotsync_table_upsert(None, Some(&key), Some(&entry), None),
        hotsync_status::NullArgument
    );
    let t = small_table();
    // SAFETY: `t` was just returned by `hotsync_table_new`.
    let table = unsafe { &*t };
    assert_eq!(
        hotsync_table_upsert(Some(table), None, Some(&entry), None),
        hotsync_status::NullArgument
    );
    // SAFETY: static NUL-terminated message.
    let msg = unsafe { CStr::from_ptr(hotsync_last_error()) };
    assert_eq!(msg, c"`key` is NULL");
    let mut n = std::ptr::null_mut();
    // SAFETY: NULL callback, NULL strings and NULL handles are allowed
    // (and refused); `t` is freed once.
    unsafe {
        assert_eq!(
            hotsync_table_update(Some(table), Some(&key), None, std::ptr::null_mut()),
            hotsync_status::NullArgument
        );
        assert_eq!(
            hotsync_node_start(std::ptr::null(), None, None),
            hotsync_status::NullArgument
        );
        assert_eq!(
            hotsync_node_start(std::ptr::null(), None, Some(&mut n)),
            hotsync_status::NullArgument
        );
        assert!(n.is_null());
        hotsync_table_free(t);
        hotsync_table_free(std::ptr::null_mut());
        hotsync_node_free(std::ptr::null_mut());
    }
}

/// A data plane's vector of packets: present and absent keys over more
/// than one prefetch group, answered as single lookups would be.
#[test]
fn a_burst_lookup_finds_what_single_lookups_find() {
    let t = small_table();
    // SAFETY: `t` was just returned by `hotsync_table_new`.
    let table = unsafe { &*t };
    for n in (0..40).step_by(2) {
        let entry = hotsync_session_entry {
            packets: [u64::from(n), 0],
            ..Default::default()
        };
        assert_eq!(
            hotsync_table_upsert(Some(table), Some(&key(n)), Some(&entry), None),
            hotsync_status::Ok
        );
    }
    let keys: Vec<_> = (0..37).map(key).collect();
    let mut out = vec![hotsync_session_entry::default(); keys.len()];
    let mut found = vec![9u8; keys.len()];
    // SAFETY: three arrays of `keys.len()` elements, live for the call.
    let status = unsafe {
        hotsync_table_lookup_burst(
            Some(table),
            keys.as_ptr(),
            keys.len(),
            out.as_mut_ptr(),
            found.as_mut_ptr(),
        )
    };
    assert_eq!(status, hotsync_status::Ok);
    for (n, (o, f)) in out.iter().zip(&found).enumerate() {
        let mut single = hotsync_session_entry::default();
        let s = hotsync_table_lookup(Some(table), Some(&keys[n]), Some(&mut single));
        assert_eq!(*f, u8::from(n % 2 == 0), "key {n}");
        assert_eq!(s == hotsync_status::Ok, *f == 1);
        if *f == 1 {
            assert_eq!(o.packets, [n as u64, 0]);
        }
    }
    // SAFETY: NULL arrays with a count are refused before any access; an
    // empty burst touches nothing; `t` is freed once.
    unsafe {
        assert_eq!(
            hotsync_table_lookup_burst(
                Some(table),
                std::ptr::null(),
                3,
                out.as_mut_ptr(),
                found.as_mut_ptr()
            ),
            hotsync_status::NullArgument
        );
        assert_eq!(
            hotsync_table_lookup_burst(
                Some(table),
                std::ptr::null(),
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut()
            ),
            hotsync_status::Ok
        );
        hotsync_table_free(t);
    }
}
