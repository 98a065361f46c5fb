//! `aws s3 cp`: copy between local paths and S3, both ways and within S3, one object or a whole
//! directory or prefix (`--recursive`), many objects at once through the request engine. Large
//! files go up in parts, several parts at once.
//!
//! What to copy is enumerated lazily (a directory walk, or a listing streamed page by page), so
//! copying a million objects holds only the engine's window in memory. Nothing is overwritten
//! without `--force`: not a local file (downloads land under a temporary name and are linked
//! into place), not an S3 object (checked first, and a conditional put or copy).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use aws_core::engine::{Engine, FailureMode, Lane, Request};
use aws_core::s3::S3Url;
use aws_core::s3::copy::copy_object;
use aws_core::s3::transfer::{download_object, upload_file};
use nu_engine::command_prelude::*;
use nu_protocol::shell_error::generic::GenericError;

use crate::engine::bulk::{BulkValues, engine_flags, engine_settings, local_rejection};
use crate::context::{AwsContext, CallSession, session_flags};
use crate::errors::to_shell_error;
use crate::s3::{neither_side_in_s3, objects_below, parse_url};
use crate::values::row_to_value;

#[derive(Clone)]
pub struct S3Cp {
    pub ctx: Arc<AwsContext>,
}

impl Command for S3Cp {
    fn name(&self) -> &str {
        "aws s3 cp"
    }

    fn signature(&self) -> Signature {
        engine_flags(session_flags(Signature::build(self.name())))
            .required("source", SyntaxShape::String, "A local path or an s3://bucket/key URL.")
            .required("destination", SyntaxShape::String, "A local path or an s3://bucket/key URL.")
            .switch("recursive", "Copy a whole directory or prefix.", Some('R'))
            .switch("force", "Replace destination files or objects that exist.", Some('f'))
            .input_output_types(vec![(Type::Nothing, Type::table())])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Copy files to, from and within S3, many at once; one row per object copied."
    }

    fn extra_description(&self) -> &str {
        "Either side may be local or s3://. A destination ending in / (or an existing directory) receives the source's name. With --recursive, every file below a directory or object below a prefix is copied, keeping relative paths. Existing destinations are never replaced without --force. Within S3 the copy is server side, the bytes never passing through this machine: objects over 5 GiB (S3's limit for one copy) are copied in parts, keeping their content type, metadata and tags. Each object gets a row {source, destination, size, etag, error}; a failure is that object's row, unless --fail-fast."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["copy", "upload", "download", "sync", "put-object", "get-object"]
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "Upload one file.",
                example: "aws s3 cp notes.txt s3://my-bucket/backup/",
                result: None,
            },
            Example {
                description: "Download everything below a prefix into a local directory.",
                example: "aws s3 cp --recursive s3://my-bucket/logs/2026/ ./logs",
                result: None,
            },
            Example {
                description: "Upload a directory, at most 16 files at once, and list what failed.",
                example: "aws s3 cp -R ./site s3://my-bucket/www/ --max-concurrency 16 | where error != null",
                result: None,
            },
        ]
    }

    crate::complete::completion_hook!(_cmd => Some(crate::complete::Candidates::S3Path));

    fn run(
        &self,
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
        _input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        let head = call.head;
        let source: Spanned<String> = call.req(engine_state, stack, 0)?;
        let destination: Spanned<String> = call.req(engine_state, stack, 1)?;
        let recursive = call.has_flag(engine_state, stack, "recursive")?;
        let force = call.has_flag(engine_state, stack, "force")?;
        let (settings, show_progress) = engine_settings(engine_state, stack, call)?;
        let cwd = engine_state.cwd(Some(stack))?.into_std_path_buf();
        let from = Location::parse(&source, &cwd)?;
        let to = Location::parse(&destination, &cwd)?;
        let cs = Arc::new(CallSession::resolve(&self.ctx, engine_state, stack, call)?);

        // Every key this copy writes starts with the destination's key: one invalidation before
        // the job and one after it cover them all.
        let written = match &to {
            Location::S3(url) => Some(url.clone()),
            Location::Local(_) => None,
        };
        let transfers: Box<dyn Iterator<Item = Result<Transfer, ShellError>> + Send> = match (from, to) {
            (Location::Local(_), Location::Local(_)) => return Err(neither_side_in_s3(&source, &destination, "Use `cp` for local copies.")),
            (Location::Local(path), Location::S3(url)) => uploads(path, url, recursive, &source)?,
            (Location::S3(url), Location::Local(path)) => downloads(&cs, url, path, recursive, &source, head)?,
            (Location::S3(from), Location::S3(to)) => copies(&cs, from, to, recursive, &source, head)?,
        };

        let router = aws_core::s3::BucketRouter::single_attempt(&cs.session);
        let request = move |transfer: Result<Transfer, ShellError>| {
            let transfer = match transfer {
                Ok(transfer) => transfer,
                Err(err) => return Request::Ready(Err(local_rejection(err))),
            };
            let router = router.clone();
            Request::Send(async move {
                match transfer {
                    Transfer::Upload { from, to } => upload_file(router, from, to, force).await,
                    Transfer::Download { from, to } => download_object(router, from, to, force).await,
                    Transfer::Copy { from, to } => copy_object(router, from, to, force).await,
                }
            })
        };
        if let Some(url) = &written {
            cs.objects_written_below(&url.bucket, &url.key);
        }
        let end_cs = cs.clone();
        let lane = Lane::of(&cs.session, "s3");
        let job = Engine::global().run(&lane, &settings, transfers, request);
        let fail_fast = settings.job.mode == FailureMode::FailFast;
        let values = BulkValues::new(job, lane, &settings, "copy", show_progress, engine_state.signals().clone(), head, move |outcome| {
            let transfer = match outcome.item {
                Ok(transfer) => transfer,
                Err(err) => return vec![Value::error(err, head)],
            };
            vec![match outcome.result {
                Ok(row) => crate::engine::bulk::with_no_error(row_to_value(row, head)),
                Err(err) if fail_fast => Value::error(to_shell_error(err, &cs.spans_for(source.span)), head),
                Err(err) => {
                    let (from, to) = transfer.ends();
                    Value::record(
                        record! {
                            "source" => Value::string(from, head),
                            "destination" => Value::string(to, head),
                            "size" => Value::nothing(head),
                            "etag" => Value::nothing(head),
                            "error" => Value::string(err.to_string(), head),
                        },
                        head,
                    )
                }
            }]
        });
        let values = match written {
            Some(url) => values.on_end(move || end_cs.objects_written_below(&url.bucket, &url.key)),
            None => values,
        };
        Ok(values.into_pipeline_data())
    }
}

/// One side of a copy.
enum Location {
    Local(PathBuf),
    S3(S3Url),
}

impl Location {
    fn parse(arg: &Spanned<String>, cwd: &Path) -> Result<Self, ShellError> {
        if arg.item.starts_with("s3://") {
            return parse_url(arg).map(Location::S3);
        }
        let path = nu_path::expand_path_with(&arg.item, cwd, true);
        // Keep a trailing separator: it says "into this directory".
        let path = if arg.item.ends_with('/') && !path.as_os_str().to_string_lossy().ends_with('/') {
            PathBuf::from(format!("{}/", path.display()))
        } else {
            path
        };
        Ok(Location::Local(path))
    }
}

/// One object to copy.
#[derive(Clone, Debug)]
enum Transfer {
    Upload { from: PathBuf, to: S3Url },
    Download { from: S3Url, to: PathBuf },
    Copy { from: S3Url, to: S3Url },
}

impl Transfer {
    fn ends(&self) -> (String, String) {
        match self {
            Transfer::Upload { from, to } => (from.display().to_string(), to.to_string()),
            Transfer::Download { from, to } => (from.to_string(), to.display().to_string()),
            Transfer::Copy { from, to } => (from.to_string(), to.to_string()),
        }
    }
}

fn not_recursive(arg: &Spanned<String>, what: &str) -> ShellError {
    ShellError::Generic(
        GenericError::new(format!("{what} needs --recursive"), format!("`{}` is a {what}", arg.item), arg.span)
            .with_help("Add --recursive (-R) to copy everything below it."),
    )
}

/// `prefix` as a "directory" of keys: empty, or ending in `/`.
fn as_prefix(key: &str) -> String {
    if key.is_empty() || key.ends_with('/') {
        key.to_string()
    } else {
        format!("{key}/")
    }
}

/// The key one object lands at: `key` itself, or, when it names a "directory" (empty or ending
/// in `/`), the source's name inside it.
fn destination_key(key: &str, name: &str) -> String {
    if key.is_empty() || key.ends_with('/') {
        format!("{key}{name}")
    } else {
        key.to_string()
    }
}

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

fn uploads(path: PathBuf, to: S3Url, recursive: bool, source: &Spanned<String>) -> Result<Box<dyn Iterator<Item = Result<Transfer, ShellError>> + Send>, ShellError> {
    let meta = std::fs::metadata(&path).map_err(|err| {
        ShellError::Generic(GenericError::new("Cannot read the source", err.to_string(), source.span).with_help("Check the path."))
    })?;
    if meta.is_dir() {
        if !recursive {
            return Err(not_recursive(source, "directory"));
        }
        let prefix = as_prefix(&to.key);
        let span = source.span;
        let root = path.clone();
        return Ok(Box::new(FileWalk::new(path).map(move |file| {
            let file = file.map_err(|err| ShellError::Generic(GenericError::new("Cannot read a directory", err.to_string(), span)))?;
            let relative = file.strip_prefix(&root).unwrap_or(&file);
            let key: Vec<String> = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            Ok(Transfer::Upload {
                to: to.with_key(format!("{prefix}{}", key.join("/"))),
                from: file,
            })
        })));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let key = destination_key(&to.key, &name);
    Ok(Box::new(std::iter::once(Ok(Transfer::Upload { to: to.with_key(key), from: path }))))
}

/// A key's path below `prefix`, as a relative local path; `None` for one that would land outside
/// the destination (`..`, an absolute path) or is empty.
fn safe_relative(key: &str, prefix: &str) -> Option<PathBuf> {
    let relative = Path::new(key.strip_prefix(prefix)?);
    let safe = relative.components().all(|c| matches!(c, Component::Normal(_)));
    (safe && !relative.as_os_str().is_empty()).then(|| relative.to_path_buf())
}

fn downloads(
    cs: &Arc<CallSession>,
    from: S3Url,
    to: PathBuf,
    recursive: bool,
    source: &Spanned<String>,
    head: Span,
) -> Result<Box<dyn Iterator<Item = Result<Transfer, ShellError>> + Send>, ShellError> {
    let into_dir = to.is_dir() || to.as_os_str().to_string_lossy().ends_with('/');
    if !recursive {
        if from.key.is_empty() || from.key.ends_with('/') {
            return Err(not_recursive(source, "prefix"));
        }
        let to = if into_dir { to.join(file_name(&from.key)) } else { to };
        return Ok(Box::new(std::iter::once(Ok(Transfer::Download { from, to }))));
    }
    let prefix = as_prefix(&from.key);
    let listed = objects_below(cs, from.with_key(prefix.clone()), source.span, head);
    let span = source.span;
    Ok(Box::new(listed.map(move |object| {
        let object = object?;
        let relative = safe_relative(&object.key, &prefix).ok_or_else(|| {
            ShellError::Generic(
                GenericError::new("Unsafe key skipped", format!("{object} would be written outside the destination"), span)
                    .with_help("Keys with `..` or empty path segments cannot be downloaded as files; copy them with `aws s3 open --raw`."),
            )
        })?;
        Ok(Transfer::Download { to: to.join(relative), from: object })
    })))
}

fn copies(
    cs: &Arc<CallSession>,
    from: S3Url,
    to: S3Url,
    recursive: bool,
    source: &Spanned<String>,
    head: Span,
) -> Result<Box<dyn Iterator<Item = Result<Transfer, ShellError>> + Send>, ShellError> {
    if !recursive {
        if from.key.is_empty() || from.key.ends_with('/') {
            return Err(not_recursive(source, "prefix"));
        }
        let key = destination_key(&to.key, file_name(&from.key));
        return Ok(Box::new(std::iter::once(Ok(Transfer::Copy { to: to.with_key(key), from }))));
    }
    let (prefix, target) = (as_prefix(&from.key), as_prefix(&to.key));
    let listed = objects_below(cs, from.with_key(prefix.clone()), source.span, head);
    Ok(Box::new(listed.map(move |object| {
        let object = object?;
        let relative = object.key.strip_prefix(prefix.as_str()).unwrap_or(&object.key).to_string();
        Ok(Transfer::Copy { to: to.with_key(format!("{target}{relative}")), from: object })
    })))
}

/// The files below a directory, depth first, each directory's entries in name order; symbolic
/// links to directories are not followed (no cycles), links to files are copied as files.
struct FileWalk {
    stack: Vec<std::vec::IntoIter<PathBuf>>,
    pending_error: Option<std::io::Error>,
}

impl FileWalk {
    fn new(root: PathBuf) -> Self {
        let mut walk = Self {
            stack: Vec::new(),
            pending_error: None,
        };
        walk.enter(&root);
        walk
    }

    fn enter(&mut self, dir: &Path) {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                paths.sort();
                self.stack.push(paths.into_iter());
            }
            Err(err) => self.pending_error = Some(err),
        }
    }
}

impl Iterator for FileWalk {
    type Item = std::io::Result<PathBuf>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(err) = self.pending_error.take() {
                return Some(Err(err));
            }
            let path = match self.stack.last_mut()?.next() {
                Some(path) => path,
                None => {
                    self.stack.pop();
                    continue;
                }
            };
            let is_real_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            if is_real_dir {
                self.enter(&path);
            } else if path.is_file() {
                return Some(Ok(path));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_would_escape_the_destination_are_refused() {
        assert_eq!(safe_relative("logs/a/b.txt", "logs/"), Some(PathBuf::from("a/b.txt")));
        assert_eq!(safe_relative("logs/../../etc/passwd", "logs/"), None);
        assert_eq!(safe_relative("logs//etc/passwd", "logs/"), None);
        assert_eq!(safe_relative("logs/", "logs/"), None);
        assert_eq!(safe_relative("other/x", "logs/"), None);
    }

    #[test]
    fn the_walk_lists_files_in_order_and_skips_nothing() {
        let dir = std::env::temp_dir().join(format!("nuaws-walk-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("b/c")).unwrap();
        for f in ["a.txt", "b/x.txt", "b/c/y.txt", "z.txt"] {
            std::fs::write(dir.join(f), f).unwrap();
        }
        let files: Vec<PathBuf> = FileWalk::new(dir.clone()).map(|f| f.unwrap().strip_prefix(&dir).unwrap().to_path_buf()).collect();
        assert_eq!(files, ["a.txt", "b/c/y.txt", "b/x.txt", "z.txt"].map(PathBuf::from));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn prefixes_are_directories() {
        assert_eq!(as_prefix(""), "");
        assert_eq!(as_prefix("a"), "a/");
        assert_eq!(as_prefix("a/"), "a/");
        assert_eq!(file_name("a/b/c.txt"), "c.txt");
        assert_eq!(destination_key("up/", "f.txt"), "up/f.txt");
        assert_eq!(destination_key("", "f.txt"), "f.txt");
        assert_eq!(destination_key("up/g.txt", "f.txt"), "up/g.txt");
    }
}
