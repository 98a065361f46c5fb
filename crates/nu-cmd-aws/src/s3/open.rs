//! `aws s3 open`: an object's contents, decoded by its extension with the same `from ...`
//! converters `open` uses, or as raw bytes. The body streams: nothing is buffered beyond what the
//! decoder or the next command holds.

use std::collections::HashMap;
use std::sync::Arc;

use aws_core::s3::get_object;
use nu_engine::{command_prelude::*, eval_call};
use nu_protocol::ast;
use nu_protocol::debugger::WithoutDebug;
use nu_protocol::shell_error::generic::GenericError;
use nu_protocol::{ByteStreamType, PipelineMetadata};

use crate::context::{AwsContext, CallSession, session_flags};
use crate::errors::to_shell_error;
use crate::s3::parse_url;

#[derive(Clone)]
pub struct S3Open {
    pub ctx: Arc<AwsContext>,
}

impl Command for S3Open {
    fn name(&self) -> &str {
        "aws s3 open"
    }

    fn signature(&self) -> Signature {
        session_flags(Signature::build(self.name()))
            .required("url", SyntaxShape::String, "The s3://bucket/key of the object.")
            .switch("raw", "Return the bytes as they are, without decoding by extension.", None)
            .input_output_types(vec![(Type::Nothing, Type::Any)])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Open an S3 object like `open` opens a file: decoded by its extension (json, csv, yaml, toml, ...) or raw."
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
        _input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        let arg: Spanned<String> = call.req(engine_state, stack, 0)?;
        let raw = call.has_flag(engine_state, stack, "raw")?;
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
        let Some((converter, ext)) = converter_for(engine_state, &url.key) else {
            return Ok(data);
        };
        let decode = ast::Call {
            decl_id: converter,
            head: call.head,
            arguments: vec![],
            parser_info: HashMap::new(),
        };
        eval_call::<WithoutDebug>(engine_state, stack, &decode, data).map_err(|inner| {
            ShellError::Generic(
                GenericError::new(
                    format!("Error while parsing as {ext}"),
                    format!("could not parse `{}` with `from {ext}`", arg.item),
                    arg.span,
                )
                .with_help(format!(
                    "See `help from {ext}`, or read the bytes with `aws s3 open --raw {}`.",
                    arg.item
                ))
                .with_inner([inner]),
            )
        })
    }
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
