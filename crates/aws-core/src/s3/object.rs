//! Single-object operations: head, get (as a blocking [`std::io::Read`] over the streamed body),
//! put (one request up to [`PART_SIZE`], multipart above it, memory bounded by one part; with a
//! full-object CRC64NVME either way), and batched delete (up to 1000 keys per DeleteObjects
//! request).

use std::io::Read;
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedPart, Delete, ObjectIdentifier};
use bytes::Bytes;

use crate::error::{AwsError, ErrorKind};
use crate::row::{Field, Row};
use crate::runtime::{Interrupt, block_on};
use crate::s3::list::unquote_etag;
use crate::s3::route::BucketRouter;
use crate::s3::url::S3Url;
use crate::session::Session;

/// Size of one multipart part, and the largest object sent in a single PutObject.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// Keys per DeleteObjects request (S3's limit).
pub const DELETE_BATCH: usize = 1000;

fn interrupted(op: &str) -> impl FnOnce(crate::runtime::Interrupted) -> AwsError + '_ {
    move |_| AwsError::interrupted(op)
}

/// Metadata of one object: `name`, `size`, `modified`, `etag`, `content_type`, `storage_class`,
/// `version_id`, `metadata`.
pub fn head_object(session: &Arc<Session>, url: &S3Url, interrupt: &dyn Interrupt) -> Result<Row, AwsError> {
    block_on(interrupt, head_object_with(BucketRouter::new(session), url.clone()))
        .map_err(interrupted("S3 HeadObject"))?
}

/// [`head_object`] as a future on given clients (the engine's, which does its own retries).
pub async fn head_object_with(router: BucketRouter, url: S3Url) -> Result<Row, AwsError> {
    let op = "S3 HeadObject";
    let out = router
        .call(&url.bucket, |client| {
            let call = client.head_object().bucket(&url.bucket).key(&url.key);
            async move { call.send().await.map_err(|e| AwsError::from_sdk(op, e)) }
        })
        .await?;
    let mut metadata: Vec<(String, Field)> = out
        .metadata()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), Field::Text(v.clone()))).collect())
        .unwrap_or_default();
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Row::new()
        .with("name", Field::Text(url.to_string()))
        .with("size", Field::bytes(out.content_length()))
        .with("modified", Field::time(out.last_modified()))
        .with("etag", Field::text(out.e_tag().map(unquote_etag)))
        .with("content_type", Field::text(out.content_type()))
        .with(
            "storage_class",
            // S3 omits the header for STANDARD.
            Field::Text(out.storage_class().map_or("STANDARD", |c| c.as_str()).to_string()),
        )
        .with("version_id", Field::text(out.version_id()))
        .with("metadata", Field::Record(metadata)))
}

/// An object's body being downloaded, readable from a synchronous thread.
pub struct ObjectBody {
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    body: ByteStream,
    pending: Bytes,
    interrupt: Box<dyn Interrupt + Send>,
}

impl Read for ObjectBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pending.is_empty() {
            let next = block_on(&*self.interrupt, self.body.next())
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"))?;
            match next {
                None => return Ok(0),
                Some(Ok(chunk)) => self.pending = chunk,
                Some(Err(err)) => return Err(std::io::Error::other(err)),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }
}

/// Starts downloading an object; the body streams as it is read.
pub fn get_object(
    session: &Arc<Session>,
    url: &S3Url,
    interrupt: impl Interrupt + Send + 'static,
) -> Result<ObjectBody, AwsError> {
    let op = "S3 GetObject";
    let router = BucketRouter::new(session);
    let get = router.call(&url.bucket, |client| {
        let call = client.get_object().bucket(&url.bucket).key(&url.key);
        async move { call.send().await.map_err(|e| AwsError::from_sdk(op, e)) }
    });
    let out = block_on(&interrupt, get).map_err(interrupted(op))??;
    Ok(ObjectBody {
        content_type: out.content_type().map(str::to_string),
        content_length: out.content_length().and_then(|n| u64::try_from(n).ok()),
        body: out.body,
        pending: Bytes::new(),
        interrupt: Box::new(interrupt),
    })
}

/// Reads up to `limit` bytes (fewer only at the end of the input).
fn read_part(reader: &mut dyn Read, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut part = Vec::with_capacity(limit.min(1 << 20));
    reader.take(limit as u64).read_to_end(&mut part)?;
    Ok(part)
}

fn io_error(op: &str, err: std::io::Error) -> AwsError {
    let kind = if err.kind() == std::io::ErrorKind::Interrupted {
        ErrorKind::Interrupted
    } else {
        ErrorKind::InvalidInput
    };
    AwsError::new(kind, op, format!("reading the data to upload failed: {err}"))
}

/// Uploads everything `reader` yields to `url`: `name`, `size`, `etag`.
pub fn put_object(
    session: &Arc<Session>,
    url: &S3Url,
    reader: &mut dyn Read,
    content_type: Option<&str>,
    interrupt: &dyn Interrupt,
) -> Result<Row, AwsError> {
    let first = read_part(reader, PART_SIZE).map_err(|e| io_error("S3 PutObject", e))?;
    let router = BucketRouter::new(session);
    if first.len() < PART_SIZE {
        let op = "S3 PutObject";
        let size = first.len();
        // The body is cheap to clone (shared bytes): a redirect sends it again.
        let body = Bytes::from(first);
        let put = router.call(&url.bucket, |client| {
            let call = client
                .put_object()
                .bucket(&url.bucket)
                .key(&url.key)
                .set_content_type(content_type.map(str::to_string))
                .set_checksum_algorithm(crate::s3::checksum::for_uploads(&client))
                .body(ByteStream::from(body.clone()));
            async move { call.send().await.map_err(|e| AwsError::from_sdk(op, e)) }
        });
        let out = block_on(interrupt, put).map_err(interrupted(op))??;
        return Ok(uploaded_row(url, size as u64, out.e_tag()));
    }
    put_multipart(&router, url, first, reader, content_type, interrupt)
}

fn uploaded_row(url: &S3Url, size: u64, etag: Option<&str>) -> Row {
    Row::new()
        .with("name", Field::Text(url.to_string()))
        .with("size", Field::Bytes(size))
        .with("etag", Field::text(etag.map(unquote_etag)))
}

fn put_multipart(
    router: &BucketRouter,
    url: &S3Url,
    first: Vec<u8>,
    reader: &mut dyn Read,
    content_type: Option<&str>,
    interrupt: &dyn Interrupt,
) -> Result<Row, AwsError> {
    let op = "S3 CreateMultipartUpload";
    let create = router.call(&url.bucket, |client| {
        let call = client
            .create_multipart_upload()
            .bucket(&url.bucket)
            .key(&url.key)
            .set_checksum_algorithm(crate::s3::checksum::for_uploads(&client))
            .set_checksum_type(crate::s3::checksum::multipart_type(&client))
            .set_content_type(content_type.map(str::to_string));
        async move { call.send().await.map_err(|e| AwsError::from_sdk(op, e)) }
    });
    let created = block_on(interrupt, create).map_err(interrupted(op))??;
    // The create found the bucket's region: the parts go there.
    let client = &router.client_for(&url.bucket);
    let upload_id = created.upload_id().unwrap_or_default().to_string();

    let result = (|| {
        let mut parts = Vec::new();
        let mut size = 0u64;
        let mut part = first;
        while !part.is_empty() {
            let number = parts.len() as i32 + 1;
            let length = part.len() as u64;
            size += length;
            let op = "S3 UploadPart";
            let out = block_on(
                interrupt,
                client
                    .upload_part()
                    .bucket(&url.bucket)
                    .key(&url.key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .set_checksum_algorithm(crate::s3::checksum::for_uploads(&client))
                    .body(ByteStream::from(part))
                    .send(),
            )
            .map_err(interrupted(op))?
            .map_err(|e| AwsError::from_sdk(op, e))?;
            parts.push((
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .set_checksum_crc64_nvme(out.checksum_crc64_nvme().map(str::to_string))
                    .build(),
                length,
            ));
            part = read_part(reader, PART_SIZE).map_err(|e| io_error(op, e))?;
        }
        let op = "S3 CompleteMultipartUpload";
        let etag = block_on(interrupt, crate::s3::write::complete_upload(client, url, &upload_id, parts, true)).map_err(interrupted(op))??;
        Ok(uploaded_row(url, size, etag.as_deref()))
    })();

    if result.is_err() {
        block_on(&crate::runtime::NoInterrupt, crate::s3::write::abort_upload(client, url, &upload_id)).ok();
    }
    result
}

/// What happened to one key of a batched delete.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteOutcome {
    pub url: S3Url,
    /// `None` when deleted; the service's reason otherwise.
    pub error: Option<String>,
}

/// Deletes up to [`DELETE_BATCH`] keys of one bucket in one request, reporting each key.
pub fn delete_objects(
    session: &Arc<Session>,
    bucket: &str,
    keys: &[String],
    interrupt: &dyn Interrupt,
) -> Result<Vec<DeleteOutcome>, AwsError> {
    block_on(interrupt, delete_objects_with(BucketRouter::new(session), bucket.to_string(), keys.to_vec()))
        .map_err(interrupted("S3 DeleteObjects"))?
}

/// [`delete_objects`] as a future on given clients.
pub async fn delete_objects_with(
    router: BucketRouter,
    bucket: String,
    keys: Vec<String>,
) -> Result<Vec<DeleteOutcome>, AwsError> {
    let op = "S3 DeleteObjects";
    let objects = keys
        .iter()
        .map(|k| ObjectIdentifier::builder().key(k).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AwsError::new(ErrorKind::InvalidInput, op, e.to_string()))?;
    let delete = Delete::builder()
        .set_objects(Some(objects))
        .quiet(false)
        .build()
        .map_err(|e| AwsError::new(ErrorKind::InvalidInput, op, e.to_string()))?;
    let out = router
        .call(&bucket, |client| {
            let call = client.delete_objects().bucket(&bucket).delete(delete.clone());
            async move { call.send().await.map_err(|e| AwsError::from_sdk(op, e)) }
        })
        .await?;
    let failed: std::collections::HashMap<&str, String> = out
        .errors()
        .iter()
        .filter_map(|e| {
            let reason = match (e.code(), e.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                (None, Some(m)) => m.to_string(),
                (None, None) => "not deleted".to_string(),
            };
            Some((e.key()?, reason))
        })
        .collect();
    Ok(keys
        .iter()
        .map(|k| DeleteOutcome {
            url: S3Url::new(bucket.as_str(), k.clone()),
            error: failed.get(k.as_str()).cloned(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_full_until_the_end() {
        let data = vec![7u8; 2 * 1024 + 5];
        let mut reader = &data[..];
        assert_eq!(read_part(&mut reader, 1024).unwrap().len(), 1024);
        assert_eq!(read_part(&mut reader, 1024).unwrap().len(), 1024);
        assert_eq!(read_part(&mut reader, 1024).unwrap().len(), 5);
        assert!(read_part(&mut reader, 1024).unwrap().is_empty());
    }
}
