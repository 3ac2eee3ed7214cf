//! Session storage behind one trait, [`SessionStore`], with three backends:
//! [`memory::MemoryStore`] (tests only), [`sqlite::SqliteStore`] (the embedded, persistent
//! default) and [`redis::RedisStore`] (several server instances sharing sessions; standalone,
//! Sentinel or Cluster).
//!
//! Every backend implements refresh rotation as one atomic step ([`SessionStore::rotate`]),
//! with the same decision rule (`decide` in this module): the current token rotates; the immediate
//! predecessor within the grace window gets the already-issued successor back (sealed so that
//! only the predecessor's holder can open it); anything older revokes the whole family.
//! One conformance suite (`tests/store_conformance.rs`) runs against all three.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod memory;
pub mod redis;
pub mod sqlite;

/// A storage failure (the client sees only `internal`; the log gets this text).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(String),
    /// Redis reported an error.
    #[error("redis: {0}")]
    Redis(String),
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The store cannot be reached right now (refused, dropped or timed-out connection,
    /// a Redis still loading its data or in failover, a write not replicated in time):
    /// retryable; the client sees 503 `store_unavailable`.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The store URL or configuration is not usable.
    #[error("config: {0}")]
    Config(String),
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Stable user id (the JWT `sub`).
    pub id: String,
    /// Login name.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Base32 TOTP secret when MFA is enrolled.
    pub totp_secret: Option<String>,
}

/// Something noteworthy that happened to a session (an anomaly signal, a revocation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// When (Unix seconds).
    pub at: i64,
    /// `user_agent_changed`, `network_changed`, `revoked`, …
    pub kind: String,
    /// Human-readable detail (old → new value).
    pub detail: String,
}

/// One session (one refresh-token family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Public session id (random 256-bit, base64url); the JWT `sid`.
    pub sid: String,
    /// Owner's user id.
    pub user_id: String,
    /// Owner's login name.
    pub username: String,
    /// Creation time.
    pub created_at: i64,
    /// Last refresh (drives the idle timeout).
    pub last_seen: i64,
    /// Absolute expiry.
    pub expires_at: i64,
    /// Whether the session was established with a second factor.
    pub mfa: bool,
    /// User agent last seen on this session.
    pub user_agent: String,
    /// Client network (address) last seen on this session.
    pub address: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// Why it was revoked (`logout`, `logout_all`, `refresh_reused`, `expired`, …).
    pub revoke_reason: Option<String>,
    /// The per-session vault key; `None` once the session is revoked (crypto-shredding).
    pub vault_key: Option<[u8; 32]>,
    /// Generation of the current refresh token (0 = the one issued at login).
    pub generation: i64,
    /// When the current token's predecessor was superseded.
    pub prev_rotated_at: Option<i64>,
    /// The current token sealed under its predecessor (see [`crate::secret::seal_successor`]).
    pub prev_sealed: Option<[u8; 32]>,
    /// Events (filled by [`SessionStore::list_sessions`]; empty elsewhere).
    pub events: Vec<SessionEvent>,
}

/// Liveness of a session at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Usable.
    Live,
    /// Revoked (logout, reuse, remote revoke, anomaly policy).
    Revoked,
    /// Past its idle or absolute lifetime.
    Expired,
}

impl SessionRecord {
    /// A fresh session as created at login.
    pub fn new(sid: String, user: &UserRecord, now: i64, absolute: i64, mfa: bool) -> Self {
        SessionRecord {
            sid,
            user_id: user.id.clone(),
            username: user.username.clone(),
            created_at: now,
            last_seen: now,
            expires_at: now + absolute,
            mfa,
            user_agent: String::new(),
            address: String::new(),
            revoked_at: None,
            revoke_reason: None,
            vault_key: Some(crate::secret::random_bytes()),
            generation: 0,
            prev_rotated_at: None,
            prev_sealed: None,
            events: Vec::new(),
        }
    }

    /// Liveness at `now` with idle timeout `idle` seconds.
    pub fn liveness(&self, now: i64, idle: i64) -> Liveness {
        if self.revoked_at.is_some() {
            Liveness::Revoked
        } else if now >= self.expires_at || now >= self.last_seen + idle {
            Liveness::Expired
        } else {
            Liveness::Live
        }
    }
}

/// Input of one atomic rotation.
#[derive(Debug, Clone)]
pub struct RotateRequest {
    /// `SHA-256` of the presented refresh token.
    pub presented_hash: String,
    /// `SHA-256` of the successor the caller generated.
    pub new_hash: String,
    /// The successor sealed under the presented token.
    pub sealed_successor: [u8; 32],
    /// Now (Unix seconds).
    pub now: i64,
    /// Grace window for the immediate predecessor (seconds).
    pub grace: i64,
    /// Idle timeout (seconds).
    pub idle: i64,
}

/// What an atomic rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The presented token was current; the successor is now current. Carries the updated session.
    Rotated(SessionRecord),
    /// The presented token is the immediate predecessor within the grace window: nothing
    /// changed; the caller opens `sealed` with the presented token to re-send the successor.
    Grace {
        /// The session.
        session: SessionRecord,
        /// The current token sealed under the presented one.
        sealed: [u8; 32],
    },
    /// A superseded token outside the grace rule: the family (session) is now revoked.
    Reused {
        /// The revoked session id.
        sid: String,
    },
    /// The session was already revoked.
    Revoked,
    /// The session passed its idle or absolute lifetime (now marked revoked as `expired`).
    Expired,
    /// No such token.
    Unknown,
}

/// Where a presented refresh token stands in its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPosition {
    /// The current token.
    Current,
    /// The immediate predecessor within the grace window.
    GracePredecessor,
    /// Any older token.
    Superseded,
}

/// The rotation rule shared by every backend (Redis repeats it in Lua).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Rotate,
    Grace([u8; 32]),
    Reuse,
    Revoked,
    Expired,
}

pub(crate) fn position(s: &SessionRecord, token_gen: i64, now: i64, grace: i64) -> TokenPosition {
    if token_gen == s.generation {
        TokenPosition::Current
    } else if token_gen == s.generation - 1
        && s.prev_sealed.is_some()
        && s.prev_rotated_at.is_some_and(|t| now - t <= grace)
    {
        TokenPosition::GracePredecessor
    } else {
        TokenPosition::Superseded
    }
}

pub(crate) fn decide(s: &SessionRecord, token_gen: i64, req: &RotateRequest) -> Decision {
    match s.liveness(req.now, req.idle) {
        Liveness::Revoked => return Decision::Revoked,
        Liveness::Expired => return Decision::Expired,
        Liveness::Live => {}
    }
    match position(s, token_gen, req.now, req.grace) {
        TokenPosition::Current => Decision::Rotate,
        TokenPosition::GracePredecessor => match s.prev_sealed {
            Some(sealed) => Decision::Grace(sealed),
            None => Decision::Reuse,
        },
        TokenPosition::Superseded => Decision::Reuse,
    }
}

/// Storage for users, sessions, refresh-token families and short-lived values.
///
/// Implementations must make [`rotate`](SessionStore::rotate) atomic: two concurrent calls
/// with the same presented token produce exactly one new family member.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// A short name for logs (`memory`, `sqlite`, `redis`).
    fn kind(&self) -> &'static str;

    /// Reads a server metadata value (signing keys, schema info).
    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>>;
    /// Writes `value` unless `key` exists; returns whichever value is stored afterwards.
    async fn put_meta_if_absent(&self, key: &str, value: &str) -> StoreResult<String>;
    /// Overwrites a metadata value.
    async fn set_meta(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Atomically replaces metadata `key` with `value` if it currently equals `expected`;
    /// `Ok(false)` when it does not (another writer was first). `keys rotate` uses it.
    async fn compare_and_set_meta(
        &self,
        key: &str,
        expected: &str,
        value: &str,
    ) -> StoreResult<bool>;

    /// Creates or replaces a user (by username).
    async fn upsert_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// Finds a user by login name.
    async fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>>;

    /// Stores a new session whose generation-0 refresh token hashes to `refresh_hash`.
    async fn create_session(&self, session: &SessionRecord, refresh_hash: &str) -> StoreResult<()>;
    /// Stores many sessions at once (benchmarks, imports). Default: one by one.
    async fn create_sessions(&self, batch: &[(SessionRecord, String)]) -> StoreResult<()> {
        for (s, h) in batch {
            self.create_session(s, h).await?;
        }
        Ok(())
    }
    /// Loads a session (without events).
    async fn get_session(&self, sid: &str) -> StoreResult<Option<SessionRecord>>;
    /// All sessions of a user, newest first, with their events.
    async fn list_sessions(&self, user_id: &str) -> StoreResult<Vec<SessionRecord>>;
    /// Finds the session a refresh token belongs to and where the token stands.
    async fn lookup_refresh(
        &self,
        refresh_hash: &str,
        now: i64,
        grace: i64,
    ) -> StoreResult<Option<(SessionRecord, TokenPosition)>>;
    /// The atomic rotation step (see the module docs).
    async fn rotate(&self, req: &RotateRequest) -> StoreResult<RotateOutcome>;
    /// Revokes a session and destroys its vault key. Returns whether it was live before.
    async fn revoke_session(&self, sid: &str, reason: &str, now: i64) -> StoreResult<bool>;
    /// Revokes every session of a user; returns how many were live.
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<usize>;
    /// Records the client's current user agent and network on the session, plus an event.
    async fn update_client(
        &self,
        sid: &str,
        user_agent: &str,
        address: &str,
        event: Option<&SessionEvent>,
    ) -> StoreResult<()>;

    /// Stores a short-lived value until `expires_at`.
    async fn put_ephemeral(&self, key: &str, value: &str, expires_at: i64) -> StoreResult<()>;
    /// Reads a short-lived value if present and not expired.
    async fn get_ephemeral(&self, key: &str, now: i64) -> StoreResult<Option<String>>;
    /// Atomically reads and deletes a short-lived value.
    async fn take_ephemeral(&self, key: &str, now: i64) -> StoreResult<Option<String>>;
    /// Marks `key` used until `expires_at`; `true` only for the first caller (replay guard).
    async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> StoreResult<bool>;

    /// Housekeeping: deletes sessions (with their tokens and events) whose absolute expiry
    /// is more than `retention` seconds before `now`, and expired short-lived values.
    /// Live sessions are never touched. Returns how many sessions were deleted (Redis
    /// expires keys by itself and returns 0).
    async fn purge_expired(&self, now: i64, retention: i64) -> StoreResult<usize>;
}

/// Opens the store named by a `--store` URL: `memory://`, `sqlite://PATH`, `redis://…`,
/// `rediss://…`, `redis+sentinel://HOST:PORT[,…]/SERVICE[/DB]`, `redis+cluster://HOST:PORT[,…]`.
///
/// # Errors
/// When the URL scheme is unknown or the backend cannot be opened.
pub async fn open(url: &str) -> StoreResult<std::sync::Arc<dyn SessionStore>> {
    if url == "memory://" || url == "memory" {
        Ok(std::sync::Arc::new(memory::MemoryStore::new()))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(std::sync::Arc::new(sqlite::SqliteStore::open(path)?))
    } else if url.starts_with("redis://")
        || url.starts_with("rediss://")
        || url.starts_with("redis+sentinel://")
        || url.starts_with("redis+cluster://")
    {
        Ok(std::sync::Arc::new(
            redis::RedisStore::connect(url, "tessera:").await?,
        ))
    } else {
        Err(StoreError::Config(format!(
            "unknown store URL scheme in {url:?} (use sqlite://PATH, redis://HOST:PORT, redis+sentinel://HOST:PORT/SERVICE, redis+cluster://HOST:PORT,… or memory://)"
        )))
    }
}
