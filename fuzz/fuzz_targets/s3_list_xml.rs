//! Fuzz target `s3_list_xml`: see `aws_core::fuzzing::s3_list_xml` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aws_core::fuzzing::s3_list_xml(data));
