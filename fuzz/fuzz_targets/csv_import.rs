#![no_main]
// See outdial::fuzzing::csv_import.
libfuzzer_sys::fuzz_target!(|data: &[u8]| outdial::fuzzing::csv_import(data));
