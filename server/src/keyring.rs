//! Signing keys across instances.
//!
//! The key set lives in the store (meta `signing_keys`), so every instance on one store
//! signs and verifies with the same keys. `tessera-server keys rotate` adds a key with a
//! compare-and-set (two operators rotating at once cannot lose a key) and dates its
//! activation ([`StoredKey::created_at`]) [`JWKS_MAX_AGE`] plus one reload interval ahead:
//! the key is published in the JWKS at once but signs only after every JWKS cache and
//! every instance has seen it. Instances reload the set every `--keys-reload-interval`
//! seconds and, at most once per [`UNKNOWN_KID_RELOAD_EVERY`] seconds, when a token
//! names a `kid` they do not know — so no instance rejects a token another one signed.

use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::jwt::{AccessClaims, StoredKey, TokenError};
use crate::state::{load_keys, AppState, StartupError};
use crate::store::{SessionStore, StoreError};

/// The store meta key holding the key set (JSON list of [`StoredKey`]).
pub const KEYS_META: &str = "signing_keys";
/// `Cache-Control: max-age` of `GET /.well-known/jwks.json`, seconds.
pub const JWKS_MAX_AGE: i64 = 300;
/// Least time between two reloads caused by an unknown `kid`, seconds (a flood of forged
/// `kid`s costs the store one read per this period).
pub const UNKNOWN_KID_RELOAD_EVERY: i64 = 5;
/// Keys kept (published and accepted); a rotation drops the oldest beyond this.
pub const MAX_KEYS: usize = 3;

/// Why a rotation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// No key set yet, or it cannot be read.
    #[error("signing keys: {0}")]
    Invalid(String),
    /// A rotation is already waiting for its activation time.
    #[error("a new key ({kid}) is already published and starts signing at {active_at}; rotate again after that")]
    Pending {
        /// The pending key.
        kid: String,
        /// When it starts signing (Unix seconds).
        active_at: i64,
    },
    /// Other writers kept changing the key set.
    #[error("the key set kept changing under the rotation; try again")]
    Contended,
}

/// Adds a new signing key that starts signing `activate_after` seconds from `now`
/// (compare-and-set on the stored set); returns it. The oldest keys beyond
/// [`MAX_KEYS`] are dropped, so rotate no more often than the access-token lifetime.
///
/// # Errors
/// See [`KeyringError`].
pub async fn rotate(
    store: &dyn SessionStore,
    now: i64,
    activate_after: i64,
) -> Result<StoredKey, KeyringError> {
    for _ in 0..8 {
        let current = store
            .get_meta(KEYS_META)
            .await?
            .ok_or_else(|| KeyringError::Invalid("none yet: start the server once".into()))?;
        let mut keys: Vec<StoredKey> =
            serde_json::from_str(&current).map_err(|e| KeyringError::Invalid(e.to_string()))?;
        if let Some(p) = keys.iter().find(|k| k.created_at > now) {
            return Err(KeyringError::Pending {
                kid: p.kid.clone(),
                active_at: p.created_at,
            });
        }
        let newest = keys.iter().map(|k| k.created_at).max().unwrap_or(0);
        let key = StoredKey::generate((now + activate_after).max(newest + 1));
        keys.push(key.clone());
        keys.sort_by_key(|k| Reverse(k.created_at));
        keys.truncate(MAX_KEYS);
        let next =
            serde_json::to_string(&keys).map_err(|e| KeyringError::Invalid(e.to_string()))?;
        if store
            .compare_and_set_meta(KEYS_META, &current, &next)
            .await?
        {
            return Ok(key);
        }
    }
    Err(KeyringError::Contended)
}

impl AppState {
    /// Re-reads the key set from the store; `Ok(true)` when it changed.
    ///
    /// # Errors
    /// When the store fails or the stored set is unusable (the current set stays).
    pub async fn reload_keys(&self) -> Result<bool, StartupError> {
        let mut cfg = self.config().clone();
        cfg.rotate_signing_key = false;
        let fresh = load_keys(self.store().as_ref(), &cfg, self.now()).await?;
        let mut current = self.0.keys.write().unwrap_or_else(|e| e.into_inner());
        if current.jwks() == fresh.jwks() {
            return Ok(false);
        }
        *current = Arc::new(fresh);
        tracing::info!(keys = ?current, "signing keys reloaded");
        Ok(true)
    }

    /// Verifies an access token; a `kid` this instance does not know triggers one reload
    /// of the key set (at most once per [`UNKNOWN_KID_RELOAD_EVERY`] seconds) and a retry.
    ///
    /// # Errors
    /// The [`TokenError`] of the final check.
    pub async fn verify_access(&self, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
        match self.keys().verify(token, now) {
            Err(TokenError::UnknownKey) => {
                let last = self.0.kid_reload_at.load(Ordering::Relaxed);
                let due = last == i64::MIN || now - last >= UNKNOWN_KID_RELOAD_EVERY;
                if !due
                    || self
                        .0
                        .kid_reload_at
                        .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                        .is_err()
                {
                    return Err(TokenError::UnknownKey);
                }
                match self.reload_keys().await {
                    Ok(true) => self.keys().verify(token, now),
                    Ok(false) => Err(TokenError::UnknownKey),
                    Err(e) => {
                        tracing::warn!(error = %e, "key reload failed");
                        Err(TokenError::UnknownKey)
                    }
                }
            }
            other => other,
        }
    }
}

/// Reloads the key set every `every` (a background task; abort it to stop).
pub fn spawn_key_reload(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; the keys were just loaded
        loop {
            tick.tick().await;
            if let Err(e) = state.reload_keys().await {
                tracing::warn!(error = %e, "periodic key reload failed");
            }
        }
    })
}
