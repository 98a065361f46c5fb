//! `aws s3 buckets`: the buckets this identity can list.

use std::sync::Arc;

use aws_core::s3::list_buckets;
use nu_engine::command_prelude::*;

use crate::context::{AwsContext, CallSession, cache_flags, session_flags};
use crate::errors::to_shell_error;
use crate::stream::RowStream;

#[derive(Clone)]
pub struct S3Buckets {
    pub ctx: Arc<AwsContext>,
}

impl Command for S3Buckets {
    fn name(&self) -> &str {
        "aws s3 buckets"
    }

    fn signature(&self) -> Signature {
        cache_flags(session_flags(Signature::build(self.name())))
            .input_output_types(vec![(Type::Nothing, Type::table())])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "List the S3 buckets of the account, with their region and creation time."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["list-buckets", "bucket"]
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "List every bucket.",
                example: "aws s3 buckets",
                result: None,
            },
            Example {
                description: "The newest three buckets.",
                example: "aws s3 buckets | sort-by created --reverse | first 3",
                result: None,
            },
        ]
    }

    crate::complete::completion_hook!(_cmd => None);

    fn run(
        &self,
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
        _input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        let cs = CallSession::resolve(&self.ctx, engine_state, stack, call)?;
        let session = cs.session.clone();
        let feed = cs
            .feed("s3", "ListBuckets", String::new(), vec![], || Ok(list_buckets(&session)))
            .map_err(|err| to_shell_error(err, &cs.spans))?;
        RowStream::new(feed, call.head, cs.spans, cs.signals.clone()).into_pipeline_data()
    }
}
