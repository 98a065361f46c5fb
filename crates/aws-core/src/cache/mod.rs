//! The cache *storage* layer: where listing results ([`Vec<Row>`](crate::row::Row)) are kept
//! between calls, and for how long they may be served.
//!
//! - [`clock`]: the wall and monotonic clocks, injectable so that expiry is testable.
//! - [`codec`]: [`Entry`] and its compact, checksummed, brotli-compressed byte form.
//! - [`memory`]: [`MemoryCache`], the in-process LRU tier, bounded in bytes.
//! - [`disk`]: [`DiskCache`], the on-disk tier (one LMDB environment shared by every nuaws
//!   process of the user), which never fails its caller: any problem disables it with a warning.
//!
//! - [`shared`]: [`SharedCache`], the tier a team shares on Redis: ciphertext only, keyed-hash
//!   names, a deadline per lookup, a breaker, invalidation by generation. Off unless configured.
//! - [`tracking`]: RESP3 client tracking, the hint that a teammate moved a generation.
//! - [`tier`]: [`TierStore`], what every tier is to the tiered cache.
//!
//! - [`key`]: keys scoped by identity (account, caller ARN, region, endpoint), readable as paths.
//! - [`policy`]: the allowlist of cacheable operations and their TTLs.
//! - [`tiered`]: [`Cache`], the tiers together: get-or-fetch, invalidation, counters.
//! - [`feed`]: [`RowFeed`], a listing replayed from the cache or streamed and recorded.
//! - [`hashes`]: [`HashCache`], the digests of local files, kept on disk while the files are
//!   unchanged (`aws s3 sync --checksum`).
//!
//! Not here: the shell commands. Nothing in this module logs cache values or key material; logs name entries by a short
//! hash of their key only.

pub mod clock;
pub mod codec;
mod dir;
pub mod disk;
pub mod feed;
pub mod hashes;
pub mod key;
pub mod memory;
pub mod policy;
pub mod shared;
pub mod tier;
pub mod tiered;
pub mod tracking;

use std::time::{Duration, SystemTime};

pub use clock::{Clock, MockClock, SystemClock};
pub use codec::{CodecError, Entry, decode, encode};
pub use disk::DiskCache;
pub use feed::{RowFeed, Source};
pub use hashes::{FileDigests, HashCache};
pub use key::{Identity, Request, cache_key, glob_matches, key_parts, shared_group};
pub use memory::MemoryCache;
pub use policy::CachePolicy;
pub use shared::{SharedCache, SharedConfig, SharedStats, TeamKey};
pub use tier::{Stale, TierStore};
pub use tiered::{Cache, CacheBuilder, Freshness, Tier};

/// Size and occupancy of one tier, for `cache stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierStats {
    /// Entries stored, including expired ones not yet evicted.
    pub entries: u64,
    /// Memory tier: the approximate in-memory size of the entries. Disk tier: the sum of the
    /// stored (encoded, compressed) value sizes.
    pub bytes: u64,
    /// Disk tier: the size of the data file, which also holds LMDB's pages and free space.
    /// Always 0 for the memory tier.
    pub file_bytes: u64,
}

/// How far in the future an entry's `created_at` may lie before the entry is considered invalid.
/// An entry created "in the future" means the wall clock went back since it was written; without
/// this bound it would stay fresh for the whole jump on top of its TTL.
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(5 * 60);

/// The wall-clock validity rules shared by both tiers (the only clock different processes share,
/// so the only one the disk tier can use): an entry is expired once `now` is past `expires_at`,
/// and invalid when it claims to have been created more than [`MAX_FUTURE_SKEW`] after `now`.
pub(crate) fn wall_expired(
    created_at: SystemTime,
    expires_at: SystemTime,
    now: SystemTime,
) -> bool {
    if now > expires_at {
        return true;
    }
    match created_at.duration_since(now) {
        Ok(ahead) => ahead > MAX_FUTURE_SKEW,
        Err(_) => false, // created in the past: the normal case
    }
}

/// The first 8 bytes of a digest in hex, for logs.
pub(crate) fn short_hex(digest: &[u8]) -> String {
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
