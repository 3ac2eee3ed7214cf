//! In-memory store: for tests and benchmarks only (nothing survives a restart).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;

#[derive(Default)]
struct Inner {
    meta: HashMap<String, String>,
    users: HashMap<String, UserRecord>,
    sessions: HashMap<String, SessionRecord>,
    events: HashMap<String, Vec<SessionEvent>>,
    /// sid → the token hashes it keeps
    tokens: HashMap<String, TokenState>,
    /// family hash → sid
    families: HashMap<String, String>,
    by_user: HashMap<String, Vec<String>>,
    ephemeral: HashMap<String, (String, i64)>,
    /// `ephemeral`'s size at which expired values are next swept: twice what the last
    /// sweep left (at least [`SWEEP_FROM`]), so sweeping costs O(1) per insert amortised
    /// however many live values there are (a DPoP `jti` cache holds one per request).
    sweep_at: usize,
}

/// Below this many short-lived values nothing is swept.
const SWEEP_FROM: usize = 10_000;

impl Inner {
    fn insert_session(&mut self, s: &SessionRecord, t: &TokenRef) {
        self.tokens.insert(
            s.sid.clone(),
            TokenState {
                cur: t.hash.clone(),
                ..TokenState::default()
            },
        );
        self.families.insert(t.family.clone(), s.sid.clone());
        self.by_user
            .entry(s.user_id.clone())
            .or_default()
            .push(s.sid.clone());
        self.sessions.insert(s.sid.clone(), s.clone());
    }

    fn find(&self, t: &TokenRef) -> Option<(&SessionRecord, &TokenState)> {
        let sid = self.families.get(&t.family)?;
        Some((self.sessions.get(sid)?, self.tokens.get(sid)?))
    }
}

/// A store in a `Mutex<HashMap…>`; every operation is atomic under the lock.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-operation; the maps are
        // still structurally valid, so keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn revoke(s: &mut SessionRecord, reason: &str, now: i64) -> bool {
    if s.revoked_at.is_some() {
        return false;
    }
    s.revoked_at = Some(now);
    s.revoke_reason = Some(reason.to_string());
    s.vault_key = None;
    true
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self.lock().meta.get(key).cloned())
    }
    async fn put_meta_if_absent(&self, key: &str, value: &str) -> StoreResult<String> {
        Ok(self
            .lock()
            .meta
            .entry(key.to_string())
            .or_insert_with(|| value.to_string())
            .clone())
    }
    async fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.lock().meta.insert(key.into(), value.into());
        Ok(())
    }
    async fn compare_and_set_meta(
        &self,
        key: &str,
        expected: &str,
        value: &str,
    ) -> StoreResult<bool> {
        let mut g = self.lock();
        match g.meta.get_mut(key) {
            Some(v) if v == expected => {
                *v = value.to_string();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn upsert_user(&self, user: &UserRecord) -> StoreResult<()> {
        self.lock()
            .users
            .insert(user.username.clone(), user.clone());
        Ok(())
    }
    async fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        Ok(self.lock().users.get(username).cloned())
    }
    async fn list_users(&self) -> StoreResult<Vec<UserSummary>> {
        let mut v: Vec<UserSummary> = self.lock().users.values().map(UserSummary::from).collect();
        v.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(v)
    }
    async fn delete_user(&self, username: &str) -> StoreResult<bool> {
        Ok(self.lock().users.remove(username).is_some())
    }
    async fn count_live_sessions(&self, now: i64, idle: i64) -> StoreResult<u64> {
        Ok(self
            .lock()
            .sessions
            .values()
            .filter(|s| counts_as_live(s, now, idle))
            .count() as u64)
    }

    async fn create_session(
        &self,
        s: &SessionRecord,
        token: &TokenRef,
        limits: &SessionLimits,
    ) -> StoreResult<Vec<String>> {
        let mut g = self.lock();
        g.insert_session(s, token);
        let now = s.created_at;
        let mut live: Vec<SessionRecord> = g
            .by_user
            .get(&s.user_id)
            .into_iter()
            .flatten()
            .filter(|sid| **sid != s.sid)
            .filter_map(|sid| g.sessions.get(sid))
            .filter(|x| counts_as_live(x, now, limits.idle))
            .cloned()
            .collect();
        listing_order(&mut live);
        let mut revoked = Vec::new();
        for old in live.iter().skip(limits.max_per_user.saturating_sub(1)) {
            if let Some(x) = g.sessions.get_mut(&old.sid) {
                if revoke(x, "session_limit", now) {
                    revoked.push(old.sid.clone());
                }
            }
        }
        Ok(revoked)
    }
    async fn get_session(&self, sid: &str) -> StoreResult<Option<SessionRecord>> {
        Ok(self.lock().sessions.get(sid).cloned())
    }
    async fn session_status(&self, sid: &str) -> StoreResult<Option<SessionStatus>> {
        Ok(self.lock().sessions.get(sid).map(SessionStatus::from))
    }
    async fn list_sessions_page(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<SessionPage> {
        let cursor = cursor.map(parse_cursor).transpose()?;
        let g = self.lock();
        let mut all: Vec<SessionRecord> = g
            .by_user
            .get(user_id)
            .into_iter()
            .flatten()
            .filter_map(|sid| g.sessions.get(sid))
            .filter(|s| after_cursor(s, &cursor))
            .cloned()
            .collect();
        listing_order(&mut all);
        let more = all.len() > limit;
        all.truncate(limit);
        for s in &mut all {
            s.events = g.events.get(&s.sid).cloned().unwrap_or_default();
        }
        let next = if more {
            all.last().map(page_cursor)
        } else {
            None
        };
        Ok(SessionPage {
            sessions: all,
            next,
        })
    }
    async fn token_records(&self, sid: &str) -> StoreResult<usize> {
        let g = self.lock();
        let hashes = g
            .tokens
            .get(sid)
            .map_or(0, |t| 1 + t.prev.is_some() as usize + t.older.len());
        let families = g.families.values().filter(|x| *x == sid).count();
        Ok(hashes + families)
    }
    async fn lookup_refresh(
        &self,
        token: &TokenRef,
        now: i64,
        grace: i64,
        client: &str,
    ) -> StoreResult<Option<(SessionRecord, TokenPosition)>> {
        let g = self.lock();
        Ok(g.find(token).map(|(s, t)| {
            (
                s.clone(),
                position_for(s, t, &token.hash, now, grace, client),
            )
        }))
    }
    async fn rotate(&self, req: &RotateRequest) -> StoreResult<RotateOutcome> {
        let mut g = self.lock();
        let Some((s, t)) = g.find(&req.presented) else {
            return Ok(RotateOutcome::Unknown);
        };
        let decision = decide(s, t, req);
        let older = t.older_after_rotation(s, req.now, req.grace);
        let sid = s.sid.clone();
        let Some(s) = g.sessions.get_mut(&sid) else {
            return Ok(RotateOutcome::Unknown);
        };
        match decision {
            Decision::Revoked => Ok(RotateOutcome::Revoked),
            Decision::Expired => {
                revoke(s, "expired", req.now);
                Ok(RotateOutcome::Expired)
            }
            Decision::Reuse => {
                revoke(s, "refresh_reused", req.now);
                Ok(RotateOutcome::Reused { sid })
            }
            Decision::Grace(chain) => Ok(RotateOutcome::Grace {
                session: s.clone(),
                chain,
            }),
            Decision::Rotate => {
                s.generation += 1;
                s.prev_rotated_at = Some(req.now);
                s.prev_sealed = Some(req.sealed_successor.clone());
                s.last_seen = req.now;
                let out = s.clone();
                g.tokens.insert(
                    sid,
                    TokenState {
                        cur: req.new_hash.clone(),
                        prev: Some(req.presented.hash.clone()),
                        prev_client: Some(req.client.clone()),
                        older,
                    },
                );
                Ok(RotateOutcome::Rotated(out))
            }
        }
    }
    async fn revoke_session(&self, sid: &str, reason: &str, now: i64) -> StoreResult<bool> {
        Ok(self
            .lock()
            .sessions
            .get_mut(sid)
            .is_some_and(|s| revoke(s, reason, now)))
    }
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<usize> {
        let mut g = self.lock();
        let sids = g.by_user.get(user_id).cloned().unwrap_or_default();
        let mut n = 0;
        for sid in sids {
            if let Some(s) = g.sessions.get_mut(&sid) {
                n += revoke(s, reason, now) as usize;
            }
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
        let mut g = self.lock();
        if let Some(s) = g.sessions.get_mut(sid) {
            s.user_agent = ua.into();
            s.address = addr.into();
        }
        if let Some(e) = event {
            let list = g.events.entry(sid.into()).or_default();
            list.push(e.clone());
            if list.len() > MAX_EVENTS_PER_SESSION {
                let excess = list.len() - MAX_EVENTS_PER_SESSION;
                list.drain(..excess);
            }
        }
        Ok(())
    }

    async fn put_ephemeral(&self, key: &str, value: &str, expires_at: i64) -> StoreResult<()> {
        self.lock()
            .ephemeral
            .insert(key.into(), (value.into(), expires_at));
        Ok(())
    }
    async fn get_ephemeral(&self, key: &str, now: i64) -> StoreResult<Option<String>> {
        Ok(self
            .lock()
            .ephemeral
            .get(key)
            .filter(|(_, e)| *e > now)
            .map(|(v, _)| v.clone()))
    }
    async fn take_ephemeral(&self, key: &str, now: i64) -> StoreResult<Option<String>> {
        Ok(self
            .lock()
            .ephemeral
            .remove(key)
            .filter(|(_, e)| *e > now)
            .map(|(v, _)| v))
    }
    async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> StoreResult<bool> {
        let mut g = self.lock();
        if g.ephemeral.len() > g.sweep_at.max(SWEEP_FROM) {
            g.ephemeral.retain(|_, (_, e)| *e > now);
            g.sweep_at = 2 * g.ephemeral.len();
        }
        match g.ephemeral.get(key) {
            Some((_, e)) if *e > now => Ok(false),
            _ => {
                g.ephemeral.insert(key.into(), ("1".into(), expires_at));
                Ok(true)
            }
        }
    }
    async fn advance_counter(
        &self,
        key: &str,
        value: i64,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let mut g = self.lock();
        if let Some((v, e)) = g.ephemeral.get(key) {
            if *e > now && v.parse::<i64>().is_ok_and(|old| old >= value) {
                return Ok(false);
            }
        }
        g.ephemeral
            .insert(key.into(), (value.to_string(), expires_at));
        Ok(true)
    }

    async fn shred(&self, now: i64, idle: i64, grace: i64) -> StoreResult<usize> {
        let mut g = self.lock();
        let g = &mut *g;
        let mut n = 0;
        for s in g.sessions.values_mut() {
            let mut changed = false;
            if s.vault_key.is_some() && s.liveness(now, idle) != Liveness::Live {
                s.vault_key = None;
                changed = true;
            }
            if s.prev_sealed.is_some() && s.prev_rotated_at.is_none_or(|at| now - at > grace) {
                s.prev_sealed = None;
                changed = true;
            }
            if let Some(t) = g.tokens.get_mut(&s.sid) {
                let before = t.older.len();
                t.older.retain(|e| now - e.at <= grace);
                changed |= t.older.len() != before;
            }
            n += changed as usize;
        }
        Ok(n)
    }

    async fn purge_expired(&self, now: i64, retention: i64) -> StoreResult<usize> {
        let mut g = self.lock();
        let dead: Vec<String> = g
            .sessions
            .values()
            .filter(|s| s.expires_at + retention < now)
            .map(|s| s.sid.clone())
            .collect();
        for sid in &dead {
            g.sessions.remove(sid);
            g.events.remove(sid);
            g.tokens.remove(sid);
        }
        g.families.retain(|_, sid| !dead.contains(sid));
        for v in g.by_user.values_mut() {
            v.retain(|sid| !dead.contains(sid));
        }
        g.ephemeral.retain(|_, (_, e)| *e > now);
        Ok(dead.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn use_once_sweeps_expired_marks_in_rounds_and_keeps_live_ones() {
        let s = MemoryStore::new();
        for i in 0..30_000 {
            assert!(s.use_once(&format!("old{i}"), 100, 0).await.expect("store"));
        }
        // past their expiry: the next insert beyond the threshold sweeps them all
        for i in 0..25_000 {
            assert!(s
                .use_once(&format!("new{i}"), 1_000, 200)
                .await
                .expect("store"));
        }
        let (len, sweep_at) = {
            let g = s.lock();
            (g.ephemeral.len(), g.sweep_at)
        };
        assert!(len <= 25_000, "expired marks swept ({len} left)");
        assert!(
            sweep_at >= len,
            "the next sweep waits for the map to grow ({sweep_at})"
        );
        // live marks still refuse a second use; expired ones are free again
        assert!(!s.use_once("new7", 1_000, 300).await.expect("store"));
        assert!(s.use_once("old7", 1_000, 300).await.expect("store"));
    }
}
