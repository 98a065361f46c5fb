//! [`Entry`], one cached listing, and its byte form: what the disk tier stores as an LMDB value.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! magic      4   b"NUAW"
//! version    2   u16, FORMAT_VERSION
//! created_at 8   i64, wall clock, unix milliseconds
//! expires_at 8   i64, wall clock, unix milliseconds
//! key_len    4   u32
//! key        key_len bytes, UTF-8: the full readable key, so a digest collision is detected
//! raw_len    4   u32, length of the payload once decompressed
//! checksum   16  first 16 bytes of BLAKE3 over every byte above and the payload
//! payload    ..  brotli-compressed rows (see `write_rows`)
//! ```
//!
//! The checksum covers the header as well as the payload: a flipped bit in `expires_at` must be
//! an error, not an entry that lives for a century. [`decode`] checks magic, version, sizes,
//! checksum and key *before* decompressing, and the decompressed size is capped by
//! [`MAX_DECODED_LEN`] and by the declared length, so a bad entry cannot be a decompression bomb.
//!
//! Not for: deciding whether an entry is fresh (that is the tiers' job, with a [`Clock`]), nor a
//! general serialisation format: it encodes exactly [`Row`] and [`Field`].
//!
//! [`Clock`]: super::Clock

use std::collections::HashSet;
use std::fmt;
use std::io::{Read, Write};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::DateTime;

use crate::row::{Field, Row};

/// First bytes of every encoded entry.
pub const MAGIC: [u8; 4] = *b"NUAW";
/// Bumped whenever the byte layout changes; other versions are rejected (and so become misses).
pub const FORMAT_VERSION: u16 = 1;
/// The largest decompressed payload [`decode`] accepts, and so the largest listing worth caching.
pub const MAX_DECODED_LEN: usize = 64 << 20;
/// The longest key accepted. Keys are a readable description of a request; far below this.
pub const MAX_KEY_LEN: usize = 64 << 10;
/// The longest TTL an entry can have; longer ones (up to `Duration::MAX`) are clamped to it
/// instead of overflowing `SystemTime`.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

const CHECKSUM_LEN: usize = 16;
/// Header bytes before the key: magic, version, created_at, expires_at, key_len.
const FIXED_PREFIX_LEN: usize = 4 + 2 + 8 + 8 + 4;
/// Header bytes after the key: raw_len and checksum.
const FIXED_SUFFIX_LEN: usize = 4 + CHECKSUM_LEN;
/// Brotli settings: quality 5 compresses listings (repetitive column names, ids and dates) well
/// at a speed that keeps a cache write far cheaper than the API call it saves.
const BROTLI_QUALITY: u32 = 5;
const BROTLI_LGWIN: u32 = 22;
const BROTLI_BUFFER: usize = 4096;
/// Nesting depth of lists and records accepted by the decoder; deeper input is malformed
/// (AWS responses nest a few levels) and would otherwise risk a stack overflow.
const MAX_DEPTH: usize = 64;
/// How many distinct column names the interner takes before refusing more (see [`intern`]).
const MAX_INTERNED_NAMES: usize = 4096;

/// One cached result: the rows of a listing, the key they were stored under, and when they were
/// made and stop being valid (wall clock).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
    pub rows: Vec<Row>,
}

impl Entry {
    /// An entry created at `now` that expires `ttl` later. The TTL is clamped to [`MAX_TTL`]
    /// (so `Duration::MAX` means "a very long time", not a panic), and both instants are
    /// truncated to whole milliseconds, the codec's resolution, so that a decoded entry equals
    /// the one that was encoded.
    pub fn new(key: impl Into<String>, rows: Vec<Row>, now: SystemTime, ttl: Duration) -> Entry {
        let created_at = truncate_to_millis(now);
        let ttl = truncate_duration_to_millis(ttl.min(MAX_TTL));
        let expires_at = created_at.checked_add(ttl).unwrap_or(created_at);
        Entry {
            key: key.into(),
            created_at,
            expires_at,
            rows,
        }
    }

    /// The entry's lifetime as written: `expires_at - created_at`, zero if inverted.
    pub fn ttl(&self) -> Duration {
        self.expires_at
            .duration_since(self.created_at)
            .unwrap_or(Duration::ZERO)
    }
}

/// Why bytes are not a valid entry for the expected key. Never carries key material or values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// Shorter than its header says.
    Truncated,
    BadMagic,
    UnsupportedVersion(u16),
    /// A key longer than [`MAX_KEY_LEN`], or not UTF-8.
    BadKey,
    /// The stored key is not the expected one (a digest collision, or a misplaced value).
    KeyMismatch,
    /// The declared decompressed length exceeds [`MAX_DECODED_LEN`].
    TooLarge(u64),
    ChecksumMismatch,
    /// Brotli failed, or produced another length than declared.
    Decompress,
    /// The rows themselves are malformed (only possible for a value that was not written by
    /// [`encode`] but still carries a valid checksum).
    Malformed(&'static str),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Truncated => f.write_str("cache entry is truncated"),
            CodecError::BadMagic => f.write_str("not a nuaws cache entry (bad magic)"),
            CodecError::UnsupportedVersion(v) => {
                write!(f, "cache entry format version {v} is not supported")
            }
            CodecError::BadKey => f.write_str("cache entry has an invalid key"),
            CodecError::KeyMismatch => f.write_str("cache entry belongs to another key"),
            CodecError::TooLarge(n) => write!(
                f,
                "cache entry declares {n} decompressed bytes, over the {MAX_DECODED_LEN} limit"
            ),
            CodecError::ChecksumMismatch => f.write_str("cache entry checksum mismatch"),
            CodecError::Decompress => f.write_str("cache entry payload does not decompress"),
            CodecError::Malformed(what) => write!(f, "cache entry is malformed: {what}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Encodes `entry`. Cannot fail: compressing into memory has no I/O to fail. A listing larger
/// than [`MAX_DECODED_LEN`] is still encoded, but [`decode`] will refuse it; the disk tier
/// checks [`encoded_is_storable`] before storing.
pub fn encode(entry: &Entry) -> Vec<u8> {
    let mut raw = Vec::with_capacity(256);
    write_rows(&mut raw, &entry.rows);
    seal(
        &entry.key,
        to_unix_millis(entry.created_at),
        to_unix_millis(entry.expires_at),
        &raw,
    )
}

/// The stored form of an entry whose rows are already in their byte form `raw`: compressed,
/// behind the header and its checksum. [`encode`] is this with rows from [`write_rows`]; the
/// fuzz targets seal arbitrary `raw` bytes with it, so they reach the row decoder.
pub(crate) fn seal(key: &str, created_ms: i64, expires_ms: i64, raw: &[u8]) -> Vec<u8> {
    let mut compressed = Vec::with_capacity(raw.len() / 4 + 64);
    {
        let mut writer = brotli::CompressorWriter::new(
            &mut compressed,
            BROTLI_BUFFER,
            BROTLI_QUALITY,
            BROTLI_LGWIN,
        );
        // Writing into a Vec cannot fail. Were it ever to, the payload would be short, its
        // length would not match `raw_len` and `decode` would reject it: a miss, not garbage.
        let _ = writer.write_all(raw);
        let _ = writer.flush();
        // Dropping the writer finishes the brotli stream.
    }

    let key = key.as_bytes();
    let mut out =
        Vec::with_capacity(FIXED_PREFIX_LEN + key.len() + FIXED_SUFFIX_LEN + compressed.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&created_ms.to_le_bytes());
    out.extend_from_slice(&expires_ms.to_le_bytes());
    out.extend_from_slice(&saturating_u32(key.len()).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&saturating_u32(raw.len()).to_le_bytes());
    let checksum = checksum(&out, &compressed);
    out.extend_from_slice(&checksum);
    out.extend_from_slice(&compressed);
    out
}

/// Decodes bytes written by [`encode`], which must have been stored under `expected_key`.
/// Everything is verified before the payload is decompressed.
pub fn decode(bytes: &[u8], expected_key: &str) -> Result<Entry, CodecError> {
    let header = parse_header(bytes)?;
    if header.raw_len as usize > MAX_DECODED_LEN {
        return Err(CodecError::TooLarge(header.raw_len.into()));
    }
    let (covered, rest) = bytes.split_at(header.checksum_offset);
    let (stored_checksum, payload) = rest.split_at(CHECKSUM_LEN);
    if checksum(covered, payload) != stored_checksum {
        return Err(CodecError::ChecksumMismatch);
    }
    // Compared after the checksum: a corrupted key is reported as corruption, not as a
    // collision. `str` equality compares lengths first, then bytes.
    if header.key != expected_key {
        return Err(CodecError::KeyMismatch);
    }

    let raw = decompress_bounded(payload, header.raw_len as usize)?;
    let rows = decode_rows(&raw)?;
    Ok(Entry {
        key: header.key.to_string(),
        created_at: header.created_at,
        expires_at: header.expires_at,
        rows,
    })
}

/// Whether an encoded entry can be decoded again (its payload is within [`MAX_DECODED_LEN`]).
pub fn encoded_is_storable(bytes: &[u8]) -> bool {
    parse_header(bytes).is_ok_and(|h| h.raw_len as usize <= MAX_DECODED_LEN)
}

/// The header fields of an encoded entry, parsed without verifying the checksum: enough for the
/// disk tier to list keys and pick eviction victims without decompressing anything. Callers
/// that act on `key` must verify it another way (the disk tier checks that it hashes to the
/// LMDB key it was found under).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header<'a> {
    pub key: &'a str,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
    raw_len: u32,
    checksum_offset: usize,
}

pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header<'_>, CodecError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let trunc = |_| CodecError::Truncated;
    if r.take(4).map_err(trunc)? != MAGIC {
        return Err(CodecError::BadMagic);
    }
    let version = r.u16().map_err(trunc)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnsupportedVersion(version));
    }
    let created_at = from_unix_millis(r.i64().map_err(trunc)?)?;
    let expires_at = from_unix_millis(r.i64().map_err(trunc)?)?;
    let key_len = r.u32().map_err(trunc)? as usize;
    if key_len > MAX_KEY_LEN {
        return Err(CodecError::BadKey);
    }
    let key =
        std::str::from_utf8(r.take(key_len).map_err(trunc)?).map_err(|_| CodecError::BadKey)?;
    let raw_len = r.u32().map_err(trunc)?;
    let checksum_offset = r.pos;
    r.take(CHECKSUM_LEN).map_err(trunc)?;
    Ok(Header {
        key,
        created_at,
        expires_at,
        raw_len,
        checksum_offset,
    })
}

fn checksum(header: &[u8], payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..CHECKSUM_LEN]);
    out
}

/// Decompresses at most `declared + 1` bytes (one more, to notice a payload that is longer than
/// declared) into a buffer that grows with the actual output, so a lying header costs nothing.
fn decompress_bounded(payload: &[u8], declared: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(declared.min(1 << 20));
    let decompressor = brotli::Decompressor::new(payload, BROTLI_BUFFER);
    decompressor
        .take(declared as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| CodecError::Decompress)?;
    if out.len() != declared {
        return Err(CodecError::Decompress);
    }
    Ok(out)
}

// ---- time ------------------------------------------------------------------------------------

fn to_unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

fn from_unix_millis(ms: i64) -> Result<SystemTime, CodecError> {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    let t = if ms >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    t.ok_or(CodecError::Malformed("timestamp out of range"))
}

fn truncate_to_millis(t: SystemTime) -> SystemTime {
    // Round-trips through the codec's representation, so the two always agree.
    from_unix_millis(to_unix_millis(t)).unwrap_or(t)
}

fn truncate_duration_to_millis(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---- rows ------------------------------------------------------------------------------------
//
// rows    := u32 count, row*
// row     := u32 count, (string name, field)*
// string  := u32 length, UTF-8 bytes
// field   := u8 tag, then: Null -; Bool u8; Int i64; Bytes u64; Text string;
//            Time i64 seconds, u32 nanoseconds; List u32 count, field*;
//            Record u32 count, (string, field)*

const TAG_NULL: u8 = 0;
const TAG_BOOL: u8 = 1;
const TAG_INT: u8 = 2;
const TAG_BYTES: u8 = 3;
const TAG_TEXT: u8 = 4;
const TAG_TIME: u8 = 5;
const TAG_LIST: u8 = 6;
const TAG_RECORD: u8 = 7;

pub(crate) fn write_rows(out: &mut Vec<u8>, rows: &[Row]) {
    write_len(out, rows.len());
    for row in rows {
        write_len(out, row.columns.len());
        for (name, field) in &row.columns {
            write_str(out, name);
            write_field(out, field);
        }
    }
}

fn write_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&saturating_u32(n).to_le_bytes());
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    write_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn write_field(out: &mut Vec<u8>, field: &Field) {
    match field {
        Field::Null => out.push(TAG_NULL),
        Field::Bool(b) => {
            out.push(TAG_BOOL);
            out.push(u8::from(*b));
        }
        Field::Int(n) => {
            out.push(TAG_INT);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Field::Bytes(n) => {
            out.push(TAG_BYTES);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Field::Text(s) => {
            out.push(TAG_TEXT);
            write_str(out, s);
        }
        Field::Time(t) => {
            out.push(TAG_TIME);
            out.extend_from_slice(&t.timestamp().to_le_bytes());
            out.extend_from_slice(&t.timestamp_subsec_nanos().to_le_bytes());
        }
        Field::List(items) => {
            out.push(TAG_LIST);
            write_len(out, items.len());
            for item in items {
                write_field(out, item);
            }
        }
        Field::Record(pairs) => {
            out.push(TAG_RECORD);
            write_len(out, pairs.len());
            for (name, value) in pairs {
                write_str(out, name);
                write_field(out, value);
            }
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(n).ok_or(CodecError::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(CodecError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, CodecError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A count of items that each take at least `min_item_len` bytes; a count the remaining
    /// bytes cannot hold is malformed. Keeps `Vec::with_capacity` honest.
    fn count(&mut self, min_item_len: usize) -> Result<usize, CodecError> {
        let n = self.u32()? as usize;
        let remaining = self.buf.len() - self.pos;
        if n.saturating_mul(min_item_len) > remaining {
            return Err(CodecError::Malformed("count larger than the data"));
        }
        Ok(n)
    }

    fn str(&mut self) -> Result<&'a str, CodecError> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| CodecError::Malformed("string is not UTF-8"))
    }
}

/// The rows of a decompressed payload, which must hold nothing else.
pub(crate) fn decode_rows(raw: &[u8]) -> Result<Vec<Row>, CodecError> {
    let mut reader = Reader { buf: raw, pos: 0 };
    let rows = read_rows(&mut reader)?;
    if reader.pos != raw.len() {
        return Err(CodecError::Malformed("trailing bytes after the rows"));
    }
    Ok(rows)
}

fn read_rows(r: &mut Reader<'_>) -> Result<Vec<Row>, CodecError> {
    let n_rows = r.count(4)?;
    let mut rows = Vec::with_capacity(n_rows);
    for _ in 0..n_rows {
        let n_cols = r.count(5)?;
        let mut columns = Vec::with_capacity(n_cols);
        for _ in 0..n_cols {
            let name = intern(r.str()?)?;
            columns.push((name, read_field(r, 0)?));
        }
        rows.push(Row { columns });
    }
    Ok(rows)
}

fn read_field(r: &mut Reader<'_>, depth: usize) -> Result<Field, CodecError> {
    if depth > MAX_DEPTH {
        return Err(CodecError::Malformed("nesting too deep"));
    }
    Ok(match r.u8()? {
        TAG_NULL => Field::Null,
        TAG_BOOL => match r.u8()? {
            0 => Field::Bool(false),
            1 => Field::Bool(true),
            _ => return Err(CodecError::Malformed("bool is neither 0 nor 1")),
        },
        TAG_INT => Field::Int(r.i64()?),
        TAG_BYTES => Field::Bytes(r.u64()?),
        TAG_TEXT => Field::Text(r.str()?.to_string()),
        TAG_TIME => {
            let secs = r.i64()?;
            let nanos = r.u32()?;
            Field::Time(
                DateTime::from_timestamp(secs, nanos)
                    .ok_or(CodecError::Malformed("time out of range"))?,
            )
        }
        TAG_LIST => {
            let n = r.count(1)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(read_field(r, depth + 1)?);
            }
            Field::List(items)
        }
        TAG_RECORD => {
            let n = r.count(5)?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                let name = r.str()?.to_string();
                pairs.push((name, read_field(r, depth + 1)?));
            }
            Field::Record(pairs)
        }
        _ => return Err(CodecError::Malformed("unknown field tag")),
    })
}

/// The distinct column names seen by the decoder.
static INTERNED: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Default::default);

/// Returns a `&'static str` equal to `name`.
///
/// Why: [`Row`] names its columns with `&'static str` (they are string literals in the code that
/// builds rows), so a decoded row needs static names too. Each distinct name is leaked once
/// (`Box::leak`) and reused afterwards. That is bounded because the set of column names is small
/// and fixed in practice (the literals of the listing code); only a crafted cache value could
/// bring new ones, and the interner refuses to grow past [`MAX_INTERNED_NAMES`], turning such a
/// value into a decode error rather than a leak.
fn intern(name: &str) -> Result<&'static str, CodecError> {
    let mut set = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = set.get(name) {
        return Ok(*existing);
    }
    if set.len() >= MAX_INTERNED_NAMES {
        return Err(CodecError::Malformed("too many distinct column names"));
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    set.insert(leaked);
    Ok(leaked)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::Utc;

    /// A listing that uses every kind of field, nested.
    pub(crate) fn every_field_kind() -> Vec<Row> {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_123, 456_789_000).unwrap();
        vec![
            Row::new()
                .with("null", Field::Null)
                .with("yes", Field::Bool(true))
                .with("no", Field::Bool(false))
                .with("int", Field::Int(-42))
                .with("int_max", Field::Int(i64::MAX))
                .with("size", Field::Bytes(u64::MAX))
                .with("text", Field::Text("héllo, wörld ✓".into()))
                .with("empty", Field::Text(String::new()))
                .with("time", Field::Time(t))
                .with(
                    "list",
                    Field::List(vec![
                        Field::Int(1),
                        Field::Text("two".into()),
                        Field::List(vec![]),
                    ]),
                )
                .with(
                    "record",
                    Field::Record(vec![
                        ("Name".into(), Field::Text("web-1".into())),
                        (
                            "nested".into(),
                            Field::Record(vec![("x".into(), Field::Null)]),
                        ),
                    ]),
                ),
            Row::new(),
            Row::new().with("text", Field::Text("second row".into())),
        ]
    }

    fn sample() -> Entry {
        Entry::new(
            "v1|aws|123456789012|arn:aws:iam::123456789012:user/u|us-east-1|https://ec2|ec2|DescribeInstances|{}",
            every_field_kind(),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            Duration::from_secs(300),
        )
    }

    #[test]
    fn round_trip_of_every_field_kind() {
        let entry = sample();
        let bytes = encode(&entry);
        let back = decode(&bytes, &entry.key).unwrap();
        assert_eq!(back, entry);
        // The names come back as the same interned strings.
        assert_eq!(back.rows[0].columns[0].0, "null");
    }

    #[test]
    fn round_trip_of_no_rows_and_pre_epoch_times() {
        let entry = Entry::new(
            "k",
            vec![],
            UNIX_EPOCH - Duration::from_millis(5_000),
            Duration::ZERO,
        );
        let back = decode(&encode(&entry), "k").unwrap();
        assert_eq!(back, entry);
    }

    #[test]
    fn every_corrupted_byte_is_an_error() {
        let entry = sample();
        let bytes = encode(&entry);
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                assert!(
                    decode(&bad, &entry.key).is_err(),
                    "flipping {flip:#x} at byte {i} of {} decoded",
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let entry = sample();
        let bytes = encode(&entry);
        for len in 0..bytes.len() {
            assert!(
                decode(&bytes[..len], &entry.key).is_err(),
                "truncated to {len} decoded"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, &entry.key).is_err());
    }

    #[test]
    fn wrong_key_is_an_error() {
        let entry = sample();
        let bytes = encode(&entry);
        assert_eq!(decode(&bytes, "another key"), Err(CodecError::KeyMismatch));
        let prefix = &entry.key[..entry.key.len() - 1];
        assert_eq!(decode(&bytes, prefix), Err(CodecError::KeyMismatch));
    }

    /// Rewrites `raw_len` and recomputes the checksum, as a crafted value would.
    fn with_declared_len(bytes: &[u8], raw_len: u32) -> Vec<u8> {
        let header = parse_header(bytes).unwrap();
        let off = header.checksum_offset;
        let mut out = bytes.to_vec();
        out[off - 4..off].copy_from_slice(&raw_len.to_le_bytes());
        let sum = checksum(&out[..off], &out[off + CHECKSUM_LEN..]);
        out[off..off + CHECKSUM_LEN].copy_from_slice(&sum);
        out
    }

    #[test]
    fn decompression_bomb_header_is_refused_before_decompressing() {
        let entry = sample();
        let bytes = encode(&entry);
        // Declared far over the cap, with a *valid* checksum: refused on the length alone.
        let bomb = with_declared_len(&bytes, u32::MAX);
        assert_eq!(
            decode(&bomb, &entry.key),
            Err(CodecError::TooLarge(u32::MAX.into()))
        );
        assert!(!encoded_is_storable(&bomb));
        // Declared under the cap but smaller than the real payload: output stops at the bound.
        let short = with_declared_len(&bytes, 3);
        assert_eq!(decode(&short, &entry.key), Err(CodecError::Decompress));
    }

    #[test]
    fn real_bomb_payload_is_cut_at_the_declared_length() {
        // 100 MB of zeros compress to a few KB; declared as 1 KB, decoding stops at 1 KB + 1.
        let mut compressed = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut compressed, 4096, 5, 22);
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..100 {
                w.write_all(&zeros).unwrap();
            }
        }
        assert!(compressed.len() < 1 << 20);
        assert_eq!(
            decompress_bounded(&compressed, 1024),
            Err(CodecError::Decompress)
        );
    }

    #[test]
    fn duration_max_ttl_is_clamped() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let entry = Entry::new("k", vec![], now, Duration::MAX);
        assert_eq!(entry.ttl(), MAX_TTL);
        assert_eq!(decode(&encode(&entry), "k").unwrap(), entry);
        // A hand-built entry with an absurd expiry still encodes (clamped to i64 millis).
        let far = Entry {
            expires_at: now + Duration::from_secs(u32::MAX as u64 * 100),
            ..entry
        };
        assert!(decode(&encode(&far), "k").is_ok());
    }

    #[test]
    fn malformed_rows_with_valid_checksum_are_errors_not_panics() {
        // Hand-made payloads under a valid header: deep nesting, lying counts, bad tags.
        let mut deep = Vec::new();
        write_len(&mut deep, 1);
        write_len(&mut deep, 1);
        write_str(&mut deep, "c");
        for _ in 0..1000 {
            deep.push(TAG_LIST);
            write_len(&mut deep, 1);
        }
        deep.push(TAG_NULL);
        let mut lying = Vec::new();
        write_len(&mut lying, u32::MAX as usize);
        let bad_tag = {
            let mut v = Vec::new();
            write_len(&mut v, 1);
            write_len(&mut v, 1);
            write_str(&mut v, "c");
            v.push(99);
            v
        };
        for raw in [deep, lying, bad_tag] {
            let bytes = encode_raw_payload("k", &raw);
            assert!(matches!(decode(&bytes, "k"), Err(CodecError::Malformed(_))));
        }
    }

    fn encode_raw_payload(key: &str, raw: &[u8]) -> Vec<u8> {
        seal(key, 0, 0, raw)
    }
}
