//! Arbitrary bytes as a datagram from the kernel's ctnetlink: see
//! `hotsync_conntrack::fuzzing::decode_datagram`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hotsync_conntrack::fuzzing::decode_datagram(data);
});
