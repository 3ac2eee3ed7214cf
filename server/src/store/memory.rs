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
    tokens: HashMap<String, (String, i64)>,
    by_user: HashMap<String, Vec<String>>,
    ephemeral: HashMap<String, (String, i64)>,
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

    async fn create_session(&self, s: &SessionRecord, refresh_hash: &str) -> StoreResult<()> {
        let mut g = self.lock();
        g.tokens
            .insert(refresh_hash.into(), (s.sid.clone(), s.generation));
        g.by_user
            .entry(s.user_id.clone())
            .or_default()
            .push(s.sid.clone());
        g.sessions.insert(s.sid.clone(), s.clone());
        Ok(())
    }
    async fn get_session(&self, sid: &str) -> StoreResult<Option<SessionRecord>> {
        Ok(self.lock().sessions.get(sid).cloned())
    }
    async fn list_sessions(&self, user_id: &str) -> StoreResult<Vec<SessionRecord>> {
        let g = self.lock();
        let mut out: Vec<SessionRecord> = g
            .by_user
            .get(user_id)
            .into_iter()
            .flatten()
            .filter_map(|sid| g.sessions.get(sid))
            .map(|s| {
                let mut s = s.clone();
                s.events = g.events.get(&s.sid).cloned().unwrap_or_default();
                s
            })
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(out)
    }
    async fn lookup_refresh(
        &self,
        hash: &str,
        now: i64,
        grace: i64,
    ) -> StoreResult<Option<(SessionRecord, TokenPosition)>> {
        let g = self.lock();
        let Some((sid, gen)) = g.tokens.get(hash) else {
            return Ok(None);
        };
        Ok(g.sessions
            .get(sid)
            .map(|s| (s.clone(), position(s, *gen, now, grace))))
    }
    async fn rotate(&self, req: &RotateRequest) -> StoreResult<RotateOutcome> {
        let mut g = self.lock();
        let Some((sid, gen)) = g.tokens.get(&req.presented_hash).cloned() else {
            return Ok(RotateOutcome::Unknown);
        };
        let Some(s) = g.sessions.get_mut(&sid) else {
            return Ok(RotateOutcome::Unknown);
        };
        match decide(s, gen, req) {
            Decision::Revoked => Ok(RotateOutcome::Revoked),
            Decision::Expired => {
                revoke(s, "expired", req.now);
                Ok(RotateOutcome::Expired)
            }
            Decision::Reuse => {
                revoke(s, "refresh_reused", req.now);
                Ok(RotateOutcome::Reused { sid })
            }
            Decision::Grace(sealed) => Ok(RotateOutcome::Grace {
                session: s.clone(),
                sealed,
            }),
            Decision::Rotate => {
                s.generation += 1;
                s.prev_rotated_at = Some(req.now);
                s.prev_sealed = Some(req.sealed_successor);
                s.last_seen = req.now;
                let out = s.clone();
                g.tokens.insert(req.new_hash.clone(), (sid, out.generation));
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
            g.events.entry(sid.into()).or_default().push(e.clone());
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
        if g.ephemeral.len() > 10_000 {
            g.ephemeral.retain(|_, (_, e)| *e > now);
        }
        match g.ephemeral.get(key) {
            Some((_, e)) if *e > now => Ok(false),
            _ => {
                g.ephemeral.insert(key.into(), ("1".into(), expires_at));
                Ok(true)
            }
        }
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
        }
        g.tokens.retain(|_, (sid, _)| !dead.contains(sid));
        for v in g.by_user.values_mut() {
            v.retain(|sid| !dead.contains(sid));
        }
        g.ephemeral.retain(|_, (_, e)| *e > now);
        Ok(dead.len())
    }
}
