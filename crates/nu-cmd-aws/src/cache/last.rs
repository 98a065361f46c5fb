//! `aws cache last`: which tier served the latest AWS read of this shell, and how old it was.

use std::sync::Arc;

use nu_engine::command_prelude::*;

use crate::cache::{duration_value, time_value};
use crate::context::AwsContext;

#[derive(Clone)]
pub struct CacheLast {
    pub ctx: Arc<AwsContext>,
}

impl Command for CacheLast {
    fn name(&self) -> &str {
        "aws cache last"
    }

    fn signature(&self) -> Signature {
        Signature::build(self.name())
            .input_output_types(vec![(Type::Nothing, Type::Any)])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Show where the latest AWS read came from (memory, disk or network) and the age of its data."
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![Example {
            description: "Was that listing fresh?",
            example: "aws ec2 instances | length; aws cache last | select tier age",
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
        let Some(last) = self.ctx.last() else {
            return Ok(Value::nothing(span).into_pipeline_data());
        };
        let age = last.at.duration_since(last.fetched_at).unwrap_or_default();
        let key = last.key.map_or(Value::nothing(span), |k| Value::string(k, span));
        Ok(Value::record(
            record! {
                "command" => Value::string(last.command, span),
                "tier" => Value::string(last.tier.name(), span),
                "age" => duration_value(age, span),
                "fetched_at" => time_value(last.fetched_at, span),
                "key" => key,
            },
            span,
        )
        .into_pipeline_data())
    }
}
