//! What the writes of an object (an upload, a save, a copy) share: not replacing an existing
//! object unless asked to, and the end of a multipart upload (completed with the whole object's
//! checksum, or aborted so no parts are left to be billed for).
//!
//! Not here: sending the bytes or the parts (each write does that its own way).

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::error::{AwsError, ErrorKind};
use crate::s3::checksum;
use crate::s3::object::head_object_with;
use crate::s3::route::BucketRouter;
use crate::s3::url::S3Url;

/// The error of a write that would have replaced `url`.
pub(crate) fn object_exists(op: &str, url: &S3Url) -> AwsError {
    AwsError::new(ErrorKind::InvalidInput, op, format!("{url} already exists (pass --force to replace it)")).with_code("ObjectExists")
}

/// A refused conditional write (`If-None-Match: *`) as [`object_exists`]; any other error as it is.
pub(crate) fn exists_if_precondition_failed<'a>(op: &'a str, url: &'a S3Url) -> impl Fn(AwsError) -> AwsError + 'a {
    move |err| if err.code.as_deref() == Some("PreconditionFailed") { object_exists(op, url) } else { err }
}

/// Fails with [`object_exists`] when `url` exists: checked before a write whose own condition
/// comes only at its end (a multipart upload's completion) or may not be honoured (not every
/// S3-compatible store knows `If-None-Match` on a copy).
pub(crate) async fn refuse_existing(router: &BucketRouter, url: &S3Url, op: &str) -> Result<(), AwsError> {
    match head_object_with(router.clone(), url.clone()).await {
        Ok(_) => Err(object_exists(op, url)),
        Err(err) if err.kind != ErrorKind::NotFound => Err(err),
        Err(_) => Ok(()),
    }
}

/// Completes the multipart upload `upload_id` of `url` from its parts (in any order, each with
/// its length), with the whole object's CRC64NVME combined from theirs for S3 to check; without
/// `overwrite`, only if `url` still does not exist (`If-None-Match: *`). The new object's ETag.
pub(crate) async fn complete_upload(
    client: &aws_sdk_s3::Client,
    url: &S3Url,
    upload_id: &str,
    mut parts: Vec<(CompletedPart, u64)>,
    overwrite: bool,
) -> Result<Option<String>, AwsError> {
    parts.sort_by_key(|(p, _)| p.part_number());
    let whole = full_object_crc(&parts);
    let op = "S3 CompleteMultipartUpload";
    let out = client
        .complete_multipart_upload()
        .bucket(&url.bucket)
        .key(&url.key)
        .upload_id(upload_id)
        .set_if_none_match((!overwrite).then(|| "*".to_string()))
        .set_checksum_type(checksum::multipart_type(client))
        .set_checksum_crc64_nvme(whole)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts.into_iter().map(|(p, _)| p).collect())).build())
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(op, e))
        .map_err(exists_if_precondition_failed(op, url))?;
    Ok(out.e_tag().map(str::to_string))
}

/// Aborts the multipart upload `upload_id` of `url` after a failure, so no parts are left to be
/// billed for. Its own failure is not reported: the error that led here is what matters.
pub(crate) async fn abort_upload(client: &aws_sdk_s3::Client, url: &S3Url, upload_id: &str) {
    let _ = client.abort_multipart_upload().bucket(&url.bucket).key(&url.key).upload_id(upload_id).send().await;
}

/// The full-object CRC64NVME of parts in order, each with its length, in S3's wire form; `None`
/// if a part came back without one.
pub(crate) fn full_object_crc(parts: &[(CompletedPart, u64)]) -> Option<String> {
    let mut whole: Option<u64> = None;
    for (part, length) in parts {
        let crc = checksum::decode_crc64(part.checksum_crc64_nvme()?)?;
        whole = Some(whole.map_or(crc, |w| checksum::crc64nvme_combine(w, crc, *length)));
    }
    whole.map(checksum::encode_crc64)
}
