//! Logout cleanup in a real browser: cookies on several paths, IndexedDB databases, Cache
//! Storage entries and web storage are gone after logout, and the `logout` event says so.

use crate::support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

#[wasm_bindgen_test]
async fn cookies_idb_caches_and_storage_are_wiped() {
    empty_cookie_jar();
    let _st = server("{}");
    let mut o = String::from(
        "{ resume: false, storage: 'local', cleanup: { localStorage: true, sessionStorage: true, cookies: true,
           indexedDB: ['tessera-test-db'], caches: true }, channel: '",
    );
    o.push_str(&channel("clean"));
    o.push_str("' }");
    eval(
        "document.cookie = 'c_root=1; path=/';
         document.cookie = 'c_host=4; path=/; domain=' + location.hostname;
         localStorage.setItem('app:x', '1'); sessionStorage.setItem('app:y', '2');",
    );
    let before = eval("document.cookie").as_string().unwrap();
    for c in ["c_root", "c_host"] {
        assert!(before.contains(c), "{c} set: {before}");
    }
    let p = eval(
        "new Promise((res, rej) => { const r = indexedDB.open('tessera-test-db', 1);
           r.onupgradeneeded = () => r.result.createObjectStore('s');
           r.onsuccess = () => { r.result.close(); res(true); }; r.onerror = rej; })
         .then(() => caches.open('tessera-test-cache')).then((c) => c.put('/x', new Response('x')))",
    );
    wait(p.into()).await.unwrap();

    let s = start(&o).await;
    let logout = Recorder::on(&s, "logout");
    login_alice(&s).await;
    wait(s.logout(JsValue::UNDEFINED)).await.unwrap();
    assert_eq!(logout.len(), 1);

    let after = eval("document.cookie").as_string().unwrap();
    assert_eq!(after, "", "every cookie expired");
    assert_eq!(eval("localStorage.getItem('app:x')"), JsValue::NULL);
    assert_eq!(eval("sessionStorage.getItem('app:y')"), JsValue::NULL);
    let dbs =
        wait(eval("indexedDB.databases().then((d) => d.map((x) => x.name).join(','))").into())
            .await
            .unwrap();
    assert!(
        !dbs.as_string().unwrap().contains("tessera-test-db"),
        "database deleted: {dbs:?}"
    );
    let has = wait(eval("caches.has('tessera-test-cache')").into())
        .await
        .unwrap();
    assert_eq!(has.as_bool(), Some(false), "cache deleted");

    let cleared = get(&logout.events()[0], "cleared");
    assert_eq!(
        get(&cleared, "localStorage").as_string().as_deref(),
        Some("all")
    );
    let cookies = js_sys::Array::from(&get(&cleared, "cookies"));
    assert_eq!(cookies.length(), 2);
    let idb = js_sys::Array::from(&get(&cleared, "indexedDB"));
    assert_eq!(idb.get(0).as_string().as_deref(), Some("tessera-test-db"));
    let cs = js_sys::Array::from(&get(&cleared, "caches"));
    assert!(cs
        .iter()
        .any(|c| c.as_string().as_deref() == Some("tessera-test-cache")));
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn default_cleanup_removes_only_the_sdk_records() {
    let _st = server("{}");
    let ch = channel("clean-min");
    let mut o = String::from("{ resume: false, storage: 'local', channel: '");
    o.push_str(&ch);
    o.push_str("' }");
    eval("localStorage.setItem('app:keep', '1'); document.cookie = 'keep_me=1; path=/'");
    let s = start(&o).await;
    let logout = Recorder::on(&s, "logout");
    login_alice(&s).await;
    let mut key = String::from("localStorage.getItem('tessera:token:");
    key.push_str(&ch);
    key.push_str("')");
    assert!(eval(&key).is_string(), "record persisted");
    wait(s.logout(JsValue::UNDEFINED)).await.unwrap();
    assert_eq!(eval(&key), JsValue::NULL, "sealed record wiped");
    assert_eq!(
        eval("localStorage.getItem('app:keep')")
            .as_string()
            .as_deref(),
        Some("1")
    );
    assert!(eval("document.cookie")
        .as_string()
        .unwrap()
        .contains("keep_me"));
    let mut shared = String::from("localStorage.getItem('tessera:shared:");
    shared.push_str(&ch);
    shared.push_str("')");
    assert!(
        eval(&shared).is_string(),
        "the logout epoch survives the wipe"
    );
    assert_eq!(logout.len(), 1);
    eval("localStorage.removeItem('app:keep'); document.cookie = 'keep_me=; path=/; max-age=0'");
    s.dispose();
    restore_fetch();
}

/// Cookies set on several path prefixes and on the host's domain, seen from a document at a
/// deep path (a same-origin frame: `history.pushState` does not move Chrome's cookie URL).
#[wasm_bindgen_test]
async fn cookies_on_every_path_prefix_and_domain_are_expired() {
    empty_cookie_jar();
    let frame = eval(
        "new Promise((res) => { const f = document.createElement('iframe');
           f.src = '/deep/er/page'; f.onload = () => res(f.contentWindow); document.body.appendChild(f); })",
    );
    let win = wait(frame.into()).await.unwrap();
    let doc: web_sys::HtmlDocument = wasm_bindgen::JsCast::unchecked_into(get(&win, "document"));
    let loc: web_sys::Location = wasm_bindgen::JsCast::unchecked_into(get(&win, "location"));
    for c in [
        "p_root=1; path=/",
        "p_deep=1; path=/deep",
        "p_deep_slash=1; path=/deep/",
        "p_deeper=1; path=/deep/er",
        "p_page=1; path=/deep/er/page",
        "p_default=1",
    ] {
        doc.set_cookie(c).unwrap();
    }
    let mut host = String::from("p_domain=1; path=/deep; domain=");
    host.push_str(&loc.hostname().unwrap());
    doc.set_cookie(&host).unwrap();
    let before = doc.cookie().unwrap();
    for c in [
        "p_root",
        "p_deep",
        "p_deep_slash",
        "p_deeper",
        "p_page",
        "p_default",
        "p_domain",
    ] {
        assert!(before.contains(c), "{c} visible at the deep path: {before}");
    }
    let names = tessera::__wipe_cookies_in(&doc, &loc);
    assert_eq!(names.length(), 7);
    assert_eq!(
        doc.cookie().unwrap(),
        "",
        "every cookie expired on its own path and domain"
    );
    assert_eq!(eval("document.cookie").as_string().as_deref(), Some(""));
}

/// Offline at logout: the server call fails, the local wipe still happens.
#[wasm_bindgen_test]
async fn offline_logout_still_wipes() {
    let st =
        server("{ routes: { '/auth/logout': () => { throw new TypeError('Failed to fetch'); } } }");
    let ch = channel("clean-offline");
    let mut o = String::from("{ resume: false, storage: 'local', channel: '");
    o.push_str(&ch);
    o.push_str("' }");
    let s = start(&o).await;
    let logout = Recorder::on(&s, "logout");
    login_alice(&s).await;
    let mut key = String::from("localStorage.getItem('tessera:token:");
    key.push_str(&ch);
    key.push_str("')");
    assert!(eval(&key).is_string());
    wait(s.logout(JsValue::UNDEFINED)).await.unwrap();
    assert_eq!(calls(&st, "/auth/logout").len(), 1, "revoke attempted");
    assert_eq!(s.state(), "logged-out");
    assert_eq!(
        eval(&key),
        JsValue::NULL,
        "and the local wipe happened anyway"
    );
    assert_eq!(logout.len(), 1);
    s.dispose();
    restore_fetch();
}
