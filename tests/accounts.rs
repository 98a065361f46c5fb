//! End-to-end tests of listings over many accounts (`--accounts` with `--role-name`, and
//! `--profiles`): the real `nuaws` binary against moto on loopback, which keeps the resources of
//! every assumed account apart. The harness seeds instances into three accounts x two regions,
//! each account entered by AssumeRole as nuaws enters it; expected rows come from what it
//! seeded. A role refused by STS is played by the fault proxy (moto refuses none); requests are
//! counted at the server, by operation.

#[path = "support/moto.rs"]
mod moto;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use moto::{Moto, seed_once};
use nuaws_test_servers::{FaultConfig, FaultProxy};
use serde_json::Value;

const A: &str = "210000000001";
const B: &str = "210000000002";
const C: &str = "210000000003";
/// An account whose role STS refuses (through the proxy).
const DENIED: &str = "210000000009";
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

/// Instance ids by account and region.
type Seeded = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn seed(moto: &Moto) -> Seeded {
    let out = moto.harness(
        "seed-accounts",
        &["--accounts", &[A, B, C].join(","), "--regions", &REGIONS.join(","), "--role-name", "x"],
    );
    serde_json::from_value(out["instances"].clone()).expect("seeded instances")
}

/// The shared server, seeded once for the tests that only read.
fn shared() -> (&'static Moto, &'static Seeded) {
    static SEEDED: std::sync::OnceLock<Seeded> = std::sync::OnceLock::new();
    let moto = Moto::shared();
    seed_once("accounts", || {
        let _ = SEEDED.set(seed(moto));
    });
    (moto, SEEDED.get().expect("seeded"))
}

fn run(moto: &Moto, env: Vec<(String, String)>, endpoint: &str, script: &str) -> Output {
    moto.nuaws_with(env!("CARGO_BIN_EXE_nuaws"), env, endpoint, &moto.dir.join("cwd-accounts"), script)
}

fn rows(moto: &Moto, env: Vec<(String, String)>, endpoint: &str, script: &str) -> Vec<Value> {
    let script = format!("{script} | to json --raw");
    let out = run(moto, env, endpoint, &script);
    assert!(out.status.success(), "`{script}` failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    match serde_json::from_str(text.trim()) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("`{script}` gave no table: {other:?} from {text}"),
    }
}

/// Each row's (account, region) is where the harness put its instance, its name says so too,
/// and every seeded instance of `accounts` x `regions` is there once.
fn assert_rows_match(rows: &[Value], seeded: &Seeded, accounts: &[&str], regions: &[&str]) {
    let mut seen = BTreeSet::new();
    for row in rows {
        let (id, account, region) = (row["id"].as_str(), row["account"].as_str(), row["region"].as_str());
        let (Some(id), Some(account), Some(region)) = (id, account, region) else {
            panic!("row without id, account or region: {row}");
        };
        assert!(
            seeded.get(account).and_then(|r| r.get(region)).is_some_and(|ids| ids.contains(id)),
            "{id} is not an instance of {account} in {region}"
        );
        assert_eq!(row["name"], format!("{account}-{region}"));
        assert!(seen.insert(id.to_string()), "{id} twice");
    }
    let expected: usize = accounts
        .iter()
        .flat_map(|account| regions.iter().map(move |region| seeded[*account][*region].len()))
        .sum();
    assert_eq!(seen.len(), expected, "{rows:?}");
}

/// Rows of a listing where error rows became `{error, detail}` records.
const CATCH: &str = "each {|r| try { $r | select id? name? account? profile? region? } catch {|e| {error: $e.msg, detail: $e.details.labels.0.text} } }";

#[test]
fn three_accounts_in_two_regions_are_one_table_with_account_and_region() {
    let (moto, seeded) = shared();
    let script = format!("aws ec2 instances --accounts [{A} {B} {C}] --role-name x --regions [{}]", REGIONS.join(" "));
    let rows = rows(moto, moto.client_env(), &moto.endpoint, &format!("{script} | select id name account region"));
    assert_rows_match(&rows, seeded, &[A, B, C], &REGIONS);
    // 1+4, 2+5, 3+6: each account's own counts, not the default account's (which has none).
    let per_account: BTreeMap<&str, usize> = rows.iter().fold(BTreeMap::new(), |mut counts, row| {
        *counts.entry(row["account"].as_str().unwrap_or("")).or_default() += 1;
        counts
    });
    assert_eq!(per_account, BTreeMap::from([(A, 5), (B, 7), (C, 9)]));
}

#[test]
fn a_refused_account_is_one_error_row_naming_it_and_the_others_still_come() {
    let (moto, seeded) = shared();
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::fail_matching(DENIED, 403)).expect("proxy");
    let script = format!("aws ec2 instances --accounts [{A} {DENIED}] --role-name x --regions [{}] | {CATCH}", REGIONS.join(" "));
    let rows = rows(moto, moto.client_env(), &proxy.endpoint(), &script);
    let (errors, listed): (Vec<Value>, Vec<Value>) = rows.into_iter().partition(|r| r.get("error").is_some());
    assert_eq!(errors.len(), 1, "one row for the account, not one per region: {errors:?}");
    let error = errors[0].to_string();
    assert!(error.contains(&format!("account {DENIED}")), "{error}");
    assert!(error.contains("AccessDenied") || error.contains("not authorized"), "{error}");
    assert_rows_match(&listed, seeded, &[A], &REGIONS);
}

#[test]
fn when_no_account_can_be_entered_the_command_fails_naming_them() {
    let (moto, _) = shared();
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::fail_matching("role/denied", 403)).expect("proxy");
    let out = run(moto, moto.client_env(), &proxy.endpoint(), &format!("aws ec2 instances --accounts [{A} {B}] --role-name denied"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("No account could be entered"), "{stderr}");
    assert!(stderr.contains(A) && stderr.contains(B), "{stderr}");
}

/// A config with a profile per account (a role assumed from `base`), and one that cannot get
/// credentials (its source profile is missing).
fn profile_env(moto: &Moto, dir: &Path) -> Vec<(String, String)> {
    std::fs::create_dir_all(dir).expect("dir");
    let config = dir.join("config");
    let credentials = dir.join("credentials");
    std::fs::write(
        &config,
        format!(
            "[profile base]\nregion = us-east-1\n\
             [profile team-a]\nrole_arn = arn:aws:iam::{A}:role/x\nsource_profile = base\nrole_session_name = t\n\
             [profile team-b]\nrole_arn = arn:aws:iam::{B}:role/x\nsource_profile = base\nrole_session_name = t\n\
             [profile broken]\nrole_arn = arn:aws:iam::{C}:role/x\nsource_profile = nowhere\n"
        ),
    )
    .expect("config");
    std::fs::write(&credentials, "[base]\naws_access_key_id = testing\naws_secret_access_key = testing\n").expect("credentials");
    let mut env = moto.client_env();
    // The profiles' credentials, not the environment's.
    env.retain(|(k, _)| !matches!(k.as_str(), "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" | "AWS_CONFIG_FILE" | "AWS_SHARED_CREDENTIALS_FILE"));
    env.push(("AWS_CONFIG_FILE".into(), config.to_string_lossy().into_owned()));
    env.push(("AWS_SHARED_CREDENTIALS_FILE".into(), credentials.to_string_lossy().into_owned()));
    env
}

#[test]
fn profiles_give_a_profile_and_account_column_and_a_broken_profile_is_an_error_row() {
    let (moto, seeded) = shared();
    let env = profile_env(moto, &moto.dir.join("profiles"));
    let script = format!("aws ec2 instances --profiles [team-a team-b broken] --regions [{}] | {CATCH}", REGIONS.join(" "));
    let rows = rows(moto, env.clone(), &moto.endpoint, &script);
    let (errors, listed): (Vec<Value>, Vec<Value>) = rows.into_iter().partition(|r| r.get("error").is_some());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].to_string().contains("profile broken"), "{}", errors[0]);
    for row in &listed {
        let expected = if row["profile"] == "team-a" { A } else { B };
        assert_eq!(row["account"], expected, "{row}");
    }
    assert_rows_match(&listed, seeded, &[A, B], &REGIONS);

    // An unknown profile is refused before any request, pointing at it.
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::default()).expect("proxy");
    let out = run(moto, env, &proxy.endpoint(), "aws ec2 instances --profiles [team-a nope]");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the profile `nope` does not exist") && stderr.contains("team-b"), "{stderr}");
    assert_eq!(proxy.log().len(), 0, "requests were made");
}

#[test]
fn bad_input_is_refused_before_any_request() {
    let (moto, _) = shared();
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::default()).expect("proxy");
    for (script, says) in [
        (format!("aws ec2 instances --accounts [{A} 12345] --role-name x"), "has 5 digits"),
        (format!("aws ec2 instances --accounts [{A}]"), "--accounts needs --role-name"),
        ("aws ec2 instances --role-name x".to_string(), "--role-name needs --accounts"),
        (format!("aws ec2 instances --accounts [{A}] --role-name 'a b'"), "cannot appear in an IAM role name"),
        (format!("aws ec2 instances --accounts [{A}] --role-name x --profiles [p]"), "cannot be used together"),
        (format!("aws ec2 instances --accounts [{A}] --role-name x --regions [eu-wset-1]"), "not an AWS region"),
    ] {
        let out = run(moto, moto.client_env(), &proxy.endpoint(), &script);
        assert!(!out.status.success(), "`{script}` succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "`{script}`: {stderr}");
        assert!(stderr.contains("help:"), "`{script}` has no help line: {stderr}");
        assert_eq!(proxy.log().len(), 0, "`{script}` made requests");
    }
}

/// Requests of `op` the server logged.
fn count(moto: &Moto, op: &str) -> usize {
    moto.requests(op, "")
}

#[test]
fn a_second_process_answers_every_account_from_the_cache_and_accounts_never_share_an_entry() {
    // A server of its own: the requests are counted by operation.
    let moto = Moto::start(&[]);
    let seeded = seed(&moto);
    let cache = moto.dir.join("cache");
    let script = format!(
        "aws ec2 instances --accounts [{A} {B} {C}] --role-name x --regions [{}] | select id name account region",
        REGIONS.join(" ")
    );
    let ops = ["AssumeRole", "GetCallerIdentity", "DescribeInstances"];
    let before: Vec<usize> = ops.iter().map(|op| count(&moto, op)).collect();
    let first = rows(&moto, moto.cached_env(&cache), &moto.endpoint, &script);
    assert_rows_match(&first, &seeded, &[A, B, C], &REGIONS);
    let made: Vec<usize> = ops.iter().zip(&before).map(|(op, b)| count(&moto, op) - b).collect();
    // One role assumed per account (its credentials serve both regions), one identity each,
    // one listing per account and region.
    assert_eq!(made, [3, 3, 6], "{ops:?}");

    let before: Vec<usize> = ops.iter().map(|op| count(&moto, op)).collect();
    let second = rows(&moto, moto.cached_env(&cache), &moto.endpoint, &script);
    assert_rows_match(&second, &seeded, &[A, B, C], &REGIONS);
    let made: Vec<usize> = ops.iter().zip(&before).map(|(op, b)| count(&moto, op) - b).collect();
    assert_eq!(made, [0, 0, 0], "the second process asked {ops:?}");

    // One entry per account and region, each under its own account.
    let keys = rows(&moto, moto.cached_env(&cache), &moto.endpoint, "aws cache ls | where key =~ DescribeInstances | get key | wrap key");
    let scopes: BTreeSet<(String, String)> = keys
        .iter()
        .filter_map(|k| k["key"].as_str())
        .map(|key| {
            let mut parts = key.split('/');
            (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string())
        })
        .collect();
    let expected: BTreeSet<(String, String)> =
        [A, B, C].iter().flat_map(|a| REGIONS.iter().map(move |r| (a.to_string(), r.to_string()))).collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert_eq!(scopes, expected);
}
