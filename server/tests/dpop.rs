//! DPoP (RFC 9449) end to end through the router: every proof check of §4.3 with a proof
//! forged to fail it, sessions bound at login / MFA / refresh, a stolen bound refresh token
//! made useless, resource access with `Authorization: DPoP`, server nonces, the modes, and
//! a proof replayed on a second instance sharing the Redis store.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{Harness, Resp, UA};
use serde_json::{json, Value};
use sha2::Sha256;
use tessera_server::dpop::DpopMode;
use tessera_server::Config;

use common::dpop::{ath, b64, claims_of, Key, ORIGIN};

async fn login_with(h: &Harness, headers: &[(&str, &str)]) -> Resp {
    h.post(
        "/auth/login",
        json!({"username": "alice", "password": "tessera-demo"}),
        headers,
    )
    .await
}

/// alice signs in with a proof from `key`: (access token, refresh token, session id).
async fn bound_login(h: &Harness, key: &Key) -> (String, String, String) {
    let p = key.proof("POST", "/auth/login", h.clock.now_secs(), json!({}));
    let r = login_with(h, &[("dpop", &p)]).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let j = r.json();
    (
        j["access_token"].as_str().expect("token").to_string(),
        r.cookie_token().expect("cookie"),
        j["session"]["id"].as_str().expect("sid").to_string(),
    )
}

async fn refresh_with(h: &Harness, rt: &str, proof: Option<&str>) -> Resp {
    let cookie = format!("__Host-tessera_rt={rt}");
    let mut headers = vec![("cookie", cookie.as_str())];
    if let Some(p) = proof {
        headers.push(("dpop", p));
    }
    h.post("/auth/refresh", Value::Null, &headers).await
}

async fn me(h: &Harness, authorization: &str, proof: Option<&str>) -> Resp {
    let mut b = Request::get("/api/me")
        .header("user-agent", UA)
        .header("host", "127.0.0.1:8080")
        .header("authorization", authorization);
    if let Some(p) = proof {
        b = b.header("dpop", p);
    }
    h.call(b.body(Body::empty()).expect("request")).await
}

/// The `error` of a `WWW-Authenticate: DPoP` challenge, asserting the scheme and `algs`.
fn challenge(r: &Resp) -> String {
    let w = r.header("www-authenticate").expect("WWW-Authenticate");
    assert!(w.starts_with("DPoP "), "{w}");
    assert!(w.contains(r#"algs="ES256 EdDSA""#), "{w}");
    w.split("error=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("error")
        .to_string()
}

trait NowSecs {
    fn now_secs(&self) -> i64;
}
impl NowSecs for tessera_server::clock::ManualClock {
    fn now_secs(&self) -> i64 {
        tessera_server::clock::Clock::now(self)
    }
}

#[tokio::test]
async fn a_login_with_a_proof_binds_the_session_to_the_key_for_both_algorithms() {
    let h = Harness::new().await;
    for key in [Key::es256(), Key::ed25519()] {
        let p = key.proof("POST", "/auth/login", h.clock.now_secs(), json!({}));
        let r = login_with(&h, &[("dpop", &p)]).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        let j = r.json();
        assert_eq!(j["token_type"], "DPoP", "{}", key.alg());
        let at = j["access_token"].as_str().expect("token");
        assert_eq!(claims_of(at)["cnf"]["jkt"], key.jkt(), "{}", key.alg());
        let i = h.introspect(at).await;
        assert_eq!(i["active"], true);
        assert_eq!(i["token_type"], "DPoP");
        assert_eq!(i["cnf"]["jkt"], key.jkt());
    }
    // without a proof: a bearer session, as before
    let r = login_with(&h, &[]).await;
    assert_eq!(r.json()["token_type"], "Bearer");
    let at = r.json()["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert!(claims_of(&at).get("cnf").is_none());
    assert!(h.introspect(&at).await.get("cnf").is_none());
}

/// One proof forged per check of RFC 9449 §4.3; each must be refused with
/// `invalid_dpop_proof` before any credential is looked at, and the untouched proof passes.
#[tokio::test]
async fn each_check_of_rfc_9449_section_4_3_refuses_a_proof_forged_to_fail_it() {
    // the app's origin configured, as in production: htu must name it, scheme included
    let mut cfg = Config::for_tests();
    cfg.allowed_origins = vec![ORIGIN.into()];
    let h = Harness::with_config(cfg).await;
    let key = Key::es256();
    let other = Key::es256();
    let now = h.clock.now_secs();
    let good_claims = || key.claims("POST", "/auth/login", now);
    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = good_claims();
        f(c.as_object_mut().expect("object"));
        c
    };
    let header_with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut hd = key.header();
        f(hd.as_object_mut().expect("object"));
        hd
    };
    let mut private_jwk = key.jwk();
    private_jwk["d"] = json!(b64(&[1; 32]));
    let valid = key.jws(&key.header(), &good_claims());
    let unsigned = {
        let hd = json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()});
        format!(
            "{}.{}.",
            b64(hd.to_string().as_bytes()),
            b64(good_claims().to_string().as_bytes())
        )
    };
    let hmac_signed = {
        use hmac::Mac as _;
        let hd =
            json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": b64(b"secret")}});
        let input = format!(
            "{}.{}",
            b64(hd.to_string().as_bytes()),
            b64(good_claims().to_string().as_bytes())
        );
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(b"secret").expect("key");
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(&mac.finalize().into_bytes()))
    };
    let two_parts = valid.rsplit_once('.').expect("jws").0.to_string();
    // one bit of the signature flipped (not its last base64 character, which also carries
    // padding bits)
    let altered = {
        let (input, sig) = valid.rsplit_once('.').expect("jws");
        let mut sig = URL_SAFE_NO_PAD.decode(sig).expect("b64");
        sig[10] ^= 0x01;
        format!("{input}.{}", b64(&sig))
    };
    let cases: Vec<(&str, String)> = vec![
        ("(1) not a single well-formed JWT", two_parts),
        ("(1) not a JWT at all", "garbage".into()),
        (
            "(3) typ is not dpop+jwt",
            key.jws(
                &header_with(&|hd| {
                    hd.insert("typ".into(), json!("JWT"));
                }),
                &good_claims(),
            ),
        ),
        (
            "(3) typ missing",
            key.jws(
                &header_with(&|hd| {
                    hd.remove("typ");
                }),
                &good_claims(),
            ),
        ),
        ("(4) alg none", unsigned),
        ("(4) alg HS256 (symmetric)", hmac_signed),
        (
            "(4) alg not the key's (EdDSA with a P-256 key)",
            key.jws(
                &header_with(&|hd| {
                    hd.insert("alg".into(), json!("EdDSA"));
                }),
                &good_claims(),
            ),
        ),
        (
            "(4) alg RS256",
            key.jws(
                &header_with(&|hd| {
                    hd.insert("alg".into(), json!("RS256"));
                }),
                &good_claims(),
            ),
        ),
        (
            "(5) signature by another key than the jwk",
            other.jws(&key.header(), &good_claims()),
        ),
        ("(5) signature bytes altered", altered),
        (
            "(6) jwk holds a private key",
            key.jws(
                &header_with(&|hd| {
                    hd.insert("jwk".into(), private_jwk.clone());
                }),
                &good_claims(),
            ),
        ),
        (
            "(6) jwk missing",
            key.jws(
                &header_with(&|hd| {
                    hd.remove("jwk");
                }),
                &good_claims(),
            ),
        ),
        (
            "(2) jti missing",
            key.jws(
                &key.header(),
                &with(&|c| {
                    c.remove("jti");
                }),
            ),
        ),
        (
            "(2) htm missing",
            key.jws(
                &key.header(),
                &with(&|c| {
                    c.remove("htm");
                }),
            ),
        ),
        (
            "(2) htu missing",
            key.jws(
                &key.header(),
                &with(&|c| {
                    c.remove("htu");
                }),
            ),
        ),
        (
            "(2) iat missing",
            key.jws(
                &key.header(),
                &with(&|c| {
                    c.remove("iat");
                }),
            ),
        ),
        (
            "(2) iat not a number",
            key.jws(
                &key.header(),
                &with(&|c| {
                    c.insert("iat".into(), json!("now"));
                }),
            ),
        ),
        (
            "(7) htm is not the request's method",
            key.jws(
                &key.header(),
                &with(&|c| {
                    c.insert("htm".into(), json!("GET"));
                }),
            ),
        ),
        (
            "(8) htu names another route",
            key.jws(
                &key.header(),
                &with(&|c| {
                    c.insert("htu".into(), json!(format!("{ORIGIN}/auth/refresh")));
                }),
            ),
        ),
        (
            "(8) htu names another host",
            key.jws(
                &key.header(),
                &with(&|c| {
                    c.insert("htu".into(), json!("http://evil.example:8080/auth/login"));
                }),
            ),
        ),
        (
            "(8) htu names another scheme",
            key.jws(
                &key.header(),
                &with(&|c| {
                    c.insert("htu".into(), json!("https://127.0.0.1:8080/auth/login"));
                }),
            ),
        ),
        (
            "(11) iat too old",
            key.jws(
                &key.header(),
                &with(&|c| {
                    c.insert("iat".into(), json!(now - 61));
                }),
            ),
        ),
        (
            "(11) iat in the future",
            key.jws(
                &key.header(),
                &with(&|c| {
                    c.insert("iat".into(), json!(now + 61));
                }),
            ),
        ),
    ];
    for (what, proof) in &cases {
        let r = login_with(&h, &[("dpop", proof)]).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.assert_problem(400, "invalid_dpop_proof");
        assert!(r.cookie_token().is_none(), "{what}: no session");
    }
    // two DPoP headers
    let r = login_with(&h, &[("dpop", &valid), ("dpop", &valid)]).await;
    r.assert_problem(400, "invalid_dpop_proof");

    // the query and fragment of htu are ignored (§4.3 (8)), and the untouched proof passes
    let q = key.jws(
        &key.header(),
        &with(&|c| {
            c.insert("htu".into(), json!(format!("{ORIGIN}/auth/login?x=1#f")));
        }),
    );
    assert_eq!(login_with(&h, &[("dpop", &q)]).await.status, StatusCode::OK);
    assert_eq!(
        login_with(&h, &[("dpop", &valid)]).await.status,
        StatusCode::OK
    );
    // (12) the same proof again: its jti was seen
    let r = login_with(&h, &[("dpop", &valid)]).await;
    r.assert_problem(400, "invalid_dpop_proof");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("jti"),
        "{}",
        r.json()
    );
}

#[tokio::test]
async fn a_stolen_bound_refresh_cookie_is_useless_without_the_key_and_ends_the_session() {
    let h = Harness::new().await;
    let key = Key::es256();
    let thief = Key::es256();
    let path = "/auth/refresh";

    // with no proof
    let (_, rt, sid) = bound_login(&h, &key).await;
    let r = refresh_with(&h, &rt, None).await;
    r.assert_problem(400, "invalid_dpop_proof");
    assert_eq!(
        r.cookie_token().as_deref(),
        Some(""),
        "the cookie is cleared"
    );
    let again = key.proof("POST", path, h.clock.now_secs(), json!({}));
    refresh_with(&h, &rt, Some(&again))
        .await
        .assert_problem(401, "session_revoked");
    let listed = h
        .state
        .store()
        .get_session(&sid)
        .await
        .expect("store")
        .expect("session");
    assert_eq!(listed.revoke_reason.as_deref(), Some("dpop_key_mismatch"));

    // with a valid proof from the thief's own key
    let (_, rt, _) = bound_login(&h, &key).await;
    let p = thief.proof("POST", path, h.clock.now_secs(), json!({}));
    refresh_with(&h, &rt, Some(&p))
        .await
        .assert_problem(400, "invalid_dpop_proof");
    let p = key.proof("POST", path, h.clock.now_secs(), json!({}));
    refresh_with(&h, &rt, Some(&p))
        .await
        .assert_problem(401, "session_revoked");
}

#[tokio::test]
async fn a_bound_session_refreshes_with_its_key_and_stays_bound() {
    let h = Harness::new().await;
    let key = Key::ed25519();
    let (_, mut rt, _) = bound_login(&h, &key).await;
    for _ in 0..3 {
        h.clock.advance(30);
        let p = key.proof("POST", "/auth/refresh", h.clock.now_secs(), json!({}));
        let r = refresh_with(&h, &rt, Some(&p)).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["token_type"], "DPoP");
        let at = r.json()["access_token"]
            .as_str()
            .expect("token")
            .to_string();
        assert_eq!(claims_of(&at)["cnf"]["jkt"], key.jkt());
        rt = r.cookie_token().expect("rotated");
    }
}

#[tokio::test]
async fn an_unbound_session_refreshed_with_a_proof_is_bound_from_then_on() {
    let h = Harness::new().await;
    let key = Key::es256();
    let (_, rt, _) = h.login_alice().await;
    let p = key.proof("POST", "/auth/refresh", h.clock.now_secs(), json!({}));
    let r = refresh_with(&h, &rt, Some(&p)).await;
    assert_eq!(r.json()["token_type"], "DPoP");
    let rt = r.cookie_token().expect("rotated");
    // from now on the key is needed
    refresh_with(&h, &rt, None)
        .await
        .assert_problem(400, "invalid_dpop_proof");
}

#[tokio::test]
async fn resource_access_needs_the_dpop_scheme_and_a_proof_of_the_bound_key_with_ath() {
    let h = Harness::new().await;
    let key = Key::es256();
    let other = Key::es256();
    let (at, _, _) = bound_login(&h, &key).await;
    let now = h.clock.now_secs();
    let dpop = format!("DPoP {at}");
    let good = || key.proof("GET", "/api/me", now, json!({"ath": ath(&at)}));

    // the bound token replayed as a bearer token
    let r = me(&h, &format!("Bearer {at}"), None).await;
    r.assert_problem(401, "invalid_token");
    assert_eq!(challenge(&r), "invalid_token");
    let refusals = [
        ("no proof", None),
        (
            "proof without ath",
            Some(key.proof("GET", "/api/me", now, json!({}))),
        ),
        (
            "ath of another token",
            Some(key.proof("GET", "/api/me", now, json!({"ath": ath("other")}))),
        ),
        (
            "proof from another key",
            Some(other.proof("GET", "/api/me", now, json!({"ath": ath(&at)}))),
        ),
        (
            "proof for POST",
            Some(key.proof("POST", "/api/me", now, json!({"ath": ath(&at)}))),
        ),
        (
            "proof for another route",
            Some(key.proof("GET", "/auth/session", now, json!({"ath": ath(&at)}))),
        ),
    ];
    for (what, proof) in refusals {
        let r = me(&h, &dpop, proof.as_deref()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(challenge(&r), "invalid_dpop_proof", "{what}");
    }
    let p = good();
    let r = me(&h, &dpop, Some(&p)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["username"], "alice");
    // the same proof a second time: replayed
    let r = me(&h, &dpop, Some(&p)).await;
    assert_eq!(challenge(&r), "invalid_dpop_proof");

    // a bearer token under the DPoP scheme is refused too; as Bearer it works
    let (bearer, _, _) = h.login_alice().await;
    let p = key.proof("GET", "/api/me", now, json!({"ath": ath(&bearer)}));
    let r = me(&h, &format!("DPoP {bearer}"), Some(&p)).await;
    assert_eq!(challenge(&r), "invalid_token");
    assert_eq!(
        me(&h, &format!("Bearer {bearer}"), None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn with_nonces_on_a_proof_without_the_current_nonce_is_asked_to_retry_with_it() {
    let mut cfg = Config::for_tests();
    cfg.dpop_nonce = true;
    let h = Harness::with_config(cfg.clone()).await;
    let key = Key::es256();
    let now = h.clock.now_secs();

    let p = key.proof("POST", "/auth/login", now, json!({}));
    let r = login_with(&h, &[("dpop", &p)]).await;
    r.assert_problem(400, "use_dpop_nonce");
    let nonce = r.header("dpop-nonce").expect("DPoP-Nonce");
    // a nonce this server did not issue (another master key)
    let elsewhere = Harness::with_config(cfg).await;
    let foreign = elsewhere
        .login("alice", "tessera-demo")
        .await
        .header("dpop-nonce")
        .expect("nonce");
    assert_ne!(foreign, nonce);
    let p = key.proof("POST", "/auth/login", now, json!({"nonce": foreign}));
    login_with(&h, &[("dpop", &p)])
        .await
        .assert_problem(400, "use_dpop_nonce");

    let p = key.proof("POST", "/auth/login", now, json!({"nonce": nonce}));
    let r = login_with(&h, &[("dpop", &p)]).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let at = r.json()["access_token"]
        .as_str()
        .expect("token")
        .to_string();

    // resources ask with a challenge; the nonce of the previous period still works
    let p = key.proof("GET", "/api/me", now, json!({"ath": ath(&at)}));
    let r = me(&h, &format!("DPoP {at}"), Some(&p)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&r), "use_dpop_nonce");
    assert!(r.header("dpop-nonce").is_some());
    h.clock.advance(tessera_server::dpop::NONCE_PERIOD);
    let later = h.clock.now_secs();
    let p = key.proof(
        "GET",
        "/api/me",
        later,
        json!({"ath": ath(&at), "nonce": nonce}),
    );
    // (the access token may have expired by now: re-login is not the point; check the proof
    // passes by looking at the error, if any)
    let r = me(&h, &format!("DPoP {at}"), Some(&p)).await;
    assert_ne!(
        r.header("www-authenticate").unwrap_or_default(),
        r#"DPoP error="use_dpop_nonce", algs="ES256 EdDSA""#
    );
    h.clock.advance(tessera_server::dpop::NONCE_PERIOD);
    let p = key.proof(
        "POST",
        "/auth/login",
        h.clock.now_secs(),
        json!({"nonce": nonce}),
    );
    login_with(&h, &[("dpop", &p)])
        .await
        .assert_problem(400, "use_dpop_nonce");
}

#[tokio::test]
async fn required_mode_refuses_login_mfa_and_refresh_without_a_proof_and_off_mode_ignores_them() {
    let mut cfg = Config::for_tests();
    cfg.dpop = DpopMode::Required;
    let h = Harness::with_config(cfg).await;
    login_with(&h, &[])
        .await
        .assert_problem(400, "invalid_dpop_proof");
    let key = Key::es256();
    let (_, rt, _) = bound_login(&h, &key).await;
    let p = key.proof("POST", "/auth/refresh", h.clock.now_secs(), json!({}));
    assert_eq!(refresh_with(&h, &rt, Some(&p)).await.status, StatusCode::OK);
    let r = h
        .post(
            "/auth/mfa",
            json!({"mfa_token": "x", "code": "000000"}),
            &[],
        )
        .await;
    r.assert_problem(400, "invalid_dpop_proof");

    let mut cfg = Config::for_tests();
    cfg.dpop = DpopMode::Off;
    let h = Harness::with_config(cfg).await;
    let p = key.proof("POST", "/auth/login", h.clock.now_secs(), json!({}));
    let r = login_with(&h, &[("dpop", &p)]).await;
    assert_eq!(r.json()["token_type"], "Bearer");
    let rt = r.cookie_token().expect("cookie");
    assert_eq!(refresh_with(&h, &rt, None).await.status, StatusCode::OK);
    // even a garbage header is ignored
    assert_eq!(
        login_with(&h, &[("dpop", "garbage")]).await.status,
        StatusCode::OK
    );
}

async fn bob(h: &Harness, proof: String) -> Resp {
    h.post(
        "/auth/login",
        json!({"username": "bob", "password": "tessera-demo"}),
        &[("dpop", &proof)],
    )
    .await
}

#[tokio::test]
async fn the_totp_step_must_come_from_the_password_steps_key() {
    let h = Harness::new().await;
    let key = Key::es256();
    let thief = Key::es256();
    let now = h.clock.now_secs();
    let r = bob(&h, key.proof("POST", "/auth/login", now, json!({}))).await;
    let token = r.json()["mfa_token"]
        .as_str()
        .expect("mfa token")
        .to_string();
    let code = common::bob_code(now);
    let p = thief.proof("POST", "/auth/mfa", now, json!({}));
    h.post(
        "/auth/mfa",
        json!({"mfa_token": token, "code": code}),
        &[("dpop", &p)],
    )
    .await
    .assert_problem(400, "invalid_dpop_proof");
    // the challenge is gone: even the right key cannot use it now
    let p = key.proof("POST", "/auth/mfa", now, json!({}));
    h.post(
        "/auth/mfa",
        json!({"mfa_token": token, "code": code}),
        &[("dpop", &p)],
    )
    .await
    .assert_problem(401, "mfa_expired");

    // the right key all along: a bound session
    h.clock.advance(30);
    let now = h.clock.now_secs();
    let r = bob(&h, key.proof("POST", "/auth/login", now, json!({}))).await;
    let token = r.json()["mfa_token"]
        .as_str()
        .expect("mfa token")
        .to_string();
    let p = key.proof("POST", "/auth/mfa", now, json!({}));
    let r = h
        .post(
            "/auth/mfa",
            json!({"mfa_token": token, "code": common::bob_code(now)}),
            &[("dpop", &p)],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["token_type"], "DPoP");
}

#[tokio::test]
async fn logout_all_and_the_vault_key_with_a_stolen_bound_cookie_end_only_that_session() {
    let h = Harness::new().await;
    let key = Key::es256();
    let (_, rt, sid) = bound_login(&h, &key).await;
    let (other_at, _, other_sid) = h.login_alice().await;
    let cookie = format!("__Host-tessera_rt={rt}");
    h.post("/auth/logout-all", Value::Null, &[("cookie", &cookie)])
        .await
        .assert_problem(400, "invalid_dpop_proof");
    let store = h.state.store();
    let s = store
        .get_session(&sid)
        .await
        .expect("store")
        .expect("session");
    assert_eq!(s.revoke_reason.as_deref(), Some("dpop_key_mismatch"));
    let o = store
        .get_session(&other_sid)
        .await
        .expect("store")
        .expect("session");
    assert!(o.revoked_at.is_none(), "the user's other session lives");
    assert_eq!(
        h.get("/api/me", Some(&other_at)).await.status,
        StatusCode::OK
    );

    let (_, rt, sid) = bound_login(&h, &key).await;
    let cookie = format!("__Host-tessera_rt={rt}");
    h.post("/auth/vault-key", Value::Null, &[("cookie", &cookie)])
        .await
        .assert_problem(400, "invalid_dpop_proof");
    let s = store
        .get_session(&sid)
        .await
        .expect("store")
        .expect("session");
    assert!(s.revoked_at.is_some());

    // with the key, both work
    let (_, rt, _) = bound_login(&h, &key).await;
    let cookie = format!("__Host-tessera_rt={rt}");
    let p = key.proof("POST", "/auth/vault-key", h.clock.now_secs(), json!({}));
    let r = h
        .post(
            "/auth/vault-key",
            Value::Null,
            &[("cookie", &cookie), ("dpop", &p)],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let p = key.proof("POST", "/auth/logout-all", h.clock.now_secs(), json!({}));
    let r = h
        .post(
            "/auth/logout-all",
            Value::Null,
            &[("cookie", &cookie), ("dpop", &p)],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_used_on_one_instance_is_refused_on_another_sharing_the_redis_store() {
    let Some(redis) = common::RedisServer::start() else {
        return;
    };
    let mut cfg = Config::for_tests();
    cfg.store = redis.url();
    let a = Harness::with_config(cfg.clone()).await;
    let b = Harness::with_config(cfg).await;
    let key = Key::es256();
    let p = key.proof("POST", "/auth/login", a.clock.now_secs(), json!({}));
    let r = login_with(&a, &[("dpop", &p)]).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = login_with(&b, &[("dpop", &p)]).await;
    r.assert_problem(400, "invalid_dpop_proof");
    // and the binding is shared: B refuses the bound cookie without the key
    let rt = login_with(
        &a,
        &[(
            "dpop",
            &key.proof("POST", "/auth/login", a.clock.now_secs(), json!({})),
        )],
    )
    .await
    .cookie_token()
    .expect("cookie");
    refresh_with(&b, &rt, None)
        .await
        .assert_problem(400, "invalid_dpop_proof");
}

#[tokio::test]
async fn logout_with_a_bound_cookie_ends_the_session_with_or_without_a_valid_proof() {
    let h = Harness::new().await;
    let key = Key::es256();
    for proof in [None, Some("garbage")] {
        let (_, rt, sid) = bound_login(&h, &key).await;
        let cookie = format!("__Host-tessera_rt={rt}");
        let mut headers = vec![("cookie", cookie.as_str())];
        if let Some(p) = proof {
            headers.push(("dpop", p));
        }
        let r = h.post("/auth/logout", Value::Null, &headers).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{proof:?}");
        assert_eq!(r.cookie_token().as_deref(), Some(""), "cookie cleared");
        let s = h
            .state
            .store()
            .get_session(&sid)
            .await
            .expect("store")
            .expect("session");
        assert!(s.revoked_at.is_some(), "{proof:?}: revoked");
    }
    // with its key: an ordinary logout
    let (_, rt, sid) = bound_login(&h, &key).await;
    let cookie = format!("__Host-tessera_rt={rt}");
    let p = key.proof("POST", "/auth/logout", h.clock.now_secs(), json!({}));
    let r = h
        .post(
            "/auth/logout",
            Value::Null,
            &[("cookie", &cookie), ("dpop", &p)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let s = h
        .state
        .store()
        .get_session(&sid)
        .await
        .expect("store")
        .expect("session");
    assert_eq!(s.revoke_reason.as_deref(), Some("logout"));
}
