#![no_main]
// See outdial::fuzzing::rtp.
libfuzzer_sys::fuzz_target!(|data: &[u8]| outdial::fuzzing::rtp(data));
