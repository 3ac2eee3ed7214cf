//! Web Storage with a memory fallback. Storage that is disabled, full, or throws on access
//! (Safari private mode, `SecurityError`, `QuotaExceededError`) degrades to an in-memory
//! map for this tab; the caller reports the failure once as an `error` event.
use wasm_bindgen::JsValue;

/// Which backing store the `storage` option selected.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum StorageKind {
    /// Nothing persisted; tokens live in memory only.
    Memory,
    /// `sessionStorage`.
    Session,
    /// `localStorage`.
    Local,
}

impl StorageKind {
    pub(crate) fn parse(s: Option<String>) -> StorageKind {
        match s.as_deref() {
            Some("session") => StorageKind::Session,
            Some("local") => StorageKind::Local,
            _ => StorageKind::Memory,
        }
    }
}

/// Returns `localStorage` or `sessionStorage`, or the exception that access threw.
pub(crate) fn web_storage(kind: StorageKind) -> Result<Option<web_sys::Storage>, JsValue> {
    let Some(window) = web_sys::window() else { return Ok(None) };
    match kind {
        StorageKind::Memory => Ok(None),
        StorageKind::Session => window.session_storage(),
        StorageKind::Local => window.local_storage(),
    }
}

/// Key/value store: web storage while it works, memory after the first failure.
pub(crate) struct Store {
    web: Option<web_sys::Storage>,
    mem: Vec<(String, String)>,
}

impl Store {
    /// Opens the store. The error (if any) says why it fell back to memory.
    pub(crate) fn open(kind: StorageKind) -> (Store, Option<JsValue>) {
        let (web, err) = match web_storage(kind) {
            Ok(web) => (web, None),
            Err(e) => (None, Some(e)),
        };
        // A store that cannot be written to (quota 0, private mode) is a failure too.
        let mut store = Store { web, mem: Vec::new() };
        if err.is_none() {
            if let Some(web) = &store.web {
                let probe = "tessera:probe";
                if let Err(e) = web.set_item(probe, "1").and_then(|_| web.remove_item(probe)) {
                    store.web = None;
                    return (store, Some(e));
                }
            }
        }
        (store, err)
    }

    fn mem_get(&self, key: &str) -> Option<String> {
        self.mem.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn mem_set(&mut self, key: &str, value: &str) {
        self.mem.retain(|(k, _)| k != key);
        self.mem.push((key.into(), value.into()));
    }

    /// True while backed by web storage.
    pub(crate) fn persistent(&self) -> bool {
        self.web.is_some()
    }

    /// Reads a key; a throwing store falls back to memory and returns the error.
    pub(crate) fn get(&mut self, key: &str) -> (Option<String>, Option<JsValue>) {
        if let Some(web) = &self.web {
            match web.get_item(key) {
                Ok(v) => return (v, None),
                Err(e) => {
                    self.web = None;
                    return (self.mem_get(key), Some(e));
                }
            }
        }
        (self.mem_get(key), None)
    }

    /// Writes a key; a throwing store falls back to memory (the value is kept there).
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Option<JsValue> {
        if let Some(web) = &self.web {
            match web.set_item(key, value) {
                Ok(()) => return None,
                Err(e) => {
                    // Don't leave a stale copy behind in the store that failed.
                    let _ = web.remove_item(key);
                    self.web = None;
                    self.mem_set(key, value);
                    return Some(e);
                }
            }
        }
        self.mem_set(key, value);
        None
    }

    /// Removes a key from both web storage and memory.
    pub(crate) fn remove(&mut self, key: &str) {
        if let Some(web) = &self.web {
            let _ = web.remove_item(key);
        }
        self.mem.retain(|(k, _)| k != key);
    }
}
