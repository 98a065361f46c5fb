//! The metrics kept across processes, so that a week of use can be summarised: one record per
//! hour (UTC) in the disk cache's LMDB environment, under `@nuaws/metrics/v1/<YYYY-MM-DDTHH>`,
//! holding for each operation its counters and latency buckets. Every nuaws process of the user
//! adds to the same records.
//!
//! A process merges what it recorded since its previous flush into the record of the current
//! hour ([`Metrics::flush`]), atomically with respect to other processes
//! ([`DiskCache::update`]). Flushes happen from the command path, at most every
//! [`FLUSH_INTERVAL`] ([`Metrics::flush_if_due`]), when `aws metrics` runs, and at exit
//! ([`flush_at_exit`]); figures recorded after the last flush of a process that is killed are
//! lost. Records expire [`RETENTION`] after their hour ends and are then dropped like any
//! expired entry. Without a usable disk tier, nothing is stored: figures stay in memory.
//!
//! Not for: the figures of this process alone (that is [`Metrics::snapshot`]).

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};

use super::{Figures, Latency, Metrics, OperationKey, Snapshot, lock};
use crate::cache::codec::Entry;
use crate::cache::disk::{DiskCache, RECORD_PREFIX};
use crate::row::{Field, Row};

/// How long the history keeps an hour.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The least time between two flushes made from the command path.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(30);

const HOUR: Duration = Duration::from_secs(3600);
/// Bumped if the rows of a record change meaning; other versions are ignored.
const VERSION: &str = "v1";
const HOUR_FORMAT: &str = "%Y-%m-%dT%H";

fn prefix() -> String {
    format!("{RECORD_PREFIX}metrics/{VERSION}/")
}

/// The start of the hour `t` falls in.
fn hour_start(t: SystemTime) -> SystemTime {
    let t: DateTime<Utc> = t.into();
    let start = t
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t);
    start.into()
}

pub(crate) fn hour_key(t: SystemTime) -> String {
    let t: DateTime<Utc> = hour_start(t).into();
    format!("{}{}", prefix(), t.format(HOUR_FORMAT))
}

/// The hour a record's key names.
pub(crate) fn hour_of(key: &str) -> Option<SystemTime> {
    let hour = key.strip_prefix(&prefix())?;
    let t = NaiveDateTime::parse_from_str(&format!("{hour}:00:00"), "%Y-%m-%dT%H:%M:%S").ok()?;
    Some(t.and_utc().into())
}

impl Metrics {
    /// Merges what this process recorded since its last flush into the history in `disk`.
    /// Returns whether the history is now up to date (nothing new, or stored); on `false` the
    /// figures stay pending for the next flush.
    pub fn flush(&self, disk: &DiskCache) -> bool {
        let mut flushed = lock(&self.flushed);
        let current = self.snapshot();
        let delta: Snapshot = current
            .iter()
            .filter_map(|(key, now)| {
                let delta = match flushed.figures.get(key) {
                    Some(before) => now.since(before),
                    None => now.clone(),
                };
                (!delta.is_empty()).then(|| (key.clone(), delta))
            })
            .collect();
        if delta.is_empty() {
            return true;
        }
        flushed.at = Some(Instant::now());
        let now = disk.now();
        let key = hour_key(now);
        let expires = hour_start(now) + HOUR + RETENTION;
        let ttl = expires.duration_since(now).unwrap_or(RETENTION);
        let stored = disk.update(&key, &|stored| {
            let mut figures = stored.map(|e| decode_rows(&e.rows)).unwrap_or_default();
            for (op, d) in &delta {
                figures.entry(op.clone()).or_default().merge(d);
            }
            Some(Entry::new(key.clone(), encode_rows(&figures), now, ttl))
        });
        if stored {
            flushed.figures = current;
        }
        stored
    }

    /// [`Metrics::flush`], unless the last one was less than [`FLUSH_INTERVAL`] ago: cheap
    /// enough for every command to call.
    pub fn flush_if_due(&self, disk: &DiskCache) -> bool {
        let recent = lock(&self.flushed)
            .at
            .is_some_and(|at| at.elapsed() < FLUSH_INTERVAL);
        if recent {
            return false;
        }
        self.flush(disk)
    }
}

/// What [`flush_at_exit`] runs.
static AT_EXIT: OnceLock<fn() -> bool> = OnceLock::new();

/// Runs `flush` when the process exits, however it exits (`std::process::exit` and the end of
/// `main` alike; not a kill): a shell's last commands would otherwise never reach the history.
/// The first call registers; later ones do nothing. Call it once the disk cache is open: exit
/// handlers run last-registered first, so the flush then happens before the cache's own exit
/// handler notes that this process no longer uses it.
pub fn flush_at_exit(flush: fn() -> bool) {
    if AT_EXIT.set(flush).is_ok() {
        // SAFETY: registering a handler has no precondition; the handler never unwinds.
        unsafe {
            libc::atexit(run_flush_at_exit);
        }
    }
}

extern "C" fn run_flush_at_exit() {
    if let Some(flush) = AT_EXIT.get() {
        // A panic must not unwind into libc's `exit`; a failed flush only loses the last seconds.
        let _ = std::panic::catch_unwind(flush);
    }
}

/// The figures of every operation in the history, from the hours that end after `since` (all
/// of it for `None`), merged. Expired hours are dropped on the way.
pub fn load_history(disk: &DiskCache, since: Option<SystemTime>) -> Snapshot {
    let mut all = Snapshot::new();
    for key in disk.record_keys(&prefix()) {
        let Some(hour) = hour_of(&key) else {
            continue;
        };
        if since.is_some_and(|since| hour + HOUR <= since) {
            continue;
        }
        if let Some(entry) = disk.get(&key) {
            for (op, figures) in decode_rows(&entry.rows) {
                all.entry(op).or_default().merge(&figures);
            }
        }
    }
    all
}

/// Erases the history; returns how many hours it held.
pub fn clear_history(disk: &DiskCache) -> usize {
    let prefix = prefix();
    disk.remove_records(&|key| key.starts_with(&prefix))
}

fn int(n: u64) -> Field {
    Field::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// One row per operation. The latency is its buckets, flattened: `[µs, count, µs, count, ...]`.
pub(crate) fn encode_rows(figures: &Snapshot) -> Vec<Row> {
    figures
        .iter()
        .map(|(op, f)| {
            let latency = f
                .latency
                .pairs()
                .into_iter()
                .flat_map(|(micros, count)| [int(micros), int(count)])
                .collect();
            Row::new()
                .with("service", Field::Text(op.service.clone()))
                .with("operation", Field::Text(op.operation.clone()))
                .with("region", Field::Text(op.region.clone()))
                .with("requests", int(f.requests))
                .with("errors", int(f.errors))
                .with("retries", int(f.retries))
                .with("throttles", int(f.throttles))
                .with("bytes_in", Field::Bytes(f.bytes_in))
                .with("bytes_out", Field::Bytes(f.bytes_out))
                .with("hits_memory", int(f.hits_memory))
                .with("hits_disk", int(f.hits_disk))
                .with("hits_shared", int(f.hits_shared))
                .with("misses", int(f.misses))
                .with("latency", Field::List(latency))
        })
        .collect()
}

/// The figures of stored rows; a row without its names is skipped, a missing count is zero.
pub(crate) fn decode_rows(rows: &[Row]) -> Snapshot {
    let text = |row: &Row, name: &str| row.get(name).and_then(Field::as_str).map(str::to_string);
    let count = |row: &Row, name: &str| match row.get(name) {
        Some(Field::Int(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Field::Bytes(n)) => *n,
        _ => 0,
    };
    rows.iter()
        .filter_map(|row| {
            let key = OperationKey {
                service: text(row, "service")?,
                operation: text(row, "operation")?,
                region: text(row, "region").unwrap_or_default(),
            };
            let buckets: Vec<u64> = match row.get("latency") {
                Some(Field::List(items)) => items
                    .iter()
                    .map(|f| match f {
                        Field::Int(n) => u64::try_from(*n).unwrap_or(0),
                        _ => 0,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let figures = Figures {
                requests: count(row, "requests"),
                errors: count(row, "errors"),
                retries: count(row, "retries"),
                throttles: count(row, "throttles"),
                bytes_in: count(row, "bytes_in"),
                bytes_out: count(row, "bytes_out"),
                hits_memory: count(row, "hits_memory"),
                hits_disk: count(row, "hits_disk"),
                hits_shared: count(row, "hits_shared"),
                misses: count(row, "misses"),
                latency: Latency::from_pairs(buckets.chunks_exact(2).map(|p| (p[0], p[1]))),
            };
            Some((key, figures))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Tier;
    use crate::cache::clock::{Clock, MockClock};
    use crate::metrics::RequestRecord;
    use std::sync::Arc;

    fn open(dir: &std::path::Path, clock: &Arc<MockClock>) -> DiskCache {
        let disk = DiskCache::open(dir, 1 << 20, clock.clone());
        assert!(disk.is_enabled(), "{:?}", disk.take_warnings());
        disk
    }

    fn request(m: &Metrics, operation: &str, ms: u64) {
        m.record_request(&RequestRecord {
            service: "s3",
            operation,
            region: "us-east-1",
            latency: Duration::from_millis(ms),
            attempts: 1,
            bytes_in: 100,
            ..Default::default()
        });
    }

    fn key(operation: &str) -> OperationKey {
        OperationKey::new("s3", operation, "us-east-1")
    }

    #[test]
    fn hour_keys_round_trip() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 1234);
        let key = hour_key(t);
        assert!(key.starts_with("@nuaws/metrics/v1/2023-11-14T22"), "{key}");
        let hour = hour_of(&key).unwrap();
        assert!(hour <= t && t < hour + HOUR);
        assert_eq!(hour, hour_start(t));
        assert_eq!(hour_of("@nuaws/metrics/v1/nonsense"), None);
    }

    #[test]
    fn flushes_accumulate_across_processes_and_survive_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nuaws");
        let clock = Arc::new(MockClock::new());
        // Two "processes": two registries flushing into one environment.
        let (a, b) = (Metrics::new(), Metrics::new());
        {
            let disk = open(&dir, &clock);
            for ms in 1..=50 {
                request(&a, "ListObjectsV2", ms);
            }
            a.record_cache_lookup("s3", "ListObjectsV2", "us-east-1", Tier::Memory);
            assert!(a.flush(&disk));
            // Nothing new: nothing written again (or the counts would double).
            assert!(a.flush(&disk));
            for ms in 51..=100 {
                request(&b, "ListObjectsV2", ms);
            }
            b.record_cache_lookup("s3", "ListObjectsV2", "us-east-1", Tier::Network);
            request(&b, "HeadObject", 7);
            assert!(b.flush(&disk));
            // More in `a` after its flush: only the new figures go in.
            request(&a, "HeadObject", 9);
            assert!(a.flush(&disk));
        }
        let disk = open(&dir, &clock);
        let history = load_history(&disk, None);
        let list = &history[&key("ListObjectsV2")];
        assert_eq!(list.requests, 100);
        assert_eq!(list.bytes_in, 100 * 100);
        assert_eq!((list.hits_memory, list.misses), (1, 1));
        let p50 = list.latency.quantile(0.5).unwrap();
        assert!(
            p50 >= Duration::from_millis(50) && p50 <= Duration::from_micros(50_100),
            "{p50:?}"
        );
        let p99 = list.latency.quantile(0.99).unwrap();
        assert!(
            p99 >= Duration::from_millis(99) && p99 <= Duration::from_micros(99_100),
            "{p99:?}"
        );
        assert_eq!(history[&key("HeadObject")].requests, 2);
        // Records are not cache entries.
        assert!(disk.keys().is_empty());
        assert_eq!(disk.remove_matching(&|_| true), 0);
        assert_eq!(load_history(&disk, None).len(), 2);
    }

    #[test]
    fn since_selects_hours_and_retention_drops_old_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = Arc::new(MockClock::new());
        let disk = open(&tmp.path().join("nuaws"), &clock);
        let m = Metrics::new();
        request(&m, "ListBuckets", 5);
        assert!(m.flush(&disk));
        let first_hour = hour_start(clock.wall());
        clock.advance(Duration::from_secs(3 * 24 * 3600));
        request(&m, "ListBuckets", 5);
        request(&m, "ListBuckets", 5);
        assert!(m.flush(&disk));
        assert_eq!(load_history(&disk, None)[&key("ListBuckets")].requests, 3);
        let day_ago = clock.wall() - Duration::from_secs(24 * 3600);
        assert_eq!(
            load_history(&disk, Some(day_ago))[&key("ListBuckets")].requests,
            2
        );
        // The first hour is still selected by a `since` inside it.
        let inside = first_hour + Duration::from_secs(600);
        assert_eq!(
            load_history(&disk, Some(inside))[&key("ListBuckets")].requests,
            3
        );

        // 30 days after the first hour ended, it is gone; the later one is still there.
        clock.set_wall(first_hour + HOUR + RETENTION + Duration::from_secs(1));
        assert_eq!(load_history(&disk, None)[&key("ListBuckets")].requests, 2);
        assert_eq!(
            disk.record_keys(&prefix()).len(),
            1,
            "the expired hour was deleted"
        );
        clock.advance(Duration::from_secs(4 * 24 * 3600));
        assert!(load_history(&disk, None).is_empty());
    }

    #[test]
    fn clear_and_reset_forget_everything() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = Arc::new(MockClock::new());
        let disk = open(&tmp.path().join("nuaws"), &clock);
        let m = Metrics::new();
        request(&m, "ListBuckets", 5);
        assert!(m.flush(&disk));
        assert_eq!(clear_history(&disk), 1);
        m.reset();
        assert!(load_history(&disk, None).is_empty());
        assert!(m.flush(&disk));
        assert!(
            load_history(&disk, None).is_empty(),
            "a reset registry has nothing to flush"
        );
        request(&m, "ListBuckets", 5);
        assert!(m.flush(&disk));
        assert_eq!(load_history(&disk, None)[&key("ListBuckets")].requests, 1);
    }

    #[test]
    fn without_a_disk_tier_figures_stay_pending() {
        let tmp = tempfile::tempdir().unwrap();
        let refused = tmp.path().join("open");
        std::fs::create_dir(&refused).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&refused, std::fs::Permissions::from_mode(0o777)).unwrap();
        let clock = Arc::new(MockClock::new());
        let disabled = DiskCache::open(&refused, 1 << 20, clock.clone());
        assert!(!disabled.is_enabled());
        let m = Metrics::new();
        request(&m, "ListBuckets", 5);
        assert!(!m.flush(&disabled));
        // Once a disk is there, the pending figures go in whole.
        let disk = open(&tmp.path().join("nuaws"), &clock);
        assert!(m.flush(&disk));
        assert_eq!(load_history(&disk, None)[&key("ListBuckets")].requests, 1);
    }

    #[test]
    fn rows_round_trip() {
        let m = Metrics::new();
        for ms in [1, 2, 3, 400, 5000] {
            request(&m, "GetObject", ms);
        }
        m.record_cache_lookup("s3", "GetObject", "us-east-1", Tier::Disk);
        let snap = m.snapshot();
        assert_eq!(decode_rows(&encode_rows(&snap)), snap);
    }
}
