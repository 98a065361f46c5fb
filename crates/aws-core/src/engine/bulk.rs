//! [`BulkJob`]: many requests from one stream of items, run concurrently under an
//! [`AdaptiveLimiter`], with results handed back to a synchronous consumer.
//!
//! - Items are pulled from the caller's iterator on a feeder thread only when there is room, so a
//!   million-key input costs memory for the requests in flight and the answers not yet consumed,
//!   never for the input: at most `window` items are between "pulled" and "handed out".
//! - Limiter slots go to items in input order: the feeder takes each item's first slot itself,
//!   before the item's task exists. A task that waited for its slot could be overtaken by any
//!   number of later ones (it is polled whenever a worker gets to it); now at most the others
//!   holding a slot can go first. And a retry waits behind at most the feeder's one item, not
//!   behind every item pulled so far.
//! - Answers come out in completion order, or in input order with `ordered` (held back until
//!   their turn, within the same window).
//! - Throttling, timeouts and transient network or 5xx failures are retried by the job itself
//!   (after cutting the limit and backing off with jitter), so a throttled item is delayed, not
//!   lost. What is still failing after the retries is the item's answer.
//! - [`FailureMode::Resilient`] hands every item's answer out, failures included;
//!   [`FailureMode::FailFast`] hands out the first failure, then cancels every request in flight
//!   (dropping a request's future closes its connection) and pulls no more items.
//! - Dropping the job (the consumer stopped early, or Ctrl-C) cancels it the same way.
//!
//! Not here: what a request is (the caller's async closure), deduplication (see [`super::dedup`],
//! used inside those closures), or how results are shown.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::AbortHandle;

use crate::engine::limiter::{AdaptiveLimiter, LimiterStats, Signal};
use crate::error::{AwsError, ErrorKind};
use crate::runtime::{block_on, runtime};

/// What a bulk job does with a failed item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailureMode {
    /// Every item yields its answer or its error (the default for bulk work).
    #[default]
    Resilient,
    /// The first failure ends the job; requests in flight are cancelled.
    FailFast,
}

/// How a job runs (the limiter's own bounds are in its settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobSettings {
    pub mode: FailureMode,
    /// Hand answers out in input order instead of completion order.
    pub ordered: bool,
    /// Attempts per item when the service throttles or times out (the first included).
    pub max_attempts: u32,
    /// Items between pulled and handed out: bounds memory whatever the input's length.
    pub window: usize,
    /// First backoff after a throttle; doubles per attempt, with jitter, capped at 5 s.
    pub base_backoff: Duration,
    /// Limit on one attempt of one item, answer and body included (`None`: the SDK's own
    /// timeouts, which do not cover a body that stalls half-way).
    pub attempt_timeout: Option<Duration>,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            mode: FailureMode::Resilient,
            ordered: false,
            max_attempts: 10,
            window: 128,
            base_backoff: Duration::from_millis(50),
            attempt_timeout: None,
        }
    }
}

/// What the job's closure makes of an item: a request to send, or an answer that needs none (a
/// cache hit, or input rejected before any request). Ready answers bypass the limiter and say
/// nothing about congestion.
pub enum Request<Fut, T> {
    Ready(Result<T, AwsError>),
    Send(Fut),
}

/// One item's answer.
#[derive(Debug)]
pub struct Outcome<I, T> {
    /// Position of the item in the input, from 0.
    pub index: u64,
    pub item: I,
    pub result: Result<T, AwsError>,
    /// Attempts made (more than one when the service throttled or failed transiently).
    pub attempts: u32,
}

/// What the consumer gets from [`BulkJob::next_timeout`].
#[derive(Debug)]
pub enum BulkNext<I, T> {
    Outcome(Outcome<I, T>),
    /// Every item has been answered (or, fail-fast, the job stopped at a failure).
    End,
    /// Nothing arrived within the wait; ask again (after checking for Ctrl-C).
    Pending,
}

/// Counters of a running job, for progress lines.
#[derive(Debug, Default)]
pub struct JobProgress {
    pub started: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    /// Attempts beyond the first (throttles, transient failures).
    pub retried: AtomicU64,
    pub throttled: AtomicU64,
    /// Sum of the time requests spent in flight, in microseconds: over the job's duration it is
    /// the mean concurrency actually used (Little's law).
    pub busy_micros: AtomicU64,
}

/// What a finished (or stopped) job did, for `aws engine` and benchmarks.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSummary {
    pub items: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub retried: u64,
    pub throttled: u64,
    pub elapsed: Duration,
    /// Mean requests in flight over the job.
    pub mean_concurrency: f64,
    pub peak_limit: usize,
    pub final_limit: usize,
    pub limit_cuts: u64,
    /// The lowest latency seen: with `mean_concurrency`, what the job could at best have taken.
    pub floor: Option<Duration>,
}

/// What a finished request says about congestion, for a limiter.
pub fn signal_of<T>(result: &Result<T, AwsError>, latency: Duration) -> Signal {
    classify(result, latency).0
}

/// How a finished request counts: retry it, and what it says about congestion.
pub(crate) fn classify<T>(result: &Result<T, AwsError>, latency: Duration) -> (Signal, bool) {
    match result {
        Ok(_) => (Signal::Answered(latency), false),
        Err(err) => match err.kind {
            ErrorKind::Throttled => (Signal::Throttled, true),
            ErrorKind::Timeout => (Signal::TimedOut, true),
            ErrorKind::Network => (Signal::Ignored, true),
            ErrorKind::Service if err.status.is_some_and(|s| s >= 500) => (Signal::Answered(latency), true),
            ErrorKind::Interrupted => (Signal::Ignored, false),
            // Never reached the service (rejected locally): no evidence about it.
            _ if err.status.is_none() => (Signal::Ignored, false),
            // The item's own fault (not found, denied, invalid): an answer like any other.
            _ => (Signal::Answered(latency), false),
        },
    }
}

/// A small, dependency-free jitter source (xorshift seeded from the clock and item index).
pub(crate) fn jitter(seed: u64) -> f64 {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x % 1000) as f64 / 1000.0
}

struct Shared {
    cancelled: AtomicBool,
    tasks: Mutex<HashMap<u64, AbortHandle>>,
    /// Tickets for the window: taken by the feeder per item, returned when handed out.
    window: Arc<Semaphore>,
    in_flight: AtomicUsize,
}

impl Shared {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.window.close();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, task) in tasks {
            task.abort();
        }
    }
}

/// A running bulk job. Pull answers with [`BulkJob::next_timeout`].
pub struct BulkJob<I, T> {
    rx: mpsc::UnboundedReceiver<Outcome<I, T>>,
    /// Total items, once the feeder has seen the end of the input.
    total: Arc<Mutex<Option<u64>>>,
    handed_out: u64,
    /// Ordered mode: answers waiting for their turn.
    held: BTreeMap<u64, Outcome<I, T>>,
    settings: JobSettings,
    shared: Arc<Shared>,
    limiter: Arc<AdaptiveLimiter>,
    pub progress: Arc<JobProgress>,
    started_at: Instant,
    ended: bool,
}

impl<I, T> BulkJob<I, T>
where
    I: Clone + Send + 'static,
    T: Send + 'static,
{
    /// Starts pulling `items` and running `request` on each, at most as many at once as
    /// `limiter` allows.
    pub fn start<It, F, Fut>(
        items: It,
        limiter: Arc<AdaptiveLimiter>,
        settings: JobSettings,
        request: F,
    ) -> Self
    where
        It: Iterator<Item = I> + Send + 'static,
        F: Fn(I) -> Request<Fut, T> + Send + Sync + 'static,
        Fut: Future<Output = Result<T, AwsError>> + Send + 'static,
    {
        let window = settings.window.max(limiter.settings().max).max(1);
        let shared = Arc::new(Shared {
            cancelled: AtomicBool::new(false),
            tasks: Mutex::default(),
            window: Arc::new(Semaphore::new(window)),
            in_flight: AtomicUsize::new(0),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let total = Arc::new(Mutex::new(None));
        let progress = Arc::new(JobProgress::default());
        let request = Arc::new(request);
        let feeder = Feeder {
            shared: shared.clone(),
            limiter: limiter.clone(),
            settings,
            progress: progress.clone(),
            total: total.clone(),
        };
        // A thread, not a task: the input may itself block on the runtime (an upstream listing),
        // which must never happen on one of the runtime's own threads.
        let spawned = std::thread::Builder::new()
            .name("nuaws-bulk-feed".into())
            .spawn(move || feeder.run(items, request, tx));
        if spawned.is_err() {
            // Without a feeder nothing will come: end at once rather than hang.
            *total.lock().unwrap_or_else(|e| e.into_inner()) = Some(0);
        }
        Self {
            rx,
            total,
            handed_out: 0,
            held: BTreeMap::new(),
            settings,
            shared,
            limiter,
            progress,
            started_at: Instant::now(),
            ended: false,
        }
    }
}

impl<I, T> BulkJob<I, T> {
    /// What the job has done so far.
    pub fn summary(&self) -> JobSummary {
        let p = &self.progress;
        let stats = self.limiter.stats();
        let elapsed = self.started_at.elapsed();
        let (succeeded, failed) = (p.succeeded.load(Ordering::Relaxed), p.failed.load(Ordering::Relaxed));
        JobSummary {
            items: succeeded + failed,
            succeeded,
            failed,
            retried: p.retried.load(Ordering::Relaxed),
            throttled: p.throttled.load(Ordering::Relaxed),
            elapsed,
            mean_concurrency: p.busy_micros.load(Ordering::Relaxed) as f64 / elapsed.as_micros().max(1) as f64,
            peak_limit: stats.peak_limit,
            final_limit: stats.limit,
            limit_cuts: stats.cuts,
            floor: stats.floor,
        }
    }

    /// The limiter's state now (limit reached, in flight, cuts).
    pub fn limiter_stats(&self) -> LimiterStats {
        self.limiter.stats()
    }

    /// The job's limiter (for a progress line that outlives a borrow of the job).
    pub fn limiter(&self) -> Arc<AdaptiveLimiter> {
        self.limiter.clone()
    }

    pub fn elapsed(&self) -> Duration {
        self.started_at.elapsed()
    }

    /// Requests in flight right now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    fn all_handed_out(&self) -> bool {
        *self.total.lock().unwrap_or_else(|e| e.into_inner()) == Some(self.handed_out)
    }

    fn hand_out(&mut self, outcome: Outcome<I, T>) -> BulkNext<I, T> {
        self.handed_out += 1;
        self.shared.window.add_permits(1);
        if outcome.result.is_err() && self.settings.mode == FailureMode::FailFast {
            self.shared.cancel();
            self.ended = true;
        }
        BulkNext::Outcome(outcome)
    }

    /// The next answer, waiting at most `wait`.
    pub fn next_timeout(&mut self, wait: Duration) -> BulkNext<I, T> {
        let deadline = Instant::now() + wait;
        loop {
            if self.ended {
                return BulkNext::End;
            }
            if self.settings.ordered {
                if let Some(outcome) = self.held.remove(&self.handed_out) {
                    return self.hand_out(outcome);
                }
            }
            if self.all_handed_out() {
                self.ended = true;
                return BulkNext::End;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            // The sender side never closes before the total is known, but a short wait keeps the
            // total check fresh either way.
            let step = left.min(Duration::from_millis(50));
            let received = runtime().block_on(async { tokio::time::timeout(step, self.rx.recv()).await });
            match received {
                Ok(Some(outcome)) => {
                    let fail_fast_error = self.settings.mode == FailureMode::FailFast && outcome.result.is_err();
                    if self.settings.ordered && !fail_fast_error && outcome.index != self.handed_out {
                        self.held.insert(outcome.index, outcome);
                        continue;
                    }
                    return self.hand_out(outcome);
                }
                Ok(None) => {
                    // Every sender is gone: the feeder ended and no task is left.
                    if self.settings.ordered && !self.held.is_empty() {
                        if let Some((_, outcome)) = self.held.pop_first() {
                            return self.hand_out(outcome);
                        }
                    }
                    self.ended = true;
                    return BulkNext::End;
                }
                Err(_) if left.is_zero() || Instant::now() >= deadline => return BulkNext::Pending,
                Err(_) => {}
            }
        }
    }

    /// Stops everything now (also done on drop).
    pub fn cancel(&mut self) {
        self.shared.cancel();
        self.ended = true;
    }
}

impl<I, T> Drop for BulkJob<I, T> {
    fn drop(&mut self) {
        self.shared.cancel();
    }
}

/// Counts a request in flight for as long as it lives (an aborted task drops it too).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Feeder {
    shared: Arc<Shared>,
    limiter: Arc<AdaptiveLimiter>,
    settings: JobSettings,
    progress: Arc<JobProgress>,
    total: Arc<Mutex<Option<u64>>>,
}

impl Feeder {
    fn run<I, T, It, F, Fut>(self, mut items: It, request: Arc<F>, tx: mpsc::UnboundedSender<Outcome<I, T>>)
    where
        I: Clone + Send + 'static,
        T: Send + 'static,
        It: Iterator<Item = I>,
        F: Fn(I) -> Request<Fut, T> + Send + Sync + 'static,
        Fut: Future<Output = Result<T, AwsError>> + Send + 'static,
    {
        let cancelled = || self.shared.cancelled.load(Ordering::SeqCst);
        let mut index = 0u64;
        loop {
            // Room first, then the item: the input is never read further than the window.
            let window = self.shared.window.clone();
            let ticket = block_on(&cancelled, async move { window.acquire_owned().await });
            match ticket {
                Ok(Ok(ticket)) => ticket.forget(), // returned by the consumer when handed out
                _ => break,                        // cancelled
            }
            let Some(item) = items.next() else { break };
            if cancelled() || !self.spawn_item(index, item, &request, &tx) {
                break;
            }
            index += 1;
        }
        *self.total.lock().unwrap_or_else(|e| e.into_inner()) = Some(index);
    }

    /// Answers `item` at once or starts its task; false if the job was cancelled meanwhile (the
    /// item is then not run).
    fn spawn_item<I, T, F, Fut>(&self, index: u64, item: I, request: &Arc<F>, tx: &mpsc::UnboundedSender<Outcome<I, T>>) -> bool
    where
        I: Clone + Send + 'static,
        T: Send + 'static,
        F: Fn(I) -> Request<Fut, T> + Send + Sync + 'static,
        Fut: Future<Output = Result<T, AwsError>> + Send + 'static,
    {
        let (limiter, request, tx) = (self.limiter.clone(), request.clone(), tx.clone());
        let (shared, progress, settings) = (self.shared.clone(), self.progress.clone(), self.settings);
        progress.started.fetch_add(1, Ordering::Relaxed);
        // The closure's synchronous part (a cache lookup, say) runs here, off the runtime.
        let first = match request(item.clone()) {
            Request::Ready(result) => {
                let counter = if result.is_ok() { &progress.succeeded } else { &progress.failed };
                counter.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send(Outcome {
                    index,
                    item,
                    result,
                    attempts: 0,
                });
                return true;
            }
            Request::Send(fut) => fut,
        };
        // The first attempt's slot, taken here in input order (see the module's doc).
        let cancelled = || shared.cancelled.load(Ordering::SeqCst);
        let first_permit = match block_on(&cancelled, limiter.acquire()) {
            Ok(permit) if !cancelled() => permit,
            _ => {
                progress.started.fetch_sub(1, Ordering::Relaxed);
                return false;
            }
        };
        // Hold the task list's lock across the spawn, so the task cannot finish and unregister
        // before it is registered.
        let mut tasks = shared.tasks.lock().unwrap_or_else(|e| e.into_inner());
        let task_shared = shared.clone();
        let task = runtime().spawn(async move {
            let mut attempts = 0;
            let mut next = Some(first);
            let mut first_permit = Some(first_permit);
            let result = loop {
                let fut = match next.take() {
                    Some(fut) => fut,
                    None => match request(item.clone()) {
                        Request::Ready(result) => break result,
                        Request::Send(fut) => fut,
                    },
                };
                attempts += 1;
                let permit = match first_permit.take() {
                    Some(permit) => permit,
                    None => limiter.acquire().await,
                };
                let counted = InFlight::enter(&task_shared.in_flight);
                let sent = Instant::now();
                let result = match settings.attempt_timeout {
                    None => fut.await,
                    Some(limit) => tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
                        Err(AwsError::new(ErrorKind::Timeout, "request", format!("no complete answer within {limit:?}")))
                    }),
                };
                drop(counted);
                progress.busy_micros.fetch_add(sent.elapsed().as_micros() as u64, Ordering::Relaxed);
                let (signal, retryable) = classify(&result, sent.elapsed());
                permit.finish(signal);
                if signal == Signal::Throttled {
                    progress.throttled.fetch_add(1, Ordering::Relaxed);
                }
                if !retryable || attempts >= settings.max_attempts {
                    break result;
                }
                progress.retried.fetch_add(1, Ordering::Relaxed);
                let backoff = settings.base_backoff.mul_f64(2f64.powi(attempts as i32 - 1)).min(Duration::from_secs(5));
                let seed = index.wrapping_mul(31).wrapping_add(attempts as u64) ^ sent.elapsed().as_nanos() as u64;
                tokio::time::sleep(backoff.mul_f64(0.5 + jitter(seed))).await;
            };
            let counter = if result.is_ok() { &progress.succeeded } else { &progress.failed };
            counter.fetch_add(1, Ordering::Relaxed);
            task_shared.tasks.lock().unwrap_or_else(|e| e.into_inner()).remove(&index);
            let _ = tx.send(Outcome {
                index,
                item,
                result,
                attempts,
            });
        });
        if shared.cancelled.load(Ordering::SeqCst) {
            task.abort();
        } else {
            tasks.insert(index, task.abort_handle());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::limiter::LimiterSettings;
    use std::collections::HashSet;

    fn drain<I: std::fmt::Debug, T: std::fmt::Debug>(job: &mut BulkJob<I, T>) -> Vec<Outcome<I, T>> {
        let mut out = Vec::new();
        loop {
            match job.next_timeout(Duration::from_secs(10)) {
                BulkNext::Outcome(o) => out.push(o),
                BulkNext::End => return out,
                BulkNext::Pending => panic!("a job of fast fakes stalled"),
            }
        }
    }

    fn sleep_then(ms: u64, value: u64) -> impl Future<Output = Result<u64, AwsError>> {
        async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(value)
        }
    }

    #[test]
    fn runs_concurrently_and_answers_every_item_once() {
        let limiter = AdaptiveLimiter::new(LimiterSettings::fixed(50));
        let started = Instant::now();
        let mut job = BulkJob::start(0..500u64, limiter, JobSettings::default(), |i| Request::Send(sleep_then(20, i * 2)));
        let out = drain(&mut job);
        // 500 items of 20 ms at 50 at once: about 200 ms, far from the 10 s of one at a time.
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert_eq!(out.len(), 500);
        let seen: HashSet<u64> = out.iter().map(|o| o.index).collect();
        assert_eq!(seen.len(), 500);
        assert!(out.iter().all(|o| o.result.as_ref().ok() == Some(&(o.item * 2))));
    }

    #[test]
    fn ready_answers_need_no_permit() {
        // A limit of one and a request that never ends: ready answers still all come.
        let limiter = AdaptiveLimiter::new(LimiterSettings::fixed(1));
        let mut job = BulkJob::start(0..20u64, limiter.clone(), JobSettings::default(), |i| {
            if i == 0 {
                Request::Send(Box::pin(async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(0u64)
                }) as std::pin::Pin<Box<dyn Future<Output = Result<u64, AwsError>> + Send>>)
            } else {
                Request::Ready(Ok(i))
            }
        });
        for _ in 1..20 {
            match job.next_timeout(Duration::from_secs(5)) {
                BulkNext::Outcome(o) => assert_eq!(o.attempts, 0),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(limiter.stats().cuts, 0);
    }

    #[test]
    fn ordered_mode_keeps_input_order() {
        let limiter = AdaptiveLimiter::new(LimiterSettings::fixed(16));
        let settings = JobSettings { ordered: true, ..Default::default() };
        // Later items finish first.
        let mut job = BulkJob::start(0..64u64, limiter, settings, |i| Request::Send(sleep_then(64 - i, i)));
        let out = drain(&mut job);
        assert_eq!(out.iter().map(|o| o.index).collect::<Vec<_>>(), (0..64).collect::<Vec<_>>());
    }

    #[test]
    fn the_input_is_read_no_further_than_the_window() {
        let pulled = Arc::new(AtomicU64::new(0));
        let counter = pulled.clone();
        let items = (0..1_000_000u64).inspect(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let limiter = AdaptiveLimiter::new(LimiterSettings::fixed(4));
        let settings = JobSettings { window: 8, ..Default::default() };
        let mut job = BulkJob::start(items, limiter, settings, |i| Request::Send(sleep_then(1, i)));
        for _ in 0..3 {
            assert!(matches!(job.next_timeout(Duration::from_secs(5)), BulkNext::Outcome(_)));
        }
        std::thread::sleep(Duration::from_millis(100));
        // 3 handed out + a window of 8 (the limiter's max is below it).
        assert!(pulled.load(Ordering::SeqCst) <= 11, "pulled {}", pulled.load(Ordering::SeqCst));
        drop(job);
    }

    #[test]
    fn slots_go_in_input_order_and_a_retry_waits_behind_no_queue() {
        // Two at once over 40 items of 5 ms; item 0's first attempt fails as a dropped
        // connection does. Every attempt notes its item when it starts.
        let sent = Arc::new(Mutex::new(Vec::<u64>::new()));
        let log = sent.clone();
        let attempts = Arc::new(Mutex::new(HashMap::<u64, u32>::new()));
        let limiter = AdaptiveLimiter::new(LimiterSettings::fixed(2));
        let settings = JobSettings { base_backoff: Duration::from_millis(1), ..Default::default() };
        let mut job = BulkJob::start(0..40u64, limiter, settings, move |i| {
            let n = {
                let mut attempts = attempts.lock().unwrap();
                let n = attempts.entry(i).or_default();
                *n += 1;
                *n
            };
            let log = log.clone();
            Request::Send(async move {
                log.lock().unwrap().push(i);
                if i == 0 && n == 1 {
                    return Err(AwsError::new(ErrorKind::Network, "test", "connection reset"));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(i)
            })
        });
        let out = drain(&mut job);
        assert!(out.len() == 40 && out.iter().all(|o| o.result.is_ok()), "{out:?}");
        let sent = sent.lock().unwrap().clone();
        // With two slots, an item's first attempt can be passed only by the one other item holding
        // a slot (two tasks given slots in turn may be polled the other way round).
        let firsts: Vec<u64> = sent.iter().copied().filter(|&i| i != 0).collect();
        let displaced = firsts.iter().enumerate().filter(|&(at, &i)| (at as u64 + 1).abs_diff(i) > 1).count();
        assert!(firsts.len() == 39 && displaced == 0, "first attempts out of input order: {sent:?}");
        // The retry of item 0 waits for one slot behind at most the feeder's next item, not
        // behind the other 39 (all pulled at once: the window is 128).
        let retry = sent.iter().rposition(|&i| i == 0).unwrap();
        assert!(retry <= 4, "the retry was attempt {retry} of {sent:?}");
    }

    #[test]
    fn throttled_items_are_retried_not_lost() {
        // Every item is throttled on its first two attempts.
        let attempts = Arc::new(Mutex::new(HashMap::<u64, u32>::new()));
        let seen = attempts.clone();
        let limiter = AdaptiveLimiter::new(LimiterSettings { min: 1, max: 32, initial: 32 });
        let settings = JobSettings { base_backoff: Duration::from_millis(1), ..Default::default() };
        let mut job = BulkJob::start(0..100u64, limiter.clone(), settings, move |i| {
            let n = {
                let mut seen = seen.lock().unwrap();
                let n = seen.entry(i).or_default();
                *n += 1;
                *n
            };
            Request::Send(async move {
                if n <= 2 {
                    Err(AwsError::new(ErrorKind::Throttled, "test", "SlowDown").with_code("SlowDown"))
                } else {
                    Ok(i)
                }
            })
        });
        let out = drain(&mut job);
        assert_eq!(out.len(), 100);
        assert!(out.iter().all(|o| o.result.is_ok() && o.attempts == 3));
        assert!(limiter.stats().cuts >= 1);
        assert_eq!(job.progress.retried.load(Ordering::Relaxed), 200);
    }

    #[test]
    fn resilient_answers_every_failure_and_fail_fast_stops_at_the_first() {
        let failing = |i: u64| {
            Request::Send(async move {
                if i % 10 == 3 {
                    Err(AwsError::new(ErrorKind::NotFound, "test", format!("no item {i}")))
                } else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Ok(i)
                }
            })
        };
        let limiter = AdaptiveLimiter::new(LimiterSettings::fixed(4));
        let mut job = BulkJob::start(0..100u64, limiter, JobSettings::default(), failing);
        let out = drain(&mut job);
        assert_eq!(out.len(), 100);
        assert_eq!(out.iter().filter(|o| o.result.is_err()).count(), 10);

        let started = Arc::new(AtomicU64::new(0));
        let count = started.clone();
        let limiter = AdaptiveLimiter::new(LimiterSettings::fixed(8));
        let settings = JobSettings { mode: FailureMode::FailFast, ..Default::default() };
        let mut job = BulkJob::start(0..100u64, limiter.clone(), settings, move |i| {
            count.fetch_add(1, Ordering::SeqCst);
            Request::Send(async move {
                if i == 3 {
                    return Err(AwsError::new(ErrorKind::AccessDenied, "test", "denied"));
                }
                // The first few hang (only cancellation can end them); the rest free their
                // slot soon, so the failing item gets one whatever order tasks start in.
                let hang = if i < 8 { 3600_000 } else { 5 };
                tokio::time::sleep(Duration::from_millis(hang)).await;
                Ok(i)
            })
        });
        let out = drain(&mut job);
        // Quick items may finish before the failing one is scheduled; the failure is the last
        // answer whenever it comes, and nothing follows it.
        let (last, before_it) = out.split_last().expect("at least the failure");
        assert_eq!(last.index, 3);
        assert!(last.result.is_err());
        assert!(before_it.iter().all(|o| o.result.is_ok() && o.index >= 8), "{before_it:?}");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(job.in_flight(), 0, "nothing is left running");
        assert_eq!(limiter.stats().in_flight, 0);
        let before = started.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(started.load(Ordering::SeqCst), before, "no request starts after the failure");
    }
}
