//! `nuaws-test-server`: runs a `FaultProxy` or a `SyntheticS3` for shell scripts and benchmarks.
//! Prints one JSON line (`{"endpoint","port","pid"}`) once listening, writes the port to
//! `--port-file` if asked, and runs until its stdin (when a pipe) reaches EOF or it gets
//! SIGTERM/SIGINT, so a script that dies takes its server with it.
//!
//! Not a service to deploy: it binds 127.0.0.1 only and trusts every client.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use nuaws_test_servers::{FaultConfig, FaultProxy, SyntheticS3, default_burst};

const USAGE: &str = "\
usage:
  nuaws-test-server proxy --upstream URL [--latency-ms N] [--throttle-rate R [--throttle-burst B]]
                          [--error-rate F] [--reset-rate F] [--stall-rate F [--stall-ms N]]
                          [--fail-matching TEXT [--fail-status N]] [--seed N] [--port-file PATH]
                          [--bucket-regions BUCKET=REGION,...] [--s3-endpoint regional|global]
                          [--list-bucket-regions true|false] [--redirect-loops BUCKET,...]
  nuaws-test-server synthetic-s3 --bucket NAME --objects N [--port-file PATH]

Prints {\"endpoint\": \"http://127.0.0.1:PORT\", \"port\": PORT, \"pid\": PID} once listening.
Runs until stdin reaches EOF (when stdin is a pipe) or SIGTERM/SIGINT.
Rates are fractions from 0 to 1; --stall-rate without --stall-ms stalls bodies for good.
--bucket-regions makes the proxy answer as real S3 does for requests signed for another region.
The proxy's config can be changed while it runs: POST /__proxy/config (JSON), GET /__proxy/stats.";

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(&arguments) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("nuaws-test-server: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(arguments: &[String]) -> Result<(), String> {
    let (command, flags) = arguments
        .split_first()
        .ok_or("missing command: proxy or synthetic-s3")?;
    let mut flags = Flags::parse(flags)?;
    let port_file = flags.take("port-file").map(PathBuf::from);
    match command.as_str() {
        "proxy" => {
            let upstream = flags.take("upstream").ok_or("proxy needs --upstream URL")?;
            let mut config = FaultConfig::default();
            if let Some(ms) = flags.take_number::<u64>("latency-ms")? {
                config.latency = Duration::from_millis(ms);
            }
            let burst = flags.take_number::<u32>("throttle-burst")?;
            match flags.take_number::<f64>("throttle-rate")? {
                Some(rate) => config = config.with_throttle(rate, burst.unwrap_or_else(|| default_burst(rate))),
                None if burst.is_some() => return Err("--throttle-burst needs --throttle-rate".to_owned()),
                None => {}
            }
            config.error_rate = flags.take_number("error-rate")?.unwrap_or(0.0);
            config.reset_rate = flags.take_number("reset-rate")?.unwrap_or(0.0);
            let stall_ms = flags.take_number::<u64>("stall-ms")?;
            config.stall_rate = flags.take_number("stall-rate")?.unwrap_or(0.0);
            if stall_ms.is_some() && config.stall_rate == 0.0 {
                return Err("--stall-ms needs --stall-rate".to_owned());
            }
            config.stall_for = stall_ms.map(Duration::from_millis);
            config.fail_matching = flags.take("fail-matching");
            if let Some(status) = flags.take_number::<u16>("fail-status")? {
                config.fail_status = status;
            }
            if let Some(seed) = flags.take_number::<u64>("seed")? {
                config.seed = seed;
            }
            for pair in list(flags.take("bucket-regions")) {
                let (bucket, region) = pair
                    .split_once('=')
                    .ok_or(format!("--bucket-regions needs BUCKET=REGION pairs, not {pair:?}"))?;
                config = config.with_bucket_region(bucket, region);
            }
            if let Some(endpoint) = flags.take("s3-endpoint") {
                config.s3_endpoint = endpoint.parse()?;
            }
            if let Some(on) = flags.take("list-bucket-regions") {
                config.list_bucket_regions = on
                    .parse()
                    .map_err(|_| format!("--list-bucket-regions must be true or false, not {on:?}"))?;
            }
            for bucket in list(flags.take("redirect-loops")) {
                config = config.with_redirect_loop(&bucket);
            }
            flags.reject_leftovers()?;
            config.validate()?;
            let proxy = FaultProxy::start(&upstream, config).map_err(|e| format!("cannot start the proxy: {e}"))?;
            announce(&proxy.endpoint(), proxy.port(), port_file.as_deref())?;
            wait_for_end();
            drop(proxy);
        }
        "synthetic-s3" => {
            let bucket = flags.take("bucket").ok_or("synthetic-s3 needs --bucket NAME")?;
            let objects = flags
                .take_number::<u64>("objects")?
                .ok_or("synthetic-s3 needs --objects N")?;
            flags.reject_leftovers()?;
            let server = SyntheticS3::start(&bucket, objects).map_err(|e| format!("cannot start synthetic S3: {e}"))?;
            announce(&server.endpoint(), server.port(), port_file.as_deref())?;
            wait_for_end();
            drop(server);
        }
        other => return Err(format!("unknown command {other:?}")),
    }
    Ok(())
}

/// The items of a comma-separated flag value; none when the flag is absent.
fn list(value: Option<String>) -> Vec<String> {
    value
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `--name value` and `--name=value` pairs, each name at most once.
struct Flags(Vec<(String, String)>);

impl Flags {
    fn parse(arguments: &[String]) -> Result<Flags, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut rest = arguments.iter();
        while let Some(argument) = rest.next() {
            let name = argument
                .strip_prefix("--")
                .ok_or(format!("unexpected argument {argument:?}"))?;
            let (name, value) = match name.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => (
                    name.to_owned(),
                    rest.next().ok_or(format!("--{name} needs a value"))?.clone(),
                ),
            };
            if pairs.iter().any(|(seen, _)| *seen == name) {
                return Err(format!("--{name} given twice"));
            }
            pairs.push((name, value));
        }
        Ok(Flags(pairs))
    }

    fn take(&mut self, name: &str) -> Option<String> {
        let position = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.remove(position).1)
    }

    fn take_number<T: std::str::FromStr>(&mut self, name: &str) -> Result<Option<T>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| format!("--{name} must be a number, not {text:?}")),
        }
    }

    fn reject_leftovers(&self) -> Result<(), String> {
        match self.0.first() {
            Some((name, _)) => Err(format!("unknown option --{name}")),
            None => Ok(()),
        }
    }
}

fn announce(endpoint: &str, port: u16, port_file: Option<&Path>) -> Result<(), String> {
    if let Some(path) = port_file {
        // Write then rename, so a script polling the file never reads half a port.
        let partial = path.with_extension(format!("partial.{}", std::process::id()));
        std::fs::write(&partial, format!("{port}\n"))
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|e| format!("cannot write the port file {}: {e}", path.display()))?;
    }
    let line = serde_json::json!({ "endpoint": endpoint, "port": port, "pid": std::process::id() });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

/// Returns when stdin, if it is a pipe, reaches EOF; otherwise never (a signal ends the process).
fn wait_for_end() {
    // A shell starts background jobs with SIGINT ignored; restore the default so that both
    // SIGINT and SIGTERM end the server.
    #[cfg(unix)]
    // SAFETY: setting the default disposition installs no handler and touches no Rust state.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
    }
    if stdin_is_pipe() {
        let mut sink = [0u8; 4096];
        let mut stdin = std::io::stdin().lock();
        loop {
            match stdin.read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
    loop {
        std::thread::park();
    }
}

fn stdin_is_pipe() -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        use std::os::unix::fs::FileTypeExt as _;
        let stdin = std::io::stdin();
        stdin
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .and_then(|file| file.metadata())
            .is_ok_and(|metadata| metadata.file_type().is_fifo() || metadata.file_type().is_socket())
    }
    #[cfg(not(unix))]
    {
        use std::io::IsTerminal as _;
        !std::io::stdin().is_terminal()
    }
}
