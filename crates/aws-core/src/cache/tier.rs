//! [`TierStore`]: what every cache tier is to [`Cache`](super::Cache) — a place that answers a
//! key with a fresh entry or nothing, takes entries, and forgets what a write made stale. The
//! tiered cache walks a list of these (memory, disk, shared), so a new tier is a new type
//! implementing this trait, never a branch inside the walk.
//!
//! Not here: freshness rules or encoding (each tier applies the shared rules of `cache/mod.rs`
//! and the codec itself), nor counting (the tiered cache counts per tier).

use std::sync::Arc;

use super::codec::Entry;
use super::disk::DiskCache;
use super::memory::MemoryCache;
use super::tiered::Tier;

/// What a write made stale, in the two forms the tiers can act on: local tiers list their keys
/// and drop those `matches` accepts; a shared tier cannot list (its key names are keyed hashes)
/// and instead moves on the generation of each of `groups` (see [`super::key::shared_group`]).
pub struct Stale<'a> {
    pub matches: &'a dyn Fn(&str) -> bool,
    pub groups: Vec<String>,
}

/// One tier of the cache. Never fails its caller: a tier that cannot answer misses.
pub trait TierStore: Send + Sync {
    /// Which tier this is, for counters and for `aws cache last`.
    fn tier(&self) -> Tier;
    /// Whether the tier is in use (a disk tier disabled by a fault is not).
    fn is_enabled(&self) -> bool {
        true
    }
    /// A fresh entry stored under `key`, or `None` (absent, expired, unreadable or late).
    fn get(&self, key: &str) -> Option<Arc<Entry>>;
    /// Whether a copy of `entry` found in a tier above this one may still be served. A tier
    /// shared with others knows of their writes, which the tiers above do not.
    fn still_current(&self, _entry: &Entry) -> bool {
        true
    }
    /// Called when every tier missed `key` and its reader is about to fetch it: a tier shared
    /// with other machines may hand over the answer one of them is fetching right now (after a
    /// bounded wait), or note that this reader fetches for everyone (`None`: fetch). A tier
    /// that noted it is told the outcome by [`TierStore::put`] of the answer or by
    /// [`TierStore::abandon`].
    fn await_fill(&self, _key: &str) -> Option<Arc<Entry>> {
        None
    }
    /// The fetch of `key` announced through [`TierStore::await_fill`] ended with nothing stored
    /// under `key` (an error, a listing cut short or stored under another key).
    fn abandon(&self, _key: &str) {}
    /// Stores `entry` under `entry.key` (best effort).
    fn put(&self, entry: &Arc<Entry>);
    /// Forgets what `stale` names; returns how many entries it removed where it can count them.
    fn invalidate(&self, stale: &Stale<'_>) -> usize;
    /// The keys held, where the tier can list them (a shared tier cannot).
    fn keys(&self) -> Vec<String> {
        Vec::new()
    }
}

impl TierStore for MemoryCache {
    fn tier(&self) -> Tier {
        Tier::Memory
    }
    fn get(&self, key: &str) -> Option<Arc<Entry>> {
        MemoryCache::get(self, key)
    }
    fn put(&self, entry: &Arc<Entry>) {
        self.insert(entry.clone());
    }
    fn invalidate(&self, stale: &Stale<'_>) -> usize {
        self.remove_matching(stale.matches)
    }
    fn keys(&self) -> Vec<String> {
        MemoryCache::keys(self)
    }
}

impl TierStore for DiskCache {
    fn tier(&self) -> Tier {
        Tier::Disk
    }
    fn is_enabled(&self) -> bool {
        DiskCache::is_enabled(self)
    }
    fn get(&self, key: &str) -> Option<Arc<Entry>> {
        DiskCache::get(self, key).map(Arc::new)
    }
    fn put(&self, entry: &Arc<Entry>) {
        self.insert(entry);
    }
    fn invalidate(&self, stale: &Stale<'_>) -> usize {
        self.remove_matching(stale.matches)
    }
    fn keys(&self) -> Vec<String> {
        DiskCache::keys(self)
    }
}
