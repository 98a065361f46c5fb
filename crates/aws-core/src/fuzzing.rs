//! The entry points of the fuzz targets in `fuzz/` (one function per target, taking the raw
//! input bytes), so that the targets and the tests that replay their corpora
//! (`tests/fuzz_corpus.rs`) call the very same code: each parses what a user, a disk or an
//! endpoint hands in, through the real parser, and panics when a property of the answer fails
//! (a round trip that does not come back, an error span outside the input, a region name that
//! could change a host name).
//!
//! Not for: anything but fuzzing. Hidden from the docs; nothing in nuaws calls it.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use chrono::DateTime;

use crate::cache::codec::{self, Entry};
use crate::cache::hashes::{self, Stamp};
use crate::metrics::history;
use crate::row::{Field, Row};
use crate::s3::S3Url;
use crate::s3::sort;
use crate::s3::sync::{Entry as SideEntry, SideItem};

/// Runs every file of the corpus of `target` under `corpus` (`fuzz/corpus`) through `entry`,
/// for the tests that replay the corpora on the stable toolchain. A corpus of fewer than 10
/// files means the directory moved or was emptied, which must not pass silently.
pub fn replay(corpus: &Path, target: &str, entry: fn(&[u8])) {
    let dir = corpus.join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{}: only {} inputs", dir.display(), files.len());
    for file in &files {
        let input = std::fs::read(file).expect("a corpus file");
        // Named before it runs: a failure's output ends with the input that caused it.
        eprintln!("{target}: {}", file.display());
        entry(&input);
    }
}

/// Reads fuzz input as a sequence of small choices; past its end every choice is zero. The
/// fuzz entry points of `nu-cmd-aws` build Nushell values with it.
pub struct Choices<'a> {
    pub data: &'a [u8],
}

impl<'a> Choices<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn byte(&mut self) -> u8 {
        let (first, rest) = self.data.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.data = rest;
        first
    }

    pub fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |n, _| (n << 8) | u64::from(self.byte()))
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Up to `max` bytes, as text (lossy: inputs of Nushell strings are always UTF-8).
    pub fn text(&mut self, max: usize) -> String {
        let n = usize::from(self.byte()) % (max + 1);
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        String::from_utf8_lossy(taken).into_owned()
    }

    /// One of `words`, or (for a choice past them) free text.
    pub fn word(&mut self, words: &[&str], max: usize) -> String {
        let i = usize::from(self.byte());
        match words.get(i % (words.len() + 1)) {
            Some(w) => (*w).to_string(),
            None => self.text(max),
        }
    }
}

/// `aws s3` URLs and bucket names as typed: a URL that parses prints back and parses to the
/// same URL with a valid bucket name; a refusal points within the input, on character
/// boundaries (the shell underlines exactly that part of the argument).
pub fn s3_url(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match S3Url::parse(input) {
        Ok(url) => {
            let printed = url.to_string();
            assert_eq!(S3Url::parse(&printed).as_ref(), Ok(&url), "{printed} parses back");
            assert!(crate::s3::url::validate_bucket_name(&url.bucket).is_ok());
            assert!((3..=63).contains(&url.bucket.len()));
        }
        Err(err) => {
            let end = err.offset + err.len;
            assert!(end <= input.len(), "span {}..{end} outside {input:?}", err.offset);
            assert!(input.is_char_boundary(err.offset) && input.is_char_boundary(end));
            assert!(err.len >= 1 || input.is_empty(), "an empty span for {input:?}");
        }
    }
}

/// Decoded rows must encode to exactly the bytes they came from: the row format has one
/// spelling per value, so anything else is a decoder that read what was not written.
fn assert_rows_canonical(raw: &[u8], rows: &[Row]) {
    let mut again = Vec::new();
    codec::write_rows(&mut again, rows);
    assert_eq!(again, raw, "rows re-encode to other bytes");
}

/// A disk cache value as LMDB hands it back, damaged or hostile. The first byte chooses how
/// the rest is used: as the whole stored value, or as the decompressed rows sealed under a
/// valid header and checksum (so mutations reach the row decoder). Whatever decodes encodes
/// and decodes back to the same entry.
pub fn cache_entry(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let decoded = if mode % 2 == 0 {
        let Ok(header) = codec::parse_header(rest) else {
            return;
        };
        let key = header.key.to_string();
        assert!(codec::decode(rest, &format!("{key}!")).is_err(), "another key is refused");
        codec::decode(rest, &key)
    } else {
        let mut c = Choices { data: rest };
        let (created, expires) = (c.u64() as i64, c.u64() as i64);
        let raw = c.data;
        let sealed = codec::seal("k", created, expires, raw);
        let decoded = codec::decode(&sealed, "k");
        if let Ok(entry) = &decoded {
            assert_rows_canonical(raw, &entry.rows);
        }
        decoded
    };
    if let Ok(entry) = decoded {
        let again = codec::decode(&codec::encode(&entry), &entry.key).expect("an encoded entry decodes");
        assert_eq!(again, entry);
        let _ = entry.ttl();
    }
}

/// The rows of records the disk cache keeps for nuaws itself, decoded from bytes as the codec
/// decodes them: a hash cache entry (`aws s3 sync --checksum`) and an hour of the metrics
/// history. Decoding never panics, arithmetic on what was decoded neither, and a history once
/// stored reads back to the same figures.
pub fn disk_records(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (key, raw) = rest.split_at((usize::from(split) % 32).min(rest.len()));
    let key = String::from_utf8_lossy(key);
    if let Some(hour) = history::hour_of(&key) {
        assert_eq!(history::hour_of(&history::hour_key(hour)), Some(hour), "{key}");
    }
    let Ok(rows) = codec::decode_rows(raw) else {
        return;
    };
    assert_rows_canonical(raw, &rows);

    // A hash entry, checked against the stamp and path it records (so that it is used).
    if let Some(row) = rows.first() {
        let int = |c: &str| match row.get(c) {
            Some(Field::Int(n)) => *n,
            Some(Field::Bytes(n)) => *n as i64,
            _ => 0,
        };
        let stamp = Stamp {
            size: int("size") as u64,
            mtime_ns: int("mtime_ns"),
            inode: int("inode") as u64,
            device: int("device") as u64,
        };
        let path = PathBuf::from(row.get("path").and_then(Field::as_str).unwrap_or_default());
        let entry = Entry::new("k", rows.clone(), UNIX_EPOCH, Duration::ZERO);
        if let Some(found) = hashes::decode(&entry, &path, stamp) {
            let stored = Entry::new("k", vec![hashes::encode(&path, stamp, &found)], UNIX_EPOCH, Duration::ZERO);
            assert_eq!(hashes::decode(&stored, &path, stamp), Some(found));
        }
    }

    let figures = history::decode_rows(&rows);
    for f in figures.values() {
        let _ = (f.lookups(), f.hit_rate(), f.latency.quantile(0.95), f.latency.max(), f.latency.min());
        let mut doubled = f.clone();
        doubled.merge(f);
        let _ = (doubled.lookups(), doubled.hit_rate(), doubled.latency.minus(&f.latency));
    }
    // Stored once, figures come back the same from then on. Not the first time: counts past
    // i64::MAX, which only a damaged record holds, are stored saturated (found by this target).
    let stored = history::decode_rows(&history::encode_rows(&figures));
    let again = history::decode_rows(&history::encode_rows(&stored));
    assert_eq!(again, stored, "a stored history reads back to itself");
}

fn side_entry(c: &mut Choices<'_>) -> SideEntry {
    const WORDS: &[&str] = &["a", "a/b", "\\", "\t", "\n", "=", "\\n", "ü", "a\\tb", ""];
    let modified = if c.byte() % 2 == 0 {
        None
    } else {
        DateTime::from_timestamp(c.u64() as i64 % 100_000_000_000, (c.u64() % 2_000_000_000) as u32)
    };
    let optional = |c: &mut Choices<'_>| (c.byte() % 2 == 1).then(|| c.word(WORDS, 12));
    SideEntry {
        key: c.word(WORDS, 16),
        size: c.u64(),
        modified,
        etag: optional(c),
        checksum: optional(c),
        path: optional(c).map(PathBuf::from),
    }
}

/// The run files of the on-disk sort of a sync side: a line read back (damaged or not) never
/// panics, and what decodes encodes back to the same entry; entries made from the input are
/// spilled to real run files and merged back whole and in key byte order.
pub fn sort_runs(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let line = String::from_utf8_lossy(rest);
        let line = line.lines().next().unwrap_or_default();
        if let Some(entry) = sort::decode(line) {
            let encoded = sort::encode(&entry);
            assert_eq!(sort::decode(encoded.trim_end_matches('\n')).as_ref(), Some(&entry));
        }
        return;
    }
    let mut c = Choices { data: rest };
    let run_len = usize::from(c.byte() % 4) + 1;
    let mut entries = Vec::new();
    while !c.is_empty() && entries.len() < 64 {
        let entry = side_entry(&mut c);
        let line = sort::encode(&entry);
        assert_eq!(line.matches('\n').count(), 1, "one line per entry: {line:?}");
        assert_eq!(sort::decode(line.trim_end_matches('\n')).as_ref(), Some(&entry), "{line:?}");
        entries.push(entry);
    }
    let Ok(sorted) = sort::sort_side(entries.clone().into_iter().map(SideItem::Entry), run_len) else {
        return; // No temporary directory here: the side is one error item, tested elsewhere.
    };
    let back: Vec<SideEntry> = sorted
        .map(|item| match item {
            SideItem::Entry(e) => e,
            other => panic!("an entry spilled to disk came back as {other:?}"),
        })
        .collect();
    assert!(back.windows(2).all(|w| w[0].key.as_bytes() <= w[1].key.as_bytes()), "in key order");
    let by_debug = |mut v: Vec<SideEntry>| {
        v.sort_by_cached_key(|e| format!("{e:?}"));
        v
    };
    assert_eq!(by_debug(back), by_debug(entries), "every entry comes back whole");
}

/// Whether a region named by an endpoint can only be a region: it goes into host names and
/// into the disk cache. Written out here, not taken from `error.rs`, so the target checks the
/// parser against the rule rather than against itself.
fn is_region_shaped(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The answer of a hostile S3 endpoint that says the bucket is elsewhere (a redirect or a
/// refusal: status, `x-amz-bucket-region`, error code and XML body): nuaws reads a region from
/// it itself, and whatever it reads is shaped like a region name.
pub fn s3_redirect(data: &[u8]) {
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    const STATUSES: &[u16] = &[200, 301, 307, 400, 403, 404, 500];
    const CODES: &[&str] = &[
        "AuthorizationHeaderMalformed",
        "IllegalLocationConstraintException",
        "PermanentRedirect",
        "TemporaryRedirect",
        "NoSuchBucket",
    ];
    let mut c = Choices { data };
    let choice = c.byte();
    let status = STATUSES[usize::from(choice) % STATUSES.len()];
    let code = (choice / 8 % 2 == 0).then(|| c.word(CODES, 24));
    let header = (choice / 16 % 2 == 0).then(|| c.text(40));
    let body = c.data.to_vec();
    let Ok(status) = StatusCode::try_from(status) else {
        return;
    };
    let mut response = Response::new(status, SdkBody::from(body));
    if let Some(header) = header {
        // A value HTTP could not carry never reaches the SDK.
        if response.headers_mut().try_insert("x-amz-bucket-region", header).is_err() {
            return;
        }
    }
    if let Some(wrong) = crate::error::WrongRegion::of(&response, code.as_deref())
        && let Some(region) = wrong.region
    {
        assert!(is_region_shaped(&region), "{region:?} taken for a region");
    }
}

/// The answer of a hostile S3 endpoint to ListObjectsV2, which nuaws reads with its own parser
/// (`s3::list_xml`) in place of the SDK's: the first byte chooses how many
/// `x-amz-request-charged` values it carries (0 to 2, taken from the input), the rest is the
/// body. Nothing panics, and an answer the hand parser takes is one the SDK's own deserializer
/// reads to the very same output (the request ids, the one thing only the SDK sets, come from
/// headers this answer does not have; see `list_xml::read_by_hand`).
pub fn s3_list_xml(data: &[u8]) {
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use crate::s3::list_xml;

    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut c = Choices::new(rest);
    let charged: Vec<String> = (0..mode % 3).map(|_| c.text(24)).collect();
    let Ok(ok) = StatusCode::try_from(200) else {
        unreachable!("200 is a status")
    };
    let mut response = HttpResponse::new(ok, SdkBody::from(c.data));
    for value in charged {
        // A value HTTP could not carry never reaches the SDK.
        if response.headers_mut().try_append("x-amz-request-charged", value).is_err() {
            return;
        }
    }
    if let Some(hand) = list_xml::read_by_hand(&response) {
        let sdk = list_xml::read_by_sdk(&response);
        assert_eq!(sdk.as_ref(), Ok(&hand), "the hand parser took what the SDK reads otherwise");
    }
}

/// A value read from the shared tier (Redis), which the team shares and so may be forged or
/// damaged: opening it never panics, whatever its header claims; a value sealed here opens to
/// the entry sealed, and the same value with any one byte changed does not open.
pub fn shared_entry(data: &[u8]) {
    use crate::cache::TeamKey;
    use crate::cache::shared::Sealer;

    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(key) = TeamKey::new(&[7u8; 32]) else {
        unreachable!("32 bytes make a team key")
    };
    let sealer = Sealer::new(&key);
    let now = UNIX_EPOCH + Duration::from_secs(1_000);
    let cache_key = "123456789012/eu-west-1/s3/ListObjectsV2/b#0123abcd";
    if mode % 2 == 0 {
        let _ = sealer.open(rest, cache_key, "g1", now);
        return;
    }
    let mut c = Choices::new(rest);
    let flip = (usize::from(c.byte()) << 8) | usize::from(c.byte());
    let rows = codec::decode_rows(c.data).unwrap_or_default();
    let entry = Entry::new(cache_key, rows, now, Duration::from_secs(60));
    let mut sealed = sealer.seal(&entry, "g1");
    assert_eq!(sealer.open(&sealed, cache_key, "g1", now).as_ref(), Ok(&entry));
    let at = flip % sealed.len();
    sealed[at] ^= 1 + (flip >> 8) as u8 % 255;
    assert!(sealer.open(&sealed, cache_key, "g1", now).is_err(), "a changed byte {at} is noticed");
}
