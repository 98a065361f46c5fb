//! The workloads of the performance gate (`scripts/perf-gate`): a fixed amount of work with fixed
//! inputs on each hot path (no clock read that changes the work, no randomness, no network), so
//! that its instruction count under `valgrind --tool=callgrind` is the same on every run of the
//! same binary (within `Workload::spread`: see `completion`). `perf_gate <workload>` sets the workload up, does it once unmeasured (lazy
//! statics, the runtime's threads, LMDB's reader slot), then once inside [`measured`]: the gate
//! has callgrind count only what happens between entering and leaving that function, on every
//! thread (the bulk job's feeder, the runtime's workers, the completion's listing thread).
//! Each run checks its own result, so a workload that stops doing its work fails instead of
//! getting cheaper.
//!
//! Not a timer: nothing here measures time (criterion's benches and the scripts of `benches/`
//! do). `perf_gate --list` names the workloads, one a line: name, how far apart two counts may
//! come (percent), what it does, separated by tabs.

#[path = "support/fixtures.rs"]
mod fixtures;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_core::cache::{Cache, DiskCache, Entry, Freshness, MockClock, RowFeed, decode, encode};
use aws_core::engine::{AdaptiveLimiter, BulkJob, JobSettings, LimiterSettings, Request, Signal};
use aws_core::error::{AwsError, ErrorKind};
use aws_core::pagination::PageStream;
use aws_core::row::Row;
use nu_cmd_aws::AwsContext;
use nu_cmd_aws::context::{CallSession, SessionArgs};
use nu_cmd_aws::errors::ErrorSpans;
use nu_cmd_aws::stream::RowStream;
use nu_protocol::engine::Stack;
use nu_protocol::{Record, Signals, Span, Value};

use fixtures::{bench_identity, drain, instance_rows, instances_key, object_rows};

/// One workload of the gate.
struct Workload {
    name: &'static str,
    what: &'static str,
    /// How far apart (percent) two counts of the same binary may come: 0.1 for the workloads
    /// that run on one thread; more where the count depends on how threads interleave (see the
    /// workload), which `scripts/perf-gate --runs` checks instead.
    spread: f64,
    work: fn() -> Result<(), String>,
}

/// Every workload, in the order of the gate's table.
const WORKLOADS: &[Workload] = &[
    Workload { name: "memory_hit", what: "20 memory-tier hits on a 500-instance listing, rows replayed (cloned)", spread: 0.1, work: memory_hit },
    Workload { name: "disk_hit", what: "5 LMDB hits on the same listing: read transaction, checksum, brotli, decode", spread: 0.1, work: disk_hit },
    Workload { name: "codec", what: "2 encodes and decodes of the 500-instance entry", spread: 0.1, work: codec },
    Workload { name: "cache_key", what: "1,000 cache keys of an instance listing", spread: 0.1, work: cache_key },
    Workload { name: "limiter", what: "10,000 permits of the adaptive limiter taken and returned", spread: 0.1, work: limiter },
    Workload { name: "bulk_ready", what: "a bulk job of 2,000 ready answers (cache hits) through the request engine", spread: 1.0, work: bulk_ready },
    Workload { name: "listing_replay", what: "a 10,000-object listing replayed from memory through the row conversion", spread: 0.1, work: listing_replay },
    // Timers on the wall clock, a listing thread per Tab: see `bulk_ready`, `completion`.
    Workload { name: "completion", what: "20 Tabs of `aws ec2 stop ` answered from the cache (100 instances)", spread: 1.0, work: completion },
];

/// What callgrind counts: everything from entering this function to leaving it. Never inlined,
/// so that it exists under its own name (`perf_gate::measured`).
#[inline(never)]
fn measured(work: &mut dyn FnMut() -> u64) -> u64 {
    std::hint::black_box(work())
}

/// Runs `work` once unmeasured, then once measured; both must give `expected`.
fn run(expected: u64, mut work: impl FnMut() -> u64) -> Result<(), String> {
    let warm = work();
    let got = measured(&mut work);
    if warm != expected || got != expected {
        return Err(format!("expected {expected}, got {warm} unmeasured and {got} measured"));
    }
    println!("result {got}");
    Ok(())
}

const TTL: Duration = Duration::from_secs(300);

/// A cache of the memory tier only, on a clock that does not move.
fn memory_cache() -> Cache {
    Cache::builder().clock(Arc::new(MockClock::new())).build()
}

fn memory_hit() -> Result<(), String> {
    let cache = memory_cache();
    let key = instances_key();
    cache.store(key.clone(), instance_rows(500), TTL);
    run(20 * 500, || {
        (0..20)
            .map(|_| cache.lookup(&key, "ec2").map_or(0, |(entry, _)| entry.rows.clone().len() as u64))
            .sum()
    })
}

fn disk_hit() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let clock = Arc::new(MockClock::new());
    let disk = DiskCache::open(dir.path(), 64 << 20, clock.clone());
    let key = instances_key();
    disk.insert(&Entry::new(key.clone(), instance_rows(500), aws_core::cache::Clock::wall(&*clock), TTL));
    run(5 * 500, || (0..5).map(|_| disk.get(&key).map_or(0, |entry| entry.rows.len() as u64)).sum())
}

fn codec() -> Result<(), String> {
    let key = instances_key();
    let created = SystemTime::UNIX_EPOCH + Duration::from_secs(fixtures::FIXED_UNIX as u64);
    let entry = Entry::new(key.clone(), instance_rows(500), created, TTL);
    run(2 * 500, || {
        (0..2)
            .map(|_| decode(&encode(&entry), &key).map_or(0, |back| back.rows.len() as u64))
            .sum()
    })
}

fn cache_key() -> Result<(), String> {
    let length = instances_key().len() as u64;
    run(1000 * length, || (0..1000).map(|_| instances_key().len() as u64).sum())
}

fn limiter() -> Result<(), String> {
    let limiter = AdaptiveLimiter::new(LimiterSettings::fixed(64));
    run(10_000, || {
        let mut taken = 0;
        for _ in 0..10_000 {
            if let Some(permit) = limiter.try_acquire() {
                permit.finish(Signal::Answered(Duration::from_millis(20)));
                taken += 1;
            }
        }
        taken
    })
}

/// The feeder makes every answer before the consumer takes the first (the window holds them
/// all, and the consumer waits for the feeder's thread to end): with the two threads taking
/// turns instead, how often the consumer found the channel empty and parked changed the count
/// by up to 2% from run to run. The waiting is a sleep between looks at a counter, a few hundred
/// instructions however long it lasts. What still moves (0.5%): each answer is taken through
/// `tokio::time::timeout`, and the cost of the timer it registers depends on where the runtime's
/// timer wheel stands, which follows the wall clock.
fn bulk_ready() -> Result<(), String> {
    const ITEMS: u64 = 2000;
    // One more than the items: the feeder takes room before it reads the next item (or the end).
    let settings = JobSettings { window: ITEMS as usize + 1, ..JobSettings::default() };
    run(ITEMS, || {
        let limiter = AdaptiveLimiter::new(LimiterSettings::fixed(64));
        // Held by the job's closure, so by the feeder until it has sent every answer and ended.
        let feeder_alive = Arc::new(());
        let held = feeder_alive.clone();
        let job = BulkJob::start(0..ITEMS, limiter, settings, move |i| {
            let _ = &held;
            Request::<std::future::Ready<Result<u64, AwsError>>, u64>::Ready(Ok(i))
        });
        while Arc::strong_count(&feeder_alive) > 1 {
            std::thread::sleep(Duration::from_millis(20));
        }
        // And for its thread to end (its teardown frees memory, racing the consumer's allocations).
        std::thread::sleep(Duration::from_millis(100));
        drain(job)
    })
}

fn listing_replay() -> Result<(), String> {
    const OBJECTS: usize = 10_000;
    let cache = Arc::new(memory_cache());
    let key = "123456789012/us-east-1/s3/ListObjectsV2/bench-bucket/#perf-gate".to_string();
    cache.store(key.clone(), object_rows(OBJECTS), TTL);
    let span = Span::unknown();
    run(OBJECTS as u64, || {
        // A miss would go to the network: here it is an error, and the count comes out short.
        let feed = RowFeed::cached(&cache, key.clone(), "s3", Some(TTL), Freshness::Normal, || {
            Err(AwsError::new(ErrorKind::Local, "ListObjectsV2", "the listing was not in the cache"))
        });
        let Ok(feed) = feed else { return 0 };
        let Ok(values) = RowStream::new(feed, span, ErrorSpans::at(span), Signals::empty()).into_pipeline_data() else {
            return 0;
        };
        values.into_iter().filter(|v| v.as_record().is_ok_and(|r| r.len() == 6)).count() as u64
    })
}

/// The endpoint of the completion workload's session: a closed port on loopback, so a request
/// that should not happen fails (and the candidates come out short) rather than reaching anything.
const NO_SERVER: &str = "http://127.0.0.1:9";

/// Each Tab runs its listing on a thread of its own (as in the REPL), which ends while the Tab
/// goes on: who frees what, and in which order, changes malloc's heap from run to run, hence
/// whether a growing vector is reallocated in place or copied. Its count moves by up to 0.9%
/// (`Workload::spread`), the copies in `realloc` nearly all of it (see docs/quality.md).
fn completion() -> Result<(), String> {
    const INSTANCES: usize = 100;
    const LINE: &str = "aws ec2 stop ";
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let ctx = Arc::new(AwsContext::default());
    let engine_state = nu_cmd_lang::create_default_context();
    let mut engine_state = nu_cmd_aws::add_aws_context_with(engine_state, ctx.clone());
    let span = Span::unknown();
    let text = |v: &str| Value::string(v, span);
    for (name, value) in [
        ("PWD", text(&path(""))),
        ("HOME", text(&path(""))),
        ("AWS_ACCESS_KEY_ID", text("perf-gate")),
        ("AWS_SECRET_ACCESS_KEY", text("perf-gate")),
        ("AWS_REGION", text("us-east-1")),
        ("AWS_ENDPOINT_URL", text(NO_SERVER)),
        ("AWS_EC2_METADATA_DISABLED", text("true")),
        ("AWS_CONFIG_FILE", text(&path("aws-config"))),
        ("AWS_SHARED_CREDENTIALS_FILE", text(&path("aws-credentials"))),
        ("NUAWS_CACHE_DIR", text(&path("cache"))),
        // Instances stay fresh for 5 minutes by default: a slow run under valgrind must not outlive them.
        ("NUAWS_CACHE_TTL", Value::record(Record::from_iter([("instances".to_string(), Value::duration(86_400_000_000_000, span))]), span)),
    ] {
        engine_state.add_env_var(name.into(), value);
    }
    let engine_state = Arc::new(engine_state);
    let stack = Stack::new();

    // The cache as a first `aws ec2 instances` would leave it: who the keys belong to (what
    // STS would have said), and the listing recorded under the key the command uses.
    let cache = ctx.cache(&engine_state, &stack).clone();
    let policy = nu_cmd_aws::context::policy(&engine_state, &stack).map_err(|e| format!("policy: {e:?}"))?;
    let spec = SessionArgs { profile: None, region: None, endpoint: None }.spec(&engine_state, &stack);
    let cs = CallSession::background(&ctx, &spec, cache.clone(), policy, Freshness::Normal)
        .ok_or("no session for the completion's environment")?;
    aws_core::identity::store_identity(&cache, "perf-gate", cs.session.endpoint(), &bench_identity());
    let request = aws_core::ec2::ListRequest::new(aws_core::ec2::Listing::Instances);
    let params = nu_cmd_aws::ec2::cache_params(&request);
    let rows = instance_rows(INSTANCES);
    let feed = cs
        .feed("ec2", "DescribeInstances", String::new(), params, move || {
            Ok(PageStream::produce(move |pages| async move {
                let _ = pages.send(Ok::<Vec<Row>, AwsError>(rows)).await;
            }))
        })
        .map_err(|e| format!("recording the listing: {e}"))?;
    let recorded = nu_cmd_aws::stream::collect_rows(feed, &Signals::empty()).map_err(|e| format!("recording: {e}"))?;
    if recorded.len() != INSTANCES {
        return Err(format!("recorded {} of {INSTANCES} instances", recorded.len()));
    }

    let tab = || {
        let engine = nu_cli::CompletionEngine::new(engine_state.clone(), Arc::new(Stack::new()));
        engine.fetch_completions_at(LINE, LINE.len()).iter().filter(|s| s.suggestion.value.starts_with("i-")).count() as u64
    };
    let result = run(20 * INSTANCES as u64, || (0..20).map(|_| tab()).sum());
    let network: u64 = cache
        .hit_counts()
        .iter()
        .filter(|((tier, _), _)| *tier == aws_core::cache::Tier::Network)
        .map(|(_, (hits, _))| hits)
        .sum();
    // The recording counted one read from the network (the seeded listing); any other went out.
    if network != 1 {
        return Err(format!("{network} reads went to the network, 1 expected"));
    }
    result
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag] if flag == "--list" => {
            for workload in WORKLOADS {
                println!("{}\t{}\t{}", workload.name, workload.spread, workload.what);
            }
        }
        [name] => {
            let Some(workload) = WORKLOADS.iter().find(|w| w.name == name) else {
                eprintln!("perf_gate: no workload `{name}` (perf_gate --list names them)");
                std::process::exit(2);
            };
            if let Err(problem) = (workload.work)() {
                eprintln!("perf_gate: workload {name} failed: {problem}");
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!("usage: perf_gate --list | perf_gate <workload>");
            std::process::exit(2);
        }
    }
}
