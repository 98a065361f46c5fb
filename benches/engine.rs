//! Benchmarks of the request engine's own overhead, with requests that cost nothing, so what is
//! measured is the engine: a limiter permit taken and returned, a deduplicated read, and a bulk
//! job's per-item cost (feeder thread, task, channel, hand-out) for ready answers and for
//! requests.
//!
//! Run: cargo bench -p aws-core --profile bench-fast --bench engine

use std::hint::black_box;
use std::time::Duration;

use aws_core::engine::{AdaptiveLimiter, BulkJob, Dedup, JobSettings, LimiterSettings, Request, Signal};
use aws_core::runtime::runtime;
use aws_core::AwsError;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

#[path = "support/fixtures.rs"]
mod fixtures;

use fixtures::drain;

const ITEMS: u64 = 10_000;

fn benches(c: &mut Criterion) {
    let limiter = AdaptiveLimiter::new(LimiterSettings::fixed(64));
    c.bench_function("limiter: permit taken and returned", |b| {
        b.iter(|| {
            let permit = limiter.try_acquire().expect("room");
            permit.finish(Signal::Answered(Duration::from_millis(20)));
        })
    });

    let dedup = Dedup::<u64, AwsError>::default();
    c.bench_function("dedup: a read with no twin", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let key = i.to_string();
            runtime().block_on(dedup.run(&key, Duration::ZERO, || async move { Ok::<_, AwsError>(black_box(i)) }))
        })
    });

    let mut group = c.benchmark_group("bulk job, 10,000 items");
    group.sample_size(10);
    group.bench_function("ready answers (cache hits)", |b| {
        b.iter_batched(
            || AdaptiveLimiter::new(LimiterSettings::fixed(64)),
            |limiter| {
                let job = BulkJob::start(0..ITEMS, limiter, JobSettings::default(), |i| {
                    Request::<std::future::Ready<Result<u64, AwsError>>, u64>::Ready(Ok(i))
                });
                assert_eq!(drain(job), ITEMS);
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("instant requests", |b| {
        b.iter_batched(
            || AdaptiveLimiter::new(LimiterSettings::fixed(64)),
            |limiter| {
                let job = BulkJob::start(0..ITEMS, limiter, JobSettings::default(), |i| Request::Send(async move { Ok(i) }));
                assert_eq!(drain(job), ITEMS);
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
