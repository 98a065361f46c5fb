//! Loopback HTTP servers for nuaws's integration tests and benchmark scripts:
//!
//! - [`FaultProxy`] sits in front of a test upstream (moto, or [`SyntheticS3`]) and injects the
//!   faults of a real AWS endpoint: latency, throttling, 503s, connection resets, stalled bodies
//!   and requests that always fail.
//! - [`SyntheticS3`] answers for one bucket of up to a billion generated objects in constant
//!   memory, for listing and download benchmarks at sizes moto cannot hold.
//!
//! Each runs on its own tokio runtime thread, binds 127.0.0.1 only and stops when dropped. The
//! `nuaws-test-server` binary runs them for shell scripts.
//!
//! Test support only: not part of nuaws, not a fake AWS, and nothing here checks credentials.

mod fault_proxy;
mod server;
mod synthetic_s3;
mod text;

pub use fault_proxy::{FaultConfig, FaultProxy, LoggedRequest, ProxyStats, S3Endpoint, Throttle, default_burst};
pub use synthetic_s3::{
    MAX_OBJECTS, SyntheticS3, object_body, object_etag, object_index, object_key, object_last_modified, object_size,
};
