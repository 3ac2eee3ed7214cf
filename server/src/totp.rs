//! RFC 6238 TOTP (HMAC-SHA-1, 6 digits, 30-second steps) on the maintained `totp-rs` crate.
//!
//! What this module adds on top of it: secrets shorter than [`MIN_SECRET_BITS`] are refused
//! with a typed error (RFC 4226 §4 asks for at least 128 bits and recommends 160), the
//! verifier reports *which* step matched so the caller can enforce "every accepted step is
//! later than the last one" ([`accept_step`]), and `otpauth://` URIs are built by `totp-rs`
//! with percent-encoded labels.

use totp_rs::{Algorithm, TOTP};

use crate::store::{SessionStore, StoreResult};

/// Step length in seconds (RFC 6238 default).
pub const STEP: i64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Shortest secret accepted, in bits (RFC 4226 §4's recommendation).
pub const MIN_SECRET_BITS: usize = 160;

/// Why a TOTP secret or label was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    /// The secret is not RFC 4648 base32.
    #[error("the TOTP secret is not base32")]
    NotBase32,
    /// The secret is shorter than [`MIN_SECRET_BITS`].
    #[error("the TOTP secret has {bits} bits; at least {MIN_SECRET_BITS} are required")]
    TooShort {
        /// Bits in the refused secret.
        bits: usize,
    },
    /// The issuer or account name cannot go into an `otpauth://` label (it contains `:`).
    #[error("the otpauth label is not usable: {0}")]
    Label(String),
}

/// Decodes RFC 4648 base32 (case-insensitive, `=` padding and spaces ignored).
/// Returns `None` on any other character.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let cleaned: String = s
        .chars()
        .filter(|c| *c != '=' && *c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if !cleaned
        .bytes()
        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    {
        return None;
    }
    totp_rs::Secret::Encoded(cleaned).to_bytes().ok()
}

/// Encodes bytes as RFC 4648 base32 without padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    match totp_rs::Secret::Raw(bytes.to_vec()).to_encoded() {
        totp_rs::Secret::Encoded(s) => s,
        totp_rs::Secret::Raw(_) => String::new(), // to_encoded always encodes
    }
}

/// A fresh 160-bit secret from the OS CSPRNG, base32 without padding (32 characters).
pub fn new_secret() -> String {
    base32_encode(&crate::secret::random_bytes()[..MIN_SECRET_BITS / 8])
}

/// The 6-digit code of raw key `key` at Unix time `t` (for clients and tests; no length
/// check, verification goes through [`Totp`]).
pub fn code_at(key: &[u8], t: i64) -> String {
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP as u64,
        key.to_vec(),
        None,
        String::new(),
    )
    .generate(t.max(0) as u64)
}

/// A TOTP generator/verifier for one secret (SHA-1, 6 digits, 30 s, ±1 step).
#[derive(Clone)]
pub struct Totp(TOTP);

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Totp(..)") // never the secret
    }
}

impl Totp {
    /// From raw key bytes.
    ///
    /// # Errors
    /// [`TotpError::TooShort`] under [`MIN_SECRET_BITS`].
    pub fn from_bytes(key: Vec<u8>) -> Result<Self, TotpError> {
        Self::with_algorithm(Algorithm::SHA1, DIGITS, key)
    }

    /// From a base32 secret (as stored and as shown to users).
    ///
    /// # Errors
    /// [`TotpError::NotBase32`] or [`TotpError::TooShort`].
    pub fn from_base32(secret: &str) -> Result<Self, TotpError> {
        Self::from_bytes(base32_decode(secret).ok_or(TotpError::NotBase32)?)
    }

    fn with_algorithm(alg: Algorithm, digits: usize, key: Vec<u8>) -> Result<Self, TotpError> {
        if key.len() * 8 < MIN_SECRET_BITS {
            return Err(TotpError::TooShort {
                bits: key.len() * 8,
            });
        }
        TOTP::new(alg, digits, 1, STEP as u64, key, None, String::new())
            .map(Totp)
            .map_err(|e| TotpError::Label(e.to_string()))
    }

    /// The code for Unix time `t` (times before 1970 give the code of step 0).
    pub fn code_at(&self, t: i64) -> String {
        self.0.generate(t.max(0) as u64)
    }

    /// Checks `code` at `now`, accepting the current step and one either side. Returns
    /// the matched step; callers must pass it to [`accept_step`] before trusting it.
    pub fn verify(&self, code: &str, now: i64) -> Option<i64> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let cur = now.div_euclid(STEP);
        let mut found = None;
        // constant work: every candidate is computed and compared in constant time
        for step in [cur - 1, cur, cur + 1] {
            if step < 0 {
                continue;
            }
            let want = self.0.generate((step * STEP) as u64);
            if constant_time_eq(want.as_bytes(), code.as_bytes()) && found.is_none() {
                found = Some(step);
            }
        }
        found
    }

    /// The `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…` URI for authenticator apps,
    /// issuer and account percent-encoded by `totp-rs`.
    ///
    /// # Errors
    /// [`TotpError::Label`] when either contains `:` (the label separator).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<String, TotpError> {
        let t = TOTP::new(
            self.0.algorithm,
            self.0.digits,
            self.0.skew,
            self.0.step,
            self.0.secret.clone(),
            Some(issuer.to_string()),
            account.to_string(),
        )
        .map_err(|e| TotpError::Label(e.to_string()))?;
        Ok(t.get_url())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The store key of the replay guard's last accepted step of `user_id`.
fn steps_key(user_id: &str) -> String {
    format!("totp-last:{user_id}")
}

/// The replay guard: atomically records `step` as the last accepted step of `user_id`
/// and returns `true` only when it is later than every step accepted before. A code is
/// thereby usable once, and an older code (even one never used) is refused after a newer
/// one was accepted.
///
/// # Errors
/// When the store fails.
pub async fn accept_step(
    store: &dyn SessionStore,
    user_id: &str,
    step: i64,
    now: i64,
) -> StoreResult<bool> {
    // After step + 2 the code is outside the ±1 window anyway, so the record may go then.
    store
        .advance_counter(&steps_key(user_id), step, (step + 2) * STEP, now)
        .await
}

/// Forgets the replay guard's last accepted step of `user_id` (after a TOTP reset or
/// when the user is deleted): the new secret's codes start from a clean slate.
///
/// # Errors
/// When the store fails.
pub async fn forget_steps(store: &dyn SessionStore, user_id: &str, now: i64) -> StoreResult<()> {
    store
        .take_ephemeral(&steps_key(user_id), now)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B (8 digits; the seeds are 20, 32 and 64 ASCII bytes).
    #[test]
    fn rfc6238_appendix_b_vectors() {
        let sha1 = b"12345678901234567890".to_vec();
        let sha256 = b"12345678901234567890123456789012".to_vec();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let rows: [(i64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        let t1 = Totp::with_algorithm(Algorithm::SHA1, 8, sha1).expect("sha1");
        let t256 = Totp::with_algorithm(Algorithm::SHA256, 8, sha256).expect("sha256");
        let t512 = Totp::with_algorithm(Algorithm::SHA512, 8, sha512).expect("sha512");
        for (t, a, b, c) in rows {
            assert_eq!(t1.code_at(t), a, "SHA-1 T={t}");
            assert_eq!(t256.code_at(t), b, "SHA-256 T={t}");
            assert_eq!(t512.code_at(t), c, "SHA-512 T={t}");
        }
    }

    #[test]
    fn secrets_under_160_bits_are_refused() {
        assert_eq!(
            Totp::from_base32("JBSWY3DPEHPK3PXP").err(),
            Some(TotpError::TooShort { bits: 80 })
        );
        assert_eq!(
            Totp::from_base32("").err(),
            Some(TotpError::TooShort { bits: 0 })
        );
        assert_eq!(
            Totp::from_bytes(vec![7; 19]).err(),
            Some(TotpError::TooShort { bits: 152 })
        );
        assert_eq!(
            Totp::from_base32("not base32!").err(),
            Some(TotpError::NotBase32)
        );
        assert!(Totp::from_base32(crate::state::DEMO_TOTP_SECRET).is_ok());
        let fresh = new_secret();
        assert_eq!(base32_decode(&fresh).map(|k| k.len() * 8), Some(160));
        assert!(Totp::from_base32(&fresh).is_ok());
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(
            base32_decode("MZXW6YTBOI======").as_deref(),
            Some(&b"foobar"[..])
        );
        assert_eq!(base32_decode("mzxw6ytboi").as_deref(), Some(&b"foobar"[..]));
        assert!(base32_decode("MZ1W").is_none());
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        let k = crate::secret::random_bytes();
        assert_eq!(base32_decode(&base32_encode(&k)).as_deref(), Some(&k[..]));
    }

    #[test]
    fn verify_accepts_plus_minus_one_step_only() {
        let totp = Totp::from_base32(crate::state::DEMO_TOTP_SECRET).expect("demo secret");
        let t = 1_700_000_000;
        let step = t / STEP;
        let code = totp.code_at(t);
        assert_eq!(totp.verify(&code, t), Some(step));
        assert_eq!(totp.verify(&code, t + STEP), Some(step));
        assert_eq!(totp.verify(&code, t - STEP), Some(step));
        assert_eq!(totp.verify(&code, t + 2 * STEP), None);
        assert_eq!(totp.verify("12345", t), None);
        assert_eq!(totp.verify("12a456", t), None);
        assert_eq!(totp.verify("１２３４５６", t), None, "non-ASCII digits");
    }

    #[test]
    fn otpauth_uri_percent_encodes_issuer_and_account() {
        let totp = Totp::from_base32(crate::state::DEMO_TOTP_SECRET).expect("demo secret");
        let uri = totp
            .otpauth_uri("Acme Corp & Co", "bob smith@example.com")
            .expect("uri");
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20Corp%20%26%20Co:bob%20smith%40example.com?\
             secret=4MEMZDELGP554FRQ6OH4LD7PAJIEUSHX&issuer=Acme%20Corp%20%26%20Co"
        );
        assert!(matches!(
            totp.otpauth_uri("a:b", "bob"),
            Err(TotpError::Label(_))
        ));
    }
}
