//! Entry points for the fuzz targets in `server/fuzz/` and the corpus replay test
//! (`server/tests/fuzz_corpus.rs`). Each takes arbitrary bytes and drives one family of
//! parsers that sees attacker-controlled input (network, cookies, headers, stored records);
//! none may panic. Not part of the public API.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum_extra::extract::cookie::CookieJar;

use crate::extract::{network_of, Bearer, JsonBody, Mode, RefreshBody, REFRESH_COOKIE};
use crate::jwt::{AccessClaims, KeySet, StoredKey};
use crate::master_key::MasterKey;
use crate::routes::auth::{LoginRequest, MfaRequest};
use crate::routes::introspect::{form_token, IntrospectRequest};
use crate::secret::{b64, RefreshToken, TokenKey};

/// Fixed "now" of the fuzz entry points (deterministic runs).
const NOW: i64 = 1_800_000_000;

fn keyset() -> &'static KeySet {
    static KS: OnceLock<KeySet> = OnceLock::new();
    KS.get_or_init(|| {
        let key = StoredKey {
            kid: "fuzz".into(),
            seed: b64(&[7u8; 32]),
            created_at: 1,
        };
        KeySet::new(vec![key], "tessera-fuzz", "tessera-fuzz-aud", 5).unwrap_or_else(|e| {
            unreachable!("fixed fuzz key set is valid: {e}");
        })
    })
}

/// Splits `data` at the first `\n` into (selector line, rest).
fn split_first(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// JWT access tokens: `verify` on the input as a token; and, when the input is JSON claims,
/// sign them and verify the result (claim validation: exp/nbf/iat, issuer, audience,
/// duplicate members), checking a verified token's claims equal the signed ones.
pub fn jwt(data: &[u8]) {
    let ks = keyset();
    let text = String::from_utf8_lossy(data);
    let _ = ks.verify(&text, NOW);
    if let Ok(claims) = serde_json::from_slice::<AccessClaims>(data) {
        if let Ok(token) = ks.sign(&claims) {
            if let Ok(back) = ks.verify(&token, NOW) {
                assert_eq!(
                    back.sid, claims.sid,
                    "verified claims differ from signed ones"
                );
                assert_eq!(
                    back.sub, claims.sub,
                    "verified claims differ from signed ones"
                );
            }
            // any single-byte change of a signed token must not verify to other claims
            let mut bytes = token.into_bytes();
            if !bytes.is_empty() {
                let i = data.len() % bytes.len();
                bytes[i] ^= 0x01;
                if let Ok(t) = String::from_utf8(bytes) {
                    if let Ok(back) = ks.verify(&t, NOW) {
                        assert_eq!(back.sid, claims.sid, "tampered token verified");
                    }
                }
            }
        }
    }
}

/// Request headers: the input is `name: value` lines (first line: the peer address). Runs
/// the Origin/CSRF guard, bearer and cookie parsing, `X-Forwarded-For` resolution with
/// trusted proxies, and the anomaly network of the result.
pub fn headers(data: &[u8]) {
    let (peer_line, rest) = split_first(data);
    let peer = std::str::from_utf8(peer_line)
        .ok()
        .and_then(|s| s.trim().parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    let mut map = HeaderMap::new();
    for line in rest.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    let allowed = ["https://app.example", "http://127.0.0.1:8080"];
    let _ = crate::csrf::check_origins(allowed.iter().copied(), &map);
    let _ = Bearer::from_headers(&map);
    let jar = CookieJar::from_headers(&map);
    let _ = jar.get(REFRESH_COOKIE).map(|c| c.value().len());
    let proxies = crate::net::parse_proxies(&["10.0.0.0/8", "::1", "fd00::/8"]).unwrap_or_default();
    let xff = map
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let ip = crate::net::client_ip(peer, xff, &proxies);
    let _ = network_of(&ip.to_string());
    // the proxy list parser itself sees operator input
    if let Ok(s) = std::str::from_utf8(rest) {
        let entries: Vec<&str> = s.split(',').take(16).collect();
        let _ = crate::net::parse_proxies(&entries);
        let _ = network_of(s);
    }
}

/// JSON (and form) bodies of every route: login, MFA, refresh, introspection; and the login
/// `mode` member.
pub fn json_bodies(data: &[u8]) {
    let _ = JsonBody::<LoginRequest>::parse(data);
    let _ = JsonBody::<MfaRequest>::parse(data);
    if let Ok(JsonBody(b)) = JsonBody::<RefreshBody>::parse(data) {
        let _ = b.refresh_token.map(|t| t.len());
    }
    let _ = JsonBody::<IntrospectRequest>::parse(data).map(|b| b.0.token.len());
    let _ = form_token(data);
    let _ = Mode::parse(std::str::from_utf8(data).ok());
    let _ = JsonBody::<serde_json::Value>::parse(data);
}

/// Store record decoders: refresh tokens, sealed values (vault keys, grace successors),
/// master key files, session cursors, TOTP secrets, Redis session hashes and short-lived
/// values, and SQLite session rows with arbitrary column types.
pub fn store_records(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let token_key = TokenKey::from_bytes([3u8; 32]);
    let _ = RefreshToken::decode(&text, &token_key);
    let mk = MasterKey::from_bytes([5u8; 32]);
    let _ = mk.open("vault", "sid", data);
    let _ = mk.open_successor(&[9u8; 32], data);
    let _ = crate::master_key::parse_key(&text);
    let _ = crate::store::parse_cursor(&text);
    let _ = crate::totp::base32_decode(&text);
    if let Ok(t) = crate::totp::Totp::from_base32(&text) {
        let _ = t.verify("123456", NOW);
    }
    let _ = crate::store::redis::unpack_ephemeral(Some(text.to_string()), NOW);
    // a Redis session hash: `field=value` lines
    let mut m = HashMap::new();
    for line in text.split('\n') {
        if let Some((k, v)) = line.split_once('=') {
            m.insert(k.to_string(), v.to_string());
        }
    }
    let _ = crate::store::redis::session_from_hash("sid", &m);
    sqlite_row(data);
}

/// One SQLite session row whose 15 columns take types and values from `data`.
fn sqlite_row(data: &[u8]) {
    use rusqlite::types::Value;
    thread_local! {
        static DB: Option<rusqlite::Connection> = rusqlite::Connection::open_in_memory()
            .ok()
            .and_then(|mut c| crate::store::sqlite::migrate(&mut c).ok().map(|_| c));
    }
    let mut values: Vec<Value> = Vec::with_capacity(15);
    let mut chunks = data.split(|b| *b == 0xff);
    for _ in 0..15 {
        let c = chunks.next().unwrap_or(&[]);
        let v = match c.first() {
            None => Value::Null,
            Some(0) => Value::Integer(
                c[1..]
                    .iter()
                    .fold(0i64, |a, b| a.wrapping_mul(256).wrapping_add(i64::from(*b))),
            ),
            Some(1) => Value::Real(c.len() as f64 * 1.5),
            Some(2) => Value::Blob(c[1..].to_vec()),
            Some(_) => Value::Text(String::from_utf8_lossy(&c[1..]).into_owned()),
        };
        values.push(v);
    }
    DB.with(|db| {
        let Some(c) = db else { return };
        let _ = c.execute("DELETE FROM sessions", []);
        let inserted = c.execute(
            "INSERT INTO sessions (sid, user_id, username, created_at, last_seen, expires_at, mfa, \
             user_agent, address, revoked_at, revoke_reason, vault_key, generation, prev_rotated_at, \
             prev_sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            rusqlite::params_from_iter(values.iter()),
        );
        if inserted.is_ok() {
            let sid: Option<String> = c
                .query_row("SELECT sid FROM sessions LIMIT 1", [], |r| r.get(0))
                .ok();
            if let Some(sid) = sid {
                let _ = crate::store::sqlite::load_session(c, &sid);
            }
        }
    });
}

/// DPoP proofs: [`crate::dpop::Checker::check`] on the input as a proof; and, when the input
/// is a JSON object, a proof with it as claims (and one with it as header) signed by a fixed
/// Ed25519 key. A proof that passes must name that key.
pub fn dpop_proofs(data: &[u8]) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use ed25519_dalek::Signer as _;
    let checker = crate::dpop::Checker::for_resource(
        vec!["https://api.fuzz".into()],
        crate::dpop::DpopMode::Optional,
        60,
    );
    let check = |proof: &str| checker.check(proof, "GET", Some("api.fuzz"), "/r", NOW);
    let _ = check(&String::from_utf8_lossy(data));
    if serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(data).is_err() {
        return;
    }
    let key = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]);
    let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    let header = format!(
        r#"{{"typ":"dpop+jwt","alg":"EdDSA","jwk":{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}}}"#
    );
    let claims = format!(r#"{{"jti":"f","htm":"GET","htu":"https://api.fuzz/r","iat":{NOW}}}"#);
    for (h, c) in [(header.as_bytes(), data), (data, claims.as_bytes())] {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(h),
            URL_SAFE_NO_PAD.encode(c)
        );
        let sig = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).to_bytes());
        if let Ok(p) = check(&format!("{input}.{sig}")) {
            let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
            let expected =
                URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(canonical));
            assert_eq!(p.jkt, expected, "a passing proof names another key");
        }
    }
}
