#![no_main]
// See outdial::fuzzing::campaign_toml.
libfuzzer_sys::fuzz_target!(|data: &[u8]| outdial::fuzzing::campaign_toml(data));
