//! Storage and secrets hardening through the router and the state:
//! bounded growth, secrets sealed at rest, grace bound to the rotating client, TOTP rules.

mod common;

use axum::http::StatusCode;
use common::Harness;
use serde_json::json;
use tessera_server::state::{StartupError, DEMO_TOTP_SECRET};
use tessera_server::totp::{self, TotpError};

async fn bob_mfa(h: &Harness, code: &str) -> common::Resp {
    let t = h.login("bob", "tessera-demo").await.json()["mfa_token"].clone();
    h.post("/auth/mfa", json!({"mfa_token": t, "code": code}), &[])
        .await
}

#[tokio::test]
async fn totp_replay_guard_refuses_any_step_not_after_the_last_accepted() {
    let h = Harness::new().await;
    let now = h.state.now();
    // the next step's code (inside the ±1 window) is accepted first …
    let ok = bob_mfa(&h, &bob_code(now + 30)).await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&ok.body)
    );
    // … then the current step's code, never used, is older: refused
    bob_mfa(&h, &bob_code(now))
        .await
        .assert_problem(401, "mfa_invalid");
    // and so is the previous step's
    bob_mfa(&h, &bob_code(now - 30))
        .await
        .assert_problem(401, "mfa_invalid");
    // the same code again: refused
    bob_mfa(&h, &bob_code(now + 30))
        .await
        .assert_problem(401, "mfa_invalid");
    // time moves on: the following step is accepted
    h.clock.advance(60);
    let later = bob_mfa(&h, &bob_code(h.state.now())).await;
    assert_eq!(later.status, StatusCode::OK);
}

#[tokio::test]
async fn totp_secrets_under_160_bits_are_refused_at_enrolment() {
    let h = Harness::new().await;
    let short = totp::base32_encode(&[7u8; 19]);
    for (secret, bits) in [("JBSWY3DPEHPK3PXP", 80), ("", 0), (short.as_str(), 152)] {
        match h.state.add_user("eve", "correct horse", Some(secret)).await {
            Err(StartupError::Totp(TotpError::TooShort { bits: b })) => assert_eq!(b, bits),
            other => panic!("{secret:?}: expected TooShort, got {other:?}"),
        }
    }
    assert!(matches!(
        h.state
            .add_user("eve", "correct horse", Some("not base32!"))
            .await,
        Err(StartupError::Totp(TotpError::NotBase32))
    ));
    assert_eq!(
        h.state.store().find_user("eve").await.unwrap(),
        None,
        "nothing written"
    );
    h.state
        .add_user("eve", "correct horse", Some(&totp::new_secret()))
        .await
        .expect("a fresh 160-bit secret is accepted");
    // the demo user's secret is the documented 160-bit one
    let bob = h
        .state
        .store()
        .find_user("bob")
        .await
        .unwrap()
        .expect("bob");
    assert_eq!(
        bob.totp_secret.as_deref(),
        Some("4MEMZDELGP554FRQ6OH4LD7PAJIEUSHX")
    );
    assert_eq!(
        totp::base32_decode(DEMO_TOTP_SECRET).map(|k| k.len() * 8),
        Some(160)
    );
}

// ---------------------------------------------------------------------------------------
// item 6: secrets at rest

use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use common::{bob_code, TempDb, UA};
use tessera_server::master_key::MasterKey;
use tessera_server::secret::{b64, unb64};
use tessera_server::{AppState, Config};

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

fn with_suffix(p: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

/// Every byte an attacker with a copy of the database files gets.
fn dump(db: &TempDb) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(b) = std::fs::read(with_suffix(&db.0, suffix)) {
            all.extend(b);
        }
    }
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn sqlite_config(db: &TempDb, key_file: &std::path::Path) -> Config {
    let mut cfg = Config::for_tests();
    cfg.store = db.url();
    cfg.master_key_file = Some(key_file.to_path_buf());
    cfg
}

fn key_file(tag: &str) -> (TempDb, std::path::PathBuf) {
    // a file in its own TempDb slot so it is removed with it
    let holder = TempDb::new(tag);
    let path = with_suffix(&holder.0, ".key");
    MasterKey::load_or_create(&path).expect("key file");
    (holder, path)
}

#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_created_0600_and_wider_ones_are_narrowed() {
    let db = TempDb::new("mode");
    let (_k, key) = key_file("mode-key");
    let h = Harness::with_config(sqlite_config(&db, &key)).await;
    h.login_alice().await; // writes, so the WAL exists
    for suffix in ["", "-wal", "-shm"] {
        let p = with_suffix(&db.0, suffix);
        assert!(p.exists(), "{} exists", p.display());
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    assert_eq!(mode(&key), 0o600, "created key file");
    drop(h);
    // a database and key file someone made world-readable are narrowed at the next start
    use std::os::unix::fs::PermissionsExt as _;
    // (SQLite removed its WAL at close; a leftover one is made here)
    let wal = with_suffix(&db.0, "-wal");
    if !wal.exists() {
        std::fs::write(&wal, b"").expect("wal");
    }
    for p in [db.0.clone(), wal.clone(), key.clone()] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let _h = Harness::with_config(sqlite_config(&db, &key)).await;
    for p in [db.0.clone(), wal.clone(), key.clone()] {
        assert_eq!(mode(&p), 0o600, "{} narrowed", p.display());
    }
}

#[tokio::test]
async fn raw_sqlite_file_holds_no_plaintext_seed_totp_secret_or_vault_key() {
    let db = TempDb::new("raw");
    let (_k, key) = key_file("raw-key");
    let h = Harness::with_config(sqlite_config(&db, &key)).await;
    let (_, _, sid) = h.login_alice().await;
    let store = h.state.store();
    let vault = store
        .get_session(&sid)
        .await
        .unwrap()
        .and_then(|s| s.vault_key)
        .expect("vault key");
    assert_eq!(vault.len(), 32);
    let keys: Vec<serde_json::Value> = serde_json::from_str(
        &store
            .get_meta("signing_keys")
            .await
            .unwrap()
            .expect("signing keys"),
    )
    .expect("json");
    let seed = keys[0]["seed"].as_str().expect("seed").to_string();
    let totp_secret = DEMO_TOTP_SECRET;
    let totp_raw = totp::base32_decode(totp_secret).expect("base32");
    let raw = dump(&db);
    assert!(raw.len() > 4096, "the dump holds the database");
    for (what, needle) in [
        ("vault key", vault.clone()),
        ("vault key (base64url)", b64(&vault).into_bytes()),
        ("signing seed (base64url)", seed.clone().into_bytes()),
        ("signing seed", unb64(&seed).expect("seed bytes")),
        ("TOTP secret (base32)", totp_secret.as_bytes().to_vec()),
        ("TOTP secret", totp_raw.clone()),
    ] {
        assert!(
            !contains(&raw, &needle),
            "{what} found in plain form in the database files"
        );
    }
    // and the sealed values still work: bob's TOTP, alice's vault key, the signing key
    let ok = bob_mfa(&h, &bob_code(h.state.now())).await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn store_dump_plus_an_old_token_does_not_yield_the_current_token() {
    let db = TempDb::new("dump");
    let (_k, key) = key_file("dump-key");
    let h = Harness::with_config(sqlite_config(&db, &key)).await;
    let (_, rt0, sid) = h.login_alice().await;
    let r1 = h.refresh_cookie(&rt0).await;
    assert_eq!(r1.status, StatusCode::OK);
    let rt1 = r1.cookie_token().expect("rotated");
    // the attacker: a copy of the database files (not the master key file) and rt0
    let copy = TempDb::new("dump-copy");
    for suffix in ["", "-wal"] {
        let _ = std::fs::copy(with_suffix(&db.0, suffix), with_suffix(&copy.0, suffix));
    }
    let c = rusqlite::Connection::open(&copy.0).expect("open the copy");
    let (sealed, stored_vault): (Vec<u8>, Vec<u8>) = c
        .query_row(
            "SELECT prev_sealed, vault_key FROM sessions WHERE sid = ?1",
            [&sid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the session row");
    let old = unb64(&rt0).expect("rt0");
    let cur = unb64(&rt1).expect("rt1");
    let (old_secret, cur_secret) = (&old[16..48], &cur[16..48]);
    // the scheme before: successor = sealed XOR SHA-256("tessera/grace/v1" || predecessor)
    use sha2::{Digest, Sha256};
    let pad = Sha256::new()
        .chain_update(b"tessera/grace/v1")
        .chain_update(old_secret)
        .finalize();
    let xored: Vec<u8> = sealed.iter().zip(pad.iter()).map(|(a, b)| a ^ b).collect();
    assert_ne!(&xored[..], cur_secret, "the old pad opens the successor");
    assert!(
        !contains(&dump(&copy), cur_secret),
        "current secret in the dump"
    );
    assert!(
        !contains(&dump(&copy), rt1.as_bytes()),
        "current token in the dump"
    );
    // any master key but the real one: nothing opens
    let mut old_secret32 = [0u8; 32];
    old_secret32.copy_from_slice(old_secret);
    assert_eq!(
        MasterKey::ephemeral().open_successor(&old_secret32, &sealed),
        None
    );
    assert_eq!(
        MasterKey::ephemeral().open("vault", &sid, &stored_vault),
        None
    );
    // with the real key it opens (so the check above is meaningful)
    let real = MasterKey::load(&key).expect("key");
    assert_eq!(
        real.open_successor(&old_secret32, &sealed)
            .map(|s| s.to_vec()),
        Some(cur_secret.to_vec())
    );
    // and once the grace window is over, housekeeping removes it from the store
    h.clock.advance(h.state.config().refresh_grace + 1);
    let cfg = h.state.config();
    h.state
        .store()
        .shred(h.state.now(), cfg.idle_timeout, cfg.refresh_grace)
        .await
        .unwrap();
    let later: Option<Vec<u8>> = rusqlite::Connection::open(&db.0)
        .expect("open")
        .query_row(
            "SELECT prev_sealed FROM sessions WHERE sid = ?1",
            [&sid],
            |r| r.get(0),
        )
        .expect("row");
    assert_eq!(later, None, "grace successor gone after the window");
}

#[tokio::test]
async fn wrong_master_key_is_a_clear_startup_error() {
    let db = TempDb::new("wrongkey");
    let (_a, key_a) = key_file("key-a");
    let (_b, key_b) = key_file("key-b");
    let first = AppState::from_config(sqlite_config(&db, &key_a)).await;
    assert!(first.is_ok(), "{:?}", first.err());
    drop(first);
    match AppState::from_config(sqlite_config(&db, &key_b)).await {
        Err(StartupError::MasterKey(msg)) => {
            assert!(msg.contains("does not open"), "{msg}");
            assert!(msg.contains("--master-key-file"), "{msg}");
        }
        other => panic!("expected a master key error, got {other:?}"),
    }
    // a key file that does not exist (outside demo mode) is an error naming it
    let missing = with_suffix(&db.0, ".missing-key");
    match AppState::from_config(sqlite_config(&db, &missing)).await {
        Err(StartupError::MasterKey(msg)) => assert!(msg.contains(".missing-key"), "{msg}"),
        other => panic!("expected a master key error, got {other:?}"),
    }
    // Redis without a key file: refused before connecting, naming the flag
    let mut cfg = Config::for_tests();
    cfg.store = "redis://127.0.0.1:1/".into();
    match tessera_server::state::resolve_master_key(&cfg) {
        Err(StartupError::MasterKey(msg)) => {
            assert!(msg.contains("TESSERA_MASTER_KEY_FILE"), "{msg}")
        }
        other => panic!("expected a master key error, got {other:?}"),
    }
    // the right key still works
    assert!(AppState::from_config(sqlite_config(&db, &key_a))
        .await
        .is_ok());
}

#[cfg(unix)]
#[tokio::test]
async fn demo_mode_creates_its_master_key_beside_the_database() {
    let db = TempDb::new("demokey");
    let mut cfg = Config::for_tests();
    cfg.store = db.url();
    cfg.demo = true;
    let _h = Harness::with_config(cfg).await;
    let key = with_suffix(&db.0, ".key");
    assert!(key.exists());
    assert_eq!(mode(&key), 0o600);
}

#[tokio::test]
async fn refresh_grace_above_30_seconds_is_refused_at_start() {
    let mut cfg = Config::for_tests();
    cfg.refresh_grace = 31;
    let store = tessera_server::store::open("memory://")
        .await
        .expect("store");
    let clock = Arc::new(tessera_server::clock::ManualClock::new(common::wall_now()));
    match AppState::new(cfg.clone(), store.clone(), clock.clone()).await {
        Err(StartupError::Config(msg)) => assert!(msg.contains("--refresh-grace"), "{msg}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    cfg.refresh_grace = 30;
    assert!(AppState::new(cfg, store, clock).await.is_ok());
}

async fn refresh_as(h: &Harness, token: &str, ua: &str, ip: [u8; 4]) -> common::Resp {
    let mut req = Request::post("/auth/refresh")
        .header("user-agent", ua)
        .header("host", "127.0.0.1:8080")
        .header("x-tessera-csrf", "1")
        .header("cookie", format!("__Host-tessera_rt={token}"))
        .body(Body::empty())
        .expect("request");
    req.extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::from((ip, 40000))));
    h.call(req).await
}

#[tokio::test]
async fn grace_is_granted_only_to_the_same_user_agent_and_network() {
    for (ua, ip, what) in [
        ("Mozilla/5.0 Thief/1", [127, 0, 0, 1], "another user agent"),
        (UA, [10, 9, 8, 7], "another network"),
    ] {
        let h = Harness::new().await;
        let (_, rt0, _) = h.login_alice().await;
        let r1 = refresh_as(&h, &rt0, UA, [127, 0, 0, 1]).await;
        assert_eq!(r1.status, StatusCode::OK);
        let rt1 = r1.cookie_token().expect("rt1");
        // the rotating client lost the answer and retries: same successor
        let again = refresh_as(&h, &rt0, UA, [127, 0, 0, 1]).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.cookie_token().as_deref(), Some(rt1.as_str()));
        // the old token replayed from elsewhere inside the window: reuse, family revoked
        refresh_as(&h, &rt0, ua, ip)
            .await
            .assert_problem(401, "refresh_reused");
        let dead = refresh_as(&h, &rt1, UA, [127, 0, 0, 1]).await;
        assert_eq!(
            dead.status,
            StatusCode::UNAUTHORIZED,
            "{what}: the family is revoked"
        );
    }
}
