//! The real `tessera-server` binary as a child process, and a small JSON client for it.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::Proc;

/// A running `tessera-server` process and its base URL (`http://127.0.0.1:PORT/`); killed
/// (SIGKILL) on drop.
pub struct Instance {
    pub proc: Proc,
    pub url: String,
}

/// Starts the binary on a free loopback port with `store`, cheap Argon2, the demo users,
/// no per-address limit (many clients share one loopback address) and `extra` flags.
/// Unless `extra` sets them: no per-account limit, a hashing queue for 64 logins at once, room for 100 sessions per user (the
/// tests log alice in 64 times), and with Redis one master key file shared by every instance of this test process.
pub fn start(store: &str, extra: &[&str]) -> Instance {
    start_with_env(store, extra, &[])
}

/// [`start`] with extra environment variables for the process.
pub fn start_with_env(store: &str, extra: &[&str], env: &[(&str, &str)]) -> Instance {
    let mut defaults: Vec<String> = Vec::new();
    if !extra.contains(&"--account-limit") {
        // 64 logins of alice from one test: the per-account throttle would refuse them
        defaults.extend(["--account-limit".into(), "100000".into()]);
    }
    if !extra.contains(&"--argon2-queue") {
        // 64 logins at once: the hashing queue (32) would shed half of them
        defaults.extend(["--argon2-queue".into(), "128".into()]);
    }
    if !extra.contains(&"--max-sessions-per-user") {
        defaults.extend(["--max-sessions-per-user".into(), "100".into()]);
    }
    if store.starts_with("redis") && !extra.contains(&"--master-key-file") {
        let key = std::env::temp_dir().join(format!("tessera-bin-test-{}.key", std::process::id()));
        tessera_server::master_key::MasterKey::load_or_create(&key).expect("master key");
        defaults.extend(["--master-key-file".into(), key.display().to_string()]);
    }
    let mut child = Proc(
        Command::new(env!("CARGO_BIN_EXE_tessera-server"))
            .args([
                "--demo",
                "--listen",
                "127.0.0.1:0",
                "--store",
                store,
                "--argon2-memory-kib",
                "64",
                "--argon2-iterations",
                "1",
                "--address-limit",
                "100000",
                "--log",
                "warn",
            ])
            .args(&defaults)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tessera-server"),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("url line");
    let url = line
        .trim()
        .strip_prefix("tessera-server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Instance { proc: child, url }
}

/// POSTs `body` (none when `Null`) with the CSRF header and, optionally, the refresh
/// cookie: (status, JSON body or `Null`, the refresh cookie value the answer set).
pub async fn post(
    c: &reqwest::Client,
    url: String,
    body: Value,
    cookie: Option<&str>,
) -> Result<(u16, Value, Option<String>), reqwest::Error> {
    let mut rb = c.post(url).header("x-tessera-csrf", "1");
    if !body.is_null() {
        rb = rb.json(&body);
    }
    if let Some(t) = cookie {
        rb = rb.header("cookie", format!("__Host-tessera_rt={t}"));
    }
    let r = rb.send().await?;
    let status = r.status().as_u16();
    let set_cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.split_once('='))
        .map(|(_, v)| v.to_string());
    let body = r.json().await.unwrap_or(Value::Null);
    Ok((status, body, set_cookie))
}

/// Logs alice in on `base` in token mode: (session id, refresh token).
pub async fn login_alice_token(c: &reqwest::Client, base: &str) -> (String, String) {
    let (s, body, _) = post(
        c,
        format!("{base}auth/login"),
        serde_json::json!({"username": "alice", "password": "tessera-demo", "mode": "token"}),
        None,
    )
    .await
    .expect("login request");
    assert_eq!(s, 200, "{body}");
    (
        body["session"]["id"].as_str().expect("sid").to_string(),
        body["refresh_token"].as_str().expect("rt").to_string(),
    )
}
