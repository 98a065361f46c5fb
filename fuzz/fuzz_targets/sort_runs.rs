//! Fuzz target `sort_runs`: see `aws_core::fuzzing::sort_runs` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aws_core::fuzzing::sort_runs(data));
