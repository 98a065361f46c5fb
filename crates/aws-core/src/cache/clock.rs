//! Time, injectable as moka does it: [`SystemClock`] in production, [`MockClock`] in tests.
//!
//! Two clocks, because they fail differently. The wall clock ([`SystemTime`]) is the only one
//! shared by processes, so on-disk expiry must use it, but it can jump (NTP, manual changes).
//! The monotonic clock ([`Instant`]) never jumps but, on Linux, stops while the machine is
//! suspended, so a TTL measured with it alone stretches by the length of a laptop sleep. The
//! memory tier checks both.
//!
//! Not for: timeouts or sleeping; nothing here waits.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of wall-clock and monotonic time.
pub trait Clock: Send + Sync + 'static {
    /// The wall clock: comparable across processes, may jump forward or back.
    fn wall(&self) -> SystemTime;
    /// The monotonic clock: never goes back, stops during suspend.
    fn mono(&self) -> Instant;
}

/// The real clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }

    fn mono(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to. Share it as `Arc<MockClock>`: the cache holds one
/// `Arc<dyn Clock>` clone and the test keeps another to move time.
#[derive(Debug)]
pub struct MockClock {
    now: Mutex<MockNow>,
}

#[derive(Debug, Clone, Copy)]
struct MockNow {
    wall: SystemTime,
    mono: Instant,
}

/// Where a new [`MockClock`]'s wall clock starts: a fixed instant (2023-11-14T22:13:20Z), so
/// tests do not depend on today's date.
const MOCK_WALL_START: Duration = Duration::from_secs(1_700_000_000);

impl MockClock {
    /// A clock at a fixed wall-clock instant. The monotonic clock starts at the real `Instant`
    /// of creation (an `Instant` cannot be made from nothing) and then moves only when told.
    pub fn new() -> Self {
        Self {
            now: Mutex::new(MockNow {
                wall: UNIX_EPOCH + MOCK_WALL_START,
                mono: Instant::now(),
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut MockNow) -> R) -> R {
        // A panic while holding this lock cannot leave it half-updated: keep using it.
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut now)
    }

    /// Moves both clocks forward by `by`, as ordinary time passing does.
    pub fn advance(&self, by: Duration) {
        self.with(|now| {
            now.wall = now.wall.checked_add(by).unwrap_or(now.wall);
            now.mono = now.mono.checked_add(by).unwrap_or(now.mono);
        });
    }

    /// Sets the wall clock to `to` (forward or back), leaving the monotonic clock alone: an NTP
    /// step or a manual change of the date.
    pub fn set_wall(&self, to: SystemTime) {
        self.with(|now| now.wall = to);
    }

    /// Moves only the monotonic clock forward.
    pub fn advance_mono(&self, by: Duration) {
        self.with(|now| now.mono = now.mono.checked_add(by).unwrap_or(now.mono));
    }

    /// A simulated suspend of `length`: the wall clock moves on, the monotonic clock is frozen.
    pub fn suspend(&self, length: Duration) {
        self.with(|now| now.wall = now.wall.checked_add(length).unwrap_or(now.wall));
    }
}

impl Default for MockClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MockClock {
    fn wall(&self) -> SystemTime {
        self.with(|now| now.wall)
    }

    fn mono(&self) -> Instant {
        self.with(|now| now.mono)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_clock_moves_only_as_told() {
        let clock = MockClock::new();
        let (w0, m0) = (clock.wall(), clock.mono());
        assert_eq!((clock.wall(), clock.mono()), (w0, m0));

        clock.advance(Duration::from_secs(3));
        assert_eq!(clock.wall(), w0 + Duration::from_secs(3));
        assert_eq!(clock.mono(), m0 + Duration::from_secs(3));

        clock.set_wall(w0 - Duration::from_secs(3600));
        assert_eq!(clock.wall(), w0 - Duration::from_secs(3600));
        assert_eq!(clock.mono(), m0 + Duration::from_secs(3));

        clock.advance_mono(Duration::from_secs(1));
        assert_eq!(clock.mono(), m0 + Duration::from_secs(4));
        assert_eq!(clock.wall(), w0 - Duration::from_secs(3600));

        clock.suspend(Duration::from_secs(8 * 3600));
        assert_eq!(clock.wall(), w0 + Duration::from_secs(7 * 3600));
        assert_eq!(clock.mono(), m0 + Duration::from_secs(4));
    }
}
