//! Tab completion through Nushell's own completion engine (`nu_cli::CompletionEngine`, what the
//! REPL calls on Tab), against real moto servers on loopback: the right candidates with the right
//! descriptions for each kind, for the identity the typed line selects, and never a blocked
//! prompt when the server is slow.

#[path = "../../../tests/support/moto.rs"]
mod moto;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nu_protocol::Value;
use nu_protocol::engine::{EngineState, Stack};

use moto::Moto;

/// One server with the example data and a few instances, shared by the tests of this file.
fn seeded() -> &'static Moto {
    static SEEDED: OnceLock<()> = OnceLock::new();
    let moto = Moto::shared();
    SEEDED.get_or_init(|| {
        moto.harness("seed-examples", &[]);
        moto.harness("seed-ec2", &["--instances", "6"]);
    });
    moto
}

fn engine(env: Vec<(String, String)>) -> Arc<EngineState> {
    let engine_state = nu_cmd_lang::create_default_context();
    let engine_state = nu_command::add_shell_command_context(engine_state);
    let engine_state = nu_cli::add_cli_context(engine_state);
    let mut engine_state = nu_cmd_aws::add_aws_context(engine_state);
    engine_state.add_env_var("PWD".into(), Value::test_string(std::env::temp_dir().to_string_lossy()));
    for (k, v) in env {
        engine_state.add_env_var(k, Value::test_string(v));
    }
    Arc::new(engine_state)
}

/// Each test gets its own cache directory, so every test starts cold.
fn env_of(moto: &Moto, name: &str) -> Vec<(String, String)> {
    moto.cached_env(&moto.dir.join(format!("cache-{name}")))
}

struct Suggested {
    value: String,
    description: Option<String>,
}

fn tab(engine_state: &Arc<EngineState>, line: &str) -> Vec<Suggested> {
    nu_cli::CompletionEngine::new(engine_state.clone(), Arc::new(Stack::new()))
        .fetch_completions_at(line, line.len())
        .into_iter()
        .map(|s| Suggested {
            value: s.suggestion.value,
            description: s.suggestion.description,
        })
        .collect()
}

/// Tab until something comes (the first Tab on a cold cache may beat the server).
fn tab_until(engine_state: &Arc<EngineState>, line: &str) -> Vec<Suggested> {
    for _ in 0..50 {
        let found = tab(engine_state, line);
        if !found.is_empty() {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no completion for `{line}`");
}

/// The candidates, sorted (Nushell orders them by its own `completions.sort` setting).
fn values(found: &[Suggested]) -> Vec<&str> {
    let mut values: Vec<&str> = found.iter().map(|s| s.value.as_str()).collect();
    values.sort();
    values
}

#[test]
fn bucket_names_then_keys_one_level_at_a_time() {
    let moto = seeded();
    let es = engine(env_of(moto, "s3"));
    let buckets = tab_until(&es, "aws s3 ls s3://");
    assert!(values(&buckets).contains(&"s3://my-bucket/"), "{:?}", values(&buckets));
    assert!(values(&tab_until(&es, "aws s3 ls s3://my-b")).contains(&"s3://my-bucket/"));
    let top = tab_until(&es, "aws s3 open s3://my-bucket/");
    assert_eq!(
        values(&top),
        ["s3://my-bucket/README.txt", "s3://my-bucket/data/", "s3://my-bucket/logs/", "s3://my-bucket/tmp/"]
    );
    let dir = top.iter().find(|s| s.value == "s3://my-bucket/data/").unwrap();
    assert_eq!(dir.description.as_deref(), Some("dir"));
    let data = tab_until(&es, "aws s3 head s3://my-bucket/data/r");
    assert_eq!(values(&data), ["s3://my-bucket/data/report.json"]);
    assert!(data[0].description.as_deref().is_some_and(|d| d.ends_with("bytes")));
    // Every command that takes an S3 path completes one.
    for cmd in ["aws s3 save", "aws s3 rm", "aws s3 ls"] {
        assert!(!tab_until(&es, &format!("{cmd} s3://my-bucket/lo")).is_empty(), "{cmd}");
    }
}

#[test]
fn instance_ids_come_with_name_state_and_type() {
    let moto = seeded();
    let es = engine(env_of(moto, "ids"));
    let ids = tab_until(&es, "aws ec2 instances ");
    assert!(ids.len() >= 6, "{}", ids.len());
    assert!(ids.iter().all(|s| s.value.starts_with("i-")));
    let described: Vec<&str> = ids.iter().filter_map(|s| s.description.as_deref()).collect();
    assert!(described.iter().any(|d| d.starts_with("web-0000 · stopped · ")), "{described:?}");
    assert!(!tab_until(&es, "aws ec2 stop ").is_empty());
    assert!(!tab_until(&es, "aws ec2 terminate ").is_empty());
}

#[test]
fn every_resource_id_kind_completes() {
    let moto = seeded();
    let es = engine(env_of(moto, "kinds"));
    for (cmd, prefix) in [
        ("aws ec2 security-groups ", "sg-"),
        ("aws ec2 vpcs ", "vpc-"),
        ("aws ec2 subnets ", "subnet-"),
        ("aws ec2 volumes ", "vol-"),
        ("aws ec2 snapshots ", "snap-"),
    ] {
        let found = tab_until(&es, cmd);
        assert!(found.iter().all(|s| s.value.starts_with(prefix)), "{cmd}: {:?}", values(&found));
    }
}

#[test]
fn regions_and_profiles() {
    let moto = seeded();
    let mut env = env_of(moto, "flags");
    let config = moto.dir.join("completion-profiles");
    std::fs::write(&config, "[default]\nregion = us-east-1\n[profile dev]\nregion = eu-west-1\n[profile prod]\n").unwrap();
    env.retain(|(k, _)| k != "AWS_CONFIG_FILE");
    env.push(("AWS_CONFIG_FILE".into(), config.to_string_lossy().into_owned()));
    let es = engine(env);
    let regions = tab_until(&es, "aws ec2 instances --region ");
    assert!(values(&regions).contains(&"eu-west-1"));
    assert!(values(&tab_until(&es, "aws s3 ls --region ap-")).iter().all(|r| r.starts_with("ap-")));
    assert_eq!(values(&tab(&es, "aws s3 buckets --profile ")), ["default", "dev", "prod"]);
}

#[test]
fn the_line_s_own_endpoint_and_profile_choose_the_names() {
    let first = seeded();
    let second = Moto::start(&[]);
    second.harness("seed-s3", &["--bucket", "only-on-second", "--objects", "1"]);
    let env = env_of(first, "identity");
    let es = engine(env.clone());
    let here = tab_until(&es, "aws s3 ls s3://");
    assert!(values(&here).contains(&"s3://my-bucket/"));
    assert!(!values(&here).contains(&"s3://only-on-second/"));
    let there = tab_until(&es, &format!("aws s3 ls --endpoint-url {} s3://", second.endpoint));
    assert_eq!(values(&there), ["s3://only-on-second/"]);

    // A `--profile` on the line, whose config points at the second server: its names, not the
    // names of the shell's own endpoint.
    let config = first.dir.join("identity-profiles");
    std::fs::write(&config, format!("[profile other]\nregion = us-east-1\nendpoint_url = {}\n", second.endpoint)).unwrap();
    let mut env = env;
    env.retain(|(k, _)| k != "AWS_CONFIG_FILE" && k != "AWS_ENDPOINT_URL");
    env.push(("AWS_CONFIG_FILE".into(), config.to_string_lossy().into_owned()));
    let es = engine(env);
    let by_profile = tab_until(&es, "aws s3 ls --profile other s3://");
    assert_eq!(values(&by_profile), ["s3://only-on-second/"]);
}

#[test]
fn a_slow_server_never_blocks_tab_and_the_next_tab_has_the_names() {
    let moto = seeded();
    let slow = moto::slow_proxy(&moto.endpoint, Duration::from_millis(500));
    let mut env = env_of(moto, "slow");
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), slow));
    let es = engine(env);
    // Cold: the first Tab returns (empty) instead of waiting for the server...
    assert!(tab(&es, "aws s3 ls s3://").is_empty());
    // ...and what arrives later is there for the next Tab.
    assert!(values(&tab_until(&es, "aws s3 ls s3://")).contains(&"s3://my-bucket/"));
}

#[test]
fn nuaws_turns_nushell_s_completion_cache_off_by_default() {
    // The REPL applies nuaws's default config; its effect is checked here on the engine config.
    let text = include_str!("../../../src/default_config.nu");
    assert!(text.contains("$env.config.completions.cache_size = 0"));
}

#[test]
fn the_line_s_own_region_chooses_the_ids() {
    let moto = Moto::start(&[]);
    moto.harness("seed-ec2", &["--instances", "3"]);
    moto.harness("seed-ec2", &["--instances", "2", "--region", "eu-west-1"]);
    let es = engine(env_of(&moto, "region"));
    let here = tab_until(&es, "aws ec2 instances ");
    let there = tab_until(&es, "aws ec2 stop --region eu-west-1 ");
    assert_eq!(here.len(), 3);
    assert_eq!(there.len(), 2);
    assert!(values(&there).iter().all(|id| !values(&here).contains(id)));
}

#[test]
fn keys_of_a_bucket_in_another_region_complete_after_one_redirect() {
    // The bucket lives in eu-west-1; the proxy answers for it as real S3 does (moto does not).
    let moto = Moto::shared();
    moto.harness("seed-s3", &["--bucket", "far-away", "--region", "eu-west-1", "--objects", "30", "--prefixes", "2"]);
    let proxy = nuaws_test_servers::FaultProxy::start(
        &moto.endpoint,
        nuaws_test_servers::FaultConfig::default().with_bucket_region("far-away", "eu-west-1"),
    )
    .expect("proxy");
    let mut env = env_of(moto, "far");
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint()));
    let es = engine(env);
    assert_eq!(
        values(&tab_until(&es, "aws s3 open s3://far-away/data/")),
        ["s3://far-away/data/p000/", "s3://far-away/data/p001/"]
    );
    let keys = tab_until(&es, "aws s3 open s3://far-away/data/p001/sub1/");
    assert!(values(&keys).iter().all(|k| k.starts_with("s3://far-away/data/p001/sub1/obj-")), "{:?}", values(&keys));
    let refused = proxy.log().iter().filter(|r| r.status == Some(301)).count();
    assert!(refused <= 1, "one redirect for the whole shell: {refused}");
}
