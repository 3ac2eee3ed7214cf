//! The engine: inputs in, effects out.
//!
//! # Driving an engine
//! ```
//! use tessera::core::{Config, Effect, Engine, Event, Input, SessionState, Tokens};
//! let mut e = Engine::new(Config::default(), 1, 0x5eed, 1_000);
//! e.handle(1_000, Input::Shared(None));
//! e.handle(1_000, Input::LoginSucceeded(Tokens {
//!     access_token: "at".into(), expires_in_ms: 300_000, refresh_token: None }));
//! let mut saw_login = false;
//! while let Some(effect) = e.poll_effect() {
//!     // perform it: persist, broadcast, emit…
//!     if let Effect::Emit(Event::Login) = effect { saw_login = true; }
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
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use super::bus::Msg;
use super::config::Config;
use super::logout::LogoutReason;
use super::rng::Rng;
use super::shared::{Shared, TokenMeta, TokenRecord};
use super::{Millis, SessionState};

/// Tokens from a successful login, MFA step or refresh answer.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub struct Tokens {
    /// The bearer token (`access_token`).
    pub access_token: String,
    /// Its lifetime in **milliseconds** (the server's `expires_in` is seconds: multiply).
    pub expires_in_ms: Millis,
    /// The refresh token in token mode (`refresh_token`); `None` in cookie mode.
    pub refresh_token: Option<String>,
}

/// Everything that can happen to a tab.
#[cfg_attr(test, derive(Debug))]
pub enum Input {
    /// The vault's token record (decrypted bytes of an earlier [`Effect::StoreToken`]) at
    /// startup, and again whenever another tab rewrites it (its `storage` event): a newer record
    /// is adopted, so a token whose bus message was lost is still found. A record that does not decode is reported with
    /// [`ErrorCode::RecordInvalid`]; the driver then deletes it.
    Restore(Vec<u8>),
    /// Try to join an existing session: ask other tabs for the token and, if none answers within
    /// `join_wait`, refresh (cookie mode: the cookie may hold a live session). A definitive
    /// rejection then leaves the tab anonymous, without a `logout` event.
    Resume,
    /// The login (or MFA) request is being sent. Optional but recommended: the engine then dates
    /// the session and the token's expiry from the send time, which stays right even when the
    /// tab is frozen before it handles the answer; and a logout seen before the answer arrives
    /// wins over it (the answer is dropped, the tab stays anonymous).
    LoginStarted,
    /// Login or MFA answered with tokens.
    LoginSucceeded(Tokens),
    /// Login answered `{mfa_required: true}`.
    MfaRequired,
    /// The login/MFA flow ended without a session (e.g. `mfa_expired`).
    LoginFailed,
    /// The refresh request answered 200.
    RefreshSucceeded(Tokens),
    /// The refresh request answered 401 with a definitive code
    /// (see [`LogoutReason::from_code`]).
    RefreshRejected(LogoutReason),
    /// The refresh request failed retryably (network error, 5xx, 429, other 4xx).
    RefreshFailed {
        /// The server's `Retry-After`, in milliseconds, when it sent one.
        retry_after: Option<Millis>,
    },
    /// A resource request with the current access token answered 401: refresh now (once).
    AccessRejected,
    /// Bytes received on the tab bus (BroadcastChannel or storage-event fallback).
    Bus(Vec<u8>),
    /// The stored shared record (`None`: storage works and the key is absent).
    Shared(Option<Vec<u8>>),
    /// The refresh lock was granted (after [`Effect::AcquireLock`]).
    LockGranted,
    /// The lock was not granted within the requested wait.
    LockUnavailable,
    /// A held lock was taken away (stolen by another tab).
    LockLost,
    /// The timer armed at [`Engine::next_deadline`] fired (possibly late).
    Timer,
    /// User activity in this tab (pointer, key, wheel, touch, scroll); cheap to feed often.
    Activity,
    /// The user answered the idle warning with "stay signed in".
    StayActive,
    /// The user asked to log out (this device, or every session of the account).
    Logout {
        /// `true` for logout-everywhere.
        everywhere: bool,
    },
    /// The page became visible (`true`: wake, focus) or hidden.
    Visibility(bool),
    /// `online` / `offline` events.
    Online(bool),
}

/// Work the driver performs for the engine, in order.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub enum Effect {
    /// `POST /auth/refresh` (cookie mode: empty body; token mode: `{refresh_token}`); answer
    /// with one of the `Refresh*` inputs.
    SendRefresh {
        /// The refresh token in token mode.
        refresh_token: Option<String>,
    },
    /// `POST /auth/logout` (or `/auth/logout-all`), best effort. Send it before performing the
    /// following [`Effect::Wipe`] (it carries the credentials to present); its answer need not
    /// be awaited: the logout epoch is already persisted and broadcast.
    SendLogout {
        /// `true`: `/auth/logout-all`.
        everywhere: bool,
        /// The bearer to present, if any.
        access_token: Option<String>,
        /// The refresh token in token mode.
        refresh_token: Option<String>,
    },
    /// Request the origin-wide refresh lock; answer with [`Input::LockGranted`] or, after at
    /// most `wait` ms, [`Input::LockUnavailable`]. `steal: true` takes it from the holder.
    AcquireLock {
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
    Wipe,
    /// Deliver an event to the application.
    Emit(Event),
}

/// Application-facing events (JS names via [`Event::name`]).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub enum Event {
    /// A session began in this tab (own login, or adopted from another tab / restored).
    Login,
    /// The access token was renewed (here or in another tab).
    Refresh,
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
    /// The JavaScript event name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Login => "login",
            Event::Refresh => "refresh",
            Event::IdleWarning { .. } => "idle-warning",
            Event::Active => "active",
            Event::Idle => "idle",
            Event::Logout { .. } => "logout",
            Event::Error { .. } => "error",
        }
    }
}

/// Error codes of the `error` event.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
#[non_exhaustive]
pub enum ErrorCode {
    /// A refresh failed retryably; the engine retries with backoff.
    RefreshRetry,
    /// The restored token record did not decode; the driver should delete it.
    RecordInvalid,
}

impl ErrorCode {
    /// The stable code string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::RefreshRetry => "refresh_retry",
            ErrorCode::RecordInvalid => "record_invalid",
        }
    }
}

/// Counters for diagnostics and tests.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(test, derive(Debug))]
pub struct Stats {
    /// Bus messages that failed to decode (ignored).
    pub bus_malformed: u32,
    /// Shared records that failed to decode (ignored).
    pub shared_malformed: u32,
    /// Refresh requests this tab sent.
    pub refresh_sent: u32,
    /// Answers ignored because a newer token or a logout won.
    pub stale_answers: u32,
    /// Times this tab stole the refresh lock.
    pub lock_steals: u32,
}

/// The token this tab holds.
pub(crate) struct Held {
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
    pub(crate) meta: TokenMeta,
}

/// Where the refresh machinery is.
#[derive(Clone, Copy, PartialEq, Eq)]
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
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pending {
    /// The serial its answer will carry.
    pub(crate) serial: u64,
    /// The logout epoch of the session it refreshes.
    pub(crate) epoch: u64,
    /// The stamp of the token held when it was sent (`None`: a resume without a token).
    pub(crate) presented: Option<super::shared::Stamp>,
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
    pub(crate) phase: Phase,
    pub(crate) lock_held: bool,
    pub(crate) online: bool,
    /// Refresh of the held token was forced (401 on a resource request).
    pub(crate) forced: bool,
    /// Cookie-mode join in progress (no token yet).
    pub(crate) resuming: bool,
    /// No other tab of this origin is alive (the driver said so): a resume skips the join wait.
    pub(crate) alone: bool,
    /// The last refresh request sent, until its answer is handled.
    pub(crate) last_req: Option<Pending>,
    /// A logout was observed after the pending login request was sent.
    pub(crate) login_stale: bool,
    /// When the pending login request was sent ([`Input::LoginStarted`]).
    pub(crate) login_sent: Option<Millis>,
    /// Retry attempt counter for backoff.
    pub(crate) attempt: u32,
    /// Jitter drawn for the token with this serial.
    pub(crate) jitter: (u64, Millis),
    /// The newest serial this tab asked other tabs for, when, and how many times before.
    pub(crate) requested: (u64, Millis, u32),
    /// When this tab last published activity.
    pub(crate) activity_sent: Millis,
    /// Local activity not yet published.
    pub(crate) activity_dirty: bool,
    pub(crate) stats: Stats,
    pub(crate) effects: VecDeque<Effect>,
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
            phase: Phase::Idle,
            lock_held: false,
            online: true,
            forced: false,
            resuming: false,
            alone: false,
            login_sent: None,
            login_stale: false,
            last_req: None,
            attempt: 0,
            jitter: (u64::MAX, 0),
            requested: (0, 0, 0),
            activity_sent: 0,
            activity_dirty: false,
            stats: Stats::default(),
            effects: VecDeque::new(),
        }
    }

    /// Feeds one input at wall-clock time `now`. Never panics, whatever the input.
    pub fn handle(&mut self, now: Millis, input: Input) {
        self.now = now;
        // Inputs after which the driver has just re-read the shared record (see the contract):
        // only then may the idle policy act, so a tab thawing from a freeze cannot log everybody
        // out on its stale view of the origin-wide activity while it handles a queued event.
        let epoch_before = self.shared.epoch;
        let fresh = matches!(
            input,
            Input::Timer | Input::Shared(_) | Input::LockGranted | Input::Visibility(true)
        );
        match input {
            Input::Restore(bytes) => self.on_restore(now, &bytes),
            Input::Resume => self.on_resume(now),
            Input::LoginStarted => {
                self.login_sent = Some(now);
                self.login_stale = false;
            }
            Input::LoginSucceeded(t) => self.on_login(now, t),
            Input::MfaRequired => {
                if self.held.is_none() {
                    self.state = SessionState::MfaRequired;
                }
            }
            Input::LoginFailed => {
                if self.state == SessionState::MfaRequired {
                    self.state = SessionState::Anonymous;
                }
            }
            Input::RefreshSucceeded(t) => self.on_refresh_ok(now, t),
            Input::RefreshRejected(reason) => self.on_refresh_rejected(now, reason),
            Input::RefreshFailed { retry_after } => self.on_refresh_failed(now, retry_after),
            Input::AccessRejected => {
                if self.held.is_some() {
                    self.forced = true;
                    self.requested = (0, 0, 0);
                }
            }
            Input::Bus(bytes) => match Msg::decode(&bytes) {
                Ok(msg) => self.on_msg(now, msg),
                Err(_) => self.stats.bus_malformed = self.stats.bus_malformed.saturating_add(1),
            },
            Input::Shared(None) => self.on_shared_missing(now),
            Input::Shared(Some(bytes)) => match Shared::decode(&bytes) {
                Ok(s) => self.observe_shared(now, &s),
                Err(_) => {
                    self.stats.shared_malformed = self.stats.shared_malformed.saturating_add(1)
                }
            },
            Input::LockGranted => self.on_lock_granted(now),
            Input::LockUnavailable => self.on_lock_unavailable(now),
            Input::LockLost => self.on_lock_lost(now),
            Input::Timer | Input::Visibility(_) => {}
            Input::Activity => self.on_activity(now, false),
            Input::StayActive => self.on_activity(now, true),
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
                    if let Phase::Backoff { req, .. } = self.phase {
                        self.phase = Phase::Backoff { until: now, req };
                    }
                }
            }
        }
        // A logout observed while a login request is pending overtakes it: the answer, when
        // it comes (maybe long after, from a frozen tab), must not revive a session that the
        // logout ended.
        if self.shared.epoch > epoch_before && self.login_sent.is_some() {
            self.login_stale = true;
        }
        self.tick(now, fresh);
    }

    /// The next effect to perform, in order; drain until `None` after every `handle`.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
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

    /// The origin-wide last activity this tab knows of.
    pub fn last_activity(&self) -> Millis {
        self.shared.last_activity
    }

    /// When the idle deadline falls, while signed in with an idle timeout.
    pub fn idle_deadline(&self) -> Option<Millis> {
        match (&self.held, self.cfg.idle_timeout) {
            (Some(_), Some(t)) => Some(self.shared.last_activity.saturating_add(t)),
            _ => None,
        }
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
        if self.activity_dirty {
            consider(
                self.activity_sent
                    .saturating_add(self.cfg.activity_throttle),
            );
        }
        best
    }

    /// The driver knows whether another tab of this origin is alive (e.g. whether any other
    /// tab holds its Web Lock). Alone, a later [`Input::Resume`] skips the join wait (no tab
    /// could answer) and goes straight to the refresh.
    pub fn set_alone(&mut self, alone: bool) {
        self.alone = alone;
    }

    /// `true` while a resume ([`Input::Resume`]) is undecided: no token yet, online, and
    /// neither a refresh answer nor a retryable failure so far (after one, the tab is
    /// anonymous for now and retries in the background).
    pub fn resume_pending(&self) -> bool {
        self.resuming
            && self.held.is_none()
            && self.online
            && !matches!(self.phase, Phase::Backoff { .. })
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

    fn on_msg(&mut self, now: Millis, msg: Msg) {
        match msg {
            Msg::Token {
                meta,
                access_token,
                refresh_token,
            } => {
                self.adopt(
                    now,
                    Held {
                        access_token,
                        refresh_token,
                        meta,
                    },
                );
            }
            Msg::Activity { epoch, at } => {
                if !self.cfg.unsafe_disable_shared_activity && epoch >= self.shared.epoch {
                    self.shared.last_activity = self.shared.last_activity.max(at);
                }
            }
            Msg::Logout { epoch, reason } => self.observe_epoch(now, epoch, Some(reason)),
            Msg::TokenRequest { tab, attempt } => {
                if tab != self.tab && self.should_answer(now, tab, attempt) {
                    self.broadcast_token();
                }
            }
            Msg::Claim(c) => {
                self.shared.merge(&Shared {
                    claim: Some(c),
                    ..Shared::default()
                });
            }
        }
    }

    /// Merges a shared record read from storage.
    pub(crate) fn observe_shared(&mut self, now: Millis, s: &Shared) {
        let mut s = s.clone();
        if self.cfg.unsafe_disable_epoch {
            s.epoch = self.shared.epoch;
            s.reason = None;
        }
        if self.cfg.unsafe_disable_shared_activity {
            s.last_activity = 0;
        }
        let (epoch, reason) = (s.epoch, s.reason);
        self.shared.merge(&s);
        self.observe_epoch(now, epoch, reason);
    }

    /// The shared record is gone: site data was cleared (`Clear-Site-Data` after a logout,
    /// or the user). A session held here ends; and every tab that knows the logout epoch
    /// writes it back at once, so a tab that wakes later (or opens now) still learns it.
    fn on_shared_missing(&mut self, now: Millis) {
        if self.cfg.unsafe_disable_epoch {
            return;
        }
        if self.held.is_some() {
            self.logout_remote(now, LogoutReason::Cleared);
        } else if self.shared.epoch > 0 {
            let s = Shared {
                epoch: self.shared.epoch,
                reason: self.shared.reason,
                ..Shared::default()
            };
            self.effects.push_back(Effect::PersistShared(s.encode()));
        }
    }

    fn on_restore(&mut self, now: Millis, bytes: &[u8]) {
        match TokenRecord::decode(bytes) {
            Ok(r) => {
                let held = Held {
                    access_token: r.access_token,
                    refresh_token: r.refresh_token,
                    meta: r.meta,
                };
                if self.adopt(now, held) {
                    self.persist_shared();
                } else if self.held.is_none() {
                    // A record of a session that ended (logged out, idle, expired): drop it.
                    self.effects.push_back(Effect::Wipe);
                }
            }
            Err(_) => self.emit(Event::Error {
                code: ErrorCode::RecordInvalid,
            }),
        }
    }

    fn on_login(&mut self, now: Millis, t: Tokens) {
        if core::mem::take(&mut self.login_stale) {
            self.login_sent = None;
            self.stats.stale_answers = self.stats.stale_answers.saturating_add(1);
            if self.held.is_none() {
                self.state = SessionState::Anonymous;
            }
            return;
        }
        let serial = self.max_serial().saturating_add(1);
        let start = self.login_sent.take().filter(|&t| t <= now).unwrap_or(now);
        let stamp = super::shared::Stamp {
            epoch: self.shared.epoch,
            session: start,
            serial,
            tab: self.tab,
        };
        let meta = TokenMeta {
            stamp,
            issued_at: start,
            expires_at: start.saturating_add(t.expires_in_ms),
        };
        self.shared.last_activity = self.shared.last_activity.max(now);
        self.activity_sent = now;
        self.activity_dirty = false;
        self.resuming = false;
        let held = Held {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            meta,
        };
        if self.adopt(now, held) {
            self.persist_shared();
            self.store_token();
            self.broadcast_token();
        }
    }

    /// Takes `h` as this tab's token if it is newer than anything held and its session is not
    /// logged out. Returns whether it was adopted.
    pub(crate) fn adopt(&mut self, now: Millis, h: Held) -> bool {
        let stamp = h.meta.stamp;
        if stamp.epoch < self.shared.epoch {
            self.stats.stale_answers = self.stats.stale_answers.saturating_add(1);
            return false;
        }
        // Never go back to an older token (the test-only switch lets the simulator prove that
        // it notices when a tab does).
        let rejected = match &self.held {
            Some(cur) if self.cfg.unsafe_adopt_older => stamp == cur.meta.stamp,
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
        if !was_signed_in && self.session_over(now, stamp.session) {
            // A session whose idle deadline or absolute lifetime already passed (restored from
            // the vault, resumed, or announced by a tab about to log out) is not joined.
            self.stats.stale_answers = self.stats.stale_answers.saturating_add(1);
            return false;
        }
        if new_session {
            // A login is activity; a refresh is not (a joining tab must not extend the
            // idle deadline just because the token it adopts is fresh).
            self.shared.last_activity =
                self.shared.last_activity.max(h.meta.stamp.session.min(now));
        }
        self.shared.merge(&Shared {
            token: Some(h.meta),
            ..Shared::default()
        });
        self.held = Some(h);
        self.forced = false;
        self.resuming = false;
        if !matches!(self.state, SessionState::Active | SessionState::IdleWarning) {
            self.state = SessionState::Active;
        }
        // A refresh in progress for an older token is moot now (an answer in flight is still
        // judged by its stamp when it arrives).
        match self.phase {
            Phase::InFlight { .. } | Phase::Backoff { .. } => {}
            _ => {
                self.phase = Phase::Idle;
                self.release_lock();
            }
        }
        self.emit(if was_signed_in && !new_session {
            Event::Refresh
        } else {
            Event::Login
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
        self.effects.push_back(Effect::Emit(e));
    }

    pub(crate) fn persist_shared(&mut self) {
        self.effects
            .push_back(Effect::PersistShared(self.shared.encode()));
    }

    pub(crate) fn store_token(&mut self) {
        if let Some(h) = &self.held {
            let rec = super::shared::encode_token_record(
                &h.access_token,
                h.refresh_token.as_deref(),
                &h.meta,
            );
            self.effects.push_back(Effect::StoreToken(rec));
        }
    }

    pub(crate) fn broadcast(&mut self, m: &Msg) {
        self.effects.push_back(Effect::Broadcast(m.encode()));
    }

    pub(crate) fn broadcast_token(&mut self) {
        if let Some(h) = &self.held {
            let m = super::bus::encode_token(&h.meta, &h.access_token, h.refresh_token.as_deref());
            self.effects.push_back(Effect::Broadcast(m));
        }
    }

    pub(crate) fn release_lock(&mut self) {
        if self.lock_held {
            self.lock_held = false;
            self.effects.push_back(Effect::ReleaseLock);
        }
    }
}
