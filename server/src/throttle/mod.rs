//! Login throttling that cannot be raced: an attempt first **reserves** a slot in every
//! counter that applies to it (one atomic check-and-increment over all of them), only then
//! is the password or TOTP code verified, and a successful attempt **refunds** its slots.
//! So N parallel wrong attempts can never run more verifications than the limit allows.
//!
//! Counters (see [`Throttle::password_rules`] and [`Throttle::mfa_rules`]):
//! - per (account, network): a hard limit (`--account-limit` per `--rate-window`); a
//!   stranger's network is blocked, the owner's is not;
//! - per account: backoff, not lockout: past the limit one attempt per growing interval
//!   (1 s, 2 s, 4 s, … capped at the window) so that distributed guessing slows to a
//!   trickle while the owner can still get in;
//! - per network: a hard limit (`--address-limit`), across accounts;
//! - per `mfa_token`: 5 wrong codes and the challenge is dead.
//!
//! Networks are IPv4 /32 and IPv6 /64 ([`bucket`]). The password step and the TOTP step
//! count separately: a correct password never clears the TOTP failures.
//!
//! Backends: [`memory::MemoryThrottle`] (one process; memory and SQLite stores) and
//! [`redis::RedisThrottle`] (a Lua script, so every instance sharing the Redis shares the
//! counters: standalone, Sentinel and Cluster alike).

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::Config;
use crate::store::StoreResult;

pub mod memory;
pub mod redis;

/// How a counter limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `limit` attempts per window, then blocked until the window ends.
    Hard,
    /// `limit` attempts per window, then one attempt per backoff interval (doubling).
    Backoff,
}

/// One counter an attempt must reserve a slot in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Counter key.
    pub key: String,
    /// Attempts per window.
    pub limit: u32,
    /// Window in seconds.
    pub window: i64,
    /// Hard limit or backoff.
    pub kind: Kind,
}

/// Longest backoff interval, in seconds.
pub const MAX_BACKOFF: i64 = 900;

/// The backoff after `n` attempts with limit `limit` (0 below the limit).
pub fn backoff(n: u32, limit: u32, window: i64) -> i64 {
    if n < limit {
        return 0;
    }
    let exp = (n - limit).min(20);
    (1i64 << exp).min(window).min(MAX_BACKOFF)
}

/// An atomic multi-counter reservation store.
#[async_trait]
pub trait ThrottleBackend: Send + Sync + 'static {
    /// Atomically: if every rule admits one more attempt at `now`, count one in each and
    /// return `Ok(None)`; otherwise count nothing and return `Ok(Some(retry_after_secs))`.
    async fn reserve(&self, rules: &[Rule], now: i64) -> StoreResult<Option<u64>>;
    /// Gives back one attempt in each of `rules` (after a success).
    async fn refund(&self, rules: &[Rule], now: i64) -> StoreResult<()>;
}

/// The IPv4 /32 or IPv6 /64 an address is throttled as (IPv4-mapped IPv6 counts as IPv4).
pub fn bucket(address: &str) -> String {
    match address.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Err(_) => address.chars().take(64).collect(),
    }
}

/// The throttle: the rules from the configuration over one backend.
#[derive(Clone)]
pub struct Throttle {
    backend: Arc<dyn ThrottleBackend>,
    account_limit: u32,
    address_limit: u32,
    window: i64,
    mfa_ttl: i64,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("account_limit", &self.account_limit)
            .field("address_limit", &self.address_limit)
            .finish_non_exhaustive()
    }
}

/// Wrong codes an `mfa_token` survives.
pub const MFA_TOKEN_ATTEMPTS: u32 = 5;

impl Throttle {
    /// A throttle over `backend` with the limits of `cfg`.
    pub fn new(backend: Arc<dyn ThrottleBackend>, cfg: &Config) -> Self {
        Throttle {
            backend,
            account_limit: cfg.account_limit.max(1),
            address_limit: cfg.address_limit.max(1),
            window: cfg.rate_window.max(1),
            mfa_ttl: cfg.mfa_ttl.max(1),
        }
    }

    /// The backend for a `--store` URL: Redis (shared by all instances) for every Redis
    /// URL (standalone, Sentinel, Cluster), in-process otherwise.
    ///
    /// # Errors
    /// When the Redis URL cannot be used.
    pub async fn for_store(cfg: &Config) -> StoreResult<Self> {
        let url = cfg.store.as_str();
        let backend: Arc<dyn ThrottleBackend> = if crate::store::redis::is_redis_url(url) {
            Arc::new(redis::RedisThrottle::connect(url, "tessera:throttle:").await?)
        } else {
            Arc::new(memory::MemoryThrottle::default())
        };
        Ok(Self::new(backend, cfg))
    }

    fn rules(&self, step: &str, account: &str, network: &str) -> Vec<Rule> {
        vec![
            Rule {
                key: format!("{step}:an:{account}\u{0}{network}"),
                limit: self.account_limit,
                window: self.window,
                kind: Kind::Hard,
            },
            Rule {
                key: format!("{step}:a:{account}"),
                limit: self.account_limit,
                window: self.window,
                kind: Kind::Backoff,
            },
            Rule {
                key: format!("n:{network}"),
                limit: self.address_limit,
                window: self.window,
                kind: Kind::Hard,
            },
        ]
    }

    /// The counters of a password attempt for `account` from `network` ([`bucket`]).
    pub fn password_rules(&self, account: &str, network: &str) -> Vec<Rule> {
        self.rules("pw", account, network)
    }

    /// The counters of a TOTP attempt: the account's own TOTP counters (never cleared by
    /// the password step) and the challenge's own budget of [`MFA_TOKEN_ATTEMPTS`].
    pub fn mfa_rules(&self, account: &str, network: &str, mfa_token_hash: &str) -> Vec<Rule> {
        let mut r = self.rules("mfa", account, network);
        r.push(Rule {
            key: format!("t:{mfa_token_hash}"),
            limit: MFA_TOKEN_ATTEMPTS,
            window: self.mfa_ttl,
            kind: Kind::Hard,
        });
        r
    }

    /// Reserves one attempt under `rules`; `Some(retry_after)` when refused.
    ///
    /// # Errors
    /// When the backend fails.
    pub async fn reserve(&self, rules: &[Rule], now: i64) -> StoreResult<Option<u64>> {
        self.backend.reserve(rules, now).await
    }

    /// Refunds a reservation after a success.
    ///
    /// # Errors
    /// When the backend fails.
    pub async fn refund(&self, rules: &[Rule], now: i64) -> StoreResult<()> {
        self.backend.refund(rules, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_v4_32_and_v6_64_and_mapped_addresses_are_v4() {
        assert_eq!(bucket("203.0.113.7"), "203.0.113.7");
        assert_eq!(bucket("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(bucket("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(bucket("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
    }

    #[test]
    fn backoff_doubles_past_the_limit_and_is_capped() {
        assert_eq!(backoff(9, 10, 300), 0);
        assert_eq!(backoff(10, 10, 300), 1);
        assert_eq!(backoff(12, 10, 300), 4);
        assert_eq!(backoff(40, 10, 300), 300);
    }
}
