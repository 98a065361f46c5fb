//! An external sort of one side of a sync, for sides not listed in S3's key order (S3 Express
//! directory buckets list in no particular order, per AWS's ListObjectsV2 documentation; some
//! S3-compatible endpoints order differently): the entries are read in runs of at most
//! [`RUN`], each run sorted by key bytes and spilled to a temporary file, and the runs are merged
//! k-way as the sorted side is read. Memory is one run while reading and one entry per run while
//! merging, never the whole side.
//!
//! Not here: deciding when a side needs sorting (that is the plan's, in [`super::sync`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};
use std::path::PathBuf;

use chrono::DateTime;

use crate::s3::sync::{Entry, SideItem, escape, unescape};

/// Entries per sorted run.
pub const RUN: usize = 100_000;

/// Whether `bucket` is an S3 Express directory bucket (`name--zone-id--x-s3`), whose listings
/// are not in key order.
pub fn is_directory_bucket(bucket: &str) -> bool {
    bucket.ends_with("--x-s3")
}

fn field(value: Option<&str>) -> String {
    value.map_or_else(String::new, |v| format!("={}", escape(v)))
}

fn unfield(text: &str) -> Option<String> {
    text.strip_prefix('=').map(unescape)
}

/// One entry as one line: tab-separated fields, text escaped (no tab or newline left in it).
pub(crate) fn encode(entry: &Entry) -> String {
    let modified = entry.modified.map(|t| format!("{}.{}", t.timestamp(), t.timestamp_subsec_nanos()));
    let path = entry.path.as_ref().map(|p| p.to_string_lossy().into_owned());
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\n",
        escape(&entry.key),
        entry.size,
        field(modified.as_deref()),
        field(entry.etag.as_deref()),
        field(entry.checksum.as_deref()),
        field(path.as_deref()),
    )
}

pub(crate) fn decode(line: &str) -> Option<Entry> {
    let mut fields = line.split('\t');
    let key = unescape(fields.next()?);
    let size = fields.next()?.parse().ok()?;
    let modified = unfield(fields.next()?).and_then(|t| {
        let (secs, nanos) = t.split_once('.')?;
        DateTime::from_timestamp(secs.parse().ok()?, nanos.parse().ok()?)
    });
    let etag = unfield(fields.next()?);
    let checksum = unfield(fields.next()?);
    let path = unfield(fields.next()?).map(PathBuf::from);
    Some(Entry {
        key,
        size,
        modified,
        etag,
        checksum,
        path,
    })
}

/// One spilled run, read back a line at a time.
struct RunReader {
    lines: std::io::Lines<BufReader<std::fs::File>>,
}

impl RunReader {
    fn next(&mut self) -> Option<Result<Entry, String>> {
        let line = match self.lines.next()? {
            Ok(line) => line,
            Err(e) => return Some(Err(format!("reading back the sorted listing: {e}"))),
        };
        Some(decode(&line).ok_or_else(|| "reading back the sorted listing: a damaged line".to_string()))
    }
}

/// A side sorted by key: what is no entry first (skips, errors), then the entries in order.
pub struct Sorted {
    others: std::vec::IntoIter<SideItem>,
    runs: Vec<RunReader>,
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
    heads: Vec<Option<Entry>>,
    failed: bool,
}

fn spill(run: &mut Vec<Entry>) -> std::io::Result<RunReader> {
    run.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
    let mut file = BufWriter::new(tempfile::tempfile()?);
    for entry in run.drain(..) {
        file.write_all(encode(&entry).as_bytes())?;
    }
    let mut file = file.into_inner().map_err(|e| e.into_error())?;
    file.seek(std::io::SeekFrom::Start(0))?;
    Ok(RunReader { lines: BufReader::new(file).lines() })
}

/// Reads `items` to their end and sorts their entries on disk in runs of `run_len`.
pub fn sort_side(items: impl Iterator<Item = SideItem>, run_len: usize) -> std::io::Result<Sorted> {
    let run_len = run_len.max(1);
    let mut others = Vec::new();
    let mut runs = Vec::new();
    let mut run = Vec::with_capacity(run_len.min(RUN));
    for item in items {
        match item {
            SideItem::Entry(entry) => {
                run.push(entry);
                if run.len() >= run_len {
                    runs.push(spill(&mut run)?);
                }
            }
            other => others.push(other),
        }
    }
    if !run.is_empty() {
        runs.push(spill(&mut run)?);
    }
    let mut sorted = Sorted {
        others: others.into_iter(),
        heads: (0..runs.len()).map(|_| None).collect(),
        runs,
        heap: BinaryHeap::new(),
        failed: false,
    };
    for i in 0..sorted.runs.len() {
        if let Some(error) = sorted.refill(i) {
            sorted.others = vec![error].into_iter().chain(std::mem::take(&mut sorted.others)).collect::<Vec<_>>().into_iter();
        }
    }
    Ok(sorted)
}

impl Sorted {
    /// Reads run `i`'s next entry into the heap; an error item if the run cannot be read.
    fn refill(&mut self, i: usize) -> Option<SideItem> {
        match self.runs[i].next()? {
            Ok(entry) => {
                self.heap.push(Reverse((entry.key.as_bytes().to_vec(), i)));
                self.heads[i] = Some(entry);
                None
            }
            Err(error) => {
                self.failed = true;
                Some(SideItem::Failed { key: String::new(), error })
            }
        }
    }
}

impl Iterator for Sorted {
    type Item = SideItem;

    fn next(&mut self) -> Option<SideItem> {
        if let Some(other) = self.others.next() {
            return Some(other);
        }
        if self.failed {
            return None;
        }
        let Reverse((_, i)) = self.heap.pop()?;
        let entry = self.heads[i].take()?;
        if let Some(error) = self.refill(i) {
            self.heap.clear();
            return Some(error);
        }
        Some(SideItem::Entry(entry))
    }
}

/// A side sorted when it is first read (so that building it costs nothing): a side that cannot
/// be spilled to disk is one error item.
pub struct LazySorted {
    items: Option<Box<dyn Iterator<Item = SideItem> + Send>>,
    sorted: Option<Sorted>,
}

impl LazySorted {
    pub fn new(items: Box<dyn Iterator<Item = SideItem> + Send>) -> Self {
        Self { items: Some(items), sorted: None }
    }
}

impl Iterator for LazySorted {
    type Item = SideItem;

    fn next(&mut self) -> Option<SideItem> {
        if let Some(items) = self.items.take() {
            match sort_side(items, RUN) {
                Ok(sorted) => self.sorted = Some(sorted),
                Err(e) => {
                    return Some(SideItem::Failed {
                        key: String::new(),
                        error: format!("cannot sort the listing on disk: {e}"),
                    });
                }
            }
        }
        self.sorted.as_mut()?.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, size: u64) -> Entry {
        Entry {
            key: key.into(),
            size,
            modified: DateTime::from_timestamp(1_700_000_000, 123_456_789),
            etag: Some("e\tt\\ag".into()),
            checksum: Some("CRC64NVME".into()),
            path: None,
        }
    }

    fn keys(sorted: Sorted) -> Vec<String> {
        sorted
            .map(|item| match item {
                SideItem::Entry(e) => e.key,
                SideItem::Skipped { key, .. } => format!("skipped {key}"),
                SideItem::Failed { error, .. } => format!("failed {error}"),
            })
            .collect()
    }

    #[test]
    fn runs_spilled_to_disk_merge_into_key_byte_order() {
        // A pseudo-random permutation of 1000 keys, runs of 7: 143 runs merged.
        let mut input: Vec<String> = (0..1000u32).map(|i| format!("k/{:04}", (i * 7919) % 1000)).collect();
        input.push("k-b".into());
        input.push("k0".into());
        input.push("ü".into());
        input.push("a\tb\nc".into());
        let items = input.iter().map(|k| SideItem::Entry(entry(k, 1)));
        let got = keys(sort_side(items, 7).unwrap());
        let mut wanted = input.clone();
        wanted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(got, wanted);
        assert_eq!(&got[..3], ["a\tb\nc", "k-b", "k/0000"], "- (0x2D) before / (0x2F)");
    }

    #[test]
    fn entries_come_back_whole_and_other_items_first() {
        let mut with_path = entry("x y", 42);
        with_path.path = Some(PathBuf::from("/tmp/x y"));
        with_path.modified = None;
        let items = vec![
            SideItem::Entry(entry("b", 7)),
            SideItem::Failed { key: "p/".into(), error: "boom".into() },
            SideItem::Entry(with_path.clone()),
        ];
        let mut sorted = sort_side(items.into_iter(), 1).unwrap();
        assert!(matches!(sorted.next(), Some(SideItem::Failed { .. })));
        assert_eq!(sorted.next().map(|i| if let SideItem::Entry(e) = i { e } else { panic!() }), Some(entry("b", 7)));
        assert_eq!(sorted.next().map(|i| if let SideItem::Entry(e) = i { e } else { panic!() }), Some(with_path));
        assert!(sorted.next().is_none());
        assert!(is_directory_bucket("logs--usw2-az1--x-s3") && !is_directory_bucket("logs"));
    }
}
