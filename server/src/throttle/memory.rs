//! In-process throttle counters (one mutex: the check and the increments are one step).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{backoff, Kind, Rule, ThrottleBackend};
use crate::store::StoreResult;

#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    start: i64,
    n: u32,
    next_at: i64,
    window: i64,
}

/// Counters in a `HashMap` behind a mutex; entries past their window are pruned when the
/// map grows large.
#[derive(Debug, Default)]
pub struct MemoryThrottle {
    map: Mutex<HashMap<String, Counter>>,
}

const PRUNE_AT: usize = 100_000;

#[async_trait]
impl ThrottleBackend for MemoryThrottle {
    async fn reserve(&self, rules: &[Rule], now: i64) -> StoreResult<Option<u64>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > PRUNE_AT {
            map.retain(|_, c| now < c.start + c.window);
        }
        let current = |map: &HashMap<String, Counter>, r: &Rule| {
            map.get(&r.key)
                .copied()
                .filter(|c| now < c.start + r.window)
                .unwrap_or(Counter {
                    start: now,
                    n: 0,
                    next_at: 0,
                    window: r.window,
                })
        };
        let mut retry = 0i64;
        for r in rules {
            let c = current(&map, r);
            let wait = match r.kind {
                Kind::Hard if c.n >= r.limit => c.start + r.window - now,
                Kind::Backoff if c.n >= r.limit && now < c.next_at => c.next_at - now,
                _ => 0,
            };
            retry = retry.max(wait);
        }
        if retry > 0 {
            return Ok(Some(retry as u64));
        }
        for r in rules {
            let mut c = current(&map, r);
            c.n = c.n.saturating_add(1);
            if r.kind == Kind::Backoff && c.n >= r.limit {
                c.next_at = now + backoff(c.n, r.limit, r.window);
            }
            map.insert(r.key.clone(), c);
        }
        Ok(None)
    }

    async fn refund(&self, rules: &[Rule], _now: i64) -> StoreResult<()> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        for r in rules {
            if let Some(c) = map.get_mut(&r.key) {
                c.n = c.n.saturating_sub(1);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: Kind) -> Rule {
        Rule {
            key: "k".into(),
            limit: 2,
            window: 60,
            kind,
        }
    }

    #[tokio::test]
    async fn hard_blocks_until_the_window_ends_and_refunds_count() {
        let t = MemoryThrottle::default();
        let r = [rule(Kind::Hard)];
        assert_eq!(t.reserve(&r, 0).await.unwrap(), None);
        assert_eq!(t.reserve(&r, 1).await.unwrap(), None);
        assert_eq!(t.reserve(&r, 10).await.unwrap(), Some(50));
        t.refund(&r, 10).await.unwrap();
        assert_eq!(t.reserve(&r, 10).await.unwrap(), None);
        assert_eq!(t.reserve(&r, 60).await.unwrap(), None, "new window");
    }

    #[tokio::test]
    async fn backoff_admits_one_attempt_per_interval() {
        let t = MemoryThrottle::default();
        let r = [rule(Kind::Backoff)];
        assert_eq!(t.reserve(&r, 0).await.unwrap(), None);
        assert_eq!(t.reserve(&r, 0).await.unwrap(), None); // n = 2: next at 1
        assert_eq!(t.reserve(&r, 0).await.unwrap(), Some(1));
        assert_eq!(t.reserve(&r, 1).await.unwrap(), None); // n = 3: next at 1 + 2
        assert_eq!(t.reserve(&r, 2).await.unwrap(), Some(1));
        assert_eq!(t.reserve(&r, 3).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_refused_rule_counts_nothing_anywhere() {
        let t = MemoryThrottle::default();
        let a = Rule {
            key: "a".into(),
            limit: 1,
            window: 60,
            kind: Kind::Hard,
        };
        let b = Rule {
            key: "b".into(),
            limit: 5,
            window: 60,
            kind: Kind::Hard,
        };
        assert_eq!(t.reserve(std::slice::from_ref(&a), 0).await.unwrap(), None);
        for _ in 0..10 {
            assert!(t
                .reserve(&[a.clone(), b.clone()], 0)
                .await
                .unwrap()
                .is_some());
        }
        for _ in 0..5 {
            assert_eq!(t.reserve(std::slice::from_ref(&b), 0).await.unwrap(), None);
        }
    }
}
