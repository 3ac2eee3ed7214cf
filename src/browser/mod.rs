//! Browser bindings: the JavaScript `Session` class.
//!
//! Two halves with one rule — **the engine decides, this layer performs**:
//!
//! * [`Core`] wraps the sans-IO [`Engine`](crate::core::Engine) for the page: it reads the
//!   clock and the CSPRNG, translates browser inputs (HTTP answers, bus messages, the shared
//!   record, lock grants, activity, timers) into engine inputs, and hands the engine's effects
//!   out one at a time. Exported to JS as the class `Session`, whose static `start` is the
//!   entry point; `start` resolves to the driver below, which is the session object users hold.
//! * `session.js` (a small JS module shipped in the package) performs the effects with the
//!   browser's own APIs — `fetch`, Web Locks, `BroadcastChannel`, Web Storage, WebCrypto
//!   AES-GCM with the vault's record framing (format defined by [`crate::vault`], which the
//!   interop browser test holds it to), cookie / IndexedDB / Cache Storage cleanup — and owns
//!   every listener, timer, lock and channel; `dispose()` releases them all. Performing I/O in
//!   JS keeps the package small: every web API or byte/text value crossing into Rust costs an
//!   import shim plus marshalling code (`bench/size.mjs` prints the figures, `bench/size.md`
//!   records what each cut saved).
//!
//! The activity hot path never enters Wasm per event: passive listeners compare timestamps
//! and call in at most once per sample window (`activity` in `src/browser/js/activity.js`).
use alloc::string::String;
use alloc::vec::Vec;

use js_sys::{Array, Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::boundary::{code_number, effect, input, num, reason_number, WEB_LOCKS_OPTION};
use crate::core::{
    merge_shared, wire::codec::utf8, Config, Effect, Engine, Event, Input, InvalidConfig,
    LogoutReason, Millis, RequestId, Setting, Tokens,
};

mod types;

#[wasm_bindgen(module = "/src/browser/session.js")]
extern "C" {
    /// The JS driver behind one session: the object `Session.start` resolves to.
    type Driver;
    #[wasm_bindgen(js_name = start)]
    fn driver_start(core: Core, options: &JsValue) -> Promise;
    // The methods below are the Rust handle's ([`Session`], used by the browser tests); the
    // shipped module does not call them, so they cost no import there.
    #[wasm_bindgen(method, getter)]
    fn state(this: &Driver) -> String;
    #[wasm_bindgen(method, getter)]
    fn user(this: &Driver) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn stats(this: &Driver) -> JsValue;
    #[wasm_bindgen(method)]
    fn login(this: &Driver, credentials: JsValue) -> Promise;
    #[wasm_bindgen(method, js_name = verifyMfa)]
    fn verify_mfa(this: &Driver, code: JsValue) -> Promise;
    #[wasm_bindgen(method)]
    fn logout(this: &Driver, options: JsValue) -> Promise;
    #[wasm_bindgen(method)]
    fn fetch(this: &Driver, input: JsValue, init: JsValue) -> Promise;
    #[wasm_bindgen(method)]
    fn on(this: &Driver, event: &str, callback: Function) -> Function;
    #[wasm_bindgen(method, js_name = stayActive)]
    fn stay_active(this: &Driver);
    #[wasm_bindgen(method)]
    fn dispose(this: &Driver);
}

#[wasm_bindgen(module = "/src/browser/session.js")]
extern "C" {
    #[wasm_bindgen(js_name = hasLocks)]
    fn has_locks() -> bool;
    /// The option numbered `name` (`boundary::WEB_LOCKS_OPTION`) of the `Session.start` options
    /// as a number: -1 absent (`undefined`, the options not an object, or the read threw), 0
    /// for `null`, the number when it is finite and `>= 0`, -3 for `false`, -2 for anything
    /// else. No JS value crosses into Rust.
    #[wasm_bindgen(js_name = opt)]
    fn opt(options: &JsValue, name: u8) -> f64;
    /// 32 bits from `crypto.getRandomValues` (0 where it is missing).
    #[wasm_bindgen(js_name = rnd)]
    fn rnd() -> u32;
    /// One effect as the array `Core::poll` returns.
    #[wasm_bindgen(js_name = fx)]
    fn fx(
        kind: u8,
        id: u32,
        n: f64,
        flag: bool,
        s: Option<&str>,
        t: Option<&str>,
        bytes: &[u8],
    ) -> JsValue;
    /// A rejected promise with an `Error` of code `invalid_options`, its message
    /// `"<option>: <problem>"` (the option by number, as for `opt`).
    #[wasm_bindgen(js_name = reject)]
    fn reject(option: u8, problem: &str) -> Promise;
}

#[wasm_bindgen(module = "/src/browser/session.js")]
extern "C" {
    #[wasm_bindgen(js_name = wipeCookies)]
    fn wipe_cookies(doc: &JsValue, loc: &JsValue) -> Array;
}

/// Expires every cookie visible to `doc` on every path prefix × domain suffix of `loc`, as
/// logout does for the page (tests drive it on a same-origin frame at a deep path, because
/// `history.pushState` does not move Chrome's cookie URL). Returns the names found.
pub fn wipe_cookies_in(doc: &web_sys::HtmlDocument, loc: &web_sys::Location) -> Array {
    wipe_cookies(doc, loc)
}

fn now() -> u64 {
    js_sys::Date::now() as u64
}

fn random_u64() -> u64 {
    u64::from(rnd()) << 32 | u64::from(rnd())
}

/// The engine configuration from the `Session.start` options, checked in one place
/// ([`Config::resolve_given`]): an invalid or contradictory option is an [`InvalidConfig`]
/// naming it. An option is absent (`undefined`), `null` or `0` (off, or zero), or a finite
/// number of milliseconds `>= 0`; anything else (negative, NaN, not a number) is invalid.
fn config_from(o: &JsValue) -> Result<Config, InvalidConfig> {
    let mut c = Config::default();
    let mut given = 0;
    for setting in Setting::ALL {
        let ms = opt(o, setting as u8);
        if ms == -1.0 {
            continue;
        }
        if ms < 0.0 {
            return Err(InvalidConfig {
                setting,
                problem: "must be a number >= 0",
            });
        }
        c.set(setting, ms as u64);
        given |= setting.bit();
    }
    c.web_locks = has_locks() && opt(o, WEB_LOCKS_OPTION) != -3.0;
    c.resolve_given(given)
}

/// A text the driver sent as UTF-8 bytes (absent when it was not a string).
fn text(b: Option<Vec<u8>>) -> Option<String> {
    utf8(&b?)
}

/// A login / MFA / refresh answer as the driver sends it (`expires_in` in seconds, NaN when
/// not a number; the access token, refresh token, session id and user as one byte array:
/// each as UTF-8 followed by `0xff`, an absent one as `0xfe`, which is no UTF-8 either) into
/// engine tokens.
fn tokens_from(secs: f64, bytes: Option<Vec<u8>>) -> Option<Tokens> {
    let bytes = bytes?;
    let mut rest = &bytes[..];
    let mut next = || {
        let end = rest.iter().position(|b| *b == 0xff)?;
        let text = utf8(rest.get(..end)?);
        rest = rest.get(end + 1..)?;
        text
    };
    let access_token = next()?;
    // Rejects NaN and negatives alike.
    if secs.is_nan() || secs < 0.0 {
        return None;
    }
    Some(Tokens {
        access_token,
        expires_in_ms: (secs * 1000.0).min(1e15) as u64,
        refresh_token: next(),
        session: next(),
        user: next(),
    })
}

fn u8a(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).into()
}

/// The engine of one session, as the JS driver sees it. Exported to JS under the name
/// `Session` only to carry the public static `Session.start`: its instances stay inside the
/// driver, and the object `start` resolves to is the driver (`session.js`), whose methods are
/// the public API. One exported class instead of two keeps the module and its glue small.
#[wasm_bindgen(js_name = Session, skip_typescript)]
pub struct Core {
    engine: Engine,
}

#[wasm_bindgen(js_class = Session)]
impl Core {
    /// Starts a session controller: restores a sealed persisted session, joins one held by
    /// another tab or the refresh cookie, and starts listening. Resolves to the session.
    ///
    /// The promise rejects only if the driver cannot start (no `window`).
    #[wasm_bindgen(skip_typescript)]
    pub fn start(options: JsValue) -> Promise {
        match new_core(&options) {
            Ok(core) => driver_start(core, &options),
            Err(e) => invalid_options(e),
        }
    }

    // Feeds one input (a `boundary::input` kind); `id` is the request an
    // answer belongs to (0 for inputs that answer nothing). No JS value crosses: `n` is the
    // input's number (a flag: `> 0`; a `Retry-After`; `expires_in`; NaN when absent), `bytes`
    // its bytes, its text as UTF-8, or a tokens answer's four texts (`#drive` in driver.js,
    // `tokens_from`). Untrusted payloads (bus bytes, stored records, server bodies) are
    // decoded here; anything malformed becomes an input the engine rejects and counts, never
    // a panic.
    pub fn handle(&mut self, kind: u8, id: u32, n: f64, bytes: Option<Vec<u8>>) {
        let id = RequestId(id);
        let flag = n > 0.0;
        let input = match kind {
            input::RESTORE => Input::Restore(bytes.unwrap_or_default()),
            input::RESUME => {
                // `true`: no other tab of this origin is alive, nobody could answer a join.
                self.engine.set_alone(flag);
                Input::Resume
            }
            input::LOGIN_OK => match tokens_from(n, bytes) {
                Some(tokens) => Input::LoginSucceeded { id, tokens },
                None => Input::LoginFailed { id },
            },
            input::MFA => Input::MfaRequired { id },
            input::LOGIN_FAILED => Input::LoginFailed { id },
            input::REFRESH_OK => match tokens_from(n, bytes) {
                Some(tokens) => Input::RefreshSucceeded { id, tokens },
                None => Input::RefreshFailed {
                    id,
                    retry_after: None,
                },
            },
            input::REFRESH_REJECTED => {
                match text(bytes).as_deref().and_then(LogoutReason::from_code) {
                    Some(reason) => Input::RefreshRejected { id, reason },
                    None => Input::RefreshFailed {
                        id,
                        retry_after: None,
                    },
                }
            }
            input::REFRESH_FAILED => Input::RefreshFailed {
                id,
                retry_after: (n >= 0.0).then_some(n as u64),
            },
            input::ACCESS_REJECTED => Input::AccessRejected {
                access_token: text(bytes).unwrap_or_default(),
            },
            // Bus messages and the shared record travel as base64url text; the driver decodes
            // it (garbage becomes an empty or one-byte array, which the engine rejects).
            input::BUS => Input::Bus(bytes.unwrap_or_default()),
            input::SHARED => Input::Shared(bytes),
            input::LOCK_GRANTED => Input::LockGranted { id },
            input::LOCK_UNAVAILABLE => Input::LockUnavailable { id },
            input::LOCK_LOST => Input::LockLost { id },
            input::TIMER => Input::Timer,
            // The number is when the input happened (the driver reports a sample window's
            // last input when the window ends); none (NaN): now.
            input::ACTIVITY if n > 0.0 => Input::ActivityAt(n as Millis),
            input::ACTIVITY => Input::Activity,
            input::STAY => Input::StayActive,
            input::LOGOUT => Input::Logout { everywhere: flag },
            input::VISIBLE => Input::Visibility(flag),
            input::ONLINE => Input::Online(flag),
            input::LOGIN_STARTED => Input::LoginStarted,
            input::LOGOUT_DONE => Input::LogoutAnswered { id },
            _ => return,
        };
        self.engine.handle(now(), input);
    }

    // The next effect as `[kind, id, number, flag, text, text2, bytes]` (made by `fx` in
    // `session.js`; which slots a kind uses is written there), or `undefined` when the queue is
    // empty. Flat arguments cross without a JS value each.
    pub fn poll(&mut self) -> JsValue {
        let Some(effect) = self.engine.poll_effect() else {
            return JsValue::UNDEFINED;
        };
        let (mut id, mut n, mut flag, mut s, mut t, mut b): (
            RequestId,
            Millis,
            bool,
            Option<&str>,
            Option<&str>,
            &[u8],
        ) = (RequestId(0), 0, false, None, None, &[]);
        // The effect kind: a `boundary::effect` number, cheaper than its name.
        let k = match &effect {
            Effect::SendRefresh {
                id: i,
                refresh_token,
            } => {
                (id, s) = (*i, refresh_token.as_deref());
                effect::REFRESH
            }
            Effect::SendLogout {
                id: i,
                everywhere,
                access_token,
                refresh_token,
            } => {
                (id, flag, s, t) = (
                    *i,
                    *everywhere,
                    access_token.as_deref(),
                    refresh_token.as_deref(),
                );
                effect::LOGOUT
            }
            Effect::AcquireLock { id: i, wait, steal } => {
                (id, n, flag) = (*i, *wait, *steal);
                effect::LOCK
            }
            Effect::ReleaseLock => effect::UNLOCK,
            Effect::Broadcast(bytes) => {
                b = bytes;
                effect::BROADCAST
            }
            Effect::PersistShared(bytes) => {
                b = bytes;
                effect::SHARED
            }
            Effect::StoreToken(bytes) => {
                b = bytes;
                effect::STORE
            }
            Effect::Wipe { tab_only } => {
                flag = *tab_only;
                effect::WIPE
            }
            Effect::SendLogin { id: i } => {
                id = *i;
                effect::LOGIN
            }
            Effect::Emit(event) => {
                // The event's number (`Event::number`), its time (deadline, expiry) or its text's
                // number (reason, code: `flag` set), and its text (user).
                id = RequestId(event.number().into());
                match event {
                    Event::IdleWarning { deadline: at } | Event::Refresh { expires_at: at } => {
                        n = *at
                    }
                    Event::Login { user, expires_at } => (n, t) = (*expires_at, user.as_deref()),
                    Event::Logout { reason } => (n, flag) = (reason_number(*reason).into(), true),
                    Event::Error { code } => (n, flag) = (code_number(*code).into(), true),
                    Event::Active | Event::Idle => {}
                }
                effect::EMIT
            }
        };
        fx(k, id.0, n as f64, flag, s, t, b)
    }

    // The bearer token while signed in (a JS string made in place, no owned copy).
    pub fn token(&self) -> JsValue {
        self.engine
            .access_token()
            .map_or(JsValue::UNDEFINED, JsValue::from_str)
    }

    // One number about the engine, by `what` (a `boundary::num` selector; one export for all
    // of them: each export costs a shim in the module and a method in the glue).
    pub fn num(&self, what: u8) -> f64 {
        let e = &self.engine;
        let ms = |t: Option<Millis>| t.map_or(-1.0, |t| t as f64);
        match what {
            num::DEADLINE => ms(e.next_deadline()),
            num::PENDING => e.resume_pending().into(),
            num::REFRESHING => e.refreshing().into(),
            num::SEEN => e.shared_serial() as f64,
            num::STATE => (e.state() as u8).into(),
            num::BUS_MALFORMED => e.stats().bus_malformed.into(),
            num::SHARED_MALFORMED => e.stats().shared_malformed.into(),
            num::REFRESH_SENT => e.stats().refresh_sent.into(),
            num::IDLE_DEADLINE => ms(e.idle_deadline()),
            _ => -1.0,
        }
    }

    // Max-merges a shared record (bytes) into the stored one (bytes, or null when absent or
    // undecodable); returns the bytes to store. Static (the driver calls it on the class,
    // `constructor.merge`): it reads no engine, and a static method's shim borrows none.
    // `new` is optional only for the module's size: as `Option` it takes the same conversion
    // as `stored` and `handle`'s bytes (the driver always passes it; none merges nothing).
    pub fn merge(stored: Option<Vec<u8>>, new: Option<Vec<u8>>) -> JsValue {
        u8a(&merge_shared(
            stored.as_deref(),
            &new.unwrap_or_default(),
            now(),
        ))
    }
}

fn new_core(options: &JsValue) -> Result<Core, InvalidConfig> {
    let config = config_from(options)?;
    Ok(Core {
        engine: Engine::new(config, random_u64(), random_u64(), now()),
    })
}

/// `Session.start` rejects with code `invalid_options`, the message naming the option.
fn invalid_options(e: InvalidConfig) -> Promise {
    reject(e.setting as u8, e.problem)
}

/// A session seen from Rust (the browser tests): the same JS driver that `Session.start`
/// resolves to in JavaScript, with its methods.
pub struct Session {
    driver: Driver,
}

impl Session {
    /// `Session.start` for Rust callers: awaits the driver.
    ///
    /// # Errors
    /// The driver's exception, if it cannot start.
    pub async fn start_async(options: JsValue) -> Result<Session, JsValue> {
        let started = match new_core(&options) {
            Ok(core) => driver_start(core, &options),
            Err(e) => invalid_options(e),
        };
        let driver = wasm_bindgen_futures::JsFuture::from(started).await?;
        Ok(Session {
            driver: driver.unchecked_into(),
        })
    }

    /// The state name: `"anonymous" | "mfa-required" | "active" | "idle-warning" | "logged-out"`.
    pub fn state(&self) -> String {
        self.driver.state()
    }

    /// The signed-in user's name from this tab's login answer (`null` when unknown).
    pub fn user(&self) -> JsValue {
        self.driver.user()
    }

    /// Diagnostic counters: `{busMalformed, sharedMalformed, refreshSent, persistent}`.
    pub fn stats(&self) -> JsValue {
        self.driver.stats()
    }

    /// Signs in with `{username, password}`; resolves to the new state.
    pub fn login(&self, credentials: JsValue) -> Promise {
        self.driver.login(credentials)
    }

    /// Completes a TOTP login with the 6-digit code; resolves to the new state.
    pub fn verify_mfa(&self, code: JsValue) -> Promise {
        self.driver.verify_mfa(code)
    }

    /// Broadcast to every other tab first (their wipe never needs the server), then the server
    /// revoke (best effort), then the wipe here; `{everywhere: true}` revokes every session of
    /// the user. Resolves after the `logout` event and the revoke's answer (or its timeout).
    pub fn logout(&self, options: JsValue) -> Promise {
        self.driver.logout(options)
    }

    /// `fetch` with the bearer token; on 401 refreshes once and retries once (never loops).
    pub fn fetch(&self, input: JsValue, init: JsValue) -> Promise {
        self.driver.fetch(input, init)
    }

    /// Subscribes to an event; returns a function that unsubscribes.
    pub fn on(&self, event: String, callback: Function) -> Function {
        self.driver.on(&event, callback)
    }

    /// "Stay signed in": the answer to `idle-warning`; counts as activity in every tab.
    pub fn stay_active(&self) {
        self.driver.stay_active()
    }

    /// Drops every listener, timer, lock and channel of this instance and frees its engine.
    pub fn dispose(&self) {
        self.driver.dispose()
    }

    /// The JavaScript session object itself (what `Session.start` resolves to in JS).
    pub fn as_js(&self) -> JsValue {
        self.driver.clone()
    }
}
