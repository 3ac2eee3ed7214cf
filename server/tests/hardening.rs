//! The HTTP hardening: each attack finding reproduced as an attack through the router (or a real
//! socket), with the fix's claim as the assertion. Concurrency claims use 64 requests in
//! flight at once on a multi-threaded runtime.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use common::{bob_code, bob_mfa_token, json_post, peer, wrong_code, Harness, Resp, UA};
use serde_json::{json, Value};
use tessera_server::Config;

async fn parallel(h: &Arc<Harness>, reqs: Vec<Request<Body>>) -> Vec<Resp> {
    let mut tasks = Vec::new();
    for r in reqs {
        let h = h.clone();
        tasks.push(tokio::spawn(async move { h.call(r).await }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

fn count(rs: &[Resp], status: u16) -> usize {
    rs.iter().filter(|r| r.status.as_u16() == status).count()
}

// ---- 1: throttling that cannot be raced -----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn parallel_wrong_passwords_never_exceed_the_account_limit() {
    let h = Arc::new(Harness::new().await);
    let body = json!({"username": "alice", "password": "wrong"});
    let reqs = (0..64)
        .map(|_| json_post("/auth/login", &body, peer(1), &[]))
        .collect();
    let rs = parallel(&h, reqs).await;
    let evaluated = count(&rs, 401);
    assert!(evaluated <= 10, "{evaluated} passwords verified, limit 10");
    assert_eq!(evaluated + count(&rs, 429), 64);
    assert_eq!(evaluated, 10, "the limit is reached, not undershot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn parallel_wrong_passwords_from_many_networks_are_bounded_by_the_account_backoff() {
    let h = Arc::new(Harness::new().await);
    let body = json!({"username": "alice", "password": "wrong"});
    let reqs = (0..64)
        .map(|i| json_post("/auth/login", &body, peer(i), &[]))
        .collect();
    let rs = parallel(&h, reqs).await;
    let evaluated = count(&rs, 401);
    assert!(evaluated <= 10, "{evaluated} passwords verified, limit 10");
    assert_eq!(evaluated + count(&rs, 429), 64);
}

#[tokio::test]
async fn a_stranger_cannot_lock_the_owner_out() {
    let h = Harness::new().await;
    let bad = json!({"username": "alice", "password": "wrong"});
    for _ in 0..10 {
        h.call(json_post("/auth/login", &bad, peer(7), &[]))
            .await
            .assert_problem(401, "invalid_credentials");
    }
    h.call(json_post("/auth/login", &bad, peer(7), &[]))
        .await
        .assert_problem(429, "rate_limited");
    // the account-wide counter slows down; it does not lock: after the backoff the owner,
    // from their own network, gets in while the stranger's network stays blocked
    h.clock.advance(2);
    let good = json!({"username": "alice", "password": "tessera-demo"});
    let owner = h
        .call(json_post("/auth/login", &good, peer(300), &[]))
        .await;
    assert_eq!(
        owner.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&owner.body)
    );
    h.call(json_post("/auth/login", &good, peer(7), &[]))
        .await
        .assert_problem(429, "rate_limited");
}

#[tokio::test]
async fn ipv6_clients_are_throttled_per_64() {
    let mut cfg = Config::for_tests();
    cfg.address_limit = 3;
    let h = Harness::with_config(cfg).await;
    for i in 0..3u16 {
        let p = SocketAddr::from(([0x2001, 0xdb8, 1, 2, i, 0, 0, 1], 4000));
        let r = h
            .call(json_post(
                "/auth/login",
                &json!({"username": format!("u{i}"), "password": "x"}),
                p,
                &[],
            ))
            .await;
        r.assert_problem(401, "invalid_credentials");
    }
    let same64 = SocketAddr::from(([0x2001, 0xdb8, 1, 2, 0xffff, 9, 9, 9], 4000));
    h.call(json_post(
        "/auth/login",
        &json!({"username": "z", "password": "x"}),
        same64,
        &[],
    ))
    .await
    .assert_problem(429, "rate_limited");
    let other64 = SocketAddr::from(([0x2001, 0xdb8, 1, 3, 0, 0, 0, 1], 4000));
    h.call(json_post(
        "/auth/login",
        &json!({"username": "z", "password": "x"}),
        other64,
        &[],
    ))
    .await
    .assert_problem(401, "invalid_credentials");
}

#[tokio::test]
async fn a_correct_password_never_clears_the_mfa_failure_counter() {
    let h = Harness::new().await;
    let wrong = wrong_code(h.state.now());
    let mut rejected = 0;
    let mut limited = 0;
    // the attack: "password, then wrong codes", over and over
    for _ in 0..6 {
        let t = bob_mfa_token(&h, peer(1)).await;
        for _ in 0..4 {
            let r = h
                .call(json_post(
                    "/auth/mfa",
                    &json!({"mfa_token": t, "code": wrong}),
                    peer(1),
                    &[],
                ))
                .await;
            match r.status.as_u16() {
                401 => rejected += 1,
                429 => limited += 1,
                s => panic!("unexpected {s}"),
            }
        }
    }
    assert_eq!(
        rejected, 10,
        "at most --account-limit codes are ever checked"
    );
    assert_eq!(limited, 14);
}

#[tokio::test]
async fn an_mfa_token_dies_after_five_wrong_codes() {
    let h = Harness::new().await;
    let t = bob_mfa_token(&h, peer(1)).await;
    let wrong = wrong_code(h.state.now());
    for _ in 0..5 {
        h.call(json_post(
            "/auth/mfa",
            &json!({"mfa_token": t, "code": wrong}),
            peer(1),
            &[],
        ))
        .await
        .assert_problem(401, "mfa_invalid");
    }
    let right = bob_code(h.state.now());
    h.call(json_post(
        "/auth/mfa",
        &json!({"mfa_token": t, "code": right}),
        peer(1),
        &[],
    ))
    .await
    .assert_problem(401, "mfa_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn parallel_wrong_codes_on_one_mfa_token_check_at_most_five() {
    let h = Arc::new(Harness::new().await);
    let t = bob_mfa_token(&h, peer(1)).await;
    let wrong = wrong_code(h.state.now());
    let body = json!({"mfa_token": t, "code": wrong});
    let reqs = (0..64)
        .map(|i| json_post("/auth/mfa", &body, peer(i), &[]))
        .collect();
    let rs = parallel(&h, reqs).await;
    let checked = rs
        .iter()
        .filter(|r| r.json()["code"] == "mfa_invalid")
        .count();
    assert!(
        checked <= 5,
        "{checked} codes checked against one mfa_token"
    );
    assert!(rs
        .iter()
        .all(|r| r.status.as_u16() == 401 || r.status.as_u16() == 429));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn throttle_counters_are_shared_by_instances_on_one_redis() {
    let Some(redis) = common::RedisServer::start() else {
        return;
    };
    let mut cfg = Config::for_tests();
    cfg.store = redis.url();
    // instances sharing a Redis share one master key (the store refuses to start without)
    let key = std::env::temp_dir().join(format!("tessera-hardening-{}.key", std::process::id()));
    tessera_server::master_key::MasterKey::load_or_create(&key).expect("master key");
    cfg.master_key_file = Some(key.clone());
    let a = Arc::new(Harness::with_config(cfg.clone()).await);
    let b = Arc::new(Harness::with_config(cfg).await);
    let body = json!({"username": "alice", "password": "wrong"});
    let mut tasks = Vec::new();
    for i in 0..64 {
        let h = if i % 2 == 0 { a.clone() } else { b.clone() };
        let req = json_post("/auth/login", &body, peer(1), &[]);
        tasks.push(tokio::spawn(async move { h.call(req).await }));
    }
    let mut rs = Vec::new();
    for t in tasks {
        rs.push(t.await.expect("task"));
    }
    let evaluated = count(&rs, 401);
    assert!(
        evaluated <= 10,
        "{evaluated} verifications across two instances, limit 10"
    );
    assert_eq!(evaluated + count(&rs, 429), 64);
}

// ---- 3: client address -----------------------------------------------------------------------

async fn address_seen(h: &Harness, from: SocketAddr, xff: Option<&str>) -> String {
    let mut extra = vec![];
    if let Some(x) = xff {
        extra.push(("x-forwarded-for", x));
    }
    let body = json!({"username": "alice", "password": "tessera-demo"});
    let r = h.call(json_post("/auth/login", &body, from, &extra)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let at = r.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let sid = r.json()["session"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let list = h.get("/auth/sessions", Some(&at)).await.json();
    list["sessions"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == sid.as_str()))
        .and_then(|s| s["address"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn forwarded_for_is_read_only_from_trusted_proxies_right_to_left() {
    let mut cfg = Config::for_tests();
    cfg.trusted_proxies = vec!["10.0.0.0/8".into(), "2001:db8:ffff::/48".into()];
    let h = Harness::with_config(cfg).await;
    let proxy = SocketAddr::from(([10, 0, 0, 5], 1234));
    let stranger = SocketAddr::from(([203, 0, 113, 50], 1234));
    // the client-written left-most hop is ignored: first untrusted hop from the right
    assert_eq!(
        address_seen(&h, proxy, Some("1.2.3.4, 198.51.100.9, 10.0.0.7")).await,
        "198.51.100.9"
    );
    // a peer that is not a trusted proxy is the client, whatever it claims
    assert_eq!(
        address_seen(&h, stranger, Some("1.2.3.4")).await,
        "203.0.113.50"
    );
    // IPv4-mapped IPv6 peers are canonicalised (and still recognised as trusted proxies)
    let mapped = SocketAddr::from(([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0005], 1234));
    assert_eq!(
        address_seen(&h, mapped, Some("198.51.100.10")).await,
        "198.51.100.10"
    );
    let mapped_client = SocketAddr::from(([0, 0, 0, 0, 0, 0xffff, 0xcb00, 0x7101], 1234));
    assert_eq!(address_seen(&h, mapped_client, None).await, "203.0.113.1");
    // every hop trusted: the left-most one is the client
    assert_eq!(
        address_seen(&h, proxy, Some("10.1.1.1, 10.2.2.2")).await,
        "10.1.1.1"
    );
    // garbage in the header: fall back to the proxy itself
    assert_eq!(address_seen(&h, proxy, Some("not-an-ip")).await, "10.0.0.5");
}

#[test]
fn the_old_trust_proxy_flag_is_an_error_naming_the_new_one() {
    use clap::Parser as _;
    let cfg = Config::try_parse_from(["tessera-server", "--trust-proxy"]).expect("parses");
    let e = cfg.validate().expect_err("refused");
    assert!(e.contains("--trusted-proxies"), "{e}");
    let mut bad = Config::for_tests();
    bad.trusted_proxies = vec!["10.0.0.0/33".into()];
    assert!(bad.validate().is_err());
}

// ---- 4: logout -------------------------------------------------------------------------------

fn raw_post(path: &str, content_type: &str, body: &str, extra: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::post(path)
        .header("content-type", content_type)
        .header("user-agent", UA);
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    let mut req = b.body(Body::from(body.to_string())).expect("request");
    req.extensions_mut().insert(ConnectInfo(peer(1)));
    req
}

#[tokio::test]
async fn cross_site_form_post_to_logout_is_refused_without_clear_site_data() {
    let h = Harness::new().await;
    let (at, rt, _) = h.login_alice().await;
    let cookie = format!("__Host-tessera_rt={rt}");
    for path in ["/auth/logout", "/auth/logout-all"] {
        // a foreign Origin
        let r = h
            .call(raw_post(
                path,
                "application/x-www-form-urlencoded",
                "",
                &[("cookie", &cookie), ("origin", "https://evil.example")],
            ))
            .await;
        r.assert_problem(403, "forbidden_origin");
        assert!(r.header("clear-site-data").is_none());
        // no Origin at all, form content type, even without any credential
        let r = h
            .call(raw_post(
                path,
                "application/x-www-form-urlencoded",
                "a=b",
                &[],
            ))
            .await;
        r.assert_problem(403, "forbidden_origin");
        assert!(r.header("clear-site-data").is_none());
        let r = h
            .call(raw_post(
                path,
                "text/plain",
                "",
                &[("authorization", &format!("Bearer {at}"))],
            ))
            .await;
        r.assert_problem(403, "forbidden_origin");
    }
    assert_eq!(
        h.introspect(&at).await["active"],
        true,
        "the session survived"
    );
}

#[tokio::test]
async fn every_state_changing_route_refuses_a_foreign_origin_whatever_the_credential() {
    let h = Harness::new().await;
    let (at, rt, sid) = h.login_alice().await;
    let cookie = format!("__Host-tessera_rt={rt}");
    let bearer = format!("Bearer {at}");
    let routes = [
        ("POST", "/auth/login".to_string()),
        ("POST", "/auth/mfa".to_string()),
        ("POST", "/auth/refresh".to_string()),
        ("POST", "/auth/logout".to_string()),
        ("POST", "/auth/logout-all".to_string()),
        ("POST", "/auth/vault-key".to_string()),
        ("DELETE", format!("/auth/sessions/{sid}")),
    ];
    for (method, path) in &routes {
        for cred in [
            ("cookie", cookie.as_str()),
            ("authorization", bearer.as_str()),
            ("x-none", "1"),
        ] {
            let req = Request::builder()
                .method(*method)
                .uri(path.as_str())
                .header("content-type", "application/json")
                .header("origin", "https://evil.example")
                .header("x-tessera-csrf", "1")
                .header(cred.0, cred.1)
                .body(Body::from("{}"))
                .expect("request");
            let r = h.call(req).await;
            r.assert_problem(403, "forbidden_origin");
            assert!(r.header("clear-site-data").is_none());
        }
    }
    assert_eq!(
        h.introspect(&at).await["active"],
        true,
        "nothing was revoked"
    );
}

#[tokio::test]
async fn logout_sends_clear_site_data_only_after_revoking_a_session() {
    let h = Harness::new().await;
    let nothing = h.post("/auth/logout", Value::Null, &[]).await;
    assert_eq!(nothing.status, StatusCode::NO_CONTENT);
    assert!(
        nothing.header("clear-site-data").is_none(),
        "nothing was identified"
    );
    let (_, rt, _) = h.login_alice().await;
    let out = h
        .post(
            "/auth/logout",
            Value::Null,
            &[("cookie", &format!("__Host-tessera_rt={rt}"))],
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        out.header("clear-site-data").as_deref(),
        Some("\"storage\""),
        "default"
    );
}

#[tokio::test]
async fn clear_site_data_value_is_configurable() {
    let mut cfg = Config::for_tests();
    cfg.clear_site_data = "cookies, storage".into();
    let h = Harness::with_config(cfg).await;
    let (_, rt, _) = h.login_alice().await;
    let out = h
        .post(
            "/auth/logout",
            Value::Null,
            &[("cookie", &format!("__Host-tessera_rt={rt}"))],
        )
        .await;
    assert_eq!(
        out.header("clear-site-data").as_deref(),
        Some("\"cookies\", \"storage\"")
    );
    let mut bad = Config::for_tests();
    bad.clear_site_data = "everything".into();
    assert!(bad.validate().is_err());
}

#[tokio::test]
async fn a_superseded_refresh_token_cannot_logout_all_and_only_ends_its_own_family() {
    let h = Harness::new().await;
    let (_, rt0, _) = h.login_alice().await;
    let (other_at, _, _) = h.login_alice().await;
    let rt1 = h
        .refresh_cookie(&rt0)
        .await
        .cookie_token()
        .expect("rotated");
    let _rt2 = h
        .refresh_cookie(&rt1)
        .await
        .cookie_token()
        .expect("rotated again");
    h.clock.advance(60); // past the grace window: rt0 and rt1 are superseded
    let r = h
        .post(
            "/auth/logout-all",
            Value::Null,
            &[("cookie", &format!("__Host-tessera_rt={rt0}"))],
        )
        .await;
    r.assert_problem(401, "refresh_reused");
    assert!(r.header("clear-site-data").is_none());
    assert_eq!(
        h.introspect(&other_at).await["active"],
        true,
        "other sessions untouched"
    );
    // its own family is ended (reuse detection)
    h.refresh_cookie(&_rt2)
        .await
        .assert_problem(401, "session_revoked");
}

// ---- 8: introspection --------------------------------------------------------------------------

#[tokio::test]
async fn introspection_requires_the_resource_server_secret() {
    let h = Harness::new().await;
    let (at, _, _) = h.login_alice().await;
    let secret = h
        .state
        .config()
        .introspection_secret
        .clone()
        .expect("tests configure one");
    let body = json!({"token": at});
    h.call(json_post("/auth/introspect", &body, peer(1), &[]))
        .await
        .assert_problem(401, "unauthorized");
    h.call(json_post(
        "/auth/introspect",
        &body,
        peer(1),
        &[("authorization", "Bearer wrong-secret")],
    ))
    .await
    .assert_problem(401, "unauthorized");
    // an access token is not the resource server's credential
    h.call(json_post(
        "/auth/introspect",
        &body,
        peer(1),
        &[("authorization", &format!("Bearer {at}"))],
    ))
    .await
    .assert_problem(401, "unauthorized");
    let ok = h
        .call(json_post(
            "/auth/introspect",
            &body,
            peer(1),
            &[("authorization", &format!("Bearer {secret}"))],
        ))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.json()["active"], true);
}

#[tokio::test]
async fn introspection_without_a_configured_secret_answers_401_to_everyone() {
    let mut cfg = Config::for_tests();
    cfg.introspection_secret = None;
    let h = Harness::with_config(cfg).await;
    let (at, _, _) = h.login_alice().await;
    for auth in ["", "Bearer ", "Bearer anything"] {
        let extra: Vec<(&str, &str)> = if auth.is_empty() {
            vec![]
        } else {
            vec![("authorization", auth)]
        };
        h.call(json_post(
            "/auth/introspect",
            &json!({"token": at}),
            peer(1),
            &extra,
        ))
        .await
        .assert_problem(401, "unauthorized");
    }
    let mut short = Config::for_tests();
    short.introspection_secret = Some("short".into());
    assert!(
        short.validate().is_err(),
        "a guessable secret is refused at start"
    );
}

// ---- 9: origins ------------------------------------------------------------------------------

#[tokio::test]
async fn host_header_does_not_make_a_foreign_origin_same_origin() {
    let h = Harness::new().await;
    let body = json!({"username": "alice", "password": "tessera-demo"});
    for (origin, host) in [
        ("http://evil.example", "evil.example"),
        ("https://evil.example", "evil.example"),
    ] {
        h.call(json_post(
            "/auth/login",
            &body,
            peer(1),
            &[("origin", origin), ("host", host)],
        ))
        .await
        .assert_problem(403, "forbidden_origin");
    }
    let mut cfg = Config::for_tests();
    cfg.allowed_origins = vec!["https://app.example".into()];
    let h = Harness::with_config(cfg).await;
    let ok = h
        .call(json_post(
            "/auth/login",
            &body,
            peer(1),
            &[("origin", "https://app.example")],
        ))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[test]
fn non_loopback_http_origins_are_refused_at_start() {
    for (origin, ok) in [
        ("http://app.example", false),
        ("http://10.0.0.1:8080", false),
        ("https://app.example", true),
        ("http://127.0.0.1:8080", true),
        ("http://localhost:3000", true),
        ("http://[::1]:8080", true),
    ] {
        let mut cfg = Config::for_tests();
        cfg.allowed_origins = vec![origin.into()];
        assert_eq!(cfg.validate().is_ok(), ok, "{origin}");
    }
}

#[test]
fn demo_mode_allows_the_loopback_origin_it_listens_on() {
    let mut cfg = Config::for_tests();
    cfg.demo = true;
    cfg.add_listen_origin("127.0.0.1:41234".parse().expect("addr"));
    assert!(cfg.origins().any(|o| o == "http://127.0.0.1:41234"));
    assert!(cfg.origins().any(|o| o == "http://localhost:41234"));
    assert!(cfg.validate().is_ok());
}

// ---- 10: lifecycle ---------------------------------------------------------------------------

#[tokio::test]
async fn login_with_a_live_session_cookie_revokes_that_session() {
    let h = Harness::new().await;
    let (at, rt, _) = h.login_alice().await;
    let body = json!({"username": "alice", "password": "tessera-demo"});
    let r = h
        .call(json_post(
            "/auth/login",
            &body,
            peer(1),
            &[("cookie", &format!("__Host-tessera_rt={rt}"))],
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        h.introspect(&at).await["active"],
        false,
        "the old session ended"
    );
    h.refresh_cookie(&rt)
        .await
        .assert_problem(401, "session_revoked");
    let new_at = r.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(h.introspect(&new_at).await["active"], true);
}

#[tokio::test]
async fn a_password_change_revokes_the_users_other_sessions() {
    let h = Harness::new().await;
    let (at1, _, _) = h.login_alice().await;
    let (at2, _, sid2) = h.login_alice().await;
    let (bob_at, _) = {
        let t = bob_mfa_token(&h, peer(1)).await;
        let r = h
            .call(json_post(
                "/auth/mfa",
                &json!({"mfa_token": t, "code": bob_code(h.state.now())}),
                peer(1),
                &[],
            ))
            .await;
        (
            r.json()["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            (),
        )
    };
    let n = tessera_server::service::change_password(
        &h.state,
        "alice",
        "a-new-long-password",
        Some(&sid2),
    )
    .await
    .expect("changed");
    assert_eq!(n, 1);
    assert_eq!(h.introspect(&at1).await["active"], false);
    assert_eq!(
        h.introspect(&at2).await["active"],
        true,
        "the session that changed it stays"
    );
    assert_eq!(
        h.introspect(&bob_at).await["active"],
        true,
        "other users untouched"
    );
    h.login("alice", "tessera-demo")
        .await
        .assert_problem(401, "invalid_credentials");
    assert_eq!(
        h.login("alice", "a-new-long-password").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn old_argon2_parameters_are_upgraded_on_the_next_login() {
    let old = Harness::new().await; // m = 64 KiB, t = 1
    let store = old.state.store().clone();
    let before = store
        .find_user("alice")
        .await
        .expect("store")
        .expect("alice")
        .password_hash;
    assert!(before.contains("m=64,t=1"), "{before}");
    let mut cfg = Config::for_tests();
    cfg.argon2_memory_kib = 128;
    cfg.argon2_iterations = 2;
    let h = Harness::with_store_unseeded(cfg, store.clone()).await;
    h.login("alice", "wrong")
        .await
        .assert_problem(401, "invalid_credentials");
    let same = store
        .find_user("alice")
        .await
        .expect("store")
        .expect("alice")
        .password_hash;
    assert_eq!(same, before, "a failed login changes nothing");
    assert_eq!(
        h.login("alice", "tessera-demo").await.status,
        StatusCode::OK
    );
    let after = store
        .find_user("alice")
        .await
        .expect("store")
        .expect("alice")
        .password_hash;
    assert!(after.contains("m=128,t=2"), "{after}");
    assert_eq!(
        h.login("alice", "tessera-demo").await.status,
        StatusCode::OK
    );
}

// ---- 12: JWT refusals (RFC 8725) -----------------------------------------------------------

mod jwt_refusals {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use ed25519_dalek::{Signer as _, SigningKey};
    use serde_json::{json, Value};
    use tessera_server::jwt::{KeySet, StoredKey, TokenError};

    const NOW: i64 = 1_800_000_000;

    fn setup() -> (KeySet, SigningKey, String) {
        let k = StoredKey::generate(1);
        let seed: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&k.seed)
            .expect("seed")
            .try_into()
            .expect("32");
        let kid = k.kid.clone();
        (
            KeySet::new(vec![k], "iss", "aud", 5).expect("keys"),
            SigningKey::from_bytes(&seed),
            kid,
        )
    }

    fn claims() -> Value {
        json!({"iss": "iss", "aud": "aud", "sub": "u", "sid": "s", "iat": NOW, "exp": NOW + 60, "jti": "j", "username": "alice"})
    }

    /// Signs raw header and claims JSON text (so malformed JSON can be signed too).
    fn sign_raw(key: &SigningKey, header: &str, claims: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let sig = key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    fn header(kid: &str) -> Value {
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid})
    }

    #[test]
    fn a_well_formed_token_signed_here_verifies() {
        let (ks, key, kid) = setup();
        let t = sign_raw(&key, &header(&kid).to_string(), &claims().to_string());
        assert!(ks.verify(&t, NOW).is_ok(), "the helper itself is sound");
    }

    #[test]
    fn missing_kid_is_refused() {
        let (ks, key, _) = setup();
        let t = sign_raw(
            &key,
            r#"{"alg":"EdDSA","typ":"at+jwt"}"#,
            &claims().to_string(),
        );
        assert!(ks.verify(&t, NOW).is_err());
    }

    #[test]
    fn crit_jwk_x5u_x5c_headers_are_refused() {
        let (ks, key, kid) = setup();
        for (name, v) in [
            ("crit", json!(["exp"])),
            ("jwk", json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"})),
            ("x5u", json!("https://evil.example/cert")),
            ("x5c", json!(["MIIB"])),
            ("jku", json!("https://evil.example/jwks")),
        ] {
            let mut h = header(&kid);
            h[name] = v;
            let t = sign_raw(&key, &h.to_string(), &claims().to_string());
            assert_eq!(ks.verify(&t, NOW), Err(TokenError::Invalid), "{name}");
        }
    }

    #[test]
    fn duplicate_json_members_are_refused() {
        let (ks, key, kid) = setup();
        let dup_header = format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","kid":"{kid}"}}"#);
        assert!(ks
            .verify(&sign_raw(&key, &dup_header, &claims().to_string()), NOW)
            .is_err());
        let c = claims().to_string();
        let dup_claims = c.replacen('{', r#"{"sub":"admin","#, 1);
        assert!(ks
            .verify(&sign_raw(&key, &header(&kid).to_string(), &dup_claims), NOW)
            .is_err());
        let dup_unknown = c.replacen('{', r#"{"x":1,"x":2,"#, 1);
        assert!(ks
            .verify(
                &sign_raw(&key, &header(&kid).to_string(), &dup_unknown),
                NOW
            )
            .is_err());
    }

    #[test]
    fn exp_missing_or_not_a_number_is_refused() {
        let (ks, key, kid) = setup();
        for exp in [
            Value::Null,
            json!("1800000060"),
            json!(1.8e9 + 60.5),
            json!(true),
        ] {
            let mut c = claims();
            if exp.is_null() {
                c.as_object_mut().map(|o| o.remove("exp"));
            } else {
                c["exp"] = exp.clone();
            }
            let t = sign_raw(&key, &header(&kid).to_string(), &c.to_string());
            assert!(ks.verify(&t, NOW).is_err(), "exp {exp}");
        }
    }

    #[test]
    fn nbf_in_the_future_is_refused() {
        let (ks, key, kid) = setup();
        let mut c = claims();
        c["exp"] = json!(NOW + 600);
        c["nbf"] = json!(NOW + 120);
        let t = sign_raw(&key, &header(&kid).to_string(), &c.to_string());
        assert_eq!(ks.verify(&t, NOW), Err(TokenError::Expired));
        assert!(
            ks.verify(&t, NOW + 120).is_ok(),
            "valid once nbf is reached"
        );
        c["nbf"] = json!("soon");
        let t = sign_raw(&key, &header(&kid).to_string(), &c.to_string());
        assert!(ks.verify(&t, NOW + 200).is_err(), "nbf must be a number");
    }
}

// ---- 2: bounded work -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn saturated_password_hashing_answers_503_with_retry_after() {
    let mut cfg = Config::for_tests();
    cfg.argon2_memory_kib = 19456; // the production cost, so each hash takes a while
    cfg.argon2_iterations = 2;
    cfg.argon2_concurrency = 1;
    cfg.argon2_queue = 1;
    let h = Arc::new(Harness::with_config(cfg).await);
    // 32 accounts from 32 networks: the throttle admits every one; the hashing pool must not
    let reqs = (0..32)
        .map(|i| {
            json_post(
                "/auth/login",
                &json!({"username": format!("u{i}"), "password": "x"}),
                peer(i),
                &[],
            )
        })
        .collect();
    let rs = parallel(&h, reqs).await;
    let busy: Vec<&Resp> = rs.iter().filter(|r| r.status.as_u16() == 503).collect();
    assert!(!busy.is_empty(), "32 hashes admitted into a pool of 1 + 1");
    for r in &busy {
        r.assert_problem(503, "overloaded");
        assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    }
    assert_eq!(busy.len() + count(&rs, 401), 32);
    // a refused (unevaluated) attempt was refunded: it did not count against the network
    let again = h
        .call(json_post(
            "/auth/login",
            &json!({"username": "alice", "password": "tessera-demo"}),
            peer(0),
            &[],
        ))
        .await;
    assert_eq!(again.status, StatusCode::OK);
}

mod real_socket {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    use super::common::{Harness, LiveServer};
    use tessera_server::Config;

    #[tokio::test]
    async fn a_client_trickling_a_header_byte_every_2s_is_closed_within_15s() {
        // default --header-timeout (10 s)
        let (_h, _srv, mut s) = connected(Config::for_tests()).await;
        let req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let t = trickle(&mut s, req, Duration::from_secs(2))
            .await
            .expect("the server waited for the whole trickled header");
        assert!(t < Duration::from_secs(15), "closed only after {t:?}");
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait_for_a_free_slot() {
        let mut cfg = Config::for_tests();
        cfg.max_connections = 1;
        let h = Harness::with_config(cfg).await;
        let srv = LiveServer::start(h.state.clone()).await;
        let addr = srv.base.trim_start_matches("http://").to_string();
        let get = b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        let mut a = TcpStream::connect(&addr).await.expect("connect a");
        a.write_all(get).await.expect("write a");
        let mut buf = [0u8; 4096];
        let n = a.read(&mut buf).await.expect("read a");
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "first connection served"
        );
        // a keeps its (keep-alive) slot; b is not served meanwhile
        let b = tokio::spawn(async move {
            let mut b = TcpStream::connect(&addr).await.expect("connect b");
            b.write_all(get).await.expect("write b");
            let mut buf = [0u8; 4096];
            let n = b.read(&mut buf).await.expect("read b");
            buf[..n].starts_with(b"HTTP/1.1 200")
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !b.is_finished(),
            "a second connection was served beyond --max-connections 1"
        );
        drop(a);
        assert!(b.await.expect("b"), "served once the slot is free");
    }

    const JWKS_GET: &[u8] = b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    /// The HTTP/2 connection preface and an empty SETTINGS frame (RFC 9113 §3.4, §6.5).
    const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

    /// A live server with `cfg` and one connection to it (the server lives with the first two).
    async fn connected(cfg: Config) -> (Harness, LiveServer, TcpStream) {
        let h = Harness::with_config(cfg).await;
        let srv = LiveServer::start(h.state.clone()).await;
        let s = TcpStream::connect(srv.base.trim_start_matches("http://"))
            .await
            .expect("connect");
        (h, srv, s)
    }

    /// [`connected`] with these two timeouts, after one answered request on the connection.
    async fn kept_alive(header: u64, keep_alive: u64) -> (Harness, LiveServer, TcpStream) {
        let mut cfg = Config::for_tests();
        cfg.header_timeout = header;
        cfg.keep_alive_timeout = keep_alive;
        let (h, srv, mut s) = connected(cfg).await;
        s.write_all(JWKS_GET).await.expect("write");
        let first = read_response(&mut s).await.expect("first response");
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        (h, srv, s)
    }

    /// Reads one whole HTTP/1.1 response (head and `Content-Length` body) from `s`; `None`
    /// when the connection ends first.
    async fn read_response(s: &mut TcpStream) -> Option<String> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    return Some(String::from_utf8_lossy(&got).into_owned());
                }
            }
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// How long until the server ends the connection (EOF, reset or an error answer), at
    /// most `limit`.
    async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        let mut buf = [0u8; 512];
        match tokio::time::timeout(limit, s.read(&mut buf)).await {
            Err(_) => None,
            Ok(_) => Some(start.elapsed()),
        }
    }

    /// Writes `bytes` one per `every`; how long until the server ended the connection (EOF,
    /// reset or an error answer), or `None` when it took them all.
    async fn trickle(s: &mut TcpStream, bytes: &[u8], every: Duration) -> Option<Duration> {
        let start = Instant::now();
        for b in bytes {
            if s.write_all(&[*b]).await.is_err() {
                return Some(start.elapsed());
            }
            if closed_within(s, every).await.is_some() {
                return Some(start.elapsed());
            }
        }
        None
    }

    /// A reverse proxy keeps idle upstream connections open (nginx and load balancers: 60 s)
    /// and writes its next request onto one. If the server closed it at the header timeout,
    /// that request races the close and fails (a 502 for the user). The idle time between
    /// requests is bounded by `--keep-alive-timeout`, not by `--header-timeout`.
    #[tokio::test]
    async fn a_keep_alive_connection_idle_past_the_header_timeout_serves_the_next_request() {
        let (_h, _srv, mut s) = kept_alive(1, 30).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        s.write_all(JWKS_GET).await.expect("write after idling");
        let second = read_response(&mut s).await;
        assert!(
            second
                .as_deref()
                .is_some_and(|r| r.starts_with("HTTP/1.1 200")),
            "the idle connection was closed at the header timeout: {second:?}"
        );
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed_at_the_keep_alive_timeout() {
        let (_h, _srv, mut s) = kept_alive(30, 1).await;
        let t = closed_within(&mut s, Duration::from_secs(15)).await;
        assert!(
            t.is_some_and(|t| t < Duration::from_secs(15)),
            "an idle connection outlived --keep-alive-timeout 1 (and stayed 15 s)"
        );
    }

    /// After a first request, a second header trickled onto the kept-alive connection gets
    /// the header timeout, not the (longer) keep-alive timeout; so does a connection that
    /// never says anything.
    #[tokio::test]
    async fn a_trickled_second_header_and_a_silent_connection_get_the_header_timeout() {
        let (_h, srv, mut s) = kept_alive(2, 60).await;
        let mut silent = TcpStream::connect(srv.base.trim_start_matches("http://"))
            .await
            .expect("connect");
        let t = trickle(&mut s, JWKS_GET, Duration::from_millis(500))
            .await
            .expect("the server waited for the whole trickled second header");
        assert!(t < Duration::from_secs(20), "closed only after {t:?}");
        let t = closed_within(&mut silent, Duration::from_secs(20)).await;
        assert!(
            t.is_some(),
            "a silent new connection got the keep-alive timeout"
        );
    }

    /// HTTP/2 (prior knowledge) has no request heads in the HTTP/1 sense: its connection is
    /// not cut at the header timeout while it sits between requests.
    #[tokio::test]
    async fn an_http2_connection_is_not_cut_at_the_header_timeout() {
        let mut cfg = Config::for_tests();
        cfg.header_timeout = 1;
        let (_h, _srv, mut s) = connected(cfg).await;
        s.write_all(H2_PREFACE).await.expect("preface");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        // HEADERS, stream 1, END_STREAM | END_HEADERS: GET http /.well-known/jwks.json
        let path = b"/.well-known/jwks.json";
        let mut block = vec![0x82, 0x86, 0x44, path.len() as u8];
        block.extend_from_slice(path);
        block.extend_from_slice(&[0x41, 9]);
        block.extend_from_slice(b"127.0.0.1");
        let mut frame = vec![0, 0, block.len() as u8, 0x01, 0x05, 0, 0, 0, 1];
        frame.extend_from_slice(&block);
        s.write_all(&frame)
            .await
            .expect("the connection was closed while idle");
        // frames until a HEADERS frame on stream 1
        let mut got = Vec::new();
        let answered = tokio::time::timeout(Duration::from_secs(10), async {
            let mut buf = [0u8; 4096];
            loop {
                let mut at = 0;
                while got.len() >= at + 9 {
                    let len = (usize::from(got[at]) << 16)
                        | (usize::from(got[at + 1]) << 8)
                        | usize::from(got[at + 2]);
                    if got[at + 3] == 0x01 && got[at + 5..at + 9] == [0, 0, 0, 1] {
                        return true;
                    }
                    at += 9 + len;
                }
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        assert_eq!(answered, Ok(true), "no answer on the HTTP/2 connection");
    }

    /// Only the whole HTTP/2 preface makes a connection HTTP/2: a client trickling it (or
    /// an HTTP/1 request whose method happens to be `PRI`) gets the header timeout.
    #[tokio::test]
    async fn a_trickled_http2_preface_gets_the_header_timeout() {
        let mut cfg = Config::for_tests();
        cfg.header_timeout = 2;
        let (_h, _srv, mut s) = connected(cfg).await;
        let t = trickle(&mut s, H2_PREFACE, Duration::from_millis(500))
            .await
            .expect("the server waited for the whole trickled preface");
        assert!(t < Duration::from_secs(10), "closed only after {t:?}");
    }

    /// An HTTP/2 client answers the server's pings by itself, so pings alone never end an
    /// idle connection: without a keep-alive deadline it would hold its slot forever.
    #[tokio::test]
    async fn an_idle_http2_connection_is_closed_at_the_keep_alive_timeout() {
        let mut cfg = Config::for_tests();
        cfg.keep_alive_timeout = 1;
        let (_h, _srv, mut s) = connected(cfg).await;
        s.write_all(H2_PREFACE).await.expect("preface");
        // read (and drop) frames until the server ends the connection
        let closed = tokio::time::timeout(Duration::from_secs(15), async {
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "an idle HTTP/2 connection outlived --keep-alive-timeout 1 (and stayed 15 s)"
        );
    }
}

/// The Lua script and the in-process counters follow one rule: the same script of
/// reservations and refunds gives the same answers on both.
#[tokio::test]
async fn redis_and_memory_throttles_answer_alike() {
    use tessera_server::throttle::{
        memory::MemoryThrottle, redis::RedisThrottle, Kind, Rule, ThrottleBackend,
    };
    let Some(redis) = common::RedisServer::start() else {
        return;
    };
    let rule = |key: &str, limit, kind| Rule {
        key: key.into(),
        limit,
        window: 60,
        kind,
    };
    let hard = rule("h", 3, Kind::Hard);
    let back = rule("b", 2, Kind::Backoff);
    let both = [hard.clone(), back.clone()];
    let backends: Vec<Box<dyn ThrottleBackend>> = vec![
        Box::new(MemoryThrottle::default()),
        Box::new(
            RedisThrottle::connect(&redis.url(), "t:")
                .await
                .expect("redis"),
        ),
    ];
    let mut answers = Vec::new();
    for b in &backends {
        let mut a = Vec::new();
        let t0 = common::wall_now(); // Redis expires keys on its own clock
        for (dt, rules, refund) in [
            (0, &both[..], false),
            (0, &both[..], false),
            (0, &both[..], false), // backoff: next at t0 + 1
            (1, &both[..], false),
            (1, &both[..], true), // refund of the last reservation
            (1, std::slice::from_ref(&hard), false),
            (1, std::slice::from_ref(&hard), false), // hard limit 3 reached
            (30, std::slice::from_ref(&back), false),
            (61, &both[..], false), // a new window for both
        ] {
            if refund {
                b.refund(rules, t0 + dt).await.expect("refund");
                a.push(None);
            } else {
                a.push(b.reserve(rules, t0 + dt).await.expect("reserve"));
            }
        }
        answers.push(a);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(
        answers[0],
        [None, None, Some(1), None, None, None, Some(59), None, None]
    );
}

// ---- the grace predecessor is bound to the client that rotated -------------

/// A cookie-bearing POST with no body, from `peer` with user agent `ua`.
fn cookie_post(path: &str, token: &str, from: SocketAddr, ua: &str) -> Request<Body> {
    let mut req = Request::post(path)
        .header("user-agent", ua)
        .header("x-tessera-csrf", "1")
        .header("cookie", format!("__Host-tessera_rt={token}"))
        .body(Body::empty())
        .expect("request");
    req.extensions_mut().insert(ConnectInfo(from));
    req
}

#[tokio::test]
async fn a_grace_predecessor_speaks_for_the_session_only_from_the_client_that_rotated() {
    let h = Harness::new().await;
    let home = peer(1);
    // another network (the binding compares IPv4 /24, IPv6 /64)
    let elsewhere = SocketAddr::from(([203, 0, 113, 7], 40000));
    let login = h
        .call(json_post(
            "/auth/login",
            &json!({"username": "alice", "password": "tessera-demo"}),
            home,
            &[],
        ))
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let t0 = login.cookie_token().expect("cookie");
    // a second session of alice elsewhere, which a stolen predecessor must not end
    let other = h
        .call(json_post(
            "/auth/login",
            &json!({"username": "alice", "password": "tessera-demo"}),
            peer(3),
            &[],
        ))
        .await
        .cookie_token()
        .expect("cookie");
    let r = h.call(cookie_post("/auth/refresh", &t0, home, UA)).await;
    assert_eq!(r.status, StatusCode::OK);
    let t1 = r.cookie_token().expect("rotated");
    // t0 is now the grace predecessor (within --refresh-grace)

    // the vault key: not for the predecessor from another network or another user agent
    h.call(cookie_post("/auth/vault-key", &t0, elsewhere, UA))
        .await
        .assert_problem(401, "refresh_invalid");
    h.call(cookie_post("/auth/vault-key", &t0, home, "curl/8.0"))
        .await
        .assert_problem(401, "refresh_invalid");
    // the rotating client whose answer was lost still gets it, and it is the session's key
    let mine = h.call(cookie_post("/auth/vault-key", &t0, home, UA)).await;
    assert_eq!(mine.status, StatusCode::OK);
    let current = h.call(cookie_post("/auth/vault-key", &t1, home, UA)).await;
    assert_eq!(mine.json()["key"], current.json()["key"]);

    // logout-all with the predecessor from elsewhere is a replay: it ends that family
    // only (refresh_reused), never every session of the user
    h.call(cookie_post("/auth/logout-all", &t0, elsewhere, UA))
        .await
        .assert_problem(401, "refresh_reused");
    h.refresh_cookie(&t1)
        .await
        .assert_problem(401, "session_revoked");
    let r = h
        .call(cookie_post("/auth/refresh", &other, peer(3), UA))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "alice's other session survives: {}",
        String::from_utf8_lossy(&r.body)
    );
}

#[tokio::test]
async fn logout_all_with_the_grace_predecessor_from_the_rotating_client_still_works() {
    let h = Harness::new().await;
    let home = peer(1);
    let body = json!({"username": "alice", "password": "tessera-demo"});
    let t0 = h
        .call(json_post("/auth/login", &body, home, &[]))
        .await
        .cookie_token()
        .expect("cookie");
    let other = h
        .call(json_post("/auth/login", &body, peer(3), &[]))
        .await
        .cookie_token()
        .expect("cookie");
    assert_eq!(
        h.call(cookie_post("/auth/refresh", &t0, home, UA))
            .await
            .status,
        StatusCode::OK
    );
    // the refresh answer was lost: the client still holds t0 and signs out everywhere
    let r = h.call(cookie_post("/auth/logout-all", &t0, home, UA)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    h.call(cookie_post("/auth/refresh", &other, peer(3), UA))
        .await
        .assert_problem(401, "session_revoked");
}
