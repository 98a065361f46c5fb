//! Replays the committed corpora of the fuzz targets in `fuzz/` (`fuzz/corpus/<target>/*`)
//! through the very functions the targets call, on the stable toolchain and in the normal
//! suite: every input the fuzzer kept, and every input that once found a bug, must still pass
//! the target's assertions. Running the fuzzer itself (nightly) is `cargo +nightly fuzz run`.
//!
//! Not for: finding new inputs (that is the fuzzer's), nor the targets of `aws-core` (its
//! own `tests/fuzz_corpus.rs`).

use std::path::Path;

fn replay(target: &str, entry: fn(&[u8])) {
    aws_core::fuzzing::replay(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus"), target, entry);
}

#[test]
fn settings() {
    replay("settings", nu_cmd_aws::fuzzing::settings);
}

#[test]
fn ec2_filters() {
    replay("ec2_filters", nu_cmd_aws::fuzzing::ec2_filters);
}

#[test]
fn bench_baseline() {
    replay("bench_baseline", nu_cmd_aws::fuzzing::bench_baseline);
}
