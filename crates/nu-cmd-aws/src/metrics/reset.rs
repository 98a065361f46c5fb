//! `aws metrics reset`: forget the figures, this shell's and the history on disk.

use std::sync::Arc;

use aws_core::metrics::clear_history;
use nu_engine::command_prelude::*;

use crate::context::AwsContext;

#[derive(Clone)]
pub struct MetricsReset {
    pub ctx: Arc<AwsContext>,
}

impl Command for MetricsReset {
    fn name(&self) -> &str {
        "aws metrics reset"
    }

    fn signature(&self) -> Signature {
        Signature::build(self.name())
            .input_output_types(vec![(Type::Nothing, Type::record())])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Forget the AWS request metrics: this shell's, and the history in the disk cache; returns what was removed."
    }

    fn extra_description(&self) -> &str {
        "Other nuaws processes still running keep their own figures, and add to the history again as they go on."
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![Example {
            description: "Start measuring afresh.",
            example: "aws metrics reset",
            result: None,
        }]
    }

    fn run(
        &self,
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
        _input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        let cache = self.ctx.cache(engine_state, stack);
        let operations = cache.metrics().snapshot().len();
        cache.metrics().reset();
        let hours = self
            .ctx
            .metrics_disk(engine_state, stack)
            .map_or(0, clear_history);
        let n = |n: usize| Value::int(i64::try_from(n).unwrap_or(i64::MAX), call.head);
        Ok(Value::record(
            record! {
                "operations" => n(operations),
                "hours" => n(hours),
            },
            call.head,
        )
        .into_pipeline_data())
    }
}
