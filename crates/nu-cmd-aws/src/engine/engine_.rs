//! `aws engine`: per lane (service, region, endpoint), the concurrency the next bulk job starts
//! from, and what the last job did: items, failures, retries, throttles, time, the concurrency
//! it used, and how close it came to the best that concurrency allows.

use aws_core::engine::Engine;
use nu_engine::command_prelude::*;

use crate::cache::duration_value;

#[derive(Clone)]
pub struct AwsEngine;

impl Command for AwsEngine {
    fn name(&self) -> &str {
        "aws engine"
    }

    fn signature(&self) -> Signature {
        Signature::build(self.name())
            .input_output_types(vec![(Type::Nothing, Type::table())])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Show what the request engine learned per service and region, and what the last bulk job did."
    }

    fn extra_description(&self) -> &str {
        "`next_limit` is the concurrency the next bulk job on that lane starts from. For the last job: `mean_concurrency` is the average number of requests in flight, `floor` the fastest answer seen, and `efficiency` the best possible time at that concurrency (items x floor / mean_concurrency) over the time taken: near 1.0, the job was limited only by latency and concurrency."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["concurrency", "limiter", "throughput", "bulk"]
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![Example {
            description: "How the last bulk head went.",
            example: "aws s3 ls s3://my-bucket -R | aws s3 head | ignore; aws engine | select service region items elapsed mean_concurrency efficiency",
            result: None,
        }]
    }

    fn run(
        &self,
        _engine_state: &EngineState,
        _stack: &mut Stack,
        call: &Call,
        _input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        let span = call.head;
        let rows: Vec<Value> = Engine::global()
            .lanes()
            .into_iter()
            .map(|(lane, next_limit, last)| {
                let mut record = record! {
                    "service" => Value::string(lane.service, span),
                    "region" => Value::string(lane.region, span),
                    "endpoint" => lane.endpoint.map_or(Value::nothing(span), |e| Value::string(e, span)),
                    "next_limit" => Value::int(next_limit as i64, span),
                };
                let nothing = || Value::nothing(span);
                let last_columns = match last {
                    Some(job) => {
                        let bound = job.floor.map(|f| f.mul_f64(job.items as f64 / job.mean_concurrency.max(1e-9)));
                        vec![
                            ("items", Value::int(job.items as i64, span)),
                            ("failed", Value::int(job.failed as i64, span)),
                            ("retried", Value::int(job.retried as i64, span)),
                            ("throttled", Value::int(job.throttled as i64, span)),
                            ("elapsed", duration_value(job.elapsed, span)),
                            ("rate", Value::float(job.items as f64 / job.elapsed.as_secs_f64().max(1e-9), span)),
                            ("mean_concurrency", Value::float(job.mean_concurrency, span)),
                            ("peak_limit", Value::int(job.peak_limit as i64, span)),
                            ("final_limit", Value::int(job.final_limit as i64, span)),
                            ("limit_cuts", Value::int(job.limit_cuts as i64, span)),
                            ("floor", job.floor.map_or_else(nothing, |f| duration_value(f, span))),
                            (
                                "efficiency",
                                bound.map_or_else(nothing, |b| Value::float(b.as_secs_f64() / job.elapsed.as_secs_f64().max(1e-9), span)),
                            ),
                        ]
                    }
                    None => ["items", "failed", "retried", "throttled", "elapsed", "rate", "mean_concurrency", "peak_limit", "final_limit", "limit_cuts", "floor", "efficiency"]
                        .into_iter()
                        .map(|c| (c, nothing()))
                        .collect(),
                };
                for (column, value) in last_columns {
                    record.push(column, value);
                }
                Value::record(record, span)
            })
            .collect();
        Ok(Value::list(rows, span).into_pipeline_data())
    }
}
