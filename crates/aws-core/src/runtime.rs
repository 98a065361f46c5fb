//! The process's single tokio runtime, and the bridge from synchronous callers (shell commands
//! run on their own threads) into it. Every wait here can be interrupted by the caller, so a
//! Ctrl-C stops an in-flight request promptly instead of waiting for the network.
//!
//! Never call these from inside the runtime itself: `block_on` panics there.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use tokio::runtime::Runtime;

/// How often a blocked caller looks at its interrupt flag.
pub const INTERRUPT_POLL: Duration = Duration::from_millis(25);

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("nuaws-rt")
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("nuaws cannot start its async runtime: {err}"))
});

/// The shared runtime.
pub fn runtime() -> &'static Runtime {
    &RUNTIME
}

/// The caller's way of saying "stop now" (Ctrl-C).
pub trait Interrupt: Sync {
    fn interrupted(&self) -> bool;
}

impl<F: Fn() -> bool + Sync> Interrupt for F {
    fn interrupted(&self) -> bool {
        self()
    }
}

/// A caller that cannot be interrupted.
pub struct NoInterrupt;

impl Interrupt for NoInterrupt {
    fn interrupted(&self) -> bool {
        false
    }
}

/// The wait was abandoned because the caller was interrupted; the future was dropped, which
/// cancels its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

/// Runs `fut` to completion on the shared runtime, or drops it as soon as `interrupt` fires.
pub fn block_on<T>(
    interrupt: &dyn Interrupt,
    fut: impl Future<Output = T>,
) -> Result<T, Interrupted> {
    if interrupt.interrupted() {
        return Err(Interrupted);
    }
    runtime().block_on(async {
        tokio::pin!(fut);
        loop {
            // The sleep is created inside the runtime: building it outside panics.
            tokio::select! {
                out = &mut fut => return Ok(out),
                _ = tokio::time::sleep(INTERRUPT_POLL) => {
                    if interrupt.interrupted() {
                        return Err(Interrupted);
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn completes_when_not_interrupted() {
        assert_eq!(block_on(&NoInterrupt, async { 7 }), Ok(7));
    }

    #[test]
    fn interrupt_drops_a_pending_future_promptly() {
        let flag = Arc::new(AtomicBool::new(false));
        let setter = flag.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            setter.store(true, Ordering::Relaxed);
        });
        let check = || flag.load(Ordering::Relaxed);
        let out = block_on(&check, std::future::pending::<()>());
        // A pending future can only end this way.
        assert_eq!(out, Err(Interrupted));
    }
}
