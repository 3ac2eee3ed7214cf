//! Logs: auth events carry the client network and user agent, and no log
//! line ever holds a token, password, TOTP code or key. Its own test binary, so the
//! captured subscriber sees this test's events only.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{bob_code, bob_mfa_token, json_post, peer, wrong_code, Harness};
use serde_json::{json, Value};

// ---- 11: logs --------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn contains_token(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(i, _)| {
        let before = haystack[..i].chars().next_back();
        let after = haystack[i + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

#[tokio::test(flavor = "current_thread")]
async fn auth_logs_carry_network_and_user_agent_and_no_secret() {
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(out.clone())
        .with_max_level(tracing::Level::TRACE)
        .without_time()
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let h = Harness::new().await;
    let mut secrets: Vec<String> = vec![
        "tessera-demo".into(),
        tessera_server::state::DEMO_TOTP_SECRET.into(),
    ];
    let wrong = h
        .call(json_post(
            "/auth/login",
            &json!({"username": "alice", "password": "hunter2-wrong"}),
            peer(1),
            &[],
        ))
        .await;
    wrong.assert_problem(401, "invalid_credentials");
    secrets.push("hunter2-wrong".into());
    let t = bob_mfa_token(&h, peer(1)).await;
    secrets.push(t.clone());
    let bad_code = wrong_code(h.state.now());
    h.call(json_post(
        "/auth/mfa",
        &json!({"mfa_token": t, "code": bad_code}),
        peer(1),
        &[],
    ))
    .await;
    let code = bob_code(h.state.now());
    let ok = h
        .call(json_post(
            "/auth/mfa",
            &json!({"mfa_token": t, "code": code}),
            peer(1),
            &[],
        ))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let at = ok.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let rt = ok.cookie_token().unwrap_or_default();
    let r2 = h.refresh_cookie(&rt).await;
    let at2 = r2.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let rt2 = r2.cookie_token().unwrap_or_default();
    h.introspect(&at2).await;
    let out_resp = h
        .post(
            "/auth/logout",
            Value::Null,
            &[("cookie", &format!("__Host-tessera_rt={rt2}"))],
        )
        .await;
    assert_eq!(out_resp.status, StatusCode::NO_CONTENT);
    let secret = h
        .state
        .config()
        .introspection_secret
        .clone()
        .unwrap_or_default();
    secrets.extend([at.clone(), rt, at2, rt2, secret]);
    // the signature part of a token alone must not leak either
    secrets.extend(at.rsplit('.').next().map(str::to_string));
    let logs =
        String::from_utf8(out.0.lock().unwrap_or_else(|e| e.into_inner()).clone()).expect("utf8");
    assert!(logs.contains("login failed"), "{logs}");
    for s in &secrets {
        assert!(!s.is_empty());
        assert!(
            !logs.contains(s.as_str()),
            "secret {s:?} in the logs:\n{logs}"
        );
    }
    for c in [&code, &bad_code] {
        assert!(
            !contains_token(&logs, c),
            "TOTP code {c} in the logs:\n{logs}"
        );
    }
    let events: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("tessera_server::"))
        .filter(|l| {
            [
                "login failed",
                "session created",
                "mfa code rejected",
                "logout",
            ]
            .iter()
            .any(|e| l.contains(e))
        })
        .collect();
    assert!(events.len() >= 4, "{logs}");
    assert!(
        events.iter().any(|l| l.contains("network=198.51.0.1")),
        "{logs}"
    );
    for line in events {
        assert!(line.contains("network="), "no network in: {line}");
        assert!(line.contains("TesseraTest"), "no user agent in: {line}");
    }
}
