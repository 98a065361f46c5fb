//! End-to-end tests of region routing: the real `nuaws` binary, from a us-east-1 shell, against
//! moto behind the fault proxy's emulation of how real S3 answers requests sent to the wrong
//! region (moto itself serves every bucket from every region). The buckets live where real S3
//! would put them: `eu-data` in eu-west-1, `ap-data` in ap-southeast-2, `me-data` in the opt-in
//! region me-south-1. Refusals are counted at the proxy.

#[path = "support/moto.rs"]
mod moto;

use std::path::{Path, PathBuf};
use std::process::Output;

use moto::{Moto, seed_once};
use nuaws_test_servers::{FaultConfig, FaultProxy};

const EU: &str = "eu-data";
const AP: &str = "ap-data";
const ME: &str = "me-data";
/// Two pages of ListObjectsV2.
const EU_OBJECTS: usize = 1500;
const AP_OBJECTS: usize = 1200;

fn seeded() -> &'static Moto {
    let moto = Moto::shared();
    seed_once("regions", || {
        for (bucket, region, objects) in [(EU, "eu-west-1", EU_OBJECTS), (AP, "ap-southeast-2", AP_OBJECTS), (ME, "me-south-1", 20)] {
            let objects = objects.to_string();
            moto.harness("seed-s3", &["--bucket", bucket, "--region", region, "--objects", &objects, "--prefixes", "3"]);
        }
    });
    moto
}

/// The proxy as real S3's regional endpoint for us-east-1 would answer.
fn regional_proxy(moto: &Moto) -> FaultProxy {
    FaultProxy::start(&moto.endpoint, world()).expect("proxy")
}

fn world() -> FaultConfig {
    FaultConfig::default()
        .with_bucket_region(EU, "eu-west-1")
        .with_bucket_region(AP, "ap-southeast-2")
        .with_bucket_region(ME, "me-south-1")
}

/// A shell with the cache off (so every command asks the server), or on in `cache`.
fn nuaws(moto: &Moto, proxy: &FaultProxy, cache: Option<&Path>, script: &str) -> Output {
    let env = match cache {
        Some(dir) => moto.cached_env(dir),
        None => moto.client_env(),
    };
    moto.nuaws_with(env!("CARGO_BIN_EXE_nuaws"), env, &proxy.endpoint(), &moto.dir.join("cwd-regions"), script)
}

fn ok(moto: &Moto, proxy: &FaultProxy, cache: Option<&Path>, script: &str) -> String {
    let out = nuaws(moto, proxy, cache, script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "`{script}` failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn failed(moto: &Moto, proxy: &FaultProxy, script: &str) -> String {
    let out = nuaws(moto, proxy, None, script);
    assert!(!out.status.success(), "`{script}` succeeded: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn json(moto: &Moto, proxy: &FaultProxy, script: &str) -> serde_json::Value {
    let text = ok(moto, proxy, None, &format!("{script} | to json --raw"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("`{script}` gave no JSON ({e}): {text}"))
}

/// Refusals for their region the proxy sent about `bucket` (301s and 400s).
fn refusals(proxy: &FaultProxy, bucket: &str) -> usize {
    let needle = format!("/{bucket}");
    proxy
        .log()
        .iter()
        .filter(|r| r.path_and_query.starts_with(&needle) && matches!(r.status, Some(301 | 400)))
        .count()
}

fn cache_dir(moto: &Moto, name: &str) -> PathBuf {
    let dir = moto.dir.join(format!("regions-cache-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn listings_of_buckets_in_other_regions_cost_one_redirect_per_bucket_per_shell() {
    let moto = seeded();
    let proxy = regional_proxy(moto);
    let script = format!(
        "[(aws s3 ls s3://{EU}/data/ | length) (aws s3 ls s3://{EU}/data/ -R | length) (aws s3 ls s3://{EU}/data/p001/ -R | length) \
          (aws s3 ls s3://{AP}/data/ -R | length) (aws s3 ls s3://{AP}/data/ | get name)] | to json --raw"
    );
    let out: serde_json::Value = serde_json::from_str(&ok(moto, &proxy, None, &script)).expect("json");
    assert_eq!(out[0], 3, "one level: the three prefixes");
    // Under data/ only: other tests write beside it (written/) while this one lists.
    assert_eq!(out[1], EU_OBJECTS, "every seeded object, over two pages");
    assert_eq!(out[2], EU_OBJECTS / 3);
    assert_eq!(out[3], AP_OBJECTS);
    assert_eq!(out[4], serde_json::json!(["s3://ap-data/data/p000/", "s3://ap-data/data/p001/", "s3://ap-data/data/p002/"]));
    assert_eq!(refusals(&proxy, EU), 1, "{:?}", proxy.log());
    assert_eq!(refusals(&proxy, AP), 1);
}

#[test]
fn the_listing_is_the_same_as_boto3s_in_order_and_sizes() {
    let moto = seeded();
    let proxy = regional_proxy(moto);
    // Under data/ only: other tests write beside it (written/) while this one lists.
    let rows = json(moto, &proxy, &format!("aws s3 ls s3://{EU}/data/ -R | select name size"));
    let reference = moto.harness("list-s3", &["--bucket", EU, "--region", "eu-west-1"]);
    let reference = reference.as_array().expect("reference listing");
    let ours: Vec<(String, u64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().trim_start_matches("s3://eu-data/").to_string(), r["size"].as_u64().unwrap()))
        .collect();
    let theirs: Vec<(String, u64)> = reference
        .iter()
        .map(|o| (o["key"].as_str().unwrap().to_string(), o["size"].as_u64().unwrap()))
        .filter(|(key, _)| key.starts_with("data/"))
        .collect();
    assert_eq!(ours, theirs);
}

#[test]
fn save_open_head_and_rm_follow_the_bucket_to_its_region() {
    let moto = seeded();
    let proxy = regional_proxy(moto);
    let url = format!("s3://{EU}/written/note.json");
    let script = format!(
        "{{a: 1, where: 'eu'}} | aws s3 save {url}; \
         let opened = (aws s3 open {url}); let head = (aws s3 head {url}); \
         aws s3 rm {url} | ignore; \
         {{opened: $opened, size: ($head.size | into int), after: (aws s3 ls s3://{EU}/written/ | length)}} | to json --raw"
    );
    let out: serde_json::Value = serde_json::from_str(&ok(moto, &proxy, None, &script)).expect("json");
    assert_eq!(out["opened"], serde_json::json!({"a": 1, "where": "eu"}));
    assert!(out["size"].as_u64().is_some_and(|n| n > 0), "{out}");
    assert_eq!(out["after"], 0, "removed");
    assert_eq!(refusals(&proxy, EU), 1, "the save found the region; the rest went straight there");
}

#[test]
fn a_head_refused_with_no_body_is_routed_by_its_header() {
    // HeadObject from the wrong region: 301 with x-amz-bucket-region and no body at all.
    let moto = seeded();
    let proxy = regional_proxy(moto);
    let size = ok(moto, &proxy, None, &format!("aws s3 head s3://{AP}/data/p001/sub1/obj-000001.txt | get size | into int"));
    assert_eq!(size, "1");
    let log = proxy.log();
    let refused: Vec<_> = log.iter().filter(|r| r.status == Some(301)).collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].method, "HEAD");
}

#[test]
fn copies_go_to_the_destination_buckets_region() {
    let moto = seeded();
    let proxy = regional_proxy(moto);
    let script = format!(
        "aws s3 cp s3://{EU}/data/p002/sub2/obj-000002.txt s3://{AP}/copied/ --force | ignore; \
         aws s3 open s3://{AP}/copied/obj-000002.txt --raw | bytes length"
    );
    assert_eq!(ok(moto, &proxy, None, &script), "2");
    assert!(refusals(&proxy, AP) <= 1, "{:?}", proxy.log());
    assert!(refusals(&proxy, EU) <= 1);
}

#[test]
fn a_bulk_head_of_300_keys_in_another_region_is_refused_at_most_once() {
    let moto = seeded();
    let proxy = regional_proxy(moto);
    // Named directly: no listing has taught the shell where the bucket is.
    let script = format!(
        "0..299 | each {{|i| $'s3://{AP}/data/p($i mod 3 | fill -a r -c 0 -w 3)/sub($i mod 7)/obj-($i | fill -a r -c 0 -w 6).txt' }} \
         | aws s3 head | where error != null | length"
    );
    assert_eq!(ok(moto, &proxy, None, &script), "0");
    assert!(refusals(&proxy, AP) <= 1, "{} refusals", refusals(&proxy, AP));
    let heads = proxy.log().iter().filter(|r| r.method == "HEAD" && r.status == Some(200)).count();
    assert!(heads >= 300, "{heads}");
}

#[test]
fn a_warm_disk_cache_needs_no_redirect_in_a_new_process() {
    let moto = seeded();
    let proxy = regional_proxy(moto);
    let dir = cache_dir(moto, "warm");
    let head = format!("aws s3 head s3://{EU}/data/p000/sub0/obj-000000.txt --no-cache | get name");
    ok(moto, &proxy, Some(&dir), &head);
    assert_eq!(refusals(&proxy, EU), 1);
    proxy.reset_stats();
    ok(moto, &proxy, Some(&dir), &head);
    ok(moto, &proxy, Some(&dir), &format!("aws s3 ls s3://{EU}/data/ --no-cache | length"));
    assert_eq!(refusals(&proxy, EU), 0, "the second process knew the region: {:?}", proxy.log());
}

#[test]
fn a_listing_is_cached_under_the_region_its_data_came_from() {
    let moto = seeded();
    let proxy = regional_proxy(moto);
    let dir = cache_dir(moto, "keys");
    ok(moto, &proxy, Some(&dir), &format!("aws s3 ls s3://{EU}/data/ | length"));
    let keys = ok(moto, &proxy, Some(&dir), "aws cache ls | get key | to json --raw");
    let keys: Vec<String> = serde_json::from_str(&keys).expect("keys");
    let listing: Vec<&String> = keys.iter().filter(|k| k.contains("/ListObjectsV2/")).collect();
    assert_eq!(listing.len(), 1, "{keys:?}");
    assert!(listing[0].contains("/eu-west-1/s3/"), "keyed by the bucket's region: {keys:?}");
    assert!(!keys.iter().any(|k| k.contains("/us-east-1/s3/ListObjectsV2/")), "{keys:?}");
    // And a second listing is a cache hit: no request at all.
    proxy.reset_stats();
    ok(moto, &proxy, Some(&dir), &format!("aws s3 ls s3://{EU}/data/ | length"));
    assert!(!proxy.log().iter().any(|r| r.path_and_query.contains("list-type=2")), "{:?}", proxy.log());
}

#[test]
fn the_global_endpoints_authorization_header_malformed_names_the_region() {
    let moto = seeded();
    let proxy = FaultProxy::start(&moto.endpoint, world().with_global_s3_endpoint()).expect("proxy");
    assert_eq!(ok(moto, &proxy, None, &format!("aws s3 ls s3://{EU}/data/ | length")), "3");
    let refused: Vec<_> = proxy.log().into_iter().filter(|r| r.status == Some(400)).collect();
    assert_eq!(refused.len(), 1, "one AuthorizationHeaderMalformed, then the right region");
}

#[test]
fn an_opt_in_region_refusal_without_a_region_is_located_by_head_bucket() {
    let moto = seeded();
    let proxy = regional_proxy(moto);
    assert_eq!(ok(moto, &proxy, None, &format!("aws s3 ls s3://{ME} -R | length")), "20");
    let log = proxy.log();
    let statuses: Vec<(String, Option<u16>)> = log
        .iter()
        .filter(|r| r.path_and_query.starts_with("/me-data"))
        .map(|r| (r.method.clone(), r.status))
        .collect();
    // IllegalLocationConstraintException (400, no region), HeadBucket's 301 names it, then the listing.
    assert_eq!(statuses, [("GET".into(), Some(400)), ("HEAD".into(), Some(301)), ("GET".into(), Some(200))], "{statuses:?}");
}

#[test]
fn a_redirect_loop_is_an_error_naming_the_bucket_and_both_regions() {
    let moto = seeded();
    let proxy = FaultProxy::start(&moto.endpoint, world().with_redirect_loop(EU)).expect("proxy");
    let started = std::time::Instant::now();
    let err = failed(moto, &proxy, &format!("aws s3 ls s3://{EU}/data/"));
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "it stopped");
    assert!(err.contains("eu-data") && err.contains("us-east-1") && err.contains("us-west-2"), "{err}");
    assert!(err.contains("RedirectLoop"), "{err}");
    assert!(refusals(&proxy, EU) <= 2, "{:?}", proxy.log());
}

#[test]
fn a_redirect_to_a_region_the_credentials_cannot_reach_names_the_bucket_and_both_regions() {
    let moto = seeded();
    let proxy = FaultProxy::start(&moto.endpoint, world().with_disabled_region("eu-west-1")).expect("proxy");
    let err = failed(moto, &proxy, &format!("aws s3 ls s3://{EU}/data/"));
    assert!(err.contains("InvalidAccessKeyId"), "{err}");
    assert!(err.contains("bucket `eu-data` is in eu-west-1 (S3 sent the request there from us-east-1)"), "{err}");
}

#[test]
fn buckets_show_their_region_from_list_buckets_or_looked_up() {
    let moto = seeded();
    for listed in [true, false] {
        let proxy = FaultProxy::start(&moto.endpoint, world().with_list_bucket_regions(listed)).expect("proxy");
        let rows = json(moto, &proxy, "aws s3 buckets | select name region");
        let region = |name: &str| {
            rows.as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
                .map(|r| r["region"].clone())
                .unwrap_or_else(|| panic!("no {name} in {rows}"))
        };
        assert_eq!(region(EU), "eu-west-1", "listed: {listed}");
        assert_eq!(region(AP), "ap-southeast-2");
        assert_eq!(region(ME), "me-south-1");
        let null_regions = rows.as_array().unwrap().iter().filter(|r| r["region"].is_null()).count();
        assert_eq!(null_regions, 0, "{rows}");
        // What the listing said is what routing uses: no refusal on the next touch.
        if listed {
            let script = format!("aws s3 buckets | ignore; aws s3 ls s3://{EU}/data/ | length");
            assert_eq!(ok(moto, &proxy, None, &script), "3");
            assert_eq!(refusals(&proxy, EU), 0, "{:?}", proxy.log());
        }
    }
}

#[test]
fn tag_correlation_reads_buckets_in_their_regions() {
    let moto = seeded();
    let proxy = regional_proxy(moto);
    // No bucket carries the key (each answers NoSuchTagSet): an empty table, no failure.
    assert_eq!(ok(moto, &proxy, None, "aws tags correlate Team | length"), "0");
    for bucket in [EU, AP, ME] {
        let tagging: Vec<Option<u16>> = proxy
            .log()
            .iter()
            .filter(|r| r.path_and_query.starts_with(&format!("/{bucket}/?tagging")))
            .map(|r| r.status)
            .collect();
        assert_eq!(tagging, [Some(404)], "{bucket}: asked once, in its own region (known from the bucket listing)");
    }
}
