//! Reads spread over several accounts: the `--accounts` / `--role-name` and `--profiles` flags,
//! their checks (all made before any request: account ids, role names, profile names), and a
//! session per account: the caller's session with a role assumed into the account
//! (`arn:<partition>:iam::<id>:role/<name>`, the partition of the call's region), or the session
//! of each profile. Every account is entered at once (bounded, through the engine's limiter)
//! before anything is listed, so an account that cannot be entered is one error row naming it,
//! and a call where no account can be entered fails as a whole.
//!
//! Not here: the regions of each account (that is [`crate::regions`]), merging the listings into
//! one stream (that is [`crate::stream::RegionRows`]), or the roles' credentials and their
//! caching (that is `aws_core::accounts` and `aws_core::session`).

use aws_core::accounts::{AssumeRole, check_account_id, check_role_name};
use aws_core::fanout::RequestLimit;
use aws_core::identity::resolve_identities;
use aws_core::runtime::block_on;
use aws_core::session::partition_of;
use aws_core::AwsError;
use nu_engine::command_prelude::*;
use nu_protocol::shell_error::generic::GenericError;

use crate::context::{CallSession, value_span};
use crate::errors::{ErrorSpans, to_shell_error};
use crate::stream::Origin;

/// Adds `--accounts`, `--role-name` and `--profiles` to a command's signature.
pub fn account_flags(signature: Signature) -> Signature {
    signature
        .named(
            "accounts",
            SyntaxShape::List(Box::new(SyntaxShape::String)),
            "Read these accounts at once (assuming --role-name in each), as one table with an `account` column.",
            None,
        )
        .named(
            "role-name",
            SyntaxShape::String,
            "The role to assume in each of --accounts, e.g. OrganizationAccountAccessRole.",
            None,
        )
        .named(
            "profiles",
            SyntaxShape::List(Box::new(SyntaxShape::String)),
            "Read with each of these AWS profiles at once, as one table with `profile` and `account` columns.",
            None,
        )
}

/// The accounts a call asked for.
pub enum AccountChoice {
    /// `--accounts [...] --role-name NAME`: each id with its span.
    Roles {
        accounts: Vec<Spanned<String>>,
        role: Spanned<String>,
        /// The span of `--accounts`.
        span: Span,
    },
    /// `--profiles [...]`: each name with its span.
    Profiles { profiles: Vec<Spanned<String>>, span: Span },
}

/// One account to read, entered.
pub struct Target {
    pub cs: CallSession,
    pub origin: Origin,
}

fn input_error(title: impl Into<String>, label: impl Into<String>, span: Span, help: &str) -> ShellError {
    ShellError::Generic(
        GenericError::new(title.into(), label.into(), span)
            .with_help(help.to_string())
            .with_code("nuaws::aws::invalid_accounts"),
    )
}

const ROLE_HELP: &str = "Name the role to assume in each account, e.g. --accounts [111111111111 222222222222] --role-name OrganizationAccountAccessRole.";

impl AccountChoice {
    /// The call's choice; `None` when it used none of the flags (it reads its own account).
    /// Refuses malformed ids and role names, `--accounts` without `--role-name` (and the
    /// reverse), and `--profiles` with `--accounts` or `--profile`.
    pub fn from_call(engine_state: &EngineState, stack: &mut Stack, call: &Call) -> Result<Option<Self>, ShellError> {
        let accounts: Option<Vec<Spanned<String>>> = call.get_flag(engine_state, stack, "accounts")?;
        let role: Option<Spanned<String>> = call
            .get_flag::<Spanned<String>>(engine_state, stack, "role-name")?
            .map(|role| value_span(engine_state, role));
        let profiles: Option<Vec<Spanned<String>>> = call.get_flag(engine_state, stack, "profiles")?;
        let flag_span = |name: &str| call.get_flag_span(stack, name).unwrap_or(call.head);
        if profiles.is_some() && call.get_flag_span(stack, "profile").is_some() {
            return Err(input_error(
                "--profile and --profiles cannot be used together",
                "--profile conflicts with --profiles",
                flag_span("profile"),
                "Put every profile in --profiles [a b].",
            ));
        }
        match (accounts, role, profiles) {
            (Some(_), _, Some(_)) => Err(input_error(
                "--accounts and --profiles cannot be used together",
                "--profiles conflicts with --accounts",
                flag_span("profiles"),
                "Use --accounts with --role-name to assume a role into each account, or --profiles to read with each profile.",
            )),
            (Some(accounts), Some(role), None) => {
                if let Err(why) = check_role_name(&role.item) {
                    return Err(input_error("Invalid role name", why, role.span, ROLE_HELP));
                }
                let span = flag_span("accounts");
                let accounts = checked(accounts, span, "--accounts needs at least one account id", |id| {
                    check_account_id(id).map_err(|why| (why, "An account id is 12 digits, e.g. 111111111111 (`aws sts get-caller-identity` shows yours)."))
                })?;
                Ok(Some(Self::Roles { accounts, role, span }))
            }
            (Some(_), None, None) => Err(input_error(
                "--accounts needs --role-name",
                "no role to assume in these accounts",
                flag_span("accounts"),
                ROLE_HELP,
            )),
            (None, Some(role), profiles) => Err(input_error(
                "--role-name needs --accounts",
                "a role name without accounts to assume it in",
                if profiles.is_some() { flag_span("profiles") } else { role.span },
                "Give the accounts with --accounts [111111111111 ...]; profiles name their own roles (role_arn in the config file).",
            )),
            (None, None, Some(profiles)) => {
                let span = flag_span("profiles");
                let profiles = checked(profiles, span, "--profiles needs at least one profile", |name| {
                    if name.trim().is_empty() {
                        Err(("this profile name is empty".to_string(), "Name profiles of your AWS config file, e.g. --profiles [dev prod]."))
                    } else {
                        Ok(())
                    }
                })?;
                Ok(Some(Self::Profiles { profiles, span }))
            }
            (None, None, None) => Ok(None),
        }
    }
}

/// `items` checked one by one (pointing at the bad one), without repeats, and not empty.
fn checked(
    items: Vec<Spanned<String>>,
    span: Span,
    empty: &str,
    check: impl Fn(&str) -> Result<(), (String, &'static str)>,
) -> Result<Vec<Spanned<String>>, ShellError> {
    if items.is_empty() {
        return Err(input_error("Nothing to read", empty, span, "Name at least one, e.g. [111111111111] or [dev]."));
    }
    let mut unique: Vec<Spanned<String>> = Vec::new();
    for item in items {
        let name = item.item.trim().to_string();
        if let Err((why, help)) = check(&name) {
            return Err(input_error("Invalid account", why, item.span, help));
        }
        if !unique.iter().any(|seen| seen.item == name) {
            unique.push(Spanned { item: name, span: item.span });
        }
    }
    Ok(unique)
}

/// Every account of `choice`, entered at once within `limit`: its session and labels, or the
/// reason it cannot be entered (as the origin its error row names). `region` is the call's
/// first region, whose partition the roles are in. Unknown profiles are refused here, before
/// any request.
pub fn enter_accounts(
    cs: &CallSession,
    choice: &AccountChoice,
    region: Option<&str>,
    limit: &RequestLimit,
) -> Result<Vec<Result<Target, (Origin, AwsError)>>, ShellError> {
    let mut entered: Vec<(Origin, Result<CallSession, AwsError>)> = Vec::new();
    match choice {
        AccountChoice::Roles { accounts, role, .. } => {
            let partition = partition_of(region.or(cs.session.region()).unwrap_or("us-east-1"));
            let session_name = cs.session.spec.env.get("AWS_ROLE_SESSION_NAME").map(String::as_str);
            for account in accounts {
                let assume = AssumeRole::into_account(partition, &account.item, &role.item, session_name);
                let spec = cs.session.spec.clone().with_role(Some(assume));
                let origin = Origin {
                    account: Some(account.item.clone()),
                    profile: None,
                    region: None,
                    spans: account_spans(cs, account.span),
                };
                entered.push((origin, cs.with_spec(spec)));
            }
        }
        AccountChoice::Profiles { profiles, .. } => {
            check_profiles(cs, profiles)?;
            for profile in profiles {
                let spec = cs.session.spec.clone().with_profile(Some(profile.item.clone()));
                let origin = Origin {
                    account: None,
                    profile: Some(profile.item.clone()),
                    region: None,
                    spans: account_spans(cs, profile.span),
                };
                entered.push((origin, cs.with_spec(spec)));
            }
        }
    }
    // Who each account's session is: this assumes the roles (or loads the profiles'
    // credentials), so a refusal is found here; from a warm cache it costs no request.
    let sessions: Vec<_> = entered
        .iter()
        .filter_map(|(_, cs)| cs.as_ref().ok().map(|cs| cs.session.clone()))
        .collect();
    let mut identities = resolve_identities(&sessions, &cs.cache, limit, &cs.interrupt())
        .map_err(|err| to_shell_error(err, &cs.spans))?
        .into_iter();
    Ok(entered
        .into_iter()
        .map(|(mut origin, session)| {
            let target = session.and_then(|target| Ok((identities.next().unwrap_or_else(missing)?, target)));
            match target {
                Ok((identity, cs)) => {
                    origin.account = Some(identity.account);
                    Ok(Target { cs, origin })
                }
                Err(err) => Err((origin, err)),
            }
        })
        .collect())
}

fn missing() -> Result<aws_core::cache::Identity, AwsError> {
    Err(AwsError::new(aws_core::ErrorKind::Local, "STS GetCallerIdentity", "no identity was resolved"))
}

/// Where errors about one account point: credentials and access at the account's id (or
/// profile name) in the list.
fn account_spans(cs: &CallSession, span: Span) -> ErrorSpans {
    ErrorSpans {
        head: span,
        profile: Some(span),
        target: Some(span),
        ..cs.spans
    }
}

/// Refuses a profile the config files do not have, pointing at it.
fn check_profiles(cs: &CallSession, profiles: &[Spanned<String>]) -> Result<(), ShellError> {
    let env = &cs.session.spec.env;
    let names = block_on(&cs.interrupt(), aws_core::session::profile_names(env))
        .map_err(|_| ShellError::Interrupted { span: cs.spans.head })?
        .map_err(|err| to_shell_error(err, &cs.spans))?;
    for profile in profiles {
        if !names.contains(&profile.item) {
            let known = if names.is_empty() {
                "No profiles are configured (see ~/.aws/config, or $env.AWS_CONFIG_FILE).".to_string()
            } else {
                format!("Configured profiles: {}.", names.join(", "))
            };
            return Err(ShellError::Generic(
                GenericError::new(
                    "Unknown AWS profile in --profiles",
                    format!("the profile `{}` does not exist", profile.item),
                    profile.span,
                )
                .with_help(known)
                .with_code("nuaws::aws::unknown_profile"),
            ));
        }
    }
    Ok(())
}

/// The error of a call none of whose accounts could be entered: each account's own error
/// inside it. An empty table with error rows is too easy to take for "nothing there".
pub fn none_entered(choice: &AccountChoice, failures: Vec<(Origin, AwsError)>) -> ShellError {
    let (span, what) = match choice {
        AccountChoice::Roles { span, role, .. } => (*span, format!("role `{}`", role.item)),
        AccountChoice::Profiles { span, .. } => (*span, "profiles".to_string()),
    };
    let names: Vec<String> = failures
        .iter()
        .map(|(origin, _)| match (&origin.profile, &origin.account) {
            (Some(profile), _) => format!("profile {profile}"),
            (None, Some(account)) => account.clone(),
            (None, None) => String::new(),
        })
        .collect();
    let inner: Vec<ShellError> = failures.into_iter().map(|(origin, err)| origin.error(err)).collect();
    ShellError::Generic(
        GenericError::new(
            "No account could be entered",
            format!("every one failed: {} (each error follows)", names.join(", ")),
            span,
        )
        .with_help(format!(
            "Check that the {what} exists in each account and trusts the caller; `aws sts get-caller-identity` shows who the caller is."
        ))
        .with_code("nuaws::aws::no_account")
        .with_inner(inner),
    )
}
