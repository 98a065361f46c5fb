//! The hint that tells a running shell at once when a teammate's write moved a generation, so
//! its memory copies of that group are checked again before the next use rather than after the
//! shared tier's recheck interval ([`SharedConfig::recheck`](super::shared::SharedConfig::recheck)).
//!
//! A second connection to the server, speaking RESP3, asks for `CLIENT TRACKING ON BCAST PREFIX
//! nuaws:v1:gen:`: Redis then pushes the name of every generation counter that changes (a
//! teammate's `SET`). Each push makes the process forget the generation it remembered for that
//! counter, so the next check of a local copy reads it again. Tracking is lost with the
//! connection: on a disconnect every remembered generation is forgotten (re-read on next use)
//! and tracking is asked for again once the connection is back.
//!
//! A hint only: a push can be lost or come just after a lookup that read the old generation,
//! so the recheck interval still bounds how long a stale copy can be served. Where tracking is
//! not available the recheck alone applies: Redis before 6 (no RESP3: `HELLO 3` is refused, and
//! this connection gives up for the process), a proxy that refuses `CLIENT TRACKING`, and a Redis
//! Cluster (BCAST would have to be asked of every master and followed as slots move: not done).
//!
//! Not here: the tier's lookups and writes (`shared`), nor what a generation means.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::{PushInfo, PushKind, Value};

/// The start of every generation counter's name: what tracking asks Redis to watch.
pub const GENERATION_PREFIX: &str = "nuaws:v1:gen:";
/// The longest wait between two attempts to (re)start tracking while the server is away.
const MAX_RETRY: Duration = Duration::from_secs(30);
const FIRST_RETRY: Duration = Duration::from_millis(200);

/// What a push says to forget.
pub enum Forget {
    /// The generations of these counters.
    Counters(Vec<String>),
    /// Every generation (a reconnect, or the server flushed its keys).
    All,
}

/// Whether tracking is on now, and how many pushes it brought (for `aws cache stats`).
#[derive(Default)]
pub struct TrackingState {
    active: AtomicBool,
    pushes: AtomicU64,
}

impl TrackingState {
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub fn pushes(&self) -> u64 {
        self.pushes.load(Ordering::Relaxed)
    }
}

/// Starts tracking on the runtime, over a connection of its own made from `client` (which must
/// speak RESP3). `forget` is called for every push, and with [`Forget::All`] whenever tracking
/// (re)starts. Never blocks the caller; ends when `forget` says the tier is gone (`false`).
pub fn start(client: &redis::Client, state: Arc<TrackingState>, forget: impl Fn(Forget) -> bool + Send + Sync + 'static) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<PushInfo>();
    let manager = redis::aio::ConnectionManagerConfig::new()
        .set_push_sender(tx)
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    match client.get_connection_manager_lazy(manager) {
        Ok(conn) => {
            crate::runtime::runtime().spawn(track(conn, rx, state, forget));
        }
        Err(err) => log::debug!("shared cache: no tracking connection: {err}"),
    }
}

async fn track(
    mut conn: redis::aio::ConnectionManager,
    mut pushes: tokio::sync::mpsc::UnboundedReceiver<PushInfo>,
    state: Arc<TrackingState>,
    forget: impl Fn(Forget) -> bool,
) {
    let mut retry = FIRST_RETRY;
    loop {
        if !state.active() {
            let ask = redis::cmd("CLIENT")
                .arg("TRACKING")
                .arg("ON")
                .arg("BCAST")
                .arg("PREFIX")
                .arg(GENERATION_PREFIX)
                .clone();
            match ask.query_async::<()>(&mut conn).await {
                Ok(()) => {
                    state.active.store(true, Ordering::Relaxed);
                    retry = FIRST_RETRY;
                    // Changes made while nobody was tracking were not pushed: read everything
                    // again.
                    if !forget(Forget::All) {
                        return;
                    }
                }
                Err(err) if err.is_io_error() || err.is_connection_dropped() || err.is_timeout() || err.is_connection_refusal() => {
                    log::debug!("shared cache: tracking not started yet: {err}");
                }
                Err(err) => {
                    // Refused (Redis before 6, a proxy): the recheck interval alone applies.
                    log::debug!("shared cache: no tracking: {err}");
                    return;
                }
            }
        }
        let push = if state.active() {
            pushes.recv().await
        } else {
            match tokio::time::timeout(retry, pushes.recv()).await {
                Ok(push) => push,
                Err(_) => {
                    retry = (retry * 2).min(MAX_RETRY);
                    continue;
                }
            }
        };
        let Some(push) = push else {
            return;
        };
        let alive = match push.kind {
            PushKind::Invalidate => {
                state.pushes.fetch_add(1, Ordering::Relaxed);
                forget(invalidated(&push.data))
            }
            PushKind::Disconnection => {
                state.active.store(false, Ordering::Relaxed);
                forget(Forget::All)
            }
            _ => true,
        };
        if !alive {
            return;
        }
    }
}

/// The counters an `invalidate` push names: an array of key names, or nil when the server
/// flushed every key.
fn invalidated(data: &[Value]) -> Forget {
    match data.first() {
        Some(Value::Array(keys)) => Forget::Counters(
            keys.iter()
                .filter_map(|k| match k {
                    Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
                    Value::SimpleString(text) => Some(text.clone()),
                    _ => None,
                })
                .collect(),
        ),
        _ => Forget::All,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_names_the_counters_to_forget_and_a_flush_forgets_all() {
        let keys = vec![Value::Array(vec![
            Value::BulkString(b"nuaws:v1:gen:{ab}".to_vec()),
            Value::SimpleString("nuaws:v1:gen:{cd}".into()),
        ])];
        match invalidated(&keys) {
            Forget::Counters(k) => assert_eq!(k, ["nuaws:v1:gen:{ab}", "nuaws:v1:gen:{cd}"]),
            Forget::All => panic!("two counters"),
        }
        assert!(matches!(invalidated(&[Value::Nil]), Forget::All));
        assert!(matches!(invalidated(&[]), Forget::All));
    }
}
