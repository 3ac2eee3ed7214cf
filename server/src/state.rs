//! Shared application state: configuration, store, signing keys, clock, hasher, limiters.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::jwt::{KeySet, StoredKey};
use crate::password::PasswordHasher;
use crate::ratelimit::RateLimiter;
use crate::store::{SessionStore, StoreError, UserRecord};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// An invalid setting.
    #[error("configuration: {0}")]
    Config(String),
    /// The store could not be opened or read.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The demo users' password.
pub const DEMO_PASSWORD: &str = "tessera-demo";
/// Bob's TOTP secret (base32, SHA-1, 6 digits, 30 s).
pub const DEMO_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXP";

const KEYS_META: &str = "signing_keys";
const MAX_KEYS: usize = 3;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub config: Config,
    pub store: Arc<dyn SessionStore>,
    pub keys: std::sync::RwLock<Arc<KeySet>>,
    /// When an unknown `kid` last caused a key reload (rate limit, Unix seconds).
    pub kid_reload_at: std::sync::atomic::AtomicI64,
    pub clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    pub address_limiter: RateLimiter,
    pub account_limiter: RateLimiter,
    pub metrics: crate::metrics::Metrics,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.0.store.kind())
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

pub(crate) async fn load_keys(
    store: &dyn SessionStore,
    cfg: &Config,
    now: i64,
) -> Result<KeySet, StartupError> {
    let parse = |s: &str| -> Result<Vec<StoredKey>, StartupError> {
        serde_json::from_str(s)
            .map_err(|e| StartupError::Store(StoreError::Corrupt(format!("signing keys: {e}"))))
    };
    let mut keys = match store.get_meta(KEYS_META).await? {
        Some(s) => parse(&s)?,
        None => {
            let fresh = serde_json::to_string(&vec![StoredKey::generate(now)])
                .map_err(|e| StartupError::Config(e.to_string()))?;
            // if another instance raced us, its key wins and we use that
            parse(&store.put_meta_if_absent(KEYS_META, &fresh).await?)?
        }
    };
    if cfg.rotate_signing_key {
        keys.push(StoredKey::generate(
            now.max(keys.iter().map(|k| k.created_at + 1).max().unwrap_or(0)),
        ));
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        keys.truncate(MAX_KEYS);
        let s = serde_json::to_string(&keys).map_err(|e| StartupError::Config(e.to_string()))?;
        store.set_meta(KEYS_META, &s).await?;
        tracing::info!(kid = %keys[0].kid, "rotated signing key");
    }
    KeySet::new(keys, &cfg.issuer, &cfg.audience, cfg.jwt_leeway).map_err(StartupError::Config)
}

/// `--redis-wait-replicas N`: a Redis store whose session-changing writes wait for N replicas.
async fn open_redis_waiting(config: &Config) -> Result<Arc<dyn SessionStore>, StartupError> {
    use crate::store::redis::{RedisStore, ReplicaWait};
    if !(config.store.starts_with("redis://")
        || config.store.starts_with("rediss://")
        || config.store.starts_with("redis+sentinel://"))
    {
        return Err(StartupError::Config(
            "--redis-wait-replicas needs a redis:// or redis+sentinel:// store".into(),
        ));
    }
    let store = RedisStore::connect(&config.store, "tessera:")
        .await?
        .with_replica_wait(ReplicaWait {
            replicas: config.redis_wait_replicas,
            timeout_ms: config.redis_wait_ms,
        })?;
    Ok(Arc::new(store))
}

impl AppState {
    /// Builds the state with an explicit store and clock (tests inject a
    /// [`ManualClock`](crate::clock::ManualClock) and a fresh store here).
    ///
    /// # Errors
    /// On invalid configuration or an unreadable store.
    pub async fn new(
        config: Config,
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        config.validate().map_err(StartupError::Config)?;
        let hasher = PasswordHasher::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
        )
        .map_err(|e| StartupError::Config(format!("argon2 parameters: {e}")))?;
        let keys = load_keys(store.as_ref(), &config, clock.now()).await?;
        let state = AppState(Arc::new(Inner {
            address_limiter: RateLimiter::new(config.address_limit, config.rate_window),
            account_limiter: RateLimiter::new(config.account_limit, config.rate_window),
            config,
            store,
            keys: std::sync::RwLock::new(Arc::new(keys)),
            kid_reload_at: std::sync::atomic::AtomicI64::new(i64::MIN),
            clock,
            hasher,
            metrics: crate::metrics::Metrics::new(),
        }));
        if state.0.config.demo {
            state.seed_demo_users().await?;
        }
        Ok(state)
    }

    /// Opens the store named in `config.store` and uses the system clock.
    ///
    /// # Errors
    /// On invalid configuration or an unreachable store.
    pub async fn from_config(config: Config) -> Result<Self, StartupError> {
        let store = if config.redis_wait_replicas > 0 {
            open_redis_waiting(&config).await?
        } else {
            crate::store::open(&config.store).await?
        };
        Self::new(config, store, Arc::new(SystemClock)).await
    }

    /// Creates (or resets) `alice` and `bob` (TOTP) with password `tessera-demo`.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn seed_demo_users(&self) -> Result<(), StartupError> {
        for (name, totp) in [("alice", None), ("bob", Some(DEMO_TOTP_SECRET))] {
            self.add_user(name, DEMO_PASSWORD, totp).await?;
        }
        tracing::info!("demo users seeded: alice, bob (TOTP)");
        Ok(())
    }

    /// Creates or replaces a user; the id is derived from the name so it is stable.
    ///
    /// # Errors
    /// When hashing or the store fails.
    pub async fn add_user(
        &self,
        username: &str,
        password: &str,
        totp: Option<&str>,
    ) -> Result<(), StartupError> {
        let hasher = self.0.hasher.clone();
        let pw = password.to_string();
        let hash = tokio::task::spawn_blocking(move || hasher.hash(&pw))
            .await
            .map_err(|e| StartupError::Config(e.to_string()))?
            .map_err(StartupError::Config)?;
        self.0
            .store
            .upsert_user(&UserRecord {
                id: format!("user-{username}"),
                username: username.to_string(),
                password_hash: hash,
                totp_secret: totp.map(str::to_string),
            })
            .await?;
        Ok(())
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.0.store
    }
    /// The signing keys (the current set: instances reload it, see [`crate::keyring`]).
    pub fn keys(&self) -> Arc<KeySet> {
        self.0
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }
    /// The metrics this instance records.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.0.metrics
    }
    /// Now, per the injected clock.
    pub fn now(&self) -> i64 {
        self.0.clock.now()
    }
}
