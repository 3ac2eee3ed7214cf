//! Fuzz target: `tessera_server::fuzz_api::dpop_proofs` (must never panic).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tessera_server::fuzz_api::dpop_proofs(data);
});
