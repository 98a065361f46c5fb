//! Where the shell's shared cache tier is configured, and how that setting is read into a
//! [`SharedConfig`]: `$env.NUAWS_SHARED_CACHE`, else the file `shared-cache.nuon` in nuaws's
//! config directory (`$env.XDG_CONFIG_HOME/nuaws`, else `~/.config/nuaws`, beside the team key
//! the docs suggest keeping there). The variable wins over the file, field by field the same.
//!
//! A malformed variable is a spanned error of the command that reads it (the user just typed
//! it). A malformed file is a warning naming the file and the field, said once per process by
//! the first command that opens the cache, and the tier stays off for the process: a file nobody
//! is looking at never fails a command.
//!
//! Not here: the tier itself (`aws_core::cache::shared`), nor when the cache is opened
//! (`context`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_core::cache::{SharedConfig, TeamKey};
use nu_engine::command_prelude::*;
use nu_protocol::shell_error::generic::GenericError;

use crate::context::shell_var;

/// The environment variable holding the setting.
pub const SHARED_CACHE_VAR: &str = "NUAWS_SHARED_CACHE";
/// The setting's file, in nuaws's config directory.
pub const SHARED_CACHE_FILE: &str = "shared-cache.nuon";

/// The fields the setting may have.
const KNOWN_SHARED_SETTINGS: [&str; 11] = [
    "url",
    "key_file",
    "key_env",
    "username",
    "password_env",
    "deadline",
    "lease",
    "ca_file",
    "roles",
    "recheck",
    "tracking",
];

/// What configures the shell's shared tier, if anything.
pub enum SharedSetting {
    /// Neither the variable nor the file.
    Unset,
    /// `$env.NUAWS_SHARED_CACHE`, read.
    Env(Result<SharedConfig, ShellError>),
    /// The file, read: a problem is the warning to give (file and field named).
    File { path: PathBuf, config: Result<SharedConfig, String> },
}

/// Where the setting came from: names it in errors, and anchors a file's relative paths.
#[derive(Clone, Copy)]
enum Source<'a> {
    Env,
    File(&'a Path),
}

/// The setting's file: `$env.XDG_CONFIG_HOME/nuaws/shared-cache.nuon`, else
/// `$env.HOME/.config/nuaws/shared-cache.nuon` (the shell's `$env`, like the cache directory).
pub fn shared_cache_file(engine_state: &EngineState, stack: &Stack) -> Option<PathBuf> {
    let var = |name: &str| shell_var(engine_state, stack, name);
    var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|base| base.join("nuaws").join(SHARED_CACHE_FILE))
}

/// The setting in force: the variable when set (the file is then not read), else the file when
/// it exists.
pub fn shared_setting(engine_state: &EngineState, stack: &Stack) -> SharedSetting {
    if let Some(value) = stack.get_env_var(engine_state, SHARED_CACHE_VAR) {
        return SharedSetting::Env(parse(value, Source::Env, engine_state, stack));
    }
    let Some(path) = shared_cache_file(engine_state, stack) else {
        return SharedSetting::Unset;
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return SharedSetting::Unset,
        Err(e) => {
            let config = Err(format!("{}: cannot be read: {e}", path.display()));
            return SharedSetting::File { path, config };
        }
    };
    let config = match nuon::from_nuon(&text, None) {
        Ok(value) => parse(&value, Source::File(&path), engine_state, stack).map_err(|err| file_problem(&err)),
        Err(err) => Err(format!("{}: not NUON: {}", path.display(), nuon_problem(&err))),
    };
    SharedSetting::File { path, config }
}

/// The variable's setting; `None` when it is unset (the file is not looked at: it never fails a
/// command). A malformed variable is a spanned error.
pub fn env_shared_config(engine_state: &EngineState, stack: &Stack) -> Result<Option<SharedConfig>, ShellError> {
    match stack.get_env_var(engine_state, SHARED_CACHE_VAR) {
        None => Ok(None),
        Some(value) => parse(value, Source::Env, engine_state, stack).map(Some),
    }
}

/// The text of a file's problem: the error's message, then its help.
fn file_problem(err: &ShellError) -> String {
    match err {
        ShellError::Generic(generic) => match &generic.help {
            Some(help) => format!("{} ({help})", generic.msg),
            None => generic.msg.to_string(),
        },
        other => other.to_string(),
    }
}

/// What NUON's parser said, as one line: the innermost messages.
fn nuon_problem(err: &ShellError) -> String {
    match err {
        ShellError::Generic(generic) if !generic.inner.is_empty() => {
            generic.inner.iter().map(nuon_problem).collect::<Vec<_>>().join("; ")
        }
        ShellError::Generic(generic) => generic.msg.to_string(),
        ShellError::OutsideSpannedLabeledError { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

/// The setting in `value`: `{url: "rediss://cache.internal:6379", key_file:
/// "~/.config/nuaws/team.key"}`, with optional `key_env` (the name of an `$env` variable holding
/// the team key instead of a file), `username`, `password_env` (the name of an `$env` variable
/// holding the password: never in the URL), `deadline` (a duration, 50ms by default: how long a
/// lookup may wait), `lease` (a duration, 2sec by default: how long the first reader of a missing
/// entry makes the others wait for its answer), `ca_file` (for `rediss://`: PEM certificates of
/// the CA to trust instead of the system's), `roles` (role names whose sessions share one scope),
/// `recheck` (a duration, 1sec by default: how long a generation read is trusted before a local
/// copy is checked against Redis again) and `tracking` (a bool, true by default: whether Redis
/// tells a running shell at once when a teammate's write moves a generation). The URL is
/// `redis://`, `rediss://`, or `redis+cluster://host:port,host:port` (`rediss+cluster://`) for
/// a Redis Cluster. In a file, relative `key_file` and `ca_file` paths are the file's
/// directory's.
fn parse(value: &Value, source: Source<'_>, engine_state: &EngineState, stack: &Stack) -> Result<SharedConfig, ShellError> {
    let span = value.span();
    let bad = |field: &str, msg: String, at: Span, help: &str| {
        let generic = match source {
            Source::Env => GenericError::new(format!("Invalid $env.{SHARED_CACHE_VAR}"), msg, at),
            Source::File(path) => {
                let msg = if field.is_empty() {
                    format!("{}: {msg}", path.display())
                } else {
                    format!("{}, field `{field}`: {msg}", path.display())
                };
                GenericError::new_internal(format!("Invalid shared cache file {}", path.display()), msg)
            }
        };
        ShellError::Generic(generic.with_help(help.to_string()))
    };
    let path = |text: &str| -> PathBuf {
        let expanded = nu_path::expand_tilde(text);
        match source {
            Source::File(file) if expanded.is_relative() => file.parent().map_or(expanded.clone(), |dir| dir.join(&expanded)),
            _ => expanded,
        }
    };
    const SHAPE: &str =
        "Set it to a record such as {url: \"redis://127.0.0.1:6379\", key_file: \"~/.config/nuaws/team.key\"}.";
    let record = value
        .as_record()
        .map_err(|_| bad("", format!("expected a record, found {}", value.get_type()), span, SHAPE))?;
    let text = |name: &str| -> Result<Option<Spanned<String>>, ShellError> {
        match record.get(name) {
            None => Ok(None),
            Some(v) => v
                .coerce_string()
                .map(|s| Some(Spanned { item: s, span: v.span() }))
                .map_err(|_| bad(name, format!("`{name}` must be a string"), v.span(), SHAPE)),
        }
    };
    let env_text = |field: &str, var: &Spanned<String>, what: &str| -> Result<String, ShellError> {
        stack
            .get_env_var(engine_state, &var.item)
            .and_then(|v| v.coerce_string().ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                bad(
                    field,
                    format!("$env.{} (the {what}) is not set", var.item),
                    var.span,
                    "Set that variable in the shell, or name another one.",
                )
            })
    };
    for name in record.columns() {
        if !KNOWN_SHARED_SETTINGS.contains(&name.as_str()) {
            let at = record.get(name).map_or(span, |v| v.span());
            return Err(bad(
                name,
                format!("unknown setting `{name}`"),
                at,
                &format!("Known settings: {}.", KNOWN_SHARED_SETTINGS.join(", ")),
            ));
        }
    }
    let url = text("url")?.ok_or_else(|| bad("url", "`url` is missing".into(), span, SHAPE))?;
    const URL_HELP: &str = "Write redis://host:port or rediss://host:port (a cluster: redis+cluster://host:port,host:port), with credentials in `username` and `password_env`.";
    SharedConfig::check_url(&url.item).map_err(|msg| bad("url", msg, url.span, URL_HELP))?;
    let (key_field, key_bytes) = match (text("key_file")?, text("key_env")?) {
        (Some(file), None) => {
            let bytes = std::fs::read(path(&file.item)).map_err(|e| {
                bad(
                    "key_file",
                    format!("cannot read the team key file: {e}"),
                    file.span,
                    "Make one with `head -c 32 /dev/urandom | base64 | save ~/.config/nuaws/team.key` and share it with the team.",
                )
            })?;
            ("key_file", bytes)
        }
        (None, Some(var)) => ("key_env", env_text("key_env", &var, "team key")?.into_bytes()),
        _ => {
            return Err(bad(
                "key_file",
                "give the team key as exactly one of `key_file` and `key_env`".into(),
                span,
                "key_file: a file holding the key; key_env: the name of an $env variable holding it.",
            ));
        }
    };
    let key_span = record.get(key_field).map_or(span, |v| v.span());
    let key = TeamKey::new(&key_bytes)
        .map_err(|msg| bad(key_field, msg, key_span, "Make a key of 32 random bytes: `head -c 32 /dev/urandom | base64`."))?;
    let mut config = SharedConfig::new(url.item.clone(), key).map_err(|msg| bad("url", msg, url.span, URL_HELP))?;
    config = config.username(text("username")?.map(|u| u.item));
    if let Some(var) = text("password_env")? {
        config = config.password(Some(env_text("password_env", &var, "password")?));
    }
    let duration = |name: &str, example: &str| -> Result<Option<Duration>, ShellError> {
        let Some(value) = record.get(name) else {
            return Ok(None);
        };
        let help = format!("For example {name}: {example}.");
        let nanos = value
            .as_duration()
            .map_err(|_| bad(name, format!("`{name}` must be a duration"), value.span(), &help))?;
        if nanos <= 0 {
            return Err(bad(name, format!("`{name}` must be positive"), value.span(), &help));
        }
        Ok(Some(Duration::from_nanos(nanos as u64)))
    };
    if let Some(deadline) = duration("deadline", "30ms")? {
        config = config.deadline(deadline);
    }
    if let Some(lease) = duration("lease", "2sec")? {
        config = config.lease(lease);
    }
    if let Some(recheck) = duration("recheck", "1sec")? {
        config = config.recheck(recheck);
    }
    if let Some(tracking) = record.get("tracking") {
        let on = tracking
            .as_bool()
            .map_err(|_| bad("tracking", "`tracking` must be true or false".into(), tracking.span(), "For example tracking: false."))?;
        config = config.tracking(on);
    }
    if let Some(file) = text("ca_file")? {
        if !url.item.starts_with("rediss") {
            return Err(bad(
                "ca_file",
                "`ca_file` is for a TLS connection".into(),
                file.span,
                "Use a rediss:// (or rediss+cluster://) URL, or drop `ca_file`.",
            ));
        }
        let pem = std::fs::read(path(&file.item)).map_err(|e| {
            bad(
                "ca_file",
                format!("cannot read the CA file: {e}"),
                file.span,
                "Name a file of PEM certificates (the CA that signed the server's certificate).",
            )
        })?;
        config = config.ca_certificates(Some(pem));
    }
    if let Some(roles) = record.get("roles") {
        let help = "A list of role names, e.g. roles: [ReadOnly].";
        let list = roles
            .as_list()
            .map_err(|_| bad("roles", "`roles` must be a list of role names".into(), roles.span(), help))?;
        let names = list
            .iter()
            .map(|r| r.coerce_string().map_err(|_| bad("roles", "a role name must be a string".into(), r.span(), help)))
            .collect::<Result<Vec<_>, _>>()?;
        config = config.roles(names);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(vars: &[(&str, Value)]) -> (EngineState, Stack) {
        let engine_state = EngineState::new();
        let mut stack = Stack::new();
        for (name, value) in vars {
            stack.add_env_var(name.to_string(), value.clone());
        }
        (engine_state, stack)
    }

    fn s(text: &str) -> Value {
        Value::test_string(text)
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    const KEY: &str = "k3y-of-the-team-0123456789abcdef0123456789\n";

    #[test]
    fn the_file_is_read_when_the_variable_is_unset_with_paths_relative_to_it() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("config");
        write(&config, "nuaws/team.key", KEY);
        write(
            &config,
            "nuaws/shared-cache.nuon",
            "# the team's cache\n{url: \"redis://127.0.0.1:6379\", key_file: team.key, deadline: 30ms, recheck: 1min, roles: [team]}",
        );
        let (engine_state, stack) = shell(&[("XDG_CONFIG_HOME", s(&config.to_string_lossy()))]);
        match shared_setting(&engine_state, &stack) {
            SharedSetting::File { path, config: Ok(c) } => {
                assert_eq!(path, config.join("nuaws/shared-cache.nuon"));
                assert_eq!(c.url(), "redis://127.0.0.1:6379");
                assert_eq!(c.role_scopes(), ["team".to_string()]);
            }
            SharedSetting::File { config: Err(e), .. } => panic!("{e}"),
            _ => panic!("the file was not read"),
        }
        assert!(env_shared_config(&engine_state, &stack).unwrap().is_none(), "the variable alone");
    }

    #[test]
    fn the_variable_wins_over_the_file_and_no_file_is_unset() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "nuaws/shared-cache.nuon", "{url: broken");
        let key = write(tmp.path(), "team.key", KEY);
        let record = Value::test_record(nu_protocol::record! {
            "url" => s("redis://10.0.0.1:6379"),
            "key_file" => s(&key.to_string_lossy()),
        });
        let (engine_state, stack) = shell(&[("XDG_CONFIG_HOME", s(&tmp.path().to_string_lossy())), (SHARED_CACHE_VAR, record)]);
        match shared_setting(&engine_state, &stack) {
            SharedSetting::Env(Ok(c)) => assert_eq!(c.url(), "redis://10.0.0.1:6379"),
            _ => panic!("the variable wins"),
        }
        let empty = tempfile::tempdir().unwrap();
        let (engine_state, stack) = shell(&[("XDG_CONFIG_HOME", s(&empty.path().to_string_lossy()))]);
        assert!(matches!(shared_setting(&engine_state, &stack), SharedSetting::Unset));
        // Without XDG_CONFIG_HOME: under HOME.
        let (engine_state, stack) = shell(&[("HOME", s("/home/someone"))]);
        assert_eq!(shared_cache_file(&engine_state, &stack), Some(PathBuf::from("/home/someone/.config/nuaws/shared-cache.nuon")));
    }

    #[test]
    fn a_malformed_file_is_a_problem_naming_the_file_and_the_field() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "nuaws/team.key", KEY);
        let (engine_state, stack) = shell(&[("XDG_CONFIG_HOME", s(&tmp.path().to_string_lossy()))]);
        let problem = |text: &str| {
            let path = write(tmp.path(), "nuaws/shared-cache.nuon", text);
            match shared_setting(&engine_state, &stack) {
                SharedSetting::File { path: p, config: Err(e) } => {
                    assert_eq!(p, path);
                    assert!(e.contains(&path.display().to_string()), "{e}");
                    e
                }
                _ => panic!("{text}: no problem"),
            }
        };
        let e = problem("{url: 'redis://127.0.0.1:6379', key_file: team.key, deadline: soon}");
        assert!(e.contains("field `deadline`") && e.contains("must be a duration"), "{e}");
        let e = problem("{url: 'redis://me:pw@127.0.0.1:6379', key_file: team.key}");
        assert!(e.contains("field `url`") && e.contains("credentials"), "{e}");
        let e = problem("{url: 'redis://127.0.0.1:6379', key_file: missing.key}");
        assert!(e.contains("field `key_file`") && e.contains("team key file"), "{e}");
        let e = problem("{url: 'redis://127.0.0.1:6379', key_file: team.key, dedline: 30ms}");
        assert!(e.contains("field `dedline`") && e.contains("unknown setting"), "{e}");
        let e = problem("{url: 'redis://127.0.0.1:6379', key_file: team.key, tracking: maybe}");
        assert!(e.contains("field `tracking`"), "{e}");
        let e = problem("{url: 'redis://127.0.0.1:6379'");
        assert!(e.contains("not NUON"), "{e}");
        let e = problem("[redis://127.0.0.1:6379]");
        assert!(e.contains("expected a record"), "{e}");
    }
}
