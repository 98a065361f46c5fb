//! Server-side copies of one object, S3 to S3 (also between regions: the requests go to the
//! destination bucket's region, which fetches the source itself): one CopyObject up to S3's
//! limit on a copy source (5 GiB), and above it a multipart copy, ranges of the source copied as
//! parts (UploadPartCopy) a few at a time.
//!
//! A single CopyObject is tried first whenever the source is within the limit, since it copies
//! everything about the object (metadata, tags) in one request. The multipart path copies what
//! CopyObject copies by default (content type and the other content headers, user metadata,
//! tags, website redirect), each part pinned to the source's ETag so that a source replaced
//! mid-copy fails the copy instead of mixing two versions, and an upload that fails is aborted
//! so no orphaned parts are left to be billed for. When an endpoint refuses a CopyObject as too
//! large for it (S3's `InvalidRequest` naming the maximum), the copy is redone in parts no
//! larger than the maximum it named.
//!
//! Not here: deciding which objects to copy (`cp` and `sync` do) or transfers through this
//! machine ([`super::transfer`]).

use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::CompletedPart;

use crate::error::{AwsError, ErrorKind};
use crate::row::Row;
use crate::s3::checksum;
use crate::s3::route::BucketRouter;
use crate::s3::transfer::copied_row;
use crate::s3::write::{abort_upload, complete_upload, exists_if_precondition_failed, refuse_existing};
use crate::s3::url::S3Url;

/// The largest source one CopyObject may have on Amazon S3 (5 GiB), and the largest part of a
/// multipart upload.
pub const COPY_SOURCE_LIMIT: u64 = 5 * 1024 * 1024 * 1024;
/// The smallest part S3 accepts, the last excepted.
pub const MIN_PART: u64 = 5 * 1024 * 1024;
/// The part size of a multipart copy, unless more is needed to stay within [`MAX_PARTS`]. The
/// bytes never pass through this machine, so parts can be large; many parts at once copy faster
/// than one long request.
pub const COPY_PART_SIZE: u64 = 256 * 1024 * 1024;
/// The most parts one multipart upload may have.
pub const MAX_PARTS: u64 = 10_000;
/// Parts of one multipart copy copied at once.
const PARTS_AT_ONCE: usize = 8;

/// How one object is copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyPlan {
    /// One CopyObject.
    Single,
    /// A multipart copy in parts of `part_size` (the last one smaller), `parts` of them.
    Parts { part_size: u64, parts: u64 },
}

impl CopyPlan {
    /// The plan for a source of `size` bytes on an endpoint that copies at most `limit` bytes in
    /// one request (and in one part): a single copy within the limit, else the fewest parts of
    /// at most [`COPY_PART_SIZE`] (or `limit`, if smaller) that S3's part count allows, in whole
    /// MiB. `None` when no part size fits: `limit` below S3's smallest part, or the object too
    /// large for [`MAX_PARTS`] parts of `limit` (S3's own limits allow 50 TB).
    pub fn for_size(size: u64, limit: u64) -> Option<CopyPlan> {
        if size <= limit {
            return Some(CopyPlan::Single);
        }
        const MIB: u64 = 1024 * 1024;
        let preferred = COPY_PART_SIZE.min(limit);
        let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
        let part_size = preferred.max(needed).max(MIN_PART);
        if part_size > limit {
            return None;
        }
        Some(CopyPlan::Parts { part_size, parts: size.div_ceil(part_size) })
    }

    /// The byte ranges of the parts, inclusive as in `Range: bytes=first-last`, in part order.
    fn ranges(self, size: u64) -> Vec<(u64, u64)> {
        match self {
            CopyPlan::Single => vec![(0, size.saturating_sub(1))],
            CopyPlan::Parts { part_size, parts } => (0..parts)
                .map(|n| (n * part_size, ((n + 1) * part_size).min(size) - 1))
                .collect(),
        }
    }
}

/// The maximum copy source an endpoint named when it refused a CopyObject as too large
/// (`InvalidRequest`: "The specified copy source is larger than the maximum allowable size for a
/// copy source: 5368709120"), or `None` if `err` is not that refusal.
pub fn refused_as_too_large(err: &AwsError) -> Option<u64> {
    if err.code.as_deref() != Some("InvalidRequest") {
        return None;
    }
    let (_, limit) = err.message.split_once("maximum allowable size for a copy source")?;
    let digits: String = limit.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Copies `from` to `to` server side: `source`, `destination`, `size`, `etag`. Without
/// `overwrite`, an existing destination is left alone: checked first (not every S3-compatible
/// store honours a conditional copy), and the copy itself made conditional (`If-None-Match: *`,
/// on the CopyObject or the completion of a multipart copy), so one written meanwhile is safe
/// on S3 too.
pub async fn copy_object(router: BucketRouter, from: S3Url, to: S3Url, overwrite: bool) -> Result<Row, AwsError> {
    if !overwrite {
        refuse_existing(&router, &to, "S3 CopyObject").await?;
    }
    let source = head_source(&router, &from).await?;
    let size = source.content_length().unwrap_or(0).max(0) as u64;
    let plan = CopyPlan::for_size(size, COPY_SOURCE_LIMIT).ok_or_else(|| too_large(&from, size, COPY_SOURCE_LIMIT))?;
    let etag = match plan {
        CopyPlan::Single => match copy_whole(&router, &from, &to, overwrite).await {
            Ok(etag) => etag,
            Err(err) => {
                let Some(limit) = refused_as_too_large(&err) else {
                    return Err(err);
                };
                match CopyPlan::for_size(size, limit) {
                    // Refused within its own limit (the source grew since the HEAD?): as it said.
                    Some(CopyPlan::Single) => return Err(err),
                    Some(plan) => copy_in_parts(&router, &from, &to, &source, size, plan, overwrite).await?,
                    None => return Err(too_large(&from, size, limit)),
                }
            }
        },
        plan => copy_in_parts(&router, &from, &to, &source, size, plan, overwrite).await?,
    };
    Ok(copied_row(from.to_string(), to.to_string(), size, etag.as_deref()))
}

/// No plan fits: parts of at most `limit` bytes are either below S3's smallest part or too many.
fn too_large(from: &S3Url, size: u64, limit: u64) -> AwsError {
    AwsError::new(
        ErrorKind::Service,
        "S3 UploadPartCopy",
        format!(
            "{from}: {size} bytes cannot be copied by the endpoint, which copies at most {limit} bytes in one \
             request, in parts of at most that size (a multipart upload's parts are {MIN_PART} bytes or more, \
             at most {MAX_PARTS} of them)"
        ),
    )
}

async fn head_source(router: &BucketRouter, from: &S3Url) -> Result<HeadObjectOutput, AwsError> {
    let op = "S3 HeadObject";
    router
        .call(&from.bucket, |client| {
            let call = client.head_object().bucket(&from.bucket).key(&from.key);
            async move { call.send().await.map_err(|e| AwsError::from_sdk(op, e)) }
        })
        .await
        .map_err(|mut err| {
            // A HEAD's 404 has no body to name the object: say which.
            if err.kind == ErrorKind::NotFound {
                err.message = format!("{from}: no such object");
            }
            err
        })
}

/// One CopyObject; its ETag.
async fn copy_whole(router: &BucketRouter, from: &S3Url, to: &S3Url, overwrite: bool) -> Result<Option<String>, AwsError> {
    let op = "S3 CopyObject";
    let source = copy_source(from);
    let out = router
        .call(&to.bucket, |client| {
            // S3 computes the copy's own CRC64NVME (a copy of a multipart object is one part).
            let call = client
                .copy_object()
                .bucket(&to.bucket)
                .key(&to.key)
                .copy_source(&source)
                .set_if_none_match((!overwrite).then(|| "*".to_string()))
                .set_checksum_algorithm(checksum::for_uploads(&client));
            async move { call.send().await.map_err(|e| AwsError::from_sdk(op, e)) }
        })
        .await
        .map_err(exists_if_precondition_failed(op, to))?;
    Ok(out.copy_object_result().and_then(|r| r.e_tag()).map(str::to_string))
}

/// A multipart copy of `from` (described by `source`, its HEAD) to `to`; the new object's ETag.
async fn copy_in_parts(
    router: &BucketRouter,
    from: &S3Url,
    to: &S3Url,
    source: &HeadObjectOutput,
    size: u64,
    plan: CopyPlan,
    overwrite: bool,
) -> Result<Option<String>, AwsError> {
    let tags = source_tags(router, from).await?;
    let op = "S3 CreateMultipartUpload";
    let created = router
        .call(&to.bucket, |client| {
            #[allow(deprecated)] // `expires` is the header's date; S3 still sends and takes it.
            let call = client
                .create_multipart_upload()
                .bucket(&to.bucket)
                .key(&to.key)
                .set_content_type(source.content_type().map(str::to_string))
                .set_cache_control(source.cache_control().map(str::to_string))
                .set_content_disposition(source.content_disposition().map(str::to_string))
                .set_content_encoding(source.content_encoding().map(str::to_string))
                .set_content_language(source.content_language().map(str::to_string))
                .set_expires(source.expires().cloned())
                .set_metadata(source.metadata().cloned())
                .set_website_redirect_location(source.website_redirect_location().map(str::to_string))
                .set_tagging(tags.clone())
                .set_checksum_algorithm(checksum::for_uploads(&client))
                .set_checksum_type(checksum::multipart_type(&client));
            async move { call.send().await.map_err(|e| AwsError::from_sdk(op, e)) }
        })
        .await?;
    // The create found the destination's region: the parts go there.
    let client = router.client_for(&to.bucket);
    let upload_id = created.upload_id().unwrap_or_default().to_string();
    let result = copy_parts(&client, from, to, source.e_tag(), &upload_id, plan.ranges(size), overwrite).await;
    if result.is_err() {
        abort_upload(&client, to, &upload_id).await;
    }
    result
}

/// The source's tags in the form of the `x-amz-tagging` header (`k=v&k2=v2`, URL-encoded), or
/// `None` without tags. Reading them is a permission of its own (`s3:GetObjectTagging`); a
/// caller who may read the object but not its tags gets the copy without them rather than none.
async fn source_tags(router: &BucketRouter, from: &S3Url) -> Result<Option<String>, AwsError> {
    let op = "S3 GetObjectTagging";
    let answer = router
        .call(&from.bucket, |client| {
            let call = client.get_object_tagging().bucket(&from.bucket).key(&from.key);
            async move { call.send().await.map_err(|e| AwsError::from_sdk(op, e)) }
        })
        .await;
    match answer {
        Ok(out) if out.tag_set().is_empty() => Ok(None),
        Ok(out) => Ok(Some(
            out.tag_set()
                .iter()
                .map(|t| format!("{}={}", encode(t.key(), false), encode(t.value(), false)))
                .collect::<Vec<_>>()
                .join("&"),
        )),
        Err(err) if err.kind == ErrorKind::AccessDenied => Ok(None),
        Err(err) => Err(err),
    }
}

/// Copies the parts (the source's byte `ranges`, in order), [`PARTS_AT_ONCE`] at a time, and
/// completes the upload.
async fn copy_parts(
    client: &aws_sdk_s3::Client,
    from: &S3Url,
    to: &S3Url,
    source_etag: Option<&str>,
    upload_id: &str,
    ranges: Vec<(u64, u64)>,
    overwrite: bool,
) -> Result<Option<String>, AwsError> {
    let source = copy_source(from);
    let mut ranges = ranges.into_iter().enumerate();
    let mut running = tokio::task::JoinSet::new();
    let mut done: Vec<(CompletedPart, u64)> = Vec::new();
    loop {
        while running.len() < PARTS_AT_ONCE {
            let Some((index, (first, last))) = ranges.next() else {
                break;
            };
            let number = index as i32 + 1;
            let call = client
                .upload_part_copy()
                .bucket(&to.bucket)
                .key(&to.key)
                .upload_id(upload_id)
                .part_number(number)
                .copy_source(&source)
                .copy_source_range(format!("bytes={first}-{last}"))
                .set_copy_source_if_match(source_etag.map(str::to_string));
            running.spawn(async move {
                let out = call.send().await.map_err(|e| AwsError::from_sdk("S3 UploadPartCopy", e))?;
                let result = out.copy_part_result();
                let part = CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(result.and_then(|r| r.e_tag()).map(str::to_string))
                    .set_checksum_crc64_nvme(result.and_then(|r| r.checksum_crc64_nvme()).map(str::to_string))
                    .build();
                Ok::<_, AwsError>((part, last - first + 1))
            });
        }
        let failed = match running.join_next().await {
            Some(Ok(Ok(part))) => {
                done.push(part);
                continue;
            }
            Some(Ok(Err(err))) => err,
            Some(Err(join)) => AwsError::new(ErrorKind::Service, "S3 UploadPartCopy", join.to_string()),
            None => break,
        };
        // S3 copies a part on its side even if this end hangs up, and a part still in progress
        // when the upload is aborted may complete and be kept, billed (AWS's AbortMultipartUpload
        // documentation): the parts already asked for are waited for, so the abort frees them all.
        while running.join_next().await.is_some() {}
        return Err(failed);
    }
    complete_upload(client, to, upload_id, done, overwrite).await
}

/// The copy source header: `bucket/key`, URL-encoded except for the separating slashes.
fn copy_source(from: &S3Url) -> String {
    format!("{}/{}", from.bucket, encode(&from.key, true))
}

/// `text` percent-encoded but for RFC 3986's unreserved characters (and `/` when `keep_slashes`).
fn encode(text: &str, keep_slashes: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b'/' if keep_slashes => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1024 * 1024 * 1024;
    const MIB: u64 = 1024 * 1024;

    #[test]
    fn copy_sources_are_encoded_but_keep_slashes() {
        let url = |key: &str| S3Url { bucket: "b".into(), key: key.into() };
        assert_eq!(copy_source(&url("a b/c+d.txt")), "b/a%20b/c%2Bd.txt");
        assert_eq!(copy_source(&url("plain/key-1.json")), "b/plain/key-1.json");
        assert_eq!(encode("team=a/b&c", false), "team%3Da%2Fb%26c");
    }

    #[test]
    fn objects_within_the_limit_are_copied_in_one_request() {
        assert_eq!(CopyPlan::for_size(0, COPY_SOURCE_LIMIT), Some(CopyPlan::Single));
        assert_eq!(CopyPlan::for_size(COPY_SOURCE_LIMIT, COPY_SOURCE_LIMIT), Some(CopyPlan::Single));
        assert_eq!(CopyPlan::Single.ranges(10), [(0, 9)]);
    }

    #[test]
    fn larger_objects_are_copied_in_parts_within_s3s_limits() {
        // Just over 5 GiB: 256 MiB parts, the last one a byte.
        let plan = CopyPlan::for_size(COPY_SOURCE_LIMIT + 1, COPY_SOURCE_LIMIT).unwrap();
        assert_eq!(plan, CopyPlan::Parts { part_size: COPY_PART_SIZE, parts: 21 });
        let ranges = plan.ranges(COPY_SOURCE_LIMIT + 1);
        assert_eq!(ranges[0], (0, COPY_PART_SIZE - 1));
        assert_eq!(ranges[20], (COPY_SOURCE_LIMIT, COPY_SOURCE_LIMIT));
        assert!(ranges.windows(2).all(|w| w[1].0 == w[0].1 + 1), "the ranges are contiguous");
        // S3's largest object, 5 TiB, needs parts over 256 MiB to stay within 10,000 of them.
        let plan = CopyPlan::for_size(5 * 1024 * GIB, COPY_SOURCE_LIMIT).unwrap();
        let CopyPlan::Parts { part_size, parts } = plan else { panic!("{plan:?}") };
        assert!(parts <= MAX_PARTS && part_size <= COPY_SOURCE_LIMIT && part_size % MIB == 0, "{plan:?}");
        assert!(part_size * parts >= 5 * 1024 * GIB);
    }

    #[test]
    fn an_endpoints_lower_limit_bounds_the_parts() {
        assert_eq!(CopyPlan::for_size(20 * MIB, 6 * MIB), Some(CopyPlan::Parts { part_size: 6 * MIB, parts: 4 }));
        let ranges = CopyPlan::for_size(20 * MIB, 6 * MIB).unwrap().ranges(20 * MIB);
        assert_eq!(ranges.last(), Some(&(18 * MIB, 20 * MIB - 1)));
        // Below S3's smallest part, or too small for 10,000 parts: no plan.
        assert_eq!(CopyPlan::for_size(20 * MIB, 4 * MIB), None);
        assert_eq!(CopyPlan::for_size(MAX_PARTS * 6 * MIB + 1, 6 * MIB), None);
    }

    #[test]
    fn the_too_large_refusal_is_recognised_with_its_limit() {
        let refusal = |code: &str, message: &str| {
            let mut err = AwsError::new(ErrorKind::Service, "S3 CopyObject", message);
            err.code = Some(code.to_string());
            err
        };
        let s3 = "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120";
        assert_eq!(refused_as_too_large(&refusal("InvalidRequest", s3)), Some(COPY_SOURCE_LIMIT));
        assert_eq!(refused_as_too_large(&refusal("InvalidRequest", "Invalid Request")), None);
        assert_eq!(refused_as_too_large(&refusal("AccessDenied", s3)), None);
        assert_eq!(refused_as_too_large(&refusal("InvalidRequest", "maximum allowable size for a copy source: none")), None);
    }
}
