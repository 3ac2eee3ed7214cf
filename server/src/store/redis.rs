//! Redis store for several server instances sharing sessions: standalone Redis or Valkey
//! (`redis://`, `rediss://`), Sentinel (`redis+sentinel://HOST:PORT[,…]/SERVICE[/DB]`,
//! follows failovers) and Cluster (`redis+cluster://HOST:PORT[,HOST:PORT…]`).
//!
//! Layout (all keys under a prefix, default `tessera:`; `{…}` is a Cluster hash tag, so all
//! keys of one session live in one slot): `s:{sid}` hash (the session, plus one field
//! `tok:<hash>` = generation per refresh token it ever issued), `ev:{sid}` list of JSON
//! events, `t:<hash>` string `sid` (index from a refresh token to its session),
//! `u:<user_id>` set of sids, `user:<name>`, `meta:<key>`, `eph:<key>`. Rotation and
//! revocation are Lua scripts over the single session key, so each is atomic on the server
//! (and Cluster-safe). Session keys expire a day after the absolute lifetime.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager};
use ::redis::AsyncCommands;
use async_trait::async_trait;

use super::{
    position, RotateOutcome, RotateRequest, SessionEvent, SessionRecord, SessionStore, StoreError,
    StoreResult, TokenPosition, UserRecord,
};
use crate::secret::{b64, unb64};

/// How long revoked/expired session records are kept after their absolute expiry.
const RETENTION: i64 = 86_400;
/// Garbage-collection TTL of short-lived values (their real expiry is inside the value).
const EPHEMERAL_TTL: i64 = 3_600;

fn unpack_ephemeral(v: Option<String>, now: i64) -> Option<String> {
    let v = v?;
    let (exp, value) = v.split_once('|')?;
    (exp.parse::<i64>().ok()? > now).then(|| value.to_string())
}

const ROTATE_LUA: &str = r#"
local sk = KEYS[1]
local now = tonumber(ARGV[1]); local grace = tonumber(ARGV[2]); local idle = tonumber(ARGV[3])
local tg = redis.call('HGET', sk, 'tok:' .. ARGV[4])
if not tg then return {'unknown'} end
local tgen = tonumber(tg)
local f = redis.call('HMGET', sk, 'revoked_at', 'expires_at', 'last_seen', 'gen', 'prev_at', 'prev_sealed')
if not f[4] then return {'unknown'} end
if f[1] and f[1] ~= '' then return {'revoked'} end
local exp = tonumber(f[2]); local last = tonumber(f[3]); local gen = tonumber(f[4])
if now >= exp or now >= last + idle then
  redis.call('HSET', sk, 'revoked_at', ARGV[1], 'reason', 'expired', 'vault', '')
  return {'expired'}
end
if tgen == gen then
  local g = tostring(gen + 1)
  redis.call('HSET', sk, 'gen', g, 'prev_at', ARGV[1], 'prev_sealed', ARGV[6], 'last_seen', ARGV[1], 'tok:' .. ARGV[5], g)
  return {'rotated', g}
end
if tgen == gen - 1 and f[5] and f[5] ~= '' and f[6] and f[6] ~= '' and now - tonumber(f[5]) <= grace then
  return {'grace', f[6]}
end
redis.call('HSET', sk, 'revoked_at', ARGV[1], 'reason', 'refresh_reused', 'vault', '')
return {'reused'}
"#;

const REVOKE_LUA: &str = r#"
local f = redis.call('HMGET', KEYS[1], 'gen', 'revoked_at')
if not f[1] then return 0 end
if f[2] and f[2] ~= '' then return 0 end
redis.call('HSET', KEYS[1], 'revoked_at', ARGV[1], 'reason', ARGV[2], 'vault', '')
return 1
"#;

const CAS_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// A standalone/Sentinel connection or a Cluster connection.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(::redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a ::redis::Cmd,
    ) -> ::redis::RedisFuture<'a, ::redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }
    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a ::redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> ::redis::RedisFuture<'a, Vec<::redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }
    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The Redis backend.
pub struct RedisStore {
    conn: Arc<RwLock<Conn>>,
    cluster: bool,
    watcher: Option<tokio::task::JoinHandle<()>>,
    prefix: String,
    rotate: ::redis::Script,
    revoke: ::redis::Script,
    /// `--redis-wait-replicas` / `--redis-wait-ms`: session-changing writes wait for this
    /// many replica acknowledgements (Redis `WAIT` on the writing connection).
    wait: Option<ReplicaWait>,
}

/// How many replicas must acknowledge a session-changing write, and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaWait {
    /// Replicas that must have the write before it is acknowledged to the client.
    pub replicas: u32,
    /// Longest wait in milliseconds (never 0: `WAIT n 0` would block forever).
    pub timeout_ms: u64,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Bounded reconnects and timeouts: a dead server turns into a quick `internal` error (the
/// SDK retries) instead of a request that hangs.
fn manager_config() -> ::redis::aio::ConnectionManagerConfig {
    ::redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(3)
        .set_factor(50)
        .set_max_delay(1000)
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_secs(3))
}

fn err(e: ::redis::RedisError) -> StoreError {
    use ::redis::ErrorKind as K;
    let transient = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || matches!(
            e.kind(),
            K::BusyLoadingError | K::ReadOnly | K::MasterDown | K::TryAgain | K::ClusterDown
        );
    if transient {
        return StoreError::Unavailable(e.to_string());
    }
    StoreError::Redis(e.to_string())
}

fn parse_i64(m: &HashMap<String, String>, k: &str) -> StoreResult<i64> {
    m.get(k)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("session field {k}")))
}

fn opt_i64(m: &HashMap<String, String>, k: &str) -> Option<i64> {
    m.get(k)
        .filter(|v| !v.is_empty())
        .and_then(|v| v.parse().ok())
}

fn opt_key(m: &HashMap<String, String>, k: &str) -> Option<[u8; 32]> {
    m.get(k)
        .filter(|v| !v.is_empty())
        .and_then(|v| unb64(v))
        .and_then(|v| v.try_into().ok())
}

fn session_from_hash(sid: &str, m: &HashMap<String, String>) -> StoreResult<Option<SessionRecord>> {
    if m.is_empty() {
        return Ok(None);
    }
    let s = |k: &str| m.get(k).cloned().unwrap_or_default();
    Ok(Some(SessionRecord {
        sid: sid.to_string(),
        user_id: s("user_id"),
        username: s("username"),
        created_at: parse_i64(m, "created_at")?,
        last_seen: parse_i64(m, "last_seen")?,
        expires_at: parse_i64(m, "expires_at")?,
        mfa: s("mfa") == "1",
        user_agent: s("ua"),
        address: s("addr"),
        revoked_at: opt_i64(m, "revoked_at"),
        revoke_reason: m.get("reason").filter(|v| !v.is_empty()).cloned(),
        vault_key: opt_key(m, "vault"),
        generation: parse_i64(m, "gen")?,
        prev_rotated_at: opt_i64(m, "prev_at"),
        prev_sealed: opt_key(m, "prev_sealed"),
        events: Vec::new(),
    }))
}

fn session_fields(s: &SessionRecord) -> Vec<(&'static str, String)> {
    // (field names must match FIELDS)
    vec![
        ("user_id", s.user_id.clone()),
        ("username", s.username.clone()),
        ("created_at", s.created_at.to_string()),
        ("last_seen", s.last_seen.to_string()),
        ("expires_at", s.expires_at.to_string()),
        ("mfa", if s.mfa { "1" } else { "0" }.into()),
        ("ua", s.user_agent.clone()),
        ("addr", s.address.clone()),
        (
            "revoked_at",
            s.revoked_at.map(|v| v.to_string()).unwrap_or_default(),
        ),
        ("reason", s.revoke_reason.clone().unwrap_or_default()),
        ("vault", s.vault_key.map(|k| b64(&k)).unwrap_or_default()),
        ("gen", s.generation.to_string()),
        (
            "prev_at",
            s.prev_rotated_at.map(|v| v.to_string()).unwrap_or_default(),
        ),
        (
            "prev_sealed",
            s.prev_sealed.map(|k| b64(&k)).unwrap_or_default(),
        ),
    ]
}

impl RedisStore {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/0`) with key prefix `prefix`.
    ///
    /// # Errors
    /// When the URL is malformed or the server is unreachable.
    pub async fn connect(url: &str, prefix: &str) -> StoreResult<Self> {
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            return Self::connect_sentinel(rest, prefix).await;
        }
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let nodes: Vec<String> = rest
                .trim_end_matches('/')
                .split(',')
                .filter(|h| !h.is_empty())
                .map(|h| format!("redis://{h}"))
                .collect();
            let client = ::redis::cluster::ClusterClientBuilder::new(nodes)
                .connection_timeout(Duration::from_secs(2))
                .response_timeout(Duration::from_secs(3))
                .build()
                .map_err(err)?;
            let conn = client.get_async_connection().await.map_err(err)?;
            let mut me =
                Self::with_conn_shared(Arc::new(RwLock::new(Conn::Cluster(conn))), None, prefix);
            me.cluster = true;
            return Ok(me);
        }
        let client = ::redis::Client::open(url).map_err(err)?;
        let conn = ConnectionManager::new_with_config(client, manager_config())
            .await
            .map_err(err)?;
        Ok(Self::with_conn(conn, None, prefix))
    }

    fn with_conn(
        conn: ConnectionManager,
        watcher: Option<tokio::task::JoinHandle<()>>,
        prefix: &str,
    ) -> Self {
        Self::with_conn_shared(Arc::new(RwLock::new(Conn::Single(conn))), watcher, prefix)
    }

    /// `redis+sentinel://HOST:PORT[,HOST:PORT…]/SERVICE[/DB]`: asks the Sentinels for the
    /// current master of SERVICE, connects to it, and re-asks every second so that after a
    /// failover new commands go to the promoted master.
    async fn connect_sentinel(rest: &str, prefix: &str) -> StoreResult<Self> {
        use ::redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
        let (hosts, path) = rest.split_once('/').ok_or_else(|| {
            StoreError::Config(
                "redis+sentinel:// URL needs /SERVICE after the sentinel hosts".into(),
            )
        })?;
        let mut parts = path.split('/');
        let service = parts.next().filter(|s| !s.is_empty()).ok_or_else(|| {
            StoreError::Config("redis+sentinel:// URL needs a service (master) name".into())
        })?;
        let db: i64 = match parts.next().filter(|s| !s.is_empty()) {
            Some(d) => d
                .parse()
                .map_err(|_| StoreError::Config(format!("bad database number {d:?}")))?,
            None => 0,
        };
        let sentinels: Vec<String> = hosts.split(',').map(|h| format!("redis://{h}")).collect();
        let node = SentinelNodeConnectionInfo {
            tls_mode: None,
            redis_connection_info: Some(::redis::RedisConnectionInfo {
                db,
                ..Default::default()
            }),
        };
        let mut sc = SentinelClient::build(
            sentinels,
            service.to_string(),
            Some(node),
            SentinelServerType::Master,
        )
        .map_err(err)?;
        let client = sc.async_get_client().await.map_err(err)?;
        let mut current = client.get_connection_info().addr.to_string();
        let conn = ConnectionManager::new_with_config(client, manager_config())
            .await
            .map_err(err)?;
        let shared = Arc::new(RwLock::new(Conn::Single(conn)));
        let target = shared.clone();
        let service = service.to_string();
        let watcher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Ok(client) = sc.async_get_client().await else {
                    continue;
                };
                let addr = client.get_connection_info().addr.to_string();
                if addr == current {
                    continue;
                }
                match ConnectionManager::new_with_config(client, manager_config()).await {
                    Ok(c) => {
                        tracing::warn!(service = %service, from = %current, to = %addr, "redis sentinel: master changed");
                        *target.write().unwrap_or_else(|e| e.into_inner()) = Conn::Single(c);
                        current = addr;
                    }
                    Err(e) => tracing::warn!(error = %e, "redis sentinel: cannot reach new master"),
                }
            }
        });
        Ok(Self::with_conn_shared(shared, Some(watcher), prefix))
    }

    fn with_conn_shared(
        conn: Arc<RwLock<Conn>>,
        watcher: Option<tokio::task::JoinHandle<()>>,
        prefix: &str,
    ) -> Self {
        RedisStore {
            conn,
            cluster: false,
            watcher,
            prefix: prefix.to_string(),
            rotate: ::redis::Script::new(ROTATE_LUA),
            revoke: ::redis::Script::new(REVOKE_LUA),
            wait: None,
        }
    }

    /// Makes every session-changing write (create, rotate, revoke, one-time-use marks)
    /// wait until `wait.replicas` replicas acknowledged it, at most `wait.timeout_ms`; a
    /// write with fewer acknowledgements fails with a retryable error, so a client never
    /// holds a token that only the master knew. Without it, a write acknowledged by the
    /// master and not yet replicated is lost when a failover promotes a replica.
    ///
    /// # Errors
    /// [`StoreError::Config`] on Redis Cluster (a `WAIT` there answers for one node only)
    /// or for a zero timeout.
    pub fn with_replica_wait(mut self, wait: ReplicaWait) -> StoreResult<Self> {
        if self.cluster {
            return Err(StoreError::Config(
                "--redis-wait-replicas is not supported with redis+cluster://".into(),
            ));
        }
        if wait.timeout_ms == 0 {
            return Err(StoreError::Config(
                "--redis-wait-ms must be positive".into(),
            ));
        }
        self.wait = (wait.replicas > 0).then_some(wait);
        Ok(self)
    }

    /// `WAIT` on the connection that just wrote (a multiplexed connection is one socket, so
    /// the write is among the ones `WAIT` counts). No-op without [`Self::with_replica_wait`].
    async fn replicated(&self, c: &mut Conn) -> StoreResult<()> {
        let Some(w) = self.wait else { return Ok(()) };
        let acked: i64 = ::redis::cmd("WAIT")
            .arg(w.replicas)
            .arg(w.timeout_ms)
            .query_async(c)
            .await
            .map_err(err)?;
        if acked < i64::from(w.replicas) {
            return Err(StoreError::Unavailable(format!(
                "write acknowledged by {acked} of {} replicas within {} ms",
                w.replicas, w.timeout_ms
            )));
        }
        Ok(())
    }

    fn conn(&self) -> Conn {
        self.conn.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn k(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    /// A per-session key, hash-tagged by the session id.
    fn sk(&self, kind: &str, sid: &str) -> String {
        format!("{}{kind}:{{{sid}}}", self.prefix)
    }

    /// Writes a session's hash (with its generation-0 token) into `pipe`: one slot.
    fn session_pipe(&self, pipe: &mut ::redis::Pipeline, s: &SessionRecord, hash: &str) {
        let sk = self.sk("s", &s.sid);
        // Relative TTLs, so an injected clock far from wall time cannot expire keys early.
        let ttl = (s.expires_at - s.created_at).max(0) + RETENTION;
        let mut fields: Vec<(String, String)> = session_fields(s)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        fields.push((format!("tok:{hash}"), s.generation.to_string()));
        pipe.hset_multiple(&sk, &fields).ignore();
        pipe.expire(&sk, ttl).ignore();
    }

    fn index_pipe(&self, pipe: &mut ::redis::Pipeline, s: &SessionRecord, hash: &str) {
        let ttl = (s.expires_at - s.created_at).max(0) + RETENTION;
        pipe.cmd("SET")
            .arg(self.k("t", hash))
            .arg(&s.sid)
            .arg("EX")
            .arg(ttl.max(1))
            .ignore();
        pipe.sadd(self.k("u", &s.user_id), &s.sid).ignore();
    }

    /// Loads a session and, optionally, one extra hash field (a token's generation).
    async fn load_with(
        &self,
        sid: &str,
        extra: Option<&str>,
    ) -> StoreResult<(Option<SessionRecord>, Option<String>)> {
        let mut c = self.conn();
        let mut cmd = ::redis::cmd("HMGET");
        cmd.arg(self.sk("s", sid));
        for f in FIELDS {
            cmd.arg(*f);
        }
        if let Some(e) = extra {
            cmd.arg(e);
        }
        let vals: Vec<Option<String>> = cmd.query_async(&mut c).await.map_err(err)?;
        let mut m = HashMap::new();
        for (k, v) in FIELDS.iter().zip(vals.iter()) {
            if let Some(v) = v {
                m.insert(k.to_string(), v.clone());
            }
        }
        let extra_val = extra.and_then(|_| vals.get(FIELDS.len()).cloned().flatten());
        Ok((session_from_hash(sid, &m)?, extra_val))
    }

    async fn load(&self, sid: &str) -> StoreResult<Option<SessionRecord>> {
        Ok(self.load_with(sid, None).await?.0)
    }
}

const FIELDS: &[&str] = &[
    "user_id",
    "username",
    "created_at",
    "last_seen",
    "expires_at",
    "mfa",
    "ua",
    "addr",
    "revoked_at",
    "reason",
    "vault",
    "gen",
    "prev_at",
    "prev_sealed",
];

#[async_trait]
impl SessionStore for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>> {
        let mut c = self.conn();
        c.get(self.k("meta", key)).await.map_err(err)
    }
    async fn put_meta_if_absent(&self, key: &str, value: &str) -> StoreResult<String> {
        let mut c = self.conn();
        let k = self.k("meta", key);
        let _: bool = c.set_nx(&k, value).await.map_err(err)?;
        let v: Option<String> = c.get(&k).await.map_err(err)?;
        v.ok_or_else(|| StoreError::Corrupt(format!("meta {key} vanished")))
    }
    async fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        let mut c = self.conn();
        c.set(self.k("meta", key), value).await.map_err(err)
    }
    async fn compare_and_set_meta(
        &self,
        key: &str,
        expected: &str,
        value: &str,
    ) -> StoreResult<bool> {
        let mut c = self.conn();
        let n: i64 = ::redis::Script::new(CAS_LUA)
            .key(self.k("meta", key))
            .arg(expected)
            .arg(value)
            .invoke_async(&mut c)
            .await
            .map_err(err)?;
        if n == 1 {
            self.replicated(&mut c).await?;
        }
        Ok(n == 1)
    }

    async fn upsert_user(&self, u: &UserRecord) -> StoreResult<()> {
        let mut c = self.conn();
        let json = serde_json::to_string(u).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        c.set(self.k("user", &u.username), json).await.map_err(err)
    }
    async fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let mut c = self.conn();
        let v: Option<String> = c.get(self.k("user", username)).await.map_err(err)?;
        v.map(|j| serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    async fn create_session(&self, s: &SessionRecord, refresh_hash: &str) -> StoreResult<()> {
        let mut c = self.conn();
        if self.cluster {
            // one slot per pipeline in Cluster: the session first, then its indexes
            let mut p1 = ::redis::pipe();
            p1.atomic();
            self.session_pipe(&mut p1, s, refresh_hash);
            let () = p1.query_async(&mut c).await.map_err(err)?;
            let ttl = (s.expires_at - s.created_at).max(0) + RETENTION;
            let () = ::redis::cmd("SET")
                .arg(self.k("t", refresh_hash))
                .arg(&s.sid)
                .arg("EX")
                .arg(ttl.max(1))
                .query_async(&mut c)
                .await
                .map_err(err)?;
            let _: i64 = c.sadd(self.k("u", &s.user_id), &s.sid).await.map_err(err)?;
            return Ok(());
        }
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        self.session_pipe(&mut pipe, s, refresh_hash);
        self.index_pipe(&mut pipe, s, refresh_hash);
        let () = pipe.query_async(&mut c).await.map_err(err)?;
        self.replicated(&mut c).await
    }
    async fn create_sessions(&self, batch: &[(SessionRecord, String)]) -> StoreResult<()> {
        if self.cluster {
            for (s, h) in batch {
                self.create_session(s, h).await?;
            }
            return Ok(());
        }
        let mut c = self.conn();
        for chunk in batch.chunks(1000) {
            let mut pipe = ::redis::pipe();
            for (s, h) in chunk {
                self.session_pipe(&mut pipe, s, h);
                self.index_pipe(&mut pipe, s, h);
            }
            let () = pipe.query_async(&mut c).await.map_err(err)?;
        }
        self.replicated(&mut c).await
    }
    async fn get_session(&self, sid: &str) -> StoreResult<Option<SessionRecord>> {
        self.load(sid).await
    }
    async fn list_sessions(&self, user_id: &str) -> StoreResult<Vec<SessionRecord>> {
        let mut c = self.conn();
        let sids: Vec<String> = c.smembers(self.k("u", user_id)).await.map_err(err)?;
        let mut out = Vec::new();
        for sid in sids {
            match self.load(&sid).await? {
                Some(mut s) => {
                    let evs: Vec<String> =
                        c.lrange(self.sk("ev", &sid), 0, -1).await.map_err(err)?;
                    s.events = evs
                        .iter()
                        .filter_map(|e| serde_json::from_str(e).ok())
                        .collect();
                    out.push(s);
                }
                None => {
                    // expired out of Redis: drop it from the index
                    let _: i64 = c.srem(self.k("u", user_id), &sid).await.map_err(err)?;
                }
            }
        }
        out.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.sid.cmp(&b.sid))
        });
        Ok(out)
    }
    async fn lookup_refresh(
        &self,
        hash: &str,
        now: i64,
        grace: i64,
    ) -> StoreResult<Option<(SessionRecord, TokenPosition)>> {
        let mut c = self.conn();
        let Some(sid): Option<String> = c.get(self.k("t", hash)).await.map_err(err)? else {
            return Ok(None);
        };
        let (s, gen) = self.load_with(&sid, Some(&format!("tok:{hash}"))).await?;
        let (Some(s), Some(gen)) = (s, gen.and_then(|g| g.parse::<i64>().ok())) else {
            return Ok(None);
        };
        let p = position(&s, gen, now, grace);
        Ok(Some((s, p)))
    }
    async fn rotate(&self, req: &RotateRequest) -> StoreResult<RotateOutcome> {
        let mut c = self.conn();
        // 1. which session? (the token index never changes once written)
        let Some(sid): Option<String> =
            c.get(self.k("t", &req.presented_hash)).await.map_err(err)?
        else {
            return Ok(RotateOutcome::Unknown);
        };
        let Some(before) = self.load(&sid).await? else {
            return Ok(RotateOutcome::Unknown);
        };
        // 2. index the successor first: until the script records it in the session it
        //    resolves to nothing, and it is deleted again if the script does not rotate
        let new_index = self.k("t", &req.new_hash);
        let ttl = (before.expires_at - req.now).max(0) + RETENTION;
        let () = ::redis::cmd("SET")
            .arg(&new_index)
            .arg(&sid)
            .arg("EX")
            .arg(ttl.max(1))
            .query_async(&mut c)
            .await
            .map_err(err)?;
        // 3. the atomic decision, on the one session key
        let reply: Vec<String> = self
            .rotate
            .key(self.sk("s", &sid))
            .arg(req.now)
            .arg(req.grace)
            .arg(req.idle)
            .arg(&req.presented_hash)
            .arg(&req.new_hash)
            .arg(b64(&req.sealed_successor))
            .invoke_async(&mut c)
            .await
            .map_err(err)?;
        // rotated, or revoked by reuse / expiry: the decision must survive a failover
        if reply.first().map(String::as_str) != Some("grace") {
            self.replicated(&mut c).await?;
        }
        let outcome = match reply.first().map(String::as_str) {
            Some("rotated") => {
                let mut s = before;
                s.generation = reply
                    .get(1)
                    .and_then(|g| g.parse().ok())
                    .ok_or_else(|| StoreError::Corrupt("rotation reply".into()))?;
                s.prev_rotated_at = Some(req.now);
                s.prev_sealed = Some(req.sealed_successor);
                s.last_seen = req.now;
                return Ok(RotateOutcome::Rotated(s));
            }
            Some("grace") => {
                let sealed = reply
                    .get(1)
                    .and_then(|v| unb64(v))
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| StoreError::Corrupt("sealed successor".into()))?;
                RotateOutcome::Grace {
                    session: before,
                    sealed,
                }
            }
            Some("reused") => RotateOutcome::Reused { sid },
            Some("revoked") => RotateOutcome::Revoked,
            Some("expired") => RotateOutcome::Expired,
            _ => RotateOutcome::Unknown,
        };
        let _: i64 = c.del(&new_index).await.map_err(err)?;
        Ok(outcome)
    }
    async fn revoke_session(&self, sid: &str, reason: &str, now: i64) -> StoreResult<bool> {
        let mut c = self.conn();
        let n: i64 = self
            .revoke
            .key(self.sk("s", sid))
            .arg(now)
            .arg(reason)
            .invoke_async(&mut c)
            .await
            .map_err(err)?;
        if n == 1 {
            self.replicated(&mut c).await?;
        }
        Ok(n == 1)
    }
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<usize> {
        let mut c = self.conn();
        let sids: Vec<String> = c.smembers(self.k("u", user_id)).await.map_err(err)?;
        let mut n = 0;
        for sid in sids {
            n += self.revoke_session(&sid, reason, now).await? as usize;
        }
        Ok(n)
    }
    async fn update_client(
        &self,
        sid: &str,
        ua: &str,
        addr: &str,
        event: Option<&SessionEvent>,
    ) -> StoreResult<()> {
        let mut c = self.conn();
        let sk = self.sk("s", sid);
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        pipe.hset_multiple(&sk, &[("ua", ua), ("addr", addr)])
            .ignore();
        if let Some(e) = event {
            let ek = self.sk("ev", sid);
            let json = serde_json::to_string(e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            pipe.rpush(&ek, json).ignore();
            pipe.expire(&ek, 2 * RETENTION).ignore();
        }
        pipe.query_async(&mut c).await.map_err(err)
    }

    async fn put_ephemeral(&self, key: &str, value: &str, expires_at: i64) -> StoreResult<()> {
        // The value carries its own expiry (checked against the injected clock); the Redis
        // TTL only garbage-collects, relative to the same clock.
        let mut c = self.conn();
        let k = self.k("eph", key);
        let v = format!("{expires_at}|{value}");
        let () = ::redis::cmd("SET")
            .arg(&k)
            .arg(v)
            .arg("EX")
            .arg(EPHEMERAL_TTL)
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(())
    }
    async fn get_ephemeral(&self, key: &str, now: i64) -> StoreResult<Option<String>> {
        let mut c = self.conn();
        let v: Option<String> = c.get(self.k("eph", key)).await.map_err(err)?;
        Ok(unpack_ephemeral(v, now))
    }
    async fn take_ephemeral(&self, key: &str, now: i64) -> StoreResult<Option<String>> {
        let mut c = self.conn();
        let v: Option<String> = ::redis::cmd("GETDEL")
            .arg(self.k("eph", key))
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(unpack_ephemeral(v, now))
    }
    async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> StoreResult<bool> {
        let mut c = self.conn();
        let r: Option<String> = ::redis::cmd("SET")
            .arg(self.k("eph", key))
            .arg(format!("{expires_at}|1"))
            .arg("NX")
            .arg("EX")
            .arg((expires_at - now).max(1))
            .query_async(&mut c)
            .await
            .map_err(err)?;
        if r.is_some() {
            self.replicated(&mut c).await?;
        }
        Ok(r.is_some())
    }

    async fn purge_expired(&self, _now: i64, _retention: i64) -> StoreResult<usize> {
        Ok(0) // every key carries a TTL
    }
}
