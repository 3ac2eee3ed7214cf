//! User activity: the JS tracker in `activity.js` keeps the hot path out of Wasm.
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::handles::Callback;

#[wasm_bindgen(module = "/src/browser/activity.js")]
extern "C" {
    type ActivityTracker;
    #[wasm_bindgen(constructor)]
    fn new(window_ms: f64, on_active: &js_sys::Function) -> ActivityTracker;
    #[wasm_bindgen(method)]
    fn stop(this: &ActivityTracker);
}

/// Passive activity listeners on `document`; removed on drop.
pub(crate) struct Activity {
    tracker: ActivityTracker,
}

impl Activity {
    /// Installs the listeners; `callback` runs at most once per `window_ms` of activity.
    pub(crate) fn start(window_ms: f64, callback: &Callback) -> Activity {
        Activity { tracker: ActivityTracker::new(window_ms, callback.as_ref().unchecked_ref()) }
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        self.tracker.stop();
    }
}
