#![no_main]
// See outdial::fuzzing::sip_stream.
libfuzzer_sys::fuzz_target!(|data: &[u8]| outdial::fuzzing::sip_stream(data));
