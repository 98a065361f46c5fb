//! Completion latency and hit rate, through Nushell's own completion engine (what the REPL calls
//! on Tab), against a moto server on loopback, with the AWS CLI's `aws_completer` timed on the
//! same server for comparison.
//!
//! `cargo bench -p nu-cmd-aws --bench completion --profile dev` (dev: the shell crates compiled
//! for the tests are reused; optimised figures would only be lower).

#[path = "../tests/support/moto.rs"]
mod moto;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_core::cache::Tier;
use nu_cmd_aws::AwsContext;
use nu_protocol::Value;
use nu_protocol::engine::{EngineState, Stack};

use moto::Moto;

fn engine(ctx: Arc<AwsContext>, env: Vec<(String, String)>) -> Arc<EngineState> {
    let engine_state = nu_cmd_lang::create_default_context();
    let engine_state = nu_command::add_shell_command_context(engine_state);
    let engine_state = nu_cli::add_cli_context(engine_state);
    let mut engine_state = nu_cmd_aws::add_aws_context_with(engine_state, ctx);
    engine_state.add_env_var("PWD".into(), Value::test_string(std::env::temp_dir().to_string_lossy()));
    for (k, v) in env {
        engine_state.add_env_var(k, Value::test_string(v));
    }
    Arc::new(engine_state)
}

fn tab(es: &Arc<EngineState>, line: &str) -> (Duration, usize) {
    let engine = nu_cli::CompletionEngine::new(es.clone(), Arc::new(Stack::new()));
    let start = Instant::now();
    let n = engine.fetch_completions_at(line, line.len()).len();
    (start.elapsed(), n)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)]
}

const LINES: &[&str] = &[
    "aws s3 ls s3://",
    "aws s3 ls s3://my-bucket/",
    "aws s3 open s3://my-bucket/data/",
    "aws s3 ls s3://my-bucket/logs/2026/",
    "aws ec2 instances ",
    "aws ec2 stop ",
    "aws ec2 security-groups ",
    "aws ec2 vpcs ",
    "aws ec2 subnets ",
    "aws ec2 instances --region ",
];

fn main() {
    let moto = Moto::start(&[]);
    moto.harness("seed-examples", &[]);
    moto.harness("seed-ec2", &["--instances", "500"]);
    println!("server: moto on {}, 500 instances, example bucket", moto.endpoint);

    // 1. From the cache: every line once to fill it, then 100 rounds.
    let ctx = Arc::new(AwsContext::default());
    let es = engine(ctx.clone(), moto.cached_env(&moto.dir.join("bench-cache-warm")));
    for line in LINES {
        while tab(&es, line).1 == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let mut samples = Vec::new();
    for _ in 0..100 {
        for line in LINES {
            samples.push(tab(&es, line).0);
        }
    }
    println!(
        "from cache ({} Tabs over {} lines): p50 {:?}  p99 {:?}",
        samples.len(),
        LINES.len(),
        percentile(&mut samples, 0.50),
        percentile(&mut samples, 0.99)
    );

    // 2. Cold cache behind 500 ms of added latency.
    let slow = moto::slow_proxy(&moto.endpoint, Duration::from_millis(500));
    let mut env = moto.cached_env(&moto.dir.join("bench-cache-cold"));
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), slow));
    let cold = engine(Arc::new(AwsContext::default()), env);
    let (first, n_first) = tab(&cold, "aws s3 ls s3://");
    let waited = Instant::now();
    let (mut next, mut n_next) = tab(&cold, "aws s3 ls s3://");
    while n_next == 0 && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        (next, n_next) = tab(&cold, "aws s3 ls s3://");
    }
    println!(
        "cold cache, +500 ms server latency: first Tab answered in {first:?} with {n_first} names; \
         names on a later Tab ({n_next} after {:?}), that Tab in {next:?}",
        waited.elapsed()
    );

    // 3. A scripted session of 100 completions on a cold cache: how many reach the network.
    let ctx = Arc::new(AwsContext::default());
    let session = engine(ctx.clone(), moto.cached_env(&moto.dir.join("bench-cache-session")));
    for i in 0..100 {
        tab(&session, LINES[i % LINES.len()]);
    }
    let cache = ctx.cache(&session, &Stack::new());
    let network: u64 = cache
        .hit_counts()
        .iter()
        .filter(|((tier, service), _)| *tier == Tier::Network && service != "sts")
        .map(|(_, (hits, _))| hits)
        .sum();
    println!(
        "scripted session of 100 completions: {network} went to the network, hit rate {:.0}%",
        100.0 - network as f64
    );

    // 4. The AWS CLI's completer: one Python process per Tab. Timed on a line it completes from
    // its local model (operation names), since its server-side completion ignores a typed
    // --endpoint-url and would go to real AWS; that is a lower bound of its cost per Tab.
    let script = "import os; from awscli.autocomplete.main import autocomplete; \
                  autocomplete(os.environ['COMP_LINE'], int(os.environ['COMP_POINT']))";
    let python = std::env::var("AWS_CLI_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let line = "aws ec2 describe-inst";
    let mut runs = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let out = Command::new(&python)
            .args(["-c", script])
            .env("COMP_LINE", line)
            .env("COMP_POINT", line.len().to_string())
            .envs(moto.client_env())
            .output();
        match out {
            Ok(out) if out.status.success() && !out.stdout.is_empty() => runs.push(start.elapsed()),
            _ => break,
        }
    }
    if runs.is_empty() {
        println!("AWS CLI v2 completer not available ({python} with awscli.autocomplete): no comparison");
    } else {
        println!("AWS CLI v2 completer (`{line}`, local model, 5 runs): p50 {:?}", percentile(&mut runs, 0.5));
    }
}
