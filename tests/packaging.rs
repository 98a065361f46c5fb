//! The packages, built and installed: `scripts/package deb --profile dev` installed with dpkg
//! into a clean Debian 12 root (debootstrap minbase, cached under ~/.cache/nuaws) and run there
//! against this binary's moto on loopback, then purged; and `scripts/package image` built with
//! buildah on a base imported from that root, loaded back from its OCI archive and run; and the
//! Homebrew formula `scripts/package brew` fills in, checked by `ruby -c` (brew itself is not
//! here).
//!
//! Needs root (debootstrap, chroot, dpkg into the root) and mount namespaces (a private /proc
//! for the chroot); where either is missing the tests say so on stderr and return.
//! `scripts/test` installs debootstrap, buildah and cargo-deb.

#[path = "support/moto.rs"]
mod moto;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use moto::{Moto, repo_root, seed_once};

/// Buckets in this binary's moto: the one seed-s3 makes and its two extras.
const BUCKETS: &str = "3";
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Not captured by the test harness: skips and measurements show in CI's log.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "packaging: {msg}");
}

/// Why these tests cannot run here, if they cannot.
fn unsupported() -> Option<String> {
    if std::env::var_os("LLVM_PROFILE_FILE").is_some() {
        // The packaged binary runs in a root that cannot see the target dir, so it could not
        // add to the figure, and would leave its profile in the root the purge check inspects.
        return Some("SKIPPED: a coverage run (scripts/coverage): the packaged binary is the instrumented one".into());
    }
    let uid = run(Command::new("id").arg("-u"));
    if uid.trim() != "0" {
        return Some(format!("SKIPPED: needs root (debootstrap, chroot, dpkg into a root); running as uid {}", uid.trim()));
    }
    let ns = Command::new("unshare").args(["--mount", "--fork", "true"]).status();
    if !ns.is_ok_and(|s| s.success()) {
        return Some("SKIPPED: no mount namespaces (`unshare --mount` failed): the chroot cannot get a private /proc".into());
    }
    None
}

/// True, having said why on stderr, where these tests cannot run.
fn skipped() -> bool {
    unsupported().inspect(|why| say(why)).is_some()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn last_line(text: &str) -> String {
    text.lines().last().unwrap_or_default().trim().to_string()
}

/// A fresh directory for one test's artifacts, under the target dir: one per name, emptied by the
/// next run (a .deb and an image archive are 35 and 145 MB; they do not pile up).
fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("packaging-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `scripts/package deb --profile dev` of the binary this test run built, once per binary.
fn dev_deb() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        // cargo test built target/debug/nuaws; `cargo build --bin nuaws` alone would resolve
        // features differently and rebuild the SDK crates, so package this one as it is.
        let bin = Path::new(env!("CARGO_BIN_EXE_nuaws"));
        assert!(bin.ends_with("debug/nuaws"), "expected the dev binary, got {}", bin.display());
        let started = Instant::now();
        let target = bin.parent().and_then(Path::parent).expect("target dir");
        let out = run(Command::new(repo_root().join("scripts/package"))
            .env("CARGO_TARGET_DIR", target)
            .args(["deb", "--profile", "dev", "--no-build", "--out"])
            .arg(tmp("deb")));
        let deb = PathBuf::from(last_line(&out));
        assert!(deb.extension().is_some_and(|e| e == "deb"), "scripts/package deb printed {out:?}");
        say(&format!("built {} in {:.0?}", deb.display(), started.elapsed()));
        deb
    })
}

/// The cached clean Debian 12 root (made on first use).
fn debian_root(image: bool) -> String {
    let started = Instant::now();
    let mut cmd = Command::new(repo_root().join("tests/support/debian-root.sh"));
    if image {
        cmd.arg("--image");
    }
    let out = last_line(&run(&mut cmd));
    say(&format!("{} ready in {:.0?}", out, started.elapsed()));
    out
}

fn moto_env(moto: &Moto) -> Vec<(&'static str, String)> {
    seed_once("packaging", || {
        moto.harness("seed-s3", &["--bucket", "pkg", "--objects", "1", "--prefixes", "1", "--extra-buckets", "2"]);
    });
    vec![
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("NUAWS_CACHE", "off".into()),
    ]
}

/// Runs `args` chrooted into `root`, with a fresh /proc in a mount namespace of its own (gone
/// when the command ends) and only the given environment.
fn in_root(root: &Path, env: &[(&str, String)], args: &[&str]) -> String {
    // A home of its own under /tmp: what nuaws writes there is the user's, not the package's.
    std::fs::create_dir_all(root.join("tmp/home")).expect("home");
    let mut cmd = Command::new("unshare");
    cmd.env_clear()
        .env("PATH", PATH)
        .env("HOME", "/tmp/home")
        .env("LANG", "C.UTF-8")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["--mount", "--fork", "sh", "-c", r#"mount -t proc proc "$0/proc" && exec chroot "$0" "$@""#])
        .arg(root)
        .args(args);
    run(&mut cmd)
}

/// Every path under `root`, relative, but /proc, /dev, /tmp and dpkg's own records and log.
fn tree(root: &Path) -> BTreeSet<String> {
    let out = run(Command::new("find").arg(".").current_dir(root));
    out.lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .filter(|p| {
            !["proc/", "dev/", "tmp/", "var/lib/dpkg/", "var/log/dpkg.log", "var/cache/debconf/"]
                .iter()
                .any(|skip| p.starts_with(skip))
        })
        .collect()
}

#[test]
fn deb_installs_runs_and_purges_in_a_clean_debian_root() {
    if skipped() {
        return;
    }
    let started = Instant::now();
    let deb = dev_deb();
    let cached = debian_root(false);
    let root = tmp("root").join("root");
    run(Command::new("cp").args(["-a", &cached]).arg(&root));

    // The one dependency minbase lacks, from the root's own apt, offline (its .debs are cached).
    let depends = run(Command::new("dpkg-deb").args(["-f"]).arg(deb).arg("Depends"));
    assert!(depends.contains("libc6 (>=") && depends.contains("ca-certificates"), "Depends: {depends:?}");
    in_root(&root, &[], &["apt-get", "install", "-y", "-qq", "--no-download", "ca-certificates"]);
    let before = tree(&root);

    // dpkg -i, not apt: it fails if a Depends (shlibdeps computed the libraries) is unmet.
    std::fs::copy(deb, root.join("tmp/nuaws.deb")).expect("copy deb");
    in_root(&root, &[], &["dpkg", "-i", "/tmp/nuaws.deb"]);
    std::fs::remove_file(root.join("tmp/nuaws.deb")).expect("rm deb");

    let version = in_root(&root, &[], &["nuaws", "-c", "version | get nushell_version"]);
    assert_eq!(version.trim(), "0.115.1");
    let moto = Moto::shared();
    let buckets = in_root(&root, &moto_env(moto), &["nuaws", "-c", "aws s3 buckets | length"]);
    assert_eq!(buckets.trim(), BUCKETS, "aws s3 buckets from the chroot against {}", moto.endpoint);

    let shells = std::fs::read_to_string(root.join("etc/shells")).expect("/etc/shells");
    assert!(shells.lines().any(|l| l == "/usr/bin/nuaws"), "/etc/shells:\n{shells}");
    let man = run(Command::new("zcat").arg(root.join("usr/share/man/man1/nuaws.1.gz")));
    assert!(man.starts_with(".TH NUAWS 1 "), "man page header: {:?}", &man[..man.len().min(80)]);
    assert!(man.contains("\\-\\-commands") && man.contains(".B aws s3 buckets"), "man page lacks the help text");

    let files: Vec<String> = in_root(&root, &[], &["dpkg-query", "-L", "nuaws"])
        .lines()
        .map(|l| l.trim_start_matches('/').to_string())
        .filter(|p| !p.is_empty() && !root.join(p).is_dir())
        .collect();
    assert!(files.iter().any(|f| f == "usr/bin/nuaws"), "dpkg -L nuaws: {files:?}");

    in_root(&root, &[], &["dpkg", "--purge", "nuaws"]);
    let left: Vec<&String> = files.iter().filter(|f| root.join(f).exists()).collect();
    assert!(left.is_empty(), "left behind by dpkg --purge: {left:?}");
    let shells = std::fs::read_to_string(root.join("etc/shells")).expect("/etc/shells");
    assert!(!shells.contains("nuaws"), "/etc/shells after purge:\n{shells}");
    let after = tree(&root);
    let added: Vec<_> = after.difference(&before).collect();
    let removed: Vec<_> = before.difference(&after).collect();
    assert!(added.is_empty() && removed.is_empty(), "the root changed: added {added:?}, removed {removed:?}");
    let _ = std::fs::remove_dir_all(&root);
    say(&format!("deb test done in {:.0?}", started.elapsed()));
}

#[test]
fn image_built_with_buildah_answers_aws_s3_from_its_entrypoint() {
    if skipped() {
        return;
    }
    let started = Instant::now();
    let deb = dev_deb();
    let base = debian_root(true);
    let out = run(Command::new(repo_root().join("scripts/package"))
        .args(["image", "--profile", "dev", "--no-build", "--base", &base, "--deb"])
        .arg(deb)
        .arg("--out")
        .arg(tmp("image")));
    let archive = PathBuf::from(last_line(&out));
    assert!(archive.to_string_lossy().ends_with(".oci.tar"), "scripts/package image printed {out:?}");
    let archive_size = std::fs::metadata(&archive).expect("archive").len();

    // From the archive, as `podman load` would: the artifact, not buildah's local copy.
    let ctr = last_line(&run(Command::new("buildah").args(["from", "-q"]).arg(format!("oci-archive:{}", archive.display()))));
    let inspect: serde_json::Value =
        serde_json::from_str(&run(Command::new("buildah").args(["inspect", &ctr]))).expect("buildah inspect");
    // The container, and the name the archive gave the image (its layers stay: the build's tag).
    struct Rm(String, String);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = Command::new("buildah").args(["rm", &self.0]).output();
            let _ = Command::new("buildah").args(["rmi", &self.1]).output();
        }
    }
    let _rm = Rm(ctr.clone(), inspect["FromImage"].as_str().unwrap_or_default().to_string());
    let config = &inspect["OCIv1"]["config"];
    assert_eq!(config["Entrypoint"], serde_json::json!(["/usr/bin/nuaws"]), "config: {config}");
    assert_eq!(config["User"], "nuaws", "config: {config}");
    assert!(
        config["Env"].as_array().is_some_and(|e| e.iter().any(|v| v == "SHELL=/usr/bin/nuaws")),
        "config: {config}"
    );

    // `IMAGE -c '...'`: the entrypoint with -c, as the image's user.
    let moto = Moto::shared();
    let container = |cmdline: &str, env: &[(&str, String)]| {
        let mut cmd = Command::new("buildah");
        cmd.args(["run", "--isolation", "chroot"]);
        for (k, v) in env {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        cmd.arg(&ctr).arg("--").arg("/usr/bin/nuaws").args(["-c", cmdline]);
        run(&mut cmd).trim().to_string()
    };
    assert_eq!(container("aws s3 buckets | length", &moto_env(moto)), BUCKETS);
    assert_ne!(container("^id -u", &[]), "0", "the image runs as root");
    assert_eq!(container("'/etc/ssl/certs/ca-certificates.crt' | path exists", &[]), "true");

    let tag = format!("localhost/nuaws:{}-dev", env!("CARGO_PKG_VERSION"));
    let size = last_line(&run(Command::new("buildah").args(["images", "--format", "{{.Size}}", &tag])));
    let base_size = last_line(&run(Command::new("buildah").args(["images", "--format", "{{.Size}}", &base])));
    say(&format!(
        "image (dev binary) {tag}: {size} (base {base}: {base_size}), OCI archive {:.1} MB; test done in {:.0?}",
        archive_size as f64 / 1e6,
        started.elapsed()
    ));
}

#[test]
fn brew_formula_names_the_source_tarball_it_was_made_with_and_parses() {
    let out = run(Command::new(repo_root().join("scripts/package")).args(["brew", "--out"]).arg(tmp("brew")));
    let formula = PathBuf::from(last_line(&out));
    let tarball = formula.with_file_name(format!("nuaws-{}.tar.gz", env!("CARGO_PKG_VERSION")));
    let text = std::fs::read_to_string(&formula).expect("formula");
    let sha = run(Command::new("sha256sum").arg(&tarball));
    let sha = sha.split_whitespace().next().expect("sha256sum");
    assert!(text.contains(&format!("  sha256 \"{sha}\"\n")), "formula lacks sha256 {sha}:\n{text}");
    assert!(text.contains(&format!("  url \"file://{}\"\n", tarball.display())), "formula url:\n{text}");
    // The tarball builds with cargo: the manifest, the lock file, the sources, the man page script.
    let files = run(Command::new("tar").arg("-tzf").arg(&tarball));
    for want in ["Cargo.toml", "Cargo.lock", "src/main.rs", "crates/aws-core/Cargo.toml", "packaging/man/nuaws-man"] {
        let path = format!("nuaws-{}/{want}", env!("CARGO_PKG_VERSION"));
        assert!(files.lines().any(|l| l == path), "{path} not in {}", tarball.display());
    }
    let ruby = Command::new("ruby").arg("-c").arg(&formula).output();
    let ruby = ruby.unwrap_or_else(|e| panic!("ruby -c (scripts/test installs ruby): {e}"));
    assert!(ruby.status.success() && String::from_utf8_lossy(&ruby.stdout).contains("Syntax OK"), "ruby -c: {ruby:?}");
}
