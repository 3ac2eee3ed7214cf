//! Fuzz target: `tessera_server::fuzz_api::headers` (must never panic).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tessera_server::fuzz_api::headers(data);
});
