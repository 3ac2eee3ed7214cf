//! Throttle counters in Redis: one Lua script checks every counter of an attempt and
//! increments them all, atomically, so several server instances share the limits. The
//! connection is a [`RedisStore`]'s, so standalone, Sentinel (following failovers) and
//! Cluster work alike, with the same credentials and TLS; every counter key carries one
//! Cluster hash tag (`{t}`), so one attempt's counters live in one slot and the script
//! stays atomic there.

use async_trait::async_trait;

use crate::store::redis::{err, RedisStore};

use super::{Kind, Rule, ThrottleBackend, MAX_BACKOFF};
use crate::store::StoreResult;

/// KEYS: the counters (hashes s = window start, n = count, x = next allowed time).
/// ARGV: now, max backoff, then per key: limit, window, kind (`h` hard, `b` backoff).
/// Returns 0 when reserved, else the seconds to wait (nothing counted).
const RESERVE_LUA: &str = r"
local now = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local state = {}
local retry = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 * i])
  local window = tonumber(ARGV[3 * i + 1])
  local kind = ARGV[3 * i + 2]
  local v = redis.call('HMGET', key, 's', 'n', 'x')
  local s = tonumber(v[1]) or now
  local n = tonumber(v[2]) or 0
  local x = tonumber(v[3]) or 0
  if now >= s + window then s = now; n = 0; x = 0 end
  state[i] = { s, n, x, limit, window, kind }
  local wait = 0
  if kind == 'h' and n >= limit then wait = s + window - now end
  if kind == 'b' and n >= limit and now < x then wait = x - now end
  if wait > retry then retry = wait end
end
if retry > 0 then return retry end
for i, key in ipairs(KEYS) do
  local st = state[i]
  local s, n, x, limit, window, kind = st[1], st[2] + 1, st[3], st[4], st[5], st[6]
  if kind == 'b' and n >= limit then
    local e = n - limit
    if e > 20 then e = 20 end
    local b = math.min(2 ^ e, window, cap)
    x = now + math.floor(b)
  end
  redis.call('HSET', key, 's', s, 'n', n, 'x', x)
  redis.call('EXPIREAT', key, s + window + 1)
end
return 0
";

/// KEYS: counters to give one attempt back to.
const REFUND_LUA: &str = r"
for _, key in ipairs(KEYS) do
  local n = tonumber(redis.call('HGET', key, 'n'))
  if n and n > 0 then redis.call('HSET', key, 'n', n - 1) end
end
return 0
";

/// Counters in Redis or Valkey (standalone, Sentinel or Cluster).
pub struct RedisThrottle {
    store: RedisStore,
    prefix: String,
    reserve: redis::Script,
    refund: redis::Script,
}

impl std::fmt::Debug for RedisThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisThrottle")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisThrottle {
    /// Connects to `url` (any Redis store URL, see [`crate::store::redis`]); keys start
    /// with `prefix`.
    ///
    /// # Errors
    /// When the URL is invalid or Redis is unreachable.
    pub async fn connect(url: &str, prefix: &str) -> StoreResult<Self> {
        Ok(RedisThrottle {
            store: RedisStore::connect(url, prefix).await?,
            prefix: prefix.to_string(),
            reserve: redis::Script::new(RESERVE_LUA),
            refund: redis::Script::new(REFUND_LUA),
        })
    }

    fn key(&self, r: &Rule) -> String {
        format!("{}{{t}}:{}", self.prefix, r.key)
    }
}

#[async_trait]
impl ThrottleBackend for RedisThrottle {
    async fn reserve(&self, rules: &[Rule], now: i64) -> StoreResult<Option<u64>> {
        let mut inv = self.reserve.prepare_invoke();
        inv.arg(now).arg(MAX_BACKOFF);
        for r in rules {
            inv.key(self.key(r))
                .arg(r.limit)
                .arg(r.window)
                .arg(match r.kind {
                    Kind::Hard => "h",
                    Kind::Backoff => "b",
                });
        }
        let mut c = self.store.conn();
        let retry: i64 = inv.invoke_async(&mut c).await.map_err(err)?;
        Ok((retry > 0).then_some(retry as u64))
    }

    async fn refund(&self, rules: &[Rule], _now: i64) -> StoreResult<()> {
        let mut inv = self.refund.prepare_invoke();
        for r in rules {
            inv.key(self.key(r));
        }
        let mut c = self.store.conn();
        let _: i64 = inv.invoke_async(&mut c).await.map_err(err)?;
        Ok(())
    }
}
