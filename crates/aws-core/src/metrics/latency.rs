//! [`Latency`]: a distribution of latencies, an HdrHistogram of microseconds to 3 significant
//! digits (a reported percentile is within 0.1% of a recorded latency), that merges, subtracts
//! and converts to and from `(value, count)` pairs for storage; and [`LatencyRecorder`], the
//! shared form the request path records into without waiting on another recorder.
//!
//! Not for: deciding which latencies to record (that is the registry's and the interceptor's).

use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Significant decimal digits kept: 1 µs resolution up to 2 ms, 1 ms at 1 s.
const SIGNIFICANT_DIGITS: u8 = 3;
/// Latencies above this count as this. An operation gives up after 90 s (`ClientSettings`); a
/// benchmark iteration of an hour is not one worth telling apart from a longer one.
pub const MAX_LATENCY: Duration = Duration::from_secs(3600);

/// A latency distribution. Empty ones allocate nothing: the histogram is made at the first
/// record, and grows (auto-resize) only as far as the largest latency recorded, so a registry of
/// operations answered in milliseconds stays at a few tens of kilobytes per operation.
#[derive(Clone, Debug, Default)]
pub struct Latency {
    histogram: Option<Histogram<u64>>,
}

impl PartialEq for Latency {
    /// Equal when they hold the same counts at the same (bucketed) values.
    fn eq(&self, other: &Self) -> bool {
        self.pairs() == other.pairs()
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.min(MAX_LATENCY).as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl Latency {
    pub fn new() -> Self {
        Self::default()
    }

    fn histogram_mut(&mut self) -> Option<&mut Histogram<u64>> {
        if self.histogram.is_none() {
            // Fails only for more than 5 significant digits; without a histogram, nothing is
            // recorded rather than anything panicking.
            self.histogram = Histogram::new(SIGNIFICANT_DIGITS).ok();
        }
        self.histogram.as_mut()
    }

    /// Records one latency (clamped to 1 µs ..= [`MAX_LATENCY`]).
    pub fn record(&mut self, latency: Duration) {
        self.record_micros_n(micros(latency), 1);
    }

    fn record_micros_n(&mut self, micros: u64, count: u64) {
        if let Some(h) = self.histogram_mut() {
            // With auto-resize on and values bounded by MAX_LATENCY, recording cannot fail (the
            // only error is a histogram too large for usize).
            let _ = h.record_n(micros.clamp(1, micros_max()), count);
        }
    }

    /// How many latencies are recorded.
    pub fn count(&self) -> u64 {
        self.histogram.as_ref().map_or(0, Histogram::len)
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// The latency at quantile `q` (0.5 is the median), `None` when empty. As HdrHistogram
    /// reports it: the highest value equivalent (to 3 digits) to the recorded one at that rank.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let h = self.histogram.as_ref().filter(|h| !h.is_empty())?;
        Some(Duration::from_micros(
            h.value_at_quantile(q.clamp(0.0, 1.0)),
        ))
    }

    pub fn max(&self) -> Option<Duration> {
        let h = self.histogram.as_ref().filter(|h| !h.is_empty())?;
        Some(Duration::from_micros(h.max()))
    }

    pub fn min(&self) -> Option<Duration> {
        let h = self.histogram.as_ref().filter(|h| !h.is_empty())?;
        Some(Duration::from_micros(h.min()))
    }

    pub fn mean(&self) -> Option<Duration> {
        let h = self.histogram.as_ref().filter(|h| !h.is_empty())?;
        Some(Duration::from_secs_f64(h.mean() / 1e6))
    }

    /// Adds every latency of `other` to this one.
    pub fn merge(&mut self, other: &Latency) {
        let Some(theirs) = other.histogram.as_ref().filter(|h| !h.is_empty()) else {
            return;
        };
        match self.histogram.as_mut() {
            // Both auto-resize, so adding cannot run out of range.
            Some(mine) => {
                if mine.add(theirs).is_err() {
                    for (value, count) in other.pairs() {
                        self.record_micros_n(value, count);
                    }
                }
            }
            None => self.histogram = Some(theirs.clone()),
        }
    }

    /// This distribution without the latencies of `earlier`, which must be a former state of it
    /// (what was already flushed). `None` if `earlier` holds latencies this one does not.
    pub fn minus(&self, earlier: &Latency) -> Option<Latency> {
        let mut delta = self.clone();
        if let (Some(mine), Some(theirs)) = (delta.histogram.as_mut(), earlier.histogram.as_ref()) {
            mine.subtract(theirs).ok()?;
        } else if !earlier.is_empty() {
            return None;
        }
        Some(delta)
    }

    /// The recorded buckets as `(microseconds, count)`, ascending: each value is the highest
    /// equivalent of its bucket, so recording the pairs again rebuilds the same histogram.
    pub fn pairs(&self) -> Vec<(u64, u64)> {
        self.histogram.as_ref().map_or_else(Vec::new, |h| {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        })
    }

    /// The distribution [`Latency::pairs`] describes.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u64, u64)>) -> Latency {
        let mut latency = Latency::new();
        for (value, count) in pairs {
            if count > 0 {
                latency.record_micros_n(value, count);
            }
        }
        latency
    }
}

fn micros_max() -> u64 {
    micros(MAX_LATENCY)
}

/// How many histograms a [`LatencyRecorder`] spreads concurrent recorders over. Requests of one
/// operation finish at the same instant only in bursts (a prefetching listing, `par-each`); four
/// covers the worker threads of the runtime on the machines nuaws runs on.
const SHARDS: usize = 4;

/// A [`Latency`] recorded into from many threads: a recorder takes the first shard nobody holds
/// (`try_lock`), so it waits only when every shard is busy recording, for tens of nanoseconds.
/// Shards nobody needed stay empty, allocating nothing.
#[derive(Debug, Default)]
pub struct LatencyRecorder {
    shards: [Mutex<Latency>; SHARDS],
}

fn lock(m: &Mutex<Latency>) -> MutexGuard<'_, Latency> {
    // A histogram is consistent after any panic of a holder (a record is one counter update).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LatencyRecorder {
    pub fn record(&self, latency: Duration) {
        for shard in &self.shards {
            match shard.try_lock() {
                Ok(mut l) => return l.record(latency),
                Err(TryLockError::Poisoned(p)) => return p.into_inner().record(latency),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        lock(&self.shards[0]).record(latency);
    }

    /// Everything recorded so far, the shards merged.
    pub fn snapshot(&self) -> Latency {
        let mut all = Latency::new();
        for shard in &self.shards {
            all.merge(&lock(shard));
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Within HdrHistogram's 3-digit precision of `want`.
    fn close(got: Option<Duration>, want: Duration) -> bool {
        let got = got.unwrap_or_default().as_secs_f64();
        let want = want.as_secs_f64();
        (got - want).abs() <= want / 1000.0 + 1e-6
    }

    #[test]
    fn percentiles_of_known_values() {
        let mut l = Latency::new();
        assert_eq!(l.quantile(0.5), None, "empty has no percentile");
        // 1..=100 ms: p50 = 50 ms, p95 = 95 ms, p99 = 99 ms, max 100 ms (nearest rank).
        for i in 1..=100 {
            l.record(ms(i));
        }
        assert_eq!(l.count(), 100);
        assert!(close(l.quantile(0.5), ms(50)), "{:?}", l.quantile(0.5));
        assert!(close(l.quantile(0.95), ms(95)), "{:?}", l.quantile(0.95));
        assert!(close(l.quantile(0.99), ms(99)), "{:?}", l.quantile(0.99));
        assert!(close(l.max(), ms(100)), "{:?}", l.max());
        assert!(close(l.min(), ms(1)), "{:?}", l.min());
        assert!(
            close(l.mean(), Duration::from_micros(50_500)),
            "{:?}",
            l.mean()
        );
    }

    #[test]
    fn a_skewed_distribution_has_its_tail_in_p99() {
        let mut l = Latency::new();
        for _ in 0..980 {
            l.record(ms(10));
        }
        for _ in 0..20 {
            l.record(ms(900));
        }
        assert!(close(l.quantile(0.5), ms(10)));
        assert!(close(l.quantile(0.95), ms(10)));
        assert!(close(l.quantile(0.99), ms(900)));
    }

    #[test]
    fn merge_subtract_and_pairs_round_trip() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        for i in 1..=50 {
            a.record(ms(i));
            b.record(ms(i + 50));
        }
        let mut both = a.clone();
        both.merge(&b);
        assert_eq!(both.count(), 100);
        assert!(close(both.quantile(0.5), ms(50)));
        assert_eq!(both.minus(&a), Some(b.clone()));
        assert_eq!(
            a.minus(&both),
            None,
            "cannot take away what was never there"
        );
        assert_eq!(Latency::from_pairs(both.pairs()), both);
        let mut empty = Latency::new();
        empty.merge(&a);
        assert_eq!(empty, a);
        assert_eq!(a.minus(&Latency::new()), Some(a.clone()));
    }

    #[test]
    fn extremes_are_clamped_not_lost() {
        let mut l = Latency::new();
        l.record(Duration::ZERO);
        l.record(Duration::from_secs(10 * 3600));
        assert_eq!(l.count(), 2);
        assert!(close(l.max(), MAX_LATENCY));
        assert_eq!(l.min(), Some(Duration::from_micros(1)));
    }

    #[test]
    fn concurrent_recorders_lose_nothing() {
        let recorder = std::sync::Arc::new(LatencyRecorder::default());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let r = recorder.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        r.record(Duration::from_micros(100 + t * 1000 + i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let all = recorder.snapshot();
        assert_eq!(all.count(), 8000);
        assert!(close(all.min(), Duration::from_micros(100)));
        assert!(close(all.max(), Duration::from_micros(100 + 7000 + 999)));
    }
}
