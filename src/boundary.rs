//! The Wasm ↔ JS boundary, declared once.
//!
//! The browser layer's Rust side (`Core::handle`, `Core::poll`, `Core::state`) and its JS
//! performer (the modules in `src/browser/js/`, bundled into `src/browser/session.js`)
//! exchange small numbers instead of names: which input is fed, which effect is to be
//! performed, which state the engine is in. They are declared here and nowhere else on the
//! Rust side; `Core` uses these constants, and the native test `tests/boundary.rs` reads the
//! performer's `boundary.js` and `driver.js` and the package's `.d.ts` and fails when either
//! disagrees with this module or with the engine's own lists ([`SessionState::ALL`],
//! [`LogoutReason::ALL`], [`ErrorCode::ALL`], [`EVENT_NAMES`]).
//!
//! The constants cost nothing in the shipped module (they are inlined; the name tables below
//! are used only by the test).
//!
//! [`SessionState::ALL`]: crate::core::SessionState::ALL
//! [`LogoutReason::ALL`]: crate::core::LogoutReason::ALL
//! [`ErrorCode::ALL`]: crate::core::ErrorCode::ALL

use crate::core::{ErrorCode, LogoutReason};

/// Declares numbered kinds once: a module of `u8` constants and a table of `(name, number)`
/// pairs with the same names (the JS side uses the same names, with its prefix).
macro_rules! kinds {
    ($(#[$doc:meta])* $module:ident, $table:ident, $prefix:literal { $($(#[$cdoc:meta])* $name:ident = $value:literal,)* }) => {
        $(#[$doc])*
        pub mod $module {
            $($(#[$cdoc])* pub const $name: u8 = $value;)*
        }
        /// The same constants as `(name in the performer's boundary.js, number)`, in order.
        pub const $table: &[(&str, u8)] = &[$((concat!($prefix, stringify!($name)), $value),)*];
    };
}

kinds! {
    /// Input kinds: the `kind` argument of `Core::handle` (`boundary.js`: `const NAME = n`).
    input, INPUTS, "" {
        /// A persisted token record (bytes) was read.
        RESTORE = 0,
        /// Resume a session (`true`: no other tab is alive).
        RESUME = 1,
        /// A login / MFA / cookie-adoption answer with tokens.
        LOGIN_OK = 2,
        /// The login answer asks for a TOTP code.
        MFA = 3,
        /// The login request failed.
        LOGIN_FAILED = 4,
        /// A refresh answer with tokens.
        REFRESH_OK = 5,
        /// A refresh answered 401 (the server's problem code).
        REFRESH_REJECTED = 6,
        /// A refresh failed retryably (`Retry-After` in ms, if any).
        REFRESH_FAILED = 7,
        /// A 401 from an API origin (the access token it refused).
        ACCESS_REJECTED = 8,
        /// A message from another tab (base64url bytes).
        BUS = 9,
        /// The shared coordination record (bytes, or null when absent).
        SHARED = 10,
        /// The refresh lock was granted.
        LOCK_GRANTED = 11,
        /// The refresh lock could not be had.
        LOCK_UNAVAILABLE = 12,
        /// The refresh lock was lost (stolen).
        LOCK_LOST = 13,
        /// The engine's deadline passed.
        TIMER = 14,
        /// Trusted user input.
        ACTIVITY = 15,
        /// `stayActive()`.
        STAY = 16,
        /// `logout()` (`true`: everywhere).
        LOGOUT = 17,
        /// The page became visible (`true`) or hidden.
        VISIBLE = 18,
        /// The browser went online (`true`) or offline.
        ONLINE = 19,
        /// A login request is about to go out (the engine answers with its id).
        LOGIN_STARTED = 20,
        /// The logout revoke was answered (or failed).
        LOGOUT_DONE = 21,
    }
}

kinds! {
    /// Effect kinds: the first element of the array `Core::poll` returns (`boundary.js`:
    /// `const FX_NAME = n`).
    effect, EFFECTS, "FX_" {
        /// `[REFRESH, id, refresh token | undefined]`.
        REFRESH = 0,
        /// `[LOGOUT, id, everywhere, access token | undefined, refresh token | undefined]`.
        LOGOUT = 1,
        /// `[LOCK, id, wait ms, steal]`.
        LOCK = 2,
        /// `[UNLOCK]`.
        UNLOCK = 3,
        /// `[BROADCAST, bytes]`.
        BROADCAST = 4,
        /// `[SHARED, bytes]`: merge into the shared record.
        SHARED = 5,
        /// `[STORE, bytes]`: seal and persist the token record.
        STORE = 6,
        /// `[WIPE]`.
        WIPE = 7,
        /// `[EMIT, event number (`Event::number`), ...payload]`.
        EMIT = 8,
        /// `[LOGIN, id]`: the id of the login request about to go out.
        LOGIN = 9,
    }
}

kinds! {
    /// What `Core::num` reports (`boundary.js`: `const NUM_NAME = n`): one export for every
    /// number the performer reads from the engine.
    num, NUMS, "NUM_" {
        /// When the engine wants `Timer` (wall-clock ms), or -1.
        DEADLINE = 0,
        /// 1 while the resume is undecided (no token, no answer, no failure yet).
        PENDING = 1,
        /// 1 while a refresh is wanted or under way (after a 401: whether it forced one).
        REFRESHING = 2,
        /// The serial of the newest live token in the shared record (0: none).
        SEEN = 3,
        /// The state, an index into `STATES` (`SessionState::ALL`).
        STATE = 4,
        /// Malformed bus messages seen.
        BUS_MALFORMED = 5,
        /// Malformed shared records seen.
        SHARED_MALFORMED = 6,
        /// Refresh requests sent.
        REFRESH_SENT = 7,
        /// The idle deadline (wall-clock ms) while signed in with an idle timeout, else -1.
        IDLE_DEADLINE = 8,
    }
}

/// The `Session.start` options Rust reads by number (`opt` and `reject` in `session.js`, whose
/// `OPTIONS` in `boundary.js` lists the names by number): the settings, a setting's number
/// being `setting as u8`, its place in [`Setting::ALL`], then `webLocks`, this number. The
/// names cross as numbers: no option name is in the module, nor passed as text.
///
/// [`Setting::ALL`]: crate::core::Setting::ALL
pub const WEB_LOCKS_OPTION: u8 = 9;

/// The text of a `logout` event (its reason) as it crosses (`Core::poll`'s number slot, the flag
/// set): the reason's place in [`LogoutReason::ALL`]. The performer names it (`TEXTS` in
/// `boundary.js`: the reasons, then the error codes).
pub fn reason_number(r: LogoutReason) -> u8 {
    r as u8
}

/// The text of an `error` event (its code) as it crosses, as [`reason_number`]: the code's
/// place in [`ErrorCode::ALL`] after every reason.
pub fn code_number(c: ErrorCode) -> u8 {
    LogoutReason::ALL.len() as u8 + c as u8
}

/// The event names the engine emits (`Event::name`), as the `.d.ts` declares them, in the
/// order of their numbers (`Event::number`; `boundary.js`: `EVENTS`).
pub const EVENT_NAMES: [&str; 7] = [
    "login",
    "refresh",
    "idle-warning",
    "active",
    "idle",
    "logout",
    "error",
];

/// Codes of the `error` event that the JS performer raises itself (the engine's are
/// [`ErrorCode::ALL`](crate::core::ErrorCode::ALL)).
pub const JS_ERROR_EVENT_CODES: [&str; 8] = [
    "vault_encoding",
    "vault_truncated",
    "vault_version",
    "vault_tampered",
    "vault_locked",
    "vault_unavailable",
    "storage_unavailable",
    "bus_unavailable",
];
