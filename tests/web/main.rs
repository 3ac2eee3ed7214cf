//! The SDK in a real browser (`wasm-pack test --headless --chrome` / `--firefox`): one test
//! binary with a module per capability, so the runner builds, bundles and loads the browser
//! once (it did so once per `tests/web_*.rs` file, most of this layer's time). Every module's
//! tests use their own BroadcastChannel names, storage keys and fake server (`support.rs`).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::wasm_bindgen_test_configure;

wasm_bindgen_test_configure!(run_in_browser);

mod support;

mod bus;
mod cleanup;
mod cleanup_truth;
mod fetch;
mod idle;
mod lifecycle;
mod logout;
mod origins;
mod refresh;
mod start;
mod storage;
mod vault;
mod vault_keys;
