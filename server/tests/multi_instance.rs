//! Several instances, one truth: two real `tessera-server` processes on one real
//! `redis-server`. 64 clients log in on A and rotate alternately on A and B; MFA tokens,
//! the TOTP replay guard and vault keys are shared through the store.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::binary::{self, Instance};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

const CLIENTS: usize = 64;

fn start_instance(store: &str) -> Instance {
    binary::start(store, &[])
}

async fn post(
    c: &reqwest::Client,
    url: String,
    body: Value,
    cookie: Option<&str>,
) -> (u16, Value, Option<String>) {
    binary::post(c, url, body, cookie).await.expect("request")
}

/// The `sid` claim of an access token (payload read without verification: the servers
/// verify; the test only needs to know which family a token belongs to).
fn sid_of(jwt: &str) -> String {
    let payload = jwt.split('.').nth(1).expect("jwt payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let v: Value = serde_json::from_slice(&bytes).expect("claims");
    v["sid"].as_str().expect("sid").to_string()
}

fn base32(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("base32"),
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// RFC 6238 (SHA-1, 6 digits, 30 s), written independently of the server's own code.
fn totp_now(secret: &[u8]) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        / 30;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("key");
    mac.update(&t.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0x0f) as usize;
    let n = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]) % 1_000_000;
    format!("{n:06}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_redis_rotate_64_clients_without_loss_duplicates_or_false_reuse() {
    let Some(redis) = common::RedisServer::start() else {
        return;
    };
    let a = start_instance(&redis.url());
    let b = start_instance(&redis.url());
    let c = reqwest::Client::new();

    // 64 clients log in on A at once (token mode: the refresh token travels in the body)
    let mut logins = Vec::new();
    for _ in 0..CLIENTS {
        let c = c.clone();
        let url = a.url.clone();
        logins.push(tokio::spawn(async move {
            binary::login_alice_token(&c, &url).await
        }));
    }
    let mut clients = Vec::new();
    for l in logins {
        clients.push(l.await.expect("login"));
    }

    // each rotates alternately on B and A for a few seconds, all 64 at once
    let stop = Instant::now() + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for (sid, rt) in clients {
        let c = c.clone();
        let urls = [
            format!("{}auth/refresh", b.url),
            format!("{}auth/refresh", a.url),
        ];
        tasks.push(tokio::spawn(async move {
            let mut token = rt;
            let mut n = 0usize;
            while n < 2 || Instant::now() < stop {
                let (s, body, _) = post(
                    &c,
                    urls[n % 2].clone(),
                    json!({"refresh_token": token}),
                    None,
                )
                .await;
                assert_eq!(
                    s,
                    200,
                    "rotation {n} of {sid} on instance {}: {body}",
                    n % 2
                );
                assert_eq!(sid_of(body["access_token"].as_str().expect("at")), sid);
                token = body["refresh_token"].as_str().expect("rt").to_string();
                n += 1;
            }
            (sid, token, n)
        }));
    }
    let mut finals = Vec::new();
    let mut rotations = 0;
    for t in tasks {
        let (sid, token, n) = t.await.expect("client");
        rotations += n;
        finals.push((sid, token));
    }
    // zero lost: every client's last token rotates once more, on either instance
    let mut last_access = String::new();
    for (i, (sid, token)) in finals.iter().enumerate() {
        let url = if i % 2 == 0 { &a.url } else { &b.url };
        let (s, body, _) = post(
            &c,
            format!("{url}auth/refresh"),
            json!({"refresh_token": token}),
            None,
        )
        .await;
        assert_eq!(s, 200, "final rotation of {sid}: {body}");
        last_access = body["access_token"].as_str().expect("at").to_string();
    }
    // zero duplicated families, zero false reuse: exactly the 64 sessions, all live
    let r = c
        .get(format!("{}auth/sessions?limit=200", b.url))
        .bearer_auth(&last_access)
        .send()
        .await
        .expect("sessions");
    assert_eq!(r.status().as_u16(), 200);
    let list: Value = r.json().await.expect("json");
    let sessions = list["sessions"].as_array().expect("sessions");
    assert_eq!(
        sessions.len(),
        CLIENTS,
        "one family per client, none duplicated"
    );
    let mut ids: Vec<&str> = sessions.iter().filter_map(|s| s["id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), CLIENTS);
    for s in sessions {
        assert_eq!(s["active"], true, "no family revoked: {s}");
        assert!(s["revoke_reason"].is_null(), "{s}");
    }
    for (sid, _) in &finals {
        assert!(ids.contains(&sid.as_str()));
    }
    println!("two instances on one Redis: {CLIENTS} clients, {rotations} rotations alternating A/B, 0 lost, 0 duplicated, 0 reuse");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_tokens_totp_replay_guard_and_vault_keys_are_shared_between_instances() {
    let Some(redis) = common::RedisServer::start() else {
        return;
    };
    let a = start_instance(&redis.url());
    let b = start_instance(&redis.url());
    let c = reqwest::Client::new();
    let secret = base32(tessera_server::state::DEMO_TOTP_SECRET);
    let login_bob = |url: String| {
        let c = c.clone();
        async move {
            let (s, body, _) = post(
                &c,
                format!("{url}auth/login"),
                json!({"username": "bob", "password": "tessera-demo"}),
                None,
            )
            .await;
            assert_eq!(s, 200, "{body}");
            assert_eq!(body["mfa_required"], true);
            body["mfa_token"].as_str().expect("mfa_token").to_string()
        }
    };
    // the password step on A, the code on B: the mfa_token lives in the store
    let m1 = login_bob(a.url.clone()).await;
    let code = totp_now(&secret);
    let (s, body, cookie) = post(
        &c,
        format!("{}auth/mfa", b.url),
        json!({"mfa_token": m1, "code": code}),
        None,
    )
    .await;
    assert_eq!(s, 200, "mfa_token from A completes on B: {body}");
    let cookie = cookie.expect("refresh cookie");
    // the same code on the other instance is a replay
    let m2 = login_bob(b.url.clone()).await;
    let (s, body, _) = post(
        &c,
        format!("{}auth/mfa", a.url),
        json!({"mfa_token": m2, "code": code}),
        None,
    )
    .await;
    assert_eq!(s, 401, "{body}");
    assert_eq!(body["code"], "mfa_invalid");
    // the mfa_token used on B is gone on A too
    let (s, body, _) = post(
        &c,
        format!("{}auth/mfa", a.url),
        json!({"mfa_token": m1, "code": code}),
        None,
    )
    .await;
    assert_eq!(s, 401, "{body}");

    // one vault key per session, whichever instance answers
    let (sa, ka, _) = post(
        &c,
        format!("{}auth/vault-key", a.url),
        Value::Null,
        Some(&cookie),
    )
    .await;
    let (sb, kb, _) = post(
        &c,
        format!("{}auth/vault-key", b.url),
        Value::Null,
        Some(&cookie),
    )
    .await;
    assert_eq!((sa, sb), (200, 200), "{ka} {kb}");
    assert!(ka["key"].as_str().is_some_and(|k| k.len() == 43));
    assert_eq!(ka["key"], kb["key"]);
    // logout on A shreds it for B
    let (s, _, _) = post(
        &c,
        format!("{}auth/logout", a.url),
        Value::Null,
        Some(&cookie),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _, _) = post(
        &c,
        format!("{}auth/vault-key", b.url),
        Value::Null,
        Some(&cookie),
    )
    .await;
    assert_eq!(s, 401);
}
