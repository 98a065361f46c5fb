//! End-to-end tests of the bulk commands on the request engine: the real `nuaws` binary against a
//! real moto server on loopback (and, for faults and latency, the fault-injecting proxy in front
//! of it). Request counts are measured at the server.

#[path = "support/moto.rs"]
mod moto;

use std::path::Path;
use std::process::Output;

use moto::{Moto, seed_once};

fn nuaws_in(moto: &Moto, endpoint: &str, cwd: &Path, script: &str) -> Output {
    moto.nuaws_at(env!("CARGO_BIN_EXE_nuaws"), endpoint, cwd, script)
}

fn ok_in(moto: &Moto, endpoint: &str, cwd: &Path, script: &str) -> String {
    let out = nuaws_in(moto, endpoint, cwd, script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "`{script}` failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ok(moto: &Moto, script: &str) -> String {
    ok_in(moto, &moto.endpoint, &moto.dir.join("cwd"), script)
}

fn json(moto: &Moto, script: &str) -> serde_json::Value {
    let text = ok(moto, &format!("{script} | to json --raw"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("`{script}` gave no JSON ({e}): {text}"))
}

const BUCKET: &str = "bulk";
const OBJECTS: usize = 300;

/// `bulk` holds 300 objects: data/p000/sub{i%7}/obj-{i:06}.txt, i bytes mod 1000.
fn bulk_bucket(moto: &Moto) {
    seed_once("bulk", || {
        moto.harness("seed-s3", &["--bucket", BUCKET, "--objects", &OBJECTS.to_string(), "--prefixes", "1"]);
    });
}

fn key(i: usize) -> String {
    format!("s3://{BUCKET}/data/p000/sub{}/obj-{i:06}.txt", i % 7)
}

#[test]
fn head_of_a_listing_answers_every_object_once() {
    let moto = Moto::shared();
    bulk_bucket(moto);
    let rows = json(moto, &format!("aws s3 ls s3://{BUCKET} -R | aws s3 head | select name size error"));
    let rows = rows.as_array().expect("a table");
    assert_eq!(rows.len(), OBJECTS);
    let mut names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), OBJECTS, "every object exactly once");
    for row in rows {
        assert!(row["error"].is_null(), "{row}");
        let name = row["name"].as_str().unwrap();
        let i: usize = name[name.len() - 10..name.len() - 4].parse().unwrap();
        assert_eq!(row["size"].as_u64(), Some((i % 1000) as u64), "{name}");
    }
}

#[test]
fn a_failed_item_is_a_row_naming_it_and_the_others_still_come() {
    let moto = Moto::shared();
    bulk_bucket(moto);
    let script = format!(
        "[{} s3://{BUCKET}/missing-1 {} s3://{BUCKET}/missing-2 s3://BAD_bucket/x] | aws s3 head --ordered | select name error",
        key(1),
        key(2)
    );
    let rows = json(moto, &script);
    let rows = rows.as_array().expect("a table");
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, [key(1).as_str(), &format!("s3://{BUCKET}/missing-1"), key(2).as_str(), &format!("s3://{BUCKET}/missing-2"), "s3://BAD_bucket/x"]);
    let errors: Vec<Option<&str>> = rows.iter().map(|r| r["error"].as_str()).collect();
    assert!(errors[0].is_none() && errors[2].is_none(), "{errors:?}");
    for e in [errors[1], errors[3]] {
        let e = e.expect("an error for a missing key");
        assert!(e.contains("NotFound") || e.contains("not found") || e.contains("NoSuchKey"), "{e}");
    }
    assert!(errors[4].is_some_and(|e| e.to_lowercase().contains("bucket")), "{errors:?}");
}

#[test]
fn fail_fast_makes_the_first_failure_the_command_error() {
    let moto = Moto::shared();
    bulk_bucket(moto);
    // As with `each`, the error is a value of the stream: it fails whatever uses the values.
    let script = format!("[{} s3://{BUCKET}/missing-ff {}] | aws s3 head --fail-fast --ordered | to json", key(3), key(4));
    let out = nuaws_in(moto, &moto.endpoint, &moto.dir.join("cwd"), &script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "fail-fast must fail: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("missing-ff"), "the error names the item: {stderr}");
}

#[test]
fn identical_concurrent_heads_reach_the_server_once() {
    let moto = Moto::shared();
    // A bucket of its own: other tests of this binary head the shared one at the same time.
    moto.harness("seed-s3", &["--bucket", "bulk-dedup", "--objects", "1", "--prefixes", "1"]);
    let target = "s3://bulk-dedup/data/p000/sub0/obj-000000.txt";
    let needle = "bulk-dedup/";
    let before = moto.requests("HeadObject", needle);
    let out = ok(moto, &format!("1..50 | each {{ '{target}' }} | aws s3 head | where error == null | length"));
    assert_eq!(out, "50", "every caller gets the answer");
    assert_eq!(moto.requests("HeadObject", needle) - before, 1, "50 identical heads, one request");

    // With no reuse window, requests made one after the other each go to the server.
    let before = moto.requests("HeadObject", needle);
    ok(moto, &format!("1..3 | each {{ '{target}' }} | aws s3 head --concurrency 1 --dedup-window 0sec | length"));
    assert_eq!(moto.requests("HeadObject", needle) - before, 3);
}

#[test]
fn ordered_output_follows_the_input() {
    let moto = Moto::shared();
    bulk_bucket(moto);
    let wanted: Vec<String> = (0..120).rev().map(key).collect();
    let list = wanted.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(" ");
    let rows = json(moto, &format!("[{list}] | aws s3 head --ordered | get name"));
    let got: Vec<&str> = rows.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(got, wanted.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn bad_engine_settings_point_at_their_flag() {
    let moto = Moto::shared();
    let out = nuaws_in(moto, &moto.endpoint, &moto.dir.join("cwd"), &format!("[{}] | aws s3 head --max-concurrency 0", key(1)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--max-concurrency must be between 1 and 4096"), "{stderr}");
    let out = nuaws_in(moto, &moto.endpoint, &moto.dir.join("cwd"), &format!("$env.NUAWS_ENGINE = {{max_concurency: 4}}; [{}] | aws s3 head", key(1)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no setting `max_concurency`"), "{stderr}");
    let out = nuaws_in(moto, &moto.endpoint, &moto.dir.join("cwd"), &format!("[{}] | aws s3 head --min-concurrency 9 --max-concurrency 4", key(1)));
    assert!(String::from_utf8_lossy(&out.stderr).contains("above the maximum"));
}

fn empty_bucket(moto: &Moto, bucket: &str) {
    moto.harness("seed-s3", &["--bucket", bucket, "--objects", "0"]);
}

#[test]
fn open_reads_many_objects_and_decodes_each() {
    let moto = Moto::shared();
    empty_bucket(moto, "bulk-open");
    ok(moto, "0..19 | each {|i| {n: $i} | to json | aws s3 save $'s3://bulk-open/r/($i).json' } | ignore");
    let sum = ok(moto, "aws s3 ls s3://bulk-open/r/ | aws s3 open | get content.n | math sum");
    assert_eq!(sum, "190", "20 JSON objects decoded into records");
    let rows = json(moto, "['s3://bulk-open/r/3.json' 's3://bulk-open/r/none.json'] | aws s3 open --ordered | select name error");
    assert!(rows[0]["error"].is_null(), "{rows}");
    assert_eq!(rows[1]["name"], "s3://bulk-open/r/none.json");
    assert!(rows[1]["error"].as_str().is_some_and(|e| !e.is_empty()), "{rows}");
    let raw = ok(moto, "['s3://bulk-open/r/7.json'] | aws s3 open --raw | get content.0 | decode");
    assert_eq!(raw.replace(char::is_whitespace, ""), r#"{"n":7}"#);
}

#[test]
fn rm_deletes_a_stream_of_keys_and_reports_each() {
    let moto = Moto::shared();
    moto.harness("seed-s3", &["--bucket", "bulk-rm", "--objects", "2500", "--prefixes", "2"]);
    let deleted = ok(
        moto,
        "aws s3 ls s3://bulk-rm -R | where name =~ 'p000' | aws s3 rm --max-concurrency 4 | where deleted | length",
    );
    assert_eq!(deleted, "1250");
    assert_eq!(ok(moto, "aws s3 ls s3://bulk-rm -R | length"), "1250");
    assert_eq!(ok(moto, "aws s3 ls s3://bulk-rm -R | where name =~ 'p000' | length"), "0");
    // 1250 keys of one bucket: two DeleteObjects requests.
    assert_eq!(moto.requests("DeleteObjects", "bulk-rm"), 2);
}

#[test]
fn a_refused_delete_request_leaves_every_key_of_its_batch_a_row_saying_so() {
    let moto = Moto::shared();
    let bucket = "bulk-rm-denied";
    moto.harness("seed-s3", &["--bucket", bucket, "--objects", "30", "--prefixes", "1"]);
    // DeleteObjects is `POST /bucket?delete`: the proxy denies each one (as a bucket policy
    // denying s3:DeleteObject does: 403 AccessDenied for the whole request); listing still works.
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::fail_matching("?delete", 403)).expect("proxy");
    let rows = run_json(moto, &proxy.endpoint(), &format!("aws s3 rm s3://{bucket}/data/ --recursive | to json --raw"));
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 30, "one row per key");
    let mut names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 30, "each key named once");
    assert!(names.iter().all(|n| n.starts_with(&format!("s3://{bucket}/data/"))), "{names:?}");
    for row in rows {
        assert_eq!(row["deleted"], false, "{row}");
        assert!(row["error"].as_str().is_some_and(|e| e.contains("AccessDenied")), "{row}");
    }
    // With --fail-fast the refusal is the command's error.
    let out = nuaws_in(moto, &proxy.endpoint(), &moto.dir.join("cwd"), &format!("aws s3 rm s3://{bucket}/data/ --recursive --fail-fast | to json"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AccessDenied") && stderr.contains(&format!("s3://{bucket}/data/")), "{stderr}");
    assert_eq!(ok(moto, &format!("aws s3 ls s3://{bucket} -R --no-cache | length")), "30", "nothing was deleted");
}

#[test]
fn a_failed_multipart_save_or_upload_is_aborted_leaving_no_parts_to_bill() {
    let moto = Moto::shared();
    let bucket = "bulk-multipart-abort";
    empty_bucket(moto, bucket);
    let work = moto.dir.join("multipart-abort");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("big.bin"), vec![7u8; 20 * 1024 * 1024]).unwrap();
    // One made whole beforehand: the failures must leave it be.
    ok_in(moto, &moto.endpoint, &work, &format!("open --raw big.bin | aws s3 save s3://{bucket}/source.bin"));
    // 20 MiB go in three parts of 8 MiB; the proxy refuses every second part (UploadPart names
    // it `partNumber=2`), as S3 refuses a part whose request its policy denies.
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::fail_matching("partNumber=2", 403)).expect("proxy");
    let failed = |script: String| {
        let out = nuaws_in(moto, &proxy.endpoint(), &work, &script);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        // The proxy answers before it reads the part, as S3 may: the client sees the 403 or,
        // still sending, a broken pipe. Either way the transfer fails.
        assert!(!out.status.success() && stderr.contains("UploadPart"), "{script}: {stderr}");
    };
    failed(format!("open --raw big.bin | aws s3 save s3://{bucket}/saved.bin"));
    failed(format!("aws s3 cp big.bin s3://{bucket}/uploaded.bin --fail-fast | to json"));
    // The setup's upload completed; every other one started (the engine may retry an item, so
    // `cp` may start more than one) was aborted.
    let (created, aborted) = (moto.requests("CreateMultipartUpload", bucket), moto.requests("AbortMultipartUpload", bucket));
    assert!(created >= 3, "{created} multipart uploads");
    assert_eq!(aborted, created - 1, "each failed one aborted");
    let left = ok(moto, &format!("aws s3 du s3://{bucket} --uploads | where version == 'incomplete upload' | length"));
    assert_eq!(left, "0", "no incomplete upload left to bill");
    let names = ok(moto, &format!("aws s3 ls s3://{bucket} --no-cache | get name | str join ' '"));
    assert_eq!(names, format!("s3://{bucket}/source.bin"), "nothing half-written");
}

/// Amazon S3 copies at most 5 GiB in one CopyObject: a larger source is refused with `400
/// InvalidRequest` ("...maximum allowable size for a copy source: 5368709120", AWS's CopyObject
/// documentation; rclone#2375 and terraform-provider-aws#38102 hit it) and has to be copied in
/// parts (UploadPartCopy). moto copies any size, so the proxy plays S3's refusal with a 6 MiB
/// limit (`copy_source_limit`), and a 20 MiB object stands for one over 5 GiB.
#[test]
fn a_copy_too_large_for_one_request_is_made_in_parts_keeping_metadata_and_tags() {
    let moto = Moto::shared();
    let bucket = "bulk-big-copy";
    empty_bucket(moto, bucket);
    let size = 20 * 1024 * 1024 + 123;
    let spec = serde_json::json!([{
        "key": "src/over-limit.bin", "size": size, "body": "pattern", "content_type": "application/x-test",
        "metadata": {"team": "data"}, "tags": {"owner": "ops team", "tier": "a=b+c/d"},
    }]);
    moto.harness("put-objects", &["--bucket", bucket, "--objects", &spec.to_string()]);
    let limit = 6 * 1024 * 1024;
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::default().with_copy_source_limit(limit)).expect("proxy");
    let work = moto.dir.join("big-copy");
    std::fs::create_dir_all(&work).unwrap();
    let via_proxy = |script: &str| -> Vec<serde_json::Value> {
        let text = ok_in(moto, &proxy.endpoint(), &work, &format!("{script} | to json --raw"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("`{script}` gave no JSON ({e}): {text}"))
    };
    let part_copies = |log: &[nuaws_test_servers::LoggedRequest]| -> Vec<Option<u16>> {
        log.iter().filter(|r| r.method == "PUT" && r.path_and_query.contains("partNumber=")).map(|r| r.status).collect()
    };

    let copied = via_proxy(&format!("aws s3 cp s3://{bucket}/src/over-limit.bin s3://{bucket}/copy/over-limit.bin"));
    assert!(copied.len() == 1 && copied[0]["error"].is_null(), "{copied:?}");
    assert_eq!(copied[0]["size"], size, "{copied:?}");
    assert_eq!(proxy.stats().copy_refusals, 1, "the one CopyObject was refused");
    // 20 MiB in parts of at most 6 MiB: four, each within the limit (none refused).
    assert_eq!(part_copies(&proxy.log()), [Some(200); 4]);

    // `sync` copies the same way.
    proxy.reset_stats();
    let synced = via_proxy(&format!("aws s3 sync s3://{bucket}/src/ s3://{bucket}/synced/"));
    assert!(synced.len() == 1 && synced[0]["error"].is_null() && synced[0]["action"] == "copy", "{synced:?}");
    assert_eq!((proxy.stats().copy_refusals, part_copies(&proxy.log()).len()), (1, 4));
    // Replaced only with --force.
    let refused = via_proxy(&format!("aws s3 cp s3://{bucket}/src/over-limit.bin s3://{bucket}/copy/over-limit.bin"));
    assert!(refused[0]["error"].as_str().is_some_and(|e| e.contains("already exists")), "{refused:?}");
    let forced = via_proxy(&format!("aws s3 cp --force s3://{bucket}/src/over-limit.bin s3://{bucket}/copy/over-limit.bin"));
    assert!(forced[0]["error"].is_null(), "{forced:?}");

    // The bytes, and what CopyObject would have carried over: content type, metadata, tags.
    let source = std::fs::read(fetch(moto, &work, &format!("s3://{bucket}/src/over-limit.bin"), "source.bin")).unwrap();
    assert_eq!(source.len(), size);
    for copy in ["copy", "synced"] {
        let bytes = std::fs::read(fetch(moto, &work, &format!("s3://{bucket}/{copy}/over-limit.bin"), &format!("{copy}.bin"))).unwrap();
        assert!(bytes == source, "{copy}/over-limit.bin differs from its source");
    }
    let details = moto.harness("list-s3", &["--bucket", bucket, "--details"]);
    let details = details.as_array().unwrap();
    assert_eq!(details.len(), 3, "{details:?}");
    for object in details {
        assert_eq!(object["content_type"], "application/x-test", "{object}");
        assert_eq!(object["metadata"], serde_json::json!({"team": "data"}), "{object}");
        assert_eq!(object["tags"], serde_json::json!({"owner": "ops team", "tier": "a=b+c/d"}), "{object}");
    }

    // A part refused (as S3 refuses one its policy denies): the copy fails, and its upload is
    // aborted so no parts are left to be billed for.
    proxy.set_config(FaultConfig::fail_matching("partNumber=3", 403).with_copy_source_limit(limit)).unwrap();
    let failed = via_proxy(&format!("aws s3 cp s3://{bucket}/src/over-limit.bin s3://{bucket}/copy/failed.bin"));
    let error = failed[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("AccessDenied"), "{failed:?}");
    let left = ok(moto, &format!("aws s3 du s3://{bucket} --uploads | where version == 'incomplete upload' | length"));
    assert_eq!(left, "0", "no incomplete upload left to bill");
    let names = ok(moto, &format!("aws s3 ls s3://{bucket}/copy/ --no-cache | get name | str join ' '"));
    assert_eq!(names, format!("s3://{bucket}/copy/over-limit.bin"), "nothing half-copied");

    // An endpoint whose limit is below S3's smallest part (5 MiB) leaves no way: an error that
    // says why. A copy refused for another reason fails with that reason, and a source that is
    // not there is named.
    let error_of = |script: String| -> String {
        let rows = via_proxy(&script);
        rows[0]["error"].as_str().unwrap_or_else(|| panic!("{script}: {rows:?}")).to_string()
    };
    proxy.set_config(FaultConfig::default().with_copy_source_limit(4 * 1024 * 1024)).unwrap();
    let error = error_of(format!("aws s3 cp s3://{bucket}/src/over-limit.bin s3://{bucket}/copy/no-way.bin"));
    assert!(error.contains("at most 4194304 bytes in one request") && error.contains("5242880 bytes or more"), "{error}");
    proxy.set_config(FaultConfig::fail_matching("x-id=CopyObject", 403)).unwrap();
    let error = error_of(format!("aws s3 cp s3://{bucket}/src/over-limit.bin s3://{bucket}/copy/denied.bin"));
    assert!(error.contains("AccessDenied"), "{error}");
    let error = error_of(format!("aws s3 cp s3://{bucket}/src/none.bin s3://{bucket}/copy/none.bin"));
    assert!(error.contains(&format!("s3://{bucket}/src/none.bin: no such object")), "{error}");
    let names = ok(moto, &format!("aws s3 ls s3://{bucket}/copy/ --no-cache | get name | str join ' '"));
    assert_eq!(names, format!("s3://{bucket}/copy/over-limit.bin"), "nothing copied by the failures");
}

/// Downloads `url` into `cwd/name` (straight from moto) and says where.
fn fetch(moto: &Moto, cwd: &Path, url: &str, name: &str) -> std::path::PathBuf {
    ok_in(moto, &moto.endpoint, cwd, &format!("aws s3 cp --force {url} {name} | ignore"));
    cwd.join(name)
}

#[test]
fn cp_round_trips_a_directory_with_a_multipart_file() {
    let moto = Moto::shared();
    empty_bucket(moto, "bulk-cp");
    let work = moto.dir.join("cp-work");
    let src = work.join("src");
    std::fs::create_dir_all(src.join("nested/deeper")).unwrap();
    let big: Vec<u8> = (0..(20 * 1024 * 1024 + 123)).map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    for i in 0..40 {
        std::fs::write(src.join(format!("nested/f{i}.txt")), format!("file {i}\n")).unwrap();
    }
    std::fs::write(src.join("nested/deeper/data.json"), r#"{"a": 1}"#).unwrap();
    let up = json_in(moto, &work, "aws s3 cp -R src s3://bulk-cp/up/ | select source destination size error");
    let up = up.as_array().unwrap();
    assert_eq!(up.len(), 42);
    assert!(up.iter().all(|r| r["error"].is_null()), "{up:?}");
    assert!(up.iter().any(|r| r["destination"] == "s3://bulk-cp/up/nested/deeper/data.json"));
    assert_eq!(moto.requests("CreateMultipartUpload", "big.bin"), 1, "the 20 MiB file went up in parts");
    let head = json_in(moto, &work, "aws s3 head s3://bulk-cp/up/nested/deeper/data.json | select size content_type");
    assert_eq!(head["size"], 8);
    assert_eq!(head["content_type"], "application/json");

    // Uploading again without --force replaces nothing.
    let again = json_in(moto, &work, "aws s3 cp -R src s3://bulk-cp/up/ | where error != null | length");
    assert_eq!(again, 42);

    let down = json_in(moto, &work, "aws s3 cp -R s3://bulk-cp/up/ back | where error == null | length");
    assert_eq!(down, 42);
    assert_eq!(std::fs::read(work.join("back/big.bin")).unwrap(), big);
    assert_eq!(std::fs::read_to_string(work.join("back/nested/f7.txt")).unwrap(), "file 7\n");
    let leftovers: Vec<_> = walk(&work.join("back")).into_iter().filter(|p| p.to_string_lossy().contains("nuaws-partial")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A local file is never replaced without --force; with it, it is.
    std::fs::write(work.join("back/nested/f1.txt"), "mine").unwrap();
    let refused = json_in(moto, &work, "aws s3 cp s3://bulk-cp/up/nested/f1.txt back/nested/f1.txt");
    assert!(refused[0]["error"].as_str().is_some_and(|e| e.contains("already exists")), "{refused}");
    assert_eq!(std::fs::read_to_string(work.join("back/nested/f1.txt")).unwrap(), "mine");
    ok_in(moto, &moto.endpoint, &work, "aws s3 cp --force s3://bulk-cp/up/nested/f1.txt back/nested/");
    assert_eq!(std::fs::read_to_string(work.join("back/nested/f1.txt")).unwrap(), "file 1\n");

    // Within S3.
    let copied = json_in(moto, &work, "aws s3 cp -R s3://bulk-cp/up/nested/ s3://bulk-cp/copy/ | where error == null | length");
    assert_eq!(copied, 41);
    let again = json_in(moto, &work, "aws s3 cp -R s3://bulk-cp/up/nested/ s3://bulk-cp/copy/ | where error =~ 'already exists' | length");
    assert_eq!(again, 41, "no object is replaced without --force");
    let forced = json_in(moto, &work, "aws s3 cp -R --force s3://bulk-cp/up/nested/ s3://bulk-cp/copy/ | where error == null | length");
    assert_eq!(forced, 41);
    assert_eq!(ok_in(moto, &moto.endpoint, &work, "aws s3 open s3://bulk-cp/copy/deeper/data.json | get a"), "1");
}

#[test]
fn cp_input_errors_point_at_the_argument() {
    let moto = Moto::shared();
    let work = moto.dir.join("cp-errors");
    std::fs::create_dir_all(work.join("adir")).unwrap();
    let out = nuaws_in(moto, &moto.endpoint, &work, "aws s3 cp adir s3://bulk-cp/x/");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("directory needs --recursive"), "{stderr}");
    let out = nuaws_in(moto, &moto.endpoint, &work, "aws s3 cp a.txt b.txt");
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither side is an s3:// URL"));
    let out = nuaws_in(moto, &moto.endpoint, &work, "aws s3 cp nope.txt s3://bulk-cp/x/");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cannot read the source"));
}

fn json_in(moto: &Moto, cwd: &Path, script: &str) -> serde_json::Value {
    let text = ok_in(moto, &moto.endpoint, cwd, &format!("{script} | to json --raw"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("`{script}` gave no JSON ({e}): {text}"))
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Through the fault-injecting proxy.
// ---------------------------------------------------------------------------------------------

use std::time::{Duration, Instant};

use nuaws_test_servers::{FaultConfig, FaultProxy};

const FAULTS_BUCKET: &str = "faults";
const FAULTS_OBJECTS: usize = 500;

fn faults_bucket(moto: &Moto) {
    seed_once("faults", || {
        moto.harness("seed-s3", &["--bucket", FAULTS_BUCKET, "--objects", &FAULTS_OBJECTS.to_string(), "--prefixes", "1"]);
    });
}

/// Nushell that heads every object of the faults bucket; the listing itself goes around the
/// proxy (straight to moto), so only the heads meet the faults.
fn head_all(moto: &Moto, flags: &str) -> String {
    format!(
        "let keys = (aws s3 ls s3://{FAULTS_BUCKET} -R --endpoint-url {} | get name); \
         let rows = ($keys | aws s3 head {flags}); \
         {{rows: ($rows | select name error), engine: (aws engine | where service == s3 and endpoint != '{}' | first)}} | to json --raw",
        moto.endpoint, moto.endpoint
    )
}

fn run_json(moto: &Moto, endpoint: &str, script: &str) -> serde_json::Value {
    let text = ok_in(moto, endpoint, &moto.dir.join("cwd"), script);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("no JSON ({e}): {text}"))
}

/// Every key answered exactly once, without error.
fn assert_all_answered(result: &serde_json::Value) {
    let rows = result["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), FAULTS_OBJECTS, "one row per item");
    let failed: Vec<_> = rows.iter().filter(|r| !r["error"].is_null()).collect();
    assert!(failed.is_empty(), "{} failed, e.g. {:?}", failed.len(), failed.first());
    let mut names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), FAULTS_OBJECTS, "none lost, none duplicated");
}

#[test]
fn under_a_throttling_bucket_the_limiter_settles_below_its_rate_and_loses_nothing() {
    let moto = Moto::shared();
    faults_bucket(moto);
    // 80 requests/s behind 20 ms of latency: about 1.6 requests in flight is all it allows, and
    // the engine starts at 8.
    let rate = 80.0;
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::latency(Duration::from_millis(20)).with_throttle(rate, 5)).expect("proxy");
    let result = run_json(moto, &proxy.endpoint(), &head_all(moto, "--dedup-window 0sec"));
    assert_all_answered(&result);
    let stats = proxy.stats();
    assert!(stats.throttled > 0, "the bucket did throttle: {stats:?}");
    let engine = &result["engine"];
    assert!(engine["limit_cuts"].as_u64().unwrap() > 0, "{engine}");
    // Settled: in the second half of the job, throttles are the exception.
    let mut log = proxy.log();
    log.sort_by_key(|r| r.received);
    let second_half = &log[log.len() / 2..];
    let throttled = second_half.iter().filter(|r| r.status == Some(503)).count();
    assert!(throttled * 4 < second_half.len(), "{throttled} of the last {} requests throttled", second_half.len());
    // And what the final limit lets through at the floor latency is near the bucket's rate, not
    // above it by more than the additive increase's probing.
    let floor_s = engine["floor"].as_i64().unwrap() as f64 / 1e9;
    let final_limit = engine["final_limit"].as_f64().unwrap();
    assert!(final_limit / floor_s <= rate * 3.0, "final limit {final_limit} at floor {floor_s}s vs {rate}/s");
}

#[test]
fn transient_503s_and_connection_resets_are_retried() {
    let moto = Moto::shared();
    faults_bucket(moto);
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::error_rate(0.2).with_reset_rate(0.1).with_seed(7)).expect("proxy");
    let result = run_json(moto, &proxy.endpoint(), &head_all(moto, "--dedup-window 0sec"));
    assert_all_answered(&result);
    let stats = proxy.stats();
    assert!(stats.injected_errors > 20 && stats.resets > 10, "{stats:?}");
    assert!(result["engine"]["retried"].as_u64().unwrap() >= stats.injected_errors, "{}", result["engine"]);
}

#[test]
fn a_stalled_body_is_abandoned_and_retried() {
    let moto = Moto::shared();
    empty_bucket(moto, "stalls");
    ok(moto, "0..29 | each {|i| {n: $i} | to json | aws s3 save $'s3://stalls/($i).json' } | ignore");
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::stall(0.3, None).with_seed(3)).expect("proxy");
    let script = format!(
        "aws s3 ls s3://stalls --endpoint-url {} | aws s3 open --attempt-timeout 1sec | get content.n | math sum",
        moto.endpoint
    );
    let started = Instant::now();
    let sum = ok_in(moto, &proxy.endpoint(), &moto.dir.join("cwd"), &script);
    assert_eq!(sum, "435", "every object read whole");
    assert!(proxy.stats().stalls > 0, "{:?}", proxy.stats());
    assert!(started.elapsed() < Duration::from_secs(60), "stalls were cut at the attempt timeout");
}

#[test]
fn resilient_mode_gives_one_error_row_per_failed_item_with_its_key() {
    let moto = Moto::shared();
    faults_bucket(moto);
    // Keys ending in 7.txt are denied by the proxy: 50 of the 500.
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::fail_matching("7.txt", 403)).expect("proxy");
    let result = run_json(moto, &proxy.endpoint(), &head_all(moto, ""));
    let rows = result["rows"].as_array().unwrap();
    assert_eq!(rows.len(), FAULTS_OBJECTS);
    let failed: Vec<&str> = rows.iter().filter(|r| !r["error"].is_null()).map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(failed.len(), 50);
    assert!(failed.iter().all(|name| name.ends_with("7.txt")), "{failed:?}");
}

#[test]
fn fail_fast_stops_at_the_first_failure_and_leaves_no_request_running() {
    let moto = Moto::shared();
    faults_bucket(moto);
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::latency(Duration::from_millis(400)).with_fail_matching("sub0/obj-000140.txt", 403)).expect("proxy");
    // In sorted order the failing key is the 21st. The shell stays up for a second after the failure, so a request still running (or one
    // started after the failure) would reach the proxy and finish there.
    let script = format!(
        "let keys = (aws s3 ls s3://{FAULTS_BUCKET} -R --endpoint-url {} | get name | sort); \
         let out = (try {{ $keys | aws s3 head --fail-fast --ordered --concurrency 16 | to json | ignore; 'completed' }} catch {{|e| $e.msg }}); \
         sleep 1sec; $out",
        moto.endpoint
    );
    let out = ok_in(moto, &proxy.endpoint(), &moto.dir.join("cwd"), &script);
    assert_ne!(out, "completed");
    let log = proxy.log();
    let failure = log.iter().find(|r| r.path_and_query.contains("obj-000140.txt")).expect("the failing request reached the proxy");
    let failed_at = failure.finished;
    let later: Vec<_> = log.iter().filter(|r| r.received > failed_at + Duration::from_millis(50)).collect();
    assert!(later.is_empty(), "{} requests started after the failure", later.len());
    let completed_after: Vec<_> = log
        .iter()
        .filter(|r| r.status.is_some() && r.finished > failed_at + Duration::from_millis(200))
        .collect();
    assert!(completed_after.is_empty(), "{} requests ran on after the failure: {completed_after:?}", completed_after.len());
    // Requests go out in input order (the feeder takes each item's first slot), so the failing
    // key (the 21st) is sent among the first requests.
    let sent_before = log.iter().filter(|r| r.received < failure.received).count();
    let peak = proxy.stats().peak_in_flight;
    assert!(
        log.len() < FAULTS_OBJECTS / 4,
        "it stopped early: {} requests; {sent_before} reached the proxy before the failing one; at most {peak} at once",
        log.len()
    );
    assert_eq!(proxy.in_flight(), 0);
}

#[test]
fn a_write_ends_the_reuse_of_just_finished_answers() {
    let moto = Moto::shared();
    empty_bucket(moto, "dedup-write");
    // Within the 2 s window, in one shell: head, overwrite, head again.
    let sizes = ok(
        moto,
        "'one' | aws s3 save s3://dedup-write/k.txt; \
         let before = ([s3://dedup-write/k.txt] | aws s3 head | get 0.size | into int); \
         'three' | aws s3 save --force s3://dedup-write/k.txt; \
         let after = ([s3://dedup-write/k.txt] | aws s3 head | get 0.size | into int); \
         $'($before) ($after)'",
    );
    assert_eq!(sizes, "3 5");
}
