//! Test support: a real moto S3/EC2 server on a free loopback port, started once per test
//! binary and stopped when the binary exits (the server also exits when our end of its stdin
//! closes, so a crashed test run leaves nothing behind). Seeding and reference listings go through
//! `harness.py` with boto3, an independent client to compare nuaws against.
//!
//! Not a mock: nothing here answers AWS requests itself.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("tests/support/harness.py").exists() {
        if !dir.pop() {
            panic!("cannot find tests/support/harness.py above {}", env!("CARGO_MANIFEST_DIR"));
        }
    }
    dir
}

/// `LLVM_PROFILE_FILE` of this test process, if set, for a child started with `env_clear()`:
/// under `scripts/coverage` the `nuaws` binary is instrumented and writes its profile where
/// cargo-llvm-cov says, so the end-to-end tests count. Empty in an ordinary run.
pub fn llvm_profile_env() -> Vec<(String, String)> {
    std::env::var("LLVM_PROFILE_FILE").map(|path| vec![("LLVM_PROFILE_FILE".to_string(), path)]).unwrap_or_default()
}

/// The venv python with moto and boto3, installed on first use (pinned, idempotent).
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let script = repo_root().join("tests/support/setup-venv.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("run setup-venv.sh");
        assert!(out.status.success(), "setup-venv.sh failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(stdout.lines().last().expect("setup-venv.sh prints the python path").trim())
    })
}

pub struct Moto {
    child: Mutex<Child>,
    pub endpoint: String,
    pub log: PathBuf,
    pub dir: PathBuf,
}

impl Moto {
    /// The server shared by the tests of this binary.
    pub fn shared() -> &'static Moto {
        static MOTO: OnceLock<Moto> = OnceLock::new();
        MOTO.get_or_init(|| Moto::start(&[]))
    }

    /// A server of one's own, with extra environment (e.g. moto's auth switch).
    pub fn start(env: &[(&str, &str)]) -> Moto {
        let base = option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let dir = base.join(format!(
            "nuaws-moto-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port_file = dir.join("port");
        let log = dir.join("requests.jsonl");
        let mut cmd = Command::new(python());
        cmd.arg(repo_root().join("tests/support/harness.py"))
            .args(["serve", "--port-file"])
            .arg(&port_file)
            .arg("--log-requests")
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start moto");
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                if let Ok(port) = text.trim().parse::<u16>() {
                    break port;
                }
            }
            assert!(Instant::now() < deadline, "moto did not start within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        };
        Moto {
            child: Mutex::new(child),
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            dir,
        }
    }

    /// Runs a harness subcommand against this server; returns its JSON output.
    pub fn harness(&self, sub: &str, args: &[&str]) -> serde_json::Value {
        let out = Command::new(python())
            .arg(repo_root().join("tests/support/harness.py"))
            .arg(sub)
            .args(["--endpoint", &self.endpoint])
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .expect("run harness.py");
        assert!(out.status.success(), "harness.py {sub} {args:?} failed");
        serde_json::from_slice(&out.stdout).expect("harness.py prints JSON")
    }

    /// Requests the server has logged so far for operation `op` whose path contains `needle`.
    pub fn requests(&self, op: &str, needle: &str) -> usize {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["op"] == op && e["path"].as_str().is_some_and(|p| p.contains(needle)))
            .count()
    }

    /// Environment for a client of this server: dummy credentials, a fixed region, no config
    /// files, the instance metadata service switched off (it is not on loopback), and the result
    /// cache off: tests that share a server must see what it holds now. Cache tests turn it on
    /// with [`Moto::cached_env`].
    pub fn client_env(&self) -> Vec<(String, String)> {
        let home = self.dir.join("home");
        std::fs::create_dir_all(&home).expect("home");
        [
            ("NUAWS_CACHE", "off"),
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", home.join("aws-config").to_str().unwrap_or_default()),
            ("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials").to_str().unwrap_or_default()),
            ("HOME", home.to_str().unwrap_or_default()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Moto {
    /// Runs `script` with the `nuaws` binary at `bin` (a test's `env!("CARGO_BIN_EXE_nuaws")`),
    /// in `cwd`, as a client of this server reached through `endpoint` (itself, or a proxy).
    pub fn nuaws_at(&self, bin: &str, endpoint: &str, cwd: &Path, script: &str) -> std::process::Output {
        self.nuaws_with(bin, self.client_env(), endpoint, cwd, script)
    }

    /// [`Moto::nuaws_at`] with the environment `env` (say, [`Moto::cached_env`]).
    pub fn nuaws_with(&self, bin: &str, mut env: Vec<(String, String)>, endpoint: &str, cwd: &Path, script: &str) -> std::process::Output {
        std::fs::create_dir_all(cwd).expect("cwd");
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        Command::new(bin)
            .current_dir(cwd)
            .args(["--no-config-file", "--error-style", "plain", "-c", script])
            .env_clear()
            .envs(llvm_profile_env())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .envs(env)
            .env("AWS_ENDPOINT_URL", endpoint)
            .output()
            .expect("run nuaws")
    }

    /// The table `script` gives (through `endpoint`), as JSON rows; the script must succeed.
    pub fn table_at(&self, bin: &str, endpoint: &str, script: &str) -> Vec<serde_json::Value> {
        let script = format!("{script} | to json --raw");
        let out = self.nuaws_at(bin, endpoint, &self.dir.join("cwd"), &script);
        assert!(out.status.success(), "`{script}` failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        match serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("`{script}` gave no JSON ({e}): {text}")) {
            serde_json::Value::Array(rows) => rows,
            other => panic!("not a table: {other}"),
        }
    }

    /// [`Moto::client_env`] with the cache on, in a directory of its own.
    pub fn cached_env(&self, cache_dir: &Path) -> Vec<(String, String)> {
        let mut env = self.client_env();
        env.retain(|(k, _)| k != "NUAWS_CACHE");
        env.push(("NUAWS_CACHE_DIR".into(), cache_dir.to_string_lossy().into_owned()));
        env
    }
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Drop for Moto {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Seeds `what` once per test binary (seeding 10,000 objects takes a while).
pub fn seed_once(key: &'static str, f: impl FnOnce()) {
    static DONE: OnceLock<Mutex<Vec<&'static str>>> = OnceLock::new();
    let done = DONE.get_or_init(Default::default);
    let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
    if !done.contains(&key) {
        f();
        done.push(key);
    }
}

/// A loopback proxy to `target` that holds every request for `delay` before forwarding it.
pub fn slow_proxy(target: &str, delay: Duration) -> String {
    let target = target.trim_start_matches("http://").to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let target = target.clone();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let Ok(server) = std::net::TcpStream::connect(&target) else { return };
                let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = std::io::Read::read(&mut from, &mut buf) {
                            if n == 0 || std::io::Write::write_all(&mut to, &buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    })
                };
                if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                    pipe(c2, server);
                    pipe(s2, client);
                }
            });
        }
    });
    format!("http://{addr}")
}


