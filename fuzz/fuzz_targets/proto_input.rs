//! A peer state machine fed by a hostile remote (bytes, frames, handshakes,
//! disconnects, timers, on both connections): see
//! `hotsync_proto::fuzzing::proto_input`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hotsync_proto::fuzzing::proto_input(data);
});
