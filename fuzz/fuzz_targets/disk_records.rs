//! Fuzz target `disk_records`: see `aws_core::fuzzing::disk_records` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aws_core::fuzzing::disk_records(data));
