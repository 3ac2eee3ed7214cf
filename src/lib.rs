//! # Tessera
//!
//! A browser session SDK compiled to WebAssembly. Two layers:
//!
//! * [`core`] — a sans-IO session engine: every decision (when to refresh, when the user
//!   is idle, what a message from another tab means, what to wipe) with no clock, no
//!   randomness and no browser API inside. It runs and is tested natively.
//! * `browser` (wasm32 only) — thin bindings that feed the engine real time, entropy and
//!   browser events, and perform the effects it returns. Exposes the JS `Session` class.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod core;

/// The Wasm heap allocator: talc, in place of the standard library's dlmalloc (smaller module;
/// single-threaded Wasm, so no lock is needed).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
pub mod vault;

#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(target_arch = "wasm32")]
pub use browser::Session;
/// Test hook: the cookie wipe run against a given document (see the browser tests).
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub use browser::wipe_cookies_in as __wipe_cookies_in;
