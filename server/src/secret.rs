//! Random secrets and their hashes. Session IDs, refresh tokens and MFA tokens are 256-bit
//! CSPRNG values; the store only ever sees `SHA-256` hashes of the bearer secrets, and logs
//! only a short prefix of a hash.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 32 bytes from the operating system's CSPRNG.
pub fn random_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// A fresh 256-bit secret, base64url without padding (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes())
}

/// base64url (no padding) encoding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url (no padding) decoding; `None` on malformed input.
pub fn unb64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.as_bytes()).ok()
}

/// `SHA-256(secret)` as base64url: the only form a bearer secret is stored in.
pub fn hash_secret(secret: &str) -> String {
    b64(&Sha256::digest(secret.as_bytes()))
}

/// A short, non-reversible tag for logs: 8 hex characters of `SHA-256(value)`.
pub fn log_tag(value: &str) -> String {
    let d = Sha256::digest(value.as_bytes());
    d.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The server's key for refresh-token integrity tags (HMAC-SHA-256). Shared by every
/// instance through the store (see [`crate::state::AppState`]).
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// From 32 key bytes.
    pub fn from_bytes(k: [u8; 32]) -> Self {
        TokenKey(k)
    }

    fn tag(&self, family: &[u8; 16], secret: &[u8; 32]) -> [u8; 16] {
        use hmac::Mac as _;
        let mut out = [0u8; 16];
        if let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(&self.0) {
            mac.update(b"tessera/refresh/v1");
            mac.update(family);
            mac.update(secret);
            out.copy_from_slice(&mac.finalize().into_bytes()[..16]);
        }
        out
    }
}

/// A refresh token: a 128-bit family id, constant across the rotations of one session, a
/// fresh 256-bit secret per rotation, and a 128-bit integrity tag (HMAC under the server's
/// [`TokenKey`]). The family id lets the server recognise any genuine token of a session —
/// and so detect reuse of an old one — without keeping one record per rotation; the tag
/// makes a token the server never issued (a mutated or made-up one) merely unknown, so it
/// cannot be used to end someone's session. The family id is as secret as the token
/// (never logged, never in an access token). Wire form: base64url (no padding) of
/// `family || secret || tag`, 86 characters.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    family: [u8; 16],
    secret: [u8; 32],
    tag: [u8; 16],
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken(..)")
    }
}

impl RefreshToken {
    /// Length of the wire form.
    pub const ENCODED_LEN: usize = 86;

    fn make(key: &TokenKey, family: [u8; 16], secret: [u8; 32]) -> Self {
        RefreshToken {
            tag: key.tag(&family, &secret),
            family,
            secret,
        }
    }

    /// The first token of a new family.
    pub fn generate(key: &TokenKey) -> Self {
        let mut family = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut family);
        Self::make(key, family, random_bytes())
    }

    /// The next token of the same family (a fresh secret).
    pub fn successor(&self, key: &TokenKey) -> Self {
        Self::make(key, self.family, random_bytes())
    }

    /// The same family with a given secret (opening a sealed successor).
    pub fn with_secret(&self, key: &TokenKey, secret: [u8; 32]) -> Self {
        Self::make(key, self.family, secret)
    }

    /// The 256-bit secret part.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The wire form.
    pub fn encode(&self) -> String {
        let mut b = [0u8; 64];
        b[..16].copy_from_slice(&self.family);
        b[16..48].copy_from_slice(&self.secret);
        b[48..].copy_from_slice(&self.tag);
        b64(&b)
    }

    /// Parses the wire form and checks its tag; `None` for anything the server did not
    /// issue under `key`.
    pub fn decode(token: &str, key: &TokenKey) -> Option<Self> {
        if token.len() != Self::ENCODED_LEN {
            return None;
        }
        let b: [u8; 64] = unb64(token)?.try_into().ok()?;
        let mut family = [0u8; 16];
        family.copy_from_slice(&b[..16]);
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&b[16..48]);
        let t = Self::make(key, family, secret);
        // constant-time tag comparison
        let diff = t
            .tag
            .iter()
            .zip(&b[48..])
            .fold(0u8, |a, (x, y)| a | (x ^ y));
        (diff == 0).then_some(t)
    }

    /// What the store keeps of it: hashes only.
    pub fn to_ref(&self) -> crate::store::TokenRef {
        let mut h = Sha256::new();
        h.update(b"tessera/family/v1");
        h.update(self.family);
        crate::store::TokenRef {
            family: b64(&h.finalize()),
            hash: hash_secret(&self.encode()),
        }
    }
}

/// What the grace rule compares: a hash of the client's user agent and network (see
/// `routes::network_of`). Only the client that rotated a token may get its successor again.
pub fn client_binding(user_agent: &str, network: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"tessera/client/v1\0");
    h.update(user_agent.as_bytes());
    h.update([0]);
    h.update(network.as_bytes());
    b64(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let a = random_token();
        let b = random_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        let k = TokenKey::from_bytes(random_bytes());
        let t = RefreshToken::generate(&k);
        let enc = t.encode();
        assert_eq!(enc.len(), RefreshToken::ENCODED_LEN);
        assert_eq!(RefreshToken::decode(&enc, &k), Some(t.clone()));
        assert!(RefreshToken::decode("short", &k).is_none());
        assert!(RefreshToken::decode(&"!".repeat(86), &k).is_none());
        assert!(
            RefreshToken::decode(&random_token(), &k).is_none(),
            "old 43-char shape"
        );
        assert!(
            RefreshToken::decode(&enc, &TokenKey::from_bytes(random_bytes())).is_none(),
            "another server's key"
        );
        // any flipped bit of family, secret or tag: not a token this server issued
        let raw = unb64(&enc).unwrap_or_default();
        for i in 0..raw.len() {
            let mut m = raw.clone();
            m[i] ^= 1;
            assert!(
                RefreshToken::decode(&b64(&m), &k).is_none(),
                "bit flip at byte {i}"
            );
        }
        let next = t.successor(&k);
        assert_eq!(next.to_ref().family, t.to_ref().family, "one family");
        assert_ne!(next.to_ref().hash, t.to_ref().hash);
        assert_ne!(
            RefreshToken::generate(&k).to_ref().family,
            t.to_ref().family
        );
    }

    #[test]
    fn client_binding_separates_agent_and_network() {
        assert_eq!(
            client_binding("UA", "10.0.0.0/24"),
            client_binding("UA", "10.0.0.0/24")
        );
        assert_ne!(
            client_binding("UA", "10.0.0.0/24"),
            client_binding("UA", "10.0.1.0/24")
        );
        assert_ne!(
            client_binding("UA2", "10.0.0.0/24"),
            client_binding("UA", "10.0.0.0/24")
        );
        assert_ne!(client_binding("a", "bc"), client_binding("ab", "c"));
    }

    #[test]
    fn hash_is_sha256_base64url() {
        // SHA-256("abc") = ba7816bf...
        assert_eq!(
            hash_secret("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        assert_eq!(log_tag("abc"), "ba7816bf");
    }
}
