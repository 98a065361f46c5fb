//! [`DiskCache`]: the on-disk tier, one LMDB environment (heed) under the user's cache directory,
//! shared by every nuaws process of that user (shells and plugins alike).
//!
//! The rule of this module: **the disk cache never fails its caller**. Opening it cannot fail
//! (a problem yields a disabled cache and a warning); reads that go wrong are misses; writes that
//! go wrong are skipped. What it does about each known LMDB hazard (see
//! `shared/reference/reliability.md`, section 1):
//!
//! - *Tampering*: the directory is created 0700 and refused when it is a symlink, someone else's,
//!   group/other-writable, or on a network or FUSE file system (`dir.rs`). Files are 0600.
//! - *Double open in one process* (undefined behaviour in LMDB, `EnvAlreadyOpened` in heed): one
//!   environment per canonical path per process, kept in a registry; every [`DiskCache`] on that
//!   path shares it.
//! - *Truncated or damaged files*: after opening, `data.mdb` must be at least as long as the
//!   pages the meta page claims (a shorter file SIGBUSes on read); LMDB's `Invalid`/`Corrupted`
//!   /`PageNotFound`, at open or repeatedly later, move the environment aside (quarantine, under
//!   an exclusive sidecar lock) and start afresh. Every value carries a checksum and its full key
//!   (`codec.rs`); an unreadable value is deleted and counts as a miss.
//! - *Map full*: the map is fixed (address space only, the file grows with the data) and the
//!   cache keeps itself within a byte budget by evicting, in the write transaction, expired
//!   entries first and then the oldest. `MAP_FULL` at `put` or at `commit` evicts harder and
//!   retries once, else the write is skipped.
//! - *Another process grew the map*: `MapResized` adopts the new size (`resize(0)`) and retries.
//! - *`MDB_PANIC`* (a failed meta-page write): the environment is closed and reopened; if that
//!   keeps failing, the disk cache is disabled for the session with a warning.
//! - *Stale readers* of killed processes: cleared at open, and when readers or the map run out.
//! - *Transactions*: read transactions never cross a thread (`WithoutTls`), values are copied out
//!   before the transaction ends, and nothing slow (encoding, decoding) runs inside one. The only
//!   work done in a write transaction is the eviction scan, which reads value headers.
//!
//! Besides cached results, the environment holds nuaws's own *records* (the metrics history),
//! under keys starting with [`RECORD_PREFIX`]: stored and read like entries, but never listed,
//! cleared or evicted as cached results (`aws cache clear` must not erase a week of metrics, nor
//! eviction trade them for a listing); they go when they expire, or by [`DiskCache::remove_records`].
//!
//! Not for: deciding what to cache or for how long (the caller builds the [`Entry`]), and
//! nothing here logs values or key material: log lines name entries by a short hash.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, Weak};
use std::thread;
use std::time::{Duration, SystemTime};

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, MdbError, RoTxn, WithoutTls};

use super::clock::Clock;
use super::codec::{
    self, Entry, MAX_DECODED_LEN, MAX_KEY_LEN, decode, encode, encoded_is_storable, parse_header,
};
use super::dir::{self, LAYOUT, SidecarLock};
use super::{TierStats, short_hex, wall_expired};

/// The LMDB map size: address space reserved, not disk used (without `WRITEMAP` the file grows
/// only as data is written). Fixed, so the map never needs growing at run time.
pub const DEFAULT_MAP_SIZE: usize = 1 << 30;
/// Reader slots in the lock file: every thread with a read transaction open takes one; killed
/// processes leave theirs behind until cleared. Generous, per the reliability notes.
const MAX_READERS: u32 = 1024;
/// Attempts at opening the environment: LMDB can fail when another process opens or closes it
/// at the same instant (`lmdb.h`).
const OPEN_ATTEMPTS: u32 = 5;
const OPEN_RETRY_BASE: Duration = Duration::from_millis(10);
/// How long to wait for an environment of this path, being closed by another thread of this
/// process, to finish closing before opening it again.
const CLOSING_WAIT: Duration = Duration::from_secs(1);
/// LMDB-level corruption errors seen at run time before the environment is quarantined.
const DAMAGE_ERRORS_BEFORE_QUARANTINE: u32 = 3;
/// Reopens after `MDB_PANIC` allowed per process before the tier gives up for the session.
const MAX_REOPENS: u32 = 3;
/// When over budget, evict down to this share of it, so the next writes do not each pay for a
/// scan of the whole cache.
const EVICT_TO_PERCENT: u64 = 90;
/// The longest value that can be a real entry; a longer one is a corrupt length, not data.
const MAX_VALUE_LEN: usize = MAX_DECODED_LEN + (1 << 20) + MAX_KEY_LEN;
/// Keys of nuaws's own records. No cache key starts so: those begin with an account id.
pub const RECORD_PREFIX: &str = "@nuaws/";
/// Times [`DiskCache::update`] recomputes a value that other writers keep changing before
/// giving up (a flush of metrics is retried later anyway).
const UPDATE_ATTEMPTS: u32 = 5;

type Db = Database<'static, Bytes, Bytes>;
/// The LMDB key of an entry: BLAKE3 of its readable key. Fixed-size, far below LMDB's 511-byte
/// key limit; the readable key is in the value, so collisions are detected on read.
type Digest = [u8; 32];

fn digest(key: &str) -> Digest {
    *blake3::hash(key.as_bytes()).as_bytes()
}

/// The disk tier. Cheap to share (`Arc<DiskCache>`); every method is safe to call from any
/// thread, and none returns an error.
pub struct DiskCache {
    /// `None` when the cache was refused at open.
    shared: Option<Arc<SharedEnv>>,
    /// The byte budget this handle enforces on its writes.
    budget: u64,
    clock: Arc<dyn Clock>,
    /// Warnings from this open (before a shared environment existed).
    open_warnings: Mutex<Vec<String>>,
}

/// Environments open in this process, by canonical cache directory. Weak, so that the last
/// `DiskCache` dropped closes its environment.
static REGISTRY: LazyLock<Mutex<HashMap<PathBuf, Weak<SharedEnv>>>> =
    LazyLock::new(Default::default);
/// Warnings already handed out by `take_warnings` in this process: each is said once.
static SAID: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data under these mutexes (lists, maps) stays consistent even if a holder panicked.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DiskCache {
    /// Opens (or creates) the cache under `dir` (the caller passes `$XDG_CACHE_HOME/nuaws` or an
    /// override), keeping at most about `max_bytes` of entries. Never fails the caller: any
    /// problem yields a disabled `DiskCache`, with the reason in [`DiskCache::take_warnings`].
    /// Opening the same directory again in this process shares the open environment.
    pub fn open(dir: &Path, max_bytes: u64, clock: Arc<dyn Clock>) -> DiskCache {
        Self::open_with_map_size(dir, max_bytes, DEFAULT_MAP_SIZE, clock)
    }

    /// [`DiskCache::open`] with another LMDB map size (rounded up to whole pages), for tests
    /// and tuning. The budget is capped at half the map, so that eviction, not `MAP_FULL`, is
    /// what normally bounds the cache. The map size only applies to the first open of a
    /// directory in this process; later ones share that environment.
    pub fn open_with_map_size(
        dir: &Path,
        max_bytes: u64,
        map_size: usize,
        clock: Arc<dyn Clock>,
    ) -> DiskCache {
        let map_size = map_size.max(page_size()).next_multiple_of(page_size());
        let budget = max_bytes.min(map_size as u64 / 2);
        match open_shared(dir, map_size) {
            Ok(shared) => DiskCache {
                shared: Some(shared),
                budget,
                clock,
                open_warnings: Mutex::default(),
            },
            Err(reason) => {
                let warning = format!("disk cache disabled: {reason}");
                log::debug!("{warning}");
                DiskCache {
                    shared: None,
                    budget,
                    clock,
                    open_warnings: Mutex::new(vec![warning]),
                }
            }
        }
    }

    /// The entry stored under `key`, if present, intact and not expired by the wall clock
    /// (`now > expires_at`, or `created_at` more than [`super::MAX_FUTURE_SKEW`] in the future).
    /// Unreadable and expired entries are deleted; all of these are misses.
    pub fn get(&self, key: &str) -> Option<Entry> {
        let shared = self.shared.as_ref()?;
        let digest = digest(key);
        let found = shared.run(|h| {
            let rtxn = h.env.read_txn()?;
            // Copied out, so the transaction ends before the (slow) decode.
            Ok(h.db.get(&rtxn, &digest)?.map(|value| {
                if value.len() > MAX_VALUE_LEN {
                    Err(value.len())
                } else {
                    Ok(value.to_vec())
                }
            }))
        })??;
        let bytes = match found {
            Ok(bytes) => bytes,
            Err(len) => {
                log::debug!(
                    "disk cache: entry {} has an impossible length {len}",
                    short_hex(&digest)
                );
                shared.delete_if(&digest, &|value| value.len() == len);
                return None;
            }
        };
        match decode(&bytes, key) {
            Ok(entry) if !wall_expired(entry.created_at, entry.expires_at, self.clock.wall()) => {
                Some(entry)
            }
            Ok(_) => {
                shared.delete_if(&digest, &|value| value == bytes.as_slice());
                None
            }
            Err(e) => {
                log::debug!(
                    "disk cache: dropping unreadable entry {}: {e}",
                    short_hex(&digest)
                );
                shared.delete_if(&digest, &|value| value == bytes.as_slice());
                None
            }
        }
    }

    /// Stores `entry` under `entry.key`, replacing any previous one, evicting expired then
    /// oldest entries to stay within the budget. Best effort: an entry that is already expired,
    /// too big for the budget or the codec, or that cannot be written, is skipped.
    pub fn insert(&self, entry: &Entry) {
        let Some(shared) = self.shared.as_ref() else {
            return;
        };
        let now = self.clock.wall();
        if wall_expired(entry.created_at, entry.expires_at, now) {
            return;
        }
        let value = encode(entry);
        let digest = digest(&entry.key);
        if !encoded_is_storable(&value) || value.len() as u64 > self.budget {
            log::debug!(
                "disk cache: not storing {} ({} bytes encoded, budget {})",
                short_hex(&digest),
                value.len(),
                self.budget
            );
            return;
        }
        let stored = shared.run(|h| h.insert(&digest, &value, self.budget, now));
        if stored != Some(true) {
            log::debug!("disk cache: skipped writing {}", short_hex(&digest));
        }
    }

    /// [`DiskCache::insert`] of many entries in one write transaction (one sync to disk rather
    /// than one per entry), for callers that store many small entries at once (the hash cache).
    /// Entries that are expired or too big are left out; if the map is full, the batch is skipped.
    pub fn insert_many(&self, entries: &[Entry]) {
        let Some(shared) = self.shared.as_ref() else {
            return;
        };
        let now = self.clock.wall();
        let values: Vec<(Digest, Vec<u8>)> = entries
            .iter()
            .filter(|e| !wall_expired(e.created_at, e.expires_at, now))
            .map(|e| (digest(&e.key), encode(e)))
            .filter(|(_, v)| encoded_is_storable(v) && (v.len() as u64) <= self.budget)
            .collect();
        if values.is_empty() {
            return;
        }
        if shared.run(|h| h.put_many_within_budget(&values, self.budget, now)).is_none() {
            log::debug!("disk cache: skipped writing a batch of {}", values.len());
        }
    }

    /// Removes every entry whose key satisfies `pred`; returns how many. `pred` runs outside
    /// any transaction. Entries whose key cannot be read are removed too (they could never be
    /// served) but not counted. Records are not entries: `pred` never sees them.
    pub fn remove_matching(&self, pred: &dyn Fn(&str) -> bool) -> usize {
        self.remove_listed(|listing| (matching_digests(&listing.entries, pred), listing.unreadable.clone()))
    }

    /// Deletes, in one write, the digests `pick` chooses from a listing of the store, and the
    /// raw keys it adds; returns how many of the digests were there to delete.
    fn remove_listed(&self, pick: impl Fn(&Listing) -> (Vec<Digest>, Vec<Vec<u8>>)) -> usize {
        let Some(shared) = self.shared.as_ref() else {
            return 0;
        };
        let Some(listing) = shared.run(|h| h.list()) else {
            return 0;
        };
        let (matching, raw) = pick(&listing);
        if matching.is_empty() && raw.is_empty() {
            return 0;
        }
        shared
            .run(|h| {
                let mut wtxn = h.env.write_txn()?;
                let mut removed = 0;
                for digest in &matching {
                    if h.db.delete(&mut wtxn, digest.as_slice())? {
                        removed += 1;
                    }
                }
                for key in &raw {
                    h.db.delete(&mut wtxn, key)?;
                }
                wtxn.commit()?;
                Ok(removed)
            })
            .unwrap_or(0)
    }

    /// Every stored key of a cached result, including expired entries not yet evicted (in no
    /// particular order). Records are not listed.
    pub fn keys(&self) -> Vec<String> {
        let Some(shared) = self.shared.as_ref() else {
            return Vec::new();
        };
        shared
            .run(|h| h.list())
            .map(|listing| listing.entries.into_iter().map(|(_, key)| key).collect())
            .unwrap_or_default()
    }

    /// Entries stored, the sum of their value sizes, and the size of the data file.
    pub fn stats(&self) -> TierStats {
        let Some(shared) = self.shared.as_ref() else {
            return TierStats::default();
        };
        shared
            .run(|h| {
                let rtxn = h.env.read_txn()?;
                let mut stats = TierStats::default();
                for item in h.db.iter(&rtxn)? {
                    let (_, value) = item?;
                    stats.entries += 1;
                    stats.bytes += value.len() as u64;
                }
                drop(rtxn);
                stats.file_bytes = h.env.real_disk_size()?;
                Ok(stats)
            })
            .unwrap_or_default()
    }

    /// Keys of the records whose key starts with `prefix` (itself under [`RECORD_PREFIX`]).
    pub fn record_keys(&self, prefix: &str) -> Vec<String> {
        let Some(shared) = self.shared.as_ref() else {
            return Vec::new();
        };
        shared
            .run(|h| h.list())
            .map(|listing| {
                listing
                    .records
                    .into_iter()
                    .map(|(_, key)| key)
                    .filter(|key| key.starts_with(prefix))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes the records whose key satisfies `pred`; returns how many.
    pub fn remove_records(&self, pred: &dyn Fn(&str) -> bool) -> usize {
        self.remove_listed(|listing| (matching_digests(&listing.records, pred), Vec::new()))
    }

    /// Replaces the value under `key` by `change(current)` (`None`: remove it), atomically
    /// with respect to every writer of every process, for values that are merged into rather
    /// than overwritten (the metrics of an hour, which several processes add to). `change` runs
    /// outside any transaction, on a decoded copy (`None` when absent, unreadable or expired);
    /// its result is written only if the stored value is still the one it saw, else it runs
    /// again on the new one, up to [`UPDATE_ATTEMPTS`] times. Returns whether the change was
    /// stored; like every write here, a failure is only a skipped write.
    pub fn update(&self, key: &str, change: &dyn Fn(Option<Entry>) -> Option<Entry>) -> bool {
        let Some(shared) = self.shared.as_ref() else {
            return false;
        };
        let digest = digest(key);
        let _turn = lock(&shared.updates);
        for _ in 0..UPDATE_ATTEMPTS {
            let Some(seen) = shared.run(|h| {
                let rtxn = h.env.read_txn()?;
                Ok(h.db.get(&rtxn, &digest)?.map(<[u8]>::to_vec))
            }) else {
                return false;
            };
            let now = self.clock.wall();
            let current = seen
                .as_deref()
                .and_then(|bytes| decode(bytes, key).ok())
                .filter(|e| !wall_expired(e.created_at, e.expires_at, now));
            let new = change(current).map(|entry| encode(&entry));
            if new
                .as_ref()
                .is_some_and(|v| !encoded_is_storable(v) || v.len() as u64 > self.budget)
            {
                return false;
            }
            match shared.run(|h| {
                h.replace_if_unchanged(&digest, seen.as_deref(), new.as_deref(), self.budget, now)
            }) {
                Some(true) => return true,
                Some(false) => continue, // another writer got there first: merge into theirs
                None => return false,
            }
        }
        log::debug!("disk cache: gave up updating {}", short_hex(&digest));
        false
    }

    /// The wall clock this cache judges expiry by.
    pub fn now(&self) -> SystemTime {
        self.clock.wall()
    }

    /// Whether the disk tier is in use (it can be disabled at open, or later by a fatal error).
    pub fn is_enabled(&self) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|s| s.read_state().handle.is_some())
    }

    /// Problems not yet reported, each distinct one once per process
    /// ("disk cache disabled: directory /x is a symlink", ...).
    pub fn take_warnings(&self) -> Vec<String> {
        let mut pending = std::mem::take(&mut *lock(&self.open_warnings));
        if let Some(shared) = &self.shared {
            pending.append(&mut lock(&shared.warnings));
        }
        let mut said = lock(&SAID);
        pending
            .into_iter()
            .filter(|w| said.insert(w.clone()))
            .collect()
    }

    /// The cache directory in use (canonical), if enabled at open.
    pub fn dir(&self) -> Option<&Path> {
        self.shared.as_deref().map(|s| s.cache_dir.as_path())
    }

    #[cfg(test)]
    fn inject_error(&self, error: heed::Error) {
        if let Some(shared) = &self.shared {
            lock(&shared.injected).push(error);
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|s| s.is_power_of_two())
        .unwrap_or(4096)
}

/// Checks the directory (every time) and returns this process's environment for it, opening
/// it if no `DiskCache` has it open.
fn open_shared(dir: &Path, map_size: usize) -> Result<Arc<SharedEnv>, String> {
    dir::ensure_private_dir(dir)?;
    dir::write_cachedir_tag(dir);
    let cache_dir = dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve directory {}: {e}", dir.display()))?;
    // Held while opening, so that two threads cannot open the same environment twice.
    let mut registry = lock(&REGISTRY);
    registry.retain(|_, env| env.strong_count() > 0);
    if let Some(shared) = registry.get(&cache_dir).and_then(Weak::upgrade) {
        return Ok(shared);
    }
    let shared = Arc::new(SharedEnv::open(cache_dir.clone(), map_size)?);
    registry.insert(cache_dir, Arc::downgrade(&shared));
    Ok(shared)
}

/// One open environment and what is needed to repair it: shared by every [`DiskCache`] of the
/// process on the same directory.
struct SharedEnv {
    cache_dir: PathBuf,
    map_size: usize,
    /// Transactions run under the read side; reopening, resizing and quarantine take the write
    /// side, which guarantees that no transaction of this process is active (LMDB's condition
    /// for `mdb_env_set_mapsize`, and for closing the environment).
    /// Declared before `lock`, so the environment is closed before the sidecar lock is released.
    state: RwLock<EnvState>,
    lock: SidecarLock,
    warnings: Mutex<Vec<String>>,
    /// Held by [`DiskCache::update`]: its optimistic retry is for other processes, rare; threads
    /// of this one, which may update in a tight loop, take turns instead of starving each other.
    updates: Mutex<()>,
    /// LMDB corruption errors since the last (re)open.
    damage_errors: AtomicU32,
    #[cfg(test)]
    injected: Mutex<Vec<heed::Error>>,
}

struct EnvState {
    /// `None` once disabled.
    handle: Option<Handle>,
    /// Bumped on every reopen, so that concurrent failures of the same environment repair it once.
    generation: u64,
    reopens: u32,
    /// The identity of the environment directory this handle opened; a quarantine only moves
    /// that directory, not one another process already put in its place.
    identity: Option<(u64, u64)>,
}

struct Handle {
    env: Env<WithoutTls>,
    db: Db,
}

/// Why opening the environment failed.
enum OpenError {
    /// The files are damaged: quarantine and start afresh.
    Damaged(String),
    /// Anything else: disable.
    Failed(String),
}

/// What to do about an error of an operation.
enum Recovery {
    AdoptMapSize,
    Reopen,
    ClearReaders,
    Damage,
    GiveUp,
}

fn recovery_for(error: &heed::Error) -> Recovery {
    match error {
        heed::Error::Mdb(MdbError::MapResized) => Recovery::AdoptMapSize,
        heed::Error::Mdb(MdbError::Panic) => Recovery::Reopen,
        heed::Error::Mdb(MdbError::ReadersFull) => Recovery::ClearReaders,
        e if is_damage(e) => Recovery::Damage,
        _ => Recovery::GiveUp,
    }
}

fn is_damage(error: &heed::Error) -> bool {
    matches!(
        error,
        heed::Error::Mdb(
            MdbError::Invalid
                | MdbError::Corrupted
                | MdbError::PageNotFound
                | MdbError::VersionMismatch
        )
    )
}

fn is_map_full(error: &heed::Error) -> bool {
    matches!(error, heed::Error::Mdb(MdbError::MapFull))
}

/// Checks an environment after an unclean shutdown, in a process of its own: a damaged page can
/// crash whoever reads it (SIGSEGV, SIGBUS), which only a separate process survives. Set once by
/// the program (which knows how to start such a process); without one, no check is made.
static VERIFIER: OnceLock<fn(&Path) -> bool> = OnceLock::new();

/// Installs the verifier: `verify(layout)` must return whether the environment in `layout` is
/// intact, running [`verify_layout`] in a child process.
pub fn set_verifier(verify: fn(&Path) -> bool) {
    let _ = VERIFIER.set(verify);
}

/// Reads every entry of the environment in `layout` and checks it whole (header, checksum,
/// payload). The body of the verifying process: it may crash on a damaged page, which is the
/// point of running it apart.
pub fn verify_layout(layout: &Path) -> bool {
    let Ok(handle) = open_handle(layout, DEFAULT_MAP_SIZE) else {
        return false;
    };
    let scan = || -> heed::Result<bool> {
        let rtxn = handle.env.read_txn()?;
        for item in handle.db.iter(&rtxn)? {
            let (_, value) = item?;
            let Ok(header) = parse_header(value) else {
                return Ok(false);
            };
            if decode(value, header.key).is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    };
    scan().unwrap_or(false)
}

impl SharedEnv {
    fn open(cache_dir: PathBuf, map_size: usize) -> Result<SharedEnv, String> {
        let lock = SidecarLock::open_shared(&cache_dir)?;
        dir::ensure_private_dir(&cache_dir.join(LAYOUT))?;
        let mut warnings = Vec::new();
        // A process that had the environment open died without closing it (crash, kill -9):
        // check the environment before this process reads a page of it.
        if dir::unclean_shutdown(&cache_dir) {
            if let Some(verify) = VERIFIER.get() {
                if !verify(&cache_dir.join(LAYOUT)) {
                    let identity = dir::dir_identity(&cache_dir.join(LAYOUT));
                    let why = "a nuaws process stopped while using it, and it failed verification";
                    warnings.push(heal(&cache_dir, &lock, identity, why)?);
                }
            }
        }
        dir::mark_open(&cache_dir);
        let (handle, identity) = open_or_heal(&cache_dir, &lock, map_size, &mut warnings)?;
        Ok(SharedEnv {
            cache_dir,
            map_size,
            state: RwLock::new(EnvState {
                handle: Some(handle),
                generation: 0,
                reopens: 0,
                identity,
            }),
            lock,
            warnings: Mutex::new(warnings),
            updates: Mutex::default(),
            damage_errors: AtomicU32::new(0),
            #[cfg(test)]
            injected: Mutex::default(),
        })
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, EnvState> {
        // EnvState is replaced whole under the write lock; a panic cannot leave it half-done.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, EnvState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn warn(&self, warning: String) {
        log::debug!("{warning}");
        lock(&self.warnings).push(warning);
    }

    /// Runs `op` on the environment, repairing what can be repaired and retrying once.
    /// `None` when disabled, or when the operation failed anyway.
    fn run<R>(&self, op: impl Fn(&Handle) -> heed::Result<R>) -> Option<R> {
        for attempt in 0..2 {
            let (result, generation) = {
                let state = self.read_state();
                let handle = state.handle.as_ref()?;
                #[cfg(test)]
                let injected = lock(&self.injected).pop();
                #[cfg(not(test))]
                let injected: Option<heed::Error> = None;
                let result = match injected {
                    Some(error) => Err(error),
                    None => op(handle),
                };
                (result, state.generation)
            };
            let error = match result {
                Ok(value) => return Some(value),
                Err(error) => error,
            };
            log::debug!("disk cache: LMDB error: {error}");
            if attempt > 0 {
                if is_damage(&error) {
                    self.note_damage(generation);
                }
                return None;
            }
            match recovery_for(&error) {
                Recovery::AdoptMapSize => self.adopt_map_size(),
                Recovery::Reopen => self.reopen(generation, &error),
                Recovery::ClearReaders => self.clear_stale_readers(),
                Recovery::Damage => {
                    self.note_damage(generation);
                    return None;
                }
                Recovery::GiveUp => return None,
            }
        }
        None
    }

    /// Another process wrote past our map: adopt the size it recorded.
    fn adopt_map_size(&self) {
        let state = self.write_state();
        if let Some(handle) = &state.handle {
            // SAFETY: the write lock is held, so no transaction of this process is active,
            // which is what mdb_env_set_mapsize requires; 0 means "the size in the meta page".
            if let Err(e) = unsafe { handle.env.resize(0) } {
                log::debug!("disk cache: cannot adopt the new map size: {e}");
            }
        }
    }

    fn clear_stale_readers(&self) {
        if let Some(handle) = &self.read_state().handle {
            match handle.env.clear_stale_readers() {
                Ok(n) => log::debug!("disk cache: cleared {n} stale readers"),
                Err(e) => log::debug!("disk cache: cannot clear stale readers: {e}"),
            }
        }
    }

    /// `MDB_PANIC`: the environment must be closed; reopen it (a bounded number of times).
    fn reopen(&self, seen_generation: u64, error: &heed::Error) {
        let mut state = self.write_state();
        if state.generation != seen_generation || state.handle.is_none() {
            return; // another thread already reopened (or disabled) it
        }
        if state.reopens >= MAX_REOPENS {
            state.handle = None;
            self.warn(format!(
                "disk cache disabled: LMDB keeps failing in {} ({error})",
                self.cache_dir.display()
            ));
            return;
        }
        state.reopens += 1;
        self.replace_handle(&mut state, false, &error.to_string());
    }

    /// Counts an LMDB corruption error; after a few, quarantines the environment.
    fn note_damage(&self, seen_generation: u64) {
        let count = self.damage_errors.fetch_add(1, Ordering::Relaxed) + 1;
        if count < DAMAGE_ERRORS_BEFORE_QUARANTINE {
            return;
        }
        let mut state = self.write_state();
        if state.generation != seen_generation || state.handle.is_none() {
            return;
        }
        self.replace_handle(&mut state, true, "repeated LMDB corruption errors");
    }

    /// Closes the environment and opens it again; when `damaged`, quarantines it first.
    /// Disables the tier (with a warning) if that fails.
    fn replace_handle(&self, state: &mut EnvState, damaged: bool, why: &str) {
        // Closing: the handle holds the only `Env` of this path in the process.
        state.handle = None;
        state.generation += 1;
        self.damage_errors.store(0, Ordering::Relaxed);
        if damaged {
            match heal(&self.cache_dir, &self.lock, state.identity, why) {
                Ok(warning) => self.warn(warning),
                Err(reason) => {
                    self.warn(format!("disk cache disabled: {reason}"));
                    return;
                }
            }
        }
        let mut warnings = Vec::new();
        match open_or_heal(&self.cache_dir, &self.lock, self.map_size, &mut warnings) {
            Ok((handle, identity)) => {
                state.handle = Some(handle);
                state.identity = identity;
            }
            Err(reason) => warnings.push(format!("disk cache disabled: {reason}")),
        }
        for warning in warnings {
            self.warn(warning);
        }
    }

    /// Deletes the value under `digest` if `still_bad` holds for it in the write transaction:
    /// another process may have replaced it with a good value since it was read.
    fn delete_if(&self, digest: &Digest, still_bad: &dyn Fn(&[u8]) -> bool) {
        let deleted = self.run(|h| {
            let mut wtxn = h.env.write_txn()?;
            let bad = h.db.get(&wtxn, digest.as_slice())?.is_some_and(still_bad);
            if bad {
                h.db.delete(&mut wtxn, digest.as_slice())?;
                wtxn.commit()?;
            }
            Ok(bad)
        });
        if deleted == Some(true) {
            log::debug!("disk cache: deleted entry {}", short_hex(digest));
        }
    }
}

/// Opens the environment in `cache_dir/v1`; if it is damaged, quarantines it and opens a fresh
/// one. Returns the handle and the identity of the directory it opened.
fn open_or_heal(
    cache_dir: &Path,
    lock: &SidecarLock,
    map_size: usize,
    warnings: &mut Vec<String>,
) -> Result<(Handle, Option<(u64, u64)>), String> {
    let layout = cache_dir.join(LAYOUT);
    let identity = dir::dir_identity(&layout);
    let why = match open_handle(&layout, map_size) {
        Ok(handle) => return Ok((handle, identity)),
        Err(OpenError::Failed(reason)) => return Err(reason),
        Err(OpenError::Damaged(why)) => why,
    };
    warnings.push(heal(cache_dir, lock, identity, &why)?);
    let identity = dir::dir_identity(&layout);
    match open_handle(&layout, map_size) {
        Ok(handle) => Ok((handle, identity)),
        Err(OpenError::Failed(reason) | OpenError::Damaged(reason)) => Err(format!(
            "cannot open a fresh cache in {}: {reason}",
            layout.display()
        )),
    }
}

/// Quarantines a damaged environment directory, if no other process is using it. Returns the
/// warning to give. The caller has closed its own environment of that directory.
fn heal(
    cache_dir: &Path,
    lock: &SidecarLock,
    seen: Option<(u64, u64)>,
    why: &str,
) -> Result<String, String> {
    if !lock.try_exclusive() {
        return Err(format!(
            "the cache in {} is damaged ({why}) and other nuaws processes are using it; \
             it will be repaired once they exit",
            cache_dir.display()
        ));
    }
    let moved = dir::quarantine(cache_dir, seen);
    if !lock.back_to_shared() {
        return Err(format!(
            "cannot lock {} again after repairing it",
            cache_dir.display()
        ));
    }
    Ok(match moved? {
        Some(aside) => format!(
            "disk cache was damaged ({why}); moved it aside to {} and started afresh",
            aside.display()
        ),
        None => {
            format!("disk cache was damaged ({why}); another nuaws process already replaced it")
        }
    })
}

/// Opens the environment in `layout`, with a bounded retry, and checks it before any page is
/// read.
fn open_handle(layout: &Path, map_size: usize) -> Result<Handle, OpenError> {
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(map_size).max_readers(MAX_READERS);
    let mut last_error = String::new();
    for attempt in 0..OPEN_ATTEMPTS {
        if attempt > 0 {
            thread::sleep(OPEN_RETRY_BASE * (1 << attempt));
        }
        // SAFETY: heed's conditions for opening (`EnvOpenOptions::open`): default flags only
        // (no NO_LOCK, NO_SYNC or WRITEMAP); the directory was checked to be on a local file
        // system; the process-wide registry makes this the only open of this path in the
        // process; no file of the environment is modified outside LMDB except by quarantine,
        // which renames the directory only when no process has it open (sidecar lock).
        match unsafe { options.open(layout) } {
            Ok(env) => return check_and_open_db(env, layout),
            Err(heed::Error::EnvAlreadyOpened) => {
                // The previous environment of this path is still being closed by another
                // thread (its last `DiskCache` was just dropped): wait for it.
                if let Some(closing) = layout.canonicalize().ok().and_then(heed::env_closing_event)
                {
                    closing.wait_timeout(CLOSING_WAIT);
                }
                last_error = heed::Error::EnvAlreadyOpened.to_string();
            }
            // Retried once, in case it was a race with another process creating the files.
            Err(e) if is_damage(&e) && attempt > 0 => {
                return Err(OpenError::Damaged(e.to_string()));
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(OpenError::Failed(format!(
        "cannot open the LMDB environment in {}: {last_error}",
        layout.display()
    )))
}

/// The checks between opening and first use, then the database handle.
fn check_and_open_db(env: Env<WithoutTls>, layout: &Path) -> Result<Handle, OpenError> {
    for file in ["data.mdb", "lock.mdb"] {
        dir::restrict_file_mode(&layout.join(file)).map_err(OpenError::Failed)?;
    }
    match env.clear_stale_readers() {
        Ok(0) => {}
        Ok(n) => log::debug!("disk cache: cleared {n} stale readers at open"),
        Err(e) => log::debug!("disk cache: cannot clear stale readers: {e}"),
    }

    // LMDB trusts the meta page's last page number and never compares it with the file: a
    // truncated data.mdb is mapped past its end, and the first read there is a SIGBUS.
    let info = env.info();
    let page_size = env.unnamed_database_stat().page_size as u64;
    let needed = (info.last_page_number as u64 + 1).saturating_mul(page_size);
    let actual = env
        .real_disk_size()
        .map_err(|e| OpenError::Failed(format!("cannot stat data.mdb: {e}")))?;
    if actual < needed {
        return Err(OpenError::Damaged(format!(
            "data.mdb is truncated: {actual} bytes, its pages need {needed}"
        )));
    }

    let classify = |e: heed::Error| {
        if is_damage(&e) {
            OpenError::Damaged(e.to_string())
        } else {
            OpenError::Failed(format!("cannot open the cache database: {e}"))
        }
    };
    let rtxn = env.read_txn().map_err(classify)?;
    let opened = env
        .open_databases_and_commit(rtxn, |opener, rtxn| {
            opener
                .open_database::<Bytes, Bytes>(rtxn, None)
                .map(CommitOrAbort::<_, ()>::Commit)
        })
        .map_err(classify)?;
    match opened.commit().flatten() {
        Some(db) => Ok(Handle { env, db }),
        // The unnamed database always exists in LMDB; not finding it means damage.
        None => Err(OpenError::Damaged(
            "the main database is missing".to_string(),
        )),
    }
}

/// Keys found by a scan: readable ones with their digest (cached results and records apart),
/// and the LMDB keys of values that cannot be an entry (bad header, or a key that does not hash
/// to where it is stored).
/// The digests of the listed keys that satisfy `pred`.
fn matching_digests(listed: &[(Digest, String)], pred: &dyn Fn(&str) -> bool) -> Vec<Digest> {
    listed.iter().filter(|(_, key)| pred(key)).map(|(digest, _)| *digest).collect()
}

struct Listing {
    entries: Vec<(Digest, String)>,
    records: Vec<(Digest, String)>,
    unreadable: Vec<Vec<u8>>,
}

impl Handle {
    fn list(&self) -> heed::Result<Listing> {
        let rtxn = self.env.read_txn()?;
        let mut listing = Listing {
            entries: Vec::new(),
            records: Vec::new(),
            unreadable: Vec::new(),
        };
        for item in self.db.iter(&rtxn)? {
            let (key, value) = item?;
            match readable_key(key, value) {
                Some(record) if record.1.starts_with(RECORD_PREFIX) => listing.records.push(record),
                Some(entry) => listing.entries.push(entry),
                None => listing.unreadable.push(key.to_vec()),
            }
        }
        Ok(listing)
    }

    /// Writes `new` under `digest` (or deletes it, for `None`) if the stored value is still
    /// `seen`, keeping within `budget`. `Ok(false)` when another writer changed it meanwhile.
    fn replace_if_unchanged(
        &self,
        digest: &Digest,
        seen: Option<&[u8]>,
        new: Option<&[u8]>,
        budget: u64,
        now: SystemTime,
    ) -> heed::Result<bool> {
        let mut wtxn = self.env.write_txn()?;
        if self.db.get(&wtxn, digest.as_slice())? != seen {
            return Ok(false); // dropping the transaction aborts it
        }
        match new {
            Some(value) => {
                self.db.put(&mut wtxn, digest.as_slice(), value)?;
                if self.used_bytes(&wtxn)? > budget {
                    let target = budget / 100 * EVICT_TO_PERCENT;
                    self.evict(&mut wtxn, target, Some(digest), now)?;
                }
            }
            None => {
                self.db.delete(&mut wtxn, digest.as_slice())?;
            }
        }
        wtxn.commit()?;
        Ok(true)
    }

    /// Stores `value` under `digest` within `budget`, handling MAP_FULL at put or commit.
    /// `Ok(false)` when it had to be skipped.
    fn insert(
        &self,
        digest: &Digest,
        value: &[u8],
        budget: u64,
        now: SystemTime,
    ) -> heed::Result<bool> {
        match self.put_within_budget(digest, value, budget, now) {
            Ok(()) => Ok(true),
            Err(e) if is_map_full(&e) => {
                // The map is full whatever the budget says: pages freed by earlier writes can
                // still be pinned by a reader (a stale one, of a killed process, or a slow one).
                if let Err(e) = self.env.clear_stale_readers() {
                    log::debug!("disk cache: cannot clear stale readers: {e}");
                }
                match self.make_room_and_put(digest, value, now) {
                    Ok(()) => Ok(true),
                    Err(e) if is_map_full(&e) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn put_within_budget(
        &self,
        digest: &Digest,
        value: &[u8],
        budget: u64,
        now: SystemTime,
    ) -> heed::Result<()> {
        let mut wtxn = self.env.write_txn()?;
        self.db.put(&mut wtxn, digest.as_slice(), value)?;
        if self.used_bytes(&wtxn)? > budget {
            let target = budget / 100 * EVICT_TO_PERCENT;
            self.evict(&mut wtxn, target, Some(digest), now)?;
        }
        wtxn.commit()
    }

    fn put_many_within_budget(&self, values: &[(Digest, Vec<u8>)], budget: u64, now: SystemTime) -> heed::Result<()> {
        let mut wtxn = self.env.write_txn()?;
        for (digest, value) in values {
            self.db.put(&mut wtxn, digest.as_slice(), value)?;
        }
        if self.used_bytes(&wtxn)? > budget {
            let target = budget / 100 * EVICT_TO_PERCENT;
            self.evict(&mut wtxn, target, values.last().map(|(d, _)| d), now)?;
        }
        wtxn.commit()
    }

    /// After MAP_FULL: in a new transaction, drop the old value of this key, evict expired
    /// entries and then the oldest until half of what was stored is left, and put again.
    fn make_room_and_put(
        &self,
        digest: &Digest,
        value: &[u8],
        now: SystemTime,
    ) -> heed::Result<()> {
        let mut wtxn = self.env.write_txn()?;
        self.db.delete(&mut wtxn, digest.as_slice())?;
        let target = self.used_bytes(&wtxn)? / 2;
        self.evict(&mut wtxn, target, None, now)?;
        self.db.put(&mut wtxn, digest.as_slice(), value)?;
        wtxn.commit()
    }

    /// Bytes of the pages holding the entries (the B-tree and the values' overflow pages):
    /// what the budget limits, since it is what the file must hold. O(1): LMDB keeps the counts.
    fn used_bytes(&self, txn: &RoTxn<'_>) -> heed::Result<u64> {
        let stat = self.db.stat(txn)?;
        let pages = stat.branch_pages + stat.leaf_pages + stat.overflow_pages;
        Ok(pages as u64 * u64::from(stat.page_size))
    }

    /// Deletes unreadable and expired entries, then the oldest valid ones until `target` bytes
    /// are used. `keep` is never deleted (the entry being written).
    fn evict(
        &self,
        wtxn: &mut heed::RwTxn<'_>,
        target: u64,
        keep: Option<&Digest>,
        now: SystemTime,
    ) -> heed::Result<()> {
        /// Eviction order: unreadable first, then expired, then valid; oldest first within each.
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        enum Rank {
            Unreadable,
            Expired,
            Valid,
        }
        let mut candidates: Vec<(Rank, SystemTime, Vec<u8>)> = Vec::new();
        for item in self.db.iter(wtxn)? {
            let (key, value) = item?;
            if keep.is_some_and(|k| k.as_slice() == key) {
                continue;
            }
            let rank = match readable_key(key, value).and_then(|_| parse_header(value).ok()) {
                None => (Rank::Unreadable, SystemTime::UNIX_EPOCH),
                Some(h) if wall_expired(h.created_at, h.expires_at, now) => {
                    (Rank::Expired, h.created_at)
                }
                // A valid record is never traded for space: records are few and small (one
                // per hour of metrics), and they expire by themselves.
                Some(h) if h.key.starts_with(RECORD_PREFIX) => continue,
                Some(h) => (Rank::Valid, h.created_at),
            };
            candidates.push((rank.0, rank.1, key.to_vec()));
        }
        candidates.sort_unstable();
        let mut evicted = 0usize;
        for (rank, _, key) in candidates {
            if rank == Rank::Valid && self.used_bytes(wtxn)? <= target {
                break;
            }
            self.db.delete(wtxn, &key)?;
            evicted += 1;
        }
        log::debug!("disk cache: evicted {evicted} entries");
        Ok(())
    }
}

/// The digest and readable key of a stored value, if its header parses and the key hashes to
/// the LMDB key it is stored under (which also catches a damaged key in the header).
fn readable_key(lmdb_key: &[u8], value: &[u8]) -> Option<(Digest, String)> {
    let digest: Digest = lmdb_key.try_into().ok()?;
    if value.len() > MAX_VALUE_LEN {
        return None;
    }
    let header = codec::parse_header(value).ok()?;
    (self::digest(header.key) == digest).then(|| (digest, header.key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::clock::MockClock;
    use crate::cache::codec::tests::every_field_kind;
    use crate::row::{Field, Row};
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const TTL: Duration = Duration::from_secs(600);

    fn setup(max_bytes: u64) -> (tempfile::TempDir, Arc<MockClock>, DiskCache) {
        let tmp = tempfile::tempdir().unwrap();
        let clock = Arc::new(MockClock::new());
        let cache = DiskCache::open(&tmp.path().join("nuaws"), max_bytes, clock.clone());
        assert!(cache.is_enabled(), "{:?}", cache.take_warnings());
        (tmp, clock, cache)
    }

    fn entry(key: &str, clock: &MockClock, ttl: Duration) -> Entry {
        Entry::new(key, every_field_kind(), clock.wall(), ttl)
    }

    mod noise {
        include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/noise.rs"));
    }
    use noise::noise;

    fn big_entry(key: &str, clock: &MockClock, len: usize) -> Entry {
        let rows = vec![Row::new().with(
            "blob",
            Field::Text(noise(len, digest(key)[0] as u64 + len as u64)),
        )];
        Entry::new(key, rows, clock.wall(), TTL)
    }

    #[test]
    fn insert_get_round_trip_and_miss() {
        let (_tmp, clock, cache) = setup(1 << 20);
        let e = entry("k1", &clock, TTL);
        cache.insert(&e);
        assert_eq!(cache.get("k1"), Some(e));
        assert_eq!(cache.get("k2"), None);
        let stats = cache.stats();
        assert_eq!(stats.entries, 1);
        assert!(
            stats.bytes > 0 && stats.file_bytes >= stats.bytes,
            "{stats:?}"
        );
    }

    #[test]
    fn ttl_uses_wall_clock_rules_only() {
        let (_tmp, clock, cache) = setup(1 << 20);
        cache.insert(&entry("k", &clock, TTL));
        clock.advance(TTL - Duration::from_millis(1));
        assert!(cache.get("k").is_some(), "ttl - 1ms must hit");
        clock.advance(Duration::from_millis(2));
        assert!(cache.get("k").is_none(), "ttl + 1ms must miss");
        assert_eq!(cache.stats().entries, 0, "expired entry deleted");

        // Monotonic time means nothing on disk (another process wrote the entry).
        cache.insert(&entry("m", &clock, TTL));
        clock.advance_mono(TTL * 10);
        assert!(cache.get("m").is_some());

        // +2h: expired. -2h: created in the future, invalid.
        cache.insert(&entry("fwd", &clock, TTL));
        let now = clock.wall();
        clock.set_wall(now + Duration::from_secs(7200));
        assert!(cache.get("fwd").is_none());
        clock.set_wall(now);
        cache.insert(&entry("back", &clock, TTL));
        clock.set_wall(now - Duration::from_secs(7200));
        assert!(cache.get("back").is_none());

        // Duration::MAX: clamped, stored, served.
        clock.set_wall(now);
        cache.insert(&entry("forever", &clock, Duration::MAX));
        clock.advance(Duration::from_secs(5 * 365 * 24 * 3600));
        assert!(cache.get("forever").is_some());
    }

    #[test]
    fn keys_and_remove_matching() {
        let (_tmp, clock, cache) = setup(1 << 20);
        for k in ["s3|a", "s3|b", "ec2|a"] {
            cache.insert(&entry(k, &clock, TTL));
        }
        let mut keys = cache.keys();
        keys.sort();
        assert_eq!(keys, ["ec2|a", "s3|a", "s3|b"]);
        assert_eq!(cache.remove_matching(&|k| k.starts_with("s3|")), 2);
        assert_eq!(cache.keys(), ["ec2|a"]);
        assert_eq!(cache.remove_matching(&|_| false), 0);
    }

    #[test]
    fn same_dir_twice_shares_one_environment() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nuaws");
        let clock: Arc<dyn Clock> = Arc::new(MockClock::new());
        let a = DiskCache::open(&dir, 1 << 20, clock.clone());
        // Same directory, spelled differently, and through a symlinked parent.
        let b = DiskCache::open(&tmp.path().join("nuaws/../nuaws"), 1 << 20, clock.clone());
        std::os::unix::fs::symlink(tmp.path(), tmp.path().join("parent-link")).unwrap();
        let c = DiskCache::open(
            &tmp.path().join("parent-link/nuaws"),
            1 << 20,
            clock.clone(),
        );
        for cache in [&a, &b, &c] {
            assert!(cache.is_enabled(), "{:?}", cache.take_warnings());
        }
        assert!(Arc::ptr_eq(
            a.shared.as_ref().unwrap(),
            c.shared.as_ref().unwrap()
        ));
        a.insert(&Entry::new("k", every_field_kind(), clock.wall(), TTL));
        assert!(b.get("k").is_some());
        assert!(c.get("k").is_some());

        // Dropping every handle closes the environment; opening again works and sees the data.
        drop((a, b, c));
        let d = DiskCache::open(&dir, 1 << 20, clock.clone());
        assert!(d.is_enabled(), "{:?}", d.take_warnings());
        assert!(d.get("k").is_some());
    }

    #[test]
    fn concurrent_threads_share_the_environment() {
        let (_tmp, clock, cache) = setup(4 << 20);
        let cache = Arc::new(cache);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let cache = cache.clone();
                let clock = clock.clone();
                thread::spawn(move || {
                    for i in 0..50 {
                        let key = format!("t{t}-{i}");
                        cache.insert(&Entry::new(&key, every_field_kind(), clock.wall(), TTL));
                        let got = cache.get(&key).expect("own write visible");
                        assert_eq!(got.key, key);
                        let _ = cache.get(&format!("t{}-{i}", (t + 1) % 8));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(cache.stats().entries, 400);
    }

    #[test]
    fn budget_evicts_oldest_and_expired_first() {
        let (_tmp, clock, cache) = setup(256 << 10);
        // 40 entries of ~16 KiB each: 2.5x the budget.
        for i in 0..40 {
            cache.insert(&big_entry(&format!("k{i:02}"), &clock, 16 << 10));
            clock.advance(Duration::from_secs(1));
        }
        let stats = cache.stats();
        assert!(stats.bytes <= 256 << 10, "{stats:?}");
        assert!(cache.get("k39").is_some(), "the newest entry survives");
        assert!(cache.get("k00").is_none(), "the oldest entry was evicted");
        // The survivors are the newest ones, contiguously.
        let mut keys = cache.keys();
        keys.sort();
        let first: usize = keys[0][1..].parse().unwrap();
        assert_eq!(keys.len(), 40 - first, "{keys:?}");

        // An expired entry goes before any valid one: "short" is newer than every other entry
        // (oldest-first alone would keep it) but expired, so the next eviction removes it.
        cache.insert(&Entry::new(
            "short",
            vec![],
            clock.wall(),
            Duration::from_secs(1),
        ));
        clock.advance(Duration::from_secs(2));
        assert!(cache.keys().contains(&"short".to_string()));
        // Enough to go over the budget again (eviction stopped at 90% of it).
        let before = cache.keys().len();
        for i in 0..4 {
            cache.insert(&big_entry(&format!("trigger{i}"), &clock, 16 << 10));
        }
        let keys = cache.keys();
        assert!(keys.len() < before + 4, "no eviction happened: {keys:?}");
        assert!(
            !keys.contains(&"short".to_string()),
            "expired entry evicted: {keys:?}"
        );
        assert!(keys.contains(&"k39".to_string()), "{keys:?}");
    }

    fn counter_record(key: &str, n: i64, clock: &MockClock) -> Entry {
        Entry::new(key, vec![Row::new().with("n", Field::Int(n))], clock.wall(), TTL)
    }

    fn counter_of(entry: Option<Entry>) -> i64 {
        match entry.as_ref().and_then(|e| e.rows.first()).and_then(|r| r.get("n")) {
            Some(Field::Int(n)) => *n,
            _ => 0,
        }
    }

    #[test]
    fn records_are_not_cache_entries_and_are_never_evicted_for_space() {
        let (_tmp, clock, cache) = setup(256 << 10);
        let key = format!("{RECORD_PREFIX}test/a");
        assert!(cache.update(&key, &|_| Some(counter_record(&key, 1, &clock))));
        // Far over the budget: entries are evicted, the record is not, though it is the oldest.
        for i in 0..40 {
            clock.advance(Duration::from_secs(1));
            cache.insert(&big_entry(&format!("k{i:02}"), &clock, 16 << 10));
        }
        assert!(cache.get("k00").is_none(), "eviction happened");
        assert_eq!(counter_of(cache.get(&key)), 1);
        assert!(!cache.keys().contains(&key), "not listed as a cached result");
        assert!(cache.remove_matching(&|_| true) > 0);
        assert_eq!(counter_of(cache.get(&key)), 1, "not cleared with the cached results");
        assert_eq!(cache.record_keys(RECORD_PREFIX), std::slice::from_ref(&key));
        assert!(cache.record_keys("@nuaws/other/").is_empty());
        assert_eq!(cache.remove_records(&|k| k == key), 1);
        assert!(cache.get(&key).is_none());
        // An expired record goes like any expired entry.
        assert!(cache.update(&key, &|_| Some(counter_record(&key, 1, &clock))));
        clock.advance(TTL * 2);
        assert!(cache.get(&key).is_none());
    }

    #[test]
    fn concurrent_updates_lose_nothing() {
        let (_tmp, clock, cache) = setup(1 << 20);
        let cache = Arc::new(cache);
        let key = format!("{RECORD_PREFIX}test/counter");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (cache, clock, key) = (cache.clone(), clock.clone(), key.clone());
                thread::spawn(move || {
                    for _ in 0..25 {
                        let add_one = |current: Option<Entry>| {
                            Some(counter_record(&key, counter_of(current) + 1, &clock))
                        };
                        assert!(cache.update(&key, &add_one));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counter_of(cache.get(&key)), 100);
        // `None` removes.
        assert!(cache.update(&key, &|_| None));
        assert!(cache.get(&key).is_none());
    }

    #[test]
    fn entry_bigger_than_budget_is_skipped() {
        let (_tmp, clock, cache) = setup(64 << 10);
        cache.insert(&big_entry("small", &clock, 1 << 10));
        cache.insert(&big_entry("huge", &clock, 256 << 10));
        assert!(cache.get("huge").is_none());
        assert!(
            cache.get("small").is_some(),
            "a skipped write must not evict anything"
        );
    }

    #[test]
    fn corrupt_value_is_a_miss_and_is_deleted() {
        let (_tmp, clock, cache) = setup(1 << 20);
        cache.insert(&entry("k", &clock, TTL));
        // Overwrite the stored value behind the codec's back.
        let shared = cache.shared.as_ref().unwrap();
        let d = digest("k");
        shared
            .run(|h| {
                let mut wtxn = h.env.write_txn()?;
                let mut value = h.db.get(&wtxn, d.as_slice())?.unwrap().to_vec();
                let last = value.len() - 1;
                value[last] ^= 0x55;
                h.db.put(&mut wtxn, d.as_slice(), &value)?;
                wtxn.commit()
            })
            .unwrap();
        assert_eq!(cache.get("k"), None);
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn value_under_the_wrong_digest_is_not_served() {
        let (_tmp, clock, cache) = setup(1 << 20);
        cache.insert(&entry("a", &clock, TTL));
        // Move a's value under b's digest, as a collision would.
        let shared = cache.shared.as_ref().unwrap();
        shared
            .run(|h| {
                let mut wtxn = h.env.write_txn()?;
                let value = h.db.get(&wtxn, digest("a").as_slice())?.unwrap().to_vec();
                h.db.put(&mut wtxn, digest("b").as_slice(), &value)?;
                wtxn.commit()
            })
            .unwrap();
        assert_eq!(cache.get("b"), None);
        assert_eq!(cache.keys(), ["a"], "the misplaced value is not listed");
        assert!(cache.get("a").is_some());
    }

    #[test]
    fn mdb_panic_reopens_then_disables() {
        let (_tmp, clock, cache) = setup(1 << 20);
        cache.insert(&entry("k", &clock, TTL));
        cache.inject_error(heed::Error::Mdb(MdbError::Panic));
        assert!(cache.get("k").is_some(), "reopened and retried");
        assert!(cache.is_enabled());
        for _ in 0..MAX_REOPENS {
            cache.inject_error(heed::Error::Mdb(MdbError::Panic));
            let _ = cache.get("k");
        }
        assert!(!cache.is_enabled(), "gives up after repeated panics");
        assert_eq!(cache.get("k"), None);
        cache.insert(&entry("k2", &clock, TTL)); // no panic, no error
        let warnings = cache.take_warnings();
        assert!(
            warnings.iter().any(|w| w.contains("disk cache disabled")),
            "{warnings:?}"
        );
        assert!(cache.take_warnings().is_empty(), "said once");
    }

    #[test]
    fn map_resized_is_adopted() {
        let (_tmp, clock, cache) = setup(1 << 20);
        cache.insert(&entry("k", &clock, TTL));
        cache.inject_error(heed::Error::Mdb(MdbError::MapResized));
        assert!(cache.get("k").is_some());
    }

    #[test]
    fn repeated_damage_quarantines() {
        let (tmp, clock, cache) = setup(1 << 20);
        cache.insert(&entry("k", &clock, TTL));
        for _ in 0..DAMAGE_ERRORS_BEFORE_QUARANTINE {
            cache.inject_error(heed::Error::Mdb(MdbError::Corrupted));
            assert_eq!(cache.get("k"), None);
        }
        assert!(cache.is_enabled(), "{:?}", cache.take_warnings());
        let warnings = cache.take_warnings();
        assert!(
            warnings.iter().any(|w| w.contains("moved it aside")),
            "{warnings:?}"
        );
        let quarantined = fs::read_dir(tmp.path().join("nuaws"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("v1.corrupt-")
            })
            .count();
        assert_eq!(quarantined, 1);
        // A fresh, working cache.
        assert_eq!(cache.get("k"), None);
        cache.insert(&entry("k", &clock, TTL));
        assert!(cache.get("k").is_some());
    }

    #[test]
    fn refused_directories_disable_with_one_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(MockClock::new());
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let cache = DiskCache::open(&open, 1 << 20, clock.clone());
        assert!(!cache.is_enabled());
        assert_eq!(cache.get("k"), None);
        cache.insert(&Entry::new("k", vec![], clock.wall(), TTL));
        assert_eq!(cache.stats(), TierStats::default());
        assert_eq!(cache.keys(), Vec::<String>::new());
        assert_eq!(cache.remove_matching(&|_| true), 0);
        let warnings = cache.take_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("disk cache disabled: directory"),
            "{warnings:?}"
        );
        assert!(
            warnings[0].contains("writable by group or others"),
            "{warnings:?}"
        );
        // Once per process.
        let again = DiskCache::open(&open, 1 << 20, clock.clone());
        assert!(again.take_warnings().is_empty());
        assert!(
            !open.join("v1").exists(),
            "nothing created in a refused directory"
        );
    }
}
