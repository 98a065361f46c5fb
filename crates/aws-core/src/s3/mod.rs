//! S3: `s3://` URLs and bucket-name rules ([`url`]); listings of buckets and objects as streams
//! of rows ([`list`]; recursive ones partitioned into key ranges listed at once, [`partition`]);
//! the planner of `sync` ([`sync`]) over a local walk in key order ([`walk`]) or a listing sorted
//! on disk ([`sort`]); the aggregation of `du` ([`du`]) and the incomplete multipart uploads it
//! counts ([`uploads`]); single-object operations: head, get, put, batched delete ([`object`]);
//! whole-object transfers as futures for the request engine ([`transfer`]) and server-side
//! copies ([`copy`]), with what those writes share (no replacing unless asked, the end of a
//! multipart upload: [`write`]) and the checksums they carry ([`checksum`]); bucket tags and
//! locations ([`tagging`]); and the routing of every request about a bucket to the bucket's
//! region ([`route`]).
//!
//! Not here: running many of them at once (that is the request engine's job) or any decoding
//! of object contents (the shell decides what a `.json` is).

pub mod checksum;
pub mod copy;
pub mod du;
pub mod list;
pub mod list_xml;
pub mod object;
pub mod partition;
pub mod route;
pub mod sort;
pub mod sync;
pub mod tagging;
pub mod transfer;
pub mod uploads;
pub mod url;
pub mod walk;
pub mod write;

pub use list::{ListObjects, Listed, VersionKind, list_buckets, list_listed, list_objects, list_versions};
pub use object::{DeleteOutcome, ObjectBody, delete_objects, get_object, head_object, put_object};
pub use route::{BucketRegions, BucketRouter, RegionStore};
pub use tagging::{bucket_location, bucket_tags};
pub use uploads::list_uploads;
pub use url::{S3Url, UrlError};
