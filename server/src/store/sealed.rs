//! [`SealedStore`]: the layer that keeps secrets sealed at rest in every backend. It wraps any
//! [`SessionStore`] and seals, under the [`MasterKey`], what the backend would otherwise hold
//! in plain form: each session's vault key (bound to its session id), each user's TOTP
//! secret (bound to the user id) and every metadata value (the signing seeds; bound to the
//! key name). Callers see plain values; the backend, its files and its dumps see only
//! ciphertext. A value that does not open (another master key, a value moved between rows,
//! tampering) is a [`StoreError::Sealed`], never a panic and never a silent fallback.
//!
//! Values written before this layer existed (plain meta values and TOTP secrets) are read
//! once and sealed in place.

use std::sync::Arc;

use async_trait::async_trait;

use super::*;
use crate::master_key::MasterKey;
use crate::secret::{b64, log_tag, unb64};

const TEXT_PREFIX: &str = "sealed.v1.";

/// A [`SessionStore`] that seals secrets before they reach the wrapped backend.
pub struct SealedStore {
    inner: Arc<dyn SessionStore>,
    key: MasterKey,
}

impl std::fmt::Debug for SealedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedStore")
            .field("inner", &self.inner.kind())
            .finish_non_exhaustive()
    }
}

impl SealedStore {
    /// Wraps `inner`; secrets are sealed under `key`.
    pub fn new(inner: Arc<dyn SessionStore>, key: MasterKey) -> Self {
        SealedStore { inner, key }
    }

    /// The wrapped backend (its values are sealed).
    pub fn inner(&self) -> &Arc<dyn SessionStore> {
        &self.inner
    }

    fn seal_session(&self, s: &SessionRecord) -> SessionRecord {
        let mut out = s.clone();
        out.vault_key = s
            .vault_key
            .as_ref()
            .map(|k| self.key.seal("vault", &s.sid, k));
        out
    }

    fn open_session(&self, mut s: SessionRecord) -> StoreResult<SessionRecord> {
        if let Some(v) = s.vault_key.take() {
            let k = self.key.open("vault", &s.sid, &v).ok_or_else(|| {
                StoreError::Sealed(format!("vault key of session {}", log_tag(&s.sid)))
            })?;
            s.vault_key = Some(k);
        }
        Ok(s)
    }

    fn seal_text(&self, label: &str, context: &str, plain: &str) -> String {
        format!(
            "{TEXT_PREFIX}{}",
            b64(&self.key.seal(label, context, plain.as_bytes()))
        )
    }

    /// Opens a sealed text; `Ok(None)` for a legacy plain value (to be sealed in place).
    fn open_text(&self, label: &str, context: &str, stored: &str) -> StoreResult<Option<String>> {
        let Some(body) = stored.strip_prefix(TEXT_PREFIX) else {
            return Ok(None);
        };
        unb64(body)
            .and_then(|b| self.key.open(label, context, &b))
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            .ok_or_else(|| StoreError::Sealed(format!("{label} value of {context:?}")))
    }

    fn seal_user(&self, u: &UserRecord) -> UserRecord {
        let mut out = u.clone();
        out.totp_secret = u
            .totp_secret
            .as_deref()
            .map(|t| self.seal_text("totp", &u.id, t));
        out
    }

    async fn open_meta(&self, key: &str, stored: String) -> StoreResult<String> {
        match self.open_text("meta", key, &stored)? {
            Some(v) => Ok(v),
            None => {
                tracing::warn!(key, "metadata value stored in plain form; sealing it now");
                self.inner
                    .set_meta(key, &self.seal_text("meta", key, &stored))
                    .await?;
                Ok(stored)
            }
        }
    }

    fn open_page(&self, p: SessionPage) -> StoreResult<SessionPage> {
        Ok(SessionPage {
            sessions: p
                .sessions
                .into_iter()
                .map(|s| self.open_session(s))
                .collect::<StoreResult<_>>()?,
            next: p.next,
        })
    }
}

#[async_trait]
impl SessionStore for SealedStore {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>> {
        match self.inner.get_meta(key).await? {
            Some(v) => Ok(Some(self.open_meta(key, v).await?)),
            None => Ok(None),
        }
    }
    async fn put_meta_if_absent(&self, key: &str, value: &str) -> StoreResult<String> {
        let stored = self
            .inner
            .put_meta_if_absent(key, &self.seal_text("meta", key, value))
            .await?;
        self.open_meta(key, stored).await
    }
    async fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.inner
            .set_meta(key, &self.seal_text("meta", key, value))
            .await
    }
    /// `expected` is the *opened* value (what [`get_meta`](SessionStore::get_meta) returned).
    /// Sealing is randomized, so `expected` cannot be re-sealed and compared: the stored
    /// ciphertext is read and opened, compared with `expected`, and then swapped by the
    /// backend's own compare-and-set on that exact ciphertext, so a writer that changed the
    /// value in between (even to the same plain value) makes this one fail.
    async fn compare_and_set_meta(
        &self,
        key: &str,
        expected: &str,
        value: &str,
    ) -> StoreResult<bool> {
        let Some(stored) = self.inner.get_meta(key).await? else {
            return Ok(false);
        };
        // a legacy plain value compares as itself (and is sealed by the swap)
        let opened = self
            .open_text("meta", key, &stored)?
            .unwrap_or_else(|| stored.clone());
        if opened != expected {
            return Ok(false);
        }
        self.inner
            .compare_and_set_meta(key, &stored, &self.seal_text("meta", key, value))
            .await
    }

    async fn upsert_user(&self, user: &UserRecord) -> StoreResult<()> {
        self.inner.upsert_user(&self.seal_user(user)).await
    }
    async fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let Some(mut u) = self.inner.find_user(username).await? else {
            return Ok(None);
        };
        if let Some(stored) = u.totp_secret.take() {
            match self.open_text("totp", &u.id, &stored)? {
                Some(t) => u.totp_secret = Some(t),
                None => {
                    tracing::warn!(user = %log_tag(&u.id), "TOTP secret stored in plain form; sealing it now");
                    u.totp_secret = Some(stored);
                    self.inner.upsert_user(&self.seal_user(&u)).await?;
                }
            }
        }
        Ok(Some(u))
    }

    async fn list_users(&self) -> StoreResult<Vec<UserSummary>> {
        self.inner.list_users().await
    }
    async fn delete_user(&self, username: &str) -> StoreResult<bool> {
        self.inner.delete_user(username).await
    }
    async fn count_live_sessions(&self, now: i64, idle: i64) -> StoreResult<u64> {
        self.inner.count_live_sessions(now, idle).await
    }

    async fn create_session(
        &self,
        session: &SessionRecord,
        token: &TokenRef,
        limits: &SessionLimits,
    ) -> StoreResult<Vec<String>> {
        self.inner
            .create_session(&self.seal_session(session), token, limits)
            .await
    }
    async fn create_sessions(&self, batch: &[(SessionRecord, TokenRef)]) -> StoreResult<()> {
        let sealed: Vec<(SessionRecord, TokenRef)> = batch
            .iter()
            .map(|(s, t)| (self.seal_session(s), t.clone()))
            .collect();
        self.inner.create_sessions(&sealed).await
    }
    async fn get_session(&self, sid: &str) -> StoreResult<Option<SessionRecord>> {
        self.inner
            .get_session(sid)
            .await?
            .map(|s| self.open_session(s))
            .transpose()
    }
    async fn session_status(&self, sid: &str) -> StoreResult<Option<SessionStatus>> {
        // nothing sealed is read: the vault key stays in the backend, unopened
        self.inner.session_status(sid).await
    }
    async fn list_sessions_page(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<SessionPage> {
        let p = self
            .inner
            .list_sessions_page(user_id, limit, cursor)
            .await?;
        self.open_page(p)
    }
    async fn token_records(&self, sid: &str) -> StoreResult<usize> {
        self.inner.token_records(sid).await
    }
    async fn lookup_refresh(
        &self,
        token: &TokenRef,
        now: i64,
        grace: i64,
        client: &str,
    ) -> StoreResult<Option<(SessionRecord, TokenPosition)>> {
        match self.inner.lookup_refresh(token, now, grace, client).await? {
            Some((s, p)) => Ok(Some((self.open_session(s)?, p))),
            None => Ok(None),
        }
    }
    async fn rotate(&self, req: &RotateRequest) -> StoreResult<RotateOutcome> {
        Ok(match self.inner.rotate(req).await? {
            RotateOutcome::Rotated(s) => RotateOutcome::Rotated(self.open_session(s)?),
            RotateOutcome::Grace { session, chain } => RotateOutcome::Grace {
                session: self.open_session(session)?,
                chain,
            },
            other => other,
        })
    }
    async fn revoke_session(&self, sid: &str, reason: &str, now: i64) -> StoreResult<bool> {
        self.inner.revoke_session(sid, reason, now).await
    }
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<usize> {
        self.inner.revoke_user_sessions(user_id, reason, now).await
    }
    async fn update_client(
        &self,
        sid: &str,
        user_agent: &str,
        address: &str,
        event: Option<&SessionEvent>,
    ) -> StoreResult<()> {
        self.inner
            .update_client(sid, user_agent, address, event)
            .await
    }

    async fn put_ephemeral(&self, key: &str, value: &str, expires_at: i64) -> StoreResult<()> {
        self.inner.put_ephemeral(key, value, expires_at).await
    }
    async fn get_ephemeral(&self, key: &str, now: i64) -> StoreResult<Option<String>> {
        self.inner.get_ephemeral(key, now).await
    }
    async fn take_ephemeral(&self, key: &str, now: i64) -> StoreResult<Option<String>> {
        self.inner.take_ephemeral(key, now).await
    }
    async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> StoreResult<bool> {
        self.inner.use_once(key, expires_at, now).await
    }
    async fn advance_counter(
        &self,
        key: &str,
        value: i64,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        self.inner
            .advance_counter(key, value, expires_at, now)
            .await
    }

    async fn purge_expired(&self, now: i64, retention: i64) -> StoreResult<usize> {
        self.inner.purge_expired(now, retention).await
    }
    async fn shred(&self, now: i64, idle: i64, grace: i64) -> StoreResult<usize> {
        self.inner.shred(now, idle, grace).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn sealed() -> (Arc<dyn SessionStore>, Arc<SealedStore>) {
        let inner: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let s = Arc::new(SealedStore::new(inner.clone(), MasterKey::ephemeral()));
        (inner, s)
    }

    #[tokio::test]
    async fn compare_and_set_meta_compares_the_opened_value_and_stores_sealed() {
        let (inner, s) = sealed();
        assert!(
            !s.compare_and_set_meta("k", "a", "b").await.unwrap(),
            "absent"
        );
        s.set_meta("k", "a").await.unwrap();
        let raw = inner.get_meta("k").await.unwrap().unwrap();
        assert!(raw.starts_with(TEXT_PREFIX), "stored sealed: {raw}");
        // the ciphertext is not the value: it must not match as `expected`
        assert!(!s.compare_and_set_meta("k", &raw, "x").await.unwrap());
        assert!(!s.compare_and_set_meta("k", "wrong", "x").await.unwrap());
        assert!(s.compare_and_set_meta("k", "a", "b").await.unwrap());
        assert_eq!(s.get_meta("k").await.unwrap().as_deref(), Some("b"));
        let raw = inner.get_meta("k").await.unwrap().unwrap();
        assert!(
            raw.starts_with(TEXT_PREFIX),
            "the new value is sealed: {raw}"
        );
        assert!(
            !s.compare_and_set_meta("k", "a", "c").await.unwrap(),
            "stale"
        );
    }

    #[tokio::test]
    async fn compare_and_set_meta_seals_a_legacy_plain_value() {
        let (inner, s) = sealed();
        inner.set_meta("k", "plain").await.unwrap();
        assert!(s.compare_and_set_meta("k", "plain", "next").await.unwrap());
        let raw = inner.get_meta("k").await.unwrap().unwrap();
        assert!(raw.starts_with(TEXT_PREFIX));
        assert_eq!(s.get_meta("k").await.unwrap().as_deref(), Some("next"));
    }

    #[tokio::test]
    async fn compare_and_set_meta_under_another_master_key_is_an_error() {
        let (inner, s) = sealed();
        s.set_meta("k", "a").await.unwrap();
        let other = SealedStore::new(inner, MasterKey::ephemeral());
        assert!(matches!(
            other.compare_and_set_meta("k", "a", "b").await,
            Err(StoreError::Sealed(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_compare_and_set_meta_has_one_winner() {
        let (_, s) = sealed();
        s.set_meta("k", "v0").await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..64 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.compare_and_set_meta("k", "v0", &format!("v{}", i + 1))
                    .await
                    .unwrap()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1);
        assert_ne!(s.get_meta("k").await.unwrap().as_deref(), Some("v0"));
    }
}
