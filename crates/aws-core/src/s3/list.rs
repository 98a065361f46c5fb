//! Listings: buckets, and objects under a prefix (one level, with common prefixes as
//! directories, or everything below). Each is a [`PageStream`] of rows shaped like Nushell's
//! `ls`: `name`, `type`, `size`, `modified`, then `etag` and `storage_class`.
//!
//! Recursive listings are partitioned ([`super::partition`]): one paginator while small, key
//! ranges listed at once and handed out in order once big.
//!
//! Prefix semantics are S3's (and the AWS CLI's): `s3://b/data` matches `data/…` and `data.csv`;
//! end the prefix with `/` to list inside a "directory" only.

use std::sync::Arc;

use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;

use crate::engine::{Engine, Lane, LimiterSettings};
use crate::error::AwsError;
use crate::fanout::RequestLimit;
use crate::pagination::PageStream;
use crate::row::{Field, Row};
use crate::s3::list_xml::HandParsedListing;
use crate::s3::partition::{self, KeyedPage, PageQuery, PartitionSettings, PartitionStats, RangeSource};
use crate::s3::route::BucketRouter;
use crate::s3::url::S3Url;
use crate::session::Session;

/// S3's own maximum page size, and its default.
pub const MAX_KEYS: i32 = 1000;

/// What to list.
#[derive(Clone, Debug)]
pub struct ListObjects {
    pub url: S3Url,
    /// Everything below the prefix, rather than one level.
    pub recursive: bool,
    /// Keys per request (1-1000).
    pub page_size: i32,
}

impl ListObjects {
    pub fn new(url: S3Url, recursive: bool) -> Self {
        Self {
            url,
            recursive,
            page_size: MAX_KEYS,
        }
    }
}

/// The buckets of the account: `name`, `type` ("bucket"), `region`, `created`. The regions it
/// reports are learned for routing (ListBuckets itself is answered in any region).
pub fn list_buckets(session: &Arc<Session>) -> PageStream<Row> {
    let client = session.s3().clone();
    let router = BucketRouter::new(session);
    PageStream::spawn(move |token| {
        let (client, router) = (client.clone(), router.clone());
        async move {
            let out = client
                .list_buckets()
                .max_buckets(MAX_KEYS)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("S3 ListBuckets", e))?;
            let regions = bucket_regions(&router, out.buckets()).await;
            let rows = out
                .buckets()
                .iter()
                .zip(regions)
                .map(|(b, region)| {
                    Row::new()
                        .with("name", Field::text(b.name()))
                        .with("region", Field::text(region.as_deref()))
                        .with("created", Field::time(b.creation_date()))
                })
                .collect();
            Ok((rows, out.continuation_token().map(str::to_string)))
        }
    })
}

/// Lookups of bucket regions ListBuckets did not report, at once.
const REGION_LOOKUPS_AT_ONCE: usize = 16;

/// The region of each bucket of a ListBuckets page: its `BucketRegion` (real S3 sends it, and it
/// is learned for routing), else the one known or asked of S3 (older S3-compatible servers);
/// `None` where neither answers (no permission to ask).
async fn bucket_regions(router: &BucketRouter, buckets: &[aws_sdk_s3::types::Bucket]) -> Vec<Option<String>> {
    let limit = RequestLimit::new(REGION_LOOKUPS_AT_ONCE);
    let mut lookups = tokio::task::JoinSet::new();
    let mut regions = vec![None; buckets.len()];
    for (i, bucket) in buckets.iter().enumerate() {
        let Some(name) = bucket.name() else { continue };
        match bucket.bucket_region() {
            Some(region) => {
                router.learn_listed(name, region);
                regions[i] = Some(region.to_string());
            }
            None => {
                let (router, limit, name) = (router.clone(), limit.clone(), name.to_string());
                lookups.spawn(async move { (i, limit.run(router.region_of(&name)).await.ok()) });
            }
        }
    }
    while let Some(found) = lookups.join_next().await {
        if let Ok((i, region)) = found {
            regions[i] = region;
        }
    }
    regions
}

/// The objects (and, unless recursive, the common prefixes) under `request.url`, asked of the
/// bucket's region. A recursive listing's pages wait as [`Listed`] objects (about a third of a
/// row's memory: no `s3://` URL, no column names) and become rows as the consumer takes them.
pub fn list_objects(session: &Arc<Session>, request: ListObjects) -> PageStream<Row> {
    if request.recursive {
        let url = request.url.clone();
        return list_listed(session, request).map(move |listed| listed_row(&url, listed));
    }
    list_pages(session, request, |url, out| {
        let files = out.contents().iter().map(|o| {
            let key = o.key().unwrap_or_default();
            (key, object_row(url, o))
        });
        let dirs = out.common_prefixes().iter().filter_map(|p| {
            let prefix = p.prefix()?;
            Some((prefix, dir_row(url, prefix)))
        });
        merge_by_key(files, dirs)
    })
}

/// One object of a listing, typed, for consumers that compute with it (`sync`, `du`) rather
/// than show it.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    /// The whole key.
    pub key: String,
    pub size: u64,
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
    /// Unquoted.
    pub etag: Option<String>,
    pub storage_class: Option<String>,
    /// The additional checksum S3 keeps of the object, as listed: its algorithm (`CRC64NVME`,
    /// `CRC32`, ...), never its value (that takes a HEAD with checksum mode on).
    pub checksum_algorithm: Option<String>,
}

impl Listed {
    /// One object of a ListObjectsV2 page.
    pub fn from_object(o: &aws_sdk_s3::types::Object) -> Self {
        Listed {
            key: o.key().unwrap_or_default().to_string(),
            size: o.size().unwrap_or(0).max(0) as u64,
            modified: o.last_modified().and_then(crate::row::smithy_to_chrono),
            etag: o.e_tag().map(|e| unquote_etag(e).to_string()),
            storage_class: o.storage_class().map(|c| c.as_str().to_string()),
            // A full-object CRC64NVME is what `sync --checksum` can use; otherwise the first.
            checksum_algorithm: o
                .checksum_algorithm()
                .iter()
                .find(|a| **a == aws_sdk_s3::types::ChecksumAlgorithm::Crc64Nvme)
                .or_else(|| o.checksum_algorithm().first())
                .map(|a| a.as_str().to_string()),
        }
    }
}

/// The objects of `request` (recursive: everything below the prefix, no delimiter), in S3's key
/// order, asked of the bucket's region.
pub fn list_listed(session: &Arc<Session>, request: ListObjects) -> PageStream<Listed> {
    list_pages(session, request, |_, out| out.contents().iter().map(Listed::from_object).collect())
}

/// What a version of a listing of versions is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionKind {
    Current,
    Noncurrent,
    DeleteMarker,
}

impl VersionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionKind::Current => "current",
            VersionKind::Noncurrent => "noncurrent",
            VersionKind::DeleteMarker => "delete marker",
        }
    }
}

/// Every version and delete marker below `url`'s prefix (ListObjectVersions), in key order,
/// asked of the bucket's region. Delete markers have size 0 and no storage class.
pub fn list_versions(session: &Arc<Session>, url: S3Url, page_size: i32) -> PageStream<(Listed, VersionKind)> {
    let router = BucketRouter::new(session);
    PageStream::spawn(move |token: Option<String>| {
        let (router, url) = (router.clone(), url.clone());
        async move {
            // The next page starts after a key and a version: both in the one token.
            let (key_marker, version_marker) = split_markers(token.as_deref());
            let page = |client: aws_sdk_s3::Client| {
                let mut call = client
                    .list_object_versions()
                    .bucket(&url.bucket)
                    .max_keys(page_size.clamp(1, MAX_KEYS))
                    .set_key_marker(key_marker.clone())
                    .set_version_id_marker(version_marker.clone());
                if !url.key.is_empty() {
                    call = call.prefix(&url.key);
                }
                async move { call.send().await.map_err(|e| AwsError::from_sdk("S3 ListObjectVersions", e)) }
            };
            let out = router.call(&url.bucket, page).await?;
            let versions = out.versions().iter().map(|v| {
                let kind = if v.is_latest() == Some(true) { VersionKind::Current } else { VersionKind::Noncurrent };
                let listed = Listed {
                    key: v.key().unwrap_or_default().to_string(),
                    size: v.size().unwrap_or(0).max(0) as u64,
                    modified: v.last_modified().and_then(crate::row::smithy_to_chrono),
                    etag: v.e_tag().map(|e| unquote_etag(e).to_string()),
                    storage_class: v.storage_class().map(|c| c.as_str().to_string()),
                    checksum_algorithm: v.checksum_algorithm().first().map(|a| a.as_str().to_string()),
                };
                (listed, kind)
            });
            let markers = out.delete_markers().iter().map(|m| {
                let listed = Listed {
                    key: m.key().unwrap_or_default().to_string(),
                    size: 0,
                    modified: m.last_modified().and_then(crate::row::smithy_to_chrono),
                    etag: None,
                    storage_class: None,
                    checksum_algorithm: None,
                };
                (listed, VersionKind::DeleteMarker)
            });
            let items: Vec<_> = versions.chain(markers).collect();
            let next = join_markers(out.is_truncated(), out.next_key_marker(), out.next_version_id_marker());
            Ok((items, next))
        }
    })
}

/// The key marker and second marker (version id, upload id) a paging token of
/// [`join_markers`] holds.
pub(crate) fn split_markers(token: Option<&str>) -> (Option<String>, Option<String>) {
    match token.and_then(|t| t.split_once('\0')) {
        Some((k, v)) => (Some(k.to_string()), Some(v.to_string()).filter(|v| !v.is_empty())),
        None => (None, None),
    }
}

/// The paging token of a listing paged by a key marker and a second marker; `None` at the end.
pub(crate) fn join_markers(truncated: Option<bool>, key: Option<&str>, second: Option<&str>) -> Option<String> {
    let key = key.filter(|k| truncated == Some(true) && !k.is_empty())?;
    Some(format!("{key}\0{}", second.unwrap_or_default()))
}

/// Sends one ListObjectsV2 request, its answer read by the hand parser of [`list_xml`](crate::s3::list_xml).
async fn send_listing(call: aws_sdk_s3::operation::list_objects_v2::builders::ListObjectsV2FluentBuilder) -> Result<ListObjectsV2Output, AwsError> {
    call.customize()
        .interceptor(HandParsedListing)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("S3 ListObjectsV2", e))
}

/// Makes the items of one ListObjectsV2 page.
type PageItems<T> = fn(&S3Url, &ListObjectsV2Output) -> Vec<T>;

/// Most ListObjectsV2 requests of one recursive listing in flight at once.
const LIST_CONCURRENCY: LimiterSettings = LimiterSettings { min: 1, max: 32, initial: 8 };

/// ListObjectsV2 page by page, each page made into items by `items`: recursive listings are
/// partitioned (one paginator while small, ranges at once once big, see [`partition`]); one
/// level is one paginator.
fn list_pages<T: Send + 'static>(session: &Arc<Session>, request: ListObjects, items: PageItems<T>) -> PageStream<T> {
    // Directory buckets (S3 Express One Zone, `name--zone--x-s3`) list in no order and take no
    // StartAfter: ranges of keys mean nothing there.
    let directory_bucket = request.url.bucket.ends_with("--x-s3");
    if request.recursive && !directory_bucket {
        let router = BucketRouter::single_attempt_in_turn(session);
        let lane = Lane {
            service: "s3",
            region: router.region_for(&request.url.bucket),
            endpoint: session.endpoint().map(str::to_string),
        };
        let limiter = Engine::global().limiter(&lane, LIST_CONCURRENCY);
        let stats = Arc::new(PartitionStats::default());
        let settings = PartitionSettings {
            page_size: request.page_size.clamp(1, MAX_KEYS),
            ..PartitionSettings::default()
        };
        let prefix = request.url.key.clone();
        let source = ObjectRanges { router, url: request.url, items };
        return partition::list_partitioned(source, &prefix, limiter, settings, stats, Some(lane));
    }
    let router = BucketRouter::new(session);
    PageStream::spawn(move |token| {
        let router = router.clone();
        let request = request.clone();
        async move {
            let page = |client: aws_sdk_s3::Client| {
                let mut call = client
                    .list_objects_v2()
                    .bucket(&request.url.bucket)
                    .max_keys(request.page_size.clamp(1, MAX_KEYS))
                    .set_continuation_token(token.clone());
                if !request.url.key.is_empty() {
                    call = call.prefix(&request.url.key);
                }
                if !request.recursive {
                    call = call.delimiter("/");
                }
                send_listing(call)
            };
            let out = router.call(&request.url.bucket, page).await?;
            let rows = items(&request.url, &out);
            let next = if out.is_truncated() == Some(true) {
                out.next_continuation_token().map(str::to_string)
            } else {
                None
            };
            Ok((rows, next))
        }
    })
}

/// The objects below one prefix as a [`RangeSource`]: ListObjectsV2 without a delimiter, asked of
/// the bucket's region, one attempt per request (the partitioned listing retries and tells its
/// limiter about throttling).
struct ObjectRanges<T> {
    router: BucketRouter,
    url: S3Url,
    items: PageItems<T>,
}

impl<T: Send + 'static> RangeSource for ObjectRanges<T> {
    type Item = T;

    async fn page(&self, query: PageQuery) -> Result<KeyedPage<T>, AwsError> {
        let page = |client: aws_sdk_s3::Client| {
            let mut call = client
                .list_objects_v2()
                .bucket(&self.url.bucket)
                .max_keys(query.max_keys.clamp(1, MAX_KEYS))
                .set_start_after(query.start_after.clone())
                .set_continuation_token(query.token.clone());
            if !self.url.key.is_empty() {
                call = call.prefix(&self.url.key);
            }
            send_listing(call)
        };
        let out = self.router.call(&self.url.bucket, page).await?;
        let keys = out.contents().iter().map(|o| o.key().unwrap_or_default().to_string()).collect();
        let items = (self.items)(&self.url, &out);
        let next = if out.is_truncated() == Some(true) {
            out.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(KeyedPage { keys, items, next })
    }
}

/// The columns of an object's row, in order (shaped like Nushell's `ls`).
const OBJECT_COLUMNS: usize = 6;

fn object_row(url: &S3Url, o: &aws_sdk_s3::types::Object) -> Row {
    listed_row(url, Listed::from_object(o))
}

/// The row of a listed object, shaped like Nushell's `ls` (one level or recursive alike).
fn listed_row(url: &S3Url, listed: Listed) -> Row {
    Row::with_capacity(OBJECT_COLUMNS)
        .with("name", Field::Text(url.key_url(&listed.key)))
        .with("type", Field::Text("file".into()))
        .with("size", Field::Bytes(listed.size))
        .with("modified", listed.modified.map_or(Field::Null, Field::Time))
        .with("etag", listed.etag.map_or(Field::Null, Field::Text))
        .with("storage_class", listed.storage_class.map_or(Field::Null, Field::Text))
}

fn dir_row(url: &S3Url, prefix: &str) -> Row {
    Row::with_capacity(OBJECT_COLUMNS)
        .with("name", Field::Text(url.key_url(prefix)))
        .with("type", Field::Text("dir".into()))
        .with("size", Field::Null)
        .with("modified", Field::Null)
        .with("etag", Field::Null)
        .with("storage_class", Field::Null)
}

/// S3 returns objects and common prefixes as two sorted lists of one page; interleave them so
/// the listing reads in key order, as S3 itself orders the pages.
fn merge_by_key<'a>(
    files: impl Iterator<Item = (&'a str, Row)>,
    dirs: impl Iterator<Item = (&'a str, Row)>,
) -> Vec<Row> {
    let mut files = files.peekable();
    let mut dirs = dirs.peekable();
    let mut out = Vec::new();
    loop {
        let take_file = match (files.peek(), dirs.peek()) {
            (Some((f, _)), Some((d, _))) => f <= d,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        let next = if take_file { files.next() } else { dirs.next() };
        if let Some((_, row)) = next {
            out.push(row);
        }
    }
}

/// ETags come quoted on the wire (`"abc"`); the quotes are not part of the value.
pub fn unquote_etag(etag: &str) -> &str {
    etag.trim_matches('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Row {
        Row::new().with("name", Field::Text(name.into()))
    }

    #[test]
    fn pages_interleave_in_key_order() {
        let files = vec![("a.txt", named("a.txt")), ("c.txt", named("c.txt"))];
        let dirs = vec![("b/", named("b/")), ("d/", named("d/"))];
        let merged = merge_by_key(files.into_iter(), dirs.into_iter());
        let names: Vec<_> = merged
            .iter()
            .map(|r| r.get("name").and_then(Field::as_str).unwrap_or_default().to_string())
            .collect();
        assert_eq!(names, ["a.txt", "b/", "c.txt", "d/"]);
    }

    #[test]
    fn object_rows_are_shaped_like_ls() {
        let o = aws_sdk_s3::types::Object::builder()
            .key("logs/x.json")
            .size(42)
            .e_tag("\"abc\"")
            .last_modified(aws_smithy_types::DateTime::from_secs(1_700_000_000))
            .storage_class(aws_sdk_s3::types::ObjectStorageClass::Standard)
            .build();
        let row = object_row(&S3Url::new("b12", "logs/"), &o);
        let cols: Vec<_> = row.columns.iter().map(|(n, _)| *n).collect();
        assert_eq!(cols, ["name", "type", "size", "modified", "etag", "storage_class"]);
        assert_eq!(row.get("name"), Some(&Field::Text("s3://b12/logs/x.json".into())));
        assert_eq!(row.get("size"), Some(&Field::Bytes(42)));
        assert_eq!(row.get("etag"), Some(&Field::Text("abc".into())));
        assert_eq!(row.get("storage_class"), Some(&Field::Text("STANDARD".into())));
    }

    #[test]
    fn an_objects_url_is_spelled_as_the_url_type_prints_it() {
        let url = S3Url::new("b12", "logs/");
        assert_eq!(url.key_url("logs/ü x+%"), url.with_key("logs/ü x+%").to_string());
    }
}
