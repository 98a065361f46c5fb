//! Checksums of object contents: what nuaws asks S3 to keep for every object it uploads (a
//! full-object CRC64NVME, also for multipart uploads, so it does not depend on the part size),
//! the same digests of a local file in one read (MD5, CRC64NVME, and the multipart ETag for a
//! part size), and the CRC64NVME's wire form (base64 of its 8 big-endian bytes).
//!
//! Not here: deciding what to compare (that is `--checksum` in [`super::sync`]) or keeping
//! digests between runs ([`crate::cache::hashes`]).

use std::io::Read;
use std::path::Path;

use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType};
use md5::Digest;

pub use crate::cache::hashes::FileDigests;

/// The checksum every upload of nuaws carries.
pub const ALGORITHM: ChecksumAlgorithm = ChecksumAlgorithm::Crc64Nvme;
/// Its type for multipart uploads: of the whole object, whatever the parts.
pub const MULTIPART_TYPE: ChecksumType = ChecksumType::FullObject;

const CRC: crc_fast::CrcAlgorithm = crc_fast::CrcAlgorithm::Crc64Nvme;

/// The checksum an upload through `client` asks S3 to keep: [`ALGORITHM`], unless the profile
/// or the environment asked for checksums only where an operation requires one
/// (`request_checksum_calculation = when_required`): what S3-compatible stores that refuse
/// flexible checksums need, and an explicit algorithm would override.
pub fn for_uploads(client: &aws_sdk_s3::Client) -> Option<ChecksumAlgorithm> {
    use aws_sdk_s3::config::RequestChecksumCalculation;
    match client.config().request_checksum_calculation() {
        Some(RequestChecksumCalculation::WhenRequired) => None,
        _ => Some(ALGORITHM),
    }
}

/// The checksum type of a multipart upload through `client`: [`MULTIPART_TYPE`] when its parts
/// carry [`for_uploads`]'s checksum, else none (S3 refuses a type without an algorithm).
pub fn multipart_type(client: &aws_sdk_s3::Client) -> Option<ChecksumType> {
    for_uploads(client).map(|_| MULTIPART_TYPE)
}

/// The CRC64NVME of some bytes.
pub fn crc64nvme(bytes: &[u8]) -> u64 {
    crc_fast::checksum(CRC, bytes)
}

/// The CRC64NVME of `a` followed by `b`, from theirs and `b`'s length.
pub fn crc64nvme_combine(a: u64, b: u64, b_len: u64) -> u64 {
    crc_fast::checksum_combine(CRC, a, b, b_len)
}

/// A CRC64NVME as S3's headers carry it.
pub fn encode_crc64(crc: u64) -> String {
    aws_smithy_types::base64::encode(crc.to_be_bytes())
}

/// A CRC64NVME from S3's headers; `None` if it is not one (a composite checksum ends `-N`).
pub fn decode_crc64(value: &str) -> Option<u64> {
    let bytes = aws_smithy_types::base64::decode(value).ok()?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the file at `path` once: its MD5 and CRC64NVME, and, with `part_size`, the ETag S3
/// gives it when uploaded in parts of that size (the MD5 of the parts' MD5s, `-`, the number of
/// parts).
pub fn digest_file(path: &Path, part_size: Option<u64>) -> std::io::Result<FileDigests> {
    let mut file = std::fs::File::open(path)?;
    let part_size = part_size.filter(|p| *p > 0);
    let mut whole = md5::Md5::new();
    let mut crc = crc_fast::Digest::new(CRC);
    let mut part = md5::Md5::new();
    let mut part_len = 0u64;
    let mut outer = md5::Md5::new();
    let mut parts = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        whole.update(chunk);
        crc.update(chunk);
        if let Some(p) = part_size {
            while !chunk.is_empty() {
                let take = ((p - part_len) as usize).min(chunk.len());
                part.update(&chunk[..take]);
                part_len += take as u64;
                chunk = &chunk[take..];
                if part_len == p {
                    outer.update(std::mem::take(&mut part).finalize());
                    parts += 1;
                    part_len = 0;
                }
            }
        }
    }
    let multipart = part_size.map(|p| {
        // The last, short part; an empty file is one empty part.
        if part_len > 0 || parts == 0 {
            outer.update(part.finalize());
            parts += 1;
        }
        (p, format!("{}-{parts}", hex(&outer.finalize())))
    });
    Ok(FileDigests {
        md5: hex(&whole.finalize()),
        crc64nvme: crc.finalize(),
        multipart,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_carry_no_checksum_where_the_profile_asks_for_them_only_when_required() {
        use aws_sdk_s3::config::{BehaviorVersion, RequestChecksumCalculation};
        let client = |calculation: Option<RequestChecksumCalculation>| {
            let mut config = aws_sdk_s3::Config::builder().behavior_version(BehaviorVersion::latest());
            config.set_request_checksum_calculation(calculation);
            aws_sdk_s3::Client::from_conf(config.build())
        };
        assert_eq!(for_uploads(&client(None)), Some(ALGORITHM));
        assert_eq!(multipart_type(&client(None)), Some(MULTIPART_TYPE));
        let supported = client(Some(RequestChecksumCalculation::WhenSupported));
        assert_eq!(for_uploads(&supported), Some(ALGORITHM));
        let required = client(Some(RequestChecksumCalculation::WhenRequired));
        assert_eq!(for_uploads(&required), None);
        assert_eq!(multipart_type(&required), None);
    }

    #[test]
    fn crc64nvme_is_the_one_s3_documents() {
        // The check value of CRC-64/NVME (the CRC catalogue): "123456789".
        assert_eq!(crc64nvme(b"123456789"), 0xAE8B_1486_0A79_9888);
        let (a, b) = (&b"hello "[..], &b"world"[..]);
        assert_eq!(crc64nvme_combine(crc64nvme(a), crc64nvme(b), b.len() as u64), crc64nvme(b"hello world"));
        let wire = encode_crc64(0xAE8B_1486_0A79_9888);
        assert_eq!(wire.len(), 12);
        assert_eq!(decode_crc64(&wire), Some(0xAE8B_1486_0A79_9888));
        assert_eq!(decode_crc64("AAAA-2"), None);
    }

    #[test]
    fn one_read_gives_every_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello world").unwrap();
        let d = digest_file(&path, None).unwrap();
        assert_eq!(d.md5, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(d.crc64nvme, crc64nvme(b"hello world"));
        assert_eq!(d.multipart, None);
        // Parts of 5 bytes: "hello", " worl", "d".
        let mut outer = md5::Md5::new();
        for part in [&b"hello"[..], b" worl", b"d"] {
            outer.update(md5::Md5::digest(part));
        }
        let wanted = format!("{}-3", hex(&outer.finalize()));
        assert_eq!(digest_file(&path, Some(5)).unwrap().multipart, Some((5, wanted)));
        // Parts that divide the file exactly: no empty part after them.
        let mut outer = md5::Md5::new();
        outer.update(md5::Md5::digest(b"hello world"));
        assert_eq!(digest_file(&path, Some(11)).unwrap().multipart, Some((11, format!("{}-1", hex(&outer.finalize())))));
    }
}
