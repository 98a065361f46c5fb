//! `aws s3 head`: an object's metadata without its body, for one URL or a stream of them.

use std::sync::Arc;

use aws_core::engine::{Engine, FailureMode, Lane, Request, request_key};
use aws_core::s3::{BucketRouter, head_object};
use aws_core::s3::object::head_object_with;
use nu_engine::command_prelude::*;

use crate::engine::bulk::{BulkValues, engine_flags, engine_settings, error_row, local_rejection, with_no_error};
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
        engine_flags(cache_flags(session_flags(Signature::build(self.name()))))
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
        "Takes URLs as arguments or from the pipeline (strings, or the rows of `aws s3 ls`). Many objects are headed at once, as many as the service answers promptly (see --concurrency), and identical requests are made once. A failure for one object is a row naming it with an `error` column; the others still come (or, with --fail-fast, the first failure ends the command)."
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
            Example {
                description: "The objects that could not be headed, and why.",
                example: "[s3://my-bucket/README.txt s3://my-bucket/missing.txt] | aws s3 head | where error != null | select name error",
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
        let (settings, show_progress) = engine_settings(engine_state, stack, call)?;
        let urls = urls_from_args_or_input(args, input, call.head)?;
        let cs = Arc::new(CallSession::resolve(&self.ctx, engine_state, stack, call)?);
        let head = call.head;
        if single {
            // One object: a record, and a failure is the command's error.
            let Some(Ok(arg)) = urls.into_iter().next() else {
                return Ok(PipelineData::empty());
            };
            let url = parse_url(&arg)?;
            let interrupt = cs.interrupt();
            let scope = format!("{}/{}", url.bucket, url.key);
            let row = cs
                .read("s3", "HeadObject", scope, vec![], || head_object(&cs.session, &url, &interrupt))
                .map_err(|err| to_shell_error(err, &cs.spans_for(arg.span)))?;
            return Ok(row_to_value(row, head).into_pipeline_data());
        }

        let router = BucketRouter::single_attempt(&cs.session);
        let window = settings.dedup_window;
        let request = {
            let cs = cs.clone();
            move |arg: Result<Spanned<String>, ShellError>| {
                let url = match arg.and_then(|arg| parse_url(&arg)) {
                    Ok(url) => url,
                    Err(err) => return Request::Ready(Err(local_rejection(err))),
                };
                let scope = format!("{}/{}", url.bucket, url.key);
                if let Some(row) = cs.cached_row("s3", "HeadObject", &scope) {
                    return Request::Ready(Ok((row, None)));
                }
                let dedup_key = request_key(&cs.session, "HeadObject", &url.to_string());
                let router = router.clone();
                Request::Send(async move {
                    let row = Engine::global()
                        .rows
                        .run(&dedup_key, window, || head_object_with(router, url))
                        .await?;
                    Ok((row, Some(scope)))
                })
            }
        };
        let lane = Lane::of(&cs.session, "s3");
        let job = Engine::global().run(&lane, &settings, urls, request);
        let fail_fast = settings.job.mode == FailureMode::FailFast;
        let values = BulkValues::new(job, lane, &settings, "head", show_progress, engine_state.signals().clone(), head, move |outcome| {
            vec![match outcome.result {
                Ok((row, fetched)) => {
                    if let Some(scope) = fetched {
                        cs.store_row("s3", "HeadObject", &scope, row.clone());
                    }
                    with_no_error(row_to_value(row, head))
                }
                Err(err) => {
                    let (name, span) = match &outcome.item {
                        Ok(arg) => (arg.item.clone(), arg.span),
                        Err(_) => (String::new(), head),
                    };
                    if fail_fast {
                        let error = match outcome.item.and_then(|arg| parse_url(&arg)) {
                            Err(shell_error) => shell_error,
                            Ok(_) => to_shell_error(err, &cs.spans_for(span)),
                        };
                        return vec![Value::error(error, head)];
                    }
                    error_row(HEAD_COLUMNS, "name", name, err.to_string(), head)
                }
            }]
        });
        Ok(values.into_pipeline_data())
    }
}

/// The columns of a head row (see `aws_core::s3::object::head_object`).
const HEAD_COLUMNS: &[&str] = &["name", "size", "modified", "etag", "content_type", "storage_class", "version_id", "metadata"];
