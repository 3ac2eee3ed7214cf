//! Configuration: every setting is a command-line flag and a `TESSERA_*` environment
//! variable. Defaults are the secure production choices; the README lists each with the
//! OWASP / RFC line that motivates it.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Parser, ValueEnum};

/// Longest accepted `--refresh-grace`, in seconds.
pub const MAX_REFRESH_GRACE: i64 = 30;

/// What to do when a session's user agent or network changes mid-session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnomalyPolicy {
    /// Record a session event (visible in `GET /auth/sessions`) and carry on.
    Record,
    /// Record the event and revoke the session.
    Revoke,
}

/// `tessera-server` settings.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tessera-server",
    version,
    about = "Tessera session server: issues, verifies, rotates and revokes browser sessions."
)]
pub struct Config {
    /// Demo mode: seed the demo users (alice, bob) and serve --www-dir at / and --pkg-dir at /pkg/.
    #[arg(long, env = "TESSERA_DEMO", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub demo: bool,

    /// Address to listen on (`127.0.0.1:0` picks a free port; the real URL is printed).
    #[arg(long, env = "TESSERA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Session store: `sqlite://PATH`, `redis[s]://[USER:PASS@]HOST:PORT[/DB]`, `redis[s]+sentinel://[USER:PASS@]HOST:PORT[,…]/SERVICE[/DB][?sentinel_username=U&sentinel_password=P]`, `redis[s]+cluster://[USER:PASS@]HOST:PORT[,…]`, or `memory://` (tests only). `rediss` = TLS to every node (trust: system roots or `SSL_CERT_FILE`).
    #[arg(long, env = "TESSERA_STORE", default_value = "sqlite://tessera.db")]
    pub store: String,

    /// Access-token lifetime in seconds.
    #[arg(long, env = "TESSERA_ACCESS_TTL", value_parser = parse_secs, default_value_t = 300)]
    pub access_ttl: i64,

    /// Idle timeout in seconds: a session not refreshed for this long is dead.
    #[arg(long, env = "TESSERA_IDLE_TIMEOUT", value_parser = parse_secs, default_value_t = 1800)]
    pub idle_timeout: i64,

    /// Absolute session lifetime in seconds, regardless of activity.
    #[arg(long, env = "TESSERA_ABSOLUTE_TIMEOUT", value_parser = parse_secs, default_value_t = 28800)]
    pub absolute_timeout: i64,

    /// Comma-separated origins allowed to send state-changing requests (login, refresh,
    /// logout, …) and to call with credentials (CORS), e.g. `https://app.example.com`. The
    /// `Host` header never defines "same origin": list the app's own origin here. `http://`
    /// is accepted only for loopback hosts. Demo mode adds the loopback origin it listens on.
    #[arg(long, env = "TESSERA_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Directory served at `/` in demo mode.
    #[arg(long, env = "TESSERA_WWW_DIR", default_value = "www")]
    pub www_dir: PathBuf,

    /// Directory served at `/pkg/` in demo mode (wasm-pack `--target web` output).
    #[arg(long, env = "TESSERA_PKG_DIR", default_value = "pkg")]
    pub pkg_dir: PathBuf,

    /// `iss` claim of access tokens.
    #[arg(long, env = "TESSERA_ISSUER", default_value = "tessera")]
    pub issuer: String,

    /// `aud` claim of access tokens.
    #[arg(long, env = "TESSERA_AUDIENCE", default_value = "tessera")]
    pub audience: String,

    /// Clock-skew leeway in seconds when verifying `exp`/`iat` (capped at 300). Small by
    /// default: this server both issues and verifies, so only skew between instances counts.
    #[arg(long, env = "TESSERA_JWT_LEEWAY", value_parser = parse_secs, default_value_t = 5)]
    pub jwt_leeway: i64,

    /// Grace window in seconds in which the immediate predecessor of the current refresh
    /// token gets the already-issued successor instead of revoking the family.
    #[arg(long, env = "TESSERA_REFRESH_GRACE", value_parser = parse_secs, default_value_t = 10)]
    pub refresh_grace: i64,

    /// Lifetime of the `mfa_token` handed out by a password step that needs TOTP (seconds).
    #[arg(long, env = "TESSERA_MFA_TTL", value_parser = parse_secs, default_value_t = 300)]
    pub mfa_ttl: i64,

    /// Failed login/MFA attempts per account per window before 429.
    #[arg(long, env = "TESSERA_ACCOUNT_LIMIT", default_value_t = 10)]
    pub account_limit: u32,

    /// Failed login/MFA attempts per client address per window before 429.
    #[arg(long, env = "TESSERA_ADDRESS_LIMIT", default_value_t = 100)]
    pub address_limit: u32,

    /// Rate-limit window in seconds.
    #[arg(long, env = "TESSERA_RATE_WINDOW", value_parser = parse_secs, default_value_t = 300)]
    pub rate_window: i64,

    /// What a user-agent or network change within a session does.
    #[arg(long, env = "TESSERA_ANOMALY_POLICY", value_enum, default_value_t = AnomalyPolicy::Record)]
    pub anomaly_policy: AnomalyPolicy,

    /// Argon2id memory cost in KiB (OWASP: 19456 with t=2, p=1). Lower only for tests.
    #[arg(long, env = "TESSERA_ARGON2_MEMORY_KIB", default_value_t = 19456)]
    pub argon2_memory_kib: u32,

    /// Argon2id iterations.
    #[arg(long, env = "TESSERA_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,

    /// Argon2id parallelism (lanes).
    #[arg(long, env = "TESSERA_ARGON2_PARALLELISM", default_value_t = 1)]
    pub argon2_parallelism: u32,

    /// Generate a new signing key at start; the old keys stay in the JWKS for verification.
    #[arg(long, env = "TESSERA_ROTATE_SIGNING_KEY", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub rotate_signing_key: bool,

    /// Removed: use `--trusted-proxies CIDR,…`. Setting it is a start-up error naming the new flag.
    #[arg(long, env = "TESSERA_TRUST_PROXY", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub trust_proxy: bool,

    /// Log filter (tracing `EnvFilter` syntax), e.g. `info`, `tessera_server=debug`.
    #[arg(long, env = "TESSERA_LOG", default_value = "info")]
    pub log: String,

    // ---- HTTP hardening --------------------------------------------------------------
    /// Comma-separated CIDRs (or addresses) of reverse proxies whose `X-Forwarded-For` is
    /// believed: read right to left, the first hop that is not one of them is the client.
    /// Empty: the TCP peer is the client and `X-Forwarded-For` is ignored.
    #[arg(long, env = "TESSERA_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// `Clear-Site-Data` directives sent by logout after it revoked a session, comma
    /// separated (`storage`, `cache`, `cookies`, `executionContexts`, `*`); empty = none.
    /// Beware: `cookies` clears every cookie of the whole registrable domain (example.com
    /// for app.example.com), logging the user out of sibling apps too.
    #[arg(long, env = "TESSERA_CLEAR_SITE_DATA", default_value = "storage")]
    pub clear_site_data: String,

    /// Shared secret resource servers send as `Authorization: Bearer <secret>` to
    /// `/auth/introspect` (RFC 7662 §2.1), at least 32 characters. Unset: introspection
    /// answers 401 to everyone.
    #[arg(long, env = "TESSERA_INTROSPECTION_SECRET", hide_env_values = true)]
    pub introspection_secret: Option<String>,

    /// Password hashes computed in parallel (0 = one per core).
    #[arg(long, env = "TESSERA_ARGON2_CONCURRENCY", default_value_t = 0)]
    pub argon2_concurrency: usize,

    /// Logins that may wait for a hashing slot; beyond that 503 + `Retry-After` at once.
    #[arg(long, env = "TESSERA_ARGON2_QUEUE", default_value_t = 32)]
    pub argon2_queue: usize,

    /// Time a client has to send a request's complete header block (seconds, or `10s`),
    /// counted from its first byte, or from the accept for a connection's first request.
    #[arg(long, env = "TESSERA_HEADER_TIMEOUT", value_parser = parse_secs_u64, default_value_t = 10)]
    pub header_timeout: u64,

    /// Time a kept-alive connection may stay idle between requests before it is closed
    /// (seconds, or `75s`). Set it above the upstream idle timeout of any reverse proxy in
    /// front (nginx and most load balancers: 60 s): a proxy that writes a request onto a
    /// connection the server is closing fails it.
    #[arg(long, env = "TESSERA_KEEP_ALIVE_TIMEOUT", value_parser = parse_secs_u64, default_value_t = 75)]
    pub keep_alive_timeout: u64,

    /// Time a client has to send a request body (seconds, or `10s`).
    #[arg(long, env = "TESSERA_BODY_TIMEOUT", value_parser = parse_secs_u64, default_value_t = 10)]
    pub body_timeout: u64,

    /// Time a request may take in all before 408 (seconds, or `30s`).
    #[arg(long, env = "TESSERA_REQUEST_TIMEOUT", value_parser = parse_secs_u64, default_value_t = 30)]
    pub request_timeout: u64,

    /// Open connections at most; further clients wait until one closes.
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    // ---- storage and secrets (server-store) ---------------------------------------------
    /// Live sessions one user may hold (1 to 1000); signing in once more revokes the oldest
    /// (OWASP Session Management: limit concurrent sessions; bounds the store per user).
    #[arg(long, env = "TESSERA_MAX_SESSIONS_PER_USER", default_value_t = 50)]
    pub max_sessions_per_user: usize,

    /// File holding the 32-byte master key (base64 or hex) that seals signing seeds, vault
    /// keys and TOTP secrets at rest. Required with Redis (every instance needs the same
    /// key). Without it, `sqlite://PATH` uses `PATH.key` beside the database (created
    /// `0600`; a warning outside demo mode) and `memory://` a key of this process only.
    #[arg(long, env = "TESSERA_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    // ---- end storage and secrets ----------------------------------------------------------

    // --- operations ---
    /// Redis: session-changing writes wait until this many replicas acknowledged them
    /// (Redis `WAIT`); 0 = do not wait (an acknowledged write can be lost in a failover).
    #[arg(long, env = "TESSERA_REDIS_WAIT_REPLICAS", default_value_t = 0)]
    pub redis_wait_replicas: u32,

    /// Redis: the longest wait for those acknowledgements, in milliseconds; a write that
    /// misses it fails with a retryable error.
    #[arg(long, env = "TESSERA_REDIS_WAIT_MS", default_value_t = 500)]
    pub redis_wait_ms: u64,

    /// Allow `--demo` on a non-loopback `--listen` address. The demo users' passwords are
    /// public: without this flag demo mode refuses to listen beyond loopback.
    #[arg(long, env = "TESSERA_DEMO_PUBLIC", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub demo_public: bool,

    /// Re-read the signing keys from the store this often (seconds), so a `keys rotate` on
    /// any instance reaches all of them; an unknown `kid` also triggers a (rate-limited) reload.
    #[arg(long, env = "TESSERA_KEYS_RELOAD_INTERVAL", value_parser = parse_secs_u64, default_value_t = 60)]
    pub keys_reload_interval: u64,

    /// Log line format: `text` or `json` (one JSON object per line, with the request id).
    #[arg(long, env = "TESSERA_LOG_FORMAT", value_enum, default_value_t = crate::telemetry::LogFormat::Text)]
    pub log_format: crate::telemetry::LogFormat,

    /// Serve `GET /metrics` on this separate address instead of the main listener.
    #[arg(long, env = "TESSERA_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,

    /// On SIGTERM / Ctrl-C: stop accepting, let requests in flight finish for at most
    /// this many seconds, then exit.
    #[arg(long, env = "TESSERA_SHUTDOWN_TIMEOUT", value_parser = parse_secs_u64, default_value_t = 10)]
    pub shutdown_timeout: u64,

    // --- DPoP (RFC 9449) ---
    /// Sender-constrained tokens: `off` ignores `DPoP` headers; `optional` binds a session
    /// (refresh token and access tokens) to the key of a valid proof sent at login, MFA or
    /// refresh; `required` refuses login, MFA and refresh without one.
    #[arg(long, env = "TESSERA_DPOP", value_enum, default_value_t = crate::dpop::DpopMode::Optional)]
    pub dpop: crate::dpop::DpopMode,

    /// DPoP: require server nonces (`DPoP-Nonce` header on every response; a proof without
    /// a current one gets `use_dpop_nonce`). Nonces change every 5 minutes, the previous one
    /// stays valid; instances sharing a master key share them.
    #[arg(long, env = "TESSERA_DPOP_NONCE", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub dpop_nonce: bool,

    /// DPoP: how far a proof's `iat` may be from the server's clock, in seconds (1 to 300);
    /// also how long a proof's `jti` is remembered against replay.
    #[arg(long, env = "TESSERA_DPOP_IAT_WINDOW", value_parser = parse_secs, default_value_t = 60)]
    pub dpop_iat_window: i64,

    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// One-shot administrative commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Serve HTTP (the default when no command is given).
    Serve,
    /// Create or replace a user in the configured store, then exit. The password is read
    /// from the first line of standard input (never from the command line).
    UserAdd {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Enrol TOTP: generate a secret and print its `otpauth://` URI.
        #[arg(long)]
        totp: bool,
    },
    // --- operations ---
    /// Set a user's password (first line of stdin) and revoke all the user's sessions.
    UserPasswd {
        /// Login name.
        #[arg(long)]
        username: String,
    },
    /// Delete a user: revoke all the user's sessions, forget its TOTP state, remove it.
    UserDel {
        /// Login name.
        #[arg(long)]
        username: String,
    },
    /// List users: name, whether TOTP is enrolled, live sessions (no secrets).
    UserList,
    /// Give a user a new TOTP secret; prints the `otpauth://` URI and a terminal QR code.
    TotpEnroll {
        /// Login name.
        #[arg(long)]
        username: String,
    },
    /// Replace a user's TOTP secret (the old authenticator stops working); prints the new
    /// `otpauth://` URI and a terminal QR code.
    TotpReset {
        /// Login name.
        #[arg(long)]
        username: String,
    },
    /// Session operations on the configured store.
    Sessions {
        /// What to do.
        #[command(subcommand)]
        action: SessionsCommand,
    },
    /// Open the store and bring its schema up to date, then exit (the server also does
    /// this at every start).
    Migrate,
    /// Signing-key operations on the configured store.
    Keys {
        /// What to do.
        #[command(subcommand)]
        action: KeysCommand,
    },
}

/// `tessera-server sessions …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SessionsCommand {
    /// Revoke every session of a user.
    Revoke {
        /// Login name.
        #[arg(long)]
        user: String,
    },
}

/// `tessera-server keys …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeysCommand {
    /// Publish a new signing key now; every instance signs with it once the JWKS cache
    /// lifetime and one key-reload interval have passed (the old keys keep verifying).
    Rotate,
}

impl Default for Config {
    /// The defaults declared once, in the `#[arg(default_value…)]` attributes above: clap
    /// parses an empty command line with every environment variable ignored (so a
    /// `TESSERA_*` variable of the process never leaks into a default-built config).
    fn default() -> Self {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let matches = Config::command()
            .mut_args(|a| a.env(None))
            .try_get_matches_from(["tessera-server"]);
        match matches.and_then(|m| Config::from_arg_matches(&m)) {
            Ok(c) => c,
            // the declared defaults always parse (a unit test holds them to it)
            Err(e) => unreachable!("the declared defaults do not parse: {e}"),
        }
    }
}

impl Config {
    /// Defaults with a `memory://` store and cheap Argon2 parameters (m = 64 KiB, t = 1):
    /// for tests only, never for production.
    pub fn for_tests() -> Self {
        Config {
            store: "memory://".into(),
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            introspection_secret: Some("tessera-tests-introspection-secret-0123456789".into()),
            ..Config::default()
        }
    }

    /// The allow-listed origins, trimmed, without empty entries (so `TESSERA_ALLOWED_ORIGINS=""`
    /// means none, and an empty `Origin` header can never match).
    pub fn origins(&self) -> impl Iterator<Item = &str> {
        self.allowed_origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
    }

    /// Checks ranges that clap cannot express.
    ///
    /// # Errors
    /// A message naming the offending setting.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("--access-ttl", self.access_ttl),
            ("--idle-timeout", self.idle_timeout),
            ("--absolute-timeout", self.absolute_timeout),
            ("--mfa-ttl", self.mfa_ttl),
            ("--rate-window", self.rate_window),
        ];
        for (name, v) in positive {
            if v <= 0 {
                return Err(format!("{name} must be positive (got {v})"));
            }
        }
        if !(0..=300).contains(&self.jwt_leeway) {
            return Err("--jwt-leeway must be between 0 and 300 seconds".into());
        }
        if !(0..=MAX_REFRESH_GRACE).contains(&self.refresh_grace) {
            return Err(format!(
                "--refresh-grace must be between 0 and {MAX_REFRESH_GRACE} seconds (got {}): \
                 a longer window keeps a replayable successor around for longer",
                self.refresh_grace
            ));
        }
        let max = crate::store::MAX_SESSIONS_PER_USER_LIMIT;
        if !(1..=max).contains(&self.max_sessions_per_user) {
            return Err(format!(
                "--max-sessions-per-user must be between 1 and {max} (got {})",
                self.max_sessions_per_user
            ));
        }
        if self.redis_wait_replicas > 0 && !(1..=60_000).contains(&self.redis_wait_ms) {
            return Err("--redis-wait-ms must be between 1 and 60000".into());
        }
        if !(1..=300).contains(&self.dpop_iat_window) {
            return Err("--dpop-iat-window must be between 1 and 300 seconds".into());
        }
        if self.keys_reload_interval == 0 {
            return Err("--keys-reload-interval must be positive".into());
        }
        if self.demo && !self.demo_public && !listen_is_loopback(&self.listen) {
            return Err(format!(
                "--demo seeds users with public passwords: refusing to listen on {} (not loopback) without --demo-public",
                self.listen
            ));
        }
        for o in self.origins() {
            if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
                return Err(format!(
                    "--allowed-origins entry {o:?} must be an origin like https://app.example.com"
                ));
            }
            if o.starts_with("http://") && !is_loopback_origin(o) {
                return Err(format!(
                    "--allowed-origins entry {o:?}: plain http:// is allowed only for loopback hosts; use https://"
                ));
            }
        }
        self.validate_http()
    }
}

/// Whether `origin` (`scheme://host[:port]`) names a loopback host.
fn is_loopback_origin(origin: &str) -> bool {
    let rest = origin.split_once("://").map_or("", |(_, r)| r);
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        rest.rsplit_once(':').map_or(rest, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The `Clear-Site-Data` directives the header may carry.
const CLEAR_SITE_DATA: [&str; 7] = [
    "cache",
    "cookies",
    "storage",
    "executionContexts",
    "clientHints",
    "prefetchCache",
    "*",
];

impl Config {
    /// The HTTP-hardening settings' checks (part of [`Config::validate`]).
    fn validate_http(&self) -> Result<(), String> {
        if self.trust_proxy {
            return Err("--trust-proxy / TESSERA_TRUST_PROXY was removed: it believed a header the client writes. \
                 Name your proxies with --trusted-proxies CIDR,… (TESSERA_TRUSTED_PROXIES)"
                .into());
        }
        crate::net::parse_proxies(&self.trusted_proxies)?;
        self.clear_site_data_header()?;
        if let Some(s) = &self.introspection_secret {
            if s.len() < 32 {
                return Err("--introspection-secret must be at least 32 characters".into());
            }
        }
        for (name, v) in [
            ("--header-timeout", self.header_timeout),
            ("--keep-alive-timeout", self.keep_alive_timeout),
            ("--body-timeout", self.body_timeout),
            ("--request-timeout", self.request_timeout),
        ] {
            if v == 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        if self.max_connections == 0 {
            return Err("--max-connections must be positive".into());
        }
        Ok(())
    }

    /// The `Clear-Site-Data` header value (`"storage"` by default), `None` when empty.
    ///
    /// # Errors
    /// An unknown directive.
    pub fn clear_site_data_header(&self) -> Result<Option<String>, String> {
        let mut out = Vec::new();
        for d in self.clear_site_data.split(',') {
            let d = d.trim().trim_matches('"').trim();
            if d.is_empty() {
                continue;
            }
            if !CLEAR_SITE_DATA.contains(&d) {
                return Err(format!(
                    "--clear-site-data: unknown directive {d:?} (one of {})",
                    CLEAR_SITE_DATA.join(", ")
                ));
            }
            out.push(format!("\"{d}\""));
        }
        Ok((!out.is_empty()).then(|| out.join(", ")))
    }

    /// Demo mode: allows the loopback origin(s) the server listens on (`http://127.0.0.1:PORT`
    /// and `http://localhost:PORT`), so the demo page on that origin may log in.
    pub fn add_listen_origin(&mut self, addr: std::net::SocketAddr) {
        let mut add = |o: String| {
            if !self.allowed_origins.contains(&o) {
                self.allowed_origins.push(o);
            }
        };
        match addr.ip() {
            std::net::IpAddr::V4(v4) if v4.is_loopback() || v4.is_unspecified() => {
                add(format!("http://127.0.0.1:{}", addr.port()));
                add(format!("http://localhost:{}", addr.port()));
            }
            std::net::IpAddr::V6(v6) if v6.is_loopback() || v6.is_unspecified() => {
                add(format!("http://[::1]:{}", addr.port()));
                add(format!("http://localhost:{}", addr.port()));
            }
            _ => {}
        }
    }
}

/// Parses a duration setting into whole seconds: a plain number of seconds (`300`) or a
/// humantime duration (`30s`, `15m`, `8h`, `1h 30m`).
///
/// # Errors
/// A message clap prints when the value is neither, has a sub-second part, or is too long.
pub fn parse_secs(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{e} (use seconds, or a duration like 30s, 15m, 8h)"))?;
    if d.subsec_nanos() != 0 {
        return Err("whole seconds only".into());
    }
    i64::try_from(d.as_secs()).map_err(|_| "duration too long".into())
}

/// [`parse_secs`] for settings that cannot be negative.
///
/// # Errors
/// As [`parse_secs`], and for a negative value.
pub fn parse_secs_u64(s: &str) -> Result<u64, String> {
    u64::try_from(parse_secs(s)?).map_err(|_| "must not be negative".into())
}

/// Whether a `--listen` value binds only the loopback interface (`127.0.0.0/8`, `::1`,
/// `localhost`); anything unparseable counts as not loopback.
pub fn listen_is_loopback(listen: &str) -> bool {
    if let Ok(addr) = listen.parse::<std::net::SocketAddr>() {
        return addr.ip().is_loopback();
    }
    listen
        .rsplit_once(':')
        .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost"))
}

#[cfg(test)]
mod ops_tests {
    use super::*;

    #[test]
    fn defaults_come_from_clap_and_ignore_the_environment() {
        const CHILD: &str = "TESSERA_TEST_DEFAULTS_CHILD";
        if std::env::var_os(CHILD).is_some() {
            // the environment below is in effect for a real parse ...
            let parsed = Config::try_parse_from(["tessera-server"]).expect("parse");
            assert_eq!((parsed.store.as_str(), parsed.access_ttl), ("memory://", 7));
            // ... and never for the defaults
            let d = Config::default();
            assert_eq!(d.store, "sqlite://tessera.db");
            assert_eq!(d.access_ttl, 300);
            return;
        }
        let d = Config::default();
        assert_eq!(
            (
                d.listen.as_str(),
                d.idle_timeout,
                d.absolute_timeout,
                d.refresh_grace
            ),
            ("127.0.0.1:8080", 1800, 28800, 10)
        );
        assert_eq!(d.log_format, crate::telemetry::LogFormat::Text);
        assert!(d.command.is_none() && d.validate().is_ok());
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "config::ops_tests::defaults_come_from_clap_and_ignore_the_environment",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .env("TESSERA_STORE", "memory://")
            .env("TESSERA_ACCESS_TTL", "7")
            .output()
            .expect("run the child test");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "{text}");
    }

    #[test]
    fn durations_accept_seconds_and_humantime() {
        assert_eq!(parse_secs("300"), Ok(300));
        assert_eq!(parse_secs("30s"), Ok(30));
        assert_eq!(parse_secs("15m"), Ok(900));
        assert_eq!(parse_secs("8h"), Ok(28_800));
        assert_eq!(parse_secs("1h 30m"), Ok(5_400));
        assert!(parse_secs("1.5s").is_err());
        assert!(parse_secs("soon").is_err());
        assert!(parse_secs_u64("-1").is_err());
        let c = Config::try_parse_from([
            "tessera-server",
            "--idle-timeout",
            "15m",
            "--absolute-timeout",
            "8h",
            "--access-ttl",
            "30s",
            "--shutdown-timeout",
            "1m",
        ])
        .expect("parse");
        assert_eq!(
            (
                c.idle_timeout,
                c.absolute_timeout,
                c.access_ttl,
                c.shutdown_timeout
            ),
            (900, 28_800, 30, 60)
        );
    }

    #[test]
    fn demo_refuses_a_public_listen_address_unless_told() {
        for (listen, loopback) in [
            ("127.0.0.1:8080", true),
            ("127.9.9.9:1", true),
            ("[::1]:0", true),
            ("localhost:8080", true),
            ("0.0.0.0:8080", false),
            ("[::]:8080", false),
            ("192.168.1.5:80", false),
            ("example.com:80", false),
            ("garbage", false),
        ] {
            assert_eq!(listen_is_loopback(listen), loopback, "{listen}");
            let cfg = Config {
                demo: true,
                listen: listen.into(),
                ..Config::for_tests()
            };
            assert_eq!(cfg.validate().is_ok(), loopback, "{listen}");
            let public = Config {
                demo_public: true,
                ..cfg
            };
            assert!(public.validate().is_ok(), "{listen} with --demo-public");
        }
    }
}
