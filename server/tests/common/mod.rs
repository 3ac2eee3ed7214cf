//! Shared test helpers: a router harness with a manual clock, a loopback server, a
//! throwaway SQLite path and a real `redis-server` on a free port.
#![allow(dead_code)]

pub mod binary;

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
        let r = self.login("alice", "tessera-demo").await;
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

/// A Redis master (optionally with one replica) watched by one real Sentinel.
pub struct SentinelSetup {
    pub master: Option<Proc>,
    pub master_port: u16,
    pub replica: Option<Proc>,
    pub sentinel: Proc,
    pub sentinel_port: u16,
    conf: std::path::PathBuf,
}

impl SentinelSetup {
    /// `None` (with a loud line) when redis-server is missing and `CI` is unset.
    pub fn start(with_replica: bool) -> Option<Self> {
        // availability check (and the CI rule); dropped at once
        RedisServer::start()?;
        // Ports come from `free_port()` and may be taken by a concurrent test before our
        // process binds them: then `wait_port` sees someone else's server. So a setup counts
        // only when our processes are alive and OUR sentinel names OUR master; else retry.
        for _ in 0..5 {
            let mut setup = Self::spawn_once(with_replica);
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
                || !self.replica.as_mut().map_or(true, alive)
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

    /// `SENTINEL get-master-addr-by-name mymaster` names our master's port.
    fn sentinel_knows_master(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", self.sentinel_port)) else {
            return false;
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(1)));
        let cmd = "*3\r\n$8\r\nSENTINEL\r\n$23\r\nget-master-addr-by-name\r\n$8\r\nmymaster\r\n";
        if c.write_all(cmd.as_bytes()).is_err() {
            return false;
        }
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).unwrap_or(0);
        let reply = String::from_utf8_lossy(&buf[..n]);
        reply.starts_with('*') && reply.contains(&format!("\r\n{}\r\n", self.master_port))
    }

    fn spawn_once(with_replica: bool) -> Self {
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
            [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
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
        std::fs::write(
            &conf,
            format!(
                "port {sentinel_port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds mymaster 500\nsentinel failover-timeout mymaster 3000\n"
            ),
        )
        .expect("sentinel conf");
        let sentinel = spawn(vec![conf.display().to_string(), "--sentinel".into()]);
        assert!(wait_port(sentinel_port), "sentinel up");
        SentinelSetup {
            master: Some(master),
            master_port,
            replica,
            sentinel,
            sentinel_port,
            conf,
        }
    }

    pub fn url(&self) -> String {
        format!("redis+sentinel://127.0.0.1:{}/mymaster", self.sentinel_port)
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
    dir: std::path::PathBuf,
}

impl ClusterSetup {
    /// `None` (with a loud line) when redis-server is missing and `CI` is unset.
    pub fn start() -> Option<Self> {
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
            let port = free_port();
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
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
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
                    .args(["-p", &p.to_string(), "cluster", "info"])
                    .output()
                    .expect("cluster info");
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "cluster never became ok");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Some(ClusterSetup { nodes, ports, dir })
    }

    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }
}

impl Drop for ClusterSetup {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
