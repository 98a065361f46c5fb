//! Fuzz target `settings`: see `nu_cmd_aws::fuzzing::settings` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nu_cmd_aws::fuzzing::settings(data));
