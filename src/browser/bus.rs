//! The cross-tab bus: a `BroadcastChannel`, or `storage` events where it is missing.
//! Everything received here is untrusted input; it is handed to the engine's decoder as
//! text, and anything that is not text is passed on as `None` (counted as malformed).
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, MessageEvent, StorageEvent};

use super::handles::{Callback, Listener};

/// An open bus endpoint; closes the channel / removes the listener on drop.
pub(crate) struct Bus {
    channel: Option<BroadcastChannel>,
    fallback_key: String,
    _listener: Option<Listener>,
    seq: u32,
}

/// Extracts the payload of a bus event: `Some(Some(text))` for a message on this bus,
/// `Some(None)` for a malformed one, `None` for an unrelated event (another storage key).
pub(crate) fn payload(event: &JsValue, fallback_key: &str) -> Option<Option<String>> {
    if let Some(m) = event.dyn_ref::<MessageEvent>() {
        return Some(m.data().as_string());
    }
    if let Some(s) = event.dyn_ref::<StorageEvent>() {
        if s.key().as_deref() != Some(fallback_key) {
            return None;
        }
        let v = s.new_value()?;
        // "<seq>|<message>": the sequence number makes repeated messages distinct writes.
        return Some(v.split_once('|').map(|(_, m)| m.to_string()));
    }
    None
}

impl Bus {
    /// Opens channel `name`; `callback` receives `MessageEvent`s or `StorageEvent`s.
    pub(crate) fn open(name: &str, callback: &Callback) -> Bus {
        let mut fallback_key = String::from(super::cleanup::KEY_PREFIX);
        fallback_key.push_str("bus:");
        fallback_key.push_str(name);
        match BroadcastChannel::new(name) {
            Ok(ch) => {
                ch.set_onmessage(Some(callback.as_ref().unchecked_ref()));
                Bus { channel: Some(ch), fallback_key, _listener: None, seq: 0 }
            }
            Err(_) => {
                let listener = web_sys::window().map(|w| Listener::new(&w, "storage", callback));
                Bus { channel: None, fallback_key, _listener: listener, seq: 0 }
            }
        }
    }

    /// The storage key the fallback transport writes to.
    pub(crate) fn fallback_key(&self) -> &str {
        &self.fallback_key
    }

    /// Posts a message to every other tab on this channel (never to this one).
    pub(crate) fn post(&mut self, message: &str) {
        if let Some(ch) = &self.channel {
            let _ = ch.post_message(&JsValue::from_str(message));
            return;
        }
        let Ok(Some(storage)) = web_sys::window().map_or(Ok(None), |w| w.local_storage()) else { return };
        self.seq = self.seq.wrapping_add(1);
        // A distinct prefix per write, so repeating a message is still a change.
        let mut v = String::new();
        let mut n = self.seq;
        loop {
            v.push(char::from(b'0' + (n % 10) as u8));
            n /= 10;
            if n == 0 {
                break;
            }
        }
        v.push('|');
        v.push_str(message);
        let _ = storage.set_item(&self.fallback_key, &v);
        let _ = storage.remove_item(&self.fallback_key);
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        if let Some(ch) = &self.channel {
            ch.set_onmessage(None);
            ch.close();
        }
    }
}
