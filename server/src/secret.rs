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

/// A refresh token is 32 random bytes; returns them if `token` has that shape.
pub fn decode_token(token: &str) -> Option<[u8; 32]> {
    if token.len() != 43 {
        return None;
    }
    unb64(token)?.try_into().ok()
}

/// One-time pad that lets the server hand the already-issued successor of a refresh token
/// back to a client that lost the response (the grace rule) without storing the successor
/// in the clear: `sealed = successor XOR SHA-256("tessera/grace/v1" || predecessor)`.
/// Only a holder of the raw predecessor can open it.
pub fn seal_successor(predecessor: &[u8; 32], successor: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tessera/grace/v1");
    h.update(predecessor);
    let pad = h.finalize();
    let mut out = [0u8; 32];
    for i in 0..32 {
        out[i] = successor[i] ^ pad[i];
    }
    out
}

/// Inverse of [`seal_successor`] (XOR is its own inverse).
pub fn open_successor(predecessor: &[u8; 32], sealed: &[u8; 32]) -> [u8; 32] {
    seal_successor(predecessor, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let a = random_token();
        let b = random_token();
        assert_ne!(a, b);
        assert_eq!(decode_token(&a).map(|x| x.len()), Some(32));
        assert!(decode_token("short").is_none());
        assert!(decode_token(&"!".repeat(43)).is_none());
    }

    #[test]
    fn sealed_successor_opens_only_with_predecessor() {
        let p = random_bytes();
        let s = random_bytes();
        let sealed = seal_successor(&p, &s);
        assert_ne!(sealed, s);
        assert_eq!(open_successor(&p, &sealed), s);
        assert_ne!(open_successor(&random_bytes(), &sealed), s);
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
