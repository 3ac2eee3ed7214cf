//! Argon2id password hashing. Production defaults follow the OWASP Password Storage Cheat
//! Sheet (m = 19 MiB, t = 2, p = 1); tests pass cheaper parameters through the config.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Hashes and verifies passwords with one fixed Argon2id parameter set.
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    /// A hash of a random password, verified against when the user does not exist so that
    /// "unknown user" and "wrong password" take the same time.
    dummy: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with memory `m_kib` KiB, `t` iterations, `p` lanes.
    ///
    /// # Errors
    /// When Argon2 rejects the parameters (for example `m_kib < 8 * p`).
    pub fn new(m_kib: u32, t: u32, p: u32) -> Result<Self, String> {
        let params = Params::new(m_kib, t, p, None).map_err(|e| e.to_string())?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut me = PasswordHasher {
            argon,
            dummy: String::new(),
        };
        me.dummy = me.hash(&crate::secret::random_token())?;
        Ok(me)
    }

    /// PHC-string Argon2id hash of `password` with a fresh random salt.
    ///
    /// # Errors
    /// Only on an Argon2 internal failure.
    pub fn hash(&self, password: &str) -> Result<String, String> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    }

    /// Whether `phc` was made with other parameters (algorithm, version, m, t, p) than
    /// this hasher's, so it should be re-hashed after the next successful verification.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        let p = self.argon.params();
        let same = parsed.algorithm.as_str() == "argon2id"
            && parsed.version == Some(0x13)
            && Params::try_from(&parsed).is_ok_and(|q| {
                q.m_cost() == p.m_cost() && q.t_cost() == p.t_cost() && q.p_cost() == p.p_cost()
            });
        !same
    }

    /// Whether `password` matches `phc` (`None` = unknown user: burns the same time on a
    /// dummy hash and returns `false`). The parameters stored in `phc` are honoured.
    pub fn verify(&self, password: &str, phc: Option<&str>) -> bool {
        let (phc, real) = match phc {
            Some(p) => (p, true),
            None => (self.dummy.as_str(), false),
        };
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let ok = self
            .argon
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && real
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_roundtrip_and_unknown_user() {
        let h = PasswordHasher::new(64, 1, 1).unwrap();
        let phc = h.hash("pw").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("pw", Some(&phc)));
        assert!(!h.verify("nope", Some(&phc)));
        assert!(!h.verify("pw", None));
        assert!(!h.verify("pw", Some("garbage")));
    }
}

/// The server is saturated: the hashing queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing queue full")]
pub struct Busy;

/// Argon2 work bounded by a semaphore sized to the cores, with a bounded queue: each
/// verification reserves ~`m` KiB, so unbounded concurrency is a memory and CPU exhaustion
/// vector. When `concurrency + queue` jobs are already admitted a new one is refused at
/// once ([`Busy`]), which the routes answer with 503 and `Retry-After`.
#[derive(Debug, Clone)]
pub struct HashPool {
    hasher: PasswordHasher,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    admitted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    capacity: usize,
}

struct Admission(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl HashPool {
    /// `concurrency` parallel hashes (0 = the number of cores), `queue` more may wait.
    pub fn new(hasher: PasswordHasher, concurrency: usize, queue: usize) -> Self {
        let concurrency = if concurrency == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            concurrency
        };
        HashPool {
            hasher,
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency)),
            admitted: std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            capacity: concurrency + queue,
        }
    }

    /// The hasher (for work outside the request path, e.g. administrative commands).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Runs `job` with the hasher on the blocking pool once a slot is free.
    ///
    /// # Errors
    /// [`Busy`] at once when the queue is full (or the job panicked).
    pub async fn run<R, F>(&self, job: F) -> Result<R, Busy>
    where
        R: Send + 'static,
        F: FnOnce(&PasswordHasher) -> R + Send + 'static,
    {
        use std::sync::atomic::Ordering;
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let _admission = Admission(self.admitted.clone());
        if before >= self.capacity {
            return Err(Busy);
        }
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Busy)?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || job(&hasher))
            .await
            .map_err(|_| Busy)
    }
}
