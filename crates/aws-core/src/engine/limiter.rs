//! [`AdaptiveLimiter`]: how many requests of one bulk job may be in flight at once, learned from
//! the requests themselves.
//!
//! The rule is AIMD on latency, in the spirit of TCP Vegas and Netflix's concurrency-limits:
//! - while the smoothed latency stays near its floor (the lowest recently seen), more concurrency
//!   is free throughput: the limit grows by one per good answer in slow start (doubling per round
//!   trip), then by one per round trip;
//! - when it climbs clearly above the floor, the server (or the path to it) is queueing: the limit
//!   shrinks a little; in between it holds. Keeping latency within ~1.15-1.4x of the floor is
//!   what keeps throughput near `limit / floor`, the most this limit can give;
//! - a throttling answer or a timeout halves it.
//!
//! A single congestion event shows up in every request that was in flight at the time, so a cut
//! happens at most once per *generation*: answers to requests sent before the last cut are not
//! counted as new evidence. That makes the limiter deterministic in the order of answers, with no
//! clock of its own (latencies are measured by the caller), and testable without sleeping.
//!
//! Not here: retries, waiting between them, or which errors count as throttling (the engine's
//! `bulk` module classifies outcomes before reporting them).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bounds and starting point of a limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimiterSettings {
    pub min: usize,
    pub max: usize,
    /// Where the limit starts (clamped into `min..=max`).
    pub initial: usize,
}

impl Default for LimiterSettings {
    fn default() -> Self {
        Self {
            min: 1,
            max: 64,
            initial: 8,
        }
    }
}

impl LimiterSettings {
    /// A fixed concurrency: the limit never moves.
    pub fn fixed(n: usize) -> Self {
        let n = n.max(1);
        Self {
            min: n,
            max: n,
            initial: n,
        }
    }

    fn clamp(&self, limit: f64) -> f64 {
        limit.clamp(self.min.max(1) as f64, self.max.max(self.min).max(1) as f64)
    }
}

/// What one request's answer says about congestion.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Signal {
    /// An answer (success or an error that is the request's own fault) after this long.
    Answered(Duration),
    /// The service asked us to slow down (SlowDown, RequestLimitExceeded, Throttling, 503).
    Throttled,
    /// The request or connection timed out.
    TimedOut,
    /// An answer whose latency says nothing (requests to several regions share the limit, and
    /// a far region is slow, not congested): it may grow the limit, never cut it.
    Succeeded,
    /// No evidence either way (cancelled, or a local failure).
    Ignored,
}

/// Smoothed latency above `floor * QUEUEING_FACTOR` (and `QUEUEING_MARGIN` above it) means
/// queueing: cut.
const QUEUEING_FACTOR: f64 = 1.4;
/// Jitter of a few milliseconds on a fast loopback floor is not queueing.
const QUEUEING_MARGIN: Duration = Duration::from_millis(5);
/// Smoothed latency below `floor * GROWTH_FACTOR` (or within `GROWTH_MARGIN` of it) means there
/// is no queue yet: grow.
const GROWTH_FACTOR: f64 = 1.15;
const GROWTH_MARGIN: Duration = Duration::from_millis(2);
/// Weight of a new sample in the smoothed latency: one slow answer is noise, a run is a trend.
const SMOOTHING: f64 = 0.2;
/// Cut on queueing: gentle, since latency is a soft signal.
const QUEUEING_CUT: f64 = 0.9;
/// Cut on throttling or a timeout: the service said it plainly.
const THROTTLE_CUT: f64 = 0.5;

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: usize,
    /// Slots in existence (held or free): follows the limit one release at a time.
    capacity: usize,
    /// Bumped on every cut; permits remember the generation they were issued in.
    generation: u64,
    slow_start: bool,
    /// The lowest latency of this job. It never rises: under a standing queue every answer is
    /// slow, and a floor that followed them would let the queue grow without end. A job is
    /// short next to how often a path really changes; the next job learns its own floor.
    floor: Option<Duration>,
    /// Exponentially weighted moving average of answer latencies.
    smoothed: Option<Duration>,
    peak_limit: usize,
    cuts: u64,
}

impl State {
    fn floor(&self) -> Option<Duration> {
        self.floor
    }

    fn observe_latency(&mut self, latency: Duration) {
        self.smoothed = Some(match self.smoothed {
            Some(s) => s.mul_f64(1.0 - SMOOTHING) + latency.mul_f64(SMOOTHING),
            None => latency,
        });
        self.floor = Some(self.floor.map_or(latency, |f| f.min(latency)));
    }
}

/// A snapshot of a limiter, for progress lines and benchmarks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LimiterStats {
    pub limit: usize,
    pub in_flight: usize,
    pub peak_limit: usize,
    pub cuts: u64,
    pub floor: Option<Duration>,
}

/// An adaptive bound on concurrent requests. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct AdaptiveLimiter {
    settings: LimiterSettings,
    state: Mutex<State>,
    /// The slots, handed out first come, first served: a FIFO queue, so an item waiting for a
    /// slot is never overtaken by ones that asked after it (ordered output and fail-fast both
    /// depend on early items starting early; a bulk job asks in input order, from its feeder).
    slots: Arc<Semaphore>,
}

impl AdaptiveLimiter {
    pub fn new(settings: LimiterSettings) -> Arc<Self> {
        let initial = settings.clamp(settings.initial as f64);
        Arc::new(Self {
            settings,
            state: Mutex::new(State {
                limit: initial,
                in_flight: 0,
                capacity: initial as usize,
                generation: 0,
                slow_start: true,
                floor: None,
                smoothed: None,
                peak_limit: initial as usize,
                cuts: 0,
            }),
            slots: Arc::new(Semaphore::new(initial as usize)),
        })
    }

    pub fn settings(&self) -> LimiterSettings {
        self.settings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing here can panic half-way through an update; recover a poisoned lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current limit (whole requests).
    pub fn limit(&self) -> usize {
        self.lock().limit as usize
    }

    pub fn stats(&self) -> LimiterStats {
        let s = self.lock();
        LimiterStats {
            limit: s.limit as usize,
            in_flight: s.in_flight,
            peak_limit: s.peak_limit,
            cuts: s.cuts,
            floor: s.floor(),
        }
    }

    fn permit(self: &Arc<Self>, slot: OwnedSemaphorePermit) -> Permit {
        let mut s = self.lock();
        s.in_flight += 1;
        Permit {
            limiter: self.clone(),
            generation: s.generation,
            slot: Some(slot),
        }
    }

    /// A permit, if a request may start now.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let slot = self.slots.clone().try_acquire_owned().ok()?;
        Some(self.permit(slot))
    }

    /// Waits until a request may start.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        match self.slots.clone().acquire_owned().await {
            Ok(slot) => self.permit(slot),
            // The semaphore is never closed; if it were, waiting longer could not help.
            Err(_) => std::future::pending().await,
        }
    }

    fn release(&self, slot: OwnedSemaphorePermit, generation: u64, signal: Signal) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        // Evidence from requests sent before the last cut describes the old limit: a burst of
        // throttles from one window must cost one cut, not one per request.
        let current = generation == s.generation;
        match signal {
            Signal::Answered(latency) => {
                s.observe_latency(latency);
                let (floor, smoothed) = (s.floor().unwrap_or(latency), s.smoothed.unwrap_or(latency));
                let queueing = smoothed > floor.mul_f64(QUEUEING_FACTOR) && smoothed > floor + QUEUEING_MARGIN;
                let no_queue = smoothed <= floor.mul_f64(GROWTH_FACTOR) || smoothed <= floor + GROWTH_MARGIN;
                if queueing {
                    if current {
                        self.cut(&mut s, QUEUEING_CUT);
                    }
                } else if no_queue {
                    let step = if s.slow_start { 1.0 } else { 1.0 / s.limit };
                    s.limit = self.settings.clamp(s.limit + step);
                }
            }
            Signal::Succeeded => {
                let step = if s.slow_start { 1.0 } else { 1.0 / s.limit };
                s.limit = self.settings.clamp(s.limit + step);
            }
            Signal::Throttled | Signal::TimedOut => {
                if current {
                    self.cut(&mut s, THROTTLE_CUT);
                }
            }
            Signal::Ignored => {}
        }
        s.peak_limit = s.peak_limit.max(s.limit as usize);
        let target = s.limit as usize;
        if s.capacity > target {
            // Shrinking: this slot goes away instead of going back.
            slot.forget();
            s.capacity -= 1;
        } else {
            if s.capacity < target {
                self.slots.add_permits(target - s.capacity);
                s.capacity = target;
            }
            drop(slot);
        }
    }

    fn cut(&self, s: &mut State, factor: f64) {
        s.limit = self.settings.clamp(s.limit * factor);
        s.slow_start = false;
        s.generation += 1;
        s.cuts += 1;
    }
}

/// The right to have one request in flight. Report what happened with [`Permit::finish`];
/// dropping it unreported (a cancelled request) frees the slot and says nothing.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<AdaptiveLimiter>,
    generation: u64,
    slot: Option<OwnedSemaphorePermit>,
}

impl Permit {
    pub fn finish(mut self, signal: Signal) {
        if let Some(slot) = self.slot.take() {
            self.limiter.release(slot, self.generation, signal);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.limiter.release(slot, self.generation, Signal::Ignored);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn limiter(min: usize, max: usize, initial: usize) -> Arc<AdaptiveLimiter> {
        AdaptiveLimiter::new(LimiterSettings { min, max, initial })
    }

    /// Runs `rounds` round trips: fill the limit, then answer every request with `signal(i)`.
    fn round_trips(l: &Arc<AdaptiveLimiter>, rounds: usize, signal: impl Fn(usize) -> Signal) {
        let mut i = 0;
        for _ in 0..rounds {
            let mut permits = Vec::new();
            while let Some(p) = l.try_acquire() {
                permits.push(p);
            }
            assert!(!permits.is_empty(), "a limiter never admits nothing");
            for p in permits {
                p.finish(signal(i));
                i += 1;
            }
        }
    }

    #[test]
    fn grows_while_latency_stays_at_its_floor_up_to_the_maximum() {
        let l = limiter(1, 64, 1);
        round_trips(&l, 3, |_| Signal::Answered(20 * MS));
        // Slow start: 1 -> 2 -> 4 -> 8.
        assert_eq!(l.limit(), 8);
        round_trips(&l, 10, |_| Signal::Answered(20 * MS));
        assert_eq!(l.limit(), 64);
        assert_eq!(l.stats().peak_limit, 64);
    }

    #[test]
    fn a_burst_of_throttles_from_one_window_cuts_once() {
        let l = limiter(1, 64, 32);
        let permits: Vec<_> = std::iter::from_fn(|| l.try_acquire()).collect();
        assert_eq!(permits.len(), 32);
        for p in permits {
            p.finish(Signal::Throttled);
        }
        assert_eq!(l.limit(), 16);
        assert_eq!(l.stats().cuts, 1);
        // The next window's throttles are new evidence.
        round_trips(&l, 1, |_| Signal::Throttled);
        assert_eq!(l.limit(), 8);
    }

    #[test]
    fn rising_latency_cuts_gently_and_ends_slow_start() {
        let l = limiter(1, 64, 10);
        round_trips(&l, 1, |_| Signal::Answered(10 * MS));
        let before = l.limit();
        round_trips(&l, 1, |_| Signal::Answered(50 * MS));
        let after = l.limit();
        assert!(after < before, "{before} -> {after}");
        assert!(after as f64 >= before as f64 * 0.85, "{before} -> {after}: a latency cut is gentle");
        // Out of slow start: one round trip at the floor adds about one.
        round_trips(&l, 1, |_| Signal::Answered(10 * MS));
        assert!(l.limit() <= after + 1, "{after} -> {}", l.limit());
    }

    #[test]
    fn small_jitter_on_a_fast_floor_is_not_queueing() {
        let l = limiter(1, 64, 4);
        round_trips(&l, 1, |_| Signal::Answered(MS));
        round_trips(&l, 4, |i| Signal::Answered(MS * (1 + (i % 4) as u32)));
        assert_eq!(l.stats().cuts, 0);
    }

    #[test]
    fn unjudged_successes_grow_and_never_cut() {
        let l = limiter(1, 16, 4);
        round_trips(&l, 1, |_| Signal::Answered(10 * MS));
        // Answers ten times slower, but unjudged: no cut.
        round_trips(&l, 3, |_| Signal::Succeeded);
        assert_eq!(l.stats().cuts, 0);
        assert_eq!(l.limit(), 16);
        round_trips(&l, 1, |_| Signal::Throttled);
        assert_eq!(l.limit(), 8);
    }

    #[test]
    fn holds_between_growth_and_queueing() {
        let l = limiter(1, 64, 10);
        round_trips(&l, 1, |_| Signal::Answered(20 * MS));
        // 1.25x the floor: some queueing, not enough to give ground (once the smoothed latency
        // has caught up with it).
        round_trips(&l, 2, |_| Signal::Answered(25 * MS));
        let before = l.limit();
        round_trips(&l, 10, |_| Signal::Answered(25 * MS));
        assert_eq!(l.limit(), before);
        assert_eq!(l.stats().cuts, 0);
    }

    #[test]
    fn settles_at_the_knee_of_a_saturated_server() {
        // A server that serves 1 request per ms behind 20 ms of latency: beyond 20 in flight,
        // every extra request only queues. Latency = 20 ms + queue.
        let l = limiter(1, 256, 1);
        for _ in 0..300 {
            let permits: Vec<_> = std::iter::from_fn(|| l.try_acquire()).collect();
            let n = permits.len() as u32;
            let latency = 20 * MS + MS * n.saturating_sub(20);
            for p in permits {
                p.finish(Signal::Answered(latency));
            }
        }
        let limit = l.limit();
        assert!((18..=36).contains(&limit), "settled at {limit}, the knee is 20");
    }

    #[test]
    fn settles_below_a_rate_limit() {
        // A server that throttles whenever more than 12 requests are in flight: the limit must
        // end up oscillating at or below 12, never stuck above it.
        let l = limiter(1, 64, 1);
        for _ in 0..200 {
            let permits: Vec<_> = std::iter::from_fn(|| l.try_acquire()).collect();
            let n = permits.len();
            for (i, p) in permits.into_iter().enumerate() {
                p.finish(if n > 12 && i >= 12 { Signal::Throttled } else { Signal::Answered(20 * MS) });
            }
        }
        let limit = l.limit();
        assert!((4..=13).contains(&limit), "settled at {limit}");
    }

    #[test]
    fn bounds_hold_and_fixed_never_moves() {
        let l = limiter(3, 5, 1);
        assert_eq!(l.limit(), 3);
        round_trips(&l, 20, |_| Signal::Throttled);
        assert_eq!(l.limit(), 3);
        let f = AdaptiveLimiter::new(LimiterSettings::fixed(7));
        round_trips(&f, 5, |_| Signal::Answered(MS));
        assert_eq!(f.limit(), 7);
    }

    #[test]
    fn a_dropped_permit_frees_its_slot_and_acquire_waits_for_it() {
        let l = limiter(1, 1, 1);
        let p = l.try_acquire().unwrap();
        assert!(l.try_acquire().is_none());
        let waiter = {
            let l = l.clone();
            crate::runtime::runtime().spawn(async move { l.acquire().await.finish(Signal::Ignored) })
        };
        std::thread::sleep(Duration::from_millis(30));
        assert!(!waiter.is_finished());
        drop(p);
        crate::runtime::runtime().block_on(waiter).unwrap();
        assert_eq!(l.stats().in_flight, 0);
    }
}
