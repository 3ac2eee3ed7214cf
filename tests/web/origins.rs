//! Tokens only where they belong: the bearer goes to `apiOrigins` only
//! (default: the page's and `baseUrl`'s origin); a 401 from anywhere else, or with another
//! challenge than `invalid_token`, refreshes nothing; the storage-event fallback of the bus
//! writes no payload; no secret is reachable through the session object.

use crate::support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

fn opts(ch: &str, extra: &str) -> String {
    let mut o = String::from("{ resume: false, ");
    o.push_str(extra);
    o.push_str(" channel: '");
    o.push_str(&channel(ch));
    o.push_str("' }");
    o
}

/// A route on any origin: records the Authorization header it saw, answers 401.
const THIRD_PARTY: &str = "{ routes: { '/collect': (req, st, json) => {
    st.thirdParty = (st.thirdParty || []).concat([req.headers.get('authorization')]);
    return json(401, { code: 'nope' }, { 'WWW-Authenticate': 'Bearer error=\"invalid_token\"' });
  } } }";

fn third_party_auth(st: &JsValue) -> Vec<JsValue> {
    js_sys::Array::from(&get(st, "thirdParty")).iter().collect()
}

#[wasm_bindgen_test]
async fn a_third_party_origin_gets_no_bearer_and_its_401_refreshes_nothing() {
    let st = server(THIRD_PARTY);
    let s = start(&opts("orig-a", "")).await;
    login_alice(&s).await;
    let res = wait(s.fetch(
        "https://third-party.example/collect".into(),
        JsValue::UNDEFINED,
    ))
    .await
    .unwrap();
    assert_eq!(get(&res, "status").as_f64(), Some(401.0));
    let seen = third_party_auth(&st);
    assert_eq!(seen.len(), 1, "sent once, no retry");
    assert!(
        seen[0].is_null(),
        "no Authorization header to another origin: {:?}",
        seen[0]
    );
    assert_eq!(
        count(&st, "refreshCount"),
        0,
        "a foreign 401 rotates nothing"
    );
    // The page's own origin still gets it.
    let res = wait(s.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(get(&res, "status").as_f64(), Some(200.0));
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn api_origins_names_the_origins_that_get_the_bearer() {
    let st = server(THIRD_PARTY);
    let s = start(&opts(
        "orig-b",
        "apiOrigins: ['https://third-party.example'],",
    ))
    .await;
    login_alice(&s).await;
    let _ = wait(s.fetch(
        "https://third-party.example/collect".into(),
        JsValue::UNDEFINED,
    ))
    .await
    .unwrap();
    let seen = third_party_auth(&st);
    assert_eq!(
        seen[0].as_string().as_deref(),
        Some("Bearer at-1"),
        "a listed origin gets the bearer"
    );
    assert_eq!(
        count(&st, "refreshCount"),
        1,
        "and its invalid_token 401 refreshes once"
    );
    assert_eq!(seen.len(), 2, "then one retry");
    // The page's origin is not listed any more: no bearer there.
    let _ = wait(s.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    let api = calls(&st, "/api/me");
    assert!(
        get(&api[0], "auth").is_null(),
        "an explicit list replaces the default"
    );
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_401_with_another_challenge_refreshes_nothing() {
    let st = server(
        "{ routes: { '/api/scoped': (req, st, json) => json(401, { code: 'scope' },
             { 'WWW-Authenticate': 'Bearer error=\"insufficient_scope\"' }) } }",
    );
    let s = start(&opts("orig-c", "")).await;
    login_alice(&s).await;
    let res = wait(s.fetch("/api/scoped".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(get(&res, "status").as_f64(), Some(401.0));
    assert_eq!(
        count(&st, "refreshCount"),
        0,
        "not an invalid token: no refresh"
    );
    assert_eq!(calls(&st, "/api/scoped").len(), 1, "and no retry");
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn no_secret_is_reachable_through_the_session_object() {
    let _st = server("{ vaultKey: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8' }");
    let s = start(&opts("orig-d", "storage: 'session',")).await;
    login_alice(&s).await;
    let _ = wait(s.login(obj("{username: 'bob', password: 'tessera-demo'}"))).await;
    // Walk every property reachable from the session object (own, prototype getters
    // excluded), three levels deep: no token, no key, no MFA token, no engine handle.
    let found = with(
        &s,
        "(s) => { const hits = []; const seen = new Set();
           const walk = (o, path, depth) => {
             if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o) || depth > 3) return;
             seen.add(o);
             for (const k of Reflect.ownKeys(o)) {
               let v; try { v = o[k]; } catch (_) { continue; }
               const p = path + '.' + String(k);
               if (typeof v === 'string' && (/^at-\\d/.test(v) || v === 'mfa-1')) hits.push(p);
               if (v instanceof Uint8Array && v.length === 32) hits.push(p);
               if (v && typeof v.token === 'function') hits.push(p + ' (engine)');
               walk(v, p, depth + 1);
             }
           };
           walk(s, 'session', 0);
           return hits.join(', '); }",
    );
    assert_eq!(
        found.as_string().unwrap(),
        "",
        "secrets reachable from the session object"
    );
    s.dispose();
    restore_fetch();
}
