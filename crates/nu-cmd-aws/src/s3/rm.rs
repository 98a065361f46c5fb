//! `aws s3 rm`: delete objects given as URLs or streamed in (for example from `aws s3 ls`), in
//! batches of up to 1000 keys per DeleteObjects request; one result row per key.

use std::sync::Arc;

use aws_core::engine::{Engine, FailureMode, Lane, Request};
use aws_core::s3::object::{DELETE_BATCH, delete_objects_with};
use aws_core::s3::S3Url;
use nu_engine::command_prelude::*;
use nu_protocol::shell_error::generic::GenericError;

use crate::engine::bulk::{BulkValues, engine_flags, engine_settings, local_rejection};
use crate::context::{AwsContext, CallSession, session_flags};
use crate::errors::to_shell_error;
use crate::s3::{objects_below, parse_url, urls_from_args_or_input};

#[derive(Clone)]
pub struct S3Rm {
    pub ctx: Arc<AwsContext>,
}

impl Command for S3Rm {
    fn name(&self) -> &str {
        "aws s3 rm"
    }

    fn signature(&self) -> Signature {
        engine_flags(session_flags(Signature::build(self.name())))
            .rest("urls", SyntaxShape::String, "The s3://bucket/key URLs to delete.")
            .switch(
                "recursive",
                "Delete everything below each URL, taken as a prefix.",
                Some('R'),
            )
            .input_output_types(vec![
                (Type::Nothing, Type::table()),
                (Type::String, Type::table()),
                (Type::List(Box::new(Type::String)), Type::table()),
                (Type::record(), Type::table()),
                (Type::table(), Type::table()),
            ])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Delete S3 objects, many per request; one row per key with whether it was deleted."
    }

    fn extra_description(&self) -> &str {
        "Keys come as arguments or from the pipeline (strings, or the rows of `aws s3 ls`; dir rows are skipped). They are deleted in batches of up to 1000 per request, several batches at once, so deleting a whole listing streams in constant memory. Each key gets a row; with --fail-fast the first key that could not be deleted ends the command. A URL ending in / is refused unless --recursive."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["delete-objects", "delete", "remove"]
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "Delete one object.",
                example: "aws s3 rm s3://my-bucket/tmp/old.txt",
                result: None,
            },
            Example {
                description: "Delete every object of a prefix older than 30 days, and count what was deleted.",
                example: "aws s3 ls s3://my-bucket/tmp/ -R | where modified < ((date now) - 30day) | aws s3 rm | where deleted | length",
                result: None,
            },
            Example {
                description: "Delete everything below a prefix.",
                example: "aws s3 rm --recursive s3://my-bucket/tmp/",
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
        let recursive = call.has_flag(engine_state, stack, "recursive")?;
        let urls = urls_from_args_or_input(args, input, call.head)?;
        let cs = Arc::new(CallSession::resolve(&self.ctx, engine_state, stack, call)?);
        let head = call.head;

        let keys: Box<dyn Iterator<Item = Result<(S3Url, Span), ShellError>> + Send> = if recursive {
            let cs = cs.clone();
            Box::new(urls.flat_map(move |arg| expand_prefix(&cs, arg, head)))
        } else {
            Box::new(urls.map(|arg| {
                let arg = arg?;
                let url = parse_url(&arg)?;
                if url.key.is_empty() || url.key.ends_with('/') {
                    return Err(ShellError::Generic(
                        GenericError::new(
                            "Refusing to delete a prefix",
                            format!("`{}` is a prefix, not an object", arg.item),
                            arg.span,
                        )
                        .with_help("Add --recursive to delete everything below it."),
                    ));
                }
                Ok((url, arg.span))
            }))
        };
        let (settings, show_progress) = engine_settings(engine_state, stack, call)?;
        let batches = Batches {
            keys,
            pending: None,
            ready: None,
        };
        let router = aws_core::s3::BucketRouter::single_attempt(&cs.session);
        let request = {
            let cs = cs.clone();
            move |batch: Result<Batch, ShellError>| {
                let batch = match batch {
                    Ok(batch) => batch,
                    Err(err) => return Request::Ready(Err(local_rejection(err))),
                };
                // Listings that show these keys are stale from now on (again once deleted, in
                // case one was cached meanwhile).
                cs.objects_written(&batch.bucket, &batch.keys);
                Request::Send(delete_objects_with(router.clone(), batch.bucket, batch.keys))
            }
        };
        let lane = Lane::of(&cs.session, "s3");
        let job = Engine::global().run(&lane, &settings, batches, request);
        let fail_fast = settings.job.mode == FailureMode::FailFast;
        let values = BulkValues::new(job, lane, &settings, "delete", show_progress, engine_state.signals().clone(), head, move |outcome| {
            let batch = match outcome.item {
                Ok(batch) => batch,
                Err(err) => return vec![Value::error(err, head)],
            };
            cs.objects_written(&batch.bucket, &batch.keys);
            match outcome.result {
                Ok(deleted) => deleted
                    .into_iter()
                    .map(|o| match o.error {
                        Some(reason) if fail_fast => Value::error(
                            ShellError::Generic(
                                GenericError::new(format!("Could not delete {}", o.url), reason, batch.span)
                                    .with_help("Check the identity's permissions on this key, or drop --fail-fast to see every key's outcome."),
                            ),
                            head,
                        ),
                        error => Value::record(
                            record! {
                                "name" => Value::string(o.url.to_string(), head),
                                "deleted" => Value::bool(error.is_none(), head),
                                "error" => error.map_or(Value::nothing(head), |e| Value::string(e, head)),
                            },
                            head,
                        ),
                    })
                    .collect(),
                Err(err) if fail_fast => vec![Value::error(to_shell_error(err, &cs.spans_for(batch.span)), head)],
                // Every key of a failed batch gets its row naming it.
                Err(err) => batch
                    .keys
                    .iter()
                    .map(|key| {
                        Value::record(
                            record! {
                                "name" => Value::string(S3Url::new(batch.bucket.as_str(), key.clone()).to_string(), head),
                                "deleted" => Value::bool(false, head),
                                "error" => Value::string(err.to_string(), head),
                            },
                            head,
                        )
                    })
                    .collect(),
            }
        });
        Ok(values.into_pipeline_data())
    }
}

/// Every object below one URL, listed as it is deleted.
fn expand_prefix(
    cs: &Arc<CallSession>,
    arg: Result<Spanned<String>, ShellError>,
    head: Span,
) -> Box<dyn Iterator<Item = Result<(S3Url, Span), ShellError>> + Send> {
    match arg.and_then(|arg| parse_url(&arg).map(|url| (url, arg.span))) {
        Ok((url, span)) => Box::new(objects_below(cs, url, span, head).map(move |url| url.map(|url| (url, span)))),
        Err(err) => Box::new(std::iter::once(Err(err))),
    }
}

/// Up to [`DELETE_BATCH`] keys of one bucket, deleted in one request.
#[derive(Clone)]
struct Batch {
    bucket: String,
    keys: Vec<String>,
    /// The span of the argument the first key came from.
    span: Span,
}

/// Groups a stream of keys into batches (one bucket, at most 1000 keys), passing input errors
/// through in their place.
struct Batches {
    keys: Box<dyn Iterator<Item = Result<(S3Url, Span), ShellError>> + Send>,
    pending: Option<Batch>,
    /// An input error met while a batch was being filled: handed out after that batch.
    ready: Option<ShellError>,
}

impl Iterator for Batches {
    type Item = Result<Batch, ShellError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(err) = self.ready.take() {
            return Some(Err(err));
        }
        loop {
            match self.keys.next() {
                None => return self.pending.take().map(Ok),
                Some(Err(err)) => match self.pending.take() {
                    Some(batch) => {
                        self.ready = Some(err);
                        return Some(Ok(batch));
                    }
                    None => return Some(Err(err)),
                },
                Some(Ok((url, span))) => {
                    let fits = matches!(&self.pending, Some(b) if b.bucket == url.bucket && b.keys.len() < DELETE_BATCH);
                    let full = if fits { None } else { self.pending.take() };
                    let batch = self.pending.get_or_insert_with(|| Batch {
                        bucket: url.bucket.clone(),
                        keys: Vec::new(),
                        span,
                    });
                    batch.keys.push(url.key);
                    if let Some(full) = full {
                        return Some(Ok(full));
                    }
                }
            }
        }
    }
}
