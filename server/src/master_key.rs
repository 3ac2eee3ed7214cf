//! The key-encryption key: secrets at rest are sealed under a master key that never enters
//! the store, so a copy of the database (a backup, a stolen file, a Redis dump) yields no
//! signing seed, vault key or TOTP secret, and no usable refresh token.
//!
//! The master key is 32 random bytes in a file (`--master-key-file` /
//! `TESSERA_MASTER_KEY_FILE`; base64 or hex text). Subkeys come from HKDF-SHA-256:
//! - *wrap*: XChaCha20-Poly1305 (random 192-bit nonce per value) for signing seeds, vault
//!   keys and TOTP secrets, the associated data naming what the value is and whose (so a
//!   sealed value moved to another row does not open);
//! - *grace*: the successor of a rotated refresh token is sealed with ChaCha20-Poly1305 under
//!   `HKDF(grace, salt = predecessor secret)`, so it opens only with the master key *and*
//!   the predecessor token.

use std::io::Write as _;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;

/// Why a master key could not be loaded or a sealed value could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MasterKeyError {
    /// The key file could not be read or written.
    #[error("master key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file does not hold 32 bytes as base64 or hex.
    #[error("master key file {0}: expected 32 bytes as base64 or hex text")]
    Format(String),
}

/// Length of a sealed value's overhead (nonce + tag) under the wrap key.
pub const WRAP_OVERHEAD: usize = 24 + 16;

/// The key-encryption key and its subkeys. Never printed, never stored beside the data.
#[derive(Clone)]
pub struct MasterKey {
    wrap: [u8; 32],
    grace: [u8; 32],
    nonce: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

fn hkdf32(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // 32 bytes is far below HKDF-SHA-256's limit (255 × 32), so expand cannot fail
    let _ = Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, &mut out);
    out
}

/// Parses the text of a key file: 64 hex digits, or base64 (standard or URL-safe, padding
/// optional) of exactly 32 bytes.
pub(crate) fn parse_key(text: &str) -> Option<[u8; 32]> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let t = text.trim();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = [0u8; 32];
        for (i, chunk) in t.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(chunk).ok()?;
            out[i] = u8::from_str_radix(s, 16).ok()?;
        }
        return Some(out);
    }
    [URL_SAFE_NO_PAD, URL_SAFE, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|e| e.decode(t).ok())
        .and_then(|v| v.try_into().ok())
}

impl MasterKey {
    /// From the 32 raw bytes of a master key.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        MasterKey {
            wrap: hkdf32(&key, b"tessera/master/v1", b"wrap"),
            grace: hkdf32(&key, b"tessera/master/v1", b"grace"),
            nonce: hkdf32(&key, b"tessera/master/v1", b"dpop-nonce"),
        }
    }

    /// The key DPoP server nonces are derived from ([`crate::dpop`]): every instance with
    /// the same master key issues and accepts the same nonces.
    pub fn dpop_nonce_key(&self) -> &[u8; 32] {
        &self.nonce
    }

    /// A random key that lives only in this process (for the `memory://` store and tests).
    pub fn ephemeral() -> Self {
        Self::from_bytes(crate::secret::random_bytes())
    }

    /// Reads a key file. A file readable by group or others is narrowed to `0600` with a
    /// warning.
    ///
    /// # Errors
    /// When the file cannot be read or does not hold a key.
    pub fn load(path: &Path) -> Result<Self, MasterKeyError> {
        let shown = path.display().to_string();
        crate::fsmode::restrict_to_owner(path).map_err(|source| MasterKeyError::Io {
            path: shown.clone(),
            source,
        })?;
        let text = std::fs::read_to_string(path).map_err(|source| MasterKeyError::Io {
            path: shown.clone(),
            source,
        })?;
        parse_key(&text)
            .map(Self::from_bytes)
            .ok_or(MasterKeyError::Format(shown))
    }

    /// Reads the key file, or creates it (mode `0600`, 32 random bytes as base64url text)
    /// when it does not exist. Returns the key and whether it was created.
    ///
    /// # Errors
    /// When the file cannot be read, created or parsed.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), MasterKeyError> {
        let shown = path.display().to_string();
        let raw = crate::secret::random_bytes();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        match opts.open(path) {
            Ok(mut f) => {
                f.write_all(format!("{}\n", crate::secret::b64(&raw)).as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|source| MasterKeyError::Io {
                        path: shown,
                        source,
                    })?;
                Ok((Self::from_bytes(raw), true))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((Self::load(path)?, false))
            }
            Err(source) => Err(MasterKeyError::Io {
                path: shown,
                source,
            }),
        }
    }

    fn aad(label: &str, context: &str) -> Vec<u8> {
        let mut a = Vec::with_capacity(16 + label.len() + context.len());
        a.extend_from_slice(b"tessera/wrap/v1\0");
        a.extend_from_slice(label.as_bytes());
        a.push(0);
        a.extend_from_slice(context.as_bytes());
        a
    }

    /// Seals `plaintext` as the `label` value of `context` (e.g. `"vault"`, a session id):
    /// `nonce (24) || ciphertext || tag (16)`.
    pub fn seal(&self, label: &str, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(&self.wrap.into());
        let aad = Self::aad(label, context);
        let ct = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap_or_default(); // only fails for messages over 256 GiB
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    /// Opens what [`seal`](Self::seal) produced for the same `label` and `context`;
    /// `None` when it was sealed under another key, for another place, or altered.
    pub fn open(&self, label: &str, context: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < WRAP_OVERHEAD {
            return None;
        }
        let (nonce, ct) = sealed.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().ok()?;
        let cipher = XChaCha20Poly1305::new(&self.wrap.into());
        let aad = Self::aad(label, context);
        cipher
            .decrypt(&nonce.into(), Payload { msg: ct, aad: &aad })
            .ok()
    }

    fn grace_cipher(&self, predecessor: &[u8; 32]) -> ChaCha20Poly1305 {
        let k = hkdf32(&self.grace, predecessor, b"tessera/grace/v1");
        ChaCha20Poly1305::new(&k.into())
    }

    /// Seals the successor secret of a rotated refresh token so that only a holder of the
    /// predecessor secret *and* of this master key can open it:
    /// `nonce (12) || ciphertext (32) || tag (16)`.
    pub fn seal_successor(&self, predecessor: &[u8; 32], successor: &[u8; 32]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .grace_cipher(predecessor)
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: successor,
                    aad: b"tessera/grace/v1",
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    /// Opens [`seal_successor`](Self::seal_successor)'s output; `None` for any other
    /// predecessor, key or an altered value.
    pub fn open_successor(&self, predecessor: &[u8; 32], sealed: &[u8]) -> Option<[u8; 32]> {
        if sealed.len() != 12 + 32 + 16 {
            return None;
        }
        let (nonce, ct) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        self.grace_cipher(predecessor)
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: ct,
                    aad: b"tessera/grace/v1",
                },
            )
            .ok()?
            .try_into()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::random_bytes;

    #[test]
    fn sealed_values_open_only_with_the_same_key_label_and_context() {
        let k = MasterKey::ephemeral();
        let sealed = k.seal("vault", "sid-1", b"secret bytes");
        assert_eq!(sealed.len(), 12 + WRAP_OVERHEAD);
        assert_eq!(
            k.open("vault", "sid-1", &sealed).as_deref(),
            Some(&b"secret bytes"[..])
        );
        assert_eq!(
            k.open("vault", "sid-2", &sealed),
            None,
            "moved to another row"
        );
        assert_eq!(
            k.open("totp", "sid-1", &sealed),
            None,
            "another kind of value"
        );
        assert_eq!(MasterKey::ephemeral().open("vault", "sid-1", &sealed), None);
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert_eq!(k.open("vault", "sid-1", &t), None, "flipped bit at {i}");
        }
        assert_eq!(k.open("vault", "sid-1", &sealed[..10]), None);
        assert_ne!(
            k.seal("vault", "sid-1", b"x"),
            k.seal("vault", "sid-1", b"x"),
            "fresh nonce"
        );
    }

    #[test]
    fn grace_successor_needs_master_key_and_predecessor() {
        let k = MasterKey::ephemeral();
        let (p, s) = (random_bytes(), random_bytes());
        let sealed = k.seal_successor(&p, &s);
        assert_eq!(k.open_successor(&p, &sealed), Some(s));
        assert_eq!(k.open_successor(&random_bytes(), &sealed), None);
        assert_eq!(MasterKey::ephemeral().open_successor(&p, &sealed), None);
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x80;
            assert_eq!(k.open_successor(&p, &t), None, "flipped bit at {i}");
        }
    }

    #[test]
    fn key_files_parse_hex_and_base64_only_at_32_bytes() {
        let raw = random_bytes();
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let k1 = parse_key(&format!("{hex}\n")).expect("hex");
        assert_eq!(k1, raw);
        assert_eq!(parse_key(&crate::secret::b64(&raw)), Some(raw));
        assert_eq!(parse_key("c2hvcnQ="), None);
        assert_eq!(parse_key(""), None);
        assert_eq!(parse_key(&"zz".repeat(32)), None);
    }
}
