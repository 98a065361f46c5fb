//! End-to-end tests of `aws s3 sync`: the real `nuaws` binary against a real moto server on
//! loopback (and, for a failing upload, the fault-injecting proxy in front of it). Transfers are
//! counted at the server.

#[path = "support/moto.rs"]
mod moto;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use moto::Moto;
use nuaws_test_servers::{FaultConfig, FaultProxy};

fn nuaws_in(moto: &Moto, endpoint: &str, cwd: &Path, script: &str) -> Output {
    moto.nuaws_at(env!("CARGO_BIN_EXE_nuaws"), endpoint, cwd, script)
}

fn rows_via(moto: &Moto, endpoint: &str, script: &str) -> Vec<serde_json::Value> {
    moto.table_at(env!("CARGO_BIN_EXE_nuaws"), endpoint, script)
}

/// The script's output, which must succeed.
fn ok(moto: &Moto, script: &str) -> String {
    let out = nuaws_in(moto, &moto.endpoint, &moto.dir.join("cwd"), script);
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn rows(moto: &Moto, script: &str) -> Vec<serde_json::Value> {
    rows_via(moto, &moto.endpoint, script)
}

/// (action, key, reason) of each row, sorted by key.
fn plan(rows: &[serde_json::Value]) -> Vec<(String, String, String)> {
    let mut plan: Vec<_> = rows
        .iter()
        .map(|r| {
            let text = |c: &str| r[c].as_str().unwrap_or_default().to_string();
            (text("action"), text("key"), text("reason"))
        })
        .collect();
    plan.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    plan
}

fn no_errors(rows: &[serde_json::Value]) {
    let failed: Vec<_> = rows.iter().filter(|r| !r["error"].is_null()).collect();
    assert!(failed.is_empty(), "failed rows: {failed:?}");
}

fn write(root: &Path, key: &str, body: &str) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

fn set_mtime(path: &Path, time: SystemTime) {
    std::fs::File::options().write(true).open(path).unwrap().set_modified(time).unwrap();
}

fn keys_in(moto: &Moto, bucket: &str, prefix: &str) -> Vec<String> {
    let listed = moto.harness("list-s3", &["--bucket", bucket, "--prefix", prefix]);
    listed.as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap().to_string()).collect()
}

const TRICKY: [&str; 10] = [
    "a b.txt",
    "ü/naïve.txt",
    "plus+sign.txt",
    "per%cent 20.txt",
    "a-b",
    "a/b",
    "a0",
    "nested/deep/er/x.json",
    "empty",
    "日本/語.md",
];

#[test]
fn tricky_names_round_trip_identically_and_a_second_sync_transfers_nothing() {
    let moto = Moto::shared();
    let bucket = "sync-rt";
    moto.harness("put-objects", &["--bucket", bucket, "--objects", "[]"]);
    let src = moto.dir.join("rt-src");
    for key in TRICKY {
        write(&src, key, if key == "empty" { "" } else { key });
    }
    let needle = format!("/{bucket}/");

    // Up: every file is new; again: nothing is sent.
    let up = rows(moto, &format!("aws s3 sync '{}' s3://{bucket}/up", src.display()));
    no_errors(&up);
    let mut wanted: Vec<_> = TRICKY.iter().map(|k| ("upload".to_string(), k.to_string(), "new".to_string())).collect();
    wanted.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(plan(&up), wanted);
    let puts = moto.requests("PutObject", &needle);
    let again = rows(moto, &format!("aws s3 sync '{}' s3://{bucket}/up/", src.display()));
    no_errors(&again);
    assert!(plan(&again).iter().all(|(a, _, r)| a == "skip" && r == "unchanged"), "{again:?}");
    assert_eq!(moto.requests("PutObject", &needle), puts, "a second upload sync sends nothing");

    // A directory marker and a key no file can have, beside the files.
    moto.harness("put-objects", &["--bucket", bucket, "--objects", r#"[{"key": "up/dir/", "size": 0}, {"key": "up/x//y", "size": 1}]"#]);

    // Down: identical tree; again: nothing is fetched.
    let dst = moto.dir.join("rt-dst");
    let down = rows(moto, &format!("aws s3 sync s3://{bucket}/up/ '{}'", dst.display()));
    no_errors(&down);
    let skipped: Vec<_> = plan(&down).into_iter().filter(|(a, _, _)| a == "skip").collect();
    assert_eq!(
        skipped,
        [
            ("skip".to_string(), "dir/".to_string(), "marker".to_string()),
            ("skip".into(), "x//y".into(), "not a local path: an empty segment (//)".into())
        ]
    );
    let diff = Command::new("diff").arg("-r").arg(&src).arg(&dst).output().expect("diff");
    assert!(diff.status.success(), "trees differ:\n{}", String::from_utf8_lossy(&diff.stdout));
    let gets = moto.requests("GetObject", &needle);
    let again = rows(moto, &format!("aws s3 sync s3://{bucket}/up/ '{}'", dst.display()));
    no_errors(&again);
    assert_eq!(moto.requests("GetObject", &needle), gets, "a second download sync fetches nothing: {again:?}");
    assert!(again.iter().all(|r| r["action"] == "skip"), "{again:?}");

    // S3 to S3: everything copied, markers and all; again: nothing.
    let copied = rows(moto, &format!("aws s3 sync s3://{bucket}/up/ s3://{bucket}/copy/"));
    no_errors(&copied);
    assert_eq!(copied.len(), TRICKY.len() + 2);
    assert!(copied.iter().all(|r| r["action"] == "copy"), "{copied:?}");
    let copies = moto.requests("CopyObject", &needle);
    let again = rows(moto, &format!("aws s3 sync s3://{bucket}/up/ s3://{bucket}/copy/"));
    assert!(again.iter().all(|r| r["action"] == "skip"), "{again:?}");
    assert_eq!(moto.requests("CopyObject", &needle), copies);
}

#[test]
fn a_same_size_edit_is_found_by_the_default_rule_and_by_checksum_but_not_by_size_only() {
    let moto = Moto::shared();
    let bucket = "sync-rules";
    moto.harness("put-objects", &["--bucket", bucket, "--objects", "[]"]);
    let src = moto.dir.join("rules-src");
    write(&src, "newer.txt", "aaaa");
    write(&src, "older.txt", "cccc");
    no_errors(&rows(moto, &format!("aws s3 sync '{}' s3://{bucket}/", src.display())));

    // Same sizes: one edited with a newer mtime, one with an mtime in the past.
    write(&src, "newer.txt", "bbbb");
    set_mtime(&src.join("newer.txt"), SystemTime::now() + Duration::from_secs(3600));
    write(&src, "older.txt", "dddd");
    set_mtime(&src.join("older.txt"), SystemTime::now() - Duration::from_secs(86_400));
    let sync = |flags: &str| plan(&rows(moto, &format!("aws s3 sync '{}' s3://{bucket}/ {flags}", src.display())));
    let row = |a: &str, k: &str, r: &str| (a.to_string(), k.to_string(), r.to_string());

    assert_eq!(sync("--size-only"), [row("skip", "newer.txt", "same size"), row("skip", "older.txt", "same size")]);
    assert_eq!(sync("--checksum --dry-run"), [row("upload", "newer.txt", "checksum"), row("upload", "older.txt", "checksum")]);
    assert_eq!(sync("--dry-run"), [row("upload", "newer.txt", "newer"), row("skip", "older.txt", "unchanged")]);
    assert_eq!(sync(""), [row("upload", "newer.txt", "newer"), row("skip", "older.txt", "unchanged")]);
    assert_eq!(sync("--checksum"), [row("skip", "newer.txt", "same checksum"), row("upload", "older.txt", "checksum")]);
    assert_eq!(sync("--checksum"), [row("skip", "newer.txt", "same checksum"), row("skip", "older.txt", "same checksum")]);
}

#[test]
fn checksum_recomputes_a_multipart_etag_with_the_objects_part_size() {
    let moto = Moto::shared();
    let bucket = "sync-multipart";
    // Uploaded by boto3 in parts of 5 MiB, without a CRC64NVME: only the multipart ETag can tell.
    let (part, tail) = (5 * 1024 * 1024, 1000);
    let objects = format!(r#"[{{"key": "big.bin", "multipart": [{part}, {part}, {tail}]}}]"#);
    moto.harness("put-objects", &["--bucket", bucket, "--objects", &objects]);
    let listed = moto.harness("list-s3", &["--bucket", bucket]);
    assert!(listed[0]["etag"].as_str().unwrap().ends_with("-3\""), "a multipart ETag: {listed}");
    assert_ne!(listed[0]["checksum_algorithm"], serde_json::json!(["CRC64NVME"]), "{listed}");
    let src = moto.dir.join("multipart-src");
    std::fs::create_dir_all(&src).unwrap();
    let body = vec![b'x'; 2 * part + tail];
    std::fs::write(src.join("big.bin"), &body).unwrap();
    let heads = || moto.requests("HeadObject", &format!("/{bucket}/"));
    let before = heads();
    let same = rows(moto, &format!("aws s3 sync '{}' s3://{bucket}/ --checksum", src.display()));
    assert_eq!(plan(&same), [("skip".to_string(), "big.bin".to_string(), "same checksum".to_string())]);
    assert_eq!(heads(), before + 1, "one HEAD (of part 1, for the part size)");
    let mut edited = body.clone();
    edited[5] = b'y';
    std::fs::write(src.join("big.bin"), &edited).unwrap();
    set_mtime(&src.join("big.bin"), SystemTime::now() - Duration::from_secs(86_400));
    let changed = rows(moto, &format!("aws s3 sync '{}' s3://{bucket}/ --checksum --dry-run", src.display()));
    assert_eq!(plan(&changed), [("upload".to_string(), "big.bin".to_string(), "checksum".to_string())]);
}

#[test]
fn checksum_finds_a_same_size_edit_between_two_prefixes_and_in_a_download() {
    let moto = Moto::shared();
    let bucket = "sync-checksum-s3";
    moto.harness("put-objects", &["--bucket", bucket, "--objects", "[]"]);
    // Written by nuaws, so each object has a single-part ETag and a full-object CRC64NVME. The
    // edit keeps the size, and `b/` is the newer side: the default rule (size, then time) sees
    // no change, as the AWS CLI's does not.
    let put = |key: &str, body: &str| ok(moto, &format!("'{body}' | aws s3 save -f s3://{bucket}/{key}"));
    put("a/same.txt", "same");
    put("a/edit.txt", "abcd");
    put("b/same.txt", "same");
    put("b/edit.txt", "wxyz");
    let sync = |to: &str, flags: &str| plan(&rows(moto, &format!("aws s3 sync s3://{bucket}/a/ {to} {flags}")));
    let row = |a: &str, k: &str, r: &str| (a.to_string(), k.to_string(), r.to_string());
    let between = format!("s3://{bucket}/b/");
    assert_eq!(sync(&between, "--dry-run"), [row("skip", "edit.txt", "unchanged"), row("skip", "same.txt", "unchanged")]);
    assert_eq!(sync(&between, "--checksum --dry-run"), [row("copy", "edit.txt", "checksum"), row("skip", "same.txt", "same checksum")]);
    assert_eq!(sync(&between, "--checksum"), [row("copy", "edit.txt", "checksum"), row("skip", "same.txt", "same checksum")]);
    assert_eq!(sync(&between, "--checksum"), [row("skip", "edit.txt", "same checksum"), row("skip", "same.txt", "same checksum")]);
    assert_eq!(ok(moto, &format!("aws s3 open --raw s3://{bucket}/b/edit.txt | decode")), "abcd");

    // A download compares the local file's MD5 with the ETag.
    let dst = moto.dir.join("checksum-download");
    write(&dst, "same.txt", "same");
    write(&dst, "edit.txt", "wxyz");
    let local = format!("'{}'", dst.display());
    assert_eq!(sync(&local, "--checksum"), [row("download", "edit.txt", "checksum"), row("skip", "same.txt", "same checksum")]);
    assert_eq!(std::fs::read_to_string(dst.join("edit.txt")).unwrap(), "abcd");
}

#[test]
fn uploads_carry_a_full_object_crc64nvme_and_a_no_op_checksum_sync_heads_only_multipart_objects() {
    let moto = Moto::shared();
    let bucket = "sync-crc";
    moto.harness("put-objects", &["--bucket", bucket, "--objects", "[]"]);
    let src = moto.dir.join("crc-src");
    for key in ["a.txt", "b/c d.txt", "e+f.json"] {
        write(&src, key, key);
    }
    // Above the 8 MiB part size: a multipart upload.
    let big: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    no_errors(&rows(moto, &format!("aws s3 sync '{}' s3://{bucket}/s/", src.display())));
    // `cp` and `save` upload with it too.
    for script in [format!("aws s3 cp '{}' s3://{bucket}/cp.txt", src.join("a.txt").display()), format!("'saved' | aws s3 save s3://{bucket}/saved.txt")] {
        let out = nuaws_in(moto, &moto.endpoint, &moto.dir.join("cwd"), &script);
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    }

    let listed = moto.harness("list-s3", &["--bucket", bucket, "--checksums"]);
    assert_eq!(listed.as_array().unwrap().len(), 6);
    for o in listed.as_array().unwrap() {
        assert_eq!(o["checksum_algorithm"], serde_json::json!(["CRC64NVME"]), "every upload carries a CRC64NVME: {o}");
        // What S3 keeps (the value the SDK sent for a single part; for the multipart upload the
        // one moto computes over the whole object, with awscrt) is the body's CRC64NVME.
        assert!(o["checksum_crc64nvme"].is_string(), "{o}");
        assert_eq!(o["checksum_crc64nvme"], o["computed_crc64nvme"], "{o}");
    }
    let big_row = listed.as_array().unwrap().iter().find(|o| o["key"] == "s/big.bin").expect("big.bin");
    assert!(big_row["etag"].as_str().unwrap().ends_with("-2\""), "{big_row}");
    assert_eq!(big_row["checksum_type"], "FULL_OBJECT", "{big_row}");

    // A no-op sync by content: single-part objects compare MD5s with their ETags (no request);
    // the multipart one takes one HEAD, for its CRC64NVME (none for its part size).
    let heads = moto.requests("HeadObject", &format!("/{bucket}/"));
    let again = rows(moto, &format!("aws s3 sync '{}' s3://{bucket}/s/ --checksum", src.display()));
    no_errors(&again);
    assert!(again.iter().all(|r| r["action"] == "skip" && r["reason"] == "same checksum"), "{again:?}");
    assert_eq!(moto.requests("HeadObject", &format!("/{bucket}/")) - heads, 1, "one HEAD, for the multipart object's CRC64NVME");

    // The multipart file edited, same size: the CRC64NVME tells.
    let mut edited = big.clone();
    edited[7] ^= 0xff;
    std::fs::write(src.join("big.bin"), &edited).unwrap();
    set_mtime(&src.join("big.bin"), SystemTime::now() - Duration::from_secs(86_400));
    let changed = rows(moto, &format!("aws s3 sync '{}' s3://{bucket}/s/ --checksum --dry-run", src.display()));
    let changed: Vec<_> = plan(&changed).into_iter().filter(|(a, _, _)| a != "skip").collect();
    assert_eq!(changed, [("upload".to_string(), "big.bin".to_string(), "checksum".to_string())]);
    assert_eq!(moto.requests("PutObject", &format!("/{bucket}/s/")), 3, "nothing uploaded again");
}

#[test]
fn delete_with_one_failing_upload_deletes_nothing() {
    let moto = Moto::shared();
    let bucket = "sync-delete-fail";
    moto.harness("put-objects", &["--bucket", bucket, "--objects", r#"[{"key": "d/old.txt", "size": 3}]"#]);
    let src = moto.dir.join("delete-fail-src");
    write(&src, "good.txt", "good");
    write(&src, "fail-me.txt", "bad");
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::fail_matching("fail-me", 403)).expect("proxy");
    let got = rows_via(moto, &proxy.endpoint(), &format!("aws s3 sync '{}' s3://{bucket}/d/ --delete", src.display()));
    let by_key = |k: &str| got.iter().find(|r| r["key"] == k).unwrap_or_else(|| panic!("no row for {k}: {got:?}")).clone();
    assert!(by_key("good.txt")["error"].is_null());
    assert!(!by_key("fail-me.txt")["error"].is_null());
    let old = by_key("old.txt");
    assert_eq!(old["action"], "delete");
    assert!(old["error"].as_str().unwrap().contains("not deleted: 1 keys failed"), "{old}");
    assert!(keys_in(moto, bucket, "d/").contains(&"d/old.txt".to_string()), "nothing deleted");
    assert_eq!(moto.requests("DeleteObjects", &format!("/{bucket}")), 0);

    // Once everything transfers, the deletion happens.
    let got = rows(moto, &format!("aws s3 sync '{}' s3://{bucket}/d/ --delete", src.display()));
    no_errors(&got);
    assert_eq!(keys_in(moto, bucket, "d/"), ["d/fail-me.txt", "d/good.txt"]);
}

#[test]
fn fail_fast_makes_a_failed_upload_the_error_and_deletes_nothing() {
    let moto = Moto::shared();
    let bucket = "sync-fail-fast";
    moto.harness("put-objects", &["--bucket", bucket, "--objects", r#"[{"key": "d/old.txt", "size": 3}]"#]);
    let src = moto.dir.join("fail-fast-src");
    write(&src, "good.txt", "good");
    write(&src, "fail-me.txt", "bad");
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::fail_matching("fail-me", 403)).expect("proxy");
    let out = nuaws_in(moto, &proxy.endpoint(), &moto.dir.join("cwd"), &format!("aws s3 sync '{}' s3://{bucket}/d/ --delete --fail-fast | to json", src.display()));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fail-me.txt") && stderr.contains("AccessDenied"), "{stderr}");
    assert!(keys_in(moto, bucket, "d/").contains(&"d/old.txt".to_string()), "nothing deleted");
    assert_eq!(moto.requests("DeleteObjects", &format!("/{bucket}")), 0);
}

#[test]
fn a_refused_delete_request_is_a_row_per_key_and_the_transfers_stand() {
    let moto = Moto::shared();
    let bucket = "sync-delete-denied";
    moto.harness("put-objects", &["--bucket", bucket, "--objects", r#"[{"key": "d/old-1.txt", "size": 3}, {"key": "d/old-2.txt", "size": 3}]"#]);
    let src = moto.dir.join("delete-denied-src");
    write(&src, "new.txt", "new");
    // DeleteObjects (`POST /bucket?delete`) denied, as a bucket policy denying s3:DeleteObject does.
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::fail_matching("?delete", 403)).expect("proxy");
    let got = rows_via(moto, &proxy.endpoint(), &format!("aws s3 sync '{}' s3://{bucket}/d/ --delete", src.display()));
    let by_key = |k: &str| got.iter().find(|r| r["key"] == k).unwrap_or_else(|| panic!("no row for {k}: {got:?}")).clone();
    assert!(by_key("new.txt")["error"].is_null(), "the upload stands");
    for old in ["old-1.txt", "old-2.txt"] {
        let row = by_key(old);
        assert_eq!(row["action"], "delete");
        assert!(row["error"].as_str().is_some_and(|e| e.contains("AccessDenied")), "{row}");
    }
    assert_eq!(keys_in(moto, bucket, "d/"), ["d/new.txt", "d/old-1.txt", "d/old-2.txt"]);
    // With --fail-fast it is the command's error.
    let out = nuaws_in(moto, &proxy.endpoint(), &moto.dir.join("cwd"), &format!("aws s3 sync '{}' s3://{bucket}/d/ --delete --fail-fast | to json", src.display()));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AccessDenied"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(keys_in(moto, bucket, "d/").len(), 3, "nothing deleted");
}

#[test]
fn max_delete_and_an_empty_source_refuse() {
    let moto = Moto::shared();
    let bucket = "sync-refuse";
    moto.harness(
        "put-objects",
        &["--bucket", bucket, "--objects", r#"[{"key": "p/1", "size": 1}, {"key": "p/2", "size": 1}, {"key": "p/3", "size": 1}, {"key": "p/keep", "size": 4}]"#],
    );
    let src = moto.dir.join("refuse-src");
    write(&src, "keep", "keep");
    let got = rows(moto, &format!("aws s3 sync '{}' s3://{bucket}/p/ --delete --max-delete 2", src.display()));
    let deletes: Vec<_> = got.iter().filter(|r| r["action"] == "delete").collect();
    assert_eq!(deletes.len(), 3);
    assert!(deletes.iter().all(|r| r["error"].as_str().unwrap().contains("3 deletions exceed --max-delete 2")), "{deletes:?}");
    assert_eq!(keys_in(moto, bucket, "p/").len(), 4, "nothing deleted");

    // An empty source would empty the destination: refused up front, unless --force.
    let empty = moto.dir.join("refuse-empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = nuaws_in(moto, &moto.endpoint, &moto.dir.join("cwd"), &format!("aws s3 sync '{}' s3://{bucket}/p/ --delete", empty.display()));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Refusing to delete everything"), "{}", String::from_utf8_lossy(&out.stderr));
    let missing = moto.dir.join("refuse-missing");
    let out = nuaws_in(moto, &moto.endpoint, &moto.dir.join("cwd"), &format!("aws s3 sync '{}' s3://{bucket}/p/ --delete", missing.display()));
    assert!(!out.status.success());
    assert_eq!(keys_in(moto, bucket, "p/").len(), 4, "nothing deleted");
    let forced = rows(moto, &format!("aws s3 sync '{}' s3://{bucket}/p/ --delete --force --max-delete 4", empty.display()));
    no_errors(&forced);
    assert_eq!(forced.len(), 4);
    assert!(keys_in(moto, bucket, "p/").is_empty());
}

#[test]
fn dry_run_changes_nothing_and_gives_the_plan_the_real_run_executes() {
    let moto = Moto::shared();
    let bucket = "sync-dry";
    moto.harness("put-objects", &["--bucket", bucket, "--objects", r#"[{"key": "stale.txt", "size": 2}, {"key": "same.txt", "size": 4}, {"key": "grown.txt", "size": 1}, {"key": "skip.tmp", "size": 1}]"#]);
    let dst = moto.dir.join("dry-dst");
    write(&dst, "same.txt", "xxxx");
    write(&dst, "grown.txt", "xxxxxx");
    write(&dst, "local-only.txt", "l");
    // The local copy is newer than the object: unchanged.
    set_mtime(&dst.join("same.txt"), SystemTime::now() + Duration::from_secs(3600));
    let script = format!("aws s3 sync s3://{bucket}/ '{}' --delete --exclude [*.tmp]", dst.display());
    let gets = moto.requests("GetObject", &format!("/{bucket}/"));
    let dry = rows(moto, &format!("{script} --dry-run"));
    no_errors(&dry);
    assert_eq!(moto.requests("GetObject", &format!("/{bucket}/")), gets, "a dry run fetches nothing");
    assert!(dst.join("local-only.txt").exists() && !dst.join("stale.txt").exists(), "a dry run changes nothing");
    let row = |a: &str, k: &str, r: &str| (a.to_string(), k.to_string(), r.to_string());
    assert_eq!(
        plan(&dry),
        [
            row("download", "grown.txt", "size"),
            row("delete", "local-only.txt", "not in source"),
            row("skip", "same.txt", "unchanged"),
            row("download", "stale.txt", "new")
        ]
    );
    let real = rows(moto, &script);
    no_errors(&real);
    assert_eq!(plan(&real), plan(&dry));
    let sizes = |rows: &[serde_json::Value]| {
        let mut s: Vec<_> = rows.iter().map(|r| (r["key"].as_str().unwrap().to_string(), r["size"].clone())).collect();
        s.sort_by(|a, b| a.0.cmp(&b.0));
        s
    };
    assert_eq!(sizes(&real), sizes(&dry));
    assert!(!dst.join("local-only.txt").exists() && dst.join("stale.txt").exists());
    assert_eq!(std::fs::read(dst.join("grown.txt")).unwrap().len(), 1);
}

#[test]
fn bad_arguments_point_at_themselves() {
    let moto = Moto::shared();
    let cwd = moto.dir.join("cwd");
    for (script, wanted) in [
        ("aws s3 sync ./nowhere-at-all s3://sync-bad/", "No such source directory"),
        ("aws s3 sync . ./other", "Nothing to do with S3"),
        ("aws s3 sync . s3://sync-bad/ --size-only --checksum", "Conflicting change rules"),
        ("aws s3 sync . s3://sync-bad/ --exclude ['[']", "Not a glob"),
    ] {
        let out = nuaws_in(moto, &moto.endpoint, &cwd, script);
        assert!(!out.status.success(), "{script}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(wanted), "{script}: {stderr}");
    }
}

#[test]
fn s3_to_s3_across_regions_goes_to_each_buckets_region() {
    let moto = Moto::shared();
    let (eu, ap) = ("sync-eu", "sync-ap");
    let objects = r#"[{"key": "src/a.txt", "size": 3}, {"key": "src/d/b c.txt", "size": 5}, {"key": "src/d/", "size": 0}]"#;
    moto.harness("put-objects", &["--bucket", eu, "--region", "eu-west-1", "--objects", objects]);
    moto.harness("put-objects", &["--bucket", ap, "--region", "ap-southeast-2", "--objects", "[]"]);
    // The proxy answers as real S3 does a request sent to the wrong region.
    let world = FaultConfig::default().with_bucket_region(eu, "eu-west-1").with_bucket_region(ap, "ap-southeast-2");
    let proxy = FaultProxy::start(&moto.endpoint, world).expect("proxy");
    let copied = rows_via(moto, &proxy.endpoint(), &format!("aws s3 sync s3://{eu}/src/ s3://{ap}/dst/"));
    no_errors(&copied);
    assert_eq!(plan(&copied).iter().map(|(a, k, _)| (a.as_str(), k.as_str())).collect::<Vec<_>>(), [("copy", "a.txt"), ("copy", "d/"), ("copy", "d/b c.txt")]);
    assert_eq!(keys_in(moto, ap, "dst/"), ["dst/a.txt", "dst/d/", "dst/d/b c.txt"]);
    let again = rows_via(moto, &proxy.endpoint(), &format!("aws s3 sync s3://{eu}/src/ s3://{ap}/dst/"));
    assert!(again.iter().all(|r| r["action"] == "skip" && r["error"].is_null()), "{again:?}");
    let du = rows_via(moto, &proxy.endpoint(), "aws s3 du");
    let bytes = |bucket: &str| du.iter().find(|r| r["prefix"] == format!("s3://{bucket}/")).map(|r| r["bytes"].as_u64().unwrap());
    assert_eq!((bytes(eu), bytes(ap)), (Some(8), Some(8)), "every bucket summed in its own region: {du:?}");
}

#[test]
fn a_checksum_rerun_reads_no_unchanged_file_and_rereads_a_changed_one() {
    let moto = Moto::shared();
    let bucket = "sync-hash-cache";
    moto.harness("put-objects", &["--bucket", bucket, "--objects", "[]"]);
    let src = moto.dir.join("hash-cache-src");
    let keys = ["a.txt", "b/c.txt", "d e/f.json"];
    let past = SystemTime::now() - Duration::from_secs(3600);
    for key in keys {
        write(&src, key, key);
        set_mtime(&src.join(key), past);
    }
    let cache_dir = moto.dir.join("hash-cache-dir");
    let env = moto.cached_env(&cache_dir);
    // The run's rows, and its hash cache lookups (`aws metrics` of that process): files served
    // by the cache, files read.
    let run = |flags: &str| -> (Vec<serde_json::Value>, (u64, u64)) {
        let script = format!(
            "let rows = (aws s3 sync '{}' s3://{bucket}/ {flags}); let m = (aws metrics --session | where service == local and operation == HashFile); {{rows: $rows, hits: ($m | each {{|r| $r.hits_disk}} | append 0 | math sum), read: ($m | each {{|r| $r.misses}} | append 0 | math sum)}} | to json --raw",
            src.display()
        );
        let out = moto.nuaws_with(env!("CARGO_BIN_EXE_nuaws"), env.clone(), &moto.endpoint, &moto.dir.join("cwd"), &script);
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        (v["rows"].as_array().cloned().unwrap_or_default(), (v["hits"].as_u64().unwrap_or(0), v["read"].as_u64().unwrap_or(0)))
    };
    let (up, _) = run("");
    no_errors(&up);
    let (first, lookups) = run("--checksum");
    assert!(first.iter().all(|r| r["reason"] == "same checksum"), "{first:?}");
    assert_eq!(lookups, (0, 3), "the first run by content reads every file");
    let (second, lookups) = run("--checksum");
    assert!(second.iter().all(|r| r["reason"] == "same checksum"), "{second:?}");
    assert_eq!(lookups, (3, 0), "a rerun reads none");
    // One file touched (same contents, another mtime), one edited at the same size.
    set_mtime(&src.join("a.txt"), past + Duration::from_secs(1));
    write(&src, "b/c.txt", "B/C.TXT");
    set_mtime(&src.join("b/c.txt"), past + Duration::from_secs(2));
    let (third, lookups) = run("--checksum");
    assert_eq!(lookups, (1, 2), "only the changed files are read again");
    let reasons: Vec<_> = plan(&third).into_iter().map(|(_, k, r)| (k, r)).collect();
    assert_eq!(
        reasons,
        [("a.txt".to_string(), "same checksum".to_string()), ("b/c.txt".into(), "checksum".into()), ("d e/f.json".into(), "same checksum".into())]
    );
}

#[test]
fn a_listing_out_of_key_order_is_sorted_on_disk_and_nothing_is_deleted_wrongly() {
    let moto = Moto::shared();
    let bucket = "sync-unordered";
    let objects = r#"[{"key": "a", "size": 1}, {"key": "b/c", "size": 2}, {"key": "d e", "size": 3}, {"key": "z", "size": 4}]"#;
    moto.harness("put-objects", &["--bucket", bucket, "--objects", objects]);
    let dst = moto.dir.join("unordered-dst");
    write(&dst, "a", "x");
    set_mtime(&dst.join("a"), SystemTime::now() + Duration::from_secs(3600));
    write(&dst, "stale", "old");
    // The proxy lists the bucket in reverse key order, as an S3 Express directory bucket may
    // (it returns keys in no particular order, per AWS's ListObjectsV2 documentation).
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::default().with_unordered_listing(bucket)).expect("proxy");
    let got = rows_via(moto, &proxy.endpoint(), &format!("aws s3 sync s3://{bucket}/ '{}' --delete", dst.display()));
    no_errors(&got);
    // `a` came first in the merge only after the sort: a merge that trusted the order would have
    // deleted it as "not in source".
    assert_eq!(std::fs::read_to_string(dst.join("a")).unwrap(), "x", "a is kept: {got:?}");
    assert!(!dst.join("stale").exists(), "{got:?}");
    for (key, size) in [("b/c", 2), ("d e", 3), ("z", 4)] {
        assert_eq!(std::fs::read(dst.join(key)).unwrap().len(), size, "{key}: {got:?}");
    }
    let deletes: Vec<_> = got.iter().filter(|r| r["action"] == "delete").map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(deletes, ["stale"]);
    // Synced again through the same proxy: nothing to do.
    let again = rows_via(moto, &proxy.endpoint(), &format!("aws s3 sync s3://{bucket}/ '{}' --delete", dst.display()));
    no_errors(&again);
    assert!(again.iter().all(|r| r["action"] == "skip"), "{again:?}");
    for key in ["a", "b/c", "d e", "z"] {
        assert!(dst.join(key).exists(), "{key} kept: {again:?}");
    }
}
