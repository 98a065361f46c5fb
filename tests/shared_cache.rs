//! End-to-end tests of the shared cache tier: real `nuaws` processes, each with a disk cache of
//! its own (two "machines" of one team), against a real moto (requests counted at the server)
//! and a real `redis-server` on loopback, one of each per test.

#[path = "support/moto.rs"]
mod moto;
#[path = "support/redis.rs"]
mod redis;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use moto::Moto;
use nuaws_test_servers::{FaultConfig, FaultProxy};
use redis::{Redis, RedisCluster};

const BUCKET: &str = "nuaws-team-bucket-7f3a";

struct Team {
    moto: Moto,
    /// One server, or none when the team shares a cluster (`url` names it).
    redis: Option<Redis>,
    url: String,
    key_file: PathBuf,
}

/// One person's machine: a disk cache of its own, and a team key.
struct Machine<'a> {
    team: &'a Team,
    cache: PathBuf,
    key_file: PathBuf,
    /// Where Redis is reached (itself, or a proxy).
    url: String,
    shared: bool,
    /// The lookup deadline: generous by default (a loaded CI machine must not turn hits into
    /// timeouts), short where lateness is the point.
    deadline: &'static str,
    /// More fields of the setting (`ca_file: ...`, `lease: ...`), as Nushell record fields.
    settings: String,
    /// The AWS profile the machine's user runs under (none: the environment's credentials).
    profile: Option<&'static str>,
    /// Where AWS is reached: moto, or a proxy in front of it.
    endpoint: String,
    /// More environment variables of the machine's user (`XDG_CONFIG_HOME`, ...).
    env: Vec<(String, String)>,
}

fn team() -> Team {
    let redis = Redis::start();
    let url = redis.url();
    team_on(Some(redis), url)
}

/// A team sharing what `url` reaches (`redis`, when it is one server).
fn team_on(redis: Option<Redis>, url: String) -> Team {
    let moto = Moto::start(&[]);
    let key_file = moto.dir.join("team.key");
    std::fs::write(&key_file, "k3y-of-the-team-0123456789abcdef0123456789\n").expect("key file");
    Team { moto, redis, url, key_file }
}

impl Team {
    fn machine(&self, name: &str) -> Machine<'_> {
        Machine {
            team: self,
            cache: self.moto.dir.join(format!("cache-{name}")),
            key_file: self.key_file.clone(),
            url: self.url.clone(),
            shared: true,
            deadline: "500ms",
            settings: String::new(),
            profile: None,
            endpoint: self.moto.endpoint.clone(),
            env: Vec::new(),
        }
    }

    /// The team's one Redis server.
    fn redis(&self) -> &Redis {
        self.redis.as_ref().expect("a team on one server")
    }

    /// Every request moto has logged so far.
    fn requests(&self) -> usize {
        std::fs::read_to_string(&self.moto.log).map_or(0, |t| t.lines().count())
    }

    fn objects(&self, prefix: &str, names: &[&str]) {
        let objects: Vec<serde_json::Value> = names
            .iter()
            .map(|n| serde_json::json!({"key": format!("{prefix}{n}"), "size": 10}))
            .collect();
        self.moto
            .harness("put-objects", &["--bucket", BUCKET, "--objects", &serde_json::Value::Array(objects).to_string()]);
    }
}

impl Machine<'_> {
    fn command(&self, script: &str) -> Command {
        let mut env = self.team.moto.cached_env(&self.cache);
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        let setup = if self.shared {
            format!(
                "$env.NUAWS_SHARED_CACHE = {{url: '{}', key_file: '{}', deadline: {}, {}}}; ",
                self.url,
                self.key_file.display(),
                self.deadline,
                self.settings
            )
        } else {
            String::new()
        };
        if let Some(profile) = self.profile {
            // Keys in the environment come first in the SDK's chain: the profile's role would
            // never be assumed. Its source profile holds them instead (see `write_profiles`).
            env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY");
            env.push(("AWS_PROFILE".into(), profile.into()));
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nuaws"));
        cmd.args(["--no-config-file", "--error-style", "plain", "-c", &format!("{setup}{script}")])
            .env_clear()
            .envs(moto::llvm_profile_env())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .envs(env)
            .envs(self.env.iter().cloned())
            .env("AWS_ENDPOINT_URL", &self.endpoint);
        cmd
    }

    fn output(&self, script: &str) -> Output {
        self.command(script).output().expect("run nuaws")
    }

    /// The JSON `script` prints; it must succeed.
    fn json(&self, script: &str) -> serde_json::Value {
        let out = self.output(&format!("{script} | to json --raw"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "`{script}` failed:\n{stderr}");
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("`{script}` gave no JSON ({e}): {text}\n{stderr}"))
    }
}

/// Instances and a listing, with the tier that answered each and the shared tier's figures.
const READS: &str = "let i = (aws ec2 instances | length); let ti = (aws cache last | get tier); \
    let o = (aws s3 ls s3://nuaws-team-bucket-7f3a/logs/ | length); let to = (aws cache last | get tier); \
    {instances: $i, instances_tier: $ti, objects: $o, objects_tier: $to, shared: (aws cache stats | get shared)}";

fn seeded_team() -> Team {
    let team = team();
    seed(&team);
    team
}

fn seed(team: &Team) {
    team.moto.harness("seed-ec2", &["--instances", "4"]);
    team.objects("logs/", &["payroll-2026.csv", "audit-trail.json", "board-minutes.txt"]);
}

#[test]
fn a_second_machine_answers_from_the_shared_tier_with_no_request_at_aws() {
    let team = seeded_team();
    let first = team.machine("a").json(READS);
    assert_eq!((first["instances"].as_u64(), first["objects"].as_u64()), (Some(4), Some(3)), "{first}");
    assert_eq!(first["instances_tier"], "network", "{first}");
    let before = team.requests();
    assert!(before > 0);
    let second = team.machine("b").json(READS);
    assert_eq!((second["instances"].as_u64(), second["objects"].as_u64()), (Some(4), Some(3)), "{second}");
    assert_eq!((second["instances_tier"].as_str(), second["objects_tier"].as_str()), (Some("shared"), Some("shared")), "{second}");
    assert_eq!(team.requests(), before, "the second machine asked AWS nothing (its identity included)");
    let shared = &second["shared"];
    assert!(shared["hits"].as_u64() >= Some(2), "{shared}");
    assert_eq!((shared["errors"].as_u64(), shared["timeouts"].as_u64(), shared["rejected"].as_u64()), (Some(0), Some(0), Some(0)), "{shared}");
    // Without the shared tier, a third machine pays for everything again.
    let mut alone = team.machine("c");
    alone.shared = false;
    let third = alone.json(READS);
    assert_eq!(third["instances_tier"], "network", "{third}");
    assert!(team.requests() > before);
}

#[test]
fn redis_holds_no_bucket_key_instance_id_or_tag_value() {
    let team = seeded_team();
    let a = team.machine("a");
    let seen = a.json("{ids: (aws ec2 instances | get id), names: (aws ec2 instances | get name), objects: (aws s3 ls s3://nuaws-team-bucket-7f3a/logs/ | get name)}");
    let mut secrets: Vec<String> = ["ids", "names", "objects"]
        .iter()
        .flat_map(|k| seen[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert_eq!(secrets.len(), 4 + 4 + 3, "{seen}");
    secrets.extend([BUCKET.to_string(), "payroll".into(), "team-1".into(), "123456789012".into(), "DescribeInstances".into()]);
    let keys = team.redis().keys();
    assert!(keys.len() >= 3, "identity, instances and the listing are shared: {keys:?}");
    for key in &keys {
        let value = team.redis().get_bytes(key);
        let value = String::from_utf8_lossy(&value);
        for secret in &secrets {
            assert!(!key.contains(secret.as_str()), "{secret} in the key name {key}");
            assert!(!value.contains(secret.as_str()), "{secret} in the value of {key}");
        }
    }
    // The check can see plaintext: the names are where the test looks.
    assert!(seen.to_string().contains("payroll"));
}

/// The Redis names a command adds.
fn added_by(team: &Team, machine: &Machine<'_>, script: &str) -> Vec<String> {
    let before = team.redis().keys();
    let out = machine.output(script);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    team.redis().keys().into_iter().filter(|k| !before.contains(k)).collect()
}

/// The largest value among `keys` (a listing, rather than an identity or a bucket's region).
fn largest(team: &Team, keys: &[String]) -> String {
    keys.iter()
        .max_by_key(|k| team.redis().cli(&["STRLEN", k]).parse::<u64>().unwrap_or(0))
        .cloned()
        .expect("a key")
}

const COPY: &str = "local v = redis.call('GET', KEYS[1]); redis.call('SET', KEYS[2], v); return 1";

#[test]
fn poisoned_moved_replayed_and_foreign_entries_are_rejected_and_counted() {
    let team = team();
    team.objects("x/", &["1", "2"]);
    team.objects("y/", &["1", "2", "3", "4", "5"]);
    let a = team.machine("a");
    // The identity and the bucket's region first, so each listing below adds one name.
    assert!(a.output("aws s3 ls s3://nuaws-team-bucket-7f3a/ | length").status.success());
    let x = added_by(&team, &a, "aws s3 ls s3://nuaws-team-bucket-7f3a/x/ | length");
    let y = added_by(&team, &a, "aws s3 ls s3://nuaws-team-bucket-7f3a/y/ | length");
    assert_eq!((x.len(), y.len()), (1, 1), "{x:?} {y:?}");
    let read_y = "{n: (aws s3 ls s3://nuaws-team-bucket-7f3a/y/ | length), tier: (aws cache last | get tier), rejected: (aws cache stats | get shared.rejected)}";
    let fresh = |name: &str| team.machine(name).json(read_y);
    // Untouched, a teammate is served from Redis.
    let ok = fresh("b");
    assert_eq!((ok["n"].as_u64(), ok["tier"].as_str(), ok["rejected"].as_u64()), (Some(5), Some("shared"), Some(0)), "{ok}");

    // Moved: x's (authentic) entry put under y's name.
    team.redis().eval(COPY, &[&x[0], &y[0]]);
    let moved = fresh("c");
    assert_eq!((moved["n"].as_u64(), moved["tier"].as_str(), moved["rejected"].as_u64()), (Some(5), Some("network"), Some(1)), "{moved}");

    // Foreign: sealed by a machine with another team key, put under y's name.
    let other_key = team.moto.dir.join("other.key");
    std::fs::write(&other_key, "an-other-team-key-fedcba9876543210fedcba98").expect("key");
    let mut foreign = team.machine("f");
    foreign.key_file = other_key;
    let theirs = added_by(&team, &foreign, "aws s3 ls s3://nuaws-team-bucket-7f3a/y/ | length");
    team.redis().eval(COPY, &[&largest(&team, &theirs), &y[0]]);
    let forged = fresh("d");
    assert_eq!((forged["n"].as_u64(), forged["tier"].as_str(), forged["rejected"].as_u64()), (Some(5), Some("network"), Some(1)), "{forged}");

    // Poisoned: bytes of nobody's making.
    team.redis().cli(&["SET", &y[0], "NUS1 not an entry at all"]);
    let poisoned = fresh("e");
    assert_eq!((poisoned["n"].as_u64(), poisoned["tier"].as_str(), poisoned["rejected"].as_u64()), (Some(5), Some("network"), Some(1)), "{poisoned}");

    // Replayed: an entry kept aside and put back, without a Redis TTL, after it expired.
    let short = team.machine("g");
    let script = "$env.NUAWS_CACHE_TTL = {objects: 1sec}; aws s3 ls s3://nuaws-team-bucket-7f3a/y/ --refresh | length";
    let out = short.output(script);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    team.redis().eval(COPY, &[&y[0], "aside"]);
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(team.redis().cli(&["EXISTS", &y[0]]), "0", "Redis dropped it at its TTL");
    team.redis().eval(COPY, &["aside", &y[0]]);
    let replayed = fresh("h");
    assert_eq!((replayed["n"].as_u64(), replayed["tier"].as_str(), replayed["rejected"].as_u64()), (Some(5), Some("network"), Some(1)), "{replayed}");
}

#[test]
fn a_dead_or_slow_redis_never_fails_a_command_and_costs_at_most_the_deadline() {
    let team = seeded_team();
    let lone = {
        let mut m = team.machine("lone");
        m.shared = false;
        m
    };
    // Reads that each ask the shared tier (other regions, a listing not read yet), then more.
    let script = |kill: &str| {
        format!(
            "let first = (aws ec2 instances | length); {kill} \
             let again = (aws s3 ls s3://nuaws-team-bucket-7f3a/logs/ | length); \
             let more = ([eu-west-1 eu-west-2 eu-central-1 ap-south-1 sa-east-1] | each {{|r| aws ec2 instances --region $r | length }}); \
             let last = (aws ec2 instances | length); \
             {{first: $first, again: $again, more: $more, last: $last, shared: (aws cache stats | get shared)}}"
        )
    };
    let started = Instant::now();
    let alone = lone.json(&script(""));
    let baseline = started.elapsed();
    assert_eq!(alone["more"], serde_json::json!([0, 0, 0, 0, 0]), "{alone}");
    // Killed mid-run: the first read is served by Redis, then it dies under the shell.
    team.machine("a").json(READS);
    let pid = team.redis().cli(&["INFO", "server"]).lines().find_map(|l| l.strip_prefix("process_id:").map(|p| p.trim().to_string())).expect("pid");
    let mut b = team.machine("b");
    b.deadline = "100ms";
    let started = Instant::now();
    let out = b.json(&script(&format!("let t = (aws cache last | get tier); kill --force {pid}; sleep 100ms;")));
    let elapsed = started.elapsed();
    assert_eq!((out["first"].as_u64(), out["again"].as_u64(), out["last"].as_u64()), (Some(4), Some(3), Some(4)), "{out}");
    assert_eq!(out["more"], alone["more"], "{out}");
    let shared = &out["shared"];
    assert_eq!(shared["hits"], 2, "identity and instances before the kill: {shared}");
    assert!(shared["errors"].as_u64().unwrap_or(0) + shared["timeouts"].as_u64().unwrap_or(0) >= 1, "{shared}");
    assert!(shared["skipped"].as_u64() >= Some(1), "the breaker opened: {shared}");
    assert!(elapsed < baseline + Duration::from_secs(2), "{elapsed:?} against {baseline:?} alone");
    team.redis().kill();

    // Behind a proxy that holds every connection for 1 s: lookups are late, so misses.
    let redis = Redis::start();
    let mut slow = team.machine("slow");
    slow.deadline = "100ms";
    slow.url = moto::slow_proxy(&format!("127.0.0.1:{}", redis.port), Duration::from_secs(1)).replace("http://", "redis://");
    let started = Instant::now();
    let out = slow.json(READS);
    let elapsed = started.elapsed();
    assert_eq!((out["instances"].as_u64(), out["objects"].as_u64()), (Some(4), Some(3)), "{out}");
    assert_eq!(out["instances_tier"], "network", "{out}");
    assert!(out["shared"]["timeouts"].as_u64() >= Some(1), "{out}");
    assert_eq!(out["shared"]["hits"], 0, "{out}");
    assert!(elapsed < baseline * 2 + Duration::from_secs(2), "{elapsed:?} against {baseline:?} alone");
}

#[test]
fn a_teammates_rm_makes_a_running_shells_next_listing_miss() {
    let team = team();
    team.objects("z/", &["keep-1", "keep-2", "gone"]);
    // The recheck alone (no tracking): a running shell re-reads the generation after 1 s.
    let mut a = team.machine("a");
    a.settings = "tracking: false".into();
    let ready = team.moto.dir.join("ready");
    let go = team.moto.dir.join("go");
    // A long-running shell: lists, waits for the teammate, lists again.
    let script = format!(
        "let first = (aws s3 ls s3://nuaws-team-bucket-7f3a/z/ | length); \
         let warm = (aws s3 ls s3://nuaws-team-bucket-7f3a/z/ | length); let warm_tier = (aws cache last | get tier); \
         'x' | save '{}'; \
         mut waited = 0; while not ('{}' | path exists) and $waited < 300 {{ sleep 50ms; $waited += 1 }}; \
         sleep 1100ms; \
         let after = (aws s3 ls s3://nuaws-team-bucket-7f3a/z/ | length); let after_tier = (aws cache last | get tier); \
         {{first: $first, warm: $warm, warm_tier: $warm_tier, after: $after, after_tier: $after_tier}} | to json --raw",
        ready.display(),
        go.display()
    );
    let shell = a.command(&script).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("spawn");
    let until = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(Instant::now() < until, "the shell did not list");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The teammate sees the listing from Redis, removes an object.
    let b = team.machine("b");
    let seen = b.json("{n: (aws s3 ls s3://nuaws-team-bucket-7f3a/z/ | length), tier: (aws cache last | get tier)}");
    assert_eq!((seen["n"].as_u64(), seen["tier"].as_str()), (Some(3), Some("shared")), "{seen}");
    let out = b.output("aws s3 rm s3://nuaws-team-bucket-7f3a/z/gone | ignore");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&go, "go").expect("go");
    let out = shell.wait_with_output().expect("shell");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!((got["first"].as_u64(), got["warm"].as_u64(), got["warm_tier"].as_str()), (Some(3), Some(3), Some("memory")), "{got}");
    assert_eq!((got["after"].as_u64(), got["after_tier"].as_str()), (Some(2), Some("network")), "{got}");
    // And a third machine, fresh, misses the old entry too.
    let c = team.machine("c").json("{n: (aws s3 ls s3://nuaws-team-bucket-7f3a/z/ | length), tier: (aws cache last | get tier)}");
    assert_eq!(c["n"], 2, "{c}");
}

#[test]
fn a_teammates_rm_drops_a_running_shells_memory_copy_at_once_through_tracking() {
    let team = team();
    team.objects("t/", &["keep-1", "keep-2", "gone"]);
    let ready = |name: &str| team.moto.dir.join(format!("ready-{name}"));
    let go = team.moto.dir.join("go");
    // Two running shells that trust a generation for a minute: only a push can tell them of the
    // teammate's rm in time. The second asks for no tracking: it shows what the push changes.
    let shell = |name: &str, tracking: bool| {
        let mut m = team.machine(name);
        m.settings = format!("recheck: 1min, tracking: {tracking}");
        let script = format!(
            "let first = (aws s3 ls s3://nuaws-team-bucket-7f3a/t/ | length); \
             let warm = (aws s3 ls s3://nuaws-team-bucket-7f3a/t/ | length); let warm_tier = (aws cache last | get tier); \
             mut waited = 0; while (aws cache stats | get shared.tracking) != {tracking} and $waited < 100 {{ sleep 50ms; $waited += 1 }}; \
             'x' | save '{}'; \
             $waited = 0; while not ('{}' | path exists) and $waited < 600 {{ sleep 20ms; $waited += 1 }}; \
             sleep 300ms; \
             let after = (aws s3 ls s3://nuaws-team-bucket-7f3a/t/ | length); let after_tier = (aws cache last | get tier); \
             {{first: $first, warm: $warm, warm_tier: $warm_tier, after: $after, after_tier: $after_tier, shared: (aws cache stats | get shared)}} | to json --raw",
            ready(name).display(),
            go.display()
        );
        m.command(&script).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("spawn")
    };
    let tracked = shell("tracked", true);
    let untracked = shell("untracked", false);
    let until = Instant::now() + Duration::from_secs(60);
    while !(ready("tracked").exists() && ready("untracked").exists()) {
        assert!(Instant::now() < until, "the shells did not list");
        std::thread::sleep(Duration::from_millis(20));
    }
    let b = team.machine("b");
    let out = b.output("aws s3 rm s3://nuaws-team-bucket-7f3a/t/gone | ignore");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&go, "go").expect("go");
    let result = |child: std::process::Child| {
        let out = child.wait_with_output().expect("shell");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")
    };
    let (tracked, untracked) = (result(tracked), result(untracked));
    for got in [&tracked, &untracked] {
        assert_eq!((got["first"].as_u64(), got["warm"].as_u64(), got["warm_tier"].as_str()), (Some(3), Some(3), Some("memory")), "{got}");
    }
    // Told by Redis, the tracked shell dropped its copy at once (well within its minute).
    assert_eq!(tracked["shared"]["tracking"], true, "{tracked}");
    assert!(tracked["shared"]["pushes"].as_u64() >= Some(1), "{tracked}");
    assert_eq!((tracked["after"].as_u64(), tracked["after_tier"].as_str()), (Some(2), Some("network")), "{tracked}");
    // Untold, the other still serves its memory copy until its recheck.
    assert_eq!(untracked["shared"]["tracking"], false, "{untracked}");
    assert_eq!((untracked["after"].as_u64(), untracked["after_tier"].as_str()), (Some(3), Some("memory")), "{untracked}");
}

#[test]
fn a_malformed_setting_is_a_spanned_error_with_help() {
    let team = team();
    let a = team.machine("a");
    let mut cmd = a.command("$env.NUAWS_SHARED_CACHE = {url: 'redis://me:secret@127.0.0.1:6379', key_file: '/nonexistent'}; aws ec2 instances");
    let out = cmd.output().expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NUAWS_SHARED_CACHE") && stderr.contains("credentials"), "{stderr}");
    let out = a.output("$env.NUAWS_SHARED_CACHE = {url: 'redis://127.0.0.1:1', key_file: '/nonexistent/team.key'}; aws ec2 instances");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("team key file"), "{stderr}");
}

/// Writes the shared cache file (`<config home>/nuaws/shared-cache.nuon`) with `text`, and the
/// team key beside it; returns the file.
fn config_file(config_home: &std::path::Path, team: &Team, text: &str) -> PathBuf {
    let dir = config_home.join("nuaws");
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::copy(&team.key_file, dir.join("team.key")).expect("key");
    let file = dir.join("shared-cache.nuon");
    std::fs::write(&file, text).expect("config file");
    file
}

#[test]
fn two_machines_share_through_the_config_file_and_the_variable_wins_over_it() {
    let team = seeded_team();
    // In the users' ~/.config/nuaws (the team's machines share a HOME here), no variable set;
    // the key file named relative to the config file.
    let home = team.moto.dir.join("home");
    config_file(
        &home.join(".config"),
        &team,
        &format!("# the team's cache\n{{\n    url: \"{}\"\n    key_file: team.key\n    deadline: 500ms\n}}\n", team.url),
    );
    let from_file = |name: &str| {
        let mut m = team.machine(name);
        m.shared = false;
        m
    };
    let first = from_file("a").json(READS);
    assert_eq!((first["instances"].as_u64(), first["objects"].as_u64()), (Some(4), Some(3)), "{first}");
    assert_eq!(first["instances_tier"], "network", "{first}");
    let before = team.requests();
    let second = from_file("b").json(READS);
    assert_eq!((second["instances_tier"].as_str(), second["objects_tier"].as_str()), (Some("shared"), Some("shared")), "{second}");
    assert_eq!((second["instances"].as_u64(), second["objects"].as_u64()), (Some(4), Some(3)), "{second}");
    assert_eq!(team.requests(), before, "the second machine asked AWS nothing");
    assert_eq!(second["shared"]["url"], team.url.as_str(), "{second}");

    // The variable wins: set, with another team key, the file is not read (its entries do not
    // open under other names: plain misses).
    let other_key = team.moto.dir.join("other.key");
    std::fs::write(&other_key, "an-other-team-key-fedcba9876543210fedcba98").expect("key");
    let mut by_variable = team.machine("c");
    by_variable.key_file = other_key;
    let third = by_variable.json(READS);
    assert_eq!((third["instances_tier"].as_str(), third["objects_tier"].as_str()), (Some("network"), Some("network")), "{third}");
    assert_eq!((third["shared"]["hits"].as_u64(), third["shared"]["rejected"].as_u64()), (Some(0), Some(0)), "{third}");
    assert!(third["shared"]["misses"].as_u64() >= Some(2), "{third}");
}

#[test]
fn a_malformed_config_file_is_said_once_naming_file_and_field_and_the_tier_stays_off() {
    let team = seeded_team();
    let mut a = team.machine("a");
    a.shared = false;
    let config_home = team.moto.dir.join("config-a");
    a.env.push(("XDG_CONFIG_HOME".into(), config_home.display().to_string()));
    let file = config_file(&config_home, &team, &format!("{{url: \"{}\", key_file: team.key, deadline: soon}}", team.url));
    let script = "{instances: (aws ec2 instances | length), objects: (aws s3 ls s3://nuaws-team-bucket-7f3a/logs/ | length), \
        shared: (aws cache stats | get shared)} | to json --raw";
    let out = a.output(script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a file nobody is looking at fails no command: {stderr}");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!((got["instances"].as_u64(), got["objects"].as_u64()), (Some(4), Some(3)), "{got}");
    assert_eq!(got["shared"], serde_json::Value::Null, "the tier is off: {got}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("shared cache")).collect();
    assert_eq!(warnings.len(), 1, "said once for three commands: {stderr}");
    let file_name = file.display().to_string();
    assert!(warnings[0].contains(&file_name) && warnings[0].contains("field `deadline`") && warnings[0].contains("duration"), "{stderr}");
    assert!(team.redis().keys().is_empty(), "nothing reached Redis: {:?}", team.redis().keys());

    // Not NUON at all: said too, with the file's name.
    std::fs::write(&file, "{url: \"redis://127.0.0.1:1\"").expect("file");
    let out = a.output("aws ec2 instances | length");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains(&file_name) && stderr.contains("not NUON"), "{stderr}");
    // With the cache off, the file is not even read: nothing to say.
    let out = a.output("$env.NUAWS_CACHE = 'off'; aws ec2 instances | length");
    assert!(out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("shared cache"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Profiles of moto's default account entered by AssumeRole with the environment's keys:
/// `alice` and `bob` are two sessions of the role `team`, `carol` a session (named alice too)
/// of the role `auditor`, each assumed with the keys of the profile `base`. moto gives every access key one caller ARN, so these are the way to
/// distinct identities.
fn write_profiles(team: &Team) {
    let config = team.moto.dir.join("home").join("aws-config");
    std::fs::create_dir_all(config.parent().expect("home")).expect("home");
    let profile = |name: &str, role: &str, session: &str| {
        format!(
            "[profile {name}]\nrole_arn = arn:aws:iam::123456789012:role/{role}\nrole_session_name = {session}\nsource_profile = base\n"
        )
    };
    let credentials = team.moto.dir.join("home").join("aws-credentials");
    std::fs::write(&credentials, "[base]\naws_access_key_id = testing\naws_secret_access_key = testing\n").expect("credentials");
    let text = [profile("alice", "team", "alice"), profile("bob", "team", "bob"), profile("carol", "auditor", "alice")].concat();
    std::fs::write(&config, text).expect("aws config");
}

/// The listings moto has answered: (DescribeInstances, ListObjectsV2).
fn listings_at_moto(team: &Team) -> (usize, usize) {
    (team.moto.requests("DescribeInstances", ""), team.moto.requests("ListObjectsV2", ""))
}

const ROOT: &str = "aws s3 ls s3://nuaws-team-bucket-7f3a/ | length";
const LISTING: &str = "aws s3 ls s3://nuaws-team-bucket-7f3a/logs/ | length";
const READ_LISTING: &str = "{n: (aws s3 ls s3://nuaws-team-bucket-7f3a/logs/ | length), tier: (aws cache last | get tier), shared: (aws cache stats | get shared)}";

#[test]
fn two_identities_share_nothing_unless_their_role_is_opted_in() {
    let team = seeded_team();
    write_profiles(&team);
    let user = |name: &str, profile: &'static str, settings: &str| {
        let mut m = team.machine(name);
        m.profile = Some(profile);
        m.settings = settings.to_string();
        m
    };

    // Alice lists (the bucket's root first: her identity and the bucket's region, so the
    // listing after it adds one name): her own requests at moto.
    let alice = user("alice", "alice", "");
    let before = listings_at_moto(&team);
    added_by(&team, &alice, ROOT);
    // (With the bucket's region where the root listing did not store it.)
    let alice_listing = vec![largest(&team, &added_by(&team, &alice, LISTING))];
    let first = alice.json(READS);
    assert_eq!((first["instances"].as_u64(), first["objects"].as_u64()), (Some(4), Some(3)), "{first}");
    assert_eq!(first["instances_tier"], "network", "{first}");
    let after_alice = listings_at_moto(&team);
    assert_eq!(after_alice, (before.0 + 1, before.1 + 2), "alice fetched each listing once");

    // Bob: the same account and role, another session. Nothing of alice's serves him.
    let bob = user("bob", "bob", "");
    added_by(&team, &bob, ROOT);
    let bob_names = added_by(&team, &bob, LISTING);
    assert!(!bob_names.is_empty(), "bob's listing is an entry of its own");
    let bob_listing = vec![largest(&team, &bob_names)];
    assert_ne!(bob_listing, alice_listing);
    let second = bob.json(READS);
    assert_eq!((second["instances"].as_u64(), second["objects"].as_u64()), (Some(4), Some(3)), "{second}");
    assert_eq!(second["instances_tier"], "network", "{second}");
    assert_eq!(second["shared"]["hits"], 0, "{second}");
    assert_eq!(listings_at_moto(&team), (after_alice.0 + 1, after_alice.1 + 2), "bob's listings were his own requests");

    // Not even when put under bob's name: alice's entry opens in her scope only.
    team.redis().eval(COPY, &[&alice_listing[0], &bob_listing[0]]);
    let moved = user("bob2", "bob", "").json(READ_LISTING);
    assert_eq!((moved["n"].as_u64(), moved["tier"].as_str()), (Some(3), Some("network")), "{moved}");
    assert_eq!(moved["shared"]["rejected"], 1, "{moved}");

    // A team that opts its role in shares across the role's sessions, and nothing more.
    let opted = "roles: [team]";
    let a = user("alice-opted", "alice", opted).json(READS);
    assert_eq!((a["instances_tier"].as_str(), a["objects_tier"].as_str()), (Some("network"), Some("network")), "{a}");
    let b = user("bob-opted", "bob", opted).json(READS);
    assert_eq!((b["instances_tier"].as_str(), b["objects_tier"].as_str()), (Some("shared"), Some("shared")), "{b}");
    assert_eq!((b["instances"].as_u64(), b["objects"].as_u64()), (Some(4), Some(3)), "{b}");
    let c = user("carol-opted", "carol", opted).json(READS);
    assert_eq!((c["instances_tier"].as_str(), c["objects_tier"].as_str()), (Some("network"), Some("network")), "{c}");
    assert_eq!(c["shared"]["hits"], 0, "another role (its session named alice too) shares nothing: {c}");
}

/// The moto log's entries since line `from`, as their operation names.
fn operations_since(team: &Team, from: usize) -> Vec<String> {
    let text = std::fs::read_to_string(&team.moto.log).unwrap_or_default();
    text.lines()
        .skip(from)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|e| e["op"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn sixteen_machines_missing_one_listing_at_once_make_one_request() {
    let team = seeded_team();
    let reference = team.moto.harness("list-ec2", &[]);
    let mut expected: Vec<serde_json::Value> = reference
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| serde_json::json!({"id": i["id"], "name": i["name"]}))
        .collect();
    expected.sort_by_key(|i| i["id"].as_str().unwrap_or_default().to_string());
    assert_eq!(expected.len(), 4);
    // Every request takes a second longer (the fault proxy in front of moto), so the sixteen
    // surely overlap with whoever fetches. Deadline and lease are generous: sixteen shells
    // starting on a loaded 2-core machine must not turn waits into timeouts.
    let proxy = FaultProxy::start(&team.moto.endpoint, FaultConfig::latency(Duration::from_secs(1))).expect("proxy");
    let from = team.requests();
    let script = "{rows: (aws ec2 instances | select id name | sort-by id), tier: (aws cache last | get tier), \
        shared: (aws cache stats | get shared)} | to json --raw";
    let shells: Vec<_> = (0..16)
        .map(|i| {
            let mut m = team.machine(&format!("m{i}"));
            m.deadline = "2sec";
            m.settings = "lease: 20sec".into();
            m.endpoint = proxy.endpoint();
            m.command(script)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn nuaws")
        })
        .collect();
    let answers: Vec<serde_json::Value> = shells
        .into_iter()
        .map(|shell| {
            let out = shell.wait_with_output().expect("nuaws");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice(&out.stdout).expect("json")
        })
        .collect();
    let operations = operations_since(&team, from);
    assert_eq!(operations.len(), 2, "one identity and one listing for all sixteen: {operations:?}");
    assert_eq!(
        (operations.iter().filter(|o| *o == "GetCallerIdentity").count(), operations.iter().filter(|o| *o == "DescribeInstances").count()),
        (1, 1),
        "{operations:?}"
    );
    for answer in &answers {
        assert_eq!(answer["rows"], serde_json::Value::Array(expected.clone()), "{answer}");
    }
    let tiers: Vec<&str> = answers.iter().filter_map(|a| a["tier"].as_str()).collect();
    assert_eq!(tiers.iter().filter(|t| **t == "network").count(), 1, "{tiers:?}");
    assert_eq!(tiers.iter().filter(|t| **t == "shared").count(), 15, "{tiers:?}");
    let sum = |field: &str| answers.iter().map(|a| a["shared"][field].as_u64().unwrap_or(0)).sum::<u64>();
    assert_eq!(sum("lease_wins"), 2, "one lease for the identity, one for the listing: {answers:?}");
    assert!(sum("lease_waits") >= 1, "{answers:?}");
    assert_eq!(sum("lease_filled"), sum("lease_waits"), "every wait ended with the holder's answer: {answers:?}");
    assert_eq!((sum("lease_lapsed"), sum("errors"), sum("timeouts")), (0, 0, 0), "{answers:?}");
    assert!(team.redis().keys().iter().all(|k| !k.ends_with(":lease")), "every lease was given up");
}

#[test]
fn a_dead_lease_holder_blocks_nobody_past_the_lease() {
    let team = seeded_team();
    let a = team.machine("a");
    // The identity first, so the read below misses only the listing.
    assert!(a.output("aws ec2 instances --region eu-west-1 | length").status.success());
    let listing = added_by(&team, &a, LISTING);
    assert!(!listing.is_empty(), "the listing (and the bucket's region): {listing:?}");
    let entry = largest(&team, &listing);
    // A holder that died: its lease stays until it lapses, and no answer comes.
    team.redis().cli(&["DEL", &entry]);
    team.redis().cli(&["SET", &format!("{entry}:lease"), "a-dead-machine", "PX", "60000"]);
    let mut b = team.machine("b");
    b.settings = "lease: 1500ms".into();
    let started = Instant::now();
    let out = b.json(READ_LISTING);
    let waited = started.elapsed();
    assert_eq!((out["n"].as_u64(), out["tier"].as_str()), (Some(3), Some("network")), "{out}");
    assert_eq!((out["shared"]["lease_waits"].as_u64(), out["shared"]["lease_lapsed"].as_u64()), (Some(1), Some(1)), "{out}");
    assert!(waited >= Duration::from_millis(1500), "it waited for the lease: {waited:?}");
    // And the dead machine's lease is not taken from it: only its owner gives it up.
    assert_eq!(team.redis().cli(&["GET", &format!("{entry}:lease")]), "a-dead-machine");
}

#[test]
fn over_tls_a_second_machine_answers_from_the_shared_tier_and_a_wrong_ca_is_a_counted_error() {
    let redis = Redis::start_tls();
    let ca = redis.tls_ca.clone().expect("a CA");
    let url = redis.url();
    assert!(url.starts_with("rediss://"), "{url}");
    let team = team_on(Some(redis), url);
    seed(&team);
    let trusting = |name: &str, ca: &std::path::Path| {
        let mut m = team.machine(name);
        m.settings = format!("ca_file: '{}'", ca.display());
        m
    };
    let first = trusting("a", &ca).json(READS);
    assert_eq!((first["instances"].as_u64(), first["objects"].as_u64()), (Some(4), Some(3)), "{first}");
    assert_eq!(first["instances_tier"], "network", "{first}");
    let before = team.requests();
    let second = trusting("b", &ca).json(READS);
    assert_eq!((second["instances_tier"].as_str(), second["objects_tier"].as_str()), (Some("shared"), Some("shared")), "{second}");
    assert_eq!((second["instances"].as_u64(), second["objects"].as_u64()), (Some(4), Some(3)), "{second}");
    assert_eq!(team.requests(), before, "the second machine asked AWS nothing");
    assert_eq!((second["shared"]["errors"].as_u64(), second["shared"]["rejected"].as_u64()), (Some(0), Some(0)), "{second}");
    assert!(team.redis().keys().len() >= 3, "entries went over TLS");

    // A CA that did not sign the server's certificate: no connection, counted as errors; AWS
    // answers everything.
    let other = redis::make_ca(&team.moto.dir, "other-ca");
    let wrong = trusting("c", &other).json(READS);
    assert_eq!((wrong["instances"].as_u64(), wrong["objects"].as_u64()), (Some(4), Some(3)), "{wrong}");
    assert_eq!((wrong["instances_tier"].as_str(), wrong["objects_tier"].as_str()), (Some("network"), Some("network")), "{wrong}");
    let shared = &wrong["shared"];
    assert!(shared["errors"].as_u64() >= Some(1), "{shared}");
    assert_eq!((shared["hits"].as_u64(), shared["misses"].as_u64()), (Some(0), Some(0)), "faults are not misses: {shared}");
    assert!(team.requests() > before);
    // Plain text to a TLS port is a fault too, never an answer.
    let mut plain = team.machine("d");
    plain.url = plain.url.replace("rediss://", "redis://");
    let out = plain.json(READS);
    assert_eq!((out["instances"].as_u64(), out["instances_tier"].as_str()), (Some(4), Some("network")), "{out}");
    assert_eq!(out["shared"]["hits"], 0, "{out}");
}

#[test]
fn with_an_acl_user_machines_share_and_a_wrong_password_is_a_counted_error() {
    // As a managed Redis is given to a team: only an ACL user with a password gets in.
    const PASSWORD: &str = "pw-of-the-team-5d1e";
    let redis = Redis::start_with_user("team", PASSWORD);
    let url = redis.url();
    let team = team_on(Some(redis), url);
    seed(&team);
    let logged_in = |name: &str, password: &str| {
        let mut m = team.machine(name);
        m.settings = "username: 'team', password_env: 'TEAM_REDIS_PASSWORD'".into();
        m.env.push(("TEAM_REDIS_PASSWORD".into(), password.into()));
        m
    };
    let first = logged_in("a", PASSWORD).json(READS);
    assert_eq!((first["instances"].as_u64(), first["instances_tier"].as_str()), (Some(4), Some("network")), "{first}");
    let before = team.requests();
    let second = logged_in("b", PASSWORD).json(READS);
    assert_eq!((second["instances_tier"].as_str(), second["objects_tier"].as_str()), (Some("shared"), Some("shared")), "{second}");
    assert_eq!(team.requests(), before, "the second machine asked AWS nothing");
    assert_eq!((second["shared"]["errors"].as_u64(), second["shared"]["rejected"].as_u64()), (Some(0), Some(0)), "{second}");
    assert!(team.redis().keys().len() >= 3, "entries were written as the ACL user");
    assert!(!second.to_string().contains(PASSWORD), "the password is never shown: {second}");

    // A wrong password, and none at all: no connection, counted as errors; AWS answers.
    let wrong = logged_in("c", "not-the-password").json(READS);
    let anonymous = team.machine("d").json(READS);
    for out in [&wrong, &anonymous] {
        assert_eq!((out["instances"].as_u64(), out["instances_tier"].as_str()), (Some(4), Some("network")), "{out}");
        assert!(out["shared"]["errors"].as_u64() >= Some(1), "{out}");
        assert_eq!(out["shared"]["hits"], 0, "{out}");
    }
    assert!(team.requests() > before);
}

#[test]
fn machines_share_through_a_redis_cluster_with_entries_on_every_node() {
    let cluster = RedisCluster::start();
    let team = team_on(None, cluster.url());
    seed(&team);
    let script = "let i = (aws ec2 instances | length); let ti = (aws cache last | get tier); \
        let o = (aws s3 ls s3://nuaws-team-bucket-7f3a/logs/ | length); let to = (aws cache last | get tier); \
        let more = ([eu-west-1 eu-west-2 eu-central-1 ap-south-1 sa-east-1 ca-central-1] | each {|r| aws ec2 instances --region $r | length; aws cache last | get tier }); \
        {instances: $i, instances_tier: $ti, objects: $o, objects_tier: $to, more: $more, shared: (aws cache stats | get shared)}";
    let first = team.machine("a").json(script);
    assert_eq!((first["instances"].as_u64(), first["objects"].as_u64()), (Some(4), Some(3)), "{first}");
    assert_eq!(first["instances_tier"], "network", "{first}");
    let before = team.requests();
    let second = team.machine("b").json(script);
    assert_eq!((second["instances_tier"].as_str(), second["objects_tier"].as_str()), (Some("shared"), Some("shared")), "{second}");
    assert_eq!(second["more"], serde_json::Value::Array(vec![serde_json::json!("shared"); 6]), "{second}");
    assert_eq!((second["instances"].as_u64(), second["objects"].as_u64()), (Some(4), Some(3)), "{second}");
    assert_eq!(team.requests(), before, "the second machine asked AWS nothing");
    let shared = &second["shared"];
    assert_eq!((shared["errors"].as_u64(), shared["timeouts"].as_u64(), shared["rejected"].as_u64()), (Some(0), Some(0), Some(0)), "{shared}");
    let per_node = cluster.keys_per_node();
    let counts: Vec<usize> = per_node.iter().map(Vec::len).collect();
    assert!(counts.iter().filter(|n| **n > 0).count() >= 2, "entries spread over the nodes: {counts:?}");
    assert!(counts.iter().sum::<usize>() >= 9, "{counts:?}");

    // A teammate's rm moves the bucket's generation on whichever node holds it.
    let out = team.machine("b").output("aws s3 rm s3://nuaws-team-bucket-7f3a/logs/audit-trail.json | ignore");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let third = team.machine("c").json(READ_LISTING);
    assert_eq!((third["n"].as_u64(), third["tier"].as_str()), (Some(2), Some("network")), "{third}");
}
