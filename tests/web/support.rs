//! Shared helpers of the browser tests: an in-page fake of the Tessera auth routes (the
//! real server runs in the e2e suite), event recording and small async utilities.
#![allow(dead_code)]
use js_sys::{Array, Function, Promise, Reflect};
use tessera::Session;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(inline_js = r#"
const realFetch = globalThis.fetch.bind(globalThis);
export function installServer(cfg) {
  const st = { calls: [], refreshCount: 0, apiCount: 0, token: 0, cfg };
  globalThis.__srv = st;
  globalThis.fetch = async (input, init) => {
    const req = input instanceof Request && !init ? input : new Request(input, init);
    const url = new URL(req.url, location.href);
    const body = await req.clone().text();
    const call = { path: url.pathname, auth: req.headers.get("authorization"),
      csrf: req.headers.get("x-tessera-csrf"), credentials: req.credentials, body,
      aborted: req.signal.aborted };
    st.calls.push(call);
    if (req.signal.aborted) throw new DOMException("aborted", "AbortError");
    const json = (status, obj, headers) => new Response(obj === null ? null : JSON.stringify(obj),
      { status, headers: Object.assign({ "content-type": "application/json" }, headers || {}) });
    const issue = () => ({ access_token: "at-" + (++st.token), token_type: "Bearer",
      expires_in: cfg.expiresIn ?? 300, session: { id: st.cur || "s1", user: "alice", mfa: false } });
    const custom = cfg.routes && cfg.routes[url.pathname];
    if (custom) return custom(req, st, json, issue);
    // `sessions: true`: like the real server, every login is a new session (the cookie is
    // `st.cur`) with its own vault key; logout destroys the session and its key.
    if (cfg.sessions) {
      st.keys = st.keys || {};
      st.sid = st.sid || 0;
      const live = st.cur && st.keys[st.cur];
      switch (url.pathname) {
        case "/auth/login": {
          st.cur = "sess-" + (++st.sid);
          const k = crypto.getRandomValues(new Uint8Array(32));
          st.keys[st.cur] = btoa(String.fromCharCode(...k)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
          return json(200, issue());
        }
        case "/auth/refresh":
          st.refreshCount++;
          if (cfg.refreshStatus) return json(cfg.refreshStatus, { code: cfg.refreshCode || "refresh_invalid", status: cfg.refreshStatus });
          return live ? json(200, issue()) : json(401, { code: "refresh_invalid", status: 401 });
        case "/auth/vault-key":
          st.keyCalls = (st.keyCalls || 0) + 1;
          if (cfg.keyHold) await new Promise((r) => (st.releaseKey = r));
          if (cfg.keyStatus) return json(cfg.keyStatus, { code: "unavailable", status: cfg.keyStatus });
          return live ? json(200, { key: st.keys[st.cur] }) : json(401, { code: "refresh_invalid", status: 401 });
        case "/auth/logout":
        case "/auth/logout-all":
          if (cfg.offline) throw new TypeError("Failed to fetch");
          if (live) delete st.keys[st.cur];
          st.cur = null;
          st.revoked = (st.revoked || 0) + 1;
          return new Response(null, { status: 204 });
      }
    }
    switch (url.pathname) {
      case "/auth/login": {
        const b = JSON.parse(body);
        if (b.password !== "tessera-demo") return json(401, { code: "invalid_credentials", title: "Invalid credentials", status: 401 });
        if (b.username === "bob") return json(200, { mfa_required: true, mfa_token: "mfa-1" });
        return json(200, issue());
      }
      case "/auth/mfa": {
        const b = JSON.parse(body);
        if (b.code !== "123456") return json(401, { code: "mfa_invalid", title: "Invalid code", status: 401 });
        return json(200, issue());
      }
      case "/auth/refresh":
        st.refreshCount++;
        if (cfg.refreshDelay) await new Promise((r) => setTimeout(r, cfg.refreshDelay));
        if (cfg.refreshStatus) return json(cfg.refreshStatus, { code: cfg.refreshCode || "refresh_invalid", status: cfg.refreshStatus });
        return json(200, issue());
      case "/auth/vault-key":
        if (cfg.vaultKey === null) return json(401, { code: "unauthorized", status: 401 });
        return json(200, { key: cfg.vaultKey || "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" });
      case "/auth/logout":
      case "/auth/logout-all":
        return new Response(null, { status: 204 });
      case "/api/me":
        st.apiCount++;
        if (cfg.api401 || req.headers.get("authorization") !== "Bearer at-" + st.token)
          return json(401, { code: "unauthorized", status: 401 });
        return json(200, { sub: "u1", username: "alice" });
      default:
        return realFetch(input, init);
    }
  };
  return st;
}
export function restoreFetch() { globalThis.fetch = realFetch; }
export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
export function recorder() {
  const events = [];
  const fn = (e) => events.push(e);
  return { events, fn };
}
export function jsEval(src) { return (0, eval)(src); }
"#)]
extern "C" {
    #[wasm_bindgen(js_name = installServer)]
    pub fn install_server(cfg: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = restoreFetch)]
    pub fn restore_fetch();
    #[wasm_bindgen(js_name = sleep)]
    fn sleep_promise(ms: f64) -> Promise;
    #[wasm_bindgen(js_name = recorder)]
    fn recorder_js() -> JsValue;
    /// Evaluates JavaScript in the page (global scope).
    #[wasm_bindgen(js_name = jsEval, catch)]
    pub fn js_eval(src: &str) -> Result<JsValue, JsValue>;
}

/// `obj[key]`.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// Evaluates JS and panics on exceptions (test code only).
pub fn eval(src: &str) -> JsValue {
    js_eval(src).expect("script threw")
}

/// Waits `ms` milliseconds.
pub async fn sleep(ms: u32) {
    let _ = JsFuture::from(sleep_promise(ms as f64)).await;
}

/// Builds a JS object from a JSON-ish JS expression.
pub fn obj(src: &str) -> JsValue {
    let mut s = String::from("(");
    s.push_str(src);
    s.push(')');
    eval(&s)
}

/// The fake server's state object.
pub fn server(cfg: &str) -> JsValue {
    install_server(&obj(cfg))
}

/// A number field of the fake server's state.
pub fn count(st: &JsValue, key: &str) -> u32 {
    get(st, key).as_f64().unwrap_or(-1.0) as u32
}

/// Calls to the fake server with this path.
pub fn calls(st: &JsValue, path: &str) -> Vec<JsValue> {
    Array::from(&get(st, "calls"))
        .iter()
        .filter(|c| get(c, "path").as_string().as_deref() == Some(path))
        .collect()
}

/// Records events of one name.
pub struct Recorder {
    rec: JsValue,
    pub off: Function,
}

impl Recorder {
    pub fn on(session: &Session, name: &str) -> Recorder {
        let rec = recorder_js();
        let f: Function = get(&rec, "fn").unchecked_into();
        let off = session.on(name.into(), f);
        Recorder { rec, off }
    }
    pub fn events(&self) -> Vec<JsValue> {
        Array::from(&get(&self.rec, "events")).iter().collect()
    }
    pub fn len(&self) -> usize {
        self.events().len()
    }
    pub fn codes(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| get(e, "code").as_string().unwrap_or_default())
            .collect()
    }
}

/// Awaits a JS promise.
pub async fn wait(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

/// Polls `cond` every 10 ms for up to `ms`.
pub async fn until(ms: u32, mut cond: impl FnMut() -> bool) -> bool {
    let mut waited = 0;
    while waited < ms {
        if cond() {
            return true;
        }
        sleep(10).await;
        waited += 10;
    }
    cond()
}

/// The session object JavaScript holds (the driver), for what the Rust handle does not wrap.
pub fn js(s: &Session) -> JsValue {
    s.as_js()
}

/// `session[name]` (a getter of the JS session object).
pub fn prop(s: &Session, name: &str) -> JsValue {
    get(&js(s), name)
}

/// Calls `f(session)` where `f` is JavaScript source of a function; returns its result.
pub fn with(s: &Session, f: &str) -> JsValue {
    let f: Function = eval(f).unchecked_into();
    f.call1(&JsValue::NULL, &js(s)).expect("call threw")
}

/// Starts a session with `options` (a JS object literal).
pub async fn start(options: &str) -> Session {
    Session::start_async(obj(options)).await.expect("start")
}

/// Logs in alice and asserts the session is active.
pub async fn login_alice(s: &Session) {
    let r = wait(s.login(obj("{username: 'alice', password: 'tessera-demo'}")))
        .await
        .expect("login");
    assert_eq!(r.as_string().as_deref(), Some("active"));
    assert_eq!(s.state(), "active");
}

/// A channel name unique to this test run.
pub fn channel(name: &str) -> String {
    let mut c = String::from(name);
    c.push('-');
    c.push_str(&(js_sys::Math::random() * 1e9).floor().to_string());
    c
}

/// For a test that counts cookies: starts it from an empty jar. Every module's tests share
/// one page (tests/web/main.rs), and an earlier test may leave a cookie of its own (token
/// mode's script-readable `tessera_vk` key cookie, say). Expires every cookie the page sees
/// on `/` and asserts that none is left.
pub fn empty_cookie_jar() {
    eval(
        "for (const c of document.cookie.split(';')) {
           const name = c.split('=')[0].trim();
           if (name) document.cookie = name + '=; path=/; max-age=0';
         }",
    );
    assert_eq!(
        eval("document.cookie").as_string().as_deref(),
        Some(""),
        "a cookie left by an earlier test"
    );
}
