//! `FaultProxy`: an HTTP/1.1 reverse proxy on loopback, in front of a test upstream (moto or
//! `SyntheticS3`), that adds the faults of a real AWS endpoint on demand: latency, throttling with
//! the service's own error, random 503s, connection resets, stalled bodies, and chosen requests
//! that always fail. Tests use it to check that nuaws retries, stays concurrent, reports
//! failures per item and stops promptly.
//!
//! It can also play real Amazon S3's answers to requests that reach the wrong region
//! (`bucket_regions`): moto and `SyntheticS3` serve every bucket in every region, so without this
//! nuaws's region routing (following `301 PermanentRedirect`, `x-amz-bucket-region`,
//! `GetBucketLocation`, `BucketRegion` in ListBuckets) could not be tested on loopback.
//!
//! Not a general proxy: no TLS, no CONNECT, one upstream, and faults decided per request with a
//! seeded PRNG so a sequential test sees the same faults on every run. Paths under `/__proxy/`
//! are its admin interface and never reach the upstream.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::server::{
    BoxError, ConnectionControl, Handler, ResponseBody, ResponseFuture, RunningServer, empty_body, fixed_response,
};
use crate::text::{percent_decode, query_pairs, xml_escape, xml_unescape};

/// The log keeps this many most recent requests.
const LOG_CAPACITY: usize = 100_000;
const ADMIN_PREFIX: &str = "/__proxy/";
const DEFAULT_SEED: u64 = 0x5EED_0F_FA17;
/// The most of a ListBuckets answer the proxy reads to add `<BucketRegion>` to it.
const LIST_BUCKETS_LIMIT: usize = 16 * 1024 * 1024;
const S3_XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// The regions an account has to opt in to (AWS's "regions introduced after March 20, 2019"). S3
/// does not redirect between one of these and any other region: it refuses the request with
/// `IllegalLocationConstraintException` and no `x-amz-bucket-region`, so a client has to find the
/// bucket's region some other way (`HeadBucket`, `GetBucketLocation`).
const OPT_IN_REGIONS: [&str; 15] = [
    "af-south-1",
    "ap-east-1",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-west-1",
    "eu-central-2",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
];

/// Which faults to inject. `Default` injects none: the proxy is then transparent.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// Added before each request is handled (forwarded or answered), as network round-trip time.
    pub latency: Duration,
    /// Requests beyond this rate are answered at once with the service's throttling error.
    pub throttle: Option<Throttle>,
    /// Fraction (0..=1) of requests answered with a 503 (S3 `ServiceUnavailable`, EC2 `Unavailable`).
    pub error_rate: f64,
    /// Fraction (0..=1) of requests whose connection is closed with a TCP reset and no response.
    pub reset_rate: f64,
    /// Fraction (0..=1) of forwarded responses whose body stops after its first bytes.
    pub stall_rate: f64,
    /// How long a stalled body stops before the rest follows; `None` stops it for good.
    pub stall_for: Option<Duration>,
    /// Requests whose path and query contain this text always fail with `fail_status`, so a test
    /// can make exactly some items fail. The bodies of form-encoded POSTs (EC2 and STS calls:
    /// `RoleArn=...` of an AssumeRole) are searched too, percent-decoded.
    pub fail_matching: Option<String>,
    pub fail_status: u16,
    /// Seeds the PRNG behind the rates; setting a config restarts it from this seed.
    pub seed: u64,
    /// The region each named bucket lives in, for S3 requests signed (SigV4) for a region: the
    /// proxy then answers as real S3 does when a request reaches the wrong region (a `301
    /// PermanentRedirect`, or a `400` for opt-in regions and the global endpoint), answers
    /// `GetBucketLocation` itself and adds `x-amz-bucket-region` to `HeadBucket`. Buckets not named
    /// here are not region-checked, as moto does not check any. Empty (the default): off.
    pub bucket_regions: BTreeMap<String, String>,
    /// Which S3 endpoint the proxy plays for `bucket_regions`; only the errors differ.
    pub s3_endpoint: S3Endpoint,
    /// Whether ListBuckets rows carry `<BucketRegion>` (S3 has sent it since 2024): on, rows of
    /// buckets in `bucket_regions` get their region; off, every row loses it, as from an older
    /// S3-compatible server, so a client's fallback (`HeadBucket`) can be tested.
    pub list_bucket_regions: bool,
    /// Buckets whose every signed S3 request gets a `301 PermanentRedirect` to a region other than
    /// the one it was signed for, whichever that is. Real S3 never does this: it emulates a broken
    /// endpoint or proxy, for testing that a client gives up instead of following redirects forever.
    pub redirect_loops: BTreeSet<String>,
    /// Regions the account has not enabled (opt-in regions are off until enabled): every signed
    /// S3 request for one gets `403 InvalidAccessKeyId`, as the region knows none of the
    /// account's keys. For testing a redirect to a region the credentials cannot reach.
    pub disabled_regions: BTreeSet<String>,
    /// Buckets whose ListObjectsV2 pages come with their objects in reverse key order, as an S3
    /// Express directory bucket may list them (AWS's ListObjectsV2 documentation: directory
    /// buckets do not return results in lexicographical order) and as some S3-compatible
    /// endpoints do; for testing that a client does not take a listing's order on trust.
    pub unordered_listings: BTreeSet<String>,
    /// The largest copy source S3 copies in one request, for S3 requests that copy
    /// (`x-amz-copy-source`): Amazon S3 refuses a CopyObject whose source is over 5 GiB with
    /// `400 InvalidRequest` ("The specified copy source is larger than the maximum allowable size
    /// for a copy source: 5368709120"; AWS's CopyObject documentation), and takes larger objects
    /// only as a multipart copy whose UploadPartCopy ranges are each within it. The proxy plays
    /// that with this lower limit (finding the source's size with a HEAD to the upstream) so a test
    /// needs no 5 GiB object; an UploadPartCopy whose range is over it is refused the same way.
    /// `None` (the default): off, as moto copies any size.
    pub copy_source_limit: Option<u64>,
}

/// Which kind of S3 endpoint the proxy plays when a request reaches the wrong region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum S3Endpoint {
    /// `s3.<region>.amazonaws.com`: a request for another region's bucket gets a `301`.
    #[default]
    Regional,
    /// `s3.amazonaws.com`, which is us-east-1: a request signed for us-east-1 for another region's
    /// bucket gets `400 AuthorizationHeaderMalformed` naming the bucket's region instead of a `301`.
    Global,
}

impl S3Endpoint {
    /// The name the admin interface uses: `regional` or `global`.
    pub fn as_str(self) -> &'static str {
        match self {
            S3Endpoint::Regional => "regional",
            S3Endpoint::Global => "global",
        }
    }
}

impl std::str::FromStr for S3Endpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<S3Endpoint, String> {
        match text {
            "regional" => Ok(S3Endpoint::Regional),
            "global" => Ok(S3Endpoint::Global),
            _ => Err(format!("s3_endpoint must be \"regional\" or \"global\", not {text:?}")),
        }
    }
}

/// A token bucket: `rate_per_second` tokens refill continuously up to `burst`; a request takes one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Throttle {
    pub rate_per_second: f64,
    pub burst: u32,
}

impl Default for FaultConfig {
    fn default() -> FaultConfig {
        FaultConfig {
            latency: Duration::ZERO,
            throttle: None,
            error_rate: 0.0,
            reset_rate: 0.0,
            stall_rate: 0.0,
            stall_for: None,
            fail_matching: None,
            fail_status: 500,
            seed: DEFAULT_SEED,
            bucket_regions: BTreeMap::new(),
            s3_endpoint: S3Endpoint::Regional,
            list_bucket_regions: true,
            redirect_loops: BTreeSet::new(),
            disabled_regions: BTreeSet::new(),
            unordered_listings: BTreeSet::new(),
            copy_source_limit: None,
        }
    }
}

impl FaultConfig {
    /// Only latency.
    pub fn latency(latency: Duration) -> FaultConfig {
        FaultConfig::default().with_latency(latency)
    }

    /// Only throttling.
    pub fn throttle(rate_per_second: f64, burst: u32) -> FaultConfig {
        FaultConfig::default().with_throttle(rate_per_second, burst)
    }

    /// Only random 503s.
    pub fn error_rate(rate: f64) -> FaultConfig {
        FaultConfig::default().with_error_rate(rate)
    }

    /// Only connection resets.
    pub fn reset_rate(rate: f64) -> FaultConfig {
        FaultConfig::default().with_reset_rate(rate)
    }

    /// Only stalled bodies.
    pub fn stall(rate: f64, stall_for: Option<Duration>) -> FaultConfig {
        FaultConfig::default().with_stall(rate, stall_for)
    }

    /// Only requests containing `text` fail, with `status`.
    pub fn fail_matching(text: &str, status: u16) -> FaultConfig {
        FaultConfig::default().with_fail_matching(text, status)
    }

    pub fn with_latency(mut self, latency: Duration) -> FaultConfig {
        self.latency = latency;
        self
    }

    pub fn with_throttle(mut self, rate_per_second: f64, burst: u32) -> FaultConfig {
        self.throttle = Some(Throttle { rate_per_second, burst });
        self
    }

    pub fn with_error_rate(mut self, rate: f64) -> FaultConfig {
        self.error_rate = rate;
        self
    }

    pub fn with_reset_rate(mut self, rate: f64) -> FaultConfig {
        self.reset_rate = rate;
        self
    }

    pub fn with_stall(mut self, rate: f64, stall_for: Option<Duration>) -> FaultConfig {
        self.stall_rate = rate;
        self.stall_for = stall_for;
        self
    }

    pub fn with_fail_matching(mut self, text: &str, status: u16) -> FaultConfig {
        self.fail_matching = Some(text.to_owned());
        self.fail_status = status;
        self
    }

    pub fn with_seed(mut self, seed: u64) -> FaultConfig {
        self.seed = seed;
        self
    }

    /// `bucket` lives in `region` (see `bucket_regions`).
    pub fn with_bucket_region(mut self, bucket: &str, region: &str) -> FaultConfig {
        self.bucket_regions.insert(bucket.to_owned(), region.to_owned());
        self
    }

    pub fn with_s3_endpoint(mut self, endpoint: S3Endpoint) -> FaultConfig {
        self.s3_endpoint = endpoint;
        self
    }

    /// Plays the global endpoint, s3.amazonaws.com (see `S3Endpoint::Global`).
    pub fn with_global_s3_endpoint(self) -> FaultConfig {
        self.with_s3_endpoint(S3Endpoint::Global)
    }

    pub fn with_list_bucket_regions(mut self, on: bool) -> FaultConfig {
        self.list_bucket_regions = on;
        self
    }

    /// Every request for `bucket` is redirected to another region (see `redirect_loops`).
    pub fn with_redirect_loop(mut self, bucket: &str) -> FaultConfig {
        self.redirect_loops.insert(bucket.to_owned());
        self
    }

    /// Requests signed for `region` are refused as by a region the account has not enabled.
    pub fn with_disabled_region(mut self, region: &str) -> FaultConfig {
        self.disabled_regions.insert(region.to_owned());
        self
    }

    /// `bucket`'s listings come out of key order (see `unordered_listings`).
    pub fn with_unordered_listing(mut self, bucket: &str) -> FaultConfig {
        self.unordered_listings.insert(bucket.to_owned());
        self
    }

    /// Copies of sources over `limit` bytes are refused (see `copy_source_limit`).
    pub fn with_copy_source_limit(mut self, limit: u64) -> FaultConfig {
        self.copy_source_limit = Some(limit);
        self
    }

    /// Checks the values a caller could get wrong; the proxy refuses such a config rather than
    /// guessing what was meant.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("reset_rate", self.reset_rate),
            ("stall_rate", self.stall_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, not {rate}"));
            }
        }
        if let Some(throttle) = self.throttle {
            if !(throttle.rate_per_second.is_finite() && throttle.rate_per_second >= 0.0) {
                return Err(format!(
                    "throttle rate must be a non-negative number, not {}",
                    throttle.rate_per_second
                ));
            }
        }
        if StatusCode::from_u16(self.fail_status).is_err() {
            return Err(format!("fail_status {} is not an HTTP status", self.fail_status));
        }
        // Both end up in headers and XML: keep them to what S3 allows rather than escape them.
        for bucket in self.bucket_regions.keys().chain(&self.redirect_loops).chain(&self.unordered_listings) {
            if bucket.is_empty() || bucket.contains('/') || bucket.chars().any(|c| c.is_ascii_control()) {
                return Err(format!("{bucket:?} is not a bucket name"));
            }
        }
        for (bucket, region) in &self.bucket_regions {
            if region.is_empty()
                || !region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(format!(
                    "bucket {bucket:?}: {region:?} is not a region name such as \"eu-west-1\""
                ));
            }
        }
        Ok(())
    }

    /// The config as the admin interface shows and accepts it.
    pub fn to_json(&self) -> Value {
        json!({
            "latency_ms": self.latency.as_millis() as u64,
            "throttle_rate": self.throttle.map(|t| t.rate_per_second),
            "throttle_burst": self.throttle.map(|t| t.burst),
            "error_rate": self.error_rate,
            "reset_rate": self.reset_rate,
            "stall_rate": self.stall_rate,
            "stall_ms": self.stall_for.map(|d| d.as_millis() as u64),
            "fail_matching": self.fail_matching,
            "fail_status": self.fail_status,
            "seed": self.seed,
            "bucket_regions": self.bucket_regions,
            "s3_endpoint": self.s3_endpoint.as_str(),
            "list_bucket_regions": self.list_bucket_regions,
            "redirect_loops": self.redirect_loops,
            "disabled_regions": self.disabled_regions,
            "unordered_listings": self.unordered_listings,
            "copy_source_limit": self.copy_source_limit,
        })
    }

    /// A config from the admin interface's JSON object. Fields left out (or null) are off, so a
    /// posted config replaces the previous one entirely; unknown fields are an error, to catch typos.
    pub fn from_json(value: &Value) -> Result<FaultConfig, String> {
        let object = value.as_object().ok_or("the config must be a JSON object")?;
        const FIELDS: [&str; 17] = [
            "latency_ms",
            "throttle_rate",
            "throttle_burst",
            "error_rate",
            "reset_rate",
            "stall_rate",
            "stall_ms",
            "fail_matching",
            "fail_status",
            "seed",
            "bucket_regions",
            "s3_endpoint",
            "list_bucket_regions",
            "redirect_loops",
            "disabled_regions",
            "unordered_listings",
            "copy_source_limit",
        ];
        if let Some(unknown) = object.keys().find(|key| !FIELDS.contains(&key.as_str())) {
            return Err(format!(
                "unknown config field {unknown:?}; known fields: {}",
                FIELDS.join(", ")
            ));
        }
        let number = |name: &str| -> Result<Option<f64>, String> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => value.as_f64().map(Some).ok_or(format!("{name} must be a number")),
            }
        };
        let whole = |name: &str| -> Result<Option<u64>, String> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => value
                    .as_u64()
                    .map(Some)
                    .ok_or(format!("{name} must be a non-negative integer")),
            }
        };
        let defaults = FaultConfig::default();
        let throttle = match number("throttle_rate")? {
            None => None,
            Some(rate) => Some(Throttle {
                rate_per_second: rate,
                burst: match whole("throttle_burst")? {
                    Some(burst) => u32::try_from(burst).map_err(|_| "throttle_burst is too large".to_owned())?,
                    None => default_burst(rate),
                },
            }),
        };
        let fail_matching = match object.get("fail_matching") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => return Err("fail_matching must be a string".to_owned()),
        };
        let fail_status = match whole("fail_status")? {
            Some(status) => u16::try_from(status).map_err(|_| format!("fail_status {status} is not an HTTP status"))?,
            None => defaults.fail_status,
        };
        let bucket_regions = match object.get("bucket_regions") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(regions)) => regions
                .iter()
                .map(|(bucket, region)| match region {
                    Value::String(region) => Ok((bucket.clone(), region.clone())),
                    _ => Err(format!("bucket_regions: the region of {bucket:?} must be a string")),
                })
                .collect::<Result<_, String>>()?,
            Some(_) => return Err("bucket_regions must be an object of bucket names to regions".to_owned()),
        };
        let s3_endpoint = match object.get("s3_endpoint") {
            None | Some(Value::Null) => defaults.s3_endpoint,
            Some(Value::String(text)) => text.parse()?,
            Some(_) => return Err("s3_endpoint must be \"regional\" or \"global\"".to_owned()),
        };
        let list_bucket_regions = match object.get("list_bucket_regions") {
            None | Some(Value::Null) => defaults.list_bucket_regions,
            Some(Value::Bool(on)) => *on,
            Some(_) => return Err("list_bucket_regions must be true or false".to_owned()),
        };
        let redirect_loops = string_set(object, "redirect_loops", "bucket names")?;
        let disabled_regions = string_set(object, "disabled_regions", "region names")?;
        let unordered_listings = string_set(object, "unordered_listings", "bucket names")?;
        let config = FaultConfig {
            latency: Duration::from_millis(whole("latency_ms")?.unwrap_or(0)),
            throttle,
            error_rate: number("error_rate")?.unwrap_or(0.0),
            reset_rate: number("reset_rate")?.unwrap_or(0.0),
            stall_rate: number("stall_rate")?.unwrap_or(0.0),
            stall_for: whole("stall_ms")?.map(Duration::from_millis),
            fail_matching,
            fail_status,
            seed: whole("seed")?.unwrap_or(defaults.seed),
            bucket_regions,
            s3_endpoint,
            list_bucket_regions,
            redirect_loops,
            disabled_regions,
            unordered_listings,
            copy_source_limit: whole("copy_source_limit")?,
        };
        config.validate()?;
        Ok(config)
    }
}

/// A JSON field that lists names (missing or null: none).
fn string_set(object: &serde_json::Map<String, Value>, name: &str, what: &str) -> Result<BTreeSet<String>, String> {
    let refused = || format!("{name} must be an array of {what}");
    match object.get(name) {
        None | Some(Value::Null) => Ok(BTreeSet::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(refused))
            .collect(),
        Some(_) => Err(refused()),
    }
}

/// The burst when only a rate is given: one second's worth, at least one request.
pub fn default_burst(rate_per_second: f64) -> u32 {
    rate_per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32
}

/// Counters since start (or the last `reset_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Requests received, admin requests excepted.
    pub received: u64,
    /// Requests sent on to the upstream.
    pub forwarded: u64,
    /// Requests answered with a throttling error.
    pub throttled: u64,
    /// Requests answered with a random 503 (`error_rate`).
    pub injected_errors: u64,
    /// Requests answered with `fail_status` because they matched `fail_matching`.
    pub matched_failures: u64,
    /// Connections reset instead of answering.
    pub resets: u64,
    /// Response bodies stalled.
    pub stalls: u64,
    /// Requests the upstream could not be reached for (answered 502).
    pub upstream_errors: u64,
    /// Requests answered with a wrong-region error instead of forwarded: `301 PermanentRedirect`
    /// (`redirect_loops` too) or `400` (`bucket_regions`).
    pub region_errors: u64,
    /// `GetBucketLocation` requests the proxy answered itself (`bucket_regions`).
    pub bucket_locations: u64,
    /// Copies refused as larger than `copy_source_limit`.
    pub copy_refusals: u64,
    /// Requests received and not finished yet: waiting out latency, forwarded, or sending their body.
    pub in_flight: u64,
    pub peak_in_flight: u64,
}

impl ProxyStats {
    pub fn to_json(&self) -> Value {
        json!({
            "received": self.received,
            "forwarded": self.forwarded,
            "throttled": self.throttled,
            "injected_errors": self.injected_errors,
            "matched_failures": self.matched_failures,
            "resets": self.resets,
            "stalls": self.stalls,
            "upstream_errors": self.upstream_errors,
            "region_errors": self.region_errors,
            "bucket_locations": self.bucket_locations,
            "copy_refusals": self.copy_refusals,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
        })
    }
}

/// One request as the proxy saw it, from arrival to the end of its response body (or its reset,
/// or the client giving up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    pub received: Instant,
    pub finished: Instant,
    pub method: String,
    pub path_and_query: String,
    /// The status sent, or `None` if the connection was reset or closed before a response.
    pub status: Option<u16>,
}

/// A running fault-injecting proxy; dropping it stops it.
pub struct FaultProxy {
    shared: Arc<ProxyShared>,
    server: RunningServer,
}

impl FaultProxy {
    /// Proxies to `upstream` (`http://127.0.0.1:PORT`; a path in it is ignored) from a free
    /// loopback port with `config`. Fails on a bad config or URL, or if it cannot listen.
    pub fn start(upstream: &str, config: FaultConfig) -> io::Result<FaultProxy> {
        let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
        config.validate().map_err(invalid)?;
        let upstream_uri: Uri = upstream
            .parse()
            .map_err(|error| invalid(format!("upstream {upstream:?}: {error}")))?;
        if upstream_uri.scheme_str() != Some("http") || upstream_uri.authority().is_none() {
            return Err(invalid(format!(
                "upstream must be an http://host:port URL, not {upstream:?}"
            )));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let shared = Arc::new(ProxyShared {
            upstream: upstream_uri,
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            faults: Mutex::new(FaultState::new(config)),
            counters: Counters::default(),
            log: Mutex::new(VecDeque::new()),
            port: OnceLock::new(),
        });
        let server = RunningServer::start("fault-proxy", shared.clone())?;
        // Set before anyone knows the port, so before any request can arrive.
        let _ = shared.port.set(server.address().port());
        Ok(FaultProxy { shared, server })
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    pub fn port(&self) -> u16 {
        self.server.address().port()
    }

    /// Replaces the config; applies to requests that arrive from now on. The PRNG restarts from
    /// the new seed and the token bucket starts full.
    pub fn set_config(&self, config: FaultConfig) -> Result<(), String> {
        config.validate()?;
        *lock(&self.shared.faults) = FaultState::new(config);
        Ok(())
    }

    pub fn config(&self) -> FaultConfig {
        lock(&self.shared.faults).config.clone()
    }

    pub fn stats(&self) -> ProxyStats {
        self.shared.counters.snapshot()
    }

    /// Zeroes the counters (the peak restarts at the current in-flight count) and clears the log.
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    pub fn in_flight(&self) -> usize {
        self.shared.counters.in_flight.load(Ordering::SeqCst)
    }

    /// The finished requests, oldest first (the last 100,000). Whether any request was still
    /// running after a moment `t`: `in_flight() > 0 || log().iter().any(|r| r.finished > t)`.
    pub fn log(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.log).iter().cloned().collect()
    }
}

/// A form-encoded POST to `/`: the query protocol of EC2 and STS.
fn is_form_post<B>(request: &Request<B>) -> bool {
    request.method() == Method::POST
        && request.uri().path() == "/"
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"))
}

/// The most of a form body the proxy reads to search it.
const FORM_LIMIT: usize = 1024 * 1024;

/// `request` with a body that can be forwarded, and with `read`, its form body percent-decoded
/// (read whole: query-protocol bodies are small).
async fn with_form_body(request: Request<Incoming>, read: bool) -> Result<(Request<ResponseBody>, Option<String>), BoxError> {
    let (parts, body) = request.into_parts();
    if !read {
        return Ok((Request::from_parts(parts, body.map_err(BoxError::from).boxed()), None));
    }
    let bytes = Limited::new(body, FORM_LIMIT).collect().await?.to_bytes();
    let text = percent_decode(&String::from_utf8_lossy(&bytes), true);
    let body = http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed();
    Ok((Request::from_parts(parts, body), Some(text)))
}

/// A poisoned lock only means another request panicked mid-update of plain data; keep serving.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct ProxyShared {
    upstream: Uri,
    client: Client<HttpConnector, ResponseBody>,
    faults: Mutex<FaultState>,
    counters: Counters,
    log: Mutex<VecDeque<LoggedRequest>>,
    /// The proxy's own port, to tell a virtual-hosted Host (`bucket.localhost:PORT`) from its own.
    port: OnceLock<u16>,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    forwarded: AtomicU64,
    throttled: AtomicU64,
    injected_errors: AtomicU64,
    matched_failures: AtomicU64,
    resets: AtomicU64,
    stalls: AtomicU64,
    upstream_errors: AtomicU64,
    region_errors: AtomicU64,
    bucket_locations: AtomicU64,
    copy_refusals: AtomicU64,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

impl Counters {
    fn snapshot(&self) -> ProxyStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
        ProxyStats {
            received: load(&self.received),
            forwarded: load(&self.forwarded),
            throttled: load(&self.throttled),
            injected_errors: load(&self.injected_errors),
            matched_failures: load(&self.matched_failures),
            resets: load(&self.resets),
            stalls: load(&self.stalls),
            upstream_errors: load(&self.upstream_errors),
            region_errors: load(&self.region_errors),
            bucket_locations: load(&self.bucket_locations),
            copy_refusals: load(&self.copy_refusals),
            in_flight: self.in_flight.load(Ordering::SeqCst) as u64,
            peak_in_flight: self.peak_in_flight.load(Ordering::SeqCst) as u64,
        }
    }
}

/// The config with the state its rates and throttle need, behind one lock so that a request's
/// fault decisions are drawn together.
struct FaultState {
    config: FaultConfig,
    random: XorShift64Star,
    tokens: f64,
    refilled_at: Instant,
}

impl FaultState {
    fn new(config: FaultConfig) -> FaultState {
        FaultState {
            random: XorShift64Star::new(config.seed),
            tokens: config.throttle.map_or(0.0, |t| f64::from(t.burst)),
            refilled_at: Instant::now(),
            config,
        }
    }

    fn take_token(&mut self, throttle: Throttle) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.refilled_at).as_secs_f64() * throttle.rate_per_second;
        self.tokens = (self.tokens + refill).min(f64::from(throttle.burst));
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// True with probability `rate`. Draws only when the fault is on, so turning one fault on does
    /// not change which requests another fault hits for the same seed.
    fn chance(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.random.next_unit() < rate
    }
}

/// xorshift64*: tiny, fast, good enough to pick faulty requests, and seedable for repeatable tests.
struct XorShift64Star(u64);

impl XorShift64Star {
    fn new(seed: u64) -> XorShift64Star {
        // splitmix64 of the seed, so that 0 and small seeds give a usable (non-zero) state.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        XorShift64Star((z ^ (z >> 31)) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the proxy does with one request, decided once it has waited out the latency.
enum Decision {
    MatchedFailure(StatusCode),
    Reset,
    Throttle,
    InjectedError,
    Forward { stall: Option<Option<Duration>> },
}

/// The AWS service a request is for, which decides the shape of the errors the proxy makes up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    S3,
    Ec2,
    /// STS: the query protocol as EC2, with its own error shape.
    Sts,
}

impl Service {
    /// From SigV4's credential scope (`Credential=AKID/20260101/us-east-1/s3/aws4_request`) in the
    /// Authorization header or a presigned URL; failing that, EC2's query protocol (`Action=` in
    /// the query or a form-encoded POST); otherwise S3.
    fn of<B>(request: &Request<B>) -> Service {
        let query = request.uri().query().unwrap_or("");
        if let Some(scope) = CredentialScope::of(request) {
            if scope.service == "ec2" {
                return Service::Ec2;
            }
            if scope.service == "sts" {
                return Service::Sts;
            }
            if scope.service == "s3" {
                return Service::S3;
            }
        }
        if is_form_post(request) || query.split('&').any(|pair| pair.starts_with("Action=")) {
            Service::Ec2
        } else {
            Service::S3
        }
    }

    /// The service's error response: S3's `<Error>`, EC2's `<Response><Errors>` or STS's
    /// `<ErrorResponse>`.
    fn error(
        self,
        status: StatusCode,
        code: &str,
        message: &str,
        request_id: &str,
        is_head: bool,
    ) -> Response<ResponseBody> {
        self.error_with_details(status, code, message, &[], request_id, is_head)
    }

    /// `error` with more elements after the message, as S3 adds to some errors
    /// (`<Endpoint>`, `<Bucket>`, `<Region>`); EC2's errors have none.
    fn error_with_details(
        self,
        status: StatusCode,
        code: &str,
        message: &str,
        details: &[(&str, &str)],
        request_id: &str,
        is_head: bool,
    ) -> Response<ResponseBody> {
        let mut response = if is_head {
            let mut response = Response::new(empty_body());
            *response.status_mut() = status;
            response
        } else {
            let message = xml_escape(message);
            let xml = match self {
                Service::S3 => {
                    let details: String = details
                        .iter()
                        .map(|(name, value)| format!("<{name}>{}</{name}>", xml_escape(value)))
                        .collect();
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
                         {details}<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
                    )
                }
                Service::Ec2 => format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
                     <Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
                ),
                Service::Sts => format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
                     <Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
                ),
            };
            fixed_response(status, "application/xml", xml)
        };
        if let Ok(value) = HeaderValue::from_str(request_id) {
            let name = match self {
                Service::S3 => "x-amz-request-id",
                Service::Ec2 | Service::Sts => "x-amzn-requestid",
            };
            response.headers_mut().insert(name, value);
        }
        response
    }

    fn throttling_error(self, request_id: &str, is_head: bool) -> Response<ResponseBody> {
        match self {
            Service::S3 => self.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SlowDown",
                "Please reduce your request rate.",
                request_id,
                is_head,
            ),
            Service::Sts => self.error(StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded", request_id, is_head),
            Service::Ec2 => self.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "RequestLimitExceeded",
                "Request limit exceeded.",
                request_id,
                is_head,
            ),
        }
    }

    fn unavailable_error(self, request_id: &str, is_head: bool) -> Response<ResponseBody> {
        match self {
            Service::S3 => self.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "Service is unable to handle request.",
                request_id,
                is_head,
            ),
            Service::Ec2 | Service::Sts => self.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The server is overloaded and can't handle the request.",
                request_id,
                is_head,
            ),
        }
    }

    /// The error the service would send with `status`, for `fail_matching`.
    fn status_error(self, status: StatusCode, request_id: &str, is_head: bool) -> Response<ResponseBody> {
        let (code, message) = match (self, status.as_u16()) {
            (Service::S3, 403) => ("AccessDenied", "Access Denied"),
            (Service::S3, 404) => ("NoSuchKey", "The specified key does not exist."),
            (Service::S3, 400) => ("InvalidRequest", "Invalid Request"),
            (Service::Ec2, 403) => (
                "UnauthorizedOperation",
                "You are not authorized to perform this operation.",
            ),
            (Service::Ec2, 400) => ("InvalidParameterValue", "Invalid parameter value."),
            (Service::Sts, 403) => ("AccessDenied", "User is not authorized to perform: sts:AssumeRole"),
            (_, 500) => ("InternalError", "We encountered an internal error. Please try again."),
            (_, 503) => return self.unavailable_error(request_id, is_head),
            (_, 429) => return self.throttling_error(request_id, is_head),
            _ => ("InjectedFault", "The test proxy failed this request on purpose."),
        };
        self.error(status, code, message, request_id, is_head)
    }
}

/// The SigV4 credential scope of a signed request (`AKID/20260101/us-east-1/s3/aws4_request`), from
/// its Authorization header or, for a presigned URL, its `X-Amz-Credential` query parameter.
struct CredentialScope {
    region: String,
    service: String,
}

impl CredentialScope {
    fn of<B>(request: &Request<B>) -> Option<CredentialScope> {
        let scope = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once("Credential=").map(|(_, rest)| rest.to_owned()))
            .or_else(|| {
                request
                    .uri()
                    .query()
                    .unwrap_or("")
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("X-Amz-Credential="))
                    .map(|scope| percent_decode(scope, false))
            })?;
        // In the header the scope runs on into `, SignedHeaders=...`.
        let mut parts = scope.split(['/', ',']).map(str::trim);
        let region = parts.nth(2)?.to_owned();
        let service = parts.next()?.to_owned();
        Some(CredentialScope { region, service })
    }
}

/// The bucket and key an S3 request is for.
struct S3Target {
    /// `None`: the service itself (`GET /` is ListBuckets).
    bucket: Option<String>,
    /// Empty for a bucket-level operation.
    key: String,
}

impl S3Target {
    /// Virtual-hosted style when the Host is `<bucket>.` followed by the proxy's own address
    /// (`127.0.0.1:PORT` or `localhost:PORT`), path-style (`/<bucket>/<key>`) otherwise.
    fn of<B>(request: &Request<B>, own_port: Option<u16>) -> S3Target {
        let path = request.uri().path();
        let path = path.strip_prefix('/').unwrap_or(path);
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if let Some(port) = own_port {
            for own_host in ["127.0.0.1", "localhost"] {
                if let Some(bucket) = host.strip_suffix(&format!(".{own_host}:{port}"))
                    && !bucket.is_empty()
                {
                    return S3Target {
                        bucket: Some(bucket.to_owned()),
                        key: percent_decode(path, false),
                    };
                }
            }
        }
        let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
        S3Target {
            bucket: (!bucket.is_empty()).then(|| percent_decode(bucket, false)),
            key: percent_decode(key, false),
        }
    }
}

/// What `bucket_regions` and `redirect_loops` make of one request, decided before the fault
/// decisions.
enum RegionPlan {
    /// Not region-checked: forward as it is.
    Transparent,
    /// Answered with this wrong-region error instead of being forwarded or faulted.
    Refuse(Response<ResponseBody>),
    /// GetBucketLocation for a bucket in this region: answered by the proxy (faults still apply).
    Locate(String),
    /// HeadBucket in the bucket's own region: forwarded, and S3's `x-amz-bucket-region` added.
    AddRegionHeader(String),
    /// ListBuckets: forwarded, and each row's `<BucketRegion>` made to match the config.
    ListBuckets {
        regions: BTreeMap<String, String>,
        list_bucket_regions: bool,
    },
    /// ListObjectsV2 of an `unordered_listings` bucket: forwarded, the page's objects reversed.
    Unordered,
}

impl ProxyShared {
    /// How real S3 treats a request for a bucket in another region than the one the request was
    /// signed for (from AWS's S3 documentation and what S3 sends):
    ///
    /// - `GetBucketLocation` works from every region and names the bucket's region (empty for
    ///   us-east-1, never the legacy `EU`); clients use it to find a bucket's region.
    /// - `HeadBucket` always carries `x-amz-bucket-region`, also on its `301`; being a HEAD it has
    ///   no body, so the header is all a client gets.
    /// - Between an opt-in region and any other region there are no redirects: `400
    ///   IllegalLocationConstraintException` without `x-amz-bucket-region`.
    /// - The global endpoint (us-east-1) answers a request signed for us-east-1 with `400
    ///   AuthorizationHeaderMalformed` and the bucket's region in `<Region>`.
    /// - Otherwise `301 PermanentRedirect` with `x-amz-bucket-region` and the bucket's endpoint.
    /// - ListBuckets works from every region, with each bucket's `<BucketRegion>`.
    ///
    /// Only signed S3 requests are checked: without a credential scope there is no region to
    /// compare, and real S3 would refuse an anonymous request for a private bucket anyway.
    fn region_plan<B>(&self, request: &Request<B>, request_id: &str, is_head: bool) -> RegionPlan {
        let Some(scope) = CredentialScope::of(request) else {
            return RegionPlan::Transparent;
        };
        if scope.service != "s3" {
            return RegionPlan::Transparent;
        }
        let faults = lock(&self.faults);
        let config = &faults.config;
        if !config.unordered_listings.is_empty() && request.method() == Method::GET {
            let target = S3Target::of(request, self.port.get().copied());
            let listing = query_pairs(request.uri().query().unwrap_or("")).iter().any(|(name, value)| name == "list-type" && value == "2");
            if listing && target.key.is_empty() && target.bucket.as_ref().is_some_and(|b| config.unordered_listings.contains(b)) {
                return RegionPlan::Unordered;
            }
        }
        if config.bucket_regions.is_empty()
            && config.redirect_loops.is_empty()
            && config.disabled_regions.is_empty()
            && config.list_bucket_regions
        {
            return RegionPlan::Transparent;
        }
        let signed_for = scope.region.as_str();
        if config.disabled_regions.contains(signed_for) {
            return RegionPlan::Refuse(Service::S3.error(
                StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
                request_id,
                is_head,
            ));
        }
        let target = S3Target::of(request, self.port.get().copied());
        let Some(bucket) = target.bucket else {
            let rewrite = !config.list_bucket_regions || !config.bucket_regions.is_empty();
            return if request.method() == Method::GET && rewrite {
                RegionPlan::ListBuckets {
                    regions: config.bucket_regions.clone(),
                    list_bucket_regions: config.list_bucket_regions,
                }
            } else {
                RegionPlan::Transparent
            };
        };
        if config.redirect_loops.contains(&bucket) {
            let elsewhere = if signed_for == "us-west-2" {
                "eu-west-1"
            } else {
                "us-west-2"
            };
            return RegionPlan::Refuse(permanent_redirect(&bucket, elsewhere, request_id, is_head));
        }
        let Some(region) = config.bucket_regions.get(&bucket) else {
            return RegionPlan::Transparent;
        };
        let bucket_level = target.key.is_empty();
        if bucket_level
            && request.method() == Method::GET
            && query_pairs(request.uri().query().unwrap_or(""))
                .iter()
                .any(|(name, _)| name == "location")
        {
            return RegionPlan::Locate(region.clone());
        }
        if bucket_level && is_head {
            if signed_for == region {
                return RegionPlan::AddRegionHeader(region.clone());
            }
            // Even between opt-in regions: HeadBucket is how a client finds a bucket's region.
            return RegionPlan::Refuse(permanent_redirect(&bucket, region, request_id, true));
        }
        if signed_for == region {
            return RegionPlan::Transparent;
        }
        let opt_in = |region: &str| OPT_IN_REGIONS.contains(&region);
        if opt_in(signed_for) != opt_in(region) {
            return RegionPlan::Refuse(Service::S3.error(
                StatusCode::BAD_REQUEST,
                "IllegalLocationConstraintException",
                &format!(
                    "The {region} location constraint is incompatible for the region specific endpoint this request was sent to."
                ),
                request_id,
                is_head,
            ));
        }
        if config.s3_endpoint == S3Endpoint::Global && signed_for == "us-east-1" {
            let mut response = Service::S3.error_with_details(
                StatusCode::BAD_REQUEST,
                "AuthorizationHeaderMalformed",
                &format!(
                    "The authorization header is malformed; the region 'us-east-1' is wrong; expecting '{region}'"
                ),
                &[("Region", region)],
                request_id,
                is_head,
            );
            // A HEAD error has no body to carry `<Region>`: S3 sends the header instead.
            if is_head {
                add_bucket_region(&mut response, region);
            }
            return RegionPlan::Refuse(response);
        }
        RegionPlan::Refuse(permanent_redirect(&bucket, region, request_id, is_head))
    }

    /// The upstream's response with what `plan` adds to it.
    async fn apply_region_plan(
        &self,
        plan: RegionPlan,
        response: Response<Incoming>,
    ) -> Result<Response<ResponseBody>, BoxError> {
        let boxed = |response: Response<Incoming>| response.map(|body| body.map_err(BoxError::from).boxed());
        match plan {
            RegionPlan::AddRegionHeader(region) => {
                let mut response = boxed(response);
                add_bucket_region(&mut response, &region);
                Ok(response)
            }
            RegionPlan::ListBuckets {
                regions,
                list_bucket_regions,
            } => {
                rewrite_xml(response, "<ListAllMyBucketsResult", |xml| set_bucket_regions(xml, &regions, list_bucket_regions)).await
            }
            RegionPlan::Unordered => rewrite_xml(response, "<ListBucketResult", reverse_contents).await,
            RegionPlan::Transparent | RegionPlan::Refuse(_) | RegionPlan::Locate(_) => Ok(boxed(response)),
        }
    }
}

/// An upstream XML answer rewritten by `rewrite` when it is a `200` whose body (unencoded, within
/// [`LIST_BUCKETS_LIMIT`]) contains `marker`; any other answer as it came.
async fn rewrite_xml(
    response: Response<Incoming>,
    marker: &str,
    rewrite: impl FnOnce(&str) -> String,
) -> Result<Response<ResponseBody>, BoxError> {
    let encoded = response
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|value| value.as_bytes() != b"identity");
    if response.status() != StatusCode::OK || encoded {
        return Ok(response.map(|body| body.map_err(BoxError::from).boxed()));
    }
    let (mut parts, body) = response.into_parts();
    let body = Limited::new(body, LIST_BUCKETS_LIMIT).collect().await?.to_bytes();
    let body = match std::str::from_utf8(&body) {
        Ok(xml) if xml.contains(marker) => Bytes::from(rewrite(xml)),
        _ => body,
    };
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let body = http_body_util::Full::new(body).map_err(|never| match never {}).boxed();
    Ok(Response::from_parts(parts, body))
}

/// A ListObjectsV2 page with its `<Contents>` rows in reverse order, everything else in place.
fn reverse_contents(xml: &str) -> String {
    const OPEN: &str = "<Contents>";
    const CLOSE: &str = "</Contents>";
    let mut rows = Vec::new();
    let mut between = Vec::new();
    let mut rest = xml;
    let mut head = None;
    while let Some(start) = rest.find(OPEN) {
        let Some(length) = rest[start..].find(CLOSE) else {
            break;
        };
        let end = start + length + CLOSE.len();
        match head {
            None => head = Some(&rest[..start]),
            Some(_) => between.push(&rest[..start]),
        }
        rows.push(&rest[start..end]);
        rest = &rest[end..];
    }
    let Some(head) = head else {
        return xml.to_owned();
    };
    let mut out = String::with_capacity(xml.len());
    out.push_str(head);
    for (i, row) in rows.iter().rev().enumerate() {
        if i > 0 {
            out.push_str(between[i - 1]);
        }
        out.push_str(row);
    }
    out.push_str(rest);
    out
}

/// S3's `301 PermanentRedirect` to `bucket` in `region`; a HEAD gets only the status and headers.
fn permanent_redirect(bucket: &str, region: &str, request_id: &str, is_head: bool) -> Response<ResponseBody> {
    let mut response = Service::S3.error_with_details(
        StatusCode::MOVED_PERMANENTLY,
        "PermanentRedirect",
        "The bucket you are attempting to access must be addressed using the specified endpoint. \
         Please send all future requests to this endpoint.",
        &[
            ("Endpoint", &format!("{bucket}.s3.{region}.amazonaws.com")),
            ("Bucket", bucket),
        ],
        request_id,
        is_head,
    );
    add_bucket_region(&mut response, region);
    response
}

fn add_bucket_region(response: &mut Response<ResponseBody>, region: &str) {
    if let Ok(value) = HeaderValue::from_str(region) {
        response.headers_mut().insert("x-amz-bucket-region", value);
    }
}

/// S3's GetBucketLocation answer: the region, except an empty element for us-east-1, which
/// predates location constraints. `EU`, an old alias of eu-west-1, is never sent for new buckets.
fn bucket_location(region: &str, request_id: &str) -> Response<ResponseBody> {
    let constraint = if region == "us-east-1" { "" } else { region };
    let mut response = fixed_response(
        StatusCode::OK,
        "application/xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{S3_XMLNS}\">{}</LocationConstraint>",
            xml_escape(constraint)
        ),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amz-request-id", value);
    }
    response
}

/// A ListBuckets XML body with each `<Bucket>` row's `<BucketRegion>` set from `regions` (rows of
/// other buckets kept as the upstream sent them) or, with `list_bucket_regions` off, removed from
/// every row.
fn set_bucket_regions(xml: &str, regions: &BTreeMap<String, String>, list_bucket_regions: bool) -> String {
    const OPEN: &str = "<Bucket>";
    const CLOSE: &str = "</Bucket>";
    let mut rewritten = String::with_capacity(xml.len() + regions.len() * 48);
    let mut rest = xml;
    while let Some(start) = rest.find(OPEN) {
        let Some(length) = rest[start..].find(CLOSE) else {
            break;
        };
        rewritten.push_str(&rest[..start]);
        let row = &rest[start + OPEN.len()..start + length];
        rest = &rest[start + length + CLOSE.len()..];
        let name = element_text(row, "Name").map(xml_unescape);
        let region = name.as_deref().and_then(|name| regions.get(name));
        rewritten.push_str(OPEN);
        if !list_bucket_regions || region.is_some() {
            rewritten.push_str(&without_element(row, "BucketRegion"));
        } else {
            rewritten.push_str(row);
        }
        if list_bucket_regions && let Some(region) = region {
            rewritten.push_str(&format!("<BucketRegion>{}</BucketRegion>", xml_escape(region)));
        }
        rewritten.push_str(CLOSE);
    }
    rewritten.push_str(rest);
    rewritten
}

/// The text of the first `<tag>…</tag>` in `xml`.
fn element_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let length = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + length])
}

/// `xml` without its `<tag>…</tag>` and `<tag/>` elements.
fn without_element(xml: &str, tag: &str) -> String {
    let (open, close, empty) = (format!("<{tag}>"), format!("</{tag}>"), format!("<{tag}/>"));
    let mut kept = xml.replace(&empty, "");
    while let Some(start) = kept.find(&open) {
        let Some(length) = kept[start..].find(&close) else {
            break;
        };
        kept.replace_range(start..start + length + close.len(), "");
    }
    kept
}

impl Handler for ProxyShared {
    fn handle(self: Arc<Self>, request: Request<Incoming>, connection: ConnectionControl) -> ResponseFuture {
        Box::pin(async move {
            if request.uri().path().starts_with(ADMIN_PREFIX) {
                return self.admin(request).await;
            }
            self.proxy(request, connection).await
        })
    }
}

impl ProxyShared {
    async fn proxy(
        self: &Arc<Self>,
        request: Request<Incoming>,
        connection: ConnectionControl,
    ) -> Response<ResponseBody> {
        let path_and_query = request.uri().path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
        let mut finish = RequestFinish::start(self.clone(), request.method().as_str(), &path_and_query);
        let request_id = format!("{:016X}", finish.number.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let is_head = request.method() == Method::HEAD;

        let latency = lock(&self.faults).config.latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let service = Service::of(&request);
        // Before the faults: a real endpoint of the wrong region refuses the request before the
        // bucket's own throttling or errors could apply.
        let plan = match service {
            Service::S3 => self.region_plan(&request, &request_id, is_head),
            Service::Ec2 | Service::Sts => RegionPlan::Transparent,
        };
        let searched = lock(&self.faults).config.fail_matching.is_some() && is_form_post(&request);
        let (request, form) = match with_form_body(request, searched).await {
            Ok(buffered) => buffered,
            Err(error) => {
                finish.status = Some(400);
                return fixed_response(StatusCode::BAD_REQUEST, "text/plain", format!("fault proxy: unreadable body: {error}\n"));
            }
        };
        let decision = match plan {
            RegionPlan::Refuse(response) => Err(response),
            plan => Ok((self.decide(&path_and_query, form.as_deref()), plan)),
        };
        let response = match decision {
            Err(region_error) => {
                self.counters.region_errors.fetch_add(1, Ordering::SeqCst);
                region_error
            }
            Ok((Decision::MatchedFailure(status), _)) => {
                self.counters.matched_failures.fetch_add(1, Ordering::SeqCst);
                service.status_error(status, &request_id, is_head)
            }
            Ok((Decision::Reset, _)) => {
                self.counters.resets.fetch_add(1, Ordering::SeqCst);
                // Finished (with no status) before the reset, so a client that sees the reset also
                // sees the request out of flight.
                drop(finish);
                connection.reset();
                // The connection task drops this future as it closes the socket.
                return std::future::pending().await;
            }
            Ok((Decision::Throttle, _)) => {
                self.counters.throttled.fetch_add(1, Ordering::SeqCst);
                service.throttling_error(&request_id, is_head)
            }
            Ok((Decision::InjectedError, _)) => {
                self.counters.injected_errors.fetch_add(1, Ordering::SeqCst);
                service.unavailable_error(&request_id, is_head)
            }
            Ok((Decision::Forward { stall }, plan)) => match self.forward_with_plan(request, plan, &request_id).await {
                Ok(response) => match stall {
                    Some(stall_for) => {
                        self.counters.stalls.fetch_add(1, Ordering::SeqCst);
                        response.map(|body| StallingBody::new(body, stall_for).boxed())
                    }
                    None => response,
                },
                Err(error) => {
                    self.counters.upstream_errors.fetch_add(1, Ordering::SeqCst);
                    fixed_response(
                        StatusCode::BAD_GATEWAY,
                        "text/plain",
                        format!("fault proxy: upstream request failed: {error}\n"),
                    )
                }
            },
        };
        finish.status = Some(response.status().as_u16());
        // The request finishes when its body has been sent, not when its headers have.
        response.map(|body| {
            FinishOnEnd {
                body,
                finish: Some(finish),
            }
            .boxed()
        })
    }

    fn decide(&self, path_and_query: &str, form: Option<&str>) -> Decision {
        let mut faults = lock(&self.faults);
        if let Some(text) = &faults.config.fail_matching
            && (path_and_query.contains(text.as_str()) || form.is_some_and(|form| form.contains(text.as_str())))
        {
            return Decision::MatchedFailure(
                StatusCode::from_u16(faults.config.fail_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
        }
        let reset_rate = faults.config.reset_rate;
        if faults.chance(reset_rate) {
            return Decision::Reset;
        }
        if let Some(throttle) = faults.config.throttle
            && !faults.take_token(throttle)
        {
            return Decision::Throttle;
        }
        let error_rate = faults.config.error_rate;
        if faults.chance(error_rate) {
            return Decision::InjectedError;
        }
        let stall_rate = faults.config.stall_rate;
        let stall = faults.chance(stall_rate).then_some(faults.config.stall_for);
        Decision::Forward { stall }
    }

    /// Forwards `request` as `plan` says, or answers it in its place (GetBucketLocation).
    async fn forward_with_plan(
        &self,
        request: Request<ResponseBody>,
        plan: RegionPlan,
        request_id: &str,
    ) -> Result<Response<ResponseBody>, BoxError> {
        if let RegionPlan::Locate(region) = &plan {
            self.counters.bucket_locations.fetch_add(1, Ordering::SeqCst);
            return Ok(bucket_location(region, request_id));
        }
        if let Some(refusal) = self.refuse_large_copy(&request, request_id).await {
            self.counters.copy_refusals.fetch_add(1, Ordering::SeqCst);
            return Ok(refusal);
        }
        let response = self.forward(request).await?;
        self.apply_region_plan(plan, response).await
    }

    /// S3's refusal of a copy over `copy_source_limit` (see there), or `None` to forward it. The
    /// size copied is the UploadPartCopy's range, else the whole source, whose size a HEAD to the
    /// upstream finds (with the copy's own Authorization: moto checks no signatures, but reads
    /// the service from it). A source the HEAD cannot find is left to the upstream to refuse.
    /// S3's wording for an over-large part is not documented; the proxy's follows CopyObject's.
    async fn refuse_large_copy<B>(&self, request: &Request<B>, request_id: &str) -> Option<Response<ResponseBody>> {
        let limit = lock(&self.faults).config.copy_source_limit?;
        if request.method() != Method::PUT {
            return None;
        }
        let header_text = |name: &str| request.headers().get(name).and_then(|value| value.to_str().ok());
        let source = header_text("x-amz-copy-source")?;
        let range = header_text("x-amz-copy-source-range").and_then(|range| {
            let (first, last) = range.strip_prefix("bytes=")?.split_once('-')?;
            let (first, last) = (first.trim().parse::<u64>().ok()?, last.trim().parse::<u64>().ok()?);
            last.checked_sub(first)?.checked_add(1)
        });
        let size = match range {
            Some(size) => size,
            None => {
                let path = format!("/{}", source.trim_start_matches('/'));
                let uri = Uri::builder()
                    .scheme("http")
                    .authority(self.upstream.authority().cloned()?)
                    .path_and_query(path)
                    .build()
                    .ok()?;
                let mut head = Request::head(uri).body(empty_body()).ok()?;
                // moto tells the service a request is for by its credential scope.
                if let Some(authorization) = request.headers().get(header::AUTHORIZATION) {
                    head.headers_mut().insert(header::AUTHORIZATION, authorization.clone());
                }
                let answer = self.client.request(head).await.ok()?;
                if answer.status() != StatusCode::OK {
                    return None;
                }
                answer.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()?
            }
        };
        if size <= limit {
            return None;
        }
        let what = if range.is_some() { "copy range" } else { "copy source" };
        Some(Service::S3.error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            &format!("The specified {what} is larger than the maximum allowable size for a copy source: {limit}"),
            request_id,
            false,
        ))
    }

    async fn forward(&self, request: Request<ResponseBody>) -> Result<Response<Incoming>, BoxError> {
        let (mut parts, body) = request.into_parts();
        let path_and_query = parts.uri.path_and_query().cloned();
        let mut uri = Uri::builder()
            .scheme("http")
            .authority(self.upstream.authority().cloned().ok_or("upstream has no host")?);
        if let Some(path_and_query) = path_and_query {
            uri = uri.path_and_query(path_and_query);
        }
        parts.uri = uri.build()?;
        // The Host header stays the client's: it is part of what SigV4 signed.
        remove_hop_by_hop_headers(&mut parts.headers);
        self.counters.forwarded.fetch_add(1, Ordering::SeqCst);
        let mut response = self.client.request(Request::from_parts(parts, body)).await?;
        remove_hop_by_hop_headers(response.headers_mut());
        Ok(response)
    }

    async fn admin(&self, request: Request<Incoming>) -> Response<ResponseBody> {
        let json_response =
            |status: StatusCode, value: Value| fixed_response(status, "application/json", format!("{value}\n"));
        let bad_request = |message: String| json_response(StatusCode::BAD_REQUEST, json!({ "error": message }));
        match (request.method().clone(), request.uri().path()) {
            (Method::GET, "/__proxy/stats") => json_response(StatusCode::OK, self.counters.snapshot().to_json()),
            (Method::GET, "/__proxy/config") => json_response(StatusCode::OK, lock(&self.faults).config.to_json()),
            (Method::POST, "/__proxy/reset-stats") => {
                self.reset_stats();
                json_response(StatusCode::OK, json!({ "reset": true }))
            }
            (Method::POST, "/__proxy/config") => {
                let body = match Limited::new(request.into_body(), 64 * 1024).collect().await {
                    Ok(body) => body.to_bytes(),
                    Err(error) => return bad_request(format!("cannot read the config: {error}")),
                };
                let value: Value = match serde_json::from_slice(&body) {
                    Ok(value) => value,
                    Err(error) => return bad_request(format!("the config is not JSON: {error}")),
                };
                match FaultConfig::from_json(&value) {
                    Ok(config) => {
                        let shown = config.to_json();
                        *lock(&self.faults) = FaultState::new(config);
                        json_response(StatusCode::OK, shown)
                    }
                    Err(message) => bad_request(message),
                }
            }
            _ => json_response(
                StatusCode::NOT_FOUND,
                json!({ "error": "admin endpoints: GET /__proxy/stats, GET /__proxy/config, POST /__proxy/config, POST /__proxy/reset-stats" }),
            ),
        }
    }

    fn reset_stats(&self) {
        let counters = &self.counters;
        for counter in [
            &counters.received,
            &counters.forwarded,
            &counters.throttled,
            &counters.injected_errors,
            &counters.matched_failures,
            &counters.resets,
            &counters.stalls,
            &counters.upstream_errors,
            &counters.region_errors,
            &counters.bucket_locations,
            &counters.copy_refusals,
        ] {
            counter.store(0, Ordering::SeqCst);
        }
        counters
            .peak_in_flight
            .store(counters.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
        lock(&self.log).clear();
    }
}

/// Headers that describe one connection, not the message, so they are not passed on (RFC 9110 §7.6.1).
fn remove_hop_by_hop_headers(headers: &mut HeaderMap) {
    let named_in_connection: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named_in_connection {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// Counts a request in flight from arrival; when dropped (its body sent, its connection reset or
/// its client gone) counts it out and logs it.
struct RequestFinish {
    shared: Arc<ProxyShared>,
    number: u64,
    received: Instant,
    method: String,
    path_and_query: String,
    status: Option<u16>,
}

impl RequestFinish {
    fn start(shared: Arc<ProxyShared>, method: &str, path_and_query: &str) -> RequestFinish {
        let number = shared.counters.received.fetch_add(1, Ordering::SeqCst);
        let in_flight = shared.counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.counters.peak_in_flight.fetch_max(in_flight, Ordering::SeqCst);
        RequestFinish {
            shared,
            number,
            received: Instant::now(),
            method: method.to_owned(),
            path_and_query: path_and_query.to_owned(),
            status: None,
        }
    }
}

impl Drop for RequestFinish {
    fn drop(&mut self) {
        let entry = LoggedRequest {
            received: self.received,
            finished: Instant::now(),
            method: std::mem::take(&mut self.method),
            path_and_query: std::mem::take(&mut self.path_and_query),
            status: self.status,
        };
        {
            let mut log = lock(&self.shared.log);
            if log.len() >= LOG_CAPACITY {
                log.pop_front();
            }
            log.push_back(entry);
        }
        // Counted out after logging, so a test that sees in_flight == 0 also sees the log entry.
        self.shared.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that finishes its request when it ends or is dropped.
struct FinishOnEnd {
    body: ResponseBody,
    finish: Option<RequestFinish>,
}

impl Body for FinishOnEnd {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.finish = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body that sends the first half of its first data frame, then nothing for
/// `stall_for` (or ever), then the rest: a server that stops mid-body.
struct StallingBody {
    body: ResponseBody,
    stall_for: Option<Duration>,
    phase: StallPhase,
}

enum StallPhase {
    BeforeFirstData,
    /// `rest` is what to send when the stall is over; `body_ended` means the end comes right after.
    Stalled {
        rest: Option<Bytes>,
        body_ended: bool,
        until: Option<Pin<Box<tokio::time::Sleep>>>,
    },
    Streaming,
    Ended,
}

impl StallingBody {
    fn new(body: ResponseBody, stall_for: Option<Duration>) -> StallingBody {
        StallingBody {
            body,
            stall_for,
            phase: StallPhase::BeforeFirstData,
        }
    }

    fn stall(&mut self, rest: Option<Bytes>, body_ended: bool) {
        let until = self.stall_for.map(|duration| Box::pin(tokio::time::sleep(duration)));
        self.phase = StallPhase::Stalled {
            rest,
            body_ended,
            until,
        };
    }
}

impl Body for StallingBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            match &mut this.phase {
                StallPhase::Ended => return Poll::Ready(None),
                StallPhase::Streaming => return Pin::new(&mut this.body).poll_frame(cx),
                StallPhase::Stalled {
                    rest,
                    body_ended,
                    until,
                } => {
                    match until {
                        // Stalled for good: this body never ends; the client has to give up.
                        None => return Poll::Pending,
                        Some(sleep) => {
                            if sleep.as_mut().poll(cx).is_pending() {
                                return Poll::Pending;
                            }
                        }
                    }
                    let rest = rest.take();
                    this.phase = if *body_ended {
                        StallPhase::Ended
                    } else {
                        StallPhase::Streaming
                    };
                    if let Some(rest) = rest {
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                }
                StallPhase::BeforeFirstData => match Pin::new(&mut this.body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                        Ok(mut first_part) => {
                            // A one-byte frame cannot be split: send it and stall before what follows.
                            let rest = (first_part.len() >= 2).then(|| first_part.split_off(first_part.len() / 2));
                            this.stall(rest, false);
                            return Poll::Ready(Some(Ok(Frame::data(first_part))));
                        }
                        Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                    },
                    // No data at all: stall before the end.
                    Poll::Ready(None) => this.stall(None, true),
                    other => return other,
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // Never claim the end early: hyper would stop polling before the stall.
        false
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
