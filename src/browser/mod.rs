//! Browser bindings: the JavaScript `Session` class.
use wasm_bindgen::prelude::*;

use crate::core::SessionState;

/// A browser session (placeholder until the browser layer lands).
#[wasm_bindgen]
pub struct Session {
    state: SessionState,
}

#[wasm_bindgen]
impl Session {
    /// Starts a session controller.
    #[wasm_bindgen(js_name = start)]
    pub async fn start(_options: JsValue) -> Result<Session, JsValue> {
        Ok(Session { state: SessionState::Anonymous })
    }

    /// The current state name.
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> String {
        self.state.as_str().into()
    }
}
