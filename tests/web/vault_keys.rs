//! The vault key belongs to one session, against a fake server that, like
//! the real one, hands out a different key per session and destroys it at logout: a key is
//! never reused for another session; 401/403 from the key endpoint means the record is gone,
//! 5xx/429/network that the key is only unavailable (the record is kept, the tab resumes from
//! the cookie, the SDK retries); cookie mode never seals with a script-readable key.

use crate::support::*;
use tessera::Session;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

fn opts(ch: &str, extra: &str) -> String {
    let mut o = String::from("{ storage: 'local', ");
    o.push_str(extra);
    o.push_str(" channel: '");
    o.push_str(ch);
    o.push_str("' }");
    o
}

fn local() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

fn record(ch: &str) -> Option<String> {
    let mut k = String::from("tessera:token:");
    k.push_str(ch);
    local().get_item(&k).unwrap()
}

async fn record_written(ch: &str) -> String {
    assert!(until(2000, || record(ch).is_some()).await, "record written");
    record(ch).unwrap()
}

/// "Reload": a new session object on `ch` (no resume from the cookie) restores the record
/// with its session's key and is signed in; `what` names the claim.
async fn reload_opens(ch: &str, what: &str) {
    let s = start(&opts(ch, "resume: false,")).await;
    assert_eq!(s.state(), "active", "{what}");
    s.dispose();
}

#[wasm_bindgen_test]
async fn login_logout_login_then_reload_stays_signed_in() {
    let _st = server("{ sessions: true }");
    let ch = channel("vk-relogin");
    let s = start(&opts(&ch, "resume: false,")).await;
    login_alice(&s).await;
    let first = record_written(&ch).await;
    wait(s.logout(JsValue::UNDEFINED)).await.unwrap();
    assert_eq!(record(&ch), None, "wiped at logout");
    login_alice(&s).await;
    let second = record_written(&ch).await;
    assert_ne!(
        first.split('.').nth(1),
        second.split('.').nth(1),
        "the new session's record has its own key id"
    );
    s.dispose();
    reload_opens(&ch, "still signed in after login, logout, login, reload").await;
    restore_fetch();
}

#[wasm_bindgen_test]
async fn an_unavailable_key_keeps_the_record_and_resumes_from_the_cookie() {
    // Asserts below that no `tessera_vk` cookie exists: start from a jar no other test
    // filled (token-mode tests in this binary leave theirs, and the run order is not fixed).
    empty_cookie_jar();
    let st = server("{ sessions: true }");
    let ch = channel("vk-503");
    let s = start(&opts(&ch, "resume: false,")).await;
    login_alice(&s).await;
    let rec = record_written(&ch).await;
    s.dispose();
    // The key endpoint is down at the next page load (503); the session is fine.
    eval("globalThis.__srv.cfg.keyStatus = 503");
    let s = start(&opts(&ch, "")).await;
    let errors = Recorder::on(&s, "error");
    assert_eq!(s.state(), "active", "resumed from the cookie");
    assert_eq!(count(&st, "refreshCount"), 1);
    assert!(
        until(500, || errors
            .codes()
            .contains(&"vault_unavailable".to_string()))
        .await,
        "reported: {:?}",
        errors.codes()
    );
    assert!(
        record(&ch).is_some(),
        "the record is kept, not wiped ({rec})"
    );
    // Never a script-readable key instead of the server's.
    assert!(!web_sys::window()
        .unwrap()
        .document()
        .unwrap()
        .unchecked_into::<web_sys::HtmlDocument>()
        .cookie()
        .unwrap()
        .contains("tessera_vk"));
    // The key is back: the next seal (here the retry on `online`) writes a fresh record.
    eval("globalThis.__srv.cfg.keyStatus = 0");
    let before = record(&ch);
    eval("window.dispatchEvent(new Event('online'))");
    assert!(
        until(2000, || record(&ch) != before).await,
        "sealed once the key is back"
    );
    s.dispose();
    reload_opens(&ch, "the resealed record opens").await;
    restore_fetch();
}

#[wasm_bindgen_test]
async fn coming_back_online_while_a_key_request_is_out_retries_its_failure_at_once() {
    // The network returns (`online`) while a key request is still out, and that request then
    // fails: it was sent before the network came back, so the retry is owed now, not after
    // the backoff (5 s and more) that an outage seen while online would earn.
    let st = server("{ sessions: true }");
    let ch = channel("vk-online-race");
    let s = start(&opts(&ch, "resume: false,")).await;
    eval(
        "globalThis.__srv.cfg.routes = { '/auth/vault-key': (req, st, json) => new Promise((r) => \
         (st.releaseKey = () => r(json(503, { code: 'unavailable', status: 503 })))) }",
    );
    // The login's answer waits for its seal: awaited once the key request is answered.
    let login = s.login(obj("{username: 'alice', password: 'tessera-demo'}"));
    assert!(
        until(2000, || get(&st, "releaseKey").is_function()).await,
        "the seal asked for the key"
    );
    // Back online, with the request still out; then its 503 arrives, and the key is back.
    eval("globalThis.__srv.cfg.routes = null");
    eval("window.dispatchEvent(new Event('online'))");
    eval("globalThis.__srv.releaseKey()");
    assert_eq!(
        wait(login).await.unwrap().as_string().as_deref(),
        Some("active")
    );
    assert!(
        until(2000, || record(&ch).is_some()).await,
        "sealed right after the failure that the return to online outdated"
    );
    s.dispose();
    reload_opens(&ch, "the record opens").await;
    restore_fetch();
}

/// Starts a session on `ch` (no resume) and signs alice in while the key endpoint fails: returns
/// once the login's seal reported `vault_unavailable`, with the session's `error` recorder.
async fn login_with_the_key_out(ch: &str) -> (Session, Recorder) {
    let s = start(&opts(ch, "resume: false,")).await;
    let errors = Recorder::on(&s, "error");
    login_alice(&s).await;
    assert!(
        until(1000, || errors
            .codes()
            .contains(&"vault_unavailable".to_string()))
        .await,
        "the seal reports the key unavailable: {:?}",
        errors.codes()
    );
    (s, errors)
}

#[wasm_bindgen_test]
async fn a_key_outage_seen_while_online_is_retried_after_5_s() {
    // Online all along, the key endpoint answers 503 to the login's seal: the first retry is
    // due 5 s later (the backoff the README gives), with no `online` event to prompt it.
    let st = server("{ sessions: true, keyStatus: 503 }");
    let ch = channel("vk-backoff");
    let (s, _errors) = login_with_the_key_out(&ch).await;
    assert_eq!(record(&ch), None);
    let calls = count(&st, "keyCalls");
    eval("globalThis.__srv.cfg.keyStatus = 0");
    assert!(
        until(8000, || record(&ch).is_some()).await,
        "sealed by the first retry, 5 s after the failure"
    );
    assert_eq!(count(&st, "keyCalls"), calls + 1, "one retry did it");
    s.dispose();
    reload_opens(&ch, "the record the retry sealed opens").await;
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_network_failure_of_the_key_endpoint_does_not_wipe() {
    let _st = server("{ sessions: true }");
    let ch = channel("vk-net");
    let s = start(&opts(&ch, "resume: false,")).await;
    login_alice(&s).await;
    let rec = record_written(&ch).await;
    s.dispose();
    eval(
        "globalThis.__srv.cfg.routes = { '/auth/vault-key': () => { throw new TypeError('Failed to fetch'); } }",
    );
    let s = start(&opts(&ch, "resume: false,")).await;
    let errors = Recorder::on(&s, "error");
    assert!(until(500, || errors.len() > 0).await);
    assert_eq!(errors.codes(), vec!["vault_unavailable".to_string()]);
    assert_eq!(record(&ch), Some(rec), "kept for the retry");
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn cookie_mode_does_not_persist_without_the_server_key() {
    // Asserts below that no `tessera_vk` cookie exists: start from a jar no other test
    // filled (token-mode tests in this binary leave theirs, and the run order is not fixed).
    empty_cookie_jar();
    let st = server("{ sessions: true, keyStatus: 429 }");
    let ch = channel("vk-nokey");
    let (s, _errors) = login_with_the_key_out(&ch).await;
    assert!(count(&st, "keyCalls") >= 1);
    assert_eq!(
        record(&ch),
        None,
        "nothing sealed with a key script could read"
    );
    let doc: web_sys::HtmlDocument = web_sys::window()
        .unwrap()
        .document()
        .unwrap()
        .unchecked_into();
    assert!(
        !doc.cookie().unwrap().contains("tessera_vk"),
        "no script-readable key cookie in cookie mode"
    );
    s.dispose();
    restore_fetch();
}

use wasm_bindgen::JsCast;
