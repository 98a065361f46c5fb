//! Paginated listings as Nushell streams: [`RowStream`] turns an `aws-core` [`RowFeed`] (a
//! listing replayed from the cache or fetched page by page) into an iterator of values for a
//! `ListStream`. It waits for pages in short slices so Ctrl-C ends it promptly even while a
//! request is in flight (the `ListStream` itself only checks between items), and dropping it
//! (`first 5`) aborts the fetch.

use std::time::Duration;

use aws_core::cache::RowFeed;
use aws_core::pagination::Next;
use aws_core::error::AwsError;
use aws_core::row::Row;
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
