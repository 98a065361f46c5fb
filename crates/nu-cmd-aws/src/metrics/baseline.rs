//! Baselines of `aws bench`: the statistics of a run saved under a name, as a NUON file
//! `<cache dir>/bench/<name>.nuon` (the cache directory of `context::cache_dir`; `open` reads
//! it), and read back to compare a later run with.
//!
//! Not for: computing or comparing statistics (that is `bench.rs`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nu_engine::command_prelude::*;
use nu_protocol::shell_error::generic::GenericError;
use nuon::{ToNuonConfig, ToStyle};

const EXTENSION: &str = "nuon";
const MAX_NAME_LEN: usize = 100;

/// Where baselines are kept, or an error saying how to give a place.
pub(crate) fn dir(
    engine_state: &EngineState,
    stack: &Stack,
    span: Span,
) -> Result<PathBuf, ShellError> {
    crate::context::cache_dir(engine_state, stack)
        .map(|d| d.join("bench"))
        .ok_or_else(|| {
            ShellError::Generic(
                GenericError::new(
                    "No place to keep baselines",
                    "baselines are kept in the cache directory, and none is known",
                    span,
                )
                .with_help("Set $env.NUAWS_CACHE_DIR (or $env.XDG_CACHE_HOME, or $env.HOME).")
                .with_code("nuaws::bench::no_directory"),
            )
        })
}

/// A name is a file name of its own: letters, digits, `.`, `_` and `-`, not starting with `.`.
pub(crate) fn check_name(name: &Spanned<String>) -> Result<(), ShellError> {
    let ok = !name.item.is_empty()
        && name.item.len() <= MAX_NAME_LEN
        && !name.item.starts_with('.')
        && name
            .item
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        return Ok(());
    }
    Err(ShellError::Generic(
        GenericError::new(
            "Invalid baseline name",
            "a baseline name is letters, digits, `.`, `_` and `-`, not starting with `.`",
            name.span,
        )
        .with_help("Name baselines like files: `list-instances`, `s3-ls.v2`.")
        .with_code("nuaws::bench::invalid_name"),
    ))
}

fn io_error(what: &str, path: &Path, err: std::io::Error, span: Span) -> ShellError {
    ShellError::Generic(
        GenericError::new(
            format!("Cannot {what} the baseline"),
            format!("{}: {err}", path.display()),
            span,
        )
        .with_code("nuaws::bench::io"),
    )
}

/// Saves `value` as the baseline `name` (replacing any), atomically: a reader sees the old file
/// or the new one, never half of one.
pub(crate) fn save(
    engine_state: &EngineState,
    dir: &Path,
    name: &Spanned<String>,
    value: &Value,
) -> Result<PathBuf, ShellError> {
    check_name(name)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error("save", dir, e, name.span))?;
    let text = nuon::to_nuon(
        engine_state,
        value,
        ToNuonConfig::default().style(ToStyle::Spaces(2)),
    )?;
    let path = dir.join(format!("{}.{EXTENSION}", name.item));
    let partial = dir.join(format!(".{}.{EXTENSION}.{}", name.item, std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())
                .and_then(|()| f.write_all(b"\n"))
        })
        .and_then(|()| fs::rename(&partial, &path));
    if let Err(e) = written {
        let _ = fs::remove_file(&partial);
        return Err(io_error("save", &path, e, name.span));
    }
    Ok(path)
}

/// The names of the saved baselines, sorted.
pub(crate) fn known(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(&format!(".{EXTENSION}"))?;
            (!stem.starts_with('.')).then(|| stem.to_string())
        })
        .collect();
    names.sort();
    names
}

/// The baseline `name`, as saved.
pub(crate) fn load(dir: &Path, name: &Spanned<String>) -> Result<Value, ShellError> {
    check_name(name)?;
    let path = dir.join(format!("{}.{EXTENSION}", name.item));
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let known = known(dir);
            let help = if known.is_empty() {
                format!(
                    "No baseline is saved in {}; make one with `aws bench {{ ... }} --save {}`.",
                    dir.display(),
                    name.item
                )
            } else {
                format!("Saved baselines: {}.", known.join(", "))
            };
            return Err(ShellError::Generic(
                GenericError::new(
                    format!("No baseline named `{}`", name.item),
                    "unknown baseline",
                    name.span,
                )
                .with_help(help)
                .with_code("nuaws::bench::unknown_baseline"),
            ));
        }
        Err(e) => return Err(io_error("read", &path, e, name.span)),
    };
    parse(&text, name.span).map_err(|e| {
        ShellError::Generic(
            GenericError::new(
                format!("The baseline `{}` cannot be read", name.item),
                format!("{} is not valid NUON", path.display()),
                name.span,
            )
            .with_help("Save it again with --save.")
            .with_inner(vec![e])
            .with_code("nuaws::bench::bad_baseline"),
        )
    })
}

/// The deepest nesting of `(` that a baseline may hold. `aws bench --save` writes none (a flat
/// record of numbers, durations and a date); 8 leaves room for a hand-edited one.
const MAX_PAREN_DEPTH: usize = 8;

/// A baseline file's text as the value it holds.
///
/// Refuses text nested deeper than [`MAX_PAREN_DEPTH`] before parsing it: nushell's parser takes
/// time exponential in the depth of nested `(` (about 2.2x a level: 18 levels take 2 s, 30 would
/// take hours; nushell/nushell#13944), and a damaged or hostile file must not hang `aws bench`.
pub(crate) fn parse(text: &str, span: Span) -> Result<Value, ShellError> {
    let refused = |title: &str, msg: String| {
        Err(ShellError::Generic(
            GenericError::new(title.to_string(), msg, span)
                .with_help("Save it again with --save.")
                .with_code("nuaws::bench::bad_baseline"),
        ))
    };
    let depth = paren_depth(text);
    if depth > MAX_PAREN_DEPTH {
        return refused(
            "Baseline nested too deeply",
            format!(
                "parentheses nested {depth} deep (a baseline saved by aws bench has none; at \
                 most {MAX_PAREN_DEPTH} are read)"
            ),
        );
    }
    if let Some(token) = overflowing_duration(text) {
        return refused(
            "Baseline duration out of range",
            format!(
                "`{token}` is not a duration nuaws can hold (at most about 292 years, in \
                 nanoseconds)"
            ),
        );
    }
    // nuon hands the text to nushell's parser, which panics on some damaged input (`c%|%$.`:
    // "internal error: missing declaration", nu-protocol 0.115.1; a fuzz finding). A damaged
    // file is an error of this command, not the end of the shell.
    std::panic::catch_unwind(|| nuon::from_nuon(text, Some(span))).unwrap_or_else(|_| {
        refused(
            "Baseline cannot be parsed",
            "nushell's NUON parser failed on this text (it panicked; see its message above)"
                .to_string(),
        )
    })
}

/// The first duration literal in `text` whose nanoseconds do not fit an `i64`, if any.
///
/// nuon 0.115.1 multiplies `us` to `hr` literals into nanoseconds unchecked (a panic in a debug
/// build, a wrapped and wrong value in a release one: found by the `bench_baseline` fuzz target,
/// `{p50: 888888888888888888888 p95: 8888888888888sec}`); it checks `day` and `wk` itself, and
/// `ns` is the value as is. A literal of those units that is not a plain decimal number (hex,
/// octal, binary) is refused too: this cannot tell its size, and `aws bench --save` writes
/// none (it writes every duration in `ns`).
fn overflowing_duration(text: &str) -> Option<&str> {
    const UNITS: [(&str, f64); 6] = [
        ("us", 1e3),
        ("µs", 1e3),
        ("ms", 1e6),
        ("sec", 1e9),
        ("min", 60e9),
        ("hr", 3600e9),
    ];
    let separator = |c: char| c.is_whitespace() || ",:;|{}[]()\"'`#".contains(c);
    text.split(separator).find(|token| {
        let digits = token.trim_start_matches(['+', '-']);
        if !digits.starts_with(|c: char| c.is_ascii_digit()) {
            return false;
        }
        let lower = token.to_lowercase();
        let Some((unit, factor)) = UNITS.iter().find(|(unit, _)| lower.ends_with(unit)) else {
            return false;
        };
        let number = lower[..lower.len() - unit.len()].replace('_', "");
        match number.parse::<f64>() {
            // Below i64::MAX (about 9.22e18) with a margin for the parser's own rounding.
            Ok(n) => !(n.abs() * factor < 9.0e18),
            Err(_) => true,
        }
    })
}

/// The deepest nesting of `(` in the text, strings and comments included: a baseline holds no
/// strings (numbers, durations and a date), and a scanner that skipped strings would have to
/// agree with nushell's lexer on where each one ends (comments, raw strings) or be fooled.
/// An unmatched `)` never takes the depth below 0.
fn paren_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The p50 and p95 of a saved baseline, in nanoseconds (both positive: they divide).
pub(crate) fn percentiles(saved: &Value, name: &Spanned<String>) -> Result<(i64, i64), ShellError> {
    let field = |f: &str| {
        saved
            .get_data_by_key(f)
            .and_then(|v| v.as_duration().ok())
            .filter(|ns| *ns > 0)
            .ok_or_else(|| {
                ShellError::Generic(
                    GenericError::new(
                        format!("The baseline `{}` has no {f}", name.item),
                        "not a baseline saved by aws bench",
                        name.span,
                    )
                    .with_help("Save it again with --save.")
                    .with_code("nuaws::bench::bad_baseline"),
                )
            })
    };
    Ok((field("p50")?, field("p95")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Spanned<String> {
        Spanned {
            item: name.to_string(),
            span: Span::test_data(),
        }
    }

    #[test]
    fn names_are_plain_file_names() {
        for good in ["a", "list-instances", "s3_ls.v2", "A9"] {
            assert!(check_name(&named(good)).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "../x", "sp ace", &"x".repeat(101)] {
            assert!(check_name(&named(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn save_load_and_list() {
        let tmp = std::env::temp_dir().join(format!("nuaws-baseline-{}", std::process::id()));
        let dir = tmp.join("bench");
        let engine_state = EngineState::new();
        let value = Value::test_record(record! {
            "p50" => Value::test_duration(1_000_000),
            "iterations" => Value::test_int(10),
        });
        assert!(known(&dir).is_empty());
        save(&engine_state, &dir, &named("one"), &value).unwrap();
        save(&engine_state, &dir, &named("two"), &value).unwrap();
        assert_eq!(known(&dir), ["one", "two"]);
        let back = load(&dir, &named("one")).unwrap();
        assert_eq!(
            back.get_data_by_key("p50")
                .and_then(|v| v.as_duration().ok()),
            Some(1_000_000)
        );
        match load(&dir, &named("three")) {
            Err(ShellError::Generic(e)) => assert!(e.help.unwrap_or_default().contains("one, two")),
            other => panic!("{other:?}"),
        }
        fs::write(dir.join("bad.nuon"), "{p50: ").unwrap();
        assert!(load(&dir, &named("bad")).is_err());
        fs::write(dir.join("bad.nuon"), format!("{{p50: {}1ms{}}}", "(".repeat(30), ")".repeat(30))).unwrap();
        assert!(load(&dir, &named("bad")).is_err());
        let _ = fs::remove_dir_all(&tmp);
    }

    #[test]
    fn parentheses_are_counted_wherever_they_are() {
        assert_eq!(paren_depth("{p50: 1ms}"), 0);
        assert_eq!(paren_depth("((1))"), 2);
        assert_eq!(paren_depth("(()) ((( )))"), 3);
        assert_eq!(paren_depth(")))((("), 3, "an unmatched ) does not go below 0");
        // Quotes and comments hide nothing: nushell's lexer, not this count, decides what they
        // enclose (`# "` starts a comment to the end of its line, not a string).
        assert_eq!(paren_depth("# \"\n(((\"((("), 6);
    }

    #[test]
    fn deep_nesting_is_refused_before_the_parser_sees_it() {
        // A fuzz finding: 26 nested `(`, which nushell's parser would take minutes over
        // (nushell/nushell#13944). Refused with this error, so the parser never saw it.
        let finding = include_str!("../../../../fuzz/findings/bench_baseline-nested-parens-timeout");
        match parse(finding, Span::test_data()) {
            Err(ShellError::Generic(e)) => {
                assert_eq!(e.error, "Baseline nested too deeply");
                assert!(e.msg.contains("nested 26 deep"), "{}", e.msg);
            }
            other => panic!("{other:?}"),
        }
        let shallow = format!("{{p50: {}1ms{}}}", "(".repeat(MAX_PAREN_DEPTH), ")".repeat(MAX_PAREN_DEPTH));
        assert!(
            !matches!(parse(&shallow, Span::test_data()), Err(ShellError::Generic(ref e)) if e.error == "Baseline nested too deeply"),
            "depth {MAX_PAREN_DEPTH} is read"
        );
    }

    #[test]
    fn durations_beyond_an_i64_of_nanoseconds_are_refused_before_the_parser_sees_them() {
        // A fuzz finding: nuon multiplied 8,888,888,888,888 s into nanoseconds unchecked (a panic
        // in this debug build, a wrapped value in a release one).
        let finding = "{p50: 888888888888888888888 p95: 8888888888888sec}";
        match parse(finding, Span::test_data()) {
            Err(ShellError::Generic(e)) => {
                assert_eq!(e.error, "Baseline duration out of range");
                assert!(e.msg.contains("`8888888888888sec`"), "{}", e.msg);
            }
            other => panic!("{other:?}"),
        }
        for bad in ["3000000hr", "153722868min", "-9300000000sec", "9_300_000_000sec", "0xffffffffffsec", "1e300ms", "10000000000000000US"] {
            assert!(overflowing_duration(&format!("{{p50: {bad}}}")).is_some(), "{bad}");
        }
        // What fits is read, as the parser reads it: every unit, signs, underscores, fractions.
        for good in ["1ns", "9223372036854775807ns", "2000000hr", "-5min", "1_500ms", "1.5sec", "3day", "2wk", "p50", "12", "p95: 1ms"] {
            assert_eq!(overflowing_duration(&format!("{{p50: {good}}}")), None, "{good}");
        }
        let saved = parse("{p50: 2000000hr, p95: 1.5sec}", Span::test_data()).unwrap();
        assert_eq!(saved.get_data_by_key("p50").and_then(|v| v.as_duration().ok()), Some(2_000_000 * 3_600_000_000_000));
        assert_eq!(saved.get_data_by_key("p95").and_then(|v| v.as_duration().ok()), Some(1_500_000_000));
    }

    #[test]
    fn a_panic_of_the_parser_is_an_error() {
        // A fuzz finding: nushell's parser panics on this text ("missing declaration").
        match parse("c%|%$.", Span::test_data()) {
            Err(ShellError::Generic(e)) => assert_eq!(e.error, "Baseline cannot be parsed"),
            other => panic!("{other:?}"),
        }
    }
}
