//! Faults survived, with real processes: the server killed with SIGKILL under load on
//! SQLite, and Redis (appendonly) killed and restarted under a running server.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::binary;
use serde_json::{json, Value};

const CLIENTS: usize = 64;

fn client() -> reqwest::Client {
    // a bound on every request: a store outage must answer, never hang
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client")
}

async fn refresh(c: &reqwest::Client, base: &str, token: &str) -> reqwest::Result<(u16, Value)> {
    let (s, body, _) = binary::post(
        c,
        format!("{base}auth/refresh"),
        json!({"refresh_token": token}),
        None,
    )
    .await?;
    Ok((s, body))
}

async fn get(c: &reqwest::Client, url: String) -> (u16, Value) {
    let r = c.get(url).send().await.expect("request");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_on_sqlite_loses_no_acknowledged_rotation() {
    let db = common::TempDb::new("kill9");
    // a client whose last rotation committed but whose answer died with the process
    // presents the predecessor after the restart: the grace window (at most 30 s)
    // covers the restart
    let extra = ["--refresh-grace", "30"];
    let a = binary::start(&db.url(), &extra);
    let c = client();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(binary::login_alice_token(&c, &a.url).await);
    }
    let acked = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (sid, rt) in clients {
        let c = c.clone();
        let base = a.url.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut token = rt;
            loop {
                match refresh(&c, &base, &token).await {
                    Ok((200, body)) => {
                        token = body["refresh_token"].as_str().expect("rt").to_string();
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok((s, body)) => panic!("rotation refused before the crash: {s} {body}"),
                    Err(_) => return (sid, token), // the server died
                }
            }
        }));
    }
    while acked.load(Ordering::Relaxed) < CLIENTS * 4 && !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut proc = a.proc;
    proc.0.kill().expect("SIGKILL");
    let _ = proc.0.wait();
    let mut last = Vec::new();
    for t in tasks {
        last.push(t.await.expect("client"));
    }
    let total = acked.load(Ordering::Relaxed);

    let b = binary::start(&db.url(), &extra);
    let mut access = String::new();
    for (sid, token) in &last {
        let (s, body) = refresh(&c, &b.url, token).await.expect("request");
        assert_eq!(
            s, 200,
            "last acknowledged token of {sid} after the crash: {body}"
        );
        access = body["access_token"].as_str().expect("at").to_string();
    }
    let r = c
        .get(format!("{}auth/sessions?limit=200", b.url))
        .bearer_auth(&access)
        .send()
        .await
        .expect("sessions");
    let list: Value = r.json().await.expect("json");
    let sessions = list["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), CLIENTS);
    for s in sessions {
        assert_eq!(s["active"], true, "no reuse detection, no revocation: {s}");
    }
    println!(
        "SIGKILL under load (SQLite): {total} acknowledged rotations by {CLIENTS} clients, \
         all {CLIENTS} last tokens refresh after the restart, 0 reuse detections"
    );
}

/// A `redis-server` with `appendonly yes` and `appendfsync always` in its own directory,
/// restartable on the same port.
struct DurableRedis {
    port: u16,
    dir: std::path::PathBuf,
    proc: Option<common::Proc>,
}

impl DurableRedis {
    fn start() -> Option<Self> {
        common::RedisServer::start()?; // availability check (and the CI rule)
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let dir = std::env::temp_dir().join(format!("tessera-aof-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut r = DurableRedis {
            port,
            dir,
            proc: None,
        };
        r.up();
        Some(r)
    }

    fn up(&mut self) {
        let p = common::Proc(
            Command::new("redis-server")
                .args([
                    "--port",
                    &self.port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                ])
                .current_dir(&self.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.proc = Some(p);
    }

    /// SIGKILL (the AOF was fsynced on every write).
    fn kill(&mut self) {
        drop(self.proc.take());
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for DurableRedis {
    fn drop(&mut self) {
        drop(self.proc.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_keeps_sessions_and_an_outage_is_a_quick_503_that_heals_itself() {
    let Some(mut redis) = DurableRedis::start() else {
        return;
    };
    let srv = binary::start(&redis.url(), &[]);
    let c = client();
    let (sid, rt) = binary::login_alice_token(&c, &srv.url).await;
    let (s, body) = refresh(&c, &srv.url, &rt).await.expect("request");
    assert_eq!(s, 200, "{body}");
    let rt = body["refresh_token"].as_str().expect("rt").to_string();
    assert_eq!(get(&c, format!("{}readyz", srv.url)).await.0, 200);

    redis.kill();
    // Redis down: a problem+json 503 `store_unavailable` (the client's 15 s bound would
    // turn a hang into a failure), the token stays valid, /readyz unready, /healthz alive
    let r = c
        .post(format!("{}auth/refresh", srv.url))
        .header("x-tessera-csrf", "1")
        .json(&json!({"refresh_token": rt}))
        .send()
        .await
        .expect("an answer, not a hang");
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert!(r.headers().get("retry-after").is_some());
    let p: Value = r.json().await.expect("problem");
    assert_eq!(p["code"], "store_unavailable", "{p}");
    let (s, body) = get(&c, format!("{}readyz", srv.url)).await;
    assert_eq!(s, 503);
    assert_eq!(body["status"], "unready");
    assert_eq!(body["store"], "unreachable");
    assert_eq!(get(&c, format!("{}healthz", srv.url)).await.0, 200);

    // Redis back (same data directory): the server heals without a restart
    redis.up();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, _) = get(&c, format!("{}readyz", srv.url)).await;
        if s == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "/readyz never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, body) = refresh(&c, &srv.url, &rt).await.expect("request");
    assert_eq!(s, 200, "the session survived the Redis restart: {body}");
    let at = body["access_token"].as_str().expect("at").to_string();
    let r = c
        .get(format!("{}auth/session", srv.url))
        .bearer_auth(at)
        .send()
        .await
        .expect("session");
    let j: Value = r.json().await.expect("json");
    assert_eq!(j["id"], json!(sid));
}
