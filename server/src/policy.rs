//! The HTTP-side security policy built once at start from the configuration: login
//! throttle, bounded password hashing, trusted proxies, the introspection credential and
//! the logout `Clear-Site-Data` value. Held by [`AppState`](crate::AppState).

use axum::http::HeaderValue;
use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::password::{HashPool, PasswordHasher};
use crate::throttle::Throttle;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Login / TOTP throttle.
    pub throttle: Throttle,
    /// Argon2 behind a semaphore with a bounded queue.
    pub hashes: HashPool,
    /// `--trusted-proxies`.
    pub proxies: Vec<IpNet>,
    introspection: Option<[u8; 32]>,
    /// `Clear-Site-Data` sent by logout (`None`: not sent).
    pub clear_site_data: Option<HeaderValue>,
}

impl Policy {
    /// Builds the policy.
    ///
    /// # Errors
    /// A message naming the setting that is unusable (or the Redis throttle failing to connect).
    pub async fn new(cfg: &Config, hasher: PasswordHasher) -> Result<Self, String> {
        let throttle = Throttle::for_store(cfg)
            .await
            .map_err(|e| format!("login throttle: {e}"))?;
        let proxies = crate::net::parse_proxies(&cfg.trusted_proxies)?;
        let clear_site_data = cfg
            .clear_site_data_header()?
            .map(|v| HeaderValue::from_str(&v).map_err(|e| e.to_string()))
            .transpose()?;
        let introspection = cfg
            .introspection_secret
            .as_deref()
            .map(|s| Sha256::digest(s.as_bytes()).into());
        if introspection.is_none() {
            tracing::warn!(
                "POST /auth/introspect is disabled (401 to everyone): set --introspection-secret \
                 or TESSERA_INTROSPECTION_SECRET (32+ characters) and have resource servers send \
                 it as `Authorization: Bearer <secret>`"
            );
        }
        Ok(Policy {
            throttle,
            hashes: HashPool::new(hasher, cfg.argon2_concurrency, cfg.argon2_queue),
            proxies,
            introspection,
            clear_site_data,
        })
    }

    /// Whether `presented` is the introspection secret (compared as SHA-256 digests, so
    /// the comparison's timing says nothing about the secret). Always `false` when none is
    /// configured.
    pub fn introspection_allowed(&self, presented: Option<&str>) -> bool {
        match (self.introspection, presented) {
            (Some(expected), Some(p)) => {
                let got: [u8; 32] = Sha256::digest(p.as_bytes()).into();
                got.iter()
                    .zip(expected.iter())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
            }
            _ => false,
        }
    }
}
