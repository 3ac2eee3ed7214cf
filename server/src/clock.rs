//! Time as an injectable dependency: handlers never read the system clock directly, so
//! idle and absolute expiry, TOTP windows and rate-limit windows are tested by advancing a
//! [`ManualClock`] instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of "now" in Unix seconds.
pub trait Clock: Send + Sync + 'static {
    /// Current time, seconds since the Unix epoch.
    fn now(&self) -> i64;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to (for tests and simulations).
///
/// # Examples
/// ```
/// use tessera_server::clock::{Clock, ManualClock};
/// let c = ManualClock::new(1_000);
/// c.advance(30);
/// assert_eq!(c.now(), 1_030);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock frozen at `start` (Unix seconds).
    pub fn new(start: i64) -> Self {
        ManualClock(AtomicI64::new(start))
    }
    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    /// Sets the clock to `t`.
    pub fn set(&self, t: i64) {
        self.0.store(t, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
