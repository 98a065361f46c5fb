//! `aws cache ls`: the cached entries, optionally matched by a glob over their readable key
//! (`account/region/service/operation/scope`).

use std::sync::Arc;

use aws_core::cache::key::KeyParts;
use aws_core::cache::{glob_matches, key_parts};
use nu_engine::command_prelude::*;

use crate::cache::{duration_value, time_value};
use crate::context::AwsContext;

#[derive(Clone)]
pub struct CacheLs {
    pub ctx: Arc<AwsContext>,
}

impl Command for CacheLs {
    fn name(&self) -> &str {
        "aws cache ls"
    }

    fn signature(&self) -> Signature {
        Signature::build(self.name())
            .optional(
                "glob",
                SyntaxShape::String,
                "Only keys matching this glob, e.g. '*/us-east-1/ec2/*'.",
            )
            .input_output_types(vec![(Type::Nothing, Type::table())])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "List the cached entries: key, account, region, service, operation, tiers, rows, age and expiry."
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "Everything cached.",
                example: "aws cache ls",
                result: None,
            },
            Example {
                description: "Cached EC2 results of one region.",
                example: "aws cache ls '*/us-east-1/ec2/*'",
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
        let span = call.head;
        let cache = self.ctx.cache(engine_state, stack).clone();
        let rows: Vec<Value> = cache
            .keys()
            .into_iter()
            .filter(|(key, _)| glob.as_deref().is_none_or(|g| glob_matches(g, key)))
            .filter_map(|(key, tiers)| {
                // Results of AWS calls only (not the identity mappings the keys are built from),
                // and only fresh ones.
                let parts = key_parts(&key);
                parts.as_ref()?;
                let entry = cache.peek(&key)?;
                let part = |pick: fn(&KeyParts<'_>) -> String| {
                    parts.as_ref().map_or(Value::nothing(span), |p| Value::string(pick(p), span))
                };
                Some(Value::record(
                    record! {
                        "key" => Value::string(key.clone(), span),
                        "account" => part(|p| p.account.to_string()),
                        "region" => part(|p| p.region.to_string()),
                        "service" => part(|p| p.service.to_string()),
                        "operation" => part(|p| p.operation.to_string()),
                        "tiers" => Value::list(tiers.iter().map(|t| Value::string(t.name(), span)).collect(), span),
                        "rows" => Value::int(entry.rows.len() as i64, span),
                        "age" => duration_value(cache.age(&entry), span),
                        "expires" => time_value(entry.expires_at, span),
                    },
                    span,
                ))
            })
            .collect();
        Ok(Value::list(rows, span).into_pipeline_data())
    }
}
