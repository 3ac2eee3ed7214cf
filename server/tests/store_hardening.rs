//! Storage and secrets hardening through the router and the state (issue 9, items 5–7):
//! bounded growth, secrets sealed at rest, grace bound to the rotating client, TOTP rules.

mod common;

use axum::http::StatusCode;
use common::Harness;
use serde_json::json;
use tessera_server::state::{StartupError, DEMO_TOTP_SECRET};
use tessera_server::totp::{self, TotpError};

fn bob_code(at: i64) -> String {
    totp::code_at(
        &totp::base32_decode(DEMO_TOTP_SECRET).unwrap_or_default(),
        at,
    )
}

async fn bob_mfa(h: &Harness, code: &str) -> common::Resp {
    let t = h.login("bob", "tessera-demo").await.json()["mfa_token"].clone();
    h.post("/auth/mfa", json!({"mfa_token": t, "code": code}), &[])
        .await
}

#[tokio::test]
async fn totp_replay_guard_refuses_any_step_not_after_the_last_accepted() {
    let h = Harness::new().await;
    let now = h.state.now();
    // the next step's code (inside the ±1 window) is accepted first …
    let ok = bob_mfa(&h, &bob_code(now + 30)).await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&ok.body)
    );
    // … then the current step's code, never used, is older: refused
    bob_mfa(&h, &bob_code(now))
        .await
        .assert_problem(401, "mfa_invalid");
    // and so is the previous step's
    bob_mfa(&h, &bob_code(now - 30))
        .await
        .assert_problem(401, "mfa_invalid");
    // the same code again: refused
    bob_mfa(&h, &bob_code(now + 30))
        .await
        .assert_problem(401, "mfa_invalid");
    // time moves on: the following step is accepted
    h.clock.advance(60);
    let later = bob_mfa(&h, &bob_code(h.state.now())).await;
    assert_eq!(later.status, StatusCode::OK);
}

#[tokio::test]
async fn totp_secrets_under_160_bits_are_refused_at_enrolment() {
    let h = Harness::new().await;
    let short = totp::base32_encode(&[7u8; 19]);
    for (secret, bits) in [("JBSWY3DPEHPK3PXP", 80), ("", 0), (short.as_str(), 152)] {
        match h.state.add_user("eve", "correct horse", Some(secret)).await {
            Err(StartupError::Totp(TotpError::TooShort { bits: b })) => assert_eq!(b, bits),
            other => panic!("{secret:?}: expected TooShort, got {other:?}"),
        }
    }
    assert!(matches!(
        h.state
            .add_user("eve", "correct horse", Some("not base32!"))
            .await,
        Err(StartupError::Totp(TotpError::NotBase32))
    ));
    assert_eq!(
        h.state.store().find_user("eve").await.unwrap(),
        None,
        "nothing written"
    );
    h.state
        .add_user("eve", "correct horse", Some(&totp::new_secret()))
        .await
        .expect("a fresh 160-bit secret is accepted");
    // the demo user's secret is the documented 160-bit one
    let bob = h
        .state
        .store()
        .find_user("bob")
        .await
        .unwrap()
        .expect("bob");
    assert_eq!(
        bob.totp_secret.as_deref(),
        Some("4MEMZDELGP554FRQ6OH4LD7PAJIEUSHX")
    );
    assert_eq!(
        totp::base32_decode(DEMO_TOTP_SECRET).map(|k| k.len() * 8),
        Some(160)
    );
}
