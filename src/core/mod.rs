//! The sans-IO session engine. No `web_sys`, no clock, no randomness: time and entropy
//! are inputs, browser work is returned as effects.
//!
//! * [`engine`] — [`Engine`], its [`Input`]s, [`Effect`]s and [`Event`]s (start here).
//! * [`refresh`] — when and how exactly one tab refreshes.
//! * [`idle`] — the origin-wide idle deadline, warning and absolute lifetime.
//! * [`logout`] — ending a session and the persisted logout epoch.
//! * [`wire`] — the leaf layer below the engine: the codec, [`LogoutReason`], stamps and
//!   claims, the shared coordination record ([`Shared`], [`merge_shared`]), the tab-bus
//!   [`Msg`] and the vault's [`TokenRecord`]. It imports nothing from the engine.
//! * [`config`] — [`Config`] with its defaults.
//!
//! # What the protocol guarantees, and how it is proven
//! The multi-tab simulator (`tests/sim.rs`, run by `cargo test`) drives 1–32 engines on a
//! virtual clock through a bus that delays, reorders, duplicates and drops messages, a Web
//! Locks–like lock, `localStorage`, a cookie jar and a server with refresh-token rotation,
//! reuse detection and the server's 10 s grace rule, while tabs open, close, crash, freeze, go
//! offline and the laptop sleeps; each tab's clock is skewed a little, some run up to a year
//! ahead for a while and are then set back; forged but well-formed messages and records
//! (far-future times, implausible logout epochs) arrive. After every step it checks:
//! 1. each refresh token is presented once — a second time only after the first answer was
//!    lost or its tab died or froze, and then the grace rule answers it; reuse detection never
//!    fires because of the protocol (only when a lost answer is followed by an outage longer
//!    than the grace window, which the simulator counts separately);
//! 2. a logout in any tab leaves every live tab without a token (and the vault empty) within
//!    one bus hop, or when a frozen tab thaws;
//! 3. no idle logout before the origin-wide deadline (minus at most one `activity_throttle`
//!    of activity a tab could not publish before it died), and nobody signed in after it;
//! 4. no tab goes back to an older token; no logout the user or the server did not cause;
//! 5. no input panics (garbage bus messages and storage records included);
//! 6. (through 2–4) no value from another tab, storage or the network moves a deadline or a
//!    counter outside its bounds. A tab whose clock jumped may end the session itself (it
//!    cannot know its clock is wrong; counted), and activity in it may be lost, never dated
//!    in the future.
//!
//! Assumptions the guarantees rest on: the server's grace window exceeds `request_timeout +
//! backoff_base` (a lost answer is retried within it unless the tab goes offline or to sleep
//! first — then the server's reuse detection ends the session everywhere, reason `reused`);
//! `lock_wait > request_timeout`; tabs of one origin share one wall clock up to
//! [`wire::shared::CLOCK_TOLERANCE`] (larger differences are survived as described, and the
//! claims fallback without Web Locks needs them within its settle time).

pub mod config;
pub mod engine;
pub mod idle;
pub mod logout;
pub mod refresh;
mod rng;
pub mod wire;

pub use config::{Config, Faults, InvalidConfig, Setting};
pub use engine::{
    Awaiting, Effect, Engine, ErrorCode, Event, Input, RequestId, Stats, Tokens, MAX_EPOCH_STEP,
    MAX_RETRY_AFTER, MIN_REFRESH_GAP, MIN_TOKEN_LIFETIME,
};
pub use wire::shared::Activity;
pub use wire::{
    merge_shared, Claim, DecodeError, LogoutReason, Millis, Msg, Shared, Stamp, TokenMeta,
    TokenRecord,
};
/// The lifecycle state of a session as the JavaScript API reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SessionState {
    /// No session.
    Anonymous,
    /// Password accepted; a TOTP code is required to finish.
    MfaRequired,
    /// Signed in.
    Active,
    /// Signed in, and the idle deadline is near.
    IdleWarning,
    /// The session ended in this tab.
    LoggedOut,
}

impl SessionState {
    /// Every state, in the order of their numbers across the Wasm boundary (`Core::num`): the
    /// declaration order, so a state's number is `state as u8` (held by a test).
    pub const ALL: [SessionState; 5] = [
        SessionState::Anonymous,
        SessionState::MfaRequired,
        SessionState::Active,
        SessionState::IdleWarning,
        SessionState::LoggedOut,
    ];

    /// The state's name in the JavaScript API.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Anonymous => "anonymous",
            SessionState::MfaRequired => "mfa-required",
            SessionState::Active => "active",
            SessionState::IdleWarning => "idle-warning",
            SessionState::LoggedOut => "logged-out",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_number_is_its_place_in_all() {
        for (i, s) in SessionState::ALL.into_iter().enumerate() {
            assert_eq!(s as usize, i, "{s:?}");
        }
    }

    #[test]
    fn state_names_match_the_public_contract() {
        assert_eq!(SessionState::Anonymous.as_str(), "anonymous");
        assert_eq!(SessionState::MfaRequired.as_str(), "mfa-required");
        assert_eq!(SessionState::IdleWarning.as_str(), "idle-warning");
        assert_eq!(SessionState::LoggedOut.as_str(), "logged-out");
    }
}
