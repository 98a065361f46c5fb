//! Tab completion for the AWS commands: `s3://` paths (buckets, then keys one level at a time),
//! instance, security group, VPC, subnet, volume, snapshot and image ids, `--region` and
//! `--profile`.
//!
//! Candidates come from the same cache as the commands (same keys, so `aws ec2 instances` fills
//! what Tab shows, and the reverse), for the identity *this line* will use: its `--profile`,
//! `--region` and `--endpoint-url` if typed, else the shell's `$env`. On a miss the listing runs on
//! a thread of its own; Tab waits at most [`DEADLINE`] for it, and whatever arrives later stays in
//! the cache for the next Tab. The prompt never waits on the network beyond the deadline.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use aws_core::cache::{Freshness, RowFeed};
use aws_core::ec2::{self, ListRequest, Listing};
use aws_core::pagination::Next;
use aws_core::row::{Field, Row};
use aws_core::s3::{ListObjects, S3Url, list_buckets, list_objects};
use aws_core::session::profile_names;
use nu_protocol::ast::Expr;
use nu_protocol::engine::{ArgType, EngineState, Stack};
use nu_protocol::{DynamicCompletionCallRef, DynamicSuggestion, ShellError, Spanned};

use crate::context::{AwsContext, CallSession, SessionArgs};
use crate::ec2::cache_params;

/// How long Tab waits for a listing that is not cached.
pub const DEADLINE: Duration = Duration::from_millis(150);

/// Most candidates offered for one Tab (one S3 page).
const MAX_CANDIDATES: usize = 1000;

/// What a command's positional arguments are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Candidates {
    S3Path,
    Ids(Listing),
}

/// Static regions, for when the account's enabled regions are not known in time.
const REGIONS: &[&str] = &[
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-east-1",
    "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
    "ap-southeast-4", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ca-central-1",
    "ca-west-1", "eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3",
    "eu-south-1", "eu-south-2", "eu-north-1", "il-central-1", "me-south-1", "me-central-1",
    "mx-central-1", "sa-east-1",
];

/// The `get_dynamic_completion` of an AWS command (a type with a `ctx: Arc<AwsContext>` field)
/// whose positional arguments are `Option<Candidates>`, an expression of the command `$cmd`.
macro_rules! completion_hook {
    ($cmd:ident => $positional:expr) => {
        #[expect(deprecated, reason = "the dynamic completion API is marked experimental")]
        fn get_dynamic_completion(
            &self,
            engine_state: &nu_protocol::engine::EngineState,
            stack: &mut nu_protocol::engine::Stack,
            call: nu_protocol::DynamicCompletionCallRef,
            arg_type: &nu_protocol::engine::ArgType,
            _experimental: nu_protocol::engine::ExperimentalMarker,
        ) -> Result<Option<Vec<nu_protocol::DynamicSuggestion>>, nu_protocol::ShellError> {
            let $cmd = self;
            $crate::complete::complete(&$cmd.ctx, engine_state, stack, &call, arg_type, $positional)
        }
    };
}

pub(crate) use completion_hook;

/// The completion of one argument of an AWS command; `positional` says what its positional
/// arguments are (`None`: no opinion, Nushell's own completion applies).
pub fn complete(
    ctx: &Arc<AwsContext>,
    engine_state: &EngineState,
    stack: &mut Stack,
    call: &DynamicCompletionCallRef,
    arg_type: &ArgType,
    positional: Option<Candidates>,
) -> Result<Option<Vec<DynamicSuggestion>>, ShellError> {
    let mut args = line_session_args(call);
    // The value being typed is not yet a choice: `--region ap-` lists regions from the line's
    // other settings, not from a region called `ap-`.
    match arg_type {
        ArgType::Flag(flag) if flag == "region" => args.region = None,
        ArgType::Flag(flag) if flag == "profile" => args.profile = None,
        _ => {}
    }
    match (arg_type, positional) {
        (ArgType::Flag(flag), _) if flag == "profile" => Ok(Some(profiles(&args, engine_state, stack))),
        (ArgType::Flag(flag), _) if flag == "region" => {
            let rows = fetch(ctx, engine_state, stack, args, Listing::Regions.into());
            let mut names: Vec<String> = rows
                .iter()
                .filter_map(|r| r.get("name").and_then(Field::as_str).map(str::to_string))
                .collect();
            if names.is_empty() {
                names = REGIONS.iter().map(|r| r.to_string()).collect();
            }
            Ok(Some(names.into_iter().map(|value| suggestion(value, None, true)).collect()))
        }
        (ArgType::Positional(n), Some(Candidates::S3Path)) => {
            let typed = typed_text(call, *n);
            Ok(Some(s3_paths(ctx, engine_state, stack, args, &typed)))
        }
        (ArgType::Positional(_), Some(Candidates::Ids(listing))) => {
            let rows = fetch(ctx, engine_state, stack, args, listing.into());
            Ok(Some(rows.iter().filter_map(|r| id_suggestion(listing, r)).collect()))
        }
        _ => Ok(None),
    }
}

/// The `--profile`, `--region` and `--endpoint-url` typed on the line being completed.
fn line_session_args(call: &DynamicCompletionCallRef) -> SessionArgs {
    let flag = |name: &str| {
        let expr = call.call.get_flag_expr(name)?;
        match &expr.expr {
            Expr::String(s) | Expr::RawString(s) => Some(Spanned { item: s.clone(), span: expr.span }),
            _ => None,
        }
    };
    SessionArgs {
        profile: flag("profile"),
        region: flag("region"),
        endpoint: flag("endpoint-url"),
    }
}

/// The text of the positional argument being completed.
fn typed_text(call: &DynamicCompletionCallRef, n: usize) -> String {
    let positional: Vec<_> = call.call.positional_iter().collect();
    let expr = positional.get(n).or(positional.last().filter(|e| e.span.end >= call.pos));
    match expr.map(|e| &e.expr) {
        Some(Expr::String(s) | Expr::RawString(s) | Expr::GlobPattern(s, _)) => s.clone(),
        _ => String::new(),
    }
}

fn suggestion(value: String, description: Option<String>, whitespace: bool) -> DynamicSuggestion {
    DynamicSuggestion {
        value,
        description,
        append_whitespace: whitespace,
        ..Default::default()
    }
}

fn profiles(args: &SessionArgs, engine_state: &EngineState, stack: &Stack) -> Vec<DynamicSuggestion> {
    let spec = args.spec(engine_state, stack);
    let names = aws_core::runtime::block_on(&aws_core::runtime::NoInterrupt, profile_names(&spec.env))
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    names.into_iter().map(|n| suggestion(n, None, true)).collect()
}

/// What to list for candidates.
#[derive(Debug)]
enum Source {
    Buckets,
    Objects(S3Url),
    Ec2(Listing),
}

impl From<Listing> for Source {
    fn from(listing: Listing) -> Self {
        Source::Ec2(listing)
    }
}

/// Rows of a listing, from the cache or within the deadline from the network; nothing if the
/// network is slower (the listing then completes in the background and fills the cache).
fn fetch(
    ctx: &Arc<AwsContext>,
    engine_state: &EngineState,
    stack: &mut Stack,
    args: SessionArgs,
    source: Source,
) -> Vec<Row> {
    let spec = args.spec(engine_state, stack);
    let cache = ctx.cache(engine_state, stack).clone();
    let Ok(policy) = crate::context::policy(engine_state, stack) else {
        return vec![];
    };
    // One listing in flight per (identity spec, source): Tabs that come while it runs wait for
    // it instead of sending the same request again.
    let key = format!("{spec:?}|{source:?}");
    let (pending, leader) = {
        let mut inflight = ctx.completions.lock().unwrap_or_else(|e| e.into_inner());
        match inflight.get(&key) {
            Some(pending) => (pending.clone(), false),
            None => {
                let pending = Arc::new(Pending::default());
                inflight.insert(key.clone(), pending.clone());
                (pending, true)
            }
        }
    };
    if leader {
        let ctx = ctx.clone();
        let done = pending.clone();
        // A completion never waits for Ctrl-C: it is bounded by the deadline instead.
        let work = move || {
            let rows = CallSession::background(&ctx, &spec, cache, policy, Freshness::Normal)
                .map(|cs| listing_rows(&cs, source))
                .unwrap_or_default();
            ctx.completions.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
            done.finish(rows);
        };
        if std::thread::Builder::new().name("nuaws-complete".into()).spawn(work).is_err() {
            return vec![];
        }
    }
    pending.wait(DEADLINE)
}

/// A completion listing in flight, which any number of Tabs may wait for.
#[derive(Default)]
pub struct Pending {
    rows: Mutex<Option<Vec<Row>>>,
    done: Condvar,
}

impl Pending {
    fn finish(&self, rows: Vec<Row>) {
        *self.rows.lock().unwrap_or_else(|e| e.into_inner()) = Some(rows);
        self.done.notify_all();
    }

    /// The rows, if they arrive within `deadline`.
    fn wait(&self, deadline: Duration) -> Vec<Row> {
        let guard = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .done
            .wait_timeout_while(guard, deadline, |rows| rows.is_none())
            .unwrap_or_else(|e| e.into_inner());
        guard.clone().unwrap_or_default()
    }
}

/// Runs a listing through the cache to its end (so it is stored), keeping the first rows.
fn listing_rows(cs: &CallSession, source: Source) -> Vec<Row> {
    let session = cs.session.clone();
    let feed = match source {
        Source::Buckets => cs.feed("s3", "ListBuckets", String::new(), vec![], || Ok(list_buckets(&session))),
        Source::Objects(url) => {
            let scope = format!("{}/{}", url.bucket, url.key);
            let params = vec![("recursive", "false".to_string())];
            cs.feed("s3", "ListObjectsV2", scope, params, || {
                Ok(list_objects(&session, ListObjects::new(url, false)))
            })
        }
        Source::Ec2(listing) => {
            let request = ListRequest::new(listing);
            let operation = listing.operation();
            let params = cache_params(&request);
            cs.feed("ec2", operation, String::new(), params, || ec2::list(&session, request))
        }
    };
    let Ok(mut feed) = feed else { return vec![] };
    drain(&mut feed)
}

fn drain(feed: &mut RowFeed) -> Vec<Row> {
    let mut rows = Vec::new();
    loop {
        match feed.next_timeout(Duration::from_secs(1)) {
            Next::Item(row) => {
                if rows.len() < MAX_CANDIDATES {
                    rows.push(row);
                }
            }
            Next::End | Next::Error(_) => return rows,
            Next::Pending => {}
        }
    }
}

/// Buckets until the bucket is typed, then the keys and prefixes of the level being typed.
fn s3_paths(
    ctx: &Arc<AwsContext>,
    engine_state: &EngineState,
    stack: &mut Stack,
    args: SessionArgs,
    typed: &str,
) -> Vec<DynamicSuggestion> {
    let after_scheme = typed.strip_prefix("s3://");
    match after_scheme.and_then(|rest| rest.split_once('/')) {
        None => fetch(ctx, engine_state, stack, args, Source::Buckets)
            .iter()
            .filter_map(|r| r.get("name").and_then(Field::as_str))
            .map(|b| suggestion(format!("s3://{b}/"), Some("bucket".into()), false))
            .collect(),
        Some((bucket, key)) => {
            let level = key.rfind('/').map_or("", |i| &key[..=i]);
            let Ok(url) = S3Url::parse(&format!("s3://{bucket}/{level}")) else {
                return vec![];
            };
            fetch(ctx, engine_state, stack, args, Source::Objects(url))
                .iter()
                .filter_map(|r| {
                    let name = r.get("name")?.as_str()?.to_string();
                    let is_dir = r.get("type").and_then(Field::as_str) == Some("dir");
                    let description = match r.get("size") {
                        Some(Field::Bytes(n)) => format!("{n} bytes"),
                        _ => "dir".into(),
                    };
                    Some(suggestion(name, Some(description), !is_dir))
                })
                .collect()
        }
    }
}

/// An id with what a user recognises it by: Name tag, state, type, CIDR, size...
fn id_suggestion(listing: Listing, row: &Row) -> Option<DynamicSuggestion> {
    let text = |col: &str| match row.get(col) {
        Some(Field::Text(s)) => Some(s.clone()),
        Some(Field::Bytes(n)) => Some(format!("{} GiB", n >> 30)),
        Some(Field::Time(t)) => Some(t.format("%Y-%m-%d").to_string()),
        _ => None,
    };
    let id = text("id")?;
    let columns: &[&str] = match listing {
        Listing::Instances => &["name", "state", "type"],
        Listing::SecurityGroups => &["name", "vpc_id"],
        Listing::Vpcs => &["name", "cidr"],
        Listing::Subnets => &["name", "az", "cidr"],
        Listing::Volumes => &["name", "size", "state"],
        Listing::Snapshots => &["name", "size", "started"],
        Listing::Images => &["name", "created"],
        Listing::Regions => &[],
    };
    let description: Vec<String> = columns.iter().filter_map(|c| text(c)).collect();
    Some(suggestion(id, Some(description.join(" · ")).filter(|d| !d.is_empty()), true))
}
