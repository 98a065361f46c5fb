//! The entry points of the fuzz targets in `fuzz/` for what the shell side parses (one function
//! per target, taking the raw input bytes), so that the targets and the tests that replay their
//! corpora (`tests/fuzz_corpus.rs`) call the same code: the `$env.NUAWS_*` settings and EC2
//! filter records (Nushell values, built from the bytes), and `aws bench` baselines (NUON text
//! from the disk). Each panics when a property of the answer fails.
//!
//! Not for: anything but fuzzing. Hidden from the docs; nothing in nuaws calls it.

use std::sync::OnceLock;

use aws_core::engine::EngineSettings;
use aws_core::fuzzing::Choices;
use nu_protocol::engine::{EngineState, Stack};
use nu_protocol::{Record, Span, Spanned, Value};

/// Names a record built from fuzz input is likely to hold: the settings nuaws reads, the
/// resources of the TTL policy, EC2 filter names.
const NAMES: &[&str] = &[
    "url", "key_file", "key_env", "username", "password_env", "deadline", "lease", "ca_file", "roles", "recheck",
    "tracking", "min_concurrency",
    "max_concurrency", "initial_concurrency", "dedup_window", "max_attempts", "attempt_timeout",
    "fail_fast", "ordered", "progress", "instances", "images", "buckets", "objects", "regions",
    "tag:Env", "instance-state-name", "a=b", "p50", "p95",
];
/// Strings likewise.
const WORDS: &[&str] = &[
    "redis://127.0.0.1:6379", "rediss://cache.internal:6379", "redis://u:p@h", "redis://", "http://h",
    "NUAWS_FUZZ_KEY", "NUAWS_FUZZ_EMPTY", "running", "a,b", "b=c", "off", "0", "no", "",
];

/// A key file the `key_file` setting may name (32 bytes and a newline), written once.
fn key_file() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("nuaws-fuzz-team-{}.key", std::process::id()));
        let _ = std::fs::write(&path, "0123456789abcdef0123456789abcdef\n");
        path.to_string_lossy().into_owned()
    })
}

/// Builds a Nushell value from fuzz input. Every value gets a span of its own, so a test can
/// see which one an error points at. `key_file` and `ca_file` only ever name a file the target
/// wrote or one that does not exist: any other path would have the target read the machine's
/// files.
struct Values<'a> {
    choices: Choices<'a>,
    next_span: usize,
}

impl Values<'_> {
    fn span(&mut self) -> Span {
        self.next_span += 1;
        Span::new(self.next_span, self.next_span + 1)
    }

    fn value(&mut self, depth: usize) -> Value {
        let span = self.span();
        let c = &mut self.choices;
        match c.byte() % 11 {
            0 => Value::nothing(span),
            1 => Value::bool(c.byte() % 2 == 1, span),
            2 => Value::int(c.u64() as i64, span),
            3 => Value::int(i64::from(c.byte()) - 8, span),
            4 => Value::duration(c.u64() as i64, span),
            5 => Value::duration((i64::from(c.byte()) - 8) * 1_000_000, span),
            6 => Value::float(f64::from_bits(c.u64()), span),
            7 => Value::filesize(c.u64() as i64, span),
            8 if depth < 4 => {
                let n = c.byte() % 5;
                let items = (0..n).map(|_| self.value(depth + 1)).collect();
                Value::list(items, span)
            }
            9 if depth < 4 => self.record(depth),
            _ => Value::string(c.word(WORDS, 40), span),
        }
    }

    fn record(&mut self, depth: usize) -> Value {
        let span = self.span();
        let n = self.choices.byte() % 6;
        let mut record = Record::new();
        for _ in 0..n {
            let name = self.choices.word(NAMES, 16);
            let value = if name == "key_file" || name == "ca_file" {
                let at = self.span();
                let path = if self.choices.byte() % 2 == 0 { key_file() } else { "/nonexistent/nuaws-fuzz.key" };
                Value::string(path, at)
            } else {
                self.value(depth + 1)
            };
            record.insert(name, value);
        }
        Value::record(record, span)
    }
}

fn values(data: &[u8]) -> Values<'_> {
    Values {
        choices: Choices::new(data),
        next_span: 0,
    }
}

/// `$env.NUAWS_CACHE_TTL`, `$env.NUAWS_SHARED_CACHE`, `$env.NUAWS_ENGINE` and
/// `$env.NUAWS_CACHE`, as a user may set them: whatever the value, reading it is a setting or
/// an error, never a panic; an engine setting that is accepted is within its bounds.
pub fn settings(data: &[u8]) {
    let mut v = values(data);
    let which = v.choices.byte() % 4;
    let value = if v.choices.byte() % 4 == 0 { v.value(0) } else { v.record(0) };
    let engine_state = EngineState::new();
    let mut stack = Stack::new();
    stack.add_env_var("NUAWS_FUZZ_KEY".into(), Value::test_string("0123456789abcdef0123456789abcdef"));
    stack.add_env_var("NUAWS_FUZZ_EMPTY".into(), Value::test_string(""));
    match which {
        0 => {
            stack.add_env_var("NUAWS_CACHE_TTL".into(), value);
            let _ = crate::context::policy(&engine_state, &stack);
        }
        1 => {
            stack.add_env_var("NUAWS_SHARED_CACHE".into(), value);
            let _ = crate::shared_setting::env_shared_config(&engine_state, &stack);
        }
        2 => {
            let mut settings = EngineSettings::default();
            let mut progress = true;
            if crate::engine::bulk::apply_engine_env(&value, &mut settings, &mut progress).is_ok() {
                for n in [settings.limits.min, settings.limits.max, settings.limits.initial] {
                    assert!((1..=4096).contains(&n), "a concurrency of {n} accepted");
                }
                assert!(settings.job.max_attempts >= 1);
            }
        }
        _ => {
            stack.add_env_var("NUAWS_CACHE".into(), value.clone());
            stack.add_env_var("NUAWS_CACHE_DIR".into(), value);
            let _ = crate::context::cache_off(&engine_state, &stack);
            let _ = crate::context::cache_dir(&engine_state, &stack);
        }
    }
}

/// EC2 filter records (`aws ec2 instances --filter {tag:Env: prod}`): two records from the
/// input; either is filters or an error, and two records whose filters differ never share a
/// cache key (else one would be answered with the other's cached listing).
pub fn ec2_filters(data: &[u8]) {
    use crate::ec2::listing::{filter_param, filters_from_record};

    let mut v = values(data);
    let (a, b) = (v.record(0), v.record(0));
    let (Ok(a), Ok(b)) = (filters_from_record(&a), filters_from_record(&b)) else {
        return;
    };
    let params = |filters: &[aws_core::ec2::Filter]| {
        let mut params: Vec<String> = filters.iter().map(filter_param).collect();
        params.sort();
        params
    };
    let sorted = |mut filters: Vec<aws_core::ec2::Filter>| {
        filters.sort_by(|x, y| (&x.name, &x.values).cmp(&(&y.name, &y.values)));
        filters
    };
    if params(&a) == params(&b) {
        assert_eq!(sorted(a), sorted(b), "different filters share a cache key");
    }
}

/// An `aws bench` baseline file as read from the disk (damaged, or written by hand): it is a
/// baseline with two positive percentiles or an error, never a panic.
pub fn bench_baseline(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // Read with read_to_string: not UTF-8 is an I/O error before any parsing.
    };
    let name = Spanned {
        item: "fuzz".to_string(),
        span: Span::new(0, 4),
    };
    // `parse` catches the panics of nushell's parser (an error, not the end of the shell), but
    // libFuzzer's panic hook aborts at every panic, caught or not: around `parse` a silent hook
    // stands in. A panic that `parse` lets out is resumed, and libfuzzer-sys aborts on it.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let parsed = std::panic::catch_unwind(|| crate::metrics::baseline::parse(text, name.span));
    std::panic::set_hook(hook);
    let Ok(saved) = parsed.unwrap_or_else(|panic| std::panic::resume_unwind(panic)) else {
        return;
    };
    if let Ok((p50, p95)) = crate::metrics::baseline::percentiles(&saved, &name) {
        assert!(p50 > 0 && p95 > 0);
    }
}
