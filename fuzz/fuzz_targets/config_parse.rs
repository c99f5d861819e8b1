#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hotsync_config::fuzzing::parse(data);
});
