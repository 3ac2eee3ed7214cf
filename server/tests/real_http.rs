//! "Real deal" tests: real HTTP on a bound loopback port, real SQLite files, a real
//! redis-server, and the real `tessera-server` binary.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{LiveServer, RedisServer, TempDb};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_server::clock::SystemClock;
use tessera_server::{AppState, Config};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent("TesseraRealTest/1")
        .build()
        .expect("client")
}

fn token_of(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("__Host-tessera_rt="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

fn intro_secret() -> String {
    Config::for_tests().introspection_secret.unwrap_or_default()
}

async fn state_for(store_url: &str) -> AppState {
    let mut cfg = Config::for_tests();
    cfg.store = store_url.to_string();
    if store_url.starts_with("redis") {
        // instances sharing a Redis share one master key
        let key = std::env::temp_dir().join(format!("tessera-test-{}.key", std::process::id()));
        tessera_server::master_key::MasterKey::load_or_create(&key).expect("master key");
        cfg.master_key_file = Some(key);
    }
    let store = tessera_server::store::open(store_url).await.expect("store");
    let st = AppState::new(cfg, store, Arc::new(SystemClock))
        .await
        .expect("state");
    st.seed_demo_users().await.expect("seed");
    st
}

async fn login(c: &reqwest::Client, base: &str, body: Value) -> reqwest::Response {
    c.post(format!("{base}/auth/login"))
        .json(&body)
        .send()
        .await
        .expect("login")
}

/// Signs in the demo user alice (cookie mode).
async fn login_alice(c: &reqwest::Client, base: &str) -> reqwest::Response {
    login(
        c,
        base,
        json!({"username": "alice", "password": "tessera-demo"}),
    )
    .await
}

async fn refresh(c: &reqwest::Client, base: &str, rt: &str) -> reqwest::Response {
    c.post(format!("{base}/auth/refresh"))
        .header("cookie", format!("__Host-tessera_rt={rt}"))
        .header("x-tessera-csrf", "1")
        .send()
        .await
        .expect("refresh")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_http_cookie_flow_login_refresh_logout() {
    let db = TempDb::new("http");
    let srv = LiveServer::start(state_for(&db.url()).await).await;
    let c = client();
    let r = login_alice(&c, &srv.base).await;
    assert_eq!(r.status(), StatusCode::OK);
    let rt = token_of(&r).expect("cookie");
    let j: Value = r.json().await.expect("json");
    let at = j["access_token"].as_str().unwrap_or_default().to_string();
    let me: Value = c
        .get(format!("{}/api/me", srv.base))
        .bearer_auth(&at)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["username"], "alice");
    let r2 = refresh(&c, &srv.base, &rt).await;
    assert_eq!(r2.status(), StatusCode::OK);
    let rt2 = token_of(&r2).expect("rotated");
    assert_ne!(rt, rt2);
    let out = c
        .post(format!("{}/auth/logout", srv.base))
        .header("cookie", format!("__Host-tessera_rt={rt2}"))
        .header("x-tessera-csrf", "1")
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        out.headers()
            .get("clear-site-data")
            .and_then(|v| v.to_str().ok()),
        Some("\"storage\"")
    );
    let intro: Value = c
        .post(format!("{}/auth/introspect", srv.base))
        .bearer_auth(intro_secret())
        .form(&[("token", at.as_str())])
        .send()
        .await
        .expect("introspect")
        .json()
        .await
        .expect("json");
    assert_eq!(intro["active"], false);
    let dead = refresh(&c, &srv.base, &rt2).await;
    assert_eq!(dead.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        dead.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_http_token_mode_flow() {
    let srv = LiveServer::start(state_for("memory://").await).await;
    let c = client();
    let r = login(
        &c,
        &srv.base,
        json!({"username": "alice", "password": "tessera-demo", "mode": "token"}),
    )
    .await;
    assert!(token_of(&r).is_none());
    let j: Value = r.json().await.expect("json");
    let rt = j["refresh_token"].as_str().unwrap_or_default().to_string();
    let r2: Value = c
        .post(format!("{}/auth/refresh", srv.base))
        .json(&json!({ "refresh_token": rt }))
        .send()
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    let rt2 = r2["refresh_token"].as_str().unwrap_or_default().to_string();
    assert_eq!(rt2.len(), 86);
    // replaying the first token after the grace window would revoke; within it we get rt2 back
    let again: Value = c
        .post(format!("{}/auth/refresh", srv.base))
        .json(&json!({ "refresh_token": rt }))
        .send()
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    assert_eq!(again["refresh_token"].as_str(), Some(rt2.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_http_concurrent_refreshes_on_sqlite_yield_one_successor() {
    let db = TempDb::new("race");
    let srv = LiveServer::start(state_for(&db.url()).await).await;
    let c = client();
    let r = login_alice(&c, &srv.base).await;
    let rt = token_of(&r).expect("cookie");
    let sid = r.json::<Value>().await.expect("json")["session"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (c, base, rt) = (c.clone(), srv.base.clone(), rt.clone());
        tasks.push(tokio::spawn(async move {
            let r = refresh(&c, &base, &rt).await;
            (r.status(), token_of(&r))
        }));
    }
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        let (status, tok) = t.await.expect("join");
        assert_eq!(status, StatusCode::OK);
        tokens.insert(tok.expect("cookie"));
    }
    assert_eq!(tokens.len(), 1);
    let s = srv
        .state
        .store()
        .get_session(&sid)
        .await
        .ok()
        .flatten()
        .expect("session");
    assert_eq!(s.generation, 1, "exactly one new family member");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_sqlite_keeps_sessions() {
    let db = TempDb::new("restart");
    let c = client();
    let (rt, at) = {
        let srv = LiveServer::start(state_for(&db.url()).await).await;
        let r = login_alice(&c, &srv.base).await;
        let rt = token_of(&r).expect("cookie");
        let at = r.json::<Value>().await.expect("json")["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (rt, at)
        // server and store dropped here: a "restart"
    };
    let srv = LiveServer::start(state_for(&db.url()).await).await;
    let intro: Value = c
        .post(format!("{}/auth/introspect", srv.base))
        .bearer_auth(intro_secret())
        .json(&json!({ "token": at }))
        .send()
        .await
        .expect("introspect")
        .json()
        .await
        .expect("json");
    assert_eq!(
        intro["active"], true,
        "signing key and session survived the restart"
    );
    assert_eq!(
        refresh(&c, &srv.base, &rt).await.status(),
        StatusCode::OK,
        "refresh token survived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_sessions_through_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = LiveServer::start(state_for(&redis.url()).await).await;
    let b = LiveServer::start(state_for(&redis.url()).await).await;
    let c = client();
    let r = login_alice(&c, &a.base).await;
    let rt = token_of(&r).expect("cookie");
    let at = r.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // instance B verifies A's token (shared signing key) and rotates A's refresh token
    let me = c
        .get(format!("{}/api/me", b.base))
        .bearer_auth(&at)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::OK);
    let r2 = refresh(&c, &b.base, &rt).await;
    assert_eq!(r2.status(), StatusCode::OK);
    let rt2 = token_of(&r2).expect("rotated");
    // logout on A, B sees it
    c.post(format!("{}/auth/logout", a.base))
        .header("cookie", format!("__Host-tessera_rt={rt2}"))
        .header("x-tessera-csrf", "1")
        .send()
        .await
        .expect("logout");
    assert_eq!(
        c.get(format!("{}/api/me", b.base))
            .bearer_auth(&at)
            .send()
            .await
            .expect("me")
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_binary(args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera-server"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Child(cmd.spawn().expect("spawn tessera-server"));
    let stdout = child.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read line");
    (child, line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_bound_url_and_serves_demo() {
    let db = TempDb::new("bin");
    let dir = std::env::temp_dir().join(format!("tessera-bin-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("www")).expect("mkdir");
    std::fs::create_dir_all(dir.join("pkg")).expect("mkdir");
    std::fs::write(dir.join("www/index.html"), "<title>tessera demo</title>").expect("write");
    std::fs::write(dir.join("pkg/tessera_bg.wasm"), b"\0asm\x01\0\0\0").expect("write");
    let store = db.url();
    let www = dir.join("www").display().to_string();
    let pkg = dir.join("pkg").display().to_string();
    let (_child, line) = spawn_binary(
        &[
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &store,
            "--access-ttl",
            "120",
            "--www-dir",
            &www,
            "--pkg-dir",
            &pkg,
            "--argon2-memory-kib",
            "64",
            "--argon2-iterations",
            "1",
        ],
        &[],
    );
    let url = line
        .trim_end()
        .strip_prefix("tessera-server listening on ")
        .expect("the one contract line")
        .to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/') && !url.ends_with(":0/"),
        "{url}"
    );
    let c = client();
    let page = c
        .get(&url)
        .send()
        .await
        .expect("index")
        .text()
        .await
        .expect("text");
    assert!(page.contains("tessera demo"));
    let wasm = c
        .get(format!("{url}pkg/tessera_bg.wasm"))
        .send()
        .await
        .expect("wasm");
    assert_eq!(
        wasm.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/wasm")
    );
    let r = login_alice(&c, url.trim_end_matches('/')).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json")["expires_in"], 120);
    // the demo page's own origin (the listen address) may log in; a foreign one may not
    let origin = url.trim_end_matches('/');
    let body = json!({"username": "alice", "password": "tessera-demo"});
    for (o, status) in [
        (origin, StatusCode::OK),
        ("http://evil.example", StatusCode::FORBIDDEN),
    ] {
        let r = c
            .post(format!("{origin}/auth/login"))
            .header("origin", o)
            .json(&body)
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), status, "Origin {o}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_reads_every_setting_from_env() {
    let (_child, line) = spawn_binary(
        &[],
        &[
            ("TESSERA_DEMO", "1"),
            ("TESSERA_LISTEN", "127.0.0.1:0"),
            ("TESSERA_STORE", "memory://"),
            ("TESSERA_ACCESS_TTL", "77"),
            ("TESSERA_ARGON2_MEMORY_KIB", "64"),
            ("TESSERA_ARGON2_ITERATIONS", "1"),
        ],
    );
    let url = line
        .trim_end()
        .strip_prefix("tessera-server listening on ")
        .expect("line")
        .to_string();
    let r = login(
        &client(),
        url.trim_end_matches('/'),
        json!({"username": "bob", "password": "tessera-demo"}),
    )
    .await;
    assert_eq!(
        r.json::<Value>().await.expect("json")["mfa_required"],
        true,
        "demo users seeded via TESSERA_DEMO=1"
    );
}

#[test]
fn binary_help_lists_flags_and_env_vars() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-server"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--demo",
        "TESSERA_DEMO",
        "--listen",
        "TESSERA_LISTEN",
        "--store",
        "TESSERA_STORE",
        "--access-ttl",
        "TESSERA_ACCESS_TTL",
        "--idle-timeout",
        "TESSERA_IDLE_TIMEOUT",
        "--absolute-timeout",
        "TESSERA_ABSOLUTE_TIMEOUT",
        "--allowed-origins",
        "TESSERA_ALLOWED_ORIGINS",
        "--www-dir",
        "--pkg-dir",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn binary_rejects_bad_store_url_cleanly() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-server"))
        .args(["--store", "ftp://nowhere", "--listen", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown store URL"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_store_url_password_never_reaches_the_error_output() {
    // A mistyped scheme, and a Redis server that cannot be reached: the error names the
    // problem, never the credentials in the URL.
    for url in [
        "postgres://admin:s3cret-pw@db.internal/tessera",
        "redis://admin:s3cret-pw@127.0.0.1:1/",
        "redis+sentinel://admin:s3cret-pw@127.0.0.1:1/mymaster",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera-server"))
            .args(["--store", url, "--listen", "127.0.0.1:0"])
            .output()
            .expect("run");
        assert!(!out.status.success());
        let all = [out.stdout, out.stderr].concat();
        let text = String::from_utf8_lossy(&all);
        assert!(!text.contains("s3cret-pw"), "{url}: {text}");
    }
}

#[test]
fn every_documented_store_scheme_is_accepted_by_the_binary() {
    // Each scheme parses and reaches its backend (which then fails to connect: port 1 is closed).
    for url in [
        "redis://127.0.0.1:1/",
        "redis+sentinel://127.0.0.1:1/mymaster",
        "redis+cluster://127.0.0.1:1",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera-server"))
            .args(["--store", url, "--listen", "127.0.0.1:0"])
            .output()
            .expect("run");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("unknown store URL"), "{url}: {err}");
        assert!(!err.contains("panicked"), "{url}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_restart_on_the_same_sqlite_file_keeps_sessions() {
    let db = TempDb::new("binrestart");
    let store = db.url();
    let args = [
        "--demo",
        "--listen",
        "127.0.0.1:0",
        "--store",
        &store,
        "--argon2-memory-kib",
        "64",
        "--argon2-iterations",
        "1",
    ];
    let c = client();
    let (rt, at) = {
        let (_child, line) = spawn_binary(&args, &[]);
        let base = line
            .trim_end()
            .strip_prefix("tessera-server listening on ")
            .expect("line")
            .trim_end_matches('/')
            .to_string();
        let r = login_alice(&c, &base).await;
        let rt = token_of(&r).expect("cookie");
        let at = r.json::<Value>().await.expect("json")["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (rt, at)
        // the process is killed here
    };
    let (_child, line) = spawn_binary(&args, &[]);
    let base = line
        .trim_end()
        .strip_prefix("tessera-server listening on ")
        .expect("line")
        .trim_end_matches('/')
        .to_string();
    let me = c
        .get(format!("{base}/api/me"))
        .bearer_auth(&at)
        .send()
        .await
        .expect("me");
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "old access token verifies after the restart"
    );
    let r = refresh(&c, &base, &rt).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "old refresh token rotates after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_add_command_creates_a_user_the_server_then_logs_in() {
    use std::io::Write as _;
    let db = TempDb::new("useradd");
    let store = db.url();
    let cheap = ["--argon2-memory-kib", "64", "--argon2-iterations", "1"];
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera-server"))
        .args(["--store", &store])
        .args(cheap)
        .args(["user-add", "--username", "carol", "--totp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"correct horse battery\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let secret = text
        .split("secret=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("otpauth URI with the secret")
        .to_string();
    let mut args = vec!["--listen", "127.0.0.1:0", "--store", &store];
    args.extend(cheap);
    let (_server, line) = spawn_binary(&args, &[]);
    let base = line
        .trim_end()
        .strip_prefix("tessera-server listening on ")
        .expect("line")
        .trim_end_matches('/')
        .to_string();
    let c = client();
    let r: Value = login(
        &c,
        &base,
        json!({"username": "carol", "password": "correct horse battery"}),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(r["mfa_required"], true);
    let key = tessera_server::totp::base32_decode(&secret).expect("base32");
    let now = tessera_server::clock::Clock::now(&SystemClock);
    let ok = c
        .post(format!("{base}/auth/mfa"))
        .json(
            &json!({"mfa_token": r["mfa_token"], "code": tessera_server::totp::code_at(&key, now)}),
        )
        .send()
        .await
        .expect("mfa");
    assert_eq!(ok.status(), StatusCode::OK);
    let at = ok.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let me = |c: reqwest::Client, at: String, base: String| async move {
        c.get(format!("{base}/api/me"))
            .bearer_auth(at)
            .send()
            .await
            .expect("me")
            .status()
    };
    assert_eq!(
        me(c.clone(), at.clone(), base.clone()).await,
        StatusCode::OK
    );
    // user-add over an existing user is a password change: the user's sessions end
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera-server"))
        .args(["--store", &store])
        .args(cheap)
        .args(["user-add", "--username", "carol"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"another long passphrase\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(1 existing sessions revoked)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        me(c.clone(), at, base.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    // a too-short password is refused, nothing is written
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera-server"))
        .args(["--store", &store, "user-add", "--username", "dave"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"short\n")
        .expect("write");
    assert!(!child.wait_with_output().expect("wait").status.success());
}
