//! The `aws tags` commands: resources of several services found by their tags (`correlate`).
//! nuaws's own group, not an AWS CLI service.

mod correlate;
mod tags_;

use std::sync::Arc;

use nu_engine::command_prelude::*;

use crate::context::AwsContext;

pub use correlate::TagsCorrelate;
pub use tags_::AwsTags;

pub(crate) fn add_commands(working_set: &mut StateWorkingSet, ctx: &Arc<AwsContext>) {
    working_set.add_decl(Box::new(AwsTags));
    working_set.add_decl(Box::new(TagsCorrelate { ctx: ctx.clone() }));
}
