//! Fuzz target: `tessera_server::fuzz_api::json_bodies` (must never panic).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tessera_server::fuzz_api::json_bodies(data);
});
