//! Engine configuration: every policy knob, with secure defaults.
use super::Millis;

/// Policy settings of one engine. All durations are milliseconds.
///
/// # Examples
/// ```
/// use tessera::core::Config;
/// let cfg = Config { idle_timeout: Some(600_000), ..Config::default() };
/// assert_eq!(cfg.idle_warning, 60_000);
/// ```
#[derive(Clone)]
pub struct Config {
    /// Log out after this long without activity in any tab (`None`: never). Default 15 min
    /// (OWASP Session Management Cheat Sheet: 15–30 min idle timeouts for most applications).
    pub idle_timeout: Option<Millis>,
    /// Emit `idle-warning` this long before the idle deadline. Default 60 s.
    pub idle_warning: Millis,
    /// Log out this long after login regardless of activity (`None`: no limit). Default 8 h
    /// (OWASP: an absolute timeout bounds the life of a stolen session).
    pub absolute_lifetime: Option<Millis>,
    /// Refresh this long before the access token expires (capped at half its lifetime).
    /// Default 60 s.
    pub refresh_lead: Millis,
    /// Up to this much random extra lead, drawn per token from the seed, so tabs and clients do
    /// not refresh in lockstep. Default 5 s.
    pub refresh_jitter: Millis,
    /// How long a tab waits for the refresh lock before stealing it from a holder that died or
    /// sleeps. Must exceed `request_timeout`. Default 8 s.
    pub lock_wait: Millis,
    /// A refresh request without an answer after this long counts as failed (answer lost).
    /// Default 5 s: with the first retry at most `backoff_base` later, a lost answer is
    /// retried inside tessera-server's default 10 s grace window (`--refresh-grace`), which
    /// then re-sends the successor. Keep `request_timeout + backoff_base` below the server's
    /// grace window.
    pub request_timeout: Millis,
    /// First retry delay after a retryable refresh failure. Default 1 s.
    pub backoff_base: Millis,
    /// Largest retry delay (before jitter). Default 30 s.
    pub backoff_cap: Millis,
    /// Publish local activity to other tabs at most this often (a trailing publish always
    /// follows, so the origin-wide last activity lags by at most this much). Default 5 s.
    pub activity_throttle: Millis,
    /// After [`Input::Resume`](crate::core::Input::Resume), wait this long for another tab to
    /// answer with its token before refreshing. Default 250 ms.
    pub join_wait: Millis,
    /// `true` when the browser has `navigator.locks`; `false` makes the engine coordinate
    /// refreshes through claims in the shared record and on the bus instead. Default `true`.
    pub web_locks: bool,
    /// With `web_locks == false`: how long a claim must stand unchallenged before the tab
    /// treats it as won. Default 100 ms.
    pub claim_settle: Millis,
    /// TEST ONLY: skip the refresh lock and claims (the simulator proves it then finds double
    /// refreshes). Never set this in production.
    #[doc(hidden)]
    pub unsafe_disable_lock: bool,
    /// TEST ONLY: ignore the persisted logout epoch (the simulator proves it then finds tabs
    /// that miss a logout). Never set this in production.
    #[doc(hidden)]
    pub unsafe_disable_epoch: bool,
    /// TEST ONLY: do not share activity between tabs (the simulator proves it then finds
    /// false idle logouts). Never set this in production.
    #[doc(hidden)]
    pub unsafe_disable_shared_activity: bool,
    /// TEST ONLY: adopt any token from the bus, even an older one (the simulator proves it then
    /// finds tabs going back to older tokens). Never set this in production.
    #[doc(hidden)]
    pub unsafe_adopt_older: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            idle_timeout: Some(15 * 60_000),
            idle_warning: 60_000,
            absolute_lifetime: Some(8 * 3_600_000),
            refresh_lead: 60_000,
            refresh_jitter: 5_000,
            lock_wait: 8_000,
            request_timeout: 5_000,
            backoff_base: 1_000,
            backoff_cap: 30_000,
            activity_throttle: 5_000,
            join_wait: 250,
            web_locks: true,
            claim_settle: 100,
            unsafe_disable_lock: false,
            unsafe_disable_epoch: false,
            unsafe_disable_shared_activity: false,
            unsafe_adopt_older: false,
        }
    }
}
