//! Cleanup reports the truth: partitioned (CHIPS) cookies are expired too;
//! `cleared` lists only what is gone after re-reading; an IndexedDB deletion blocked by an
//! open connection is reported in `remaining` as blocked, not as deleted; one aborted while
//! the database went anyway (the logout answer's Clear-Site-Data) is cleared, not an error;
//! so is a cache that was there and that someone else deleted first.

use crate::support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

fn opts(ch: &str, cleanup: &str) -> String {
    let mut o = String::from("{ resume: false, cleanup: ");
    o.push_str(cleanup);
    o.push_str(", channel: '");
    o.push_str(&channel(ch));
    o.push_str("' }");
    o
}

#[wasm_bindgen_test]
async fn partitioned_cookies_are_expired_and_cleared_lists_only_what_is_gone() {
    empty_cookie_jar();
    let _st = server("{}");
    eval(
        "document.cookie = 'chips=1; Path=/; Secure; SameSite=None; Partitioned';
         document.cookie = 'plain=1; Path=/'",
    );
    let before = eval("document.cookie").as_string().unwrap();
    assert!(
        before.contains("chips=1") && before.contains("plain=1"),
        "both cookies set: {before}"
    );
    let s = start(&opts("ct-chips", "{ cookies: true }")).await;
    let logout = Recorder::on(&s, "logout");
    login_alice(&s).await;
    wait(s.logout(JsValue::UNDEFINED)).await.unwrap();
    assert_eq!(
        eval("document.cookie").as_string().as_deref(),
        Some(""),
        "the partitioned cookie is gone too"
    );
    let e = &logout.events()[0];
    let cleared: Vec<String> = js_sys::Array::from(&get(&get(e, "cleared"), "cookies"))
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    assert_eq!(cleared, vec!["chips".to_string(), "plain".to_string()]);
    assert_eq!(js_sys::Array::from(&get(e, "remaining")).length(), 0);
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_blocked_indexeddb_deletion_is_reported_as_blocked() {
    let _st = server("{}");
    // Another connection (think: another tab) keeps the database open and ignores
    // `versionchange`: the deletion is blocked.
    let p = eval(
        "new Promise((res, rej) => { const r = indexedDB.open('tessera-held-db', 1);
           r.onupgradeneeded = () => r.result.createObjectStore('s');
           r.onsuccess = () => { globalThis.__held = r.result; res(true); }; r.onerror = rej; })",
    );
    wait(p.into()).await.unwrap();
    let s = start(&opts("ct-idb", "{ indexedDB: ['tessera-held-db'] }")).await;
    let logout = Recorder::on(&s, "logout");
    login_alice(&s).await;
    wait(s.logout(JsValue::UNDEFINED)).await.unwrap();
    let e = &logout.events()[0];
    let idb = js_sys::Array::from(&get(&get(e, "cleared"), "indexedDB"));
    assert_eq!(idb.length(), 0, "not reported as deleted");
    let remaining = js_sys::Array::from(&get(e, "remaining"));
    assert_eq!(remaining.length(), 1);
    let r = remaining.get(0);
    assert_eq!(get(&r, "kind").as_string().as_deref(), Some("indexedDB"));
    assert_eq!(
        get(&r, "name").as_string().as_deref(),
        Some("tessera-held-db")
    );
    assert_eq!(get(&r, "why").as_string().as_deref(), Some("blocked"));
    eval("globalThis.__held.close()");
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn an_indexeddb_deletion_aborted_by_another_deleter_is_retried_and_cleared() {
    let _st = server("{}");
    // The logout's answer carries `Clear-Site-Data: "storage"`, and the browser's own deletion
    // of the origin's databases aborts the SDK's requests made meanwhile ("AbortError: The
    // connection was closed" in Chromium, seen in the DPoP e2e test) while the database goes
    // anyway. Injected here: the first deletion of `tessera-csd-db` is done by "someone else"
    // and reports an error; every deletion of `tessera-stuck-db` fails and deletes nothing.
    let p = eval(
        "Promise.all(['tessera-csd-db', 'tessera-stuck-db'].map((n) => new Promise((res, rej) => {
           const r = indexedDB.open(n, 1);
           r.onupgradeneeded = () => r.result.createObjectStore('s');
           r.onsuccess = () => { r.result.close(); res(true); }; r.onerror = rej; })))
         .then(() => {
           const real = IDBFactory.prototype.deleteDatabase;
           let other = true;
           globalThis.__realDelete = real;
           IDBFactory.prototype.deleteDatabase = function (n) {
             const q = {};
             if (n === 'tessera-stuck-db') setTimeout(() => q.onerror && q.onerror(), 0);
             else if (n === 'tessera-csd-db' && other) {
               other = false;
               real.call(this, n).onsuccess = () => q.onerror && q.onerror();
             } else return real.call(this, n);
             return q;
           };
         })",
    );
    wait(p.into()).await.unwrap();
    let s = start(&opts(
        "ct-idb-abort",
        "{ indexedDB: ['tessera-csd-db', 'tessera-stuck-db'] }",
    ))
    .await;
    let logout = Recorder::on(&s, "logout");
    login_alice(&s).await;
    wait(s.logout(JsValue::UNDEFINED)).await.unwrap();
    eval("IDBFactory.prototype.deleteDatabase = globalThis.__realDelete");
    let e = &logout.events()[0];
    let idb: Vec<String> = js_sys::Array::from(&get(&get(e, "cleared"), "indexedDB"))
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    assert_eq!(idb, vec!["tessera-csd-db".to_string()], "gone, so cleared");
    let remaining = js_sys::Array::from(&get(e, "remaining"));
    assert_eq!(remaining.length(), 1, "only the one still there");
    let r = remaining.get(0);
    assert_eq!(
        get(&r, "name").as_string().as_deref(),
        Some("tessera-stuck-db")
    );
    assert_eq!(get(&r, "why").as_string().as_deref(), Some("error"));
    let dbs =
        wait(eval("indexedDB.databases().then((d) => d.map((x) => x.name).join(','))").into())
            .await
            .unwrap()
            .as_string()
            .unwrap();
    assert!(
        !dbs.contains("tessera-csd-db") && dbs.contains("tessera-stuck-db"),
        "the report matches the browser: {dbs}"
    );
    wait(eval("new Promise((res) => { indexedDB.deleteDatabase('tessera-stuck-db').onsuccess = res; })").into())
        .await
        .unwrap();
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_cache_deleted_by_someone_else_during_the_wipe_is_cleared() {
    let _st = server("{}");
    // The logout answer's Clear-Site-Data may delete Cache Storage before the SDK does: its
    // `caches.delete` then finds nothing (false), yet the cache that was there is gone.
    // Injected here: the first deletion of `tessera-csd-cache` is done by "someone else".
    // `tessera-never-cache` never existed: neither cleared nor remaining.
    let p = eval(
        "caches.open('tessera-csd-cache').then((c) => c.put('/x', new Response('x'))).then(() => {
           const real = CacheStorage.prototype.delete;
           let other = true;
           globalThis.__realCacheDelete = real;
           CacheStorage.prototype.delete = function (n) {
             if (n !== 'tessera-csd-cache' || !other) return real.call(this, n);
             other = false;
             return real.call(this, n).then(() => false);
           };
         })",
    );
    wait(p.into()).await.unwrap();
    let s = start(&opts(
        "ct-cache-csd",
        "{ caches: ['tessera-csd-cache', 'tessera-never-cache'] }",
    ))
    .await;
    let logout = Recorder::on(&s, "logout");
    login_alice(&s).await;
    wait(s.logout(JsValue::UNDEFINED)).await.unwrap();
    eval("CacheStorage.prototype.delete = globalThis.__realCacheDelete");
    let e = &logout.events()[0];
    let cs: Vec<String> = js_sys::Array::from(&get(&get(e, "cleared"), "caches"))
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    assert_eq!(
        cs,
        vec!["tessera-csd-cache".to_string()],
        "it was there and is gone"
    );
    assert_eq!(js_sys::Array::from(&get(e, "remaining")).length(), 0);
    let has = wait(eval("caches.has('tessera-csd-cache')").into())
        .await
        .unwrap();
    assert_eq!(has.as_bool(), Some(false));
    s.dispose();
    restore_fetch();
}
