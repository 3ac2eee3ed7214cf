//! The engine: inputs in, effects out.
//!
//! # Driving an engine
//! ```
//! use tessera::core::{Config, Effect, Engine, Event, Input, SessionState, Tokens};
//! let mut e = Engine::new(Config::default(), 1, 0x5eed, 1_000);
//! e.handle(1_000, Input::Shared(None));
//! // The user submits credentials: the engine asks for the login request, with an id.
//! e.handle(1_000, Input::LoginStarted);
//! let Some(Effect::SendLogin { id }) = e.poll_effect() else { unreachable!() };
//! // …the driver posts them; the answer brings the id back.
//! e.handle(1_050, Input::LoginSucceeded { id, tokens: Tokens {
//!     access_token: "at".into(), expires_in_ms: 300_000, refresh_token: None,
//!     session: Some("s1".into()), user: Some("alice".into()) } });
//! let mut saw_login = false;
//! while let Some(effect) = e.poll_effect() {
//!     // perform it: persist, broadcast, emit…
//!     if let Effect::Emit(Event::Login { user, .. }) = effect {
//!         saw_login = user.as_deref() == Some("alice");
//!     }
//! }
//! assert!(saw_login);
//! assert!(e.state() == SessionState::Active);
//! assert!(e.access_token() == Some("at"));
//! // Arm one timer at `e.next_deadline()`; when it fires, read the shared record,
//! // feed `Input::Shared(..)` and then `Input::Timer`.
//! assert!(e.next_deadline().is_some());
//! ```
//!
//! # Contract for the driver (browser layer or simulator)
//! * Call [`Engine::handle`] with the current wall-clock time for every input, then drain
//!   [`Engine::poll_effect`] until `None`, performing effects **in order**.
//! * Keep one timer armed at [`Engine::next_deadline`] (re-read after every `handle`); when it
//!   fires — however late — feed [`Input::Timer`]. Deadlines are judged by wall-clock `now`,
//!   so a late timer (sleep) or a clock jump is handled on the next input.
//! * Feed [`Input::Shared`] with the stored shared record at startup, on every `storage` event
//!   for its key, when a logout request ([`Effect::SendLogout`]) has completed (its
//!   `Clear-Site-Data` may have erased the record: the engine writes the epoch back), and right
//!   **before** [`Input::Timer`], [`Input::LockGranted`] and [`Input::Visibility`]`(true)` / focus (a tab that missed bus messages catches up here:
//!   logout epoch, newest token, origin-wide activity). Feed `Shared(None)` only when storage
//!   works and the key is absent.
//! * [`Effect::PersistShared`]: store `merge_shared(stored, bytes)` (never a blind overwrite).
//! * [`Effect::Wipe`] must not delete the shared record key (it carries the logout epoch).
use alloc::string::String;
use alloc::vec::Vec;

use super::config::Config;
use super::rng::Rng;
use super::wire::shared::{session_tag, Activity, CLOCK_TOLERANCE};
use super::wire::{LogoutReason, Msg, Shared, Stamp, TokenMeta, TokenRecord};
use super::{Millis, SessionState};

/// Identifies one request the engine asked the outside world for (login, MFA, refresh,
/// logout revoke, lock). The answering input brings it back; an answer whose id is not the
/// one the engine waits for belongs to a superseded request: it is counted
/// ([`Stats::superseded`]) and changes nothing.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct RequestId(pub u32);

/// Tokens from a successful login, MFA step or refresh answer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Tokens {
    /// The bearer token (`access_token`).
    pub access_token: String,
    /// Its lifetime in **milliseconds** (the server's `expires_in` is seconds: multiply).
    /// Below [`MIN_TOKEN_LIFETIME`] it is taken as that floor.
    pub expires_in_ms: Millis,
    /// The refresh token in token mode (`refresh_token`); `None` in cookie mode.
    pub refresh_token: Option<String>,
    /// The server's session id (`session.id` of the answer), when it sent one: a refresh
    /// answer for another session than the one refreshed is refused.
    pub session: Option<String>,
    /// The signed-in user's name (`session.user`), when the server sent it.
    pub user: Option<String>,
}

/// The shortest access-token lifetime the engine plans with, whatever `expires_in` says
/// (an `expires_in` of 0 would otherwise mean a refresh storm).
pub const MIN_TOKEN_LIFETIME: Millis = 5_000;
/// Refreshes of one session are at least this far apart, whatever the server answers and
/// however often the application's requests are refused.
pub const MIN_REFRESH_GAP: Millis = 2_000;
/// The longest `Retry-After` the engine honours (a longer one is taken as this).
pub const MAX_RETRY_AFTER: Millis = 5 * 60_000;
pub use super::wire::shared::MAX_EPOCH_STEP;

/// Everything that can happen to a tab.
#[derive(Debug)]
pub enum Input {
    /// The vault's token record (decrypted bytes of an earlier [`Effect::StoreToken`]) at
    /// startup, and again whenever another tab rewrites it (its `storage` event): a newer record
    /// is adopted, so a token whose bus message was lost is still found. A record that does not
    /// decode is reported with [`ErrorCode::RecordInvalid`]; the driver then deletes it.
    Restore(Vec<u8>),
    /// Try to join an existing session: ask other tabs for the token and, if none answers within
    /// `join_wait`, refresh (cookie mode: the cookie may hold a live session). A definitive
    /// rejection then leaves the tab anonymous, without a `logout` event.
    Resume,
    /// The user submitted credentials (or a TOTP code): the engine answers with
    /// [`Effect::SendLogin`], whose id the answer brings back. The engine dates the session
    /// and the token's expiry from this moment, which stays right even when the tab is frozen
    /// before it handles the answer; and a logout seen before the answer arrives wins over it
    /// (the answer is dropped, the tab stays anonymous). A second login supersedes the first.
    LoginStarted,
    /// Login or MFA answered with tokens.
    LoginSucceeded {
        /// The [`Effect::SendLogin`] it answers.
        id: RequestId,
        /// What the server issued.
        tokens: Tokens,
    },
    /// Login answered `{mfa_required: true}`.
    MfaRequired {
        /// The [`Effect::SendLogin`] it answers.
        id: RequestId,
    },
    /// The login/MFA flow ended without a session (e.g. `mfa_expired`).
    LoginFailed {
        /// The [`Effect::SendLogin`] it answers.
        id: RequestId,
    },
    /// The refresh request answered 200.
    RefreshSucceeded {
        /// The [`Effect::SendRefresh`] it answers.
        id: RequestId,
        /// What the server issued.
        tokens: Tokens,
    },
    /// The refresh request answered 401 with a definitive code
    /// (see [`LogoutReason::from_code`]).
    RefreshRejected {
        /// The [`Effect::SendRefresh`] it answers.
        id: RequestId,
        /// The server's reason.
        reason: LogoutReason,
    },
    /// The refresh request failed retryably (network error, 5xx, 429, other 4xx).
    RefreshFailed {
        /// The [`Effect::SendRefresh`] it answers.
        id: RequestId,
        /// The server's `Retry-After`, in milliseconds, when it sent one (capped at
        /// [`MAX_RETRY_AFTER`]).
        retry_after: Option<Millis>,
    },
    /// The logout request ([`Effect::SendLogout`]) was answered, or failed.
    LogoutAnswered {
        /// The [`Effect::SendLogout`] it answers.
        id: RequestId,
    },
    /// A resource request answered 401: refresh now (once), if `access_token` is the token
    /// this tab holds. A 401 for an older token changes nothing, and a token that a forced
    /// refresh produced is not forced again (the 401 is about something else).
    AccessRejected {
        /// The bearer the refused request carried.
        access_token: String,
    },
    /// Bytes received on the tab bus (BroadcastChannel or storage-event fallback).
    Bus(Vec<u8>),
    /// The stored shared record (`None`: storage works and the key is absent).
    Shared(Option<Vec<u8>>),
    /// The refresh lock was granted (after [`Effect::AcquireLock`]).
    LockGranted {
        /// The [`Effect::AcquireLock`] it answers.
        id: RequestId,
    },
    /// The lock was not granted within the requested wait.
    LockUnavailable {
        /// The [`Effect::AcquireLock`] it answers.
        id: RequestId,
    },
    /// A held lock was taken away (stolen by another tab).
    LockLost {
        /// The [`Effect::AcquireLock`] that had obtained it.
        id: RequestId,
    },
    /// The timer armed at [`Engine::next_deadline`] fired (possibly late).
    Timer,
    /// User activity in this tab (pointer, key, wheel, touch); cheap to feed often.
    Activity,
    /// User activity in this tab that happened at `at` (wall-clock time) and is reported
    /// later: a driver that samples input reports the last input of a sample window when the
    /// window ends, so that the idle deadline counts from that input, not from the first of its
    /// window. A time after the input's `now` counts as `now`.
    ActivityAt(Millis),
    /// The user answered the idle warning with "stay signed in".
    StayActive,
    /// The user asked to log out (this device, or every session of the account).
    Logout {
        /// `true` for logout-everywhere.
        everywhere: bool,
    },
    /// The page became visible (`true`: wake, focus) or hidden.
    Visibility(bool),
    /// `online` / `offline` events, and the initial `navigator.onLine` at start (a tab that
    /// starts offline does not try to refresh until it is online).
    Online(bool),
}

/// Work the driver performs for the engine, in order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Effect {
    /// `POST /auth/login` (or `/auth/mfa`) with the credentials the user submitted; answer
    /// with [`Input::LoginSucceeded`], [`Input::MfaRequired`] or [`Input::LoginFailed`]
    /// carrying `id`.
    SendLogin {
        /// The request's id.
        id: RequestId,
    },
    /// `POST /auth/refresh` (cookie mode: empty body; token mode: `{refresh_token}`); answer
    /// with one of the `Refresh*` inputs carrying `id`.
    SendRefresh {
        /// The request's id.
        id: RequestId,
        /// The refresh token in token mode.
        refresh_token: Option<String>,
    },
    /// `POST /auth/logout` (or `/auth/logout-all`), best effort. Send it before performing the
    /// following [`Effect::Wipe`] (it carries the credentials to present); its answer
    /// ([`Input::LogoutAnswered`]) need not be awaited: the logout epoch is already persisted
    /// and broadcast.
    SendLogout {
        /// The request's id.
        id: RequestId,
        /// `true`: `/auth/logout-all`.
        everywhere: bool,
        /// The bearer to present, if any.
        access_token: Option<String>,
        /// The refresh token in token mode.
        refresh_token: Option<String>,
    },
    /// Request the origin-wide refresh lock; answer with [`Input::LockGranted`] or, after at
    /// most `wait` ms, [`Input::LockUnavailable`], carrying `id`. `steal: true` takes it from
    /// the holder. A new request replaces the previous one.
    AcquireLock {
        /// The request's id.
        id: RequestId,
        /// Longest wait before answering `LockUnavailable`.
        wait: Millis,
        /// Take the lock from its holder (Web Locks `steal: true`).
        steal: bool,
    },
    /// Release the refresh lock.
    ReleaseLock,
    /// Post these bytes on the tab bus.
    Broadcast(Vec<u8>),
    /// Merge these bytes into the stored shared record with
    /// [`merge_shared`](crate::core::merge_shared).
    PersistShared(Vec<u8>),
    /// Seal and store this token record in the vault (when persistent storage is configured;
    /// memory-only tabs just ignore it).
    StoreToken(Vec<u8>),
    /// Drop every token: memory, vault record, and the configured cleanup. Never the shared
    /// record key.
    Wipe {
        /// Drop only this tab's own copies (memory, `sessionStorage`), never the origin's
        /// (`localStorage`, cookies, IndexedDB, caches, the DPoP key): another tab ended the
        /// session and wiped those already, or a session begun since owns them.
        tab_only: bool,
    },
    /// Deliver an event to the application.
    Emit(Event),
}

/// Application-facing events (JS names via [`Event::name`]). Each carries what the
/// application needs, as of when it happened.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    /// A session began in this tab (own login, or adopted from another tab / restored).
    Login {
        /// The user's name, when known.
        user: Option<String>,
        /// When the access token expires (local clock).
        expires_at: Millis,
    },
    /// The access token was renewed (here or in another tab).
    Refresh {
        /// When the new access token expires (local clock).
        expires_at: Millis,
    },
    /// The idle deadline is near.
    IdleWarning {
        /// When the session will end without activity.
        deadline: Millis,
    },
    /// Activity after an idle warning: the session is active again.
    Active,
    /// The idle deadline passed (a `logout` with reason `idle` follows).
    Idle,
    /// The session ended in this tab.
    Logout {
        /// Why.
        reason: LogoutReason,
    },
    /// Something went wrong that the application may want to show.
    Error {
        /// What.
        code: ErrorCode,
    },
}

impl Event {
    /// The event's number across the Wasm boundary: the place of its name in
    /// `boundary::EVENT_NAMES` (held by `tests/boundary.rs`). The performer names it
    /// (`EVENTS` in `boundary.js`): no name crosses as text.
    pub fn number(&self) -> u8 {
        match self {
            Event::Login { .. } => 0,
            Event::Refresh { .. } => 1,
            Event::IdleWarning { .. } => 2,
            Event::Active => 3,
            Event::Idle => 4,
            Event::Logout { .. } => 5,
            Event::Error { .. } => 6,
        }
    }

    /// The JavaScript event name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Login { .. } => "login",
            Event::Refresh { .. } => "refresh",
            Event::IdleWarning { .. } => "idle-warning",
            Event::Active => "active",
            Event::Idle => "idle",
            Event::Logout { .. } => "logout",
            Event::Error { .. } => "error",
        }
    }
}

/// Error codes of the `error` event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A refresh failed retryably; the engine retries with backoff.
    RefreshRetry,
    /// The restored token record did not decode; the driver should delete it.
    RecordInvalid,
    /// A refresh answer belonged to another server session than the one refreshed (another
    /// login replaced the cookie meanwhile); it was refused.
    SessionMismatch,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 3] = [
        ErrorCode::RefreshRetry,
        ErrorCode::RecordInvalid,
        ErrorCode::SessionMismatch,
    ];

    /// The stable code string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::RefreshRetry => "refresh_retry",
            ErrorCode::RecordInvalid => "record_invalid",
            ErrorCode::SessionMismatch => "session_mismatch",
        }
    }
}

/// The ids of the requests an engine waits for ([`Engine::awaiting`]).
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Awaiting {
    /// The login / MFA request.
    pub login: Option<RequestId>,
    /// The refresh request (in flight, or failed and possibly still answered late).
    pub refresh: Option<RequestId>,
    /// The lock request, pending or granted.
    pub lock: Option<RequestId>,
    /// The logout revoke.
    pub logout: Option<RequestId>,
}

/// Counters for diagnostics and tests. The shipped Wasm module (a release build) counts only
/// the three the JavaScript API reports (`bus_malformed`, `shared_malformed`,
/// `refresh_sent`); the others stay 0 there (native and debug builds count them all: see
/// `DIAGNOSTICS` in this module). No decision reads a counter.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Stats {
    /// Bus messages that failed to decode (ignored).
    pub bus_malformed: u32,
    /// Shared records that failed to decode (ignored).
    pub shared_malformed: u32,
    /// Refresh requests this tab sent.
    pub refresh_sent: u32,
    /// Answers ignored because a newer token or a logout won.
    pub stale_answers: u32,
    /// Answers (and 401s) to superseded requests or tokens, ignored.
    pub superseded: u32,
    /// Refresh answers refused because they belonged to another server session.
    pub foreign_session: u32,
    /// Values from another tab or storage outside their bounds (far-future times, implausible
    /// counters), clamped or ignored.
    pub implausible: u32,
    /// Times this tab stole the refresh lock.
    pub lock_steals: u32,
}

/// The token this tab holds.
pub(crate) struct Held {
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) meta: TokenMeta,
    /// It came from a refresh forced by a 401: another 401 does not force one again.
    pub(crate) from_forced: bool,
}

/// Where the refresh machinery is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Phase {
    /// Nothing in progress; refresh when due.
    Idle,
    /// After `Resume`: waiting for another tab's token until `until`.
    Joining { until: Millis },
    /// `AcquireLock` emitted, no answer yet.
    Locking,
    /// Claim-based lock (no Web Locks): our claim settles until `until`.
    Claiming { until: Millis, serial: u64 },
    /// `SendRefresh` emitted at `since`.
    InFlight { since: Millis, req: Pending },
    /// A retryable failure: try again at `until` (or when back online). The request may
    /// still be answered late.
    Backoff { until: Millis, req: Pending },
}

/// What a refresh request in flight is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Pending {
    /// The request's id (its answer brings it back).
    pub(crate) id: RequestId,
    /// The serial its answer will carry.
    pub(crate) serial: u64,
    /// The logout epoch of the session it refreshes.
    pub(crate) epoch: u64,
    /// The stamp of the token held when it was sent (`None`: a resume without a token).
    pub(crate) presented: Option<Stamp>,
    /// The server session it refreshes, as far as known (`0`: unknown).
    pub(crate) sid: u64,
    /// It was forced by a 401.
    pub(crate) forced: bool,
}

/// The jitter drawn for the token with `serial`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Jitter {
    pub(crate) serial: u64,
    pub(crate) ms: Millis,
}

/// The newest serial this tab asked other tabs for, when, and how many times before.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Asks {
    pub(crate) serial: u64,
    pub(crate) at: Millis,
    pub(crate) attempt: u32,
}

/// The refresher's own state: the phase, the lock, retries, asks for the newest token.
#[derive(Debug)]
pub(crate) struct Refresher {
    pub(crate) phase: Phase,
    /// The lock request in progress or granted (its answers must carry this id).
    pub(crate) lock_id: Option<RequestId>,
    pub(crate) lock_held: bool,
    /// Refresh of the held token was forced (401 on a resource request).
    pub(crate) forced: bool,
    /// Cookie-mode join in progress (no token yet).
    pub(crate) resuming: bool,
    /// No other tab of this origin is alive (the driver said so): a resume skips the join wait.
    pub(crate) alone: bool,
    /// The last refresh request sent, until its answer is handled.
    pub(crate) last_req: Option<Pending>,
    /// Retry attempt counter for backoff.
    pub(crate) attempt: u32,
    pub(crate) jitter: Jitter,
    pub(crate) asks: Asks,
}

impl Refresher {
    fn new() -> Refresher {
        Refresher {
            phase: Phase::Idle,
            lock_id: None,
            lock_held: false,
            forced: false,
            resuming: false,
            alone: false,
            last_req: None,
            attempt: 0,
            jitter: Jitter {
                serial: u64::MAX,
                ms: 0,
            },
            asks: Asks::default(),
        }
    }

    /// The session ended: nothing pending survives it except what the driver still holds
    /// (the lock is released by the caller first) and the knowledge that no other tab lives.
    pub(crate) fn reset(&mut self) {
        let alone = self.alone;
        *self = Refresher::new();
        self.alone = alone;
    }
}

/// Local activity and its publication to other tabs.
#[derive(Default, Debug)]
pub(crate) struct IdleTracker {
    /// When this tab last published activity.
    pub(crate) sent: Millis,
    /// Local activity not yet published.
    pub(crate) dirty: bool,
    /// The last stored activity found dated in the future (counted once, as "now").
    pub(crate) seen_ahead: Option<Activity>,
}

impl IdleTracker {
    pub(crate) fn reset(&mut self) {
        self.dirty = false;
    }
}

/// The login request in progress.
#[derive(Default, Debug)]
pub(crate) struct LoginGate {
    /// The pending login/MFA request.
    pub(crate) id: Option<RequestId>,
    /// When it was sent.
    pub(crate) sent: Option<Millis>,
    /// A logout was observed after it was sent: its answer must not start a session.
    pub(crate) stale: bool,
}

/// Counts one more (saturating). One out-of-line function for every counter in [`Stats`].
#[inline(never)]
pub(crate) fn bump(n: &mut u32) {
    *n = n.saturating_add(1);
}

/// Whether the diagnostic counters of [`Stats`] that the JavaScript API does not expose
/// (everything but `bus_malformed`, `shared_malformed` and `refresh_sent`) are counted: in
/// native builds (the tests and the simulator read them) and in debug Wasm builds (the browser
/// tests), not in the shipped module, where nothing could read them (bench/size.md row 44).
pub(crate) const DIAGNOSTICS: bool = cfg!(any(not(target_arch = "wasm32"), debug_assertions));

/// [`bump`] for a counter only diagnostics read (see [`DIAGNOSTICS`]).
#[inline(always)]
pub(crate) fn diag(n: &mut u32) {
    if DIAGNOSTICS {
        bump(n);
    }
}

/// `x * 2^k`, saturating (`x.saturating_mul(1 << k)`; `k` below 64): without the 128-bit
/// multiply (`__multi3`) that a saturating `u64` multiply costs in Wasm.
pub(crate) fn mul_pow2(x: u64, k: u32) -> u64 {
    if x.leading_zeros() >= k {
        x << k
    } else {
        u64::MAX
    }
}

#[cfg(test)]
#[test]
fn mul_pow2_is_a_saturating_multiply() {
    let xs = [
        0,
        1,
        2,
        3,
        250,
        5_000,
        30_000,
        u64::MAX >> 31,
        u64::MAX >> 30,
        u64::MAX / 3,
    ];
    for x in xs.into_iter().chain([u64::MAX - 1, u64::MAX]) {
        for k in 0..64 {
            assert_eq!(mul_pow2(x, k), x.saturating_mul(1 << k), "{x} * 2^{k}");
        }
    }
}

/// One tab's session engine. See the [module docs](self) for the driver contract.
pub struct Engine {
    pub(crate) cfg: Config,
    pub(crate) tab: u64,
    pub(crate) rng: Rng,
    pub(crate) now: Millis,
    pub(crate) state: SessionState,
    /// Our merged view of the shared record.
    pub(crate) shared: Shared,
    pub(crate) held: Option<Held>,
    pub(crate) refresh: Refresher,
    pub(crate) idle: IdleTracker,
    pub(crate) login: LoginGate,
    pub(crate) online: bool,
    /// When the network last came back (offline, then online); 0 before that.
    pub(crate) back_online: Millis,
    /// The logout revoke in flight.
    pub(crate) logout_id: Option<RequestId>,
    next_id: u32,
    pub(crate) stats: Stats,
    /// Effects not yet polled, oldest first (a few at a time: a `Vec` is smaller in Wasm than
    /// a `VecDeque`).
    pub(crate) effects: Vec<Effect>,
}

impl Engine {
    /// Creates the engine of one tab. `tab_id` must differ between tabs of the origin (random
    /// is fine); `seed` is entropy for jitter; `now` is the wall clock.
    pub fn new(config: Config, tab_id: u64, seed: u64, now: Millis) -> Engine {
        Engine {
            cfg: config,
            tab: tab_id,
            rng: Rng::new(seed, tab_id),
            now,
            state: SessionState::Anonymous,
            shared: Shared::default(),
            held: None,
            refresh: Refresher::new(),
            idle: IdleTracker::default(),
            login: LoginGate::default(),
            online: true,
            back_online: 0,
            logout_id: None,
            next_id: 0,
            stats: Stats::default(),
            effects: Vec::new(),
        }
    }

    /// A fresh request id.
    pub(crate) fn new_id(&mut self) -> RequestId {
        self.next_id = self.next_id.wrapping_add(1);
        RequestId(self.next_id)
    }

    pub(crate) fn superseded(&mut self) {
        diag(&mut self.stats.superseded);
    }

    pub(crate) fn implausible(&mut self, n: u32) {
        if DIAGNOSTICS {
            self.stats.implausible = self.stats.implausible.saturating_add(n);
        }
    }

    /// The longest claim another tab can legitimately hold: settle, then a request, then the
    /// longest backoff, then the request after it.
    pub(crate) fn claim_span(&self) -> Millis {
        self.cfg
            .claim_settle
            .saturating_add(mul_pow2(self.cfg.request_timeout, 1))
            .saturating_add(self.cfg.backoff_cap.max(MAX_RETRY_AFTER))
            .saturating_add(super::wire::shared::CLOCK_TOLERANCE)
    }

    /// Feeds one input at wall-clock time `now`. Never panics, whatever the input.
    ///
    /// The handlers of the inputs and of the clock (`on_*`, `tick_*`, `observe_*`,
    /// `send_refresh`, `logout_local`, …) are `#[inline(never)]`: LLVM then compiles each on
    /// its own instead of folding them all into this function, and although `wasm-opt` inlines
    /// the single-call ones back, the module compresses better (bench/size.md row 43: brotli
    /// −65 B for +75 B raw). Size only; nothing else changes.
    pub fn handle(&mut self, now: Millis, input: Input) {
        if now.saturating_add(super::wire::shared::CLOCK_TOLERANCE) < self.now {
            self.clock_went_back(now);
        }
        self.now = now;
        // Inputs after which the driver has just re-read the shared record (see the contract):
        // only then may the idle policy act, so a tab thawing from a freeze cannot log everybody
        // out on its stale view of the origin-wide activity while it handles a queued event.
        let epoch_before = self.shared.epoch;
        let fresh = matches!(
            input,
            Input::Timer | Input::Shared(_) | Input::LockGranted { .. } | Input::Visibility(true)
        );
        match input {
            Input::Restore(bytes) => self.on_restore(now, &bytes),
            Input::Resume => self.on_resume(now),
            Input::LoginStarted => {
                let id = self.new_id();
                self.login = LoginGate {
                    id: Some(id),
                    sent: Some(now),
                    stale: false,
                };
                self.effects.push(Effect::SendLogin { id });
            }
            Input::LoginSucceeded { id, tokens } => {
                if self.login_answer(id) {
                    self.on_login(now, tokens);
                }
            }
            Input::MfaRequired { id } => {
                if self.login_answer(id) && self.held.is_none() {
                    self.state = SessionState::MfaRequired;
                }
            }
            Input::LoginFailed { id } => {
                if self.login_answer(id) && self.state == SessionState::MfaRequired {
                    self.state = SessionState::Anonymous;
                }
            }
            Input::RefreshSucceeded { id, tokens } => self.on_refresh_ok(now, id, tokens),
            Input::RefreshRejected { id, reason } => self.on_refresh_rejected(now, id, reason),
            Input::RefreshFailed { id, retry_after } => {
                self.on_refresh_failed(now, Some(id), retry_after)
            }
            Input::LogoutAnswered { id } => {
                if self.logout_id == Some(id) {
                    self.logout_id = None;
                } else {
                    self.superseded();
                }
            }
            Input::AccessRejected { access_token } => self.on_access_rejected(&access_token),
            Input::Bus(bytes) => match Msg::decode(&bytes) {
                Ok(msg) => self.on_msg(now, msg),
                Err(_) => bump(&mut self.stats.bus_malformed),
            },
            Input::Shared(None) => self.on_shared_missing(now),
            Input::Shared(Some(bytes)) => match Shared::decode(&bytes) {
                Ok(s) => self.observe_shared(now, s),
                Err(_) => bump(&mut self.stats.shared_malformed),
            },
            Input::LockGranted { id } => self.on_lock_granted(now, id),
            Input::LockUnavailable { id } => self.on_lock_unavailable(now, id),
            Input::LockLost { id } => self.on_lock_lost(now, id),
            Input::Timer | Input::Visibility(_) => {}
            Input::Activity => self.on_activity(now, now, false),
            Input::ActivityAt(at) => self.on_activity(now, at.min(now), false),
            Input::StayActive => self.on_activity(now, now, true),
            Input::Logout { everywhere } => {
                let reason = if everywhere {
                    LogoutReason::Everywhere
                } else {
                    LogoutReason::User
                };
                self.logout_local(now, reason, Some(everywhere));
            }
            Input::Online(online) => {
                let was = self.online;
                self.online = online;
                // Back online after being offline: retry now rather than at the backoff time.
                if online && !was {
                    self.back_online = now;
                    if let Phase::Backoff { req, .. } = self.refresh.phase {
                        self.refresh.phase = Phase::Backoff { until: now, req };
                    }
                }
            }
        }
        // A logout observed while a login request is pending overtakes it: the answer, when
        // it comes (maybe long after, from a frozen tab), must not revive a session that the
        // logout ended.
        if self.shared.epoch > epoch_before && self.login.sent.is_some() {
            self.login.stale = true;
        }
        self.tick(now, fresh);
    }

    /// Whether `id` answers the pending login request (else it is counted as superseded).
    fn login_answer(&mut self, id: RequestId) -> bool {
        if self.login.id == Some(id) {
            true
        } else {
            self.superseded();
            false
        }
    }

    /// A 401 on a resource request for `token`.
    #[inline(never)]
    fn on_access_rejected(&mut self, token: &str) {
        let Some(h) = &self.held else { return };
        if (h.access_token != token || h.from_forced) && !self.cfg.faults().any_401_forces {
            // A 401 for a token we no longer hold (it was replaced meanwhile), or for one a
            // forced refresh just produced (then the 401 is about permissions, not the token).
            self.superseded();
            return;
        }
        self.refresh.forced = true;
        self.refresh.asks = Asks::default();
    }

    /// The wall clock went back (it had run ahead, or was set back): what this tab merged
    /// into its view of the shared record that now lies in the future is dropped, so a clock
    /// that once ran a year ahead leaves no deadline a year away. (The token it holds keeps
    /// its stamp: a stamp is the token's identity and order, never re-dated.)
    #[inline(never)]
    fn clock_went_back(&mut self, now: Millis) {
        if self.cfg.faults().trust_clocks {
            return;
        }
        let span = self.claim_span();
        let n = self.shared.sanitize(now, span);
        self.implausible(n);
        self.idle.sent = self.idle.sent.min(now);
    }

    /// The next effect to perform, in order; drain until `None` after every `handle`.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        (!self.effects.is_empty()).then(|| self.effects.remove(0))
    }

    /// The session state (JS names via [`SessionState::as_str`]).
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The bearer token to put on requests, while signed in.
    pub fn access_token(&self) -> Option<&str> {
        match self.state {
            SessionState::Active | SessionState::IdleWarning => {
                self.held.as_ref().map(|h| h.access_token.as_str())
            }
            _ => None,
        }
    }

    /// Metadata of the token this tab holds (stamp, expiry, session start).
    pub fn token_meta(&self) -> Option<TokenMeta> {
        self.held.as_ref().map(|h| h.meta)
    }

    /// The origin-wide last activity of the session this tab holds (`0`: none known).
    pub fn last_activity(&self) -> Millis {
        match &self.held {
            Some(h) => self.activity_of(&h.meta.stamp),
            None => 0,
        }
    }

    /// The signed-in user's name, when known.
    pub fn user(&self) -> Option<&str> {
        self.held.as_ref().and_then(|h| h.user.as_deref())
    }

    /// When the idle deadline falls, while signed in with an idle timeout.
    pub fn idle_deadline(&self) -> Option<Millis> {
        match (&self.held, self.cfg.idle_timeout) {
            (Some(h), Some(t)) => Some(
                self.activity_of(&h.meta.stamp)
                    .max(h.meta.stamp.session)
                    .saturating_add(t),
            ),
            _ => None,
        }
    }

    /// The last activity known for the session of `stamp` (`0`: none). Activity of an older
    /// session never counts; that of a newer one does (the user is active in the session that
    /// is about to replace this one).
    pub(crate) fn activity_of(&self, stamp: &Stamp) -> Millis {
        let any = self.cfg.faults().activity_across_sessions;
        self.shared
            .activity
            .filter(|a| any || (a.epoch, a.session) >= (stamp.epoch, stamp.session))
            .map_or(0, |a| a.at)
    }

    /// Records activity at `at` for the session of `stamp`.
    pub(crate) fn note_activity(&mut self, stamp: &Stamp, at: Millis) {
        // The fault switch brings back the old origin-wide maximum across sessions.
        let at = if self.cfg.faults().activity_across_sessions {
            at.max(self.shared.activity.map_or(0, |a| a.at))
        } else {
            at
        };
        self.shared.merge(&Shared {
            activity: Some(Activity {
                epoch: stamp.epoch,
                session: stamp.session,
                at,
            }),
            ..Shared::default()
        });
    }

    /// The tab id this engine was created with.
    pub fn tab_id(&self) -> u64 {
        self.tab
    }

    /// The earliest wall-clock time at which the engine wants [`Input::Timer`]; `None` when
    /// nothing is pending.
    pub fn next_deadline(&self) -> Option<Millis> {
        let mut best: Option<Millis> = None;
        let now = self.now;
        let mut consider = |t: Millis| {
            if t > now && best.is_none_or(|b| t < b) {
                best = Some(t);
            }
        };
        if self.held.is_some() {
            self.idle_deadlines(&mut consider);
        }
        self.refresh_deadlines(&mut consider);
        if self.idle.dirty {
            consider(self.idle.sent.saturating_add(self.cfg.activity_throttle));
        }
        best
    }

    /// The driver knows whether another tab of this origin is alive (e.g. whether any other
    /// tab holds its Web Lock). Alone, a later [`Input::Resume`] skips the join wait (no tab
    /// could answer) and goes straight to the refresh.
    pub fn set_alone(&mut self, alone: bool) {
        self.refresh.alone = alone;
    }

    /// The serial of the newest live token the shared record names (0: none, or only tokens
    /// of sessions ended by a later logout). A driver without a tab bus learns of another
    /// tab's login through the record: it resumes from the cookie when this changes, and not
    /// on every other write (claims, activity), which would start resumes that supersede one
    /// another in every tab.
    pub fn shared_serial(&self) -> u64 {
        self.shared
            .token
            .filter(|t| t.stamp.epoch >= self.shared.epoch)
            .map_or(0, |t| t.stamp.serial)
    }

    /// `true` while a resume ([`Input::Resume`]) is undecided: no token yet, online, and
    /// neither a refresh answer nor a retryable failure so far (after one, the tab is
    /// anonymous for now and retries in the background).
    pub fn resume_pending(&self) -> bool {
        self.refresh.resuming
            && self.held.is_none()
            && self.online
            && !matches!(self.refresh.phase, Phase::Backoff { .. })
    }

    /// The requests whose answers the engine waits for (diagnostics and tests; drivers take
    /// the ids from the effects).
    pub fn awaiting(&self) -> Awaiting {
        Awaiting {
            login: self.login.id,
            refresh: self.pending_request().map(|r| r.id),
            lock: self.refresh.lock_id,
            logout: self.logout_id,
        }
    }

    /// Whether a refresh is wanted or under way (forced by a 401, locking, in flight, backing
    /// off). After [`Input::AccessRejected`], `false` means the 401 forced nothing: the
    /// driver returns the 401 instead of waiting for a new token.
    pub fn refreshing(&self) -> bool {
        self.refresh.forced || !matches!(self.refresh.phase, Phase::Idle)
    }

    /// Diagnostic counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Re-evaluates every deadline against `now` (wall clock: late timers and clock jumps are
    /// judged by the time it is, not by counting ticks).
    fn tick(&mut self, now: Millis, fresh: bool) {
        self.tick_idle(now, fresh);
        self.tick_activity(now);
        self.tick_refresh(now);
    }

    #[inline(never)]
    fn on_msg(&mut self, now: Millis, msg: Msg) {
        let limit = now.saturating_add(CLOCK_TOLERANCE);
        match msg {
            Msg::Token {
                meta,
                access_token,
                refresh_token,
                user,
            } => {
                let meta = if meta.plausible(now) || self.cfg.faults().trust_clocks {
                    meta
                } else {
                    // The token is real (its stamp orders it); only its times came from a
                    // clock that ran ahead.
                    self.implausible(1);
                    meta.bounded(now)
                };
                self.adopt(
                    now,
                    Held {
                        access_token,
                        refresh_token,
                        user,
                        meta,
                        from_forced: false,
                    },
                );
            }
            Msg::Activity(mut a) => {
                if self.cfg.faults().disable_shared_activity {
                    return;
                }
                if a.at > limit && !self.cfg.faults().trust_clocks {
                    // Another tab's clock runs ahead: the activity happened, but its time is
                    // unknown; it counts as now, never as a year from now.
                    self.implausible(1);
                    a.at = now;
                }
                // Only of a session this tab can know of: a later epoch means it missed a
                // logout (its news follows), or the message is forged.
                if a.epoch <= self.known_epoch() || self.cfg.faults().trust_counters {
                    self.shared.merge(&Shared {
                        activity: Some(a),
                        ..Shared::default()
                    });
                }
            }
            Msg::Logout { epoch, reason } => self.observe_epoch(now, epoch, Some(reason)),
            Msg::TokenRequest { tab, attempt } => {
                if tab != self.tab && self.should_answer(now, tab, attempt) {
                    self.broadcast_token();
                }
            }
            Msg::Claim(c) => {
                let mut s = Shared {
                    claim: Some(c),
                    ..Shared::default()
                };
                if !self.cfg.faults().trust_clocks {
                    let n = s.sanitize(now, self.claim_span());
                    self.implausible(n);
                }
                self.shared.merge(&s);
            }
        }
    }

    /// Merges a shared record read from storage.
    #[inline(never)]
    pub(crate) fn observe_shared(&mut self, now: Millis, mut s: Shared) {
        if !self.cfg.faults().trust_clocks {
            let ahead = s
                .activity
                .filter(|a| a.at > now.saturating_add(CLOCK_TOLERANCE));
            let n = s.sanitize(now, self.claim_span());
            self.implausible(n);
            // Stored activity from a clock that ran ahead: the activity happened, at an
            // unknown time; it counts as now — once. Re-reading the same stored value changes
            // nothing (a clamp on every read would move with `now`, for ever).
            if let Some(a) = ahead {
                if self.idle.seen_ahead != Some(a) {
                    self.idle.seen_ahead = Some(a);
                    s.activity = Some(Activity { at: now, ..a });
                }
            }
        }
        if self.cfg.faults().disable_epoch {
            s.epoch = self.shared.epoch;
            s.reason = None;
        }
        if self.cfg.faults().disable_shared_activity {
            s.activity = None;
        }
        let (epoch, reason) = (s.epoch, s.reason);
        if self.epoch_implausible(epoch) {
            // Keep the rest of the record, not its counter.
            s.epoch = self.shared.epoch;
            s.reason = None;
        }
        let known = s
            .epoch
            .max(self.known_epoch())
            .max(s.token.map_or(0, |t| t.stamp.epoch));
        if s.activity.is_some_and(|a| a.epoch > known) && !self.cfg.faults().trust_counters {
            // Activity of a session from an epoch nobody reached: forged.
            self.implausible(1);
            s.activity = None;
        }
        self.shared.merge(&s);
        self.observe_epoch(now, epoch, reason);
    }

    /// The newest logout epoch a session known here belongs to (or the logout epoch).
    pub(crate) fn known_epoch(&self) -> u64 {
        let held = self.held.as_ref().map_or(0, |h| h.meta.stamp.epoch);
        let seen = self.shared.token.map_or(0, |t| t.stamp.epoch);
        self.shared.epoch.max(held).max(seen)
    }

    /// A logout epoch too far ahead of the one this tab knows: forged, or corrupted.
    pub(crate) fn epoch_implausible(&self, epoch: u64) -> bool {
        !self.cfg.faults().trust_counters
            && epoch > self.shared.epoch.saturating_add(MAX_EPOCH_STEP)
    }

    /// The shared record is gone: site data was cleared (`Clear-Site-Data` after a logout,
    /// or the user). A session held here ends; and every tab that knows the logout epoch
    /// writes it back at once, so a tab that wakes later (or opens now) still learns it.
    #[inline(never)]
    fn on_shared_missing(&mut self, now: Millis) {
        if self.cfg.faults().disable_epoch {
            return;
        }
        if self.held.is_some() {
            self.logout_remote(now, LogoutReason::Cleared, true);
        } else if self.shared.epoch > 0 {
            let s = Shared {
                epoch: self.shared.epoch,
                reason: self.shared.reason,
                ..Shared::default()
            };
            self.effects.push(Effect::PersistShared(s.encode()));
        }
    }

    #[inline(never)]
    fn on_restore(&mut self, now: Millis, bytes: &[u8]) {
        match TokenRecord::decode(bytes) {
            Ok(r) => {
                if !r.meta.plausible(now) {
                    self.implausible(1);
                }
                let held = Held {
                    access_token: r.access_token,
                    refresh_token: r.refresh_token,
                    user: r.user,
                    meta: r.meta.bounded(now),
                    from_forced: false,
                };
                if self.adopt(now, held) {
                    self.persist_shared();
                } else if self.held.is_none() {
                    // A record of a session that ended (logged out, idle, expired): drop it.
                    self.effects.push(Effect::Wipe { tab_only: false });
                }
            }
            Err(_) => self.emit(Event::Error {
                code: ErrorCode::RecordInvalid,
            }),
        }
    }

    #[inline(never)]
    fn on_login(&mut self, now: Millis, t: Tokens) {
        let stale = core::mem::take(&mut self.login.stale);
        self.login.id = None;
        if stale {
            self.login.sent = None;
            diag(&mut self.stats.stale_answers);
            if self.held.is_none() {
                self.state = SessionState::Anonymous;
            }
            return;
        }
        let serial = self.max_serial().saturating_add(1);
        let start = self.login.sent.take().filter(|&t| t <= now).unwrap_or(now);
        let stamp = Stamp {
            epoch: self.shared.epoch,
            session: start,
            serial,
            tab: self.tab,
        };
        let meta = TokenMeta {
            stamp,
            issued_at: start,
            expires_at: start.saturating_add(self.lifetime(t.expires_in_ms)),
            sid: t.session.as_deref().map_or(0, session_tag),
        };
        // A login is activity, of the new session only.
        self.note_activity(&stamp, now);
        self.idle.sent = now;
        self.idle.dirty = false;
        self.refresh.resuming = false;
        let held = Held {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            user: t.user,
            meta,
            from_forced: false,
        };
        if self.adopt(now, held) {
            self.persist_shared();
            self.store_token();
            self.broadcast_token();
        }
    }

    /// The lifetime to plan with for a server's `expires_in`: at least [`MIN_TOKEN_LIFETIME`]
    /// (whatever the server says; the switch is for the simulator only).
    pub(crate) fn lifetime(&self, expires_in: Millis) -> Millis {
        if self.cfg.faults().trust_expires_in {
            expires_in
        } else {
            expires_in.max(MIN_TOKEN_LIFETIME)
        }
    }

    /// Takes `h` as this tab's token if it is newer than anything held and its session is not
    /// logged out. Returns whether it was adopted.
    pub(crate) fn adopt(&mut self, now: Millis, h: Held) -> bool {
        let stamp = h.meta.stamp;
        if stamp.epoch < self.shared.epoch {
            diag(&mut self.stats.stale_answers);
            return false;
        }
        if self.epoch_implausible(stamp.epoch) {
            self.implausible(1);
            return false;
        }
        // Never go back to an older token (the test-only switch lets the simulator prove that
        // it notices when a tab does).
        let rejected = match &self.held {
            Some(cur) if self.cfg.faults().adopt_older => stamp == cur.meta.stamp,
            Some(cur) => stamp <= cur.meta.stamp,
            None => false,
        };
        if rejected {
            return false;
        }
        let new_session = self
            .held
            .as_ref()
            .is_none_or(|c| c.meta.stamp.session != h.meta.stamp.session);
        let was_signed_in = self.held.is_some();
        if !was_signed_in && self.session_over(now, &stamp) {
            // A session whose idle deadline or absolute lifetime already passed (restored from
            // the vault, resumed, or announced by a tab about to log out) is not joined.
            diag(&mut self.stats.stale_answers);
            return false;
        }
        if new_session {
            // A login is activity; a refresh is not (a joining tab must not extend the
            // idle deadline just because the token it adopts is fresh).
            self.note_activity(&stamp, stamp.session.min(now));
        }
        self.shared.merge(&Shared {
            token: Some(h.meta),
            ..Shared::default()
        });
        let user = h.user.clone();
        let expires_at = h.meta.expires_at;
        self.held = Some(h);
        self.refresh.forced = false;
        self.refresh.resuming = false;
        if !matches!(self.state, SessionState::Active | SessionState::IdleWarning) {
            self.state = SessionState::Active;
        }
        // A refresh in progress for an older token is moot now (an answer in flight is still
        // judged by its stamp when it arrives).
        match self.refresh.phase {
            Phase::InFlight { .. } | Phase::Backoff { .. } => {}
            _ => {
                self.refresh.phase = Phase::Idle;
                self.release_lock();
            }
        }
        self.emit(if was_signed_in && !new_session {
            Event::Refresh { expires_at }
        } else {
            Event::Login { user, expires_at }
        });
        true
    }

    pub(crate) fn max_serial(&self) -> u64 {
        let mut m = self.shared.token.map_or(0, |t| t.stamp.serial);
        if let Some(h) = &self.held {
            m = m.max(h.meta.stamp.serial);
        }
        if let Some(c) = self.shared.claim {
            m = m.max(c.serial);
        }
        m
    }

    pub(crate) fn emit(&mut self, e: Event) {
        self.effects.push(Effect::Emit(e));
    }

    pub(crate) fn persist_shared(&mut self) {
        self.effects
            .push(Effect::PersistShared(self.shared.encode()));
    }

    pub(crate) fn store_token(&mut self) {
        if let Some(h) = &self.held {
            let rec = super::wire::shared::encode_token_record(
                &h.access_token,
                h.refresh_token.as_deref(),
                h.user.as_deref(),
                &h.meta,
            );
            self.effects.push(Effect::StoreToken(rec));
        }
    }

    pub(crate) fn broadcast(&mut self, m: &Msg) {
        self.effects.push(Effect::Broadcast(m.encode()));
    }

    pub(crate) fn broadcast_token(&mut self) {
        if let Some(h) = &self.held {
            let m = super::wire::bus::encode_token(
                &h.meta,
                &h.access_token,
                h.refresh_token.as_deref(),
                h.user.as_deref(),
            );
            self.effects.push(Effect::Broadcast(m));
        }
    }

    pub(crate) fn release_lock(&mut self) {
        self.refresh.lock_id = None;
        if self.refresh.lock_held {
            self.refresh.lock_held = false;
            self.effects.push(Effect::ReleaseLock);
        }
    }
}
