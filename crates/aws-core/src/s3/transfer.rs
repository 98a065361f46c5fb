//! Whole-object transfers as futures, for the request engine to run many at once: a local file
//! uploaded (multipart above [`PART_SIZE`], parts sent a few at a time, read straight from the
//! file so memory stays at a few parts), an object downloaded to a local file, and an object
//! read into memory. Uploads carry a full-object CRC64NVME ([`checksum`]), multipart ones too
//! (each part's, and the whole object's combined from them for S3 to check).
//!
//! A download never leaves a half-written file under the destination's name: it goes to a
//! temporary file beside it, renamed into place when complete. Without `overwrite`, an existing
//! file is never replaced (the final step is a hard link, which fails if the name exists, so a
//! file created meanwhile is safe too).
//!
//! Not here: walking directories or listing prefixes (the caller decides which pairs to copy),
//! or copies within S3 ([`super::copy`]).

use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::CompletedPart;
pub use bytes::Bytes;

use crate::error::{AwsError, ErrorKind};
use crate::row::{Field, Row};
use crate::s3::checksum;
use crate::s3::list::unquote_etag;
use crate::s3::object::PART_SIZE;
use crate::s3::route::BucketRouter;
use crate::s3::url::S3Url;
use crate::s3::write::{abort_upload, complete_upload, exists_if_precondition_failed, refuse_existing};

/// Parts of one multipart upload sent at once.
const PARTS_AT_ONCE: usize = 4;

/// A body that sends nothing for this long has stalled: the SDK's timeouts end at the response
/// headers, so without this a stalled download would hang until Ctrl-C.
pub const BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The next chunk of a body, or a timeout error when it stalls.
async fn next_chunk(body: &mut ByteStream, op: &str, url: &S3Url) -> Result<Option<Bytes>, AwsError> {
    match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.next()).await {
        Err(_) => Err(AwsError::new(ErrorKind::Timeout, op, format!("{url}: the body stalled for {BODY_IDLE_TIMEOUT:?}"))),
        Ok(None) => Ok(None),
        Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
        Ok(Some(Err(e))) => Err(AwsError::new(ErrorKind::Network, op, format!("{url}: {e}"))),
    }
}

fn local_error(op: &str, path: &Path, err: impl std::fmt::Display) -> AwsError {
    AwsError::new(ErrorKind::Local, op, format!("{}: {err}", path.display()))
}

/// The content type S3 should serve an uploaded file with, from its extension.
pub fn content_type_for(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "json" => "application/json",
        "txt" | "log" | "md" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" => "text/javascript",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "gz" => "application/gzip",
        "zip" => "application/zip",
        "parquet" => "application/vnd.apache.parquet",
        _ => return None,
    })
}

pub(crate) fn copied_row(source: String, destination: String, size: u64, etag: Option<&str>) -> Row {
    Row::new()
        .with("source", Field::Text(source))
        .with("destination", Field::Text(destination))
        .with("size", Field::Bytes(size))
        .with("etag", Field::text(etag.map(unquote_etag)))
}

/// Uploads the file at `path` to `url`: `source`, `destination`, `size`, `etag`. Without
/// `overwrite`, an existing object is left alone (a conditional put, so one written meanwhile is
/// safe too; a multipart upload checks first as well, then completes on the same condition).
pub async fn upload_file(router: BucketRouter, path: PathBuf, url: S3Url, overwrite: bool) -> Result<Row, AwsError> {
    let op = "S3 PutObject";
    let size = tokio::fs::metadata(&path)
        .await
        .map_err(|e| local_error(op, &path, e))?
        .len();
    let content_type = content_type_for(&path).map(str::to_string);
    let source = path.display().to_string();
    if size <= PART_SIZE as u64 {
        let out = router
            .call(&url.bucket, |client| {
                let (path, url, content_type) = (&path, &url, content_type.clone());
                async move {
                    // Opened per attempt: a redirect sends the file again from its start.
                    let body = ByteStream::from_path(path).await.map_err(|e| local_error(op, path, e))?;
                    client
                        .put_object()
                        .bucket(&url.bucket)
                        .key(&url.key)
                        .set_content_type(content_type)
                        .set_if_none_match((!overwrite).then(|| "*".to_string()))
                        .set_checksum_algorithm(checksum::for_uploads(&client))
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(op, e))
                }
            })
            .await
            .map_err(exists_if_precondition_failed(op, &url))?;
        return Ok(copied_row(source, url.to_string(), size, out.e_tag()));
    }
    if !overwrite {
        refuse_existing(&router, &url, op).await?;
    }
    let op = "S3 CreateMultipartUpload";
    let created = router
        .call(&url.bucket, |client| {
            let call = client
                .create_multipart_upload()
                .bucket(&url.bucket)
                .key(&url.key)
                .set_checksum_algorithm(checksum::for_uploads(&client))
                .set_checksum_type(checksum::multipart_type(&client))
                .set_content_type(content_type.clone());
            async move { call.send().await.map_err(|e| AwsError::from_sdk(op, e)) }
        })
        .await?;
    // The create found the bucket's region: the parts go there.
    let client = router.client_for(&url.bucket);
    let upload_id = created.upload_id().unwrap_or_default().to_string();
    let result = upload_parts(&client, &path, &url, &upload_id, size, overwrite).await;
    match result {
        Ok(etag) => Ok(copied_row(source, url.to_string(), size, etag.as_deref())),
        Err(err) => {
            abort_upload(&client, &url, &upload_id).await;
            Err(err)
        }
    }
}

/// Sends the parts of a multipart upload, [`PARTS_AT_ONCE`] at a time, and completes it.
async fn upload_parts(
    client: &aws_sdk_s3::Client,
    path: &Path,
    url: &S3Url,
    upload_id: &str,
    size: u64,
    overwrite: bool,
) -> Result<Option<String>, AwsError> {
    let parts = size.div_ceil(PART_SIZE as u64);
    let mut running = tokio::task::JoinSet::new();
    let mut done: Vec<(CompletedPart, u64)> = Vec::with_capacity(parts as usize);
    let mut next = 0u64;
    while next < parts || !running.is_empty() {
        while next < parts && running.len() < PARTS_AT_ONCE {
            let offset = next * PART_SIZE as u64;
            let length = (size - offset).min(PART_SIZE as u64);
            let number = next as i32 + 1;
            let (client, path, url, upload_id) = (client.clone(), path.to_path_buf(), url.clone(), upload_id.to_string());
            running.spawn(async move {
                let op = "S3 UploadPart";
                let body = ByteStream::read_from()
                    .path(&path)
                    .offset(offset)
                    .length(Length::Exact(length))
                    .build()
                    .await
                    .map_err(|e| local_error(op, &path, e))?;
                let out = client
                    .upload_part()
                    .bucket(&url.bucket)
                    .key(&url.key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .set_checksum_algorithm(checksum::for_uploads(&client))
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e))?;
                let part = CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .set_checksum_crc64_nvme(out.checksum_crc64_nvme().map(str::to_string))
                    .build();
                Ok::<_, AwsError>((part, length))
            });
            next += 1;
        }
        match running.join_next().await {
            Some(Ok(Ok(part))) => done.push(part),
            Some(Ok(Err(err))) => return Err(err),
            Some(Err(join)) => return Err(AwsError::new(ErrorKind::Service, "S3 UploadPart", join.to_string())),
            None => break,
        }
    }
    // Dropping `running` on an early return aborts the other parts.
    complete_upload(client, url, upload_id, done, overwrite).await
}

/// A temporary name beside `dest`, unique to this process and download.
fn partial_path(dest: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(format!(".{name}.nuaws-partial-{}-{n}", std::process::id()))
}

/// Downloads `url` to `dest` (parent directories created): `source`, `destination`, `size`,
/// `etag`. Refuses to replace an existing file unless `overwrite`.
pub async fn download_object(router: BucketRouter, url: S3Url, dest: PathBuf, overwrite: bool) -> Result<Row, AwsError> {
    let op = "S3 GetObject";
    if !overwrite && tokio::fs::symlink_metadata(&dest).await.is_ok() {
        return Err(AwsError::new(
            ErrorKind::Local,
            op,
            format!("{} already exists (pass --force to replace it)", dest.display()),
        )
        .with_code("FileExists"));
    }
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent).await.map_err(|e| local_error(op, parent, e))?;
    }
    let out = start_get(&router, &url).await?;
    let etag = out.e_tag().map(str::to_string);
    let partial = partial_path(&dest);
    let written = async {
        use tokio::io::AsyncWriteExt;
        let mut file = tokio::fs::File::create(&partial).await.map_err(|e| local_error(op, &partial, e))?;
        let mut body = out.body;
        let mut size = 0u64;
        while let Some(chunk) = next_chunk(&mut body, op, &url).await? {
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(|e| local_error(op, &partial, e))?;
        }
        file.sync_all().await.map_err(|e| local_error(op, &partial, e))?;
        if overwrite {
            tokio::fs::rename(&partial, &dest).await.map_err(|e| local_error(op, &dest, e))?;
        } else {
            // A hard link fails if the name was taken meanwhile: never replace a user's file.
            tokio::fs::hard_link(&partial, &dest).await.map_err(|e| local_error(op, &dest, e))?;
            let _ = tokio::fs::remove_file(&partial).await;
        }
        Ok::<_, AwsError>(size)
    }
    .await;
    match written {
        Ok(size) => Ok(copied_row(url.to_string(), dest.display().to_string(), size, etag.as_deref())),
        Err(err) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(err)
        }
    }
}

/// A GetObject answered: headers in, body still to stream.
async fn start_get(router: &BucketRouter, url: &S3Url) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, AwsError> {
    router
        .call(&url.bucket, |client| {
            let call = client.get_object().bucket(&url.bucket).key(&url.key);
            async move { call.send().await.map_err(|e| AwsError::from_sdk("S3 GetObject", e)) }
        })
        .await
}

/// Reads a whole object into memory: its bytes and content type.
pub async fn read_object(router: BucketRouter, url: S3Url) -> Result<(Bytes, Option<String>), AwsError> {
    let op = "S3 GetObject";
    let out = start_get(&router, &url).await?;
    let content_type = out.content_type().map(str::to_string);
    let mut body = out.body;
    let mut data = bytes::BytesMut::new();
    while let Some(chunk) = next_chunk(&mut body, op, &url).await? {
        data.extend_from_slice(&chunk);
    }
    Ok((data.freeze(), content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type_for(Path::new("a/b.JSON")), Some("application/json"));
        assert_eq!(content_type_for(Path::new("x.csv")), Some("text/csv"));
        assert_eq!(content_type_for(Path::new("noext")), None);
        assert_eq!(content_type_for(Path::new("x.weird")), None);
    }

    #[test]
    fn partial_files_sit_beside_the_destination() {
        let p = partial_path(Path::new("/tmp/out/data.json"));
        assert_eq!(p.parent(), Some(Path::new("/tmp/out")));
        assert!(p.file_name().unwrap().to_string_lossy().starts_with(".data.json.nuaws-partial-"));
        assert_ne!(p, partial_path(Path::new("/tmp/out/data.json")));
    }
}
