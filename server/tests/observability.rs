//! Probes, metrics, request ids, JSON logs and graceful shutdown.

mod common;

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::Harness;
use serde_json::json;
use tessera_server::Config;

#[tokio::test]
async fn healthz_and_readyz_answer_short_json() {
    let h = Harness::new().await;
    let r = h.get("/healthz", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"status": "ok"}));
    let r = h.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"status": "ready", "store": "ok", "keys": "ok"})
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
}

#[tokio::test]
async fn metrics_count_routes_logins_refresh_outcomes_and_rate_limits() {
    let cfg = Config {
        account_limit: 2,
        ..Config::for_tests()
    };
    let h = Harness::with_config(cfg).await;
    let (_, t0, _) = h.login_alice().await;
    let r = h.refresh_cookie(&t0).await;
    assert_eq!(r.status, StatusCode::OK);
    let t1 = r.cookie_token().expect("rotated");
    // t0 is now the predecessor (grace), then its replay after the window ends the family
    assert_eq!(h.refresh_cookie(&t0).await.status, StatusCode::OK);
    let t2 = h.refresh_cookie(&t1).await.cookie_token().expect("rotated");
    assert!(!t2.is_empty());
    h.clock.advance(11); // past t0's grace window
    h.refresh_cookie(&t0)
        .await
        .assert_problem(401, "refresh_reused");
    let bob = h.login("bob", "tessera-demo").await;
    assert_eq!(bob.json()["mfa_required"], true);
    let mut limited = 0;
    for _ in 0..4 {
        let r = h.login("alice", "wrong-password").await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited > 0, "the account limit of 2 refused some attempts");

    let m = h.get("/metrics", None).await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/openmetrics-text")));
    let text = String::from_utf8_lossy(&m.body).to_string();
    let has = |needle: &str| assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    has(r#"tessera_login_total{step="password",outcome="session"} 1"#);
    has(r#"tessera_login_total{step="password",outcome="mfa_required"} 1"#);
    has(r#"tessera_login_total{step="password",outcome="invalid_credentials"}"#);
    has(r#"tessera_login_total{step="password",outcome="rate_limited"}"#);
    has(r#"tessera_refresh_total{outcome="rotated"} 2"#);
    has(r#"tessera_refresh_total{outcome="grace"} 1"#);
    has(r#"tessera_refresh_total{outcome="reuse"} 1"#);
    has(&format!(
        r#"tessera_rate_limited_total{{route="/auth/login"}} {limited}"#
    ));
    has(r#"tessera_http_requests_total{route="/auth/refresh",method="POST",status="401"} 1"#);
    has(r#"tessera_http_request_duration_seconds_count{route="/auth/refresh",method="POST"} 4"#);
    has(r#"tessera_store_operation_duration_seconds_count{op="rotate"} 4"#);
    has("tessera_sessions_created_total 1");
}

#[tokio::test]
async fn every_response_has_a_request_id_and_problems_name_it_as_instance() {
    let h = Harness::new().await;
    let r = h.get("/healthz", None).await;
    let id = r.header("x-request-id").expect("request id");
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let r2 = h.get("/healthz", None).await;
    assert_ne!(r2.header("x-request-id"), Some(id));

    let p = h.refresh_cookie("garbage").await;
    p.assert_problem(401, "refresh_invalid");
    let id = p.header("x-request-id").expect("request id");
    assert_eq!(
        p.json()["instance"],
        json!(format!("urn:tessera:request:{id}"))
    );

    // a proxy's plain id is kept; anything else is replaced
    for (sent, kept) in [("lb-7f3a.42", true), ("a b\"c", false), ("", false)] {
        let req = Request::get("/nope")
            .header("host", "127.0.0.1:8080")
            .header("x-request-id", sent)
            .body(Body::empty())
            .expect("request");
        let r = h.call(req).await;
        r.assert_problem(404, "not_found");
        let got = r.header("x-request-id").expect("id");
        assert_eq!(got == sent, kept, "sent {sent:?}, got {got:?}");
        assert_eq!(
            r.json()["instance"],
            json!(format!("urn:tessera:request:{got}"))
        );
    }
}

#[tokio::test]
async fn metrics_can_move_to_their_own_listener() {
    let cfg = Config {
        metrics_listen: Some("127.0.0.1:0".into()),
        ..Config::for_tests()
    };
    let h = Harness::with_config(cfg).await;
    h.get("/metrics", None)
        .await
        .assert_problem(404, "not_found");
    let r = h.get("/healthz", None).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// The real binary: JSON log lines carry the request id of the request that caused them;
/// SIGTERM drains and exits 0 at once, though a client keeps an idle keep-alive connection
/// open (it could for `--keep-alive-timeout`, 75 s).
#[test]
fn binary_logs_json_with_request_ids_and_drains_on_sigterm() {
    let mut child = common::Proc(
        Command::new(env!("CARGO_BIN_EXE_tessera-server"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--store",
                "memory://",
                "--log-format",
                "json",
                "--argon2-memory-kib",
                "64",
                "--argon2-iterations",
                "1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("url line");
    let url = line
        .trim()
        .strip_prefix("tessera-server listening on ")
        .expect("url line")
        .to_string();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = reqwest::Client::new();
    let id = rt.block_on(async {
        let r = client
            .post(format!("{url}auth/refresh"))
            .header("x-tessera-csrf", "1")
            .header("cookie", "__Host-tessera_rt=AAAA")
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), 401);
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("id")
            .to_string()
    });
    // the client's pool keeps its idle keep-alive connection open meanwhile
    let ok = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    let sent = std::time::Instant::now();
    let status = child.0.wait().expect("wait");
    let took = sent.elapsed();
    drop((client, rt));
    assert!(status.success(), "SIGTERM exits cleanly: {status:?}");
    assert!(
        took < std::time::Duration::from_secs(10),
        "the drain waited {took:?} for an idle keep-alive connection"
    );
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["span"]["request_id"] == json!(id)),
        "a log line of the request carries its id {id}:\n{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == json!("drained: every request in flight finished")),
        "{err}"
    );
}

/// `tessera_live_sessions` as the scrape reports it.
async fn live_sessions(h: &Harness) -> i64 {
    let m = h.get("/metrics", None).await;
    assert_eq!(m.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&m.body).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("tessera_live_sessions "))
        .unwrap_or_else(|| panic!("no live-sessions gauge in\n{text}"))
        .trim()
        .parse()
        .expect("gauge value")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_sessions_gauge_follows_login_logout_revoke_reuse_and_expiry() {
    let db = common::TempDb::new("live-gauge");
    let redis = common::RedisServer::start();
    let mut stores = vec!["memory://".to_string(), db.url()];
    if let Some(r) = &redis {
        stores.push(r.url());
    }
    for store in stores {
        let cfg = Config {
            store: store.clone(),
            ..Config::for_tests()
        };
        let h = Harness::with_config(cfg).await;
        assert_eq!(live_sessions(&h).await, 0, "{store}");
        let mut logins = Vec::new();
        for _ in 0..4 {
            logins.push(h.login_alice().await);
        }
        assert_eq!(live_sessions(&h).await, 4, "{store}: four logins");

        // logout (cookie)
        let cookie = format!("__Host-tessera_rt={}", logins[0].1);
        let r = h
            .post(
                "/auth/logout",
                serde_json::Value::Null,
                &[("cookie", &cookie)],
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{store}");
        assert_eq!(live_sessions(&h).await, 3, "{store}: after logout");

        // remote revoke of one session from another
        let del = Request::delete(format!("/auth/sessions/{}", logins[1].2))
            .header("authorization", format!("Bearer {}", logins[2].0))
            .body(Body::empty())
            .expect("request");
        assert_eq!(h.call(del).await.status, StatusCode::NO_CONTENT, "{store}");
        assert_eq!(live_sessions(&h).await, 2, "{store}: after revoke");

        // rotation keeps the count; reuse of a superseded token (after its window) ends that family
        let t1 = h
            .refresh_cookie(&logins[2].1)
            .await
            .cookie_token()
            .expect("rotated");
        assert_eq!(live_sessions(&h).await, 2, "{store}: after rotation");
        let _t2 = h.refresh_cookie(&t1).await.cookie_token().expect("rotated");
        h.clock.advance(11); // past the superseded token's grace window
        h.refresh_cookie(&logins[2].1)
            .await
            .assert_problem(401, "refresh_reused");
        assert_eq!(live_sessions(&h).await, 1, "{store}: after reuse");

        // the last one: refreshed just now counts until the idle timeout, then not
        let idle = h.state.config().idle_timeout;
        let t = h
            .refresh_cookie(&logins[3].1)
            .await
            .cookie_token()
            .expect("rotated");
        h.clock.advance(idle - 1);
        assert_eq!(
            live_sessions(&h).await,
            1,
            "{store}: just before idle expiry"
        );
        let t = h.refresh_cookie(&t).await.cookie_token().expect("rotated");
        h.clock.advance(idle);
        assert_eq!(live_sessions(&h).await, 0, "{store}: idle expiry");
        h.refresh_cookie(&t)
            .await
            .assert_problem(401, "session_expired");
        assert_eq!(live_sessions(&h).await, 0, "{store}");
    }
}
