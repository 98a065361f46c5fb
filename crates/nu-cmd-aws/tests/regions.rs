//! Regions in the shell: a region name AWS does not have is refused before any request, pointing
//! at where it was written with the nearest real name; a bucket whose requests S3 redirects in a
//! circle is an error pointing at its URL; and Tab completes the keys of a bucket in another
//! region. Against real moto on loopback, behind the fault proxy's emulation of real S3's
//! answers to requests sent to the wrong region (moto serves every bucket everywhere).

#[path = "../../../tests/support/moto.rs"]
mod moto;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nu_protocol::debugger::WithoutDebug;
use nu_protocol::engine::{EngineState, Stack, StateWorkingSet};
use nu_protocol::shell_error::generic::GenericError;
use nu_protocol::{PipelineData, ShellError, Span, Value};
use nuaws_test_servers::{FaultConfig, FaultProxy};

use moto::Moto;

const BUCKET: &str = "far-away";

/// moto with one bucket in eu-west-1, and the proxy that answers for it as real S3 would.
fn far_bucket() -> &'static (FaultProxy, Vec<(String, String)>) {
    static WORLD: OnceLock<(FaultProxy, Vec<(String, String)>)> = OnceLock::new();
    WORLD.get_or_init(|| {
        let moto = Moto::shared();
        moto.harness("seed-s3", &["--bucket", BUCKET, "--region", "eu-west-1", "--objects", "30", "--prefixes", "2"]);
        let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::default().with_bucket_region(BUCKET, "eu-west-1"))
            .expect("proxy");
        let mut env = moto.client_env();
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint()));
        (proxy, env)
    })
}

fn engine(env: &[(String, String)]) -> EngineState {
    let engine_state = nu_cmd_lang::create_default_context();
    let engine_state = nu_command::add_shell_command_context(engine_state);
    let engine_state = nu_cli::add_cli_context(engine_state);
    let mut engine_state = nu_cmd_aws::add_aws_context(engine_state);
    engine_state.add_env_var("PWD".into(), Value::test_string(std::env::temp_dir().to_string_lossy()));
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

#[test]
fn an_unknown_region_flag_is_refused_at_its_value_before_any_request() {
    let (proxy, env) = far_bucket();
    let mut es = engine(env);
    let before = proxy.stats().received;
    let (err, text) = failure(&mut es, &format!("aws s3 ls s3://{BUCKET}/ --region moon-east-1"));
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
    let (err, text) = failure(&mut es, &format!("$env.AWS_REGION = 'us-est-1'; aws s3 ls s3://{BUCKET}/"));
    assert_eq!(text, "'us-est-1'");
    assert!(err.error.contains("$env.AWS_REGION"), "{}", err.error);
    assert!(err.msg.contains("did you mean `us-east-1`"), "{}", err.msg);
    // In a list of regions too, each name is checked where it stands.
    let (_, text) = failure(&mut es, "$env.AWS_REGION = 'us-east-1'; aws ec2 instances --regions [eu-west-1 ap-south-9]");
    assert_eq!(text, "ap-south-9");
}

#[test]
fn a_redirect_loop_points_at_the_bucket_url() {
    let moto = Moto::shared();
    far_bucket();
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::default().with_redirect_loop(BUCKET)).expect("proxy");
    let mut env = moto.client_env();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint()));
    let mut es = engine(&env);
    let (err, text) = failure(&mut es, &format!("aws s3 open s3://{BUCKET}/data/p000/sub0/obj-000000.txt"));
    assert_eq!(text, format!("s3://{BUCKET}/data/p000/sub0/obj-000000.txt"));
    assert!(err.msg.contains(BUCKET) && err.msg.contains("us-east-1") && err.msg.contains("us-west-2"), "{}", err.msg);
    assert_eq!(err.code, "nuaws::aws::wrong_region");
    assert!(proxy.stats().received <= 2, "two refusals, then it stopped: {:?}", proxy.stats());
}

#[test]
fn tab_completes_keys_of_a_bucket_in_another_region() {
    let (proxy, env) = far_bucket();
    let es = Arc::new(engine(env));
    let tab = |line: &str| -> Vec<String> {
        for _ in 0..50 {
            let found: Vec<String> = nu_cli::CompletionEngine::new(es.clone(), Arc::new(Stack::new()))
                .fetch_completions_at(line, line.len())
                .into_iter()
                .map(|s| s.suggestion.value)
                .collect();
            if !found.is_empty() {
                return found;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no completion for `{line}`");
    };
    let mut found = tab(&format!("aws s3 open s3://{BUCKET}/data/"));
    found.sort();
    assert_eq!(found, [format!("s3://{BUCKET}/data/p000/"), format!("s3://{BUCKET}/data/p001/")]);
    let keys = tab(&format!("aws s3 open s3://{BUCKET}/data/p001/sub1/"));
    assert!(keys.iter().all(|k| k.starts_with(&format!("s3://{BUCKET}/data/p001/sub1/obj-"))), "{keys:?}");
    assert!(!keys.is_empty());
    let refused = proxy.log().iter().filter(|r| r.status == Some(301)).count();
    assert!(refused <= 1, "one redirect for the whole shell: {refused}");
}
