//! Browser bindings: the JavaScript `Session` class.
//!
//! This layer decides nothing. It feeds the [`Engine`](crate::core::Engine) real time,
//! entropy and browser events, and performs the effects the engine returns, **in order**:
//! an effect that must finish before the next one (the server logout before the wipe, the
//! wipe before the `logout` event, sealing before a later wipe) pauses the queue until it
//! is done. Every listener, timer, lock and channel is an owned handle; `dispose()` drops
//! them all.
use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};

use crate::core::{merge_shared, Config, Effect, Engine, Event, Input, LogoutReason, SessionState, Tokens};
use crate::vault::{self, base64url_decode, base64url_encode, VaultKey};

mod activity;
mod bus;
mod cleanup;
mod handles;
mod http;
mod locks;
mod storage;
mod types;

use activity::Activity;
use bus::Bus;
use cleanup::{CleanupPlan, KEY_PREFIX};
pub use cleanup::wipe_cookies_in;
use handles::{Callback, Listener, Timer};
use http::{get, Answer};
use locks::Lock;
use storage::{StorageKind, Store};

/// Name of the session cookie that holds the browser-session-lifetime fallback vault key.
const FALLBACK_KEY_COOKIE: &str = "tessera_vk";

fn now() -> u64 {
    js_sys::Date::now() as u64
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

/// Builds a JS `Error` with `code` and `message` (and `status` when known).
fn js_error(code: &str, message: &str, status: u16) -> JsValue {
    let e = js_sys::Error::new(message);
    let _ = Reflect::set(&e, &s("code"), &s(code));
    if status != 0 {
        let _ = Reflect::set(&e, &s("status"), &JsValue::from(status));
    }
    e.into()
}

/// A problem answer from the server as a JS error.
fn problem_error(a: &Answer) -> JsValue {
    let code = a.str("code").unwrap_or_else(|| String::from("http_error"));
    let msg = a.str("detail").or_else(|| a.str("title")).unwrap_or_else(|| code.clone());
    js_error(&code, &msg, a.status)
}

/// Options the browser layer keeps (the engine keeps its own [`Config`]).
struct Opts {
    base_url: String,
    channel: String,
    token_mode: bool,
    cleanup: CleanupPlan,
    origin: String,
    token_key: String,
    shared_key: String,
    /// How often activity crosses from the JS tracker into Wasm (ms): at most once a second,
    /// and never less often than the engine publishes activity.
    activity_sample: f64,
}

/// Listener callbacks shared by the handles that call them.
struct Callbacks {
    timer: Callback,
    bus: Callback,
    lock: Callback,
    activity: Callback,
    dom: Callback,
}

struct Inner {
    // Handles first: they are dropped before the callbacks they reference.
    timer: Option<(Timer, u64)>,
    lock: Option<Lock>,
    bus: Option<Bus>,
    activity: Option<Activity>,
    dom: Vec<Listener>,
    cb: Option<Callbacks>,
    engine: Engine,
    opts: Opts,
    store: Store,
    vault_key: Option<(VaultKey, bool)>,
    mfa_token: Option<String>,
    user: JsValue,
    listeners: Vec<(String, u32, Function)>,
    next_listener: u32,
    /// An effect is being performed asynchronously; the queue waits.
    busy: bool,
    /// Refresh requests sent and not yet answered.
    refreshing: u32,
    /// Result of the last wipe, reported by the following `logout` event.
    cleared: JsValue,
    /// Events raised before `start` resolved, delivered on the next task.
    early: Option<Vec<(String, JsValue)>>,
    /// Resolvers of promises waiting for the next session event.
    waiters: Vec<Function>,
    disposed: bool,
    stats_bus_garbage: u32,
}

type Shared = Rc<RefCell<Inner>>;

/// A browser session: the SDK's single entry point. See the TypeScript declarations.
#[wasm_bindgen]
pub struct Session {
    inner: Shared,
}

fn read_shared_bytes(key: &str) -> Result<Option<Vec<u8>>, ()> {
    match storage::web_storage(StorageKind::Local) {
        Ok(Some(ls)) => match ls.get_item(key) {
            Ok(None) => Ok(None),
            // Garbage in the record is handed over as bytes the engine cannot decode.
            Ok(Some(text)) => Ok(Some(base64url_decode(&text).unwrap_or_else(|| vec![0]))),
            Err(_) => Err(()),
        },
        _ => Err(()),
    }
}

/// Feeds the stored shared record (when storage works) — required before timer, lock grant
/// and wake-up inputs.
fn feed_shared(rc: &Shared) {
    let key = rc.borrow().opts.shared_key.clone();
    if let Ok(bytes) = read_shared_bytes(&key) {
        rc.borrow_mut().engine.handle(now(), Input::Shared(bytes));
    }
}

/// Feeds one input (if any), then performs effects until the queue is empty or paused.
fn drive(rc: &Shared, input: Option<Input>) {
    {
        let mut i = rc.borrow_mut();
        if i.disposed {
            return;
        }
        if let Some(input) = input {
            i.engine.handle(now(), input);
        }
    }
    pump(rc);
}

fn pump(rc: &Shared) {
    loop {
        let effect = {
            let mut i = rc.borrow_mut();
            if i.busy || i.disposed {
                break;
            }
            match i.engine.poll_effect() {
                Some(e) => e,
                None => break,
            }
        };
        perform(rc, effect);
    }
    rearm_timer(rc);
}

fn rearm_timer(rc: &Shared) {
    let mut i = rc.borrow_mut();
    if i.disposed {
        return;
    }
    let want = i.engine.next_deadline();
    if want == i.timer.as_ref().map(|t| t.1) {
        return;
    }
    i.timer = None;
    if let (Some(at), Some(cb)) = (want, i.cb.as_ref()) {
        let delay = at.saturating_sub(now()) as f64;
        i.timer = Timer::new(delay, &cb.timer).map(|t| (t, at));
    }
}

/// Runs `fut` with the effect queue paused, then resumes it.
fn pause_while(rc: &Shared, fut: impl std::future::Future<Output = ()> + 'static) {
    rc.borrow_mut().busy = true;
    let rc2 = rc.clone();
    spawn_local(async move {
        fut.await;
        rc2.borrow_mut().busy = false;
        pump(&rc2);
        wake(&rc2);
    });
}

fn perform(rc: &Shared, effect: Effect) {
    match effect {
        Effect::SendRefresh { refresh_token } => {
            rc.borrow_mut().refreshing += 1;
            let rc2 = rc.clone();
            spawn_local(async move {
                let input = send_refresh(&rc2, refresh_token).await;
                rc2.borrow_mut().refreshing -= 1;
                drive(&rc2, Some(input));
                wake(&rc2);
            });
        }
        Effect::SendLogout { everywhere, access_token, refresh_token } => {
            let url = {
                let i = rc.borrow();
                let mut u = i.opts.base_url.clone();
                u.push_str(if everywhere { "/logout-all" } else { "/logout" });
                u
            };
            pause_while(rc, async move {
                let body = refresh_token.map(|rt| {
                    let o = Object::new();
                    let _ = Reflect::set(&o, &s("refresh_token"), &s(&rt));
                    JsValue::from(o)
                });
                // Best effort: offline or a dead server must not block the local wipe.
                let _ = http::post(&url, body.as_ref(), access_token.as_deref(), 5_000).await;
            });
        }
        Effect::AcquireLock { wait, steal } => {
            let mut i = rc.borrow_mut();
            i.lock = None;
            let name = {
                let mut n = String::from(KEY_PREFIX);
                n.push_str("refresh:");
                n.push_str(&i.opts.channel);
                n
            };
            let lock = i.cb.as_ref().and_then(|cb| Lock::request(&name, wait as f64, steal, &cb.lock));
            let missing = lock.is_none();
            i.lock = lock;
            drop(i);
            if missing {
                drive(rc, Some(Input::LockUnavailable));
            }
        }
        Effect::ReleaseLock => rc.borrow_mut().lock = None,
        Effect::Broadcast(bytes) => {
            let mut i = rc.borrow_mut();
            let text = base64url_encode(&bytes);
            if let Some(bus) = i.bus.as_mut() {
                bus.post(&text);
            }
        }
        Effect::PersistShared(bytes) => {
            let key = rc.borrow().opts.shared_key.clone();
            if let Ok(Some(ls)) = storage::web_storage(StorageKind::Local) {
                let stored = ls.get_item(&key).ok().flatten().and_then(|t| base64url_decode(&t));
                let merged = merge_shared(stored.as_deref(), &bytes);
                let _ = ls.set_item(&key, &base64url_encode(&merged));
            }
        }
        Effect::StoreToken(bytes) => {
            if !rc.borrow().store.persistent() {
                return;
            }
            let rc2 = rc.clone();
            pause_while(rc, async move {
                if rc2.borrow().vault_key.is_none() {
                    let k = obtain_key(&rc2).await;
                    rc2.borrow_mut().vault_key = k;
                }
                seal_and_store(&rc2, &bytes).await;
            });
        }
        Effect::Wipe => {
            {
                let mut i = rc.borrow_mut();
                let key = i.opts.token_key.clone();
                i.store.remove(&key);
                i.mfa_token = None;
                i.user = JsValue::NULL;
            }
            let rc2 = rc.clone();
            pause_while(rc, async move {
                let (plan_shared_key, ls_all) = {
                    let i = rc2.borrow();
                    (i.opts.shared_key.clone(), i.opts.cleanup.local_storage)
                };
                // Clearing all of localStorage must not lose the logout epoch.
                let keep = if ls_all { read_shared_text(&plan_shared_key) } else { None };
                let cleared = {
                    let plan = std::mem::take(&mut rc2.borrow_mut().opts.cleanup);
                    let out = cleanup::run(&plan).await;
                    rc2.borrow_mut().opts.cleanup = plan;
                    out
                };
                if let (Some(v), Ok(Some(ls))) = (keep, storage::web_storage(StorageKind::Local)) {
                    let _ = ls.set_item(&plan_shared_key, &v);
                }
                rc2.borrow_mut().cleared = cleared;
            });
        }
        Effect::Emit(event) => emit_engine_event(rc, event),
    }
}

fn read_shared_text(key: &str) -> Option<String> {
    storage::web_storage(StorageKind::Local).ok().flatten()?.get_item(key).ok().flatten()
}

#[wasm_bindgen(module = "/src/browser/crypto.js")]
extern "C" {
    /// AES-256-GCM via WebCrypto; rejects on authentication failure.
    fn gcm(encrypt: bool, key: &[u8], iv: &[u8], aad: &[u8], data: &[u8]) -> Promise;
}

async fn aes_gcm(encrypt: bool, key: &VaultKey, nonce: &[u8], aad: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let out = JsFuture::from(gcm(encrypt, key.as_bytes(), nonce, aad, data)).await.ok()?;
    Some(out.dyn_into::<js_sys::Uint8Array>().ok()?.to_vec())
}

/// Seals a token record under the vault key and stores it (record text `s.` / `c.` + the
/// vault record, by key source).
async fn seal_and_store(rc: &Shared, bytes: &[u8]) {
    let mut nonce = [0u8; vault::NONCE_LEN];
    if getrandom::fill(&mut nonce).is_err() {
        return;
    }
    let (key, server, ad) = {
        let i = rc.borrow();
        let Some((key, server)) = i.vault_key.clone() else { return };
        (key, server, vault::associated_data_for(&i.opts.origin, &i.opts.token_key))
    };
    let Some(body) = aes_gcm(true, &key, &nonce, &ad, bytes).await else {
        emit(rc, "error", error_detail("vault_unavailable", "WebCrypto AES-GCM is unavailable; not persisted"));
        return;
    };
    let mut text = String::from(if server { "s." } else { "c." });
    text.push_str(&vault::frame(&nonce, &body));
    let mut i = rc.borrow_mut();
    let name = i.opts.token_key.clone();
    if let Some(err) = i.store.set(&name, &text) {
        drop(i);
        storage_failed(rc, &err);
    }
}

/// Opens a record: framing checked by the vault module, authentication by WebCrypto.
async fn open_record(rc: &Shared, key: &VaultKey, record: &str) -> Result<Vec<u8>, vault::VaultError> {
    let parts = vault::parse(record)?;
    let ad = {
        let i = rc.borrow();
        vault::associated_data_for(&i.opts.origin, &i.opts.token_key)
    };
    aes_gcm(false, key, &parts.nonce, &ad, &parts.body).await.ok_or(vault::VaultError::Tampered)
}

fn storage_failed(rc: &Shared, err: &JsValue) {
    let msg = Reflect::get(err, &s("message")).ok().and_then(|m| m.as_string()).unwrap_or_default();
    let mut m = String::from("storage failed, tokens kept in memory for this tab: ");
    m.push_str(&msg);
    emit(rc, "error", error_detail("storage_unavailable", &m));
}

fn error_detail(code: &str, message: &str) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &s("code"), &s(code));
    let _ = Reflect::set(&o, &s("message"), &s(message));
    o.into()
}

/// The vault key: the server's per-session key (cookie mode), else the
/// browser-session-lifetime key kept in a session cookie (created on first use).
async fn obtain_key(rc: &Shared) -> Option<(VaultKey, bool)> {
    let (url, token_mode) = {
        let i = rc.borrow();
        let mut u = i.opts.base_url.clone();
        u.push_str("/vault-key");
        (u, i.opts.token_mode)
    };
    if !token_mode {
        if let Ok(a) = http::post(&url, None, None, 10_000).await {
            if a.status == 200 {
                if let Some(k) = a.str("key").and_then(|k| VaultKey::from_base64url(&k).ok()) {
                    return Some((k, true));
                }
            } else if a.status == 401 {
                return None;
            }
        }
    }
    fallback_key(true).map(|k| (k, false))
}

fn html_document() -> Option<web_sys::HtmlDocument> {
    web_sys::window()?.document()?.dyn_into().ok()
}

/// The browser-session-lifetime key (a cookie without `Expires`, so the browser drops it at
/// the end of the browsing session). Never stored beside the records it seals.
fn fallback_key(create: bool) -> Option<VaultKey> {
    let doc = html_document()?;
    let jar = doc.cookie().unwrap_or_default();
    for pair in jar.split(';') {
        if let Some((n, v)) = pair.trim().split_once('=') {
            if n == FALLBACK_KEY_COOKIE {
                if let Ok(k) = VaultKey::from_base64url(v) {
                    return Some(k);
                }
            }
        }
    }
    if !create {
        return None;
    }
    let mut key = [0u8; vault::KEY_LEN];
    getrandom::fill(&mut key).ok()?;
    let mut c = String::from(FALLBACK_KEY_COOKIE);
    c.push('=');
    c.push_str(&base64url_encode(&key));
    c.push_str("; Path=/; SameSite=Strict");
    let secure = web_sys::window().and_then(|w| w.location().protocol().ok()).as_deref() == Some("https:");
    if secure {
        c.push_str("; Secure");
    }
    doc.set_cookie(&c).ok()?;
    Some(VaultKey::from_bytes(key))
}

fn tokens_from(a: &Answer) -> Option<Tokens> {
    let access_token = a.str("access_token")?;
    let secs = get(&a.body, "expires_in").as_f64()?;
    if !(secs >= 0.0) {
        return None;
    }
    Some(Tokens {
        access_token,
        expires_in_ms: (secs * 1000.0).min(1e15) as u64,
        refresh_token: a.str("refresh_token"),
    })
}

async fn send_refresh(rc: &Shared, refresh_token: Option<String>) -> Input {
    let (url, token_mode) = {
        let i = rc.borrow();
        let mut u = i.opts.base_url.clone();
        u.push_str("/refresh");
        (u, i.opts.token_mode)
    };
    let body = if token_mode {
        let o = Object::new();
        let _ = Reflect::set(&o, &s("mode"), &s("token"));
        if let Some(rt) = &refresh_token {
            let _ = Reflect::set(&o, &s("refresh_token"), &s(rt));
        }
        Some(JsValue::from(o))
    } else {
        None
    };
    match http::post(&url, body.as_ref(), None, 0).await {
        Ok(a) if a.status == 200 => match tokens_from(&a) {
            Some(t) => Input::RefreshSucceeded(t),
            None => Input::RefreshFailed { retry_after: None },
        },
        Ok(a) if a.status == 401 => match a.str("code").as_deref().and_then(LogoutReason::from_code) {
            Some(reason) => Input::RefreshRejected(reason),
            None => Input::RefreshFailed { retry_after: None },
        },
        Ok(a) => Input::RefreshFailed { retry_after: a.retry_after },
        Err(_) => Input::RefreshFailed { retry_after: None },
    }
}

/// Waits (bounded) until the effect queue is no longer paused: the server call, sealing,
/// wipe and events of the last input are done.
async fn settle(rc: &Shared) {
    for _ in 0..300 {
        if !rc.borrow().busy {
            break;
        }
        next_event(rc, 50.0).await;
    }
}

/// Resolves every promise waiting for the next session event.
fn wake(rc: &Shared) {
    let waiters = std::mem::take(&mut rc.borrow_mut().waiters);
    for w in waiters {
        let _ = w.call0(&JsValue::NULL);
    }
}

/// Waits for the next session event (login, refresh, logout, refresh answer) or `ms`.
async fn next_event(rc: &Shared, ms: f64) {
    let rc2 = rc.clone();
    let p = Promise::new(&mut |resolve, _| {
        rc2.borrow_mut().waiters.push(resolve.clone());
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms.clamp(0.0, 2e9) as i32);
        }
    });
    let _ = JsFuture::from(p).await;
}

fn emit_engine_event(rc: &Shared, event: Event) {
    let d = Object::new();
    match event {
        Event::IdleWarning { deadline } => {
            let _ = Reflect::set(&d, &s("deadline"), &JsValue::from(deadline as f64));
            let _ = Reflect::set(&d, &s("remainingMs"), &JsValue::from(deadline.saturating_sub(now()) as f64));
        }
        Event::Logout { reason } => {
            let cleared = std::mem::replace(&mut rc.borrow_mut().cleared, JsValue::NULL);
            let _ = Reflect::set(&d, &s("reason"), &s(reason.as_str()));
            let _ = Reflect::set(&d, &s("cleared"), &cleared);
        }
        Event::Error { code } => {
            let _ = Reflect::set(&d, &s("code"), &s(code.as_str()));
            let msg = match code {
                crate::core::ErrorCode::RefreshRetry => "token refresh failed; retrying with backoff",
                _ => "stored session record is invalid; wiped",
            };
            let _ = Reflect::set(&d, &s("message"), &s(msg));
            if code == crate::core::ErrorCode::RecordInvalid {
                let mut i = rc.borrow_mut();
                let key = i.opts.token_key.clone();
                i.store.remove(&key);
            }
        }
        Event::Login | Event::Refresh => {
            if let Some(m) = rc.borrow().engine.token_meta() {
                let _ = Reflect::set(&d, &s("expiresAt"), &JsValue::from(m.expires_at as f64));
            }
        }
        _ => {}
    }
    emit(rc, event.name(), d.into());
    wake(rc);
}

/// Delivers an event to the application's listeners (never while holding the state borrow,
/// so a listener may call back into the session).
fn emit(rc: &Shared, name: &str, detail: JsValue) {
    let _ = Reflect::set(&detail, &s("type"), &s(name));
    let targets: Vec<Function> = {
        let mut i = rc.borrow_mut();
        if let Some(early) = i.early.as_mut() {
            early.push((name.into(), detail));
            return;
        }
        i.listeners.iter().filter(|l| l.0 == name).map(|l| l.2.clone()).collect()
    };
    for f in targets {
        // A throwing listener must not break the session.
        let _ = f.call1(&JsValue::NULL, &detail);
    }
}

fn opt_ms(o: &JsValue, key: &str) -> Option<Option<u64>> {
    let v = get(o, key);
    if v.is_null() {
        return Some(None);
    }
    let n = v.as_f64()?;
    if n.is_finite() && n > 0.0 {
        Some(Some(n as u64))
    } else if n == 0.0 {
        Some(None)
    } else {
        None
    }
}

fn config_from(o: &JsValue) -> Config {
    let mut c = Config::default();
    if let Some(v) = opt_ms(o, "idleTimeoutMs") {
        c.idle_timeout = v;
    }
    if let Some(v) = opt_ms(o, "absoluteTimeoutMs") {
        c.absolute_lifetime = v;
    }
    let num = |key: &str, field: &mut u64| {
        if let Some(v) = opt_ms(o, key) {
            *field = v.unwrap_or(0);
        }
    };
    num("idleWarningMs", &mut c.idle_warning);
    num("refreshLeadMs", &mut c.refresh_lead);
    num("refreshJitterMs", &mut c.refresh_jitter);
    num("activityThrottleMs", &mut c.activity_throttle);
    num("requestTimeoutMs", &mut c.request_timeout);
    num("lockWaitMs", &mut c.lock_wait);
    num("joinWaitMs", &mut c.join_wait);
    c.web_locks = locks::available() && get(o, "webLocks").as_bool() != Some(false);
    c
}

fn callbacks(weak: Weak<RefCell<Inner>>) -> Callbacks {
    let w = weak.clone();
    let timer = Closure::new(move |_: JsValue| {
        if let Some(rc) = w.upgrade() {
            rc.borrow_mut().timer = None;
            feed_shared(&rc);
            drive(&rc, Some(Input::Timer));
        }
    });
    let w = weak.clone();
    let bus = Closure::new(move |ev: JsValue| {
        let Some(rc) = w.upgrade() else { return };
        let (fallback_key, shared_key) = {
            let i = rc.borrow();
            (i.bus.as_ref().map(|b| b.fallback_key().to_string()).unwrap_or_default(), i.opts.shared_key.clone())
        };
        // Storage events for the shared record arrive here too (same `storage` listener).
        if let Some(se) = ev.dyn_ref::<web_sys::StorageEvent>() {
            let key = se.key();
            if key.as_deref() == Some(shared_key.as_str()) || key.is_none() {
                feed_shared(&rc);
                pump(&rc);
                return;
            }
        }
        match bus::payload(&ev, &fallback_key) {
            Some(Some(text)) => {
                let bytes = base64url_decode(&text).unwrap_or_else(|| vec![0]);
                drive(&rc, Some(Input::Bus(bytes)));
            }
            Some(None) => {
                rc.borrow_mut().stats_bus_garbage += 1;
                // Non-text payloads go to the engine as undecodable bytes (counted there).
                drive(&rc, Some(Input::Bus(Vec::new())));
            }
            None => {}
        }
    });
    let w = weak.clone();
    let lock = Closure::new(move |code: JsValue| {
        let Some(rc) = w.upgrade() else { return };
        match code.as_f64() {
            Some(c) if c == 1.0 => {
                feed_shared(&rc);
                drive(&rc, Some(Input::LockGranted));
            }
            Some(c) if c == 2.0 => {
                rc.borrow_mut().lock = None;
                drive(&rc, Some(Input::LockLost));
            }
            _ => {
                rc.borrow_mut().lock = None;
                drive(&rc, Some(Input::LockUnavailable));
            }
        }
    });
    let w = weak.clone();
    let activity = Closure::new(move |_: JsValue| {
        if let Some(rc) = w.upgrade() {
            drive(&rc, Some(Input::Activity));
        }
    });
    let w = weak;
    let dom = Closure::new(move |ev: JsValue| {
        let Some(rc) = w.upgrade() else { return };
        let kind = ev.dyn_ref::<web_sys::Event>().map(|e| e.type_()).unwrap_or_default();
        let input = match kind.as_str() {
            "online" => Input::Online(true),
            "offline" => Input::Online(false),
            "visibilitychange" => {
                let hidden = web_sys::window().and_then(|w| w.document()).map_or(false, |d| d.hidden());
                if !hidden {
                    feed_shared(&rc);
                }
                Input::Visibility(!hidden)
            }
            "focus" | "pageshow" => {
                feed_shared(&rc);
                Input::Visibility(true)
            }
            _ => return,
        };
        drive(&rc, Some(input));
    });
    Callbacks {
        timer,
        bus,
        lock,
        activity,
        dom,
    }
}

fn install_handles(rc: &Shared) {
    let mut i = rc.borrow_mut();
    let Some(cb) = i.cb.as_ref() else { return };
    let channel = i.opts.channel.clone();
    let bus = Bus::open(&channel, &cb.bus);
    let window = web_sys::window();
    let mut dom = Vec::new();
    let throttle = i.opts.activity_sample;
    let activity = Activity::start(throttle, &cb.activity);
    if let Some(w) = &window {
        for kind in ["online", "offline", "focus", "pageshow"] {
            dom.push(Listener::new(w, kind, &cb.dom));
        }
        // Shared-record storage events (the bus fallback registers its own listener).
        dom.push(Listener::new(w, "storage", &cb.bus));
        if let Some(d) = w.document() {
            dom.push(Listener::new(&d, "visibilitychange", &cb.dom));
        }
    }
    i.bus = Some(bus);
    i.activity = Some(activity);
    i.dom = dom;
}

impl Inner {
    fn dispose(&mut self) {
        self.disposed = true;
        self.timer = None;
        self.lock = None;
        self.bus = None;
        self.activity = None;
        self.dom.clear();
        self.listeners.clear();
        self.waiters.clear();
    }
}

/// Restores a persisted, sealed token record; a record that fails to open is wiped and
/// reported, never used.
async fn restore(rc: &Shared) {
    let (record, token_key) = {
        let mut i = rc.borrow_mut();
        let key = i.opts.token_key.clone();
        let (rec, err) = i.store.get(&key);
        drop(i);
        if let Some(e) = err {
            storage_failed(rc, &e);
        }
        (rec, key)
    };
    let Some(record) = record else { return };
    let (server, sealed) = match record.split_at_checked(2) {
        Some(("s.", rest)) => (true, rest.to_string()),
        Some(("c.", rest)) => (false, rest.to_string()),
        _ => (true, record.clone()),
    };
    let key = if server {
        obtain_key(rc).await.filter(|k| k.1)
    } else {
        fallback_key(false).map(|k| (k, false))
    };
    let Some(key) = key else {
        // The server destroyed the session's key (revoked) or the browser session ended:
        // the record is unreadable by design. Remove it.
        rc.borrow_mut().store.remove(&token_key);
        emit(rc, "error", error_detail("vault_locked", "stored session can no longer be opened; wiped"));
        return;
    };
    match open_record(rc, &key.0, &sealed).await {
        Ok(bytes) => {
            rc.borrow_mut().vault_key = Some(key);
            drive(rc, Some(Input::Restore(bytes)));
        }
        Err(e) => {
            rc.borrow_mut().store.remove(&token_key);
            emit(rc, "error", error_detail(e.code(), e.message()));
        }
    }
}

fn parse_options(options: &JsValue) -> (Opts, StorageKind, bool) {
    let str_opt = |k: &str, d: &str| get(options, k).as_string().unwrap_or_else(|| d.to_string());
    let mut base_url = str_opt("baseUrl", "/auth");
    while base_url.ends_with('/') {
        base_url.pop();
    }
    let channel = str_opt("channel", "tessera");
    let token_mode = get(options, "mode").as_string().as_deref() == Some("token");
    let kind = StorageKind::parse(get(options, "storage").as_string());
    let resume = get(options, "resume").as_bool() != Some(false);
    let origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
    let key = |part: &str| {
        let mut k = String::from(KEY_PREFIX);
        k.push_str(part);
        k.push_str(&channel);
        k
    };
    let opts = Opts {
        token_key: key("token:"),
        shared_key: key("shared:"),
        base_url,
        token_mode,
        cleanup: CleanupPlan::from_js(&get(options, "cleanup")),
        origin,
        channel,
        activity_sample: 1000.0,
    };
    (opts, kind, resume)
}

#[wasm_bindgen]
impl Session {
    /// Starts a session controller: restores a persisted session, joins one held by another
    /// tab or the refresh cookie, and starts listening. See the TypeScript declarations.
    #[wasm_bindgen(js_name = start, skip_typescript)]
    pub async fn start(options: JsValue) -> Result<Session, JsValue> {
        let (mut opts, kind, resume) = parse_options(&options);
        let config = config_from(&options);
        opts.activity_sample = opts.activity_sample.min(config.activity_throttle as f64);
        let join_wait = config.join_wait;
        let engine = Engine::new(config, random_u64(), random_u64(), now());
        let (store, store_err) = Store::open(kind);
        let inner = Inner {
            timer: None,
            lock: None,
            bus: None,
            activity: None,
            dom: Vec::new(),
            cb: None,
            engine,
            opts,
            store,
            vault_key: None,
            mfa_token: None,
            user: JsValue::NULL,
            listeners: Vec::new(),
            next_listener: 0,
            busy: false,
            refreshing: 0,
            cleared: JsValue::NULL,
            early: Some(Vec::new()),
            waiters: Vec::new(),
            disposed: false,
            stats_bus_garbage: 0,
        };
        let rc = Rc::new(RefCell::new(inner));
        let cb = callbacks(Rc::downgrade(&rc));
        rc.borrow_mut().cb = Some(cb);
        if let Some(e) = store_err {
            storage_failed(&rc, &e);
        }
        feed_shared(&rc);
        install_handles(&rc);
        pump(&rc);
        if kind != StorageKind::Memory {
            restore(&rc).await;
        }
        let signed_in = || matches!(rc.borrow().engine.state(), SessionState::Active | SessionState::IdleWarning);
        if resume && !signed_in() {
            drive(&rc, Some(Input::Resume));
            // Settle before resolving: another tab's token, or the cookie refresh answer.
            let until = now() + join_wait + 50;
            loop {
                let refreshing = rc.borrow().refreshing > 0;
                if signed_in() || (!refreshing && now() >= until) || now() > until + 30_000 {
                    break;
                }
                next_event(&rc, if refreshing { 1000.0 } else { (until - now().min(until)) as f64 + 1.0 }).await;
            }
        }
        // Events raised while starting reach listeners registered right after `await start()`.
        let early = rc.borrow_mut().early.take().unwrap_or_default();
        if !early.is_empty() {
            let rc2 = rc.clone();
            let f = Closure::once_into_js(move || {
                for (name, detail) in early {
                    emit(&rc2, &name, detail);
                }
            });
            if let Some(w) = web_sys::window() {
                let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(f.unchecked_ref(), 0);
            }
        }
        Ok(Session { inner: rc })
    }

    /// The state name: `"anonymous" | "mfa-required" | "active" | "idle-warning" | "logged-out"`.
    #[wasm_bindgen(getter, skip_typescript)]
    pub fn state(&self) -> String {
        self.inner.borrow().engine.state().as_str().into()
    }

    /// The signed-in user's name from this tab's login answer (`null` when unknown).
    #[wasm_bindgen(getter, skip_typescript)]
    pub fn user(&self) -> JsValue {
        self.inner.borrow().user.clone()
    }

    /// Signs in with `{username, password}`. Resolves to the new state.
    #[wasm_bindgen(skip_typescript)]
    pub fn login(&self, credentials: JsValue) -> Promise {
        let rc = self.inner.clone();
        future_to_promise(async move {
            let (url, token_mode) = url_of(&rc, "/login");
            let body = Object::new();
            for k in ["username", "password"] {
                let _ = Reflect::set(&body, &s(k), &get(&credentials, k));
            }
            if token_mode {
                let _ = Reflect::set(&body, &s("mode"), &s("token"));
            }
            let a = http::post(&url, Some(&body.into()), None, 0)
                .await
                .map_err(|_| js_error("network", "the server could not be reached", 0))?;
            let r = login_answer(&rc, a);
            settle(&rc).await;
            r
        })
    }

    /// Completes a TOTP login with the 6-digit `code`. Resolves to the new state.
    #[wasm_bindgen(js_name = verifyMfa, skip_typescript)]
    pub fn verify_mfa(&self, code: JsValue) -> Promise {
        let rc = self.inner.clone();
        future_to_promise(async move {
            let (url, token_mode) = url_of(&rc, "/mfa");
            let Some(mfa_token) = rc.borrow().mfa_token.clone() else {
                return Err(js_error("mfa_not_pending", "no login is waiting for a code", 0));
            };
            let body = Object::new();
            let _ = Reflect::set(&body, &s("mfa_token"), &s(&mfa_token));
            let code = match code.as_string() {
                Some(c) => c,
                None => code.unchecked_ref::<js_sys::Number>().to_string_with_radix(10).map(String::from).unwrap_or_default(),
            };
            let _ = Reflect::set(&body, &s("code"), &s(&code));
            if token_mode {
                let _ = Reflect::set(&body, &s("mode"), &s("token"));
            }
            let a = http::post(&url, Some(&body.into()), None, 0)
                .await
                .map_err(|_| js_error("network", "the server could not be reached", 0))?;
            let r = login_answer(&rc, a);
            settle(&rc).await;
            r
        })
    }

    /// Logs out: server revoke first (best effort), then the wipe in every tab.
    /// `{everywhere: true}` revokes every session of the user. Resolves after the `logout`
    /// event.
    #[wasm_bindgen(skip_typescript)]
    pub fn logout(&self, options: JsValue) -> Promise {
        let rc = self.inner.clone();
        future_to_promise(async move {
            let everywhere = get(&options, "everywhere").is_truthy();
            drive(&rc, Some(Input::Logout { everywhere }));
            settle(&rc).await;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `fetch` with the bearer token; on 401 refreshes once and retries once (never loops).
    #[wasm_bindgen(skip_typescript)]
    pub fn fetch(&self, input: JsValue, init: JsValue) -> Promise {
        let rc = self.inner.clone();
        future_to_promise(async move {
            let base = if init.is_undefined() || init.is_null() {
                web_sys::Request::new_with_request(&input.clone().into())
                    .or_else(|_| web_sys::Request::new_with_str(&input.as_string().unwrap_or_default()))
            } else {
                let init: web_sys::RequestInit = init.unchecked_into();
                match input.dyn_ref::<web_sys::Request>() {
                    Some(r) => web_sys::Request::new_with_request_and_init(r, &init),
                    None => web_sys::Request::new_with_str_and_init(&js_sys::JsString::from(input).as_string().unwrap_or_default(), &init),
                }
            }?;
            let token = rc.borrow().engine.access_token().map(String::from);
            let first = with_bearer(&base, token.as_deref())?;
            let resp = http::global_fetch(&first).await?;
            let Some(token) = token else { return Ok(resp.into()) };
            if resp.status() != 401 {
                return Ok(resp.into());
            }
            drive(&rc, Some(Input::AccessRejected));
            let deadline = now() + 30_000;
            let fresh = loop {
                let current = rc.borrow().engine.access_token().map(String::from);
                match current {
                    Some(t) if t != token => break Some(t),
                    None => break None,
                    _ if now() >= deadline => break None,
                    _ => next_event(&rc, 1000.0).await,
                }
            };
            match fresh {
                Some(t) => Ok(http::global_fetch(&with_bearer(&base, Some(&t))?).await?.into()),
                None => Ok(resp.into()),
            }
        })
    }

    /// Subscribes to an event; returns a function that unsubscribes.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, event: String, callback: Function) -> Function {
        let id = {
            let mut i = self.inner.borrow_mut();
            i.next_listener += 1;
            let id = i.next_listener;
            i.listeners.push((event, id, callback));
            id
        };
        let weak = Rc::downgrade(&self.inner);
        Closure::<dyn FnMut()>::new(move || {
            if let Some(rc) = weak.upgrade() {
                rc.borrow_mut().listeners.retain(|l| l.1 != id);
            }
        })
        .into_js_value()
        .unchecked_into()
    }

    /// "Stay signed in": the answer to `idle-warning`; counts as activity in every tab.
    #[wasm_bindgen(js_name = stayActive, skip_typescript)]
    pub fn stay_active(&self) {
        drive(&self.inner, Some(Input::StayActive));
    }

    /// Drops every listener, timer, lock and channel. The session in other tabs and on the
    /// server is untouched; call `logout()` first to end it.
    #[wasm_bindgen(skip_typescript)]
    pub fn dispose(&self) {
        let mut i = self.inner.borrow_mut();
        i.dispose();
        // The closures go last, after every handle that referenced them.
        i.cb = None;
    }

    /// Diagnostic counters: `{busMalformed, sharedMalformed, refreshSent}`.
    #[wasm_bindgen(getter, skip_typescript)]
    pub fn stats(&self) -> JsValue {
        let i = self.inner.borrow();
        let st = i.engine.stats();
        let o = Object::new();
        let _ = Reflect::set(&o, &s("busMalformed"), &JsValue::from(st.bus_malformed));
        let _ = Reflect::set(&o, &s("sharedMalformed"), &JsValue::from(st.shared_malformed));
        let _ = Reflect::set(&o, &s("refreshSent"), &JsValue::from(st.refresh_sent));
        let _ = Reflect::set(&o, &s("persistent"), &JsValue::from(i.store.persistent()));
        o.into()
    }
}

fn url_of(rc: &Shared, path: &str) -> (String, bool) {
    let i = rc.borrow();
    let mut u = i.opts.base_url.clone();
    u.push_str(path);
    (u, i.opts.token_mode)
}

fn with_bearer(base: &web_sys::Request, token: Option<&str>) -> Result<web_sys::Request, JsValue> {
    let r = base.clone()?;
    if let Some(t) = token {
        let mut h = String::from("Bearer ");
        h.push_str(t);
        r.headers().set("Authorization", &h)?;
    }
    Ok(r)
}

fn login_answer(rc: &Shared, a: Answer) -> Result<JsValue, JsValue> {
    if a.status == 200 {
        if get(&a.body, "mfa_required").as_bool() == Some(true) {
            rc.borrow_mut().mfa_token = a.str("mfa_token");
            drive(rc, Some(Input::MfaRequired));
        } else if let Some(t) = tokens_from(&a) {
            {
                let mut i = rc.borrow_mut();
                i.mfa_token = None;
                i.user = get(&get(&a.body, "session"), "user");
            }
            drive(rc, Some(Input::LoginSucceeded(t)));
        } else {
            return Err(js_error("invalid_response", "the server's answer has no access token", 200));
        }
        return Ok(s(rc.borrow().engine.state().as_str()));
    }
    if a.str("code").as_deref() == Some("mfa_expired") {
        rc.borrow_mut().mfa_token = None;
        drive(rc, Some(Input::LoginFailed));
    }
    Err(problem_error(&a))
}
