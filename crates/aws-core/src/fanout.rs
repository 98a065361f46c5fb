//! Several reads at once: [`RequestLimit`], a bound on the requests one command has in flight,
//! and [`Merged`], several paginated listings (one per region, say) consumed as one stream whose
//! items arrive as soon as any listing has them, each tagged with the listing it came from.
//!
//! Memory stays bounded whatever the listings' lengths: each listing is a [`PageStream`] (at most
//! one page prefetched) and its forwarding task holds at most one more page while the consumer
//! is busy. The slowest listing never delays the others: `first 5` takes whatever comes first.
//! Dropping a [`Merged`] aborts every listing still running.
//!
//! The limit is the request engine's [`AdaptiveLimiter`]: throttling and timeouts cut it, as for
//! bulk jobs, and successes let it grow back, up to the bound given. Latency is not judged: the
//! requests go to regions near and far.
//!
//! Not here: retries (the SDK's standard retry mode covers these few requests) or item-level
//! results (that is [`crate::engine::BulkJob`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::cache::RowFeed;
use crate::engine::{AdaptiveLimiter, LimiterSettings, Signal, signal_of};
use crate::error::AwsError;
use crate::pagination::PageStream;
use crate::row::Row;
use crate::runtime::runtime;

/// Requests in flight at once for a read spread over regions or resources: enough to hide
/// latency, few enough not to trip the service's rate limits.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// A shared, adaptive bound on the requests in flight: each request runs holding a permit of
/// the engine's limiter and reports how it went.
#[derive(Clone, Debug)]
pub struct RequestLimit(Arc<AdaptiveLimiter>);

impl RequestLimit {
    /// At most `permits` requests at once (at least one); fewer while the service is slow or
    /// throttles.
    pub fn new(permits: usize) -> Self {
        let max = permits.max(1);
        Self(AdaptiveLimiter::new(LimiterSettings { min: 1, max, initial: max }))
    }

    /// Runs `request` once a permit is free, holding it until the request completes.
    pub async fn run<T>(&self, request: impl Future<Output = Result<T, AwsError>>) -> Result<T, AwsError> {
        let permit = self.0.acquire().await;
        let result = request.await;
        // These requests may go to regions near and far: their latencies are not comparable,
        // so only throttling and timeouts count against the limit.
        let signal = match signal_of(&result, std::time::Duration::ZERO) {
            Signal::Answered(_) => Signal::Succeeded,
            other => other,
        };
        permit.finish(signal);
        result
    }
}

impl Default for RequestLimit {
    fn default() -> Self {
        Self::new(DEFAULT_CONCURRENCY)
    }
}

/// `err` as the failure of one region among several: the region in its operation (the title
/// the shell shows) and in its message.
pub fn in_region(mut err: AwsError, region: &str) -> AwsError {
    err.operation = format!("{} in {region}", err.operation);
    err.message = format!("{} (region {region})", err.message);
    err
}

/// `err` as the failure of one account among several (`who`: "account 1234...", "profile
/// dev"): it in its operation and its message, as [`in_region`] does for regions.
pub fn in_account(mut err: AwsError, who: &str) -> AwsError {
    err.operation = format!("{} in {who}", err.operation);
    if !err.message.contains(who.rsplit(' ').next().unwrap_or(who)) {
        err.message = format!("{} ({who})", err.message);
    }
    err
}

/// A listing that can be read page by page from async code.
pub trait PageSource: Send + 'static {
    type Item: Send + 'static;

    /// The next page, `None` once complete; an error ends the listing.
    fn next_page(&mut self) -> impl Future<Output = Option<Result<Vec<Self::Item>, AwsError>>> + Send;
}

impl<T: Send + 'static> PageSource for PageStream<T> {
    type Item = T;

    fn next_page(&mut self) -> impl Future<Output = Option<Result<Vec<T>, AwsError>>> + Send {
        PageStream::next_page(self)
    }
}

impl PageSource for RowFeed {
    type Item = Row;

    fn next_page(&mut self) -> impl Future<Output = Option<Result<Vec<Row>, AwsError>>> + Send {
        RowFeed::next_page(self)
    }
}

/// A listing that failed before it started (its session could not be built, say): it yields
/// its error, so the failure takes its place among the others instead of failing them all.
pub struct Failed<T>(Option<AwsError>, std::marker::PhantomData<fn() -> T>);

impl<T> Failed<T> {
    pub fn new(error: AwsError) -> Self {
        Self(Some(error), std::marker::PhantomData)
    }
}

impl<T: Send + 'static> PageSource for Failed<T> {
    type Item = T;

    async fn next_page(&mut self) -> Option<Result<Vec<T>, AwsError>> {
        self.0.take().map(Err)
    }
}

/// Either a listing or its failure to start.
pub enum Source<S: PageSource> {
    Started(S),
    Failed(Failed<S::Item>),
}

impl<S: PageSource> Source<S> {
    pub fn from_result(result: Result<S, AwsError>) -> Self {
        match result {
            Ok(source) => Source::Started(source),
            Err(error) => Source::Failed(Failed::new(error)),
        }
    }
}

impl<S: PageSource> PageSource for Source<S> {
    type Item = S::Item;

    async fn next_page(&mut self) -> Option<Result<Vec<S::Item>, AwsError>> {
        match self {
            Source::Started(source) => source.next_page().await,
            Source::Failed(failed) => failed.next_page().await,
        }
    }
}

/// What the consumer of a [`Merged`] gets next.
#[derive(Debug)]
pub enum MergedNext<T> {
    /// An item of listing number `source` (its index in the list given to [`Merged::spawn`]).
    Item { source: usize, item: T },
    /// Listing number `source` failed; the others go on.
    Failed { source: usize, error: AwsError },
    /// Every listing is complete (or failed).
    End,
    /// Nothing arrived within the wait; ask again (after checking for Ctrl-C).
    Pending,
}

/// Several listings read concurrently and consumed as one stream, in arrival order.
pub struct Merged<T> {
    rx: mpsc::Receiver<(usize, Result<Vec<T>, AwsError>)>,
    current: Option<(usize, std::vec::IntoIter<T>)>,
    /// The forwarding tasks; dropping the set aborts them, and with them their listings.
    tasks: JoinSet<()>,
    finished: bool,
}

impl<T: Send + 'static> Merged<T> {
    /// Starts forwarding every source's pages as they arrive.
    pub fn spawn<S: PageSource<Item = T>>(sources: Vec<S>) -> Self {
        // Room for one page: a forwarding task that has a page waits here for the consumer,
        // instead of reading further ahead.
        let (tx, rx) = mpsc::channel(1);
        let mut tasks = JoinSet::new();
        for (index, mut source) in sources.into_iter().enumerate() {
            let tx = tx.clone();
            tasks.spawn_on(
                async move {
                    while let Some(page) = source.next_page().await {
                        let failed = page.is_err();
                        if tx.send((index, page)).await.is_err() || failed {
                            return; // the consumer is gone, or this listing is over
                        }
                    }
                },
                runtime().handle(),
            );
        }
        Self {
            rx,
            current: None,
            tasks,
            finished: false,
        }
    }

    /// The next item of any listing, waiting at most `wait` for one to arrive. Never call it
    /// from inside the runtime.
    pub fn next_timeout(&mut self, wait: Duration) -> MergedNext<T> {
        loop {
            if let Some((source, items)) = &mut self.current {
                if let Some(item) = items.next() {
                    return MergedNext::Item {
                        source: *source,
                        item,
                    };
                }
                self.current = None;
            }
            if self.finished {
                return MergedNext::End;
            }
            let received = runtime().block_on(async {
                // Built inside the runtime: a timer made outside it panics.
                tokio::time::timeout(wait, self.rx.recv()).await
            });
            match received {
                Err(_elapsed) => return MergedNext::Pending,
                // Every sender is gone: all listings are done.
                Ok(None) => {
                    self.finished = true;
                    return MergedNext::End;
                }
                Ok(Some((source, Ok(page)))) => self.current = Some((source, page.into_iter())),
                Ok(Some((source, Err(error)))) => return MergedNext::Failed { source, error },
            }
        }
    }

    /// Stops every listing now (also done on drop).
    pub fn cancel(&mut self) {
        self.tasks.abort_all();
        self.finished = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    /// A listing of `pages` pages of `per_page` numbers starting at `base`, each page taking
    /// `delay`, counting its requests.
    fn listing(base: usize, pages: usize, per_page: usize, delay: Duration, requests: Arc<AtomicUsize>) -> PageStream<usize> {
        PageStream::spawn(move |token| {
            let requests = requests.clone();
            async move {
                tokio::time::sleep(delay).await;
                requests.fetch_add(1, Ordering::SeqCst);
                let page: usize = token.map_or(0, |t| t.parse().unwrap_or(0));
                let first = base + page * per_page;
                let next = (page + 1 < pages).then(|| (page + 1).to_string());
                Ok(((first..first + per_page).collect(), next))
            }
        })
    }

    /// The items and the failures of a merged stream, each with its listing's number.
    type Drained<T> = (Vec<(usize, T)>, Vec<(usize, AwsError)>);

    fn drain<T: Send + 'static>(merged: &mut Merged<T>) -> Drained<T> {
        let (mut items, mut errors) = (Vec::new(), Vec::new());
        loop {
            match merged.next_timeout(Duration::from_secs(5)) {
                MergedNext::Item { source, item } => items.push((source, item)),
                MergedNext::Failed { source, error } => errors.push((source, error)),
                MergedNext::End => return (items, errors),
                MergedNext::Pending => {}
            }
        }
    }

    #[test]
    fn every_item_of_every_listing_comes_once_tagged_with_its_listing() {
        let requests = Arc::new(AtomicUsize::new(0));
        let sources = vec![
            listing(0, 3, 10, Duration::ZERO, requests.clone()),
            listing(1000, 2, 5, Duration::from_millis(20), requests.clone()),
            listing(2000, 1, 1, Duration::ZERO, requests.clone()),
        ];
        let (mut items, errors) = drain(&mut Merged::spawn(sources));
        assert!(errors.is_empty());
        items.sort();
        let expected: Vec<(usize, usize)> = (0..30)
            .map(|i| (0, i))
            .chain((1000..1010).map(|i| (1, i)))
            .chain([(2, 2000)])
            .collect();
        assert_eq!(items, expected);
        assert_eq!(requests.load(Ordering::SeqCst), 3 + 2 + 1);
    }

    #[test]
    fn the_slowest_listing_does_not_delay_the_first_items() {
        let requests = Arc::new(AtomicUsize::new(0));
        let sources = vec![
            listing(0, 1, 3, Duration::from_secs(30), requests.clone()),
            listing(100, 1, 3, Duration::ZERO, requests.clone()),
        ];
        let started = Instant::now();
        let mut merged = Merged::spawn(sources);
        let mut first = Vec::new();
        while first.len() < 3 {
            match merged.next_timeout(Duration::from_secs(5)) {
                MergedNext::Item { source, item } => first.push((source, item)),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(first, [(1, 100), (1, 101), (1, 102)]);
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        drop(merged); // aborts the slow listing
    }

    #[test]
    fn a_failed_listing_is_reported_and_the_others_go_on() {
        let requests = Arc::new(AtomicUsize::new(0));
        let failing: PageStream<usize> = PageStream::spawn(|token| async move {
            match token {
                None => Ok((vec![7], Some("next".into()))),
                Some(_) => Err(AwsError::new(ErrorKind::AccessDenied, "test", "denied")),
            }
        });
        let sources = vec![
            Source::Started(failing),
            Source::Failed(Failed::new(AwsError::new(ErrorKind::Network, "test", "no session"))),
            Source::Started(listing(10, 2, 2, Duration::ZERO, requests)),
        ];
        let (mut items, errors) = drain(&mut Merged::spawn(sources));
        items.sort();
        assert_eq!(items, [(0, 7), (2, 10), (2, 11), (2, 12), (2, 13)]);
        let mut failed: Vec<(usize, ErrorKind)> = errors.iter().map(|(s, e)| (*s, e.kind)).collect();
        failed.sort_by_key(|(s, _)| *s);
        assert_eq!(failed, [(0, ErrorKind::AccessDenied), (1, ErrorKind::Network)]);
    }

    #[test]
    fn memory_stays_bounded_while_the_consumer_waits() {
        let requests = Arc::new(AtomicUsize::new(0));
        let sources: Vec<_> = (0..4)
            .map(|i| listing(i * 1_000_000, 1000, 10, Duration::ZERO, requests.clone()))
            .collect();
        let mut merged = Merged::spawn(sources);
        assert!(matches!(merged.next_timeout(Duration::from_secs(5)), MergedNext::Item { .. }));
        std::thread::sleep(Duration::from_millis(300));
        // Per listing: one page in the consumer's hands or the merged channel, one held by its
        // forwarding task, one prefetched by its page stream, one being fetched.
        let made = requests.load(Ordering::SeqCst);
        assert!(made <= 4 * 4, "{made} pages fetched for a consumer that took one item");
        drop(merged);
        std::thread::sleep(Duration::from_millis(100));
        let after_drop = requests.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(requests.load(Ordering::SeqCst), after_drop, "dropping stops every listing");
    }

    #[test]
    fn the_request_limit_bounds_requests_in_flight() {
        let limit = RequestLimit::new(3);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        runtime().block_on(async {
            let mut set = JoinSet::new();
            for _ in 0..20 {
                let (limit, in_flight, most) = (limit.clone(), in_flight.clone(), most.clone());
                set.spawn(async move {
                    limit
                        .run(async {
                            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            Ok(())
                        })
                        .await
                });
            }
            while set.join_next().await.is_some() {}
        });
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }
}
