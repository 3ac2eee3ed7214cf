//! Redis store for several server instances sharing sessions: standalone Redis or Valkey
//! (`redis://`, `rediss://`), Sentinel (`redis+sentinel://HOST:PORT[,…]/SERVICE[/DB]`,
//! follows failovers) and Cluster (`redis+cluster://HOST:PORT[,HOST:PORT…]`).
//!
//! Credentials and TLS reach every node connection. Sentinel:
//! `redis[s]+sentinel://[USER:PASSWORD@]HOST:PORT[,…]/SERVICE[/DB][?sentinel_username=U&sentinel_password=P]`:
//! the user info authenticates to the master and replicas the Sentinels name, the query's
//! pair to the Sentinels themselves; `rediss+` speaks TLS to both. Cluster:
//! `redis[s]+cluster://[USER:PASSWORD@]HOST:PORT[,…]`: the same credentials and TLS for
//! every node, seeds and discovered ones alike. Percent-encode special characters in user
//! names and passwords. TLS verifies the server certificate (host name or IP) against the
//! system's roots, or the CA file named by `SSL_CERT_FILE`; there is no insecure mode.
//!
//! Layout (all keys under a prefix, default `tessera:`; `{…}` is a Cluster hash tag, so all
//! keys of one session live in one slot): `s:{sid}` hash (the session, plus `cur` / `prev`:
//! the hashes of the current token and its grace predecessor, and `fam`), `ev:{sid}` list
//! of JSON events (the newest [`MAX_EVENTS_PER_SESSION`]), `f:<family hash>` string `sid`
//! (index from a token's family to its session), `us:<user_id>` sorted set of sids scored
//! by creation time (capped at [`MAX_SESSIONS_PER_USER_LIMIT`] entries), `user:<name>`,
//! `meta:<key>`, `eph:<key>`, and `live`: a sorted set of sids scored by the moment each
//! stops being live (`min(expires_at, last_seen + idle)`), written after each create,
//! rotation and revocation, read by the `tessera_live_sessions` gauge. Rotation and revocation are Lua scripts over the single
//! session key, so each is atomic on the server (and Cluster-safe). Every session key,
//! index and list expires a day after the absolute lifetime.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager};
use ::redis::AsyncCommands;
use async_trait::async_trait;

use super::{
    after_cursor, counts_as_live, listing_order, page_cursor, parse_cursor, position_for,
    GraceEntry, RotateOutcome, RotateRequest, SessionEvent, SessionLimits, SessionPage,
    SessionRecord, SessionStatus, SessionStore, StoreError, StoreResult, TokenPosition, TokenRef,
    TokenState, UserRecord, UserSummary, MAX_EVENTS_PER_SESSION, MAX_GRACE_CHAIN,
    MAX_SESSIONS_PER_USER_LIMIT,
};
use crate::secret::{b64, unb64};

/// How long revoked/expired session records are kept after their absolute expiry.
const RETENTION: i64 = 86_400;
/// Garbage-collection TTL of short-lived values (their real expiry is inside the value).
const EPHEMERAL_TTL: i64 = 3_600;

pub(crate) fn unpack_ephemeral(v: Option<String>, now: i64) -> Option<String> {
    let v = v?;
    let (exp, value) = v.split_once('|')?;
    (exp.parse::<i64>().ok()? > now).then(|| value.to_string())
}

// KEYS: session hash, grace successor (g:{sid}), vault key (v:{sid}), older grace entries
// (o:{sid}: `GraceEntry::encode_all`'s lines, newest first, living as long as the window).
// ARGV: now, grace, idle, presented hash, new hash, sealed successor, client, max older entries.
const ROTATE_LUA: &str = r#"
local sk = KEYS[1]
local now = tonumber(ARGV[1]); local grace = tonumber(ARGV[2]); local idle = tonumber(ARGV[3])
local f = redis.call('HMGET', sk, 'revoked_at', 'expires_at', 'last_seen', 'gen', 'prev_at', 'pcl', 'cur', 'prev')
if not f[4] or not f[7] then return {'unknown'} end
if f[1] and f[1] ~= '' then return {'revoked'} end
local exp = tonumber(f[2]); local last = tonumber(f[3]); local gen = tonumber(f[4])
if now >= exp or now >= last + idle then
  redis.call('HSET', sk, 'revoked_at', ARGV[1], 'reason', 'expired')
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  return {'expired'}
end
local last_sealed = redis.call('GET', KEYS[2])
local prev_live = f[5] and f[5] ~= '' and now - tonumber(f[5]) <= grace
if ARGV[4] == f[7] then
  -- the predecessor joins the older grace entries while its window lasts
  local older = {}
  if f[8] and f[6] and last_sealed and prev_live then
    older[1] = f[8] .. ' ' .. f[6] .. ' ' .. f[5] .. ' ' .. last_sealed
    for line in string.gmatch(redis.call('GET', KEYS[4]) or '', '[^\n]+') do
      local at = tonumber(string.match(line, '^%S+ %S+ (%-?%d+) %S+$') or '')
      if #older >= tonumber(ARGV[8]) then break end
      if at and now - at <= grace then older[#older + 1] = line end
    end
  end
  local g = tostring(gen + 1)
  redis.call('HSET', sk, 'gen', g, 'prev_at', ARGV[1], 'last_seen', ARGV[1], 'prev', f[7], 'cur', ARGV[5], 'pcl', ARGV[7])
  if grace > 0 then
    redis.call('SET', KEYS[2], ARGV[6], 'EX', grace)
  else
    redis.call('DEL', KEYS[2])
  end
  if grace > 0 and #older > 0 then
    redis.call('SET', KEYS[4], table.concat(older, '\n'), 'EX', grace)
  else
    redis.call('DEL', KEYS[4])
  end
  local vttl = math.min(exp - now, idle)
  if vttl > 0 then redis.call('EXPIRE', KEYS[3], vttl) end
  return {'rotated', g}
end
if last_sealed and prev_live then
  if f[8] and ARGV[4] == f[8] then
    if f[6] == ARGV[7] then return {'grace', last_sealed} end
  else
    -- an older token superseded within the window: the chain of sealed successors from it
    local seals = {}
    for h, cl, at, sealed in string.gmatch(redis.call('GET', KEYS[4]) or '', '(%S+) (%S+) (%-?%d+) (%S+)') do
      seals[#seals + 1] = sealed
      if h == ARGV[4] then
        if cl == ARGV[7] and now - tonumber(at) <= grace then
          local out = {'grace'}
          for i = #seals, 1, -1 do out[#out + 1] = seals[i] end
          out[#out + 1] = last_sealed
          return out
        end
        break
      end
    end
  end
end
redis.call('HSET', sk, 'revoked_at', ARGV[1], 'reason', 'refresh_reused')
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
return {'reused'}
"#;

const ADVANCE_LUA: &str = r#"
local v = redis.call('GET', KEYS[1])
if v then
  local exp, val = string.match(v, '^(%-?%d+)|(%-?%d+)$')
  if exp and tonumber(exp) > tonumber(ARGV[3]) and tonumber(val) >= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2] .. '|' .. ARGV[1], 'EX', ARGV[4])
return 1
"#;

// KEYS: session hash, grace successor, vault key. ARGV: now, reason.
const REVOKE_LUA: &str = r#"
local f = redis.call('HMGET', KEYS[1], 'gen', 'revoked_at')
if not f[1] then return 0 end
if f[2] and f[2] ~= '' then return 0 end
redis.call('HSET', KEYS[1], 'revoked_at', ARGV[1], 'reason', ARGV[2])
redis.call('DEL', KEYS[2], KEYS[3])
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
pub(crate) enum Conn {
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
    advance: ::redis::Script,
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

pub(crate) fn err(e: ::redis::RedisError) -> StoreError {
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

pub(crate) fn session_from_hash(
    sid: &str,
    m: &HashMap<String, String>,
) -> StoreResult<Option<SessionRecord>> {
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
        vault_key: None, // its own key, see load_with
        generation: parse_i64(m, "gen")?,
        prev_rotated_at: opt_i64(m, "prev_at"),
        prev_sealed: None, // its own key, see load_with
        events: Vec::new(),
    }))
}

fn session_ttl(s: &SessionRecord) -> i64 {
    ((s.expires_at - s.created_at).max(0) + RETENTION).max(1)
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
        ("gen", s.generation.to_string()),
        (
            "prev_at",
            s.prev_rotated_at.map(|v| v.to_string()).unwrap_or_default(),
        ),
    ]
}

impl RedisStore {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/0`) with key prefix `prefix`.
    ///
    /// # Errors
    /// When the URL is malformed or the server is unreachable.
    pub async fn connect(url: &str, prefix: &str) -> StoreResult<Self> {
        // rustls needs a process-wide crypto provider for rediss:// (an error only means
        // one is installed already)
        let _ = rustls::crypto::ring::default_provider().install_default();
        if let Some((tls, rest)) = multi_node(url, "sentinel") {
            return Self::connect_sentinel(&MultiUrl::parse(rest, tls)?, prefix).await;
        }
        if let Some((tls, rest)) = multi_node(url, "cluster") {
            let u = MultiUrl::parse(rest, tls)?;
            if !u.path.is_empty() {
                return Err(StoreError::Config(
                    "redis+cluster:// URLs name no service or database".into(),
                ));
            }
            u.refuse_query(&[])?;
            let nodes: Vec<String> = u.hosts.iter().map(|h| u.node_url(h, None)).collect();
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
    async fn connect_sentinel(u: &MultiUrl<'_>, prefix: &str) -> StoreResult<Self> {
        use ::redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
        use ::redis::IntoConnectionInfo as _;
        let mut parts = u.path.split('/');
        let service = parts.next().filter(|s| !s.is_empty()).ok_or_else(|| {
            StoreError::Config(
                "redis+sentinel:// URL needs /SERVICE (the master name) after the sentinel hosts"
                    .into(),
            )
        })?;
        let db: i64 = match parts.next().filter(|s| !s.is_empty()) {
            Some(d) => d
                .parse()
                .map_err(|_| StoreError::Config(format!("bad database number {d:?}")))?,
            None => 0,
        };
        let query = u.refuse_query(&["sentinel_username", "sentinel_password"])?;
        // the Sentinels: their own credentials (query), TLS as the scheme says
        let sentinel_auth = match (
            query.get("sentinel_username"),
            query.get("sentinel_password"),
        ) {
            (None, None) => None,
            (user, pass) => Some(format!(
                "{}:{}",
                user.copied().unwrap_or(""),
                pass.copied().unwrap_or("")
            )),
        };
        let sentinels: Vec<String> = u
            .hosts
            .iter()
            .map(|h| u.url_with(sentinel_auth.as_deref(), h, None))
            .collect();
        // the master and replicas they name: the URL's credentials and database, same TLS
        let node_auth = u
            .node_url("127.0.0.1:1", Some(db))
            .into_connection_info()
            .map_err(err)?
            .redis;
        let node = SentinelNodeConnectionInfo {
            tls_mode: u.tls.then_some(::redis::TlsMode::Secure),
            redis_connection_info: Some(node_auth),
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
            advance: ::redis::Script::new(ADVANCE_LUA),
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

    pub(crate) fn conn(&self) -> Conn {
        self.conn.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn k(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    /// A per-session key, hash-tagged by the session id.
    fn sk(&self, kind: &str, sid: &str) -> String {
        format!("{}{kind}:{{{sid}}}", self.prefix)
    }

    /// Writes a session's hash (with its first token) and its vault key into `pipe`: one
    /// slot. The vault key lives until the session would go idle (each rotation extends
    /// it) or reaches its absolute end, so Redis destroys it by itself.
    fn session_pipe(
        &self,
        pipe: &mut ::redis::Pipeline,
        s: &SessionRecord,
        t: &TokenRef,
        idle: i64,
    ) {
        if let Some(v) = &s.vault_key {
            let vttl = (s.expires_at - s.created_at).min(idle);
            if vttl > 0 {
                pipe.cmd("SET")
                    .arg(self.sk("v", &s.sid))
                    .arg(b64(v))
                    .arg("EX")
                    .arg(vttl)
                    .ignore();
            }
        }
        let sk = self.sk("s", &s.sid);
        // Relative TTLs, so an injected clock far from wall time cannot expire keys early.
        let ttl = session_ttl(s);
        let mut fields: Vec<(String, String)> = session_fields(s)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        fields.push(("cur".into(), t.hash.clone()));
        fields.push(("fam".into(), t.family.clone()));
        pipe.hset_multiple(&sk, &fields).ignore();
        pipe.expire(&sk, ttl).ignore();
    }

    /// The family index and the user's session index (other slots than the session).
    fn index_pipe(&self, pipe: &mut ::redis::Pipeline, s: &SessionRecord, t: &TokenRef) {
        self.family_pipe(pipe, s, t);
        self.user_pipe(pipe, s);
    }

    /// The live-session index entry of `sid`, live until `until` (its own slot).
    fn live_pipe(&self, pipe: &mut ::redis::Pipeline, sid: &str, until: i64) {
        pipe.zadd(self.live_key(), sid, until).ignore();
    }

    fn live_key(&self) -> String {
        format!("{}live", self.prefix)
    }

    /// Drops `sid` from the live-session index (after a revocation).
    async fn not_live(&self, c: &mut Conn, sid: &str) -> StoreResult<()> {
        let _: i64 = c.zrem(self.live_key(), sid).await.map_err(err)?;
        Ok(())
    }

    /// The family index (its own slot).
    fn family_pipe(&self, pipe: &mut ::redis::Pipeline, s: &SessionRecord, t: &TokenRef) {
        pipe.cmd("SET")
            .arg(self.k("f", &t.family))
            .arg(&s.sid)
            .arg("EX")
            .arg(session_ttl(s))
            .ignore();
    }

    /// The user's session index (its own slot).
    fn user_pipe(&self, pipe: &mut ::redis::Pipeline, s: &SessionRecord) {
        let ttl = session_ttl(s);
        let uk = self.k("us", &s.user_id);
        pipe.zadd(&uk, &s.sid, s.created_at).ignore();
        // keep the newest entries only (live sessions are far fewer than the cap)
        pipe.zremrangebyrank(&uk, 0, -(MAX_SESSIONS_PER_USER_LIMIT as isize) - 1)
            .ignore();
        pipe.expire(&uk, ttl).ignore();
    }

    /// The user's indexed session ids, newest first.
    async fn user_sids(&self, user_id: &str) -> StoreResult<Vec<(String, i64)>> {
        let mut c = self.conn();
        let v: Vec<(String, i64)> = c
            .zrevrange_withscores(self.k("us", user_id), 0, -1)
            .await
            .map_err(err)?;
        Ok(v)
    }

    /// Loads many sessions; entries whose key expired are dropped from the user index.
    async fn load_many(&self, user_id: &str, sids: &[String]) -> StoreResult<Vec<SessionRecord>> {
        let mut out = Vec::with_capacity(sids.len());
        let mut gone = Vec::new();
        for sid in sids {
            match self.load(sid).await? {
                Some(s) => out.push(s),
                None => gone.push(sid.clone()),
            }
        }
        if !gone.is_empty() {
            let mut c = self.conn();
            let _: i64 = c.zrem(self.k("us", user_id), gone).await.map_err(err)?;
        }
        Ok(out)
    }

    /// Loads a session (with its vault key and grace successor) and, optionally, its
    /// token hashes: one round trip.
    async fn load_with(
        &self,
        sid: &str,
        tokens: bool,
    ) -> StoreResult<(Option<SessionRecord>, Option<TokenState>)> {
        let mut c = self.conn();
        let mut cmd = ::redis::cmd("HMGET");
        cmd.arg(self.sk("s", sid));
        for f in FIELDS {
            cmd.arg(*f);
        }
        if tokens {
            cmd.arg("cur").arg("prev").arg("pcl");
        }
        let mut pipe = ::redis::pipe();
        pipe.add_command(cmd);
        pipe.cmd("GET").arg(self.sk("v", sid));
        pipe.cmd("GET").arg(self.sk("g", sid));
        type Loaded = (Vec<Option<String>>, Option<String>, Option<String>);
        let ((vals, vault, grace), older): (Loaded, Option<String>) = if tokens {
            // the older grace entries matter only next to the token hashes
            pipe.cmd("GET").arg(self.sk("o", sid));
            let (v, k, g, o) = pipe.query_async(&mut c).await.map_err(err)?;
            ((v, k, g), o)
        } else {
            (pipe.query_async(&mut c).await.map_err(err)?, None)
        };
        let mut m = HashMap::new();
        for (k, v) in FIELDS.iter().zip(vals.iter()) {
            if let Some(v) = v {
                m.insert(k.to_string(), v.clone());
            }
        }
        let t = if tokens {
            vals.get(FIELDS.len())
                .cloned()
                .flatten()
                .map(|cur| TokenState {
                    cur,
                    prev: vals.get(FIELDS.len() + 1).cloned().flatten(),
                    prev_client: vals.get(FIELDS.len() + 2).cloned().flatten(),
                    older: older
                        .as_deref()
                        .map_or_else(Vec::new, GraceEntry::decode_all),
                })
        } else {
            None
        };
        let mut s = session_from_hash(sid, &m)?;
        if let Some(s) = s.as_mut() {
            s.vault_key = vault.and_then(|v| unb64(&v));
            s.prev_sealed = grace.and_then(|v| unb64(&v));
        }
        Ok((s, t))
    }

    async fn load(&self, sid: &str) -> StoreResult<Option<SessionRecord>> {
        Ok(self.load_with(sid, false).await?.0)
    }
}

/// `redis+KIND://…` or `rediss+KIND://…`: (TLS, the rest after `://`).
fn multi_node<'a>(url: &'a str, kind: &str) -> Option<(bool, &'a str)> {
    let (scheme, rest) = url.split_once("://")?;
    match scheme.strip_suffix(kind)?.strip_suffix('+')? {
        "redis" => Some((false, rest)),
        "rediss" => Some((true, rest)),
        _ => None,
    }
}

/// Whether `url` names a Redis store (standalone, Sentinel or Cluster, with or without TLS).
pub fn is_redis_url(url: &str) -> bool {
    url.starts_with("redis://")
        || url.starts_with("rediss://")
        || multi_node(url, "sentinel").is_some()
        || multi_node(url, "cluster").is_some()
}

/// The part after `://` of a several-host URL, split (values stay percent-encoded: the
/// per-node `redis[s]://` URLs built from them are decoded by the redis crate).
struct MultiUrl<'a> {
    tls: bool,
    userinfo: Option<&'a str>,
    hosts: Vec<&'a str>,
    /// After the hosts' `/`, without it (may be empty).
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> MultiUrl<'a> {
    fn parse(rest: &'a str, tls: bool) -> StoreResult<Self> {
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let hosts: Vec<&str> = hosts.split(',').filter(|h| !h.is_empty()).collect();
        if hosts.is_empty() {
            return Err(StoreError::Config(
                "the Redis URL names no HOST:PORT".into(),
            ));
        }
        Ok(MultiUrl {
            tls,
            userinfo,
            hosts,
            path: path.trim_end_matches('/'),
            query,
        })
    }

    /// `redis[s]://[AUTH@]HOST[/DB]`.
    fn url_with(&self, auth: Option<&str>, host: &str, db: Option<i64>) -> String {
        format!(
            "{}://{}{host}{}",
            if self.tls { "rediss" } else { "redis" },
            auth.map(|a| format!("{a}@")).unwrap_or_default(),
            db.map(|d| format!("/{d}")).unwrap_or_default()
        )
    }

    /// A data node's URL with the URL's own credentials.
    fn node_url(&self, host: &str, db: Option<i64>) -> String {
        self.url_with(self.userinfo, host, db)
    }

    /// The query's parameters; any name outside `allowed` is a configuration error (a
    /// misspelt option must not be ignored).
    fn refuse_query(&self, allowed: &[&str]) -> StoreResult<HashMap<&'a str, &'a str>> {
        let mut out = HashMap::new();
        for pair in self
            .query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !allowed.contains(&k) {
                return Err(StoreError::Config(format!(
                    "unknown Redis URL parameter {k:?} (known: {})",
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    }
                )));
            }
            out.insert(k, v);
        }
        Ok(out)
    }
}

/// When a fresh session stops being live unless it is refreshed (live-session index score).
fn live_until(s: &SessionRecord, idle: i64) -> i64 {
    s.expires_at.min(s.last_seen.saturating_add(idle))
}

/// A record with only the listing keys filled (for ordering index entries).
fn placeholder() -> SessionRecord {
    SessionRecord {
        sid: String::new(),
        user_id: String::new(),
        username: String::new(),
        created_at: 0,
        last_seen: 0,
        expires_at: 0,
        mfa: false,
        user_agent: String::new(),
        address: String::new(),
        revoked_at: None,
        revoke_reason: None,
        vault_key: None,
        generation: 0,
        prev_rotated_at: None,
        prev_sealed: None,
        events: Vec::new(),
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
    "gen",
    "prev_at",
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

    async fn list_users(&self) -> StoreResult<Vec<UserSummary>> {
        let pattern = format!("{}user:*", self.prefix);
        let mut c = self.conn();
        let keys: Vec<String> = if self.cluster {
            // Cluster routes KEYS to every master and joins the answers (an admin command)
            ::redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut c)
                .await
                .map_err(err)?
        } else {
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = ::redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut c)
                    .await
                    .map_err(err)?;
                keys.extend(batch);
                if next == 0 {
                    break keys;
                }
                cursor = next;
            }
        };
        let mut out = Vec::new();
        for k in keys {
            let v: Option<String> = c.get(&k).await.map_err(err)?;
            if let Some(j) = v {
                let u: UserRecord =
                    serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                out.push(UserSummary::from(&u));
            }
        }
        out.sort_by(|a, b| a.username.cmp(&b.username));
        out.dedup_by(|a, b| a.username == b.username);
        Ok(out)
    }
    async fn delete_user(&self, username: &str) -> StoreResult<bool> {
        let mut c = self.conn();
        let n: i64 = c.del(self.k("user", username)).await.map_err(err)?;
        Ok(n == 1)
    }
    async fn count_live_sessions(&self, now: i64, _idle: i64) -> StoreResult<u64> {
        let mut c = self.conn();
        let key = self.live_key();
        let _: i64 = c.zrembyscore(&key, "-inf", now).await.map_err(err)?;
        let n: i64 = c
            .zcount(&key, format!("({now}"), "+inf")
            .await
            .map_err(err)?;
        Ok(n.max(0) as u64)
    }

    async fn create_session(
        &self,
        s: &SessionRecord,
        token: &TokenRef,
        limits: &SessionLimits,
    ) -> StoreResult<Vec<String>> {
        let mut c = self.conn();
        if self.cluster {
            // one slot per pipeline in Cluster: the session first, then its indexes
            let mut p1 = ::redis::pipe();
            p1.atomic();
            self.session_pipe(&mut p1, s, token, limits.idle);
            let () = p1.query_async(&mut c).await.map_err(err)?;
            let mut p2 = ::redis::pipe();
            self.family_pipe(&mut p2, s, token);
            let () = p2.query_async(&mut c).await.map_err(err)?;
            let mut p3 = ::redis::pipe();
            self.user_pipe(&mut p3, s);
            let () = p3.query_async(&mut c).await.map_err(err)?;
            let mut p4 = ::redis::pipe();
            self.live_pipe(&mut p4, &s.sid, live_until(s, limits.idle));
            let () = p4.query_async(&mut c).await.map_err(err)?;
        } else {
            let mut pipe = ::redis::pipe();
            pipe.atomic();
            self.session_pipe(&mut pipe, s, token, limits.idle);
            self.index_pipe(&mut pipe, s, token);
            self.live_pipe(&mut pipe, &s.sid, live_until(s, limits.idle));
            let () = pipe.query_async(&mut c).await.map_err(err)?;
        }
        // a client must never hold a token only the master knew (--redis-wait-replicas)
        self.replicated(&mut c).await?;
        // the per-user limit: revoke the oldest live sessions beyond it
        let sids: Vec<String> = self
            .user_sids(&s.user_id)
            .await?
            .into_iter()
            .map(|(sid, _)| sid)
            .filter(|sid| *sid != s.sid)
            .collect();
        let now = s.created_at;
        let mut live: Vec<SessionRecord> = self
            .load_many(&s.user_id, &sids)
            .await?
            .into_iter()
            .filter(|x| counts_as_live(x, now, limits.idle))
            .collect();
        listing_order(&mut live);
        let mut revoked = Vec::new();
        for old in live.iter().skip(limits.max_per_user.saturating_sub(1)) {
            if self.revoke_session(&old.sid, "session_limit", now).await? {
                revoked.push(old.sid.clone());
            }
        }
        Ok(revoked)
    }
    async fn create_sessions(&self, batch: &[(SessionRecord, TokenRef)]) -> StoreResult<()> {
        let mut c = self.conn();
        for chunk in batch.chunks(if self.cluster { 1 } else { 1000 }) {
            let mut pipe = ::redis::pipe();
            for (s, t) in chunk {
                self.session_pipe(&mut pipe, s, t, i64::MAX);
                if !self.cluster {
                    self.index_pipe(&mut pipe, s, t);
                    self.live_pipe(&mut pipe, &s.sid, s.expires_at);
                }
            }
            let () = pipe.query_async(&mut c).await.map_err(err)?;
            if self.cluster {
                for (s, t) in chunk {
                    let mut p2 = ::redis::pipe();
                    self.family_pipe(&mut p2, s, t);
                    let () = p2.query_async(&mut c).await.map_err(err)?;
                    let mut p3 = ::redis::pipe();
                    self.user_pipe(&mut p3, s);
                    let () = p3.query_async(&mut c).await.map_err(err)?;
                    let mut p4 = ::redis::pipe();
                    self.live_pipe(&mut p4, &s.sid, s.expires_at);
                    let () = p4.query_async(&mut c).await.map_err(err)?;
                }
            }
        }
        self.replicated(&mut c).await
    }
    async fn get_session(&self, sid: &str) -> StoreResult<Option<SessionRecord>> {
        self.load(sid).await
    }
    async fn session_status(&self, sid: &str) -> StoreResult<Option<SessionStatus>> {
        // one HMGET of four fields of the session hash; the vault key and grace successor
        // (their own keys) are not read
        let mut c = self.conn();
        let vals: Vec<Option<String>> = ::redis::cmd("HMGET")
            .arg(self.sk("s", sid))
            .arg("last_seen")
            .arg("expires_at")
            .arg("revoked_at")
            .arg("mfa")
            .query_async(&mut c)
            .await
            .map_err(err)?;
        let [last_seen, expires_at, revoked_at, mfa] = <[Option<String>; 4]>::try_from(vals)
            .map_err(|_| StoreError::Corrupt("HMGET answer".into()))?;
        if last_seen.is_none() && expires_at.is_none() && revoked_at.is_none() && mfa.is_none() {
            return Ok(None);
        }
        let num = |v: Option<String>, k: &str| {
            v.and_then(|v| v.parse().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("session field {k}")))
        };
        Ok(Some(SessionStatus {
            last_seen: num(last_seen, "last_seen")?,
            expires_at: num(expires_at, "expires_at")?,
            // any non-empty value counts (fails closed on a malformed one)
            revoked: revoked_at.is_some_and(|v| !v.is_empty()),
            mfa: mfa.as_deref() == Some("1"),
        }))
    }
    async fn list_sessions_page(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<SessionPage> {
        let cursor = cursor.map(parse_cursor).transpose()?;
        // the index is capped, so ordering it here is cheap; only the page is loaded
        let mut entries: Vec<SessionRecord> = self
            .user_sids(user_id)
            .await?
            .into_iter()
            .map(|(sid, created_at)| SessionRecord {
                sid,
                created_at,
                ..placeholder()
            })
            .filter(|s| after_cursor(s, &cursor))
            .collect();
        listing_order(&mut entries);
        let mut out = Vec::new();
        let mut more = false;
        for e in entries {
            if out.len() == limit {
                more = true;
                break;
            }
            let mut got = self
                .load_many(user_id, std::slice::from_ref(&e.sid))
                .await?;
            if let Some(mut s) = got.pop() {
                let mut c = self.conn();
                let evs: Vec<String> = c.lrange(self.sk("ev", &s.sid), 0, -1).await.map_err(err)?;
                s.events = evs
                    .iter()
                    .filter_map(|e| serde_json::from_str(e).ok())
                    .collect();
                out.push(s);
            }
        }
        let next = if more {
            out.last().map(page_cursor)
        } else {
            None
        };
        Ok(SessionPage {
            sessions: out,
            next,
        })
    }
    async fn token_records(&self, sid: &str) -> StoreResult<usize> {
        let mut c = self.conn();
        let keys: Vec<String> = c.hkeys(self.sk("s", sid)).await.map_err(err)?;
        let hashes = keys
            .iter()
            .filter(|k| *k == "cur" || *k == "prev" || k.starts_with("tok:"))
            .count();
        let older: Option<String> = c.get(self.sk("o", sid)).await.map_err(err)?;
        let hashes = hashes + older.map_or(0, |o| o.lines().count());
        let fam: Option<String> = c.hget(self.sk("s", sid), "fam").await.map_err(err)?;
        let index = match fam {
            Some(f) => c.exists::<_, i64>(self.k("f", &f)).await.map_err(err)? as usize,
            None => 0,
        };
        Ok(hashes + index)
    }
    async fn lookup_refresh(
        &self,
        token: &TokenRef,
        now: i64,
        grace: i64,
        client: &str,
    ) -> StoreResult<Option<(SessionRecord, TokenPosition)>> {
        let mut c = self.conn();
        let Some(sid): Option<String> = c.get(self.k("f", &token.family)).await.map_err(err)?
        else {
            return Ok(None);
        };
        let (Some(s), Some(t)) = self.load_with(&sid, true).await? else {
            return Ok(None);
        };
        let p = position_for(&s, &t, &token.hash, now, grace, client);
        Ok(Some((s, p)))
    }
    async fn rotate(&self, req: &RotateRequest) -> StoreResult<RotateOutcome> {
        let mut c = self.conn();
        // 1. which session? (the family index never changes once written)
        let Some(sid): Option<String> = c
            .get(self.k("f", &req.presented.family))
            .await
            .map_err(err)?
        else {
            return Ok(RotateOutcome::Unknown);
        };
        let Some(before) = self.load(&sid).await? else {
            return Ok(RotateOutcome::Unknown);
        };
        // 2. the atomic decision, on the one session key
        let reply: Vec<String> = self
            .rotate
            .key(self.sk("s", &sid))
            .key(self.sk("g", &sid))
            .key(self.sk("v", &sid))
            .key(self.sk("o", &sid))
            .arg(req.now)
            .arg(req.grace)
            .arg(req.idle)
            .arg(&req.presented.hash)
            .arg(&req.new_hash)
            .arg(b64(&req.sealed_successor))
            .arg(&req.client)
            .arg(MAX_GRACE_CHAIN)
            .invoke_async(&mut c)
            .await
            .map_err(err)?;
        // rotated, or revoked by reuse / expiry: the decision must survive a failover
        if reply.first().map(String::as_str) != Some("grace") {
            self.replicated(&mut c).await?;
        }
        // the live-session index follows (its own slot, so not inside the script)
        match reply.first().map(String::as_str) {
            Some("rotated") => {
                let until = before.expires_at.min(req.now.saturating_add(req.idle));
                let _: i64 = c.zadd(self.live_key(), &sid, until).await.map_err(err)?;
            }
            Some("reused" | "revoked" | "expired") => self.not_live(&mut c, &sid).await?,
            _ => {}
        }
        Ok(match reply.first().map(String::as_str) {
            Some("rotated") => {
                let mut s = before;
                s.generation = reply
                    .get(1)
                    .and_then(|g| g.parse().ok())
                    .ok_or_else(|| StoreError::Corrupt("rotation reply".into()))?;
                s.prev_rotated_at = Some(req.now);
                s.prev_sealed = (req.grace > 0).then(|| req.sealed_successor.clone());
                s.last_seen = req.now;
                RotateOutcome::Rotated(s)
            }
            Some("grace") => {
                let chain = reply[1..]
                    .iter()
                    .map(|v| unb64(v))
                    .collect::<Option<Vec<_>>>()
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| StoreError::Corrupt("sealed successor".into()))?;
                RotateOutcome::Grace {
                    session: before,
                    chain,
                }
            }
            Some("reused") => RotateOutcome::Reused { sid },
            Some("revoked") => RotateOutcome::Revoked,
            Some("expired") => RotateOutcome::Expired,
            _ => RotateOutcome::Unknown,
        })
    }
    async fn revoke_session(&self, sid: &str, reason: &str, now: i64) -> StoreResult<bool> {
        let mut c = self.conn();
        let n: i64 = self
            .revoke
            .key(self.sk("s", sid))
            .key(self.sk("g", sid))
            .key(self.sk("v", sid))
            .arg(now)
            .arg(reason)
            .invoke_async(&mut c)
            .await
            .map_err(err)?;
        if n == 1 {
            self.replicated(&mut c).await?;
        }
        self.not_live(&mut c, sid).await?;
        Ok(n == 1)
    }
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<usize> {
        let mut n = 0;
        for (sid, _) in self.user_sids(user_id).await? {
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
            pipe.ltrim(&ek, -(MAX_EVENTS_PER_SESSION as isize), -1)
                .ignore();
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
    async fn advance_counter(
        &self,
        key: &str,
        value: i64,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let mut c = self.conn();
        let n: i64 = self
            .advance
            .key(self.k("eph", key))
            .arg(value)
            .arg(expires_at)
            .arg(now)
            .arg((expires_at - now).max(1))
            .invoke_async(&mut c)
            .await
            .map_err(err)?;
        if n == 1 {
            // a used one-time code must stay used across a failover
            self.replicated(&mut c).await?;
        }
        Ok(n == 1)
    }

    async fn shred(&self, _now: i64, _idle: i64, _grace: i64) -> StoreResult<usize> {
        Ok(0) // vault keys and grace successors are their own keys with TTLs
    }

    async fn purge_expired(&self, now: i64, _retention: i64) -> StoreResult<usize> {
        // every key carries a TTL; only the live-session index needs trimming
        let mut c = self.conn();
        let _: i64 = c
            .zrembyscore(self.live_key(), "-inf", now)
            .await
            .map_err(err)?;
        Ok(0)
    }
}
