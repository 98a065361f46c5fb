//! `aws tags`: the tags group (help only: this is nuaws's own, not an AWS CLI command).

use nu_engine::{command_prelude::*, get_full_help};

#[derive(Clone)]
pub struct AwsTags;

impl Command for AwsTags {
    fn name(&self) -> &str {
        "aws tags"
    }

    fn signature(&self) -> Signature {
        Signature::build(self.name())
            .input_output_types(vec![(Type::Nothing, Type::String)])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Resources of EC2 and S3 found and correlated by their tags."
    }

    fn extra_description(&self) -> &str {
        "`aws tags correlate Application` lists the instances, volumes, snapshots, security groups, VPCs and buckets carrying the tag key Application, sorted by its value, so that the resources of one application are together."
    }

    fn run(
        &self,
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
        _input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        Ok(Value::string(get_full_help(self, engine_state, stack, call.head), call.head)
            .into_pipeline_data())
    }
}
