//! Incomplete multipart uploads below a prefix, for `aws s3 du --uploads`: each upload
//! (ListMultipartUploads) with the bytes of the parts uploaded so far (ListParts), which S3 bills
//! like stored objects until the upload is completed or aborted.
//!
//! Not here: completing, aborting or resuming uploads (that is [`super::transfer`]'s and
//! [`super::object`]'s job), nor summing them into groups ([`super::du`]).

use std::sync::Arc;

use crate::error::AwsError;
use crate::fanout::RequestLimit;
use crate::pagination::PageStream;
use crate::s3::list::{Listed, MAX_KEYS, join_markers, split_markers};
use crate::s3::route::BucketRouter;
use crate::s3::url::S3Url;
use crate::session::Session;

/// ListParts calls of one page of uploads sent at once.
const PART_LISTINGS_AT_ONCE: usize = 8;

/// The incomplete multipart uploads below `url`'s prefix, in key order (and by upload within a
/// key), each as a [`Listed`]: its key, the bytes of its parts so far, when it was initiated, and
/// its storage class. An upload completed or aborted between the two listings is left out.
pub fn list_uploads(session: &Arc<Session>, url: S3Url, page_size: i32) -> PageStream<Listed> {
    let router = BucketRouter::new(session);
    PageStream::spawn(move |token: Option<String>| {
        let (router, url) = (router.clone(), url.clone());
        async move {
            // The next page starts after a key and an upload id: both in the one token.
            let (key_marker, upload_marker) = split_markers(token.as_deref());
            let page = |client: aws_sdk_s3::Client| {
                let mut call = client
                    .list_multipart_uploads()
                    .bucket(&url.bucket)
                    .max_uploads(page_size.clamp(1, MAX_KEYS))
                    .set_key_marker(key_marker.clone())
                    .set_upload_id_marker(upload_marker.clone());
                if !url.key.is_empty() {
                    call = call.prefix(&url.key);
                }
                async move { call.send().await.map_err(|e| AwsError::from_sdk("S3 ListMultipartUploads", e)) }
            };
            let out = router.call(&url.bucket, page).await?;
            let limit = RequestLimit::new(PART_LISTINGS_AT_ONCE);
            let mut sizes = tokio::task::JoinSet::new();
            let uploads: Vec<_> = out
                .uploads()
                .iter()
                .filter_map(|u| Some((u.key()?.to_string(), u.upload_id()?.to_string(), u)))
                .collect();
            for (i, (key, id, _)) in uploads.iter().enumerate() {
                let (router, limit, bucket, key, id) = (router.clone(), limit.clone(), url.bucket.clone(), key.clone(), id.clone());
                sizes.spawn(async move { (i, limit.run(parts_bytes(router, bucket, key, id)).await) });
            }
            let mut bytes = vec![None; uploads.len()];
            while let Some(done) = sizes.join_next().await {
                let Ok((i, result)) = done else { continue };
                bytes[i] = result?;
            }
            let items = uploads
                .iter()
                .zip(bytes)
                .filter_map(|((key, _, upload), bytes)| {
                    Some(Listed {
                        key: key.clone(),
                        size: bytes?,
                        modified: upload.initiated().and_then(crate::row::smithy_to_chrono),
                        etag: None,
                        storage_class: upload.storage_class().map(|c| c.as_str().to_string()),
                        checksum_algorithm: None,
                    })
                })
                .collect();
            let next = join_markers(out.is_truncated(), out.next_key_marker(), out.next_upload_id_marker());
            Ok((items, next))
        }
    })
}

/// The bytes of the parts of one upload so far (ListParts, paged); `None` if the upload is gone.
async fn parts_bytes(router: BucketRouter, bucket: String, key: String, upload_id: String) -> Result<Option<u64>, AwsError> {
    let mut total = 0u64;
    let mut marker: Option<String> = None;
    loop {
        let page = |client: aws_sdk_s3::Client| {
            let call = client
                .list_parts()
                .bucket(&bucket)
                .key(&key)
                .upload_id(&upload_id)
                .set_part_number_marker(marker.clone());
            async move { call.send().await.map_err(|e| AwsError::from_sdk("S3 ListParts", e)) }
        };
        let out = match router.call(&bucket, page).await {
            Ok(out) => out,
            Err(err) if err.code.as_deref() == Some("NoSuchUpload") => return Ok(None),
            Err(err) => return Err(err),
        };
        total += out.parts().iter().map(|p| p.size().unwrap_or(0).max(0) as u64).sum::<u64>();
        match out.next_part_number_marker() {
            Some(next) if out.is_truncated() == Some(true) && marker.as_deref() != Some(next) => marker = Some(next.to_string()),
            _ => return Ok(Some(total)),
        }
    }
}
