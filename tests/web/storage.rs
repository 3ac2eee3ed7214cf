//! Storage that fails (quota exceeded, disabled, `SecurityError` on access) falls back to
//! memory with an `error` event; the session keeps working in this tab.

use crate::support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

fn opts(ch: &str) -> String {
    let mut o = String::from("{ resume: false, storage: 'local', channel: '");
    o.push_str(&channel(ch));
    o.push_str("' }");
    o
}

#[wasm_bindgen_test]
async fn quota_exceeded_on_write_falls_back_to_memory() {
    let _st = server("{}");
    eval(
        "globalThis.__setItem = Storage.prototype.setItem;
         Storage.prototype.setItem = function (k, v) {
           if (String(k).startsWith('tessera:token:')) throw new DOMException('full', 'QuotaExceededError');
           return globalThis.__setItem.call(this, k, v);
         }",
    );
    let s = start(&opts("st-quota")).await;
    let errors = Recorder::on(&s, "error");
    login_alice(&s).await;
    assert!(until(500, || errors.len() > 0).await);
    assert_eq!(errors.codes(), vec!["storage_unavailable".to_string()]);
    assert_eq!(s.state(), "active");
    let res = wait(s.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(
        get(&res, "status").as_f64(),
        Some(200.0),
        "the session keeps working"
    );
    assert_eq!(get(&s.stats(), "persistent").as_bool(), Some(false));
    eval("Storage.prototype.setItem = globalThis.__setItem");
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn storage_throwing_on_access_falls_back_to_memory() {
    let _st = server("{}");
    eval(
        "globalThis.__lsDesc = Object.getOwnPropertyDescriptor(window, 'localStorage')
           || Object.getOwnPropertyDescriptor(Window.prototype, 'localStorage');
         Object.defineProperty(window, 'localStorage', { configurable: true,
           get() { throw new DOMException('denied', 'SecurityError'); } })",
    );
    let s = start(&opts("st-sec")).await;
    let errors = Recorder::on(&s, "error");
    assert!(until(500, || errors.len() > 0).await, "reported at start");
    assert_eq!(errors.codes()[0], "storage_unavailable");
    login_alice(&s).await;
    let res = wait(s.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(get(&res, "status").as_f64(), Some(200.0));
    // Logout still works (the wipe tolerates the broken store).
    wait(s.logout(JsValue::UNDEFINED)).await.unwrap();
    assert_eq!(s.state(), "logged-out");
    eval("Object.defineProperty(window, 'localStorage', globalThis.__lsDesc)");
    s.dispose();
    restore_fetch();
}
