//! [`SharedCache`]: the tier a team shares, on Redis (or Valkey), between the disk tier and the
//! network. Off unless configured ([`SharedConfig`]).
//!
//! It never slows the shell down:
//! - the connection is made lazily, in the background, by the first lookup (no start-up probe);
//! - a lookup waits at most [`SharedConfig::deadline`] (tens of milliseconds); a late answer is a
//!   miss, counted as a timeout, and is dropped when it comes;
//! - writes go through a bounded queue to a background task, and are dropped when it is full;
//! - a circuit breaker: after a few faults in a row the tier is skipped for a cool-down, then one
//!   probe is let through. Faults and timeouts are counted apart from misses.
//!
//! Redis sees only ciphertext and keyed hashes ([`Sealer`]): each value is sealed with
//! XChaCha20-Poly1305 under a key derived (HKDF-SHA256) from the team key for the entry's scope,
//! with the logical key, the scope, the schema version, fetched-at, expires-at and the generation
//! as associated data. An entry moved to another key, replayed after its expiry, or written by
//! someone without the team key fails to open, and is counted as rejected. Key names are HMACs
//! of the group and of the logical key: no bucket, object key or instance id is visible.
//!
//! Invalidation is by generation: every entry names the generation of its group
//! ([`key::shared_group`](super::key::shared_group)) it was fetched under; a write through nuaws
//! sets a new generation for the groups it makes stale, and entries of an older one are misses
//! for everyone. A group's counter and its entries share a Redis hash tag (`{...}`), so one
//! `MGET` reads both, on one node of a cluster too. A generation names the time it was set, so the
//! tiers above (memory, disk) are checked against it too ([`TierStore::still_current`]): a local
//! copy fetched before a teammate's write is not served. The counter a process read is trusted
//! for [`SharedConfig::recheck`] ([`GENERATION_MEMO`] by default), so a running shell drops a
//! stale memory copy within a second; sooner on one server, where Redis tells it of every
//! generation that moves ([`tracking`](super::tracking): RESP3 client tracking, a hint).
//!
//! Single flight across machines: a reader that every tier missed takes the entry's lease
//! (`SET NX PX`, a name hashed like the entry's, in its hash tag) before it asks AWS, and gives
//! it up when its answer is written (or its fetch fails); a reader finding the lease held polls
//! for the answer for at most the lease's length ([`SharedConfig::lease`], 2 s), then asks AWS
//! itself: a dead holder costs the others that wait, never more. So 50 CI jobs missing the same
//! listing at once make one request.
//!
//! Reaches one server (`redis://`, `rediss://` with the system's roots or a CA file of its own)
//! or a Redis Cluster (`redis+cluster://host:port,host:port`). No command here needs keys of two
//! slots: an entry, its lease and its group's counter share a hash tag, so the `MGET`s and the
//! scripts of one lookup go to one node, and other groups spread over the cluster.
//!
//! Not here: which results may be cached or for how long (the policy), nor what a write makes
//! stale (the commands say). Nothing here logs values, plaintext keys or key material.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

use super::clock::Clock;
use super::codec::{self, Entry, FORMAT_VERSION};
use super::key::{key_parts, shared_group};
use super::tier::{Stale, TierStore};
use super::tiered::Tier;
use super::tracking::{self, Forget, GENERATION_PREFIX, TrackingState};
use super::wall_expired;
use crate::metrics::latency::{Latency, LatencyRecorder};
use crate::runtime::runtime;

/// The shortest team key accepted, in bytes.
pub const MIN_TEAM_KEY_LEN: usize = 32;
/// Entries larger than this (sealed) are not shared: a listing that big is cheaper to page again
/// than to move through Redis on every lookup.
pub const MAX_SHARED_VALUE: usize = 8 << 20;
/// Version of the sealed layout and of the key names; another version is never read.
pub const SHARED_SCHEMA: u16 = 1;
const MAGIC: [u8; 4] = *b"NUS1";
const NONCE_LEN: usize = 24;
/// How long the background work on one command (a write, or a lookup nobody waits for any
/// more) may take before it is abandoned.
const BACKGROUND_BOUND: Duration = Duration::from_secs(2);
/// How long a process waits at exit for its queued writes to reach Redis.
const EXIT_DRAIN: Duration = Duration::from_millis(500);
/// How long a process trusts the generation it last read of a group before reading it again to
/// check a local copy, unless configured ([`SharedConfig::recheck`]).
pub const GENERATION_MEMO: Duration = Duration::from_secs(1);
/// Generations remembered per process (the ones its lookups saw), before the memory is reset.
const MAX_REMEMBERED_GENERATIONS: usize = 4096;

/// The team's secret, from a file or an environment variable. Never printed.
#[derive(Clone)]
pub struct TeamKey(Vec<u8>);

impl TeamKey {
    /// A team key of at least [`MIN_TEAM_KEY_LEN`] bytes (surrounding whitespace removed, so a
    /// key file may end with a newline).
    pub fn new(bytes: &[u8]) -> Result<TeamKey, String> {
        let trimmed = bytes.trim_ascii();
        if trimmed.len() < MIN_TEAM_KEY_LEN {
            return Err(format!(
                "the team key has {} bytes; at least {MIN_TEAM_KEY_LEN} are needed",
                trimmed.len()
            ));
        }
        Ok(TeamKey(trimmed.to_vec()))
    }
}

impl fmt::Debug for TeamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TeamKey(..)")
    }
}

/// How to reach the shared tier and how patient to be with it (a builder: policy apart from the
/// storage). Made by the shell from `$env.NUAWS_SHARED_CACHE`.
#[derive(Clone, Debug)]
pub struct SharedConfig {
    url: String,
    username: Option<String>,
    password: Option<String>,
    key: TeamKey,
    deadline: Duration,
    roles: Vec<String>,
    queue: usize,
    failures_to_open: u32,
    cooldown: Duration,
    lease: Duration,
    recheck: Duration,
    tracking: bool,
    ca: Option<CaCertificates>,
}

/// The PEM certificates a `rediss://` server's certificate must chain to, instead of the
/// system's roots. Public material, but long: not printed.
#[derive(Clone)]
pub struct CaCertificates(Vec<u8>);

impl fmt::Debug for CaCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaCertificates({} bytes)", self.0.len())
    }
}

impl SharedConfig {
    /// A configuration for `url` (`redis://host:port` or `rediss://host:port`, see
    /// [`SharedConfig::check_url`]) with the team key.
    pub fn new(url: impl Into<String>, key: TeamKey) -> Result<SharedConfig, String> {
        let url = url.into();
        Self::check_url(&url)?;
        Ok(SharedConfig {
            url,
            username: None,
            password: None,
            key,
            deadline: Duration::from_millis(50),
            roles: Vec::new(),
            queue: 256,
            failures_to_open: 3,
            cooldown: Duration::from_secs(30),
            lease: Duration::from_secs(2),
            recheck: GENERATION_MEMO,
            tracking: true,
            ca: None,
        })
    }

    /// A URL is `redis://` or `rediss://` (TLS) for one server, or `redis+cluster://` or
    /// `rediss+cluster://` followed by one or more `host:port` of a Redis Cluster's nodes,
    /// separated by commas (the client learns the rest of the cluster from them). No username or
    /// password in it: they go in their own settings, so they are never shown with the URL.
    pub fn check_url(url: &str) -> Result<(), String> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err("the URL has no scheme; write redis://host:port or rediss://host:port".into());
        };
        if !matches!(scheme, "redis" | "rediss" | "redis+cluster" | "rediss+cluster") {
            return Err(format!(
                "`{scheme}://` is not supported: use redis://, rediss://, redis+cluster:// or rediss+cluster://"
            ));
        }
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') {
            return Err("the URL holds credentials; give `username` and `password_env` instead".into());
        }
        if authority.is_empty() {
            return Err("the URL names no host".into());
        }
        if scheme.ends_with("+cluster") {
            if authority.split(',').any(|node| node.trim().is_empty()) {
                return Err("a cluster URL lists nodes as host:port,host:port with none empty".into());
            }
        } else if authority.contains(',') {
            return Err("several nodes are a cluster: write redis+cluster://host:port,host:port".into());
        }
        Ok(())
    }

    /// The nodes a cluster URL names, each as a one-server URL; `None` for a one-server URL.
    fn cluster_nodes(&self) -> Option<Vec<String>> {
        let (scheme, rest) = self.url.split_once("://")?;
        let single = scheme.strip_suffix("+cluster")?;
        let authority = rest.split('/').next().unwrap_or_default();
        Some(authority.split(',').map(|node| format!("{single}://{}", node.trim())).collect())
    }

    fn is_tls(&self) -> bool {
        self.url.starts_with("rediss")
    }

    /// How long the first reader of a missing entry holds the lease that makes the others wait
    /// for its answer (default 2 s), and so how long they wait at most before asking AWS
    /// themselves: about the time a typical answer takes to fetch.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(1));
        self
    }

    /// How long a generation this process read is trusted before a copy in memory or on disk is
    /// checked against Redis again (default [`GENERATION_MEMO`], 1 s): the longest a running
    /// shell serves a copy a teammate's write made stale.
    pub fn recheck(mut self, recheck: Duration) -> Self {
        self.recheck = recheck;
        self
    }

    /// Whether to ask Redis to tell this process at once when a generation moves (default on;
    /// one server only, Redis 6 or later: see [`tracking`](super::tracking)).
    pub fn tracking(mut self, on: bool) -> Self {
        self.tracking = on;
        self
    }

    /// For `rediss://`: the PEM certificates (one or more CAs) the server's certificate must
    /// chain to, instead of the system's roots.
    pub fn ca_certificates(mut self, pem: Option<Vec<u8>>) -> Self {
        self.ca = pem.map(CaCertificates);
        self
    }

    pub fn username(mut self, username: Option<String>) -> Self {
        self.username = username;
        self
    }

    pub fn password(mut self, password: Option<String>) -> Self {
        self.password = password;
        self
    }

    /// How long a lookup may wait for Redis (default 50 ms); later is a miss.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Roles whose sessions share one scope (the session name dropped).
    pub fn roles(mut self, roles: Vec<String>) -> Self {
        self.roles = roles;
        self
    }

    /// Writes waiting for Redis at most; more are dropped (default 256).
    pub fn queue(mut self, queue: usize) -> Self {
        self.queue = queue.max(1);
        self
    }

    /// Faults in a row that open the breaker (default 3), and how long it stays open before one
    /// probe (default 30 s).
    pub fn breaker(mut self, failures: u32, cooldown: Duration) -> Self {
        self.failures_to_open = failures.max(1);
        self.cooldown = cooldown;
        self
    }

    pub fn role_scopes(&self) -> &[String] {
        &self.roles
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// The counters of the shared tier, for `aws cache stats`.
#[derive(Clone, Debug, Default)]
pub struct SharedStats {
    pub hits: u64,
    /// Absent, or of an older generation.
    pub misses: u64,
    /// Lookups Redis did not answer in time.
    pub timeouts: u64,
    /// Lookups and writes that failed (connection refused, protocol error, ...).
    pub errors: u64,
    /// Entries that failed to open: tampered, moved, replayed after expiry, or sealed with
    /// another key.
    pub rejected: u64,
    /// Lookups and writes not tried because the breaker was open.
    pub skipped: u64,
    pub writes: u64,
    /// Writes dropped because the queue was full or the breaker open.
    pub dropped: u64,
    /// Generations moved by this process's writes.
    pub invalidations: u64,
    /// Misses of every tier after which this process took the lease and fetched for everyone.
    pub lease_wins: u64,
    /// Misses of every tier that found another machine's lease and waited for its answer.
    pub lease_waits: u64,
    /// Waits that ended with the lease holder's answer (each also a hit).
    pub lease_filled: u64,
    /// Waits that ended without it (the lease lapsed or was given up): this process fetched.
    pub lease_lapsed: u64,
    /// Latency of the lookups that were answered (hits and misses).
    pub latency: Latency,
    /// Whether the breaker is open now.
    pub open: bool,
    /// Whether Redis tells this process of moved generations now (client tracking).
    pub tracking: bool,
    /// Generations Redis said moved (tracking's pushes).
    pub pushes: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    timeouts: AtomicU64,
    errors: AtomicU64,
    rejected: AtomicU64,
    skipped: AtomicU64,
    writes: AtomicU64,
    dropped: AtomicU64,
    invalidations: AtomicU64,
    lease_wins: AtomicU64,
    lease_waits: AtomicU64,
    lease_filled: AtomicU64,
    lease_lapsed: AtomicU64,
    latency: LatencyRecorder,
}

fn bump(n: &AtomicU64) {
    n.fetch_add(1, Ordering::Relaxed);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The circuit breaker: closed, open until a time, or letting one probe through.
#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

impl Breaker {
    fn allow(&mut self, now: Instant) -> bool {
        match self.open_until {
            None => true,
            Some(until) if now < until => false,
            Some(_) if self.probing => false,
            Some(_) => {
                self.probing = true;
                true
            }
        }
    }

    fn succeeded(&mut self) {
        *self = Breaker::default();
    }

    fn failed(&mut self, now: Instant, threshold: u32, cooldown: Duration) {
        self.failures = self.failures.saturating_add(1);
        if self.probing || self.failures >= threshold {
            self.open_until = Some(now + cooldown);
            self.probing = false;
        }
    }

    fn is_open(&self, now: Instant) -> bool {
        self.open_until.is_some_and(|until| now < until)
    }
}

/// Why a sealed value is not served. Never carries key material or values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Of another generation than its group's current one: invalidated, a plain miss.
    Stale,
    /// Failed to authenticate or decode: tampered, moved, or sealed with another key.
    Forged,
    /// Authentic but past its expiry (a replay with a reset Redis TTL), or from the future.
    Expired,
}

/// The keyed hashes and the sealing of entries, all derived from the team key.
pub struct Sealer {
    names: Hmac<Sha256>,
    kdf: Hkdf<Sha256>,
}

/// Where an entry lives in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub entry: String,
    pub generation: String,
    /// The single-flight lease of the entry: held by the reader fetching it for everyone.
    pub lease: String,
}

impl Sealer {
    pub fn new(key: &TeamKey) -> Sealer {
        let kdf = Hkdf::<Sha256>::new(Some(b"nuaws shared cache"), &key.0);
        let mut names_key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit: this cannot fail.
        let _ = kdf.expand(b"nuaws/v1/names", &mut names_key);
        let names = <Hmac<Sha256> as KeyInit>::new_from_slice(&names_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        Sealer { names, kdf }
    }

    fn hash_hex(&self, domain: &[u8], text: &str, bytes: usize) -> String {
        let mut mac = self.names.clone();
        mac.update(domain);
        mac.update(text.as_bytes());
        mac.finalize().into_bytes()[..bytes].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The Redis names of `key`'s entry and of its group's generation counter.
    pub fn names(&self, key: &str) -> Names {
        let tag = self.hash_hex(b"group\0", &shared_group(key), 10);
        let name = self.hash_hex(b"key\0", key, 16);
        Names {
            entry: format!("nuaws:v{SHARED_SCHEMA}:{{{tag}}}:{name}"),
            generation: format!("{GENERATION_PREFIX}{{{tag}}}"),
            lease: format!("nuaws:v{SHARED_SCHEMA}:{{{tag}}}:{name}:lease"),
        }
    }

    /// The generation counter of a group: named apart from the entries (its own prefix, for
    /// tracking to watch), in their hash tag.
    pub fn generation_name(&self, group: &str) -> String {
        let tag = self.hash_hex(b"group\0", group, 10);
        format!("{GENERATION_PREFIX}{{{tag}}}")
    }

    /// The scope an entry's key is derived for: the account and the key's digest, which covers
    /// partition, caller ARN (or opted-in role), endpoint, region, operation and parameters.
    fn scope(key: &str) -> String {
        match (key_parts(key), key.rsplit_once('#')) {
            (Some(parts), Some((_, digest))) => format!("{}#{digest}", parts.account),
            _ => shared_group(key),
        }
    }

    fn cipher(&self, scope: &str) -> XChaCha20Poly1305 {
        let mut key = [0u8; 32];
        let mut info = b"nuaws/v1/scope\0".to_vec();
        info.extend_from_slice(scope.as_bytes());
        let _ = self.kdf.expand(&info, &mut key);
        XChaCha20Poly1305::new(&key.into())
    }

    fn aad(header: &[u8], key: &str, scope: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(header.len() + key.len() + scope.len() + 16);
        aad.extend_from_slice(header);
        for part in [key, scope] {
            aad.extend_from_slice(&(part.len() as u32).to_le_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }

    /// The sealed form of `entry`, fetched under `generation`:
    /// `magic | schema u16 | fetched_at i64 ms | expires_at i64 ms | gen_len u16 | gen | nonce | ciphertext`,
    /// everything before the nonce (and the key and scope) authenticated as associated data.
    pub fn seal(&self, entry: &Entry, generation: &str) -> Vec<u8> {
        let mut header = Vec::with_capacity(32 + generation.len());
        header.extend_from_slice(&MAGIC);
        header.extend_from_slice(&SHARED_SCHEMA.to_le_bytes());
        header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&millis(entry.created_at).to_le_bytes());
        header.extend_from_slice(&millis(entry.expires_at).to_le_bytes());
        let generation = &generation.as_bytes()[..generation.len().min(u16::MAX as usize)];
        header.extend_from_slice(&(generation.len() as u16).to_le_bytes());
        header.extend_from_slice(generation);
        let scope = Self::scope(&entry.key);
        let aad = Self::aad(&header, &entry.key, &scope);
        let nonce = XNonce::generate();
        let plain = codec::encode(entry);
        let sealed = self
            .cipher(&scope)
            .encrypt(&nonce, Payload { msg: &plain, aad: &aad })
            .unwrap_or_default();
        let mut out = header;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value read under `key` while its group is at `generation`, at wall time `now`.
    pub fn open(&self, bytes: &[u8], key: &str, generation: &str, now: SystemTime) -> Result<Entry, Refusal> {
        let header_len = |gen_len: usize| 4 + 2 + 2 + 8 + 8 + 2 + gen_len;
        if bytes.len() < header_len(0) || bytes[..4] != MAGIC {
            return Err(Refusal::Forged);
        }
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let i64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            i64::from_le_bytes(b)
        };
        if u16_at(4) != SHARED_SCHEMA || u16_at(6) != FORMAT_VERSION {
            return Err(Refusal::Forged);
        }
        let gen_len = u16_at(24) as usize;
        let header = header_len(gen_len);
        if bytes.len() < header + NONCE_LEN + 16 {
            return Err(Refusal::Forged);
        }
        if &bytes[26..header] != generation.as_bytes() {
            return Err(Refusal::Stale);
        }
        let scope = Self::scope(key);
        let aad = Self::aad(&bytes[..header], key, &scope);
        let nonce = XNonce::try_from(&bytes[header..header + NONCE_LEN]).map_err(|_| Refusal::Forged)?;
        let plain = self
            .cipher(&scope)
            .decrypt(&nonce, Payload { msg: &bytes[header + NONCE_LEN..], aad: &aad })
            .map_err(|_| Refusal::Forged)?;
        let entry = codec::decode(&plain, key).map_err(|_| Refusal::Forged)?;
        if millis(entry.created_at) != i64_at(8) || millis(entry.expires_at) != i64_at(16) {
            return Err(Refusal::Forged);
        }
        if wall_expired(entry.created_at, entry.expires_at, now) {
            return Err(Refusal::Expired);
        }
        Ok(entry)
    }
}

fn millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Work for the background writer.
enum Job {
    /// Write an answer, then give up the lease its fetch held (if it held one).
    Put(Arc<Entry>, Option<Lease>),
    Bump(Vec<String>),
    /// Give up a lease whose fetch ended with nothing to write (an error, a listing cut short).
    Release(Lease),
}

/// A single-flight lease this process holds: its Redis name and the token only it knows (so
/// it never deletes a lease that lapsed and was taken by someone else since).
#[derive(Clone, Debug)]
struct Lease {
    name: String,
    token: String,
}

/// Takes the lease (KEYS[1]) unless someone holds it, and reads the generation (KEYS[2]) and
/// the entry (KEYS[3]) in the same step: an answer written between this reader's lookup and
/// its claim is seen, so no second fetch starts. The three names share a hash tag (one slot of
/// a cluster). `or false` keeps a missing value from cutting Lua's array short.
const CLAIM: &str = "local won = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0 \
    return {won, redis.call('GET', KEYS[2]) or false, redis.call('GET', KEYS[3]) or false}";
/// Deletes the lease KEYS[1] if it is still the one with token ARGV[1].
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
/// How often a reader waiting on a lease looks for the answer.
const LEASE_POLL: Duration = Duration::from_millis(25);

/// A connection to one server (reconnecting by itself) or to a cluster (routing each command to
/// the node of its keys' slot, following MOVED and ASK).
#[derive(Clone)]
enum Link {
    Single(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Link {
    async fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T, String> {
        let out = match self {
            Link::Single(conn) => cmd.query_async(conn).await,
            Link::Cluster(conn) => cmd.query_async(conn).await,
        };
        out.map_err(|e| e.to_string())
    }
}

struct Inner {
    config: SharedConfig,
    sealer: Sealer,
    clock: Arc<dyn Clock>,
    /// Made on first use (connecting lazily), or why it could not be.
    link: OnceLock<Result<Link, String>>,
    breaker: Mutex<Breaker>,
    queue: OnceLock<mpsc::Sender<Job>>,
    /// Writes queued or in flight, for the drain at exit.
    pending: AtomicUsize,
    /// The generation each group had when this process last read it, and when: what a write of
    /// an answer fetched after that read is sealed under (so a teammate's invalidation in between
    /// wins), and what local copies are checked against.
    generations: Mutex<HashMap<String, (String, Instant)>>,
    /// The leases this process holds, by logical key: given up when the answer is written, or
    /// when the fetch ends without one.
    leases: Mutex<HashMap<String, Lease>>,
    /// Keys whose last lookup got no answer (late, or a fault), so their fetch takes no lease.
    unanswered: Mutex<std::collections::HashSet<String>>,
    /// Whether Redis tells this process of moved generations (started with the connection).
    tracking: Arc<TrackingState>,
    /// This tier itself, for the tracking task (which must not keep it alive).
    me: Weak<Inner>,
    counters: Counters,
}

/// The shared tier. Cheap to clone; every clone is the same tier.
#[derive(Clone)]
pub struct SharedCache {
    inner: Arc<Inner>,
}

/// Shared tiers alive in this process, drained at exit.
static LIVE: LazyLock<Mutex<Vec<Weak<Inner>>>> = LazyLock::new(Default::default);

extern "C" fn drain_at_exit() {
    let live: Vec<_> = lock(&LIVE).iter().filter_map(Weak::upgrade).collect();
    for inner in live {
        inner.drain(EXIT_DRAIN);
    }
}

fn text(value: Option<Vec<u8>>) -> String {
    value.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default()
}

impl SharedCache {
    /// The tier for `config`. Connects nothing yet.
    pub fn new(config: SharedConfig, clock: Arc<dyn Clock>) -> SharedCache {
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            sealer: Sealer::new(&config.key),
            config,
            clock,
            link: OnceLock::new(),
            breaker: Mutex::default(),
            queue: OnceLock::new(),
            pending: AtomicUsize::new(0),
            generations: Mutex::default(),
            leases: Mutex::default(),
            unanswered: Mutex::default(),
            tracking: Arc::default(),
            counters: Counters::default(),
        });
        let mut live = lock(&LIVE);
        if live.is_empty() {
            static REGISTER: std::sync::Once = std::sync::Once::new();
            // SAFETY: registers a plain `extern "C" fn()` with the C library, once.
            REGISTER.call_once(|| unsafe {
                libc::atexit(drain_at_exit);
            });
        }
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&inner));
        SharedCache { inner }
    }

    pub fn config(&self) -> &SharedConfig {
        &self.inner.config
    }

    pub fn stats(&self) -> SharedStats {
        let c = &self.inner.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SharedStats {
            hits: n(&c.hits),
            misses: n(&c.misses),
            timeouts: n(&c.timeouts),
            errors: n(&c.errors),
            rejected: n(&c.rejected),
            skipped: n(&c.skipped),
            writes: n(&c.writes),
            dropped: n(&c.dropped),
            invalidations: n(&c.invalidations),
            lease_wins: n(&c.lease_wins),
            lease_waits: n(&c.lease_waits),
            lease_filled: n(&c.lease_filled),
            lease_lapsed: n(&c.lease_lapsed),
            latency: c.latency.snapshot(),
            open: lock(&self.inner.breaker).is_open(self.inner.clock.mono()),
            tracking: self.inner.tracking.active(),
            pushes: self.inner.tracking.pushes(),
        }
    }

    /// Waits up to `bound` for the queued writes to be done; whether they are.
    pub fn flush(&self, bound: Duration) -> bool {
        self.inner.drain(bound)
    }

    fn lookup(&self, key: &str) -> Option<Entry> {
        let inner = &self.inner;
        if !inner.allow() {
            bump(&inner.counters.skipped);
            return None;
        }
        let names = inner.sealer.names(key);
        let started = Instant::now();
        let read = redis::cmd("MGET").arg(&names.generation).arg(&names.entry).clone();
        let Some(values) = inner.ask::<Vec<Option<Vec<u8>>>>(read) else {
            let mut unanswered = lock(&inner.unanswered);
            if unanswered.len() >= MAX_REMEMBERED_GENERATIONS {
                unanswered.clear();
            }
            unanswered.insert(key.to_string());
            return None;
        };
        let c = &inner.counters;
        c.latency.record(started.elapsed());
        lock(&inner.unanswered).remove(key);
        let mut values = values.into_iter();
        let generation = text(values.next().flatten());
        let value = values.next().flatten();
        inner.remember(&names.generation, generation.clone());
        match value.map(|bytes| inner.open(&bytes, key, &generation)) {
            Some(Ok(entry)) => {
                bump(&c.hits);
                Some(entry)
            }
            None | Some(Err(Refusal::Stale)) => {
                bump(&c.misses);
                None
            }
            Some(Err(_)) => None, // counted as rejected
        }
    }

    /// After every tier missed `key`, just before its reader goes to AWS: single flight across
    /// machines. The first reader takes the entry's lease (`SET NX PX`, [`SharedConfig::lease`])
    /// and fetches (`None`: go ahead); a reader that finds the lease held polls for the holder's
    /// answer and returns it, or gives up and fetches itself when the lease is gone without an
    /// answer or its time is up, so a dead holder never blocks anyone past the lease. A fault
    /// of Redis ends the wait at once (counted as usual). Entries that fail to open here were
    /// counted by the lookup before (or are a holder's answer not written yet): not counted again.
    fn wait_for_fill(&self, key: &str) -> Option<Entry> {
        let inner = &self.inner;
        // Its lookup just now got no answer: a lease would cost another deadline for nothing.
        // An open breaker: the lookup was skipped (and counted) just now.
        if lock(&inner.unanswered).remove(key) || !inner.allow() {
            return None;
        }
        let c = &inner.counters;
        let names = inner.sealer.names(key);
        let lease = Lease {
            name: names.lease.clone(),
            token: format!("{:016x}", rand_u64()),
        };
        let claim = redis::cmd("EVAL")
            .arg(CLAIM)
            .arg(3)
            .arg(&names.lease)
            .arg(&names.generation)
            .arg(&names.entry)
            .arg(&lease.token)
            .arg(u64::try_from(inner.config.lease.as_millis()).unwrap_or(u64::MAX))
            .clone();
        let (won, generation, value): (i64, Option<Vec<u8>>, Option<Vec<u8>>) = inner.ask(claim)?;
        let generation = text(generation);
        inner.remember(&names.generation, generation.clone());
        if let Some(entry) = value.and_then(|bytes| inner.sealer.open(&bytes, key, &generation, inner.clock.wall()).ok()) {
            // Written since this reader's lookup: no fetch, and no lease to keep.
            if won == 1 {
                self.enqueue(Job::Release(lease));
            }
            bump(&c.hits);
            return Some(entry);
        }
        if won == 1 {
            lock(&inner.leases).insert(key.to_string(), lease);
            bump(&c.lease_wins);
            return None;
        }
        bump(&c.lease_waits);
        let until = Instant::now() + inner.config.lease;
        loop {
            std::thread::sleep(LEASE_POLL.min(until.saturating_duration_since(Instant::now())));
            if Instant::now() >= until {
                bump(&c.lease_lapsed);
                return None;
            }
            let poll = redis::cmd("MGET").arg(&names.generation).arg(&names.entry).arg(&names.lease).clone();
            let Some(values) = inner.ask::<Vec<Option<Vec<u8>>>>(poll) else {
                bump(&c.lease_lapsed);
                return None;
            };
            let mut values = values.into_iter();
            let generation = text(values.next().flatten());
            let value = values.next().flatten();
            let held = values.next().flatten().is_some();
            inner.remember(&names.generation, generation.clone());
            if let Some(entry) = value.and_then(|bytes| inner.sealer.open(&bytes, key, &generation, inner.clock.wall()).ok()) {
                bump(&c.hits);
                bump(&c.lease_filled);
                return Some(entry);
            }
            if !held {
                bump(&c.lease_lapsed);
                return None;
            }
        }
    }

    /// Whether a copy of `entry` held above this tier is still current: fetched after the last
    /// invalidation of its group. When the generation cannot be read in time, the copy is served.
    fn current(&self, entry: &Entry) -> bool {
        let inner = &self.inner;
        let counter = inner.sealer.names(&entry.key).generation;
        let memo = lock(&inner.generations)
            .get(&counter)
            .filter(|(_, seen)| seen.elapsed() < inner.config.recheck)
            .map(|(g, _)| g.clone());
        let generation = match memo {
            Some(g) => g,
            None => {
                if !inner.allow() {
                    bump(&inner.counters.skipped);
                    return true;
                }
                let Some(values) = inner.ask::<Vec<Option<Vec<u8>>>>(redis::cmd("MGET").arg(&counter).clone()) else {
                    return true;
                };
                let g = text(values.into_iter().next().flatten());
                inner.remember(&counter, g.clone());
                g
            }
        };
        // "<unix ms>-<random>": the time of the last invalidation (none: "").
        let set_at = generation.split('-').next().and_then(|ms| ms.parse::<i64>().ok());
        set_at.is_none_or(|set_at| millis(entry.created_at) > set_at)
    }

    fn enqueue(&self, job: Job) {
        let inner = &self.inner;
        if !inner.allow() {
            bump(&inner.counters.dropped);
            return;
        }
        let queue = inner.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(inner.config.queue);
            runtime().spawn(writer(Arc::downgrade(inner), rx));
            tx
        });
        inner.pending.fetch_add(1, Ordering::SeqCst);
        if queue.try_send(job).is_err() {
            inner.pending.fetch_sub(1, Ordering::SeqCst);
            bump(&inner.counters.dropped);
        }
    }
}

/// The background writer: one job at a time, in order (a write of an answer never overtakes
/// the invalidation queued before it).
async fn writer(inner: Weak<Inner>, mut rx: mpsc::Receiver<Job>) {
    while let Some(job) = rx.recv().await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let done = tokio::time::timeout(BACKGROUND_BOUND, inner.run(job)).await;
        let now = inner.clock.mono();
        match done {
            Ok(Ok(())) => lock(&inner.breaker).succeeded(),
            Ok(Err(err)) => {
                bump(&inner.counters.errors);
                inner.failed(now);
                log::debug!("shared cache: write failed: {err}");
            }
            Err(_) => {
                bump(&inner.counters.timeouts);
                inner.failed(now);
            }
        }
        inner.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Inner {
    fn allow(&self) -> bool {
        lock(&self.breaker).allow(self.clock.mono())
    }

    fn failed(&self, now: Instant) {
        lock(&self.breaker).failed(now, self.config.failures_to_open, self.config.cooldown);
    }

    /// Starts tracking: each push forgets the generations it names, so the next check of a
    /// local copy of those groups reads them again.
    fn start_tracking(&self, client: &redis::Client) {
        let me = self.me.clone();
        tracking::start(client, self.tracking.clone(), move |forget| {
            let Some(inner) = me.upgrade() else {
                return false; // the tier is gone: stop tracking
            };
            let mut generations = lock(&inner.generations);
            match forget {
                Forget::All => generations.clear(),
                Forget::Counters(counters) => {
                    for counter in counters {
                        generations.remove(&counter);
                    }
                }
            }
            true
        });
    }

    fn remember(&self, counter: &str, generation: String) {
        let mut gens = lock(&self.generations);
        if gens.len() >= MAX_REMEMBERED_GENERATIONS {
            gens.clear();
        }
        gens.insert(counter.to_string(), (generation, Instant::now()));
    }

    /// The entry in `bytes`, read under `key` at `generation`; a refusal other than an older
    /// generation (a plain miss) is counted as rejected.
    fn open(&self, bytes: &[u8], key: &str, generation: &str) -> Result<Entry, Refusal> {
        let opened = self.sealer.open(bytes, key, generation, self.clock.wall());
        if let Err(refusal @ (Refusal::Forged | Refusal::Expired)) = opened {
            bump(&self.counters.rejected);
            log::debug!("shared cache: rejected an entry ({refusal:?})");
        }
        opened
    }

    /// Runs `cmd`, waiting at most the deadline: `None` on a timeout or fault (counted, and told
    /// to the breaker). The request runs on the runtime and outlives a caller that gave up, so a
    /// slow first connection still completes in the background.
    fn ask<T: redis::FromRedisValue + Send + 'static>(self: &Arc<Self>, cmd: redis::Cmd) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<T, String>>(1);
        let inner = self.clone();
        runtime().spawn(async move {
            let read = async {
                let mut link = inner.connection()?;
                link.query::<T>(&cmd).await
            };
            let out = match tokio::time::timeout(BACKGROUND_BOUND, read).await {
                Ok(out) => out,
                Err(_) => Err("no answer".to_string()),
            };
            // A receiver that gave up is gone; the answer is of no use any more.
            let _ = tx.send(out);
        });
        let answer = rx.recv_timeout(self.config.deadline);
        let now = self.clock.mono();
        let c = &self.counters;
        match answer {
            Err(_) => {
                bump(&c.timeouts);
                self.failed(now);
                log::debug!("shared cache: no answer within {:?}", self.config.deadline);
                None
            }
            Ok(Err(err)) => {
                bump(&c.errors);
                self.failed(now);
                log::debug!("shared cache: request failed: {err}");
                None
            }
            Ok(Ok(values)) => {
                lock(&self.breaker).succeeded();
                Some(values)
            }
        }
    }

    /// The connection, made on first use; it reconnects by itself after a fault. Call inside
    /// the runtime.
    fn connection(&self) -> Result<Link, String> {
        self.link.get_or_init(|| self.connect().map_err(|e| e.to_string())).clone()
    }

    fn connect(&self) -> redis::RedisResult<Link> {
        use redis::IntoConnectionInfo;
        let config = &self.config;
        if config.is_tls() {
            // Two TLS back ends are linked in (the SDK's and ring): say which one to use.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let certificates = || redis::TlsCertificates {
            client_tls: None,
            root_cert: config.ca.as_ref().map(|ca| ca.0.clone()),
        };
        if let Some(nodes) = config.cluster_nodes() {
            let mut builder = redis::cluster::ClusterClientBuilder::new(nodes)
                .connection_timeout(Duration::from_secs(1))
                .response_timeout(Duration::from_secs(1))
                .retries(1);
            if let Some(user) = &config.username {
                builder = builder.username(user);
            }
            if let Some(password) = &config.password {
                builder = builder.password(password);
            }
            if config.is_tls() && config.ca.is_some() {
                builder = builder.certs(certificates());
            }
            let cluster = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(Duration::from_secs(1))
                .set_response_timeout(Duration::from_secs(1));
            return Ok(Link::Cluster(builder.build()?.get_pending_async_connection_with_config(cluster)));
        }
        let client = |protocol: redis::ProtocolVersion| -> redis::RedisResult<redis::Client> {
            let info = config.url.as_str().into_connection_info()?;
            let mut settings = info.redis_settings().clone().set_protocol(protocol);
            if let Some(user) = &config.username {
                settings = settings.set_username(user);
            }
            if let Some(password) = &config.password {
                settings = settings.set_password(password);
            }
            let info = info.set_redis_settings(settings);
            if config.is_tls() && config.ca.is_some() {
                redis::Client::build_with_tls(info, certificates())
            } else {
                redis::Client::open(info)
            }
        };
        if config.tracking {
            // A connection of its own speaking RESP3, so a server that does not (before 6)
            // costs the tracking only, never the lookups.
            match client(redis::ProtocolVersion::RESP3) {
                Ok(resp3) => self.start_tracking(&resp3),
                Err(err) => log::debug!("shared cache: no tracking: {err}"),
            }
        }
        let client = client(redis::ProtocolVersion::RESP2)?;
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        Ok(Link::Single(client.get_connection_manager_lazy(manager)?))
    }

    async fn run(&self, job: Job) -> Result<(), String> {
        let mut link = self.connection()?;
        match job {
            Job::Put(entry, lease) => {
                self.write(&mut link, &entry).await?;
                if let Some(lease) = lease {
                    Self::release(&mut link, &lease).await?;
                }
            }
            Job::Release(lease) => Self::release(&mut link, &lease).await?,
            Job::Bump(groups) => {
                for group in groups {
                    let counter = self.sealer.generation_name(&group);
                    // Unique, so no two bumps ever give one value back; never 0/empty, so a
                    // counter lost to eviction still differs from every generation written.
                    let generation = format!("{}-{:016x}", millis(SystemTime::now()), rand_u64());
                    let () = link.query(redis::cmd("SET").arg(&counter).arg(&generation)).await?;
                    lock(&self.generations).remove(&counter);
                    bump(&self.counters.invalidations);
                }
            }
        }
        Ok(())
    }

    /// Seals `entry` under the generation its group had when this process read it, and stores it
    /// until it expires.
    async fn write(&self, link: &mut Link, entry: &Entry) -> Result<(), String> {
        let now = self.clock.wall();
        let Ok(left) = entry.expires_at.duration_since(now) else {
            return Ok(()); // expired while queued
        };
        let names = self.sealer.names(&entry.key);
        let known = lock(&self.generations).get(&names.generation).map(|(g, _)| g.clone());
        let generation = match known {
            Some(g) => g,
            None => text(link.query(redis::cmd("GET").arg(&names.generation)).await?),
        };
        let sealed = self.sealer.seal(entry, &generation);
        if sealed.len() > MAX_SHARED_VALUE {
            return Ok(());
        }
        let millis = u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1);
        let () = link.query(redis::cmd("SET").arg(&names.entry).arg(sealed).arg("PX").arg(millis)).await?;
        bump(&self.counters.writes);
        Ok(())
    }

    async fn release(link: &mut Link, lease: &Lease) -> Result<(), String> {
        let _: i64 = link.query(redis::cmd("EVAL").arg(RELEASE).arg(1).arg(&lease.name).arg(&lease.token)).await?;
        Ok(())
    }

    fn drain(&self, bound: Duration) -> bool {
        let until = Instant::now() + bound;
        while self.pending.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }
}

fn rand_u64() -> u64 {
    let nonce = XNonce::generate();
    let mut b = [0u8; 8];
    b.copy_from_slice(&nonce[..8]);
    u64::from_le_bytes(b)
}

impl TierStore for SharedCache {
    fn tier(&self) -> Tier {
        Tier::Shared
    }

    fn get(&self, key: &str) -> Option<Arc<Entry>> {
        self.lookup(key).map(Arc::new)
    }

    fn await_fill(&self, key: &str) -> Option<Arc<Entry>> {
        self.wait_for_fill(key).map(Arc::new)
    }

    fn abandon(&self, key: &str) {
        let held = lock(&self.inner.leases).remove(key);
        if let Some(lease) = held {
            self.enqueue(Job::Release(lease));
        }
    }

    fn still_current(&self, entry: &Entry) -> bool {
        self.current(entry)
    }

    fn put(&self, entry: &Arc<Entry>) {
        let lease = lock(&self.inner.leases).remove(&entry.key);
        if wall_expired(entry.created_at, entry.expires_at, self.inner.clock.wall()) {
            if let Some(lease) = lease {
                self.enqueue(Job::Release(lease));
            }
            return;
        }
        self.enqueue(Job::Put(entry.clone(), lease));
    }

    fn invalidate(&self, stale: &Stale<'_>) -> usize {
        if !stale.groups.is_empty() {
            self.enqueue(Job::Bump(stale.groups.clone()));
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{Field, Row};

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&TeamKey::new(&[byte; 32]).unwrap())
    }

    const KEY: &str = "111111111111/us-east-1/s3/ListObjectsV2/secret-bucket/logs/#0011223344556677";

    fn entry(key: &str, now: SystemTime) -> Entry {
        let rows = vec![Row::new().with("key", Field::Text("logs/payroll.csv".into()))];
        Entry::new(key, rows, now, Duration::from_secs(60))
    }

    #[test]
    fn a_sealed_entry_opens_only_where_and_when_it_was_written() {
        let now = SystemTime::now();
        let s = sealer(7);
        let e = entry(KEY, now);
        let sealed = s.seal(&e, "g1");
        assert_eq!(s.open(&sealed, KEY, "g1", now), Ok(e.clone()));
        // No plaintext: neither the bucket nor the object key shows.
        let text = String::from_utf8_lossy(&sealed);
        assert!(!text.contains("secret-bucket") && !text.contains("payroll"), "{text}");
        let names = s.names(KEY);
        assert!(!names.entry.contains("secret") && names.entry.starts_with("nuaws:v1:{"), "{names:?}");
        assert_eq!(names.generation, s.generation_name("111111111111/us-east-1/s3/secret-bucket"));
        // Moved to another key: rejected.
        let other = KEY.replace("logs/", "logz/");
        assert_eq!(s.open(&sealed, &other, "g1", now), Err(Refusal::Forged));
        // Another generation: stale, a plain miss.
        assert_eq!(s.open(&sealed, KEY, "g2", now), Err(Refusal::Stale));
        // Replayed after its expiry.
        assert_eq!(s.open(&sealed, KEY, "g1", now + Duration::from_secs(61)), Err(Refusal::Expired));
        // Sealed by someone without the team key.
        assert_eq!(sealer(8).open(&sealed, KEY, "g1", now), Err(Refusal::Forged));
        // A flipped bit anywhere, header (expiry) included.
        for i in [9, 17, sealed.len() / 2, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(s.open(&bad, KEY, "g1", now).is_err(), "byte {i}");
        }
        assert_eq!(s.open(b"garbage", KEY, "g1", now), Err(Refusal::Forged));
    }

    #[test]
    fn names_are_keyed_hashes() {
        // Same key, other team key: other names; an operator cannot test guesses without it.
        assert_ne!(sealer(1).names(KEY), sealer(2).names(KEY));
        // Entries of one group share the counter's hash tag (one slot on a cluster).
        let n = sealer(1).names(KEY);
        let tag = |s: &str| s.split_once('{').and_then(|(_, rest)| rest.split_once('}')).unwrap().0.to_string();
        assert_eq!(tag(&n.entry), tag(&n.generation));
        assert_eq!(tag(&n.entry), tag(&n.lease));
        // Counters apart from the entries, under the prefix tracking watches (of this schema).
        assert!(GENERATION_PREFIX.starts_with(&format!("nuaws:v{SHARED_SCHEMA}:")));
        assert!(n.generation.starts_with(GENERATION_PREFIX) && !n.entry.starts_with(GENERATION_PREFIX), "{n:?}");
    }

    #[test]
    fn short_team_keys_and_urls_with_credentials_are_refused() {
        assert!(TeamKey::new(b"short\n").is_err());
        assert!(TeamKey::new(&[b'k'; 40]).is_ok());
        assert_eq!(format!("{:?}", TeamKey::new(&[b'k'; 40]).unwrap()), "TeamKey(..)");
        assert!(SharedConfig::check_url("redis://127.0.0.1:6379").is_ok());
        assert!(SharedConfig::check_url("rediss://cache.internal:6380/0").is_ok());
        assert!(SharedConfig::check_url("redis://user:pw@127.0.0.1:6379").is_err());
        assert!(SharedConfig::check_url("http://127.0.0.1").is_err());
        assert!(SharedConfig::check_url("127.0.0.1:6379").is_err());
        assert!(SharedConfig::check_url("redis+cluster://10.0.0.1:6379,10.0.0.2:6379").is_ok());
        assert!(SharedConfig::check_url("rediss+cluster://10.0.0.1:6379").is_ok());
        assert!(SharedConfig::check_url("redis+cluster://10.0.0.1:6379,,10.0.0.2:6379").is_err());
        assert!(SharedConfig::check_url("redis://10.0.0.1:6379,10.0.0.2:6379").is_err());
        assert!(SharedConfig::check_url("rediss+cluster://u:p@10.0.0.1:6379").is_err());
        let key = || TeamKey::new(&[b'k'; 40]).unwrap();
        let cluster = SharedConfig::new("rediss+cluster://10.0.0.1:6379, 10.0.0.2:6380", key()).unwrap();
        assert_eq!(cluster.cluster_nodes(), Some(vec!["rediss://10.0.0.1:6379".to_string(), "rediss://10.0.0.2:6380".to_string()]));
        assert!(cluster.is_tls());
        assert_eq!(SharedConfig::new("redis://10.0.0.1:6379", key()).unwrap().cluster_nodes(), None);
    }

    #[test]
    fn the_breaker_opens_after_faults_and_lets_one_probe_through_after_the_cooldown() {
        let clock = crate::cache::clock::MockClock::new();
        let cooldown = Duration::from_secs(30);
        let mut b = Breaker::default();
        for _ in 0..2 {
            assert!(b.allow(clock.mono()));
            b.failed(clock.mono(), 3, cooldown);
        }
        assert!(b.allow(clock.mono()));
        b.failed(clock.mono(), 3, cooldown);
        assert!(!b.allow(clock.mono()), "open after 3 faults");
        clock.advance(Duration::from_secs(29));
        assert!(!b.allow(clock.mono()));
        clock.advance(Duration::from_secs(2));
        assert!(b.allow(clock.mono()), "one probe");
        assert!(!b.allow(clock.mono()), "only one");
        b.failed(clock.mono(), 3, cooldown);
        assert!(!b.allow(clock.mono()), "a failed probe opens it again");
        clock.advance(Duration::from_secs(31));
        assert!(b.allow(clock.mono()));
        b.succeeded();
        assert!(b.allow(clock.mono()) && b.allow(clock.mono()), "closed");
    }

    #[test]
    fn an_unreachable_redis_costs_a_lookup_no_more_than_its_deadline() {
        // A port nothing listens on (bound, then closed): refused at once, or at worst late.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = SharedConfig::new(format!("redis://127.0.0.1:{port}"), TeamKey::new(&[1; 32]).unwrap())
            .unwrap()
            .deadline(Duration::from_millis(40));
        let cache = SharedCache::new(config, Arc::new(crate::cache::clock::SystemClock));
        let started = Instant::now();
        for _ in 0..5 {
            assert!(cache.get(KEY).is_none());
        }
        assert!(started.elapsed() < Duration::from_millis(40 * 3 + 200), "{:?}", started.elapsed());
        let stats = cache.stats();
        assert_eq!(stats.errors + stats.timeouts, 3, "{stats:?}");
        assert_eq!(stats.skipped, 2, "the breaker opened: {stats:?}");
        assert!(stats.open);
        assert_eq!(stats.hits + stats.misses, 0, "faults are not misses");
    }
}
