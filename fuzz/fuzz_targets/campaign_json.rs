#![no_main]
// See outdial::fuzzing::campaign_json.
libfuzzer_sys::fuzz_target!(|data: &[u8]| outdial::fuzzing::campaign_json(data));
