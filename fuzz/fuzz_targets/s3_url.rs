//! Fuzz target `s3_url`: see `aws_core::fuzzing::s3_url` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aws_core::fuzzing::s3_url(data));
