#![no_main]
// See outdial::fuzzing::registrar.
libfuzzer_sys::fuzz_target!(|data: &[u8]| outdial::fuzzing::registrar(data));
