//! End-to-end tests of the result cache: the real `nuaws` binary against a real moto server,
//! with requests counted at the server. Each test has a server and a cache directory of its own.

#[path = "support/moto.rs"]
mod moto;

use std::path::{Path, PathBuf};
use std::process::Command;

use moto::Moto;

struct Setup {
    moto: Moto,
    cache: PathBuf,
}

fn setup(instances: usize) -> Setup {
    let moto = Moto::start(&[]);
    if instances > 0 {
        moto.harness("seed-ec2", &["--instances", &instances.to_string()]);
    }
    let cache = moto.dir.join("cache");
    Setup { moto, cache }
}

fn run(env: &[(String, String)], script: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nuaws"))
        .args(["-n", "--error-style", "plain", "-c", script])
        .env_clear()
        .envs(moto::llvm_profile_env())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().cloned())
        .output()
        .expect("run nuaws");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "`{script}` failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Setup {
    fn env(&self) -> Vec<(String, String)> {
        self.moto.cached_env(&self.cache)
    }

    fn nuaws(&self, script: &str) -> String {
        run(&self.env(), script)
    }

    fn requests(&self, op: &str) -> usize {
        self.moto.requests(op, "")
    }
}

#[test]
fn a_second_read_in_the_same_shell_comes_from_memory() {
    let s = setup(20);
    let out = s.nuaws("aws ec2 instances | length; let first = (aws cache last | get tier); aws ec2 instances | length | ignore; [$first (aws cache last | get tier)] | str join ' '");
    assert_eq!(out, "network memory");
    assert_eq!(s.requests("DescribeInstances"), 1);
    assert_eq!(s.requests("GetCallerIdentity"), 1);
}

#[test]
fn metrics_of_each_process_reach_the_history_when_it_exits() {
    let s = setup(5);
    assert_eq!(s.nuaws("aws ec2 instances | length"), "5");
    // A new process: the listing comes from disk.
    assert_eq!(s.nuaws("aws ec2 instances | length"), "5");
    let out = s.nuaws(
        "let r = (aws metrics | where operation == DescribeInstances | get 0); \
         $'($r.requests) ($r.misses) ($r.hits_disk) ($r.p50 > 0sec)'",
    );
    assert_eq!(out, format!("{} 1 1 true", s.requests("DescribeInstances")));
    assert_eq!(s.requests("DescribeInstances"), 1);
    // With the cache off, figures stay in the process.
    let mut off = s.env();
    off.push(("NUAWS_CACHE".into(), "off".into()));
    run(&off, "aws ec2 instances | length");
    let out = s.nuaws("aws metrics | where operation == DescribeInstances | get 0.requests");
    assert_eq!(out, "1");
}

#[test]
fn a_new_process_reads_from_disk_without_any_request() {
    let s = setup(20);
    assert_eq!(s.nuaws("aws ec2 instances | length"), "20");
    assert_eq!(s.nuaws("aws s3 buckets | length"), "0");
    let (instances, identity, buckets) =
        (s.requests("DescribeInstances"), s.requests("GetCallerIdentity"), s.requests("ListBuckets"));
    let out = s.nuaws("let n = (aws ec2 instances | length); [$n (aws cache last | get tier)] | str join ' '");
    assert_eq!(out, "20 disk");
    assert_eq!(s.nuaws("aws s3 buckets | length"), "0");
    assert_eq!(s.requests("DescribeInstances"), instances, "no DescribeInstances from the second process");
    assert_eq!(s.requests("GetCallerIdentity"), identity, "the identity comes from disk too");
    assert_eq!(s.requests("ListBuckets"), buckets);
}

#[test]
fn refresh_and_no_cache_go_to_the_network() {
    let s = setup(5);
    s.nuaws("aws ec2 instances | length");
    let before = s.requests("DescribeInstances");
    assert_eq!(s.nuaws("aws ec2 instances --refresh | length; aws cache last | get tier"), "network");
    assert_eq!(s.nuaws("aws ec2 instances --no-cache | length; aws cache last | get tier"), "network");
    assert_eq!(s.nuaws("$env.NUAWS_CACHE = 'off'; aws ec2 instances | length; aws cache last | get tier"), "network");
    assert_eq!(s.requests("DescribeInstances"), before + 3);
    // --refresh rewrote the entry: the next read is a hit again.
    assert_eq!(s.nuaws("aws ec2 instances | length; aws cache last | get tier"), "disk");
}

#[test]
fn ttl_overrides_apply() {
    let s = setup(3);
    s.nuaws("aws ec2 instances | length");
    let before = s.requests("DescribeInstances");
    // A zero TTL turns caching of instances off; other resources keep theirs.
    let out = s.nuaws("$env.NUAWS_CACHE_TTL = {instances: 0sec}; aws ec2 instances | length; aws cache last | get tier");
    assert_eq!(out, "network");
    assert_eq!(s.requests("DescribeInstances"), before + 1);
    let out = run(&s.env(), "$env.NUAWS_CACHE_TTL = {instancez: 1min}; try { aws ec2 instances } catch {|e| $e.msg }");
    assert!(out.contains("unknown resource `instancez`"), "{out}");
}

#[test]
fn writes_invalidate_what_they_make_stale() {
    let s = setup(4);
    s.moto.harness("seed-s3", &["--bucket", "inval", "--objects", "3", "--prefixes", "1"]);
    s.moto.harness("seed-s3", &["--bucket", "other", "--objects", "2", "--prefixes", "1"]);
    let count = "aws s3 ls s3://inval -R | length";
    assert_eq!(s.nuaws(count), "3");
    assert_eq!(s.nuaws("aws s3 ls s3://other -R | length"), "2");
    let lists = s.requests("ListObjectsV2");
    s.nuaws("'new' | aws s3 save s3://inval/fresh.txt");
    assert_eq!(s.nuaws(count), "4", "the listing shows the new object");
    assert_eq!(s.nuaws("aws s3 ls s3://other -R | length; aws cache last | get tier"), "disk", "other buckets keep their entries");
    s.nuaws("aws s3 rm s3://inval/fresh.txt | ignore");
    assert_eq!(s.nuaws(count), "3");
    assert_eq!(s.requests("ListObjectsV2"), lists + 2);
    // A copy into a sub-prefix makes the bucket's listing and the sub-prefix's stale.
    let sub = "aws s3 ls s3://inval/copied/ -R | length";
    assert_eq!(s.nuaws(sub), "0");
    s.nuaws("aws s3 cp -R s3://inval/data/ s3://inval/copied/ | ignore");
    assert_eq!(s.nuaws(sub), "3", "the sub-prefix listing shows the copies");
    assert_eq!(s.nuaws(count), "6", "the bucket listing shows them too");

    let running = "aws ec2 instances | where state == running | length";
    let before: usize = s.nuaws(running).parse().unwrap();
    s.nuaws("aws ec2 instances --filter {instance-state-name: running} | first | aws ec2 stop | ignore");
    let after: usize = s.nuaws(running).parse().unwrap();
    assert_eq!(after, before - 1, "the stop is visible at once");
}

#[test]
fn two_identities_never_share_an_entry() {
    let s = setup(3);
    let user = s.moto.harness("make-user", &[]);
    let mut other = s.env();
    for (k, v) in other.iter_mut() {
        match k.as_str() {
            "AWS_ACCESS_KEY_ID" => *v = user["access_key_id"].as_str().unwrap().to_string(),
            "AWS_SECRET_ACCESS_KEY" => *v = user["secret_access_key"].as_str().unwrap().to_string(),
            _ => {}
        }
    }
    s.nuaws("aws ec2 instances | length");
    let before = s.requests("DescribeInstances");
    let out = run(&other, "aws ec2 instances | length; aws cache last | get tier");
    assert_eq!(out, "network", "another principal must not see the first one's entry");
    assert_eq!(s.requests("DescribeInstances"), before + 1);
    let accounts = s.nuaws("aws cache ls '*/DescribeInstances/*' | length");
    assert_eq!(accounts, "2");
    // Another endpoint (a second server): another namespace, though account and ARN are moto's.
    let second = Moto::start(&[]);
    let mut elsewhere = s.env();
    for (k, v) in elsewhere.iter_mut() {
        if k == "AWS_ENDPOINT_URL" {
            *v = second.endpoint.clone();
        }
    }
    assert_eq!(run(&elsewhere, "aws ec2 instances | length; aws cache last | get tier"), "network");
}

#[test]
fn clear_by_glob_service_region_and_account() {
    let s = setup(2);
    s.nuaws("aws ec2 instances | length; aws ec2 vpcs | length; aws s3 buckets | length");
    s.nuaws("aws ec2 instances --region eu-west-1 | length");
    let count = |glob: &str| -> usize { s.nuaws(&format!("aws cache ls '{glob}' | length")).parse().unwrap() };
    assert_eq!(count("*/ec2/*"), 3);
    assert_eq!(s.nuaws("aws cache clear --service ec2 --region eu-west-1 | get removed"), "1");
    assert_eq!(count("*/ec2/*"), 2);
    assert_eq!(s.nuaws("aws cache clear '*/DescribeVpcs/*' | get removed"), "1");
    assert_eq!(count("*/ec2/*"), 1);
    let account = s.nuaws("aws cache ls | first | get account");
    assert_eq!(s.nuaws(&format!("aws cache clear --account {account} | get removed")), "2");
    assert_eq!(count("*"), 0);
}

#[test]
fn stats_count_hits_per_tier_and_service() {
    let s = setup(2);
    s.nuaws("aws ec2 instances | length");
    let out = s.nuaws(
        "aws ec2 instances | length; aws ec2 instances | length; aws cache stats | get requests | where service == ec2 | select tier hits misses | sort-by tier | to nuon",
    );
    // Second process: the first read misses memory and hits disk, the second hits memory.
    assert_eq!(out, "[[tier, hits, misses]; [disk, 1, 0], [memory, 1, 1]]");
    let tiers = s.nuaws("aws cache stats | get tiers.tier | str join ,");
    assert_eq!(tiers, "memory,disk");
}

#[test]
fn warm_fills_the_cache_in_the_background() {
    let s = setup(3);
    let out = s.nuaws("aws cache warm | get warming | str join ,");
    assert_eq!(out, "buckets,instances,security-groups,vpcs,subnets,regions");
    // The prompt came back at once; in a shell that stays, the listings land in the cache.
    let out = s.nuaws(
        "aws cache warm | ignore
         mut waited = 0
         while (aws cache ls | length) < 6 and $waited < 150 { sleep 200ms; $waited += 1 }
         aws cache ls | get operation | sort | str join ,",
    );
    assert_eq!(out, "DescribeInstances,DescribeRegions,DescribeSecurityGroups,DescribeSubnets,DescribeVpcs,ListBuckets");
    let before = s.requests("DescribeInstances");
    assert_eq!(s.nuaws("aws ec2 instances | length; aws cache last | get tier"), "disk");
    assert_eq!(s.requests("DescribeInstances"), before);
}

#[test]
fn a_listing_cut_short_is_not_cached() {
    let s = setup(0);
    s.moto.harness("seed-s3", &["--bucket", "cut", "--objects", "2500", "--prefixes", "3"]);
    s.nuaws("aws s3 ls s3://cut -R | first 3 | length");
    assert_eq!(s.nuaws("aws cache ls '*/ListObjectsV2/*' | length"), "0");
    s.nuaws("aws s3 ls s3://cut -R | length");
    assert_eq!(s.nuaws("aws cache ls '*/ListObjectsV2/*' | get rows.0"), "2500");
}

#[test]
fn a_broken_cache_directory_never_fails_a_command() {
    let s = setup(2);
    // A file where the cache directory should be: the disk tier is off, commands still work.
    std::fs::write(&s.cache, "not a directory").unwrap();
    let out = new_process(&s, "[(aws ec2 instances | length) (aws cache stats | get disk_enabled)] | to nuon");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[2, false]");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nuaws:"), "the problem is said once");
    assert!(Path::new(&s.cache).is_file(), "nothing of the user's is removed");
}

/// What a process killed while it had the cache open leaves (kill -9, a crash): its marker in
/// `v1.open`, naming a pid that no longer runs.
fn leave_a_dead_process_marker(cache: &Path) -> PathBuf {
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let markers = cache.join("v1.open");
    std::fs::create_dir_all(&markers).unwrap();
    let marker = markers.join(dead_pid.to_string());
    std::fs::write(&marker, "").unwrap();
    marker
}

/// A new nuaws process on the setup's cache: `script`'s output, which must succeed, stderr and all.
fn new_process(s: &Setup, script: &str) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_nuaws"))
        .args(["-n", "-c", script])
        .env_clear()
        .envs(moto::llvm_profile_env())
        .envs(s.env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn set_aside(cache: &Path) -> bool {
    std::fs::read_dir(cache).unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with("v1.corrupt-"))
}

#[test]
fn an_intact_cache_left_by_a_crashed_process_is_verified_and_kept() {
    let s = setup(2);
    assert_eq!(s.nuaws("aws ec2 instances | length"), "2");
    let marker = leave_a_dead_process_marker(&s.cache);
    // The next process checks the cache in a child first; it is intact, so it is read as it is.
    let out = new_process(&s, "aws ec2 instances | length; aws cache last | get tier");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "disk", "the entry survived");
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "", "nothing to warn about");
    assert!(!marker.exists(), "the dead process's marker is gone");
    assert!(!set_aside(&s.cache), "an intact cache is not moved aside");
}

#[test]
fn a_cache_left_damaged_by_a_crashed_process_is_verified_apart_and_set_aside() {
    let s = setup(3);
    assert_eq!(s.nuaws("aws ec2 instances | length"), "3");
    // A process that had the cache open died, and the file's data pages were overwritten:
    // reading them in this process could crash it.
    leave_a_dead_process_marker(&s.cache);
    let data = s.cache.join("v1/data.mdb");
    let mut bytes = std::fs::read(&data).unwrap();
    assert!(bytes.len() > 3 * 4096);
    let garbage: Vec<u8> = (0..bytes.len() - 2 * 4096).map(|i| (i * 7919 % 251) as u8).collect();
    bytes[2 * 4096..].copy_from_slice(&garbage);
    std::fs::write(&data, &bytes).unwrap();

    let out = new_process(&s, "aws ec2 instances | length");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3", "the right answer, from the server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("moved it aside"), "said once: {stderr}");
    assert!(set_aside(&s.cache), "the damaged cache is kept aside, not deleted");
    // And the fresh cache works.
    assert_eq!(s.nuaws("aws ec2 instances | length; aws cache last | get tier"), "disk");
}
