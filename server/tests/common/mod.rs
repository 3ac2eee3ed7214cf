//! Shared test helpers: a router harness with a manual clock, a loopback server, a
//! throwaway SQLite path and a real `redis-server` on a free port.
#![allow(dead_code)]

pub mod binary;
pub mod dpop;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use serde_json::Value;
use tessera_server::clock::{Clock, ManualClock, SystemClock};
use tessera_server::store::SessionStore;
use tessera_server::{app, AppState, Config};
use tower::ServiceExt as _;

pub const UA: &str = "Mozilla/5.0 TesseraTest/1";

/// A response read to the end.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    /// The `Set-Cookie` line for the refresh cookie, if any.
    pub fn set_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("__Host-tessera_rt="))
            .map(str::to_string)
    }
    /// The refresh token value from `Set-Cookie` (empty when the cookie is being cleared).
    pub fn cookie_token(&self) -> Option<String> {
        let line = self.set_cookie()?;
        let v = line.split(';').next()?.split_once('=')?.1.to_string();
        Some(v)
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    /// Asserts an RFC 9457 problem with `code` and `status`.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json")
        );
        let j = self.json();
        assert_eq!(j["code"], code, "body: {j}");
        assert_eq!(j["status"], status);
        assert!(j["type"].as_str().is_some_and(|t| t.ends_with(code)));
        assert!(j["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(j["detail"].as_str().is_some_and(|t| !t.is_empty()));
    }
}

/// A router with a manual clock and a memory (or given) store, demo users seeded.
pub struct Harness {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub router: Router,
}

pub fn wall_now() -> i64 {
    SystemClock.now()
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_config(Config::for_tests()).await
    }

    pub async fn with_config(mut cfg: Config) -> Self {
        if cfg.store.starts_with("redis") && cfg.master_key_file.is_none() {
            // instances sharing a Redis share one master key (required with Redis)
            let key =
                std::env::temp_dir().join(format!("tessera-harness-{}.key", std::process::id()));
            tessera_server::master_key::MasterKey::load_or_create(&key).expect("master key");
            cfg.master_key_file = Some(key);
        }
        let store = tessera_server::store::open(&cfg.store)
            .await
            .expect("store");
        Self::with_store(cfg, store).await
    }

    pub async fn with_store(cfg: Config, store: Arc<dyn SessionStore>) -> Self {
        let h = Self::with_store_unseeded(cfg, store).await;
        h.state.seed_demo_users().await.expect("seed");
        h
    }

    /// Like [`Harness::with_store`] with an explicit master key (instances sharing one store
    /// share one key, as `--master-key-file` makes them in production).
    #[allow(dead_code)]
    pub async fn with_store_key(
        cfg: Config,
        store: Arc<dyn SessionStore>,
        key: tessera_server::master_key::MasterKey,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(wall_now()));
        let state = AppState::with_master_key(cfg, store, clock.clone(), key)
            .await
            .expect("state");
        state.seed_demo_users().await.expect("seed");
        let router = app(state.clone());
        Harness {
            state,
            clock,
            router,
        }
    }

    /// Like [`Harness::with_store`] but keeps the users already in the store.
    pub async fn with_store_unseeded(cfg: Config, store: Arc<dyn SessionStore>) -> Self {
        let clock = Arc::new(ManualClock::new(wall_now()));
        let state = AppState::new(cfg, store, clock.clone())
            .await
            .expect("state");
        let router = app(state.clone());
        Harness {
            state,
            clock,
            router,
        }
    }

    pub async fn call(&self, mut req: Request<Body>) -> Resp {
        if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        }
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// POST JSON with a browser-like UA and the SDK's CSRF header plus extra headers.
    pub async fn post(&self, path: &str, body: Value, extra: &[(&str, &str)]) -> Resp {
        let mut b = Request::post(path)
            .header("content-type", "application/json")
            .header("user-agent", UA)
            .header("host", "127.0.0.1:8080");
        let mut has_csrf_override = false;
        for (k, v) in extra {
            if k.eq_ignore_ascii_case("x-tessera-csrf") {
                has_csrf_override = true;
                if v.is_empty() {
                    continue;
                }
            }
            b = b.header(*k, *v);
        }
        if !has_csrf_override {
            b = b.header("x-tessera-csrf", "1");
        }
        let body = if body.is_null() {
            Body::empty()
        } else {
            Body::from(body.to_string())
        };
        self.call(b.body(body).expect("request")).await
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Resp {
        let mut b = Request::get(path)
            .header("user-agent", UA)
            .header("host", "127.0.0.1:8080");
        if let Some(t) = bearer {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        self.call(b.body(Body::empty()).expect("request")).await
    }

    pub async fn login(&self, user: &str, password: &str) -> Resp {
        self.post(
            "/auth/login",
            serde_json::json!({"username": user, "password": password}),
            &[],
        )
        .await
    }

    /// alice logged in, cookie mode: (access token, refresh token, session id).
    pub async fn login_alice(&self) -> (String, String, String) {
        self.login_alice_with(&[]).await
    }

    /// [`Harness::login_alice`] with extra request headers (e.g. a DPoP proof).
    pub async fn login_alice_with(&self, extra: &[(&str, &str)]) -> (String, String, String) {
        let r = self
            .post(
                "/auth/login",
                serde_json::json!({"username": "alice", "password": "tessera-demo"}),
                extra,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        let j = r.json();
        (
            j["access_token"].as_str().unwrap_or_default().to_string(),
            r.cookie_token().unwrap_or_default(),
            j["session"]["id"].as_str().unwrap_or_default().to_string(),
        )
    }

    pub async fn refresh_cookie(&self, token: &str) -> Resp {
        let cookie = format!("__Host-tessera_rt={token}");
        self.post("/auth/refresh", Value::Null, &[("cookie", &cookie)])
            .await
    }

    /// Introspects `token` with the configured resource-server secret.
    pub async fn introspect(&self, token: &str) -> Value {
        let auth = format!(
            "Bearer {}",
            self.state
                .config()
                .introspection_secret
                .clone()
                .unwrap_or_default()
        );
        self.post(
            "/auth/introspect",
            serde_json::json!({ "token": token }),
            &[("authorization", &auth)],
        )
        .await
        .json()
    }
}

// ---- requests and TOTP codes shared by the hardening and log tests ----------------------

/// RFC 6238 code of the demo secret at `t` (computed here, independently of the server).
pub fn bob_code(t: i64) -> String {
    use hmac::{Hmac, Mac};
    let secret = tessera_server::state::DEMO_TOTP_SECRET;
    let mut bits = 0u64;
    let mut n = 0;
    let mut key = Vec::new();
    for c in secret.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => continue,
        };
        bits = (bits << 5) | u64::from(v);
        n += 5;
        if n >= 8 {
            n -= 8;
            key.push((bits >> n) as u8);
        }
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).expect("key");
    mac.update(&((t / 30) as u64).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0xf) as usize;
    let bin = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]);
    format!("{:06}", bin % 1_000_000)
}

/// A code that is not valid at `t` (nor in the ±1 step window).
pub fn wrong_code(t: i64) -> String {
    let valid: Vec<String> = [-30, 0, 30].iter().map(|d| bob_code(t + d)).collect();
    (0..1_000_000)
        .map(|i| format!("{i:06}"))
        .find(|c| !valid.contains(c))
        .unwrap_or_default()
}

pub fn json_post(
    path: &str,
    body: &Value,
    peer: SocketAddr,
    extra: &[(&str, &str)],
) -> Request<Body> {
    let mut b = Request::post(path)
        .header("content-type", "application/json")
        .header("user-agent", UA)
        .header("x-tessera-csrf", "1");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    let mut req = b.body(Body::from(body.to_string())).expect("request");
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

pub fn peer(i: u32) -> SocketAddr {
    SocketAddr::from(([198, 51, (i >> 8) as u8, i as u8], 40000))
}

/// Bob's password step from `from`: the `mfa_token` it hands out.
pub async fn bob_mfa_token(h: &Harness, from: SocketAddr) -> String {
    let r = h
        .call(json_post(
            "/auth/login",
            &serde_json::json!({"username": "bob", "password": "tessera-demo"}),
            from,
            &[],
        ))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()["mfa_token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh path for a SQLite file under the temp dir; removes the files on drop.
pub struct TempDb(pub std::path::PathBuf);

impl TempDb {
    pub fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!(
            "tessera-test-{tag}-{}-{n}-{}.db",
            std::process::id(),
            tessera_server::secret::random_token()[..8].replace(['-', '_'], "x")
        ));
        TempDb(p)
    }
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", ".key"] {
            let mut s = self.0.clone().into_os_string();
            s.push(suffix);
            let _ = std::fs::remove_file(s);
        }
    }
}

/// A real `redis-server` on a free loopback port, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// Starts one, or returns `None` after printing a loud skip line when `redis-server`
    /// is not installed (panics instead when `CI` is set).
    pub fn start() -> Option<Self> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok();
        if !found {
            if std::env::var_os("CI").is_some() {
                panic!("redis-server is not installed but CI is set: Redis tests must run");
            }
            eprintln!("\n!!!!!!!! SKIPPING REDIS TEST: redis-server not found on PATH (install redis-server) !!!!!!!!\n");
            return None;
        }
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let mut srv = RedisServer { child, port };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(srv);
                }
                if let Ok(Some(_)) = srv.child.try_wait() {
                    break; // port taken in the meantime; try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = srv.child.kill();
        }
        panic!("redis-server did not start");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server on a bound loopback port (the "real deal").
pub struct LiveServer {
    pub base: String,
    pub state: AppState,
    handle: tokio::task::JoinHandle<()>,
}

impl LiveServer {
    pub async fn start(state: AppState) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = app(state.clone());
        let limits = tessera_server::serve::Limits::from_config(state.config());
        let handle = tokio::spawn(async move {
            let _ = tessera_server::serve::serve(
                listener,
                router,
                limits,
                std::future::pending::<()>(),
            )
            .await;
        });
        LiveServer {
            base: format!("http://{addr}"),
            state,
            handle,
        }
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A free port for a Redis Cluster node: at most 55535, since a node also listens on its port
/// plus 10000 (the cluster bus) and refuses to start above that; the bus port must be free
/// too. An ephemeral port from `free_port()` is above 55535 about one time in five: that made
/// the cluster tests fail now and then.
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        let bus_free = || std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok();
        if port <= 55_535 && bus_free() {
            return port;
        }
    }
}

fn wait_port(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A killable child process.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Test certificates made with the `openssl` command: a CA and a server certificate for
/// `127.0.0.1` / `localhost` signed by it. Removed on drop.
pub struct TlsFiles {
    pub dir: std::path::PathBuf,
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl TlsFiles {
    /// `None` (with a loud line) when `openssl` is missing and `CI` is unset.
    pub fn generate() -> Option<Self> {
        let dir = std::env::temp_dir().join(format!(
            "tessera-tls-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("tls dir");
        let run = |args: &[&str]| -> bool {
            Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !run(&["version"]) {
            if std::env::var_os("CI").is_some() {
                panic!("openssl is not installed but CI is set: the TLS tests must run");
            }
            eprintln!("\n!!!!!!!! SKIPPING TLS TEST: openssl not found on PATH !!!!!!!!\n");
            return None;
        }
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("ext");
        for args in [
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "ca.key",
            ][..],
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=tessera-test-ca",
            ][..],
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "srv.key",
            ][..],
            &[
                "req",
                "-new",
                "-key",
                "srv.key",
                "-out",
                "srv.csr",
                "-subj",
                "/CN=localhost",
            ][..],
            &[
                "x509",
                "-req",
                "-in",
                "srv.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "srv.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ][..],
        ] {
            assert!(run(args), "openssl {args:?}");
        }
        Some(TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("srv.pem"),
            key: dir.join("srv.key"),
            dir,
        })
    }

    /// redis-server / sentinel settings serving TLS only (`port 0`), replication over TLS.
    fn server_args(&self) -> Vec<String> {
        vec![
            "--tls-cert-file".into(),
            self.cert.display().to_string(),
            "--tls-key-file".into(),
            self.key.display().to_string(),
            "--tls-ca-cert-file".into(),
            self.ca.display().to_string(),
            "--tls-auth-clients".into(),
            "no".into(),
            "--tls-replication".into(),
            "yes".into(),
        ]
    }

    /// `redis-cli` flags to reach such a server.
    fn cli_args(&self) -> Vec<String> {
        vec![
            "--tls".into(),
            "--cacert".into(),
            self.ca.display().to_string(),
        ]
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How a Sentinel setup or a Cluster protects itself (default: not at all).
#[derive(Clone, Default)]
pub struct RedisSecurity {
    /// `requirepass` and `masterauth` on every data node (Sentinel: also `auth-pass`).
    pub password: Option<String>,
    /// `requirepass` on the Sentinel itself.
    pub sentinel_password: Option<String>,
    /// TLS only, with these files.
    pub tls: Option<Arc<TlsFiles>>,
}

impl RedisSecurity {
    /// Data-node flags: the port (plain, or TLS with the plain one off), auth, TLS files.
    fn node_args(&self, port: u16) -> Vec<String> {
        let mut a: Vec<String> = match &self.tls {
            Some(t) => {
                let mut v = vec![
                    "--port".into(),
                    "0".into(),
                    "--tls-port".into(),
                    port.to_string(),
                ];
                v.extend(t.server_args());
                v
            }
            None => vec!["--port".into(), port.to_string()],
        };
        if let Some(p) = &self.password {
            a.extend([
                "--requirepass".into(),
                p.clone(),
                "--masterauth".into(),
                p.clone(),
            ]);
        }
        a
    }

    /// `redis-cli` flags for a data node (`data`) or the Sentinel.
    fn cli(&self, port: u16, data: bool) -> Vec<String> {
        let mut a = vec![
            "-p".to_string(),
            port.to_string(),
            "--no-auth-warning".into(),
        ];
        if let Some(t) = &self.tls {
            a.extend(t.cli_args());
        }
        let pw = if data {
            &self.password
        } else {
            &self.sentinel_password
        };
        if let Some(p) = pw {
            a.extend(["-a".into(), p.clone()]);
        }
        a
    }
}

/// A Redis master (optionally with one replica) watched by one real Sentinel.
pub struct SentinelSetup {
    pub master: Option<Proc>,
    pub master_port: u16,
    pub replica: Option<Proc>,
    pub sentinel: Proc,
    pub sentinel_port: u16,
    pub security: RedisSecurity,
    conf: std::path::PathBuf,
}

impl SentinelSetup {
    /// `None` (with a loud line) when redis-server is missing and `CI` is unset.
    /// With a replica this is the failover tests' setup: the Sentinel calls a master down after
    /// 500 ms without answers. Without one no failover can happen, and the Sentinel waits 10 s:
    /// a master that a loaded machine left unanswered for 500 ms was flagged `s_down`, and
    /// clients refuse such a master ("Master with given name not found in sentinel").
    pub fn start(with_replica: bool) -> Option<Self> {
        let down_after = if with_replica { 500 } else { 10_000 };
        Self::start_with(with_replica, RedisSecurity::default(), down_after)
    }

    /// [`SentinelSetup::start`] with passwords and/or TLS (no failover tested: 10 s).
    pub fn start_secured(with_replica: bool, security: RedisSecurity) -> Option<Self> {
        Self::start_with(with_replica, security, 10_000)
    }

    fn start_with(with_replica: bool, security: RedisSecurity, down_after_ms: u32) -> Option<Self> {
        // availability check (and the CI rule); dropped at once
        RedisServer::start()?;
        // Ports come from `free_port()` and may be taken by a concurrent test before our
        // process binds them: then `wait_port` sees someone else's server. So a setup counts
        // only when our processes are alive and OUR sentinel names OUR master; else retry.
        for _ in 0..5 {
            let mut setup = Self::spawn_once(with_replica, &security, down_after_ms);
            if setup.is_healthy() {
                return Some(setup);
            }
        }
        panic!("no healthy Sentinel setup after 5 attempts");
    }

    fn is_healthy(&mut self) -> bool {
        let alive = |p: &mut Proc| matches!(p.0.try_wait(), Ok(None));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !alive(&mut self.sentinel)
                || !self.master.as_mut().is_some_and(alive)
                || !self.replica.as_mut().is_none_or(alive)
            {
                return false;
            }
            if self.sentinel_knows_master() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// `SENTINEL MASTER mymaster` names our master's port, flagged `master` and nothing else
    /// (no `s_down`, `o_down`, `disconnected`): what a client checks before it connects.
    fn sentinel_knows_master(&self) -> bool {
        let out = Command::new("redis-cli")
            .args(self.security.cli(self.sentinel_port, false))
            .args(["SENTINEL", "MASTER", "mymaster"])
            .output();
        out.is_ok_and(|o| {
            let text = String::from_utf8_lossy(&o.stdout);
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            // alternating field and value lines
            let field = |name: &str| {
                lines
                    .iter()
                    .position(|l| *l == name)
                    .and_then(|i| lines.get(i + 1).copied())
            };
            field("port") == Some(self.master_port.to_string().as_str())
                && field("flags") == Some("master")
        })
    }

    fn spawn_once(with_replica: bool, sec: &RedisSecurity, down_after_ms: u32) -> Self {
        let spawn = |args: Vec<String>| -> Proc {
            Proc(
                Command::new("redis-server")
                    .args(args)
                    // A replica's full sync writes an RDB file into its working dir.
                    .current_dir(std::env::temp_dir())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn redis-server"),
            )
        };
        let base = |port: u16| -> Vec<String> {
            let mut a = sec.node_args(port);
            a.extend(
                ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
                    .iter()
                    .map(|s| s.to_string()),
            );
            a
        };
        let master_port = free_port();
        let mut margs = base(master_port);
        margs.extend(["--repl-diskless-sync-delay".to_string(), "0".to_string()]);
        let master = spawn(margs);
        assert!(wait_port(master_port), "master up");
        let replica = with_replica.then(|| {
            let p = free_port();
            let mut args = base(p);
            args.extend([
                "--replicaof".to_string(),
                "127.0.0.1".to_string(),
                master_port.to_string(),
            ]);
            let r = spawn(args);
            assert!(wait_port(p), "replica up");
            r
        });
        let sentinel_port = free_port();
        let conf = std::env::temp_dir().join(format!(
            "tessera-sentinel-{}-{sentinel_port}.conf",
            std::process::id()
        ));
        let mut text = match &sec.tls {
            Some(t) => format!(
                "port 0\ntls-port {sentinel_port}\ntls-cert-file {}\ntls-key-file {}\n\
                 tls-ca-cert-file {}\ntls-auth-clients no\ntls-replication yes\n",
                t.cert.display(),
                t.key.display(),
                t.ca.display()
            ),
            None => format!("port {sentinel_port}\n"),
        };
        text.push_str(&format!(
            "bind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {master_port} 1\n\
             sentinel down-after-milliseconds mymaster {down_after_ms}\n\
             sentinel failover-timeout mymaster 3000\n"
        ));
        if let Some(p) = &sec.password {
            text.push_str(&format!("sentinel auth-pass mymaster {p}\n"));
        }
        if let Some(p) = &sec.sentinel_password {
            text.push_str(&format!("requirepass {p}\n"));
        }
        std::fs::write(&conf, text).expect("sentinel conf");
        let sentinel = spawn(vec![conf.display().to_string(), "--sentinel".into()]);
        assert!(wait_port(sentinel_port), "sentinel up");
        SentinelSetup {
            master: Some(master),
            master_port,
            replica,
            sentinel,
            sentinel_port,
            security: sec.clone(),
            conf,
        }
    }

    /// The store URL, with the data nodes' and the Sentinel's credentials and TLS.
    pub fn url(&self) -> String {
        let sec = &self.security;
        format!(
            "{}+sentinel://{}127.0.0.1:{}/mymaster{}",
            if sec.tls.is_some() { "rediss" } else { "redis" },
            sec.password
                .as_ref()
                .map(|p| format!(":{p}@"))
                .unwrap_or_default(),
            self.sentinel_port,
            sec.sentinel_password
                .as_ref()
                .map(|p| format!("?sentinel_password={p}"))
                .unwrap_or_default()
        )
    }
}

impl Drop for SentinelSetup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.conf);
    }
}

/// A real three-master Redis Cluster on loopback (no replicas), torn down on drop.
pub struct ClusterSetup {
    pub nodes: Vec<Proc>,
    pub ports: Vec<u16>,
    pub security: RedisSecurity,
    dir: std::path::PathBuf,
}

impl ClusterSetup {
    /// `None` (with a loud line) when redis-server is missing and `CI` is unset.
    pub fn start() -> Option<Self> {
        Self::start_secured(RedisSecurity::default())
    }

    /// [`ClusterSetup::start`] with a password and/or TLS on every node.
    pub fn start_secured(sec: RedisSecurity) -> Option<Self> {
        RedisServer::start()?;
        let dir = std::env::temp_dir().join(format!(
            "tessera-cluster-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let mut nodes = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..3 {
            let port = free_cluster_port();
            let mut tls_cluster: Vec<String> = Vec::new();
            if sec.tls.is_some() {
                tls_cluster.extend(["--tls-cluster".into(), "yes".into()]);
            }
            let child = Command::new("redis-server")
                .args(sec.node_args(port))
                .args(&tls_cluster)
                .args([
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "2000",
                    "--cluster-config-file",
                    &dir.join(format!("nodes-{port}.conf")).display().to_string(),
                ])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            nodes.push(Proc(child));
            assert!(wait_port(port), "cluster node up");
            ports.push(port);
        }
        let mut args: Vec<String> = sec.cli(ports[0], true);
        args.extend(["--cluster".into(), "create".into()]);
        args.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
        args.extend([
            "--cluster-replicas".into(),
            "0".into(),
            "--cluster-yes".into(),
        ]);
        let out = Command::new("redis-cli")
            .args(&args)
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        // wait until every node reports cluster_state:ok
        let deadline = Instant::now() + Duration::from_secs(20);
        for p in &ports {
            loop {
                let info = Command::new("redis-cli")
                    .args(sec.cli(*p, true))
                    .args(["cluster", "info"])
                    .output()
                    .expect("cluster info");
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "cluster never became ok");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Some(ClusterSetup {
            nodes,
            ports,
            security: sec,
            dir,
        })
    }

    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let sec = &self.security;
        format!(
            "{}+cluster://{}{}",
            if sec.tls.is_some() { "rediss" } else { "redis" },
            sec.password
                .as_ref()
                .map(|p| format!(":{p}@"))
                .unwrap_or_default(),
            hosts.join(",")
        )
    }
}

impl Drop for ClusterSetup {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
