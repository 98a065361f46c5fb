//! Fuzz target `cache_entry`: see `aws_core::fuzzing::cache_entry` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aws_core::fuzzing::cache_entry(data));
