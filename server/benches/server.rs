//! `cargo bench -p tessera-server` — prints numbers, asserts nothing about speed.
//!
//! Runs the real `tessera-server` binary (release) as a separate process on loopback, seeds
//! 100,000 live sessions into its store, then drives it with 64 concurrent keep-alive HTTP
//! clients from this process (so client and server share the machine's cores):
//!
//! 1. raw in-process Ed25519 verification rate (ed25519-dalek, all cores) and the full
//!    in-process JWT check (`KeySet::verify`) rate, for comparison;
//! 2. `POST /auth/introspect` side by side, `TESSERA_BENCH_ROUNDS` rounds (default 3, order
//!    rotated each round), with the same load generator against
//!    - tessera-server (SQLite store, every layer of the real app, session lookup),
//!    - a stateless axum verifier (this bench binary re-run as a child process: the same
//!      `KeySet::verify`, the same bearer-secret check, JSON body and response, no store),
//!    - the Node express + jose peer `bench/server-peer/peer.mjs` (EdDSA, typ, iss, aud,
//!      exp; install it once with `npm ci --prefix bench/server-peer`),
//!
//!    each reported as req/s and requests per server CPU-second (user + system time of the
//!    server process from `/proc/<pid>/stat`, before and after);
//! 3. refresh rotations per second with SQLite, with Redis, and with two tessera-server
//!    instances on one Redis (each client alternates between them), each client rotating
//!    its own sessions in token mode, then checks zero lost or duplicated family members;
//! 4. the server process's peak resident memory (VmHWM) with the 100,000 live sessions;
//! 5. DPoP on and off side by side: `POST /auth/introspect` of DPoP-bound tokens (`cnf`)
//!    against bearer tokens, alternating rounds; and the resource-server verifier
//!    (`tessera_server::verifier`, in-process, every core) with bearer tokens, with DPoP
//!    tokens and ES256 proofs (as browsers sign them) and with EdDSA proofs.
//!
//! Bounded: each load phase runs for `PHASE_SECS` seconds or `MAX_REQUESTS` requests.
//! Environment knobs: `TESSERA_BENCH_SECS` (default 5), `TESSERA_BENCH_SESSIONS` (100000),
//! `TESSERA_BENCH_ROUNDS` (3), `TESSERA_BENCH_ONLY=introspect` (only phases 1 and 2) or
//! `=dpop` (only phase 5),
//! `TESSERA_BENCH_SERVER_BIN` (the tessera-server binary to measure; default: the one cargo
//! built), `TESSERA_BENCH_BASELINE_BIN` (a second tessera-server binary, e.g. `main`'s, run
//! on the same store and measured in the same rounds of phase 2: an A/B in one run).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Signer as _, SigningKey};
use tessera_server::jwt::{AccessClaims, KeySet, StoredKey};
use tessera_server::secret::{random_bytes, random_token, RefreshToken};
use tessera_server::store::{SessionRecord, SessionStore, UserRecord};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

// The tests' helpers: the bench starts its Redis the same way the conformance suite does.
#[path = "../tests/common/mod.rs"]
mod common;

const CLIENTS: usize = 64;
const MAX_REQUESTS: usize = 2_000_000;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------
// a minimal keep-alive HTTP/1.1 client, so the client side costs as little CPU as possible

/// The resource-server secret the bench server is started with (introspection needs it).
const BENCH_SECRET: &str = "tessera-bench-introspection-secret-0123456789";

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// POSTs JSON and returns (status, body).
    async fn post(&mut self, path: &str, body: &str) -> std::io::Result<(u16, Vec<u8>)> {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {BENCH_SECRET}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.write_all(req.as_bytes()).await?;
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while self.buf.len() < end + 4 + len {
                    let n = self.stream.read(&mut chunk).await?;
                    if n == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                return Ok((status, self.buf[end + 4..end + 4 + len].to_vec()));
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn json_str<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let start = body.find(&pat)? + pat.len();
    let end = body[start..].find('"')? + start;
    Some(&body[start..end])
}

// ---------------------------------------------------------------------------------------
// the server process

struct Server {
    child: Child,
    addr: SocketAddr,
}

/// The master key file the bench's servers use (secrets at rest are sealed under it, so
/// seeding writes through a `SealedStore` with the same key).
fn bench_master_key() -> (std::path::PathBuf, tessera_server::master_key::MasterKey) {
    let path = std::env::temp_dir().join(format!("tessera-bench-{}.key", std::process::id()));
    let (key, _) =
        tessera_server::master_key::MasterKey::load_or_create(&path).expect("bench master key");
    (path, key)
}

fn sealed(store: impl SessionStore) -> tessera_server::store::sealed::SealedStore {
    tessera_server::store::sealed::SealedStore::new(Arc::new(store), bench_master_key().1)
}

/// Reads the child's first stdout line and takes the `http://HOST:PORT` in it.
fn spawn_and_read_addr(mut cmd: Command, what: &str) -> Server {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .unwrap_or_else(|e| panic!("{what}: no address line: {e}"));
    let addr = line
        .split_once("http://")
        .map(|(_, rest)| rest.trim().trim_end_matches('/'))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no address in {line:?}"));
    Server { child, addr }
}

impl Server {
    fn start(store: &str) -> Server {
        let bin = std::env::var_os("TESSERA_BENCH_SERVER_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_tessera-server").into());
        Server::start_bin(store, &bin)
    }

    /// [`start`](Self::start) with an explicit tessera-server binary.
    fn start_bin(store: &str, bin: &std::ffi::OsStr) -> Server {
        let key = bench_master_key().0;
        let mut cmd = Command::new(bin);
        cmd.args(["--listen", "127.0.0.1:0", "--store", store, "--log", "warn"])
            .env("TESSERA_INTROSPECTION_SECRET", BENCH_SECRET)
            .arg("--master-key-file")
            .arg(&key)
            .args([
                "--access-ttl",
                "3600",
                "--idle-timeout",
                "86400",
                "--absolute-timeout",
                "86400",
            ]);
        spawn_and_read_addr(cmd, "tessera-server")
    }

    /// This bench binary re-run as the stateless axum verifier (see [`stateless_verifier`]),
    /// verifying with `verifier` (`keyset` or `jsonwebtoken`).
    fn stateless(keys_json: &str, verifier: &str) -> Server {
        let mut cmd = Command::new(std::env::current_exe().expect("bench binary path"));
        cmd.env(ROLE_ENV, "stateless-verifier")
            .env("TESSERA_BENCH_VERIFIER", verifier)
            .env("TESSERA_BENCH_KEYS", keys_json);
        spawn_and_read_addr(cmd, "stateless verifier")
    }

    /// The Node express + jose peer, or `None` (with a loud line) when it is not installed.
    fn node_peer(ks: &KeySet) -> Option<Server> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/server-peer");
        let installed =
            dir.join("node_modules/express").is_dir() && dir.join("node_modules/jose").is_dir();
        let node = Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok();
        if !installed || !node {
            println!("!!!!!!!! Node peer SKIPPED: needs node and `npm ci --prefix bench/server-peer` !!!!!!!!");
            return None;
        }
        let jwks = ks.jwks();
        let key = &jwks["keys"][0];
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("peer.mjs"))
            .env("PEER_JWK_X", key["x"].as_str().expect("x"))
            .env("PEER_KID", key["kid"].as_str().expect("kid"))
            .env("PEER_ISSUER", ks.issuer())
            .env("PEER_AUDIENCE", ks.audience())
            .env("PEER_SECRET", BENCH_SECRET);
        Some(spawn_and_read_addr(cmd, "node peer"))
    }

    /// CPU time (user + system) the server process has used so far, in microseconds.
    fn cpu_us(&self) -> u64 {
        proc_cpu_us(&self.child.id().to_string())
    }

    fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// the stateless axum verifier (this binary, re-run with `ROLE_ENV=stateless-verifier`)

/// Selects the child role of this bench binary.
const ROLE_ENV: &str = "TESSERA_BENCH_ROLE";

struct Stateless {
    keys: KeySet,
    /// `Some`: verify with `jsonwebtoken::decode` (the common axum idiom) instead of
    /// tessera's `KeySet::verify`.
    jwt: Option<(jsonwebtoken::DecodingKey, jsonwebtoken::Validation)>,
    secret: [u8; 32],
}

#[derive(serde::Deserialize)]
struct TokenBody {
    token: String,
}

#[derive(serde::Serialize)]
struct Active {
    active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    claims: Option<AccessClaims>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
}

async fn stateless_introspect(
    axum::extract::State(v): axum::extract::State<Arc<Stateless>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse as _;
    use sha2::Digest as _;
    // the same constant-time comparison of SHA-256 digests tessera-server's policy does
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    let allowed = presented.is_some_and(|p| {
        let got: [u8; 32] = sha2::Sha256::digest(p.as_bytes()).into();
        got.iter()
            .zip(v.secret.iter())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0
    });
    if !allowed {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Ok(req) = serde_json::from_slice::<TokenBody>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let now = tessera_server::clock::Clock::now(&tessera_server::clock::SystemClock);
    let claims = match &v.jwt {
        None => v.keys.verify(&req.token, now).ok(),
        Some((key, validation)) => {
            jsonwebtoken::decode::<AccessClaims>(&req.token, key, validation)
                .ok()
                .map(|d| d.claims)
        }
    };
    axum::Json(Active {
        active: claims.is_some(),
        token_type: claims.as_ref().map(|_| "Bearer"),
        claims,
    })
    .into_response()
}

/// A minimal stateless resource-server verifier in axum's idioms: what tessera-server's
/// introspection costs without its store lookup and its middleware. Prints its address.
fn stateless_verifier() {
    use sha2::Digest as _;
    let keys: Vec<StoredKey> =
        serde_json::from_str(&std::env::var("TESSERA_BENCH_KEYS").expect("TESSERA_BENCH_KEYS"))
            .expect("keys json");
    let keys = KeySet::new(keys, "tessera", "tessera", 5).expect("keyset");
    let jwt =
        (std::env::var("TESSERA_BENCH_VERIFIER").as_deref() == Ok("jsonwebtoken")).then(|| {
            let x = tessera_server::secret::b64(&keys.signing_public_key());
            let key = jsonwebtoken::DecodingKey::from_ed_components(&x).expect("ed key");
            let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
            v.set_issuer(&["tessera"]);
            v.set_audience(&["tessera"]);
            v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            v.leeway = 5;
            (key, v)
        });
    let state = Arc::new(Stateless {
        keys,
        jwt,
        secret: sha2::Sha256::digest(BENCH_SECRET.as_bytes()).into(),
    });
    let app = axum::Router::new()
        .route(
            "/auth/introspect",
            axum::routing::post(stateless_introspect),
        )
        .with_state(state);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!(
            "stateless verifier listening on http://{}/",
            listener.local_addr().expect("addr")
        );
        axum::serve(listener, app).await.expect("serve");
    });
}

// ---------------------------------------------------------------------------------------
// seeding

async fn seed(store: &dyn SessionStore, n: usize) -> Vec<(String, String)> {
    let user = UserRecord {
        id: "user-bench".into(),
        username: "bench".into(),
        password_hash: "x".into(),
        totp_secret: None,
    };
    let now = tessera_server::clock::Clock::now(&tessera_server::clock::SystemClock);
    // the key the server will load from the same store
    let token_key = &tessera_server::state::load_token_key(store)
        .await
        .expect("token key");
    let mut out = Vec::with_capacity(n);
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        // spread over many users so per-user indexes stay realistic
        let mut u = user.clone();
        u.id = format!("user-bench-{}", i % 10_000);
        let mut s = SessionRecord::new(random_token(), &u, now, 86_400, false);
        s.address = "127.0.0.1".into();
        let rt = RefreshToken::generate(token_key);
        batch.push((s.clone(), rt.to_ref()));
        out.push((s.sid, rt.encode()));
        if batch.len() == 10_000 {
            store.create_sessions(&batch).await.expect("seed");
            batch.clear();
        }
    }
    store.create_sessions(&batch).await.expect("seed");
    out
}

async fn keyset(store: &dyn SessionStore) -> KeySet {
    let keys: Vec<StoredKey> = serde_json::from_str(
        &store
            .get_meta("signing_keys")
            .await
            .expect("meta")
            .expect("server created keys"),
    )
    .expect("keys");
    KeySet::new(keys, "tessera", "tessera", 30).expect("keyset")
}

fn mint(ks: &KeySet, sid: &str, now: i64) -> String {
    mint_bound(ks, sid, now, None)
}

/// An access token for `sid`, bound to the DPoP key `jkt` when given.
fn mint_bound(ks: &KeySet, sid: &str, now: i64, jkt: Option<&str>) -> String {
    ks.sign(&AccessClaims {
        iss: "tessera".into(),
        aud: "tessera".into(),
        sub: "user-bench".into(),
        sid: sid.into(),
        iat: now,
        exp: now + 3600,
        jti: random_token(),
        username: "bench".into(),
        nbf: None,
        cnf: jkt.map(|j| tessera_server::jwt::Confirmation { jkt: j.into() }),
    })
    .expect("sign")
}

// ---------------------------------------------------------------------------------------
// phases

fn proc_cpu_us(pid: &str) -> u64 {
    let tck = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(100);
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            let ut: u64 = rest.get(11)?.parse().ok()?;
            let st: u64 = rest.get(12)?.parse().ok()?;
            Some((ut + st) * 1_000_000 / tck)
        })
        .unwrap_or(0)
}

/// Runs `f` on every core for `secs`; returns (operations per second of wall time,
/// CPU microseconds per operation). The CPU figure does not depend on what else the
/// machine is doing.
fn measure(secs: f64, f: &(dyn Fn() -> bool + Sync)) -> (f64, f64) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let stop = AtomicBool::new(false);
    let cpu0 = proc_cpu_us("self");
    let total = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                sc.spawn(|| {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        assert!(f());
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        hs.into_iter().map(|h| h.join().unwrap_or(0)).sum::<u64>()
    });
    let cpu = proc_cpu_us("self").saturating_sub(cpu0) as f64;
    (total as f64 / secs, cpu / total.max(1) as f64)
}

/// Raw Ed25519 `verify_strict` over a JWT-sized message, and the full in-process JWT check.
/// Alternated, best of three each: (raw rate, raw CPU us/op, full rate, full CPU us/op).
fn raw_verify_rate(ks: &KeySet, token: &str, secs: f64) -> (f64, f64, f64, f64) {
    let sk = SigningKey::from_bytes(&random_bytes());
    let vk = sk.verifying_key();
    let msg = token
        .rsplit_once('.')
        .map(|(m, _)| m.as_bytes().to_vec())
        .unwrap_or_default();
    let sig: Signature = sk.sign(&msg);
    let now = tessera_server::clock::Clock::now(&tessera_server::clock::SystemClock);
    let (mut raw, mut raw_cpu, mut full, mut full_cpu) = (0f64, f64::MAX, 0f64, f64::MAX);
    for _ in 0..3 {
        let (r, c) = measure(secs, &|| vk.verify_strict(&msg, &sig).is_ok());
        raw = raw.max(r);
        raw_cpu = raw_cpu.min(c);
        let (r, c) = measure(secs, &|| ks.verify(token, now).is_ok());
        full = full.max(r);
        full_cpu = full_cpu.min(c);
    }
    (raw, raw_cpu, full, full_cpu)
}

struct LoadResult {
    ok: u64,
    errors: u64,
    secs: f64,
    p50_us: u64,
    p99_us: u64,
}

async fn introspection_load(addr: SocketAddr, tokens: Arc<Vec<String>>, secs: u64) -> LoadResult {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let per_client = MAX_REQUESTS / CLIENTS;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let tokens = tokens.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await.expect("connect");
            let mut lat = Vec::with_capacity(16_384);
            let (mut ok, mut err) = (0u64, 0u64);
            let mut i = c * 7919;
            while Instant::now() < deadline && lat.len() < per_client {
                let t = &tokens[i % tokens.len()];
                i += 1;
                let body = format!("{{\"token\":\"{t}\"}}");
                let t0 = Instant::now();
                match conn.post("/auth/introspect", &body).await {
                    Ok((200, b)) if find(&b, b"\"active\":true").is_some() => ok += 1,
                    Ok(_) => err += 1,
                    Err(_) => {
                        err += 1;
                        conn = Conn::connect(addr).await.expect("reconnect");
                    }
                }
                lat.push(t0.elapsed().as_micros() as u32);
            }
            (ok, err, lat)
        }));
    }
    collect(tasks, start).await
}

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<(u64, u64, Vec<u32>)>>,
    start: Instant,
) -> LoadResult {
    let (mut ok, mut errors, mut all) = (0, 0, Vec::new());
    for t in tasks {
        let (o, e, l) = t.await.expect("join");
        ok += o;
        errors += e;
        all.extend(l);
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as u64
    };
    LoadResult {
        ok,
        errors,
        secs,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    }
}

/// Each client rotates its own sessions (round-robin over `per_client` sessions) in token
/// mode; with several `addrs` (instances sharing one store), each session goes to the next
/// instance on each visit. Returns the load result and, per session, how many rotations
/// were acknowledged.
async fn rotation_load(
    addrs: &[SocketAddr],
    sessions: Vec<(String, String)>,
    secs: u64,
) -> (LoadResult, Vec<(String, u64)>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let per = (sessions.len() / CLIENTS).max(1);
    let mut tasks = Vec::new();
    let mut owned = Vec::new();
    for c in 0..CLIENTS {
        let mine: Vec<(String, String)> =
            sessions.iter().skip(c * per).take(per).cloned().collect();
        owned.push(mine.iter().map(|(sid, _)| sid.clone()).collect::<Vec<_>>());
        let addrs = addrs.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut mine = mine;
            let mut counts = vec![0u64; mine.len()];
            let mut conns = Vec::new();
            for a in &addrs {
                conns.push(Conn::connect(*a).await.expect("connect"));
            }
            let mut lat = Vec::with_capacity(16_384);
            let (mut ok, mut err) = (0u64, 0u64);
            let mut i = 0usize;
            while Instant::now() < deadline
                && lat.len() < MAX_REQUESTS / CLIENTS
                && !mine.is_empty()
            {
                let k = i % mine.len();
                let j = (k + i / mine.len()) % conns.len();
                i += 1;
                let body = format!("{{\"refresh_token\":\"{}\"}}", mine[k].1);
                let t0 = Instant::now();
                match conns[j].post("/auth/refresh", &body).await {
                    Ok((200, b)) => {
                        let s = String::from_utf8_lossy(&b);
                        match json_str(&s, "refresh_token") {
                            Some(t) => {
                                mine[k].1 = t.to_string();
                                counts[k] += 1;
                                ok += 1;
                            }
                            None => err += 1,
                        }
                    }
                    Ok(_) => err += 1,
                    Err(_) => {
                        err += 1;
                        conns[j] = Conn::connect(addrs[j]).await.expect("reconnect");
                    }
                }
                lat.push(t0.elapsed().as_micros() as u32);
            }
            (ok, err, lat, counts)
        }));
    }
    let (mut ok, mut errors, mut all, mut acks) = (0, 0, Vec::new(), Vec::new());
    for (t, sids) in tasks.into_iter().zip(owned) {
        let (o, e, l, counts) = t.await.expect("join");
        ok += o;
        errors += e;
        all.extend(l);
        acks.extend(sids.into_iter().zip(counts));
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as u64
    };
    (
        LoadResult {
            ok,
            errors,
            secs,
            p50_us: pct(0.50),
            p99_us: pct(0.99),
        },
        acks,
    )
}

/// Compares acknowledged rotations with the generations in the store.
async fn audit(store: &dyn SessionStore, acks: &[(String, u64)]) -> (u64, u64, u64) {
    let (mut lost, mut dup, mut revoked) = (0, 0, 0);
    for (sid, n) in acks {
        match store.get_session(sid).await.ok().flatten() {
            Some(s) => {
                let g = s.generation as u64;
                if g < *n {
                    lost += 1;
                }
                if g > *n {
                    dup += 1;
                }
                if s.revoked_at.is_some() {
                    revoked += 1;
                }
            }
            None => lost += 1,
        }
    }
    (lost, dup, revoked)
}

fn report(name: &str, r: &LoadResult) {
    println!(
        "{name:<34} {:>9.0} req/s  ok {:>8}  errors {:>4}  p50 {:>6} us  p99 {:>6} us  ({:.1} s, {CLIENTS} clients)",
        r.ok as f64 / r.secs,
        r.ok,
        r.errors,
        r.p50_us,
        r.p99_us,
        r.secs
    );
}

struct TempFiles(std::path::PathBuf);
impl Drop for TempFiles {
    fn drop(&mut self) {
        for s in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(s);
            let _ = std::fs::remove_file(p);
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The resource-server verifier over `reqs` (each used once: DPoP proofs are single-use),
/// on every core until they run out or `secs` pass: (verifies per second, CPU us each).
async fn verifier_rate(
    v: &tessera_server::verifier::Verifier,
    reqs: Vec<axum::http::request::Parts>,
    secs: u64,
) -> (f64, f64) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut chunks: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, p) in reqs.into_iter().enumerate() {
        chunks[i % threads].push(p);
    }
    let cpu0 = proc_cpu_us("self");
    let t0 = Instant::now();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let v = v.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                for p in chunk {
                    if Instant::now() >= deadline {
                        break;
                    }
                    if let Err(e) = v.verify_parts(&p).await {
                        let why = e.problem().detail;
                        eprintln!(
                            "!!!!!!!! the verifier refused a valid request: {why}; variant stopped"
                        );
                        break;
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = proc_cpu_us("self").saturating_sub(cpu0) as f64;
    (total as f64 / wall, cpu / total.max(1) as f64)
}

/// Phase 5: DPoP on and off, side by side.
async fn dpop_comparison(
    server: &Server,
    ks: &KeySet,
    sessions: &[(String, String)],
    secs: u64,
    rounds: usize,
) {
    use common::dpop::{ath, Key};
    let now = tessera_server::clock::Clock::now(&tessera_server::clock::SystemClock);
    let es = Key::es256();
    let ed = Key::ed25519();
    let step = (sessions.len() / 20_000).max(1);
    let pick = || sessions.iter().step_by(step).map(|(sid, _)| sid.as_str());
    let bearer: Arc<Vec<String>> = Arc::new(pick().map(|sid| mint(ks, sid, now)).collect());
    let bound: Arc<Vec<String>> = Arc::new(
        pick()
            .map(|sid| mint_bound(ks, sid, now, Some(&es.jkt())))
            .collect(),
    );

    // introspection of bound and bearer tokens, alternating rounds
    let (mut b_rates, mut d_rates) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // the order flips every round
        for bound_round in [round % 2 == 1, round % 2 == 0] {
            let tokens = if bound_round {
                bound.clone()
            } else {
                bearer.clone()
            };
            let (r, cpu) = introspect_phase(server, tokens, secs).await;
            let per_cpu_s = r.ok as f64 / cpu.max(1e-9);
            println!(
                "  round {} introspection, {:<20} {:>8.0} req/s  {:>8.0} req/CPU-s  p50 {} us  errors {}",
                round + 1,
                if bound_round { "DPoP-bound tokens" } else { "bearer tokens" },
                r.ok as f64 / r.secs,
                per_cpu_s,
                r.p50_us,
                r.errors
            );
            if bound_round {
                d_rates.push(per_cpu_s)
            } else {
                b_rates.push(per_cpu_s)
            }
        }
    }
    let (b, d) = (median(b_rates), median(d_rates));
    println!(
        "{:<34} {:>9.0} req/CPU-s bound vs {:.0} bearer: {:.0} % (medians)",
        "introspection, DPoP on/off",
        d,
        b,
        100.0 * d / b
    );

    // the resource-server verifier, in-process
    let v = tessera_server::verifier::Verifier::from_jwks_url(format!(
        "http://{}/.well-known/jwks.json",
        server.addr
    ))
    .origin("http://api.bench");
    let htu = "http://api.bench/api/data";
    let n = 20_000;
    let parts = |auth: &str, proof: Option<String>| {
        let mut b = axum::http::Request::get("/api/data")
            .header("host", "api.bench")
            .header("authorization", auth);
        if let Some(p) = proof {
            b = b.header("dpop", p);
        }
        b.body(()).expect("request").into_parts().0
    };
    // each request carries its own proof (single use, iat = now), as a browser sends them
    let dpop_reqs = |key: &Key, tokens: &[String]| -> Vec<_> {
        let now = tessera_server::clock::Clock::now(&tessera_server::clock::SystemClock);
        tokens
            .iter()
            .cycle()
            .take(n)
            .map(|t| {
                let proof = key.proof_for("GET", htu, now, serde_json::json!({"ath": ath(t)}));
                parts(&format!("DPoP {t}"), Some(proof))
            })
            .collect()
    };
    let ed_bound: Vec<String> = pick()
        .map(|sid| mint_bound(ks, sid, now, Some(&ed.jkt())))
        .collect();
    let names = ["bearer token", "DPoP + ES256 proof", "DPoP + EdDSA proof"];
    let mut cpu_us: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        for k in 0..3 {
            // the order rotates every round; the requests are built right before their turn
            let which = (k + round) % 3;
            let t0 = Instant::now();
            let reqs = match which {
                0 => bearer
                    .iter()
                    .cycle()
                    .take(n)
                    .map(|t| parts(&format!("Bearer {t}"), None))
                    .collect(),
                1 => dpop_reqs(&es, &bound),
                _ => dpop_reqs(&ed, &ed_bound),
            };
            let build_us = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
            let (rate, cpu) = verifier_rate(&v, reqs, secs).await;
            println!(
                "  round {} verifier, {:<20} {rate:>8.0} verifies/s  {cpu:>6.1} us CPU each  (building a request here: {build_us:.1} us)",
                round + 1,
                names[which]
            );
            cpu_us[which].push(cpu);
        }
    }
    let [b, e, d] = cpu_us.map(median);
    println!(
        "{:<34} {:>9.1} us CPU per verify (median)",
        "verifier, bearer token", b
    );
    println!(
        "{:<34} {:>9.1} us CPU per verify: {:.0} % of bearer per CPU-s",
        "verifier, DPoP + ES256 proof",
        e,
        100.0 * b / e
    );
    println!(
        "{:<34} {:>9.1} us CPU per verify: {:.0} % of bearer per CPU-s",
        "verifier, DPoP + EdDSA proof",
        d,
        100.0 * b / d
    );
}

/// One introspection phase against `server`: (load result, server CPU seconds).
async fn introspect_phase(
    server: &Server,
    tokens: Arc<Vec<String>>,
    secs: u64,
) -> (LoadResult, f64) {
    let cpu0 = server.cpu_us();
    let r = introspection_load(server.addr, tokens, secs).await;
    let cpu = server.cpu_us().saturating_sub(cpu0) as f64 / 1e6;
    (r, cpu)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Phase 2: tessera-server, the stateless axum verifier and the Node peer, side by side.
async fn introspection_comparison(
    tessera: &Server,
    baseline: Option<&Server>,
    ks: &KeySet,
    keys_json: &str,
    tokens: Arc<Vec<String>>,
    secs: u64,
    rounds: usize,
) {
    let stateless = Server::stateless(keys_json, "keyset");
    let stateless_jwt = Server::stateless(keys_json, "jsonwebtoken");
    let node = Server::node_peer(ks);
    let mut targets: Vec<(&str, &Server)> = vec![
        ("tessera-server", tessera),
        ("stateless axum verifier", &stateless),
        ("stateless axum+jsonwebtoken", &stateless_jwt),
    ];
    if let Some(n) = &node {
        targets.push(("node express + jose", n));
    }
    if let Some(b) = baseline {
        targets.push(("tessera baseline", b));
    }
    // warm-up: one short pass each (page cache, JIT, connection setup)
    for (_, srv) in &targets {
        let _ = introspection_load(srv.addr, tokens.clone(), 1).await;
    }
    println!("introspection side by side: {rounds} rounds, {secs} s each, order rotated per round");
    let (mut vs_node, mut vs_stateless, mut wall_vs_stateless) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut vs_jwt = Vec::new();
    let (mut vs_baseline, mut baseline_vs_stateless, mut baseline_vs_node) =
        (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut per_cpu = std::collections::HashMap::new();
        let mut per_wall = std::collections::HashMap::new();
        let n = targets.len();
        for k in 0..n {
            let (name, srv) = targets[(round + k) % n];
            let (r, cpu) = introspect_phase(srv, tokens.clone(), secs).await;
            let rps = r.ok as f64 / r.secs;
            let rpc = r.ok as f64 / cpu.max(1e-9);
            println!(
                "  round {} {name:<24} {rps:>8.0} req/s  {rpc:>8.0} req/CPU-s  server CPU {cpu:>5.2} s  ok {:>7}  errors {:>3}  p50 {:>5} us  p99 {:>6} us  load {}",
                round + 1, r.ok, r.errors, r.p50_us, r.p99_us, loadavg()
            );
            per_cpu.insert(name, rpc);
            per_wall.insert(name, rps);
        }
        let t = per_cpu["tessera-server"];
        let s = per_cpu["stateless axum verifier"];
        let ws = per_wall["tessera-server"] / per_wall["stateless axum verifier"];
        let sj = per_cpu["stateless axum+jsonwebtoken"];
        vs_stateless.push(t / s);
        wall_vs_stateless.push(ws);
        vs_jwt.push(t / sj);
        let mut line = format!(
            "  round {}: tessera / stateless per CPU-s {:.0} % (req/s {:.0} %); / stateless+jsonwebtoken {:.0} % (req/s {:.0} %)",
            round + 1,
            100.0 * t / s,
            100.0 * ws,
            100.0 * t / sj,
            100.0 * per_wall["tessera-server"] / per_wall["stateless axum+jsonwebtoken"]
        );
        if let Some(nd) = per_cpu.get("node express + jose") {
            vs_node.push(t / nd);
            line += &format!(
                "; tessera / node per CPU-s {:.2}x (req/s {:.2}x)",
                t / nd,
                per_wall["tessera-server"] / per_wall["node express + jose"]
            );
        }
        if let Some(b) = per_cpu.get("tessera baseline") {
            vs_baseline.push(t / b);
            baseline_vs_stateless.push(b / s);
            line += &format!(
                "; tessera / baseline per CPU-s {:.0} % (baseline / stateless {:.0} %",
                100.0 * t / b,
                100.0 * b / s
            );
            if let Some(nd) = per_cpu.get("node express + jose") {
                baseline_vs_node.push(b / nd);
                line += &format!(", baseline / node {:.2}x", b / nd);
            }
            line += ")";
        }
        println!("{line}");
    }
    print!(
        "introspection median of {rounds}: tessera = {:.0} % of the stateless axum verifier per CPU-s (goal >= 90 %, floor 80 %; {:.0} % in req/s), {:.0} % of the stateless axum + jsonwebtoken verifier",
        100.0 * median(vs_stateless),
        100.0 * median(wall_vs_stateless),
        100.0 * median(vs_jwt)
    );
    if vs_node.is_empty() {
        println!("; Node peer SKIPPED");
    } else {
        println!(
            "; tessera = {:.2}x the Node express + jose peer per CPU-s (goal >= 6x, floor 5x)",
            median(vs_node)
        );
    }
    if !vs_baseline.is_empty() {
        print!(
            "baseline median of {rounds}: tessera = {:.0} % of the baseline tessera-server per CPU-s; baseline = {:.0} % of the stateless verifier",
            100.0 * median(vs_baseline),
            100.0 * median(baseline_vs_stateless)
        );
        if baseline_vs_node.is_empty() {
            println!();
        } else {
            println!(", {:.2}x the Node peer", median(baseline_vs_node));
        }
    }
}

fn main() {
    if std::env::var(ROLE_ENV).as_deref() == Ok("stateless-verifier") {
        return stateless_verifier();
    }
    // Cargo passes `--bench`; there is nothing to filter.
    let secs = env_num("TESSERA_BENCH_SECS", 5);
    let n_sessions = env_num("TESSERA_BENCH_SESSIONS", 100_000) as usize;
    let rounds = env_num("TESSERA_BENCH_ROUNDS", 3).max(1) as usize;
    let only = std::env::var("TESSERA_BENCH_ONLY").unwrap_or_default();
    let only_introspect = only == "introspect";
    let only_dpop = only == "dpop";
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        println!("tessera-server bench: {n_sessions} live sessions, {CLIENTS} concurrent clients, {secs} s per phase, {} cores, load average {}",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), loadavg());

        // ---- SQLite server
        let db = TempFiles(std::env::temp_dir().join(format!("tessera-bench-{}.db", std::process::id())));
        let url = format!("sqlite://{}", db.0.display());
        let server = Server::start(&url);
        let store = sealed(tessera_server::store::sqlite::SqliteStore::open(&db.0).expect("open db"));
        let t0 = Instant::now();
        let sessions = seed(&store, n_sessions).await;
        println!("seeded {} sessions into SQLite in {:.1} s", sessions.len(), t0.elapsed().as_secs_f64());
        let ks = keyset(&store).await;
        let keys_json = store.get_meta("signing_keys").await.expect("meta").expect("keys");
        let now = tessera_server::clock::Clock::now(&tessera_server::clock::SystemClock);
        let tokens: Arc<Vec<String>> =
            Arc::new(sessions.iter().step_by((n_sessions / 20_000).max(1)).map(|(sid, _)| mint(&ks, sid, now)).collect());

        if only_dpop {
            dpop_comparison(&server, &ks, &sessions, secs, rounds).await;
            return;
        }
        let (raw, raw_cpu, full, full_cpu) = raw_verify_rate(&ks, &tokens[0], 1.0);
        println!(
            "{:<34} {:>9.0} verifies/s  ({raw_cpu:.1} us CPU each; ed25519-dalek, all cores, in-process, best of 3)",
            "raw Ed25519 verify_strict", raw
        );
        println!(
            "{:<34} {:>9.0} verifies/s  ({full_cpu:.1} us CPU each; parse + verify_strict + iss/aud/exp)",
            "full JWT check (KeySet::verify)", full
        );

        let (intro, cpu) = introspect_phase(&server, tokens.clone(), secs).await;
        let per_req = cpu * 1e6 / intro.ok.max(1) as f64;
        report("introspection over HTTP (SQLite)", &intro);
        println!(
            "  wall-clock introspection / raw verify rate: {:.0} % (the 64 clients share the cores)",
            100.0 * intro.ok as f64 / intro.secs / raw
        );
        println!(
            "  server CPU per introspection: {per_req:.1} us vs {raw_cpu:.1} us per raw verify -> CPU-normalised ratio {:.0} %",
            100.0 * raw_cpu / per_req
        );

        // A/B: a second tessera-server binary on the same store, in the same rounds
        let baseline = std::env::var_os("TESSERA_BENCH_BASELINE_BIN").map(|bin| {
            println!("baseline tessera-server: {}", bin.to_string_lossy());
            Server::start_bin(&url, &bin)
        });
        introspection_comparison(&server, baseline.as_ref(), &ks, &keys_json, tokens.clone(), secs, rounds).await;
        println!("{:<34} {:>9.1} MiB (VmHWM after the introspection phases, {n_sessions} live sessions)", "tessera-server peak RSS", server.peak_rss_kib() as f64 / 1024.0);
        if let Some(b) = &baseline {
            println!("{:<34} {:>9.1} MiB", "baseline peak RSS", b.peak_rss_kib() as f64 / 1024.0);
        }
        drop(baseline);
        if only_introspect {
            return;
        }
        dpop_comparison(&server, &ks, &sessions, secs, rounds).await;

        let rot_sessions: Vec<_> = sessions.iter().take(CLIENTS * 16).cloned().collect();
        let cpu0 = server.cpu_us();
        let (rot, acks) = rotation_load(&[server.addr], rot_sessions, secs).await;
        let per_rot = (server.cpu_us() - cpu0) as f64 / rot.ok.max(1) as f64;
        report("refresh rotation (SQLite)", &rot);
        println!("  server CPU per rotation: {per_rot:.1} us  load {}", loadavg());
        let (lost, dup, revoked) = audit(&store, &acks).await;
        println!("  families audited: {}  lost: {lost}  duplicated: {dup}  wrongly revoked: {revoked}", acks.len());
        println!("{:<34} {:>9.1} MiB (VmHWM of the server process, SQLite run, {n_sessions} live sessions)", "server peak RSS", server.peak_rss_kib() as f64 / 1024.0);
        drop(server);

        // ---- Redis: one instance, then two instances on the same Redis
        match common::RedisServer::start() {
            None => println!("!!!!!!!! redis-server not available: Redis rotation bench SKIPPED !!!!!!!!"),
            Some(redis) => {
                let url = redis.url();
                let server = Server::start(&url);
                let store = sealed(tessera_server::store::redis::RedisStore::connect(&url, "tessera:").await.expect("redis"));
                let t0 = Instant::now();
                let sessions = seed(&store, n_sessions).await;
                println!("seeded {} sessions into Redis in {:.1} s", sessions.len(), t0.elapsed().as_secs_f64());
                let ks = keyset(&store).await;
                let tokens: Arc<Vec<String>> = Arc::new(
                    sessions.iter().step_by((n_sessions / 20_000).max(1)).map(|(sid, _)| mint(&ks, sid, now)).collect(),
                );
                let intro = introspection_load(server.addr, tokens, secs).await;
                report("introspection over HTTP (Redis)", &intro);
                let rot_sessions: Vec<_> = sessions.iter().take(CLIENTS * 16).cloned().collect();
                let cpu0 = server.cpu_us();
                let (rot, acks) = rotation_load(&[server.addr], rot_sessions, secs).await;
                let per_rot = (server.cpu_us() - cpu0) as f64 / rot.ok.max(1) as f64;
                report("refresh rotation (Redis)", &rot);
                println!("  server CPU per rotation: {per_rot:.1} us  load {}", loadavg());
                let (lost, dup, revoked) = audit(&store, &acks).await;
                println!("  families audited: {}  lost: {lost}  duplicated: {dup}  wrongly revoked: {revoked}", acks.len());
                println!("{:<34} {:>9.1} MiB (VmHWM of the server process, Redis run, {n_sessions} live sessions)", "server peak RSS", server.peak_rss_kib() as f64 / 1024.0);

                let second = Server::start(&url);
                let rot_sessions: Vec<_> = sessions.iter().skip(CLIENTS * 16).take(CLIENTS * 16).cloned().collect();
                let cpu0 = server.cpu_us() + second.cpu_us();
                let (rot, acks) = rotation_load(&[server.addr, second.addr], rot_sessions, secs).await;
                let per_rot = (server.cpu_us() + second.cpu_us() - cpu0) as f64 / rot.ok.max(1) as f64;
                report("refresh rotation (2 inst., 1 Redis)", &rot);
                println!("  each session alternates instances; server CPU per rotation (both): {per_rot:.1} us  load {}", loadavg());
                let (lost, dup, revoked) = audit(&store, &acks).await;
                println!("  families audited: {}  lost: {lost}  duplicated: {dup}  wrongly revoked: {revoked}", acks.len());
            }
        }
        println!("load average at the end: {}", loadavg());
    });
}
