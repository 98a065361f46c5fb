//! `SyntheticS3`: an S3 endpoint on loopback for one bucket of N generated objects (N up to ten
//! million and more), answered in constant memory. For listing and download benchmarks at sizes
//! moto cannot hold or seed in reasonable time.
//!
//! Object `i` (0-based) has the key `obj/%09d`, so lexicographic order is numeric order, a size of
//! `100 + i % 900` bytes, a deterministic ETag and body, `LastModified` 2024-01-01T00:00:00Z plus
//! `i` seconds and storage class STANDARD. Every page is computed from the request alone.
//!
//! Not a fake S3: it is read-only, ignores authentication, knows one bucket, and answers only
//! ListBuckets, ListObjectsV2, HeadBucket, GetBucketLocation, HeadObject and GetObject (with a single
//! byte range). Anything else gets S3's `NotImplemented` error.

use std::fmt::Write as _;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::server::{
    ConnectionControl, Handler, ResponseBody, ResponseFuture, RunningServer, empty_body, fixed_response,
};
use crate::text::{UtcTime, percent_decode, percent_encode_key, query_pairs, xml_escape};

/// 2024-01-01T00:00:00Z, the `LastModified` of object 0.
const FIRST_MODIFIED_UNIX: i64 = 1_704_067_200;
const KEY_PREFIX: &str = "obj/";
const KEY_DIGITS: usize = 9;
const KEY_LEN: usize = KEY_PREFIX.len() + KEY_DIGITS;
/// Nine digits keep key order equal to index order up to this many objects.
pub const MAX_OBJECTS: u64 = 1_000_000_000;
const MAX_KEYS_PER_PAGE: u64 = 1000;
const S3_XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// The key of object `index`: `obj/000000042`.
pub fn object_key(index: u64) -> String {
    String::from_utf8_lossy(&key_bytes(index)).into_owned()
}

/// The size in bytes of object `index`.
pub fn object_size(index: u64) -> u64 {
    100 + index % 900
}

/// The ETag of object `index`, without quotes: 32 hex digits, like an MD5, but not the MD5 of the
/// body (nothing checks that for single-part objects, and hashing would cost time per listing).
pub fn object_etag(index: u64) -> String {
    format!(
        "{:016x}{:016x}",
        splitmix64(index),
        splitmix64(index ^ 0xA5A5_A5A5_A5A5_A5A5)
    )
}

/// The `LastModified` of object `index` in S3's XML format.
pub fn object_last_modified(index: u64) -> String {
    UtcTime::from_unix_seconds(FIRST_MODIFIED_UNIX + index as i64).iso8601()
}

/// The content of object `index`: printable lowercase letters, so a `curl` of it is readable.
pub fn object_body(index: u64) -> Vec<u8> {
    (0..object_size(index))
        .map(|offset| b'a' + ((index + offset) % 26) as u8)
        .collect()
}

/// The index of the object whose key is `key`, if `key` is one of the bucket's `objects` keys.
pub fn object_index(key: &str, objects: u64) -> Option<u64> {
    let digits = key.strip_prefix(KEY_PREFIX)?;
    if digits.len() != KEY_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&index| index < objects)
}

fn key_bytes(index: u64) -> [u8; KEY_LEN] {
    let mut key = [b'0'; KEY_LEN];
    key[..KEY_PREFIX.len()].copy_from_slice(KEY_PREFIX.as_bytes());
    let mut rest = index;
    for slot in key[KEY_PREFIX.len()..].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    key
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A running synthetic S3 endpoint; dropping it stops the server.
pub struct SyntheticS3 {
    bucket: Arc<SyntheticBucket>,
    server: RunningServer,
}

impl SyntheticS3 {
    /// Serves `bucket` holding `objects` generated objects on a free loopback port.
    pub fn start(bucket: &str, objects: u64) -> io::Result<SyntheticS3> {
        if objects > MAX_OBJECTS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("at most {MAX_OBJECTS} objects fit nine-digit keys, not {objects}"),
            ));
        }
        if bucket.is_empty() || bucket.contains('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid bucket name {bucket:?}"),
            ));
        }
        let bucket = Arc::new(SyntheticBucket {
            name: bucket.to_owned(),
            objects,
            requests: AtomicU64::new(0),
        });
        let server = RunningServer::start("synthetic-s3", bucket.clone())?;
        Ok(SyntheticS3 { bucket, server })
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    pub fn port(&self) -> u16 {
        self.server.address().port()
    }

    /// How many requests it has answered (or is answering).
    pub fn requests(&self) -> u64 {
        self.bucket.requests.load(Ordering::Relaxed)
    }
}

struct SyntheticBucket {
    name: String,
    objects: u64,
    requests: AtomicU64,
}

impl Handler for SyntheticBucket {
    fn handle(self: Arc<Self>, request: Request<Incoming>, _connection: ConnectionControl) -> ResponseFuture {
        Box::pin(async move {
            let request_number = self.requests.fetch_add(1, Ordering::Relaxed);
            let request_id = format!("{:016X}", splitmix64(request_number));
            let mut response = self.respond(&request, &request_id);
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert("x-amz-request-id", value);
            }
            response
        })
    }
}

impl SyntheticBucket {
    fn respond(&self, request: &Request<Incoming>, request_id: &str) -> Response<ResponseBody> {
        let method = request.method();
        let path = percent_decode(request.uri().path(), false);
        let query = query_pairs(request.uri().query().unwrap_or(""));
        let path = path.strip_prefix('/').unwrap_or(&path);
        let (bucket, key) = match path.split_once('/') {
            Some((bucket, key)) => (bucket, key),
            None => (path, ""),
        };
        let is_head = method == Method::HEAD;
        if bucket.is_empty() {
            return match *method {
                Method::GET => self.list_buckets(),
                _ => s3_error(
                    StatusCode::NOT_IMPLEMENTED,
                    "NotImplemented",
                    "Only ListBuckets is served here.",
                    "",
                    request_id,
                    is_head,
                ),
            };
        }
        if bucket != self.name {
            return s3_error(
                StatusCode::NOT_FOUND,
                "NoSuchBucket",
                "The specified bucket does not exist",
                "",
                request_id,
                is_head,
            );
        }
        if key.is_empty() {
            let has = |name: &str| query.iter().any(|(n, _)| n == name);
            return match *method {
                Method::HEAD => fixed_response(StatusCode::OK, "application/xml", Bytes::new()),
                Method::GET if has("location") => fixed_response(
                    StatusCode::OK,
                    "application/xml",
                    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{S3_XMLNS}\"/>"),
                ),
                Method::GET if query.iter().any(|(n, v)| n == "list-type" && v == "2") => {
                    self.list_objects_v2(&query, request_id)
                }
                _ => s3_error(
                    StatusCode::NOT_IMPLEMENTED,
                    "NotImplemented",
                    "Only ListObjectsV2 (list-type=2), HeadBucket and GetBucketLocation are served on a bucket.",
                    "",
                    request_id,
                    is_head,
                ),
            };
        }
        match *method {
            Method::GET | Method::HEAD => match object_index(key, self.objects) {
                Some(index) => object_response(index, request.headers().get(header::RANGE), is_head, request_id),
                None => s3_error(
                    StatusCode::NOT_FOUND,
                    "NoSuchKey",
                    "The specified key does not exist.",
                    key,
                    request_id,
                    is_head,
                ),
            },
            _ => s3_error(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "This bucket is read-only.",
                key,
                request_id,
                false,
            ),
        }
    }

    fn list_buckets(&self) -> Response<ResponseBody> {
        let mut xml = String::new();
        let _ = write!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"{S3_XMLNS}\">\
             <Owner><ID>{owner}</ID><DisplayName>synthetic</DisplayName></Owner>\
             <Buckets><Bucket><Name>{name}</Name><CreationDate>{created}</CreationDate></Bucket></Buckets>\
             </ListAllMyBucketsResult>",
            owner = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a",
            name = xml_escape(&self.name),
            created = UtcTime::from_unix_seconds(FIRST_MODIFIED_UNIX).iso8601(),
        );
        fixed_response(StatusCode::OK, "application/xml", xml)
    }

    fn list_objects_v2(&self, query: &[(String, String)], request_id: &str) -> Response<ResponseBody> {
        let parameter = |name: &str| query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let invalid = |message: &str| {
            s3_error(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                message,
                "",
                request_id,
                false,
            )
        };
        let prefix = parameter("prefix").unwrap_or("");
        let delimiter = parameter("delimiter").filter(|d| !d.is_empty());
        let url_encoded = match parameter("encoding-type") {
            None => false,
            Some("url") => true,
            Some(_) => return invalid("Invalid Encoding Method specified in Request"),
        };
        let max_keys = match parameter("max-keys").map(str::parse::<u64>) {
            None => MAX_KEYS_PER_PAGE,
            Some(Ok(requested)) => requested.min(MAX_KEYS_PER_PAGE),
            Some(Err(_)) => return invalid("Provided max-keys not an integer or within integer range"),
        };
        let continuation_token = parameter("continuation-token");
        let start_after = parameter("start-after");

        // Keys starting with the prefix are one contiguous run of indices, as in any sorted list.
        let matching_start = self.first_index_where(0, |key| key >= prefix.as_bytes());
        let matching_end = self.first_index_where(matching_start, |key| !key.starts_with(prefix.as_bytes()));
        let mut next = matching_start;
        match continuation_token {
            // The token is the index to resume at; S3 ignores start-after when a token is given.
            Some(token) => match token.parse::<u64>() {
                Ok(index) if index <= self.objects => next = next.max(index),
                _ => return invalid("The continuation token provided is incorrect"),
            },
            None => {
                if let Some(start_after) = start_after {
                    next = next.max(self.first_index_where(0, |key| key > start_after.as_bytes()));
                }
            }
        }

        let mut contents = String::new();
        let mut common_prefixes = String::new();
        let mut key_count = 0;
        let encode = |text: &str| {
            if url_encoded {
                percent_encode_key(text)
            } else {
                xml_escape(text)
            }
        };
        while next < matching_end && key_count < max_keys {
            let key = key_bytes(next);
            let rolled_up = delimiter.and_then(|delimiter| {
                let after_prefix = &key[prefix.len()..];
                let position = after_prefix
                    .windows(delimiter.len())
                    .position(|w| w == delimiter.as_bytes())?;
                Some(key[..prefix.len() + position + delimiter.len()].to_vec())
            });
            match rolled_up {
                Some(common_prefix) => {
                    let common_prefix = String::from_utf8_lossy(&common_prefix).into_owned();
                    let _ = write!(
                        common_prefixes,
                        "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                        encode(&common_prefix)
                    );
                    // Keys sharing the common prefix are contiguous too: skip them all at once.
                    next = self.first_index_where(next, |key| !key.starts_with(common_prefix.as_bytes()));
                }
                None => {
                    let _ = write!(
                        contents,
                        "<Contents><Key>{key}</Key><LastModified>{modified}</LastModified>\
                         <ETag>&quot;{etag}&quot;</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                        key = encode(&object_key(next)),
                        modified = object_last_modified(next),
                        etag = object_etag(next),
                        size = object_size(next),
                    );
                    next += 1;
                }
            }
            key_count += 1;
        }
        let is_truncated = next < matching_end;

        let mut xml = String::with_capacity(contents.len() + common_prefixes.len() + 512);
        let _ = write!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"{S3_XMLNS}\"><Name>{}</Name><Prefix>{}</Prefix>",
            xml_escape(&self.name),
            encode(prefix)
        );
        if let Some(token) = continuation_token {
            let _ = write!(xml, "<ContinuationToken>{}</ContinuationToken>", xml_escape(token));
        }
        if let Some(start_after) = start_after {
            let _ = write!(xml, "<StartAfter>{}</StartAfter>", encode(start_after));
        }
        let _ = write!(xml, "<KeyCount>{key_count}</KeyCount><MaxKeys>{max_keys}</MaxKeys>");
        if let Some(delimiter) = delimiter {
            let _ = write!(xml, "<Delimiter>{}</Delimiter>", encode(delimiter));
        }
        if url_encoded {
            xml.push_str("<EncodingType>url</EncodingType>");
        }
        let _ = write!(xml, "<IsTruncated>{is_truncated}</IsTruncated>");
        if is_truncated {
            let _ = write!(xml, "<NextContinuationToken>{next}</NextContinuationToken>");
        }
        xml.push_str(&contents);
        xml.push_str(&common_prefixes);
        xml.push_str("</ListBucketResult>");
        fixed_response(StatusCode::OK, "application/xml", xml)
    }

    /// The first index in `from..objects` whose key satisfies `predicate`, or `objects` if none does.
    /// `predicate` must be false then true along the key order (a binary search).
    fn first_index_where(&self, from: u64, predicate: impl Fn(&[u8]) -> bool) -> u64 {
        let (mut low, mut high) = (from, self.objects);
        while low < high {
            let middle = low + (high - low) / 2;
            if predicate(&key_bytes(middle)) {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        low
    }
}

fn object_response(index: u64, range: Option<&HeaderValue>, is_head: bool, request_id: &str) -> Response<ResponseBody> {
    let size = object_size(index);
    let (status, first, last) = match range.and_then(|value| value.to_str().ok()) {
        None => (StatusCode::OK, 0, size - 1),
        Some(range) => match parse_byte_range(range, size) {
            Some((first, last)) => (StatusCode::PARTIAL_CONTENT, first, last),
            None => {
                let mut response = s3_error(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "InvalidRange",
                    "The requested range is not satisfiable",
                    "",
                    request_id,
                    is_head,
                );
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                return response;
            }
        },
    };
    let body = if is_head {
        Bytes::new()
    } else {
        let mut bytes = object_body(index);
        bytes.truncate(last as usize + 1);
        Bytes::from(bytes).slice(first as usize..)
    };
    let mut response = fixed_response(status, "application/octet-stream", body);
    let headers = response.headers_mut();
    let last_modified = UtcTime::from_unix_seconds(FIRST_MODIFIED_UNIX + index as i64).http_date();
    for (name, value) in [
        (header::CONTENT_LENGTH, (last - first + 1).to_string()),
        (header::ETAG, format!("\"{}\"", object_etag(index))),
        (header::LAST_MODIFIED, last_modified),
        (header::ACCEPT_RANGES, "bytes".to_owned()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    headers.insert("x-amz-storage-class", HeaderValue::from_static("STANDARD"));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(value) = HeaderValue::from_str(&format!("bytes {first}-{last}/{size}"))
    {
        headers.insert(header::CONTENT_RANGE, value);
    }
    response
}

/// The inclusive byte range of a single-range `Range: bytes=...` header, clamped to the object;
/// `None` if it is malformed or starts past the end (S3 answers 416 then).
fn parse_byte_range(range: &str, size: u64) -> Option<(u64, u64)> {
    let spec = range.trim().strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        if suffix == 0 {
            return None;
        }
        return Some((size.saturating_sub(suffix), size - 1));
    }
    let first: u64 = first.parse().ok()?;
    let last = if last.is_empty() {
        size - 1
    } else {
        last.parse::<u64>().ok()?.min(size - 1)
    };
    (first <= last && first < size).then_some((first, last))
}

/// An S3 error response: `<Error><Code>…` with the given status. HEAD responses carry no body.
pub(crate) fn s3_error(
    status: StatusCode,
    code: &str,
    message: &str,
    key: &str,
    request_id: &str,
    is_head: bool,
) -> Response<ResponseBody> {
    if is_head {
        let mut response = Response::new(empty_body());
        *response.status_mut() = status;
        return response;
    }
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message>",
        xml_escape(message)
    );
    if !key.is_empty() {
        let _ = write!(xml, "<Key>{}</Key>", xml_escape(key));
    }
    let _ = write!(
        xml,
        "<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
    );
    fixed_response(status, "application/xml", xml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_indices_and_parse_back() {
        assert_eq!(object_key(42), "obj/000000042");
        assert_eq!(object_key(999_999_999), "obj/999999999");
        assert!(object_key(9) < object_key(10));
        assert_eq!(object_index("obj/000000042", 43), Some(42));
        assert_eq!(object_index("obj/000000042", 42), None);
        assert_eq!(object_index("obj/00000004", 100), None);
        assert_eq!(object_index("obj/00000004x", 100), None);
        assert_eq!(object_index("obj/+00000042", 100), None);
    }

    #[test]
    fn object_metadata_is_deterministic() {
        assert_eq!(object_size(0), 100);
        assert_eq!(object_size(899), 999);
        assert_eq!(object_size(900), 100);
        assert_eq!(object_etag(7), object_etag(7));
        assert_ne!(object_etag(7), object_etag(8));
        assert_eq!(object_etag(7).len(), 32);
        assert_eq!(object_last_modified(61), "2024-01-01T00:01:01.000Z");
        assert_eq!(object_body(1).len(), 101);
        assert_eq!(&object_body(1)[..3], b"bcd");
    }

    #[test]
    fn byte_ranges_follow_http() {
        assert_eq!(parse_byte_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_byte_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_byte_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_byte_range("bytes=-1000", 100), Some((0, 99)));
        assert_eq!(parse_byte_range("bytes=50-1000", 100), Some((50, 99)));
        assert_eq!(parse_byte_range("bytes=100-", 100), None);
        assert_eq!(parse_byte_range("bytes=9-3", 100), None);
        assert_eq!(parse_byte_range("bytes=-0", 100), None);
        assert_eq!(parse_byte_range("items=0-1", 100), None);
    }
}
