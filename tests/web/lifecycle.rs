//! The browser's and the object's lifecycle: only trusted input
//! counts as activity; `navigator.onLine` is read at start; every SDK request has a timeout;
//! degradation is reported; `dispose()` ends the object (fetch throws, `Symbol.dispose`);
//! listener exceptions reach `reportError` and nothing becomes an unhandled rejection.

use crate::support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

fn opts(ch: &str, extra: &str) -> String {
    let mut o = String::from("{ ");
    o.push_str(extra);
    o.push_str(" channel: '");
    o.push_str(&channel(ch));
    o.push_str("' }");
    o
}

#[wasm_bindgen_test]
async fn synthetic_events_do_not_count_as_activity() {
    let _st = server("{}");
    let s = start(&opts(
        "lc-synth",
        "resume: false, idleTimeoutMs: 600, idleWarningMs: 300, activityThrottleMs: 50,",
    ))
    .await;
    let logout = Recorder::on(&s, "logout");
    login_alice(&s).await;
    // A script keeps "moving the mouse" and "typing" for two and a half idle timeouts.
    for i in 0..30 {
        let mut src =
            String::from("document.dispatchEvent(new PointerEvent('pointermove', { clientX: ");
        src.push_str(&(i * 3).to_string());
        src.push_str(" })); document.dispatchEvent(new KeyboardEvent('keydown', { key: 'a' }))");
        eval(&src);
        sleep(50).await;
    }
    assert_eq!(
        logout.len(),
        1,
        "logged out while the untrusted events kept coming"
    );
    assert_eq!(
        get(&logout.events()[0], "reason").as_string().as_deref(),
        Some("idle")
    );
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn offline_at_start_sends_nothing_until_online() {
    let st = server("{}");
    eval("Object.defineProperty(navigator, 'onLine', { configurable: true, get: () => false })");
    let s = start(&opts("lc-offline", "")).await;
    assert_eq!(
        count(&st, "refreshCount"),
        0,
        "no refresh while the browser says offline"
    );
    assert_eq!(s.state(), "anonymous");
    eval("delete navigator.onLine; window.dispatchEvent(new Event('online'))");
    assert!(
        until(2000, || s.state() == "active").await,
        "resumed once online"
    );
    assert_eq!(count(&st, "refreshCount"), 1);
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn every_sdk_request_has_a_timeout() {
    let _st = server(
        "{ routes: {
            '/auth/login': (req, st) => new Promise((_, fail) => req.signal.addEventListener('abort', () => { st.loginAborted = 1; fail(req.signal.reason); })),
            '/auth/refresh': (req, st) => new Promise((_, fail) => req.signal.addEventListener('abort', () => { st.refreshAborted = 1; fail(req.signal.reason); })),
         } }",
    );
    let s = start(&opts(
        "lc-timeout",
        "resume: false, loginTimeoutMs: 200, requestTimeoutMs: 300,",
    ))
    .await;
    let err = wait(s.login(obj("{username: 'alice', password: 'tessera-demo'}")))
        .await
        .unwrap_err();
    assert_eq!(get(&err, "code").as_string().as_deref(), Some("timeout"));
    assert_eq!(
        count(&get(&web_sys::window().unwrap(), "__srv"), "loginAborted"),
        1
    );
    s.dispose();
    let s = start(&opts("lc-timeout2", "requestTimeoutMs: 300,")).await;
    assert!(
        until(2000, || count(
            &get(&web_sys::window().unwrap(), "__srv"),
            "refreshAborted"
        ) == 1)
        .await,
        "the refresh was aborted"
    );
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_missing_broadcast_channel_is_reported() {
    let _st = server("{}");
    eval("globalThis.__BC = globalThis.BroadcastChannel; delete globalThis.BroadcastChannel");
    let s = start(&opts("lc-nobc", "resume: false,")).await;
    eval("globalThis.BroadcastChannel = globalThis.__BC");
    let errors = Recorder::on(&s, "error");
    assert!(until(500, || errors.len() > 0).await);
    assert_eq!(errors.codes(), vec!["bus_unavailable".to_string()]);
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn broken_local_storage_is_reported_in_memory_mode() {
    let _st = server("{}");
    eval(
        "globalThis.__lsDesc = Object.getOwnPropertyDescriptor(window, 'localStorage')
           || Object.getOwnPropertyDescriptor(Window.prototype, 'localStorage');
         Object.defineProperty(window, 'localStorage', { configurable: true,
           get() { throw new DOMException('denied', 'SecurityError'); } })",
    );
    let s = start(&opts("lc-nols", "resume: false,")).await;
    eval("Object.defineProperty(window, 'localStorage', globalThis.__lsDesc)");
    let errors = Recorder::on(&s, "error");
    assert!(until(500, || errors.len() > 0).await);
    assert_eq!(errors.codes(), vec!["storage_unavailable".to_string()]);
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_disposed_session_is_done_and_symbol_dispose_disposes() {
    let st = server("{}");
    let s = start(&opts("lc-dispose", "resume: false,")).await;
    login_alice(&s).await;
    assert!(
        prop(&s, "expiresAt").as_f64().is_some(),
        "expiresAt while signed in"
    );
    assert!(
        prop(&s, "idleDeadline").as_f64().is_some(),
        "idleDeadline while signed in"
    );
    assert_eq!(prop(&s, "user").as_string().as_deref(), Some("alice"));
    // `using session = …` calls this.
    with(&s, "(s) => s[Symbol.dispose]()");
    let err = wait(s.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap_err();
    assert_eq!(get(&err, "code").as_string().as_deref(), Some("disposed"));
    assert_eq!(
        calls(&st, "/api/me").len(),
        0,
        "nothing was sent with the old token"
    );
    assert_eq!(s.state(), "active", "the state it had when disposed");
    assert!(prop(&s, "expiresAt").is_null());
    s.dispose(); // idempotent
    restore_fetch();
}

#[wasm_bindgen_test]
async fn listener_exceptions_reach_report_error_and_nothing_is_unhandled() {
    let _st = server("{}");
    eval(
        "globalThis.__reported = []; globalThis.__reportError = globalThis.reportError;
         globalThis.reportError = (e) => globalThis.__reported.push(String(e && e.message));
         globalThis.__unhandled = [];
         globalThis.__onUnhandled = (e) => { globalThis.__unhandled.push(String(e.reason)); e.preventDefault(); };
         window.addEventListener('unhandledrejection', globalThis.__onUnhandled);",
    );
    let s = start(&opts("lc-listen", "resume: false,")).await;
    with(
        &s,
        "(s) => { s.on('login', () => { throw new Error('sync listener'); });
                  s.on('login', async () => { throw new Error('async listener'); }); }",
    );
    login_alice(&s).await;
    wait(s.logout(JsValue::UNDEFINED)).await.unwrap();
    sleep(50).await;
    let reported = eval("globalThis.__reported.sort().join(',')")
        .as_string()
        .unwrap();
    assert_eq!(reported, "async listener,sync listener");
    let unhandled = eval("globalThis.__unhandled.join(',')")
        .as_string()
        .unwrap();
    assert_eq!(unhandled, "", "no unhandled rejections");
    eval(
        "globalThis.reportError = globalThis.__reportError;
         window.removeEventListener('unhandledrejection', globalThis.__onUnhandled)",
    );
    s.dispose();
    restore_fetch();
}
