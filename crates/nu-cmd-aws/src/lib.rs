//! `nu-cmd-aws`: the AWS commands of nuaws as native Nushell commands, built on `aws-core`.
//!
//! One command per file, grouped by domain (`s3/`, `ec2/`, `tags/`, `cache/`, `metrics/`), as in nushell's
//! `nu-command`. The shared pieces are [`context`] (the process-wide [`AwsContext`]: sessions and
//! the cache; how a command finds its profile, region and endpoint and reads through the cache),
//! [`complete`] (Tab completion of names and ids), [`values`] (rows to Nushell values), [`stream`]
//! (paginated listings as interruptible `ListStream`s), [`engine`] (the flags and result streams of
//! bulk commands on the request engine, and `aws engine`), [`regions`] (reads spread over several
//! regions), [`accounts`] (reads spread over several accounts) and [`errors`] (AWS failures as
//! Nushell errors that point at the offending argument).
//!
//! Not here: talking to AWS (that is `aws-core`) or booting the shell (that is the `nuaws` binary).

pub mod accounts;
pub mod cache;
pub mod complete;
pub mod context;
pub mod ec2;
pub mod engine;
pub mod errors;
mod external;
#[doc(hidden)]
pub mod fuzzing;
pub mod regions;
pub mod metrics;
pub mod s3;
pub mod shared_setting;
pub mod stream;
pub mod tags;
pub mod values;

mod aws_;

use std::sync::Arc;

use nu_protocol::engine::{EngineState, StateWorkingSet};

pub use context::{AwsContext, flush_metrics};

/// Adds every AWS command to `engine_state`, sharing one [`AwsContext`], the program's: the one
/// [`flush_metrics`] flushes.
pub fn add_aws_context(engine_state: EngineState) -> EngineState {
    let ctx = Arc::new(AwsContext::default());
    context::set_program_context(&ctx);
    add_aws_context_with(engine_state, ctx)
}

/// As [`add_aws_context`], with a given context (tests share one to observe it).
pub fn add_aws_context_with(mut engine_state: EngineState, ctx: Arc<AwsContext>) -> EngineState {
    let delta = {
        let mut working_set = StateWorkingSet::new(&engine_state);
        macro_rules! bind {
            ( $( $command:expr ),* $(,)? ) => {
                $( working_set.add_decl(Box::new($command)); )*
            };
        }
        bind!(aws_::Aws, s3::S3, ec2::Ec2, engine::AwsEngine);
        s3::add_commands(&mut working_set, &ctx);
        ec2::add_commands(&mut working_set, &ctx);
        cache::add_commands(&mut working_set, &ctx);
        tags::add_commands(&mut working_set, &ctx);
        metrics::add_commands(&mut working_set, &ctx);
        working_set.render()
    };
    if let Err(err) = engine_state.merge_delta(delta) {
        eprintln!("Error creating the AWS commands: {err:?}");
    }
    engine_state
}
