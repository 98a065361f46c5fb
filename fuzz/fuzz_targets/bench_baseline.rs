//! Fuzz target `bench_baseline`: see `nu_cmd_aws::fuzzing::bench_baseline` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nu_cmd_aws::fuzzing::bench_baseline(data));
