//! Replays the committed corpora of the fuzz targets in `fuzz/` (`fuzz/corpus/<target>/*`)
//! through the very functions the targets call, on the stable toolchain and in the normal
//! suite: every input the fuzzer kept, and every input that once found a bug, must still pass
//! the target's assertions. Running the fuzzer itself (nightly) is `cargo +nightly fuzz run`.
//!
//! Not for: finding new inputs (that is the fuzzer's), nor the targets of `nu-cmd-aws` (its
//! own `tests/fuzz_corpus.rs`).

use std::path::Path;

fn replay(target: &str, entry: fn(&[u8])) {
    aws_core::fuzzing::replay(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus"), target, entry);
}

#[test]
fn s3_url() {
    replay("s3_url", aws_core::fuzzing::s3_url);
}

#[test]
fn cache_entry() {
    replay("cache_entry", aws_core::fuzzing::cache_entry);
}

#[test]
fn disk_records() {
    replay("disk_records", aws_core::fuzzing::disk_records);
}

#[test]
fn shared_entry() {
    replay("shared_entry", aws_core::fuzzing::shared_entry);
}

#[test]
fn sort_runs() {
    replay("sort_runs", aws_core::fuzzing::sort_runs);
}

#[test]
fn s3_redirect() {
    replay("s3_redirect", aws_core::fuzzing::s3_redirect);
}

#[test]
fn s3_list_xml() {
    replay("s3_list_xml", aws_core::fuzzing::s3_list_xml);
}
