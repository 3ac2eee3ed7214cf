//! `navigator.locks`: the cross-tab refresh lock, as an owned handle.
use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::handles::Callback;

#[wasm_bindgen(module = "/src/browser/locks.js")]
extern "C" {
    #[wasm_bindgen(js_name = lockRequest)]
    fn lock_request(name: &str, wait_ms: f64, steal: bool, cb: &Function) -> JsValue;
    #[wasm_bindgen(js_name = hasLocks)]
    fn has_locks() -> bool;
}

/// True when the browser provides Web Locks.
pub(crate) fn available() -> bool {
    has_locks()
}

/// A requested or held lock. Dropping it releases the lock or cancels the request.
pub(crate) struct Lock {
    release: Option<Function>,
}

impl Lock {
    /// Requests lock `name`; `callback` receives `1` (granted), `0` (the wait of `wait_ms`
    /// ran out, or the request failed) or later `2` (a held lock was stolen).
    /// `steal` takes the lock from its holder. `None` without Web Locks.
    pub(crate) fn request(name: &str, wait_ms: f64, steal: bool, callback: &Callback) -> Option<Lock> {
        let f: &Function = callback.as_ref().unchecked_ref();
        let release = lock_request(name, wait_ms, steal, f);
        release.dyn_into::<Function>().ok().map(|f| Lock { release: Some(f) })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(f) = self.release.take() {
            let _ = f.call0(&JsValue::NULL);
        }
    }
}
