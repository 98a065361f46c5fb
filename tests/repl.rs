//! The real REPL in a real terminal (tmux), against a moto server on loopback: it warms the cache
//! at start and on a region change, applies nuaws's default config, and Tab after
//! `aws s3 ls s3://` shows the bucket names.

#[path = "support/moto.rs"]
mod moto;

use std::process::Command;
use std::time::{Duration, Instant};

use moto::Moto;

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux is installed (scripts/test installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_repl_warms_the_cache_and_tab_shows_bucket_names() {
    let moto = Moto::start(&[]);
    moto.harness("seed-s3", &["--bucket", "alpha-logs", "--objects", "0"]);
    moto.harness("seed-s3", &["--bucket", "beta-data", "--objects", "0"]);
    let home = moto.dir.join("repl-home");
    std::fs::create_dir_all(&home).unwrap();
    let session = format!("nuaws-test-{}", std::process::id());
    let mut command = format!("env -i PATH=/usr/bin:/bin TERM=xterm-256color HOME={} ", home.display());
    for (k, v) in moto.cached_env(&moto.dir.join("repl-cache")) {
        if k != "HOME" {
            command.push_str(&format!("{k}={v} "));
        }
    }
    command.push_str(env!("CARGO_BIN_EXE_nuaws"));
    tmux(&["new-session", "-d", "-s", &session, "-x", "160", "-y", "40", &command]);
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).output();
        }
    }
    let _kill = Kill(session.clone());

    let wait_for = |what: &str, keys: Option<&[&str]>| -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(keys) = keys {
                let mut args = vec!["send-keys", "-t", session.as_str()];
                args.extend_from_slice(keys);
                tmux(&args);
            }
            std::thread::sleep(Duration::from_millis(500));
            let screen = tmux(&["capture-pane", "-t", &session, "-p"]);
            if screen.contains(what) {
                return screen;
            }
            assert!(Instant::now() < deadline, "`{what}` never appeared:\n{screen}");
        }
    };
    wait_for("> ", None); // the prompt

    // The shell started with AWS configured: it warms the cache in the background, with no
    // command typed.
    let warmed = "aws cache ls | get operation | sort | uniq | str join ,";
    tmux(&["send-keys", "-t", &session, warmed, "Enter"]);
    wait_for("DescribeInstances,DescribeRegions,DescribeSecurityGroups,DescribeSubnets,DescribeVpcs,ListBuckets", Some(&["Up", "Enter"]));
    tmux(&["send-keys", "-t", &session, "clear", "Enter"]);

    // nuaws's default config is applied: Nushell's own completion cache is off.
    tmux(&["send-keys", "-t", &session, "$'cache size: ($env.config.completions.cache_size)'", "Enter"]);
    wait_for("cache size: 0", None);

    tmux(&["send-keys", "-t", &session, "aws s3 ls s3://"]);
    // Tab, and again until the names are there (the first Tab may come before the listing).
    let screen = wait_for("s3://beta-data/", Some(&["Tab"]));
    assert!(screen.contains("s3://alpha-logs/"), "{screen}");
    tmux(&["send-keys", "-t", &session, "C-u"]);

    // Switching region warms that region too.
    tmux(&["send-keys", "-t", &session, "$env.AWS_REGION = 'eu-west-1'", "Enter"]);
    let regions = "aws cache ls | get region | sort | uniq | str join ,";
    tmux(&["send-keys", "-t", &session, regions, "Enter"]);
    wait_for("eu-west-1,us-east-1", Some(&["Up", "Enter"]));
}
