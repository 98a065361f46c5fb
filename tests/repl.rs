//! The real REPL in a real terminal (tmux), against a moto server on loopback: it warms the cache
//! at start and on a region change, applies nuaws's default config, Tab after `aws s3 ls s3://`
//! shows the bucket names, and a long bulk job shows its progress line (and erases it).

#[path = "support/moto.rs"]
mod moto;

use std::process::Command;
use std::time::{Duration, Instant};

use moto::Moto;
use nuaws_test_servers::{FaultConfig, FaultProxy};

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux is installed (scripts/test installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// nuaws running in a tmux session of its own, killed on drop.
struct Repl {
    session: String,
}

impl Repl {
    fn start(name: &str, env: Vec<(String, String)>, home: &std::path::Path) -> Repl {
        std::fs::create_dir_all(home).unwrap();
        let session = format!("nuaws-{name}-{}", std::process::id());
        let mut command = format!("env -i PATH=/usr/bin:/bin TERM=xterm-256color HOME={} ", home.display());
        for (k, v) in env.into_iter().chain(moto::llvm_profile_env()) {
            if k != "HOME" {
                command.push_str(&format!("{k}={v} "));
            }
        }
        command.push_str(env!("CARGO_BIN_EXE_nuaws"));
        tmux(&["new-session", "-d", "-s", &session, "-x", "160", "-y", "40", &command]);
        let repl = Repl { session };
        repl.wait_for("> ", None); // the prompt
        repl
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        tmux(&args);
    }

    fn screen(&self) -> String {
        tmux(&["capture-pane", "-t", &self.session, "-p"])
    }

    /// Waits until the screen shows `what`, sending `keys` before each look.
    fn wait_for(&self, what: &str, keys: Option<&[&str]>) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(keys) = keys {
                self.send(keys);
            }
            std::thread::sleep(Duration::from_millis(200));
            let screen = self.screen();
            if screen.contains(what) {
                return screen;
            }
            assert!(Instant::now() < deadline, "`{what}` never appeared:\n{screen}");
        }
    }
}

impl Drop for Repl {
    fn drop(&mut self) {
        // `exit` first, so the shell ends as a user's would (an instrumented binary writes its
        // coverage profile only then); the kill is for a shell that does not.
        self.send(&["C-c", "exit", "Enter"]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && Command::new("tmux").args(["has-session", "-t", &self.session]).status().is_ok_and(|s| s.success()) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.session]).output();
    }
}

#[test]
fn the_repl_warms_the_cache_and_tab_shows_bucket_names() {
    let moto = Moto::start(&[]);
    moto.harness("seed-s3", &["--bucket", "alpha-logs", "--objects", "0"]);
    moto.harness("seed-s3", &["--bucket", "beta-data", "--objects", "0"]);
    let repl = Repl::start("warm", moto.cached_env(&moto.dir.join("repl-cache")), &moto.dir.join("repl-home"));

    // The shell started with AWS configured: it warms the cache in the background, with no
    // command typed.
    let warmed = "aws cache ls | get operation | sort | uniq | str join ,";
    repl.send(&[warmed, "Enter"]);
    repl.wait_for("DescribeInstances,DescribeRegions,DescribeSecurityGroups,DescribeSubnets,DescribeVpcs,ListBuckets", Some(&["Up", "Enter"]));
    repl.send(&["clear", "Enter"]);

    // nuaws's default config is applied: Nushell's own completion cache is off.
    repl.send(&["$'cache size: ($env.config.completions.cache_size)'", "Enter"]);
    repl.wait_for("cache size: 0", None);

    repl.send(&["aws s3 ls s3://"]);
    // Tab, and again until the names are there (the first Tab may come before the listing).
    let screen = repl.wait_for("s3://beta-data/", Some(&["Tab"]));
    assert!(screen.contains("s3://alpha-logs/"), "{screen}");
    repl.send(&["C-u"]);

    // Switching region warms that region too.
    repl.send(&["$env.AWS_REGION = 'eu-west-1'", "Enter"]);
    let regions = "aws cache ls | get region | sort | uniq | str join ,";
    repl.send(&[regions, "Enter"]);
    repl.wait_for("eu-west-1,us-east-1", Some(&["Up", "Enter"]));
}

#[test]
fn a_long_bulk_job_shows_its_progress_on_the_terminal_and_erases_it() {
    let moto = Moto::start(&[]);
    moto.harness("seed-s3", &["--bucket", "progress", "--objects", "40", "--prefixes", "1"]);
    // 40 heads, 2 at a time, 300 ms each: about 6 s, long enough for the line to show.
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::latency(Duration::from_millis(300))).expect("proxy");
    let mut env = moto.client_env();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint()));
    let repl = Repl::start("progress", env, &moto.dir.join("progress-home"));
    repl.send(&["aws s3 ls s3://progress -R | aws s3 head --concurrency 2 | length | $'heads: ($in)'", "Enter"]);
    let screen = repl.wait_for("head: ", None);
    assert!(screen.contains("done,") && screen.contains("(limit 2)"), "{screen}");
    let screen = repl.wait_for("heads: 40", None);
    assert!(!screen.contains("head: "), "the progress line is erased when the job ends:\n{screen}");
}
