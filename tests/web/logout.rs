//! Logout never waits and owes nothing: other tabs hear of it
//! before a pending seal or key fetch finishes; an offline logout's revoke is kept and sent
//! when back online; a start-up wipe of an ended session says so; a cookie session created
//! after the last (delivered) logout is resumed.

use crate::support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

fn opts(ch: &str, extra: &str) -> String {
    let mut o = String::from("{ ");
    o.push_str(extra);
    o.push_str(" channel: '");
    o.push_str(ch);
    o.push_str("' }");
    o
}

fn local() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

/// Whether a revoke is owed (remembered for a retry) on channel `ch`.
fn owed(ch: &str) -> bool {
    local()
        .get_item(&key("tessera:revoke:", ch))
        .unwrap()
        .is_some()
}

fn key(prefix: &str, ch: &str) -> String {
    let mut k = String::from(prefix);
    k.push_str(ch);
    k
}

#[wasm_bindgen_test]
async fn logout_reaches_other_tabs_while_a_seal_waits_for_its_key() {
    let st = server("{ sessions: true, keyHold: true }");
    let ch = channel("lo-seal");
    let a = start(&opts(&ch, "resume: false, storage: 'local',")).await;
    let b = start(&opts(&ch, "resume: false,")).await;
    // The login's seal asks for the vault key, which the server holds back.
    let _pending = a.login(obj("{username: 'alice', password: 'tessera-demo'}"));
    assert!(
        until(1000, || count(&st, "keyCalls") == 1
            && b.state() == "active")
        .await
    );
    let b_logout = Recorder::on(&b, "logout");
    let done = a.logout(JsValue::UNDEFINED);
    assert!(
        until(1000, || b_logout.len() == 1).await,
        "the other tab is told while the key fetch is pending"
    );
    assert!(
        get(&st, "releaseKey").is_function(),
        "the key request is still unanswered"
    );
    eval("globalThis.__srv.releaseKey()");
    wait(done).await.unwrap();
    sleep(100).await;
    assert_eq!(
        local().get_item(&key("tessera:token:", &ch)).unwrap(),
        None,
        "the late seal wrote nothing"
    );
    a.dispose();
    b.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn an_offline_logout_revoke_is_retried_when_online() {
    let st = server("{ sessions: true, offline: true }");
    let ch = channel("lo-offline");
    let a = start(&opts(&ch, "resume: false,")).await;
    login_alice(&a).await;
    wait(a.logout(JsValue::UNDEFINED)).await.unwrap();
    assert_eq!(
        a.state(),
        "logged-out",
        "the wipe does not wait for the network"
    );
    assert_eq!(count(&st, "revoked"), 0);
    assert!(owed(&ch), "the revoke is owed");
    eval("globalThis.__srv.cfg.offline = false; window.dispatchEvent(new Event('online'))");
    assert!(
        until(2000, || count(&st, "revoked") == 1).await,
        "sent when back online"
    );
    assert!(until(500, || !owed(&ch)).await);
    // A reload after that does not revive the revoked session.
    let b = start(&opts(&ch, "")).await;
    assert_eq!(b.state(), "anonymous");
    a.dispose();
    b.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_revoke_that_fails_after_the_browser_came_back_online_is_sent_again_at_once() {
    // The logout's revoke goes out on a network that is down; the browser comes back online
    // while it is out, and then it fails. No later `online` event will come: the owed revoke is
    // sent at once, not at the next page load.
    let st = server("{ sessions: true }");
    let ch = channel("lo-online-race");
    let a = start(&opts(&ch, "resume: false,")).await;
    login_alice(&a).await;
    eval(
        "globalThis.__srv.cfg.routes = { '/auth/logout': (req, st) => new Promise((r, no) => \
         (st.releaseLogout = () => no(new TypeError('Failed to fetch')))) }",
    );
    let out = a.logout(JsValue::UNDEFINED);
    assert!(
        until(2000, || get(&st, "releaseLogout").is_function()).await,
        "the revoke went out"
    );
    eval("globalThis.__srv.cfg.routes = null; window.dispatchEvent(new Event('online'))");
    eval("globalThis.__srv.releaseLogout()");
    wait(out).await.unwrap();
    assert!(
        until(2000, || count(&st, "revoked") == 1).await,
        "sent again right after the failure that the return to online outdated"
    );
    assert!(until(500, || !owed(&ch)).await, "nothing owed any more");
    a.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn an_owed_revoke_refused_with_a_5xx_is_retried_while_online() {
    // Online all along, the server answers the revoke 503 once: the session must not stay alive
    // on the server until some later `online` event or page load.
    let st = server("{ sessions: true }");
    let ch = channel("lo-503");
    let a = start(&opts(&ch, "resume: false,")).await;
    login_alice(&a).await;
    eval(
        "globalThis.__srv.cfg.routes = { '/auth/logout': (req, st, json) => \
         (st.cfg.routes = null, json(503, { code: 'unavailable', status: 503 })) }",
    );
    wait(a.logout(JsValue::UNDEFINED)).await.unwrap();
    assert!(owed(&ch), "owed after the 503");
    assert_eq!(count(&st, "revoked"), 0);
    // The first retry is due 5 s later.
    assert!(
        until(8000, || count(&st, "revoked") == 1).await,
        "retried with backoff, no `online` event needed"
    );
    assert!(until(500, || !owed(&ch)).await);
    a.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn an_owed_revoke_goes_out_at_the_next_start_and_blocks_the_resume() {
    let st = server("{ sessions: true, offline: true }");
    let ch = channel("lo-owed");
    let a = start(&opts(&ch, "resume: false,")).await;
    login_alice(&a).await;
    wait(a.logout(JsValue::UNDEFINED)).await.unwrap();
    a.dispose();
    // Still offline at the next page load: no revoke possible, and no resume either.
    let b = start(&opts(&ch, "")).await;
    assert_eq!(
        b.state(),
        "anonymous",
        "an offline logout is not undone by a reload"
    );
    assert_eq!(count(&st, "refreshCount"), 0);
    b.dispose();
    // Online at the one after: the revoke goes out first.
    eval("globalThis.__srv.cfg.offline = false");
    let c = start(&opts(&ch, "")).await;
    assert_eq!(
        count(&st, "revoked"),
        1,
        "the owed revoke was sent at start"
    );
    assert_eq!(c.state(), "anonymous");
    c.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_cookie_session_created_after_the_last_logout_is_resumed() {
    let st = server("{ sessions: true }");
    let ch = channel("lo-sso");
    let a = start(&opts(&ch, "resume: false,")).await;
    login_alice(&a).await;
    wait(a.logout(JsValue::UNDEFINED)).await.unwrap();
    a.dispose();
    // A session created outside the SDK (a server-rendered login, an SSO redirect).
    eval("globalThis.__srv.cur = 'sess-sso'; globalThis.__srv.keys['sess-sso'] = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8'");
    let b = start(&opts(&ch, "")).await;
    assert_eq!(b.state(), "active", "the new cookie session is resumed");
    let res = wait(b.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(get(&res, "status").as_f64(), Some(200.0));
    assert!(count(&st, "refreshCount") >= 1);
    b.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_start_up_wipe_of_an_ended_session_emits_logout_expired() {
    let _st = server("{ sessions: true }");
    let ch = channel("lo-ended");
    let o = opts(&ch, "resume: false, storage: 'local', idleTimeoutMs: 400, idleWarningMs: 100, activityThrottleMs: 50,");
    let a = start(&o).await;
    login_alice(&a).await;
    assert!(
        until(2000, || local()
            .get_item(&key("tessera:token:", &ch))
            .unwrap()
            .is_some())
        .await
    );
    a.dispose();
    sleep(600).await; // the idle deadline passes while no tab is open
    let b = start(&o).await;
    let logout = Recorder::on(&b, "logout");
    assert!(
        until(500, || logout.len() == 1).await,
        "the start-up wipe is reported"
    );
    let e = &logout.events()[0];
    assert_eq!(get(e, "reason").as_string().as_deref(), Some("expired"));
    let cleared = get(e, "cleared");
    assert_eq!(
        get(&cleared, "localStorage").as_f64(),
        Some(1.0),
        "the record was cleared"
    );
    assert_eq!(b.state(), "anonymous");
    assert_eq!(local().get_item(&key("tessera:token:", &ch)).unwrap(), None);
    b.dispose();
    restore_fetch();
}
