//! AWS failures as Nushell errors: a title naming the operation, the service's message under the
//! argument it is about, and a help line. Which argument that is depends on the kind of failure:
//! a missing bucket points at the URL, an unknown profile at `--profile`, a throttle at the
//! command.

use aws_core::error::{AwsError, ErrorKind};
use aws_core::s3::UrlError;
use nu_protocol::shell_error::generic::GenericError;
use nu_protocol::{ShellError, Span, Spanned};

/// Where the parts of one call are in the source.
#[derive(Clone, Copy, Debug)]
pub struct ErrorSpans {
    /// The command name.
    pub head: Span,
    pub profile: Option<Span>,
    pub region: Option<Span>,
    pub endpoint: Option<Span>,
    /// The argument naming the resource the call is about (URL, id).
    pub target: Option<Span>,
}

impl ErrorSpans {
    pub fn at(head: Span) -> Self {
        Self {
            head,
            profile: None,
            region: None,
            endpoint: None,
            target: None,
        }
    }

    fn for_kind(&self, kind: ErrorKind) -> Span {
        let pick = |first: Option<Span>| first.unwrap_or(self.head);
        match kind {
            ErrorKind::NoCredentials | ErrorKind::UnknownProfile | ErrorKind::AccessDenied => {
                pick(self.profile)
            }
            ErrorKind::NoRegion => pick(self.region),
            ErrorKind::Network | ErrorKind::Timeout => pick(self.endpoint),
            ErrorKind::NotFound | ErrorKind::InvalidInput | ErrorKind::Local | ErrorKind::WrongRegion => pick(self.target),
            ErrorKind::Throttled | ErrorKind::Interrupted | ErrorKind::Service => self.head,
        }
    }
}

/// A stable, greppable code per kind: `nuaws::aws::not_found`.
fn code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NoCredentials => "nuaws::aws::no_credentials",
        ErrorKind::UnknownProfile => "nuaws::aws::unknown_profile",
        ErrorKind::NoRegion => "nuaws::aws::no_region",
        ErrorKind::AccessDenied => "nuaws::aws::access_denied",
        ErrorKind::NotFound => "nuaws::aws::not_found",
        ErrorKind::InvalidInput => "nuaws::aws::invalid_input",
        ErrorKind::Throttled => "nuaws::aws::throttled",
        ErrorKind::Timeout => "nuaws::aws::timeout",
        ErrorKind::Network => "nuaws::aws::network",
        ErrorKind::Interrupted => "nuaws::aws::interrupted",
        ErrorKind::Service => "nuaws::aws::service",
        ErrorKind::Local => "nuaws::aws::local_file",
        ErrorKind::WrongRegion => "nuaws::aws::wrong_region",
    }
}

/// Converts an AWS failure, pointing at the span its kind is about.
pub fn to_shell_error(err: AwsError, spans: &ErrorSpans) -> ShellError {
    if err.kind == ErrorKind::Interrupted {
        return ShellError::Interrupted { span: spans.head };
    }
    let title = match &err.code {
        Some(code) => format!("{} failed: {code}", err.operation),
        None => format!("{} failed", err.operation),
    };
    let help = err.help();
    let span = spans.for_kind(err.kind);
    ShellError::Generic(
        GenericError::new(title, err.to_string(), span)
            .with_help(help)
            .with_code(code(err.kind)),
    )
}

/// A refused `s3://` URL, underlining exactly the offending part of the argument when the
/// argument is the literal text (bare or quoted); the whole argument otherwise (a variable).
pub fn url_error(err: UrlError, arg: &Spanned<String>) -> ShellError {
    let width = arg.span.end - arg.span.start;
    let literal_start = if width == arg.item.len() {
        Some(arg.span.start)
    } else if width == arg.item.len() + 2 {
        Some(arg.span.start + 1) // quoted
    } else {
        None
    };
    let span = match literal_start {
        Some(start) => Span::new(start + err.offset, start + err.offset + err.len),
        None => arg.span,
    };
    ShellError::Generic(
        GenericError::new("Invalid S3 URL", err.message, span)
            .with_help(err.help)
            .with_code("nuaws::s3::invalid_url"),
    )
}
