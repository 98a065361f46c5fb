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
