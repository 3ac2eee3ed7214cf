//! Session storage behind one trait, [`SessionStore`], with three backends:
//! [`memory::MemoryStore`] (tests only), [`sqlite::SqliteStore`] (the embedded, persistent
//! default) and [`redis::RedisStore`] (several server instances sharing sessions; standalone,
//! Sentinel or Cluster).
//!
//! Every backend implements refresh rotation as one atomic step ([`SessionStore::rotate`]),
//! with the same decision rule (`decide` in this module): the current token rotates; a token
//! the same client superseded within the grace window (the immediate predecessor, or up to
//! [`MAX_GRACE_CHAIN`] older ones: tabs refreshing at once whose requests arrive out of
//! order) gets the current token back (sealed so that only the superseded token's holder can
//! open it); anything else revokes the whole family.
//! One conformance suite (`tests/store_conformance.rs`) runs against all three.
//!
//! Growth is bounded: a refresh token names its family ([`crate::secret::RefreshToken`]), so
//! a session keeps only the current token's hash, the grace predecessor's and, while their
//! window lasts, at most [`MAX_GRACE_CHAIN`] older ones, however often it rotates; any other
//! token of the family is recognised as reuse. A user has at
//! most [`SessionLimits::max_per_user`] live sessions (a new one revokes the oldest), a
//! session keeps at most [`MAX_EVENTS_PER_SESSION`] events, and listings page
//! ([`SessionStore::list_sessions_page`]).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod memory;
pub mod redis;
pub mod sealed;
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
    /// A value sealed under the master key does not open: another master key, a value
    /// moved between records, or tampering.
    #[error("sealed value does not open ({0}): wrong master key, or the store was altered")]
    Sealed(String),
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Events kept per session (older ones are dropped first).
pub const MAX_EVENTS_PER_SESSION: usize = 50;

/// Highest accepted `--max-sessions-per-user`; also the size of Redis's per-user index.
pub const MAX_SESSIONS_PER_USER_LIMIT: usize = 1000;

/// What the store keeps of a refresh token: hashes only (see
/// [`crate::secret::RefreshToken::to_ref`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRef {
    /// Hash of the token's family id: the same for every token of one session.
    pub family: String,
    /// Hash of the whole token.
    pub hash: String,
}

/// Limits applied when a session is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Live sessions a user may hold; creating one more revokes the oldest (reason
    /// `session_limit`).
    pub max_per_user: usize,
    /// Idle timeout in seconds (a session idle for longer is not live and does not count).
    pub idle: i64,
}

/// One page of a user's sessions, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPage {
    /// The sessions, with their events.
    pub sessions: Vec<SessionRecord>,
    /// Cursor of the next page, `None` on the last one.
    pub next: Option<String>,
}

/// The listing order (newest first: `created_at`, then `sid`, both descending) and its
/// cursor `"<created_at>:<sid>"` of the last item of a page.
pub(crate) fn page_cursor(s: &SessionRecord) -> String {
    format!("{}:{}", s.created_at, s.sid)
}

/// Parses a cursor; a malformed one is an error rather than a silent first page.
pub fn parse_cursor(c: &str) -> StoreResult<(i64, String)> {
    let (t, sid) = c
        .split_once(':')
        .ok_or_else(|| StoreError::Config("malformed session cursor".into()))?;
    let t = t
        .parse()
        .map_err(|_| StoreError::Config("malformed session cursor".into()))?;
    Ok((t, sid.to_string()))
}

/// Whether `s` comes after the cursor position in listing order.
pub(crate) fn after_cursor(s: &SessionRecord, cursor: &Option<(i64, String)>) -> bool {
    match cursor {
        None => true,
        Some((t, sid)) => (s.created_at, s.sid.as_str()) < (*t, sid.as_str()),
    }
}

/// Sorts into listing order.
pub(crate) fn listing_order(v: &mut [SessionRecord]) {
    v.sort_by(|a, b| (b.created_at, &b.sid).cmp(&(a.created_at, &a.sid)));
}

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

/// A user as `user-list` shows it: the name, whether TOTP is enrolled, never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// Stable user id (the JWT `sub`).
    pub id: String,
    /// Login name.
    pub username: String,
    /// Whether a TOTP secret is enrolled.
    pub totp: bool,
}

impl From<&UserRecord> for UserSummary {
    fn from(u: &UserRecord) -> Self {
        UserSummary {
            id: u.id.clone(),
            username: u.username.clone(),
            totp: u.totp_secret.is_some(),
        }
    }
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
    /// The per-session vault key (32 bytes); `None` once the session is revoked or expired
    /// (crypto-shredding). Sealed at rest by [`sealed::SealedStore`].
    pub vault_key: Option<Vec<u8>>,
    /// Generation of the current refresh token (0 = the one issued at login).
    pub generation: i64,
    /// When the current token's predecessor was superseded.
    pub prev_rotated_at: Option<i64>,
    /// The current token's secret sealed for its predecessor's holder (see
    /// [`MasterKey::seal_successor`](crate::master_key::MasterKey::seal_successor)); gone
    /// once the grace window ends.
    pub prev_sealed: Option<Vec<u8>>,
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
            vault_key: Some(crate::secret::random_bytes().to_vec()),
            generation: 0,
            prev_rotated_at: None,
            prev_sealed: None,
            events: Vec::new(),
        }
    }

    /// Liveness at `now` with idle timeout `idle` seconds.
    pub fn liveness(&self, now: i64, idle: i64) -> Liveness {
        SessionStatus::from(self).liveness(now, idle)
    }
}

/// What decides whether a session is live, and nothing secret: the result of
/// [`SessionStore::session_status`], the read introspection and bearer checks make per
/// request (no vault key, no grace successor, no client details, nothing to decrypt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStatus {
    /// Last refresh (drives the idle timeout).
    pub last_seen: i64,
    /// Absolute expiry.
    pub expires_at: i64,
    /// Whether the session was revoked (logout, reuse, remote revoke, password change, …).
    pub revoked: bool,
    /// Whether the session was established with a second factor.
    pub mfa: bool,
}

impl SessionStatus {
    /// Liveness at `now` with idle timeout `idle` seconds (the one definition;
    /// [`SessionRecord::liveness`] uses it too).
    pub fn liveness(&self, now: i64, idle: i64) -> Liveness {
        if self.revoked {
            Liveness::Revoked
        } else if now >= self.expires_at || now >= self.last_seen + idle {
            Liveness::Expired
        } else {
            Liveness::Live
        }
    }
}

impl From<&SessionRecord> for SessionStatus {
    fn from(s: &SessionRecord) -> Self {
        SessionStatus {
            last_seen: s.last_seen,
            expires_at: s.expires_at,
            revoked: s.revoked_at.is_some(),
            mfa: s.mfa,
        }
    }
}

/// Input of one atomic rotation.
#[derive(Debug, Clone)]
pub struct RotateRequest {
    /// The presented refresh token (hashes).
    pub presented: TokenRef,
    /// Hash of the successor the caller generated (same family).
    pub new_hash: String,
    /// The successor's secret sealed for the presented token's holder.
    pub sealed_successor: Vec<u8>,
    /// Who rotates: [`crate::secret::client_binding`] of the request's user agent and
    /// network. The grace rule answers only the same client.
    pub client: String,
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
    /// The presented token was superseded within the grace window by the same client (the
    /// immediate predecessor, or an older one: see [`GraceEntry`]): nothing changed; the
    /// caller opens `chain` with the presented token to re-send the current one.
    Grace {
        /// The session.
        session: SessionRecord,
        /// The sealed successors from the presented token to the current one, oldest first:
        /// the first opens with the presented token's secret, each next one with the secret
        /// the previous one yields; the last yields the current token's secret.
        chain: Vec<Vec<u8>>,
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
    /// A token superseded within the grace window (the immediate predecessor or an older
    /// one the store still keeps, see [`GraceEntry`]).
    GracePredecessor,
    /// Any older token.
    Superseded,
}

/// The rotation rule shared by every backend (Redis repeats it in Lua).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    Rotate,
    Grace(Vec<Vec<u8>>),
    Reuse,
    Revoked,
    Expired,
}

/// How many tokens older than the immediate predecessor a session keeps for the grace rule
/// (each only while its window lasts).
///
/// Why older ones at all: tabs that cannot coordinate (no Web Locks, no BroadcastChannel)
/// may refresh with the same cookie at once, and their requests reach the server in any
/// order. Tab A rotates t0 → t1, tab B (which already saw t1) rotates t1 → t2, and only then
/// does tab C's request, sent with t0 before either answer, arrive: t0 is two generations
/// old, yet it is the same client's lost race, not a replay. Within the window, from the
/// client that superseded it, it gets the current token like the immediate predecessor does.
pub const MAX_GRACE_CHAIN: usize = 8;

/// A token superseded before the immediate predecessor, kept for the grace rule while its
/// window lasts (at most [`MAX_GRACE_CHAIN`] per session, newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraceEntry {
    /// Hash of the superseded token.
    pub hash: String,
    /// [`crate::secret::client_binding`] of the request that presented it (and rotated).
    pub client: String,
    /// When it was superseded (Unix seconds).
    pub at: i64,
    /// Its successor's secret sealed for its holder (as `prev_sealed`).
    pub sealed: Vec<u8>,
}

impl GraceEntry {
    /// The entries as one text, the format Redis keeps and its rotation script reads: one
    /// line per entry, `hash client at sealed` (sealed in base64url); hashes and client
    /// bindings are base64url, so they hold no blank.
    pub fn encode_all(entries: &[GraceEntry]) -> String {
        let lines: Vec<String> = entries
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} {}",
                    e.hash,
                    e.client,
                    e.at,
                    crate::secret::b64(&e.sealed)
                )
            })
            .collect();
        lines.join("\n")
    }

    /// Reads [`encode_all`](Self::encode_all)'s text; a malformed line is left out (it
    /// can only make a presented token count as superseded).
    pub fn decode_all(text: &str) -> Vec<GraceEntry> {
        text.lines()
            .filter_map(|line| {
                let mut f = line.split(' ');
                let (hash, client, at, sealed) = (f.next()?, f.next()?, f.next()?, f.next()?);
                Some(GraceEntry {
                    hash: hash.to_string(),
                    client: client.to_string(),
                    at: at.parse().ok()?,
                    sealed: crate::secret::unb64(sealed)?,
                })
            })
            .take(MAX_GRACE_CHAIN)
            .collect()
    }
}

/// The token hashes a session keeps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TokenState {
    /// Hash of the current token.
    pub cur: String,
    /// Hash of the immediate predecessor (kept for the grace rule only).
    pub prev: Option<String>,
    /// [`crate::secret::client_binding`] of the request that rotated to the current token.
    pub prev_client: Option<String>,
    /// Older superseded tokens still in their grace window, newest first.
    pub older: Vec<GraceEntry>,
}

impl TokenState {
    /// The grace entries after rotating away from the current token at `now`: the
    /// immediate predecessor joins the older ones while its window lasts; entries past
    /// theirs leave; at most [`MAX_GRACE_CHAIN`].
    pub(crate) fn older_after_rotation(
        &self,
        s: &SessionRecord,
        now: i64,
        grace: i64,
    ) -> Vec<GraceEntry> {
        let prev = match (
            &self.prev,
            &self.prev_client,
            &s.prev_sealed,
            s.prev_rotated_at,
        ) {
            (Some(hash), Some(client), Some(sealed), Some(at)) => Some(GraceEntry {
                hash: hash.clone(),
                client: client.clone(),
                at,
                sealed: sealed.clone(),
            }),
            _ => None,
        };
        prev.into_iter()
            .chain(self.older.iter().cloned())
            .filter(|e| now - e.at <= grace)
            .take(MAX_GRACE_CHAIN)
            .collect()
    }
}

/// The grace rule, the one place it is decided: a token superseded within the window (the
/// immediate predecessor, or an older one still kept) and presented by the client that
/// superseded it (same user agent and network: from elsewhere in the window it is theft, not
/// a lost response). Returns the sealed chain from it to the current token, oldest first;
/// `None` when the token is not in grace for `client`.
fn grace_chain<'a>(
    s: &'a SessionRecord,
    t: &'a TokenState,
    presented: &str,
    now: i64,
    grace: i64,
    client: &str,
) -> Option<Vec<&'a [u8]>> {
    let last = s.prev_sealed.as_deref()?;
    if s.prev_rotated_at.is_none_or(|at| now - at > grace) {
        return None;
    }
    if t.prev.as_deref() == Some(presented) {
        return (t.prev_client.as_deref() == Some(client)).then(|| vec![last]);
    }
    let k = t.older.iter().position(|e| e.hash == presented)?;
    let e = &t.older[k];
    if now - e.at > grace || e.client != client {
        return None;
    }
    let mut chain: Vec<&[u8]> = t.older[..=k].iter().rev().map(|e| &e.sealed[..]).collect();
    chain.push(last);
    Some(chain)
}

/// Where `presented` stands as seen from `client` (the rule of [`grace_chain`], as
/// [`decide`] applies it).
pub(crate) fn position_for(
    s: &SessionRecord,
    t: &TokenState,
    presented: &str,
    now: i64,
    grace: i64,
    client: &str,
) -> TokenPosition {
    if presented == t.cur {
        TokenPosition::Current
    } else if grace_chain(s, t, presented, now, grace, client).is_some() {
        TokenPosition::GracePredecessor
    } else {
        TokenPosition::Superseded
    }
}

pub(crate) fn decide(s: &SessionRecord, t: &TokenState, req: &RotateRequest) -> Decision {
    match s.liveness(req.now, req.idle) {
        Liveness::Revoked => return Decision::Revoked,
        Liveness::Expired => return Decision::Expired,
        Liveness::Live => {}
    }
    if req.presented.hash == t.cur {
        return Decision::Rotate;
    }
    match grace_chain(s, t, &req.presented.hash, req.now, req.grace, &req.client) {
        Some(chain) => Decision::Grace(chain.into_iter().map(<[u8]>::to_vec).collect()),
        None => Decision::Reuse,
    }
}

/// Whether a session counts against the per-user limit at `now`.
pub(crate) fn counts_as_live(s: &SessionRecord, now: i64, idle: i64) -> bool {
    s.liveness(now, idle) == Liveness::Live
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
    /// Every user, by login name (`user-list`; an admin command, not a request path).
    async fn list_users(&self) -> StoreResult<Vec<UserSummary>>;
    /// Deletes a user record (not its sessions: revoke those first); `false` when there
    /// was none.
    async fn delete_user(&self, username: &str) -> StoreResult<bool>;

    /// Stores a new session with its first refresh token, then revokes (reason
    /// `session_limit`) the user's oldest live sessions beyond `limits.max_per_user`, as one
    /// atomic step where the backend allows (memory, SQLite; Redis: the new session's write
    /// is atomic, the trim follows it). Returns the revoked session ids.
    async fn create_session(
        &self,
        session: &SessionRecord,
        token: &TokenRef,
        limits: &SessionLimits,
    ) -> StoreResult<Vec<String>>;
    /// Stores many sessions at once (benchmarks, imports), without the per-user limit.
    /// Default: one by one.
    async fn create_sessions(&self, batch: &[(SessionRecord, TokenRef)]) -> StoreResult<()> {
        let unlimited = SessionLimits {
            max_per_user: usize::MAX,
            idle: i64::MAX / 4,
        };
        for (s, t) in batch {
            self.create_session(s, t, &unlimited).await?;
        }
        Ok(())
    }
    /// Loads a session (without events).
    async fn get_session(&self, sid: &str) -> StoreResult<Option<SessionRecord>>;
    /// Only what decides a session's liveness (and its `mfa` flag), read as cheaply as the
    /// backend allows: no vault key, no grace successor, nothing to decrypt. It must reflect
    /// every write [`get_session`](SessionStore::get_session) would (a revocation is seen
    /// by the next call). Introspection and bearer checks call it once per request.
    async fn session_status(&self, sid: &str) -> StoreResult<Option<SessionStatus>>;
    /// One page of a user's sessions (newest first, with their events): at most `limit`,
    /// after `cursor` (the `next` of the previous page; `None` for the first).
    ///
    /// # Errors
    /// [`StoreError::Config`] for a malformed cursor.
    async fn list_sessions_page(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<SessionPage>;
    /// All sessions of a user, newest first, with their events (every page).
    async fn list_sessions(&self, user_id: &str) -> StoreResult<Vec<SessionRecord>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .list_sessions_page(user_id, 100, cursor.as_deref())
                .await?;
            out.extend(page.sessions);
            match page.next {
                Some(n) => cursor = Some(n),
                None => return Ok(out),
            }
        }
    }
    /// How many refresh-token records the store holds for a session (for tests and
    /// metrics: at most the current token, the grace predecessor, the family index and,
    /// within the grace window, [`MAX_GRACE_CHAIN`] older tokens).
    async fn token_records(&self, sid: &str) -> StoreResult<usize>;
    /// Finds the session a refresh token belongs to and where the token stands, as
    /// presented by `client` ([`crate::secret::client_binding`]): like the rotation's grace
    /// rule, the immediate predecessor counts as [`TokenPosition::GracePredecessor`] only
    /// for the client that rotated; from any other client it is
    /// [`TokenPosition::Superseded`].
    async fn lookup_refresh(
        &self,
        token: &TokenRef,
        now: i64,
        grace: i64,
        client: &str,
    ) -> StoreResult<Option<(SessionRecord, TokenPosition)>>;
    /// [`lookup_refresh`](SessionStore::lookup_refresh) for a token as presented by a client;
    /// a malformed token, or one whose tag does not verify under `key`, finds nothing.
    async fn lookup_presented(
        &self,
        key: &crate::secret::TokenKey,
        token: &str,
        now: i64,
        grace: i64,
        client: &str,
    ) -> StoreResult<Option<(SessionRecord, TokenPosition)>> {
        match crate::secret::RefreshToken::decode(token, key) {
            Some(t) => self.lookup_refresh(&t.to_ref(), now, grace, client).await,
            None => Ok(None),
        }
    }
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
    /// How many sessions are live at `now` (not revoked, within their idle and absolute
    /// lifetimes) in the whole store: the `tessera_live_sessions` gauge, read on scrape.
    async fn count_live_sessions(&self, now: i64, idle: i64) -> StoreResult<u64>;
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
    /// Atomically raises the counter `key` to `value` when it is absent, expired or lower,
    /// and keeps it until `expires_at`. Returns `true` when it raised it; `false` (and no
    /// change) when the stored value is already `>= value` (the TOTP replay guard).
    async fn advance_counter(
        &self,
        key: &str,
        value: i64,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool>;

    /// Housekeeping that destroys secrets which outlived their use: the vault keys of
    /// sessions past their idle or absolute lifetime, and grace successors (`prev_sealed`)
    /// older than `grace`. Returns how many records changed. Redis gives these values their
    /// own keys with TTLs, so it expires them by itself (and returns 0).
    async fn shred(&self, now: i64, idle: i64, grace: i64) -> StoreResult<usize>;

    /// Housekeeping: deletes sessions (with their tokens and events) whose absolute expiry
    /// is more than `retention` seconds before `now`, and expired short-lived values.
    /// Live sessions are never touched. Returns how many sessions were deleted (Redis
    /// expires keys by itself and returns 0).
    async fn purge_expired(&self, now: i64, retention: i64) -> StoreResult<usize>;
}

/// Opens the store named by a `--store` URL: `memory://`, `sqlite://PATH`, `redis://…`,
/// `rediss://…`, `redis[s]+sentinel://[USER:PASS@]HOST:PORT[,…]/SERVICE[/DB][?sentinel_password=…]`,
/// `redis[s]+cluster://[USER:PASS@]HOST:PORT[,…]` (see [`redis`] for credentials and TLS).
///
/// # Errors
/// When the URL scheme is unknown or the backend cannot be opened.
pub async fn open(url: &str) -> StoreResult<std::sync::Arc<dyn SessionStore>> {
    if url == "memory://" || url == "memory" {
        Ok(std::sync::Arc::new(memory::MemoryStore::new()))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(std::sync::Arc::new(sqlite::SqliteStore::open(path)?))
    } else if redis::is_redis_url(url) {
        Ok(std::sync::Arc::new(
            redis::RedisStore::connect(url, "tessera:").await?,
        ))
    } else {
        // Only the scheme is named: the rest of a URL may carry a password.
        let scheme = url.split_once("://").map_or("(none)", |(scheme, _)| scheme);
        Err(StoreError::Config(format!(
            "unknown store URL scheme {scheme:?} (use sqlite://PATH, redis://HOST:PORT, redis[s]+sentinel://HOST:PORT/SERVICE, redis[s]+cluster://HOST:PORT,… or memory://)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> GraceEntry {
        GraceEntry {
            hash: format!("h{n}"),
            client: "c".into(),
            at: 1_800_000_000 + i64::from(n),
            sealed: vec![n; 60],
        }
    }

    #[test]
    fn grace_entries_round_trip_and_malformed_lines_are_left_out() {
        let all: Vec<GraceEntry> = (0..3).map(entry).collect();
        let text = GraceEntry::encode_all(&all);
        assert_eq!(GraceEntry::decode_all(&text), all);
        let damaged = format!("{text}\nonly two\nh9 c notanumber AAAA\nh9 c 5 !!!\n\n");
        assert_eq!(
            GraceEntry::decode_all(&damaged),
            all,
            "bad lines dropped, no panic"
        );
        let many: Vec<GraceEntry> = (0..20).map(entry).collect();
        assert_eq!(
            GraceEntry::decode_all(&GraceEntry::encode_all(&many)).len(),
            MAX_GRACE_CHAIN,
            "never more than the bound, whatever the store holds"
        );
    }
}
