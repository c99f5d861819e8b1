//! Arbitrary messages encode and decode to themselves: see
//! `hotsync_wire::fuzzing::message_roundtrip`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hotsync_wire::fuzzing::message_roundtrip(data);
});
