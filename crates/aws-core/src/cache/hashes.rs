//! The local hash cache of `aws s3 sync --checksum`: the digests of a local file (its MD5, its
//! CRC64NVME, and its multipart ETag for one part size), kept in the disk cache under the file's
//! path and valid while the file's size, modification time (to the nanosecond), inode and device
//! are what they were when it was read, so a re-run does not read unchanged files again.
//!
//! New entries are written in batches of [`BATCH`] (one disk sync each, not one per file), the
//! rest when the last clone of the [`HashCache`] is dropped. Like the rest of the disk cache,
//! it never fails its caller: without a usable disk tier
//! (`$env.NUAWS_CACHE = off`, a refused directory) every lookup is a miss and the file is read;
//! an entry that cannot be decoded is a miss; a write that fails is skipped. A file changed
//! within [`RACY`] of its being read is not stored (its next change could keep the same mtime).
//! Every lookup is counted in [`Metrics`] as a cache lookup of (`local`, [`OPERATION`]):
//! `hits_disk` for a file not read again, `misses` for one read, so `aws metrics` shows them.
//!
//! Not here: computing the digests (the caller hands in how) or comparing them with S3's.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::codec::Entry;
use super::{Cache, Tier};
use crate::metrics::Metrics;
use crate::row::{Field, Row};

/// The operation hash lookups are counted under, with service `local`.
pub const OPERATION: &str = "HashFile";
/// How long an entry lives without the file being checked again.
const TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// A file modified less than this before it was read is not stored.
const RACY: Duration = Duration::from_secs(2);
/// Bumped if the rows change meaning.
const VERSION: &str = "v1";

/// What a file's contents hash to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigests {
    /// Hex, lower case: the ETag of a single-part upload.
    pub md5: String,
    /// The full-object CRC64NVME, as S3 computes it.
    pub crc64nvme: u64,
    /// The multipart ETag (`hex-N`) for uploads in parts of `.0` bytes.
    pub multipart: Option<(u64, String)>,
}

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
    pub(crate) inode: u64,
    pub(crate) device: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Option<Stamp> {
        let modified = meta.modified().ok()?;
        let mtime_ns = match modified.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).ok()?,
            Err(e) => -i64::try_from(e.duration().as_nanos()).ok()?,
        };
        #[cfg(unix)]
        let (inode, device) = {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), meta.dev())
        };
        #[cfg(not(unix))]
        let (inode, device) = (0, 0);
        Some(Stamp {
            size: meta.len(),
            mtime_ns,
            inode,
            device,
        })
    }
}

/// Entries written to disk together, in one transaction (one sync to disk).
const BATCH: usize = 256;

/// The hash cache: the disk tier of a [`Cache`], or none. Clones share it; new entries are
/// written in batches, the last when the last clone is dropped.
#[derive(Clone)]
pub struct HashCache {
    inner: Arc<Inner>,
}

struct Inner {
    cache: Option<Arc<Cache>>,
    metrics: Arc<Metrics>,
    pending: std::sync::Mutex<Vec<Entry>>,
}

impl Inner {
    fn flush(&self, at_least: usize) {
        let batch = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.len() < at_least.max(1) {
                return;
            }
            std::mem::take(&mut *pending)
        };
        if let Some(disk) = self.cache.as_ref().and_then(|c| c.disk()) {
            disk.insert_many(&batch);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.flush(1);
    }
}

impl HashCache {
    /// Over `cache`'s disk tier (`None`: nothing is kept, every file is read).
    pub fn new(cache: Option<Arc<Cache>>) -> Self {
        let metrics = cache.as_ref().map_or_else(|| Metrics::global().clone(), |c| c.metrics().clone());
        Self {
            inner: Arc::new(Inner {
                cache,
                metrics,
                pending: Default::default(),
            }),
        }
    }

    /// Writes the entries not yet written.
    pub fn flush(&self) {
        self.inner.flush(1);
    }

    fn key(path: &Path) -> String {
        let bytes = path.as_os_str().as_encoded_bytes();
        // Shaped like a cache key (`account/region/service/operation#digest`), so `aws cache
        // clear` globs reach it; the digest keeps any path, however long, to a short key.
        format!("local/-/fs/{OPERATION}/{VERSION}#{}", blake3::hash(bytes).to_hex())
    }

    /// The digests of the file at `path` (with the multipart ETag for parts of `part_size`, if
    /// asked), from the cache when the file is unchanged, else from `compute` (then stored).
    pub fn digests(
        &self,
        path: &Path,
        part_size: Option<u64>,
        compute: impl FnOnce(&Path, Option<u64>) -> std::io::Result<FileDigests>,
    ) -> std::io::Result<FileDigests> {
        let inner = &self.inner;
        let disk = inner.cache.as_ref().and_then(|c| c.disk()).filter(|d| d.is_enabled());
        let before = std::fs::metadata(path)?;
        let stamp = Stamp::of(&before);
        let key = Self::key(path);
        if let (Some(disk), Some(stamp)) = (disk, stamp)
            && let Some(found) = disk.get(&key).and_then(|e| decode(&e, path, stamp))
            && part_size.is_none_or(|p| found.multipart.as_ref().is_some_and(|(size, _)| *size == p))
        {
            inner.metrics.record_cache_lookup("local", OPERATION, "", Tier::Disk);
            return Ok(found);
        }
        inner.metrics.record_cache_lookup("local", OPERATION, "", Tier::Network);
        let digests = compute(path, part_size)?;
        let Some(disk) = disk else { return Ok(digests) };
        // Stored only if the file did not change while it was read, and not just before.
        let after = std::fs::metadata(path).ok().as_ref().and_then(Stamp::of);
        let now = disk.now();
        let settled = before.modified().ok().is_some_and(|m| now.duration_since(m).is_ok_and(|age| age >= RACY));
        if let Some(stamp) = stamp.filter(|s| after == Some(*s) && settled) {
            let entry = Entry::new(key, vec![encode(path, stamp, &digests)], now, TTL);
            inner.pending.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
            inner.flush(BATCH);
        }
        Ok(digests)
    }
}

pub(crate) fn encode(path: &Path, stamp: Stamp, d: &FileDigests) -> Row {
    Row::new()
        .with("path", Field::Text(path.to_string_lossy().into_owned()))
        .with("size", Field::Bytes(stamp.size))
        .with("mtime_ns", Field::Int(stamp.mtime_ns))
        // Bit patterns: inode and device numbers may use all 64 bits.
        .with("inode", Field::Int(stamp.inode as i64))
        .with("device", Field::Int(stamp.device as i64))
        .with("md5", Field::Text(d.md5.clone()))
        .with("crc64nvme", Field::Int(d.crc64nvme as i64))
        .with("part_size", d.multipart.as_ref().map_or(Field::Null, |(p, _)| Field::Bytes(*p)))
        .with("multipart_etag", d.multipart.as_ref().map_or(Field::Null, |(_, e)| Field::Text(e.clone())))
}

/// The digests of an entry, if it is of this very file as it is now.
pub(crate) fn decode(entry: &Entry, path: &Path, stamp: Stamp) -> Option<FileDigests> {
    let row = entry.rows.first()?;
    let int = |c: &str| match row.get(c) {
        Some(Field::Int(n)) => Some(*n),
        _ => None,
    };
    let bytes = |c: &str| match row.get(c) {
        Some(Field::Bytes(n)) => Some(*n),
        _ => None,
    };
    let text = |c: &str| row.get(c).and_then(Field::as_str).map(str::to_string);
    let stored = Stamp {
        size: bytes("size")?,
        mtime_ns: int("mtime_ns")?,
        inode: int("inode")? as u64,
        device: int("device")? as u64,
    };
    if stored != stamp || text("path")? != path.to_string_lossy() {
        return None;
    }
    let multipart = match (bytes("part_size"), text("multipart_etag")) {
        (Some(p), Some(e)) => Some((p, e)),
        _ => None,
    };
    Some(FileDigests {
        md5: text("md5")?,
        crc64nvme: int("crc64nvme")? as u64,
        multipart,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::clock::SystemClock;

    fn digests_of(n: u64) -> impl FnOnce(&Path, Option<u64>) -> std::io::Result<FileDigests> {
        move |_, part| {
            Ok(FileDigests {
                md5: format!("{n:032x}"),
                crc64nvme: n,
                multipart: part.map(|p| (p, format!("{n:032x}-2"))),
            })
        }
    }

    fn lookups(metrics: &Metrics) -> (u64, u64) {
        let snapshot = metrics.snapshot();
        let figures = snapshot.iter().find(|(k, _)| k.operation == OPERATION).map(|(_, f)| f.clone()).unwrap_or_default();
        (figures.hits_disk, figures.misses)
    }

    #[test]
    fn unchanged_files_are_not_read_again_and_changed_ones_are() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let cache = Cache::builder().disk_dir(dir.path().join("cache")).clock(Arc::new(SystemClock)).metrics(metrics.clone()).build();
        let hashes = HashCache::new(Some(Arc::new(cache)));
        let file = dir.path().join("f");
        std::fs::write(&file, b"one").unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        let touch = |t: SystemTime| std::fs::File::options().write(true).open(&file).unwrap().set_modified(t).unwrap();
        touch(old);

        assert_eq!(hashes.digests(&file, None, digests_of(1)).unwrap().crc64nvme, 1);
        hashes.flush();
        assert_eq!(hashes.digests(&file, None, digests_of(2)).unwrap().crc64nvme, 1, "served from the cache");
        assert_eq!(lookups(&metrics), (1, 1));
        // A part size not yet known: read again, and kept with it.
        assert_eq!(hashes.digests(&file, Some(5), digests_of(3)).unwrap().multipart.unwrap().0, 5);
        hashes.flush();
        assert_eq!(hashes.digests(&file, Some(5), digests_of(4)).unwrap().crc64nvme, 3);
        // Same size, another mtime: read again.
        touch(old + Duration::from_secs(1));
        assert_eq!(hashes.digests(&file, None, digests_of(5)).unwrap().crc64nvme, 5);
        // Replaced by another file (another inode) of the same size and mtime: read again.
        let other = dir.path().join("g");
        std::fs::write(&other, b"two").unwrap();
        std::fs::File::options().write(true).open(&other).unwrap().set_modified(old + Duration::from_secs(1)).unwrap();
        std::fs::rename(&other, &file).unwrap();
        assert_eq!(hashes.digests(&file, None, digests_of(6)).unwrap().crc64nvme, 6);
        // Just written: read, but not kept (it could change again within the same mtime).
        touch(SystemTime::now());
        assert_eq!(hashes.digests(&file, None, digests_of(7)).unwrap().crc64nvme, 7);
        hashes.flush();
        assert_eq!(hashes.digests(&file, None, digests_of(8)).unwrap().crc64nvme, 8);
        assert_eq!(lookups(&metrics), (2, 6));
    }

    #[test]
    fn without_a_disk_tier_every_lookup_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let hashes = HashCache::new(None);
        assert_eq!(hashes.digests(&file, None, digests_of(1)).unwrap().crc64nvme, 1);
        assert_eq!(hashes.digests(&file, None, digests_of(2)).unwrap().crc64nvme, 2);
        assert!(hashes.digests(&dir.path().join("missing"), None, digests_of(3)).is_err());
    }
}
