//! S3: `s3://` URLs and bucket-name rules ([`url`]), listings of buckets and objects as streams of
//! rows ([`list`]), and single-object operations: head, get, put, batched delete ([`object`]), and whole-object
//! transfers as futures for the request engine ([`transfer`]).
//!
//! Not here: running many of them at once (that is the request engine's job) or any decoding
//! of object contents (the shell decides what a `.json` is).

pub mod list;
pub mod object;
pub mod transfer;
pub mod url;

pub use list::{ListObjects, list_buckets, list_objects};
pub use object::{DeleteOutcome, ObjectBody, delete_objects, get_object, head_object, put_object};
pub use url::{S3Url, UrlError};
