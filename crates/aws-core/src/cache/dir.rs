//! The file-system side of the disk tier, below LMDB: creating the cache directory privately,
//! refusing one that others could tamper with or that lives on a network file system, the
//! sidecar lock that coordinates quarantine between processes, and the quarantine itself.
//!
//! Every check here runs on each open, because the directory may have changed since the last
//! run. Errors are plain sentences (they become the disk tier's warning), naming paths but never
//! cache contents.
//!
//! Not for: anything inside the LMDB environment (see `disk.rs`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Name of the versioned environment directory inside the cache directory. A future layout
/// gets a new name and leaves this one alone.
pub(crate) const LAYOUT: &str = "v1";
/// Prefix of quarantined environment directories: `v1.corrupt-<millis>-<pid>`.
const QUARANTINE_PREFIX: &str = "v1.corrupt-";
/// How many quarantined directories are kept for inspection; older ones are deleted.
const QUARANTINES_KEPT: usize = 2;
const CACHEDIR_TAG: &str = "CACHEDIR.TAG";
/// The tag's content, per https://bford.info/cachedir/ (the signature line is mandatory).
const CACHEDIR_TAG_CONTENT: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by nuaws.\n\
# For information about cache directory tags, see https://bford.info/cachedir/\n";

/// How long to wait for another process's quarantine to finish (it holds the lock exclusively
/// for a rename and a mkdir) before giving up on the disk cache for this session.
const SHARED_LOCK_WAIT: Duration = Duration::from_secs(3);
/// How long to try for exclusive access before quarantining; other processes holding the cache
/// open do not let go, so this is short.
const EXCLUSIVE_LOCK_WAIT: Duration = Duration::from_millis(500);
const LOCK_POLL: Duration = Duration::from_millis(10);

/// Creates `path` (and missing parents) as a private directory, or checks that the existing
/// one is safe to use: a real directory (not a symlink), owned by us, not writable by group or
/// others, on a local file system.
pub(crate) fn ensure_private_dir(path: &Path) -> Result<(), String> {
    match fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_private_dir(path)?,
        Err(e) => return Err(format!("cannot inspect directory {}: {e}", path.display())),
    }
    check_private_dir(path)?;
    if let Some(fs_name) = remote_file_system(path) {
        return Err(format!(
            "directory {} is on a {fs_name} file system, where LMDB's locking and memory map are unreliable",
            path.display()
        ));
    }
    Ok(())
}

fn create_private_dir(path: &Path) -> Result<(), String> {
    // Parents too, 0700 like the leaf (`$XDG_CACHE_HOME` itself is meant to be private).
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    {
        Ok(()) => {}
        // Another process created it at the same moment: fine, it is checked below.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(format!("cannot create directory {}: {e}", path.display())),
    }
    // mkdir's mode is masked by the umask; set it exactly, whatever the umask.
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot set the mode of directory {}: {e}", path.display()))
}

fn check_private_dir(path: &Path) -> Result<(), String> {
    let meta = fs::symlink_metadata(path)
        .map_err(|e| format!("cannot inspect directory {}: {e}", path.display()))?;
    if meta.file_type().is_symlink() {
        return Err(format!("directory {} is a symlink", path.display()));
    }
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid {
        return Err(format!(
            "directory {} is owned by uid {}, not by this user (uid {euid})",
            path.display(),
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "directory {} is writable by group or others (mode {mode:o}); `chmod 700` it to use the cache",
            path.display()
        ));
    }
    Ok(())
}

/// The name of the file system `path` is on, if it is one LMDB must not be used on: network
/// file systems (locking and mmap coherence are not guaranteed, `lmdb.h`) and FUSE (which can be
/// anything, sshfs included). `None` when it is local, or when it cannot be told.
#[cfg(target_os = "linux")]
pub(crate) fn remote_file_system(path: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `buf` is large enough for statfs
    // to fill; it is read only when statfs reports success.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), buf.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statfs returned 0, so it filled `buf`.
    let f_type = unsafe { buf.assume_init() }.f_type;
    // f_type's integer type differs between architectures (i64 here, u32 or i32 elsewhere);
    // the magic numbers are 32-bit.
    #[allow(clippy::unnecessary_cast)]
    remote_fs_name(f_type as i64 as u32)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn remote_file_system(_path: &Path) -> Option<&'static str> {
    None
}

/// Linux file-system magic numbers (linux/magic.h) on which the cache is refused.
pub(crate) fn remote_fs_name(magic: u32) -> Option<&'static str> {
    Some(match magic {
        0x0000_6969 => "NFS",
        0x0000_517b => "SMB",
        0xff53_4d42 => "CIFS",
        0xfe53_4d42 => "SMB2",
        0x6573_5546 => "FUSE",
        0x0102_1997 => "9P",
        0x00c3_6400 => "Ceph",
        0x5346_414f => "AFS",
        0x0000_564c => "NCP",
        _ => return None,
    })
}

/// Drops a `CACHEDIR.TAG` in `dir` so backup tools skip the cache. Best effort.
pub(crate) fn write_cachedir_tag(dir: &Path) {
    let path = dir.join(CACHEDIR_TAG);
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .and_then(|mut f| f.write_all(CACHEDIR_TAG_CONTENT));
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => log::debug!("cache: cannot write {}: {e}", path.display()),
    }
}

/// Makes `file` mode 0600 if it is more open than that. heed creates LMDB's files 0600 (masked
/// by the umask, so never more open), but a file left by another tool might not be.
pub(crate) fn restrict_file_mode(file: &Path) -> Result<(), String> {
    match fs::symlink_metadata(file) {
        Ok(meta) if meta.mode() & 0o077 != 0 => {
            fs::set_permissions(file, fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("cannot restrict the mode of {}: {e}", file.display()))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot inspect {}: {e}", file.display())),
    }
}

/// The identity of a directory, to tell whether it was replaced between two looks.
pub(crate) fn dir_identity(path: &Path) -> Option<(u64, u64)> {
    fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The sidecar lock `<cache dir>/v1.lock`. Every process that uses the environment holds it
/// shared for as long as its environment is open; a process that wants to quarantine the
/// environment needs it exclusive, which it gets only when no other process has it open. This is
/// what makes the rename safe: LMDB's own `lock.mdb` must never be removed or replaced under a
/// live process.
#[derive(Debug)]
pub(crate) struct SidecarLock {
    file: File,
    path: PathBuf,
}

impl SidecarLock {
    /// Opens the lock file (creating it 0600) and takes it shared, waiting a bounded time for a
    /// quarantine in progress elsewhere.
    pub(crate) fn open_shared(cache_dir: &Path) -> Result<SidecarLock, String> {
        let path = cache_dir.join(format!("{LAYOUT}.lock"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| format!("cannot open lock file {}: {e}", path.display()))?;
        restrict_file_mode(&path)?;
        let lock = SidecarLock { file, path };
        if !lock.flock(libc::LOCK_SH, SHARED_LOCK_WAIT) {
            return Err(format!(
                "timed out waiting for lock file {} (another nuaws process is repairing the cache)",
                lock.path.display()
            ));
        }
        Ok(lock)
    }

    /// Converts to exclusive if no other process holds the lock within a short wait; on failure
    /// takes it shared again. Two subtleties of flock(2) conversions: they are not atomic (the
    /// shared lock is released first, so another process may get in between; the quarantine
    /// re-checks the directory for that), and on Linux a conversion that fails with LOCK_NB has
    /// *already dropped* the shared lock, which must therefore be taken again.
    pub(crate) fn try_exclusive(&self) -> bool {
        if self.flock(libc::LOCK_EX, EXCLUSIVE_LOCK_WAIT) {
            return true;
        }
        if !self.back_to_shared() {
            log::debug!("cache: could not take {} shared again", self.path.display());
        }
        false
    }

    /// Back to shared after a quarantine.
    pub(crate) fn back_to_shared(&self) -> bool {
        self.flock(libc::LOCK_SH, SHARED_LOCK_WAIT)
    }

    fn flock(&self, operation: libc::c_int, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            // SAFETY: the descriptor is valid for as long as `self.file` lives.
            let rc = unsafe { libc::flock(self.file.as_raw_fd(), operation | libc::LOCK_NB) };
            if rc == 0 {
                return true;
            }
            let err = io::Error::last_os_error();
            let busy = err.raw_os_error() == Some(libc::EWOULDBLOCK)
                || err.kind() == io::ErrorKind::Interrupted;
            if !busy || Instant::now() >= deadline {
                if !busy {
                    log::debug!("cache: flock on {} failed: {err}", self.path.display());
                }
                return false;
            }
            thread::sleep(LOCK_POLL);
        }
    }
}

/// Where the processes that have the environment open leave their pid: a marker left by a
/// process that is gone means it did not close the environment (crash, kill -9).
fn markers_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join(format!("{LAYOUT}.open"))
}

/// This process's marker, removed at exit.
static MARKER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

extern "C" fn remove_marker() {
    if let Some(marker) = MARKER.get() {
        let _ = fs::remove_file(marker);
    }
}

/// Notes that this process has the environment of `cache_dir` open, until it exits.
pub(crate) fn mark_open(cache_dir: &Path) {
    let dir = markers_dir(cache_dir);
    if ensure_private_dir(&dir).is_err() {
        return;
    }
    let marker = dir.join(std::process::id().to_string());
    if fs::write(&marker, b"").is_ok() && MARKER.set(marker).is_ok() {
        // SAFETY: `remove_marker` is a plain extern "C" function that only reads a OnceLock and
        // removes a file; registering it has no other precondition.
        unsafe {
            libc::atexit(remove_marker);
        }
    }
}

/// Whether a process that had the environment open is gone without closing it. Its marker is
/// removed: the check it calls for happens once.
pub(crate) fn unclean_shutdown(cache_dir: &Path) -> bool {
    let Ok(read) = fs::read_dir(markers_dir(cache_dir)) else {
        return false;
    };
    let mut unclean = false;
    for entry in read.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if pid as u32 == std::process::id() || process_alive(pid) {
            continue;
        }
        unclean = true;
        let _ = fs::remove_file(entry.path());
    }
    unclean
}

#[cfg(unix)]
fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists; it sends nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_alive(_pid: i32) -> bool {
    true
}

/// Moves the environment directory `cache_dir/v1` aside as `v1.corrupt-<millis>-<pid>` and
/// creates a fresh empty one. The caller holds `lock` exclusively and has closed its own
/// environment. `seen` is the identity of the directory the caller found corrupt: if the
/// directory has been replaced since (another process healed it first), nothing is moved.
/// Returns the quarantine path, if a rename happened.
pub(crate) fn quarantine(
    cache_dir: &Path,
    seen: Option<(u64, u64)>,
) -> Result<Option<PathBuf>, String> {
    let layout = cache_dir.join(LAYOUT);
    let current = dir_identity(&layout);
    let moved = if current.is_some() && current == seen {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let aside = cache_dir.join(format!(
            "{QUARANTINE_PREFIX}{millis}-{}",
            std::process::id()
        ));
        fs::rename(&layout, &aside).map_err(|e| {
            format!(
                "cannot move the damaged cache {} aside: {e}",
                layout.display()
            )
        })?;
        Some(aside)
    } else {
        None
    };
    ensure_private_dir(&layout)?;
    prune_quarantines(cache_dir);
    Ok(moved)
}

/// Deletes all but the newest few quarantined directories. Best effort.
fn prune_quarantines(cache_dir: &Path) {
    let Ok(read) = fs::read_dir(cache_dir) else {
        return;
    };
    let mut found: Vec<(u128, PathBuf)> = read
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let rest = name.strip_prefix(QUARANTINE_PREFIX)?;
            let millis = rest.split('-').next()?.parse::<u128>().ok()?;
            Some((millis, e.path()))
        })
        .collect();
    found.sort_unstable_by_key(|(millis, _)| std::cmp::Reverse(*millis));
    for (_, path) in found.into_iter().skip(QUARANTINES_KEPT) {
        if let Err(e) = fs::remove_dir_all(&path) {
            log::debug!(
                "cache: cannot delete old quarantine {}: {e}",
                path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn creates_private_dir_with_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/nuaws");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // Idempotent.
        ensure_private_dir(&dir).unwrap();
    }

    #[test]
    fn refuses_open_symlinked_and_foreign_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            ensure_private_dir(&open)
                .unwrap_err()
                .contains("writable by group or others")
        );
        fs::set_permissions(&open, fs::Permissions::from_mode(0o770)).unwrap();
        assert!(ensure_private_dir(&open).is_err());
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            ensure_private_dir(&open).is_ok(),
            "readable is fine, writable is not"
        );

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&open, &link).unwrap();
        assert!(
            ensure_private_dir(&link)
                .unwrap_err()
                .contains("is a symlink")
        );

        let file = tmp.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(
            ensure_private_dir(&file)
                .unwrap_err()
                .contains("not a directory")
        );

        // Owned by someone else: only testable as root.
        let foreign = tmp.path().join("foreign");
        fs::create_dir(&foreign).unwrap();
        fs::set_permissions(&foreign, fs::Permissions::from_mode(0o700)).unwrap();
        if std::os::unix::fs::chown(&foreign, Some(65534), None).is_ok() {
            assert!(
                ensure_private_dir(&foreign)
                    .unwrap_err()
                    .contains("owned by uid 65534")
            );
        }
    }

    #[test]
    fn network_file_systems_are_recognised() {
        assert_eq!(remote_fs_name(libc::NFS_SUPER_MAGIC as u32), Some("NFS"));
        assert_eq!(remote_fs_name(libc::SMB_SUPER_MAGIC as u32), Some("SMB"));
        assert_eq!(remote_fs_name(0xFF53_4D42), Some("CIFS"));
        assert_eq!(remote_fs_name(libc::FUSE_SUPER_MAGIC as u32), Some("FUSE"));
        assert_eq!(remote_fs_name(libc::EXT4_SUPER_MAGIC as u32), None);
        assert_eq!(remote_fs_name(libc::TMPFS_MAGIC as u32), None);
        // The temp dir used by the tests is local.
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(remote_file_system(tmp.path()), None);
    }

    #[test]
    fn quarantine_moves_aside_once_and_prunes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for round in 0..4 {
            let layout = root.join(LAYOUT);
            ensure_private_dir(&layout).unwrap();
            fs::write(layout.join("data.mdb"), format!("round {round}")).unwrap();
            let seen = dir_identity(&layout);
            let moved = quarantine(root, seen).unwrap().expect("moved");
            assert!(
                moved
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("v1.corrupt-")
            );
            assert_eq!(mode(&layout), 0o700);
            assert!(!layout.join("data.mdb").exists(), "fresh directory");
            // A second process that saw the old directory does not move the fresh one.
            assert_eq!(quarantine(root, seen).unwrap(), None);
            std::thread::sleep(Duration::from_millis(2)); // distinct millis in the names
        }
        let kept = fs::read_dir(root)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(QUARANTINE_PREFIX)
            })
            .count();
        assert_eq!(kept, QUARANTINES_KEPT);
    }

    #[test]
    fn sidecar_lock_shared_excludes_exclusive() {
        let tmp = tempfile::tempdir().unwrap();
        let a = SidecarLock::open_shared(tmp.path()).unwrap();
        let b = SidecarLock::open_shared(tmp.path()).unwrap();
        // flock locks belong to open file descriptions, so two opens in one process conflict
        // like two processes do.
        assert!(!a.try_exclusive(), "b holds it shared");
        drop(b);
        assert!(a.try_exclusive());
        assert_eq!(mode(&tmp.path().join("v1.lock")), 0o600);
        assert!(a.back_to_shared());
        let c = SidecarLock::open_shared(tmp.path()).unwrap();
        drop(c);
    }
}
