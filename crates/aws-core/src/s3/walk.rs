//! [`LocalWalk`]: the files below a local directory as relative keys, in exactly the order S3
//! lists keys (UTF-8 binary order), so a walk can be merge-joined with a listing as both stream.
//!
//! Each directory's entries are sorted by their name as a key would spell it, a directory's name
//! with a trailing `/`; walking depth-first in that order yields keys in global byte order
//! (`a-b` < `a/x` < `a0`, since `-` < `/` < `0`). Memory is the entries of the directories on
//! the current path, never the whole tree.
//!
//! Names that are not UTF-8 cannot be S3 keys: they come out as [`Walked::Skipped`], as do
//! symbolic links when not followed, broken links and directory cycles. Unreadable directories
//! come out as [`Walked::Error`] (a sync must not take their absence for deletions).
//!
//! Not for: deciding what to transfer (see [`super::sync`]), or a general-purpose walker.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// One file found by the walk.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalFile {
    /// Relative to the walk's root, `/`-separated.
    pub key: String,
    pub path: PathBuf,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
}

/// What the walk yields.
#[derive(Debug)]
pub enum Walked {
    File(LocalFile),
    /// Not a file a key can name, and why (the key is the lossy spelling of the name).
    Skipped { key: String, reason: String },
    /// A directory or file that could not be read.
    Error { key: String, error: std::io::Error },
}

/// One directory on the current path: its key prefix, its remaining entries, and its identity
/// (device, inode) to recognise a link back to it.
struct Dir {
    entries: std::vec::IntoIter<Entry>,
    id: Option<(u64, u64)>,
}

struct Entry {
    /// The name as a key spells it, `/` appended for a directory: the sort key within its parent.
    sort: String,
    /// The full relative key (for a directory, ending in `/`).
    key: String,
    path: PathBuf,
    kind: Kind,
}

enum Kind {
    File(std::fs::Metadata),
    Dir(Option<(u64, u64)>),
    Skipped(String),
    Error(std::io::Error),
}

/// The walk itself: an iterator of [`Walked`].
pub struct LocalWalk {
    stack: Vec<Dir>,
    follow_symlinks: bool,
    pending: Option<Walked>,
}

fn dir_id(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

impl LocalWalk {
    /// Walks below `root` (which must be a directory; a missing one is an error of the first
    /// item). Symbolic links are followed unless `follow_symlinks` is false.
    pub fn new(root: &Path, follow_symlinks: bool) -> Self {
        let mut walk = Self {
            stack: Vec::new(),
            follow_symlinks,
            pending: None,
        };
        let id = std::fs::metadata(root).ok().as_ref().and_then(dir_id);
        walk.enter(root, "", id);
        walk
    }

    fn enter(&mut self, dir: &Path, prefix: &str, id: Option<(u64, u64)>) {
        let read = match std::fs::read_dir(dir) {
            Ok(read) => read,
            Err(error) => {
                self.pending = Some(Walked::Error { key: prefix.to_string(), error });
                return;
            }
        };
        let mut entries = Vec::new();
        for entry in read {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    self.pending = Some(Walked::Error { key: prefix.to_string(), error });
                    continue;
                }
            };
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                let lossy = format!("{prefix}{}", name.to_string_lossy());
                entries.push(Entry {
                    sort: lossy.clone(),
                    key: lossy,
                    path,
                    kind: Kind::Skipped("the name is not UTF-8, so it cannot be an S3 key".into()),
                });
                continue;
            };
            let kind = self.kind_of(&path);
            let sort = match kind {
                Kind::Dir(_) => format!("{name}/"),
                _ => name.to_string(),
            };
            entries.push(Entry {
                key: format!("{prefix}{sort}"),
                sort,
                path,
                kind,
            });
        }
        entries.sort_by(|a, b| a.sort.as_bytes().cmp(b.sort.as_bytes()));
        self.stack.push(Dir {
            entries: entries.into_iter(),
            id,
        });
    }

    fn kind_of(&self, path: &Path) -> Kind {
        let link = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(error) => return Kind::Error(error),
        };
        let meta = if link.file_type().is_symlink() {
            if !self.follow_symlinks {
                return Kind::Skipped("a symbolic link (--no-follow-symlinks)".into());
            }
            match std::fs::metadata(path) {
                Ok(meta) => meta,
                Err(_) => return Kind::Skipped("a broken symbolic link".into()),
            }
        } else {
            link
        };
        if meta.is_dir() {
            Kind::Dir(dir_id(&meta))
        } else if meta.is_file() {
            Kind::File(meta)
        } else {
            Kind::Skipped("not a regular file".into())
        }
    }
}

impl Iterator for LocalWalk {
    type Item = Walked;

    fn next(&mut self) -> Option<Walked> {
        loop {
            if let Some(pending) = self.pending.take() {
                return Some(pending);
            }
            let entry = match self.stack.last_mut()?.entries.next() {
                Some(entry) => entry,
                None => {
                    self.stack.pop();
                    continue;
                }
            };
            match entry.kind {
                Kind::File(meta) => {
                    return Some(Walked::File(LocalFile {
                        key: entry.key,
                        path: entry.path,
                        size: meta.len(),
                        modified: meta.modified().ok().map(DateTime::<Utc>::from),
                    }));
                }
                Kind::Dir(id) => {
                    if id.is_some() && self.stack.iter().any(|d| d.id == id) {
                        return Some(Walked::Skipped {
                            key: entry.key,
                            reason: "a link back to a directory above it (a cycle)".into(),
                        });
                    }
                    self.enter(&entry.path, &entry.key, id);
                }
                Kind::Skipped(reason) => return Some(Walked::Skipped { key: entry.key, reason }),
                Kind::Error(error) => return Some(Walked::Error { key: entry.key, error }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(root: &Path, follow: bool) -> Vec<String> {
        LocalWalk::new(root, follow)
            .map(|w| match w {
                Walked::File(f) => f.key,
                Walked::Skipped { key, reason } => format!("skip {key}: {reason}"),
                Walked::Error { key, error } => format!("error {key}: {error}"),
            })
            .collect()
    }

    #[test]
    fn keys_come_in_s3_byte_order_with_directories_as_name_slash() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in ["a-b", "a/x", "a/y/z", "a0", "b c/ü.txt", "B", "empty", "a+%/q"] {
            let path = root.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, f).unwrap();
        }
        std::fs::write(root.join("empty"), "").unwrap();
        let got = keys(root, true);
        assert_eq!(got, ["B", "a+%/q", "a-b", "a/x", "a/y/z", "a0", "b c/ü.txt", "empty"]);
        let mut sorted = got.clone();
        sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(got, sorted, "the walk is in byte order");
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed_or_skipped_and_cycles_end() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("d/f"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("d/f"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(root, root.join("d/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("nowhere"), root.join("dangling")).unwrap();
        assert_eq!(
            keys(root, true),
            ["d/f", "skip d/loop/: a link back to a directory above it (a cycle)", "skip dangling: a broken symbolic link", "link"]
        );
        assert_eq!(
            keys(root, false),
            [
                "d/f",
                "skip d/loop: a symbolic link (--no-follow-symlinks)",
                "skip dangling: a symbolic link (--no-follow-symlinks)",
                "skip link: a symbolic link (--no-follow-symlinks)"
            ]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn names_that_are_not_utf8_are_skipped_with_a_reason() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xff")), "x").unwrap();
        std::fs::write(dir.path().join("good"), "x").unwrap();
        let got = keys(dir.path(), true);
        assert_eq!(got.len(), 2);
        assert!(got[0].starts_with("skip bad") && got[0].contains("not UTF-8"), "{got:?}");
        assert_eq!(got[1], "good");
    }

    #[test]
    fn a_missing_root_is_an_error() {
        let got = keys(Path::new("/nonexistent/nuaws-walk"), true);
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("error"), "{got:?}");
    }
}
