//! `aws s3 head`: an object's metadata without its body, for one URL or a stream of them.

use std::sync::Arc;

use aws_core::s3::head_object;
use nu_engine::command_prelude::*;

use crate::context::{AwsContext, CallSession, cache_flags, session_flags};
use crate::errors::to_shell_error;
use crate::s3::{parse_url, urls_from_args_or_input};
use crate::values::row_to_value;

#[derive(Clone)]
pub struct S3Head {
    pub ctx: Arc<AwsContext>,
}

impl Command for S3Head {
    fn name(&self) -> &str {
        "aws s3 head"
    }

    fn signature(&self) -> Signature {
        cache_flags(session_flags(Signature::build(self.name())))
            .rest("urls", SyntaxShape::String, "The s3://bucket/key URLs of the objects.")
            .input_output_types(vec![
                // One URL argument: a record; several: a table.
                (Type::Nothing, Type::Any),
                (Type::String, Type::table()),
                (Type::List(Box::new(Type::String)), Type::table()),
                (Type::record(), Type::table()),
                (Type::table(), Type::table()),
            ])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Show S3 objects' metadata (size, modified, etag, content type, storage class, user metadata) without downloading them."
    }

    fn extra_description(&self) -> &str {
        "Takes URLs as arguments or from the pipeline (strings, or the rows of `aws s3 ls`). A failure for one object is an error row naming it; the others still come."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["head-object", "metadata", "stat"]
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "Metadata of one object.",
                example: "aws s3 head s3://my-bucket/data/report.json",
                result: None,
            },
            Example {
                description: "Content types of everything under a prefix.",
                example: "aws s3 ls s3://my-bucket/data/ -R | aws s3 head | select name content_type",
                result: None,
            },
        ]
    }

    crate::complete::completion_hook!(_cmd => Some(crate::complete::Candidates::S3Path));

    fn run(
        &self,
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
        input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        let args: Vec<Spanned<String>> = call.rest(engine_state, stack, 0)?;
        let single = args.len() == 1;
        let urls = urls_from_args_or_input(args, input, call.head)?;
        let cs = CallSession::resolve(&self.ctx, engine_state, stack, call)?;
        let head = call.head;
        let interrupt = cs.interrupt();
        let head_one = move |arg: Spanned<String>| -> Result<Value, ShellError> {
            let url = parse_url(&arg)?;
            let scope = format!("{}/{}", url.bucket, url.key);
            cs.read("s3", "HeadObject", scope, vec![], || head_object(&cs.session, &url, &interrupt))
                .map(|row| row_to_value(row, head))
                .map_err(|err| to_shell_error(err, &cs.spans_for(arg.span)))
        };
        if single {
            // One object: a record, and a failure is the command's error.
            let Some(Ok(arg)) = urls.into_iter().next() else {
                return Ok(PipelineData::empty());
            };
            return Ok(head_one(arg)?.into_pipeline_data());
        }
        let signals = engine_state.signals().clone();
        Ok(urls
            .map(move |arg| match arg.and_then(&head_one) {
                Ok(value) => value,
                Err(err) => Value::error(err, head),
            })
            .into_pipeline_data(head, signals))
    }
}
