//! `aws s3 rm`: delete objects given as URLs or streamed in (for example from `aws s3 ls`), in
//! batches of up to 1000 keys per DeleteObjects request; one result row per key.

use std::sync::Arc;

use aws_core::s3::object::DELETE_BATCH;
use aws_core::cache::RowFeed;
use aws_core::s3::{ListObjects, S3Url, delete_objects, list_objects};
use nu_engine::command_prelude::*;
use nu_protocol::shell_error::generic::GenericError;

use crate::context::{AwsContext, CallSession, session_flags, stale_after_object_writes};
use crate::errors::to_shell_error;
use crate::s3::{parse_url, url_of_value, urls_from_args_or_input};
use crate::stream::RowStream;

#[derive(Clone)]
pub struct S3Rm {
    pub ctx: Arc<AwsContext>,
}

impl Command for S3Rm {
    fn name(&self) -> &str {
        "aws s3 rm"
    }

    fn signature(&self) -> Signature {
        session_flags(Signature::build(self.name()))
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
        "Keys come as arguments or from the pipeline (strings, or the rows of `aws s3 ls`; dir rows are skipped). They are deleted in batches of up to 1000 per request, so deleting a whole listing streams in constant memory. A URL ending in / is refused unless --recursive."
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
        let batches = Batches {
            keys,
            pending: None,
            done: Vec::new().into_iter(),
            cs,
            head,
        };
        Ok(batches.into_pipeline_data(head, engine_state.signals().clone()))
    }
}

/// Every object below one URL, listed as it is deleted.
fn expand_prefix(
    cs: &Arc<CallSession>,
    arg: Result<Spanned<String>, ShellError>,
    head: Span,
) -> Box<dyn Iterator<Item = Result<(S3Url, Span), ShellError>> + Send> {
    let arg = match arg.and_then(|arg| parse_url(&arg).map(|url| (url, arg.span))) {
        Ok(arg) => arg,
        Err(err) => return Box::new(std::iter::once(Err(err))),
    };
    let (url, span) = arg;
    let listing = RowStream::new(
        RowFeed::live(list_objects(&cs.session, ListObjects::new(url, true))),
        head,
        cs.spans_for(span),
        cs.signals.clone(),
    );
    Box::new(listing.filter_map(url_of_value).map(move |name| {
        let name = name?;
        Ok((S3Url::parse(&name.item).map_err(|e| crate::errors::url_error(e, &name))?, span))
    }))
}

/// Groups keys into DeleteObjects batches (one bucket, at most 1000 keys) and yields a row per key.
struct Batches {
    keys: Box<dyn Iterator<Item = Result<(S3Url, Span), ShellError>> + Send>,
    /// The batch being filled: bucket, keys, span of the first argument.
    pending: Option<(String, Vec<String>, Span)>,
    done: std::vec::IntoIter<Value>,
    cs: Arc<CallSession>,
    head: Span,
}

impl Batches {
    fn flush(&mut self) -> Vec<Value> {
        let Some((bucket, keys, span)) = self.pending.take() else {
            return Vec::new();
        };
        let interrupt = self.cs.interrupt();
        let result = delete_objects(&self.cs.session, &bucket, &keys, &interrupt);
        // Whatever happened, listings that may have shown these keys are stale now.
        self.cs.cache.invalidate(&stale_after_object_writes(&bucket, &keys));
        match result {
            Ok(outcomes) => outcomes
                .into_iter()
                .map(|o| {
                    Value::record(
                        record! {
                            "name" => Value::string(o.url.to_string(), self.head),
                            "deleted" => Value::bool(o.error.is_none(), self.head),
                            "error" => o.error.map_or(Value::nothing(self.head), |e| Value::string(e, self.head)),
                        },
                        self.head,
                    )
                })
                .collect(),
            Err(err) => vec![Value::error(to_shell_error(err, &self.cs.spans_for(span)), self.head)],
        }
    }
}

impl Iterator for Batches {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(v) = self.done.next() {
                return Some(v);
            }
            match self.keys.next() {
                None => {
                    if self.pending.is_none() {
                        return None;
                    }
                    self.done = self.flush().into_iter();
                }
                Some(Err(err)) => return Some(Value::error(err, self.head)),
                Some(Ok((url, span))) => {
                    let same_bucket = matches!(&self.pending, Some((b, k, _)) if *b == url.bucket && k.len() < DELETE_BATCH);
                    if !same_bucket {
                        self.done = self.flush().into_iter();
                        self.pending = Some((url.bucket, Vec::new(), span));
                    }
                    if let Some((_, keys, _)) = &mut self.pending {
                        keys.push(url.key);
                    }
                }
            }
        }
    }
}
