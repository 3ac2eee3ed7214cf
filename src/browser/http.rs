//! HTTP to the Tessera server: `fetch` with credentials and the CSRF header.
use js_sys::{Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestCredentials, RequestInit, Response};

/// The answer to an auth request: status and parsed JSON body (`null` when empty or not JSON).
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: JsValue,
    /// `Retry-After` (seconds form) in milliseconds.
    pub(crate) retry_after: Option<u64>,
}

impl Answer {
    /// A string field of the body.
    pub(crate) fn str(&self, key: &str) -> Option<String> {
        get(&self.body, key).as_string()
    }
}

/// Reads `obj[key]`, `undefined` when absent or `obj` is not an object.
pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// Calls the global `fetch` (window or worker), so pages and tests can wrap it.
pub(crate) async fn global_fetch(req: &Request) -> Result<Response, JsValue> {
    let global = js_sys::global();
    let f: js_sys::Function = Reflect::get(&global, &JsValue::from_str("fetch"))?.dyn_into()?;
    let p: js_sys::Promise = f.call1(&global, req)?.dyn_into()?;
    JsFuture::from(p).await?.dyn_into()
}

/// `AbortSignal.timeout(ms)` where supported.
fn timeout_signal(ms: u32) -> Option<web_sys::AbortSignal> {
    let ctor = Reflect::get(&js_sys::global(), &JsValue::from_str("AbortSignal")).ok()?;
    let f: js_sys::Function = Reflect::get(&ctor, &JsValue::from_str("timeout")).ok()?.dyn_into().ok()?;
    f.call1(&ctor, &JsValue::from(ms)).ok()?.dyn_into().ok()
}

/// `POST url` with a JSON body (or none), `credentials: "include"`, `X-Tessera-CSRF: 1` and
/// an optional bearer; `timeout_ms > 0` aborts a hanging request. `Err` only for network
/// failures (offline, DNS, CORS, abort, timeout).
pub(crate) async fn post(url: &str, body: Option<&JsValue>, bearer: Option<&str>, timeout_ms: u32) -> Result<Answer, JsValue> {
    let headers = Headers::new()?;
    headers.set("X-Tessera-CSRF", "1")?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_credentials(RequestCredentials::Include);
    if let Some(b) = body {
        headers.set("Content-Type", "application/json")?;
        init.set_body(&JSON::stringify(b)?.into());
    }
    if let Some(t) = bearer {
        let mut h = String::from("Bearer ");
        h.push_str(t);
        headers.set("Authorization", &h)?;
    }
    if timeout_ms > 0 {
        if let Some(sig) = timeout_signal(timeout_ms) {
            init.set_signal(Some(&sig));
        }
    }
    init.set_headers(&headers);
    let req = Request::new_with_str_and_init(url, &init)?;
    let resp = global_fetch(&req).await?;
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("Retry-After")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| secs.saturating_mul(1000));
    let body = match resp.text() {
        Ok(p) => match JsFuture::from(p).await {
            Ok(t) => t.as_string().and_then(|t| JSON::parse(&t).ok()).unwrap_or(JsValue::NULL),
            Err(_) => JsValue::NULL,
        },
        Err(_) => JsValue::NULL,
    };
    Ok(Answer { status, body, retry_after })
}
