//! Paginated listings as Nushell streams: [`RowStream`] turns an `aws-core` [`RowFeed`] (a
//! listing replayed from the cache or fetched page by page) into an iterator of values for a
//! `ListStream`, and [`RegionRows`] does the same for the listings of several regions (and
//! accounts) merged as their pages arrive. Both wait for pages in short slices so Ctrl-C ends them promptly even
//! while a request is in flight (the `ListStream` itself only checks between items), and
//! dropping them (`first 5`) aborts the fetches.

use std::time::Duration;

use aws_core::cache::RowFeed;
use aws_core::fanout::{Merged, MergedNext, in_account, in_region};
use aws_core::pagination::Next;
use aws_core::error::AwsError;
use aws_core::row::{Field, Row};
use nu_protocol::{ListStream, PipelineData, ShellError, Signals, Span, Value};

use crate::errors::{ErrorSpans, to_shell_error};
use crate::values::row_to_value;

/// How long one wait for a page lasts before Ctrl-C is checked again.
const POLL: Duration = Duration::from_millis(50);

/// A listing being fetched, as values.
pub struct RowStream {
    pages: RowFeed,
    span: Span,
    to_error: Box<dyn Fn(AwsError) -> ShellError + Send>,
    signals: Signals,
    map: Option<Box<dyn FnMut(Row) -> Row + Send>>,
    /// The first row, fetched before the stream is handed to the pipeline.
    first: Option<Row>,
}

impl RowStream {
    pub fn new(pages: RowFeed, span: Span, spans: ErrorSpans, signals: Signals) -> Self {
        Self {
            pages,
            span,
            to_error: Box::new(move |err| to_shell_error(err, &spans)),
            signals,
            map: None,
            first: None,
        }
    }

    /// Converts listing failures with `f` instead of pointing them by kind (to point a "no such
    /// id" at the id that caused it, say).
    pub fn with_errors(mut self, f: impl Fn(AwsError) -> ShellError + Send + 'static) -> Self {
        self.to_error = Box::new(f);
        self
    }

    /// Adjusts each row before it becomes a value (adding a column, say).
    pub fn map_rows(mut self, f: impl FnMut(Row) -> Row + Send + 'static) -> Self {
        self.map = Some(Box::new(f));
        self
    }

    /// Waits for the first page, so that a listing that fails at once (no such bucket, no
    /// credentials) is an error of the command rather than an error row, then streams the rest.
    pub fn into_pipeline_data(mut self) -> Result<PipelineData, ShellError> {
        loop {
            match self.pages.next_timeout(POLL) {
                Next::Item(row) => {
                    self.first = Some(row);
                    break;
                }
                Next::Error(err) => return Err((self.to_error)(err)),
                Next::End => break,
                Next::Pending if self.signals.interrupted() => {
                    return Err(ShellError::Interrupted { span: self.span });
                }
                Next::Pending => {}
            }
        }
        let span = self.span;
        let signals = self.signals.clone();
        Ok(PipelineData::list_stream(
            ListStream::new(self, span, signals),
            None,
        ))
    }

    fn to_value(&mut self, row: Row) -> Value {
        let row = match &mut self.map {
            Some(f) => f(row),
            None => row,
        };
        row_to_value(row, self.span)
    }
}

impl Iterator for RowStream {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        if let Some(row) = self.first.take() {
            return Some(self.to_value(row));
        }
        loop {
            match self.pages.next_timeout(POLL) {
                Next::Item(row) => return Some(self.to_value(row)),
                Next::Error(err) => {
                    return Some(Value::error((self.to_error)(err), self.span));
                }
                Next::End => return None,
                Next::Pending if self.signals.interrupted() => {
                    self.pages.cancel();
                    return None;
                }
                Next::Pending => {}
            }
        }
    }
}

/// Every row of a listing, for a command that needs it whole before it can go on (the regions
/// to read, the buckets to look at). Ctrl-C abandons it with an `Interrupted` error.
pub fn collect_rows(mut feed: RowFeed, signals: &Signals) -> Result<Vec<Row>, AwsError> {
    let mut rows = Vec::new();
    loop {
        match feed.next_timeout(POLL) {
            Next::Item(row) => rows.push(row),
            Next::End => return Ok(rows),
            Next::Error(err) => return Err(err),
            Next::Pending if signals.interrupted() => {
                feed.cancel();
                return Err(AwsError::interrupted("listing"));
            }
            Next::Pending => {}
        }
    }
}

/// Where one listing of a merged read comes from: the columns its rows get (`account`,
/// `profile`, `region`), and where its errors point.
#[derive(Clone, Debug)]
pub struct Origin {
    pub account: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
    pub spans: ErrorSpans,
}

impl Origin {
    /// A listing of the caller's own account in `region`.
    pub fn region(region: &str, spans: ErrorSpans) -> Self {
        Self {
            account: None,
            profile: None,
            region: Some(region.to_string()),
            spans,
        }
    }

    /// `row` with this origin's columns.
    fn label(&self, mut row: Row) -> Row {
        for (column, value) in [("account", &self.account), ("profile", &self.profile), ("region", &self.region)] {
            if let Some(value) = value {
                row = with_column(row, column, value);
            }
        }
        row
    }

    /// `err` as the failure of this origin among several: its profile or account, and its
    /// region, in the title and the message.
    pub fn error(&self, mut err: AwsError) -> ShellError {
        if let Some(region) = &self.region {
            err = in_region(err, region);
        }
        match (&self.profile, &self.account) {
            (Some(profile), _) => err = in_account(err, &format!("profile {profile}")),
            (None, Some(account)) => err = in_account(err, &format!("account {account}")),
            (None, None) => {}
        }
        to_shell_error(err, &self.spans)
    }
}

/// The listings of several regions (and accounts) as one stream: rows in the order they arrive
/// from any listing, each with a `region` column (and `account`, `profile`); a listing that
/// fails is one error row naming its region or account, and the others go on. Unlike
/// [`RowStream`], it does not wait for a first row: a failure is never the whole command's, and
/// the first listing to answer should not wait for the others.
pub struct RegionRows {
    merged: Merged<Row>,
    /// Per listing of `merged`: where it comes from.
    origins: Vec<Origin>,
    span: Span,
    signals: Signals,
}

impl RegionRows {
    pub fn new(merged: Merged<Row>, origins: Vec<Origin>, span: Span, signals: Signals) -> Self {
        Self {
            merged,
            origins,
            span,
            signals,
        }
    }

    pub fn into_pipeline_data(self) -> PipelineData {
        let (span, signals) = (self.span, self.signals.clone());
        PipelineData::list_stream(ListStream::new(self, span, signals), None)
    }
}

/// `row` with a text column `name` (replacing one it had).
fn with_column(mut row: Row, name: &'static str, value: &str) -> Row {
    let cell = Field::Text(value.to_string());
    match row.columns.iter_mut().find(|(column, _)| *column == name) {
        Some((_, field)) => *field = cell,
        None => row.columns.push((name, cell)),
    }
    row
}

impl Iterator for RegionRows {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        loop {
            match self.merged.next_timeout(POLL) {
                MergedNext::Item { source, item } => {
                    let row = match self.origins.get(source) {
                        Some(origin) => origin.label(item),
                        None => item,
                    };
                    return Some(row_to_value(row, self.span));
                }
                MergedNext::Failed { source, error } => {
                    let error = match self.origins.get(source) {
                        Some(origin) => origin.error(error),
                        None => to_shell_error(error, &ErrorSpans::at(self.span)),
                    };
                    return Some(Value::error(error, self.span));
                }
                MergedNext::End => return None,
                MergedNext::Pending if self.signals.interrupted() => {
                    self.merged.cancel();
                    return None;
                }
                MergedNext::Pending => {}
            }
        }
    }
}
