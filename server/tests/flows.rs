//! Behaviour through the router (`tower::ServiceExt::oneshot`, no socket), with a manual
//! clock: every security claim of the server has a named test here.

mod common;

use axum::http::StatusCode;
use common::{bob_code, Harness, UA};
use serde_json::{json, Value};
use tessera_server::config::AnomalyPolicy;
use tessera_server::Config;

#[tokio::test]
async fn full_cookie_flow_login_refresh_me_logout() {
    let h = Harness::new().await;
    let r = h.login("alice", "tessera-demo").await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["expires_in"], 300);
    assert_eq!(j["session"]["user"], "alice");
    assert_eq!(j["session"]["mfa"], false);
    assert!(
        j.get("refresh_token").is_none(),
        "cookie mode never puts the refresh token in the body"
    );
    let at = j["access_token"].as_str().unwrap_or_default().to_string();
    let rt = r.cookie_token().expect("refresh cookie");
    assert_eq!(rt.len(), 86, "family, secret and tag, base64url");

    let me = h.get("/api/me", Some(&at)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["username"], "alice");
    assert_eq!(me.json()["sid"], j["session"]["id"]);
    assert_eq!(me.json()["sub"], "user-alice");

    h.clock.advance(60);
    let r2 = h.refresh_cookie(&rt).await;
    assert_eq!(r2.status, StatusCode::OK);
    let rt2 = r2.cookie_token().expect("rotated cookie");
    assert_ne!(rt2, rt, "every refresh rotates the token");
    let at2 = r2.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(h.introspect(&at2).await["active"], true);

    let out = h
        .post(
            "/auth/logout",
            Value::Null,
            &[("cookie", &format!("__Host-tessera_rt={rt2}"))],
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        out.header("clear-site-data").as_deref(),
        Some("\"storage\""),
        "default: storage only (cookies would clear the whole registrable domain)"
    );
    let mut attrs: Vec<String> = out
        .set_cookie()
        .unwrap_or_default()
        .split(';')
        .map(|a| a.trim().to_string())
        .collect();
    attrs.sort();
    assert_eq!(
        attrs,
        [
            "HttpOnly",
            "Max-Age=0",
            "Path=/",
            "SameSite=Strict",
            "Secure",
            "__Host-tessera_rt="
        ]
    );
    assert_eq!(h.introspect(&at2).await["active"], false);
    h.get("/api/me", Some(&at2))
        .await
        .assert_problem(401, "unauthorized");
    let again = h.refresh_cookie(&rt2).await;
    again.assert_problem(401, "session_revoked");
}

#[tokio::test]
async fn full_token_mode_flow_keeps_refresh_token_in_body() {
    let h = Harness::new().await;
    let r = h
        .post(
            "/auth/login",
            json!({"username": "alice", "password": "tessera-demo", "mode": "token"}),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.set_cookie().is_none(), "token mode sets no cookie");
    let rt = r.json()["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(rt.len(), 86);
    // token mode needs no CSRF header: nothing ambient authenticates it
    let r2 = h
        .post(
            "/auth/refresh",
            json!({ "refresh_token": rt }),
            &[("x-tessera-csrf", "")],
        )
        .await;
    assert_eq!(
        r2.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r2.body)
    );
    let rt2 = r2.json()["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!rt2.is_empty() && rt2 != rt);
    let at2 = r2.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let out = h
        .post("/auth/logout", json!({ "refresh_token": rt2 }), &[])
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(h.introspect(&at2).await["active"], false);
}

#[tokio::test]
async fn login_never_adopts_presented_session_cookie() {
    let h = Harness::new().await;
    // an attacker plants a cookie value (even a real, live token of their own session)
    let (_, attacker_rt, attacker_sid) = h.login_alice().await;
    let planted = format!("__Host-tessera_rt={attacker_rt}");
    let r = h
        .post(
            "/auth/login",
            json!({"username": "alice", "password": "tessera-demo"}),
            &[("cookie", &planted)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let new_rt = r.cookie_token().expect("fresh cookie");
    assert_ne!(new_rt, attacker_rt);
    assert_ne!(
        r.json()["session"]["id"].as_str(),
        Some(attacker_sid.as_str())
    );
    // and a made-up value is not adopted either
    let fixed = "__Host-tessera_rt=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let r = h
        .post(
            "/auth/login",
            json!({"username": "alice", "password": "tessera-demo"}),
            &[("cookie", fixed)],
        )
        .await;
    assert_ne!(
        r.cookie_token().as_deref(),
        Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    );
    h.refresh_cookie("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await
        .assert_problem(401, "refresh_invalid");
}

#[tokio::test]
async fn refresh_cookie_has_host_prefix_httponly_secure_samesite_strict() {
    let h = Harness::new().await;
    let r = h.login("alice", "tessera-demo").await;
    let line = r.set_cookie().expect("cookie");
    let attrs: Vec<&str> = line.split(';').map(str::trim).collect();
    assert!(attrs[0].starts_with("__Host-tessera_rt="));
    for a in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(attrs.contains(&a), "{a} missing in {line}");
    }
    assert!(
        !line.contains("Domain"),
        "__Host- cookies must not carry Domain"
    );
    assert!(
        attrs.contains(&"Max-Age=28800"),
        "lives as long as the absolute lifetime: {line}"
    );
}

#[tokio::test]
async fn replayed_refresh_token_revokes_family() {
    let h = Harness::new().await;
    let (at, t0, _) = h.login_alice().await;
    let t1 = h.refresh_cookie(&t0).await.cookie_token().expect("t1");
    h.clock.advance(5);
    let t2 = h.refresh_cookie(&t1).await.cookie_token().expect("t2");
    h.clock.advance(6);
    // an attacker replays t0 (two generations old, superseded 11 s ago: past the 10 s grace
    // window; within it only the client that superseded it is answered, see
    // tabs_refreshing_at_once_out_of_order_all_end_on_the_current_token): the family ends
    let replay = h.refresh_cookie(&t0).await;
    replay.assert_problem(401, "refresh_reused");
    assert_eq!(replay.cookie_token().as_deref(), Some(""), "cookie cleared");
    h.refresh_cookie(&t2)
        .await
        .assert_problem(401, "session_revoked");
    assert_eq!(h.introspect(&at).await["active"], false);
}

#[tokio::test]
async fn lost_response_predecessor_within_grace_gets_same_successor() {
    let h = Harness::new().await;
    let (_, t0, _) = h.login_alice().await;
    let t1 = h.refresh_cookie(&t0).await.cookie_token().expect("t1");
    // the client never saw t1 and retries with t0 within the grace window
    h.clock.advance(9);
    let retry = h.refresh_cookie(&t0).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(
        retry.cookie_token().as_deref(),
        Some(t1.as_str()),
        "already-issued successor"
    );
    // the family is intact: t1 rotates normally
    assert_eq!(h.refresh_cookie(&t1).await.status, StatusCode::OK);
}

/// Three tabs without Web Locks or BroadcastChannel refresh with one cookie at once; their
/// requests reach the server out of order: A's t0 -> t1, B's t1 -> t2 (B already had t1),
/// then C's t0, sent before either answer. Seen in Chromium: the late t0 counted as reuse and
/// revoked the session. Now every tab ends on the current token and the session lives.
#[tokio::test]
async fn tabs_refreshing_at_once_out_of_order_all_end_on_the_current_token() {
    let h = Harness::new().await;
    let (_, t0, sid) = h.login_alice().await;
    let a = h.refresh_cookie(&t0).await;
    assert_eq!(a.status, StatusCode::OK);
    let t1 = a.cookie_token().expect("t1");
    h.clock.advance(1);
    let b = h.refresh_cookie(&t1).await;
    assert_eq!(b.status, StatusCode::OK);
    let t2 = b.cookie_token().expect("t2");
    h.clock.advance(1);
    let c = h.refresh_cookie(&t0).await;
    assert_eq!(
        c.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&c.body)
    );
    assert_eq!(
        c.cookie_token().as_deref(),
        Some(t2.as_str()),
        "the current token"
    );
    let at = c.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(h.introspect(&at).await["active"], true);
    assert_eq!(h.introspect(&at).await["sid"], sid.as_str());
    // the family goes on from t2
    let d = h.refresh_cookie(&t2).await;
    assert_eq!(d.status, StatusCode::OK);
    let t3 = d.cookie_token().expect("t3");
    assert_ne!(t3, t2);
}

#[tokio::test]
async fn predecessor_after_grace_window_revokes_family() {
    let h = Harness::new().await;
    let (_, t0, _) = h.login_alice().await;
    let t1 = h.refresh_cookie(&t0).await.cookie_token().expect("t1");
    h.clock.advance(11);
    h.refresh_cookie(&t0)
        .await
        .assert_problem(401, "refresh_reused");
    h.refresh_cookie(&t1)
        .await
        .assert_problem(401, "session_revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_create_exactly_one_family_member() {
    let h = std::sync::Arc::new(Harness::new().await);
    let (_, t0, sid) = h.login_alice().await;
    let futs: Vec<_> = (0..12)
        .map(|_| {
            let (h, t0) = (h.clone(), t0.clone());
            async move { h.refresh_cookie(&t0).await }
        })
        .collect();
    let results = futures_join_all(futs).await;
    let tokens: std::collections::HashSet<_> = results
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK);
            r.cookie_token().expect("cookie")
        })
        .collect();
    assert_eq!(tokens.len(), 1, "every racer got the same successor");
    let s = h
        .state
        .store()
        .get_session(&sid)
        .await
        .ok()
        .flatten()
        .expect("session");
    assert_eq!(s.generation, 1);
}

async fn futures_join_all<F>(futs: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    // run them truly concurrently on the multi-thread runtime
    let mut set = Vec::new();
    for f in futs {
        set.push(tokio::spawn(f));
    }
    let mut out = Vec::new();
    for j in set {
        out.push(j.await.expect("join"));
    }
    out
}

#[tokio::test]
async fn idle_timeout_ends_session_on_refresh_and_introspection() {
    let mut cfg = Config::for_tests();
    cfg.idle_timeout = 600;
    cfg.access_ttl = 3600; // longer than idle on purpose: introspection must still say no
    let h = Harness::with_config(cfg).await;
    let (at, t0, _) = h.login_alice().await;
    h.clock.advance(599);
    assert_eq!(h.introspect(&at).await["active"], true);
    let t1 = h
        .refresh_cookie(&t0)
        .await
        .cookie_token()
        .expect("refresh resets idle");
    h.clock.advance(599);
    assert_eq!(h.introspect(&at).await["active"], true);
    h.clock.advance(1);
    assert_eq!(
        h.introspect(&at).await["active"],
        false,
        "idle deadline reached"
    );
    h.refresh_cookie(&t1)
        .await
        .assert_problem(401, "session_expired");
}

#[tokio::test]
async fn absolute_lifetime_ends_session_despite_activity() {
    let mut cfg = Config::for_tests();
    cfg.idle_timeout = 600;
    cfg.absolute_timeout = 2000;
    let h = Harness::with_config(cfg).await;
    let (_, mut t, _) = h.login_alice().await;
    for _ in 0..3 {
        h.clock.advance(500);
        let r = h.refresh_cookie(&t).await;
        assert_eq!(r.status, StatusCode::OK);
        // the access token never outlives the session
        assert!(r.json()["expires_in"].as_i64().unwrap_or(0) <= 300);
        t = r.cookie_token().expect("t");
    }
    h.clock.advance(499); // t = 1999
    let r = h.refresh_cookie(&t).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json()["expires_in"],
        1,
        "capped at the remaining absolute lifetime"
    );
    let t = r.cookie_token().expect("t");
    h.clock.advance(1);
    h.refresh_cookie(&t)
        .await
        .assert_problem(401, "session_expired");
}

#[tokio::test]
async fn logout_all_revokes_every_session_of_the_user() {
    let h = Harness::new().await;
    let (at1, rt1, _) = h.login_alice().await;
    let (at2, _, _) = h.login_alice().await;
    let bob = h.login("bob", "tessera-demo").await; // bob's MFA step pending, unaffected
    assert_eq!(bob.json()["mfa_required"], true);
    let out = h
        .post(
            "/auth/logout-all",
            Value::Null,
            &[("cookie", &format!("__Host-tessera_rt={rt1}"))],
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.header("clear-site-data").is_some());
    assert_eq!(h.introspect(&at1).await["active"], false);
    assert_eq!(h.introspect(&at2).await["active"], false);
    // without any credential logout-all is refused
    h.post("/auth/logout-all", Value::Null, &[])
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn bearer_logout_revokes_the_tokens_session() {
    let h = Harness::new().await;
    let (at, _, _) = h.login_alice().await;
    let out = h
        .post(
            "/auth/logout",
            Value::Null,
            &[("authorization", &format!("Bearer {at}"))],
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(h.introspect(&at).await["active"], false);
}

#[tokio::test]
async fn mfa_login_with_totp_and_code_is_accepted_only_once() {
    let h = Harness::new().await;
    let r = h.login("bob", "tessera-demo").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.set_cookie().is_none(),
        "no session before the second factor"
    );
    let j = r.json();
    assert_eq!(j["mfa_required"], true);
    let mfa_token = j["mfa_token"].as_str().unwrap_or_default().to_string();
    let code = bob_code(h.state.now());
    let ok = h
        .post(
            "/auth/mfa",
            json!({"mfa_token": mfa_token, "code": code}),
            &[],
        )
        .await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&ok.body)
    );
    assert_eq!(ok.json()["session"]["mfa"], true);
    assert!(ok.cookie_token().is_some());
    // the same mfa_token is single-use
    h.post(
        "/auth/mfa",
        json!({"mfa_token": mfa_token, "code": code}),
        &[],
    )
    .await
    .assert_problem(401, "mfa_expired");
    // a second login cannot reuse the same code (replay)
    let again = h.login("bob", "tessera-demo").await.json();
    let replay = h
        .post(
            "/auth/mfa",
            json!({"mfa_token": again["mfa_token"], "code": code}),
            &[],
        )
        .await;
    replay.assert_problem(401, "mfa_invalid");
    // the next step's code works (±1 step window)
    let next = bob_code(h.state.now() + 30);
    let ok2 = h
        .post(
            "/auth/mfa",
            json!({"mfa_token": again["mfa_token"], "code": next}),
            &[],
        )
        .await;
    assert_eq!(ok2.status, StatusCode::OK);
}

#[tokio::test]
async fn mfa_rejects_wrong_code_and_expired_token() {
    let h = Harness::new().await;
    let t = h.login("bob", "tessera-demo").await.json()["mfa_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let now = h.state.now();
    let wrong = if bob_code(now) == "000000" {
        "111111"
    } else {
        "000000"
    };
    h.post("/auth/mfa", json!({"mfa_token": t, "code": wrong}), &[])
        .await
        .assert_problem(401, "mfa_invalid");
    // a code two steps away is outside the window
    h.post(
        "/auth/mfa",
        json!({"mfa_token": t, "code": bob_code(now + 90)}),
        &[],
    )
    .await
    .assert_problem(401, "mfa_invalid");
    h.clock.advance(301);
    h.post(
        "/auth/mfa",
        json!({"mfa_token": t, "code": bob_code(h.state.now())}),
        &[],
    )
    .await
    .assert_problem(401, "mfa_expired");
    h.post(
        "/auth/mfa",
        json!({"mfa_token": "bogus", "code": "123456"}),
        &[],
    )
    .await
    .assert_problem(401, "mfa_expired");
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_identical_error() {
    let h = Harness::new().await;
    let a = h.login("alice", "wrong").await;
    let b = h.login("mallory", "tessera-demo").await;
    a.assert_problem(401, "invalid_credentials");
    b.assert_problem(401, "invalid_credentials");
    // byte-identical apart from `instance`, which names each request's own id
    let strip = |r: &common::Resp| {
        let id = r.header("x-request-id").expect("request id");
        String::from_utf8_lossy(&r.body).replace(&id, "ID")
    };
    assert_eq!(strip(&a), strip(&b), "byte-identical bodies");
    assert_eq!(a.body.len(), b.body.len());
}

#[tokio::test]
async fn login_rate_limited_per_account_with_retry_after() {
    let mut cfg = Config::for_tests();
    cfg.account_limit = 3;
    cfg.rate_window = 60;
    let h = Harness::with_config(cfg).await;
    for _ in 0..3 {
        h.login("alice", "nope")
            .await
            .assert_problem(401, "invalid_credentials");
    }
    let limited = h.login("alice", "tessera-demo").await;
    limited.assert_problem(429, "rate_limited");
    assert_eq!(limited.header("retry-after").as_deref(), Some("60"));
    h.clock.advance(20);
    assert_eq!(
        h.login("alice", "tessera-demo")
            .await
            .header("retry-after")
            .as_deref(),
        Some("40")
    );
    // other accounts are unaffected
    assert_eq!(h.login("bob", "tessera-demo").await.status, StatusCode::OK);
    h.clock.advance(40);
    assert_eq!(
        h.login("alice", "tessera-demo").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn login_rate_limited_per_client_address() {
    let mut cfg = Config::for_tests();
    cfg.address_limit = 4;
    cfg.account_limit = 100;
    let h = Harness::with_config(cfg).await;
    for i in 0..4 {
        h.login(&format!("user{i}"), "x")
            .await
            .assert_problem(401, "invalid_credentials");
    }
    h.login("alice", "tessera-demo")
        .await
        .assert_problem(429, "rate_limited");
    // another address is not limited
    let mut req = axum::http::Request::post("/auth/login")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"username": "alice", "password": "tessera-demo"}).to_string(),
        ))
        .expect("req");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [10, 1, 2, 3],
            5555,
        ))));
    assert_eq!(h.call(req).await.status, StatusCode::OK);
}

#[tokio::test]
async fn errors_are_problem_json_with_stable_codes() {
    let h = Harness::new().await;
    h.post("/auth/login", json!({"username": 5}), &[])
        .await
        .assert_problem(400, "invalid_request");
    h.post(
        "/auth/login",
        json!({"username": "a", "password": "b", "mode": "weird"}),
        &[],
    )
    .await
    .assert_problem(400, "invalid_request");
    h.post("/auth/refresh", Value::Null, &[])
        .await
        .assert_problem(401, "refresh_invalid");
    h.get("/api/me", None)
        .await
        .assert_problem(401, "unauthorized");
    h.get("/api/me", Some("garbage"))
        .await
        .assert_problem(401, "unauthorized");
    h.get("/nope", None).await.assert_problem(404, "not_found");
    let secret = format!(
        "Bearer {}",
        h.state
            .config()
            .introspection_secret
            .clone()
            .unwrap_or_default()
    );
    h.post("/auth/introspect", json!({}), &[("authorization", &secret)])
        .await
        .assert_problem(400, "invalid_request");
    let r = h.post("/auth/login", Value::String("x".into()), &[]).await;
    r.assert_problem(400, "invalid_request");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("serde"),
        "no internals leak"
    );
}

#[tokio::test]
async fn garbage_bodies_never_cause_a_server_error() {
    let h = Harness::new().await;
    let bodies: [&[u8]; 7] = [
        b"",
        b"{",
        b"null",
        b"[]",
        b"\xff\xfe\x00",
        b"{\"refresh_token\":123}",
        b"{\"token\":\"a.b.c\"}",
    ];
    for path in [
        "/auth/login",
        "/auth/mfa",
        "/auth/refresh",
        "/auth/logout",
        "/auth/logout-all",
        "/auth/vault-key",
        "/auth/introspect",
    ] {
        for body in bodies {
            let req = axum::http::Request::post(path)
                .header("content-type", "application/json")
                .header("x-tessera-csrf", "1")
                .header(
                    "cookie",
                    axum::http::HeaderValue::from_bytes(b"__Host-tessera_rt=\xffbad; other=1")
                        .expect("obs-text"),
                )
                .body(axum::body::Body::from(body.to_vec()))
                .expect("req");
            let r = h.call(req).await;
            assert!(
                r.status.is_client_error() || r.status.is_success(),
                "{path} {body:?} -> {}",
                r.status
            );
        }
    }
}

#[tokio::test]
async fn auth_responses_are_never_cached() {
    let h = Harness::new().await;
    let r = h.login("alice", "tessera-demo").await;
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let at = r.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        h.get("/api/me", Some(&at))
            .await
            .header("cache-control")
            .as_deref(),
        Some("no-store")
    );
    assert_eq!(
        h.login("alice", "bad")
            .await
            .header("cache-control")
            .as_deref(),
        Some("no-store")
    );
}

#[tokio::test]
async fn cookie_refresh_without_origin_or_csrf_header_is_forbidden() {
    let mut cfg = Config::for_tests();
    cfg.allowed_origins = vec!["http://127.0.0.1:8080".into()];
    let h = Harness::with_config(cfg).await;
    let (_, rt, _) = h.login_alice().await;
    let cookie = format!("__Host-tessera_rt={rt}");
    h.post(
        "/auth/refresh",
        Value::Null,
        &[("cookie", &cookie), ("x-tessera-csrf", "")],
    )
    .await
    .assert_problem(403, "forbidden_origin");
    // an allow-listed Origin is enough (the app's own origin must be listed: Host is not trusted)
    let same = h
        .post(
            "/auth/refresh",
            Value::Null,
            &[
                ("cookie", &cookie),
                ("x-tessera-csrf", ""),
                ("origin", "http://127.0.0.1:8080"),
            ],
        )
        .await;
    assert_eq!(same.status, StatusCode::OK);
}

#[tokio::test]
async fn foreign_origin_is_rejected_even_with_csrf_header() {
    let h = Harness::new().await;
    let (_, rt, _) = h.login_alice().await;
    let cookie = format!("__Host-tessera_rt={rt}");
    h.post(
        "/auth/refresh",
        Value::Null,
        &[("cookie", &cookie), ("origin", "https://evil.example")],
    )
    .await
    .assert_problem(403, "forbidden_origin");
    h.post(
        "/auth/vault-key",
        Value::Null,
        &[("cookie", &cookie), ("origin", "https://evil.example")],
    )
    .await
    .assert_problem(403, "forbidden_origin");
    h.post(
        "/auth/login",
        json!({"username":"alice","password":"tessera-demo"}),
        &[("origin", "https://evil.example")],
    )
    .await
    .assert_problem(403, "forbidden_origin");
}

#[tokio::test]
async fn allowlisted_origin_gets_cors_with_credentials() {
    let mut cfg = Config::for_tests();
    cfg.allowed_origins = vec!["https://app.example".into()];
    let h = Harness::with_config(cfg).await;
    let (_, rt, _) = h.login_alice().await;
    let cookie = format!("__Host-tessera_rt={rt}");
    let r = h
        .post(
            "/auth/refresh",
            Value::Null,
            &[
                ("cookie", &cookie),
                ("origin", "https://app.example"),
                ("x-tessera-csrf", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    assert_eq!(
        r.header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    // the SDK reads the DPoP nonce, the resource challenge and the server's clock
    let exposed = r
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for h in ["dpop-nonce", "www-authenticate", "date"] {
        assert!(exposed.contains(h), "{h} exposed: {exposed}");
    }
    let pre = axum::http::Request::builder()
        .method("OPTIONS")
        .uri("/auth/refresh")
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "x-tessera-csrf,content-type",
        )
        .body(axum::body::Body::empty())
        .expect("req");
    let pre = h.call(pre).await;
    assert!(pre.status.is_success());
    assert!(pre
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .contains("x-tessera-csrf"));
    let evil = axum::http::Request::builder()
        .method("OPTIONS")
        .uri("/auth/refresh")
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .body(axum::body::Body::empty())
        .expect("req");
    assert!(h
        .call(evil)
        .await
        .header("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn vault_key_is_stable_per_session_and_destroyed_on_logout() {
    let h = Harness::new().await;
    let (at, rt, _) = h.login_alice().await;
    let cookie = format!("__Host-tessera_rt={rt}");
    let k1 = h
        .post("/auth/vault-key", Value::Null, &[("cookie", &cookie)])
        .await;
    assert_eq!(k1.status, StatusCode::OK);
    let key = k1.json()["key"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        tessera_server::secret::unb64(&key).map(|k| k.len()),
        Some(32)
    );
    let rt2 = h.refresh_cookie(&rt).await.cookie_token().expect("rotated");
    let k2 = h
        .post(
            "/auth/vault-key",
            Value::Null,
            &[("cookie", &format!("__Host-tessera_rt={rt2}"))],
        )
        .await;
    assert_eq!(
        k2.json()["key"].as_str(),
        Some(key.as_str()),
        "same key for the whole session"
    );
    // a bearer token alone does not get the key
    h.post(
        "/auth/vault-key",
        Value::Null,
        &[("authorization", &format!("Bearer {at}"))],
    )
    .await
    .assert_problem(401, "refresh_invalid");
    // another session has another key
    let (_, other_rt, _) = h.login_alice().await;
    let other = h
        .post(
            "/auth/vault-key",
            Value::Null,
            &[("cookie", &format!("__Host-tessera_rt={other_rt}"))],
        )
        .await;
    assert_ne!(other.json()["key"].as_str(), Some(key.as_str()));
    h.post(
        "/auth/logout",
        Value::Null,
        &[("cookie", &format!("__Host-tessera_rt={rt2}"))],
    )
    .await;
    h.post(
        "/auth/vault-key",
        Value::Null,
        &[("cookie", &format!("__Host-tessera_rt={rt2}"))],
    )
    .await
    .assert_problem(401, "session_revoked");
}

#[tokio::test]
async fn sessions_list_and_remote_revoke() {
    let h = Harness::new().await;
    let (at1, _, sid1) = h.login_alice().await;
    let (at2, _, sid2) = h.login_alice().await;
    let list = h.get("/auth/sessions", Some(&at1)).await;
    assert_eq!(list.status, StatusCode::OK);
    let sessions = list.json()["sessions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(sessions.len(), 2);
    let mine = sessions
        .iter()
        .find(|s| s["id"] == sid1.as_str())
        .expect("own session listed");
    assert_eq!(mine["current"], true);
    assert_eq!(mine["user_agent"], UA);
    assert_eq!(mine["address"], "127.0.0.1");
    for k in ["created_at", "last_seen", "expires_at", "active", "events"] {
        assert!(mine.get(k).is_some(), "{k} missing");
    }
    // current session endpoint
    let cur = h.get("/auth/session", Some(&at1)).await.json();
    assert_eq!(cur["id"], sid1.as_str());
    // bob cannot revoke alice's session
    let bob_t = h.login("bob", "tessera-demo").await.json()["mfa_token"].clone();
    let bob = h
        .post(
            "/auth/mfa",
            json!({"mfa_token": bob_t, "code": bob_code(h.state.now())}),
            &[],
        )
        .await
        .json();
    let bob_at = bob["access_token"].as_str().unwrap_or_default().to_string();
    let del = axum::http::Request::delete(format!("/auth/sessions/{sid2}"))
        .header("authorization", format!("Bearer {bob_at}"))
        .body(axum::body::Body::empty())
        .expect("req");
    h.call(del).await.assert_problem(404, "not_found");
    assert_eq!(h.introspect(&at2).await["active"], true);
    let del = axum::http::Request::delete(format!("/auth/sessions/{sid2}"))
        .header("authorization", format!("Bearer {at1}"))
        .body(axum::body::Body::empty())
        .expect("req");
    assert_eq!(h.call(del).await.status, StatusCode::NO_CONTENT);
    assert_eq!(h.introspect(&at2).await["active"], false);
    assert_eq!(h.introspect(&at1).await["active"], true);
}

async fn refresh_from(h: &Harness, rt: &str, ua: &str, ip: [u8; 4]) -> common::Resp {
    let mut req = axum::http::Request::post("/auth/refresh")
        .header("cookie", format!("__Host-tessera_rt={rt}"))
        .header("x-tessera-csrf", "1")
        .header("user-agent", ua)
        .body(axum::body::Body::empty())
        .expect("req");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            ip, 4000,
        ))));
    h.call(req).await
}

#[tokio::test]
async fn user_agent_and_network_changes_are_recorded_as_session_events() {
    let h = Harness::new().await;
    let (at, rt, _) = h.login_alice().await;
    // same /24, same UA: no event
    let r = refresh_from(&h, &rt, UA, [127, 0, 0, 9]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = refresh_from(
        &h,
        &r.cookie_token().unwrap_or_default(),
        "OtherBrowser/2",
        [192, 168, 7, 1],
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "policy 'record' keeps the session"
    );
    let list = h.get("/auth/sessions", Some(&at)).await.json();
    let events = list["sessions"][0]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let kinds: Vec<_> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, vec!["user_agent_changed", "network_changed"]);
    assert_eq!(list["sessions"][0]["user_agent"], "OtherBrowser/2");
    assert_eq!(list["sessions"][0]["address"], "192.168.7.1");
}

#[tokio::test]
async fn anomaly_policy_revoke_ends_session_on_network_change() {
    let mut cfg = Config::for_tests();
    cfg.anomaly_policy = AnomalyPolicy::Revoke;
    let h = Harness::with_config(cfg).await;
    let (at, rt, _) = h.login_alice().await;
    refresh_from(&h, &rt, UA, [203, 0, 113, 5])
        .await
        .assert_problem(401, "session_revoked");
    assert_eq!(h.introspect(&at).await["active"], false);
}

#[tokio::test]
async fn jwks_publishes_the_verifying_key() {
    let h = Harness::new().await;
    let r = h.get("/.well-known/jwks.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let k = &r.json()["keys"][0];
    assert_eq!(k["kty"], "OKP");
    assert_eq!(k["crv"], "Ed25519");
    assert_eq!(k["alg"], "EdDSA");
    let (at, _, _) = h.login_alice().await;
    let header: Value = serde_json::from_slice(
        &tessera_server::secret::unb64(at.split('.').next().unwrap_or_default())
            .unwrap_or_default(),
    )
    .unwrap_or(Value::Null);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], k["kid"]);
}

#[tokio::test]
async fn access_token_expiry_is_enforced_with_bounded_leeway() {
    let h = Harness::new().await; // access 300 s, leeway 5 s
    let (at, _, _) = h.login_alice().await;
    h.clock.advance(304);
    assert_eq!(h.get("/api/me", Some(&at)).await.status, StatusCode::OK);
    h.clock.advance(1);
    h.get("/api/me", Some(&at))
        .await
        .assert_problem(401, "unauthorized");
    assert_eq!(h.introspect(&at).await["active"], false);
}

#[tokio::test]
async fn signing_key_persists_and_rotation_keeps_old_tokens_valid() {
    let db = common::TempDb::new("keys");
    let mut cfg = Config::for_tests();
    cfg.store = db.url();
    let h1 = Harness::with_config(cfg.clone()).await;
    let (at, _, _) = h1.login_alice().await;
    let kid1 = h1.get("/.well-known/jwks.json", None).await.json()["keys"][0]["kid"].clone();
    drop(h1);
    let h2 = Harness::with_config(cfg.clone()).await;
    assert_eq!(
        h2.get("/.well-known/jwks.json", None).await.json()["keys"][0]["kid"],
        kid1,
        "key persisted"
    );
    drop(h2);
    cfg.rotate_signing_key = true;
    let h3 = Harness::with_config(cfg).await;
    let keys = h3.get("/.well-known/jwks.json", None).await.json()["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0]["kid"], kid1, "newest key first");
    assert_eq!(
        h3.introspect(&at).await["active"],
        true,
        "old token still verifies"
    );
}

#[tokio::test]
async fn demo_mode_serves_www_and_pkg_with_wasm_mime() {
    let dir = std::env::temp_dir().join(format!(
        "tessera-demo-{}",
        tessera_server::secret::random_token()[..8].replace(['-', '_'], "x")
    ));
    let www = dir.join("www");
    let pkg = dir.join("pkg");
    std::fs::create_dir_all(&www).expect("mkdir");
    std::fs::create_dir_all(&pkg).expect("mkdir");
    std::fs::write(www.join("index.html"), "<h1>demo</h1>").expect("write");
    std::fs::write(pkg.join("tessera_bg.wasm"), b"\0asm\x01\0\0\0").expect("write");
    std::fs::write(pkg.join("tessera.js"), "export {}").expect("write");
    let mut cfg = Config::for_tests();
    cfg.demo = true;
    cfg.www_dir = www;
    cfg.pkg_dir = pkg;
    let h = Harness::with_config(cfg).await;
    let index = h.get("/", None).await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&index.body).contains("demo"));
    let wasm = h.get("/pkg/tessera_bg.wasm", None).await;
    assert_eq!(
        wasm.header("content-type").as_deref(),
        Some("application/wasm")
    );
    assert!(h
        .get("/pkg/tessera.js", None)
        .await
        .header("content-type")
        .unwrap_or_default()
        .contains("javascript"));
    assert_eq!(
        h.login("alice", "tessera-demo").await.status,
        StatusCode::OK,
        "API still routed in demo mode"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn dead_refresh_token_cannot_trigger_logout_all() {
    let h = Harness::new().await;
    let (_, old_rt, _) = h.login_alice().await;
    h.post(
        "/auth/logout",
        Value::Null,
        &[("cookie", &format!("__Host-tessera_rt={old_rt}"))],
    )
    .await;
    let (other_at, _, _) = h.login_alice().await;
    h.post(
        "/auth/logout-all",
        Value::Null,
        &[("cookie", &format!("__Host-tessera_rt={old_rt}"))],
    )
    .await
    .assert_problem(401, "unauthorized");
    assert_eq!(
        h.introspect(&other_at).await["active"],
        true,
        "the live session survived"
    );
    // with a valid bearer token alongside, the user is identified by it
    let r = h
        .post(
            "/auth/logout-all",
            Value::Null,
            &[
                ("cookie", &format!("__Host-tessera_rt={old_rt}")),
                ("authorization", &format!("Bearer {other_at}")),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(h.introspect(&other_at).await["active"], false);
}

#[tokio::test]
async fn refresh_response_carries_the_session() {
    let h = Harness::new().await;
    let (_, rt, sid) = h.login_alice().await;
    h.clock.advance(42);
    let j = h.refresh_cookie(&rt).await.json();
    assert_eq!(j["session"]["id"], sid.as_str());
    assert_eq!(j["session"]["user"], "alice");
    assert_eq!(j["session"]["last_seen"], h.state.now());
}

#[tokio::test]
async fn empty_origin_header_never_matches_an_empty_allowlist_entry() {
    let mut cfg = Config::for_tests();
    cfg.allowed_origins = vec![String::new(), " ".into()]; // e.g. TESSERA_ALLOWED_ORIGINS=""
    let h = Harness::with_config(cfg).await;
    let (_, rt, _) = h.login_alice().await;
    let cookie = format!("__Host-tessera_rt={rt}");
    h.post(
        "/auth/refresh",
        Value::Null,
        &[("cookie", &cookie), ("origin", ""), ("x-tessera-csrf", "")],
    )
    .await
    .assert_problem(403, "forbidden_origin");
}

#[tokio::test]
async fn mfa_in_token_mode_returns_the_refresh_token_in_the_body() {
    let h = Harness::new().await;
    let r = h
        .post(
            "/auth/login",
            json!({"username": "bob", "password": "tessera-demo", "mode": "token"}),
            &[],
        )
        .await
        .json();
    let ok = h
        .post(
            "/auth/mfa",
            json!({"mfa_token": r["mfa_token"], "code": bob_code(h.state.now())}),
            &[],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok.set_cookie().is_none());
    assert_eq!(ok.json()["refresh_token"].as_str().map(str::len), Some(86));
    assert_eq!(ok.json()["session"]["mfa"], true);
}

#[tokio::test]
async fn random_tokens_and_credentials_never_cause_a_server_error() {
    let h = Harness::new().await;
    let (at, rt, _) = h.login_alice().await;
    // deterministic xorshift so a failure is reproducible
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..300 {
        // mutate a real token (flip/insert/truncate) or make one up from printable ASCII
        let base = if i % 2 == 0 { at.clone() } else { rt.clone() };
        let mut t: Vec<u8> = base.into_bytes();
        match next() % 4 {
            0 => {
                let p = (next() as usize) % t.len();
                t[p] = b'!' + (next() % 90) as u8;
            }
            1 => t.truncate((next() as usize) % t.len()),
            2 => t.insert((next() as usize) % t.len(), b'.'),
            _ => {
                t = (0..(next() % 120))
                    .map(|_| b'!' + (next() % 90) as u8)
                    .collect()
            }
        }
        let t = String::from_utf8(t)
            .unwrap_or_default()
            .replace([';', ','], "");
        let checks = [
            h.get("/api/me", Some(&t)).await,
            h.post("/auth/introspect", json!({ "token": t }), &[]).await,
            h.post("/auth/refresh", json!({ "refresh_token": t }), &[])
                .await,
            h.post(
                "/auth/vault-key",
                Value::Null,
                &[("cookie", &format!("__Host-tessera_rt={t}"))],
            )
            .await,
            h.post("/auth/mfa", json!({ "mfa_token": t, "code": t }), &[])
                .await,
        ];
        for r in checks {
            assert!(r.status.as_u16() < 500, "token {t:?} -> {}", r.status);
        }
    }
    // and the real session is still fine (none of the mutants was accepted as its token)
    assert_eq!(h.introspect(&at).await["active"], true);
}

#[tokio::test]
async fn sessions_list_pages_with_limit_and_cursor() {
    use tessera_server::secret::RefreshToken;
    use tessera_server::store::SessionRecord;
    let h = Harness::new().await;
    let (at, _, own_sid) = h.login_alice().await;
    let alice = h
        .state
        .store()
        .find_user("alice")
        .await
        .expect("store")
        .expect("alice seeded");
    // 230 more sessions (past both the default page of 50 and the 200 maximum)
    let now = h.state.now();
    let batch: Vec<_> = (0..230)
        .map(|i| {
            let mut s =
                SessionRecord::new(format!("seeded-{i:03}"), &alice, now - 1 - i, 86_400, false);
            s.address = "127.0.0.1".into();
            (s, RefreshToken::generate(h.state.token_key()).to_ref())
        })
        .collect();
    h.state.store().create_sessions(&batch).await.expect("seed");

    // default page size is 50, and there is a next cursor
    let first = h.get("/auth/sessions", Some(&at)).await;
    assert_eq!(first.status, StatusCode::OK);
    let first = first.json();
    assert_eq!(first["sessions"].as_array().map(Vec::len), Some(50));
    assert!(first["next_cursor"].is_string());
    // newest first: the caller's (just created) session leads
    assert_eq!(first["sessions"][0]["id"], own_sid.as_str());

    // the maximum is 200
    let big = h.get("/auth/sessions?limit=200", Some(&at)).await.json();
    assert_eq!(big["sessions"].as_array().map(Vec::len), Some(200));

    // walking pages of 64 yields every session exactly once, then a null cursor
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/auth/sessions?limit=64&cursor={c}"),
            None => "/auth/sessions?limit=64".to_string(),
        };
        let page = h.get(&path, Some(&at)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let page = page.json();
        let items = page["sessions"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 64);
        for s in &items {
            let id = s["id"].as_str().unwrap_or_default().to_string();
            assert!(seen.insert(id), "session listed twice");
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 10, "paging does not terminate");
    }
    assert_eq!(seen.len(), 231);
    assert_eq!(pages, 4);

    // out-of-range or malformed parameters are a 400, never a 500 or a silent first page
    for bad in [
        "/auth/sessions?limit=0",
        "/auth/sessions?limit=201",
        "/auth/sessions?limit=-1",
        "/auth/sessions?limit=abc",
        "/auth/sessions?cursor=garbage",
        "/auth/sessions?cursor=x:y",
    ] {
        h.get(bad, Some(&at))
            .await
            .assert_problem(400, "invalid_request");
    }
    // paging needs authentication like the list itself
    assert_eq!(
        h.get("/auth/sessions?limit=10", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}
