//! [`PageStream`]: a paginated listing as a stream of items, for consumers that pull one item at
//! a time from a synchronous thread.
//!
//! A task on the shared runtime fetches pages and hands them over a channel with room for one
//! page. It reserves that room *before* it fetches, so it is never more than one page ahead of
//! the consumer: `first 3` on a listing of millions costs the page it reads plus at most one
//! prefetched page, and memory stays bounded by two pages whatever the listing's length.
//! Dropping the stream aborts the task, cancelling any request in flight.
//!
//! [`PageStream::map`] makes each page into other items only when the consumer takes it, so the
//! pages waiting in a channel (or in a partitioned listing's buffer) stay in the producer's own
//! compact form, and at most one page of the consumer's form exists at a time.

use std::future::{Future, poll_fn};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::error::AwsError;
use crate::runtime::runtime;

/// The result of one page request: its items and the token of the next page, if any.
pub type Page<T> = Result<(Vec<T>, Option<String>), AwsError>;

/// Where a producer of [`PageStream::produce`] sends its pages (an error ends the listing).
pub type PageSender<T> = mpsc::Sender<Result<Vec<T>, AwsError>>;

/// What the consumer gets from [`PageStream::next_timeout`].
#[derive(Debug)]
pub enum Next<T> {
    Item(T),
    /// The listing failed; the stream ends after this.
    Error(AwsError),
    /// The listing is complete.
    End,
    /// Nothing arrived within the wait; ask again (after checking for Ctrl-C).
    Pending,
}

impl<T> Next<T> {
    /// The item made into another; the other answers as they are.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Next<U> {
        match self {
            Next::Item(item) => Next::Item(f(item)),
            Next::Error(err) => Next::Error(err),
            Next::End => Next::End,
            Next::Pending => Next::Pending,
        }
    }
}

/// Where the consumer takes pages from: the producer's channel, or pages of another stream made
/// into these items as they are taken ([`PageStream::map`]).
trait PageSource<T>: Send {
    fn poll_page(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Vec<T>, AwsError>>>;
}

impl<T: Send> PageSource<T> for mpsc::Receiver<Result<Vec<T>, AwsError>> {
    fn poll_page(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Vec<T>, AwsError>>> {
        self.poll_recv(cx)
    }
}

/// The pages of `source`, each item made by `convert` when its page is taken.
struct MappedPages<S, F> {
    source: Box<dyn PageSource<S>>,
    convert: F,
}

impl<S, T, F> PageSource<T> for MappedPages<S, F>
where
    S: Send,
    F: FnMut(S) -> T + Send,
{
    fn poll_page(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Vec<T>, AwsError>>> {
        self.source
            .poll_page(cx)
            .map(|page| page.map(|items| items.map(|items| items.into_iter().map(&mut self.convert).collect())))
    }
}

/// A listing being fetched page by page in the background.
pub struct PageStream<T> {
    rx: Box<dyn PageSource<T>>,
    current: std::vec::IntoIter<T>,
    /// The fetch, aborted on drop; `None` once handed to a [`PageStream::map`] of this stream.
    task: Option<AbortHandle>,
    finished: bool,
}

impl<T: Send + 'static> PageStream<T> {
    /// Starts fetching. `fetch(token)` gets `None` for the first page and the previous page's
    /// continuation token after that; the listing ends when a page has no next token.
    pub fn spawn<F, Fut>(mut fetch: F) -> Self
    where
        F: FnMut(Option<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Page<T>> + Send + 'static,
    {
        Self::produce(move |tx| async move {
            let mut token: Option<String> = None;
            loop {
                // Wait for room first: this is what keeps us one page ahead, not more.
                let Ok(permit) = tx.reserve().await else {
                    return; // the consumer is gone
                };
                match fetch(token.take()).await {
                    Ok((items, next)) => {
                        permit.send(Ok(items));
                        match next {
                            Some(t) if !t.is_empty() => token = Some(t),
                            _ => return,
                        }
                    }
                    Err(err) => {
                        permit.send(Err(err));
                        return;
                    }
                }
            }
        })
    }

    /// Starts `produce` on the shared runtime with the sending end of a channel with room for
    /// one page: a listing that is more than one paginator (see [`crate::s3::partition`]) sends
    /// its pages there, reserving room before it fetches to stay one page ahead. The stream ends
    /// when the producer drops the sender; dropping the stream aborts the producer.
    pub fn produce<F, Fut>(produce: F) -> Self
    where
        F: FnOnce(PageSender<T>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(1);
        let task = runtime().spawn(produce(tx));
        Self {
            rx: Box::new(rx),
            current: Vec::new().into_iter(),
            task: Some(task.abort_handle()),
            finished: false,
        }
    }

    /// The next item, waiting at most `wait` for a page to arrive.
    pub fn next_timeout(&mut self, wait: Duration) -> Next<T> {
        loop {
            if let Some(item) = self.current.next() {
                return Next::Item(item);
            }
            if self.finished {
                return Next::End;
            }
            let received = runtime().block_on(async {
                // Built inside the runtime: a timer made outside it panics.
                tokio::time::timeout(wait, poll_fn(|cx| self.rx.poll_page(cx))).await
            });
            match received {
                Err(_elapsed) => return Next::Pending,
                Ok(None) => {
                    self.finished = true;
                    return Next::End;
                }
                Ok(Some(Ok(page))) => self.current = page.into_iter(),
                Ok(Some(Err(err))) => {
                    self.finished = true;
                    return Next::Error(err);
                }
            }
        }
    }

    /// The rest of the current page, else the next page as it arrives, for an async consumer
    /// (several listings merged, see [`crate::fanout`]); `None` once the listing is complete.
    /// An error ends the listing. Cancel-safe: a page is only taken from the channel when it is
    /// returned.
    pub async fn next_page(&mut self) -> Option<Result<Vec<T>, AwsError>> {
        let rest: Vec<T> = self.current.by_ref().collect();
        if !rest.is_empty() {
            return Some(Ok(rest));
        }
        if self.finished {
            return None;
        }
        let received = poll_fn(|cx| self.rx.poll_page(cx)).await;
        if !matches!(received, Some(Ok(_))) {
            self.finished = true;
        }
        received
    }

    /// The same listing with each item made by `convert`, page by page as the consumer takes
    /// pages: the pages fetched ahead wait in their compact form (a listed object rather than
    /// its row of shell text), which is what bounds a partitioned listing's memory. Items of the
    /// page already being consumed are converted at once.
    pub fn map<U: Send + 'static>(mut self, mut convert: impl FnMut(T) -> U + Send + 'static) -> PageStream<U> {
        let current: Vec<U> = self.current.by_ref().map(&mut convert).collect();
        let source = std::mem::replace(&mut self.rx, Box::new(mpsc::channel(1).1));
        PageStream {
            rx: Box::new(MappedPages { source, convert }),
            current: current.into_iter(),
            // Taken from under this stream's `Drop`: the new stream aborts the fetch when dropped.
            task: self.task.take(),
            finished: self.finished,
        }
    }

    /// Stops the background fetch now (also done on drop).
    pub fn cancel(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        self.finished = true;
    }
}

#[cfg(test)]
impl<T: Send + 'static> PageStream<T> {
    /// Every item left, in order, or the listing's error; for tests, which fail when no page
    /// comes within `wait`.
    pub(crate) fn drain(&mut self, wait: Duration) -> Result<Vec<T>, AwsError> {
        let mut out = Vec::new();
        loop {
            match self.next_timeout(wait) {
                Next::Item(item) => out.push(item),
                Next::End => return Ok(out),
                Next::Error(err) => return Err(err),
                Next::Pending => panic!("no page within {wait:?}"),
            }
        }
    }
}

impl<T> Drop for PageStream<T> {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item of a listing, in order.
    fn collect_all<T: Send + 'static>(mut stream: PageStream<T>) -> Result<Vec<T>, AwsError> {
        stream.drain(Duration::from_secs(5))
    }
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fake listing of `pages` pages of `per_page` numbers, counting the requests it serves.
    fn counted_listing(pages: usize, per_page: usize, requests: Arc<AtomicUsize>) -> PageStream<usize> {
        PageStream::spawn(move |token| {
            let requests = requests.clone();
            async move {
                requests.fetch_add(1, Ordering::SeqCst);
                let page: usize = token.map_or(0, |t| t.parse().unwrap_or(0));
                let items = (page * per_page..(page + 1) * per_page).collect();
                let next = (page + 1 < pages).then(|| (page + 1).to_string());
                Ok((items, next))
            }
        })
    }

    #[test]
    fn yields_every_item_in_order() {
        let requests = Arc::new(AtomicUsize::new(0));
        let all = collect_all(counted_listing(5, 10, requests.clone())).unwrap();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        assert_eq!(requests.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn never_more_than_one_page_ahead() {
        let requests = Arc::new(AtomicUsize::new(0));
        let mut stream = counted_listing(1000, 10, requests.clone());
        for expected in 0..3 {
            match stream.next_timeout(Duration::from_secs(5)) {
                Next::Item(i) => assert_eq!(i, expected),
                other => panic!("unexpected {other:?}"),
            }
        }
        // Give the producer every chance to run ahead.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(requests.load(Ordering::SeqCst), 2);
        drop(stream);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(requests.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn pages_can_be_awaited_after_items_were_taken() {
        let requests = Arc::new(AtomicUsize::new(0));
        let mut stream = counted_listing(3, 4, requests);
        assert!(matches!(stream.next_timeout(Duration::from_secs(5)), Next::Item(0)));
        let pages = runtime().block_on(async {
            let mut pages = Vec::new();
            while let Some(page) = stream.next_page().await {
                pages.push(page.unwrap());
            }
            pages
        });
        // The rest of the first page, then the two others whole.
        assert_eq!(pages, [vec![1, 2, 3], vec![4, 5, 6, 7], vec![8, 9, 10, 11]]);
        assert!(matches!(stream.next_timeout(Duration::from_secs(5)), Next::End));
    }

    #[test]
    fn an_error_ends_the_stream() {
        let mut stream: PageStream<u8> = PageStream::spawn(|token| async move {
            match token {
                None => Ok((vec![1], Some("next".into()))),
                Some(_) => Err(AwsError::new(crate::ErrorKind::Service, "test", "boom")),
            }
        });
        assert!(matches!(stream.next_timeout(Duration::from_secs(5)), Next::Item(1)));
        assert!(matches!(stream.next_timeout(Duration::from_secs(5)), Next::Error(_)));
        assert!(matches!(stream.next_timeout(Duration::from_secs(5)), Next::End));
    }

    #[test]
    fn a_mapped_stream_converts_each_page_as_it_is_taken_and_stays_one_page_ahead() {
        let requests = Arc::new(AtomicUsize::new(0));
        let mut plain = counted_listing(1000, 10, requests.clone());
        // One item taken before mapping: the rest of its page is converted too.
        assert!(matches!(plain.next_timeout(Duration::from_secs(5)), Next::Item(0)));
        let converted = Arc::new(AtomicUsize::new(0));
        let counter = converted.clone();
        let mut mapped = plain.map(move |i| {
            counter.fetch_add(1, Ordering::SeqCst);
            format!("#{i}")
        });
        for expected in 1..13 {
            match mapped.next_timeout(Duration::from_secs(5)) {
                Next::Item(s) => assert_eq!(s, format!("#{expected}")),
                other => panic!("unexpected {other:?}"),
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        // Pages 1 and 2 taken (and converted), page 3 fetched ahead and waiting unconverted.
        assert_eq!(converted.load(Ordering::SeqCst), 19);
        assert_eq!(requests.load(Ordering::SeqCst), 3);
        // Dropping the mapped stream stops the fetch it took over.
        drop(mapped);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(requests.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_mapped_stream_ends_with_its_sources_error() {
        let stream: PageStream<u8> = PageStream::spawn(|token| async move {
            match token {
                None => Ok((vec![1, 2], Some("next".into()))),
                Some(_) => Err(AwsError::new(crate::ErrorKind::Service, "test", "boom")),
            }
        });
        let mut mapped = stream.map(u32::from);
        assert!(matches!(mapped.next_timeout(Duration::from_secs(5)), Next::Item(1)));
        assert!(matches!(mapped.next_timeout(Duration::from_secs(5)), Next::Item(2)));
        assert!(matches!(mapped.next_timeout(Duration::from_secs(5)), Next::Error(_)));
        assert!(matches!(mapped.next_timeout(Duration::from_secs(5)), Next::End));
    }
}
