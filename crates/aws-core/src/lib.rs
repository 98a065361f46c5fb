//! `aws-core`: everything nuaws needs to talk to AWS, with no knowledge of Nushell.
//!
//! - [`cache`]: memory LRU, then LMDB on disk, then the network: keys scoped by identity, a TTL
//!   allowlist, get-or-fetch, listings recorded and replayed.
//! - [`accounts`]: many accounts from one identity: roles to assume into each, their checks, and
//!   their credentials cached until near expiry.
//! - [`identity`]: the account and caller ARN of a session (STS), cached.
//! - [`region`]: the region names AWS has, to refuse a typo before any request.
//! - [`session`]: one session per (profile, region, endpoint, AWS environment), with its SDK
//!   clients built once and shared (one HTTP connection pool per client).
//! - [`runtime`]: the one tokio runtime of the process, and blocking entry points that a
//!   synchronous caller can interrupt.
//! - [`engine`]: many requests at once: an adaptive concurrency limit per lane, deduplication
//!   of identical requests, bulk jobs with retries, backpressure and fail-fast or resilient modes.
//! - [`pagination`]: [`pagination::PageStream`], a paginated listing fed through a bounded channel
//!   that prefetches at most one page ahead of its consumer.
//! - [`fanout`]: several reads at once: a bound on requests in flight, and listings of many
//!   regions merged into one stream as their pages arrive.
//! - [`error`]: [`error::AwsError`], SDK failures classified into what a user can act on.
//! - [`row`]: [`row::Row`], the plain tabular shape every listing produces; the shell side turns
//!   it into its own values.
//! - [`s3`] and [`ec2`]: the operations themselves.
//! - [`tags`]: resources of EC2 and S3 correlated by one tag key, as one table.
//! - [`cache`]: storage of listing results, in memory and on disk (LMDB), with expiry.
//! - [`metrics`]: latency percentiles, counts, errors, retries, throttles, bytes and cache hits
//!   per (service, operation, region), recorded on every request and cache lookup, and kept
//!   per hour across processes in the disk cache.
//!
//! Not here: anything about Nushell values, spans, signals or commands (that is `nu-cmd-aws`).

pub mod accounts;
pub mod cache;
pub mod ec2;
pub mod engine;
pub mod error;
pub mod fanout;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod metrics;
pub mod pagination;
pub mod region;
pub mod row;
pub mod runtime;
pub mod s3;
pub mod session;
pub mod tags;

pub use error::{AwsError, ErrorKind};
pub use pagination::{Next, PageStream};
pub use row::{Field, Row};
pub use session::{Session, SessionSpec, Sessions};
