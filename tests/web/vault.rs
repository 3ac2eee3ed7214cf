//! The sealed vault in a real browser: a persisted session is restored; every tamper case
//! (flipped bit in ciphertext, nonce, tag or associated data; truncation; wrong version;
//! garbage) is wiped and reported as an `error` event, never used.

use crate::support::*;
use tessera::vault::{base64url_decode, base64url_encode};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

fn opts(ch: &str, storage: &str) -> String {
    let mut o = String::from("{ resume: false, storage: '");
    o.push_str(storage);
    o.push_str("', channel: '");
    o.push_str(ch);
    o.push_str("' }");
    o
}

fn local() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

fn record_key(ch: &str) -> String {
    let mut k = String::from("tessera:token:");
    k.push_str(ch);
    k
}

/// Logs in with persistence and returns the stored record text.
async fn persisted(ch: &str) -> String {
    let s = start(&opts(ch, "local")).await;
    login_alice(&s).await;
    sleep(50).await;
    s.dispose();
    local()
        .get_item(&record_key(ch))
        .unwrap()
        .expect("record written")
}

#[wasm_bindgen_test]
async fn record_is_sealed_and_restored() {
    let st = server("{}");
    let ch = channel("vault-rt");
    let rec = persisted(&ch).await;
    assert!(rec.starts_with("s."), "sealed with the server-held key");
    assert!(!rec.contains("at-1"), "the token is not readable at rest");
    let s = start(&opts(&ch, "local")).await;
    assert_eq!(s.state(), "active");
    let res = wait(s.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(get(&res, "status").as_f64(), Some(200.0));
    assert_eq!(
        calls(&st, "/auth/vault-key").len(),
        2,
        "key fetched for seal and for open"
    );
    s.dispose();
    restore_fetch();
}

async fn tampered(ch: &str, record: &str, code: &str) {
    local().set_item(&record_key(ch), record).unwrap();
    let s = start(&opts(ch, "local")).await;
    let errors = Recorder::on(&s, "error");
    assert!(
        until(500, || errors.len() > 0).await,
        "error event for {code}"
    );
    assert_eq!(errors.codes(), vec![code.to_string()]);
    assert_eq!(s.state(), "anonymous", "a tampered record is never used");
    assert_eq!(
        local().get_item(&record_key(ch)).unwrap(),
        None,
        "and it is wiped"
    );
    s.dispose();
}

/// A record is `<s|c>.<kid>.<sealed>`: the split after the key id.
fn split(rec: &str) -> (&str, &str) {
    rec.split_at(rec.rfind('.').unwrap() + 1)
}

fn flip(rec: &str, at: usize) -> String {
    let (prefix, body) = split(rec);
    let mut bytes = base64url_decode(body).unwrap();
    let i = if at >= 1000 {
        bytes.len() - (at - 1000)
    } else {
        at
    };
    bytes[i] ^= 0x10;
    let mut out = String::from(prefix);
    out.push_str(&base64url_encode(&bytes));
    out
}

#[wasm_bindgen_test]
async fn every_tamper_case_is_wiped_and_reported() {
    let _st = server("{}");
    let ch = channel("vault-t");
    let rec = persisted(&ch).await;
    tampered(&ch, &flip(&rec, 3), "vault_tampered").await; // nonce
    tampered(&ch, &flip(&rec, 20), "vault_tampered").await; // ciphertext
    tampered(&ch, &flip(&rec, 1001), "vault_tampered").await; // tag (last byte)
    tampered(&ch, &flip(&rec, 0), "vault_version").await; // version byte
    let (prefix, body) = split(&rec);
    let bytes = base64url_decode(body).unwrap();
    let mut cut = String::from(prefix);
    cut.push_str(&base64url_encode(&bytes[..20]));
    tampered(&ch, &cut, "vault_truncated").await;
    tampered(&ch, "s.{not base64}", "vault_encoding").await;
    // Associated data: the same record under another storage key (another channel).
    let other = channel("vault-other");
    tampered(&other, &rec, "vault_tampered").await;
    // The original still opens: nothing above touched it.
    local().set_item(&record_key(&ch), &rec).unwrap();
    let s = start(&opts(&ch, "local")).await;
    assert_eq!(s.state(), "active");
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_revoked_session_leaves_the_record_unreadable() {
    let _st = server("{}");
    let ch = channel("vault-rev");
    let _rec = persisted(&ch).await;
    // The server destroyed the session's vault key (revocation): crypto-shredded.
    eval("globalThis.__srv.cfg.vaultKey = null");
    let s = start(&opts(&ch, "local")).await;
    let errors = Recorder::on(&s, "error");
    assert!(until(500, || errors.len() > 0).await);
    assert_eq!(errors.codes(), vec!["vault_locked".to_string()]);
    assert_eq!(s.state(), "anonymous");
    assert_eq!(local().get_item(&record_key(&ch)).unwrap(), None);
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_different_server_key_fails_authentication() {
    let _st = server("{}");
    let ch = channel("vault-key");
    let _rec = persisted(&ch).await;
    eval("globalThis.__srv.cfg.vaultKey = 'HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4'");
    let s = start(&opts(&ch, "local")).await;
    let errors = Recorder::on(&s, "error");
    assert!(until(500, || errors.len() > 0).await);
    assert_eq!(errors.codes(), vec!["vault_tampered".to_string()]);
    assert_eq!(s.state(), "anonymous");
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn token_mode_uses_the_session_lifetime_key_and_seals_the_refresh_token() {
    let st = server("{ routes: { '/auth/login': (req, st, json, issue) => json(200, Object.assign(issue(), { refresh_token: 'rt-secret' })) } }");
    let ch = channel("vault-tok");
    let mut o = String::from("{ resume: false, mode: 'token', storage: 'session', channel: '");
    o.push_str(&ch);
    o.push_str("' }");
    let s = start(&o).await;
    login_alice(&s).await;
    sleep(50).await;
    s.dispose();
    let ss = web_sys::window()
        .unwrap()
        .session_storage()
        .unwrap()
        .unwrap();
    let rec = ss.get_item(&record_key(&ch)).unwrap().expect("record");
    assert!(rec.starts_with("c."), "fallback key");
    assert!(!rec.contains("rt-secret"));
    assert_eq!(
        calls(&st, "/auth/vault-key").len(),
        0,
        "token mode never asks the cookie endpoint"
    );
    let s = start(&o).await;
    assert_eq!(s.state(), "active");
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_tampered_record_is_not_silently_resumed_from_the_cookie() {
    let st = server("{}");
    let ch = channel("vault-noresume");
    let rec = persisted(&ch).await;
    local().set_item(&record_key(&ch), &flip(&rec, 20)).unwrap();
    let mut o = String::from("{ storage: 'local', channel: '");
    o.push_str(&ch);
    o.push_str("' }");
    let s = start(&o).await;
    assert_eq!(s.state(), "anonymous", "the user signs in again");
    assert_eq!(
        count(&st, "refreshCount"),
        0,
        "no silent resume after a tampered record"
    );
    // An intact record (or none) still resumes as usual.
    s.dispose();
    local().remove_item(&record_key(&ch)).unwrap();
    let s = start(&o).await;
    assert_eq!(s.state(), "active");
    assert_eq!(count(&st, "refreshCount"), 1);
    s.dispose();
    restore_fetch();
}

/// The browser seals with WebCrypto, the native path with the `aes-gcm` crate: the record
/// format is one, so each opens what the other sealed.
#[wasm_bindgen_test]
async fn webcrypto_and_native_records_interoperate() {
    use tessera::vault::{open, seal, VaultKey};
    let _st = server("{}");
    let ch = channel("vault-interop");
    let rec = persisted(&ch).await;
    let key = VaultKey::from_base64url("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").unwrap();
    let origin = web_sys::window().unwrap().location().origin().unwrap();
    // The associated data names the record's session: storage key `.` key id.
    let (prefix, body) = split(&rec);
    let mut name = record_key(&ch);
    name.push_str(&prefix[1..prefix.len() - 1]);
    let plain = open(&key, &origin, &name, body).expect("native open of a WebCrypto record");
    let Ok(record) = tessera::core::TokenRecord::decode(&plain) else {
        panic!("not a token record")
    };
    assert_eq!(record.access_token, "at-1");
    // Re-seal natively under a fresh nonce; the browser restores it.
    let mut resealed = String::from(prefix);
    resealed.push_str(&seal(&key, &[7; 12], &origin, &name, &plain));
    assert_ne!(resealed, rec);
    local().set_item(&record_key(&ch), &resealed).unwrap();
    let s = start(&opts(&ch, "local")).await;
    assert_eq!(
        s.state(),
        "active",
        "WebCrypto opens the natively sealed record"
    );
    let res = wait(s.fetch("/api/me".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(get(&res, "status").as_f64(), Some(200.0));
    s.dispose();
    restore_fetch();
}
