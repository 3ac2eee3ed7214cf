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
#[derive(Clone, Debug)]
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
    /// Fault injection for the simulator (only with the `fault-injection` cargo feature,
    /// which only the tests enable): each switch turns one safeguard off, so the tests can
    /// show the violation it prevents.
    #[cfg(feature = "fault-injection")]
    pub faults: Faults,
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
            #[cfg(feature = "fault-injection")]
            faults: Faults::default(),
        }
    }
}

/// Safeguards the simulator can switch off to show what each prevents. Without the
/// `fault-injection` cargo feature (the shipped module) every switch is off: this struct only
/// exists so the engine can ask.
#[derive(Clone, Copy, Default, Debug)]
pub struct Faults {
    /// Skip the refresh lock and claims (⇒ double refreshes).
    pub disable_lock: bool,
    /// Ignore the persisted logout epoch (⇒ tabs that miss a logout).
    pub disable_epoch: bool,
    /// Do not share activity between tabs (⇒ false idle logouts).
    pub disable_shared_activity: bool,
    /// Adopt any token from the bus, even an older one (⇒ tabs going back to older tokens).
    pub adopt_older: bool,
    /// Trust timestamps from other tabs and storage however far in the future (⇒ a clock
    /// that ran ahead keeps sessions alive past their idle deadline).
    pub trust_clocks: bool,
    /// Trust logout counters however far they jump (⇒ a forged epoch near `2^53` stops
    /// later logouts from reaching other tabs).
    pub trust_counters: bool,
    /// Take `expires_in` as the server sends it, even 0 (⇒ a refresh storm).
    pub trust_expires_in: bool,
    /// No minimum gap between refreshes of a session (⇒ a refresh storm).
    pub no_rate_limit: bool,
    /// Adopt refresh answers of another server session (⇒ Alice's tokens as Bob's session).
    pub ignore_session: bool,
    /// Force a refresh on any 401, whatever token it refused (⇒ a late 401 for a replaced
    /// token, or a 401 about permissions, rotates the refresh token again and again).
    pub any_401_forces: bool,
    /// Count activity of any session, not only the held one's (⇒ a new session inherits an
    /// old one's last activity).
    pub activity_across_sessions: bool,
}

/// A setting of [`Config`], named as the JavaScript option that sets it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Setting {
    /// [`Config::idle_timeout`].
    IdleTimeout,
    /// [`Config::idle_warning`].
    IdleWarning,
    /// [`Config::absolute_lifetime`].
    AbsoluteLifetime,
    /// [`Config::refresh_lead`].
    RefreshLead,
    /// [`Config::refresh_jitter`].
    RefreshJitter,
    /// [`Config::lock_wait`].
    LockWait,
    /// [`Config::request_timeout`].
    RequestTimeout,
    /// [`Config::activity_throttle`].
    ActivityThrottle,
    /// [`Config::join_wait`].
    JoinWait,
}

impl Setting {
    /// Every setting, in a fixed order (the bit of each in [`Config::resolve_given`]'s mask is
    /// its index here).
    pub const ALL: [Setting; 9] = [
        Setting::IdleTimeout,
        Setting::IdleWarning,
        Setting::AbsoluteLifetime,
        Setting::RefreshLead,
        Setting::RefreshJitter,
        Setting::LockWait,
        Setting::RequestTimeout,
        Setting::ActivityThrottle,
        Setting::JoinWait,
    ];

    /// The option's name in `Session.start({...})`.
    pub fn option(self) -> &'static str {
        match self {
            Setting::IdleTimeout => "idleTimeoutMs",
            Setting::IdleWarning => "idleWarningMs",
            Setting::AbsoluteLifetime => "absoluteTimeoutMs",
            Setting::RefreshLead => "refreshLeadMs",
            Setting::RefreshJitter => "refreshJitterMs",
            Setting::LockWait => "lockWaitMs",
            Setting::RequestTimeout => "requestTimeoutMs",
            Setting::ActivityThrottle => "activityThrottleMs",
            Setting::JoinWait => "joinWaitMs",
        }
    }

    /// Its bit in a mask of explicit settings: `1 << ` its index in [`Setting::ALL`].
    pub fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// Why a configuration was refused: the setting, and what it contradicts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InvalidConfig {
    /// The offending setting.
    pub setting: Setting,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl Config {
    /// The safeguard switches in force (all off without the `fault-injection` feature).
    #[inline]
    pub(crate) fn faults(&self) -> Faults {
        #[cfg(feature = "fault-injection")]
        {
            self.faults
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            Faults::default()
        }
    }

    /// Sets `setting` to `ms` milliseconds, as the JavaScript option does: for the settings
    /// that can be turned off (`idleTimeoutMs`, `absoluteTimeoutMs`), `0` turns them off.
    pub fn set(&mut self, setting: Setting, ms: Millis) {
        let on = Some(ms).filter(|&v| v > 0);
        match setting {
            Setting::IdleTimeout => self.idle_timeout = on,
            Setting::IdleWarning => self.idle_warning = ms,
            Setting::AbsoluteLifetime => self.absolute_lifetime = on,
            Setting::RefreshLead => self.refresh_lead = ms,
            Setting::RefreshJitter => self.refresh_jitter = ms,
            Setting::LockWait => self.lock_wait = ms,
            Setting::RequestTimeout => self.request_timeout = ms,
            Setting::ActivityThrottle => self.activity_throttle = ms,
            Setting::JoinWait => self.join_wait = ms,
        }
    }

    /// The one place a configuration is checked. `explicit` lists the settings the
    /// application gave; the others are defaults, and those that depend on another setting
    /// follow it: the idle warning is at most a quarter of the idle timeout, the activity
    /// throttle at most half the idle warning (so activity anywhere is published before any
    /// tab acts on the warning or the deadline), and the lock wait exceeds the request
    /// timeout by half.
    ///
    /// # Errors
    /// [`InvalidConfig`] naming the first setting that is zero where zero makes no sense, or
    /// that contradicts another explicit one (a warning not shorter than the timeout, a
    /// throttle above half the warning, a lock wait not above the request timeout).
    ///
    /// # Examples
    /// ```
    /// use tessera::core::{Config, Setting};
    /// let c = Config { idle_timeout: Some(5_000), ..Config::default() };
    /// let c = c.resolve(&[Setting::IdleTimeout]).unwrap();
    /// assert!(c.activity_throttle <= c.idle_warning / 2);
    /// let bad = Config { lock_wait: 5_000, ..Config::default() };
    /// assert_eq!(bad.resolve(&[Setting::LockWait]).unwrap_err().setting, Setting::LockWait);
    /// ```
    pub fn resolve(self, explicit: &[Setting]) -> Result<Config, InvalidConfig> {
        self.resolve_given(explicit.iter().fold(0, |m, s| m | s.bit()))
    }

    /// [`Config::resolve`] with the explicit settings as a mask of [`Setting::bit`]s.
    ///
    /// # Errors
    /// As [`Config::resolve`].
    pub fn resolve_given(mut self, given: u16) -> Result<Config, InvalidConfig> {
        let err = |setting, problem| Err(InvalidConfig { setting, problem });
        let given = |s: Setting| given & s.bit() != 0;
        for (setting, v) in [
            (Setting::RefreshLead, self.refresh_lead),
            (Setting::RequestTimeout, self.request_timeout),
            (Setting::LockWait, self.lock_wait),
            (Setting::ActivityThrottle, self.activity_throttle),
        ] {
            if v == 0 {
                return err(setting, "must be > 0");
            }
        }
        if let Some(timeout) = self.idle_timeout {
            if given(Setting::IdleWarning) {
                if self.idle_warning >= timeout {
                    return err(Setting::IdleWarning, "must be < idleTimeoutMs");
                }
            } else {
                self.idle_warning = self.idle_warning.min(timeout / 4);
            }
            // The window in which published activity must reach every tab.
            let window = if self.idle_warning > 0 {
                self.idle_warning
            } else {
                timeout / 4
            };
            if given(Setting::ActivityThrottle) {
                if self.activity_throttle > window / 2 {
                    return err(
                        Setting::ActivityThrottle,
                        "must be <= idleWarningMs / 2 (or idleTimeoutMs / 8)",
                    );
                }
            } else {
                self.activity_throttle = self.activity_throttle.min(window / 2).max(1);
            }
        }
        if self.lock_wait <= self.request_timeout {
            if given(Setting::LockWait) {
                return err(Setting::LockWait, "must be > requestTimeoutMs");
            }
            self.lock_wait = self
                .request_timeout
                .saturating_add(self.request_timeout / 2);
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_its_bit_and_its_field() {
        let mut seen = 0u16;
        for (i, s) in Setting::ALL.into_iter().enumerate() {
            assert_eq!(s.bit(), 1 << i, "{s:?}");
            seen |= s.bit();
            // `set` reaches the setting's own field and no other.
            let mut c = Config::default();
            c.set(s, 12_345);
            let d = Config::default();
            let fields = |c: &Config| {
                [
                    c.idle_timeout.unwrap_or(0),
                    c.idle_warning,
                    c.absolute_lifetime.unwrap_or(0),
                    c.refresh_lead,
                    c.refresh_jitter,
                    c.lock_wait,
                    c.request_timeout,
                    c.activity_throttle,
                    c.join_wait,
                ]
            };
            let (a, b) = (fields(&c), fields(&d));
            for j in 0..9 {
                assert_eq!(a[j] == 12_345, i == j, "{s:?} field {j}");
                assert_eq!(a[j] != b[j], i == j, "{s:?} field {j}");
            }
        }
        assert_eq!(seen, 0x1ff);
        let mut c = Config::default();
        c.set(Setting::IdleTimeout, 0);
        c.set(Setting::AbsoluteLifetime, 0);
        assert_eq!((c.idle_timeout, c.absolute_lifetime), (None, None));
    }
}
