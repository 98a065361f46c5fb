//! Fuzz target `s3_redirect`: see `aws_core::fuzzing::s3_redirect` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aws_core::fuzzing::s3_redirect(data));
