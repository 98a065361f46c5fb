//! Test support: a real `redis-server` (Debian's package; `scripts/test` installs it) on a free
//! loopback port, one per test, never the system service: no persistence, killed when dropped.
//! `redis-cli` inspects and tampers with what it holds.
//!
//! Not a mock: nothing here answers Redis commands itself.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Redis {
    child: Mutex<Option<Child>>,
    pub port: u16,
    pub dir: PathBuf,
}

impl Redis {
    /// Starts a server on a free loopback port and waits until it answers PING.
    pub fn start() -> Redis {
        let base = option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
        for attempt in 0..5 {
            // A port the kernel just gave out and took back: free unless someone races us for it.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let dir = base.join(format!("nuaws-redis-{}-{port}-{attempt}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("redis dir");
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start redis-server (apt-get install redis-server; scripts/test does)");
            let redis = Redis {
                child: Mutex::new(Some(child)),
                port,
                dir,
            };
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until {
                if redis.try_cli(&["PING"]).as_deref() == Some("PONG") {
                    return redis;
                }
                if redis.exited() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server did not start");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn exited(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        child.as_mut().is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `redis-cli ARGS` (raw output: not a terminal), which must succeed.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args).unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
    }

    /// The raw bytes of `GET key`.
    pub fn get_bytes(&self, key: &str) -> Vec<u8> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw", "GET", key])
            .output()
            .expect("redis-cli");
        out.stdout
    }

    /// Every key, by `redis-cli --scan`.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.cli(&["--scan"]).lines().map(str::to_string).filter(|k| !k.is_empty()).collect();
        keys.sort();
        keys
    }

    /// Runs a Lua script over `keys` inside Redis (to copy values about without moving binary
    /// data through a shell).
    pub fn eval(&self, script: &str, keys: &[&str]) -> String {
        let n = keys.len().to_string();
        let mut args = vec!["EVAL", script, &n];
        args.extend_from_slice(keys);
        self.cli(&args)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients).
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
