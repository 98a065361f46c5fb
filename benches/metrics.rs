//! What recording metrics costs a request: the target is under 1 µs per request.
//!
//! `cargo bench -p aws-core --profile bench-fast --bench metrics` runs criterion on
//! - recording a finished request (counters and histogram of an existing operation), alone and
//!   with a second thread recording the same operation at the same time;
//! - recording a cache lookup;
//! - the interceptor's whole share of a single-attempt request: its config-bag work in its five
//!   hooks (store the start, count the attempt, add the bytes sent, add the bytes received, load
//!   the operation and region) and the record, as `MetricsInterceptor` does them;
//!
//! then prints the mean cost per request of the last one over a million requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_core::cache::Tier;
use aws_core::metrics::{Metrics, RequestRecord};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{ConfigBag, Layer, Storable, StoreReplace};
use aws_types::region::Region;
use criterion::{Criterion, black_box};

fn record(m: &Metrics, micros: u64) {
    m.record_request(&RequestRecord {
        service: "S3",
        operation: "ListObjectsV2",
        region: "us-east-1",
        latency: Duration::from_micros(micros),
        attempts: 1,
        bytes_in: 4096,
        ..Default::default()
    });
}

/// The interceptor's state of one execution (a copy of its private one, same shape).
#[derive(Debug, Clone)]
struct Execution {
    started: Instant,
    attempts: u32,
    throttles: u32,
    bytes_in: u64,
    bytes_out: u64,
}

impl Storable for Execution {
    type Storer = StoreReplace<Self>;
}

/// A config bag as an operation has it: the client's layer with metadata and region.
fn operation_bag() -> ConfigBag {
    let mut layer = Layer::new("client");
    layer.store_put(Metadata::new("ListObjectsV2", "S3"));
    layer.store_put(Region::new("us-east-1"));
    ConfigBag::of_layers(vec![layer])
}

/// The interceptor's work for one single-attempt request, outside the SDK.
fn one_request(m: &Metrics, cfg: &mut ConfigBag) {
    cfg.interceptor_state().store_put(Execution {
        started: Instant::now(),
        attempts: 0,
        throttles: 0,
        bytes_in: 0,
        bytes_out: 0,
    });
    if let Some(e) = cfg.get_mut_from_interceptor_state::<Execution>() {
        e.attempts += 1;
    }
    if let Some(e) = cfg.get_mut_from_interceptor_state::<Execution>() {
        e.bytes_out += black_box("0").parse::<u64>().unwrap_or(0);
    }
    if let Some(e) = cfg.get_mut_from_interceptor_state::<Execution>() {
        e.bytes_in += black_box("4096").parse::<u64>().unwrap_or(0);
    }
    let Some(e) = cfg.load::<Execution>() else {
        return;
    };
    let (service, operation) = cfg
        .load::<Metadata>()
        .map_or(("", ""), |m| (m.service(), m.name()));
    let region = cfg.load::<Region>().map_or("", Region::as_ref);
    m.record_request(&RequestRecord {
        service,
        operation,
        region,
        latency: e.started.elapsed(),
        attempts: e.attempts,
        failed: false,
        throttles: e.throttles,
        bytes_in: e.bytes_in,
        bytes_out: e.bytes_out,
    });
}

fn main() {
    let metrics = Arc::new(Metrics::new());
    record(&metrics, 1); // the operation exists: what every request but the first pays
    let mut c = Criterion::default().configure_from_args();

    let mut micros = 0u64;
    c.bench_function("record a request", |b| {
        b.iter(|| {
            micros = (micros + 7919) % 2_000_000; // spread over the histogram's buckets
            record(black_box(&metrics), micros);
        })
    });
    c.bench_function("record a cache lookup", |b| {
        b.iter(|| {
            metrics.record_cache_lookup("s3", "ListObjectsV2", "us-east-1", black_box(Tier::Memory))
        })
    });
    c.bench_function("record a request, another thread recording too", |b| {
        let stop = Arc::new(AtomicBool::new(false));
        let rival = {
            let (m, stop) = (metrics.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n = (n + 104_729) % 2_000_000;
                    record(&m, n);
                }
            })
        };
        b.iter(|| {
            micros = (micros + 7919) % 2_000_000;
            record(black_box(&metrics), micros);
        });
        stop.store(true, Ordering::Relaxed);
        let _ = rival.join();
    });
    let mut bag = operation_bag();
    c.bench_function("interceptor work per request", |b| {
        b.iter(|| one_request(black_box(&metrics), &mut bag))
    });
    c.final_summary();

    let runs = 1_000_000u32;
    let start = Instant::now();
    for _ in 0..runs {
        one_request(&metrics, &mut bag);
    }
    let per_request = start.elapsed() / runs;
    println!(
        "interceptor work per request: {per_request:?} mean over {runs} requests (target < 1 µs)"
    );
}
