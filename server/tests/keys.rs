//! Signing-key rotation across instances: `keys rotate` publishes first and signs later;
//! an instance that has not reloaded yet accepts the other's new tokens (unknown `kid` →
//! reload); no valid token is ever rejected; concurrent rotations cannot lose a key.

mod common;

use std::process::Command;
use std::sync::Arc;

use axum::http::StatusCode;
use base64::Engine as _;
use common::Harness;
use tessera_server::keyring::{self, KeyringError, JWKS_MAX_AGE};
use tessera_server::master_key::MasterKey;
use tessera_server::store::memory::MemoryStore;
use tessera_server::store::SessionStore;
use tessera_server::Config;

fn kid_of(jwt: &str) -> String {
    let h = jwt.split('.').next().expect("header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h)
        .expect("b64");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    v["kid"].as_str().expect("kid").to_string()
}

fn kids(h: &Harness) -> Vec<String> {
    h.state.keys().jwks()["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

#[tokio::test]
async fn rotate_on_a_publishes_first_and_b_accepts_as_new_tokens_without_rejecting_any() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    // long access tokens, so tokens from before the rotation are still valid after it
    let cfg = Config {
        access_ttl: 3600,
        ..Config::for_tests()
    };
    let key = MasterKey::ephemeral();
    let a = Harness::with_store_key(cfg.clone(), store.clone(), key.clone()).await;
    let b = Harness::with_store_key(cfg, store.clone(), key).await;
    let (old_token, _, _) = a.login_alice().await;
    let k0 = kid_of(&old_token);
    assert_eq!(kids(&a), vec![k0.clone()]);

    let delay = JWKS_MAX_AGE + 60;
    // through the sealing layer, as `keys rotate` does (the key set is sealed at rest)
    let k1 = keyring::rotate(a.state.store().as_ref(), a.state.now(), delay)
        .await
        .expect("rotate");
    assert_ne!(k1.kid, k0);
    // A's periodic reload: the new key is published, but does not sign yet
    assert!(a.state.reload_keys().await.expect("reload"));
    assert_eq!(kids(&a), vec![k1.kid.clone(), k0.clone()]);
    let jwks = a.get("/.well-known/jwks.json", None).await.json();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
    let (t, _, _) = a.login_alice().await;
    assert_eq!(
        kid_of(&t),
        k0,
        "a published key does not sign before its time"
    );
    assert_eq!(b.get("/api/me", Some(&t)).await.status, StatusCode::OK);

    // after the JWKS cache lifetime plus a reload interval: A signs with the new key
    a.clock.advance(delay);
    b.clock.advance(delay);
    let (new_token, _, _) = a.login_alice().await;
    assert_eq!(kid_of(&new_token), k1.kid);
    assert_eq!(kids(&b), vec![k0.clone()], "B has not reloaded yet");
    // B meets an unknown kid: it reloads once and accepts
    let r = b.get("/api/me", Some(&new_token)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(kids(&b), vec![k1.kid.clone(), k0.clone()]);
    // and nobody rejects the tokens signed before the rotation
    for h in [&a, &b] {
        assert_eq!(
            h.get("/api/me", Some(&old_token)).await.status,
            StatusCode::OK
        );
        assert_eq!(h.get("/api/me", Some(&t)).await.status, StatusCode::OK);
        assert_eq!(
            h.get("/api/me", Some(&new_token)).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_token_from_a_foreign_key_is_refused_and_reloads_are_rate_limited() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let key = MasterKey::ephemeral();
    let a = Harness::with_store_key(Config::for_tests(), store.clone(), key.clone()).await;
    let other = Harness::new().await; // its own store, its own keys
    let (foreign, _, _) = other.login_alice().await;
    a.get("/api/me", Some(&foreign))
        .await
        .assert_problem(401, "unauthorized");
    // a key rotated in right after a forged-kid reload is not fetched on demand within
    // the rate-limit period (the periodic reload still picks it up)
    let k = keyring::rotate(a.state.store().as_ref(), a.state.now(), 0)
        .await
        .expect("rotate");
    a.clock.set(k.created_at);
    let (t, _, _) = {
        // sign with the new key through a second instance on the same store
        let b = Harness::with_store_key(Config::for_tests(), store, key).await;
        b.clock.set(k.created_at);
        b.login_alice().await
    };
    assert_eq!(kid_of(&t), k.kid);
    a.get("/api/me", Some(&t))
        .await
        .assert_problem(401, "unauthorized");
    a.clock.advance(keyring::UNKNOWN_KID_RELOAD_EVERY);
    assert_eq!(a.get("/api/me", Some(&t)).await.status, StatusCode::OK);
}

async fn concurrent_rotations_publish_exactly_one_key(store: Arc<dyn SessionStore>) {
    let h = Harness::with_store_key(Config::for_tests(), store, MasterKey::ephemeral()).await;
    let store = h.state.store().clone(); // the sealing layer over the backend
    let now = h.state.now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            keyring::rotate(store.as_ref(), now, 360).await
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(k) => won.push(k.kid),
            Err(KeyringError::Pending { .. } | KeyringError::Contended) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one rotation wins: {won:?}");
    assert!(h.state.reload_keys().await.expect("reload"));
    assert!(kids(&h).contains(&won[0]));
    assert_eq!(kids(&h).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotations_are_compare_and_set_on_memory_sqlite_and_redis() {
    concurrent_rotations_publish_exactly_one_key(Arc::new(MemoryStore::new())).await;
    let db = common::TempDb::new("keys-cas");
    concurrent_rotations_publish_exactly_one_key(
        tessera_server::store::open(&db.url())
            .await
            .expect("sqlite"),
    )
    .await;
    if let Some(redis) = common::RedisServer::start() {
        concurrent_rotations_publish_exactly_one_key(
            tessera_server::store::open(&redis.url())
                .await
                .expect("redis"),
        )
        .await;
    }
}

#[test]
fn binary_keys_rotate_publishes_once_and_refuses_while_pending() {
    let db = common::TempDb::new("keys-cli");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_tessera-server"))
            .args(["--store", &db.url(), "keys", "rotate"])
            .output()
            .expect("run")
    };
    let first = run();
    assert!(first.status.success(), "{first:?}");
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(out.starts_with("new signing key "), "{out}");
    let second = run();
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already published"),
        "{second:?}"
    );
}
