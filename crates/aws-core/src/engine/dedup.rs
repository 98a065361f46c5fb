//! [`Dedup`]: identical requests share one trip to the service.
//!
//! Two callers asking the same thing at the same time (the same key streamed twice into
//! `aws s3 head`, or two commands of a pipeline) get the answer of one request. For a short
//! window after it finished, a successful answer is reused too: a pipeline that heads an object
//! and then opens it a moment later does not need the head again. Failures are shared only with
//! the callers that were already waiting: a later caller gets a fresh try.
//!
//! The first caller's future does the work; if it is cancelled (its job was dropped), the next
//! waiter runs its own, so a cancellation never leaves others waiting forever.
//!
//! Not here: storing answers beyond the window (that is the cache) or deciding which requests
//! are identical (callers build the key, which must include the session).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

struct Slot<V> {
    cell: Arc<OnceCell<V>>,
    /// When the answer arrived; `None` while in flight.
    finished: Option<Instant>,
}

struct Slots<V> {
    by_key: HashMap<String, Slot<V>>,
    /// Finished keys in the order they finished, for expiry.
    finished: VecDeque<(Instant, String)>,
}

/// Shares in-flight and just-finished answers between identical requests.
pub struct Dedup<T, E> {
    slots: Mutex<Slots<Result<T, E>>>,
    shared: std::sync::atomic::AtomicU64,
}

impl<T: Clone + Send + Sync, E: Clone + Send + Sync> Default for Dedup<T, E> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(Slots {
                by_key: HashMap::new(),
                finished: VecDeque::new(),
            }),
            shared: Default::default(),
        }
    }
}

impl<T: Clone + Send + Sync, E: Clone + Send + Sync> Dedup<T, E> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slots<Result<T, E>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many callers were answered without a request of their own.
    pub fn shared_count(&self) -> u64 {
        self.shared.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The answer to `key`: an identical request's if one is in flight or finished successfully
    /// less than `window` ago, else `fetch`'s.
    pub async fn run<F, Fut>(&self, key: &str, window: Duration, fetch: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let cell = {
            let mut slots = self.lock();
            let now = Instant::now();
            expire(&mut slots, now, window);
            let reusable = slots.by_key.get(key).filter(|slot| match slot.finished {
                None => true,
                Some(at) => {
                    now.duration_since(at) < window && matches!(slot.cell.get(), Some(Ok(_)))
                }
            });
            match reusable {
                Some(slot) => {
                    self.shared.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    slot.cell.clone()
                }
                None => {
                    let cell = Arc::new(OnceCell::new());
                    slots.by_key.insert(
                        key.to_string(),
                        Slot {
                            cell: cell.clone(),
                            finished: None,
                        },
                    );
                    cell
                }
            }
        };
        let mut ran = false;
        let value = cell
            .get_or_init(|| {
                ran = true;
                fetch()
            })
            .await
            .clone();
        if ran {
            let mut slots = self.lock();
            let now = Instant::now();
            if let Some(slot) = slots.by_key.get_mut(key).filter(|s| Arc::ptr_eq(&s.cell, &cell)) {
                slot.finished = Some(now);
                slots.finished.push_back((now, key.to_string()));
            }
        }
        value
    }
}

impl<T: Clone + Send + Sync, E: Clone + Send + Sync> Dedup<T, E> {
    /// Forgets every finished answer (requests in flight are left to finish): after a write, an
    /// answer from before it must not be handed out as current.
    pub fn forget_finished(&self) {
        let mut slots = self.lock();
        slots.by_key.retain(|_, slot| slot.finished.is_none());
        slots.finished.clear();
    }
}

/// Forgets answers older than the window (amortised: each finished key is looked at once).
fn expire<V>(slots: &mut Slots<V>, now: Instant, window: Duration) {
    while let Some((at, _)) = slots.finished.front() {
        if now.duration_since(*at) < window {
            break;
        }
        let Some((at, key)) = slots.finished.pop_front() else { break };
        // The key may have been refetched since; only drop the slot this record is about.
        if slots.by_key.get(&key).is_some_and(|s| s.finished == Some(at)) {
            slots.by_key.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::runtime::runtime;

    fn counting_fetch(
        calls: &Arc<AtomicUsize>,
        delay: Duration,
        answer: Result<u32, String>,
    ) -> impl Future<Output = Result<u32, String>> + use<> {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            answer
        }
    }

    #[test]
    fn concurrent_identical_requests_make_one_call() {
        let dedup = Arc::new(Dedup::<u32, String>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let answers = runtime().block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..50 {
                let (dedup, calls) = (dedup.clone(), calls.clone());
                set.spawn(async move {
                    dedup
                        .run("k", Duration::ZERO, || counting_fetch(&calls, Duration::from_millis(50), Ok(7)))
                        .await
                });
            }
            set.join_all().await
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(answers.iter().all(|a| a == &Ok(7)));
        assert_eq!(dedup.shared_count(), 49);
    }

    #[test]
    fn the_window_reuses_successes_only() {
        let dedup = Dedup::<u32, String>::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let window = Duration::from_millis(200);
        runtime().block_on(async {
            let ok = || counting_fetch(&calls, Duration::ZERO, Ok(1));
            assert_eq!(dedup.run("a", window, ok).await, Ok(1));
            assert_eq!(dedup.run("a", window, ok).await, Ok(1));
            assert_eq!(calls.load(Ordering::SeqCst), 1, "reused within the window");
            tokio::time::sleep(window).await;
            assert_eq!(dedup.run("a", window, ok).await, Ok(1));
            assert_eq!(calls.load(Ordering::SeqCst), 2, "refetched after the window");

            dedup.forget_finished();
            assert_eq!(dedup.run("a", window, ok).await, Ok(1));
            assert_eq!(calls.load(Ordering::SeqCst), 3, "refetched after a write forgot it");

            let fail = || counting_fetch(&calls, Duration::ZERO, Err("throttled".into()));
            assert!(dedup.run("b", window, fail).await.is_err());
            assert!(dedup.run("b", window, fail).await.is_err());
            assert_eq!(calls.load(Ordering::SeqCst), 5, "a failure is never reused later");
        });
    }

    #[test]
    fn a_cancelled_first_caller_hands_over_to_the_next() {
        let dedup = Arc::new(Dedup::<u32, String>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        runtime().block_on(async {
            let first = {
                let (dedup, calls) = (dedup.clone(), calls.clone());
                tokio::spawn(async move {
                    dedup.run("k", Duration::ZERO, || counting_fetch(&calls, Duration::from_secs(60), Ok(1))).await
                })
            };
            tokio::time::sleep(Duration::from_millis(20)).await;
            let second = {
                let (dedup, calls) = (dedup.clone(), calls.clone());
                tokio::spawn(async move {
                    dedup.run("k", Duration::ZERO, || counting_fetch(&calls, Duration::ZERO, Ok(2))).await
                })
            };
            tokio::time::sleep(Duration::from_millis(20)).await;
            first.abort();
            let answer = tokio::time::timeout(Duration::from_secs(5), second).await;
            assert_eq!(answer.ok().and_then(|a| a.ok()), Some(Ok(2)));
        });
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
