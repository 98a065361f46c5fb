//! After an unclean shutdown the disk cache is checked in a child process, since a damaged LMDB
//! page can crash whoever reads it: this is that child's entry point (a hidden first argument),
//! and the parent's way of starting it (installed into `aws-core` at start-up).

use std::path::Path;
use std::process::{Command, Stdio};

const FLAG: &str = "--nuaws-verify-cache";

/// When this process is the verifying child: its exit code (0 intact, 1 damaged).
pub fn run_if_requested() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != FLAG {
        return None;
    }
    let layout = args.next()?;
    Some(if aws_core::cache::disk::verify_layout(Path::new(&layout)) { 0 } else { 1 })
}

/// Lets the disk cache start the verifying child when it needs one.
pub fn install() {
    aws_core::cache::disk::set_verifier(verify_in_child);
}

/// Intact unless the child says otherwise or dies (a signal is what a damaged page causes). If
/// no child can be started, the cache is kept: nothing proves it damaged.
fn verify_in_child(layout: &Path) -> bool {
    let Ok(exe) = std::env::current_exe() else {
        return true;
    };
    Command::new(exe)
        .arg(FLAG)
        .arg(layout)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_or(true, |status| status.success())
}
