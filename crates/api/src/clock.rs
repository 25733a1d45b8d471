//! Source of the current time, injected into [`crate::ApiState`] so that tests can move
//! time forward without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Current time in Unix seconds.
pub trait Clock: Send + Sync {
    /// Returns the current time in Unix seconds.
    fn now_s(&self) -> i64;
}

/// The machine's wall clock. A clock before 1970 reads as 0.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_s(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
            })
    }
}

/// A clock that moves only when a test sets or advances it, for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now_s: AtomicI64,
}

impl ManualClock {
    /// Creates a clock that reads `now_s` until moved.
    pub fn new(now_s: i64) -> Self {
        ManualClock {
            now_s: AtomicI64::new(now_s),
        }
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.now_s.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Sets the clock to `now_s`.
    pub fn set(&self, now_s: i64) {
        self.now_s.store(now_s, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_s(&self) -> i64 {
        self.now_s.load(Ordering::SeqCst)
    }
}
