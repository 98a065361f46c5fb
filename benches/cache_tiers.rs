//! Benchmarks of the cache tiers on the shape that matters: a 500-instance EC2 listing.
//!
//! `cargo bench --bench cache_tiers` runs criterion on each operation (memory hit, disk hit, key
//! derivation, encode, decode), then prints the p50/p99 of memory and disk hits over many single
//! timed calls, since criterion reports means and medians, and the targets are on p99. With
//! `redis-server` on the PATH it starts one on a free loopback port and times shared-tier hits
//! too (MGET over loopback, XChaCha20-Poly1305 open, decode), and a miss that takes the
//! single-flight lease.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_core::cache::{Cache, DiskCache, Entry, SharedCache, SharedConfig, SystemClock, TeamKey, TierStore, decode, encode};
use aws_core::row::Row;
use criterion::{Criterion, black_box};

#[path = "support/fixtures.rs"]
mod fixtures;

/// A 500-instance listing, as `aws ec2 instances` stores it.
fn instance_rows() -> Vec<Row> {
    fixtures::instance_rows(500)
}

fn key() -> String {
    fixtures::instances_key()
}

struct Fixture {
    key: String,
    memory: Cache,
    disk: DiskCache,
    encoded: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let key = key();
    let rows = instance_rows();
    let memory = Cache::builder().build();
    memory.store(key.clone(), rows.clone(), Duration::from_secs(300));
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = DiskCache::open(dir.path(), 64 << 20, Arc::new(SystemClock));
    let entry = Entry::new(key.clone(), rows, SystemTime::now(), Duration::from_secs(300));
    disk.insert(&entry);
    assert!(disk.get(&key).is_some(), "the disk tier works in this directory");
    Fixture { key, memory, disk, encoded: encode(&entry), _dir: dir }
}

/// What a memory hit costs a listing command: the lookup, and the rows it replays.
fn memory_hit(f: &Fixture) -> usize {
    let (entry, _) = f.memory.lookup(&f.key, "ec2").expect("memory hit");
    entry.rows.clone().len()
}

fn disk_hit(f: &Fixture) -> usize {
    f.disk.get(&f.key).expect("disk hit").rows.len()
}

fn criterion_benches(c: &mut Criterion, f: &Fixture) {
    c.bench_function("memory hit, 500 instances", |b| b.iter(|| black_box(memory_hit(f))));
    c.bench_function("disk hit, 500 instances", |b| b.iter(|| black_box(disk_hit(f))));
    c.bench_function("cache key", |b| b.iter(|| black_box(key())));
    let entry = decode(&f.encoded, &f.key).expect("decodes");
    c.bench_function("encode 500 instances", |b| b.iter(|| black_box(encode(&entry).len())));
    c.bench_function("decode 500 instances", |b| {
        b.iter(|| black_box(decode(&f.encoded, &f.key).map(|e| e.rows.len())))
    });
}

fn percentiles(name: &str, runs: usize, mut op: impl FnMut() -> usize) {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(op());
            start.elapsed()
        })
        .collect();
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "{name}: p50 {:?}  p99 {:?}  max {:?}  ({runs} calls)",
        at(0.50),
        at(0.99),
        samples[samples.len() - 1]
    );
}

/// A redis-server of the benchmark's own, killed at the end; `None` without one on the PATH.
struct BenchRedis(std::process::Child, u16);

impl BenchRedis {
    fn start() -> Option<BenchRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let redis = BenchRedis(child, port);
        let until = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }
}

impl Drop for BenchRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn shared_hits(f: &Fixture) {
    let Some(redis) = BenchRedis::start() else {
        println!("shared hit: skipped (no redis-server on the PATH)");
        return;
    };
    let key = TeamKey::new(&[7u8; 32]).expect("key");
    let config = SharedConfig::new(format!("redis://127.0.0.1:{}", redis.1), key)
        .expect("config")
        .deadline(Duration::from_secs(1));
    let shared = SharedCache::new(config, Arc::new(SystemClock));
    let entry = Arc::new(f.disk.get(&f.key).expect("disk hit"));
    shared.put(&entry);
    assert!(shared.flush(Duration::from_secs(5)), "the write reached Redis");
    assert!(shared.get(&f.key).is_some(), "the shared tier answers");
    percentiles("shared hit, 500 instances", 2000, || shared.get(&f.key).map_or(0, |e| e.rows.len()));
    // What a miss costs before the network is asked: the lookup, then the lease taken (one
    // script: SET NX PX and the re-read), given up in the background as a fetch that failed.
    let mut n = 0u64;
    percentiles("shared miss + lease taken", 500, || {
        n += 1;
        let key = format!("{}-missing-{n}", f.key);
        let missed = shared.get(&key).is_none() && shared.await_fill(&key).is_none();
        shared.abandon(&key);
        usize::from(missed)
    });
    assert!(shared.flush(Duration::from_secs(5)), "the leases were given up");
    let stats = shared.stats();
    assert_eq!((stats.timeouts, stats.errors, stats.rejected), (0, 0, 0), "{stats:?}");
    assert_eq!(stats.lease_wins, 500, "{stats:?}");
}

fn main() {
    let f = fixture();
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c, &f);
    c.final_summary();
    println!("encoded size of 500 instances: {} bytes", f.encoded.len());
    percentiles("memory hit, 500 instances", 2000, || memory_hit(&f));
    percentiles("disk hit, 500 instances", 2000, || disk_hit(&f));
    shared_hits(&f);
}
