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

#[cfg(test)]
mod tests {
    use super::*;

    fn spans() -> ErrorSpans {
        ErrorSpans {
            head: Span::new(0, 3),
            profile: Some(Span::new(10, 13)),
            region: Some(Span::new(20, 23)),
            endpoint: Some(Span::new(30, 33)),
            target: Some(Span::new(40, 43)),
        }
    }

    fn generic(err: ShellError) -> GenericError {
        match err {
            ShellError::Generic(err) => err,
            other => panic!("not a generic error: {other:?}"),
        }
    }

    fn site(err: &GenericError) -> Span {
        match err.site {
            nu_protocol::shell_error::ErrorSite::Span(span) => span,
            ref other => panic!("no span: {other:?}"),
        }
    }

    #[test]
    fn each_kind_points_at_the_argument_it_is_about() {
        let s = spans();
        let cases = [
            (ErrorKind::NoCredentials, s.profile, "nuaws::aws::no_credentials"),
            (ErrorKind::UnknownProfile, s.profile, "nuaws::aws::unknown_profile"),
            (ErrorKind::AccessDenied, s.profile, "nuaws::aws::access_denied"),
            (ErrorKind::NoRegion, s.region, "nuaws::aws::no_region"),
            (ErrorKind::Network, s.endpoint, "nuaws::aws::network"),
            (ErrorKind::Timeout, s.endpoint, "nuaws::aws::timeout"),
            (ErrorKind::NotFound, s.target, "nuaws::aws::not_found"),
            (ErrorKind::InvalidInput, s.target, "nuaws::aws::invalid_input"),
            (ErrorKind::Local, s.target, "nuaws::aws::local_file"),
            (ErrorKind::WrongRegion, s.target, "nuaws::aws::wrong_region"),
            (ErrorKind::Throttled, Some(s.head), "nuaws::aws::throttled"),
            (ErrorKind::Service, Some(s.head), "nuaws::aws::service"),
        ];
        for (kind, at, want_code) in cases {
            let err = generic(to_shell_error(AwsError::new(kind, "S3 ListObjectsV2", "it failed"), &s));
            assert_eq!(site(&err), at.unwrap(), "{kind:?}");
            assert_eq!(err.code, want_code, "{kind:?}");
            assert_eq!(err.error, "S3 ListObjectsV2 failed", "{kind:?}: no service code, no code in the title");
            assert!(err.help.as_deref().is_some_and(|h| !h.is_empty()), "{kind:?}: a help line");
        }
    }

    #[test]
    fn a_missing_argument_span_falls_back_to_the_command() {
        let head = Span::new(5, 9);
        for kind in [ErrorKind::UnknownProfile, ErrorKind::NoRegion, ErrorKind::Timeout, ErrorKind::NotFound] {
            let err = generic(to_shell_error(AwsError::new(kind, "EC2 DescribeInstances", "no"), &ErrorSpans::at(head)));
            assert_eq!(site(&err), head, "{kind:?}");
        }
    }

    #[test]
    fn the_service_code_is_in_the_title_and_an_interrupt_is_nushells_own() {
        let err = AwsError::new(ErrorKind::NotFound, "S3 HeadObject", "gone").with_code("NoSuchKey");
        let err = generic(to_shell_error(err, &spans()));
        assert_eq!(err.error, "S3 HeadObject failed: NoSuchKey");
        let err = to_shell_error(AwsError::interrupted("S3 GetObject"), &spans());
        assert!(matches!(err, ShellError::Interrupted { span } if span == spans().head), "{err:?}");
    }

    #[test]
    fn a_url_error_underlines_the_offending_part_of_a_literal_and_all_of_a_variable() {
        let err = |offset, len| UrlError { message: "bad".into(), help: "fix it".into(), offset, len };
        // Bare: `s3://B!d/key` at 100..112, the bad part is `!` at offset 6.
        let bare = Spanned { item: "s3://B!d/key".to_string(), span: Span::new(100, 112) };
        assert_eq!(site(&generic(url_error(err(6, 1), &bare))), Span::new(106, 107));
        // Quoted: the span has the quotes, the text has not.
        let quoted = Spanned { item: "s3://B!d/key".to_string(), span: Span::new(100, 114) };
        assert_eq!(site(&generic(url_error(err(6, 1), &quoted))), Span::new(107, 108));
        // A variable (`$url`): its text is elsewhere, so the whole argument.
        let variable = Spanned { item: "s3://B!d/key".to_string(), span: Span::new(100, 104) };
        let e = generic(url_error(err(6, 1), &variable));
        assert_eq!(site(&e), Span::new(100, 104));
        assert_eq!(e.code, "nuaws::s3::invalid_url");
        assert_eq!(e.help.as_deref(), Some("fix it"));
    }
}
