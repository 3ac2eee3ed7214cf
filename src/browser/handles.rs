//! Browser resources as owned values: dropping the value unregisters the resource.
use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{AddEventListenerOptions, EventTarget};

/// A callback shared by the handles that call it. Kept alive by its owner (the session);
/// dropping the owner drops the closure after every handle using it is gone.
pub(crate) type Callback = Closure<dyn FnMut(JsValue)>;

/// An event listener registered with `{passive: true}`; removed on drop.
#[must_use = "the listener is removed as soon as this value is dropped"]
pub(crate) struct Listener {
    target: EventTarget,
    kind: &'static str,
    func: Function,
}

impl Listener {
    /// Adds `callback` as a passive listener for `kind` on `target`.
    pub(crate) fn new(target: &EventTarget, kind: &'static str, callback: &Callback) -> Listener {
        let func: Function = callback.as_ref().unchecked_ref::<Function>().clone();
        let opts = AddEventListenerOptions::new();
        opts.set_passive(true);
        let _ = target.add_event_listener_with_callback_and_add_event_listener_options(kind, &func, &opts);
        Listener { target: target.clone(), kind, func }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.target.remove_event_listener_with_callback(self.kind, &self.func);
    }
}

/// A pending `setTimeout`; cleared on drop.
#[must_use = "the timer is cleared as soon as this value is dropped"]
pub(crate) struct Timer {
    id: i32,
}

impl Timer {
    /// Calls `callback` after `delay_ms` (clamped to the browser's 32-bit range).
    pub(crate) fn new(delay_ms: f64, callback: &Callback) -> Option<Timer> {
        let delay = delay_ms.clamp(0.0, 2_147_483_647.0) as i32;
        let window = web_sys::window()?;
        let id = window
            .set_timeout_with_callback_and_timeout_and_arguments_0(callback.as_ref().unchecked_ref(), delay)
            .ok()?;
        Some(Timer { id })
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(window) = web_sys::window() {
            window.clear_timeout_with_handle(self.id);
        }
    }
}
