//! `aws bench`: runs a closure `--warmup` times untimed, then `--iterations` times timed, and
//! returns min, mean, p50, p95, p99, max, their standard deviation and spread. `--save` keeps
//! the result as a named baseline; `--baseline` compares with one and flags a regression when
//! p50 or p95 is more than `--threshold` times the baseline's, as data, and with `--check` as an
//! error (for CI).
//!
//! Not for: statistics of AWS requests as they happen (that is `aws metrics`).

use std::time::{Duration, Instant};

use nu_engine::{ClosureEval, command_prelude::*};
use nu_protocol::engine::Closure;
use nu_protocol::shell_error::generic::GenericError;

use super::baseline;
use super::{duration_value, value_only};
use crate::context::value_span;

const DEFAULT_ITERATIONS: i64 = 10;
const DEFAULT_WARMUP: i64 = 1;
/// A run is a regression when its p50 or p95 is more than this many times the baseline's.
const DEFAULT_THRESHOLD: f64 = 1.5;

#[derive(Clone)]
pub struct AwsBench;

impl Command for AwsBench {
    fn name(&self) -> &str {
        "aws bench"
    }

    fn signature(&self) -> Signature {
        Signature::build(self.name())
            .required(
                "closure",
                SyntaxShape::Closure(None),
                "The code to time; its output is read to the end and dropped.",
            )
            .named("iterations", SyntaxShape::Int, "Timed runs (default 10).", Some('n'))
            .named("warmup", SyntaxShape::Int, "Untimed runs before them (default 1).", Some('w'))
            .named("save", SyntaxShape::String, "Save the result as the baseline of this name.", None)
            .named("baseline", SyntaxShape::String, "Compare with the baseline of this name.", None)
            .named(
                "threshold",
                SyntaxShape::Number,
                "With --baseline: the ratio of p50 or p95 to the baseline's above which the run is a regression (default 1.5).",
                None,
            )
            .switch("check", "With --baseline: make a regression an error, for CI.", None)
            .input_output_types(vec![(Type::Nothing, Type::record())])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Time a closure over many runs: min, mean, p50, p95, p99, max and their spread, compared with a saved baseline."
    }

    fn extra_description(&self) -> &str {
        "Each timed run lasts from the start of the closure until its output has been read to the end (a stream is drained, so lazy work happens). Percentiles are by nearest rank over the timed runs; stddev is their sample standard deviation and spread is (p95 - p50) / p50.

--save NAME keeps the result in the cache directory ($env.NUAWS_CACHE_DIR, else $XDG_CACHE_HOME/nuaws, else ~/.cache/nuaws) as bench/NAME.nuon. --baseline NAME adds the saved record as `baseline`, the ratios ratio_p50 and ratio_p95 of this run to it, and `regression`: whether either ratio is above --threshold. With --check a regression is an error, so a CI job fails."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec![
            "benchmark",
            "timeit",
            "performance",
            "regression",
            "percentile",
        ]
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "Time an uncached listing 20 times, after 2 warm-up runs.",
                example: "aws bench { aws ec2 instances --no-cache } --iterations 20 --warmup 2",
                result: None,
            },
            Example {
                description: "What a run reports.",
                example: "aws bench { 1 + 1 } -n 3 | columns",
                result: Some(Value::test_list(
                    [
                        "iterations",
                        "warmup",
                        "min",
                        "mean",
                        "p50",
                        "p95",
                        "p99",
                        "max",
                        "stddev",
                        "spread",
                    ]
                    .into_iter()
                    .map(Value::test_string)
                    .collect(),
                )),
            },
            Example {
                description: "Save a listing's timing as a baseline, and later see whether it regressed (p50 or p95 over 1.5 times the baseline's).",
                example: "aws bench { aws s3 ls s3://my-bucket/ --no-cache } --save s3-ls; aws bench { aws s3 ls s3://my-bucket/ --no-cache } --baseline s3-ls | get regression",
                result: None,
            },
            Example {
                description: "In CI, fail on a regression: here a pause as long as when its baseline was saved, which passes.",
                example: "aws bench { sleep 100ms } -n 5 --save pause; aws bench { sleep 100ms } -n 5 --baseline pause --check | get ratio_p50",
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
        let closure: Closure = call.req(engine_state, stack, 0)?;
        let iterations = count_flag(
            engine_state,
            stack,
            call,
            "iterations",
            DEFAULT_ITERATIONS,
            1,
        )?;
        let warmup = count_flag(engine_state, stack, call, "warmup", DEFAULT_WARMUP, 0)?;
        let name_flag =
            |stack: &mut Stack, flag: &str| -> Result<Option<Spanned<String>>, ShellError> {
                Ok(call
                    .get_flag::<Spanned<String>>(engine_state, stack, flag)?
                    .map(|v| value_span(engine_state, v)))
            };
        let save = name_flag(stack, "save")?;
        let against = name_flag(stack, "baseline")?;
        let threshold = match call.get_flag::<Spanned<f64>>(engine_state, stack, "threshold")? {
            Some(t) if !(t.item.is_finite() && t.item > 0.0) => {
                let span = value_only(engine_state, t.span);
                return Err(invalid_flag(
                    "--threshold",
                    "must be a positive number",
                    span,
                ));
            }
            Some(t) => t.item,
            None => DEFAULT_THRESHOLD,
        };
        let check = call.has_flag(engine_state, stack, "check")?;
        if check && against.is_none() {
            let span = call.get_flag_span(stack, "check").unwrap_or(head);
            return Err(invalid_flag(
                "--check",
                "needs --baseline to compare with",
                span,
            ));
        }
        // Names are checked and the baseline read before any run: a typo must not cost a
        // benchmark's time.
        let dir = match (&save, &against) {
            (None, None) => None,
            _ => Some(baseline::dir(engine_state, stack, head)?),
        };
        if let Some(name) = &save {
            baseline::check_name(name)?;
        }
        let saved = match (&against, &dir) {
            (Some(name), Some(dir)) => Some(baseline::load(dir, name)?),
            _ => None,
        };

        let mut eval = ClosureEval::new(engine_state, stack, closure);
        let mut samples = Vec::with_capacity(iterations);
        for run in 0..warmup + iterations {
            engine_state.signals().check(&head)?;
            let start = Instant::now();
            eval.run_with_input(PipelineData::empty())?.drain()?;
            let elapsed = start.elapsed();
            if run >= warmup {
                samples.push(elapsed);
            }
        }
        let Some(stats) = Stats::of(&samples) else {
            return Err(invalid_flag("--iterations", "must be at least 1", head));
        };
        let mut record = stats.record(warmup, head);

        let mut regression = None;
        if let (Some(name), Some(saved)) = (&against, saved) {
            let (p50, p95) = baseline::percentiles(&saved, name)?;
            let ratio = |now: Duration, then: i64| now.as_nanos() as f64 / then as f64;
            let ratio_p50 = ratio(stats.p50, p50);
            let ratio_p95 = ratio(stats.p95, p95);
            let regressed = ratio_p50 > threshold || ratio_p95 > threshold;
            record.push("baseline", saved);
            record.push("ratio_p50", Value::float(ratio_p50, head));
            record.push("ratio_p95", Value::float(ratio_p95, head));
            record.push("threshold", Value::float(threshold, head));
            record.push("regression", Value::bool(regressed, head));
            if regressed {
                regression = Some((name.clone(), ratio_p50, ratio_p95));
            }
        }

        if let (Some(name), Some(dir)) = (&save, &dir) {
            let mut saved = stats.record(warmup, head);
            saved.push(
                "saved",
                Value::date(chrono::Utc::now().fixed_offset(), head),
            );
            baseline::save(engine_state, dir, name, &Value::record(saved, head))?;
        }

        if let (true, Some((name, ratio_p50, ratio_p95))) = (check, regression) {
            let (which, ratio) = if ratio_p50 >= ratio_p95 {
                ("p50", ratio_p50)
            } else {
                ("p95", ratio_p95)
            };
            return Err(ShellError::Generic(
                GenericError::new(
                    format!("Slower than the baseline `{}`", name.item),
                    format!("{which} is {ratio:.2}x the baseline's, over the {threshold}x threshold"),
                    name.span,
                )
                .with_help(format!(
                    "p50 is {ratio_p50:.2}x and p95 {ratio_p95:.2}x the baseline's. If the change is intended, save a new baseline with --save {}.",
                    name.item
                ))
                .with_code("nuaws::bench::regression"),
            ));
        }
        Ok(Value::record(record, head).into_pipeline_data())
    }
}

fn invalid_flag(flag: &str, why: &str, span: Span) -> ShellError {
    ShellError::Generic(
        GenericError::new(format!("Invalid {flag}"), why.to_string(), span)
            .with_code("nuaws::bench::invalid_flag"),
    )
}

/// A count flag: `default` when absent, an error (at the value) below `min`.
fn count_flag(
    engine_state: &EngineState,
    stack: &mut Stack,
    call: &Call,
    name: &str,
    default: i64,
    min: i64,
) -> Result<usize, ShellError> {
    let Some(n) = call.get_flag::<Spanned<i64>>(engine_state, stack, name)? else {
        return Ok(default as usize);
    };
    let span = value_only(engine_state, n.span);
    if n.item < min {
        return Err(invalid_flag(
            &format!("--{name}"),
            &format!("must be at least {min}"),
            span,
        ));
    }
    usize::try_from(n.item).map_err(|_| invalid_flag(&format!("--{name}"), "is too large", span))
}

/// The statistics of the timed runs.
#[derive(Debug, Clone, PartialEq)]
struct Stats {
    iterations: usize,
    min: Duration,
    mean: Duration,
    p50: Duration,
    p95: Duration,
    p99: Duration,
    max: Duration,
    /// Sample standard deviation (zero for a single run).
    stddev: Duration,
    /// (p95 - p50) / p50: how far the slow runs are from the typical one.
    spread: f64,
}

impl Stats {
    fn of(samples: &[Duration]) -> Option<Stats> {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let n = sorted.len();
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        // Nearest rank: the smallest sample with at least q of the samples at or below it.
        let at = |q: f64| sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        let secs: Vec<f64> = sorted.iter().map(Duration::as_secs_f64).collect();
        let mean = secs.iter().sum::<f64>() / n as f64;
        let variance = if n > 1 {
            secs.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        let (p50, p95) = (at(0.50), at(0.95));
        let spread = if p50.is_zero() {
            0.0
        } else {
            (p95 - p50).as_secs_f64() / p50.as_secs_f64()
        };
        Some(Stats {
            iterations: n,
            min,
            mean: Duration::from_secs_f64(mean),
            p50,
            p95,
            p99: at(0.99),
            max,
            stddev: Duration::from_secs_f64(variance.sqrt()),
            spread,
        })
    }

    fn record(&self, warmup: usize, span: Span) -> Record {
        let d = |d: Duration| duration_value(Some(d), span);
        let int = |n: usize| Value::int(i64::try_from(n).unwrap_or(i64::MAX), span);
        record! {
            "iterations" => int(self.iterations),
            "warmup" => int(warmup),
            "min" => d(self.min),
            "mean" => d(self.mean),
            "p50" => d(self.p50),
            "p95" => d(self.p95),
            "p99" => d(self.p99),
            "max" => d(self.max),
            "stddev" => d(self.stddev),
            "spread" => Value::float(self.spread, span),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn statistics_by_nearest_rank() {
        assert_eq!(Stats::of(&[]), None);
        let samples: Vec<Duration> = (1..=20).rev().map(ms).collect();
        let s = Stats::of(&samples).unwrap();
        assert_eq!((s.iterations, s.min, s.max), (20, ms(1), ms(20)));
        assert_eq!((s.p50, s.p95, s.p99), (ms(10), ms(19), ms(20)));
        assert!((s.mean.as_secs_f64() - 0.0105).abs() < 1e-9, "{:?}", s.mean);
        // Sample standard deviation of 1..=20 ms: sqrt(35) ms.
        assert!(
            (s.stddev.as_secs_f64() - 35f64.sqrt() / 1000.0).abs() < 1e-9,
            "{:?}",
            s.stddev
        );
        assert!((s.spread - 0.9).abs() < 1e-9, "{}", s.spread);
    }

    #[test]
    fn one_run_has_no_spread() {
        let s = Stats::of(&[ms(5)]).unwrap();
        assert_eq!(
            (s.p50, s.p99, s.stddev, s.spread),
            (ms(5), ms(5), Duration::ZERO, 0.0)
        );
    }
}
