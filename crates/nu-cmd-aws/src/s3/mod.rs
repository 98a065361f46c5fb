//! The `aws s3` commands. Every S3 location is an `s3://bucket/key` URL; commands that take many
//! take them as arguments or from the pipeline (strings, or the rows of `aws s3 ls`).

mod buckets;
mod cp;
mod du;
mod head;
mod ls;
mod open;
mod rm;
mod s3_;
mod save;
mod sync;

use std::sync::Arc;

use aws_core::cache::RowFeed;
use aws_core::s3::{ListObjects, S3Url, list_objects};
use nu_engine::command_prelude::*;

use crate::context::{AwsContext, CallSession};
use crate::errors::url_error;
use crate::stream::RowStream;

pub use buckets::S3Buckets;
pub use cp::S3Cp;
pub use du::S3Du;
pub use head::S3Head;
pub use ls::S3Ls;
pub use open::S3Open;
pub use rm::S3Rm;
pub use s3_::S3;
pub use save::S3Save;
pub use sync::S3Sync;

pub(crate) fn add_commands(working_set: &mut StateWorkingSet, ctx: &Arc<AwsContext>) {
    let ctx = || ctx.clone();
    working_set.add_decl(Box::new(S3Buckets { ctx: ctx() }));
    working_set.add_decl(Box::new(S3Ls { ctx: ctx() }));
    working_set.add_decl(Box::new(S3Open { ctx: ctx() }));
    working_set.add_decl(Box::new(S3Save { ctx: ctx() }));
    working_set.add_decl(Box::new(S3Head { ctx: ctx() }));
    working_set.add_decl(Box::new(S3Rm { ctx: ctx() }));
    working_set.add_decl(Box::new(S3Cp { ctx: ctx() }));
    working_set.add_decl(Box::new(S3Sync { ctx: ctx() }));
    working_set.add_decl(Box::new(S3Du { ctx: ctx() }));
}

/// The `--page-size` flag of a listing command: keys per ListObjectsV2 request, 1 to 1000
/// (default 1000).
pub(crate) fn page_size_flag(engine_state: &EngineState, stack: &mut Stack, call: &Call) -> Result<i32, ShellError> {
    let page_size: Option<Spanned<i64>> = call.get_flag(engine_state, stack, "page-size")?;
    match page_size {
        None => Ok(aws_core::s3::list::MAX_KEYS),
        Some(p) if (1..=1000).contains(&p.item) => Ok(p.item as i32),
        Some(p) => Err(ShellError::IncorrectValue {
            msg: "the page size must be between 1 and 1000".into(),
            val_span: p.span,
            call_span: call.head,
        }),
    }
}

/// The error of a copy between two local paths (`cp`, `sync`): pointing at both.
pub(crate) fn neither_side_in_s3(source: &Spanned<String>, destination: &Spanned<String>, help: &str) -> ShellError {
    ShellError::Generic(
        nu_protocol::shell_error::generic::GenericError::new("Nothing to do with S3", "neither side is an s3:// URL", Span::merge(source.span, destination.span))
            .with_help(help.to_string()),
    )
}

/// Parses a URL argument, pointing an error at the offending part of it.
pub(crate) fn parse_url(arg: &Spanned<String>) -> Result<S3Url, ShellError> {
    S3Url::parse(&arg.item).map_err(|err| url_error(err, arg))
}

/// S3 URLs from the call's arguments, or else from the pipeline: strings, or records with a
/// `name` column (the rows of `aws s3 ls`). Directory rows (`type` = dir) are skipped.
pub(crate) fn urls_from_args_or_input(
    args: Vec<Spanned<String>>,
    input: PipelineData,
    head: Span,
) -> Result<Box<dyn Iterator<Item = Result<Spanned<String>, ShellError>> + Send>, ShellError> {
    if !args.is_empty() {
        return Ok(Box::new(args.into_iter().map(Ok)));
    }
    match input {
        PipelineData::Empty => Err(ShellError::MissingParameter {
            param_name: "an s3:// URL (as an argument or from the pipeline)".into(),
            span: head,
        }),
        input => Ok(Box::new(input.into_iter().filter_map(url_of_value))),
    }
}

pub(crate) fn url_of_value(value: Value) -> Option<Result<Spanned<String>, ShellError>> {
    let span = value.span();
    match value {
        Value::String { val, .. } => Some(Ok(Spanned { item: val, span })),
        Value::Record { val, .. } => {
            if val.get("type").and_then(|t| t.as_str().ok()) == Some("dir") {
                return None;
            }
            match val.get("name") {
                Some(Value::String { val, .. }) => Some(Ok(Spanned { item: val.clone(), span })),
                _ => Some(Err(ShellError::CantFindColumn {
                    col_name: "name".into(),
                    span: None,
                    src_span: span,
                })),
            }
        }
        Value::Error { error, .. } => Some(Err(*error)),
        other => Some(Err(ShellError::OnlySupportsThisInputType {
            exp_input_type: "string or record with a name column".into(),
            wrong_type: other.get_type().to_string(),
            dst_span: span,
            src_span: other.span(),
        })),
    }
}

/// Every object below `url` (taken as a prefix), listed page by page as it is consumed. Listing
/// failures point at `span` (the argument the URL came from).
pub(crate) fn objects_below(
    cs: &Arc<CallSession>,
    url: S3Url,
    span: Span,
    head: Span,
) -> impl Iterator<Item = Result<S3Url, ShellError>> + Send + use<> {
    let listing = RowStream::new(
        RowFeed::live(list_objects(&cs.session, ListObjects::new(url, true))),
        head,
        cs.spans_for(span),
        cs.signals.clone(),
    );
    listing.filter_map(url_of_value).map(|name| {
        let name = name?;
        S3Url::parse(&name.item).map_err(|e| url_error(e, &name))
    })
}
