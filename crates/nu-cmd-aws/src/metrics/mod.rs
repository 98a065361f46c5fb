//! The measuring commands: `aws metrics` (latency percentiles, counts, errors, retries,
//! throttles, bytes and cache hit rates per operation, for this shell or from the history every
//! nuaws process adds to), `aws metrics reset`, and `aws bench` (timing a closure over many runs,
//! with baselines saved and compared, for CI).
//!
//! Not here: recording the figures (that is `aws_core::metrics`, on every request and cache
//! lookup).

pub(crate) mod baseline;
mod bench;
mod metrics_;
mod reset;

use std::sync::Arc;

use nu_engine::command_prelude::*;

use crate::context::AwsContext;

pub use bench::AwsBench;
pub use metrics_::AwsMetrics;
pub use reset::MetricsReset;

pub(crate) fn add_commands(working_set: &mut StateWorkingSet, ctx: &Arc<AwsContext>) {
    working_set.add_decl(Box::new(AwsMetrics { ctx: ctx.clone() }));
    working_set.add_decl(Box::new(MetricsReset { ctx: ctx.clone() }));
    working_set.add_decl(Box::new(AwsBench));
}

/// A flag value's span may cover `--flag value`: narrowed to the value, for errors. A value
/// with spaces in it (a subexpression) is found by its opening parenthesis.
pub(crate) fn value_only(engine_state: &EngineState, span: Span) -> Span {
    let text = engine_state.get_span_contents(span);
    if !text.starts_with(b"-") {
        return span;
    }
    let start = match text.iter().position(|&b| b == b'(') {
        Some(i) => Some(i),
        None => text
            .iter()
            .rposition(u8::is_ascii_whitespace)
            .map(|i| i + 1),
    };
    start.map_or(span, |i| Span::new(span.start + i, span.end))
}

/// A duration as a Nushell value; `None` as nothing.
pub(crate) fn duration_value(d: Option<std::time::Duration>, span: Span) -> Value {
    d.map_or(Value::nothing(span), |d| {
        Value::duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX), span)
    })
}
