//! Multi-process tests of the disk cache: several processes on one cache directory, writers
//! killed with SIGKILL mid-transaction, damaged files, a full map, a map grown by another
//! process, and the permissions of what is created.
//!
//! Helper processes are this test binary itself, re-executed with `NUAWS_CACHE_WORKER=<role>`
//! and `--exact worker`: the `worker` test does nothing unless that variable is set. Anything a
//! helper could crash on (a SIGBUS from a damaged file) therefore happens in a child, and the
//! parent sees it as a signal in the exit status instead of dying itself.
//!
//! Every test is bounded in iterations and in time (children are killed after a deadline), and
//! asserts correctness only, never timings.

use std::env;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use aws_core::cache::{Clock, DiskCache, Entry, SystemClock};
use aws_core::row::{Field, Row};

const ROLE_VAR: &str = "NUAWS_CACHE_WORKER";
const DIR_VAR: &str = "NUAWS_CACHE_DIR";
const ARG_VAR: &str = "NUAWS_CACHE_ARG";
const TTL: Duration = Duration::from_secs(3600);
/// Ample for every child of these tests; past it the child is killed and the test fails.
const CHILD_DEADLINE: Duration = Duration::from_secs(240);

// ---- shared helpers ----------------------------------------------------------------------------

/// The multi-process tests each start many processes; on a small machine running them one at a
/// time keeps each of them well inside its deadline.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

#[path = "support/noise.rs"]
mod noise;
use noise::noise;

fn seed_of(s: &str) -> u64 {
    let h = blake3::hash(s.as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap())
}

fn check_of(key: &str, writer: i64, blob: &str) -> String {
    blake3::hash(format!("{key}|{writer}|{blob}").as_bytes())
        .to_hex()
        .to_string()
}

/// An entry whose content proves which key and writer it belongs to, so a reader can tell a
/// right value from a wrong or mixed one.
fn make_entry(key: &str, writer: i64, blob_len: usize, salt: u64) -> Entry {
    let blob = noise(blob_len, seed_of(key) ^ salt ^ writer as u64);
    let check = check_of(key, writer, &blob);
    let rows = vec![
        Row::new()
            .with("key", Field::Text(key.to_string()))
            .with("writer", Field::Int(writer))
            .with("blob", Field::Text(blob))
            .with("check", Field::Text(check)),
        Row::new().with(
            "tags",
            Field::Record(vec![("k".into(), Field::List(vec![Field::Bool(true)]))]),
        ),
    ];
    Entry::new(key, rows, SystemTime::now(), TTL)
}

fn verify_entry(key: &str, entry: &Entry) -> Result<(), String> {
    let row = entry.rows.first().ok_or("no rows")?;
    let text = |name: &str| match row.get(name) {
        Some(Field::Text(s)) => Ok(s.as_str()),
        other => Err(format!("{key}: column {name} is {other:?}")),
    };
    if entry.key != key || text("key")? != key {
        return Err(format!("asked for {key}, got an entry for {}", entry.key));
    }
    let writer = match row.get("writer") {
        Some(Field::Int(w)) => *w,
        other => return Err(format!("{key}: writer is {other:?}")),
    };
    if check_of(key, writer, text("blob")?) != text("check")? {
        return Err(format!("{key}: content does not match its check"));
    }
    Ok(())
}

fn worker_command(role: &str, dir: &Path, arg: &str) -> Command {
    let mut cmd = Command::new(env::current_exe().unwrap());
    cmd.args(["--exact", "worker", "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE_VAR, role)
        .env(DIR_VAR, dir)
        .env(ARG_VAR, arg)
        .stdin(Stdio::null());
    cmd
}

/// Waits for `child` up to the deadline, killing it past that.
fn wait_bounded(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + CHILD_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child {} ran past its deadline", child.id());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a worker to completion; returns its status and stdout.
fn run_worker(role: &str, dir: &Path, arg: &str) -> (ExitStatus, String) {
    let mut child = worker_command(role, dir, arg)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
        out
    });
    let status = wait_bounded(&mut child);
    (status, reader.join().unwrap())
}

fn assert_clean_exit(role: &str, status: ExitStatus, out: &str) {
    assert!(
        status.signal().is_none(),
        "{role} worker crashed with signal {:?}; output:\n{out}",
        status.signal()
    );
    assert!(
        status.success(),
        "{role} worker failed ({status}); output:\n{out}"
    );
}

/// The `RESULT ...` line a worker printed.
fn result_line(out: &str) -> &str {
    out.lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in:\n{out}"))
}

fn field(result: &str, name: &str) -> u64 {
    result
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {result}"))
}

fn quarantined(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("v1.corrupt-")
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

struct Xorshift(u64);
impl Xorshift {
    fn seeded() -> Self {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Xorshift(t ^ (u64::from(std::process::id()) << 32) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---- the worker side -------------------------------------------------------------------------

/// Not a test: the entry point of helper processes (see the module docs).
#[test]
fn worker() {
    let Ok(role) = env::var(ROLE_VAR) else { return };
    let dir = PathBuf::from(env::var(DIR_VAR).unwrap());
    let arg = env::var(ARG_VAR).unwrap_or_default();
    let code = match role.as_str() {
        "churn" => churn(&dir, &arg),
        "big-writer" => big_writer(&dir),
        "populate" => populate(&dir, &arg),
        "verify" => verify_all(&dir, &arg),
        "umask-open" => umask_open(&dir),
        "pin-reader" => pin_reader(&dir),
        "grow" => grow(&dir, &arg),
        other => {
            eprintln!("unknown worker role {other}");
            2
        }
    };
    std::io::stdout().flush().unwrap();
    std::process::exit(code);
}

/// 50 cycles of open → put → get → close, on keys shared with the other churners.
fn churn(dir: &Path, arg: &str) -> i32 {
    let writer: i64 = arg.parse().unwrap();
    let mut rng = Xorshift::seeded();
    let mut errors = Vec::new();
    for cycle in 0..50 {
        let cache = DiskCache::open(dir, 64 << 20, clock());
        let warnings = cache.take_warnings();
        if !cache.is_enabled() || !warnings.is_empty() {
            errors.push(format!(
                "cycle {cycle}: enabled={} warnings={warnings:?}",
                cache.is_enabled()
            ));
            continue;
        }
        let key = format!("churn-{}", rng.below(40));
        cache.insert(&make_entry(
            &key,
            writer,
            200 + rng.below(4000) as usize,
            cycle,
        ));
        // Our own write (or a newer one from another writer) must be there: no eviction
        // (budget far above the data), no expiry (one hour).
        match cache.get(&key) {
            Some(entry) => {
                if let Err(e) = verify_entry(&key, &entry) {
                    errors.push(e);
                }
            }
            None => errors.push(format!("cycle {cycle}: own write of {key} not found")),
        }
        for _ in 0..5 {
            let other = format!("churn-{}", rng.below(40));
            if let Some(entry) = cache.get(&other)
                && let Err(e) = verify_entry(&other, &entry)
            {
                errors.push(e);
            }
        }
        drop(cache); // closes the environment: the next cycle opens it again
    }
    println!("RESULT errors={}", errors.len());
    for e in &errors {
        println!("ERROR {e}");
    }
    i32::from(!errors.is_empty())
}

/// Writes entries of mixed sizes as fast as it can until killed.
fn big_writer(dir: &Path) -> i32 {
    let cache = DiskCache::open(dir, 32 << 20, clock());
    if !cache.is_enabled() {
        println!("NOT-ENABLED {:?}", cache.take_warnings());
        return 1;
    }
    let pid = i64::from(std::process::id());
    // Encode a few entries first, so the process is killed mostly inside LMDB, not brotli.
    let sizes = [4 << 10, 64 << 10, 256 << 10, 1 << 20];
    println!("READY");
    std::io::stdout().flush().unwrap();
    for i in 0u64.. {
        let key = format!("big-{}", i % 64);
        let entry = make_entry(&key, pid, sizes[(i % 4) as usize], i);
        cache.insert(&entry);
    }
    0
}

/// `arg` entries `p0..p<arg>` of 16 KiB each.
fn populate(dir: &Path, arg: &str) -> i32 {
    let n: usize = arg.parse().unwrap();
    let cache = DiskCache::open(dir, 256 << 20, clock());
    if !cache.is_enabled() {
        println!("NOT-ENABLED {:?}", cache.take_warnings());
        return 1;
    }
    for i in 0..n {
        cache.insert(&make_entry(&format!("p{i}"), 1, 16 << 10, 0));
    }
    let stored = cache.keys().len();
    println!("RESULT stored={stored}");
    i32::from(stored != n)
}

/// Opens the cache and reads everything: every listed key, and `p0..p<arg>`. Every value
/// served must verify. Prints what it found; fails only on a bad value or a disabled cache.
fn verify_all(dir: &Path, arg: &str) -> i32 {
    let expected: usize = arg.parse().unwrap_or(0);
    let cache = DiskCache::open(dir, 256 << 20, clock());
    let warnings = cache.take_warnings();
    let keys = cache.keys();
    let mut bad = 0;
    let mut served = 0;
    let mut listed_but_missing = 0;
    let mut names: std::collections::BTreeSet<String> = keys.iter().cloned().collect();
    names.extend((0..expected).map(|i| format!("p{i}")));
    for key in &names {
        match cache.get(key) {
            Some(entry) => match verify_entry(key, &entry) {
                Ok(()) => served += 1,
                Err(e) => {
                    bad += 1;
                    println!("BAD {e}");
                }
            },
            None if keys.contains(key) => listed_but_missing += 1,
            None => {}
        }
    }
    // Still writable afterwards.
    cache.insert(&make_entry("after", 9, 1000, 0));
    let writable = cache
        .get("after")
        .is_some_and(|e| verify_entry("after", &e).is_ok());
    println!(
        "RESULT enabled={} listed={} served={served} bad={bad} missing={listed_but_missing} writable={} warnings={}",
        u8::from(cache.is_enabled()),
        keys.len(),
        u8::from(writable),
        warnings.len()
    );
    for w in &warnings {
        println!("WARNING {w}");
    }
    i32::from(bad > 0 || !cache.is_enabled() || !writable)
}

fn umask_open(dir: &Path) -> i32 {
    // SAFETY: umask has no preconditions; this process is a single-purpose child.
    unsafe { libc::umask(0) };
    let cache = DiskCache::open(dir, 1 << 20, clock());
    cache.insert(&make_entry("k", 1, 100, 0));
    let ok = cache.is_enabled() && cache.get("k").is_some();
    println!("RESULT ok={}", u8::from(ok));
    i32::from(!ok)
}

/// Holds a read transaction open on the environment (pinning its pages) until killed. Opens
/// LMDB directly, as any process holding a snapshot would.
fn pin_reader(dir: &Path) -> i32 {
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .read_txn_without_tls()
            .map_size(1 << 20)
            .max_readers(1024)
            .open(dir.join("v1"))
            .unwrap()
    };
    let _rtxn = env.read_txn().unwrap();
    println!("READY");
    std::io::stdout().flush().unwrap();
    thread::sleep(CHILD_DEADLINE);
    0
}

/// Opens with a bigger map than the parent's and writes past the parent's map.
fn grow(dir: &Path, arg: &str) -> i32 {
    let n: usize = arg.parse().unwrap();
    let cache = DiskCache::open_with_map_size(dir, 64 << 20, 16 << 20, clock());
    for i in 0..n {
        cache.insert(&make_entry(&format!("g{i}"), 2, 64 << 10, 0));
    }
    let ok = cache.is_enabled() && (0..n).all(|i| cache.get(&format!("g{i}")).is_some());
    println!(
        "RESULT ok={} file={}",
        u8::from(ok),
        cache.stats().file_bytes
    );
    i32::from(!ok)
}

// ---- the tests ---------------------------------------------------------------------------------

/// 16 processes × 50 cycles of open, put, get, close on one directory: no errors, no wrong
/// values, no `EnvAlreadyOpened`, no disabled cache.
#[test]
fn sixteen_processes_churning_one_directory() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nuaws");
    let children: Vec<_> = (0..16)
        .map(|w| {
            let dir = dir.clone();
            thread::spawn(move || run_worker("churn", &dir, &w.to_string()))
        })
        .collect();
    for child in children {
        let (status, out) = child.join().unwrap();
        assert_clean_exit("churn", status, &out);
        assert_eq!(field(result_line(&out), "errors"), 0, "{out}");
    }
    let (status, out) = run_worker("verify", &dir, "0");
    assert_clean_exit("verify", status, &out);
    let result = result_line(&out);
    assert_eq!(field(result, "bad"), 0, "{out}");
    assert_eq!(field(result, "missing"), 0, "{out}");
    assert_eq!(field(result, "warnings"), 0, "{out}");
    assert!(field(result, "served") > 0, "{out}");
    assert!(quarantined(&dir).is_empty());
}

/// Writers killed with SIGKILL 30 times, 1–50 ms after they start writing: the cache then opens
/// without any repair, and every entry in it decodes and verifies.
#[test]
fn sigkill_of_writers_mid_transaction_leaves_a_clean_cache() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nuaws");
    let mut rng = Xorshift::seeded();
    for _ in 0..30 {
        let mut child = worker_command("big-writer", &dir, "")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.any(|l| l.is_ok_and(|l| l == "READY"));
        assert!(ready, "writer did not start");
        thread::sleep(Duration::from_millis(1 + rng.below(50)));
        // SAFETY: kill has no memory-safety preconditions; the pid is our live child.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        assert_eq!(rc, 0);
        let status = wait_bounded(&mut child);
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "writer ended on its own: {status}"
        );
    }
    let (status, out) = run_worker("verify", &dir, "0");
    assert_clean_exit("verify", status, &out);
    let result = result_line(&out);
    assert_eq!(field(result, "bad"), 0, "{out}");
    assert_eq!(field(result, "missing"), 0, "{out}");
    assert_eq!(field(result, "warnings"), 0, "no repair needed: {out}");
    assert!(
        field(result, "listed") > 0,
        "the writers wrote something: {out}"
    );
    assert!(
        quarantined(&dir).is_empty(),
        "kill -9 must never need a quarantine"
    );
}

/// The corruption matrix: each damage is done to a populated cache, then a child opens it and
/// reads every entry. Pass: the child neither crashes nor serves a bad entry, and the cache is
/// either read cleanly or quarantined and recreated, without manual action.
#[test]
fn damaged_files_are_quarantined_or_read_cleanly() {
    let _serial = serial();
    const N: usize = 300;
    type Damage = fn(&Path);
    let cases: [(&str, Damage, bool); 6] = [
        (
            "truncate data.mdb to half",
            |v1| {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(v1.join("data.mdb"))
                    .unwrap();
                let len = f.metadata().unwrap().len();
                f.set_len(len / 2).unwrap();
            },
            true,
        ),
        (
            "truncate data.mdb to one page",
            |v1| {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(v1.join("data.mdb"))
                    .unwrap();
                f.set_len(4096).unwrap();
            },
            true,
        ),
        (
            "random bytes over both meta pages",
            |v1| {
                use std::os::unix::fs::FileExt;
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(v1.join("data.mdb"))
                    .unwrap();
                f.write_all_at(noise(8192, 7).as_bytes(), 0).unwrap();
            },
            true,
        ),
        (
            "zero-length data.mdb",
            |v1| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(v1.join("data.mdb"))
                    .unwrap()
                    .set_len(0)
                    .unwrap();
            },
            false,
        ),
        (
            "garbage lock.mdb",
            |v1| {
                let len = fs::metadata(v1.join("lock.mdb")).unwrap().len() as usize;
                fs::write(v1.join("lock.mdb"), noise(len, 11)).unwrap();
            },
            false,
        ),
        (
            "truncated lock.mdb",
            |v1| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(v1.join("lock.mdb"))
                    .unwrap()
                    .set_len(10)
                    .unwrap();
            },
            false,
        ),
    ];
    for (name, damage, must_quarantine) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nuaws");
        let (status, out) = run_worker("populate", &dir, &N.to_string());
        assert_clean_exit("populate", status, &out);

        damage(&dir.join("v1"));

        let (status, out) = run_worker("verify", &dir, &N.to_string());
        assert_clean_exit(&format!("verify after {name}"), status, &out);
        let result = result_line(&out);
        assert_eq!(field(result, "bad"), 0, "{name}: {out}");
        assert_eq!(field(result, "enabled"), 1, "{name}: {out}");
        let moved = quarantined(&dir);
        if must_quarantine {
            assert_eq!(moved.len(), 1, "{name}: expected a quarantine: {out}");
            assert!(out.contains("moved it aside"), "{name}: {out}");
            assert!(
                moved[0].join("data.mdb").exists(),
                "{name}: the damaged files are kept"
            );
        } else if moved.is_empty() {
            // Read cleanly: everything, or (zero-length data.mdb) nothing at all.
            let served = field(result, "served") as usize;
            assert!(served == N || served == 0, "{name}: {out}");
        }
        // And once more: the repaired cache opens with nothing left to report.
        let (status, out) = run_worker("verify", &dir, "0");
        assert_clean_exit(&format!("second verify after {name}"), status, &out);
        assert_eq!(field(result_line(&out), "warnings"), 0, "{name}: {out}");
        assert_eq!(
            quarantined(&dir).len(),
            moved.len(),
            "{name}: quarantined twice"
        );
    }
}

/// 256 KiB budget, 10× that inserted: every insert returns, the stored values stay within the
/// budget, the file within a small multiple of it, and the recent entries are readable.
#[test]
fn budget_bounds_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nuaws");
    let budget = 256u64 << 10;
    let cache = DiskCache::open(&dir, budget, clock());
    assert!(cache.is_enabled(), "{:?}", cache.take_warnings());
    let n = 160; // × ~16 KiB = 10× the budget
    for i in 0..n {
        cache.insert(&make_entry(&format!("b{i}"), 1, 16 << 10, 0));
    }
    let stats = cache.stats();
    assert!(stats.bytes <= budget, "{stats:?}");
    assert!(
        stats.file_bytes <= 4 * budget,
        "file grew past 4x the budget: {stats:?}"
    );
    for i in n - 5..n {
        let key = format!("b{i}");
        let entry = cache
            .get(&key)
            .unwrap_or_else(|| panic!("recent entry {key} evicted"));
        verify_entry(&key, &entry).unwrap();
    }
    assert!(cache.get("b0").is_none());
    assert!(cache.take_warnings().is_empty());
}

/// A reader pinning an old snapshot keeps freed pages from being reused, so a small map fills
/// up: inserts must keep returning (skipped), never error or crash, and the file stays within
/// the map. Once the reader is killed (leaving a stale reader slot), MAP_FULL clears stale
/// readers, evicts, and writes succeed again.
#[test]
fn map_full_from_a_pinned_reader_is_survived() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nuaws");
    let map = 1usize << 20;
    let cache = DiskCache::open_with_map_size(&dir, 64 << 20, map, clock());
    assert!(cache.is_enabled(), "{:?}", cache.take_warnings());
    cache.insert(&make_entry("first", 1, 1000, 0));

    let mut pin = worker_command("pin-reader", &dir, "")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(pin.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l == "READY")),
        "pin reader did not start"
    );

    // 200 × 16 KiB through a 1 MiB map with pages pinned: MAP_FULL, repeatedly.
    for i in 0..200 {
        cache.insert(&make_entry(&format!("m{i}"), 1, 16 << 10, 0));
    }
    let stats = cache.stats();
    assert!(stats.file_bytes <= map as u64, "{stats:?}");
    assert!(cache.is_enabled());
    assert!(
        cache.get("m199").is_none(),
        "the map was not full: the test proves nothing"
    );

    // SAFETY: kill has no memory-safety preconditions; the pid is our live child.
    unsafe { libc::kill(pin.id() as libc::pid_t, libc::SIGKILL) };
    wait_bounded(&mut pin);

    for i in 0..20 {
        cache.insert(&make_entry(&format!("after{i}"), 1, 16 << 10, 0));
    }
    for i in 15..20 {
        let key = format!("after{i}");
        let entry = cache
            .get(&key)
            .unwrap_or_else(|| panic!("{key} not written after MAP_FULL"));
        verify_entry(&key, &entry).unwrap();
    }
    assert!(cache.stats().file_bytes <= map as u64);
    assert!(cache.take_warnings().is_empty());
}

/// Another process opens with a bigger map and writes past ours: our next transaction gets
/// MDB_MAP_RESIZED, which must be absorbed (adopt the size, retry), never surface.
#[test]
fn map_grown_by_another_process_is_adopted() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nuaws");
    let cache = DiskCache::open_with_map_size(&dir, 64 << 20, 1 << 20, clock());
    assert!(cache.is_enabled(), "{:?}", cache.take_warnings());
    cache.insert(&make_entry("mine", 1, 100, 0));

    let n = 40; // × 64 KiB ≈ 2.5 MiB, past our 1 MiB map
    let (status, out) = run_worker("grow", &dir, &n.to_string());
    assert_clean_exit("grow", status, &out);
    assert_eq!(field(result_line(&out), "ok"), 1, "{out}");
    assert!(field(result_line(&out), "file") > 1 << 20, "{out}");

    for i in 0..n {
        let key = format!("g{i}");
        let entry = cache
            .get(&key)
            .unwrap_or_else(|| panic!("{key} not readable"));
        verify_entry(&key, &entry).unwrap();
    }
    assert!(cache.get("mine").is_some());
    cache.insert(&make_entry("mine2", 1, 100, 0));
    assert!(cache.get("mine2").is_some());
    assert!(cache.is_enabled());
    assert!(cache.take_warnings().is_empty());
}

/// Under umask 000 the directory is created 0700 and every file 0600.
#[test]
fn created_private_under_umask_000() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache/nuaws");
    let (status, out) = run_worker("umask-open", &dir, "");
    assert_clean_exit("umask-open", status, &out);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("v1")), 0o700);
    for file in ["v1/data.mdb", "v1/lock.mdb", "v1.lock", "CACHEDIR.TAG"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    let tag = fs::read_to_string(dir.join("CACHEDIR.TAG")).unwrap();
    assert!(tag.starts_with("Signature: 8a477f597d28d172789f06886806bc55"));
}

/// Directories others could tamper with are refused: the cache is disabled with a warning and
/// nothing is written into them.
#[test]
fn unsafe_directories_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let make = |name: &str, mode: u32| {
        let d = tmp.path().join(name);
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(mode)).unwrap();
        d
    };
    let world = make("world-writable", 0o777);
    let group = make("group-writable", 0o770);
    let target = make("target", 0o700);
    let link = tmp.path().join("symlink");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let mut cases = vec![
        (world, "writable by group or others"),
        (group, "writable by group or others"),
        (link, "is a symlink"),
    ];
    let foreign = make("foreign", 0o700);
    if std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).is_ok() {
        cases.push((foreign, "owned by uid 65534"));
    }
    for (dir, reason) in cases {
        let cache = DiskCache::open(&dir, 1 << 20, clock());
        assert!(!cache.is_enabled(), "{}", dir.display());
        cache.insert(&make_entry("k", 1, 100, 0));
        assert!(cache.get("k").is_none());
        let warnings = cache.take_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("disk cache disabled:"),
            "{warnings:?}"
        );
        assert!(warnings[0].contains(reason), "{warnings:?}");
        let written: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert!(written.is_empty(), "{}: wrote {written:?}", dir.display());
    }
    // A merely readable directory (0755) is fine.
    let readable = make("readable", 0o755);
    assert!(DiskCache::open(&readable, 1 << 20, clock()).is_enabled());
}
