//! Fixed-window failure counters for login throttling (per account and per client address).
//! In-process: with several instances each enforces its own limit (documented).

use std::collections::HashMap;
use std::sync::Mutex;

/// Counts failures per key within a window; `limit` failures block the key until the
/// window ends.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: i64,
    map: Mutex<HashMap<String, (i64, u32)>>,
}

impl RateLimiter {
    /// A limiter allowing `limit` failures per `window` seconds.
    pub fn new(limit: u32, window: i64) -> Self {
        RateLimiter {
            limit,
            window,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after_secs)` when `key` is blocked at `now`.
    pub fn check(&self, key: &str, now: i64) -> Result<(), u64> {
        let g = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match g.get(key) {
            Some((start, n)) if *n >= self.limit && now < start + self.window => {
                Err((start + self.window - now).max(1) as u64)
            }
            _ => Ok(()),
        }
    }

    /// Records one failure for `key`.
    pub fn fail(&self, key: &str, now: i64) {
        let mut g = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if g.len() > 100_000 {
            let w = self.window;
            g.retain(|_, (start, _)| now < *start + w);
        }
        let e = g.entry(key.to_string()).or_insert((now, 0));
        if now >= e.0 + self.window {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }

    /// Forgets `key` (after a successful login).
    pub fn clear(&self, key: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_until_window_ends() {
        let r = RateLimiter::new(2, 60);
        assert!(r.check("a", 0).is_ok());
        r.fail("a", 0);
        r.fail("a", 10);
        assert_eq!(r.check("a", 10), Err(50));
        assert!(r.check("b", 10).is_ok());
        assert!(r.check("a", 60).is_ok());
        r.fail("a", 61);
        assert!(r.check("a", 61).is_ok());
        r.clear("a");
        assert!(r.check("a", 61).is_ok());
    }
}
