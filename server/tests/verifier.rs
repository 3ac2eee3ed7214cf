//! The resource-server verifier ([`tessera_server::verifier`]) against a real tessera-server
//! on loopback: an API that verifies tokens offline from the JWKS, DPoP-bound tokens with
//! their proofs, and the JWKS fetched again on an unknown `kid` at most once per interval.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use common::dpop::{ath, Key};
use common::{Harness, LiveServer, Resp};
use serde_json::json;
use tessera_server::clock::Clock as _;
use tessera_server::keyring;
use tessera_server::verifier::{Verified, Verifier};
use tower::ServiceExt as _;

const API: &str = "http://api.test";

/// The ten-line API of the README.
fn api(verifier: Verifier) -> Router {
    async fn data(Verified(claims): Verified) -> Json<serde_json::Value> {
        Json(json!({ "user": claims.username, "sid": claims.sid }))
    }
    Router::new()
        .route("/api/data", get(data))
        .with_state(verifier)
}

async fn call(api: &Router, authorization: Option<&str>, proof: Option<&str>) -> Resp {
    let mut b = Request::get("/api/data").header("host", "api.test");
    if let Some(a) = authorization {
        b = b.header("authorization", a);
    }
    if let Some(p) = proof {
        b = b.header("dpop", p);
    }
    let res = api
        .clone()
        .oneshot(b.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .expect("body")
        .to_bytes();
    Resp {
        status,
        headers,
        body,
    }
}

fn verifier_for(server: &LiveServer, h: &Harness) -> Verifier {
    Verifier::from_jwks_url(format!("{}/.well-known/jwks.json", server.base))
        .origin(API)
        .clock(h.clock.clone())
}

#[tokio::test]
async fn an_api_verifies_tessera_tokens_offline_and_refuses_forged_foreign_and_expired_ones() {
    let h = Harness::new().await;
    let server = LiveServer::start(h.state.clone()).await;
    let api = api(verifier_for(&server, &h));
    let (at, _, sid) = h.login_alice().await;

    let r = call(&api, Some(&format!("Bearer {at}")), None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json(), json!({"user": "alice", "sid": sid}));

    call(&api, None, None)
        .await
        .assert_problem(401, "unauthorized");
    call(&api, Some("Bearer garbage"), None)
        .await
        .assert_problem(401, "unauthorized");
    let mut forged = at.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    call(&api, Some(&format!("Bearer {forged}")), None)
        .await
        .assert_problem(401, "unauthorized");
    let (foreign, _, _) = Harness::new().await.login_alice().await;
    call(&api, Some(&format!("Bearer {foreign}")), None)
        .await
        .assert_problem(401, "unauthorized");
    h.clock.advance(300 + 5);
    call(&api, Some(&format!("Bearer {at}")), None)
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn a_dpop_bound_token_is_accepted_only_with_a_proof_of_its_key_for_this_api() {
    let h = Harness::new().await;
    let server = LiveServer::start(h.state.clone()).await;
    let api = api(verifier_for(&server, &h));
    let key = Key::es256();
    let p = key.proof("POST", "/auth/login", h.clock.now(), json!({}));
    let r = h
        .post(
            "/auth/login",
            json!({"username": "alice", "password": "tessera-demo"}),
            &[("dpop", &p)],
        )
        .await;
    let at = r.json()["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let now = h.clock.now();
    let scheme = format!("DPoP {at}");
    let htu = format!("{API}/api/data");

    let good = key.proof_for("GET", &htu, now, json!({"ath": ath(&at)}));
    let r = call(&api, Some(&scheme), Some(&good)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["user"], "alice");

    let refused = [
        (
            "copied out as a bearer token",
            format!("Bearer {at}"),
            None,
            "invalid_token",
        ),
        (
            "the same proof again",
            scheme.clone(),
            Some(good),
            "invalid_dpop_proof",
        ),
        (
            "a proof from another key",
            scheme.clone(),
            Some(Key::es256().proof_for("GET", &htu, now, json!({"ath": ath(&at)}))),
            "invalid_dpop_proof",
        ),
        (
            "a proof for another API",
            scheme.clone(),
            Some(key.proof_for(
                "GET",
                "http://other.test/api/data",
                now,
                json!({"ath": ath(&at)}),
            )),
            "invalid_dpop_proof",
        ),
        (
            "a proof without ath",
            scheme.clone(),
            Some(key.proof_for("GET", &htu, now, json!({}))),
            "invalid_dpop_proof",
        ),
        ("no proof", scheme.clone(), None, "invalid_dpop_proof"),
    ];
    for (what, authorization, proof, code) in refused {
        let r = call(&api, Some(&authorization), proof.as_deref()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(r.json()["code"], code, "{what}");
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with(&format!("DPoP error=\"{code}\"")),
            "{what}: {challenge}"
        );
    }
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_per_interval() {
    let h = Harness::new().await;
    let server = LiveServer::start(h.state.clone()).await;
    // a JWKS endpoint that counts its fetches, serving the live server's key set
    let fetches = Arc::new(AtomicUsize::new(0));
    let upstream = format!("{}/.well-known/jwks.json", server.base);
    let counted = {
        let fetches = fetches.clone();
        Router::new().route(
            "/jwks",
            get(move || {
                let (fetches, upstream) = (fetches.clone(), upstream.clone());
                async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let body = reqwest::get(upstream)
                        .await
                        .expect("jwks")
                        .text()
                        .await
                        .expect("body");
                    ([("content-type", "application/json")], body)
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let jwks_url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    let jwks = tokio::spawn(async move {
        let _ = axum::serve(listener, counted).await;
    });
    let api = api(Verifier::from_jwks_url(jwks_url).clock(h.clock.clone()));

    // a cold verifier hit by a burst: every request waits for the one fetch
    let (old, _, _) = h.login_alice().await;
    let cold: Vec<_> = (0..16)
        .map(|_| {
            let api = api.clone();
            let t = format!("Bearer {old}");
            tokio::spawn(async move { call(&api, Some(&t), None).await.status })
        })
        .collect();
    for c in cold {
        assert_eq!(c.await.expect("task"), StatusCode::OK);
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "one fetch, then the cache"
    );
    for _ in 0..10 {
        assert_eq!(
            call(&api, Some(&format!("Bearer {old}")), None)
                .await
                .status,
            StatusCode::OK
        );
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // the issuer rotates its key; a token signed with it has a kid the cache does not know
    let k = keyring::rotate(h.state.store().as_ref(), h.clock.now(), 0)
        .await
        .expect("rotate");
    h.state.reload_keys().await.expect("reload");
    h.clock.set(k.created_at.max(h.clock.now()) + 1);
    let (new, _, _) = h.login_alice().await;
    // within the interval since the last fetch: no fetch on demand, refused
    call(&api, Some(&format!("Bearer {new}")), None)
        .await
        .assert_problem(401, "unauthorized");
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    h.clock
        .advance(tessera_server::verifier::RELOAD_MIN_INTERVAL);
    // a burst of tokens with the new kid: one fetch for all, each answered with its result
    let before = fetches.load(Ordering::SeqCst);
    let burst: Vec<_> = (0..32)
        .map(|_| {
            let api = api.clone();
            let t = format!("Bearer {new}");
            tokio::spawn(async move { call(&api, Some(&t), None).await.status })
        })
        .collect();
    for b in burst {
        assert_eq!(
            b.await.expect("task"),
            StatusCode::OK,
            "each waits for the fetch"
        );
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        before + 1,
        "one fetch for the burst"
    );
    assert_eq!(
        call(&api, Some(&format!("Bearer {new}")), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&api, Some(&format!("Bearer {old}")), None)
            .await
            .status,
        StatusCode::OK
    );
    jwks.abort();
}
