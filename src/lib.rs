//! # Tessera
//!
//! A browser session SDK compiled to WebAssembly. Two layers:
//!
//! * [`core`] — a sans-IO session engine: every decision (when to refresh, when the user
//!   is idle, what a message from another tab means, what to wipe) with no clock, no
//!   randomness and no browser API inside. It runs and is tested natively.
//! * `browser` (wasm32 only) — thin bindings that feed the engine real time, entropy and
//!   browser events, and perform the effects it returns. Exposes the JS `Session` class.
//!
//! The crate is `no_std` + `alloc`. Natively, and in debug Wasm builds (the browser tests),
//! it links `std`, whose panic handler it uses. The release Wasm module (the npm package)
//! links no `std` at all: a panic is a plain Wasm trap, with no panic hook, no message
//! formatting and none of `core::fmt` in the module (measured: ~1.5 KB brotli). The code
//! is written not to panic on any input; a trap would only mean a bug, as before.
//! One consequence: a release-profile build of the Wasm *tests* (`wasm-pack test --release`)
//! does not link (the test harness brings `std`'s panic handler too); test in debug.
#![no_std]
#![deny(unsafe_code)]
#![deny(missing_docs)]

// `vec!`/`format!` for every module (unused in some cfgs, hence the allow).
#[allow(unused_imports)]
#[macro_use]
extern crate alloc;
#[cfg(any(not(target_arch = "wasm32"), debug_assertions))]
extern crate std;

/// The release Wasm module's panic handler: trap. (See the crate docs.)
#[cfg(all(target_arch = "wasm32", not(debug_assertions)))]
#[panic_handler]
fn panic(_: &::core::panic::PanicInfo<'_>) -> ! {
    ::core::arch::wasm32::unreachable()
}

pub mod boundary;
pub mod core;

#[allow(unsafe_code)]
pub mod heap;
/// The Wasm heap allocator ([`heap`]), in place of the standard library's dlmalloc.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOC: heap::WasmHeap = heap::WasmHeap::new();
pub mod vault;

#[cfg(target_arch = "wasm32")]
mod browser;
/// Test hook: the cookie wipe run against a given document (see the browser tests).
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub use browser::wipe_cookies_in as __wipe_cookies_in;
#[cfg(target_arch = "wasm32")]
pub use browser::Session;
