//! Metrics of every AWS request and every cache lookup the process makes, per (service,
//! operation, region): latency percentiles (an HdrHistogram), requests, errors, retries,
//! throttles, bytes each way, and cache hits per tier and misses. Recorded into a process-wide
//! registry ([`Metrics::global`]) on the request path, so recording must cost far less than a
//! request: counters are atomics, and a latency takes the first free of a few histogram shards.
//!
//! - [`latency`]: [`Latency`], the histogram, and the sharded recorder.
//! - [`interceptor`]: [`MetricsInterceptor`], the SDK interceptor every client carries, which
//!   times each operation from start to end (retries included) and counts its attempts.
//! - [`history`]: the figures kept across processes, per hour, in the disk cache's LMDB
//!   environment, for `aws metrics --since 7day`.
//!
//! Cache lookups are recorded by the cache itself ([`crate::cache::Cache`]).
//!
//! Not here: presenting the figures (that is `aws metrics` in `nu-cmd-aws`), nor timing
//! anything but AWS requests and cache lookups (`aws bench` times closures itself).

pub mod history;
pub mod interceptor;
pub mod latency;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::cache::Tier;

pub use history::{clear_history, flush_at_exit, load_history};
pub use interceptor::MetricsInterceptor;
pub use latency::{Latency, LatencyRecorder};

/// What figures are kept apart by.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperationKey {
    /// Lowercase, as in cache keys and commands: `s3`, `ec2`, `sts`.
    pub service: String,
    /// As the API names it: `ListObjectsV2`, `DescribeInstances`.
    pub operation: String,
    /// Empty when unknown.
    pub region: String,
}

impl OperationKey {
    pub fn new(service: &str, operation: &str, region: &str) -> Self {
        Self {
            service: service.to_ascii_lowercase(),
            operation: operation.to_string(),
            region: region.to_string(),
        }
    }
}

/// The figures of one operation: plain numbers, to show, merge, subtract and store.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Operations sent (one per call of the SDK, whatever its attempts).
    pub requests: u64,
    /// Operations that ended in an error (after any retries).
    pub errors: u64,
    /// Attempts beyond the first.
    pub retries: u64,
    /// Attempts the SDK classified as throttled (SlowDown, Throttling, RequestLimitExceeded, ...).
    pub throttles: u64,
    /// Bytes of response bodies (Content-Length), every attempt.
    pub bytes_in: u64,
    /// Bytes of request bodies, every attempt.
    pub bytes_out: u64,
    /// Cache lookups answered by the memory tier.
    pub hits_memory: u64,
    /// Cache lookups answered by the disk tier.
    pub hits_disk: u64,
    /// Cache lookups answered by the shared tier (Redis).
    pub hits_shared: u64,
    /// Cache lookups neither tier answered (so the network was asked).
    pub misses: u64,
    /// Latency of each request, from the SDK call to its result, retries and backoff included.
    pub latency: Latency,
}

impl Figures {
    fn counters_mut(&mut self) -> [&mut u64; 10] {
        [
            &mut self.requests,
            &mut self.errors,
            &mut self.retries,
            &mut self.throttles,
            &mut self.bytes_in,
            &mut self.bytes_out,
            &mut self.hits_memory,
            &mut self.hits_disk,
            &mut self.hits_shared,
            &mut self.misses,
        ]
    }

    fn counters(&self) -> [u64; 10] {
        [
            self.requests,
            self.errors,
            self.retries,
            self.throttles,
            self.bytes_in,
            self.bytes_out,
            self.hits_memory,
            self.hits_disk,
            self.hits_shared,
            self.misses,
        ]
    }

    /// Adds `other` to these.
    pub fn merge(&mut self, other: &Figures) {
        let theirs = other.counters();
        for (mine, theirs) in self.counters_mut().into_iter().zip(theirs) {
            *mine = mine.saturating_add(theirs);
        }
        self.latency.merge(&other.latency);
    }

    /// What was added since `earlier`, a former state of these figures.
    fn since(&self, earlier: &Figures) -> Figures {
        let mut delta = self.clone();
        let before = earlier.counters();
        for (now, before) in delta.counters_mut().into_iter().zip(before) {
            *now = now.saturating_sub(before);
        }
        // A former state is always a subset; were it not, keeping everything double-counts at
        // worst, where failing would lose the figures.
        delta.latency = self
            .latency
            .minus(&earlier.latency)
            .unwrap_or_else(|| self.latency.clone());
        delta
    }

    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.counters().iter().all(|&n| n == 0) && self.latency.is_empty()
    }

    /// Cache lookups in all. Saturating: the counts come from the disk too (the history), where
    /// a damaged record can hold any number (found by the `disk_records` fuzz target).
    pub fn lookups(&self) -> u64 {
        self.hits().saturating_add(self.misses)
    }

    fn hits(&self) -> u64 {
        self.hits_memory.saturating_add(self.hits_disk).saturating_add(self.hits_shared)
    }

    /// Share of cache lookups answered by a tier; `None` without lookups.
    pub fn hit_rate(&self) -> Option<f64> {
        let lookups = self.lookups();
        (lookups > 0).then(|| self.hits() as f64 / lookups as f64)
    }
}

/// Figures per operation.
pub type Snapshot = BTreeMap<OperationKey, Figures>;

/// One finished request, as the interceptor saw it.
#[derive(Clone, Debug, Default)]
pub struct RequestRecord<'a> {
    pub service: &'a str,
    pub operation: &'a str,
    pub region: &'a str,
    pub latency: Duration,
    /// Attempts made, the first included.
    pub attempts: u32,
    pub failed: bool,
    pub throttles: u32,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// The live counters of one operation.
#[derive(Debug, Default)]
struct OperationStats {
    requests: AtomicU64,
    errors: AtomicU64,
    retries: AtomicU64,
    throttles: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    hits_memory: AtomicU64,
    hits_disk: AtomicU64,
    hits_shared: AtomicU64,
    misses: AtomicU64,
    latency: LatencyRecorder,
}

impl OperationStats {
    fn figures(&self) -> Figures {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Figures {
            requests: n(&self.requests),
            errors: n(&self.errors),
            retries: n(&self.retries),
            throttles: n(&self.throttles),
            bytes_in: n(&self.bytes_in),
            bytes_out: n(&self.bytes_out),
            hits_memory: n(&self.hits_memory),
            hits_disk: n(&self.hits_disk),
            hits_shared: n(&self.hits_shared),
            misses: n(&self.misses),
            latency: self.latency.snapshot(),
        }
    }
}

/// Separates the parts of a registry key; no service, operation or region name contains it.
const KEY_SEPARATOR: char = '\u{1f}';

thread_local! {
    /// Where the request path spells a registry key, so that looking one up allocates nothing.
    static KEY_BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The process's figures, since it started or since the last [`Metrics::reset`].
#[derive(Debug)]
pub struct Metrics {
    /// Keyed by `service␟operation␟region`, lowercase service, so a lookup needs only a `&str`.
    operations: RwLock<HashMap<String, (OperationKey, OperationStats)>>,
    /// When these figures began.
    since: Mutex<SystemTime>,
    /// The figures already merged into the history, and when (see `history`).
    flushed: Mutex<Flushed>,
}

#[derive(Debug, Default)]
struct Flushed {
    figures: Snapshot,
    at: Option<Instant>,
}

static GLOBAL: LazyLock<Arc<Metrics>> = LazyLock::new(|| Arc::new(Metrics::new()));

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every value under these mutexes is replaced whole: a panicking holder leaves no half-state.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty registry (tests and benchmarks; the program uses [`Metrics::global`]).
    pub fn new() -> Self {
        Self {
            operations: RwLock::default(),
            since: Mutex::new(SystemTime::now()),
            flushed: Mutex::default(),
        }
    }

    /// The registry of the process, which every session's clients and every cache record into.
    pub fn global() -> &'static Arc<Metrics> {
        &GLOBAL
    }

    /// Runs `f` on the counters of (service, operation, region), creating them on first use.
    /// The common case takes the map's read lock only, with no allocation.
    fn with_stats(
        &self,
        service: &str,
        operation: &str,
        region: &str,
        f: impl FnOnce(&OperationStats),
    ) {
        KEY_BUFFER.with_borrow_mut(|key| {
            key.clear();
            key.extend(service.chars().map(|c| c.to_ascii_lowercase()));
            key.push(KEY_SEPARATOR);
            key.push_str(operation);
            key.push(KEY_SEPARATOR);
            key.push_str(region);
            {
                let operations = self
                    .operations
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                if let Some((_, stats)) = operations.get(key.as_str()) {
                    return f(stats);
                }
            }
            let mut operations = self
                .operations
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let (_, stats) = operations.entry(key.clone()).or_insert_with(|| {
                (
                    OperationKey::new(service, operation, region),
                    OperationStats::default(),
                )
            });
            f(stats);
        });
    }

    /// Records a finished request.
    pub fn record_request(&self, r: &RequestRecord<'_>) {
        self.with_stats(r.service, r.operation, r.region, |s| {
            s.requests.fetch_add(1, Ordering::Relaxed);
            if r.failed {
                s.errors.fetch_add(1, Ordering::Relaxed);
            }
            if r.attempts > 1 {
                s.retries
                    .fetch_add(u64::from(r.attempts - 1), Ordering::Relaxed);
            }
            if r.throttles > 0 {
                s.throttles
                    .fetch_add(u64::from(r.throttles), Ordering::Relaxed);
            }
            if r.bytes_in > 0 {
                s.bytes_in.fetch_add(r.bytes_in, Ordering::Relaxed);
            }
            if r.bytes_out > 0 {
                s.bytes_out.fetch_add(r.bytes_out, Ordering::Relaxed);
            }
            s.latency.record(r.latency);
        });
    }

    /// Records a cache lookup: answered by `Tier::Memory`, `Tier::Disk` or `Tier::Shared`, or a miss
    /// (`Tier::Network`, the network being asked instead).
    pub fn record_cache_lookup(&self, service: &str, operation: &str, region: &str, tier: Tier) {
        self.with_stats(service, operation, region, |s| {
            let counter = match tier {
                Tier::Memory => &s.hits_memory,
                Tier::Disk => &s.hits_disk,
                Tier::Shared => &s.hits_shared,
                Tier::Network => &s.misses,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// The figures of every operation seen since [`Metrics::since`].
    pub fn snapshot(&self) -> Snapshot {
        let operations = self
            .operations
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        operations
            .values()
            .map(|(key, stats)| (key.clone(), stats.figures()))
            .collect()
    }

    /// When the current figures began: the process's start, or the last reset.
    pub fn since(&self) -> SystemTime {
        *lock(&self.since)
    }

    /// Forgets every figure of this process (the history is [`history::clear_history`]'s).
    pub fn reset(&self) {
        // Under the flush lock, so a flush in progress cannot store figures taken before the
        // reset as if they were new.
        let mut flushed = lock(&self.flushed);
        self.operations
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        *flushed = Flushed::default();
        *lock(&self.since) = SystemTime::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_of_huge_counts_saturate() {
        // A history record read from disk (the disk_records fuzz target's first input).
        let figures = Figures { hits_memory: u64::MAX, misses: 2, ..Figures::default() };
        assert_eq!(figures.lookups(), u64::MAX);
        assert_eq!(figures.hit_rate(), Some(1.0));
    }

    fn request<'a>(operation: &'a str, ms: u64) -> RequestRecord<'a> {
        RequestRecord {
            service: "EC2",
            operation,
            region: "eu-west-1",
            latency: Duration::from_millis(ms),
            attempts: 1,
            ..Default::default()
        }
    }

    #[test]
    fn requests_and_lookups_are_kept_per_operation() {
        let m = Metrics::new();
        for ms in 1..=10 {
            m.record_request(&request("DescribeInstances", ms));
        }
        m.record_request(&RequestRecord {
            attempts: 3,
            failed: true,
            throttles: 2,
            bytes_in: 300,
            bytes_out: 20,
            ..request("DescribeVpcs", 500)
        });
        m.record_cache_lookup("ec2", "DescribeInstances", "eu-west-1", Tier::Memory);
        m.record_cache_lookup("ec2", "DescribeInstances", "eu-west-1", Tier::Disk);
        m.record_cache_lookup("ec2", "DescribeInstances", "eu-west-1", Tier::Network);
        m.record_cache_lookup("ec2", "DescribeInstances", "us-east-1", Tier::Network);

        let snap = m.snapshot();
        assert_eq!(snap.len(), 3, "{snap:?}");
        let instances = &snap[&OperationKey::new("ec2", "DescribeInstances", "eu-west-1")];
        assert_eq!(instances.requests, 10);
        assert_eq!(instances.latency.count(), 10);
        assert_eq!(
            (instances.hits_memory, instances.hits_disk, instances.misses),
            (1, 1, 1)
        );
        assert!((instances.hit_rate().unwrap() - 2.0 / 3.0).abs() < 1e-9);
        let p50 = instances.latency.quantile(0.5).unwrap();
        assert!(
            p50 >= Duration::from_millis(5) && p50 < Duration::from_micros(5010),
            "{p50:?}"
        );
        let vpcs = &snap[&OperationKey::new("ec2", "DescribeVpcs", "eu-west-1")];
        assert_eq!(
            (
                vpcs.requests,
                vpcs.errors,
                vpcs.retries,
                vpcs.throttles,
                vpcs.bytes_in,
                vpcs.bytes_out
            ),
            (1, 1, 2, 2, 300, 20)
        );
        assert_eq!(vpcs.hit_rate(), None);

        m.reset();
        assert!(m.snapshot().is_empty());
    }

    #[test]
    fn figures_merge_and_subtract() {
        let m = Metrics::new();
        m.record_request(&request("DescribeInstances", 10));
        let before = m.snapshot();
        m.record_request(&request("DescribeInstances", 20));
        m.record_cache_lookup("ec2", "DescribeInstances", "eu-west-1", Tier::Memory);
        let after = m.snapshot();
        let key = OperationKey::new("ec2", "DescribeInstances", "eu-west-1");
        let delta = after[&key].since(&before[&key]);
        assert_eq!(
            (delta.requests, delta.hits_memory, delta.latency.count()),
            (1, 1, 1)
        );
        let mut merged = before[&key].clone();
        merged.merge(&delta);
        assert_eq!(merged, after[&key]);
        assert!(Figures::default().is_empty());
        assert!(!delta.is_empty());
    }

    #[test]
    fn concurrent_recording_counts_everything() {
        let m = Arc::new(Metrics::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let op = if i % 2 == 0 { "A" } else { "B" };
                        m.record_request(&RequestRecord {
                            service: "s3",
                            operation: op,
                            region: "r",
                            latency: Duration::from_micros(100 + t),
                            attempts: 1,
                            ..Default::default()
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let snap = m.snapshot();
        let total: u64 = snap.values().map(|f| f.requests).sum();
        assert_eq!(total, 2000);
        assert!(snap.values().all(|f| f.latency.count() == 1000));
    }
}
