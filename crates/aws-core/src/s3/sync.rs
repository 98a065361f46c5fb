//! The planner of `aws s3 sync`: a streaming merge-join of two listings (a local walk or an S3
//! listing on each side) in S3's key order, turning each key into a [`Step`]: upload, download,
//! copy, delete or skip, with the reason. Also the content comparison of `--checksum` (MD5s
//! against single-part ETags, S3's full-object CRC64NVME, multipart ETags recomputed with the
//! object's part size; local digests through the hash cache) and the on-disk [`DeleteSpool`]
//! where deletions wait until every transfer has succeeded.
//!
//! Memory: one entry of each side, plus what the listings themselves hold (two pages; the
//! directories on the current path). Neither listing is ever collected. Each side's order is
//! verified as it streams: a side found out of order (an odd endpoint) is listed again through
//! an external sort on disk ([`super::sort`]) and the plan starts again ([`Plan::relisting`]);
//! S3 Express directory buckets, unordered by design, are sorted from the start. A plan that
//! cannot list again ends with a failed step, which also forbids any deletion.
//!
//! Not here: running the transfers (the command hands steps to the request engine) or showing
//! them.

use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::cache::hashes::{FileDigests, HashCache};
use crate::error::{AwsError, ErrorKind};
use crate::pagination::{Next, PageStream};
use crate::s3::list::Listed;
use crate::s3::route::BucketRouter;
use crate::s3::url::S3Url;
use crate::s3::walk::{LocalWalk, Walked};

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Upload,
    Download,
    Copy,
    Delete,
    Skip,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Upload => "upload",
            Action::Download => "download",
            Action::Copy => "copy",
            Action::Delete => "delete",
            Action::Skip => "skip",
        }
    }
}

/// Which way a sync goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
    Copy,
}

impl Direction {
    fn action(self) -> Action {
        match self {
            Direction::Upload => Action::Upload,
            Direction::Download => Action::Download,
            Direction::Copy => Action::Copy,
        }
    }
}

/// When a key present on both sides is transferred again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rule {
    /// Sizes differ, or the source is newer (whole seconds: S3 keeps no more).
    #[default]
    Default,
    /// Sizes differ.
    SizeOnly,
    /// Sizes differ, or (downloads) the times differ at all; elsewhere as the default.
    ExactTimestamps,
    /// Sizes differ, or the contents do (see [`compare_content`]).
    Checksum,
}

/// One key of one side.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Relative to the side's root (directory or prefix).
    pub key: String,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
    pub etag: Option<String>,
    /// The algorithm of the additional checksum S3 keeps, on an S3 side (`CRC64NVME`, ...).
    pub checksum: Option<String>,
    /// The file, on a local side.
    pub path: Option<PathBuf>,
}

/// What a side yields.
#[derive(Debug)]
pub enum SideItem {
    Entry(Entry),
    /// Cannot take part (a name that is not UTF-8, a link not followed): a skip row.
    Skipped { key: String, reason: String },
    /// The side could not be read here: an error row, and no deletions.
    Failed { key: String, error: String },
}

/// A side of a sync.
#[derive(Clone, Debug)]
pub enum Place {
    Local(PathBuf),
    /// The prefix, empty or ending in `/`.
    S3(S3Url),
}

/// How long one wait for a listing page lasts before the interrupt is checked again.
const POLL: Duration = Duration::from_millis(50);

/// The keys of a side, in order as listed. A missing local directory is an empty side.
pub fn side_items(
    session: &Arc<crate::session::Session>,
    place: &Place,
    follow_symlinks: bool,
    interrupted: Arc<dyn Fn() -> bool + Send + Sync>,
) -> Box<dyn Iterator<Item = SideItem> + Send> {
    match place {
        Place::Local(root) if !root.exists() => Box::new(std::iter::empty()),
        // Downloads in progress (see `transfer`) are no keys of the destination.
        Place::Local(root) => Box::new(LocalWalk::new(root, follow_symlinks).filter(|w| !is_partial(w)).map(|walked| match walked {
            Walked::File(f) => SideItem::Entry(Entry {
                key: f.key,
                size: f.size,
                modified: f.modified,
                etag: None,
                checksum: None,
                path: Some(f.path),
            }),
            Walked::Skipped { key, reason } => SideItem::Skipped { key, reason },
            Walked::Error { key, error } => SideItem::Failed { key, error: error.to_string() },
        })),
        Place::S3(url) => {
            let listing = Box::new(Listing {
                stream: Some(crate::s3::list::list_listed(session, crate::s3::list::ListObjects::new(url.clone(), true))),
                prefix: url.key.clone(),
                interrupted,
            });
            // Directory buckets list in no order: sorted on disk before the merge reads them.
            if crate::s3::sort::is_directory_bucket(&url.bucket) {
                Box::new(crate::s3::sort::LazySorted::new(listing))
            } else {
                listing
            }
        }
    }
}

fn is_partial(walked: &Walked) -> bool {
    let Walked::File(file) = walked else { return false };
    let name = file.key.rsplit('/').next().unwrap_or(&file.key);
    name.starts_with('.') && name.contains(".nuaws-partial-")
}

/// An S3 listing as a side: keys made relative to the prefix.
struct Listing {
    stream: Option<PageStream<Listed>>,
    prefix: String,
    interrupted: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl Iterator for Listing {
    type Item = SideItem;

    fn next(&mut self) -> Option<SideItem> {
        loop {
            let next = self.stream.as_mut()?.next_timeout(POLL);
            match next {
                Next::Item(o) => {
                    let key = o.key.strip_prefix(self.prefix.as_str()).unwrap_or(&o.key).to_string();
                    return Some(SideItem::Entry(Entry {
                        key,
                        size: o.size,
                        modified: o.modified,
                        etag: o.etag,
                        checksum: o.checksum_algorithm,
                        path: None,
                    }));
                }
                Next::Error(err) => {
                    self.stream = None;
                    return Some(SideItem::Failed { key: self.prefix.clone(), error: err.to_string() });
                }
                Next::End => {
                    self.stream = None;
                    return None;
                }
                Next::Pending if (self.interrupted)() => {
                    self.stream = None;
                    return Some(SideItem::Failed { key: self.prefix.clone(), error: "interrupted".into() });
                }
                Next::Pending => {}
            }
        }
    }
}

/// `--exclude` / `--include` globs, matched against the relative key (`*` also matches `/`).
/// Precedence: an `--include` match always wins; otherwise an `--exclude` match leaves the key
/// out; with only `--include` patterns, only the keys they match take part.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    include: Vec<glob::Pattern>,
    exclude: Vec<glob::Pattern>,
}

const MATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

impl Filters {
    /// Compiles the patterns; the error names the pattern that is not a glob.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, (String, String)> {
        let compile = |patterns: &[String]| {
            patterns
                .iter()
                .map(|p| glob::Pattern::new(p).map_err(|e| (p.clone(), e.to_string())))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            include: compile(include)?,
            exclude: compile(exclude)?,
        })
    }

    pub fn wants(&self, key: &str) -> bool {
        if self.include.iter().any(|p| p.matches_with(key, MATCH)) {
            return true;
        }
        if !self.exclude.is_empty() {
            return !self.exclude.iter().any(|p| p.matches_with(key, MATCH));
        }
        self.include.is_empty()
    }
}

/// What to do with one key.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub action: Action,
    pub key: String,
    /// `new`, `size`, `newer`, `time`, `checksum`, `unverifiable: ...` for transfers; `unchanged`,
    /// `same size`, `same time`, `same checksum`, `marker`, ... for skips; `not in source` for
    /// deletions.
    pub reason: String,
    pub size: Option<u64>,
    pub source: Option<Entry>,
    pub dest: Option<Entry>,
    /// Why this key failed (a side that could not be read or is out of order).
    pub error: Option<String>,
    /// The transfer waits on [`compare_content`] (`--checksum`, sizes equal).
    pub compare_content: bool,
}

impl Step {
    fn new(action: Action, key: String, reason: impl Into<String>, size: Option<u64>) -> Self {
        Self {
            action,
            key,
            reason: reason.into(),
            size,
            source: None,
            dest: None,
            error: None,
            compare_content: false,
        }
    }

    fn failed(key: String, error: String) -> Self {
        Self {
            error: Some(error),
            ..Step::new(Action::Skip, key, "failed", None)
        }
    }
}

/// The verdict of the change rule on a key both sides have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Transfer(&'static str),
    Same(&'static str),
    /// Equal sizes under `--checksum`: the contents decide.
    Content,
}

/// The change rule on a key both sides have.
pub fn verdict(rule: Rule, direction: Direction, source: &Entry, dest: &Entry) -> Verdict {
    if source.size != dest.size {
        return Verdict::Transfer("size");
    }
    let secs = |e: &Entry| e.modified.map(|t| t.timestamp());
    match rule {
        Rule::SizeOnly => Verdict::Same("same size"),
        Rule::Checksum => Verdict::Content,
        Rule::ExactTimestamps if direction == Direction::Download => {
            if secs(source) == secs(dest) && secs(source).is_some() {
                Verdict::Same("same time")
            } else {
                Verdict::Transfer("time")
            }
        }
        Rule::Default | Rule::ExactTimestamps => match (secs(source), secs(dest)) {
            (Some(s), Some(d)) if s <= d => Verdict::Same("unchanged"),
            _ => Verdict::Transfer("newer"),
        },
    }
}

/// A key that cannot be a relative local path (`a//b`, `..`, `./x`, a leading `/`), and why.
pub fn not_a_local_path(key: &str) -> Option<&'static str> {
    if key.is_empty() || key.starts_with('/') {
        return Some("not a local path: it starts with /");
    }
    for segment in key.split('/') {
        match segment {
            "" => return Some("not a local path: an empty segment (//)"),
            "." | ".." => return Some("not a local path: a . or .. segment"),
            _ => {}
        }
    }
    if key.contains('\0') {
        return Some("not a local path: a NUL character");
    }
    None
}

/// Lists a side again from its start, for a plan that restarts with a side sorted.
pub type Relist = Box<dyn FnMut() -> Box<dyn Iterator<Item = SideItem> + Send> + Send>;

/// One side, its order verified as it streams.
struct Ordered {
    items: Box<dyn Iterator<Item = SideItem> + Send>,
    name: &'static str,
    last: Option<String>,
    peeked: Option<Entry>,
    relist: Option<Relist>,
    /// Listed again through an external sort, after it was found out of order.
    sorted: bool,
}

/// What an [`Ordered`] side offers next.
enum Head {
    Entry,
    Other(SideItem),
    /// The side broke S3's order: the plan must end here.
    OutOfOrder { key: String, error: String },
    End,
}

impl Ordered {
    fn new(items: Box<dyn Iterator<Item = SideItem> + Send>, name: &'static str) -> Self {
        Self {
            items,
            name,
            last: None,
            peeked: None,
            relist: None,
            sorted: false,
        }
    }

    /// Starts the side again from its beginning, through an external sort if it is `sorted`.
    fn relist(&mut self) -> bool {
        let Some(relist) = self.relist.as_mut() else { return false };
        let items = relist();
        self.items = if self.sorted { Box::new(crate::s3::sort::LazySorted::new(items)) } else { items };
        self.last = None;
        self.peeked = None;
        true
    }

    /// Fills `peeked` with the next entry the filters want, or hands out what is not an entry.
    fn head(&mut self, filters: &Filters) -> Head {
        while self.peeked.is_none() {
            match self.items.next() {
                None => return Head::End,
                Some(SideItem::Entry(entry)) => {
                    if let Some(last) = &self.last
                        && entry.key.as_bytes() <= last.as_bytes()
                    {
                        let error = format!(
                            "the {} is not listed in S3 key order: `{}` came after `{last}`; nothing is deleted",
                            self.name, entry.key
                        );
                        return Head::OutOfOrder { key: entry.key, error };
                    }
                    self.last = Some(entry.key.clone());
                    if filters.wants(&entry.key) {
                        self.peeked = Some(entry);
                    }
                }
                Some(SideItem::Skipped { key, reason }) if filters.wants(&key) => return Head::Other(SideItem::Skipped { key, reason }),
                Some(SideItem::Skipped { .. }) => {}
                Some(failed @ SideItem::Failed { .. }) => return Head::Other(failed),
            }
        }
        Head::Entry
    }
}

/// The plan options.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    pub rule: Rule,
    pub delete: bool,
    pub filters: Filters,
}

/// The merge-join: an iterator of [`Step`]s, in key order.
pub struct Plan {
    source: Ordered,
    dest: Ordered,
    direction: Direction,
    options: PlanOptions,
    /// A side failed out of order: the plan ends after saying so.
    stopped: bool,
    /// Source keys the filters let through, so far.
    seen: Arc<std::sync::atomic::AtomicU64>,
    /// Times the plan started again with a side sorted on disk.
    restarts: Arc<std::sync::atomic::AtomicU64>,
    /// The greatest key a step was given for.
    emitted: Option<String>,
    /// After a restart: the greatest key given before it (its skips are not given again).
    replayed: Option<String>,
}

impl Plan {
    pub fn new(
        source: Box<dyn Iterator<Item = SideItem> + Send>,
        dest: Box<dyn Iterator<Item = SideItem> + Send>,
        direction: Direction,
        options: PlanOptions,
    ) -> Self {
        Self {
            source: Ordered::new(source, "source"),
            dest: Ordered::new(dest, "destination"),
            direction,
            options,
            stopped: false,
            seen: Arc::default(),
            restarts: Arc::default(),
            emitted: None,
            replayed: None,
        }
    }

    /// Lets the plan list each side again, so that a side found out of S3's key order (an
    /// S3 Express directory bucket, an odd endpoint) is sorted on disk and the plan starts again,
    /// instead of ending there. Without this, a side out of order ends the plan with an error.
    ///
    /// On such a restart, deletions noted so far are void (see [`Plan::restarts`]); transfers
    /// already made stand, and both sides are listed afresh, so the destination shows them.
    /// Skips of keys before the point reached are not given again; a transfer still in flight
    /// may be planned (and made) twice.
    pub fn relisting(mut self, source: Relist, dest: Relist) -> Self {
        self.source.relist = Some(source);
        self.dest.relist = Some(dest);
        self
    }

    /// How many times the plan has started again with a side sorted: deletions noted before the
    /// latest restart must be forgotten (the plan gives them again if they still hold).
    pub fn restarts(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.restarts.clone()
    }

    /// A side is out of order: start again with it sorted, or end with `error`.
    fn out_of_order(&mut self, source_side: bool, key: String, error: String) -> Option<Step> {
        let sorted = if source_side { self.source.sorted } else { self.dest.sorted };
        let can = !sorted && self.source.relist.is_some() && self.dest.relist.is_some();
        if !can {
            self.stopped = true;
            return Some(Step::failed(key, error));
        }
        let side = if source_side { &mut self.source } else { &mut self.dest };
        side.sorted = true;
        log::debug!("sync: the {} is not in key order; listing it again, sorted on disk", side.name);
        self.source.relist();
        self.dest.relist();
        self.replayed = self.emitted.clone().max(self.replayed.take());
        self.restarts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        None
    }

    /// Whether `step` is to be given: not a skip already given before a restart.
    fn gives(&mut self, step: &Step) -> bool {
        let replayed = self.replayed.as_ref().is_some_and(|upto| step.key.as_bytes() <= upto.as_bytes());
        if replayed && step.action == Action::Skip && step.error.is_none() {
            return false;
        }
        if self.emitted.as_ref().is_none_or(|e| step.key.as_bytes() > e.as_bytes()) {
            self.emitted = Some(step.key.clone());
        }
        true
    }

    /// The number of source keys the plan has met (after filters), read as it runs: none at
    /// the end means the source was empty.
    pub fn source_keys(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.seen.clone()
    }

    /// A key only the source has.
    fn new_key(&self, source: Entry) -> Step {
        if self.direction == Direction::Download {
            if source.key.ends_with('/') {
                return Step::new(Action::Skip, source.key, "marker", Some(source.size));
            }
            if let Some(why) = not_a_local_path(&source.key) {
                return Step::new(Action::Skip, source.key, why, Some(source.size));
            }
        }
        Step {
            size: Some(source.size),
            ..Step::new(self.direction.action(), source.key.clone(), "new", None)
        }
        .with_source(source)
    }

    /// A key only the destination has.
    fn dest_only(&self, dest: Entry) -> Option<Step> {
        if !self.options.delete {
            return None;
        }
        // A local tree has no markers: the prefix's own "directories" stay.
        if self.direction == Direction::Upload && dest.key.ends_with('/') {
            return Some(Step::new(Action::Skip, dest.key, "marker", Some(dest.size)));
        }
        let mut step = Step::new(Action::Delete, dest.key.clone(), "not in source", Some(dest.size));
        step.dest = Some(dest);
        Some(step)
    }

    fn both(&self, source: Entry, dest: Entry) -> Step {
        if self.direction == Direction::Download && source.key.ends_with('/') {
            return Step::new(Action::Skip, source.key, "marker", Some(source.size));
        }
        let mut step = match verdict(self.options.rule, self.direction, &source, &dest) {
            Verdict::Transfer(reason) => Step::new(self.direction.action(), source.key.clone(), reason, Some(source.size)),
            Verdict::Same(reason) => Step::new(Action::Skip, source.key.clone(), reason, Some(source.size)),
            Verdict::Content => Step {
                compare_content: true,
                ..Step::new(self.direction.action(), source.key.clone(), "checksum", Some(source.size))
            },
        };
        step.dest = Some(dest);
        step.with_source(source)
    }
}

impl Step {
    fn with_source(mut self, source: Entry) -> Self {
        self.source = Some(source);
        self
    }
}

impl Iterator for Plan {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        loop {
            let step = self.next_step()?;
            if self.gives(&step) {
                return Some(step);
            }
        }
    }
}

impl Plan {
    fn next_step(&mut self) -> Option<Step> {
        loop {
            if self.stopped {
                return None;
            }
            let filters = self.options.filters.clone();
            match self.source.head(&filters) {
                Head::Other(SideItem::Skipped { key, reason }) => return Some(Step::new(Action::Skip, key, reason, None)),
                Head::Other(SideItem::Failed { key, error }) => return Some(Step::failed(key, error)),
                Head::OutOfOrder { key, error } => match self.out_of_order(true, key, error) {
                    Some(step) => return Some(step),
                    None => continue,
                },
                Head::Other(SideItem::Entry(_)) | Head::Entry | Head::End => {}
            }
            match self.dest.head(&filters) {
                // What the destination cannot hold in a key is not for this sync to touch.
                Head::Other(SideItem::Skipped { .. }) => continue,
                Head::Other(SideItem::Failed { key, error }) => return Some(Step::failed(key, error)),
                Head::OutOfOrder { key, error } => match self.out_of_order(false, key, error) {
                    Some(step) => return Some(step),
                    None => continue,
                },
                Head::Other(SideItem::Entry(_)) | Head::Entry | Head::End => {}
            }
            let order = match (&self.source.peeked, &self.dest.peeked) {
                (None, None) => return None,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(s), Some(d)) => s.key.as_bytes().cmp(d.key.as_bytes()),
            };
            match order {
                std::cmp::Ordering::Less => {
                    self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let source = self.source.peeked.take()?;
                    return Some(self.new_key(source));
                }
                std::cmp::Ordering::Greater => {
                    let dest = self.dest.peeked.take()?;
                    match self.dest_only(dest) {
                        Some(step) => return Some(step),
                        None => continue,
                    }
                }
                std::cmp::Ordering::Equal => {
                    self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let (source, dest) = (self.source.peeked.take()?, self.dest.peeked.take()?);
                    return Some(self.both(source, dest));
                }
            }
        }
    }
}

/// What the contents say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentVerdict {
    Same,
    Differs,
    /// They cannot be compared without reading the object: why.
    Unknown(String),
}

/// An object's side of a content comparison: where it is, and what its listing said.
#[derive(Clone, Debug)]
pub struct ObjectFacts {
    pub url: S3Url,
    pub etag: Option<String>,
    /// The additional checksum's algorithm, as listed.
    pub checksum_algorithm: Option<String>,
}

impl ObjectFacts {
    fn new(url: S3Url, entry: &Entry) -> Self {
        Self {
            url,
            etag: entry.etag.clone(),
            checksum_algorithm: entry.checksum.clone(),
        }
    }

    /// Listed with a CRC64NVME, which is always of the full object.
    fn has_crc64nvme(&self) -> bool {
        self.checksum_algorithm.as_deref() == Some(crate::s3::checksum::ALGORITHM.as_str())
    }
}

/// An ETag's kind: `Some(None)` a plain MD5, `Some(Some(n))` a multipart ETag of `n` parts,
/// `None` neither.
fn etag_kind(etag: &str) -> Option<Option<u64>> {
    let is_md5 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    match etag.split_once('-') {
        None => is_md5(etag).then_some(None),
        Some((md5, parts)) => (is_md5(md5) && !parts.is_empty()).then(|| parts.parse().ok()).flatten().map(Some),
    }
}

/// The size of an object's first part (S3 answers a HEAD of part 1 with it): the part size it
/// was uploaded with.
async fn part_size(router: &BucketRouter, url: &S3Url) -> Result<u64, AwsError> {
    let op = "S3 HeadObject";
    let out = router
        .call(&url.bucket, |client| {
            let call = client.head_object().bucket(&url.bucket).key(&url.key).part_number(1);
            async move { call.send().await.map_err(|e| AwsError::from_sdk(op, e)) }
        })
        .await?;
    Ok(out.content_length().unwrap_or(0).max(0) as u64)
}

/// The object's full-object CRC64NVME (one HEAD with checksum mode on); `None` if S3 keeps
/// none, or only a composite one (of parts).
async fn full_object_crc64(router: &BucketRouter, url: &S3Url) -> Result<Option<u64>, AwsError> {
    let op = "S3 HeadObject";
    let out = router
        .call(&url.bucket, |client| {
            let call = client
                .head_object()
                .bucket(&url.bucket)
                .key(&url.key)
                .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled);
            async move { call.send().await.map_err(|e| AwsError::from_sdk(op, e)) }
        })
        .await?;
    if out.checksum_type().is_some_and(|t| *t != aws_sdk_s3::types::ChecksumType::FullObject) {
        return Ok(None);
    }
    Ok(out.checksum_crc64_nvme().and_then(crate::s3::checksum::decode_crc64))
}

/// The digests of a local file, through the hash cache, off the async threads.
async fn local_digests(hashes: &HashCache, path: PathBuf, part_size: Option<u64>) -> Result<FileDigests, AwsError> {
    let hashes = hashes.clone();
    tokio::task::spawn_blocking(move || hashes.digests(&path, part_size, crate::s3::checksum::digest_file).map_err(|e| (path, e)))
        .await
        .map_err(|e| AwsError::new(ErrorKind::Local, "checksum", e.to_string()))?
        .map_err(|(path, e)| AwsError::new(ErrorKind::Local, "checksum", format!("{}: {e}", path.display())))
}

fn same_if(equal: bool) -> ContentVerdict {
    if equal { ContentVerdict::Same } else { ContentVerdict::Differs }
}

/// Compares by content, for `--checksum`, at the least cost in requests:
/// - a local file against an object: its MD5 against a single-part ETag (no request); else the
///   object's full-object CRC64NVME when listed with one (one HEAD; also when the MD5 differs,
///   since an SSE-KMS ETag is no MD5); else the multipart ETag recomputed with the object's part
///   size (one HEAD). The file's digests come from `hashes` when it is unchanged.
/// - two objects: equal ETags; else both full-object CRC64NVMEs when both are listed with one
///   (two HEADs).
///
/// Objects whose ETag is no MD5 (SSE-KMS, SSE-C) and that have no CRC64NVME compare as
/// unverifiable, and are transferred.
pub async fn compare_content(router: BucketRouter, hashes: HashCache, local: Option<PathBuf>, object: ObjectFacts, other: Option<ObjectFacts>) -> Result<ContentVerdict, AwsError> {
    let Some(path) = local else {
        let Some(other) = other else {
            return Ok(ContentVerdict::Unknown("no second object to compare with".into()));
        };
        if object.etag.is_some() && object.etag == other.etag {
            return Ok(ContentVerdict::Same);
        }
        if object.has_crc64nvme() && other.has_crc64nvme() {
            let (a, b) = (full_object_crc64(&router, &object.url).await?, full_object_crc64(&router, &other.url).await?);
            if let (Some(a), Some(b)) = (a, b) {
                return Ok(same_if(a == b));
            }
        }
        return Ok(match (object.etag.as_deref().and_then(etag_kind), other.etag.as_deref().and_then(etag_kind)) {
            (Some(None), Some(None)) => ContentVerdict::Differs,
            _ => ContentVerdict::Unknown("multipart ETags of different part sizes cannot be compared without reading the objects".into()),
        });
    };
    let kind = object.etag.as_deref().and_then(etag_kind);
    if kind == Some(None) {
        let digests = local_digests(&hashes, path, None).await?;
        if Some(&digests.md5) == object.etag.as_ref() {
            return Ok(ContentVerdict::Same);
        }
        if !object.has_crc64nvme() {
            return Ok(ContentVerdict::Differs);
        }
        return Ok(match full_object_crc64(&router, &object.url).await? {
            Some(crc) => same_if(crc == digests.crc64nvme),
            None => ContentVerdict::Differs,
        });
    }
    if object.has_crc64nvme()
        && let Some(crc) = full_object_crc64(&router, &object.url).await?
    {
        return Ok(same_if(local_digests(&hashes, path, None).await?.crc64nvme == crc));
    }
    match (kind, &object.etag) {
        (Some(Some(_)), Some(etag)) => {
            let part = part_size(&router, &object.url).await?;
            let digests = local_digests(&hashes, path, Some(part)).await?;
            Ok(same_if(digests.multipart.as_ref().map(|(_, e)| e) == Some(etag)))
        }
        (_, Some(etag)) => Ok(ContentVerdict::Unknown(format!("the ETag `{etag}` is not an MD5, and S3 keeps no CRC64NVME of it"))),
        (_, None) => Ok(ContentVerdict::Unknown("S3 gave no ETag".into())),
    }
}

/// The ETag S3 gives the file's contents: its MD5 (`part_size` = `None`), or, uploaded in parts
/// of `part_size`, the MD5 of the parts' MD5s followed by `-` and the number of parts.
pub fn local_etag(path: &Path, part_size: Option<u64>) -> std::io::Result<String> {
    let digests = crate::s3::checksum::digest_file(path, part_size)?;
    Ok(digests.multipart.map_or(digests.md5, |(_, etag)| etag))
}

impl Place {
    /// Where `key` (relative) is on this side: a URL, or a path.
    pub fn url_of(&self, key: &str) -> Option<S3Url> {
        match self {
            Place::S3(url) => Some(url.with_key(format!("{}{key}", url.key))),
            Place::Local(_) => None,
        }
    }

    pub fn path_of(&self, key: &str) -> Option<PathBuf> {
        match self {
            Place::Local(root) => Some(root.join(key)),
            Place::S3(_) => None,
        }
    }
}

fn missing(what: &str, key: &str) -> AwsError {
    AwsError::new(ErrorKind::InvalidInput, "sync", format!("{key}: no {what} for this step"))
}

/// Carries out one transfer step (after comparing contents, if the step waits on that): the
/// step as done, its reason final. With `dry_run`, only the comparison. Downloads get the
/// object's `LastModified` as their mtime, so the next sync finds them unchanged.
pub async fn execute(router: BucketRouter, hashes: HashCache, mut step: Step, source: Arc<Place>, dest: Arc<Place>, dry_run: bool) -> Result<Step, AwsError> {
    if step.compare_content {
        let (src, dst) = (step.source.clone(), step.dest.clone());
        let (src, dst) = (src.ok_or_else(|| missing("source", &step.key))?, dst.ok_or_else(|| missing("destination", &step.key))?);
        let facts = |place: &Place, entry: &Entry| place.url_of(&step.key).map(|url| ObjectFacts::new(url, entry)).ok_or_else(|| missing("URL", &step.key));
        let verdict = match (&*source, &*dest) {
            (Place::Local(_), Place::S3(_)) => compare_content(router.clone(), hashes, src.path.clone(), facts(&*dest, &dst)?, None).await?,
            (Place::S3(_), Place::Local(_)) => compare_content(router.clone(), hashes, dst.path.clone(), facts(&*source, &src)?, None).await?,
            _ => compare_content(router.clone(), hashes, None, facts(&*source, &src)?, Some(facts(&*dest, &dst)?)).await?,
        };
        step.compare_content = false;
        match verdict {
            ContentVerdict::Same => {
                step.action = Action::Skip;
                step.reason = "same checksum".into();
            }
            ContentVerdict::Differs => step.reason = "checksum".into(),
            ContentVerdict::Unknown(why) => step.reason = format!("unverifiable: {why}"),
        }
    }
    if dry_run {
        return Ok(step);
    }
    match step.action {
        Action::Skip | Action::Delete => {}
        Action::Upload => {
            let path = step.source.as_ref().and_then(|s| s.path.clone()).ok_or_else(|| missing("file", &step.key))?;
            let url = dest.url_of(&step.key).ok_or_else(|| missing("URL", &step.key))?;
            crate::s3::transfer::upload_file(router, path, url, true).await?;
        }
        Action::Download => {
            let url = source.url_of(&step.key).ok_or_else(|| missing("URL", &step.key))?;
            let path = dest.path_of(&step.key).ok_or_else(|| missing("path", &step.key))?;
            crate::s3::transfer::download_object(router, url, path.clone(), true).await?;
            if let Some(modified) = step.source.as_ref().and_then(|s| s.modified) {
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(modified.into()))
                    .map_err(|e| AwsError::new(ErrorKind::Local, "sync", format!("{}: setting the modification time: {e}", path.display())))?;
            }
        }
        Action::Copy => {
            let from = source.url_of(&step.key).ok_or_else(|| missing("URL", &step.key))?;
            let to = dest.url_of(&step.key).ok_or_else(|| missing("URL", &step.key))?;
            crate::s3::copy::copy_object(router, from, to, true).await?;
        }
    }
    Ok(step)
}

/// Deletions waiting on disk (one line per key: size, tab, the key with `\` and newlines
/// escaped) until the transfers are done, so memory does not grow with their number.
pub struct DeleteSpool {
    file: std::io::BufWriter<std::fs::File>,
    pub count: u64,
}

/// Text with `\`, tabs and line ends escaped, for one field of a line of a spool file.
pub(crate) fn escape(key: &str) -> String {
    key.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r").replace('\t', "\\t")
}

pub(crate) fn unescape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

impl DeleteSpool {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            file: std::io::BufWriter::new(tempfile::tempfile()?),
            count: 0,
        })
    }

    pub fn push(&mut self, key: &str, size: u64) -> std::io::Result<()> {
        self.count += 1;
        writeln!(self.file, "{size}\t{}", escape(key))
    }

    /// The spooled keys and sizes, in the order pushed.
    pub fn drain(self) -> std::io::Result<impl Iterator<Item = std::io::Result<(String, u64)>> + Send> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.seek(std::io::SeekFrom::Start(0))?;
        Ok(BufReader::new(file).lines().map(|line| {
            let line = line?;
            let (size, key) = line.split_once('\t').unwrap_or(("0", line.as_str()));
            Ok((unescape(key), size.parse().unwrap_or(0)))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(secs, 0)
    }

    fn entry(key: &str, size: u64, secs: i64) -> Entry {
        Entry {
            key: key.into(),
            size,
            modified: at(secs),
            etag: None,
            checksum: None,
            path: None,
        }
    }

    fn side(entries: Vec<Entry>) -> Box<dyn Iterator<Item = SideItem> + Send> {
        Box::new(entries.into_iter().map(SideItem::Entry))
    }

    fn plan(source: Vec<Entry>, dest: Vec<Entry>, direction: Direction, options: PlanOptions) -> Vec<(String, String, String)> {
        Plan::new(side(source), side(dest), direction, options)
            .map(|s| (s.action.as_str().to_string(), s.key, s.error.unwrap_or(s.reason)))
            .collect()
    }

    fn row(action: &str, key: &str, reason: &str) -> (String, String, String) {
        (action.into(), key.into(), reason.into())
    }

    #[test]
    fn the_merge_join_pairs_keys_and_names_each_reason() {
        let source = vec![entry("a-b", 1, 10), entry("a/x", 2, 10), entry("a0", 3, 20), entry("c", 4, 10)];
        let dest = vec![entry("a/x", 2, 10), entry("a/y", 5, 10), entry("a0", 3, 10), entry("c", 9, 30), entry("d/", 0, 1), entry("z", 1, 1)];
        let options = PlanOptions { delete: true, ..Default::default() };
        assert_eq!(
            plan(source.clone(), dest.clone(), Direction::Upload, options),
            [
                row("upload", "a-b", "new"),
                row("skip", "a/x", "unchanged"),
                row("delete", "a/y", "not in source"),
                row("upload", "a0", "newer"),
                row("upload", "c", "size"),
                row("skip", "d/", "marker"),
                row("delete", "z", "not in source"),
            ]
        );
        // Without --delete, keys only the destination has are left alone, and say nothing.
        let got = plan(source, dest, Direction::Copy, PlanOptions::default());
        assert_eq!(got.iter().filter(|r| r.0 == "delete" || r.1 == "z").count(), 0);
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn the_plan_pulls_each_side_only_as_far_as_it_needs() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let pulled = Arc::new(AtomicU64::new(0));
        let counter = pulled.clone();
        // A million keys on each side, never materialised.
        let source = Box::new((0..1_000_000u64).map(move |i| {
            counter.fetch_add(1, Ordering::Relaxed);
            SideItem::Entry(entry(&format!("k{i:07}"), 1, 1))
        }));
        let dest = Box::new((0..1_000_000u64).map(|i| SideItem::Entry(entry(&format!("k{i:07}"), 1, 1))));
        let mut plan = Plan::new(source, dest, Direction::Upload, PlanOptions::default());
        let first: Vec<Step> = plan.by_ref().take(3).collect();
        assert_eq!(first.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(), ["k0000000", "k0000001", "k0000002"]);
        assert_eq!(pulled.load(Ordering::Relaxed), 3, "one entry per step, nothing read ahead");
        assert_eq!(plan.source_keys().load(Ordering::Relaxed), 3);
    }

    #[test]
    fn the_change_rules() {
        let (old, new) = (entry("k", 5, 100), entry("k", 5, 200));
        assert_eq!(verdict(Rule::Default, Direction::Upload, &new, &old), Verdict::Transfer("newer"));
        assert_eq!(verdict(Rule::Default, Direction::Upload, &old, &new), Verdict::Same("unchanged"));
        assert_eq!(verdict(Rule::Default, Direction::Upload, &old, &old), Verdict::Same("unchanged"));
        assert_eq!(verdict(Rule::SizeOnly, Direction::Upload, &new, &old), Verdict::Same("same size"));
        assert_eq!(verdict(Rule::SizeOnly, Direction::Upload, &entry("k", 6, 1), &old), Verdict::Transfer("size"));
        assert_eq!(verdict(Rule::Checksum, Direction::Upload, &new, &old), Verdict::Content);
        assert_eq!(verdict(Rule::ExactTimestamps, Direction::Download, &old, &new), Verdict::Transfer("time"));
        assert_eq!(verdict(Rule::ExactTimestamps, Direction::Download, &old, &old), Verdict::Same("same time"));
        assert_eq!(verdict(Rule::ExactTimestamps, Direction::Upload, &old, &new), Verdict::Same("unchanged"));
        // Sub-second differences are below what S3 keeps.
        let mut fraction = old.clone();
        fraction.modified = DateTime::from_timestamp(100, 700_000_000);
        assert_eq!(verdict(Rule::Default, Direction::Upload, &fraction, &old), Verdict::Same("unchanged"));
    }

    #[test]
    fn downloads_skip_markers_and_keys_that_are_no_local_path() {
        let source = vec![entry("a//b", 1, 1), entry("d/", 0, 1), entry("d/../x", 1, 1), entry("ok", 1, 1)];
        let got = plan(source, vec![], Direction::Download, PlanOptions::default());
        assert_eq!(
            got,
            [
                row("skip", "a//b", "not a local path: an empty segment (//)"),
                row("skip", "d/", "marker"),
                row("skip", "d/../x", "not a local path: a . or .. segment"),
                row("download", "ok", "new"),
            ]
        );
    }

    #[test]
    fn a_side_out_of_order_ends_the_plan_with_an_error() {
        let source = vec![entry("a", 1, 1), entry("c", 1, 1), entry("b", 1, 1), entry("d", 1, 1)];
        let got = plan(source, vec![], Direction::Upload, PlanOptions::default());
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[2].2.contains("not listed in S3 key order: `b` came after `c`"), "{got:?}");
    }

    #[test]
    fn a_side_out_of_order_is_sorted_on_disk_and_the_plan_starts_again() {
        let source = vec![entry("a", 1, 1), entry("b", 1, 1), entry("c", 1, 1), entry("d", 1, 1)];
        // As a directory bucket lists: in no order.
        let dest = vec![entry("a", 1, 5), entry("c", 1, 5), entry("b", 1, 5), entry("z", 1, 5)];
        let relist = |entries: Vec<Entry>| -> Relist { Box::new(move || side(entries.clone())) };
        let options = PlanOptions { delete: true, ..Default::default() };
        let plan = Plan::new(side(source.clone()), side(dest.clone()), Direction::Upload, options).relisting(relist(source), relist(dest));
        let restarts = plan.restarts();
        let got: Vec<_> = plan.map(|s| (s.action.as_str().to_string(), s.key, s.error.unwrap_or(s.reason))).collect();
        assert_eq!(
            got,
            [
                row("skip", "a", "unchanged"),
                // Planned before the disorder showed: the one transfer on a wrong premise (here
                // needless, never wrong: the source's contents go to the destination).
                row("upload", "b", "new"),
                // Started again, sorted: a and b are not shown again as skips.
                row("skip", "c", "unchanged"),
                row("upload", "d", "new"),
                row("delete", "z", "not in source"),
            ]
        );
        assert_eq!(restarts.load(std::sync::atomic::Ordering::Relaxed), 1, "deletions noted before are void");
    }

    #[test]
    fn a_part_of_a_side_that_cannot_be_read_is_an_error_step_and_the_plan_goes_on() {
        let source: Box<dyn Iterator<Item = SideItem> + Send> = Box::new(
            vec![
                SideItem::Entry(entry("a", 1, 1)),
                SideItem::Failed { key: "locked/".into(), error: "permission denied".into() },
                SideItem::Skipped { key: "bad\u{FFFD}".into(), reason: "the name is not UTF-8".into() },
                SideItem::Entry(entry("z", 1, 1)),
            ]
            .into_iter(),
        );
        let steps: Vec<Step> = Plan::new(source, side(vec![]), Direction::Upload, PlanOptions::default()).collect();
        let got: Vec<_> = steps.iter().map(|s| (s.action, s.key.as_str(), s.error.as_deref())).collect();
        assert_eq!(
            got,
            [
                (Action::Upload, "a", None),
                (Action::Skip, "locked/", Some("permission denied")),
                (Action::Skip, "bad\u{FFFD}", None),
                (Action::Upload, "z", None)
            ]
        );
        assert_eq!(steps[2].reason, "the name is not UTF-8");
    }

    #[test]
    fn filters_include_wins_and_include_alone_selects() {
        let f = Filters::new(&["*.txt".into()], &["*".into()]).unwrap();
        assert!(f.wants("a/b.txt") && !f.wants("a/b.json"));
        let f = Filters::new(&[], &["*.tmp".into(), "cache/*".into()]).unwrap();
        assert!(f.wants("x.txt") && !f.wants("a/x.tmp") && !f.wants("cache/a/b"));
        let f = Filters::new(&["logs/*".into()], &[]).unwrap();
        assert!(f.wants("logs/a") && !f.wants("data/a"));
        assert!(Filters::default().wants("anything"));
        assert!(Filters::new(&["[".into()], &[]).is_err());
        // Excluded destination keys are not deleted.
        let options = PlanOptions {
            delete: true,
            filters: Filters::new(&[], &["keep/*".into()]).unwrap(),
            ..Default::default()
        };
        assert_eq!(plan(vec![], vec![entry("keep/x", 1, 1), entry("y", 1, 1)], Direction::Upload, options), [row("delete", "y", "not in source")]);
    }

    #[test]
    fn etags_recomputed_like_s3() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello world").unwrap();
        assert_eq!(local_etag(&path, None).unwrap(), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        // Parts of 5 bytes: "hello", " worl", "d".
        use md5::Digest;
        let mut outer = md5::Md5::new();
        for part in [&b"hello"[..], b" worl", b"d"] {
            outer.update(md5::Md5::digest(part));
        }
        assert_eq!(local_etag(&path, Some(5)).unwrap(), format!("{}-3", crate::s3::checksum::hex(&outer.finalize())));
        assert_eq!(etag_kind("5eb63bbbe01eeed093cb22bb8f5acdc3"), Some(None));
        assert_eq!(etag_kind("5eb63bbbe01eeed093cb22bb8f5acdc3-12"), Some(Some(12)));
        assert_eq!(etag_kind("not-an-etag"), None);
    }

    #[test]
    fn the_spool_gives_back_tricky_keys() {
        let mut spool = DeleteSpool::new().unwrap();
        for (k, n) in [("a b", 1), ("new\nline", 2), ("back\\slash\\n", 3), ("ü+%", 4)] {
            spool.push(k, n).unwrap();
        }
        assert_eq!(spool.count, 4);
        let back: Vec<(String, u64)> = spool.drain().unwrap().map(Result::unwrap).collect();
        assert_eq!(back, [("a b".to_string(), 1), ("new\nline".into(), 2), ("back\\slash\\n".into(), 3), ("ü+%".into(), 4)]);
    }
}
