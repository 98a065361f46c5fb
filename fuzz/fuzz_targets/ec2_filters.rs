//! Fuzz target `ec2_filters`: see `nu_cmd_aws::fuzzing::ec2_filters` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nu_cmd_aws::fuzzing::ec2_filters(data));
