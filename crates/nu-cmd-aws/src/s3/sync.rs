//! `aws s3 sync`: make a destination (local directory or S3 prefix) hold what a source holds,
//! transferring only what changed, both ways and within S3, through the request engine.
//!
//! The plan is a streaming merge-join of the two listings (`aws_core::s3::sync`): the first
//! transfer starts while both are still being listed, and memory is the engine's window, not the
//! number of keys. Every key gets a row `{action key reason size error}`; `--dry-run` gives the
//! same rows without doing anything. Deletions (`--delete`) wait on disk until every transfer has
//! succeeded, and then only happen within `--max-delete`, and never from an empty source without
//! `--force`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_core::cache::{Freshness, HashCache};
use aws_core::engine::{Engine, FailureMode, Lane, Request};
use aws_core::s3::sync::{Action, DeleteSpool, Direction, Filters, Place, Plan, PlanOptions, Relist, Rule, Step, execute, side_items};
use aws_core::s3::{BucketRouter, S3Url};
use nu_engine::command_prelude::*;
use nu_protocol::ListStream;
use nu_protocol::shell_error::generic::GenericError;

use crate::context::{AwsContext, CallSession, session_flags};
use crate::engine::bulk::{BulkValues, engine_flags, engine_settings};
use crate::errors::to_shell_error;
use crate::s3::{neither_side_in_s3, parse_url};

#[derive(Clone)]
pub struct S3Sync {
    pub ctx: Arc<AwsContext>,
}

impl Command for S3Sync {
    fn name(&self) -> &str {
        "aws s3 sync"
    }

    fn signature(&self) -> Signature {
        engine_flags(session_flags(Signature::build(self.name())))
            .required("source", SyntaxShape::String, "A local directory or an s3://bucket/prefix URL.")
            .required("destination", SyntaxShape::String, "A local directory or an s3://bucket/prefix URL.")
            .switch("delete", "Delete what the destination has and the source does not, after every transfer succeeded.", None)
            .named("max-delete", SyntaxShape::Int, "With --delete, delete nothing if more than this many keys would go.", None)
            .switch("force", "Let --delete empty the destination when the source has nothing.", None)
            .switch("dry-run", "Show the plan (the rows the sync would give) and change nothing.", Some('n'))
            .switch("size-only", "Transfer a key both sides have only when the sizes differ.", None)
            .switch("exact-timestamps", "Downloads: also transfer when the times differ at all, not only when S3's is newer.", None)
            .switch("checksum", "Compare equal-sized keys by content: MD5 against a single-part ETag, else S3's full-object CRC64NVME, else the multipart ETag recomputed.", Some('c'))
            .named("exclude", SyntaxShape::List(Box::new(SyntaxShape::String)), "Globs of relative keys to leave out (`*` also matches /).", None)
            .named("include", SyntaxShape::List(Box::new(SyntaxShape::String)), "Globs of relative keys to take part even if excluded; alone, only these.", None)
            .switch("no-follow-symlinks", "Skip symbolic links in a local source instead of following them.", None)
            .input_output_types(vec![(Type::Nothing, Type::table())])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Make a destination hold what a source holds, transferring only what changed; one row per key."
    }

    fn extra_description(&self) -> &str {
        "Local directory to S3 prefix, S3 to local, or S3 to S3 (across regions too). Both sides are listed as streams in S3's key order and merged, so transfers start at once and memory does not grow with the number of keys.
Rows: {action: upload|download|copy|delete|skip, key (relative), reason, size, error}. Reasons: new, size (sizes differ), newer (the source is newer, to the second), time (--exact-timestamps), checksum, unverifiable: ... (--checksum could not compare, so it transfers); skips say unchanged, same size, same time, same checksum, marker (a key/ directory marker), or why a key cannot be a local file.
Downloads get the object's LastModified as their mtime, so syncing again transfers nothing.
Filters: a key matching an --include glob always takes part; otherwise one matching an --exclude glob is left out (and never deleted); --include alone selects only its keys.
--checksum compares at the least cost in requests: a file's MD5 against a single-part ETag needs none; else, for an object listed with a CRC64NVME (every object nuaws uploads, multipart ones too, carries a full-object one), one HEAD for it; else one HEAD for the part size, to recompute a multipart ETag. Local files are read only when changed since a run last read them (size, mtime, inode: the hash cache, in the disk cache; `aws metrics` counts its lookups as local HashFile). Objects with neither an MD5 ETag (SSE-KMS, SSE-C) nor a CRC64NVME are unverifiable and transferred.
--delete deletes only after every transfer succeeded (none if one failed), none beyond --max-delete, and none from an empty source without --force."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["sync", "mirror", "rsync", "backup", "upload", "download"]
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "Upload what changed in a directory.",
                example: "aws s3 sync ./site s3://my-bucket/www/",
                result: None,
            },
            Example {
                description: "See what a mirror with deletions would do, without doing it.",
                example: "aws s3 sync s3://my-bucket/data/ ./data --delete --dry-run | where action != skip",
                result: None,
            },
            Example {
                description: "Compare by content, leave out temporary files, and list what failed.",
                example: "aws s3 sync ./site s3://my-bucket/site/ --checksum --exclude [*.tmp] | where error != null",
                result: None,
            },
            Example {
                description: "Mirror a prefix within S3 (or to another bucket, in any region), deleting at most 100 objects.",
                example: "aws s3 sync s3://my-bucket/logs/ s3://my-bucket/archive/logs/ --delete --max-delete 100",
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
        let delete = call.has_flag(engine_state, stack, "delete")?;
        let force = call.has_flag(engine_state, stack, "force")?;
        let dry_run = call.has_flag(engine_state, stack, "dry-run")?;
        let follow = !call.has_flag(engine_state, stack, "no-follow-symlinks")?;
        let max_delete: Option<Spanned<i64>> = call.get_flag(engine_state, stack, "max-delete")?;
        if let Some(n) = &max_delete
            && n.item < 0
        {
            return Err(ShellError::IncorrectValue {
                msg: "--max-delete cannot be negative".into(),
                val_span: n.span,
                call_span: head,
            });
        }
        let rule = change_rule(engine_state, stack, call)?;
        let filters = filters(engine_state, stack, call)?;
        let (settings, show_progress) = engine_settings(engine_state, stack, call)?;
        let cwd = engine_state.cwd(Some(stack))?.into_std_path_buf();
        let from = place(&source, &cwd)?;
        let to = place(&destination, &cwd)?;
        let direction = match (&from, &to) {
            (Place::Local(_), Place::Local(_)) => return Err(neither_side_in_s3(&source, &destination, "Use `rsync` or `cp -r` for local copies.")),
            (Place::Local(_), Place::S3(_)) => Direction::Upload,
            (Place::S3(_), Place::Local(_)) => Direction::Download,
            (Place::S3(_), Place::S3(_)) => Direction::Copy,
        };
        if let Place::Local(path) = &from
            && !path.is_dir()
        {
            return Err(ShellError::Generic(
                GenericError::new("No such source directory", format!("`{}` is not a directory", path.display()), source.span)
                    .with_help("Sync copies directories; use `aws s3 cp` for one file."),
            ));
        }
        if let Place::Local(path) = &to
            && path.exists()
            && !path.is_dir()
        {
            return Err(ShellError::Generic(
                GenericError::new("The destination is not a directory", format!("`{}` is a file", path.display()), destination.span)
                    .with_help("Sync into a directory (it is created if missing)."),
            ));
        }
        let cs = Arc::new(CallSession::resolve(&self.ctx, engine_state, stack, call)?);
        let interrupted: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(cs.interrupt());
        let mut source_items = side_items(&cs.session, &from, follow, interrupted.clone());
        // An empty or missing source would delete everything: refuse before anything is done.
        let first = source_items.next();
        if first.is_none() && delete && !force {
            return Err(ShellError::Generic(
                GenericError::new("Refusing to delete everything", "the source is empty or missing", source.span)
                    .with_help("With --delete, an empty source would empty the destination; pass --force if that is what you want."),
            ));
        }
        let source_items = Box::new(first.into_iter().chain(source_items));
        let dest_items = side_items(&cs.session, &to, follow, interrupted.clone());
        // A side found out of key order is listed again, sorted on disk, and the plan restarts.
        let relist = |place: &Place| -> Relist {
            let (session, place, interrupted) = (cs.session.clone(), place.clone(), interrupted.clone());
            Box::new(move || side_items(&session, &place, follow, interrupted.clone()))
        };
        let plan = Plan::new(source_items, dest_items, direction, PlanOptions { rule, delete, filters }).relisting(relist(&from), relist(&to));
        let source_keys = plan.source_keys();
        let restarts = plan.restarts();

        // Deletions go to disk as the plan meets them; the engine never sees them in this phase.
        let spool = Arc::new(std::sync::Mutex::new(Some(DeleteSpool::new().map_err(|e| {
            ShellError::Generic(GenericError::new("Cannot make a temporary file", e.to_string(), head).with_help("Deletions wait in a temporary file; check $env.TMPDIR."))
        })?)));
        let spooled = spool.clone();
        // The plan restart the spool's deletions belong to.
        let spool_epoch = Arc::new(AtomicU64::new(0));
        let (epoch, restarts_then) = (spool_epoch.clone(), restarts.clone());
        let steps = plan.filter_map(move |step| {
            let mut spool = spooled.lock().unwrap_or_else(|e| e.into_inner());
            // The plan started again: what it said to delete before, it says again if it holds.
            let now = restarts.load(Ordering::Relaxed);
            if now != epoch.load(Ordering::Relaxed) {
                epoch.store(now, Ordering::Relaxed);
                if spool.is_some() {
                    match DeleteSpool::new() {
                        Ok(fresh) => *spool = Some(fresh),
                        Err(e) => {
                            *spool = None;
                            return Some(Step {
                                error: Some(format!("cannot note deletions again: {e}")),
                                ..step
                            });
                        }
                    }
                }
            }
            if step.action != Action::Delete {
                return Some(step);
            }
            match spool.as_mut().map(|spool| spool.push(&step.key, step.size.unwrap_or(0))) {
                Some(Ok(())) => None,
                None => Some(Step {
                    error: Some("cannot note the deletion: the plan is over".into()),
                    ..step
                }),
                Some(Err(e)) => Some(Step {
                    error: Some(format!("cannot note the deletion: {e}")),
                    ..step
                }),
            }
        });

        let written = match &to {
            Place::S3(url) if !dry_run => Some(url.clone()),
            _ => None,
        };
        if let Some(url) = &written {
            cs.objects_written_below(&url.bucket, &url.key);
        }
        let (from, to) = (Arc::new(from), Arc::new(to));
        let router = BucketRouter::single_attempt(&cs.session);
        // `--checksum` reads a local file only when it changed since the last run read it.
        let hashes = HashCache::new((cs.freshness != Freshness::Bypass).then(|| cs.cache.clone()));
        let request = {
            let (router, from, to, hashes) = (router.clone(), from.clone(), to.clone(), hashes.clone());
            move |step: Step| {
                if step.error.is_some() || (step.action == Action::Skip && !step.compare_content) || (dry_run && !step.compare_content) {
                    return Request::Ready(Ok(step));
                }
                Request::Send(execute(router.clone(), hashes.clone(), step, from.clone(), to.clone(), dry_run))
            }
        };
        let failures = Arc::new(AtomicU64::new(0));
        let fail_fast = settings.job.mode == FailureMode::FailFast;
        let lane = Lane::of(&cs.session, "s3");
        let job = Engine::global().run(&lane, &settings, steps, request);
        let counted = failures.clone();
        let spans = cs.spans_for(source.span);
        let transfers = BulkValues::new(job, lane.clone(), &settings, "sync", show_progress, engine_state.signals().clone(), head, move |outcome| {
            let (step, error) = match outcome.result {
                Ok(step) => {
                    let error = step.error.clone();
                    (step, error)
                }
                Err(err) if fail_fast => {
                    counted.fetch_add(1, Ordering::Relaxed);
                    // The first failure ends the job: it names the key, and keeps the AWS error (and its help) within.
                    let text = err.to_string();
                    let failed = GenericError::new(format!("Could not sync {}", outcome.item.key), text, source.span)
                        .with_inner([to_shell_error(err, &spans)]);
                    return vec![Value::error(ShellError::Generic(failed), head)];
                }
                Err(err) => (outcome.item, Some(err.to_string())),
            };
            if let Some(error) = &error {
                counted.fetch_add(1, Ordering::Relaxed);
                if fail_fast {
                    return vec![Value::error(
                        ShellError::Generic(GenericError::new(format!("Could not sync {}", step.key), error.clone(), source.span)),
                        head,
                    )];
                }
            }
            vec![step_row(&step, error, head)]
        });
        let end_cs = cs.clone();
        let written_below = written.clone();
        // The hash cache's last batch goes to disk as the transfers end, not at some later drop.
        let transfers = transfers.on_end(move || {
            hashes.flush();
            if let Some(url) = written_below {
                end_cs.objects_written_below(&url.bucket, &url.key);
            }
        });

        let signals = engine_state.signals().clone();
        let deletions = {
            let (cs, signals) = (cs.clone(), signals.clone());
            move || -> Values {
                let failed = failures.load(Ordering::Relaxed);
                if fail_fast && failed > 0 {
                    return Box::new(std::iter::empty());
                }
                // The job has ended, so the plan has been read to its end: every deletion is noted.
                let Some(mut spool) = spool.lock().unwrap_or_else(|e| e.into_inner()).take() else {
                    return Box::new(std::iter::empty());
                };
                // The plan restarted after its last step: what was noted before is void.
                if restarts_then.load(Ordering::Relaxed) != spool_epoch.load(Ordering::Relaxed) {
                    match DeleteSpool::new() {
                        Ok(fresh) => spool = fresh,
                        Err(e) => return Box::new(std::iter::once(Value::error(ShellError::Generic(GenericError::new("Cannot make a temporary file", e.to_string(), head)), head))),
                    }
                }
                let count = spool.count;
                let refusal = if failed > 0 {
                    Some(format!("not deleted: {failed} keys failed to sync"))
                } else if max_delete.as_ref().is_some_and(|n| count > n.item as u64) {
                    Some(format!("not deleted: {count} deletions exceed --max-delete {}", max_delete.as_ref().map_or(0, |n| n.item)))
                } else if source_keys.load(Ordering::Relaxed) == 0 && !force {
                    Some("not deleted: the source has no keys to sync (pass --force to delete anyway)".to_string())
                } else {
                    None
                };
                let keys = match spool.drain() {
                    Ok(keys) => keys,
                    Err(e) => return Box::new(std::iter::once(Value::error(ShellError::Generic(GenericError::new("Cannot read back the deletions", e.to_string(), head)), head))),
                };
                if dry_run || refusal.is_some() {
                    return Box::new(keys.map(move |key| match key {
                        Ok((key, size)) => delete_row(&key, size, refusal.clone(), head),
                        Err(e) => Value::error(ShellError::Generic(GenericError::new("Cannot read back the deletions", e.to_string(), head)), head),
                    }));
                }
                run_deletes(&cs, keys, to, &settings, show_progress, signals, head, fail_fast)
            }
        };
        let values = Then {
            first: Some(Box::new(transfers)),
            then: Some(Box::new(deletions)),
        };
        Ok(PipelineData::list_stream(ListStream::new(values, head, signals), None))
    }
}

/// Values of a stream.
type Values = Box<dyn Iterator<Item = Value> + Send>;

/// A stream of values, then, once it is exhausted (and dropped), another made only then.
struct Then {
    first: Option<Values>,
    then: Option<Box<dyn FnOnce() -> Values + Send>>,
}

impl Iterator for Then {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(first) = &mut self.first {
                match first.next() {
                    Some(value) => return Some(value),
                    None => self.first = None,
                }
            }
            let then = self.then.take()?;
            self.first = Some(then());
        }
    }
}

fn step_row(step: &Step, error: Option<String>, span: Span) -> Value {
    Value::record(
        record! {
            "action" => Value::string(step.action.as_str(), span),
            "key" => Value::string(step.key.clone(), span),
            "reason" => Value::string(step.reason.clone(), span),
            "size" => step.size.map_or(Value::nothing(span), |n| Value::filesize(n as i64, span)),
            "error" => error.map_or(Value::nothing(span), |e| Value::string(e, span)),
        },
        span,
    )
}

fn delete_row(key: &str, size: u64, error: Option<String>, span: Span) -> Value {
    let step = Step {
        action: Action::Delete,
        key: key.to_string(),
        reason: "not in source".into(),
        size: Some(size),
        source: None,
        dest: None,
        error: None,
        compare_content: false,
    };
    step_row(&step, error, span)
}

/// Deletes the spooled keys through the engine: batches of up to 1000 keys per DeleteObjects
/// on S3, files one by one locally.
#[allow(clippy::too_many_arguments)]
fn run_deletes(
    cs: &Arc<CallSession>,
    keys: impl Iterator<Item = std::io::Result<(String, u64)>> + Send + 'static,
    to: Arc<Place>,
    settings: &aws_core::engine::EngineSettings,
    show_progress: bool,
    signals: nu_protocol::Signals,
    head: Span,
    fail_fast: bool,
) -> Values {
    let batch = match &*to {
        Place::S3(_) => aws_core::s3::object::DELETE_BATCH,
        Place::Local(_) => 1,
    };
    let mut keys = keys.peekable();
    let batches = std::iter::from_fn(move || {
        let mut out = Vec::new();
        while out.len() < batch {
            match keys.next()? {
                Ok(key) => out.push(key),
                Err(_) => break,
            }
            if keys.peek().is_none() {
                break;
            }
        }
        (!out.is_empty()).then_some(out)
    });
    let router = BucketRouter::single_attempt(&cs.session);
    let written = cs.clone();
    let target = to.clone();
    let request = move |batch: Vec<(String, u64)>| {
        let (router, to) = (router.clone(), target.clone());
        match &*to {
            Place::S3(url) => {
                let keys: Vec<String> = batch.iter().map(|(k, _)| format!("{}{k}", url.key)).collect();
                written.objects_written(&url.bucket, &keys);
                let bucket = url.bucket.clone();
                Request::Send(Box::pin(async move {
                    let outcome = aws_core::s3::object::delete_objects_with(router, bucket, keys).await?;
                    Ok(outcome.into_iter().map(|o| o.error).collect::<Vec<_>>())
                }) as std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Option<String>>, aws_core::AwsError>> + Send>>)
            }
            Place::Local(root) => {
                let errors = batch.iter().map(|(k, _)| std::fs::remove_file(root.join(k)).err().map(|e| e.to_string())).collect();
                Request::Ready(Ok(errors))
            }
        }
    };
    let lane = Lane::of(&cs.session, "s3");
    let job = Engine::global().run(&lane, settings, batches, request);
    let spans = cs.spans;
    let values = BulkValues::new(job, lane, settings, "delete", show_progress, signals, head, move |outcome| {
        let batch = outcome.item;
        match outcome.result {
            Ok(errors) => batch.iter().zip(errors).map(|((key, size), error)| delete_done(key, *size, error, fail_fast, head)).collect(),
            Err(err) if fail_fast => vec![Value::error(to_shell_error(err, &spans), head)],
            Err(err) => batch.iter().map(|(key, size)| delete_row(key, *size, Some(err.to_string()), head)).collect(),
        }
    });
    let end = cs.clone();
    let values = match &*to {
        Place::S3(url) => {
            let url = url.clone();
            values.on_end(move || end.objects_written_below(&url.bucket, &url.key))
        }
        Place::Local(_) => values,
    };
    Box::new(values)
}

fn delete_done(key: &str, size: u64, error: Option<String>, fail_fast: bool, head: Span) -> Value {
    match error {
        Some(error) if fail_fast => Value::error(ShellError::Generic(GenericError::new(format!("Could not delete {key}"), error, head)), head),
        error => delete_row(key, size, error, head),
    }
}

/// The change rule of the call: at most one of --size-only, --exact-timestamps, --checksum.
fn change_rule(engine_state: &EngineState, stack: &mut Stack, call: &Call) -> Result<Rule, ShellError> {
    let mut chosen = Vec::new();
    for (flag, rule) in [("size-only", Rule::SizeOnly), ("exact-timestamps", Rule::ExactTimestamps), ("checksum", Rule::Checksum)] {
        if call.has_flag(engine_state, stack, flag)? {
            chosen.push((flag, rule));
        }
    }
    match chosen.as_slice() {
        [] => Ok(Rule::Default),
        [(_, rule)] => Ok(*rule),
        [(a, _), (b, _), ..] => Err(ShellError::Generic(
            GenericError::new("Conflicting change rules", format!("--{a} and --{b} cannot be used together"), call.head)
                .with_help("Pick one way to decide what changed."),
        )),
    }
}

fn globs(engine_state: &EngineState, stack: &mut Stack, call: &Call, flag: &str) -> Result<(Vec<String>, Span), ShellError> {
    match call.get_flag::<Value>(engine_state, stack, flag)? {
        None => Ok((Vec::new(), call.head)),
        Some(value) => {
            let span = value.span();
            Ok((<Vec<String> as nu_protocol::FromValue>::from_value(value)?, span))
        }
    }
}

fn filters(engine_state: &EngineState, stack: &mut Stack, call: &Call) -> Result<Filters, ShellError> {
    let (include, include_span) = globs(engine_state, stack, call, "include")?;
    let (exclude, exclude_span) = globs(engine_state, stack, call, "exclude")?;
    Filters::new(&include, &exclude).map_err(|(pattern, why)| {
        let span = if include.contains(&pattern) { include_span } else { exclude_span };
        ShellError::Generic(
            GenericError::new("Not a glob", format!("`{pattern}`: {why}"), span).with_help("Globs use * ? [abc]; * also matches /."),
        )
    })
}

/// One side of the sync: a prefix (as a directory: empty or ending in /) or a local directory.
fn place(arg: &Spanned<String>, cwd: &Path) -> Result<Place, ShellError> {
    if arg.item.starts_with("s3://") {
        let url = parse_url(arg)?;
        let key = if url.key.is_empty() || url.key.ends_with('/') { url.key.clone() } else { format!("{}/", url.key) };
        return Ok(Place::S3(S3Url::new(url.bucket, key)));
    }
    let path: PathBuf = nu_path::expand_path_with(&arg.item, cwd, true);
    Ok(Place::Local(path))
}
