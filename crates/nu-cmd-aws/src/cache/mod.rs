//! The `aws cache` commands: what the cache holds and how well it does (`stats`, `ls`, `last`),
//! clearing it by glob or by service, region, account and operation (`clear`), and filling it
//! in the background (`warm`).

mod cache_;
mod clear;
mod last;
mod ls;
mod stats;
mod warm;

use std::sync::Arc;

use nu_engine::command_prelude::*;

use crate::context::AwsContext;

pub use cache_::AwsCache;
pub use clear::CacheClear;
pub use last::CacheLast;
pub use ls::CacheLs;
pub use stats::CacheStats;
pub use warm::CacheWarm;

pub(crate) fn add_commands(working_set: &mut StateWorkingSet, ctx: &Arc<AwsContext>) {
    working_set.add_decl(Box::new(AwsCache));
    working_set.add_decl(Box::new(CacheStats { ctx: ctx.clone() }));
    working_set.add_decl(Box::new(CacheLs { ctx: ctx.clone() }));
    working_set.add_decl(Box::new(CacheClear { ctx: ctx.clone() }));
    working_set.add_decl(Box::new(CacheWarm { ctx: ctx.clone() }));
    working_set.add_decl(Box::new(CacheLast { ctx: ctx.clone() }));
}

/// A duration as a Nushell value.
pub(crate) fn duration_value(d: std::time::Duration, span: Span) -> Value {
    Value::duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX), span)
}

/// A wall-clock instant as a Nushell date.
pub(crate) fn time_value(t: std::time::SystemTime, span: Span) -> Value {
    let t: chrono::DateTime<chrono::Utc> = t.into();
    Value::date(t.fixed_offset(), span)
}
