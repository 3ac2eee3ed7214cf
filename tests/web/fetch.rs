//! Authenticated fetch: bearer added, one refresh + one retry on 401, never a loop;
//! auth requests carry the CSRF header and credentials; an abort signal passes through.

use crate::support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

fn opts(ch: &str) -> String {
    let mut o = String::from("{ resume: false, channel: '");
    o.push_str(&channel(ch));
    o.push_str("' }");
    o
}

#[wasm_bindgen_test]
async fn bearer_is_added_and_auth_posts_carry_csrf_and_credentials() {
    let st = server("{}");
    let s = start(&opts("fetch-a")).await;
    login_alice(&s).await;
    let res = wait(s.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(get(&res, "status").as_f64(), Some(200.0));
    let api = calls(&st, "/api/me");
    assert_eq!(
        get(&api[0], "auth").as_string().as_deref(),
        Some("Bearer at-1")
    );
    let login = calls(&st, "/auth/login");
    assert_eq!(get(&login[0], "csrf").as_string().as_deref(), Some("1"));
    assert_eq!(
        get(&login[0], "credentials").as_string().as_deref(),
        Some("include")
    );
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_401_is_refreshed_once_and_retried_once_not_twice() {
    let st = server("{ api401: true }");
    let s = start(&opts("fetch-b")).await;
    login_alice(&s).await;
    let res = wait(s.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(get(&res, "status").as_f64(), Some(401.0));
    assert_eq!(count(&st, "apiCount"), 2, "one retry, never a loop");
    assert_eq!(count(&st, "refreshCount"), 1);
    let api = calls(&st, "/api/me");
    assert_eq!(
        get(&api[0], "auth").as_string().as_deref(),
        Some("Bearer at-1")
    );
    assert_eq!(
        get(&api[1], "auth").as_string().as_deref(),
        Some("Bearer at-2")
    );
    assert_eq!(s.state(), "active");
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_401_after_a_stale_token_succeeds_on_the_retry() {
    let st = server("{}");
    let s = start(&opts("fetch-c")).await;
    login_alice(&s).await;
    // The server moved on (another client refreshed): our token is stale.
    eval("globalThis.__srv.token = 5");
    let res = wait(s.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(get(&res, "status").as_f64(), Some(200.0));
    assert_eq!(count(&st, "apiCount"), 2);
    assert_eq!(count(&st, "refreshCount"), 1);
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_definitive_refresh_rejection_returns_the_401_and_logs_out() {
    let st = server("{ refreshStatus: 401, refreshCode: 'session_revoked' }");
    let s = start(&opts("fetch-d")).await;
    login_alice(&s).await;
    let logout = Recorder::on(&s, "logout");
    eval("globalThis.__srv.token = 9");
    let res = wait(s.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(get(&res, "status").as_f64(), Some(401.0));
    assert_eq!(count(&st, "apiCount"), 1, "no retry without a new token");
    assert_eq!(count(&st, "refreshCount"), 1);
    assert!(until(2000, || logout.len() == 1).await);
    assert_eq!(
        get(&logout.events()[0], "reason").as_string().as_deref(),
        Some("revoked")
    );
    assert_eq!(s.state(), "logged-out");
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn an_abort_signal_passes_through() {
    let _st = server("{}");
    let s = start(&opts("fetch-e")).await;
    login_alice(&s).await;
    let init = eval(
        "(() => { const ac = new AbortController(); ac.abort(); return { signal: ac.signal }; })()",
    );
    let err = wait(s.fetch("/api/me".into(), init)).await.unwrap_err();
    assert_eq!(get(&err, "name").as_string().as_deref(), Some("AbortError"));
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn login_errors_carry_the_problem_code_and_mfa_flow_works() {
    let _st = server("{}");
    let s = start(&opts("fetch-f")).await;
    let err = wait(s.login(obj("{username: 'alice', password: 'nope'}")))
        .await
        .unwrap_err();
    assert_eq!(
        get(&err, "code").as_string().as_deref(),
        Some("invalid_credentials")
    );
    assert_eq!(s.state(), "anonymous");
    let r = wait(s.login(obj("{username: 'bob', password: 'tessera-demo'}")))
        .await
        .unwrap();
    assert_eq!(r.as_string().as_deref(), Some("mfa-required"));
    assert_eq!(s.state(), "mfa-required");
    let err = wait(s.verify_mfa("000000".into())).await.unwrap_err();
    assert_eq!(
        get(&err, "code").as_string().as_deref(),
        Some("mfa_invalid")
    );
    let r = wait(s.verify_mfa("123456".into())).await.unwrap();
    assert_eq!(r.as_string().as_deref(), Some("active"));
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn an_endpoint_that_always_answers_401_rotates_the_refresh_token_at_most_once() {
    // A permission 401 (the token is fine): the first forces one refresh and one retry; the
    // token that refresh produced is not forced again, so later calls return the 401 at once.
    let st = server("{ api401: true }");
    let s = start(&format!(
        "{{ resume: false, channel: '{}' }}",
        channel("fetch-perm")
    ))
    .await;
    login_alice(&s).await;
    for _ in 0..4 {
        let r = wait(s.fetch("/api/me".into(), JsValue::UNDEFINED))
            .await
            .expect("fetch");
        assert_eq!(get(&r, "status").as_f64(), Some(401.0));
    }
    assert_eq!(
        count(&st, "refreshCount"),
        1,
        "one rotation, not one per call"
    );
    assert_eq!(count(&st, "apiCount"), 5, "four calls and one retry");
    s.dispose();
    restore_fetch();
}
