//! `aws s3 save`: the pipeline's contents into an S3 object, like `save` writes a file: bytes and
//! strings as they are, structured data through the `to <ext>` converter of the key's extension.
//! It refuses to overwrite an existing object without `--force`. Large inputs go up in parts,
//! so memory stays bounded by one part whatever the size.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use aws_core::error::ErrorKind;
use aws_core::s3::{head_object, put_object};
use nu_engine::{command_prelude::*, eval_call};
use nu_protocol::ast;
use nu_protocol::debugger::WithoutDebug;
use nu_protocol::shell_error::generic::GenericError;

use crate::context::{AwsContext, CallSession, session_flags};
use crate::errors::to_shell_error;
use crate::s3::open::extensions;
use crate::s3::parse_url;

#[derive(Clone)]
pub struct S3Save {
    pub ctx: Arc<AwsContext>,
}

impl Command for S3Save {
    fn name(&self) -> &str {
        "aws s3 save"
    }

    fn signature(&self) -> Signature {
        session_flags(Signature::build(self.name()))
            .required("url", SyntaxShape::String, "The s3://bucket/key to write.")
            .switch("force", "Overwrite the object if it exists.", Some('f'))
            .switch("raw", "Save strings and bytes as they are, without `to <ext>` conversion.", None)
            .named(
                "content-type",
                SyntaxShape::String,
                "Content type to store (default: guessed from the extension).",
                None,
            )
            .input_output_types(vec![(Type::Any, Type::Nothing)])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Save the pipeline's contents to an S3 object, like `save` writes a file."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["put-object", "upload", "write"]
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "Save a table as JSON (converted by the extension).",
                example: "[[name size]; [a 1] [b 2]] | aws s3 save --force s3://my-bucket/data/sizes.json",
                result: None,
            },
            Example {
                description: "Upload a local file as it is, whatever its size.",
                example: "open --raw notes.txt | aws s3 save --force s3://my-bucket/backup/notes.txt",
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
        let arg: Spanned<String> = call.req(engine_state, stack, 0)?;
        let force = call.has_flag(engine_state, stack, "force")?;
        let raw = call.has_flag(engine_state, stack, "raw")?;
        let content_type: Option<String> = call.get_flag(engine_state, stack, "content-type")?;
        let url = parse_url(&arg)?;
        if url.key.is_empty() || url.key.ends_with('/') {
            return Err(ShellError::Generic(
                GenericError::new(
                    "No object key",
                    format!("`{}` names a prefix, not an object", arg.item),
                    arg.span,
                )
                .with_help("Give the full key to write, for example s3://bucket/dir/file.json."),
            ));
        }
        let input = if raw {
            input
        } else {
            convert_by_extension(engine_state, stack, call.head, &url.key, input)?
        };
        let mut reader = input_reader(input, raw, call.head)?;

        let cs = CallSession::resolve(&self.ctx, engine_state, stack, call)?;
        let spans = cs.spans_for(arg.span);
        let interrupt = cs.interrupt();
        if !force {
            match head_object(&cs.session, &url, &interrupt) {
                Ok(_) => {
                    return Err(ShellError::Generic(
                        GenericError::new(
                            "Object already exists",
                            format!("`{}` already exists", arg.item),
                            arg.span,
                        )
                        .with_help("Use --force (-f) to overwrite it.")
                        .with_code("nuaws::s3::exists"),
                    ));
                }
                Err(err) if err.kind == ErrorKind::NotFound && err.code.as_deref() != Some("NoSuchBucket") => {}
                Err(err) => return Err(to_shell_error(err, &spans)),
            }
        }
        let content_type = content_type.or_else(|| guess_content_type(&url.key).map(str::to_string));
        let result = put_object(&cs.session, &url, &mut reader, content_type.as_deref(), &interrupt);
        cs.objects_written(&url.bucket, std::slice::from_ref(&url.key));
        result.map_err(|err| to_shell_error(err, &spans))?;
        Ok(PipelineData::empty())
    }
}

/// Structured values go through `to <ext>` of the key's extension, as `save` does.
fn convert_by_extension(
    engine_state: &EngineState,
    stack: &mut Stack,
    head: Span,
    key: &str,
    input: PipelineData,
) -> Result<PipelineData, ShellError> {
    let structured = match &input {
        PipelineData::Value(Value::String { .. } | Value::Binary { .. }, _) => false,
        PipelineData::ByteStream(..) | PipelineData::Empty => false,
        PipelineData::Value(..) | PipelineData::ListStream(..) => true,
    };
    if !structured {
        return Ok(input);
    }
    let converter = extensions(key).into_iter().find_map(|ext| {
        engine_state.find_decl(format!("to {ext}").as_bytes(), &[])
    });
    match converter {
        Some(decl_id) => {
            let to = ast::Call {
                decl_id,
                head,
                arguments: vec![],
                parser_info: HashMap::new(),
            };
            eval_call::<WithoutDebug>(engine_state, stack, &to, input)
        }
        None => Ok(input),
    }
}

/// A reader over what is left to upload: bytes and strings as they are. Structure left here
/// had no converter, or `--raw` asked for none.
fn input_reader(input: PipelineData, raw: bool, head: Span) -> Result<Box<dyn Read + Send>, ShellError> {
    match input {
        PipelineData::ByteStream(stream, ..) => match stream.reader() {
            Some(reader) => Ok(Box::new(reader)),
            None => Ok(Box::new(std::io::empty())),
        },
        PipelineData::Value(Value::String { val, .. }, ..) => Ok(Box::new(std::io::Cursor::new(val.into_bytes()))),
        PipelineData::Value(Value::Binary { val, .. }, ..) => Ok(Box::new(std::io::Cursor::new(val))),
        PipelineData::Empty => Ok(Box::new(std::io::empty())),
        PipelineData::Value(Value::Error { error, .. }, ..) => Err(*error),
        other => {
            let (msg, help) = if raw {
                (
                    format!("--raw writes text and bytes as they are, and the input is {}", other.get_type()),
                    "Drop --raw to convert by the key's extension, or convert first, e.g. `| to json | aws s3 save --raw ...`.",
                )
            } else {
                (
                    format!("no `to` converter for this key, and the input is {}", other.get_type()),
                    "Give the key an extension with a converter (.json, .csv, .yaml, .nuon, ...) or convert first, e.g. `| to json | aws s3 save ...`.",
                )
            };
            Err(ShellError::Generic(GenericError::new("Cannot save structured data", msg, head).with_help(help)))
        }
    }
}

fn guess_content_type(key: &str) -> Option<&'static str> {
    let ext = extensions(key).pop()?;
    Some(match ext.as_str() {
        "json" => "application/json",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "toml" => "application/toml",
        "nuon" => "application/x-nuon",
        "gz" => "application/gzip",
        "zip" => "application/zip",
        "parquet" => "application/vnd.apache.parquet",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => return None,
    })
}
