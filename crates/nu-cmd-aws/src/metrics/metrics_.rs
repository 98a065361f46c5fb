//! `aws metrics`: one row per (service, operation, region) with request counts, errors, retries,
//! throttles, latency percentiles, bytes and cache hit rates; from the history every nuaws
//! process keeps in the disk cache (all of it, or `--since` a date or a duration ago), or from
//! this shell alone (`--session`).

use std::sync::Arc;
use std::time::SystemTime;

use aws_core::metrics::{Figures, OperationKey, Snapshot, load_history};
use nu_engine::command_prelude::*;
use nu_protocol::shell_error::generic::GenericError;

use super::{duration_value, value_only};
use crate::context::AwsContext;

#[derive(Clone)]
pub struct AwsMetrics {
    pub ctx: Arc<AwsContext>,
}

impl Command for AwsMetrics {
    fn name(&self) -> &str {
        "aws metrics"
    }

    fn signature(&self) -> Signature {
        Signature::build(self.name())
            .named(
                "service",
                SyntaxShape::String,
                "Only this service (s3, ec2, sts).",
                None,
            )
            .named(
                "operation",
                SyntaxShape::String,
                "Only this operation (ListObjectsV2, DescribeInstances, ...).",
                None,
            )
            .named("region", SyntaxShape::String, "Only this region.", None)
            .named(
                "since",
                SyntaxShape::OneOf(vec![SyntaxShape::DateTime, SyntaxShape::Duration]),
                "Only the history from this date, or this long ago (1day), to the hour.",
                None,
            )
            .switch(
                "session",
                "Only this shell's figures since it started (or was reset), not the history.",
                None,
            )
            .input_output_types(vec![(Type::Nothing, Type::table())])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Show latency percentiles, counts, errors, retries, throttles, bytes and cache hit rates of AWS requests per operation."
    }

    fn extra_description(&self) -> &str {
        "Every AWS request nuaws makes and every cache lookup is recorded per service, operation and region. p50, p95, p99 and max are the latency of whole operations (from the call to its result: retries, backoff and reading the response included), from a histogram precise to 3 significant digits. retries counts attempts beyond the first; throttles the attempts AWS throttled (SlowDown, Throttling, RequestLimitExceeded, ...). hits_memory, hits_disk, hits_shared (the team's Redis tier) and misses count cache lookups; a miss is a read the network answered (one per listing, however many pages it took).

The figures of all nuaws processes of the user are kept per hour in the disk cache for 30 days; each process adds its own at most every 30 seconds while it runs commands, when `aws metrics` runs, and at exit. Without --session, this command shows that history (--since selects the hours); with $env.NUAWS_CACHE = off, or without a usable disk cache, only this shell's figures exist, and --since must then reach back before they began."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec![
            "latency",
            "percentile",
            "statistics",
            "performance",
            "hit rate",
        ]
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "Latency and volume of every operation over the last week.",
                example: "aws metrics --since 7day | select service operation requests p50 p95 p99",
                result: None,
            },
            Example {
                description: "The slowest operations of this shell.",
                example: "aws metrics --session | sort-by p99 --reverse | first 5",
                result: None,
            },
            Example {
                description: "How well the cache served EC2 over the last day.",
                example: "aws metrics --service ec2 --since 1day | select operation hits_memory hits_disk misses hit_rate",
                result: None,
            },
        ]
    }

    fn run(
        &self,
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
        _input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        let head = call.head;
        let service: Option<String> = call.get_flag(engine_state, stack, "service")?;
        let operation: Option<String> = call.get_flag(engine_state, stack, "operation")?;
        let region: Option<String> = call.get_flag(engine_state, stack, "region")?;
        let session = call.has_flag(engine_state, stack, "session")?;
        let since = match call.get_flag::<Value>(engine_state, stack, "since")? {
            Some(value) => Some(since_instant(
                &value,
                value_only(engine_state, value.span()),
            )?),
            None => None,
        };
        let cache = self.ctx.cache(engine_state, stack);
        let metrics = cache.metrics();
        let history = if session {
            None
        } else {
            self.ctx.metrics_disk(engine_state, stack)
        };
        let figures: Snapshot = match (history, since) {
            (Some(disk), since) => {
                // This shell's latest figures join the history first.
                metrics.flush(disk);
                load_history(disk, since.map(|(t, _)| t))
            }
            // This shell's figures are one lot: they answer a --since only if they all lie after it.
            (None, Some((since, span))) if since > metrics.since() => {
                let began: chrono::DateTime<chrono::Local> = metrics.since().into();
                let why = format!(
                    "this shell's figures, since {}, are not kept per hour and cannot be cut there",
                    began.format("%Y-%m-%d %H:%M:%S")
                );
                let help = if session {
                    "Leave out --session to read the history, which is kept per hour."
                } else {
                    "The history, kept per hour, is in the disk cache, which is off ($env.NUAWS_CACHE) or unusable here; leave out --since for this shell's figures."
                };
                return Err(ShellError::Generic(
                    GenericError::new("Cannot select figures by time", why, span)
                        .with_help(help)
                        .with_code("nuaws::metrics::no_history"),
                ));
            }
            (None, _) => metrics.snapshot(),
        };
        let wanted = |key: &OperationKey| {
            service
                .as_ref()
                .is_none_or(|s| key.service.eq_ignore_ascii_case(s))
                && operation
                    .as_ref()
                    .is_none_or(|o| key.operation.eq_ignore_ascii_case(o))
                && region.as_ref().is_none_or(|r| key.region == *r)
        };
        let rows: Vec<Value> = figures
            .iter()
            .filter(|(key, _)| wanted(key))
            .map(|(key, f)| row(key, f, head))
            .collect();
        Ok(Value::list(rows, head).into_pipeline_data())
    }
}

/// `--since` as an instant: a date as it is, a duration as that long before now.
fn since_instant(value: &Value, span: Span) -> Result<(SystemTime, Span), ShellError> {
    match value {
        Value::Date { val, .. } => Ok((SystemTime::from(*val), span)),
        Value::Duration { val, .. } if *val >= 0 => {
            let back = std::time::Duration::from_nanos(*val as u64);
            Ok((
                SystemTime::now()
                    .checked_sub(back)
                    .unwrap_or(SystemTime::UNIX_EPOCH),
                span,
            ))
        }
        Value::Duration { .. } => Err(ShellError::Generic(
            GenericError::new(
                "Invalid --since",
                "a negative duration is in the future",
                span,
            )
            .with_help("Give how long ago, as a positive duration (1day, 3hr), or a date.")
            .with_code("nuaws::metrics::invalid_since"),
        )),
        other => Err(ShellError::TypeMismatch {
            err_message: format!("expected a date or a duration, got {}", other.get_type()),
            span,
        }),
    }
}

fn count(n: u64, span: Span) -> Value {
    Value::int(i64::try_from(n).unwrap_or(i64::MAX), span)
}

fn row(key: &OperationKey, f: &Figures, span: Span) -> Value {
    let latency = &f.latency;
    Value::record(
        record! {
            "service" => Value::string(&key.service, span),
            "operation" => Value::string(&key.operation, span),
            "region" => Value::string(&key.region, span),
            "requests" => count(f.requests, span),
            "errors" => count(f.errors, span),
            "retries" => count(f.retries, span),
            "throttles" => count(f.throttles, span),
            "p50" => duration_value(latency.quantile(0.50), span),
            "p95" => duration_value(latency.quantile(0.95), span),
            "p99" => duration_value(latency.quantile(0.99), span),
            "max" => duration_value(latency.max(), span),
            "bytes_in" => Value::filesize(i64::try_from(f.bytes_in).unwrap_or(i64::MAX), span),
            "bytes_out" => Value::filesize(i64::try_from(f.bytes_out).unwrap_or(i64::MAX), span),
            "hits_memory" => count(f.hits_memory, span),
            "hits_disk" => count(f.hits_disk, span),
            "hits_shared" => count(f.hits_shared, span),
            "misses" => count(f.misses, span),
            "hit_rate" => f.hit_rate().map_or(Value::nothing(span), |r| Value::float(r, span)),
        },
        span,
    )
}
