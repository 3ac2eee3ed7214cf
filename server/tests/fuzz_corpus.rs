//! Replays every committed fuzz corpus file (`server/fuzz/corpus/<target>/`) through the
//! same entry points the fuzz targets use, so plain `cargo test` guards against regressions
//! of anything the fuzzer once found. A panic fails the test and names the file.

use std::path::PathBuf;

fn replay(target: &str, entry: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {target} is empty");
    for f in &files {
        let data = std::fs::read(f).expect("read corpus file");
        let outcome = std::panic::catch_unwind(|| entry(&data));
        assert!(outcome.is_ok(), "{target}: {} panics", f.display());
    }
}

#[test]
fn fuzz_corpus_jwt_never_panics() {
    replay("jwt", tessera_server::fuzz_api::jwt);
}

#[test]
fn fuzz_corpus_headers_never_panics() {
    replay("headers", tessera_server::fuzz_api::headers);
}

#[test]
fn fuzz_corpus_json_bodies_never_panics() {
    replay("json_bodies", tessera_server::fuzz_api::json_bodies);
}

#[test]
fn fuzz_corpus_store_records_never_panics() {
    replay("store_records", tessera_server::fuzz_api::store_records);
}

#[test]
fn fuzz_corpus_dpop_proofs_never_panics() {
    replay("dpop_proofs", tessera_server::fuzz_api::dpop_proofs);
}
