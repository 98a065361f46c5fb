//! Test support: a real `redis-server` (Debian's package; `scripts/test` installs it) on a free
//! loopback port, one per test, never the system service: no persistence, killed when dropped.
//! `redis-cli` inspects and tampers with what it holds. Also a server speaking only TLS (its CA
//! and certificate made with `openssl` in its temp dir) and a 3-master Redis Cluster (three nodes
//! joined by `redis-cli --cluster create`).
//!
//! Not a mock: nothing here answers Redis commands itself.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Redis {
    child: Mutex<Option<Child>>,
    pub port: u16,
    pub dir: PathBuf,
    /// For a TLS server: the CA file `redis-cli` checks its certificate against.
    pub tls_ca: Option<PathBuf>,
    /// For a server with ACL users only: the user and password `redis-cli` logs in with.
    pub login: Option<(String, String)>,
}

fn base_dir() -> PathBuf {
    option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

/// A port the kernel just gave out and took back: free unless someone races us for it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn fresh_dir(what: &str) -> PathBuf {
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = base_dir().join(format!("nuaws-{what}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("redis dir");
    dir
}

impl Redis {
    /// Starts a server on a free loopback port and waits until it answers PING.
    pub fn start() -> Redis {
        Self::start_with(&[], None, None, |port| vec!["--port".into(), port.to_string()])
    }

    /// A server that lets in only `user` with `password`, as a managed Redis given to a team
    /// does: an ACL user, the default user off (no command runs before AUTH).
    pub fn start_with_user(user: &str, password: &str) -> Redis {
        let acl = ["--user", "default", "off", "--user", user, "on", &format!(">{password}"), "~*", "&*", "+@all"];
        let acl: Vec<String> = acl.iter().map(|a| a.to_string()).collect();
        Self::start_with(&acl, None, Some((user.into(), password.into())), |port| vec!["--port".into(), port.to_string()])
    }

    /// A server speaking only TLS (`rediss://`), its certificate (for 127.0.0.1) signed by a CA
    /// made for it in its directory ([`Redis::tls_ca`]).
    pub fn start_tls() -> Redis {
        let certs = fresh_dir("redis-certs");
        let ca = make_ca(&certs, "ca");
        server_certificate(&certs, "ca");
        let file = |name: &str| certs.join(name).to_string_lossy().into_owned();
        let tls = [
            "--tls-cert-file".to_string(),
            file("server.pem"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-ca-cert-file".into(),
            file("ca.pem"),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        Self::start_with(&tls, Some(ca), None, |port| vec!["--port".into(), "0".into(), "--tls-port".into(), port.to_string()])
    }

    /// A node of a Redis Cluster (not joined to one yet): cluster mode, its bus on a port of
    /// its own.
    pub fn start_cluster_node() -> Redis {
        Self::start_with(&["--cluster-enabled".into(), "yes".into(), "--cluster-config-file".into(), "nodes.conf".into()], None, None, |port| {
            vec!["--port".into(), port.to_string(), "--cluster-port".into(), free_port().to_string()]
        })
    }

    fn start_with(args: &[String], tls_ca: Option<PathBuf>, login: Option<(String, String)>, ports: impl Fn(u16) -> Vec<String>) -> Redis {
        for _attempt in 0..5 {
            let port = free_port();
            let dir = fresh_dir(&format!("redis-{port}"));
            let child = Command::new("redis-server")
                .args(ports(port))
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(args)
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
                tls_ca: tls_ca.clone(),
                login: login.clone(),
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
        let scheme = if self.tls_ca.is_some() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `redis-cli` reaching this server (over TLS, trusting its CA, for a TLS one).
    fn redis_cli(&self) -> Command {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some(ca) = &self.tls_ca {
            cmd.arg("--tls").arg("--cacert").arg(ca);
        }
        if let Some((user, password)) = &self.login {
            cmd.args(["--user", user, "--pass", password, "--no-auth-warning"]);
        }
        cmd
    }

    fn exited(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        child.as_mut().is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let out = self
            .redis_cli()
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
        let out = self
            .redis_cli()
            .args(["--raw", "GET", key])
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

/// A CA made with `openssl` in `dir`: `<name>.pem` (returned) and `<name>.key`.
pub fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let pem = dir.join(format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", &format!("/CN=nuaws test {name}"),
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", &format!("{name}.key"), "-out", &format!("{name}.pem"),
        ],
    );
    pem
}

/// `server.pem` and `server.key` in `dir`: a certificate for 127.0.0.1 signed by the CA `ca`.
fn server_certificate(dir: &Path, ca: &str) {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext file");
    openssl(
        dir,
        &["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"],
    );
    openssl(
        dir,
        &[
            "x509", "-req", "-in", "server.csr", "-CA", &format!("{ca}.pem"), "-CAkey", &format!("{ca}.key"), "-CAcreateserial",
            "-days", "2", "-extfile", "server.ext", "-out", "server.pem",
        ],
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (apt-get install openssl; scripts/test does)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A Redis Cluster of three masters on loopback (no replicas), made by `redis-cli --cluster
/// create` from three nodes started in cluster mode, and ready (every slot served) when returned.
pub struct RedisCluster {
    pub nodes: Vec<Redis>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<Redis> = (0..3).map(|_| Redis::start_cluster_node()).collect();
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli --cluster create");
        assert!(out.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let until = Instant::now() + Duration::from_secs(30);
        while !nodes.iter().all(|n| n.try_cli(&["CLUSTER", "INFO"]).is_some_and(|i| i.contains("cluster_state:ok"))) {
            assert!(Instant::now() < until, "the cluster did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        RedisCluster { nodes }
    }

    /// `redis+cluster://` with every node.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// The keys each node holds (each node scanned on its own: a scan covers one node).
    pub fn keys_per_node(&self) -> Vec<Vec<String>> {
        self.nodes.iter().map(Redis::keys).collect()
    }
}

