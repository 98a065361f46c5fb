//! In-process tests of the AWS commands: every example parses and type-checks, and every error
//! case a user can hit (bad URL, bad bucket name, missing bucket, unknown instance, missing
//! credentials, unknown profile, access denied) is a Nushell error with the right message, help
//! and span, checked against a real moto server on loopback.

#[path = "../../../tests/support/moto.rs"]
mod moto;

use nu_protocol::debugger::WithoutDebug;
use nu_protocol::engine::{EngineState, Stack, StateWorkingSet};
use nu_protocol::shell_error::generic::GenericError;
use nu_protocol::{PipelineData, ShellError, Span, Value};

use moto::Moto;
use nuaws_test_servers::{FaultConfig, FaultProxy};

fn engine(env: &[(String, String)]) -> EngineState {
    let engine_state = nu_cmd_lang::create_default_context();
    let engine_state = nu_command::add_shell_command_context(engine_state);
    let mut engine_state = nu_cmd_aws::add_aws_context(engine_state);
    engine_state.add_env_var(
        "PWD".into(),
        Value::test_string(std::env::temp_dir().to_string_lossy()),
    );
    for (k, v) in env {
        engine_state.add_env_var(k.clone(), Value::test_string(v));
    }
    engine_state
}

fn eval(engine_state: &mut EngineState, src: &str) -> Result<Value, ShellError> {
    let block = {
        let mut working_set = StateWorkingSet::new(engine_state);
        let block = nu_parser::parse(&mut working_set, Some("test"), src.as_bytes(), false);
        assert!(working_set.parse_errors.is_empty(), "{src}: {:?}", working_set.parse_errors);
        assert!(working_set.compile_errors.is_empty(), "{src}: {:?}", working_set.compile_errors);
        engine_state.merge_delta(working_set.render())?;
        block
    };
    let mut stack = Stack::new().collect_value();
    nu_engine::eval_block::<WithoutDebug>(engine_state, &mut stack, &block, PipelineData::empty())?
        .body
        .into_value(Span::unknown())
}

/// Runs `src`, which must fail with a generic error; returns it and the source text it points at.
fn failure(engine_state: &mut EngineState, src: &str) -> (GenericError, String) {
    match eval(engine_state, src) {
        Ok(v) => panic!("`{src}` succeeded: {v:?}"),
        Err(ShellError::Generic(err)) => {
            let span = match &err.site {
                nu_protocol::shell_error::ErrorSite::Span(span) => *span,
                other => panic!("`{src}`: error without a span: {other:?}"),
            };
            let text = String::from_utf8_lossy(engine_state.get_span_contents(span)).to_string();
            (err, text)
        }
        Err(other) => panic!("`{src}`: unexpected error {other:?}"),
    }
}

fn moto_env() -> Vec<(String, String)> {
    Moto::shared().client_env()
}

#[test]
fn every_example_parses_and_type_checks() {
    let engine_state = engine(&[]);
    let mut count = 0;
    for (name, decl_id) in engine_state.get_decls_sorted(false) {
        let name = String::from_utf8_lossy(&name).to_string();
        if !name.starts_with("aws") {
            continue;
        }
        let command = engine_state.get_decl(decl_id);
        let signature = command.signature();
        assert!(command.description().ends_with('.'), "{name}: description ends with a period");
        assert!(!signature.input_output_types.is_empty(), "{name}: typed input and output");
        for example in command.examples() {
            let mut working_set = StateWorkingSet::new(&engine_state);
            nu_parser::parse(&mut working_set, None, example.example.as_bytes(), false);
            assert!(
                working_set.parse_errors.is_empty() && working_set.compile_errors.is_empty(),
                "{name}: example `{}`: {:?} {:?}",
                example.example,
                working_set.parse_errors,
                working_set.compile_errors
            );
            count += 1;
        }
    }
    assert!(count > 30, "only {count} examples");
}

#[test]
fn malformed_url_points_at_the_url() {
    let mut es = engine(&moto_env());
    let (err, text) = failure(&mut es, "aws s3 ls s3:/my-bucket/key");
    assert_eq!(text, "s3:/my-bucket/key");
    assert!(err.msg.contains("must start with `s3://`"), "{}", err.msg);
    assert!(err.help.is_some());
    let (_, text) = failure(&mut es, "aws s3 open 'http://bucket/key'");
    assert_eq!(text, "http://");
}

#[test]
fn invalid_bucket_name_points_at_the_offending_character() {
    let mut es = engine(&moto_env());
    let (err, text) = failure(&mut es, "aws s3 ls s3://My_bucket/logs/");
    assert_eq!(text, "M");
    assert!(err.msg.contains("uppercase"), "{}", err.msg);
    let (err, text) = failure(&mut es, "aws s3 head 's3://ab/key'");
    assert_eq!(text, "ab");
    assert!(err.msg.contains("3 to 63"), "{}", err.msg);
    assert!(err.help.as_deref().is_some_and(|h| h.contains("lowercase")));
}

#[test]
fn missing_bucket_points_at_the_url() {
    let mut es = engine(&moto_env());
    let (err, text) = failure(&mut es, "aws s3 ls s3://no-such-bucket-here/");
    assert_eq!(text, "s3://no-such-bucket-here/");
    assert!(err.error.contains("NoSuchBucket"), "{}", err.error);
    assert_eq!(err.code, "nuaws::aws::not_found");
    assert!(err.help.as_deref().is_some_and(|h| h.contains("aws s3 buckets")));
    let (err, text) = failure(&mut es, "aws s3 open s3://no-such-bucket-here/a.json");
    assert_eq!(text, "s3://no-such-bucket-here/a.json");
    assert!(err.error.contains("NoSuchBucket"), "{}", err.error);
}

#[test]
fn unknown_instance_points_at_its_id() {
    let mut es = engine(&moto_env());
    let (err, text) = failure(&mut es, "aws ec2 instances i-0123456789abcdef0");
    assert_eq!(text, "i-0123456789abcdef0");
    assert!(err.error.contains("InvalidInstanceID"), "{}", err.error);
    assert!(err.help.as_deref().is_some_and(|h| h.contains("instance id")));
    let (_, text) = failure(&mut es, "aws ec2 stop i-0fedcba9876543210");
    assert_eq!(text, "i-0fedcba9876543210");
}

#[test]
fn a_malformed_endpoint_points_at_the_flag_and_never_panics() {
    let mut es = engine(&moto_env());
    let (err, text) = failure(&mut es, "aws s3 buckets --endpoint-url localhost:9000");
    assert_eq!(text, "localhost:9000");
    assert_eq!(err.code, "nuaws::aws::invalid_input");
    // Empty means "no override": the shell's endpoint is used.
    assert!(eval(&mut es, "aws s3 buckets --endpoint-url '' | length").is_ok());
}

#[test]
fn missing_credentials_are_explained() {
    let moto = Moto::shared();
    let env: Vec<(String, String)> = moto
        .client_env()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS_KEY") && !k.starts_with("AWS_SECRET"))
        .collect();
    let mut es = engine(&env);
    let (err, text) = failure(&mut es, "aws s3 buckets");
    assert_eq!(err.code, "nuaws::aws::no_credentials", "{err:?}");
    assert_eq!(text, "aws s3 buckets");
    assert!(err.help.as_deref().is_some_and(|h| h.contains("AWS_PROFILE")));
}

#[test]
fn unknown_profile_points_at_the_flag() {
    let moto = Moto::shared();
    let env = moto.client_env();
    let config = env.iter().find(|(k, _)| k == "AWS_CONFIG_FILE").map(|(_, v)| v.clone()).unwrap();
    std::fs::write(&config, "[profile dev]\nregion = us-east-1\n").unwrap();
    let mut es = engine(&env);
    let (err, text) = failure(&mut es, "aws s3 buckets --profile nope");
    assert_eq!(text, "nope");
    assert_eq!(err.code, "nuaws::aws::unknown_profile");
    assert!(err.msg.contains("dev"), "{}", err.msg);
    // From $env, it points at the command.
    let mut es = engine(&[env.clone(), vec![("AWS_PROFILE".into(), "missing".into())]].concat());
    let (err, text) = failure(&mut es, "aws ec2 instances");
    assert_eq!(text, "aws ec2 instances");
    assert!(err.msg.contains("`missing`"), "{}", err.msg);
}

#[test]
fn access_denied_is_explained() {
    // IAM enforced after the first two requests: creating the user and its key.
    let moto = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "2")]);
    let user = moto.harness("make-user", &[]);
    let env: Vec<(String, String)> = moto
        .client_env()
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "AWS_ACCESS_KEY_ID" => (k, user["access_key_id"].as_str().unwrap().to_string()),
            "AWS_SECRET_ACCESS_KEY" => (k, user["secret_access_key"].as_str().unwrap().to_string()),
            _ => (k, v),
        })
        .collect();
    let mut es = engine(&env);
    let (err, text) = failure(&mut es, "aws s3 ls s3://some-bucket/");
    assert_eq!(err.code, "nuaws::aws::access_denied", "{err:?}");
    assert!(err.error.contains("AccessDenied"), "{}", err.error);
    assert_eq!(text, "aws s3 ls");
    assert!(err.help.as_deref().is_some_and(|h| h.contains("get-caller-identity")));
}

#[test]
fn profile_and_region_come_from_the_shell_env_not_the_process() {
    let moto = Moto::shared();
    let env = moto.client_env();
    let config = moto.dir.join("home/profiles-config");
    std::fs::write(&config, "[profile far]\nregion = ap-southeast-2\n").unwrap();
    let mut es = engine(&env);
    let regions = eval(
        &mut es,
        &format!(
            "$env.AWS_CONFIG_FILE = '{}'; hide-env -i AWS_REGION; $env.AWS_PROFILE = 'far'; aws ec2 instances | length",
            config.display()
        ),
    );
    // moto answers any region; what matters is that the profile from $env was used, which the
    // region check proves: a profile without a region would fail with NoRegion instead.
    assert!(regions.is_ok(), "{regions:?}");
    let no_region = eval(&mut es, "hide-env -i AWS_REGION AWS_PROFILE; $env.AWS_CONFIG_FILE = '/nonexistent'; aws ec2 vpcs");
    match no_region {
        Err(ShellError::Generic(err)) => assert_eq!(err.code, "nuaws::aws::no_region"),
        other => panic!("expected a missing region error, got {other:?}"),
    }
}

/// A loopback server that accepts connections and never answers: a request to it can only end by
/// a timeout or an interrupt.
fn black_hole() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream); // keep it open, say nothing
        }
    });
    format!("http://{addr}")
}

#[test]
fn ctrl_c_stops_a_request_in_flight() {
    let endpoint = black_hole();
    for src in [
        "aws s3 ls s3://some-bucket/ --recursive | length",
        "aws s3 open s3://some-bucket/a.json",
        "aws ec2 instances | length",
    ] {
        let mut env = moto_env();
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL".into(), endpoint.clone()));
        let mut es = engine(&env);
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        es.set_signals(nu_protocol::Signals::new(flag.clone()));
        let setter = flag.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            setter.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        // Without the interrupt this would end in a timeout error after the 30 s attempt limit.
        match eval(&mut es, src) {
            Err(ShellError::Interrupted { .. }) => {}
            other => panic!("`{src}`: expected an interrupt, got {other:?}"),
        }
    }
}

#[test]
fn no_secret_reaches_the_cache() {
    let moto = Moto::start(&[]);
    let canary = "CANARY-7f3a9c1e-do-not-store";
    let cache_dir = moto.dir.join("cache");
    let ctx = std::sync::Arc::new(nu_cmd_aws::AwsContext::default());
    let engine_state = nu_cmd_lang::create_default_context();
    let engine_state = nu_command::add_shell_command_context(engine_state);
    let mut es = nu_cmd_aws::add_aws_context_with(engine_state, ctx.clone());
    es.add_env_var("PWD".into(), Value::test_string(moto.dir.to_string_lossy()));
    for (k, v) in moto.cached_env(&cache_dir) {
        es.add_env_var(k, Value::test_string(v));
    }
    moto.harness("seed-s3", &["--bucket", "secrets", "--objects", "0"]);
    eval(&mut es, &format!("'{canary}' | aws s3 save s3://secrets/token.txt")).unwrap();
    let body = eval(&mut es, "aws s3 open s3://secrets/token.txt").unwrap();
    assert_eq!(body.as_str().unwrap(), canary, "the read itself works");
    eval(&mut es, "aws s3 ls s3://secrets/ | length").unwrap();
    eval(&mut es, "aws s3 head s3://secrets/token.txt").unwrap();
    eval(&mut es, "aws ec2 instances | length").unwrap();

    // Nothing cached holds it, decoded...
    let cache = ctx.cache(&es, &Stack::new());
    let keys = cache.keys();
    assert!(keys.len() >= 3, "listings and metadata were cached: {keys:?}");
    for key in keys.keys() {
        assert!(!key.contains(canary));
        if let Some(entry) = cache.peek(key) {
            assert!(!format!("{:?}", entry.rows).contains(canary), "{key}");
        }
    }
    // ...nor any file of the cache directory, raw.
    for file in walk(&cache_dir) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "{} holds the canary",
            file.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
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

#[test]
fn examples_with_a_result_evaluate_to_it() {
    let mut es = engine(&[]);
    let mut checked = 0;
    for (name, decl_id) in es.get_decls_sorted(false) {
        let name = String::from_utf8_lossy(&name).to_string();
        if !name.starts_with("aws") {
            continue;
        }
        let examples: Vec<(String, Value)> = es
            .get_decl(decl_id)
            .examples()
            .into_iter()
            .filter_map(|e| Some((e.example.to_string(), e.result?)))
            .collect();
        for (src, want) in examples {
            let got = eval(&mut es, &src).unwrap_or_else(|e| panic!("{name}: `{src}`: {e:?}"));
            assert_eq!(got, want, "{name}: `{src}`");
            checked += 1;
        }
    }
    assert!(checked > 0, "no example with a result was run");
}

fn field(record: &Value, name: &str) -> Value {
    record.get_data_by_key(name).unwrap_or_else(|| panic!("no `{name}` in {record:?}"))
}

fn millis(v: &Value) -> f64 {
    v.as_duration().unwrap_or_else(|e| panic!("{v:?}: {e:?}")) as f64 / 1e6
}

#[test]
fn bench_flags_a_slower_run_against_its_baseline_and_passes_an_unchanged_one() {
    let dir = std::env::temp_dir().join(format!("nuaws-bench-{}", std::process::id()));
    let mut es = engine(&[("NUAWS_CACHE_DIR".into(), dir.to_string_lossy().into_owned())]);

    let saved = eval(&mut es, "aws bench { sleep 50ms } -n 5 --save base").unwrap();
    assert_eq!(field(&saved, "iterations").as_int().unwrap(), 5);
    assert_eq!(field(&saved, "warmup").as_int().unwrap(), 1);
    let (min, p50, p95, max) = (
        millis(&field(&saved, "min")),
        millis(&field(&saved, "p50")),
        millis(&field(&saved, "p95")),
        millis(&field(&saved, "max")),
    );
    assert!(min >= 50.0 && min <= p50 && p50 <= p95 && p95 <= max, "{saved:?}");
    assert!(dir.join("bench/base.nuon").is_file());

    let same = eval(&mut es, "aws bench { sleep 50ms } -n 5 --baseline base").unwrap();
    assert!(!field(&same, "regression").as_bool().unwrap(), "{same:?}");
    let ratio = field(&same, "ratio_p50").as_float().unwrap();
    assert!((0.7..1.5).contains(&ratio), "{same:?}");
    assert_eq!(millis(&field(&field(&same, "baseline"), "p50")), p50);

    let slower = eval(&mut es, "aws bench { sleep 150ms } -n 5 --baseline base").unwrap();
    assert!(field(&slower, "regression").as_bool().unwrap(), "{slower:?}");
    assert!(field(&slower, "ratio_p50").as_float().unwrap() > 2.0, "{slower:?}");
    // A looser threshold lets it pass.
    let loose = eval(&mut es, "aws bench { sleep 150ms } -n 3 --baseline base --threshold 10").unwrap();
    assert!(!field(&loose, "regression").as_bool().unwrap(), "{loose:?}");

    let (err, text) = failure(&mut es, "aws bench { sleep 150ms } -n 3 --baseline base --check");
    assert_eq!(err.code, "nuaws::bench::regression");
    assert_eq!(text, "base");
    assert!(err.msg.contains("x the baseline"), "{}", err.msg);
    assert!(err.help.as_deref().is_some_and(|h| h.contains("--save base")), "{:?}", err.help);
    assert!(eval(&mut es, "aws bench { sleep 50ms } -n 3 --baseline base --check").is_ok());

    let (err, text) = failure(&mut es, "aws bench { 1 } --baseline nope");
    assert_eq!((&*err.code, text.as_str()), ("nuaws::bench::unknown_baseline", "nope"));
    assert!(err.help.as_deref().is_some_and(|h| h.contains("base")), "{:?}", err.help);
    let (err, _) = failure(&mut es, "aws bench { 1 } --check");
    assert_eq!(err.code, "nuaws::bench::invalid_flag");
    let (_, text) = failure(&mut es, "aws bench { 1 } -n 0");
    assert_eq!(text, "0");
    let (_, text) = failure(&mut es, "aws bench { 1 } --threshold -1");
    assert_eq!(text, "-1");
    let (err, text) = failure(&mut es, "aws bench { 1 } --save '../x'");
    assert_eq!((&*err.code, text.as_str()), ("nuaws::bench::invalid_name", "'../x'"));
    // The closure's errors are the command's.
    assert!(eval(&mut es, "aws bench { error make {msg: boom} }").is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn metrics_agree_with_the_server_and_persist() {
    let moto = Moto::start(&[]);
    let cache_dir = moto.dir.join("cache");
    let env = moto.cached_env(&cache_dir);
    let fresh_engine = || {
        let metrics = std::sync::Arc::new(aws_core::metrics::Metrics::new());
        let ctx = std::sync::Arc::new(nu_cmd_aws::AwsContext::with_metrics(metrics));
        let engine_state = nu_cmd_lang::create_default_context();
        let engine_state = nu_command::add_shell_command_context(engine_state);
        let mut es = nu_cmd_aws::add_aws_context_with(engine_state, ctx);
        es.add_env_var("PWD".into(), Value::test_string(moto.dir.to_string_lossy()));
        for (k, v) in &env {
            es.add_env_var(k.clone(), Value::test_string(v));
        }
        es
    };
    moto.harness("seed-ec2", &["--instances", "3"]);
    let mut es = fresh_engine();
    for src in [
        "aws ec2 instances | length",
        "aws ec2 instances | length",
        "aws ec2 instances | length",
        "aws s3 buckets | length",
        "aws s3 buckets | length",
        "aws ec2 vpcs --no-cache | length",
        "aws ec2 vpcs --no-cache | length",
    ] {
        eval(&mut es, src).unwrap_or_else(|e| panic!("{src}: {e:?}"));
    }
    let find = |table: &Value, operation: &str| -> Value {
        let rows = table.as_list().unwrap_or_else(|e| panic!("{table:?}: {e:?}"));
        let mut found = rows.iter().filter(|r| field(r, "operation").as_str().ok() == Some(operation));
        let row = found.next().unwrap_or_else(|| panic!("no {operation} in {table:?}")).clone();
        assert!(found.next().is_none(), "one row per operation and region");
        row
    };
    let int = |row: &Value, name: &str| field(row, name).as_int().unwrap();
    let server = |op: &str| moto.requests(op, "") as i64;

    for src in ["aws metrics --session", "aws metrics", "aws metrics --since 1hr"] {
        let table = eval(&mut es, src).unwrap();
        let instances = find(&table, "DescribeInstances");
        assert_eq!(field(&instances, "service").as_str().unwrap(), "ec2");
        assert_eq!(field(&instances, "region").as_str().unwrap(), "us-east-1");
        assert_eq!(int(&instances, "requests"), server("DescribeInstances"), "{src}");
        assert_eq!(int(&instances, "requests"), 1, "{src}");
        assert_eq!((int(&instances, "hits_memory"), int(&instances, "misses")), (2, 1), "{src}");
        assert!((field(&instances, "hit_rate").as_float().unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(int(&instances, "errors"), 0);
        let (p50, p95, p99, max) = (
            millis(&field(&instances, "p50")),
            millis(&field(&instances, "p95")),
            millis(&field(&instances, "p99")),
            millis(&field(&instances, "max")),
        );
        assert!(0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 <= max, "{instances:?}");
        assert!(field(&instances, "bytes_in").as_filesize().unwrap().get() > 0, "{instances:?}");

        let buckets = find(&table, "ListBuckets");
        assert_eq!(int(&buckets, "requests"), server("ListBuckets"), "{src}");
        assert_eq!((int(&buckets, "hits_memory"), int(&buckets, "misses")), (1, 1), "{src}");
        let vpcs = find(&table, "DescribeVpcs");
        assert_eq!(int(&vpcs, "requests"), server("DescribeVpcs"), "{src}");
        assert_eq!(int(&vpcs, "requests"), 2, "{src}");
        assert!(field(&vpcs, "hit_rate").is_nothing(), "--no-cache looks nothing up");
        let identity = find(&table, "GetCallerIdentity");
        assert_eq!(int(&identity, "requests"), server("GetCallerIdentity"), "{src}");
    }
    let ec2_only = eval(&mut es, "aws metrics --service ec2 | get service | uniq").unwrap();
    assert_eq!(ec2_only, Value::test_list(vec![Value::test_string("ec2")]));
    // This shell's figures all lie in the last day, but they cannot be cut at a later instant.
    let day = eval(&mut es, "aws metrics --session --since 1day | where operation == DescribeInstances | get 0.requests");
    assert_eq!(day.unwrap(), Value::test_int(1));
    let (err, text) = failure(&mut es, "aws metrics --session --since (date now)");
    assert_eq!((&*err.code, text.as_str()), ("nuaws::metrics::no_history", "(date now)"));

    // Another process: its own figures are empty, the history has the first one's.
    let mut other = fresh_engine();
    assert_eq!(eval(&mut other, "aws metrics --session | length").unwrap(), Value::test_int(0));
    let table = eval(&mut other, "aws metrics").unwrap();
    assert_eq!(int(&find(&table, "DescribeInstances"), "requests"), 1);
    // Its own requests add up with them.
    eval(&mut other, "aws ec2 vpcs --no-cache | length").unwrap();
    let table = eval(&mut other, "aws metrics").unwrap();
    assert_eq!(int(&find(&table, "DescribeVpcs"), "requests"), 3);

    let reset = eval(&mut other, "aws metrics reset").unwrap();
    assert!(field(&reset, "hours").as_int().unwrap() >= 1, "{reset:?}");
    assert_eq!(eval(&mut other, "aws metrics | length").unwrap(), Value::test_int(0));
    assert_eq!(eval(&mut other, "aws metrics --session | length").unwrap(), Value::test_int(0));
}

/// A bucket in eu-west-1 behind the fault proxy's emulation of real S3's answers to requests sent
/// to the wrong region (moto serves every bucket everywhere), and a shell environment for it.
fn far_bucket() -> &'static (FaultProxy, Vec<(String, String)>) {
    static WORLD: std::sync::OnceLock<(FaultProxy, Vec<(String, String)>)> = std::sync::OnceLock::new();
    WORLD.get_or_init(|| {
        let moto = Moto::shared();
        moto.harness("seed-s3", &["--bucket", FAR, "--region", "eu-west-1", "--objects", "30", "--prefixes", "2"]);
        let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::default().with_bucket_region(FAR, "eu-west-1"))
            .expect("proxy");
        let env = through(&proxy);
        (proxy, env)
    })
}

const FAR: &str = "far-away";

/// The shell environment for moto behind `proxy`.
fn through(proxy: &FaultProxy) -> Vec<(String, String)> {
    let mut env = moto_env();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint()));
    env
}

#[test]
fn an_unknown_region_flag_is_refused_at_its_value_before_any_request() {
    let (proxy, env) = far_bucket();
    let mut es = engine(env);
    let before = proxy.stats().received;
    let (err, text) = failure(&mut es, &format!("aws s3 ls s3://{FAR}/ --region moon-east-1"));
    assert_eq!(text, "moon-east-1");
    assert!(err.error.contains("--region"), "{}", err.error);
    assert!(err.msg.contains("not an AWS region"), "{}", err.msg);
    assert!(err.help.as_deref().is_some_and(|h| h.contains("us-east-1")), "{:?}", err.help);
    let (err, text) = failure(&mut es, "aws ec2 instances --region eu-wset-1");
    assert_eq!(text, "eu-wset-1");
    assert!(err.msg.contains("did you mean `eu-west-1`"), "{}", err.msg);
    assert_eq!(proxy.stats().received, before, "nothing was sent");
}

#[test]
fn a_mistyped_aws_region_in_env_points_at_the_assignment_with_the_nearest_region() {
    let (_, env) = far_bucket();
    let mut es = engine(env);
    let (err, text) = failure(&mut es, &format!("$env.AWS_REGION = 'us-est-1'; aws s3 ls s3://{FAR}/"));
    assert_eq!(text, "'us-est-1'");
    assert!(err.error.contains("$env.AWS_REGION"), "{}", err.error);
    assert!(err.msg.contains("did you mean `us-east-1`"), "{}", err.msg);
    // In a list of regions too, each name is checked where it stands.
    let (_, text) = failure(&mut es, "$env.AWS_REGION = 'us-east-1'; aws ec2 instances --regions [eu-west-1 ap-south-9]");
    assert_eq!(text, "ap-south-9");
}

#[test]
fn a_redirect_loop_points_at_the_bucket_url() {
    far_bucket();
    let proxy = FaultProxy::start(&Moto::shared().endpoint, FaultConfig::default().with_redirect_loop(FAR)).expect("proxy");
    let mut es = engine(&through(&proxy));
    let (err, text) = failure(&mut es, &format!("aws s3 open s3://{FAR}/data/p000/sub0/obj-000000.txt"));
    assert_eq!(text, format!("s3://{FAR}/data/p000/sub0/obj-000000.txt"));
    assert!(err.msg.contains(FAR) && err.msg.contains("us-east-1") && err.msg.contains("us-west-2"), "{}", err.msg);
    assert_eq!(err.code, "nuaws::aws::wrong_region");
    assert!(proxy.stats().received <= 2, "two refusals, then it stopped: {:?}", proxy.stats());
}

#[test]
fn bad_account_input_points_at_the_offending_value_with_help() {
    // No request is made: the endpoint is never reached.
    let mut es = engine(&moto_env());
    let (err, text) = failure(&mut es, "aws ec2 instances --accounts [111111111111 12345] --role-name x");
    assert_eq!(text, "12345");
    assert!(err.error == "Invalid account" && err.msg.contains("has 5 digits"), "{err:?}");
    assert!(err.help.as_deref().is_some_and(|h| h.contains("12 digits")), "{err:?}");
    let (err, text) = failure(&mut es, "aws ec2 instances --accounts [111111111111]");
    assert!(text.starts_with("--accounts"), "{text}");
    assert!(err.help.as_deref().is_some_and(|h| h.contains("--role-name")), "{err:?}");
    let (_, text) = failure(&mut es, "aws ec2 instances --accounts [111111111111] --role-name 'bad name'");
    assert_eq!(text, "'bad name'");
    // Profiles: one or the other flag, at least one name, no empty name, and a known one.
    let (err, text) = failure(&mut es, "aws ec2 instances --profile a --profiles [b c]");
    assert_eq!((&*err.error, text.as_str()), ("--profile and --profiles cannot be used together", "--profile a"));
    let (err, text) = failure(&mut es, "aws ec2 instances --profiles []");
    assert_eq!((&*err.error, text.as_str()), ("Nothing to read", "--profiles []"));
    let (err, text) = failure(&mut es, "aws ec2 instances --profiles [dev '']");
    assert_eq!((&*err.msg, text.as_str()), ("this profile name is empty", "''"));
    let (err, text) = failure(&mut es, "aws ec2 instances --profiles [nope]");
    assert_eq!((&*err.code, text.as_str()), ("nuaws::aws::unknown_profile", "nope"));
    assert!(err.help.as_deref().is_some_and(|h| h.contains("No profiles are configured")), "{:?}", err.help);
}

#[test]
fn cp_of_a_prefix_needs_recursive_and_a_trailing_slash_means_into_a_directory() {
    let mut es = engine(&moto_env());
    let b = io_bucket();
    let dir = tempfile::tempdir().unwrap();
    for to in [dir.path().join("x").display().to_string(), format!("s3://{b}/copy/")] {
        let (err, text) = failure(&mut es, &format!("aws s3 cp s3://{b}/data/ {to}"));
        assert_eq!((&*err.error, text.as_str()), ("prefix needs --recursive", &*format!("s3://{b}/data/")), "to {to}");
        assert!(err.help.as_deref().is_some_and(|h| h.contains("--recursive")), "{:?}", err.help);
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing was downloaded");
    let into = format!("{}/", dir.path().join("new-dir").display());
    let got = eval(&mut es, &format!("aws s3 cp s3://{b}/data/p000/sub0/obj-000000.txt {into} | get 0.destination")).unwrap();
    let file = dir.path().join("new-dir/obj-000000.txt");
    assert_eq!(got.as_str().unwrap(), file.display().to_string());
    assert!(file.is_file(), "the object went into the directory, under its own name");
}

/// A bucket of four objects (`data/p000/sub*/obj-*.txt`) for the tests of what the object
/// commands take in and give back.
fn io_bucket() -> &'static str {
    static SEEDED: std::sync::Once = std::sync::Once::new();
    SEEDED.call_once(|| {
        Moto::shared().harness("seed-s3", &["--bucket", IO, "--objects", "4", "--prefixes", "1"]);
    });
    IO
}

const IO: &str = "in-process-io";

/// The source text `span` covers.
fn text_at(engine_state: &EngineState, span: Span) -> String {
    String::from_utf8_lossy(engine_state.get_span_contents(span)).to_string()
}

#[test]
fn a_prefix_where_an_object_is_needed_is_refused_at_the_url() {
    let mut es = engine(&moto_env());
    let b = io_bucket();
    for (src, title, help) in [
        (format!("aws s3 rm s3://{b}/data/"), "Refusing to delete a prefix", "--recursive"),
        (format!("aws s3 open s3://{b}/data/"), "Not an object", "aws s3 ls"),
        (format!("'x' | aws s3 save s3://{b}/data/"), "No object key", "full key"),
        (format!("'x' | aws s3 save s3://{b}"), "No object key", "full key"),
    ] {
        let (err, text) = failure(&mut es, &src);
        assert_eq!(err.error, title, "{src}");
        assert!(text.starts_with(&format!("s3://{b}")), "{src}: points at {text:?}");
        assert!(err.help.as_deref().is_some_and(|h| h.contains(help)), "{src}: {:?}", err.help);
    }
    let count = format!("aws s3 ls s3://{b}/ -R --no-cache | length");
    assert_eq!(eval(&mut es, &count).unwrap(), Value::test_int(4), "nothing deleted or written");
}

#[test]
fn save_writes_bytes_and_nothing_as_they_are_and_refuses_structure_it_cannot_convert() {
    let mut es = engine(&moto_env());
    let b = io_bucket();
    // Bytes that are not UTF-8 come back byte for byte, from one object and from many.
    eval(&mut es, &format!("0x[ff fe 00 01] | aws s3 save -f s3://{b}/io/bytes.bin")).unwrap();
    let bytes = Value::test_binary(vec![0xff, 0xfe, 0x00, 0x01]);
    assert_eq!(eval(&mut es, &format!("aws s3 open --raw s3://{b}/io/bytes.bin")).unwrap(), bytes);
    let many = format!("[s3://{b}/io/bytes.bin] | aws s3 open | get 0.content");
    assert_eq!(eval(&mut es, &many).unwrap(), bytes, "not text, so binary");
    // No input at all is an empty object.
    eval(&mut es, &format!("aws s3 save -f s3://{b}/io/empty.txt")).unwrap();
    let size = format!("aws s3 head s3://{b}/io/empty.txt | get size");
    assert_eq!(eval(&mut es, &size).unwrap(), Value::test_filesize(0));
    // A record with no converter for its key, and one under --raw (which converts nothing).
    let (err, text) = failure(&mut es, &format!("{{a: 1}} | aws s3 save -f s3://{b}/io/noext"));
    assert_eq!((&*err.error, text.as_str()), ("Cannot save structured data", "aws s3 save"));
    assert!(err.msg.contains("no `to` converter") && err.msg.contains("record<a: int>"), "{}", err.msg);
    let (err, _) = failure(&mut es, &format!("{{a: 1}} | aws s3 save -f --raw s3://{b}/io/raw.json"));
    assert!(err.msg.contains("--raw writes text and bytes"), "{}", err.msg);
    assert!(err.help.as_deref().is_some_and(|h| h.contains("Drop --raw")), "{:?}", err.help);
    let names = eval(&mut es, &format!("aws s3 ls s3://{b}/io/ --no-cache | get name | str join ' '")).unwrap();
    assert_eq!(names.as_str().unwrap(), format!("s3://{b}/io/bytes.bin s3://{b}/io/empty.txt"), "the refused saves wrote nothing");
}

#[test]
fn out_of_range_numbers_and_a_file_for_a_directory_point_at_the_value() {
    let mut es = engine(&moto_env());
    let b = io_bucket();
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().display();
    for (src, value, msg) in [
        (format!("aws s3 ls s3://{b}/ --page-size 0"), "0", "between 1 and 1000"),
        (format!("aws s3 ls s3://{b}/ -R --page-size 1001"), "1001", "between 1 and 1000"),
        (format!("aws s3 sync s3://{b}/data/ {dst} --delete --max-delete -1"), "-1", "cannot be negative"),
    ] {
        match eval(&mut es, &src) {
            Err(ShellError::IncorrectValue { msg: got, val_span, call_span }) => {
                let flag = text_at(&es, val_span);
                assert!(flag.starts_with("--") && flag.ends_with(&format!(" {value}")), "{src}: {flag}");
                assert!(text_at(&es, call_span).starts_with("aws s3"), "{src}");
                assert!(got.contains(msg), "{src}: {got}");
            }
            other => panic!("{src}: {other:?}"),
        }
    }
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let (err, text) = failure(&mut es, &format!("aws s3 sync s3://{b}/data/ {}", file.display()));
    assert_eq!(err.error, "The destination is not a directory");
    assert_eq!(text, file.display().to_string());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x", "the file is untouched");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing was downloaded");
}

#[test]
fn pipeline_input_is_urls_or_rows_with_a_name_and_anything_else_is_an_error_row_naming_it() {
    let mut es = engine(&moto_env());
    let b = io_bucket();
    match eval(&mut es, "aws s3 head") {
        Err(ShellError::MissingParameter { param_name, span }) => {
            assert!(param_name.contains("s3:// URL"), "{param_name}");
            assert_eq!(text_at(&es, span), "aws s3 head");
        }
        other => panic!("{other:?}"),
    }
    let key = format!("s3://{b}/data/p000/sub0/obj-000000.txt");
    // Directory rows (as `aws s3 ls` gives them) are skipped; the rest keep their order. (`each`
    // makes a stream of any values, which the type check cannot refuse up front.)
    let src = format!(
        "[{{foo: 1}} {{type: dir, name: 's3://{b}/data/'}} 's3:/{b}/x' 7 {{name: '{key}', type: file}}] \
         | each {{|v| $v }} | aws s3 head --ordered | each {{|r| [$r.name ($r.error | default '')] | str join ' | ' }} | str join \"\\n\""
    );
    let got = eval(&mut es, &src).unwrap();
    let lines: Vec<&str> = got.as_str().unwrap().lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[0].ends_with("Cannot find column 'name'"), "{}", lines[0]);
    assert!(lines[1].starts_with(&format!("s3:/{b}/x | ")) && lines[1].contains("must start with `s3://`"), "{}", lines[1]);
    assert!(lines[2].ends_with("Input type not supported."), "{}", lines[2]);
    assert_eq!(lines[3], format!("{key} | "), "the good row is answered");
}

#[test]
fn an_object_that_is_not_what_its_extension_says_is_an_error_at_its_url() {
    let mut es = engine(&moto_env());
    let b = io_bucket();
    let broken = format!("s3://{b}/parse/broken.json");
    let good = format!("s3://{b}/parse/good.json");
    eval(&mut es, &format!("'{{x' | aws s3 save -f --raw {broken}; {{a: 1}} | aws s3 save -f {good}")).unwrap();
    let (err, text) = failure(&mut es, &format!("aws s3 open {broken}"));
    assert_eq!(err.error, "Error while parsing as json");
    assert_eq!(text, broken);
    assert!(err.help.as_deref().is_some_and(|h| h.contains(&format!("aws s3 open --raw {broken}"))), "{:?}", err.help);
    assert!(!err.inner.is_empty(), "the parser's own error is kept");
    assert_eq!(eval(&mut es, &format!("aws s3 open --raw {broken}")).unwrap(), Value::test_binary(b"{x".to_vec()));
    // Many at once: the broken one is a row with the error, the good one is decoded.
    let rows = eval(&mut es, &format!("[{broken} {good}] | aws s3 open --ordered | each {{|r| $r.error | default ($r.content | to nuon) }} | str join ' / '")).unwrap();
    assert_eq!(rows.as_str().unwrap(), "Error while parsing as json / {a: 1}");
}

#[test]
fn enrich_takes_instance_rows_and_needs_a_region_for_rows_without_one() {
    let mut es = engine(&moto_env());
    match eval(&mut es, "[1] | aws ec2 enrich") {
        Err(ShellError::OnlySupportsThisInputType { exp_input_type, wrong_type, src_span, .. }) => {
            assert!(exp_input_type.contains("aws ec2 instances"), "{exp_input_type}");
            assert_eq!((wrong_type.as_str(), text_at(&es, src_span).as_str()), ("int", "1"));
        }
        other => panic!("{other:?}"),
    }
    let env: Vec<_> = moto_env().into_iter().filter(|(k, _)| k != "AWS_REGION" && k != "AWS_DEFAULT_REGION").collect();
    let mut es = engine(&env);
    let (err, text) = failure(&mut es, "[{id: i-0123456789abcdef0}] | aws ec2 enrich");
    assert_eq!((&*err.code, text.as_str()), ("nuaws::aws::no_region", "aws ec2 enrich"));
    assert!(err.help.as_deref().is_some_and(|h| h.contains("$env.AWS_REGION")), "{:?}", err.help);
}

#[test]
fn groups_without_a_job_of_their_own_give_their_help() {
    let mut es = engine(&[]);
    for (group, sub) in [("aws cache", "aws cache stats"), ("aws tags", "aws tags correlate")] {
        let help = eval(&mut es, group).unwrap();
        let help = help.as_str().unwrap();
        assert!(help.contains("Usage:") && help.contains(sub), "{group}: {help}");
    }
}

#[test]
fn baselines_without_a_home_or_a_readable_file_are_explained_at_the_name() {
    let mut es = engine(&[]);
    let (err, _) = failure(&mut es, "hide-env -i NUAWS_CACHE_DIR XDG_CACHE_HOME HOME; aws bench { 1 } -n 1 --save x");
    assert_eq!(err.code, "nuaws::bench::no_directory");
    assert!(err.help.as_deref().is_some_and(|h| h.contains("$env.NUAWS_CACHE_DIR")), "{:?}", err.help);

    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let set = |path: &std::path::Path| format!("$env.NUAWS_CACHE_DIR = '{}'; ", path.display());
    let (err, text) = failure(&mut es, &format!("{}aws bench {{ 1 }} -n 1 --baseline nope", set(&cache)));
    assert_eq!((&*err.code, text.as_str()), ("nuaws::bench::unknown_baseline", "nope"));
    assert!(err.help.as_deref().is_some_and(|h| h.contains("No baseline is saved") && h.contains("--save nope")), "{:?}", err.help);

    // The cache directory is a file: the baseline cannot be saved, and the error says where.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let (err, text) = failure(&mut es, &format!("{}aws bench {{ 1 }} -n 1 --save x", set(&file)));
    assert_eq!((&*err.code, &*err.error), ("nuaws::bench::io", "Cannot save the baseline"));
    assert!(err.msg.contains("a-file/bench") && err.msg.contains("Not a directory"), "{}", err.msg);
    assert_eq!(text, "x");
    // A baseline that cannot be read (a directory in its place).
    std::fs::create_dir_all(cache.join("bench/x.nuon")).unwrap();
    let (err, text) = failure(&mut es, &format!("{}aws bench {{ 1 }} -n 1 --baseline x", set(&cache)));
    assert_eq!((&*err.error, text.as_str()), ("Cannot read the baseline", "x"));
    assert!(err.msg.contains("Is a directory"), "{}", err.msg);
}
