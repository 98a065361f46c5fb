//! [`RowFeed`]: a listing as the shell consumes it, whether replayed from the cache or streamed
//! from the network. A network listing is recorded as it streams and stored only when it
//! completes: a listing cut short (`first 5`, Ctrl-C, an error) is never stored as if complete,
//! and a listing too large to keep (over [`MAX_RECORDED_ROWS`]) just streams.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cache::tiered::{Cache, Freshness, Tier};
use crate::error::AwsError;
use crate::pagination::{Next, PageStream};
use crate::row::Row;

/// Listings longer than this stream without being stored.
pub const MAX_RECORDED_ROWS: usize = 200_000;

/// Where a listing's rows come from, and how old they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    pub tier: Tier,
    /// When the rows were fetched from the network (now, for a network listing).
    pub fetched_at: SystemTime,
}

/// Where to store a listing once it completes.
struct Recording {
    cache: Arc<Cache>,
    key: String,
    /// The key to store under after all, decided when the listing completes (see
    /// [`RowFeed::store_under`]).
    final_key: Option<FinalKey>,
    ttl: Duration,
    rows: Vec<Row>,
}

type FinalKey = Box<dyn FnOnce() -> Option<String> + Send>;

impl Recording {
    fn store(mut self) {
        let key = self.final_key.take().and_then(|decide| decide()).unwrap_or_else(|| self.key.clone());
        self.cache.store(key, std::mem::take(&mut self.rows), self.ttl);
    }
}

impl Drop for Recording {
    /// Stored under its key or not (cut short, too big, an error, stored under another key):
    /// nobody need wait for this listing any more (see [`Cache::lookup_or_wait`]).
    fn drop(&mut self) {
        self.cache.abandon(&self.key);
    }
}

enum Inner {
    Replay(std::vec::IntoIter<Row>),
    Live {
        pages: PageStream<Row>,
        recording: Option<Recording>,
    },
}

/// A listing being consumed.
pub struct RowFeed {
    inner: Inner,
    pub source: Source,
}

impl RowFeed {
    /// A listing that bypasses the cache entirely.
    pub fn live(pages: PageStream<Row>) -> Self {
        Self {
            inner: Inner::Live {
                pages,
                recording: None,
            },
            source: Source {
                tier: Tier::Network,
                fetched_at: SystemTime::now(),
            },
        }
    }

    /// A cached listing: replayed when a fresh entry exists (unless `freshness` says otherwise)
    /// or another machine's fetch of it ends within its lease, else `start()`ed and recorded. `ttl` `None` means the operation is not cacheable.
    pub fn cached(
        cache: &Arc<Cache>,
        key: String,
        service: &str,
        ttl: Option<Duration>,
        freshness: Freshness,
        start: impl FnOnce() -> Result<PageStream<Row>, AwsError>,
    ) -> Result<Self, AwsError> {
        let ttl = ttl.filter(|_| freshness != Freshness::Bypass);
        if let (Some(_), Freshness::Normal) = (ttl, freshness)
            && let Some((entry, tier)) = cache.lookup_or_wait(&key, service)
        {
            return Ok(Self {
                inner: Inner::Replay(entry.rows.clone().into_iter()),
                source: Source {
                    tier,
                    fetched_at: entry.created_at,
                },
            });
        }
        cache.count_network(&key, service);
        let pages = start().inspect_err(|_| cache.abandon(&key))?;
        Ok(Self {
            inner: Inner::Live {
                pages,
                recording: ttl.map(|ttl| Recording {
                    cache: cache.clone(),
                    key,
                    final_key: None,
                    ttl,
                    rows: Vec::new(),
                }),
            },
            source: Source {
                tier: Tier::Network,
                fetched_at: cache.now(),
            },
        })
    }

    /// The next row, waiting at most `wait` for the network.
    pub fn next_timeout(&mut self, wait: Duration) -> Next<Row> {
        match &mut self.inner {
            Inner::Replay(rows) => rows.next().map_or(Next::End, Next::Item),
            Inner::Live { pages, recording } => {
                let next = pages.next_timeout(wait);
                match &next {
                    Next::Item(row) => {
                        if let Some(rec) = recording {
                            if rec.rows.len() < MAX_RECORDED_ROWS {
                                rec.rows.push(row.clone());
                            } else {
                                *recording = None; // too big to keep: just stream
                            }
                        }
                    }
                    Next::End => {
                        if let Some(rec) = recording.take() {
                            rec.store();
                        }
                    }
                    Next::Error(_) => *recording = None,
                    Next::Pending => {}
                }
                next
            }
        }
    }

    /// The next page, for an async consumer (several listings merged, see [`crate::fanout`]):
    /// a replayed listing comes as one page; a network listing is recorded as with
    /// [`RowFeed::next_timeout`] and stored once it ends (off the runtime's workers, since the
    /// disk tier writes synchronously). `None` once the listing is complete.
    pub async fn next_page(&mut self) -> Option<Result<Vec<Row>, AwsError>> {
        match &mut self.inner {
            Inner::Replay(rows) => {
                let rest: Vec<Row> = rows.by_ref().collect();
                (!rest.is_empty()).then_some(Ok(rest))
            }
            Inner::Live { pages, recording } => {
                let next = pages.next_page().await;
                match &next {
                    Some(Ok(page)) => {
                        if let Some(rec) = recording {
                            if rec.rows.len() + page.len() <= MAX_RECORDED_ROWS {
                                rec.rows.extend(page.iter().cloned());
                            } else {
                                *recording = None; // too big to keep: just stream
                            }
                        }
                    }
                    None => {
                        if let Some(rec) = recording.take() {
                            let stored = tokio::task::spawn_blocking(move || rec.store());
                            // A store that failed to run leaves the entry uncached, nothing worse.
                            let _ = stored.await;
                        }
                    }
                    Some(Err(_)) => *recording = None,
                }
                next
            }
        }
    }

    /// Decides the key a network listing is stored under when it completes, by `decide()`
    /// then (`None`: the key it was looked up under). What a listing learns on its way may
    /// change where its answer belongs: an S3 listing is keyed by its bucket's region, which
    /// its first page may have just found out.
    pub fn store_under(mut self, decide: impl FnOnce() -> Option<String> + Send + 'static) -> Self {
        if let Inner::Live { recording: Some(rec), .. } = &mut self.inner {
            rec.final_key = Some(Box::new(decide));
        }
        self
    }

    /// Stops the listing; nothing partial is stored.
    pub fn cancel(&mut self) {
        if let Inner::Live { pages, recording } = &mut self.inner {
            *recording = None;
            pages.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::clock::MockClock;
    use crate::row::Field;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn pages(n_pages: usize, requests: Arc<AtomicUsize>) -> PageStream<Row> {
        PageStream::spawn(move |token| {
            let requests = requests.clone();
            async move {
                requests.fetch_add(1, Ordering::SeqCst);
                let page: usize = token.map_or(0, |t| t.parse().unwrap_or(0));
                let rows = (0..10).map(|i| Row::new().with("i", Field::Int((page * 10 + i) as i64))).collect();
                Ok((rows, (page + 1 < n_pages).then(|| (page + 1).to_string())))
            }
        })
    }

    fn drain(feed: &mut RowFeed) -> usize {
        let mut n = 0;
        loop {
            match feed.next_timeout(Duration::from_secs(5)) {
                Next::Item(_) => n += 1,
                Next::End => return n,
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_complete_listing_replays_from_memory() {
        let cache = Arc::new(Cache::builder().clock(Arc::new(MockClock::new())).build());
        let requests = Arc::new(AtomicUsize::new(0));
        let ttl = Some(Duration::from_secs(60));
        let start = || Ok(pages(3, requests.clone()));
        let mut feed = RowFeed::cached(&cache, "k".into(), "s3", ttl, Freshness::Normal, start).unwrap();
        assert_eq!(feed.source.tier, Tier::Network);
        assert_eq!(drain(&mut feed), 30);
        let start = || Ok(pages(3, requests.clone()));
        let mut again = RowFeed::cached(&cache, "k".into(), "s3", ttl, Freshness::Normal, start).unwrap();
        assert_eq!(again.source.tier, Tier::Memory);
        assert_eq!(drain(&mut again), 30);
        assert_eq!(requests.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_listing_cut_short_is_not_stored() {
        let cache = Arc::new(Cache::builder().clock(Arc::new(MockClock::new())).build());
        let requests = Arc::new(AtomicUsize::new(0));
        let ttl = Some(Duration::from_secs(60));
        let start = || Ok(pages(3, requests.clone()));
        let mut feed = RowFeed::cached(&cache, "k".into(), "s3", ttl, Freshness::Normal, start).unwrap();
        for _ in 0..5 {
            assert!(matches!(feed.next_timeout(Duration::from_secs(5)), Next::Item(_)));
        }
        drop(feed);
        assert!(cache.lookup("k", "s3").is_none());
        let mut feed = RowFeed::cached(&cache, "k".into(), "s3", ttl, Freshness::Normal, || Ok(pages(3, requests.clone()))).unwrap();
        assert!(matches!(feed.next_timeout(Duration::from_secs(5)), Next::Item(_)));
        feed.cancel();
        assert!(cache.lookup("k", "s3").is_none());
    }

    #[test]
    fn a_listing_read_by_pages_is_stored_and_replays_as_one_page() {
        let cache = Arc::new(Cache::builder().clock(Arc::new(MockClock::new())).build());
        let requests = Arc::new(AtomicUsize::new(0));
        let ttl = Some(Duration::from_secs(60));
        let start = || Ok(pages(3, requests.clone()));
        let mut feed = RowFeed::cached(&cache, "k".into(), "s3", ttl, Freshness::Normal, start).unwrap();
        let sizes = crate::runtime::runtime().block_on(async {
            let mut sizes = Vec::new();
            while let Some(page) = feed.next_page().await {
                sizes.push(page.unwrap().len());
            }
            sizes
        });
        assert_eq!(sizes, [10, 10, 10]);
        let start = || Ok(pages(3, requests.clone()));
        let mut again = RowFeed::cached(&cache, "k".into(), "s3", ttl, Freshness::Normal, start).unwrap();
        assert_eq!(again.source.tier, Tier::Memory);
        let sizes = crate::runtime::runtime().block_on(async {
            let mut sizes = Vec::new();
            while let Some(page) = again.next_page().await {
                sizes.push(page.unwrap().len());
            }
            sizes
        });
        assert_eq!(sizes, [30]);
        assert_eq!(requests.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn uncacheable_and_bypassed_listings_are_not_stored() {
        let cache = Arc::new(Cache::builder().clock(Arc::new(MockClock::new())).build());
        let requests = Arc::new(AtomicUsize::new(0));
        let mut feed = RowFeed::cached(&cache, "a".into(), "s3", None, Freshness::Normal, || Ok(pages(1, requests.clone()))).unwrap();
        drain(&mut feed);
        let mut feed = RowFeed::cached(&cache, "b".into(), "s3", Some(Duration::from_secs(9)), Freshness::Bypass, || Ok(pages(1, requests.clone()))).unwrap();
        drain(&mut feed);
        assert!(cache.keys().is_empty());
    }
}
