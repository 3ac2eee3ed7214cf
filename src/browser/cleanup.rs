//! Logout cleanup: web storage, cookies, IndexedDB and Cache Storage.
use js_sys::{Array, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::storage::{web_storage, StorageKind};

#[wasm_bindgen(module = "/src/browser/cleanup.js")]
extern "C" {
    #[wasm_bindgen(js_name = wipeIndexedDb)]
    fn wipe_indexed_db(names: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = wipeCaches)]
    fn wipe_caches(names: &JsValue) -> Promise;
}

/// Prefix of every key the SDK writes to web storage.
pub(crate) const KEY_PREFIX: &str = "tessera:";

/// What the `cleanup` option asks for beyond the SDK's own records.
#[derive(Default)]
pub(crate) struct CleanupPlan {
    /// Clear all of `localStorage` (otherwise only `tessera:` keys).
    pub(crate) local_storage: bool,
    /// Clear all of `sessionStorage` (otherwise only `tessera:` keys).
    pub(crate) session_storage: bool,
    /// Expire every cookie visible to the page.
    pub(crate) cookies: bool,
    /// `true` (all databases) or an array of names; `undefined` for none.
    pub(crate) indexed_db: JsValue,
    /// `true` (all caches) or an array of names; `undefined` for none.
    pub(crate) caches: JsValue,
}

impl CleanupPlan {
    /// Reads the `cleanup` option object (missing fields mean "don't").
    pub(crate) fn from_js(v: &JsValue) -> CleanupPlan {
        if !v.is_object() {
            return CleanupPlan::default();
        }
        let get = |k: &str| Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
        let list = |x: JsValue| if x.is_truthy() && (x.as_bool() == Some(true) || Array::is_array(&x)) { x } else { JsValue::UNDEFINED };
        CleanupPlan {
            local_storage: get("localStorage").is_truthy(),
            session_storage: get("sessionStorage").is_truthy(),
            cookies: get("cookies").is_truthy(),
            indexed_db: list(get("indexedDB")),
            caches: list(get("caches")),
        }
    }
}

/// Clears a web storage: all of it, or only the SDK's keys. Returns keys removed
/// (`-1` when everything was cleared, `0` when the store is unavailable).
fn wipe_storage(kind: StorageKind, all: bool) -> i32 {
    let Ok(Some(s)) = web_storage(kind) else { return 0 };
    if all {
        return if s.clear().is_ok() { -1 } else { 0 };
    }
    let mut keys = Vec::new();
    let n = s.length().unwrap_or(0);
    for i in 0..n {
        if let Ok(Some(k)) = s.key(i) {
            if k.starts_with(KEY_PREFIX) {
                keys.push(k);
            }
        }
    }
    for k in &keys {
        let _ = s.remove_item(k);
    }
    keys.len() as i32
}

/// Every `path` a cookie visible at `pathname` could have been set with.
pub(crate) fn cookie_paths(pathname: &str) -> Vec<String> {
    let mut out = vec!["/".to_string()];
    let mut acc = String::new();
    for seg in pathname.split('/').filter(|s| !s.is_empty()) {
        acc.push('/');
        acc.push_str(seg);
        out.push(acc.clone());
        out.push(acc.clone() + "/");
    }
    out
}

/// Every `domain` attribute a cookie visible on `host` could carry: none (host-only)
/// and each dotted suffix of the host name. IP addresses only have themselves.
pub(crate) fn cookie_domains(host: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    if host.is_empty() {
        return out;
    }
    let is_ip = host.contains(':') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if is_ip {
        out.push(host.to_string());
        return out;
    }
    let mut rest = host;
    loop {
        out.push(rest.to_string());
        out.push(String::from(".") + rest);
        match rest.split_once('.') {
            Some((_, tail)) => rest = tail,
            None => break,
        }
    }
    out
}

/// Expires every cookie visible to the page on every path prefix × domain suffix.
/// Returns the names of the cookies found.
pub(crate) fn wipe_cookies() -> Array {
    let Some(window) = web_sys::window() else { return Array::new() };
    match window.document().and_then(|d| d.dyn_into::<web_sys::HtmlDocument>().ok()) {
        Some(doc) => wipe_cookies_in(&doc, &window.location()),
        None => Array::new(),
    }
}

/// [`wipe_cookies`] for a given document and its location (tests drive it on a
/// same-origin frame at a deep path; `history.pushState` does not move the cookie URL).
pub fn wipe_cookies_in(doc: &web_sys::HtmlDocument, loc: &web_sys::Location) -> Array {
    let names = Array::new();
    let jar = doc.cookie().unwrap_or_default();
    let paths = cookie_paths(&loc.pathname().unwrap_or_default());
    let domains = cookie_domains(&loc.hostname().unwrap_or_default());
    for pair in jar.split(';') {
        let name = pair.split('=').next().unwrap_or("").trim();
        if name.is_empty() && !pair.contains('=') {
            continue;
        }
        names.push(&JsValue::from_str(name));
        // Prefixed cookies may only be written with `Secure` (and `__Host-` only on `/`
        // without a domain); adding `Secure` everywhere is harmless on secure origins.
        let secure = if name.starts_with("__Secure-") || name.starts_with("__Host-") { "; Secure" } else { "" };
        for path in &paths {
            for domain in &domains {
                let mut c = String::with_capacity(96);
                c.push_str(name);
                c.push_str("=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=");
                c.push_str(path);
                if !domain.is_empty() {
                    c.push_str("; Domain=");
                    c.push_str(domain);
                }
                c.push_str(secure);
                let _ = doc.set_cookie(&c);
            }
        }
    }
    names
}

/// Runs a cleanup: the SDK's keys always, plus what the plan names. Resolves to the
/// `cleared` object of the `logout` event:
/// `{ memory, localStorage, sessionStorage, cookies: [names], indexedDB: [names], caches: [names] }`
/// where the storage fields are `"all"`, or the number of SDK keys removed.
pub(crate) async fn run(plan: &CleanupPlan) -> JsValue {
    let out = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| {
        let _ = Reflect::set(&out, &JsValue::from_str(k), v);
    };
    let count = |n: i32| if n < 0 { JsValue::from_str("all") } else { JsValue::from(n) };
    set("memory", &JsValue::TRUE);
    set("localStorage", &count(wipe_storage(StorageKind::Local, plan.local_storage)));
    set("sessionStorage", &count(wipe_storage(StorageKind::Session, plan.session_storage)));
    set("cookies", &if plan.cookies { wipe_cookies() } else { Array::new() }.into());
    let idb = if plan.indexed_db.is_undefined() {
        Array::new().into()
    } else {
        JsFuture::from(wipe_indexed_db(&plan.indexed_db)).await.unwrap_or_else(|_| Array::new().into())
    };
    set("indexedDB", &idb);
    let caches = if plan.caches.is_undefined() {
        Array::new().into()
    } else {
        JsFuture::from(wipe_caches(&plan.caches)).await.unwrap_or_else(|_| Array::new().into())
    };
    set("caches", &caches);
    out.into()
}
