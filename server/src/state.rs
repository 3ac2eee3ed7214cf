//! Shared application state: configuration, store, signing keys, clock, hasher, limiters.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::jwt::{KeySet, StoredKey};
use crate::keyring::{KEYS_META, MAX_KEYS};
use crate::master_key::MasterKey;
use crate::password::PasswordHasher;
use crate::policy::Policy;
use crate::store::sealed::SealedStore;
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
    /// A TOTP secret was refused (too short, not base32).
    #[error("totp: {0}")]
    Totp(#[from] crate::totp::TotpError),
    /// The master key is missing, unreadable, or does not open this store's sealed values.
    #[error("master key: {0}")]
    MasterKey(String),
}

/// Finds the master key the configuration names (see `--master-key-file`).
///
/// # Errors
/// [`StartupError::MasterKey`] when the file is missing or malformed, or when a Redis
/// store is configured without one.
pub fn resolve_master_key(cfg: &Config) -> Result<MasterKey, StartupError> {
    let mk = |e: crate::master_key::MasterKeyError| StartupError::MasterKey(e.to_string());
    if let Some(path) = &cfg.master_key_file {
        if cfg.demo {
            let (key, created) = MasterKey::load_or_create(path).map_err(mk)?;
            if created {
                tracing::info!(file = %path.display(), "demo mode: created a master key");
            }
            return Ok(key);
        }
        return MasterKey::load(path).map_err(mk);
    }
    if cfg.store == "memory://" || cfg.store == "memory" {
        return Ok(MasterKey::ephemeral());
    }
    if let Some(db) = cfg.store.strip_prefix("sqlite://") {
        let path = std::path::PathBuf::from(format!("{db}.key"));
        let (key, created) = MasterKey::load_or_create(&path).map_err(mk)?;
        if !cfg.demo {
            tracing::warn!(
                file = %path.display(),
                created,
                "master key kept beside the database: a copy of that directory holds both; \
                 keep the key elsewhere with --master-key-file / TESSERA_MASTER_KEY_FILE"
            );
        }
        return Ok(key);
    }
    Err(StartupError::MasterKey(format!(
        "--master-key-file / TESSERA_MASTER_KEY_FILE is required with the store {:?}: every \
         instance must seal and open secrets with the same key (32 random bytes, base64 or \
         hex; e.g. `head -c 32 /dev/urandom | base64 > master.key; chmod 600 master.key`)",
        cfg.store
    )))
}

/// The demo users' password.
pub const DEMO_PASSWORD: &str = "tessera-demo";
/// Bob's TOTP secret (160 bits, base32, SHA-1, 6 digits, 30 s).
pub const DEMO_TOTP_SECRET: &str = "4MEMZDELGP554FRQ6OH4LD7PAJIEUSHX";

const TOKEN_KEY_META: &str = "refresh_token_key";

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub config: Config,
    pub store: Arc<dyn SessionStore>,
    pub keys: std::sync::RwLock<Arc<KeySet>>,
    /// When an unknown `kid` last caused a key reload (rate limit, Unix seconds).
    pub kid_reload_at: std::sync::atomic::AtomicI64,
    pub token_key: crate::secret::TokenKey,
    pub master_key: MasterKey,
    pub clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    pub policy: Policy,
    pub metrics: crate::metrics::Metrics,
    pub dpop: crate::dpop::Checker,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.0.store.kind())
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

/// The refresh-token tag key: created once, shared by every instance through the store.
///
/// # Errors
/// When the store fails or holds a malformed key.
pub async fn load_token_key(
    store: &dyn SessionStore,
) -> Result<crate::secret::TokenKey, StartupError> {
    let fresh = crate::secret::b64(&crate::secret::random_bytes());
    let stored = store.put_meta_if_absent(TOKEN_KEY_META, &fresh).await?;
    crate::secret::unb64(&stored)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(crate::secret::TokenKey::from_bytes)
        .ok_or_else(|| StartupError::Store(StoreError::Corrupt("refresh token key".into())))
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
    if !crate::store::redis::is_redis_url(&config.store) || config.store.contains("+cluster://") {
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
    /// [`ManualClock`](crate::clock::ManualClock) and a fresh store here). The store is
    /// wrapped in a [`SealedStore`] under the master key [`resolve_master_key`] finds.
    ///
    /// # Errors
    /// On invalid configuration, an unreadable store, or a master key that does not open
    /// the store's sealed values ([`StartupError::MasterKey`]).
    pub async fn new(
        config: Config,
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        config.validate().map_err(StartupError::Config)?;
        let master_key = resolve_master_key(&config)?;
        Self::with_master_key(config, store, clock, master_key).await
    }

    /// [`new`](Self::new) with an explicit master key.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub async fn with_master_key(
        config: Config,
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
        master_key: MasterKey,
    ) -> Result<Self, StartupError> {
        config.validate().map_err(StartupError::Config)?;
        let store: Arc<dyn SessionStore> = Arc::new(SealedStore::new(store, master_key.clone()));
        let wrong_key = |e: StartupError| match e {
            StartupError::Store(StoreError::Sealed(what)) => StartupError::MasterKey(format!(
                "the master key does not open this store's sealed data ({what}): a different \
                 --master-key-file / TESSERA_MASTER_KEY_FILE than the one this store was \
                 created with?"
            )),
            other => other,
        };
        let hasher = PasswordHasher::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
        )
        .map_err(|e| StartupError::Config(format!("argon2 parameters: {e}")))?;
        let keys = load_keys(store.as_ref(), &config, clock.now())
            .await
            .map_err(wrong_key)?;
        let policy = Policy::new(&config, hasher.clone())
            .await
            .map_err(StartupError::Config)?;
        let token_key = load_token_key(store.as_ref()).await.map_err(wrong_key)?;
        let dpop = crate::dpop::Checker::new(&config, &master_key);
        let state = AppState(Arc::new(Inner {
            dpop,
            policy,
            config,
            store,
            keys: std::sync::RwLock::new(Arc::new(keys)),
            kid_reload_at: std::sync::atomic::AtomicI64::new(i64::MIN),
            token_key,
            master_key,
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
    /// [`StartupError::Totp`] for a TOTP secret under 160 bits or not base32; otherwise
    /// when hashing or the store fails.
    pub async fn add_user(
        &self,
        username: &str,
        password: &str,
        totp: Option<&str>,
    ) -> Result<(), StartupError> {
        if let Some(secret) = totp {
            crate::totp::Totp::from_base32(secret)?;
        }
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
    /// The master key (seals grace successors; the store seals the rest).
    pub fn master_key(&self) -> &MasterKey {
        &self.0.master_key
    }
    /// The key that tags refresh tokens.
    pub fn token_key(&self) -> &crate::secret::TokenKey {
        &self.0.token_key
    }
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }
    /// The HTTP-side security policy (throttle, hashing pool, proxies, introspection).
    pub fn policy(&self) -> &Policy {
        &self.0.policy
    }
    /// The DPoP proof checker (`--dpop`, `--dpop-nonce`, `--dpop-iat-window`).
    pub fn dpop(&self) -> &crate::dpop::Checker {
        &self.0.dpop
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
