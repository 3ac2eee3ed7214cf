//! Ed25519-signed JWT access tokens (RFC 9068 profile, RFC 8725 practices) and the JWKS.
//!
//! The signing keys are generated on first start and persisted in the store (meta key
//! `signing_keys`); the newest key signs, every key in the set verifies and is published at
//! `/.well-known/jwks.json`, so keys can be rotated without invalidating live tokens.
//! Verification pins `EdDSA` per key (by `kid`), requires `typ: at+jwt`, `iss`, `aud`,
//! `exp`, and checks time against the injectable [`Clock`](crate::clock::Clock) with a
//! bounded leeway.

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::secret::{b64, random_bytes, unb64};

/// The claims of a Tessera access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject: the user id.
    pub sub: String,
    /// Session id.
    pub sid: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// The user's login name (for display; not an authorization input).
    pub username: String,
    /// Not before (Unix seconds); Tessera does not set it, but a token carrying one is
    /// refused until then (RFC 7519 §4.1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Confirmation (RFC 7800 / RFC 9449 §6): the thumbprint of the DPoP key the token is
    /// bound to; absent for a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` claim of a DPoP-bound token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    /// RFC 7638 SHA-256 thumbprint (base64url) of the DPoP public key.
    pub jkt: String,
}

impl AccessClaims {
    /// The thumbprint of the key the token is bound to, if any.
    pub fn jkt(&self) -> Option<&str> {
        self.cnf.as_ref().map(|c| c.jkt.as_str())
    }
}

/// A JSON member name, borrowed from the input when it has no escapes.
struct MemberName<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MemberName<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(MemberName(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MemberName(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The claims of a token, parsed in one pass that also fails on any repeated member name,
/// known or not (RFC 8725 §3.1 / RFC 7515 §4: duplicate members must be rejected, not
/// resolved last-one-wins). Unknown members are skipped; `exp`, `iat` must be integers.
struct UniqueClaims(AccessClaims);

impl<'de> Deserialize<'de> for UniqueClaims {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = UniqueClaims;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UniqueClaims, A::Error> {
                use serde::de::Error as _;
                let mut seen: Vec<std::borrow::Cow<'de, str>> = Vec::with_capacity(12);
                let (mut iss, mut aud, mut sub, mut sid, mut jti, mut username) =
                    (None, None, None, None, None, None);
                let (mut iat, mut exp, mut nbf, mut cnf) = (None, None, None, None);
                while let Some(MemberName(k)) = map.next_key()? {
                    if seen.contains(&k) {
                        return Err(A::Error::custom("duplicate member"));
                    }
                    match &*k {
                        "iss" => iss = Some(map.next_value::<String>()?),
                        "aud" => aud = Some(map.next_value::<String>()?),
                        "sub" => sub = Some(map.next_value::<String>()?),
                        "sid" => sid = Some(map.next_value::<String>()?),
                        "jti" => jti = Some(map.next_value::<String>()?),
                        "username" => username = Some(map.next_value::<String>()?),
                        "iat" => iat = Some(map.next_value::<i64>()?),
                        "exp" => exp = Some(map.next_value::<i64>()?),
                        "nbf" => nbf = map.next_value::<Option<i64>>()?,
                        "cnf" => cnf = Some(map.next_value::<Confirmation>()?),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                    seen.push(k);
                }
                fn req<T, E: serde::de::Error>(v: Option<T>, name: &'static str) -> Result<T, E> {
                    v.ok_or_else(|| E::missing_field(name))
                }
                Ok(UniqueClaims(AccessClaims {
                    iss: req(iss, "iss")?,
                    aud: req(aud, "aud")?,
                    sub: req(sub, "sub")?,
                    sid: req(sid, "sid")?,
                    iat: req(iat, "iat")?,
                    exp: req(exp, "exp")?,
                    jti: req(jti, "jti")?,
                    username: req(username, "username")?,
                    nbf,
                    cnf,
                }))
            }
        }
        d.deserialize_map(V)
    }
}

/// A persisted signing key (the 32-byte Ed25519 seed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredKey {
    /// Key id published in the JWKS and the JWT header.
    pub kid: String,
    /// base64url Ed25519 seed.
    pub seed: String,
    /// When the key was created (Unix seconds).
    pub created_at: i64,
}

impl StoredKey {
    /// A fresh random key.
    pub fn generate(now: i64) -> Self {
        let seed = random_bytes();
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let kid = b64(&Sha256::digest(public))[..16].to_string();
        StoredKey {
            kid,
            seed: b64(&seed),
            created_at: now,
        }
    }
}

struct LoadedKey {
    kid: String,
    created_at: i64,
    public: [u8; 32],
    /// `None` for a key known only by its public half (a JWKS, [`KeySet::from_jwks`]).
    encoding: Option<EncodingKey>,
    verifying: VerifyingKey,
}

/// The only header members a Tessera access token may carry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

/// Why a token was rejected (logged, never sent: the client only sees `unauthorized`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a well-formed JWT, or the signature does not verify.
    #[error("malformed or badly signed token")]
    Invalid,
    /// `alg` is not `EdDSA` or `typ` is not `at+jwt`.
    #[error("wrong alg or typ")]
    WrongType,
    /// The `kid` is not in the key set.
    #[error("unknown kid")]
    UnknownKey,
    /// `exp` is in the past (beyond the leeway) or `iat` in the future.
    #[error("expired or not yet valid")]
    Expired,
}

/// The active key set.
pub struct KeySet {
    keys: Vec<LoadedKey>, // newest first
    issuer: String,
    audience: String,
    leeway: i64,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field(
                "kids",
                &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410), which `EncodingKey::from_ed_der` takes.
fn pkcs8_from_seed(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der
}

impl KeySet {
    /// Builds the set from stored keys (newest first after sorting by `created_at`).
    ///
    /// # Errors
    /// When a stored key is malformed or the set is empty.
    pub fn new(
        mut stored: Vec<StoredKey>,
        issuer: &str,
        audience: &str,
        leeway: i64,
    ) -> Result<Self, String> {
        stored.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        let mut keys = Vec::new();
        for k in stored {
            let seed: [u8; 32] = unb64(&k.seed)
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| format!("signing key {} is malformed", k.kid))?;
            let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
            let encoding = EncodingKey::from_ed_der(&pkcs8_from_seed(&seed));
            let verifying = VerifyingKey::from_bytes(&public)
                .map_err(|e| format!("signing key {}: {e}", k.kid))?;
            keys.push(LoadedKey {
                kid: k.kid,
                created_at: k.created_at,
                public,
                encoding: Some(encoding),
                verifying,
            });
        }
        if keys.is_empty() {
            return Err("no signing keys".into());
        }
        Ok(KeySet {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway,
        })
    }

    /// A verify-only set from a JWK Set document (`/.well-known/jwks.json`): its `OKP`
    /// `Ed25519` keys with a `kid` (others are skipped); for resource servers
    /// ([`crate::verifier`]).
    ///
    /// # Errors
    /// When the document is not a JWK Set or holds no usable key.
    pub fn from_jwks(
        jwks: &[u8],
        issuer: &str,
        audience: &str,
        leeway: i64,
    ) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<serde_json::Map<String, serde_json::Value>>,
        }
        let doc: Jwks = serde_json::from_slice(jwks).map_err(|e| format!("not a JWK Set: {e}"))?;
        let text = |k: &serde_json::Map<String, serde_json::Value>, m: &str| {
            k.get(m).and_then(|v| v.as_str()).map(str::to_string)
        };
        let keys: Vec<LoadedKey> = doc
            .keys
            .iter()
            .filter(|k| {
                text(k, "kty").as_deref() == Some("OKP")
                    && text(k, "crv").as_deref() == Some("Ed25519")
                    && text(k, "use").as_deref().is_none_or(|u| u == "sig")
                    && !k.contains_key("d")
            })
            .filter_map(|k| {
                let kid = text(k, "kid")?;
                let public: [u8; 32] = unb64(&text(k, "x")?)?.try_into().ok()?;
                let verifying = VerifyingKey::from_bytes(&public).ok()?;
                Some(LoadedKey {
                    kid,
                    created_at: 0,
                    public,
                    encoding: None,
                    verifying,
                })
            })
            .collect();
        if keys.is_empty() {
            return Err("the JWK Set holds no Ed25519 signing key with a kid".into());
        }
        Ok(KeySet {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway,
        })
    }

    /// Whether the set knows `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid == kid)
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    /// The configured audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Signs `claims` with the newest key already active at `claims.iat` (a key's
    /// `created_at` is when it starts signing: `keys rotate` publishes a key in the JWKS
    /// before it signs, see [`crate::keyring`]); the oldest key if none is active yet.
    ///
    /// # Errors
    /// Only if serialization or signing fails.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, String> {
        let signers = || self.keys.iter().filter(|k| k.encoding.is_some());
        let key = signers()
            .find(|k| k.created_at <= claims.iat)
            .or(signers().next_back())
            .ok_or("no signing keys")?;
        let encoding = key.encoding.as_ref().ok_or("no signing keys")?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, encoding).map_err(|e| e.to_string())
    }

    /// Verifies `token` at time `now`: pinned `EdDSA`, `typ` `at+jwt`, known `kid`, valid
    /// signature, matching `iss` and `aud`, `exp`/`iat` within the leeway.
    ///
    /// Signing goes through `jsonwebtoken`; verification is done here directly with
    /// `ed25519-dalek`'s `verify_strict` (rejects malleable signatures and small-order keys):
    /// the header must contain exactly `alg`/`typ`/`kid` (so no `crit`, `jku` or embedded
    /// `jwk` can redirect trust), the algorithm is fixed by the key, and the claims are parsed
    /// once into a typed struct. This keeps verification close to the raw Ed25519 cost
    /// (see `cargo bench`).
    ///
    /// # Errors
    /// A [`TokenError`] naming the first failed check.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
        if token.len() > 4096 {
            return Err(TokenError::Invalid);
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(c64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid);
        };
        let header: JoseHeader = unb64(h64)
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(TokenError::Invalid)?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if header.alg != "EdDSA" || !typ_ok {
            return Err(TokenError::WrongType);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKey)?;
        let sig: [u8; 64] = unb64(s64)
            .and_then(|s| s.try_into().ok())
            .ok_or(TokenError::Invalid)?;
        let signing_input = &token.as_bytes()[..h64.len() + 1 + c64.len()];
        key.verifying
            .verify_strict(signing_input, &Signature::from_bytes(&sig))
            .map_err(|_| TokenError::Invalid)?;
        let raw = unb64(c64).ok_or(TokenError::Invalid)?;
        let UniqueClaims(c) = serde_json::from_slice(&raw).map_err(|_| TokenError::Invalid)?;
        if c.iss != self.issuer || c.aud != self.audience {
            return Err(TokenError::Invalid);
        }
        if c.exp + self.leeway <= now
            || c.iat - self.leeway > now
            || c.nbf.is_some_and(|nbf| nbf - self.leeway > now)
        {
            return Err(TokenError::Expired);
        }
        Ok(c)
    }

    /// The public keys as a JWK Set (RFC 7517 / RFC 8037 `OKP` keys).
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "x": b64(&k.public),
                    "kid": k.kid, "alg": "EdDSA", "use": "sig"
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The raw public key of the signing key (for benchmarks comparing raw verification).
    pub fn signing_public_key(&self) -> [u8; 32] {
        self.keys[0].public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: "iss".into(),
            aud: "aud".into(),
            sub: "u1".into(),
            sid: "s1".into(),
            iat: now,
            exp: now + 60,
            jti: "j".into(),
            username: "alice".into(),
            nbf: None,
            cnf: None,
        }
    }

    #[test]
    fn sign_verify_and_expiry() {
        let ks = KeySet::new(vec![StoredKey::generate(1)], "iss", "aud", 5).unwrap();
        let t = ks.sign(&claims(1000)).unwrap();
        assert_eq!(ks.verify(&t, 1000).unwrap().sid, "s1");
        assert!(ks.verify(&t, 1064).is_ok(), "within the 5 s leeway");
        assert_eq!(ks.verify(&t, 1065), Err(TokenError::Expired));
        assert_eq!(ks.verify(&t, 900), Err(TokenError::Expired));
        // flip one character in the middle of the signature
        let sig_mid = t.rfind('.').unwrap() + 20;
        let mut bad = t.clone().into_bytes();
        bad[sig_mid] = if bad[sig_mid] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(ks.verify(&bad, 1000), Err(TokenError::Invalid));
        assert_eq!(ks.verify("not.a.jwt", 1000), Err(TokenError::Invalid));
    }

    #[test]
    fn wrong_issuer_audience_or_key_rejected() {
        let k = StoredKey::generate(1);
        let a = KeySet::new(vec![k.clone()], "iss", "aud", 5).unwrap();
        let other_aud = KeySet::new(vec![k], "iss", "other", 5).unwrap();
        let t = a.sign(&claims(1000)).unwrap();
        assert_eq!(other_aud.verify(&t, 1000), Err(TokenError::Invalid));
        let stranger = KeySet::new(vec![StoredKey::generate(1)], "iss", "aud", 5).unwrap();
        assert_eq!(stranger.verify(&t, 1000), Err(TokenError::UnknownKey));
    }

    #[test]
    fn alg_none_and_hs256_are_refused() {
        let ks = KeySet::new(vec![StoredKey::generate(1)], "iss", "aud", 5).unwrap();
        let body = b64(serde_json::to_string(&claims(1000)).unwrap().as_bytes());
        let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"at+jwt"}"#), body);
        assert_eq!(ks.verify(&none, 1000), Err(TokenError::WrongType));
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        let hs = jsonwebtoken::encode(&h, &claims(1000), &EncodingKey::from_secret(b"k")).unwrap();
        assert_eq!(ks.verify(&hs, 1000), Err(TokenError::WrongType));
        // a correctly signed token with typ JWT is not an access token
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(ks.keys[0].kid.clone());
        let plain =
            jsonwebtoken::encode(&h, &claims(1000), ks.keys[0].encoding.as_ref().unwrap()).unwrap();
        assert_eq!(ks.verify(&plain, 1000), Err(TokenError::WrongType));
    }

    #[test]
    fn tokens_verify_with_an_independent_jwt_implementation() {
        let ks = KeySet::new(vec![StoredKey::generate(1)], "iss", "aud", 5).unwrap();
        let t = ks.sign(&claims(2_000_000_000)).unwrap();
        let key =
            jsonwebtoken::DecodingKey::from_ed_components(&b64(&ks.signing_public_key())).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        v.set_issuer(&["iss"]);
        v.set_audience(&["aud"]);
        let c = jsonwebtoken::decode::<AccessClaims>(&t, &key, &v)
            .unwrap()
            .claims;
        assert_eq!(c.sid, "s1");
    }

    #[test]
    fn unexpected_header_members_are_refused() {
        let ks = KeySet::new(vec![StoredKey::generate(1)], "iss", "aud", 5).unwrap();
        let mut h = Header::new(Algorithm::EdDSA);
        h.typ = Some("at+jwt".into());
        h.kid = Some(ks.keys[0].kid.clone());
        h.jku = Some("https://evil.example/jwks".into());
        let t =
            jsonwebtoken::encode(&h, &claims(1000), ks.keys[0].encoding.as_ref().unwrap()).unwrap();
        assert_eq!(ks.verify(&t, 1000), Err(TokenError::Invalid));
        let good = ks.sign(&claims(1000)).unwrap();
        assert_eq!(
            ks.verify(&format!("{good}.x"), 1000),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn rotated_set_verifies_old_tokens_and_signs_with_newest() {
        let old = StoredKey::generate(1);
        let ks_old = KeySet::new(vec![old.clone()], "iss", "aud", 5).unwrap();
        let t_old = ks_old.sign(&claims(1000)).unwrap();
        let new = StoredKey::generate(2);
        let ks = KeySet::new(vec![old, new.clone()], "iss", "aud", 5).unwrap();
        assert!(ks.verify(&t_old, 1000).is_ok());
        let t_new = ks.sign(&claims(1000)).unwrap();
        let h = jsonwebtoken::decode_header(&t_new).unwrap();
        assert_eq!(h.kid.as_deref(), Some(new.kid.as_str()));
        assert_eq!(ks.jwks()["keys"].as_array().map(|a| a.len()), Some(2));
    }
}
