//! Arbitrary bytes as a peer's stream: see `hotsync_wire::fuzzing::frame_decode`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hotsync_wire::fuzzing::frame_decode(data);
});
