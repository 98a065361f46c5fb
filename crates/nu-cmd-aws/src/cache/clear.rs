//! `aws cache clear`: drop entries by glob, or by service, region, account and operation (all
//! given criteria must match); everything when none is given. With a shared tier, the groups of
//! the entries dropped are moved to a new generation there, for the whole team.

use std::sync::Arc;

use aws_core::cache::{Stale, glob_matches, key_parts, shared_group};
use nu_engine::command_prelude::*;

use crate::context::AwsContext;

#[derive(Clone)]
pub struct CacheClear {
    pub ctx: Arc<AwsContext>,
}

impl Command for CacheClear {
    fn name(&self) -> &str {
        "aws cache clear"
    }

    fn signature(&self) -> Signature {
        Signature::build(self.name())
            .optional("glob", SyntaxShape::String, "Only keys matching this glob.")
            .named("service", SyntaxShape::String, "Only entries of this service (s3, ec2).", None)
            .named("region", SyntaxShape::String, "Only entries of this region.", None)
            .named("account", SyntaxShape::String, "Only entries of this account id.", None)
            .named("operation", SyntaxShape::String, "Only entries of this operation (DescribeInstances, ...).", None)
            .input_output_types(vec![(Type::Nothing, Type::record())])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Remove cached entries from memory and disk; returns how many were removed."
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "Forget every cached EC2 result.",
                example: "aws cache clear --service ec2",
                result: None,
            },
            Example {
                description: "Forget object listings of one bucket.",
                example: "aws cache clear '*/s3/ListObjectsV2/my-bucket/*'",
                result: None,
            },
            Example {
                description: "Forget everything.",
                example: "aws cache clear",
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
        let glob: Option<String> = call.opt(engine_state, stack, 0)?;
        let service: Option<String> = call.get_flag(engine_state, stack, "service")?;
        let region: Option<String> = call.get_flag(engine_state, stack, "region")?;
        let account: Option<String> = call.get_flag(engine_state, stack, "account")?;
        let operation: Option<String> = call.get_flag(engine_state, stack, "operation")?;
        let cache = self.ctx.cache(engine_state, stack);
        let matches = |key: &str| {
            let is = |want: &Option<String>, got: Option<&str>| {
                want.as_deref().is_none_or(|w| got == Some(w))
            };
            let parts = key_parts(key);
            glob.as_deref().is_none_or(|g| glob_matches(g, key))
                && is(&service, parts.as_ref().map(|p| p.service))
                && is(&region, parts.as_ref().map(|p| p.region))
                && is(&account, parts.as_ref().map(|p| p.account))
                && is(&operation, parts.as_ref().map(|p| p.operation))
        };
        // The shared tier cannot list its keys: what it holds of the groups of the matching
        // local entries is made stale for everyone instead.
        let groups: std::collections::BTreeSet<String> = match cache.shared() {
            Some(_) => cache.keys().into_keys().filter(|k| matches(k.as_str())).map(|k| shared_group(&k)).collect(),
            None => Default::default(),
        };
        let removed = cache.invalidate_stale(&Stale { matches: &matches, groups: groups.into_iter().collect() });
        Ok(Value::record(
            record! { "removed" => Value::int(removed as i64, call.head) },
            call.head,
        )
        .into_pipeline_data())
    }
}
