//! The page budget of a partitioned listing: how many pages ranges ahead of the consumer may hold,
//! handed out in key order rather than first come, first served.
//!
//! The output is in key order, so a page of the range next in line is worth more than one of a
//! range far ahead: it is handed out sooner, and frees its share sooner. A plain semaphore serves
//! waiters in the order they asked, which spreads the budget over every range at once, two
//! pages each, and leaves the next range to fetch the rest of its pages one round trip after
//! another once it is the one being handed out. Here a freed share goes to the waiting range
//! whose keys come first.
//!
//! Not here: what a share is for (see [`super`]), or fairness between listings (each listing
//! has its own budget; the engine's limiter bounds the requests of all of them).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// Pages that ranges ahead of the consumer may hold, granted to the first in key order.
#[derive(Debug)]
pub struct PageBudget {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    free: usize,
    /// Waiters by where their keys start (and a number, for ranges that start alike).
    waiting: BTreeMap<(String, u64), oneshot::Sender<()>>,
}

/// One page's share of the budget, given back when dropped.
#[derive(Debug)]
pub struct PageShare {
    budget: Arc<PageBudget>,
}

impl Drop for PageShare {
    fn drop(&mut self) {
        self.budget.give_back();
    }
}

/// A wait for a share: if dropped after the share was granted but before it was taken (the range
/// became the head meanwhile, or was aborted), the share goes back.
struct Waiting {
    budget: Arc<PageBudget>,
    key: (String, u64),
    granted: oneshot::Receiver<()>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.granted.close();
        if self.granted.try_recv().is_ok() {
            self.budget.give_back();
        } else {
            self.budget.lock().waiting.remove(&self.key);
        }
    }
}

impl PageBudget {
    pub fn new(pages: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                free: pages,
                waiting: BTreeMap::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; recover a poisoned lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A share for a range whose keys start after `order` (`id` tells ranges apart): at once if
    /// one is free, else when every range before it in key order that waits has had one.
    pub async fn take(self: &Arc<Self>, order: &str, id: u64) -> PageShare {
        let mut waiting = {
            let mut state = self.lock();
            if state.free > 0 {
                state.free -= 1;
                return PageShare { budget: self.clone() };
            }
            let (tx, rx) = oneshot::channel();
            let key = (order.to_string(), id);
            state.waiting.insert(key.clone(), tx);
            Waiting {
                budget: self.clone(),
                key,
                granted: rx,
            }
        };
        // The sender lives in the map until it grants, and is removed only by this wait's drop.
        let granted = (&mut waiting.granted).await.is_ok();
        debug_assert!(granted);
        // Taken: the drop of `waiting` must neither give it back nor look for it in the map.
        waiting.granted = oneshot::channel().1;
        drop(waiting);
        PageShare { budget: self.clone() }
    }

    /// A share back: to the first waiter in key order, or free.
    fn give_back(&self) {
        let mut state = self.lock();
        while let Some((_, tx)) = state.waiting.pop_first() {
            if tx.send(()).is_ok() {
                return;
            }
        }
        state.free += 1;
    }

    #[cfg(test)]
    fn free(&self) -> usize {
        self.lock().free
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_freed_share_goes_to_the_first_waiter_in_key_order() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let budget = PageBudget::new(1);
            let held = budget.take("a", 0).await;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            // Waiters arrive far first, near last.
            for (i, order) in ["m", "z", "c", "f"].into_iter().enumerate() {
                let (waiter, tx) = (budget.clone(), tx.clone());
                tokio::spawn(async move {
                    let share = waiter.take(order, i as u64).await;
                    tx.send(order).unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    drop(share);
                });
                // Until it waits: the order of arrival is the test's, not the scheduler's.
                while budget.lock().waiting.len() < i + 1 {
                    tokio::task::yield_now().await;
                }
            }
            drop(held);
            let mut got = Vec::new();
            for _ in 0..4 {
                got.push(rx.recv().await.unwrap());
            }
            assert_eq!(got, ["c", "f", "m", "z"]);
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(budget.free(), 1);
        });
    }

    #[test]
    fn a_wait_given_up_loses_no_share() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let budget = PageBudget::new(1);
            let held = budget.take("a", 0).await;
            // Given up before the grant: its place in the queue goes.
            let given_up = tokio::time::timeout(Duration::from_millis(5), budget.take("b", 1)).await;
            assert!(given_up.is_err());
            assert!(budget.lock().waiting.is_empty());
            // Granted but never polled again: the share comes back when the wait is dropped.
            let mut wait = Box::pin(budget.take("c", 2));
            assert!(futures_poll_once(wait.as_mut()).await.is_none());
            drop(held);
            drop(wait);
            assert_eq!(budget.free(), 1);
        });
    }

    /// Polls `future` once, returning its output if it was ready.
    async fn futures_poll_once<F: std::future::Future + Unpin>(mut future: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
            std::task::Poll::Ready(out) => Some(out),
            std::task::Poll::Pending => None,
        }))
        .await
    }
}
