//! `aws s3 du`: how much is stored below a prefix (or in every bucket), grouped by prefix depth,
//! storage class and age, in one pass over the listing, with running totals while it scans.
//!
//! Memory is the number of groups, never the number of objects: a bucket of millions of
//! objects is summed page by page (`aws_core::s3::du`). Without a URL, every bucket of the
//! account is summed, each listed in its own region. Noncurrent versions, delete markers
//! (`--versions`) and incomplete multipart uploads (`--uploads`) are counted in groups apart.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_core::pagination::Next;
use aws_core::row::{Field, Row};
use aws_core::s3::du::{Du, Grouping};
use aws_core::s3::{ListObjects, Listed, S3Url, VersionKind, list_buckets, list_listed, list_uploads, list_versions};
use aws_core::PageStream;
use nu_engine::command_prelude::*;
use nu_protocol::ListStream;
use nu_protocol::shell_error::generic::GenericError;

use crate::context::{AwsContext, CallSession, session_flags};
use crate::errors::{ErrorSpans, to_shell_error};
use crate::s3::{page_size_flag, parse_url};
use crate::values::row_to_value;

/// How long one wait for a page lasts before Ctrl-C is checked again.
const POLL: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct S3Du {
    pub ctx: Arc<AwsContext>,
}

impl Command for S3Du {
    fn name(&self) -> &str {
        "aws s3 du"
    }

    fn signature(&self) -> Signature {
        session_flags(Signature::build(self.name()))
            .optional("url", SyntaxShape::String, "The s3://bucket/prefix to sum (S3 prefix semantics); without it, every bucket.")
            .named("depth", SyntaxShape::Int, "Group by the prefix this many /-levels below the URL (default 0: the URL itself).", Some('d'))
            .named("by", SyntaxShape::List(Box::new(SyntaxShape::String)), "Also group by storage_class and/or age (of LastModified: <1d, 1-7d, 7-30d, 30-90d, 90-365d, >1y).", None)
            .named("every", SyntaxShape::Duration, "While scanning, emit the running totals this often (rows with partial: true).", None)
            .switch("versions", "Count every version and delete marker (ListObjectVersions), grouped by version: current, noncurrent, delete marker.", None)
            .switch("uploads", "Also count incomplete multipart uploads (the bytes of their parts so far), in groups of their own: version = incomplete upload.", None)
            .named("page-size", SyntaxShape::Int, "Keys per ListObjectsV2 request, 1 to 1000 (default 1000).", None)
            .input_output_types(vec![(Type::Nothing, Type::table())])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Sum the objects and bytes below an S3 prefix, by prefix depth, storage class and age."
    }

    fn extra_description(&self) -> &str {
        "One row per group: prefix (an s3:// URL; without --depth, the URL itself, or each bucket), storage_class and age when grouped --by them, objects, bytes, oldest and newest (LastModified). One pass over ListObjectsV2, memory bounded by the number of groups.
With --versions, noncurrent versions and delete markers are counted too, in groups of their own (a `version` column).
With --uploads, incomplete multipart uploads are counted apart (ListMultipartUploads, then ListParts of each): `version` is `incomplete upload`, objects the number of uploads, bytes the parts uploaded so far (billed until the upload is completed or aborted), oldest and newest when they were initiated; the rest is `current` (or as --versions says).
With --every, rows of running totals come while the scan goes on (partial: true), then the final rows (partial: false); filter with `where not partial`."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["disk usage", "size", "summarize", "total", "storage class"]
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "Objects and bytes in each bucket.",
                example: "aws s3 du",
                result: None,
            },
            Example {
                description: "Where the bytes are, one level down, by storage class.",
                example: "aws s3 du s3://my-bucket/ --depth 1 --by [storage_class] | sort-by bytes --reverse",
                result: None,
            },
            Example {
                description: "What noncurrent versions and delete markers cost, by storage class.",
                example: "aws s3 du s3://my-bucket/ --versions --by [storage_class] | where version != current",
                result: None,
            },
            Example {
                description: "What incomplete multipart uploads hold, beside the objects.",
                example: "aws s3 du s3://my-bucket/ --uploads | where version == 'incomplete upload'",
                result: None,
            },
            Example {
                description: "Bytes by age, with running totals every 5 seconds of a long scan.",
                example: "aws s3 du s3://my-bucket/logs/ --by [age] --every 5sec",
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
        let head = call.head;
        let url: Option<Spanned<String>> = call.opt(engine_state, stack, 0)?;
        let depth: Option<Spanned<i64>> = call.get_flag(engine_state, stack, "depth")?;
        let depth = match depth {
            None => 0,
            Some(d) if (0..=1000).contains(&d.item) => d.item as usize,
            Some(d) => {
                return Err(ShellError::IncorrectValue {
                    msg: "the depth must be between 0 and 1000".into(),
                    val_span: d.span,
                    call_span: head,
                });
            }
        };
        let mut grouping = Grouping { depth, ..Grouping::default() };
        if let Some(by) = call.get_flag::<Value>(engine_state, stack, "by")? {
            for value in by.into_list()? {
                let span = value.span();
                match value.as_str()? {
                    "storage_class" | "class" => grouping.storage_class = true,
                    "age" => grouping.age = true,
                    other => {
                        return Err(ShellError::Generic(
                            GenericError::new("Cannot group by this", format!("`{other}` is not storage_class or age"), span)
                                .with_help("Group --by [storage_class age], and by prefix with --depth."),
                        ));
                    }
                }
            }
        }
        let every: Option<Spanned<i64>> = call.get_flag(engine_state, stack, "every")?;
        let every = match every {
            None => None,
            Some(e) if e.item > 0 => Some(Duration::from_nanos(e.item as u64)),
            Some(e) => {
                return Err(ShellError::IncorrectValue {
                    msg: "--every must be a positive duration".into(),
                    val_span: e.span,
                    call_span: head,
                });
            }
        };
        let page_size = page_size_flag(engine_state, stack, call)?;
        let versions = call.has_flag(engine_state, stack, "versions")?;
        let uploads = call.has_flag(engine_state, stack, "uploads")?;
        grouping.versions = versions || uploads;
        let parsed = url.as_ref().map(parse_url).transpose()?;
        let cs = CallSession::resolve(&self.ctx, engine_state, stack, call)?;
        let spans = url.as_ref().map_or(cs.spans, |u| cs.spans_for(u.span));
        let targets = match parsed {
            Some(url) => Targets::One(Some(url)),
            None => Targets::Buckets(list_buckets(&cs.session)),
        };
        let values = DuValues {
            session: cs.session.clone(),
            targets,
            listing: None,
            du: Du::new(grouping, chrono::Utc::now()),
            page_size,
            versions,
            uploads,
            every,
            last_emit: Instant::now(),
            out: VecDeque::new(),
            done: false,
            signals: cs.signals.clone(),
            spans,
            span: head,
        };
        Ok(PipelineData::list_stream(ListStream::new(values, head, engine_state.signals().clone()), None))
    }
}

/// A listing of objects (with the kind of version they count as, when grouped by it), of
/// versions, or of incomplete multipart uploads.
enum Listing {
    Objects(PageStream<Listed>, Option<&'static str>),
    Versions(PageStream<(Listed, VersionKind)>),
    Uploads(PageStream<Listed>),
}

/// The kind of version incomplete uploads are grouped as.
const UPLOAD: &str = "incomplete upload";

impl Listing {
    /// The next object, with its kind of version in a listing of versions.
    fn next_timeout(&mut self, wait: Duration) -> Next<(Listed, Option<&'static str>)> {
        match self {
            Listing::Objects(stream, kind) => stream.next_timeout(wait).map(|o| (o, *kind)),
            Listing::Versions(stream) => stream.next_timeout(wait).map(|(o, kind)| (o, Some(kind.as_str()))),
            Listing::Uploads(stream) => stream.next_timeout(wait).map(|o| (o, Some(UPLOAD))),
        }
    }
}

/// What to sum: one URL, or every bucket as listed.
enum Targets {
    One(Option<S3Url>),
    Buckets(PageStream<Row>),
}

/// The scan as a stream of rows: partial totals every so often, then the final ones.
struct DuValues {
    session: Arc<aws_core::Session>,
    targets: Targets,
    listing: Option<(S3Url, Listing)>,
    du: Du,
    page_size: i32,
    versions: bool,
    /// Incomplete multipart uploads are listed after each URL's objects.
    uploads: bool,
    every: Option<Duration>,
    last_emit: Instant,
    out: VecDeque<Value>,
    done: bool,
    signals: nu_protocol::Signals,
    spans: ErrorSpans,
    span: Span,
}

impl DuValues {
    /// The next URL to sum, `None` when there are no more; `Err` for a failed bucket listing.
    fn next_target(&mut self) -> Result<Option<S3Url>, Value> {
        match &mut self.targets {
            Targets::One(url) => Ok(url.take()),
            Targets::Buckets(stream) => loop {
                match stream.next_timeout(POLL) {
                    Next::Item(row) => {
                        if let Some(name) = row.get("name").and_then(Field::as_str) {
                            return Ok(Some(S3Url::new(name, "")));
                        }
                    }
                    Next::End => return Ok(None),
                    Next::Error(err) => return Err(Value::error(to_shell_error(err, &self.spans), self.span)),
                    Next::Pending if self.signals.interrupted() => return Ok(None),
                    Next::Pending => {}
                }
            },
        }
    }

    fn snapshot(&mut self, partial: bool) {
        let span = self.span;
        let every = self.every.is_some();
        self.out.extend(self.du.rows().into_iter().map(|row| {
            let row = if every { row.with("partial", Field::Bool(partial)) } else { row };
            row_to_value(row, span)
        }));
        self.last_emit = Instant::now();
    }
}

impl Iterator for DuValues {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(value) = self.out.pop_front() {
                return Some(value);
            }
            if self.done {
                return None;
            }
            if self.listing.is_none() {
                match self.next_target() {
                    Ok(Some(url)) => {
                        let listing = if self.versions {
                            Listing::Versions(list_versions(&self.session, url.clone(), self.page_size))
                        } else {
                            let kind = self.uploads.then_some(VersionKind::Current.as_str());
                            Listing::Objects(list_listed(&self.session, ListObjects { page_size: self.page_size, ..ListObjects::new(url.clone(), true) }), kind)
                        };
                        self.listing = Some((url, listing));
                    }
                    Ok(None) => {
                        self.done = true;
                        if !self.signals.interrupted() {
                            self.snapshot(false);
                        }
                        continue;
                    }
                    Err(error) => {
                        self.done = true;
                        return Some(error);
                    }
                }
            }
            let wait = self.every.map_or(POLL, |every| every.saturating_sub(self.last_emit.elapsed()).clamp(Duration::from_millis(1), POLL));
            let Some((url, listing)) = &mut self.listing else { continue };
            match listing.next_timeout(wait) {
                Next::Item((object, kind)) => {
                    self.du.add_version(url, &object, kind);
                    // A fast listing never waits: check the clock between objects too.
                    if self.every.is_some_and(|every| self.last_emit.elapsed() >= every) {
                        self.snapshot(true);
                    }
                }
                Next::End if self.uploads && !matches!(listing, Listing::Uploads(_)) => {
                    *listing = Listing::Uploads(list_uploads(&self.session, url.clone(), self.page_size));
                }
                Next::End => {
                    self.du.touch(url);
                    self.listing = None;
                }
                Next::Error(err) => {
                    self.done = true;
                    self.listing = None;
                    return Some(Value::error(to_shell_error(err, &self.spans), self.span));
                }
                Next::Pending if self.signals.interrupted() => {
                    self.done = true;
                    return None;
                }
                Next::Pending => {
                    if self.every.is_some_and(|every| self.last_emit.elapsed() >= every) {
                        self.snapshot(true);
                    }
                }
            }
        }
    }
}
