//! `aws-core`: everything nuaws needs to talk to AWS, with no knowledge of Nushell.
//!
//! - [`session`]: one session per (profile, region, endpoint, AWS environment), with its SDK
//!   clients built once and shared (one HTTP connection pool per client).
//! - [`runtime`]: the one tokio runtime of the process, and blocking entry points that a
//!   synchronous caller can interrupt.
//! - [`pagination`]: [`pagination::PageStream`], a paginated listing fed through a bounded channel
//!   that prefetches at most one page ahead of its consumer.
//! - [`error`]: [`error::AwsError`], SDK failures classified into what a user can act on.
//! - [`row`]: [`row::Row`], the plain tabular shape every listing produces; the shell side turns
//!   it into its own values.
//! - [`s3`] and [`ec2`]: the operations themselves.
//!
//! Not here: anything about Nushell values, spans, signals or commands (that is `nu-cmd-aws`).

pub mod ec2;
pub mod error;
pub mod pagination;
pub mod row;
pub mod runtime;
pub mod s3;
pub mod session;

pub use error::{AwsError, ErrorKind};
pub use pagination::{Next, PageStream};
pub use row::{Field, Row};
pub use session::{Session, SessionSpec, Sessions};
