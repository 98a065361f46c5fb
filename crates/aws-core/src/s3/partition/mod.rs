//! Partitioned listing: everything below an S3 prefix listed as several disjoint key ranges at
//! once, and yielded in exactly the order one paginator would yield it (S3's UTF-8 binary order),
//! for the recursive readers (`ls --recursive`, `du`, `sync`, `rm -R`, `cp -R`).
//!
//! One paginator waits a round trip for every page: 1,000 pages at 30 ms are 30 s however fast
//! the machine. Here a listing starts as that one paginator, so a small listing costs exactly
//! the requests it costs today and `first 3` still two (the page it reads and one prefetched).
//! Only once the consumer has taken the second page (the listing is proven big and still
//! wanted) does the rest become a *range* `(after, until]` of keys, listed with `StartAfter`
//! and cut at `until`. Whenever the consumer is left waiting for a page, a range that is not
//! done is split: cheap probes (`MaxKeys=1`) find the shallowest character position at which
//! keys beyond the range's progress still differ, and the range is cut at the ends of that
//! position's subtrees (`data/p01…`, `data/p02…`), one boundary per character likely to occur
//! there. The first ranges in order are listed at once, each one request at a time through an
//! [`AdaptiveLimiter`] (it grows with every answer and halves on throttling), and their
//! pages are handed out range after range, so the output is in key order.
//!
//! Boundaries only decide how evenly the work is spread, never what is listed: ranges are
//! contiguous and cover the whole key space, so any boundary strings give every key exactly
//! once. Memory is bounded by `buffered_pages` pages waiting for the consumer (the range being
//! handed out holds at most `RANGE_PAGES` more), whatever the bucket's size. Dropping the stream
//! (`first`, Ctrl-C) aborts every range and probe; a failing range stops them all and is the
//! listing's error, naming the range.
//!
//! Not here: the requests themselves (a [`RangeSource`], see [`super::list`] for S3's), listings
//! with a delimiter (one level is one paginator: its common prefixes are the answer, not a
//! partition), or any reordering: the ranges come out in order or not at all.

mod budget;
mod keyspace;

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Notify, mpsc};
use tokio::task::{AbortHandle, JoinSet};

use crate::engine::bulk::{classify, jitter};
use crate::engine::{AdaptiveLimiter, Engine, JobSummary, Lane, Signal};
use crate::error::AwsError;
use crate::pagination::{PageSender, PageStream};

use budget::{PageBudget, PageShare};
use keyspace::common_prefix_chars;
use keyspace::{KeyScale, Spacing};

/// The greatest `char`: `X` followed by it sorts after every key that starts with `X` (except
/// keys with this very character after `X`, which only makes a range uneven, never wrong).
const SUBTREE_END: char = char::MAX;

/// Pages one range may hold for the consumer (ranges ahead also need a share of the budget for
/// each; the one being handed out does not): a whole range cut by density fits.
const RANGE_PAGES: usize = 3;

/// Pages a range is cut to when the spacing of keys tells where to cut: short chains of tokens,
/// so the ranges next in line are listed whole before their turn. A little under whole pages,
/// so that a piece's last request, asking for about the keys left, ends it (a piece of exactly
/// two pages' keys estimated a few keys high would take a third request for those few).
const PIECE_PAGES: f64 = 1.97;

/// The fewest keys a range's last request asks for when it can tell how many are left: a wrong
/// estimate then costs a short extra request, never a run of tiny ones.
const MIN_LAST_PAGE: i32 = 100;

/// Splits running at once: each is a handful of sequential probes.
const SPLITS_AT_ONCE: usize = 2;

/// One ListObjectsV2 request of a partitioned listing: the prefix and bucket are the source's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageQuery {
    /// Keys after this one (ignored by S3 when `token` is given).
    pub start_after: Option<String>,
    pub token: Option<String>,
    pub max_keys: i32,
}

/// A page of a listing: its keys in order, one item per key, and the next page's token.
#[derive(Debug)]
pub struct KeyedPage<T> {
    pub keys: Vec<String>,
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// What answers the requests of a partitioned listing: ListObjectsV2 of one prefix without a
/// delimiter (S3's in [`super::list`]; a fake in the tests).
pub trait RangeSource: Send + Sync + 'static {
    type Item: Send + 'static;

    fn page(&self, query: PageQuery) -> impl Future<Output = Result<KeyedPage<Self::Item>, AwsError>> + Send;
}

/// How wide and deep a partitioned listing may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionSettings {
    /// Keys per request (1-1000).
    pub page_size: i32,
    /// Pages fetched ahead of the consumer over all ranges: what bounds memory.
    pub buffered_pages: usize,
    /// Ranges listed at once, the first ones in order (the limiter bounds the requests).
    pub ranges_at_once: usize,
    /// Ranges known at once (listed or waiting); splitting stops there.
    pub max_ranges: usize,
    /// Boundaries one split adds at most.
    pub split_width: usize,
    /// Attempts per request when S3 throttles, times out or fails with a 5xx.
    pub max_attempts: u32,
    /// First wait before a retry; doubles per attempt, with jitter, capped at 5 s.
    pub base_backoff: Duration,
}

impl Default for PartitionSettings {
    fn default() -> Self {
        Self {
            page_size: 1000,
            buffered_pages: 16,
            ranges_at_once: 32,
            max_ranges: 256,
            split_width: 16,
            max_attempts: 10,
            base_backoff: Duration::from_millis(50),
        }
    }
}

/// What a partitioned listing did, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct PartitionStats {
    /// Requests sent, retries and probes included.
    pub requests: AtomicU64,
    pub probes: AtomicU64,
    pub retries: AtomicU64,
    /// Ranges listed after the first two pages (0: the listing never fanned out).
    pub ranges: AtomicU64,
    /// Splits that finished (whether or not they found where to cut).
    pub splits: AtomicU64,
    /// Answers that were S3 asking to slow down.
    pub throttled: AtomicU64,
    /// Requests that failed for good.
    pub failed: AtomicU64,
    /// Time spent waiting for answers, summed over requests (mean concurrency = busy / elapsed).
    pub busy_micros: AtomicU64,
}

impl PartitionStats {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The listing as a job of the request engine, for `aws engine`: its items are requests.
    pub fn summary(&self, limiter: &AdaptiveLimiter, elapsed: Duration) -> JobSummary {
        let limits = limiter.stats();
        let (requests, failed) = (Self::get(&self.requests), Self::get(&self.failed));
        JobSummary {
            items: requests,
            succeeded: requests.saturating_sub(failed),
            failed,
            retried: Self::get(&self.retries),
            throttled: Self::get(&self.throttled),
            elapsed,
            mean_concurrency: Self::get(&self.busy_micros) as f64 / elapsed.as_micros().max(1) as f64,
            peak_limit: limits.peak_limit,
            final_limit: limits.limit,
            limit_cuts: limits.cuts,
            floor: limits.floor,
        }
    }
}

/// Everything below the source's prefix (`prefix` is its spelling, for where keys start to
/// differ), in key order, listed in ranges once it proves big. A listing that ends (completes or
/// fails) is recorded as the last job of `lane`, if given.
pub fn list_partitioned<S: RangeSource>(
    source: S,
    prefix: &str,
    limiter: Arc<AdaptiveLimiter>,
    settings: PartitionSettings,
    stats: Arc<PartitionStats>,
    lane: Option<Lane>,
) -> PageStream<S::Item> {
    let shared = Shared {
        source,
        limiter,
        settings,
        stats,
        prefix_chars: prefix.chars().count(),
        alphabet: BTreeSet::new(),
        scale: KeyScale::default(),
    };
    PageStream::produce(move |out| async move {
        let started = Instant::now();
        let (limiter, stats) = (shared.limiter.clone(), shared.stats.clone());
        coordinate(shared, &out).await;
        // Before the stream ends (`out` dropped), so a command run after it sees the record.
        if let Some(lane) = lane {
            Engine::global().record(&lane, stats.summary(&limiter, started.elapsed()));
        }
        drop(out);
    })
}

struct Shared<S> {
    source: S,
    limiter: Arc<AdaptiveLimiter>,
    settings: PartitionSettings,
    stats: Arc<PartitionStats>,
    prefix_chars: usize,
    /// The characters of the keys seen while the listing was one paginator (and every digit if
    /// any): the candidates for boundaries.
    alphabet: BTreeSet<char>,
    /// Those keys' characters per position: where a key lies between two others.
    scale: KeyScale,
}

impl<S: RangeSource> Shared<S> {
    /// One request through the limiter, retried while S3 throttles, times out or fails with a
    /// 5xx, each outcome reported to the limiter.
    async fn fetch(&self, query: &PageQuery) -> Result<KeyedPage<S::Item>, AwsError> {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let permit = self.limiter.acquire().await;
            PartitionStats::add(&self.stats.requests);
            let sent = Instant::now();
            let result = self.source.page(query.clone()).await;
            let (signal, retryable) = classify(&result, sent.elapsed());
            // An answer's time includes parsing the page on our own threads, which grows with
            // the requests at once on a busy machine and says nothing about S3 (which serves
            // thousands of listings a second per prefix): only throttling and timeouts cut.
            permit.finish(match signal {
                Signal::Answered(_) => Signal::Succeeded,
                other => other,
            });
            self.stats.busy_micros.fetch_add(sent.elapsed().as_micros() as u64, Ordering::Relaxed);
            if signal == Signal::Throttled {
                PartitionStats::add(&self.stats.throttled);
            }
            if !retryable || attempts >= self.settings.max_attempts {
                if result.is_err() {
                    PartitionStats::add(&self.stats.failed);
                }
                return result;
            }
            PartitionStats::add(&self.stats.retries);
            let backoff = self
                .settings
                .base_backoff
                .mul_f64(2f64.powi(attempts as i32 - 1))
                .min(Duration::from_secs(5));
            let seed = u64::from(attempts) ^ sent.elapsed().as_nanos() as u64;
            tokio::time::sleep(backoff.mul_f64(0.5 + jitter(seed))).await;
        }
    }

    /// The first key after `after` and at most `until`, if any (a failed probe finds nothing:
    /// probes only shape the split, the ranges themselves report failures).
    async fn probe(&self, after: &str, until: Option<&str>) -> Option<String> {
        PartitionStats::add(&self.stats.probes);
        let query = PageQuery {
            start_after: Some(after.to_string()),
            token: None,
            max_keys: 1,
        };
        let key = self.fetch(&query).await.ok()?.keys.into_iter().next()?;
        until.is_none_or(|until| key.as_str() <= until).then_some(key)
    }

    /// Boundaries that cut the keys in `(after, until]` into pieces, ascending, each strictly
    /// between the two; none if the range looks like it has nothing left past `after`'s own
    /// neighbourhood.
    ///
    /// The pieces are subtrees: probing `after[..=p]` + [`SUBTREE_END`] tells whether any key
    /// lies beyond the subtree of `after`'s first `p + 1` characters. That is true for deep `p`
    /// and false for shallow ones (a bucket of `data/…` keys has nothing past `d`), so a binary
    /// search finds the shallowest position `p` where keys still differ; the range is then cut
    /// after `after`'s own subtree there and after each sibling subtree (`…p01`, `…p02`, …) whose
    /// character is of the same kind (digit, lower case, upper case, other) as the first sibling
    /// the probe found, among the characters seen so far.
    ///
    /// `page_span` is how many characters the first and last keys of the range's last full page
    /// share: pieces are cut at least two positions shallower, so that each holds many pages
    /// (a piece of about one page would cost two requests: its page, and the one that finds
    /// its end).
    async fn boundaries(&self, after: &str, until: Option<&str>, page_span: usize) -> Vec<String> {
        let chars: Vec<char> = after.chars().collect();
        let start = until.map_or(0, |until| common_prefix_chars(after, until)).max(self.prefix_chars);
        let deepest = page_span.saturating_sub(2).min(chars.len().saturating_sub(1));
        if start > deepest || chars.is_empty() {
            return Vec::new();
        }
        let subtree_end = |p: usize| -> String {
            let mut end: String = chars[..=p].iter().collect();
            end.push(SUBTREE_END);
            end
        };
        // The range is not done, so keys lie beyond `after`: the deepest position is taken to
        // have some without asking (if not, the one piece past it is empty: one request).
        let (mut shallow, mut deep) = (start, deepest);
        let mut beyond = String::new();
        while shallow < deep {
            let mid = (shallow + deep) / 2;
            match self.probe(&subtree_end(mid), until).await {
                Some(key) => {
                    deep = mid;
                    beyond = key;
                }
                None => shallow = mid + 1,
            }
        }
        let p = deep;
        if beyond.is_empty() {
            // The search never asked about `p` itself (it was taken to have keys beyond): ask
            // now, since the first key past `after`'s subtree there names the first sibling,
            // and without it the range would only be cut in two (`obj/00000…` of a flat
            // numeric bucket, and nothing at `obj/00001…`-`obj/00009…`).
            beyond = self.probe(&subtree_end(p), until).await.unwrap_or_default();
        }
        let stem: String = chars[..p].iter().collect();
        let mut cuts = vec![subtree_end(p)];
        let first_sibling = beyond.strip_prefix(stem.as_str()).and_then(|rest| rest.chars().next());
        if let Some(first) = first_sibling {
            let siblings: Vec<char> = self
                .alphabet
                .iter()
                .copied()
                .filter(|&c| c >= first && c > chars[p] && same_kind(c, first))
                .collect();
            // The last sibling's piece runs to the end of the range: no cut after it.
            for &c in siblings.iter().take(siblings.len().saturating_sub(1)) {
                let mut cut = stem.clone();
                cut.push(c);
                cut.push(SUBTREE_END);
                cuts.push(cut);
            }
        }
        cuts.retain(|cut| cut.as_str() > after && until.is_none_or(|until| cut.as_str() < until));
        thin_out(cuts, self.settings.split_width.max(1))
    }
}

/// Characters likely to follow one another at one position: digits with digits, letters of one
/// case with each other, the rest together.
fn same_kind(a: char, b: char) -> bool {
    let kind = |c: char| {
        if c.is_ascii_digit() {
            0
        } else if c.is_ascii_lowercase() {
            1
        } else if c.is_ascii_uppercase() {
            2
        } else {
            3
        }
    };
    kind(a) == kind(b)
}

/// At most `width` of `cuts` (ascending), evenly spread, the first always kept: it ends the
/// range being split, whose listing is under way.
fn thin_out(cuts: Vec<String>, width: usize) -> Vec<String> {
    if cuts.len() <= width {
        return cuts;
    }
    let step = cuts.len() as f64 / width as f64;
    let mut picked: Vec<String> = Vec::with_capacity(width);
    for (i, cut) in cuts.into_iter().enumerate() {
        if picked.len() < width && i as f64 >= picked.len() as f64 * step {
            picked.push(cut);
        }
    }
    picked
}

/// Where a range is: shared by its task (which cuts pages at `until`) and the coordinator
/// (which shrinks `until` when it splits the range).
#[derive(Debug, Default)]
struct Bounds {
    /// The last key in the range (inclusive); `None`: to the end of the prefix.
    until: Option<String>,
    /// The last key fetched, kept or beyond `until`: a split must cut after it.
    progress: Option<String>,
    done: bool,
    /// The range has fetched a page of its own: only then is it worth splitting (a listing of
    /// three pages costs three requests, as one paginator).
    fetched: bool,
    /// A split is running, or found nothing to cut: do not split again.
    split_pending: bool,
    /// Being handed out: fetches without waiting for the shared page budget.
    head: bool,
    /// Characters shared by the first and last keys of the last full page.
    page_span: usize,
    /// How densely keys lie here: the range's last full page, or the one it was cut from.
    spacing: Option<Spacing>,
}

impl Bounds {
    /// How many keys are probably left in the range, if the spacing of keys tells.
    fn keys_left(&self, scale: &KeyScale, after: Option<&str>) -> Option<f64> {
        let from = self.progress.as_deref().or(after)?;
        scale.keys_between(from, self.until.as_deref()?, self.spacing.as_ref()?)
    }
}

/// A page of a range with the share of the page budget it holds until handed out.
type Buffered<T> = (Result<Vec<T>, AwsError>, Option<PageShare>);

struct Range<T> {
    /// Keys after this one (`None`: from the start of the first range's token).
    after: Option<String>,
    /// The continuation token to start from instead of `after` (the first range goes on
    /// where the single paginator stopped).
    token: Option<String>,
    bounds: Arc<Mutex<Bounds>>,
    became_head: Arc<Notify>,
    task: Option<RangeTask<T>>,
    id: u64,
}

struct RangeTask<T> {
    rx: mpsc::Receiver<Buffered<T>>,
    abort: AbortHandle,
}

impl<T> Drop for RangeTask<T> {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

fn lock(bounds: &Mutex<Bounds>) -> MutexGuard<'_, Bounds> {
    // Nothing panics while holding it; recover a poisoned lock.
    bounds.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: Send + 'static> Range<T> {
    fn new(id: u64, after: Option<String>, until: Option<String>, spacing: Option<Spacing>) -> Self {
        Self {
            after,
            token: None,
            bounds: Arc::new(Mutex::new(Bounds {
                until,
                spacing,
                ..Bounds::default()
            })),
            became_head: Arc::new(Notify::new()),
            task: None,
            id,
        }
    }

    fn start<S: RangeSource<Item = T>>(&mut self, shared: &Arc<Shared<S>>, budget: &Arc<PageBudget>, failures: &mpsc::UnboundedSender<AwsError>) {
        let (tx, rx) = mpsc::channel(RANGE_PAGES);
        let task = tokio::spawn(list_range(
            shared.clone(),
            self.id,
            self.after.clone(),
            self.token.take(),
            self.bounds.clone(),
            self.became_head.clone(),
            budget.clone(),
            tx,
            failures.clone(),
        ));
        self.task = Some(RangeTask { rx, abort: task.abort_handle() });
    }

    fn make_head(&self) {
        lock(&self.bounds).head = true;
        self.became_head.notify_one();
    }
}

/// Lists one range page by page into `tx`, cutting at `bounds.until` as it stands when each
/// page arrives. Before each request it takes room in its channel and, unless it is being
/// handed out, a share of the page budget (ranges nearer the head first). A request that
/// probably reaches the range's end asks for about the keys left, not a whole page past it.
#[allow(clippy::too_many_arguments)]
async fn list_range<S: RangeSource>(
    shared: Arc<Shared<S>>,
    id: u64,
    after: Option<String>,
    mut token: Option<String>,
    bounds: Arc<Mutex<Bounds>>,
    became_head: Arc<Notify>,
    budget: Arc<PageBudget>,
    tx: mpsc::Sender<Buffered<S::Item>>,
    failures: mpsc::UnboundedSender<AwsError>,
) {
    let mut first = true;
    loop {
        let Ok(room) = tx.reserve().await else {
            return;
        };
        // The head's own pages are drained at once; a range ahead waits for a share of the
        // budget, or for becoming the head (then it needs none: it must never wait for pages
        // that only its own progress would free).
        let head = lock(&bounds).head;
        let share = if head {
            None
        } else {
            let order = after.as_deref().unwrap_or_default();
            tokio::select! {
                share = budget.take(order, id) => Some(share),
                () = became_head.notified() => None,
            }
        };
        let page_size = shared.settings.page_size;
        let max_keys = match lock(&bounds).keys_left(&shared.scale, after.as_deref()) {
            Some(left) if left < f64::from(page_size) => ((left * 1.1).ceil() as i32 + 16).clamp(MIN_LAST_PAGE.min(page_size), page_size),
            _ => page_size,
        };
        let query = PageQuery {
            start_after: if first && token.is_none() { after.clone() } else { None },
            token: token.take(),
            max_keys,
        };
        first = false;
        let page = match shared.fetch(&query).await {
            Ok(page) => page,
            Err(err) => {
                let err = name_range(err, after.as_deref(), lock(&bounds).until.as_deref());
                let _ = failures.send(err.clone());
                room.send((Err(err), share));
                return;
            }
        };
        let KeyedPage { keys, mut items, next } = page;
        let next = next.filter(|t| !t.is_empty());
        let done = {
            let mut b = lock(&bounds);
            let cut = b.until.as_deref().and_then(|until| keys.iter().position(|k| k.as_str() > until));
            if let (Some(first), Some(last)) = (keys.first(), keys.last()) {
                if next.is_some() && cut.is_none() {
                    b.page_span = common_prefix_chars(first, last);
                    if keys.len() >= 2 {
                        b.spacing = Some(Spacing {
                            first: first.clone(),
                            last: last.clone(),
                            keys: keys.len(),
                        });
                    }
                }
                b.progress = Some(last.clone());
            }
            if let Some(cut) = cut {
                items.truncate(cut);
            }
            b.fetched = true;
            // The last key of the range itself ends it: no request to find what comes after.
            let at_end = b.until.is_some() && keys.last() == b.until.as_ref();
            b.done = cut.is_some() || next.is_none() || at_end;
            b.done
        };
        room.send((Ok(items), share));
        if done {
            return;
        }
        token = next;
    }
}

/// A range's failure, saying which keys it was listing.
fn name_range(mut err: AwsError, after: Option<&str>, until: Option<&str>) -> AwsError {
    let spell = |boundary: &str| match boundary.strip_suffix(SUBTREE_END) {
        Some(stem) => format!("the keys starting `{stem}`"),
        None => format!("`{boundary}`"),
    };
    let range = match (after, until) {
        (None, None) => return err,
        (Some(after), None) => format!("after {} to the end", spell(after)),
        (None, Some(until)) => format!("up to {}", spell(until)),
        (Some(after), Some(until)) => format!("after {} through {}", spell(after), spell(until)),
    };
    err.message = format!("{} (listing the range of keys {range})", err.message);
    err
}

/// What the coordinator waits for.
enum Step<'a, T> {
    Failed(Option<AwsError>),
    Split(Option<Result<(u64, Vec<String>), tokio::task::JoinError>>),
    Room(Result<mpsc::Permit<'a, Result<Vec<T>, AwsError>>, mpsc::error::SendError<()>>),
    Page(Option<Buffered<T>>),
}

/// The listing: two pages as one paginator, then ranges, handed out in order into `out`.
async fn coordinate<S: RangeSource>(mut shared: Shared<S>, out: &PageSender<S::Item>) {
    let mut token = None;
    let mut last_key = None;
    let mut seen: Vec<String> = Vec::new();
    let mut spacing = None;
    for _ in 0..2 {
        // Room first, then the request: never more than one page ahead of the consumer.
        let Ok(room) = out.reserve().await else {
            return;
        };
        let query = PageQuery {
            start_after: None,
            token: token.take(),
            max_keys: shared.settings.page_size,
        };
        match shared.fetch(&query).await {
            Err(err) => {
                room.send(Err(err));
                return;
            }
            Ok(page) => {
                for key in &page.keys {
                    shared.alphabet.extend(key.chars().skip(shared.prefix_chars));
                }
                if let (Some(first), Some(last)) = (page.keys.first(), page.keys.last()) {
                    last_key = Some(last.clone());
                    spacing = Some(Spacing {
                        first: first.clone(),
                        last: last.clone(),
                        keys: page.keys.len(),
                    });
                }
                seen.extend(page.keys);
                room.send(Ok(page.items));
                match page.next.filter(|t| !t.is_empty()) {
                    Some(next) => token = Some(next),
                    None => return,
                }
            }
        }
    }
    // Keys with a digit at some position tend to have every digit there.
    if shared.alphabet.iter().any(char::is_ascii_digit) {
        shared.alphabet.extend('0'..='9');
    }
    shared.scale = KeyScale::learn(seen.iter().map(String::as_str));
    drop(seen);
    let shared = Arc::new(shared);
    let settings = shared.settings;
    // Room for the third page: the consumer took the second and wants more.
    let mut room = match out.reserve().await {
        Ok(room) => Some(room),
        Err(_) => return,
    };

    let budget = PageBudget::new(settings.buffered_pages.max(1));
    let (failures_tx, mut failures) = mpsc::unbounded_channel::<AwsError>();
    let mut splits: JoinSet<(u64, Vec<String>)> = JoinSet::new();
    let mut ranges: VecDeque<Range<S::Item>> = VecDeque::new();
    let mut next_id = 1;
    let mut rest = Range::new(0, last_key.clone(), None, spacing);
    rest.token = token;
    lock(&rest.bounds).progress = last_key;
    rest.make_head();
    ranges.push_back(rest);
    PartitionStats::add(&shared.stats.ranges);

    loop {
        for range in ranges.iter_mut().take(settings.ranges_at_once.max(1)) {
            if range.task.is_none() {
                range.start(&shared, &budget, &failures_tx);
            }
        }
        let Some(head) = ranges.front_mut().and_then(|r| r.task.as_mut()) else {
            return;
        };
        // A page ready is handed out at once; when none is, the consumer is waiting on the
        // network: that is when more ranges help.
        if room.is_some() {
            match head.rx.try_recv() {
                Ok((page, _share)) => {
                    if !send(&mut room, page) {
                        return;
                    }
                    continue;
                }
                Err(TryRecvError::Disconnected) => {
                    ranges.pop_front();
                    if let Some(next) = ranges.front() {
                        next.make_head();
                    }
                    add_ranges(&shared, split_by_spacing(&shared, &mut ranges, &mut next_id));
                    continue;
                }
                Err(TryRecvError::Empty) => {
                    add_ranges(&shared, split_by_spacing(&shared, &mut ranges, &mut next_id));
                    start_splits(&shared, &ranges, &mut splits);
                }
            }
        }
        let Some(head) = ranges.front_mut().and_then(|r| r.task.as_mut()) else {
            return;
        };
        let step = tokio::select! {
            biased;
            failed = failures.recv() => Step::Failed(failed),
            split = splits.join_next(), if !splits.is_empty() => Step::Split(split),
            reserved = out.reserve(), if room.is_none() => Step::Room(reserved),
            page = head.rx.recv(), if room.is_some() => Step::Page(page),
        };
        match step {
            Step::Failed(Some(err)) => {
                // Stop every range now; the error takes the next place in the output.
                ranges.clear();
                splits.abort_all();
                if room.is_none() {
                    room = out.reserve().await.ok();
                }
                send(&mut room, Err(err));
                return;
            }
            Step::Failed(None) => return,
            Step::Split(Some(Ok((id, cuts)))) => {
                add_ranges(&shared, apply_split(&mut ranges, id, cuts, &mut next_id));
                PartitionStats::add(&shared.stats.splits);
            }
            Step::Split(_) => {}
            Step::Room(Ok(reserved)) => room = Some(reserved),
            Step::Room(Err(_)) => return,
            Step::Page(Some((page, _share))) => {
                if !send(&mut room, page) {
                    return;
                }
            }
            Step::Page(None) => {
                ranges.pop_front();
                if let Some(next) = ranges.front() {
                    next.make_head();
                }
                add_ranges(&shared, split_by_spacing(&shared, &mut ranges, &mut next_id));
            }
        }
    }
}

/// Counts ranges a split added.
fn add_ranges<S>(shared: &Shared<S>, added: usize) {
    shared.stats.ranges.fetch_add(added as u64, Ordering::Relaxed);
}

/// Hands `page` out with the room held (an empty page keeps the room); false once the listing
/// is over (the consumer is gone, or this was its error).
fn send<T>(room: &mut Option<mpsc::Permit<'_, Result<Vec<T>, AwsError>>>, page: Result<Vec<T>, AwsError>) -> bool {
    match page {
        Ok(items) if items.is_empty() => true,
        page => {
            let failed = page.is_err();
            match room.take() {
                Some(permit) => {
                    permit.send(page);
                    !failed
                }
                None => false,
            }
        }
    }
}

/// Cuts the ranges next in line, as far as the page budget reaches, into pieces of about
/// [`PIECE_PAGES`] pages wherever the spacing of keys tells how many keys are left (no request:
/// the cuts are estimated positions). Returns how many ranges were added.
fn split_by_spacing<S: RangeSource>(shared: &Shared<S>, ranges: &mut VecDeque<Range<S::Item>>, next_id: &mut u64) -> usize {
    let settings = shared.settings;
    let page = f64::from(settings.page_size.max(1));
    let window = (settings.buffered_pages + RANGE_PAGES) as f64;
    let (mut ahead, mut added, mut at, mut cut_here) = (0.0, 0, 0, false);
    while at < ranges.len() && ahead < window {
        let range = &ranges[at];
        let (pages, cuts) = {
            let b = lock(&range.bounds);
            if b.done {
                at += 1;
                continue;
            }
            // Nothing known of what is left: the probing splits find out.
            let Some(left) = b.keys_left(&shared.scale, range.after.as_deref()) else {
                return added;
            };
            let pages = left / page;
            let cuts = match (b.progress.as_deref().or(range.after.as_deref()), b.until.as_deref(), b.spacing.as_ref()) {
                (Some(from), Some(until), Some(spacing)) if pages > PIECE_PAGES * 1.5 && !cut_here => {
                    shared.scale.cuts(from, until, spacing, PIECE_PAGES * page, settings.split_width)
                }
                _ => Vec::new(),
            };
            (pages, cuts)
        };
        let room = settings.max_ranges.saturating_sub(ranges.len());
        if !cuts.is_empty() && room > 0 {
            let id = range.id;
            let cuts = thin_out(cuts, room);
            let n = apply_split(ranges, id, cuts, next_id);
            added += n;
            // Once more with the range's new end (and not cut again).
            cut_here = n > 0;
            if cut_here {
                continue;
            }
        }
        cut_here = false;
        ahead += pages.max(1.0);
        at += 1;
    }
    added
}

/// Starts splitting the first ranges in order that have fetched a page and are not done and
/// whose keys left cannot be told from their spacing, up to [`SPLITS_AT_ONCE`] splits and
/// `max_ranges` ranges, and only while the ranges listed are fewer than the requests the
/// limiter allows (more could not run at once).
fn start_splits<S: RangeSource>(shared: &Arc<Shared<S>>, ranges: &VecDeque<Range<S::Item>>, splits: &mut JoinSet<(u64, Vec<String>)>) {
    let settings = shared.settings;
    let listed = ranges.iter().take(settings.ranges_at_once.max(1)).count();
    if listed >= shared.limiter.limit().max(2) {
        return;
    }
    for range in ranges.iter().take(settings.ranges_at_once.max(1)) {
        if splits.len() >= SPLITS_AT_ONCE || ranges.len() + splits.len() * settings.split_width >= settings.max_ranges {
            return;
        }
        let (after, until, span) = {
            let mut b = lock(&range.bounds);
            let Some(progress) = b.progress.clone() else { continue };
            if b.done || b.split_pending || !b.fetched || b.keys_left(&shared.scale, range.after.as_deref()).is_some() {
                continue;
            }
            b.split_pending = true;
            (progress, b.until.clone(), b.page_span)
        };
        let (shared, id) = (shared.clone(), range.id);
        splits.spawn(async move { (id, shared.boundaries(&after, until.as_deref(), span).await) });
    }
}

/// Cuts range `id` at `cuts` (those past its progress): it ends at the first, and new ranges
/// follow it in order up to its old end. Returns how many ranges were added.
fn apply_split<T: Send + 'static>(ranges: &mut VecDeque<Range<T>>, id: u64, cuts: Vec<String>, next_id: &mut u64) -> usize {
    let Some(at) = ranges.iter().position(|r| r.id == id) else {
        return 0;
    };
    let (cuts, until, spacing) = {
        let mut b = lock(&ranges[at].bounds);
        // Nothing found: leave it whole for good. Something found: it may be split again later.
        b.split_pending = cuts.is_empty();
        if b.done {
            return 0;
        }
        let progress = b.progress.clone();
        let until = b.until.clone();
        let cuts: Vec<String> = cuts
            .into_iter()
            .filter(|cut| progress.as_ref().is_none_or(|p| cut > p) && until.as_ref().is_none_or(|u| cut < u))
            .collect();
        let Some(first) = cuts.first() else {
            return 0;
        };
        b.until = Some(first.clone());
        (cuts, until, b.spacing.clone())
    };
    let count = cuts.len();
    for (i, after) in cuts.iter().enumerate() {
        let end = cuts.get(i + 1).cloned().or_else(|| until.clone());
        ranges.insert(at + 1 + i, Range::new(*next_id, Some(after.clone()), end, spacing.clone()));
        *next_id += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LimiterSettings;
    use crate::error::ErrorKind;
    use crate::pagination::Next;
    use std::sync::atomic::AtomicUsize;

    /// A sorted bucket in memory that answers like ListObjectsV2 without a delimiter: tokens are
    /// indices, `start_after` is honoured without a token. It can fail requests that start
    /// after a given key, and throttle whenever more than `throttle_above` are in flight.
    struct FakeBucket {
        keys: Vec<String>,
        requests: AtomicUsize,
        in_flight: AtomicUsize,
        peak_in_flight: AtomicUsize,
        throttled: AtomicUsize,
        throttle_above: usize,
        /// Fail the first page of every range after a split (`start_after` a subtree end, a
        /// whole page asked: not a probe).
        fail_ranges: bool,
        /// Wait per request, so that ranges overlap in time and in-flight counts mean something.
        delay: Duration,
    }

    impl FakeBucket {
        fn new(mut keys: Vec<String>) -> Self {
            keys.sort();
            keys.dedup();
            Self {
                keys,
                requests: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                peak_in_flight: AtomicUsize::new(0),
                throttled: AtomicUsize::new(0),
                throttle_above: usize::MAX,
                fail_ranges: false,
                delay: Duration::from_millis(2),
            }
        }
    }

    impl RangeSource for Arc<FakeBucket> {
        type Item = (String, u64);

        async fn page(&self, query: PageQuery) -> Result<KeyedPage<(String, u64)>, AwsError> {
            self.requests.fetch_add(1, Ordering::SeqCst);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if now > self.throttle_above {
                self.throttled.fetch_add(1, Ordering::SeqCst);
                let mut err = AwsError::new(ErrorKind::Throttled, "S3 ListObjectsV2", "SlowDown");
                err.status = Some(503);
                return Err(err);
            }
            if let Some(after) = &query.start_after {
                if self.fail_ranges && after.ends_with(SUBTREE_END) && query.max_keys > 1 {
                    let mut err = AwsError::new(ErrorKind::Service, "S3 ListObjectsV2", "InternalError");
                    err.status = Some(400);
                    return Err(err);
                }
            }
            let start = match (&query.token, &query.start_after) {
                (Some(token), _) => token.parse::<usize>().unwrap_or(0),
                (None, Some(after)) => self.keys.partition_point(|k| k <= after),
                (None, None) => 0,
            };
            let end = (start + query.max_keys.max(1) as usize).min(self.keys.len());
            let keys: Vec<String> = self.keys[start..end].to_vec();
            let items = keys.iter().map(|k| (k.clone(), k.len() as u64)).collect();
            let next = (end < self.keys.len()).then(|| end.to_string());
            Ok(KeyedPage { keys, items, next })
        }
    }

    fn settings(page_size: i32) -> PartitionSettings {
        PartitionSettings {
            page_size,
            base_backoff: Duration::from_millis(1),
            ..PartitionSettings::default()
        }
    }

    fn limiter() -> Arc<AdaptiveLimiter> {
        AdaptiveLimiter::new(LimiterSettings { min: 1, max: 32, initial: 8 })
    }

    fn listing(bucket: &Arc<FakeBucket>, page_size: i32) -> (PageStream<(String, u64)>, Arc<PartitionStats>) {
        let stats = Arc::new(PartitionStats::default());
        let stream = list_partitioned(bucket.clone(), "", limiter(), settings(page_size), stats.clone(), None);
        (stream, stats)
    }

    fn drain<T: Send + 'static>(stream: &mut PageStream<T>) -> Result<Vec<T>, AwsError> {
        stream.drain(Duration::from_secs(10))
    }

    /// Lists `keys` partitioned with pages of `page_size` and checks it against the keys in
    /// S3's order; returns the stats.
    fn lists_exactly(keys: Vec<String>, page_size: i32) -> Arc<PartitionStats> {
        let bucket = Arc::new(FakeBucket::new(keys));
        let (mut stream, stats) = listing(&bucket, page_size);
        let got = drain(&mut stream).expect("listing");
        let wanted: Vec<(String, u64)> = bucket.keys.iter().map(|k| (k.clone(), k.len() as u64)).collect();
        assert_eq!(got.len(), wanted.len());
        assert!(got == wanted, "the partitioned listing differs from the plain one");
        stats
    }

    #[test]
    fn a_flat_numeric_bucket_lists_exactly_in_order_and_fans_out() {
        let keys = (0..20_000).map(|i| format!("obj/{i:09}")).collect();
        let stats = lists_exactly(keys, 100);
        assert!(PartitionStats::get(&stats.ranges) > 1, "the listing fanned out: {stats:?}");
        assert!(PartitionStats::get(&stats.probes) > 0, "{stats:?}");
    }

    #[test]
    fn a_prefix_heavy_bucket_lists_exactly() {
        let keys = (0..6_000)
            .map(|i| format!("data/p{:03}/sub{}/obj-{i:06}.txt", i % 50, i % 7))
            .collect();
        let stats = lists_exactly(keys, 50);
        assert!(PartitionStats::get(&stats.ranges) > 1, "the listing fanned out: {stats:?}");
    }

    #[test]
    fn keys_around_the_slash_and_unicode_keys_list_exactly() {
        let mut keys = Vec::new();
        for i in 0..400 {
            for stem in ["a-b", "a/", "a0", "a", "a/b/", "ü", "日本/", "😀", "a\u{10FFFF}", "Z", "~"] {
                keys.push(format!("{stem}{i:03}"));
                keys.push(format!("{stem}/{i}"));
            }
        }
        keys.push("a".into());
        keys.push("a/".into());
        lists_exactly(keys, 25);
    }

    #[test]
    fn an_empty_bucket_and_small_ones_cost_what_one_paginator_costs() {
        for n in [0usize, 7, 10, 20, 30] {
            let bucket = Arc::new(FakeBucket::new((0..n).map(|i| format!("k{i:02}")).collect()));
            let (mut stream, stats) = listing(&bucket, 10);
            let got = drain(&mut stream).unwrap();
            assert!(got.iter().map(|(k, _)| k).eq(bucket.keys.iter()), "{n} keys");
            assert_eq!(bucket.requests.load(Ordering::SeqCst), n.div_ceil(10).max(1), "{n} keys: {stats:?}");
            assert_eq!(PartitionStats::get(&stats.probes), 0, "{n} keys");
        }
    }

    #[test]
    fn first_three_costs_two_requests() {
        let bucket = Arc::new(FakeBucket::new((0..100_000).map(|i| format!("obj/{i:09}")).collect()));
        let (mut stream, _) = listing(&bucket, 1000);
        for _ in 0..3 {
            assert!(matches!(stream.next_timeout(Duration::from_secs(5)), Next::Item(_)));
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(bucket.requests.load(Ordering::SeqCst), 2);
        drop(stream);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(bucket.requests.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn dropping_the_stream_stops_every_range() {
        let mut bucket = FakeBucket::new((0..50_000).map(|i| format!("obj/{i:09}")).collect());
        bucket.delay = Duration::from_millis(20);
        let bucket = Arc::new(bucket);
        let (mut stream, stats) = listing(&bucket, 100);
        for _ in 0..2_000 {
            assert!(matches!(stream.next_timeout(Duration::from_secs(5)), Next::Item(_)));
        }
        drop(stream);
        std::thread::sleep(Duration::from_millis(100));
        let after_drop = bucket.requests.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(bucket.requests.load(Ordering::SeqCst), after_drop, "{stats:?}");
        assert!(PartitionStats::get(&stats.ranges) > 1, "the listing had fanned out: {stats:?}");
    }

    #[test]
    fn a_failing_range_is_the_error_and_names_its_keys() {
        let keys: Vec<String> = (0..5_000).map(|i| format!("obj/{i:09}")).collect();
        let mut bucket = FakeBucket::new(keys);
        bucket.fail_ranges = true;
        let bucket = Arc::new(bucket);
        let (mut stream, stats) = listing(&bucket, 100);
        let Err(err) = drain(&mut stream) else {
            panic!("the failing ranges did not fail the listing: {stats:?}");
        };
        assert!(err.message.contains("InternalError"), "{}", err.message);
        assert!(err.message.contains("(listing the range of keys after the keys starting `obj/0000"), "{} ({stats:?})", err.message);
    }

    #[test]
    fn throttling_cuts_the_limit_and_loses_no_key() {
        let mut bucket = FakeBucket::new((0..20_000).map(|i| format!("obj/{i:09}")).collect());
        bucket.throttle_above = 4;
        bucket.delay = Duration::from_millis(5);
        let bucket = Arc::new(bucket);
        let stats = Arc::new(PartitionStats::default());
        let limiter = AdaptiveLimiter::new(LimiterSettings { min: 1, max: 32, initial: 16 });
        let settings = PartitionSettings { max_attempts: 100, ..settings(100) };
        let mut stream = list_partitioned(bucket.clone(), "", limiter.clone(), settings, stats.clone(), None);
        let got = drain(&mut stream).expect("throttled requests are retried");
        assert!(got.iter().map(|(k, _)| k).eq(bucket.keys.iter()), "every key once, in order");
        assert!(bucket.throttled.load(Ordering::SeqCst) > 0, "the test must throttle: {stats:?}");
        let limits = limiter.stats();
        assert!(limits.cuts > 0, "{limits:?}");
        assert!(limits.limit < limits.peak_limit, "{limits:?}");
    }

    #[test]
    fn a_split_of_a_flat_numeric_range_cuts_at_every_sibling_subtree() {
        // 100,000 keys `obj/000000000`-`obj/000099999`: past page three, the ten-thousands digit
        // is where keys still differ, so the rest is cut after `obj/00000…` and after each of
        // `obj/00001…`-`obj/00008…` (the last sibling's piece runs to the end).
        let bucket = Arc::new(FakeBucket::new((0..100_000).map(|i| format!("obj/{i:09}")).collect()));
        let shared = Shared {
            source: bucket.clone(),
            limiter: limiter(),
            settings: settings(1000),
            stats: Arc::new(PartitionStats::default()),
            prefix_chars: 0,
            alphabet: "obj/0123456789".chars().collect(),
            scale: KeyScale::default(),
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let cuts = rt.block_on(shared.boundaries("obj/000002999", None, common_prefix_chars("obj/000002000", "obj/000002999")));
        let wanted: Vec<String> = (0..9).map(|d| format!("obj/0000{d}{SUBTREE_END}")).collect();
        assert_eq!(cuts, wanted, "{:?}", shared.stats);
        assert!(PartitionStats::get(&shared.stats.probes) <= 4, "{:?}", shared.stats);
    }

    #[test]
    fn a_far_bucket_is_listed_many_ranges_at_once_with_few_extra_requests() {
        // 100 pages 10 ms away: cut by the spacing of keys into pieces of about two pages, the
        // ranges next in line are listed whole at once, and each range's last request asks for
        // about the keys left rather than a page past its end.
        let mut bucket = FakeBucket::new((0..100_000).map(|i| format!("obj/{i:09}")).collect());
        bucket.delay = Duration::from_millis(10);
        let bucket = Arc::new(bucket);
        let (mut stream, stats) = listing(&bucket, 1000);
        let got = drain(&mut stream).expect("listing");
        assert!(got.iter().map(|(k, _)| k).eq(bucket.keys.iter()), "every key once, in order");
        let peak = bucket.peak_in_flight.load(Ordering::SeqCst);
        assert!(peak >= 6, "{peak} requests at once at most: {stats:?}");
        assert!(PartitionStats::get(&stats.ranges) >= 20, "{stats:?}");
        let requests = bucket.requests.load(Ordering::SeqCst);
        assert!(requests <= 150, "{requests} requests for 100 pages: {stats:?}");
    }

    #[test]
    fn boundaries_thin_out_evenly_and_keep_the_first() {
        let cuts: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(thin_out(cuts.clone(), 4), ["0", "3", "5", "8"]);
        assert_eq!(thin_out(cuts.clone(), 20), cuts);
        assert_eq!(common_prefix_chars("obj/0001ü", "obj/0001ü9"), 9);
    }
}
