//! The request engine: how nuaws makes many requests at once.
//!
//! - [`limiter`]: [`AdaptiveLimiter`], the concurrency bound learned from latency, throttling and
//!   timeouts, between a configured minimum and maximum.
//! - [`dedup`]: [`Dedup`], identical requests in flight (or finished a moment ago) answered once.
//! - [`bulk`]: [`BulkJob`], a stream of items turned into concurrent requests, with backpressure,
//!   ordered or completion-order answers, retries of throttled items, and resilient or
//!   fail-fast failure handling.
//!
//! [`Engine`] is the process-wide part: the deduplication table every command shares, and, per
//! lane (service, region, endpoint), the limit the last job reached, so the next job starts
//! where the last one left off instead of probing from scratch. Connections are pooled per
//! session client (see `session`), which already means one pool per service and region.
//!
//! Not here: the requests themselves (`s3`, `ec2`), or how answers are shown.

pub mod bulk;
pub mod dedup;
pub mod limiter;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use bulk::{BulkJob, BulkNext, FailureMode, JobProgress, JobSettings, JobSummary, Outcome, Request, signal_of};
pub use dedup::Dedup;
pub use limiter::{AdaptiveLimiter, LimiterSettings, LimiterStats, Permit, Signal};

use crate::error::AwsError;
use crate::row::Row;
use crate::session::Session;

/// Where a job's requests go: limits are learned per lane.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lane {
    pub service: &'static str,
    pub region: String,
    pub endpoint: Option<String>,
}

impl Lane {
    pub fn of(session: &Session, service: &'static str) -> Self {
        Self {
            service,
            region: session.region().unwrap_or("us-east-1").to_string(),
            endpoint: session.endpoint().map(str::to_string),
        }
    }
}

/// Every knob of a bulk command, with the defaults a configuration may override.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineSettings {
    pub limits: LimiterSettings,
    /// How long a just-finished identical read is reused.
    pub dedup_window: Duration,
    pub job: JobSettings,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            limits: LimiterSettings::default(),
            dedup_window: Duration::from_secs(2),
            job: JobSettings::default(),
        }
    }
}

/// The process-wide engine.
#[derive(Default)]
pub struct Engine {
    /// The limiter of the last job per lane: the next one starts at its limit.
    last: Mutex<HashMap<Lane, Arc<AdaptiveLimiter>>>,
    /// Reads that produce one row (HeadObject, bucket tagging, ...), shared by every command.
    pub rows: Dedup<Row, AwsError>,
    /// Whole object bodies (GetObject read into memory) and their content type.
    pub bodies: Dedup<(bytes::Bytes, Option<String>), AwsError>,
    /// The last job to finish per lane, for `aws engine`.
    finished: Mutex<HashMap<Lane, JobSummary>>,
}

impl Engine {
    pub fn global() -> &'static Engine {
        static ENGINE: OnceLock<Engine> = OnceLock::new();
        ENGINE.get_or_init(Engine::default)
    }

    /// A limiter for a new job on `lane`, starting from the limit the previous job reached.
    pub fn limiter(&self, lane: &Lane, limits: LimiterSettings) -> Arc<AdaptiveLimiter> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let initial = last.get(lane).map_or(limits.initial, |l| l.limit());
        let limiter = AdaptiveLimiter::new(LimiterSettings { initial, ..limits });
        last.insert(lane.clone(), limiter.clone());
        limiter
    }

    /// Forgets the just-finished answers kept for the dedup window: something was written.
    pub fn forget_finished(&self) {
        self.rows.forget_finished();
        self.bodies.forget_finished();
    }

    /// Notes a job's summary as the latest of its lane.
    pub fn record(&self, lane: &Lane, summary: JobSummary) {
        self.finished.lock().unwrap_or_else(|e| e.into_inner()).insert(lane.clone(), summary);
    }

    /// Per lane: the limit the next job starts from, and the last job's summary.
    pub fn lanes(&self) -> Vec<(Lane, usize, Option<JobSummary>)> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        let mut lanes: Vec<_> = last
            .iter()
            .map(|(lane, limiter)| (lane.clone(), limiter.limit(), finished.get(lane).cloned()))
            .collect();
        lanes.sort_by(|a, b| (a.0.service, &a.0.region, &a.0.endpoint).cmp(&(b.0.service, &b.0.region, &b.0.endpoint)));
        lanes
    }

    /// Starts a bulk job on `lane`.
    pub fn run<I, T, It, F, Fut>(&self, lane: &Lane, settings: &EngineSettings, items: It, request: F) -> BulkJob<I, T>
    where
        I: Clone + Send + 'static,
        T: Send + 'static,
        It: Iterator<Item = I> + Send + 'static,
        F: Fn(I) -> Request<Fut, T> + Send + Sync + 'static,
        Fut: Future<Output = Result<T, AwsError>> + Send + 'static,
    {
        BulkJob::start(items, self.limiter(lane, settings.limits), settings.job, request)
    }
}

/// The deduplication key of a request: the session (profile, region, endpoint, credentials
/// environment) and the operation's own parameters.
pub fn request_key(session: &Session, operation: &str, params: &str) -> String {
    format!("{}/{operation}/{params}", session.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_remembers_the_limit_its_last_job_reached() {
        let engine = Engine::default();
        let lane = Lane {
            service: "s3",
            region: "us-east-1".into(),
            endpoint: None,
        };
        let limits = LimiterSettings { min: 1, max: 64, initial: 4 };
        let first = engine.limiter(&lane, limits);
        for _ in 0..3 {
            let permits: Vec<_> = std::iter::from_fn(|| first.try_acquire()).collect();
            for p in permits {
                p.finish(Signal::Answered(Duration::from_millis(10)));
            }
        }
        assert_eq!(first.limit(), 32);
        assert_eq!(engine.limiter(&lane, limits).limit(), 32);
        let other = Lane { region: "eu-west-1".into(), ..lane.clone() };
        assert_eq!(engine.limiter(&other, limits).limit(), 4);
        // A job's own bounds still hold.
        assert_eq!(engine.limiter(&lane, LimiterSettings { max: 10, ..limits }).limit(), 10);
    }
}
