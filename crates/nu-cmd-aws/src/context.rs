//! The state all AWS commands of a process share ([`AwsContext`]: the session pool), and how one
//! command call finds its session: `--profile`, `--region` and `--endpoint-url` if given, else the
//! shell's `$env` (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, credentials, ...), never the
//! process environment, which `$env.X = ...` does not change.

use std::sync::Arc;

use aws_core::session::{ClientSettings, Session, SessionSpec, Sessions};
use nu_engine::command_prelude::*;
use nu_protocol::Signals;

use crate::errors::{ErrorSpans, to_shell_error};

/// Process-wide AWS state, shared by every command through an `Arc`.
#[derive(Default)]
pub struct AwsContext {
    pub sessions: Sessions,
}

impl AwsContext {
    pub fn new(settings: ClientSettings) -> Self {
        Self {
            sessions: Sessions::new(settings),
        }
    }
}

/// Adds the flags that choose the session to a command's signature.
pub fn session_flags(signature: Signature) -> Signature {
    signature
        .named(
            "profile",
            SyntaxShape::String,
            "AWS profile to use (default: $env.AWS_PROFILE).",
            Some('p'),
        )
        .named(
            "region",
            SyntaxShape::String,
            "AWS region to use (default: $env.AWS_REGION).",
            Some('r'),
        )
        .named(
            "endpoint-url",
            SyntaxShape::String,
            "Endpoint to send requests to (default: $env.AWS_ENDPOINT_URL).",
            None,
        )
}

/// The session-choosing flags of one call, with their spans for error messages.
pub struct SessionArgs {
    pub profile: Option<Spanned<String>>,
    pub region: Option<Spanned<String>>,
    pub endpoint: Option<Spanned<String>>,
}

impl SessionArgs {
    pub fn from_call(
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
    ) -> Result<Self, ShellError> {
        let mut flag = |name: &str| -> Result<Option<Spanned<String>>, ShellError> {
            Ok(call
                .get_flag::<Spanned<String>>(engine_state, stack, name)?
                .map(|v| value_span(engine_state, v)))
        };
        Ok(Self {
            profile: flag("profile")?,
            region: flag("region")?,
            endpoint: flag("endpoint-url")?,
        })
    }

    /// The spec this call resolves to: flags over the shell's environment.
    pub fn spec(&self, engine_state: &EngineState, stack: &Stack) -> SessionSpec {
        let vars = stack
            .get_env_vars(engine_state)
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.coerce_into_string().ok()?)));
        SessionSpec::from_env(vars)
            .with_profile(self.profile.as_ref().map(|p| p.item.clone()))
            .with_region(self.region.as_ref().map(|r| r.item.clone()))
            .with_endpoint(self.endpoint.as_ref().map(|e| e.item.clone()))
    }
}

/// Everything a command needs to make requests: its session and where to point errors.
pub struct CallSession {
    pub session: Arc<Session>,
    pub spans: ErrorSpans,
    pub signals: Signals,
}

impl CallSession {
    /// Resolves the session of this call (building it on first use).
    pub fn resolve(
        ctx: &AwsContext,
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
    ) -> Result<Self, ShellError> {
        let args = SessionArgs::from_call(engine_state, stack, call)?;
        let spans = ErrorSpans {
            head: call.head,
            profile: args.profile.as_ref().map(|p| p.span),
            region: args.region.as_ref().map(|r| r.span),
            endpoint: args.endpoint.as_ref().map(|e| e.span),
            target: None,
        };
        let spec = args.spec(engine_state, stack);
        let signals = engine_state.signals().clone();
        let check = {
            let signals = signals.clone();
            move || signals.interrupted()
        };
        let session = ctx
            .sessions
            .get(&spec, &check)
            .map_err(|err| to_shell_error(err, &spans))?;
        Ok(Self {
            session,
            spans,
            signals,
        })
    }

    /// An interrupt check for `aws-core` waits: Ctrl-C in the shell.
    pub fn interrupt(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let signals = self.signals.clone();
        move || signals.interrupted()
    }

    /// Error spans pointing at `target` for resource errors.
    pub fn spans_for(&self, target: Span) -> ErrorSpans {
        ErrorSpans {
            target: Some(target),
            ..self.spans
        }
    }
}

/// A flag's value comes with the span of the whole `--flag value`; narrow it to the value when the
/// value is written literally (bare or quoted), so errors underline just the value.
fn value_span(engine_state: &EngineState, value: Spanned<String>) -> Spanned<String> {
    let text = engine_state.get_span_contents(value.span);
    let len = value.item.len();
    let end = value.span.end;
    let quoted = text.len() >= len + 2
        && matches!(text.last(), Some(b'"' | b'\'' | b'`'))
        && text[..text.len() - 1].ends_with(value.item.as_bytes());
    let span = if quoted {
        Span::new(end - len - 2, end)
    } else if text.ends_with(value.item.as_bytes()) {
        Span::new(end - len, end)
    } else {
        value.span
    };
    Spanned {
        item: value.item,
        span,
    }
}
