//! `aws s3 open`: an object's contents, decoded by its extension with the same `from ...`
//! converters `open` uses, or as raw bytes. The body streams: nothing is buffered beyond what the
//! decoder or the next command holds.

use std::collections::HashMap;
use std::sync::Arc;

use aws_core::engine::{Engine, FailureMode, Lane, Request, request_key};
use aws_core::s3::get_object;
use aws_core::s3::transfer::read_object;
use nu_engine::{command_prelude::*, eval_call};
use nu_protocol::ast;
use nu_protocol::debugger::WithoutDebug;
use nu_protocol::shell_error::generic::GenericError;
use nu_protocol::{ByteStreamType, PipelineMetadata};

use crate::engine::bulk::{BulkValues, engine_flags, engine_settings, error_row, local_rejection};
use crate::context::{AwsContext, CallSession, session_flags};
use crate::errors::to_shell_error;
use crate::s3::{parse_url, urls_from_args_or_input};

#[derive(Clone)]
pub struct S3Open {
    pub ctx: Arc<AwsContext>,
}

impl Command for S3Open {
    fn name(&self) -> &str {
        "aws s3 open"
    }

    fn signature(&self) -> Signature {
        engine_flags(session_flags(Signature::build(self.name())))
            .optional("url", SyntaxShape::String, "The s3://bucket/key of the object (else URLs come from the pipeline).")
            .switch("raw", "Return the bytes as they are, without decoding by extension.", None)
            .input_output_types(vec![
                (Type::Nothing, Type::Any),
                (Type::String, Type::table()),
                (Type::List(Box::new(Type::String)), Type::table()),
                (Type::table(), Type::table()),
            ])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Open an S3 object like `open` opens a file: decoded by its extension (json, csv, yaml, toml, ...) or raw."
    }

    fn extra_description(&self) -> &str {
        "With a URL argument, the object's contents stream out as they download. With URLs from the pipeline (strings, or the rows of `aws s3 ls`), many objects are read at once and each becomes a row {name, content, error}: a failure is that object's row, the others still come (or, with --fail-fast, it ends the command)."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["get-object", "download", "cat", "read"]
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "Read a JSON object as a record.",
                example: "aws s3 open s3://my-bucket/data/report.json",
                result: None,
            },
            Example {
                description: "A CSV object as a table, filtered.",
                example: "aws s3 open s3://my-bucket/data/users.csv | where active == 'true'",
                result: None,
            },
            Example {
                description: "Every JSON report under a prefix, read many at once, as one table.",
                example: "aws s3 ls s3://my-bucket/data/ -R | where name ends-with .json | aws s3 open | get content",
                result: None,
            },
            Example {
                description: "The raw bytes, saved to a local file.",
                example: "aws s3 open --raw s3://my-bucket/data/report.json | save --force report.json",
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
        let raw = call.has_flag(engine_state, stack, "raw")?;
        let Some(arg) = call.opt::<Spanned<String>>(engine_state, stack, 0)? else {
            return self.open_many(engine_state, stack, call, input, raw);
        };
        let url = parse_url(&arg)?;
        if url.key.is_empty() || url.key.ends_with('/') {
            return Err(ShellError::Generic(
                GenericError::new(
                    "Not an object",
                    format!("`{}` is a prefix, not an object", arg.item),
                    arg.span,
                )
                .with_help("Name an object's full key; `aws s3 ls` shows what is under a prefix."),
            ));
        }
        let cs = CallSession::resolve(&self.ctx, engine_state, stack, call)?;
        let body = get_object(&cs.session, &url, cs.interrupt())
            .map_err(|err| to_shell_error(err, &cs.spans_for(arg.span)))?;
        let content_type = body.content_type.clone();
        let stream_type = if raw {
            ByteStreamType::Binary
        } else {
            ByteStreamType::Unknown
        };
        let stream = ByteStream::read(body, call.head, cs.signals.clone(), stream_type);
        let metadata = PipelineMetadata {
            content_type,
            ..Default::default()
        };
        let data = PipelineData::byte_stream(stream, Some(metadata));
        if raw {
            return Ok(data);
        }
        decode_by_extension(engine_state, stack, &arg.item, data, call.head, arg.span)
    }
}

impl S3Open {
    /// Many objects from the pipeline, read concurrently through the engine, one row each.
    fn open_many(
        &self,
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
        input: PipelineData,
        raw: bool,
    ) -> Result<PipelineData, ShellError> {
        let head = call.head;
        let (settings, show_progress) = engine_settings(engine_state, stack, call)?;
        let urls = urls_from_args_or_input(vec![], input, head)?;
        let cs = Arc::new(CallSession::resolve(&self.ctx, engine_state, stack, call)?);
        let router = aws_core::s3::BucketRouter::single_attempt(&cs.session);
        let window = settings.dedup_window;
        let session = cs.session.clone();
        let request = move |arg: Result<Spanned<String>, ShellError>| {
            let url = match arg.and_then(|arg| parse_url(&arg)) {
                Ok(url) => url,
                Err(err) => return Request::Ready(Err(local_rejection(err))),
            };
            let key = request_key(&session, "GetObject", &url.to_string());
            let router = router.clone();
            Request::Send(async move { Engine::global().bodies.run(&key, window, || read_object(router, url)).await })
        };
        let lane = Lane::of(&cs.session, "s3");
        let job = Engine::global().run(&lane, &settings, urls, request);
        let (engine_state, mut stack) = (engine_state.clone(), stack.clone());
        let values = BulkValues::new(job, lane, &settings, "open", show_progress, engine_state.signals().clone(), head, move |outcome| {
            let (name, span) = match &outcome.item {
                Ok(arg) => (arg.item.clone(), arg.span),
                Err(_) => (String::new(), head),
            };
            // The failure as the command's error (fail-fast) and as an error row's text.
            let content = match outcome.result {
                Ok((bytes, _content_type)) => decode(&engine_state, &mut stack, &name, bytes, raw, head, span).map_err(|err| {
                    let text = err.to_string();
                    (err, text)
                }),
                Err(err) => {
                    let text = err.to_string();
                    let error = match outcome.item {
                        Err(shell_error) => shell_error,
                        Ok(_) => to_shell_error(err, &cs.spans_for(span)),
                    };
                    Err((error, text))
                }
            };
            vec![match content {
                Ok(content) => Value::record(
                    record! { "name" => Value::string(name, head), "content" => content, "error" => Value::nothing(head) },
                    head,
                ),
                Err((err, _)) if settings.job.mode == FailureMode::FailFast => Value::error(err, head),
                Err((_, text)) => error_row(&["name", "content"], "name", name, text, head),
            }]
        });
        Ok(values.into_pipeline_data())
    }
}

/// An object's bytes as a value: decoded by its key's extension unless `raw`, else text when it
/// is UTF-8, else binary.
fn decode(
    engine_state: &EngineState,
    stack: &mut Stack,
    name: &str,
    bytes: aws_core::s3::transfer::Bytes,
    raw: bool,
    head: Span,
    span: Span,
) -> Result<Value, ShellError> {
    if raw {
        return Ok(Value::binary(bytes.to_vec(), head));
    }
    let value = match String::from_utf8(bytes.to_vec()) {
        Ok(text) => Value::string(text, head),
        Err(not_text) => return Ok(Value::binary(not_text.into_bytes(), head)),
    };
    decode_by_extension(engine_state, stack, name, PipelineData::value(value, None), head, span)?.into_value(head)
}

/// `data` decoded with the `from <ext>` command of `name`'s extension, as `open` does (as it is
/// when there is none). A failure points at `span`, the object's URL.
fn decode_by_extension(
    engine_state: &EngineState,
    stack: &mut Stack,
    name: &str,
    data: PipelineData,
    head: Span,
    span: Span,
) -> Result<PipelineData, ShellError> {
    let Some((converter, ext)) = converter_for(engine_state, name) else {
        return Ok(data);
    };
    let call = ast::Call {
        decl_id: converter,
        head,
        arguments: vec![],
        parser_info: HashMap::new(),
    };
    eval_call::<WithoutDebug>(engine_state, stack, &call, data).map_err(|inner| {
        ShellError::Generic(
            GenericError::new(format!("Error while parsing as {ext}"), format!("could not parse `{name}` with `from {ext}`"), span)
                .with_help(format!("See `help from {ext}`, or read the bytes with `aws s3 open --raw {name}`."))
                .with_inner([inner]),
        )
    })
}

/// The `from <ext>` command for a key, trying the longest extension first (`a.tar.gz`: `tar.gz`,
/// then `gz`), as `open` does.
pub(crate) fn converter_for(
    engine_state: &EngineState,
    key: &str,
) -> Option<(nu_protocol::DeclId, String)> {
    extensions(key).into_iter().find_map(|ext| {
        engine_state
            .find_decl(format!("from {ext}").as_bytes(), &[])
            .map(|id| (id, ext))
    })
}

/// The extensions of a key's last path segment, longest first, lowercased.
pub(crate) fn extensions(key: &str) -> Vec<String> {
    let file = key.rsplit('/').next().unwrap_or(key).to_lowercase();
    let parts: Vec<&str> = file.split('.').collect();
    (1..parts.len())
        .filter(|&i| !(i == 1 && parts[0].is_empty() && parts.len() == 2)) // ".env" is a name
        .map(|i| parts[i..].join("."))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::extensions;

    #[test]
    fn extensions_longest_first() {
        assert_eq!(extensions("a/b/data.tar.gz"), ["tar.gz", "gz"]);
        assert_eq!(extensions("x/Report.JSON"), ["json"]);
        assert!(extensions("dir/README").is_empty());
        assert!(extensions(".env").is_empty());
    }
}
