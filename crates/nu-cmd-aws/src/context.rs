//! The state all AWS commands of a process share ([`AwsContext`]: the session pool and the
//! cache), and how one command call finds its session and reads through the cache: `--profile`,
//! `--region` and `--endpoint-url` if given, else the shell's `$env` (`AWS_PROFILE`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL`, credentials, ...), never the process environment, which
//! `$env.X = ...` does not change. Each command also hands the metrics recorded so far to the
//! history on disk, now and then (see `aws_core::metrics::history`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use aws_core::cache::{
    Cache, CachePolicy, DiskCache, Freshness, Request, RowFeed, Stale, Tier, cache_key, shared_group,
};
use aws_core::identity::resolve_identity;
use aws_core::metrics::Metrics;
use aws_core::pagination::PageStream;
use aws_core::row::Row;
use aws_core::session::{Session, SessionSpec, Sessions};
use aws_core::AwsError;
use nu_engine::command_prelude::*;
use nu_protocol::Signals;
use nu_protocol::shell_error::generic::GenericError;

use crate::errors::{ErrorSpans, to_shell_error};
use crate::shared_setting::{SharedSetting, env_shared_config, shared_setting};

/// Process-wide AWS state, shared by every command through an `Arc`.
pub struct AwsContext {
    pub sessions: Sessions,
    /// Where requests and cache lookups are recorded (the process's registry, unless a test
    /// gives one of its own).
    metrics: Arc<Metrics>,
    /// Opened on first use, so a shell that never touches AWS never opens the disk cache.
    cache: OnceLock<Arc<Cache>>,
    /// Where the last cached read was served from, for `aws cache last`.
    last: Mutex<Option<LastRead>>,
    /// Completion listings in flight (see `complete`).
    pub(crate) completions: Mutex<std::collections::HashMap<String, Arc<crate::complete::Pending>>>,
    /// Whether metrics may go to the disk cache: the cache was not off for the last command.
    metrics_to_disk: AtomicBool,
    /// Why the shared cache file left the tier off, until the next foreground command says it.
    shared_problem: Mutex<Option<String>>,
}

/// The context metrics are flushed from at exit (see [`flush_metrics`]). Held for the life of
/// the process: the flush at exit may come after `main` has dropped its engine state.
static PROGRAM_CONTEXT: OnceLock<Arc<AwsContext>> = OnceLock::new();

/// Remembers `ctx` as the program's, for [`flush_metrics`]; the first one wins.
pub(crate) fn set_program_context(ctx: &Arc<AwsContext>) {
    let _ = PROGRAM_CONTEXT.set(ctx.clone());
}

/// Hands the metrics not yet in the history to it, if the program's AWS commands ever opened the
/// cache with the cache on. Run at exit (registered by the first command that could record
/// into the history): the periodic flushes of the command path leave the last seconds of a
/// session behind. Returns whether the history is up to date.
pub fn flush_metrics() -> bool {
    PROGRAM_CONTEXT.get().is_none_or(|ctx| ctx.flush_metrics())
}

/// The directory of the disk cache (and of `aws bench` baselines) for this shell:
/// `$env.NUAWS_CACHE_DIR`, else `$env.XDG_CACHE_HOME/nuaws`, else `~/.cache/nuaws`.
pub fn cache_dir(engine_state: &EngineState, stack: &Stack) -> Option<PathBuf> {
    let var = |name: &str| shell_var(engine_state, stack, name);
    var("NUAWS_CACHE_DIR").map(PathBuf::from).or_else(|| {
        var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|base| base.join("nuaws"))
    })
}

/// The shell's `$env.<name>` as text, unless unset or empty.
pub(crate) fn shell_var(engine_state: &EngineState, stack: &Stack, name: &str) -> Option<String> {
    stack
        .get_env_var(engine_state, name)
        .and_then(|v| v.coerce_string().ok())
        .filter(|v| !v.is_empty())
}

/// Whether `$env.NUAWS_CACHE` turns the cache off for this shell.
pub fn cache_off(engine_state: &EngineState, stack: &Stack) -> bool {
    stack
        .get_env_var(engine_state, "NUAWS_CACHE")
        .and_then(|v| v.coerce_string().ok())
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "off" | "0" | "false" | "no"))
}

/// Which tier served a read, and how old its data was.
#[derive(Clone, Debug)]
pub struct LastRead {
    pub command: String,
    pub key: Option<String>,
    pub tier: Tier,
    pub fetched_at: SystemTime,
    pub at: SystemTime,
}

impl Default for AwsContext {
    fn default() -> Self {
        Self::with_metrics(Metrics::global().clone())
    }
}

impl AwsContext {
    /// A context recording into `metrics` rather than the process's registry.
    pub fn with_metrics(metrics: Arc<Metrics>) -> Self {
        Self {
            sessions: Sessions::default().with_metrics(metrics.clone()),
            metrics,
            cache: OnceLock::new(),
            last: Mutex::default(),
            completions: Mutex::default(),
            metrics_to_disk: AtomicBool::new(false),
            shared_problem: Mutex::default(),
        }
    }

    /// The process's cache, opened under the cache directory of the shell that first needs it:
    /// `$env.NUAWS_CACHE_DIR`, else `$env.XDG_CACHE_HOME/nuaws`, else `~/.cache/nuaws`.
    pub fn cache(&self, engine_state: &EngineState, stack: &Stack) -> &Arc<Cache> {
        self.cache.get_or_init(|| {
            let dir = cache_dir(engine_state, stack);
            // Problems opening it are said by the next foreground command (`CallSession`), never
            // from a completion or warming thread, which would write over the line being typed.
            let mut builder = Cache::builder().metrics(self.metrics.clone());
            // A malformed variable is reported by the command (`CallSession::resolve`), a
            // malformed file once by the first one; the cache runs without the tier meanwhile.
            if !cache_off(engine_state, stack) {
                match shared_setting(engine_state, stack) {
                    SharedSetting::Env(Ok(shared)) | SharedSetting::File { config: Ok(shared), .. } => {
                        builder = builder.shared(shared);
                    }
                    SharedSetting::File { config: Err(problem), .. } => {
                        *self.shared_problem.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(format!("the shared cache tier is off in this shell: {problem}"));
                    }
                    SharedSetting::Env(Err(_)) | SharedSetting::Unset => {}
                }
            }
            Arc::new(match dir {
                Some(dir) => builder.disk_dir(dir).build(),
                None => builder.build(),
            })
        })
    }

    /// Notes where the latest read was served from.
    pub fn record_last(&self, last: LastRead) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(last);
    }

    pub fn last(&self) -> Option<LastRead> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The metrics history of this shell's disk cache, when metrics may be kept there: the disk
    /// tier works and `$env.NUAWS_CACHE` is not off (then nothing of nuaws's touches the disk).
    /// The answer is remembered for the flush at exit, which has no shell to ask.
    pub fn metrics_disk<'a>(&'a self, engine_state: &EngineState, stack: &Stack) -> Option<&'a DiskCache> {
        let to_disk = !cache_off(engine_state, stack);
        self.metrics_to_disk.store(to_disk, Ordering::Relaxed);
        let disk = self.cache(engine_state, stack).disk()?;
        let usable = to_disk && disk.is_enabled();
        if usable && PROGRAM_CONTEXT.get().is_some_and(|p| std::ptr::eq(Arc::as_ptr(p), self)) {
            // The disk cache is open by now, so the flush runs before its own exit handler.
            aws_core::metrics::flush_at_exit(flush_metrics);
        }
        usable.then_some(disk)
    }

    /// [`aws_core::metrics::Metrics::flush`] into the disk cache opened by the last command, if it may be used.
    fn flush_metrics(&self) -> bool {
        let Some(cache) = self.cache.get() else {
            return true;
        };
        match cache.disk().filter(|d| d.is_enabled()) {
            Some(disk) if self.metrics_to_disk.load(Ordering::Relaxed) => cache.metrics().flush(disk),
            _ => true,
        }
    }
}

/// Adds `--refresh` and `--no-cache` to a read command's signature.
pub fn cache_flags(signature: Signature) -> Signature {
    signature
        .switch("refresh", "Bypass the cache and store the fresh answer.", None)
        .switch("no-cache", "Neither read nor write the cache.", None)
}

/// How this call may use the cache: its flags, and `$env.NUAWS_CACHE = off`.
pub fn freshness(
    engine_state: &EngineState,
    stack: &mut Stack,
    call: &Call,
) -> Result<Freshness, ShellError> {
    let off = cache_off(engine_state, stack);
    Ok(if off || call.has_flag(engine_state, stack, "no-cache")? {
        Freshness::Bypass
    } else if call.has_flag(engine_state, stack, "refresh")? {
        Freshness::Refresh
    } else {
        Freshness::Normal
    })
}

/// The TTL policy with the shell's overrides: `$env.NUAWS_CACHE_TTL = {instances: 1min}`.
pub fn policy(engine_state: &EngineState, stack: &Stack) -> Result<CachePolicy, ShellError> {
    let mut policy = CachePolicy::default();
    let Some(value) = stack.get_env_var(engine_state, "NUAWS_CACHE_TTL") else {
        return Ok(policy);
    };
    let span = value.span();
    let record = value.as_record()?;
    for (resource, ttl) in record.iter() {
        let ttl = Duration::from_nanos(ttl.as_duration()?.max(0) as u64);
        policy.set_ttl(resource, ttl).map_err(|msg| {
            ShellError::Generic(
                nu_protocol::shell_error::generic::GenericError::new(
                    format!("Invalid $env.NUAWS_CACHE_TTL: {msg}"),
                    msg,
                    span,
                )
                .with_help("Give TTLs per resource as durations, e.g. {instances: 1min, images: 2day}."),
            )
        })?;
    }
    Ok(policy)
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

/// Everything a command needs to make requests: its session, where to point errors, and the
/// cache with this call's freshness and policy.
#[derive(Clone)]
pub struct CallSession {
    pub session: Arc<Session>,
    pub spans: ErrorSpans,
    pub signals: Signals,
    pub ctx: Arc<AwsContext>,
    pub cache: Arc<Cache>,
    pub freshness: Freshness,
    pub policy: CachePolicy,
    /// The command's name, for `aws cache last`.
    pub command: String,
    /// Reads of this call do not count as "the last read" (background warming).
    pub quiet: bool,
}

impl CallSession {
    /// Resolves the session of this call (building it on first use).
    pub fn resolve(
        ctx: &Arc<AwsContext>,
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
        check_spec_region(&spec, &args, engine_state, stack, call.head)?;
        let signals = engine_state.signals().clone();
        let check = {
            let signals = signals.clone();
            move || signals.interrupted()
        };
        // The only malformed input a session build reports is the endpoint URL.
        let session_spans = ErrorSpans {
            target: spans.endpoint,
            ..spans
        };
        let session = ctx
            .sessions
            .get(&spec, &check)
            .map_err(|err| to_shell_error(err, &session_spans))?;
        if spec.region.is_none() {
            // The region came from the profile: no span of the shell's to point at.
            if let Some(region) = session.region() {
                check_region_name(region, session.endpoint().is_some(), call.head, "the profile's `region`")?;
            }
        }
        env_shared_config(engine_state, stack)?;
        let cache = ctx.cache(engine_state, stack).clone();
        if let Some(problem) = ctx.shared_problem.lock().unwrap_or_else(|e| e.into_inner()).take() {
            eprintln!("nuaws: {problem}");
        }
        // Bucket regions that cost a request to learn are kept on disk, unless the cache is off
        // (then nothing of nuaws's touches the disk).
        let store: Option<Arc<dyn aws_core::s3::RegionStore>> =
            (!cache_off(engine_state, stack)).then(|| Arc::new(CachedRegions(cache.clone())) as _);
        ctx.sessions.bucket_regions().set_store(store);
        // Problems the disk tier ran into (at open or since; it then runs without disk): each
        // said once, here in the foreground.
        for warning in cache.take_warnings() {
            eprintln!("nuaws: {warning}");
        }
        // What earlier commands recorded, into the history (at most every 30 s: a write
        // transaction costs about a millisecond).
        if let Some(disk) = ctx.metrics_disk(engine_state, stack) {
            cache.metrics().flush_if_due(disk);
        }
        Ok(Self {
            session,
            spans,
            signals,
            ctx: ctx.clone(),
            cache,
            // Commands without --refresh/--no-cache are writes: they never read through the cache.
            freshness: freshness(engine_state, stack, call)?,
            policy: policy(engine_state, stack)?,
            command: engine_state.get_decl(call.decl_id).name().to_string(),
            quiet: false,
        })
    }

    /// A session for work off the prompt's thread (warming, completion): built there, never
    /// interrupted by Ctrl-C, never counted as the last read. `None` when no session can be had
    /// (the foreground command would report why).
    pub fn background(ctx: &Arc<AwsContext>, spec: &SessionSpec, cache: Arc<Cache>, policy: CachePolicy, freshness: Freshness) -> Option<Self> {
        let session = ctx.sessions.get(spec, &aws_core::runtime::NoInterrupt).ok()?;
        Some(Self {
            session,
            spans: ErrorSpans::at(Span::unknown()),
            signals: Signals::empty(),
            ctx: ctx.clone(),
            cache,
            freshness,
            policy,
            command: String::new(),
            quiet: true,
        })
    }

    /// This call moved to `region`: same profile, endpoint and environment, so the same
    /// session (and cache entries) as `--region <region>`. For reads spread over regions.
    pub fn in_region(&self, region: &str) -> Result<Self, AwsError> {
        self.with_spec(self.session.spec.clone().with_region(Some(region.to_string())))
    }

    /// This call moved to the session of `spec` (another profile, or a role assumed into
    /// another account), with the same cache, freshness and error spans.
    pub fn with_spec(&self, spec: SessionSpec) -> Result<Self, AwsError> {
        let session = self.ctx.sessions.get(&spec, &self.interrupt())?;
        Ok(Self { session, ..self.clone() })
    }

    /// The key of a request made in this session, or `None` when it is not cached (not
    /// cacheable, bypassed, or the identity cannot be resolved: then the request itself will say
    /// what is wrong, and a cache problem never fails a command).
    fn key(&self, service: &str, operation: &str, scope: String, params: Vec<(&str, String)>) -> Option<String> {
        if self.freshness == Freshness::Bypass {
            return None;
        }
        self.policy.ttl(service, operation)?;
        let roles = self.cache.shared().map_or(&[][..], |s| s.config().role_scopes());
        let identity = resolve_identity(&self.session, &self.cache, &self.interrupt()).ok()?.with_role_scope(roles);
        let region = self.key_region(service, &scope);
        Some(cache_key(
            &identity,
            &Request {
                region: &region,
                endpoint: self.session.endpoint(),
                service,
                operation,
                scope,
                params,
            },
        ))
    }

    /// The region an entry is keyed by: where its data comes from. For S3, the bucket's region
    /// (an S3 scope starts with the bucket).
    fn key_region(&self, service: &str, scope: &str) -> String {
        match s3_bucket(service, scope) {
            Some(bucket) => aws_core::s3::BucketRouter::new(&self.session).region_for(bucket),
            None => self.session.s3_region().to_string(),
        }
    }

    /// Whether [`CallSession::key_region`] is sure: an S3 bucket's region is not known before
    /// its first request, which finds it out; its answer is stored under the region it found.
    fn key_region_known(&self, service: &str, scope: &str) -> bool {
        s3_bucket(service, scope).is_none_or(|bucket| {
            self.session
                .bucket_regions()
                .get(self.session.bucket_scope(), bucket)
                .is_some()
        })
    }

    /// A listing through the cache: replayed when fresh, else started and recorded.
    pub fn feed(
        &self,
        service: &str,
        operation: &str,
        scope: String,
        params: Vec<(&str, String)>,
        start: impl FnOnce() -> Result<PageStream<Row>, AwsError>,
    ) -> Result<RowFeed, AwsError> {
        let (scope_copy, params_copy): (String, Vec<(String, String)>) =
            (scope.clone(), params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect());
        // Asked before the listing starts: its first page may learn the region at any moment.
        let region_known = self.key_region_known(service, &scope_copy);
        let feed = match self.key(service, operation, scope, params) {
            Some(key) => {
                let ttl = self.policy.ttl(service, operation);
                let mut feed = RowFeed::cached(&self.cache, key.clone(), service, ttl, self.freshness, start)?;
                if !region_known {
                    let (this, service, operation) = (self.clone(), service.to_string(), operation.to_string());
                    feed = feed.store_under(move || {
                        let params = params_copy.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                        this.key(&service, &operation, scope_copy, params)
                    });
                }
                self.record(Some(key), feed.source.tier, feed.source.fetched_at);
                feed
            }
            None => {
                let feed = RowFeed::live(start()?);
                self.record(None, Tier::Network, feed.source.fetched_at);
                feed
            }
        };
        Ok(feed)
    }

    /// One cached read (not a listing): get-or-fetch, sharing the request with concurrent
    /// identical reads.
    pub fn read(
        &self,
        service: &str,
        operation: &str,
        scope: String,
        params: Vec<(&str, String)>,
        fetch: impl FnOnce() -> Result<Row, AwsError>,
    ) -> Result<Row, AwsError> {
        let region_known = self.key_region_known(service, &scope);
        let Some(key) = self.key(service, operation, scope.clone(), params.clone()) else {
            self.record(None, Tier::Network, SystemTime::now());
            return fetch();
        };
        let ttl = self.policy.ttl(service, operation).unwrap_or_default();
        if !region_known {
            // The fetch finds the bucket's region: its answer is stored under that region's key.
            if self.freshness == Freshness::Normal {
                if let Some((entry, tier)) = self.cache.lookup_or_wait(&key, service) {
                    self.record(Some(key), tier, entry.created_at);
                    return Ok(entry.rows.first().cloned().unwrap_or_default());
                }
            }
            self.cache.count_network(&key, service);
            let row = fetch().inspect_err(|_| self.cache.abandon(&key))?;
            let found = self.key(service, operation, scope, params).unwrap_or_else(|| key.clone());
            self.cache.store(found.clone(), vec![row.clone()], ttl);
            if found != key {
                self.cache.abandon(&key);
            }
            self.record(Some(found), Tier::Network, SystemTime::now());
            return Ok(row);
        }
        let (entry, tier) = self
            .cache
            .get_or_fetch(&key, service, ttl, self.freshness, || fetch().map(|row| vec![row]))?;
        self.record(Some(key), tier, entry.created_at);
        Ok(entry.rows.first().cloned().unwrap_or_default())
    }

    /// For reads made many at once by the engine: the fresh cached row, if there is one.
    pub fn cached_row(&self, service: &str, operation: &str, scope: &str) -> Option<Row> {
        let key = self.key(service, operation, scope.to_string(), vec![])?;
        if self.freshness != Freshness::Normal {
            return None;
        }
        let (entry, _tier) = self.cache.lookup(&key, service)?;
        Some(entry.rows.first().cloned().unwrap_or_default())
    }

    /// Stores a row the engine fetched after [`CallSession::cached_row`] had none, under the key
    /// of now: the request may have found its bucket's region.
    pub fn store_row(&self, service: &str, operation: &str, scope: &str, row: Row) {
        let Some(key) = self.key(service, operation, scope.to_string(), vec![]) else {
            return;
        };
        self.cache.count_network(&key, service);
        if let Some(ttl) = self.policy.ttl(service, operation) {
            self.cache.store(key, vec![row], ttl);
        }
    }


    /// Objects of `bucket` were (or are about to be) written or deleted: what the cache holds
    /// about them is stale, and so are answers the engine keeps for its dedup window.
    /// For teammates, the generation of the bucket's group moves in the shared tier.
    pub fn objects_written(&self, bucket: &str, keys: &[String]) {
        let groups = self.shared_groups("s3", "ListObjectsV2", format!("{bucket}/"));
        self.cache.invalidate_stale(&Stale { matches: &stale_after_object_writes(bucket, keys), groups });
        aws_core::engine::Engine::global().forget_finished();
    }

    /// As [`CallSession::objects_written`], for writes anywhere below `prefix`.
    pub fn objects_written_below(&self, bucket: &str, prefix: &str) {
        let groups = self.shared_groups("s3", "ListObjectsV2", format!("{bucket}/"));
        self.cache.invalidate_stale(&Stale { matches: &stale_after_writes_below(bucket, prefix), groups });
        aws_core::engine::Engine::global().forget_finished();
    }

    /// Instances of this call's region changed state: its instance listings are stale, here
    /// and (through the shared tier) for teammates.
    pub fn instances_changed(&self) {
        let Some(region) = self.session.region().map(str::to_string) else {
            return;
        };
        let groups = self.shared_groups("ec2", "DescribeInstances", String::new());
        self.cache.invalidate_stale(&Stale { matches: &stale_after_instance_change(&region), groups });
    }

    /// The shared-tier groups a request like this one belongs to (none without a shared tier).
    fn shared_groups(&self, service: &str, operation: &str, scope: String) -> Vec<String> {
        if self.cache.shared().is_none() {
            return Vec::new();
        }
        self.key(service, operation, scope, vec![]).map(|k| shared_group(&k)).into_iter().collect()
    }

    fn record(&self, key: Option<String>, tier: Tier, fetched_at: SystemTime) {
        if self.quiet {
            return;
        }
        self.ctx.record_last(LastRead {
            command: self.command.clone(),
            key,
            tier,
            fetched_at,
            at: SystemTime::now(),
        });
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

/// The bucket an S3 entry's scope is about.
fn s3_bucket<'a>(service: &str, scope: &'a str) -> Option<&'a str> {
    let bucket = scope.split('/').next().filter(|b| !b.is_empty())?;
    (service == "s3").then_some(bucket)
}

/// Bucket regions kept in the cache, as entries of their own (`_/global/s3/BucketRegion/...`),
/// so they are listed and cleared like any other.
struct CachedRegions(Arc<Cache>);

/// A bucket moves region only by being deleted and made again, and a later redirect corrects
/// a stale answer.
const BUCKET_REGION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

impl CachedRegions {
    fn key(scope: &str, bucket: &str) -> String {
        // FNV-1a: stable across builds, so a new nuaws still finds what an old one learned. It
        // only tells endpoints apart in one user's cache; it guards nothing.
        let digest = scope
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        format!("_/global/s3/BucketRegion/{bucket}#{digest:016x}")
    }
}

impl aws_core::s3::RegionStore for CachedRegions {
    fn load(&self, scope: &str, bucket: &str) -> Option<String> {
        let entry = self.0.peek(&Self::key(scope, bucket))?;
        entry.rows.first()?.get("region")?.as_str().map(str::to_string)
    }

    fn save(&self, scope: &str, bucket: &str, region: &str) {
        let row = Row::new().with("region", aws_core::row::Field::Text(region.to_string()));
        self.0.store(Self::key(scope, bucket), vec![row], BUCKET_REGION_TTL);
    }
}

/// Refuses a region name AWS does not have, pointing at where it was written.
fn check_spec_region(
    spec: &SessionSpec,
    args: &SessionArgs,
    engine_state: &EngineState,
    stack: &Stack,
    head: Span,
) -> Result<(), ShellError> {
    let Some(region) = &spec.region else {
        return Ok(());
    };
    let (span, source) = match &args.region {
        Some(flag) => (flag.span, "--region"),
        None => {
            let var = ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .into_iter()
                .find(|name| stack.get_env_var(engine_state, name).is_some_and(|v| v.coerce_str().is_ok_and(|v| v == region.as_str())))
                .unwrap_or("AWS_REGION");
            // Where the variable was set in this shell, when it was (`$env.AWS_REGION = '...'`).
            let span = stack
                .get_env_var(engine_state, var)
                .map(|v| v.span())
                .filter(|s| *s != Span::unknown())
                .unwrap_or(head);
            (span, if var == "AWS_REGION" { "$env.AWS_REGION" } else { "$env.AWS_DEFAULT_REGION" })
        }
    };
    check_region_name(region, spec.endpoint.is_some(), span, source)
}

pub(crate) fn check_region_name(region: &str, custom_endpoint: bool, span: Span, source: &str) -> Result<(), ShellError> {
    let Err(unknown) = aws_core::region::check_region(region, custom_endpoint) else {
        return Ok(());
    };
    let label = match unknown.suggestion {
        Some(near) => format!("`{}` is not an AWS region; did you mean `{near}`?", unknown.name),
        None => format!("`{}` is not an AWS region", unknown.name),
    };
    Err(ShellError::Generic(
        GenericError::new(format!("Unknown AWS region in {source}"), label, span)
            .with_help("Name a region like us-east-1 or eu-west-1; `aws ec2 regions` lists the ones enabled for the account.")
            .with_code("nuaws::aws::unknown_region"),
    ))
}

/// A flag's value comes with the span of the whole `--flag value`; narrow it to the value when the
/// value is written literally (bare or quoted), so errors underline just the value.
pub(crate) fn value_span(engine_state: &EngineState, value: Spanned<String>) -> Spanned<String> {
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

/// Entries writes to keys of `bucket` make stale: listings of the bucket whose prefix one of the
/// keys falls under, and the keys' own metadata.
pub fn stale_after_object_writes(bucket: &str, keys: &[String]) -> impl Fn(&str) -> bool + use<> {
    stale_after_writes(bucket, keys.to_vec(), false)
}

/// Entries writes to any keys below `prefix` make stale: [`stale_after_object_writes`] for every
/// key that starts with it, known in advance (a recursive copy), so one invalidation covers a
/// whole job instead of one per object.
pub fn stale_after_writes_below(bucket: &str, prefix: &str) -> impl Fn(&str) -> bool + use<> {
    stale_after_writes(bucket, vec![prefix.to_string()], true)
}

/// `keys` written, or with `below`, anything under them.
fn stale_after_writes(bucket: &str, keys: Vec<String>, below: bool) -> impl Fn(&str) -> bool + use<> {
    let bucket = bucket.to_string();
    move |cached: &str| {
        let Some(parts) = aws_core::cache::key_parts(cached) else {
            return false;
        };
        let Some(rest) = parts.scope.strip_prefix(bucket.as_str()).and_then(|r| r.strip_prefix('/')) else {
            return false;
        };
        parts.service == "s3"
            && match parts.operation {
                "ListObjectsV2" => keys.iter().any(|k| k.starts_with(rest) || (below && rest.starts_with(k.as_str()))),
                "HeadObject" => keys.iter().any(|k| k == rest || (below && rest.starts_with(k.as_str()))),
                _ => false,
            }
    }
}

/// Entries an instance state change in `region` makes stale: instance listings (and volumes,
/// which a termination may delete).
pub fn stale_after_instance_change(region: &str) -> impl Fn(&str) -> bool + use<> {
    let region = region.to_string();
    move |cached: &str| {
        aws_core::cache::key_parts(cached).is_some_and(|p| {
            p.service == "ec2"
                && p.region == region
                && matches!(p.operation, "DescribeInstances" | "DescribeVolumes")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(service: &str, operation: &str, region: &str, scope: &str) -> String {
        format!("111111111111/{region}/{service}/{operation}/{scope}#0011223344556677")
    }

    #[test]
    fn an_object_write_invalidates_exactly_its_listings_and_metadata() {
        let stale = stale_after_object_writes("b1", &["logs/2024/x.txt".into()]);
        assert!(stale(&key("s3", "ListObjectsV2", "us-east-1", "b1/")));
        assert!(stale(&key("s3", "ListObjectsV2", "us-east-1", "b1/logs/")));
        assert!(stale(&key("s3", "ListObjectsV2", "us-east-1", "b1/logs/2024/x")));
        assert!(stale(&key("s3", "HeadObject", "us-east-1", "b1/logs/2024/x.txt")));
        assert!(!stale(&key("s3", "ListObjectsV2", "us-east-1", "b1/data/")));
        assert!(!stale(&key("s3", "ListObjectsV2", "us-east-1", "b10/logs/")));
        assert!(!stale(&key("s3", "HeadObject", "us-east-1", "b1/logs/2024/y.txt")));
        assert!(!stale(&key("s3", "ListBuckets", "us-east-1", "")));
        assert!(!stale(&key("ec2", "DescribeInstances", "us-east-1", "")));
    }

    #[test]
    fn writes_below_a_prefix_invalidate_its_listings_above_and_below_and_its_metadata() {
        let stale = stale_after_writes_below("b1", "up/");
        assert!(stale(&key("s3", "ListObjectsV2", "us-east-1", "b1/")));
        assert!(stale(&key("s3", "ListObjectsV2", "us-east-1", "b1/up/")));
        assert!(stale(&key("s3", "ListObjectsV2", "us-east-1", "b1/up/nested/")));
        assert!(stale(&key("s3", "HeadObject", "us-east-1", "b1/up/nested/f.txt")));
        assert!(!stale(&key("s3", "ListObjectsV2", "us-east-1", "b1/down/")));
        assert!(!stale(&key("s3", "HeadObject", "us-east-1", "b1/upper.txt")));
        assert!(!stale(&key("s3", "ListObjectsV2", "us-east-1", "b2/up/")));
    }

    #[test]
    fn an_instance_change_invalidates_its_region_only() {
        let stale = stale_after_instance_change("eu-west-1");
        assert!(stale(&key("ec2", "DescribeInstances", "eu-west-1", "")));
        assert!(stale(&key("ec2", "DescribeVolumes", "eu-west-1", "")));
        assert!(!stale(&key("ec2", "DescribeInstances", "us-east-1", "")));
        assert!(!stale(&key("ec2", "DescribeImages", "eu-west-1", "")));
    }
}
