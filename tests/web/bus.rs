//! The cross-tab bus with real BroadcastChannels: two `Session`s on one channel name in one
//! page are two endpoints of real cross-context messaging. Garbage on the channel is
//! ignored and counted, never a panic.

use crate::support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

fn opts(ch: &str) -> String {
    let mut o = String::from("{ resume: false, channel: '");
    o.push_str(ch);
    o.push_str("' }");
    o
}

#[wasm_bindgen_test]
async fn login_and_logout_reach_the_other_tab() {
    let _st = server("{}");
    let ch = channel("bus-a");
    let a = start(&opts(&ch)).await;
    let b = start(&opts(&ch)).await;
    let b_login = Recorder::on(&b, "login");
    let b_logout = Recorder::on(&b, "logout");
    login_alice(&a).await;
    assert!(
        until(1000, || b.state() == "active").await,
        "b adopts a's session over the bus"
    );
    assert_eq!(b_login.len(), 1);
    let res = wait(b.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(
        get(&res, "status").as_f64(),
        Some(200.0),
        "b uses the token a obtained"
    );
    wait(a.logout(JsValue::UNDEFINED)).await.unwrap();
    assert_eq!(a.state(), "logged-out");
    assert!(
        until(1000, || b.state() == "logged-out").await,
        "one bus hop"
    );
    assert!(until(1000, || b_logout.len() == 1).await);
    assert_eq!(
        get(&b_logout.events()[0], "reason").as_string().as_deref(),
        Some("user")
    );
    a.dispose();
    b.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn garbage_on_the_channel_is_ignored_and_counted() {
    let _st = server("{}");
    let ch = channel("bus-g");
    let a = start(&opts(&ch)).await;
    login_alice(&a).await;
    let mut src = String::from("(() => { const c = new BroadcastChannel('");
    src.push_str(&ch);
    src.push_str(
        "'); const junk = [42, null, {a: 1}, [1, 2], 'hello', '', 'AQ', 'AQE', '____', 'AQMBKg',
           new Uint8Array([1, 2, 3]), 'x'.repeat(100000), '\\u0000\\uffff', 'AgE', 'AQUB'];
         for (const j of junk) c.postMessage(j); c.close(); return junk.length; })()",
    );
    let n = eval(&src).as_f64().unwrap() as u32;
    assert!(
        until(1000, || get(&a.stats(), "busMalformed").as_f64()
            == Some(n as f64))
        .await,
        "every junk message counted"
    );
    assert_eq!(a.state(), "active", "and ignored");
    let res = wait(a.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(get(&res, "status").as_f64(), Some(200.0));
    a.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_disposed_session_stops_listening() {
    let _st = server("{}");
    let ch = channel("bus-d");
    let a = start(&opts(&ch)).await;
    let b = start(&opts(&ch)).await;
    b.dispose();
    login_alice(&a).await;
    sleep(100).await;
    assert_eq!(
        b.state(),
        "anonymous",
        "no listener left behind after dispose"
    );
    a.dispose();
    restore_fetch();
}

/// Without BroadcastChannel the bus rides on `storage` events, as a bare nudge: no message
/// (a token message carries the bearer) is ever written to storage. Storage events never reach
/// the document that wrote, so the test relays what tab A wrote to tab B as the event the
/// browser would deliver in another document; B then takes its own token (cookie refresh).
#[wasm_bindgen_test]
async fn storage_event_fallback_without_broadcast_channel() {
    let st = server("{}");
    let ch = channel("bus-fallback");
    eval(
        "globalThis.__BC = globalThis.BroadcastChannel; delete globalThis.BroadcastChannel;
         globalThis.__writes = []; globalThis.__set = Storage.prototype.setItem;
         Storage.prototype.setItem = function (k, v) {
           if (String(k).startsWith('tessera:bus:')) globalThis.__writes.push([k, v]);
           return globalThis.__set.call(this, k, v);
         }",
    );
    let a = start(&opts(&ch)).await;
    let b = start(&opts(&ch)).await;
    eval("globalThis.BroadcastChannel = globalThis.__BC");
    login_alice(&a).await;
    eval("Storage.prototype.setItem = globalThis.__set");
    let writes = eval("globalThis.__writes.length").as_f64().unwrap();
    assert!(writes >= 1.0, "a posted on the storage fallback");
    assert_eq!(
        b.state(),
        "anonymous",
        "nothing delivered yet (same document)"
    );
    eval(
        "for (const [key, newValue] of globalThis.__writes)
           window.dispatchEvent(new StorageEvent('storage', { key, newValue }))",
    );
    assert!(
        until(500, || b.state() == "active").await,
        "b signed in after the storage event"
    );
    let payloads = eval("globalThis.__writes.filter(([, v]) => !/^\\d+\\|\\d+$/.test(v)).length");
    assert_eq!(
        payloads.as_f64(),
        Some(0.0),
        "the fallback wrote nothing but nudges"
    );
    assert_eq!(
        count(&st, "refreshCount"),
        1,
        "b took its own token from the server"
    );
    let res = wait(b.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(get(&res, "status").as_f64(), Some(200.0));
    a.dispose();
    b.dispose();
    restore_fetch();
}
