#![no_main]
// See outdial::fuzzing::sdp_answer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| outdial::fuzzing::sdp_answer(data));
