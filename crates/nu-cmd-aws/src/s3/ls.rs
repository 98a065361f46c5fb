//! `aws s3 ls`: objects under a prefix as a table shaped like Nushell's `ls`, streamed page by
//! page; without a URL, the buckets.

use std::sync::Arc;

use aws_core::row::{Field, Row};
use aws_core::s3::{ListObjects, list_buckets, list_objects};
use nu_engine::command_prelude::*;

use crate::context::{AwsContext, CallSession, cache_flags, session_flags};
use crate::errors::to_shell_error;
use crate::s3::{page_size_flag, parse_url};
use crate::stream::RowStream;

#[derive(Clone)]
pub struct S3Ls {
    pub ctx: Arc<AwsContext>,
}

impl Command for S3Ls {
    fn name(&self) -> &str {
        "aws s3 ls"
    }

    fn signature(&self) -> Signature {
        cache_flags(session_flags(Signature::build(self.name())))
            .optional(
                "url",
                SyntaxShape::String,
                "The s3://bucket/prefix to list (S3 prefix semantics); without it, the buckets.",
            )
            .switch(
                "recursive",
                "List every object below the prefix instead of one level.",
                Some('R'),
            )
            .named(
                "page-size",
                SyntaxShape::Int,
                "Keys per ListObjectsV2 request, 1 to 1000 (default 1000).",
                None,
            )
            .input_output_types(vec![(Type::Nothing, Type::table())])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "List S3 objects like `ls`: name, type, size, modified, etag and storage class."
    }

    fn extra_description(&self) -> &str {
        "One level at a time, with common prefixes as `dir` rows, or everything below with --recursive. Results stream: `first 5` on a bucket of millions fetches one page (and at most one more in advance), and Ctrl-C stops at once. A recursive listing that proves big (its second page is taken) is split into key ranges listed at once, so far regions cost little more than near ones; rows still come in key order.
The URL is an S3 prefix, as for the AWS CLI: s3://b/data matches data/... and data.csv; end it with / to stay inside the directory."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["list-objects", "objects", "keys"]
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "List the top level of a bucket.",
                example: "aws s3 ls s3://my-bucket/",
                result: None,
            },
            Example {
                description: "The ten largest objects below a prefix.",
                example: "aws s3 ls s3://my-bucket/logs/ --recursive | sort-by size --reverse | first 10",
                result: None,
            },
            Example {
                description: "Total size of a prefix.",
                example: "aws s3 ls s3://my-bucket/logs/ --recursive | get size | math sum",
                result: None,
            },
            Example {
                description: "Objects modified in the last day.",
                example: "aws s3 ls s3://my-bucket/ -R | where modified > ((date now) - 1day)",
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
        let url: Option<Spanned<String>> = call.opt(engine_state, stack, 0)?;
        let recursive = call.has_flag(engine_state, stack, "recursive")?;
        let page_size = page_size_flag(engine_state, stack, call)?;
        let parsed = url.as_ref().map(parse_url).transpose()?;
        let cs = CallSession::resolve(&self.ctx, engine_state, stack, call)?;
        let session = cs.session.clone();
        let stream = match (parsed, &url) {
            (Some(parsed), Some(arg)) => {
                let spans = cs.spans_for(arg.span);
                let scope = format!("{}/{}", parsed.bucket, parsed.key);
                let request = ListObjects {
                    page_size,
                    ..ListObjects::new(parsed, recursive)
                };
                let params = vec![("recursive", recursive.to_string())];
                let feed = cs
                    .feed("s3", "ListObjectsV2", scope, params, || Ok(list_objects(&session, request)))
                    .map_err(|err| to_shell_error(err, &spans))?;
                RowStream::new(feed, call.head, spans, cs.signals.clone())
            }
            _ => {
                let feed = cs
                    .feed("s3", "ListBuckets", String::new(), vec![], || Ok(list_buckets(&session)))
                    .map_err(|err| to_shell_error(err, &cs.spans))?;
                RowStream::new(feed, call.head, cs.spans, cs.signals.clone()).map_rows(bucket_as_ls_row)
            }
        };
        stream.into_pipeline_data()
    }
}

/// A bucket in the shape of the object rows, as `aws s3 ls` without a URL shows them.
fn bucket_as_ls_row(bucket: Row) -> Row {
    let name = bucket.get("name").and_then(Field::as_str).unwrap_or_default();
    Row::new()
        .with("name", Field::Text(format!("s3://{name}/")))
        .with("type", Field::Text("bucket".into()))
        .with("size", Field::Null)
        .with("modified", bucket.get("created").cloned().unwrap_or(Field::Null))
        .with("etag", Field::Null)
        .with("storage_class", Field::Null)
}
