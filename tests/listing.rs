//! End-to-end tests of the partitioned listing behind every recursive S3 reader: the real `nuaws`
//! binary against moto (checked against boto3's own paginator) and against the synthetic
//! ListObjectsV2 server of `tests/servers` (checked against its generated keys), through the
//! fault proxy for latency, failures and throttling.

#[path = "support/moto.rs"]
mod moto;

use std::time::Duration;

use moto::{Moto, seed_once};
use nuaws_test_servers::{FaultConfig, FaultProxy, SyntheticS3, object_key, object_size};

fn rows_via(moto: &Moto, endpoint: &str, script: &str) -> Vec<serde_json::Value> {
    moto.table_at(env!("CARGO_BIN_EXE_nuaws"), endpoint, script)
}

/// Keys that sort around `/` (`-` < `/` < `0`), a key and its "directory", unicode, a marker,
/// spaces and `+`: where a partition that got S3's order wrong would show.
const TRICKY: &[&str] = &[
    "a", "a-b", "a-b/c", "a/", "a/b", "a/b/c", "a0", "a0/x", "b c/ü+%.bin", "b/", "c//d", "日本/語", "😀/x", "Z", "~end",
];

const MIXED: &str = "listing-mixed";

/// A prefix-heavy bucket (`data/p{i%20}/sub{i%7}/obj-{i}.txt`) with the tricky keys beside it.
fn mixed_bucket(moto: &Moto) {
    seed_once(MIXED, || {
        moto.harness("seed-s3", &["--bucket", MIXED, "--objects", "400", "--prefixes", "20"]);
        let tricky: Vec<String> = TRICKY
            .iter()
            .enumerate()
            .map(|(i, key)| format!(r#"{{"key": {}, "size": {}}}"#, serde_json::Value::from(*key), i * 3))
            .collect();
        moto.harness("put-objects", &["--bucket", MIXED, "--objects", &format!("[{}]", tricky.join(","))]);
    });
}

/// (key, size) of boto3's walk of `bucket` below `prefix`.
fn boto3_walk(moto: &Moto, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
    let listed = moto.harness("list-s3", &["--bucket", bucket, "--prefix", prefix]);
    let mut walk: Vec<(String, u64)> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|o| (o["key"].as_str().unwrap().to_string(), o["size"].as_u64().unwrap()))
        .collect();
    // boto3's own order is S3's (UTF-8 bytes); the harness sorts by Python's code points,
    // which is the same order.
    walk.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    walk
}

fn names_and_sizes(rows: &[serde_json::Value], bucket: &str) -> Vec<(String, u64)> {
    let stem = format!("s3://{bucket}/");
    rows.iter()
        .map(|r| {
            let name = r["name"].as_str().expect("name");
            (name.strip_prefix(&stem).unwrap_or(name).to_string(), r["size"].as_u64().expect("size"))
        })
        .collect()
}

#[test]
fn a_partitioned_listing_of_moto_is_boto3s_walk_key_for_key() {
    let moto = Moto::shared();
    mixed_bucket(moto);
    let ranged_before = moto.requests("ListObjectsV2", "start-after=");
    // Pages of 10: ~40 pages, enough for the listing to fan out into ranges.
    let rows = rows_via(moto, &moto.endpoint, &format!("aws s3 ls s3://{MIXED} -R --page-size 10 | select name size"));
    assert!(moto.requests("ListObjectsV2", "start-after=") > ranged_before, "the listing never fanned out");
    let got = names_and_sizes(&rows, MIXED);
    let wanted = boto3_walk(moto, MIXED, "");
    assert_eq!(got.len(), wanted.len());
    assert!(got == wanted, "differs from boto3's walk:\n{got:?}\n{wanted:?}");

    // Below a prefix ending in `a`: `a-b`, `a/`, `a0` and their children, nothing else.
    let rows = rows_via(moto, &moto.endpoint, &format!("aws s3 ls s3://{MIXED}/a -R --page-size 2 | select name size"));
    assert_eq!(names_and_sizes(&rows, MIXED), boto3_walk(moto, MIXED, "a"));

    // du reads the same listing: its total is boto3's.
    let du = rows_via(moto, &moto.endpoint, &format!("aws s3 du s3://{MIXED} --page-size 10"));
    assert_eq!(du[0]["objects"].as_u64(), Some(wanted.len() as u64));
    assert_eq!(du[0]["bytes"].as_u64(), Some(wanted.iter().map(|(_, s)| s).sum()));
}

#[test]
fn an_empty_bucket_lists_nothing_in_one_request() {
    let moto = Moto::shared();
    moto.harness("seed-s3", &["--bucket", "listing-empty", "--objects", "0"]);
    let before = moto.requests("ListObjectsV2", "/listing-empty");
    let rows = rows_via(moto, &moto.endpoint, "aws s3 ls s3://listing-empty -R");
    assert!(rows.is_empty(), "{rows:?}");
    assert_eq!(moto.requests("ListObjectsV2", "/listing-empty") - before, 1);
}

const SYNTHETIC_OBJECTS: u64 = 30_000;

fn synthetic() -> SyntheticS3 {
    SyntheticS3::start("syn", SYNTHETIC_OBJECTS).expect("synthetic S3")
}

/// The generated keys and sizes of the synthetic bucket.
fn generated() -> Vec<(String, u64)> {
    (0..SYNTHETIC_OBJECTS).map(|i| (object_key(i), object_size(i))).collect()
}

#[test]
fn a_flat_bucket_behind_latency_lists_every_key_in_order_with_ranges_at_once() {
    let moto = Moto::shared();
    let server = synthetic();
    let proxy = FaultProxy::start(&server.endpoint(), FaultConfig::latency(Duration::from_millis(20))).expect("proxy");
    let rows = rows_via(moto, &proxy.endpoint(), "aws s3 ls s3://syn -R | select name size");
    assert!(names_and_sizes(&rows, "syn") == generated(), "the listing differs from the generated keys");
    let stats = proxy.stats();
    // Keys `obj/000000000`-`obj/000029999`: the first split cuts at the ten-thousands digit,
    // three subtrees listed at once (the unit tests of `partition` check the cuts themselves).
    assert!(stats.peak_in_flight >= 3, "ranges were listed at once: {stats:?}");
    // 30 pages, a split's probes and one page past the end of each range: a few more
    // requests than one paginator.
    assert!(stats.received < 45, "{stats:?}");
}

#[test]
fn first_three_of_a_big_flat_listing_costs_two_requests() {
    let moto = Moto::shared();
    let server = synthetic();
    let rows = rows_via(moto, &server.endpoint(), "aws s3 ls s3://syn -R | first 3");
    assert_eq!(rows.len(), 3);
    // The page read and at most the one prefetched (the process may end before it is asked).
    assert!((1..=2).contains(&server.requests()), "{} requests", server.requests());
}

#[test]
fn a_failing_range_fails_the_listing_and_names_its_keys() {
    let moto = Moto::shared();
    let server = synthetic();
    // Every range after the first starts with `StartAfter` and a full page (probes ask for one
    // key): those fail, as a refusal would. Latency makes the consumer wait, which is when the
    // listing splits.
    let faults = FaultConfig::fail_matching("max-keys=1000&start-after=", 403).with_latency(Duration::from_millis(20));
    let proxy = FaultProxy::start(&server.endpoint(), faults).expect("proxy");
    let out = moto.nuaws_at(env!("CARGO_BIN_EXE_nuaws"), &proxy.endpoint(), &moto.dir.join("cwd"), "aws s3 ls s3://syn -R | get size | math sum");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("listing the range of keys after the keys starting `obj/"), "{stderr}");
    assert!(proxy.stats().matched_failures > 0);
}

#[test]
fn throttling_cuts_the_listings_concurrency_and_loses_no_key() {
    let moto = Moto::shared();
    let server = synthetic();
    // 20 requests a second, bursts of 2: ranges at once soon get SlowDown.
    let proxy = FaultProxy::start(&server.endpoint(), FaultConfig::throttle(20.0, 2).with_latency(Duration::from_millis(20))).expect("proxy");
    let script = "let rows = (aws s3 ls s3://syn -R | select name size); \
                  let lane = (aws engine | where service == s3 | first); \
                  [[rows cuts peak final]; [$rows $lane.limit_cuts $lane.peak_limit $lane.final_limit]]";
    let out = rows_via(moto, &proxy.endpoint(), script);
    let result = &out[0];
    let rows = result["rows"].as_array().expect("rows").clone();
    assert!(names_and_sizes(&rows, "syn") == generated(), "a throttled listing lost or reordered keys");
    assert!(proxy.stats().throttled > 0, "the test must throttle: {:?}", proxy.stats());
    assert!(result["cuts"].as_u64().unwrap() > 0, "{result:?}");
    assert!(result["final"].as_u64().unwrap() < result["peak"].as_u64().unwrap(), "{result:?}");
}
