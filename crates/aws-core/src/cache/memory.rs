//! [`MemoryCache`]: the in-process tier. A least-recently-used map from key to decoded
//! [`Entry`], bounded in *bytes* (an approximation of what the entries occupy in memory), not in
//! entries, because one listing can be a thousand times bigger than another.
//!
//! Entries are handed out as `Arc<Entry>`: a hit costs a reference count, not a copy of the rows.
//! Expiry uses both clocks (see [`super::clock`]): the wall clock catches clock jumps and
//! suspends, the monotonic clock catches a wall clock that was set back.
//!
//! Not for: anything shared between processes (that is [`super::DiskCache`]), nor deciding TTLs.

use std::mem::size_of;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lru::LruCache;

use super::clock::Clock;
use super::codec::Entry;
use super::{TierStats, wall_expired};
use crate::row::{Field, Row};

/// Fixed cost charged per entry on top of its contents: the LRU node, the `Arc`, the slot.
const ENTRY_OVERHEAD: usize = 128;

/// The in-memory tier, shared by the whole process (wrap it in an `Arc` or a `static`).
pub struct MemoryCache {
    max_bytes: usize,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

struct State {
    lru: LruCache<String, Slot>,
    /// Sum of the `size` of every slot in `lru`.
    bytes: usize,
}

struct Slot {
    entry: Arc<Entry>,
    size: usize,
    /// When the entry expires by the monotonic clock; `None` if that is beyond what `Instant`
    /// can represent (a clamped, very long TTL).
    mono_deadline: Option<Instant>,
}

impl Slot {
    fn expired(&self, clock: &dyn Clock) -> bool {
        wall_expired(self.entry.created_at, self.entry.expires_at, clock.wall())
            || self
                .mono_deadline
                .is_some_and(|deadline| clock.mono() > deadline)
    }
}

impl MemoryCache {
    /// A cache that holds at most about `max_bytes` of entries.
    pub fn new(max_bytes: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            max_bytes,
            clock,
            state: Mutex::new(State {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing inside the lock can panic half-way through an update of `bytes` and `lru`
        // (no user code runs under it), so a poisoned lock still guards consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry under `key`, unless absent or expired. Expired means: the wall clock is past
    /// `expires_at`; or the monotonic time since insertion exceeds the TTL (what was left of it
    /// when inserted); or `created_at` is more than [`super::MAX_FUTURE_SKEW`] ahead of the wall
    /// clock (the clock went back). Expired entries are removed. A hit marks the entry as the
    /// most recently used.
    pub fn get(&self, key: &str) -> Option<Arc<Entry>> {
        let mut state = self.state();
        let expired = state.lru.peek(key)?.expired(self.clock.as_ref());
        if expired {
            state.remove(key);
            return None;
        }
        state.lru.get(key).map(|slot| slot.entry.clone())
    }

    /// Stores `entry` under `entry.key`, replacing any previous one, then evicts the least
    /// recently used entries until the total is within `max_bytes`. An entry bigger than
    /// `max_bytes` on its own, or already expired, is not stored (and the previous entry under
    /// its key is dropped, so an older result is never served after a newer one was fetched).
    pub fn insert(&self, entry: Arc<Entry>) {
        let size = approx_size(&entry);
        let wall = self.clock.wall();
        let mono = self.clock.mono();
        // The monotonic deadline counts what is left of the TTL now, not the whole TTL: an
        // entry promoted from disk halfway through its life has only half of it left.
        let remaining = entry
            .expires_at
            .duration_since(wall)
            .unwrap_or(Duration::ZERO)
            .min(entry.ttl());
        let slot = Slot {
            mono_deadline: mono.checked_add(remaining),
            size,
            entry,
        };

        let mut state = self.state();
        state.remove(&slot.entry.key);
        if size > self.max_bytes || slot.expired(self.clock.as_ref()) {
            return;
        }
        state.bytes += size;
        state.lru.put(slot.entry.key.clone(), slot);
        while state.bytes > self.max_bytes {
            match state.lru.pop_lru() {
                Some((_, evicted)) => state.bytes -= evicted.size,
                None => break,
            }
        }
    }

    /// Removes every entry whose key satisfies `pred`; returns how many were removed. `pred`
    /// runs without the lock held, so it may be slow or even panic without harming the cache.
    pub fn remove_matching(&self, pred: &dyn Fn(&str) -> bool) -> usize {
        let matching: Vec<String> = self.keys().into_iter().filter(|k| pred(k)).collect();
        let mut state = self.state();
        matching.iter().filter(|k| state.remove(k)).count()
    }

    /// Every stored key, most recently used first, including expired entries not yet removed.
    pub fn keys(&self) -> Vec<String> {
        self.state().lru.iter().map(|(k, _)| k.clone()).collect()
    }

    pub fn stats(&self) -> TierStats {
        let state = self.state();
        TierStats {
            entries: state.lru.len() as u64,
            bytes: state.bytes as u64,
            file_bytes: 0,
        }
    }
}

impl State {
    fn remove(&mut self, key: &str) -> bool {
        match self.lru.pop(key) {
            Some(slot) => {
                self.bytes -= slot.size;
                true
            }
            None => false,
        }
    }
}

/// The approximate memory an entry occupies, as charged against `max_bytes`: every string's
/// length plus a fixed overhead per entry, row, column and field. The key is counted twice (the
/// LRU's own copy and the entry's). Column names are `&'static str` shared by all rows and cost
/// only their reference.
pub fn approx_size(entry: &Entry) -> usize {
    ENTRY_OVERHEAD + 2 * entry.key.len() + entry.rows.iter().map(row_size).sum::<usize>()
}

fn row_size(row: &Row) -> usize {
    size_of::<Row>()
        + row
            .columns
            .iter()
            .map(|(_, field)| size_of::<(&str, Field)>() + field_heap_size(field))
            .sum::<usize>()
}

/// What a field owns on the heap, beyond its inline `size_of::<Field>()`.
fn field_heap_size(field: &Field) -> usize {
    match field {
        Field::Null | Field::Bool(_) | Field::Int(_) | Field::Bytes(_) | Field::Time(_) => 0,
        Field::Text(s) => s.len(),
        Field::List(items) => items
            .iter()
            .map(|f| size_of::<Field>() + field_heap_size(f))
            .sum(),
        Field::Record(pairs) => pairs
            .iter()
            .map(|(k, f)| size_of::<(String, Field)>() + k.len() + field_heap_size(f))
            .sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::clock::MockClock;
    use std::time::SystemTime;

    const TTL: Duration = Duration::from_secs(600);

    fn text_entry(key: &str, text_len: usize, clock: &MockClock, ttl: Duration) -> Arc<Entry> {
        let rows = vec![Row::new().with("text", Field::Text("x".repeat(text_len)))];
        Arc::new(Entry::new(key, rows, clock.wall(), ttl))
    }

    fn setup(max_bytes: usize) -> (Arc<MockClock>, MemoryCache) {
        let clock = Arc::new(MockClock::new());
        let cache = MemoryCache::new(max_bytes, clock.clone());
        (clock, cache)
    }

    #[test]
    fn lru_eviction_is_by_bytes() {
        let (clock, cache) = setup(20_000);
        for i in 0..8 {
            cache.insert(text_entry(&format!("small{i}"), 1_000, &clock, TTL));
        }
        assert_eq!(cache.stats().entries, 8);
        // Touch small0 so that it is the most recently used of the small ones.
        assert!(cache.get("small0").is_some());

        // One big entry needs the room of several small ones.
        cache.insert(text_entry("big", 15_000, &clock, TTL));
        let stats = cache.stats();
        assert!(stats.bytes <= 20_000, "{stats:?}");
        assert!(cache.get("big").is_some());
        let survivors: Vec<String> = (0..8)
            .map(|i| format!("small{i}"))
            .filter(|k| cache.get(k).is_some())
            .collect();
        assert!(
            survivors.len() < 7,
            "the big entry evicted only {} small ones",
            8 - survivors.len()
        );
        assert!(!survivors.is_empty());
        // Least recently used went first: small1 (small0 was touched) is gone, small0 stayed.
        assert!(cache.get("small1").is_none());
        assert!(survivors.contains(&"small0".to_string()), "{survivors:?}");

        // The accounting matches the entries that are left.
        let expected: usize = cache
            .keys()
            .iter()
            .map(|k| approx_size(&cache.get(k).unwrap()))
            .sum();
        assert_eq!(cache.stats().bytes as usize, expected);
    }

    #[test]
    fn oversize_entry_is_not_stored_and_drops_the_older_value() {
        let (clock, cache) = setup(10_000);
        cache.insert(text_entry("k", 100, &clock, TTL));
        cache.insert(text_entry("other", 100, &clock, TTL));
        cache.insert(text_entry("k", 50_000, &clock, TTL));
        assert!(cache.get("k").is_none());
        assert!(
            cache.get("other").is_some(),
            "an oversize entry must not evict others"
        );
        assert_eq!(cache.stats().entries, 1);
    }

    #[test]
    fn replacing_an_entry_updates_the_byte_count() {
        let (clock, cache) = setup(1 << 20);
        cache.insert(text_entry("k", 5_000, &clock, TTL));
        cache.insert(text_entry("k", 10, &clock, TTL));
        assert_eq!(cache.stats().entries, 1);
        assert_eq!(
            cache.stats().bytes as usize,
            approx_size(&cache.get("k").unwrap())
        );
    }

    #[test]
    fn ttl_boundary_is_exact() {
        let (clock, cache) = setup(1 << 20);
        cache.insert(text_entry("k", 10, &clock, TTL));
        clock.advance(TTL - Duration::from_millis(1));
        assert!(cache.get("k").is_some(), "ttl - 1ms must hit");
        clock.advance(Duration::from_millis(1));
        assert!(cache.get("k").is_some(), "exactly ttl still hits");
        clock.advance(Duration::from_millis(1));
        assert!(cache.get("k").is_none(), "ttl + 1ms must miss");
        assert_eq!(
            cache.stats(),
            TierStats::default(),
            "expired entries are removed"
        );
    }

    #[test]
    fn wall_clock_jump_forward_expires() {
        let (clock, cache) = setup(1 << 20);
        cache.insert(text_entry("k", 10, &clock, TTL));
        clock.set_wall(clock.wall() + Duration::from_secs(2 * 3600));
        assert!(cache.get("k").is_none());
    }

    #[test]
    fn wall_clock_jump_back_invalidates() {
        let (clock, cache) = setup(1 << 20);
        cache.insert(text_entry("k", 10, &clock, TTL));
        clock.set_wall(clock.wall() - Duration::from_secs(2 * 3600));
        assert!(
            cache.get("k").is_none(),
            "created_at 2h in the future is invalid"
        );
        // A small step back (under the allowed skew) is tolerated.
        cache.insert(text_entry("k2", 10, &clock, TTL));
        clock.set_wall(clock.wall() - Duration::from_secs(60));
        assert!(cache.get("k2").is_some());
    }

    #[test]
    fn wall_clock_set_back_does_not_extend_life() {
        // The wall clock goes back 4 minutes (within the skew) right after insertion: by the
        // wall clock the entry would live 4 minutes longer; the monotonic clock prevents it.
        let (clock, cache) = setup(1 << 20);
        cache.insert(text_entry("k", 10, &clock, TTL));
        clock.set_wall(clock.wall() - Duration::from_secs(240));
        clock.advance(TTL + Duration::from_millis(1));
        assert!(cache.get("k").is_none());
    }

    #[test]
    fn monotonic_only_advance_expires() {
        let (clock, cache) = setup(1 << 20);
        cache.insert(text_entry("k", 10, &clock, TTL));
        clock.advance_mono(TTL + Duration::from_millis(1));
        assert!(cache.get("k").is_none());
    }

    #[test]
    fn simulated_suspend_expires() {
        let (clock, cache) = setup(1 << 20);
        cache.insert(text_entry("k", 10, &clock, TTL));
        clock.suspend(Duration::from_secs(8 * 3600));
        assert!(cache.get("k").is_none());
    }

    #[test]
    fn entry_from_disk_keeps_only_its_remaining_life() {
        // Created 500s ago with a 600s TTL: 100s left once in memory, by either clock.
        let (clock, cache) = setup(1 << 20);
        let created = clock.wall() - Duration::from_secs(500);
        let rows = vec![Row::new().with("a", Field::Int(1))];
        cache.insert(Arc::new(Entry::new("k", rows, created, TTL)));
        clock.advance_mono(Duration::from_secs(101));
        assert!(cache.get("k").is_none());
    }

    #[test]
    fn duration_max_ttl_does_not_overflow() {
        let (clock, cache) = setup(1 << 20);
        cache.insert(text_entry("k", 10, &clock, Duration::MAX));
        clock.advance(Duration::from_secs(365 * 24 * 3600));
        assert!(cache.get("k").is_some());
        // Hand-built, bypassing Entry::new's clamp.
        let e = Entry {
            key: "raw".into(),
            created_at: clock.wall(),
            expires_at: clock.wall() + Duration::from_secs(u32::MAX as u64 * 1000),
            rows: vec![],
        };
        cache.insert(Arc::new(e));
        assert!(cache.get("raw").is_some());
    }

    #[test]
    fn already_expired_entry_is_not_stored() {
        let (clock, cache) = setup(1 << 20);
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
        cache.insert(Arc::new(Entry::new("k", vec![], old, TTL)));
        assert!(cache.get("k").is_none());
        assert_eq!(cache.stats().entries, 0);
        let _ = clock;
    }

    #[test]
    fn remove_matching_and_keys() {
        let (clock, cache) = setup(1 << 20);
        for k in ["s3|a", "s3|b", "ec2|a"] {
            cache.insert(text_entry(k, 10, &clock, TTL));
        }
        let mut keys = cache.keys();
        keys.sort();
        assert_eq!(keys, ["ec2|a", "s3|a", "s3|b"]);
        assert_eq!(cache.remove_matching(&|k| k.starts_with("s3|")), 2);
        assert_eq!(cache.keys(), ["ec2|a"]);
        assert_eq!(
            cache.stats().bytes as usize,
            approx_size(&cache.get("ec2|a").unwrap())
        );
    }
}
