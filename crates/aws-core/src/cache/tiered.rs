//! [`Cache`]: the tiers together. A read looks in memory, then on disk, then in the shared tier
//! when one is configured (promoting what it finds to the tiers above), then goes to the network
//! and stores the answer in every tier. The tiers are a list of [`TierStore`]s walked in order:
//! a new tier is a new store, not a branch here. Concurrent identical
//! misses in one process share one request; across processes and machines, a shared tier can
//! make them share one too ([`Cache::lookup_or_wait`], [`TierStore::await_fill`]). Counters per tier and per service feed
//! `aws cache stats`; the tier and age of each answer are reported to the caller.
//!
//! Every lookup is also recorded, per (service, operation, region) of its key, into a
//! [`Metrics`] registry: a hit of the memory or disk tier, or a miss when the network is asked.
//!
//! Built with [`CacheBuilder`] (policy and sizes apart from storage, as moka does). Never fails a
//! command: every storage problem is the storage layer's to absorb.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::cache::clock::{Clock, SystemClock};
use crate::cache::codec::Entry;
use crate::cache::disk::DiskCache;
use crate::cache::memory::MemoryCache;
use crate::cache::shared::{SharedCache, SharedConfig};
use crate::cache::tier::{Stale, TierStore};
use crate::cache::TierStats;
use crate::cache::key::key_parts;
use crate::metrics::Metrics;
use crate::row::Row;

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    Memory,
    Disk,
    /// The tier a team shares (Redis).
    Shared,
    Network,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Memory => "memory",
            Tier::Disk => "disk",
            Tier::Shared => "shared",
            Tier::Network => "network",
        }
    }
}

/// How a read may use the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Freshness {
    /// Serve a fresh entry if there is one; store what the network returns.
    #[default]
    Normal,
    /// Skip the cache, then store the new answer (`--refresh`).
    Refresh,
    /// Neither read nor write the cache (`--no-cache`, `NUAWS_CACHE=off`).
    Bypass,
}

/// Hits and misses of one (tier, service).
#[derive(Default)]
struct Counter {
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A snapshot of the counters: `(tier, service) -> (hits, misses)`.
pub type HitCounts = BTreeMap<(Tier, String), (u64, u64)>;

pub struct Cache {
    memory: Arc<MemoryCache>,
    disk: Option<Arc<DiskCache>>,
    shared: Option<Arc<SharedCache>>,
    /// Every tier, fastest first: memory, then disk and shared where present.
    tiers: Vec<Arc<dyn TierStore>>,
    clock: Arc<dyn Clock>,
    counters: Mutex<HashMap<(Tier, String), Arc<Counter>>>,
    inflight: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    metrics: Arc<Metrics>,
}

/// Builds a [`Cache`].
pub struct CacheBuilder {
    memory_bytes: usize,
    disk_dir: Option<PathBuf>,
    disk_bytes: u64,
    shared: Option<SharedConfig>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

impl Default for CacheBuilder {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            disk_dir: None,
            disk_bytes: 256 << 20,
            shared: None,
            clock: Arc::new(SystemClock),
            metrics: Metrics::global().clone(),
        }
    }
}

impl CacheBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bound of the memory tier, in bytes.
    pub fn memory_bytes(mut self, bytes: usize) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// Directory of the disk tier; without one there is no disk tier.
    pub fn disk_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.disk_dir = Some(dir.into());
        self
    }

    /// Budget of the disk tier, in bytes.
    pub fn disk_bytes(mut self, bytes: u64) -> Self {
        self.disk_bytes = bytes;
        self
    }

    /// A shared tier below the disk one (off without this).
    pub fn shared(mut self, config: SharedConfig) -> Self {
        self.shared = Some(config);
        self
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where lookups are recorded (default: [`Metrics::global`]).
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn build(self) -> Cache {
        let memory = Arc::new(MemoryCache::new(self.memory_bytes, self.clock.clone()));
        let disk = self
            .disk_dir
            .map(|dir| Arc::new(DiskCache::open(&dir, self.disk_bytes, self.clock.clone())));
        let shared = self
            .shared
            .map(|config| Arc::new(SharedCache::new(config, self.clock.clone())));
        let mut tiers: Vec<Arc<dyn TierStore>> = vec![memory.clone()];
        tiers.extend(disk.clone().map(|d| d as Arc<dyn TierStore>));
        tiers.extend(shared.clone().map(|s| s as Arc<dyn TierStore>));
        Cache {
            memory,
            disk,
            shared,
            tiers,
            clock: self.clock,
            counters: Mutex::default(),
            inflight: Mutex::default(),
            metrics: self.metrics,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cache {
    pub fn builder() -> CacheBuilder {
        CacheBuilder::new()
    }

    fn counter(&self, tier: Tier, service: &str) -> Arc<Counter> {
        lock(&self.counters)
            .entry((tier, service.to_string()))
            .or_default()
            .clone()
    }

    fn count(&self, tier: Tier, service: &str, hit: bool) {
        let c = self.counter(tier, service);
        let n = if hit { &c.hits } else { &c.misses };
        n.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a lookup of `key` in the metrics, under the service, operation and region the
    /// key names (`Tier::Network` for a miss). Keys not made by `cache_key` are not recorded
    /// here: their owner knows what they are about (see `identity`).
    fn record_lookup(&self, key: &str, tier: Tier) {
        if let Some(parts) = key_parts(key) {
            self.metrics
                .record_cache_lookup(parts.service, parts.operation, parts.region, tier);
        }
    }

    /// The registry lookups are recorded into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// A fresh entry from memory or disk (promoted to memory), counting hits and misses.
    /// A hit is recorded in the metrics; a miss is recorded by [`Cache::count_network`] when the
    /// network is asked instead.
    pub fn lookup(&self, key: &str, service: &str) -> Option<(Arc<Entry>, Tier)> {
        let found = self.lookup_tiers(key, service);
        if let Some((_, tier)) = &found {
            self.record_lookup(key, *tier);
        }
        found
    }

    /// The first tier holding a fresh entry, which is then copied into the tiers above it.
    fn lookup_tiers(&self, key: &str, service: &str) -> Option<(Arc<Entry>, Tier)> {
        for (depth, store) in self.tiers.iter().enumerate() {
            if !store.is_enabled() {
                continue;
            }
            // A copy the tiers below know to be stale (a teammate's write) is a miss here.
            let found = store
                .get(key)
                .filter(|entry| self.tiers[depth + 1..].iter().all(|below| !below.is_enabled() || below.still_current(entry)));
            self.count(store.tier(), service, found.is_some());
            if let Some(entry) = found {
                for above in &self.tiers[..depth] {
                    above.put(&entry);
                }
                return Some((entry, store.tier()));
            }
        }
        None
    }

    /// [`Cache::lookup`] for a reader that fetches `key` on a miss: when every tier missed, a
    /// tier shared with other machines may make it wait (boundedly) for the answer another
    /// machine is fetching, which is then copied into the tiers above. `None`: fetch, then
    /// [`Cache::store`] the answer or [`Cache::abandon`] the fetch.
    pub fn lookup_or_wait(&self, key: &str, service: &str) -> Option<(Arc<Entry>, Tier)> {
        if let Some(hit) = self.lookup(key, service) {
            return Some(hit);
        }
        self.await_fill(key)
    }

    fn await_fill(&self, key: &str) -> Option<(Arc<Entry>, Tier)> {
        for (depth, store) in self.tiers.iter().enumerate() {
            if !store.is_enabled() {
                continue;
            }
            if let Some(entry) = store.await_fill(key) {
                for above in &self.tiers[..depth] {
                    above.put(&entry);
                }
                self.record_lookup(key, store.tier());
                return Some((entry, store.tier()));
            }
        }
        None
    }

    /// The fetch of `key` after [`Cache::lookup_or_wait`] stored nothing under `key`: whoever
    /// waits for it need not wait any longer.
    pub fn abandon(&self, key: &str) {
        for store in &self.tiers {
            store.abandon(key);
        }
    }

    /// Stores rows fetched from the network under `key` for `ttl`, in every tier.
    pub fn store(&self, key: String, rows: Vec<Row>, ttl: Duration) -> Arc<Entry> {
        let entry = Arc::new(Entry::new(key, rows, self.clock.wall(), ttl));
        for store in self.tiers.iter().rev() {
            store.put(&entry);
        }
        entry
    }

    /// Counts a read of `key` that went to the network (a miss of every tier, or a refresh).
    pub fn count_network(&self, key: &str, service: &str) {
        self.count(Tier::Network, service, true);
        self.record_lookup(key, Tier::Network);
    }

    /// Get-or-fetch: a fresh entry, else `fetch()` once for all concurrent callers of the same
    /// key, stored for `ttl`. Errors are returned to the caller that fetched and not cached;
    /// a waiter whose leader failed fetches for itself.
    pub fn get_or_fetch<E>(
        &self,
        key: &str,
        service: &str,
        ttl: Duration,
        freshness: Freshness,
        fetch: impl FnOnce() -> Result<Vec<Row>, E>,
    ) -> Result<(Arc<Entry>, Tier), E> {
        if freshness == Freshness::Normal {
            if let Some(hit) = self.lookup(key, service) {
                return Ok(hit);
            }
        }
        let gate = lock(&self.inflight).entry(key.to_string()).or_default().clone();
        let result = {
            let _leader = lock(&gate);
            // Someone else may have fetched while we waited for the gate.
            match (freshness, self.memory.get(key)) {
                (Freshness::Normal, Some(entry)) => {
                    self.record_lookup(key, Tier::Memory);
                    Ok((entry, Tier::Memory))
                }
                _ => match (freshness == Freshness::Normal).then(|| self.await_fill(key)).flatten() {
                    Some(filled) => Ok(filled),
                    None => {
                        self.count_network(key, service);
                        let fetched = fetch().map(|rows| {
                            let entry = if freshness == Freshness::Bypass {
                                Arc::new(Entry::new(key, rows, self.clock.wall(), Duration::ZERO))
                            } else {
                                self.store(key.to_string(), rows, ttl)
                            };
                            (entry, Tier::Network)
                        });
                        if fetched.is_err() {
                            self.abandon(key);
                        }
                        fetched
                    }
                },
            }
        };
        // Drop the gate once nobody else holds it, so the map does not grow with every key.
        let mut inflight = lock(&self.inflight);
        if Arc::strong_count(&gate) == 2 {
            inflight.remove(key);
        }
        result
    }

    /// Removes every entry of the local tiers whose key satisfies `pred`; returns how many.
    /// The shared tier, which cannot list its keys, is not touched: see [`Cache::invalidate_stale`].
    pub fn invalidate(&self, pred: &dyn Fn(&str) -> bool) -> usize {
        self.invalidate_stale(&Stale { matches: pred, groups: Vec::new() })
    }

    /// What a write made stale, in every tier: the local ones drop the keys `stale.matches`
    /// accepts, the shared one moves the generation of `stale.groups`. Returns how many entries
    /// the tier that removed the most removed.
    pub fn invalidate_stale(&self, stale: &Stale<'_>) -> usize {
        self.tiers.iter().map(|t| t.invalidate(stale)).max().unwrap_or(0)
    }

    /// Keys of the tiers that can list them, with the tiers holding each.
    pub fn keys(&self) -> BTreeMap<String, Vec<Tier>> {
        let mut out: BTreeMap<String, Vec<Tier>> = BTreeMap::new();
        for store in &self.tiers {
            for key in store.keys() {
                out.entry(key).or_default().push(store.tier());
            }
        }
        out
    }

    /// A fresh entry of the local tiers without counting it (for listings of the cache itself).
    pub fn peek(&self, key: &str) -> Option<Arc<Entry>> {
        self.memory
            .get(key)
            .or_else(|| self.disk.as_ref()?.get(key).map(Arc::new))
    }

    pub fn hit_counts(&self) -> HitCounts {
        lock(&self.counters)
            .iter()
            .map(|(k, c)| {
                (
                    k.clone(),
                    (c.hits.load(Ordering::Relaxed), c.misses.load(Ordering::Relaxed)),
                )
            })
            .collect()
    }

    pub fn memory_stats(&self) -> TierStats {
        self.memory.stats()
    }

    pub fn disk_stats(&self) -> Option<TierStats> {
        self.disk.as_ref().filter(|d| d.is_enabled()).map(|d| d.stats())
    }

    pub fn disk(&self) -> Option<&DiskCache> {
        self.disk.as_deref()
    }

    /// The shared tier, when one is configured.
    pub fn shared(&self) -> Option<&SharedCache> {
        self.shared.as_deref()
    }

    /// Problems of the disk tier not reported yet (each said once per process).
    pub fn take_warnings(&self) -> Vec<String> {
        self.disk.as_ref().map(|d| d.take_warnings()).unwrap_or_default()
    }

    /// How old an entry is by the wall clock.
    pub fn age(&self, entry: &Entry) -> Duration {
        self.clock
            .wall()
            .duration_since(entry.created_at)
            .unwrap_or(Duration::ZERO)
    }

    pub fn now(&self) -> SystemTime {
        self.clock.wall()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::clock::MockClock;
    use crate::row::Field;
    use std::sync::atomic::AtomicUsize;

    fn rows(n: i64) -> Vec<Row> {
        (0..n).map(|i| Row::new().with("i", Field::Int(i))).collect()
    }

    fn memory_only(clock: Arc<MockClock>) -> Cache {
        Cache::builder().clock(clock).build()
    }

    #[test]
    fn second_read_is_served_from_memory() {
        let cache = memory_only(Arc::new(MockClock::new()));
        let fetches = AtomicUsize::new(0);
        let fetch = || {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(rows(3))
        };
        let ttl = Duration::from_secs(60);
        let (_, tier) = cache.get_or_fetch("k", "ec2", ttl, Freshness::Normal, fetch).unwrap();
        assert_eq!(tier, Tier::Network);
        let (entry, tier) = cache.get_or_fetch("k", "ec2", ttl, Freshness::Normal, fetch).unwrap();
        assert_eq!(tier, Tier::Memory);
        assert_eq!(entry.rows, rows(3));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // --refresh goes to the network and rewrites; --no-cache neither reads nor writes.
        let (_, tier) = cache.get_or_fetch("k", "ec2", ttl, Freshness::Refresh, fetch).unwrap();
        assert_eq!(tier, Tier::Network);
        let (_, tier) = cache.get_or_fetch("b", "ec2", ttl, Freshness::Bypass, fetch).unwrap();
        assert_eq!(tier, Tier::Network);
        assert!(cache.lookup("b", "ec2").is_none());
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
        let counts = cache.hit_counts();
        assert_eq!(counts[&(Tier::Memory, "ec2".to_string())].0, 1);
    }

    #[test]
    fn lookups_are_recorded_per_operation_and_region() {
        use crate::metrics::{Metrics, OperationKey};
        let metrics = Arc::new(Metrics::new());
        let cache = Cache::builder()
            .clock(Arc::new(MockClock::new()))
            .metrics(metrics.clone())
            .build();
        let key = "111111111111/eu-west-1/ec2/DescribeInstances/#0011223344556677";
        let ttl = Duration::from_secs(60);
        for _ in 0..3 {
            cache.get_or_fetch(key, "ec2", ttl, Freshness::Normal, || Ok::<_, ()>(rows(1))).unwrap();
        }
        cache.get_or_fetch(key, "ec2", ttl, Freshness::Refresh, || Ok::<_, ()>(rows(1))).unwrap();
        // Keys that name no operation are their owner's to record.
        cache.get_or_fetch("k", "ec2", ttl, Freshness::Normal, || Ok::<_, ()>(rows(1))).unwrap();
        let snap = metrics.snapshot();
        assert_eq!(snap.len(), 1, "{snap:?}");
        let figures = &snap[&OperationKey::new("ec2", "DescribeInstances", "eu-west-1")];
        assert_eq!((figures.hits_memory, figures.hits_disk, figures.misses), (2, 0, 2));
        assert_eq!(figures.requests, 0, "requests are the interceptor's to count");
    }

    #[test]
    fn disk_hits_are_recorded_as_such() {
        use crate::metrics::{Metrics, OperationKey};
        let tmp = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let build = || {
            Cache::builder()
                .clock(Arc::new(MockClock::new()))
                .disk_dir(tmp.path().join("nuaws"))
                .metrics(metrics.clone())
                .build()
        };
        let key = "111111111111/us-east-1/s3/ListBuckets/#0011223344556677";
        build().store(key.into(), rows(1), Duration::from_secs(60));
        // A new process: nothing in memory, the entry on disk.
        let (_, tier) = build().lookup(key, "s3").unwrap();
        assert_eq!(tier, Tier::Disk);
        let figures = &metrics.snapshot()[&OperationKey::new("s3", "ListBuckets", "us-east-1")];
        assert_eq!((figures.hits_memory, figures.hits_disk, figures.misses), (0, 1, 0));
    }

    #[test]
    fn entries_expire_with_the_clock() {
        let clock = Arc::new(MockClock::new());
        let cache = memory_only(clock.clone());
        cache.store("k".into(), rows(1), Duration::from_secs(10));
        clock.advance(Duration::from_millis(9_999));
        assert!(cache.lookup("k", "s3").is_some());
        clock.advance(Duration::from_millis(2));
        assert!(cache.lookup("k", "s3").is_none());
    }

    #[test]
    fn errors_are_not_cached() {
        let cache = memory_only(Arc::new(MockClock::new()));
        let ttl = Duration::from_secs(60);
        let err = cache.get_or_fetch("k", "s3", ttl, Freshness::Normal, || Err::<Vec<Row>, _>("boom"));
        assert!(err.is_err());
        assert!(cache.lookup("k", "s3").is_none());
    }

    #[test]
    fn concurrent_identical_misses_share_one_fetch() {
        let cache = Arc::new(memory_only(Arc::new(MockClock::new())));
        let fetches = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..50)
            .map(|_| {
                let cache = cache.clone();
                let fetches = fetches.clone();
                std::thread::spawn(move || {
                    cache
                        .get_or_fetch("same", "ec2", Duration::from_secs(60), Freshness::Normal, || {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                            Ok::<_, ()>(rows(2))
                        })
                        .map(|(e, _)| e.rows.len())
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), Ok(2));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(lock(&cache.inflight).is_empty(), "no gate left behind");
    }

    #[test]
    fn invalidation_by_predicate_reaches_both_tiers() {
        let dir = std::env::temp_dir().join(format!("nuaws-tiered-{}", std::process::id()));
        let clock = Arc::new(MockClock::new());
        let cache = Cache::builder().clock(clock).disk_dir(&dir).build();
        cache.store("a/us-east-1/ec2/DescribeInstances/#1".into(), rows(1), Duration::from_secs(60));
        cache.store("a/us-east-1/s3/ListBuckets/#2".into(), rows(1), Duration::from_secs(60));
        assert_eq!(cache.invalidate(&|k| k.contains("/ec2/")), 1);
        assert_eq!(cache.keys().len(), 1);
        assert!(cache.lookup("a/us-east-1/s3/ListBuckets/#2", "s3").is_some());
        std::fs::remove_dir_all(&dir).ok();
    }
}
