//! The shell side of the request engine: the flags every bulk command shares and their
//! configuration defaults ([`engine_flags`], [`engine_settings`]), and [`BulkValues`], which
//! turns a running [`BulkJob`] into the values of a Nushell stream, with a progress line on
//! stderr for long interactive jobs.
//!
//! Configuration: `$env.NUAWS_ENGINE = {min_concurrency: 1, max_concurrency: 64,
//! initial_concurrency: 8, dedup_window: 2sec, fail_fast: false, ordered: false, max_attempts: 10,
//! attempt_timeout: 0sec (none), progress: true}`; any field may be left out, and a flag of the call wins over it.
//!
//! Not here: the requests (each command builds its own) or the engine's policy (`aws-core`).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_core::engine::{AdaptiveLimiter, BulkJob, BulkNext, Engine, EngineSettings, FailureMode, JobProgress, Lane, Outcome};
use nu_engine::command_prelude::*;
use nu_protocol::shell_error::generic::GenericError;
use nu_protocol::{ListStream, Signals};

/// How long one wait for an answer lasts before Ctrl-C is checked again.
const POLL: Duration = Duration::from_millis(50);
/// A job shorter than this never shows a progress line.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Adds the engine's flags to a bulk command's signature.
pub fn engine_flags(signature: Signature) -> Signature {
    signature
        .named(
            "concurrency",
            SyntaxShape::Int,
            "Run exactly this many requests at once (no adaptation).",
            Some('j'),
        )
        .named(
            "max-concurrency",
            SyntaxShape::Int,
            "Upper bound of the adaptive concurrency (default 64).",
            None,
        )
        .named(
            "min-concurrency",
            SyntaxShape::Int,
            "Lower bound of the adaptive concurrency (default 1).",
            None,
        )
        .named(
            "dedup-window",
            SyntaxShape::Duration,
            "Reuse a just-finished identical read for this long (default 2sec; 0sec: only share reads in flight).",
            None,
        )
        .named(
            "max-attempts",
            SyntaxShape::Int,
            "Attempts per item when the service throttles or fails transiently (default 10).",
            None,
        )
        .named(
            "attempt-timeout",
            SyntaxShape::Duration,
            "Give up on one attempt of an item after this long, body included, and retry it (default: none).",
            None,
        )
        .switch("fail-fast", "Stop at the first failure and cancel what is in flight.", None)
        .switch("ordered", "Give results in input order (default: as they complete).", None)
}

fn config_error(msg: impl Into<String>, span: Span, help: &str) -> ShellError {
    let msg = msg.into();
    ShellError::Generic(GenericError::new(msg.clone(), msg, span).with_help(help.to_string()))
}

const CONFIG_HELP: &str = "Set it as a record, e.g. $env.NUAWS_ENGINE = {max_concurrency: 32, dedup_window: 1sec, fail_fast: false}.";

/// A positive count from a config value or flag.
fn positive(value: i64, span: Span, what: &str) -> Result<usize, ShellError> {
    usize::try_from(value)
        .ok()
        .filter(|n| *n >= 1 && *n <= 4096)
        .ok_or_else(|| config_error(format!("{what} must be between 1 and 4096, not {value}"), span, "Concurrency counts requests at once."))
}

fn duration(value: i64, span: Span, what: &str) -> Result<Duration, ShellError> {
    u64::try_from(value)
        .map(Duration::from_nanos)
        .map_err(|_| config_error(format!("{what} cannot be negative"), span, "Give a duration such as 2sec or 0sec."))
}

/// Applies `$env.NUAWS_ENGINE` (the value `config`) over `settings` and the progress switch.
pub(crate) fn apply_engine_env(config: &Value, settings: &mut EngineSettings, progress: &mut bool) -> Result<(), ShellError> {
    let record = config
        .as_record()
        .map_err(|_| config_error("$env.NUAWS_ENGINE must be a record", config.span(), CONFIG_HELP))?;
    for (name, value) in record.iter() {
        let span = value.span();
        match name.as_str() {
            "min_concurrency" => settings.limits.min = positive(value.as_int()?, span, name)?,
            "max_concurrency" => settings.limits.max = positive(value.as_int()?, span, name)?,
            "initial_concurrency" => settings.limits.initial = positive(value.as_int()?, span, name)?,
            "dedup_window" => settings.dedup_window = duration(value.as_duration()?, span, name)?,
            "max_attempts" => settings.job.max_attempts = positive(value.as_int()?, span, name)? as u32,
            "attempt_timeout" => settings.job.attempt_timeout = Some(duration(value.as_duration()?, span, name)?).filter(|d| !d.is_zero()),
            "fail_fast" => {
                settings.job.mode = if value.as_bool()? { FailureMode::FailFast } else { FailureMode::Resilient }
            }
            "ordered" => settings.job.ordered = value.as_bool()?,
            "progress" => *progress = value.as_bool()?,
            other => {
                return Err(config_error(
                    format!("$env.NUAWS_ENGINE has no setting `{other}`"),
                    span,
                    "Known settings: min_concurrency, max_concurrency, initial_concurrency, dedup_window, max_attempts, attempt_timeout, fail_fast, ordered, progress.",
                ));
            }
        }
    }
    Ok(())
}

/// The settings of one bulk call: defaults, then `$env.NUAWS_ENGINE`, then the call's flags.
pub fn engine_settings(engine_state: &EngineState, stack: &mut Stack, call: &Call) -> Result<(EngineSettings, bool), ShellError> {
    let mut settings = EngineSettings::default();
    let mut progress = true;
    if let Some(config) = stack.get_env_var(engine_state, "NUAWS_ENGINE").cloned() {
        apply_engine_env(&config, &mut settings, &mut progress)?;
    }
    let int_flag = |stack: &mut Stack, name: &str| -> Result<Option<(usize, Span)>, ShellError> {
        call.get_flag::<Spanned<i64>>(engine_state, stack, name)?
            .map(|v| positive(v.item, v.span, &format!("--{name}")).map(|n| (n, v.span)))
            .transpose()
    };
    if let Some((n, _)) = int_flag(stack, "concurrency")? {
        settings.limits = aws_core::engine::LimiterSettings::fixed(n);
    }
    if let Some((n, _)) = int_flag(stack, "min-concurrency")? {
        settings.limits.min = n;
    }
    let max = int_flag(stack, "max-concurrency")?;
    if let Some((n, _)) = max {
        settings.limits.max = n;
    }
    if let Some((n, _)) = int_flag(stack, "max-attempts")? {
        settings.job.max_attempts = n as u32;
    }
    if settings.limits.min > settings.limits.max {
        let span = max.map_or(call.head, |(_, s)| s);
        return Err(config_error(
            format!("the minimum concurrency ({}) is above the maximum ({})", settings.limits.min, settings.limits.max),
            span,
            "Raise --max-concurrency or lower --min-concurrency (or their $env.NUAWS_ENGINE defaults).",
        ));
    }
    if let Some(limit) = call.get_flag::<Spanned<i64>>(engine_state, stack, "attempt-timeout")? {
        settings.job.attempt_timeout = Some(duration(limit.item, limit.span, "--attempt-timeout")?).filter(|d| !d.is_zero());
    }
    if let Some(window) = call.get_flag::<Spanned<i64>>(engine_state, stack, "dedup-window")? {
        settings.dedup_window = duration(window.item, window.span, "--dedup-window")?;
    }
    if call.has_flag(engine_state, stack, "fail-fast")? {
        settings.job.mode = FailureMode::FailFast;
    }
    if call.has_flag(engine_state, stack, "ordered")? {
        settings.job.ordered = true;
    }
    Ok((settings, progress))
}

/// A running bulk job as the values of a stream: each item's answer becomes values through
/// `to_values` (one row per item, or several: one per key of a batched delete).
///
/// With `--fail-fast`, the first error value ends the stream and cancels the job: an item may
/// fail inside a successful request (a key a batched delete could not delete), which the engine
/// cannot see.
pub struct BulkValues<I, T> {
    job: BulkJob<I, T>,
    lane: Lane,
    to_values: Box<dyn FnMut(Outcome<I, T>) -> Vec<Value> + Send>,
    ready: std::vec::IntoIter<Value>,
    fail_fast: bool,
    failed: bool,
    signals: Signals,
    span: Span,
    progress: Option<ProgressLine>,
    /// Run once when the job ends, however it ends.
    on_end: Option<Box<dyn FnOnce() + Send>>,
}

impl<I: Send + 'static, T: Send + 'static> BulkValues<I, T> {
    /// `verb` names the work in the progress line ("head", "delete", "copy").
    pub fn new(
        job: BulkJob<I, T>,
        lane: Lane,
        settings: &EngineSettings,
        verb: &'static str,
        show_progress: bool,
        signals: Signals,
        span: Span,
        to_values: impl FnMut(Outcome<I, T>) -> Vec<Value> + Send + 'static,
    ) -> Self {
        let progress = (show_progress && std::io::stderr().is_terminal())
            .then(|| ProgressLine::start(verb, job.progress.clone(), job.limiter()));
        Self {
            job,
            lane,
            to_values: Box::new(to_values),
            ready: Vec::new().into_iter(),
            fail_fast: settings.job.mode == FailureMode::FailFast,
            failed: false,
            signals,
            span,
            progress,
            on_end: None,
        }
    }

    /// Runs `f` when the job ends, however it ends (done, failed fast, cut short, Ctrl-C).
    pub fn on_end(mut self, f: impl FnOnce() + Send + 'static) -> Self {
        self.on_end = Some(Box::new(f));
        self
    }

    pub fn into_pipeline_data(self) -> PipelineData {
        let (span, signals) = (self.span, self.signals.clone());
        PipelineData::list_stream(ListStream::new(self, span, signals), None)
    }
}

impl<I, T> Drop for BulkValues<I, T> {
    fn drop(&mut self) {
        // However the job ended (done, failed fast, cut short by `first`, Ctrl-C), say what it did.
        Engine::global().record(&self.lane, self.job.summary());
        if let Some(on_end) = self.on_end.take() {
            on_end();
        }
    }
}

impl<I, T> Iterator for BulkValues<I, T> {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(value) = self.ready.next() {
                if self.fail_fast && value.is_error() {
                    self.failed = true;
                    self.job.cancel();
                    self.progress.take();
                }
                return Some(value);
            }
            match self.job.next_timeout(POLL) {
                BulkNext::Outcome(outcome) => self.ready = (self.to_values)(outcome).into_iter(),
                BulkNext::End => {
                    self.progress.take();
                    return None;
                }
                BulkNext::Pending if self.signals.interrupted() => {
                    self.job.cancel();
                    self.progress.take();
                    return None;
                }
                BulkNext::Pending => {}
            }
        }
    }
}

/// A line on stderr, rewritten in place: done, failed, rate, concurrency. Erased when the job
/// ends (dropped).
struct ProgressLine {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressLine {
    fn start(verb: &'static str, progress: Arc<JobProgress>, limiter: Arc<AdaptiveLimiter>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nuaws-progress".into())
            .spawn(move || {
                let started = Instant::now();
                let mut shown = false;
                while !stopped.load(Ordering::Relaxed) {
                    // Parked, not slept: the end of the job unparks it at once.
                    std::thread::park_timeout(PROGRESS_EVERY);
                    if started.elapsed() < PROGRESS_AFTER || stopped.load(Ordering::Relaxed) {
                        continue;
                    }
                    let done = progress.succeeded.load(Ordering::Relaxed);
                    let failed = progress.failed.load(Ordering::Relaxed);
                    let rate = (done + failed) as f64 / started.elapsed().as_secs_f64();
                    let stats = limiter.stats();
                    let throttled = progress.throttled.load(Ordering::Relaxed);
                    let mut line = format!(
                        "{verb}: {done} done, {failed} failed, {rate:.0}/s, {} in flight (limit {})",
                        stats.in_flight, stats.limit
                    );
                    if throttled > 0 {
                        line.push_str(&format!(", {throttled} throttled"));
                    }
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[K{line}");
                    let _ = err.flush();
                    shown = true;
                }
                if shown {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[K");
                    let _ = err.flush();
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// An item rejected before any request (a malformed URL, a bad input value), as the engine's
/// error type: it carries no HTTP status, so the limiter takes no lesson from it.
pub fn local_rejection(err: ShellError) -> aws_core::AwsError {
    let text = match &err {
        // The title alone ("Invalid S3 URL") does not say what is wrong; the label does.
        ShellError::Generic(generic) => format!("{}: {}", generic.error, generic.msg),
        other => other.to_string(),
    };
    aws_core::AwsError::new(aws_core::ErrorKind::InvalidInput, "input", text)
}

/// The row of a failed item: the same columns as a success (null), its identifying column, and
/// the error, so a table of results stays one shape and `where error != null` finds failures.
pub fn error_row(columns: &[&str], id_column: &str, id: String, error: String, span: Span) -> Value {
    let mut record = Record::new();
    for column in columns {
        let value = if *column == id_column {
            Value::string(id.clone(), span)
        } else {
            Value::nothing(span)
        };
        record.push(*column, value);
    }
    record.push("error", Value::string(error, span));
    Value::record(record, span)
}

/// Adds `error: null` to a success row, matching [`error_row`]'s shape.
pub fn with_no_error(value: Value) -> Value {
    match value {
        Value::Record { val, internal_span, .. } => {
            let mut record = val.into_owned();
            record.push("error", Value::nothing(internal_span));
            Value::record(record, internal_span)
        }
        other => other,
    }
}
