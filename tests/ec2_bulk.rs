//! End-to-end tests of the reads that span many regions or resources — listings over
//! `--regions` / `--all-regions`, `aws ec2 enrich`, `aws tags correlate` — with the real `nuaws`
//! binary against a real moto server on loopback. Expected contents come from what the harness
//! seeded (boto3); request counts are measured at the server. Each test has a server of its own,
//! since the counts and the exact sets depend on everything the server holds.

#[path = "support/moto.rs"]
mod moto;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::{Value, json};

use moto::Moto;

fn run(env: &[(String, String)], script: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nuaws"))
        .args(["-n", "--error-style", "plain", "-c", script])
        .env_clear()
        .envs(moto::llvm_profile_env())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .envs(env.iter().cloned())
        .output()
        .expect("run nuaws");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "`{script}` failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `script` (without the cache), which must fail; returns its error output.
fn fails(moto: &Moto, script: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nuaws"))
        .args(["-n", "--error-style", "plain", "-c", script])
        .env_clear()
        .envs(moto::llvm_profile_env())
        .envs(moto.client_env())
        .output()
        .expect("run nuaws");
    assert!(!out.status.success(), "`{script}` succeeded");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Runs `script` (without the cache) and parses what it prints as JSON.
fn json(moto: &Moto, script: &str) -> Value {
    let text = run(&moto.client_env(), &format!("{script} | to json --raw"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("`{script}` gave no JSON ({e}): {text}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string())
        .collect()
}

/// (id, region) of every instance boto3 sees in `regions`, sorted.
fn seeded_instances(moto: &Moto, regions: &[&str]) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for region in regions {
        for instance in moto.harness("list-ec2", &["--region", region]).as_array().unwrap() {
            all.push((instance["id"].as_str().unwrap().to_string(), region.to_string()));
        }
    }
    all.sort();
    all
}

fn id_region_pairs(rows: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r["region"].as_str().unwrap().to_string()))
        .collect();
    pairs.sort();
    pairs
}

#[test]
fn regions_are_listed_at_once_into_one_table_with_a_region_column() {
    let moto = Moto::start(&[]);
    moto.harness("seed-ec2", &["--instances", "6"]);
    moto.harness("seed-ec2", &["--instances", "4", "--region", "eu-west-1"]);
    let expected = seeded_instances(&moto, &["us-east-1", "eu-west-1"]);
    assert_eq!(expected.len(), 10);

    let rows = json(&moto, "aws ec2 instances --regions [us-east-1 eu-west-1] | select id region");
    assert_eq!(id_region_pairs(&rows), expected);
    // A region named twice is read once.
    let rows = json(&moto, "aws ec2 instances --regions [eu-west-1 us-east-1 eu-west-1] | select id region");
    assert_eq!(id_region_pairs(&rows), expected);
    // One region alone keeps the single-region shape: no region column.
    let columns = json(&moto, "aws ec2 instances | columns");
    assert!(!strings(&columns).contains(&"region".to_string()), "{columns}");
    // Every listing takes the flags.
    let groups = json(&moto, "aws ec2 security-groups --regions [us-east-1 eu-west-1] | where name == default | get region | sort");
    assert_eq!(strings(&groups), ["eu-west-1", "us-east-1"]);
}

#[test]
fn all_regions_reads_each_enabled_region_once() {
    let moto = Moto::start(&[]);
    moto.harness("seed-ec2", &["--instances", "5"]);
    moto.harness("seed-ec2", &["--instances", "3", "--region", "eu-west-1"]);
    let expected = seeded_instances(&moto, &["us-east-1", "eu-west-1"]);
    let regions = strings(&json(&moto, "aws ec2 regions | get name"));
    assert!(regions.len() > 2, "{regions:?}");

    let before = moto.requests("DescribeInstances", "");
    let rows = json(&moto, "aws ec2 instances --all-regions | select id region");
    assert_eq!(id_region_pairs(&rows), expected);
    assert_eq!(moto.requests("DescribeInstances", "") - before, regions.len());
}

#[test]
fn a_failing_region_is_an_error_row_naming_it_and_the_others_still_come() {
    let moto = Moto::start(&[]);
    moto.harness("seed-ec2", &["--instances", "3", "--region", "eu-west-1"]);
    let expected: Vec<String> = seeded_instances(&moto, &["eu-west-1"]).into_iter().map(|(id, _)| id).collect();
    // moto answers a region it does not know with an error.
    let rows = json(
        &moto,
        "aws ec2 instances --regions [nope-1 eu-west-1] | each {|r| try { {id: $r.id, region: $r.region} } catch {|e| {error: $e.msg, detail: $e.details.labels.0.text} } }",
    );
    let rows = rows.as_array().unwrap();
    let errors: Vec<&Value> = rows.iter().filter(|r| r.get("error").is_some()).collect();
    assert_eq!(errors.len(), 1, "{rows:?}");
    assert_eq!(errors[0]["error"], "EC2 DescribeInstances in nope-1 failed");
    assert!(errors[0]["detail"].as_str().unwrap().contains("(region nope-1)"), "{}", errors[0]);
    let mut ids: Vec<String> = rows
        .iter()
        .filter(|r| r.get("error").is_none())
        .map(|r| {
            assert_eq!(r["region"], "eu-west-1");
            r["id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, expected);
}

#[test]
fn conflicting_region_flags_are_refused() {
    let moto = Moto::shared();
    for (script, says) in [
        ("aws ec2 instances --regions [us-east-1] --region us-east-1", "--regions and --region cannot be used together"),
        ("aws ec2 vpcs --regions [us-east-1] --all-regions", "--regions and --all-regions cannot be used together"),
        ("aws tags correlate Application --all-regions --region eu-west-1", "--all-regions and --region cannot be used together"),
        ("aws ec2 instances --regions []", "No regions given"),
    ] {
        let stderr = fails(moto, script);
        assert!(stderr.contains(says), "{script}: {stderr}");
    }
}

#[test]
fn each_region_of_a_multi_region_listing_is_cached_like_a_single_region_listing() {
    let moto = Moto::start(&[]);
    moto.harness("seed-ec2", &["--instances", "4"]);
    moto.harness("seed-ec2", &["--instances", "2", "--region", "eu-west-1"]);
    let env = moto.cached_env(&moto.dir.join("cache"));
    let out = run(
        &env,
        "let all = (aws ec2 instances --regions [us-east-1 eu-west-1] | length); let eu = (aws ec2 instances --region eu-west-1 | length); [$all $eu (aws cache last | get tier)] | str join ' '",
    );
    assert_eq!(out, "6 2 memory");
    assert_eq!(moto.requests("DescribeInstances", ""), 2);
    // And the other way round, in a new process: the single-region entries serve the merged read.
    let out = run(&env, "aws ec2 instances --regions [eu-west-1 us-east-1] | get region | uniq --count | sort-by value | each {|r| $'($r.value)=($r.count)' } | str join ' '");
    assert_eq!(out, "eu-west-1=2 us-east-1=4");
    assert_eq!(moto.requests("DescribeInstances", ""), 2);
}

/// The four Describe operations `aws ec2 enrich` makes, and how many of each the server got.
fn describe_counts(moto: &Moto) -> [usize; 4] {
    ["DescribeSecurityGroups", "DescribeVpcs", "DescribeSubnets", "DescribeImages"].map(|op| moto.requests(op, ""))
}

#[test]
fn enrich_fetches_each_resource_type_once_for_a_hundred_instances() {
    let moto = Moto::start(&[]);
    let seeded = moto.harness("seed-enrich", &["--instances", "100"]);
    let expected = seeded["instances"].as_object().unwrap();
    assert_eq!(expected.len(), 100);
    assert_eq!(seeded["security_groups"].as_array().unwrap().len(), 5);
    assert_eq!(seeded["vpcs"].as_array().unwrap().len(), 2);

    let before = describe_counts(&moto);
    let rows = json(
        &moto,
        "aws ec2 instances | aws ec2 enrich | each {|i| {id: $i.id, vpc: $i.vpc.id, vpc_cidr: $i.vpc.cidr, subnet: $i.subnet.id, subnet_vpc: $i.subnet.vpc_id, groups: ($i.security_groups | get id), group_names: ($i.security_groups | get name), image: $i.image.id, image_owner: $i.image.owner_id} }",
    );
    let after = describe_counts(&moto);
    let made: Vec<usize> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(made, [1, 1, 1, 1], "requests per type: groups, VPCs, subnets, images");

    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 100);
    let cidr_of: BTreeMap<&str, String> = seeded["vpcs"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(v, id)| (id.as_str().unwrap(), format!("10.{}.0.0/16", v + 1)))
        .collect();
    for row in rows {
        let id = row["id"].as_str().unwrap();
        let want = &expected[id];
        assert_eq!(row["vpc"], want["vpc"], "{id}");
        assert_eq!(row["vpc_cidr"].as_str(), Some(cidr_of[want["vpc"].as_str().unwrap()].as_str()), "{id}");
        assert_eq!(row["subnet"], want["subnet"], "{id}");
        assert_eq!(row["subnet_vpc"], want["vpc"], "{id}");
        assert_eq!(row["groups"], want["security_groups"], "{id}");
        assert!(
            strings(&row["group_names"]).iter().all(|n| n.starts_with("enrich-")),
            "{id}: {}",
            row["group_names"]
        );
        assert_eq!(row["image"], want["image"], "{id}");
        assert!(row["image_owner"].is_string(), "{id}");
    }
    // The records are the rows the listings give.
    let listed = json(&moto, &format!("aws ec2 security-groups {} | sort-by id", strings(&seeded["security_groups"]).join(" ")));
    let enriched = json(&moto, "aws ec2 instances | aws ec2 enrich | get security_groups | flatten | uniq-by id | sort-by id");
    assert_eq!(enriched, listed);
}

#[test]
fn enrich_gives_null_for_what_no_longer_exists_and_looks_up_each_region_in_its_own() {
    let moto = Moto::start(&[]);
    let seeded = moto.harness("seed-enrich", &["--instances", "4"]);
    moto.harness("seed-ec2", &["--instances", "3", "--region", "eu-west-1"]);
    let group = seeded["security_groups"][0].as_str().unwrap().to_string();

    // Ids that do not exist (deleted, say): null, and the batch still answers the others.
    let before = describe_counts(&moto);
    let row = json(
        &moto,
        &format!(
            "{{id: i-0000000000000dead, vpc_id: vpc-0000000000000dead, subnet_id: subnet-0000000000000dead, security_groups: [sg-0000000000000dead {group}], image_id: ami-0000000000000dead}} | aws ec2 enrich | select vpc subnet image security_groups"
        ),
    );
    assert_eq!(row["vpc"], Value::Null);
    assert_eq!(row["subnet"], Value::Null);
    assert_eq!(row["image"], Value::Null);
    let groups = row["security_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0], Value::Null);
    assert_eq!(groups[1]["id"], group.as_str());
    let made: Vec<usize> = describe_counts(&moto).iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(made, [1, 1, 1, 1]);

    // Rows of two regions: each looked up where it lives, one batch per region and type.
    let before = describe_counts(&moto);
    let rows = json(
        &moto,
        "aws ec2 instances --regions [us-east-1 eu-west-1] | aws ec2 enrich | each {|i| {region: $i.region, same_vpc: ($i.vpc.id == $i.vpc_id), same_subnet: ($i.subnet.id == $i.subnet_id), same_image: ($i.image.id == $i.image_id)} }",
    );
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 7);
    for row in rows {
        assert_eq!(row["same_vpc"], true, "{row}");
        assert_eq!(row["same_subnet"], true, "{row}");
        assert_eq!(row["same_image"], true, "{row}");
    }
    let regions: BTreeSet<&str> = rows.iter().filter_map(|r| r["region"].as_str()).collect();
    assert_eq!(regions, BTreeSet::from(["eu-west-1", "us-east-1"]));
    let made: Vec<usize> = describe_counts(&moto).iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(made, [2, 2, 2, 2]);
}

/// The rows `aws tags correlate` must give for `seeded`, in its order: by value, then type
/// (instances, volumes, snapshots, groups, VPCs, buckets), region and id.
fn correlation(seeded: &[Value], keep: impl Fn(&Value) -> bool) -> Value {
    const ORDER: [&str; 6] = ["instance", "volume", "snapshot", "security-group", "vpc", "bucket"];
    let mut rows: Vec<Value> = seeded.iter().filter(|r| keep(r)).cloned().collect();
    let key = |r: &Value| {
        let text = |c: &str| r[c].as_str().unwrap_or_default().to_string();
        let rank = ORDER.iter().position(|t| *t == r["type"]).unwrap_or(usize::MAX);
        (text("value"), rank, text("region"), text("id"))
    };
    rows.sort_by_key(key);
    Value::Array(rows)
}

#[test]
fn tags_correlate_lists_exactly_what_carries_the_key_by_value() {
    let moto = Moto::start(&[]);
    let mut seeded: Vec<Value> = Vec::new();
    for region in ["us-east-1", "eu-west-1"] {
        let found = moto.harness("seed-tags", &["--buckets", "--region", region]);
        seeded.extend(found.as_array().unwrap().iter().cloned());
    }
    assert_eq!(seeded.len(), 20);
    let is_ec2_of = |region: &'static str| move |r: &Value| r["type"] != "bucket" && r["region"] == region;
    let bucket = |r: &Value| r["type"] == "bucket";

    // The current region's EC2 resources, and every bucket of the account.
    let before = (moto.requests("DescribeTags", ""), moto.requests("GetBucketTagging", ""));
    let ours = json(&moto, "aws tags correlate Application");
    assert_eq!(ours, correlation(&seeded, |r| is_ec2_of("us-east-1")(r) || bucket(r)));
    // One DescribeTags for the key, one for the names; one GetBucketTagging per bucket.
    assert_eq!(moto.requests("DescribeTags", "") - before.0, 2);
    assert_eq!(moto.requests("GetBucketTagging", "") - before.1, 8);

    let ours = json(&moto, "aws tags correlate Application --regions [eu-west-1]");
    assert_eq!(ours, correlation(&seeded, |r| r["region"] == "eu-west-1"));
    let ours = json(&moto, "aws tags correlate Application --all-regions");
    assert_eq!(ours, correlation(&seeded, |_| true));
    let ours = json(&moto, "aws tags correlate Application --value billing --regions [us-east-1 eu-west-1]");
    assert_eq!(ours, correlation(&seeded, |r| r["value"] == "billing"));
    // A key nothing carries.
    assert_eq!(json(&moto, "aws tags correlate Nope"), json!([]));
    // A region that fails is an error row after the others' resources...
    let rows = json(
        &moto,
        "aws tags correlate Application --regions [eu-west-1 nope-1] | each {|r| try { $r | select value type id name region } catch {|e| {error: $e.msg} } }",
    );
    let mut rows = rows.as_array().unwrap().clone();
    assert_eq!(rows.pop(), Some(json!({"error": "EC2 DescribeTags in nope-1 failed"})));
    assert_eq!(Value::Array(rows), correlation(&seeded, |r| r["region"] == "eu-west-1"));
    // ... and the command's error when nothing else was found.
    let stderr = fails(&moto, "aws tags correlate Application --regions [nope-1]");
    assert!(stderr.contains("EC2 DescribeTags in nope-1 failed"), "{stderr}");

    let grouped = json(
        &moto,
        "aws tags correlate Application --group | each {|g| {value: $g.value, count: $g.count, instances: ($g.instances | get id), volumes: ($g.volumes | get id), snapshots: ($g.snapshots | get id), security_groups: ($g.security_groups | get id), vpcs: ($g.vpcs | get id), buckets: ($g.buckets | get id)} }",
    );
    let expected = correlation(&seeded, |r| is_ec2_of("us-east-1")(r) || bucket(r));
    let expected = expected.as_array().unwrap();
    let grouped = grouped.as_array().unwrap();
    assert_eq!(grouped.len(), 2);
    for (group, value) in grouped.iter().zip(["billing", "web"]) {
        assert_eq!(group["value"], value);
        let of_value: Vec<&Value> = expected.iter().filter(|r| r["value"] == value).collect();
        assert_eq!(group["count"], of_value.len());
        for (column, kind) in [
            ("instances", "instance"),
            ("volumes", "volume"),
            ("snapshots", "snapshot"),
            ("security_groups", "security-group"),
            ("vpcs", "vpc"),
            ("buckets", "bucket"),
        ] {
            let ids: Vec<&Value> = of_value.iter().filter(|r| r["type"] == kind).map(|r| &r["id"]).collect();
            assert_eq!(group[column].as_array().unwrap().iter().collect::<Vec<_>>(), ids, "{value} {column}");
        }
    }
}
