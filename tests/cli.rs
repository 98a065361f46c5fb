//! End-to-end tests of the real `nuaws` binary against a real moto server on loopback: listings
//! compared with what boto3 sees, request counts measured at the server, the Nushell it carries
//! (config, std lib, scripts), and the AWS CLI fallback.

#[path = "support/moto.rs"]
mod moto;

use std::process::{Command, Output};

use moto::{Moto, seed_once};

const BIG_BUCKET: &str = "big-bucket";
const BIG_OBJECTS: usize = 10_000;
const INSTANCES: usize = 500;

fn nuaws(moto: &Moto, script: &str) -> Output {
    let cwd = moto.dir.join("cwd");
    std::fs::create_dir_all(&cwd).expect("cwd");
    // What the examples find on the local disk.
    std::fs::write(cwd.join("notes.txt"), "notes\n").expect("notes.txt");
    std::fs::create_dir_all(cwd.join("site")).expect("site");
    std::fs::write(cwd.join("site/index.html"), "<h1>hello</h1>\n").expect("site/index.html");
    Command::new(env!("CARGO_BIN_EXE_nuaws"))
        .current_dir(&cwd)
        .args(["--no-config-file", "--error-style", "plain", "-c", script])
        .env_clear()
        .envs(moto::llvm_profile_env())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .envs(moto.client_env())
        .output()
        .expect("run nuaws")
}

/// Runs a script that must succeed and returns its stdout.
fn ok(moto: &Moto, script: &str) -> String {
    let out = nuaws(moto, script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "`{script}` failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn json(moto: &Moto, script: &str) -> serde_json::Value {
    let text = ok(moto, &format!("{script} | to json --raw"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("`{script}` gave no JSON ({e}): {text}"))
}

fn big_bucket(moto: &Moto) {
    seed_once("big-bucket", || {
        moto.harness("seed-s3", &["--bucket", BIG_BUCKET, "--objects", &BIG_OBJECTS.to_string()]);
    });
}

fn instances(moto: &Moto) {
    seed_once("instances", || {
        moto.harness("seed-ec2", &["--instances", &INSTANCES.to_string()]);
    });
}

#[test]
fn recursive_listing_matches_boto3() {
    let moto = Moto::shared();
    big_bucket(moto);
    let count = ok(moto, &format!("aws s3 ls s3://{BIG_BUCKET} --recursive | length"));
    assert_eq!(count, BIG_OBJECTS.to_string());

    let ours = json(
        moto,
        &format!(
            "aws s3 ls s3://{BIG_BUCKET} --recursive | each {{|r| {{key: ($r.name | str replace 's3://{BIG_BUCKET}/' ''), size: ($r.size | into int), etag: $r.etag, modified: ($r.modified | into int), type: $r.type}} }}"
        ),
    );
    let theirs = moto.harness("list-s3", &["--bucket", BIG_BUCKET]);
    let ours = ours.as_array().expect("a list");
    let theirs = theirs.as_array().expect("a list");
    assert_eq!(ours.len(), theirs.len());
    for (o, t) in ours.iter().zip(theirs) {
        assert_eq!(o["key"], t["key"]);
        assert_eq!(o["size"], t["size"]);
        assert_eq!(o["type"], "file");
        assert_eq!(o["etag"].as_str(), t["etag"].as_str().map(|e| e.trim_matches('"')));
        let theirs_ns = chrono::DateTime::parse_from_rfc3339(t["last_modified"].as_str().unwrap())
            .expect("ISO time")
            .timestamp_nanos_opt()
            .unwrap();
        assert_eq!(o["modified"].as_i64().unwrap() / 1_000_000_000, theirs_ns / 1_000_000_000, "{o}");
    }
}

#[test]
fn one_level_listing_shows_prefixes_as_dirs() {
    let moto = Moto::shared();
    big_bucket(moto);
    let rows = json(moto, &format!("aws s3 ls s3://{BIG_BUCKET}/ | select name type"));
    let rows = rows.as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["type"] == "dir"), "{rows:?}");
    assert!(rows.iter().all(|r| r["name"].as_str().unwrap().ends_with('/')));
    // Inside one prefix: dirs for the next level, in key order.
    let names = json(moto, &format!("aws s3 ls s3://{BIG_BUCKET}/data/p000/ | get name"));
    let names: Vec<&str> = names.as_array().unwrap().iter().filter_map(|n| n.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn first_three_costs_at_most_two_list_requests() {
    let moto = Moto::shared();
    big_bucket(moto);
    // Only this test lists `data/` recursively with whole pages (tests run at once).
    let needle = format!("/{BIG_BUCKET}/?list-type=2&max-keys=1000&prefix=data%2F");
    let before = moto.requests("ListObjectsV2", &needle);
    let out = ok(moto, &format!("aws s3 ls s3://{BIG_BUCKET}/data/ --recursive | first 3 | length"));
    assert_eq!(out, "3");
    let made = moto.requests("ListObjectsV2", &needle) - before;
    assert!((1..=2).contains(&made), "made {made} ListObjectsV2 requests");
}

#[test]
fn page_size_is_honoured_and_pages_stream() {
    let moto = Moto::shared();
    big_bucket(moto);
    // Only this test lists `data/p001/` (tests run at once).
    let needle = "prefix=data%2Fp001%2F";
    let count = |max_keys: &str| moto.requests("ListObjectsV2", &format!("list-type=2&max-keys={max_keys}&{needle}"));
    let (before, pages_before, probes_before) = (moto.requests("ListObjectsV2", needle), count("7"), count("1"));
    let out = ok(moto, &format!("aws s3 ls s3://{BIG_BUCKET}/data/p001/ -R --page-size 7 | length"));
    let n: usize = out.parse().unwrap();
    assert!(n > 7);
    // Every request is a page of 7 or, once the listing is split into ranges, a probe of one key.
    let made = moto.requests("ListObjectsV2", needle) - before;
    let (pages, probes) = (count("7") - pages_before, count("1") - probes_before);
    assert_eq!(made, pages + probes);
    assert!(pages >= n.div_ceil(7), "{pages} pages of 7 for {n} objects");
}

#[test]
fn instances_match_boto3() {
    let moto = Moto::shared();
    instances(moto);
    let count = ok(moto, "aws ec2 instances | length");
    assert_eq!(count, INSTANCES.to_string());
    let ours = json(moto, "aws ec2 instances | select id state type tags name | sort-by id");
    let theirs = moto.harness("list-ec2", &[]);
    let (ours, theirs) = (ours.as_array().unwrap(), theirs.as_array().unwrap());
    assert_eq!(ours.len(), theirs.len());
    for (o, t) in ours.iter().zip(theirs) {
        assert_eq!(o["id"], t["id"]);
        assert_eq!(o["state"], t["state"]);
        assert_eq!(o["type"], t["type"]);
        assert_eq!(o["tags"], t["tags"]);
        assert_eq!(o["name"], t["name"]);
    }
    let running = ok(moto, "aws ec2 instances --filter {instance-state-name: running} | length");
    let expected = theirs.iter().filter(|t| t["state"] == "running").count();
    assert_eq!(running, expected.to_string());
}

#[test]
fn instance_ids_select_and_state_changes_apply() {
    // A server of its own: other tests compare the shared server's states with boto3's.
    let moto = &Moto::start(&[]);
    moto.harness("seed-ec2", &["--instances", "10"]);
    let ids = json(moto, "aws ec2 instances --filter {instance-state-name: running} | first 2 | get id");
    let ids: Vec<&str> = ids.as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    let picked = json(moto, &format!("aws ec2 instances {} | get id", ids.join(" ")));
    assert_eq!(picked.as_array().unwrap().len(), 2);
    let stopped = json(moto, &format!("'{}' | aws ec2 stop", ids[0]));
    assert_eq!(stopped[0]["id"], ids[0]);
    assert_eq!(stopped[0]["previous_state"], "running");
    let state = ok(moto, &format!("aws ec2 instances {} | get 0.state", ids[0]));
    assert!(state == "stopping" || state == "stopped", "{state}");
    let started = json(moto, &format!("aws ec2 instances {} | aws ec2 start", ids[0]));
    assert_eq!(started[0]["id"], ids[0]);
}

#[test]
fn ec2_resource_listings_work() {
    let moto = Moto::shared();
    for cmd in ["security-groups", "vpcs", "subnets", "regions"] {
        let n: usize = ok(moto, &format!("aws ec2 {cmd} | length")).parse().unwrap();
        assert!(n > 0, "aws ec2 {cmd} listed nothing");
    }
    ok(moto, "aws ec2 volumes | length");
    ok(moto, "aws ec2 snapshots | length");
    let amazon: usize = ok(moto, "aws ec2 images --owner [amazon] | length").parse().unwrap();
    assert!(amazon > 0);
}

#[test]
fn save_open_head_rm_round_trip() {
    let moto = Moto::shared();
    moto.harness("seed-s3", &["--bucket", "round-trip", "--objects", "0"]);
    ok(moto, "{name: nuaws, n: [1 2 3]} | aws s3 save s3://round-trip/a/doc.json");
    let doc = json(moto, "aws s3 open s3://round-trip/a/doc.json");
    assert_eq!(doc["name"], "nuaws");
    assert_eq!(doc["n"], serde_json::json!([1, 2, 3]));
    // No silent overwrite.
    let out = nuaws(moto, "'x' | aws s3 save s3://round-trip/a/doc.json");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    ok(moto, "'plain' | aws s3 save --force s3://round-trip/a/doc.txt");
    assert_eq!(ok(moto, "aws s3 open s3://round-trip/a/doc.txt"), "plain");
    let head = json(moto, "aws s3 head s3://round-trip/a/doc.txt");
    assert_eq!(head["size"], 5);
    assert_eq!(head["content_type"], "text/plain");
    // A multipart upload (over one 8 MiB part), byte for byte.
    let local = moto.dir.join("big.bin");
    ok(moto, &format!("random binary 9_000_000 | save {}", local.display()));
    ok(moto, &format!("open --raw {} | aws s3 save s3://round-trip/big.bin", local.display()));
    assert_eq!(ok(moto, "aws s3 head s3://round-trip/big.bin | get size | into int"), "9000000");
    assert_eq!(
        ok(moto, "aws s3 open --raw s3://round-trip/big.bin | hash sha256"),
        ok(moto, &format!("open --raw {} | hash sha256", local.display()))
    );
    assert_eq!(moto.requests("UploadPart", "/round-trip/big.bin"), 2);
    // Delete a stream of keys.
    let deleted = json(moto, "aws s3 ls s3://round-trip -R | aws s3 rm");
    let deleted = deleted.as_array().unwrap();
    assert_eq!(deleted.len(), 3);
    assert!(deleted.iter().all(|d| d["deleted"] == true));
    assert_eq!(ok(moto, "aws s3 ls s3://round-trip -R | length"), "0");
}

#[test]
fn rm_batches_a_thousand_keys_per_request() {
    let moto = Moto::shared();
    moto.harness("seed-s3", &["--bucket", "rm-batches", "--objects", "2500"]);
    let before = moto.requests("DeleteObjects", "/rm-batches");
    let out = ok(moto, "aws s3 rm --recursive s3://rm-batches/ | where deleted | length");
    assert_eq!(out, "2500");
    assert_eq!(moto.requests("DeleteObjects", "/rm-batches") - before, 3);
}

#[test]
fn buckets_are_listed() {
    let moto = Moto::shared();
    moto.harness("seed-s3", &["--bucket", "listed-bucket", "--objects", "1"]);
    let names = json(moto, "aws s3 buckets | get name");
    assert!(names.as_array().unwrap().iter().any(|n| n == "listed-bucket"));
    let ls = json(moto, "aws s3 ls | where name == 's3://listed-bucket/' | get type");
    assert_eq!(ls, serde_json::json!(["bucket"]));
}

#[test]
fn every_example_runs_against_the_server() {
    // A server of its own: examples stop and delete things.
    let moto = Moto::start(&[]);
    moto.harness("seed-ec2", &["--instances", "20"]);
    moto.harness("seed-examples", &[]);
    // The profiles the examples name (`--profiles [dev prod]`): roles in two accounts, assumed
    // with the environment's credentials.
    let config = moto.dir.join("home").join("aws-config");
    std::fs::create_dir_all(config.parent().unwrap()).expect("home");
    std::fs::write(
        &config,
        "[profile dev]\nrole_arn = arn:aws:iam::111111111111:role/dev\ncredential_source = Environment\n\
         [profile prod]\nrole_arn = arn:aws:iam::222222222222:role/prod\ncredential_source = Environment\n",
    )
    .expect("aws config");
    let helped = ok(
        &moto,
        "scope commands | where name starts-with 'aws' | each {|c| help $c.name | str length } | all {|n| $n > 0 }",
    );
    assert_eq!(helped, "true");
    let list = ok(
        &moto,
        "scope commands | where name starts-with 'aws ' | get examples | flatten | get example | to json --raw",
    );
    let list: Vec<String> = serde_json::from_str(&list).unwrap();
    assert!(list.len() > 30, "only {} examples", list.len());
    for example in list {
        let out = nuaws(&moto, &format!("{example} | ignore"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if example.contains("i-0123456789abcdef0") {
            // A placeholder id: the command must run and say the instance does not exist.
            assert!(stderr.contains("InvalidInstanceID.NotFound"), "example `{example}`:\n{stderr}");
            continue;
        }
        assert!(out.status.success(), "example `{example}` failed:\n{stderr}");
    }
}

#[test]
fn the_carried_nushell_works() {
    let moto = Moto::shared();
    assert_eq!(ok(moto, "version | get nushell_version"), "0.115.1");
    assert_eq!(ok(moto, "version | get nuaws_version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(ok(moto, "use std/assert; assert equal 1 1; 'std ok'"), "std ok");
    assert_eq!(ok(moto, "[3 1 2] | sort | to nuon"), "[1, 2, 3]");
    assert_eq!(ok(moto, "which http get | get 0.type"), "built-in");
    let dir = moto.dir.join("script");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("hello.nu");
    std::fs::write(&script, "def main [name: string, --loud] { if $loud { $name | str upcase } else { $name } }").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nuaws"))
        .arg("-n")
        .arg(&script)
        .args(["nuaws", "--loud"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "NUAWS");
    let out = Command::new(env!("CARGO_BIN_EXE_nuaws")).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("nuaws {} (nushell 0.115.1)", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_native_commands() {
    let moto = Moto::shared();
    let help = ok(moto, "aws");
    for sub in ["aws s3", "aws ec2"] {
        assert!(help.contains(sub), "{help}");
    }
    let s3 = ok(moto, "aws s3");
    for sub in ["aws s3 ls", "aws s3 open", "aws s3 save", "aws s3 head", "aws s3 rm", "aws s3 buckets", "aws s3 sync", "aws s3 du"] {
        assert!(s3.contains(sub), "{s3}");
    }
    assert!(ok(moto, "aws ec2").contains("aws ec2 instances"));
    assert!(ok(moto, "aws --help").contains("AWS CLI"));
}

#[test]
fn unknown_subcommands_run_the_aws_cli() {
    let moto = Moto::shared();
    // A stand-in `aws` on PATH that prints its arguments: what matters is what nuaws passes.
    let bin = moto.dir.join("fake-cli");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("aws");
    std::fs::write(&fake, "#!/bin/sh\necho \"cli:$*\"\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let run = |script: &str| {
        Command::new(env!("CARGO_BIN_EXE_nuaws"))
            .args(["-n", "-c", script])
            .env_clear()
            .envs(moto::llvm_profile_env())
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let out = run("aws s3 presign s3://b/k --expires-in 60");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "cli:s3 presign s3://b/k --expires-in 60");
    let out = run("aws sts get-caller-identity --output json | str trim");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "cli:sts get-caller-identity --output json");
    let out = run("aws ec2 describe-instances --max-items 5");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "cli:ec2 describe-instances --max-items 5");

    // Without a CLI on PATH: a clear error instead.
    let out = Command::new(env!("CARGO_BIN_EXE_nuaws"))
        .args(["-n", "--error-style", "plain", "-c", "aws iam list-users"])
        .env_clear()
        .envs(moto::llvm_profile_env())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not installed"), "{stderr}");
}

#[test]
fn a_machine_without_root_certificates_gets_an_error_not_a_panic() {
    // A bare container without ca-certificates: the SDK's TLS setup would panic on the first
    // request. SSL_CERT_FILE/SSL_CERT_DIR naming nothing hide the machine's certificates.
    let moto = Moto::shared();
    let out = Command::new(env!("CARGO_BIN_EXE_nuaws"))
        .args(["--no-config-file", "--error-style", "plain", "-c", "aws s3 buckets"])
        .env_clear()
        .envs(moto::llvm_profile_env())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(moto.client_env())
        .env("SSL_CERT_FILE", "/nonexistent/ca.pem")
        .env("SSL_CERT_DIR", "/nonexistent")
        .output()
        .expect("run nuaws");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("no root CA certificates") && stderr.contains("ca-certificates"), "{stderr}");
}

