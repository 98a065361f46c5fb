//! `aws cache stats`: entries and bytes per tier; hits, misses and hit rate per tier and service;
//! and, with a shared tier, its own figures: timeouts, errors, rejected entries, latency.

use std::sync::Arc;

use nu_engine::command_prelude::*;

use crate::context::AwsContext;

#[derive(Clone)]
pub struct CacheStats {
    pub ctx: Arc<AwsContext>,
}

impl Command for CacheStats {
    fn name(&self) -> &str {
        "aws cache stats"
    }

    fn signature(&self) -> Signature {
        Signature::build(self.name())
            .input_output_types(vec![(Type::Nothing, Type::record())])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Show the cache's size per tier and its hits, misses and hit rate per tier and service since the shell started; with a shared tier ($env.NUAWS_SHARED_CACHE), its timeouts, errors, rejected entries, leases won and waited on (single flight across machines), whether Redis tracking is on and the pushes it brought, and latency."
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "Size of each tier.",
                example: "aws cache stats | get tiers",
                result: None,
            },
            Example {
                description: "Hit rate of the memory tier for EC2.",
                example: "aws cache stats | get requests | where tier == memory and service == ec2",
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
        let span = call.head;
        let cache = self.ctx.cache(engine_state, stack);
        let memory = cache.memory_stats();
        let disk = cache.disk_stats();
        let tier = |name: &str, entries: u64, bytes: u64, file: Option<u64>| {
            Value::record(
                record! {
                    "tier" => Value::string(name, span),
                    "entries" => Value::int(entries as i64, span),
                    "bytes" => Value::filesize(bytes as i64, span),
                    "file_size" => file.map_or(Value::nothing(span), |f| Value::filesize(f as i64, span)),
                },
                span,
            )
        };
        let mut tiers = vec![tier("memory", memory.entries, memory.bytes, None)];
        if let Some(d) = disk {
            tiers.push(tier("disk", d.entries, d.bytes, Some(d.file_bytes)));
        }
        let shared = cache.shared().map(|shared| {
            let s = shared.stats();
            let n = |v: u64| Value::int(i64::try_from(v).unwrap_or(i64::MAX), span);
            let latency = |q: f64| {
                s.latency
                    .quantile(q)
                    .map_or(Value::nothing(span), |d| Value::duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX), span))
            };
            Value::record(
                record! {
                    "url" => Value::string(shared.config().url(), span),
                    "hits" => n(s.hits),
                    "misses" => n(s.misses),
                    "timeouts" => n(s.timeouts),
                    "errors" => n(s.errors),
                    "rejected" => n(s.rejected),
                    "skipped" => n(s.skipped),
                    "writes" => n(s.writes),
                    "dropped" => n(s.dropped),
                    "invalidations" => n(s.invalidations),
                    "lease_wins" => n(s.lease_wins),
                    "lease_waits" => n(s.lease_waits),
                    "lease_filled" => n(s.lease_filled),
                    "lease_lapsed" => n(s.lease_lapsed),
                    "p50" => latency(0.5),
                    "p99" => latency(0.99),
                    "breaker" => Value::string(if s.open { "open" } else { "closed" }, span),
                    "tracking" => Value::bool(s.tracking, span),
                    "pushes" => n(s.pushes),
                },
                span,
            )
        });
        let requests = cache
            .hit_counts()
            .into_iter()
            .map(|((tier, service), (hits, misses))| {
                let total = hits + misses;
                Value::record(
                    record! {
                        "tier" => Value::string(tier.name(), span),
                        "service" => Value::string(service, span),
                        "hits" => Value::int(hits as i64, span),
                        "misses" => Value::int(misses as i64, span),
                        "hit_rate" => if total == 0 { Value::nothing(span) } else { Value::float(hits as f64 / total as f64, span) },
                    },
                    span,
                )
            })
            .collect();
        let dir = cache
            .disk()
            .and_then(|d| d.dir())
            .map_or(Value::nothing(span), |d| Value::string(d.to_string_lossy(), span));
        Ok(Value::record(
            record! {
                "tiers" => Value::list(tiers, span),
                "requests" => Value::list(requests, span),
                "disk_enabled" => Value::bool(cache.disk_stats().is_some(), span),
                "disk_dir" => dir,
                "shared" => shared.unwrap_or(Value::nothing(span)),
            },
            span,
        )
        .into_pipeline_data())
    }
}
