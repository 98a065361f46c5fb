//! Sessions: the SDK configuration and clients for one (profile, region, endpoint, AWS
//! environment), built once and reused by every command, so the process keeps one HTTP
//! connection pool per client and resolves credentials once (the SDK caches them).
//!
//! The shell's environment is not the process environment: a user who writes
//! `$env.AWS_PROFILE = 'prod'` has changed nothing the SDK would see. So callers pass the AWS part
//! of their environment in a [`SessionSpec`], and aws-config reads that instead of the process's.
//!
//! Every client carries a [`MetricsInterceptor`], so each request is recorded in the sessions'
//! metrics registry ([`Metrics::global`] unless given another).
//!
//! A spec may name a role to assume ([`SessionSpec::role`], for `--accounts`): its session is
//! the caller's own session (same profile, region, endpoint) with the role's credentials, and
//! the sessions of one role in every region share one credentials provider, so the role is
//! assumed once per process (until its credentials near their expiry), not once per region.
//!
//! Not here: which identity (account, ARN) a session resolves to; that is the cache's concern.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::os_shim_internal::{Env, Fs};
use aws_types::region::Region;

use crate::accounts::{AssumeRole, CachedCredentials};
use crate::error::{AwsError, ErrorKind};
use crate::metrics::{Metrics, MetricsInterceptor};
use crate::runtime::{Interrupt, block_on};
use crate::s3::route::BucketRegions;

/// The variables aws-config reads besides the `AWS_*` family: where the home directory is.
const HOME_VARS: &[&str] = &["HOME", "USERPROFILE", "HOMEDRIVE", "HOMEPATH"];

/// Everything that decides which account, region and endpoint a request goes to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SessionSpec {
    /// `--profile`, else `AWS_PROFILE` / `AWS_DEFAULT_PROFILE` from the environment.
    pub profile: Option<String>,
    /// `--region`, else `AWS_REGION` / `AWS_DEFAULT_REGION`, else the profile's region.
    pub region: Option<String>,
    /// `--endpoint-url`, else `AWS_ENDPOINT_URL`, else the profile's `endpoint_url`.
    pub endpoint: Option<String>,
    /// The AWS-related environment aws-config resolves against (credentials, config file paths,
    /// SSO, web identity, ...).
    pub env: BTreeMap<String, String>,
    /// A role the session assumes with the credentials the rest of the spec gives (`--accounts`).
    pub role: Option<AssumeRole>,
}

impl SessionSpec {
    /// Builds a spec from the caller's environment variables, keeping only what aws-config reads.
    pub fn from_env<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let env: BTreeMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            // An empty variable means "unset" (and an empty endpoint URL makes the SDK panic).
            .filter(|(k, v): &(String, String)| !v.is_empty() && (k.starts_with("AWS_") || HOME_VARS.contains(&k.as_str())))
            .collect();
        let pick = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| env.get(*n).filter(|v| !v.is_empty()).cloned())
        };
        Self {
            profile: pick(&["AWS_PROFILE", "AWS_DEFAULT_PROFILE"]),
            region: pick(&["AWS_REGION", "AWS_DEFAULT_REGION"]),
            endpoint: pick(&["AWS_ENDPOINT_URL"]),
            env,
            role: None,
        }
    }

    pub fn with_profile(mut self, profile: Option<String>) -> Self {
        if profile.is_some() {
            self.profile = profile;
        }
        self
    }

    pub fn with_region(mut self, region: Option<String>) -> Self {
        if region.is_some() {
            self.region = region;
        }
        self
    }

    /// An empty endpoint means "no override", as for the other flags.
    pub fn with_endpoint(mut self, endpoint: Option<String>) -> Self {
        if let Some(endpoint) = endpoint.filter(|e| !e.is_empty()) {
            self.endpoint = Some(endpoint);
        }
        self
    }

    /// The same spec assuming `role` (or, with `None`, the caller's own credentials).
    pub fn with_role(mut self, role: Option<AssumeRole>) -> Self {
        self.role = role;
        self
    }

    fn sdk_env(&self) -> Env {
        let map: HashMap<String, String> = self.env.clone().into_iter().collect();
        Env::from(map)
    }
}

/// Retry and timeout policy of every client (SDK standard retry mode: the adaptive control of
/// concurrency belongs to nuaws's own engine, not stacked inside the SDK).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSettings {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    pub connect_timeout: Duration,
    /// Limit on one attempt (a stalled server does not hang a command).
    pub attempt_timeout: Duration,
    /// Limit on a whole operation, retries included.
    pub operation_timeout: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            connect_timeout: Duration::from_millis(3100),
            attempt_timeout: Duration::from_secs(30),
            operation_timeout: Duration::from_secs(90),
        }
    }
}

/// How many attempts a client makes per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Attempts {
    /// The SDK's standard retries ([`ClientSettings::max_attempts`]).
    Standard,
    /// One: for the request engine, which retries itself.
    Single,
}

/// How S3 requests name the bucket: `https://s3.region.amazonaws.com/bucket/key` (path) or
/// `https://bucket.s3.region.amazonaws.com/key` (virtual). The AWS CLI's
/// `s3 = addressing_style = ...` of the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressingStyle {
    /// Virtual on AWS, path with a custom endpoint (`bucket.localhost` rarely resolves).
    Auto,
    Path,
    Virtual,
}

/// The SDK configuration and clients of one [`SessionSpec`].
pub struct Session {
    pub spec: SessionSpec,
    /// Unique in the process: requests of different sessions are never deduplicated together.
    id: u64,
    config: SdkConfig,
    s3: OnceLock<aws_sdk_s3::Client>,
    /// S3 with one attempt per request, for the engine, which retries itself (it must see each
    /// throttle to adapt). Built from the same configuration, so it shares the HTTP client and
    /// its connection pool.
    s3_single_attempt: OnceLock<aws_sdk_s3::Client>,
    /// S3 clients of other regions, for buckets that live there (see [`crate::s3::route`]).
    s3_regional: Mutex<HashMap<(String, Attempts), aws_sdk_s3::Client>>,
    /// Where the buckets are: shared by every session of the process.
    bucket_regions: Arc<BucketRegions>,
    /// See [`Session::bucket_scope`].
    bucket_scope: String,
    addressing: AddressingStyle,
    ec2: OnceLock<aws_sdk_ec2::Client>,
    sts: OnceLock<aws_sdk_sts::Client>,
    /// Where the clients' requests are recorded.
    metrics: Arc<Metrics>,
    /// The identity of the credentials last seen, by fingerprint (credentials may rotate), and
    /// when it was established.
    identity: Mutex<Option<(String, crate::cache::Identity, std::time::Instant)>>,
    /// The role this session assumed, and the credentials it assumed it with.
    assumed: Option<(AssumeRole, SharedCredentialsProvider)>,
}

impl Session {
    /// The identity established for these credentials.
    pub(crate) fn known_identity(&self, fingerprint: &str) -> Option<crate::cache::Identity> {
        let known = self.identity.lock().unwrap_or_else(|e| e.into_inner());
        known
            .as_ref()
            .filter(|(fp, _, _)| fp == fingerprint)
            .map(|(_, id, _)| id.clone())
    }

    /// The identity established less than `within` ago, whatever the credentials now are: a
    /// session's configuration fixes its principal, and asking the provider again (for SSO or an
    /// assumed role, a network call) on every command would cost more than the cache saves.
    pub(crate) fn recent_identity(&self, within: std::time::Duration) -> Option<crate::cache::Identity> {
        let known = self.identity.lock().unwrap_or_else(|e| e.into_inner());
        known
            .as_ref()
            .filter(|(_, _, at)| at.elapsed() < within)
            .map(|(_, id, _)| id.clone())
    }

    pub(crate) fn remember_identity(&self, fingerprint: &str, identity: &crate::cache::Identity) {
        *self.identity.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((fingerprint.to_string(), identity.clone(), std::time::Instant::now()));
    }

    /// The role this session assumed (`--accounts`), and the provider of the credentials it
    /// assumes it with: they, not the role's short-lived ones, name the session stably.
    pub fn assumed(&self) -> Option<(&AssumeRole, &SharedCredentialsProvider)> {
        self.assumed.as_ref().map(|(role, base)| (role, base))
    }

    /// The region requests go to, when one is configured anywhere.
    pub fn region(&self) -> Option<&str> {
        self.config.region().map(Region::as_ref)
    }

    /// The region, or an error saying how to set one.
    pub fn require_region(&self, operation: &str) -> Result<&str, AwsError> {
        self.region().ok_or_else(|| {
            AwsError::new(
                ErrorKind::NoRegion,
                operation,
                "no AWS region is configured",
            )
        })
    }

    pub fn endpoint(&self) -> Option<&str> {
        self.config.endpoint_url()
    }

    pub fn sdk_config(&self) -> &SdkConfig {
        &self.config
    }

    /// The S3 client. Without a configured region S3 still works for global calls, so it falls
    /// back to us-east-1 as the AWS CLI does. Requests about a bucket go through
    /// [`crate::s3::route::BucketRouter`] instead, which picks the client of the bucket's region.
    pub fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3.get_or_init(|| {
            let region = self.config.region().is_none().then(|| Region::from_static("us-east-1"));
            self.s3_client(region)
        })
    }

    /// The region S3 requests go to when nothing else is known: the session's, else us-east-1.
    pub fn s3_region(&self) -> &str {
        self.region().unwrap_or("us-east-1")
    }

    /// The S3 client of `region`, built once per region and kept; they all share the session's
    /// HTTP connection pool and credentials.
    pub fn s3_in(&self, region: &str, attempts: Attempts) -> aws_sdk_s3::Client {
        if region == self.s3_region() {
            return match attempts {
                Attempts::Standard => self.s3().clone(),
                Attempts::Single => self.s3_single_attempt().clone(),
            };
        }
        let mut clients = self.s3_regional.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry((region.to_string(), attempts))
            .or_insert_with(|| {
                let client = self.s3_client(Some(Region::new(region.to_string())));
                match attempts {
                    Attempts::Standard => client,
                    Attempts::Single => single_attempt(&client),
                }
            })
            .clone()
    }

    /// The map of bucket regions this session routes by.
    pub fn bucket_regions(&self) -> &Arc<BucketRegions> {
        &self.bucket_regions
    }

    /// What a bucket's region is relative to: one endpoint (a local server's buckets are not
    /// AWS's), or one AWS partition.
    pub fn bucket_scope(&self) -> &str {
        &self.bucket_scope
    }

    pub fn addressing_style(&self) -> AddressingStyle {
        self.addressing
    }

    /// The S3 client the request engine uses: no SDK retries (see the field's comment).
    pub fn s3_single_attempt(&self) -> &aws_sdk_s3::Client {
        self.s3_single_attempt.get_or_init(|| single_attempt(self.s3()))
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    fn s3_client(&self, region: Option<Region>) -> aws_sdk_s3::Client {
        let mut builder = aws_sdk_s3::config::Builder::from(&self.config);
        if let Some(region) = region {
            builder = builder.region(region);
        }
        let path_style = match self.addressing {
            AddressingStyle::Path => true,
            AddressingStyle::Virtual => false,
            AddressingStyle::Auto => self.config.endpoint_url().is_some(),
        };
        builder = builder.force_path_style(path_style);
        aws_sdk_s3::Client::from_conf(builder.interceptor(self.interceptor()).build())
    }

    /// The EC2 client; EC2 is regional, so this needs a region.
    pub fn ec2(&self) -> Result<&aws_sdk_ec2::Client, AwsError> {
        self.require_region("EC2")?;
        Ok(self.ec2.get_or_init(|| {
            let builder = aws_sdk_ec2::config::Builder::from(&self.config);
            aws_sdk_ec2::Client::from_conf(builder.interceptor(self.interceptor()).build())
        }))
    }

    /// The STS client (for the caller's identity).
    pub fn sts(&self) -> &aws_sdk_sts::Client {
        self.sts.get_or_init(|| {
            let builder = aws_sdk_sts::config::Builder::from(&self.config);
            aws_sdk_sts::Client::from_conf(builder.interceptor(self.interceptor()).build())
        })
    }

    fn interceptor(&self) -> MetricsInterceptor {
        MetricsInterceptor::with_registry(self.metrics.clone())
    }
}

/// The same client without the SDK's retries (it shares the HTTP client and its pool).
fn single_attempt(client: &aws_sdk_s3::Client) -> aws_sdk_s3::Client {
    let config = client.config().to_builder().retry_config(RetryConfig::disabled()).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The AWS partition a region belongs to.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-isof-") {
        "aws-iso-f"
    } else if region.starts_with("eu-isoe-") {
        "aws-iso-e"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("eusc-") {
        "aws-eusc"
    } else {
        "aws"
    }
}

/// All sessions of the process, keyed by spec.
pub struct Sessions {
    settings: ClientSettings,
    sessions: Mutex<HashMap<SessionSpec, Arc<Session>>>,
    /// The assumed roles' credentials, by spec without its region: one provider (and one
    /// AssumeRole) for a role's sessions in every region.
    assumed: Mutex<HashMap<SessionSpec, SharedCredentialsProvider>>,
    metrics: Arc<Metrics>,
    bucket_regions: Arc<BucketRegions>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new(ClientSettings::default())
    }
}

impl Sessions {
    pub fn new(settings: ClientSettings) -> Self {
        Self {
            settings,
            sessions: Mutex::default(),
            assumed: Mutex::default(),
            metrics: Metrics::global().clone(),
            bucket_regions: Arc::default(),
        }
    }

    /// Where the buckets of every session are.
    pub fn bucket_regions(&self) -> &Arc<BucketRegions> {
        &self.bucket_regions
    }

    /// Records the requests of sessions built from now on into `metrics` instead of
    /// [`Metrics::global`].
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The session for `spec`, built on first use.
    pub fn get(&self, spec: &SessionSpec, interrupt: &dyn Interrupt) -> Result<Arc<Session>, AwsError> {
        if let Some(session) = self.lock().get(spec) {
            return Ok(session.clone());
        }
        let session = Arc::new(self.build(spec, interrupt)?);
        // Two threads may have built one each; keep the first so every caller shares a pool.
        Ok(self
            .lock()
            .entry(spec.clone())
            .or_insert(session)
            .clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionSpec, Arc<Session>>> {
        // A panic while holding this lock cannot leave the map half-written: recover it.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn build(&self, spec: &SessionSpec, interrupt: &dyn Interrupt) -> Result<Session, AwsError> {
        if let Some(role) = &spec.role {
            return self.build_assumed(spec, role, interrupt);
        }
        if let Some(endpoint) = &spec.endpoint {
            check_endpoint(endpoint)?;
        }
        check_root_certificates()?;
        let env = spec.sdk_env();
        let settings = &self.settings;
        let (config, addressing) = block_on(interrupt, async {
            let addressing = match &spec.profile {
                Some(profile) => check_profile_exists(&env, profile).await?,
                // The default profile, if the files have one; their absence is no error here.
                None => load_profiles(&env, None).await.ok().map_or(AddressingStyle::Auto, |set| {
                    set.get_profile(set.selected_profile()).map_or(AddressingStyle::Auto, addressing_style)
                }),
            };
            let mut loader = aws_config::defaults(BehaviorVersion::latest())
                .env(env.clone())
                .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts))
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(settings.connect_timeout)
                        .operation_attempt_timeout(settings.attempt_timeout)
                        .operation_timeout(settings.operation_timeout)
                        .build(),
                );
            if let Some(profile) = &spec.profile {
                loader = loader.profile_name(profile);
            }
            if let Some(region) = &spec.region {
                loader = loader.region(Region::new(region.clone()));
            }
            if let Some(endpoint) = &spec.endpoint {
                loader = loader.endpoint_url(endpoint);
            }
            Ok::<_, AwsError>((loader.load().await, addressing))
        })
        .map_err(|_| AwsError::interrupted("loading AWS configuration"))??;
        Ok(self.session(spec, config, addressing, None))
    }

    /// The caller's own session with `role`'s credentials: same region, endpoint and settings,
    /// so the STS requests that assume the role go where the rest go.
    fn build_assumed(&self, spec: &SessionSpec, role: &AssumeRole, interrupt: &dyn Interrupt) -> Result<Session, AwsError> {
        let base = self.get(&spec.clone().with_role(None), interrupt)?;
        let base_credentials = base.config.credentials_provider().ok_or_else(|| {
            AwsError::new(ErrorKind::NoCredentials, "STS AssumeRole", "no credentials to assume the role with")
        })?;
        let shared_key = SessionSpec { region: None, ..spec.clone() };
        let known = self.assumed.lock().unwrap_or_else(|e| e.into_inner()).get(&shared_key).cloned();
        let provider = match known {
            Some(provider) => provider,
            None => {
                let provider = block_on(
                    interrupt,
                    AssumeRoleProvider::builder(role.role_arn.clone())
                        .session_name(role.session_name.clone())
                        .configure(&base.config)
                        .build(),
                )
                .map_err(|_| AwsError::interrupted("loading AWS configuration"))?;
                // Two threads may have built one each: keep the first, so the role is assumed once.
                self.assumed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(shared_key)
                    .or_insert_with(|| CachedCredentials::shared(provider))
                    .clone()
            }
        };
        let config = base.config.to_builder().credentials_provider(provider).build();
        Ok(self.session(spec, config, base.addressing, Some((role.clone(), base_credentials))))
    }

    fn session(
        &self,
        spec: &SessionSpec,
        config: SdkConfig,
        addressing: AddressingStyle,
        assumed: Option<(AssumeRole, SharedCredentialsProvider)>,
    ) -> Session {
        let bucket_scope = match config.endpoint_url() {
            Some(endpoint) => endpoint.to_string(),
            None => partition_of(config.region().map_or("us-east-1", Region::as_ref)).to_string(),
        };
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Session {
            spec: spec.clone(),
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            config,
            s3: OnceLock::new(),
            s3_single_attempt: OnceLock::new(),
            s3_regional: Mutex::default(),
            bucket_regions: self.bucket_regions.clone(),
            bucket_scope,
            addressing,
            ec2: OnceLock::new(),
            sts: OnceLock::new(),
            metrics: self.metrics.clone(),
            identity: Mutex::default(),
            assumed,
        }
    }
}

/// The SDK builds its TLS client with the machine's root CA certificates, and panics when there
/// are none (even for an `http://` endpoint): look for them as it does (the same crate), once per
/// process, so their absence is an error saying what to install.
fn check_root_certificates() -> Result<(), AwsError> {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let found = *FOUND.get_or_init(|| !rustls_native_certs::load_native_certs().certs.is_empty());
    if found {
        return Ok(());
    }
    Err(AwsError::new(
        ErrorKind::Network,
        "configuration",
        "no root CA certificates were found on this machine, so no TLS connection can be made \
         (install the `ca-certificates` package, or start nuaws with SSL_CERT_FILE naming a PEM bundle)",
    )
    .with_code("NoRootCertificates"))
}

/// An endpoint must be an absolute http(s) URL; the SDK would panic on some malformed ones.
fn check_endpoint(endpoint: &str) -> Result<(), AwsError> {
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') && !host.contains(char::is_whitespace) => Ok(()),
        _ => Err(AwsError::new(
            ErrorKind::InvalidInput,
            "configuration",
            format!("the endpoint `{endpoint}` is not an http:// or https:// URL"),
        )),
    }
}

/// The profile names of the shared config and credentials files, as aws-config reads them for
/// this environment (for completions and for checking a `--profile`).
pub async fn profile_names(env_vars: &BTreeMap<String, String>) -> Result<Vec<String>, AwsError> {
    let env = Env::from(env_vars.clone().into_iter().collect::<HashMap<_, _>>());
    let set = load_profiles(&env, None).await?;
    let mut names: Vec<String> = set.profiles().map(str::to_string).collect();
    names.sort();
    Ok(names)
}

async fn load_profiles(
    env: &Env,
    selected: Option<Cow<'static, str>>,
) -> Result<aws_config::profile::ProfileSet, AwsError> {
    aws_config::profile::load(&Fs::real(), env, &Default::default(), selected)
        .await
        .map_err(|err| {
            AwsError::new(
                ErrorKind::UnknownProfile,
                "configuration",
                format!("cannot read the AWS config files: {err}"),
            )
        })
}

/// The profile's `s3 = addressing_style = path|virtual|auto`, as the AWS CLI reads it (a
/// nested section: its raw text is the sub-properties, one per line).
fn addressing_style(profile: &aws_config::profile::Profile) -> AddressingStyle {
    let style = profile.get("s3").and_then(|nested| {
        nested.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            (name.trim() == "addressing_style").then(|| value.trim().to_ascii_lowercase())
        })
    });
    match style.as_deref() {
        Some("path") => AddressingStyle::Path,
        Some("virtual") => AddressingStyle::Virtual,
        _ => AddressingStyle::Auto,
    }
}

/// Checks that `profile` exists, and reads what nuaws takes from it beyond aws-config.
async fn check_profile_exists(env: &Env, profile: &str) -> Result<AddressingStyle, AwsError> {
    let set = load_profiles(env, Some(Cow::Owned(profile.to_string()))).await?;
    if let Some(found) = set.get_profile(profile) {
        return Ok(addressing_style(found));
    }
    let mut known: Vec<&str> = set.profiles().collect();
    known.sort();
    let known = if known.is_empty() {
        "no profiles are configured".to_string()
    } else {
        format!("configured profiles: {}", known.join(", "))
    };
    Err(AwsError::new(
        ErrorKind::UnknownProfile,
        "configuration",
        format!("the AWS profile `{profile}` does not exist ({known})"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_reads_only_aws_variables_and_prefers_flags() {
        let spec = SessionSpec::from_env([
            ("AWS_PROFILE", "dev"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("HOME", "/home/u"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(spec.profile.as_deref(), Some("dev"));
        assert_eq!(spec.region.as_deref(), Some("eu-west-1"));
        assert_eq!(spec.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert!(!spec.env.contains_key("PATH"));
        assert!(spec.env.contains_key("HOME"));
        let spec = spec
            .with_profile(Some("prod".into()))
            .with_region(None)
            .with_region(Some("us-west-2".into()));
        assert_eq!(spec.profile.as_deref(), Some("prod"));
        assert_eq!(spec.region.as_deref(), Some("us-west-2"));
    }

    #[test]
    fn empty_values_are_unset_and_endpoints_are_checked() {
        let spec = SessionSpec::from_env([("AWS_ENDPOINT_URL", ""), ("AWS_ENDPOINT_URL_S3", "")]);
        assert!(spec.endpoint.is_none());
        assert!(spec.env.is_empty());
        assert!(spec.with_endpoint(Some(String::new())).endpoint.is_none());
        assert!(check_endpoint("http://127.0.0.1:5000").is_ok());
        assert!(check_endpoint("https://s3.example.com/base").is_ok());
        for bad in ["127.0.0.1:5000", "http://", "ftp://x", "http:// x"] {
            assert_eq!(check_endpoint(bad).unwrap_err().kind, ErrorKind::InvalidInput, "{bad}");
        }
    }

    fn session_with_config(name: &str, config: &str, extra: &[(&str, &str)]) -> Arc<Session> {
        let dir = std::env::temp_dir().join(format!("nuaws-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(&path, config).unwrap();
        let mut vars = vec![
            ("AWS_CONFIG_FILE", path.to_str().unwrap().to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", dir.join("none").to_str().unwrap().to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        Sessions::default().get(&SessionSpec::from_env(vars), &crate::runtime::NoInterrupt).unwrap()
    }

    #[test]
    fn the_profiles_s3_addressing_style_is_read_as_the_aws_cli_reads_it() {
        let config = "[default]\nregion = us-east-1\ns3 =\n  addressing_style = virtual\n[profile minio]\nregion = us-east-1\ns3 =\n  addressing_style = path\n";
        let session = session_with_config("addressing", config, &[]);
        assert_eq!(session.addressing_style(), AddressingStyle::Virtual);
        let session = session_with_config("addressing-path", config, &[("AWS_PROFILE", "minio")]);
        assert_eq!(session.addressing_style(), AddressingStyle::Path);
        let session = session_with_config("addressing-none", "[default]\nregion = eu-west-1\n", &[]);
        assert_eq!(session.addressing_style(), AddressingStyle::Auto);
    }

    #[test]
    fn checksum_settings_of_the_profile_and_environment_reach_every_s3_client() {
        use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
        let config = "[default]\nregion = us-east-1\nrequest_checksum_calculation = when_required\n";
        let session = session_with_config("checksums", config, &[("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")]);
        for client in [session.s3().clone(), session.s3_in("eu-west-1", Attempts::Single)] {
            assert_eq!(client.config().request_checksum_calculation(), Some(&RequestChecksumCalculation::WhenRequired));
            assert_eq!(client.config().response_checksum_validation(), Some(&ResponseChecksumValidation::WhenRequired));
        }
    }

    #[test]
    fn regional_clients_are_built_once_and_sign_for_their_region() {
        let session = session_with_config("regional", "[default]\nregion = us-east-1\n", &[]);
        let eu = session.s3_in("eu-west-1", Attempts::Standard);
        assert_eq!(eu.config().region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(session.s3_in("us-east-1", Attempts::Standard).config().region().map(|r| r.as_ref()), Some("us-east-1"));
        session.s3_in("eu-west-1", Attempts::Standard);
        session.s3_in("eu-west-1", Attempts::Single);
        assert_eq!(session.s3_regional.lock().unwrap().len(), 2, "one per region and attempt policy");
        assert_eq!(session.bucket_scope(), "aws");
    }

    #[test]
    fn every_partition_is_named_by_its_regions_prefix() {
        // The partition goes into role ARNs: a wrong one makes every AssumeRole of that
        // partition fail. `us-iso-` is a prefix of neither `us-isob-` nor `us-isof-`, but is
        // tested after them all the same.
        for (region, partition) in [
            ("eu-west-1", "aws"),
            ("cn-north-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
            ("us-iso-east-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
            ("us-isof-south-1", "aws-iso-f"),
            ("eu-isoe-west-1", "aws-iso-e"),
            ("eusc-de-east-1", "aws-eusc"),
        ] {
            assert_eq!(partition_of(region), partition, "{region}");
        }
    }

    #[test]
    fn aws_region_wins_over_default_region() {
        let spec = SessionSpec::from_env([("AWS_DEFAULT_REGION", "a"), ("AWS_REGION", "b")]);
        assert_eq!(spec.region.as_deref(), Some("b"));
    }

    #[test]
    fn an_unknown_profile_is_reported_with_the_known_ones() {
        let dir = std::env::temp_dir().join(format!("nuaws-profiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config");
        std::fs::write(&config, "[default]\nregion = us-east-1\n[profile dev]\nregion = eu-west-1\n").unwrap();
        let spec = SessionSpec::from_env([
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", dir.join("none").to_str().unwrap()),
            ("AWS_PROFILE", "nope"),
        ]);
        let err = match Sessions::default().get(&spec, &crate::runtime::NoInterrupt) {
            Err(err) => err,
            Ok(_) => panic!("an unknown profile must not build a session"),
        };
        assert_eq!(err.kind, ErrorKind::UnknownProfile);
        assert!(err.message.contains("`nope`"), "{}", err.message);
        assert!(err.message.contains("dev"), "{}", err.message);

        let spec = spec.with_profile(Some("dev".into()));
        let session = Sessions::default().get(&spec, &crate::runtime::NoInterrupt).unwrap();
        assert_eq!(session.region(), Some("eu-west-1"));

        // With no config file at all, the error says there are none, not an empty list.
        let spec = spec.with_profile(Some("nope".into()));
        let spec = SessionSpec::from_env([
            ("AWS_CONFIG_FILE", dir.join("missing").to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", dir.join("none").to_str().unwrap()),
            ("AWS_PROFILE", spec.profile.as_deref().unwrap()),
        ]);
        let err = match Sessions::default().get(&spec, &crate::runtime::NoInterrupt) {
            Err(err) => err,
            Ok(_) => panic!("an unknown profile must not build a session"),
        };
        assert_eq!(err.kind, ErrorKind::UnknownProfile);
        assert!(err.message.contains("no profiles are configured"), "{}", err.message);
        std::fs::remove_dir_all(&dir).ok();
    }
}
