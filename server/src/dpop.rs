//! DPoP (RFC 9449): sender-constrained sessions.
//!
//! A client proves, on every request, that it holds a private key: the `DPoP` header carries
//! a JWT signed by that key, naming the request (`htm`, `htu`), the time (`iat`), a unique
//! id (`jti`), the server's nonce when asked for one, and the hash of the access token it
//! accompanies (`ath`). A session whose login, MFA step or refresh carried a valid proof is
//! bound to the key's thumbprint (RFC 7638): its access tokens carry `cnf.jkt`, and its
//! refresh token is useless without a proof from the same key.
//!
//! [`Checker::check`] runs every check of RFC 9449 §4.3 that does not need the store or the
//! credential; [`verify_request`] adds the `jti` replay cache (in the session store, so
//! instances share it); [`require_access_binding`] and [`crate::service`] match the proof
//! to the credential (`ath`, `cnf.jkt`, the refresh token's binding).

use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::Mac as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::ApiError;
use crate::master_key::MasterKey;
use crate::store::SessionStore;

/// The request header carrying a proof.
pub const DPOP_HEADER: &str = "dpop";
/// The response header carrying the server's current nonce.
pub const NONCE_HEADER: &str = "dpop-nonce";
/// The proof algorithms accepted (asymmetric only: never `none`, never HMAC), as
/// `WWW-Authenticate` lists them.
pub const ALGS: &str = "ES256 EdDSA";
/// Longest proof accepted, in bytes.
pub const MAX_PROOF_LEN: usize = 4096;
/// Longest `jti` accepted, in characters.
pub const MAX_JTI_LEN: usize = 256;
/// How long one server nonce is issued, in seconds; the previous one is still accepted, so
/// a nonce lives between one and two periods.
pub const NONCE_PERIOD: i64 = 300;

/// `--dpop`: whether DPoP proofs are ignored, honoured, or required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DpopMode {
    /// `DPoP` headers are ignored; tokens are bearer tokens.
    Off,
    /// A valid proof at login, MFA or refresh binds the session to its key.
    Optional,
    /// Login, MFA and refresh without a valid proof are refused.
    Required,
}

/// Why a proof was refused. Sent to the client as the `detail` of `invalid_dpop_proof`
/// (nothing secret in it), logged at debug level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// A proof was required and none was sent.
    #[error("a DPoP proof is required")]
    Missing,
    /// More than one `DPoP` header.
    #[error("more than one DPoP header")]
    Multiple,
    /// Not one compact JWS (three base64url parts, JSON header and claims).
    #[error("the DPoP proof is not a compact JWS")]
    Malformed,
    /// The header's `typ` is not `dpop+jwt`.
    #[error("typ must be dpop+jwt")]
    Typ,
    /// `alg` is not one of [`ALGS`] (or does not fit the key).
    #[error("alg must be ES256 or EdDSA")]
    Alg,
    /// The header's `jwk` is missing, malformed, or holds a private part.
    #[error("jwk must be a public EC P-256 or OKP Ed25519 key")]
    Jwk,
    /// The signature does not verify with the header's key.
    #[error("the proof's signature does not verify")]
    Signature,
    /// A required claim is missing or has the wrong type.
    #[error("the proof's claims are missing or malformed")]
    Claims,
    /// `htm` is not the request's method.
    #[error("htm does not match the request method")]
    Htm,
    /// `htu` is not the request's URL.
    #[error("htu does not match the request URL")]
    Htu,
    /// `iat` is too far from the server's clock.
    #[error("iat is outside the accepted window")]
    Iat,
    /// The `jti` was seen before within the window.
    #[error("the proof was already used (jti)")]
    Replayed,
    /// No current server nonce (answered with `use_dpop_nonce`).
    #[error("a current server nonce is required")]
    Nonce,
    /// `ath` is missing or not the hash of the access token sent.
    #[error("ath does not match the access token")]
    Ath,
    /// The proof's key is not the key the credential is bound to.
    #[error("the proof's key is not the key the token is bound to")]
    Key,
}

/// A proof that passed every check of RFC 9449 §4.3 except the credential-specific ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key (base64url).
    pub jkt: String,
    /// The `ath` claim, when present.
    pub ath: Option<String>,
    /// The `jti` claim.
    pub jti: String,
    /// The `iat` claim (Unix seconds).
    pub iat: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofHeader {
    typ: String,
    alg: String,
    jwk: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: serde_json::Number,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// JWK members that belong to a private (or symmetric) key.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// The public key a proof header names.
enum ProofKey {
    P256 { x: String, y: String },
    Ed25519 { x: [u8; 32] },
}

impl ProofKey {
    fn from_jwk(
        alg: &str,
        jwk: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, ProofError> {
        if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err(ProofError::Jwk);
        }
        let text = |name: &str| {
            jwk.get(name)
                .and_then(|v| v.as_str())
                .ok_or(ProofError::Jwk)
        };
        let coordinate = |name: &str| -> Result<String, ProofError> {
            let v = text(name)?;
            match URL_SAFE_NO_PAD.decode(v) {
                Ok(b) if b.len() == 32 => Ok(v.to_string()),
                _ => Err(ProofError::Jwk),
            }
        };
        match (alg, text("kty")?, text("crv")?) {
            ("ES256", "EC", "P-256") => Ok(ProofKey::P256 {
                x: coordinate("x")?,
                y: coordinate("y")?,
            }),
            ("EdDSA", "OKP", "Ed25519") => {
                let x = URL_SAFE_NO_PAD
                    .decode(coordinate("x")?)
                    .map_err(|_| ProofError::Jwk)?;
                Ok(ProofKey::Ed25519 {
                    x: x.try_into().map_err(|_| ProofError::Jwk)?,
                })
            }
            _ => Err(ProofError::Jwk),
        }
    }

    /// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
    fn thumbprint(&self) -> String {
        let canonical = match self {
            ProofKey::P256 { x, y } => {
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
            ProofKey::Ed25519 { x } => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(x)
            ),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    fn verify(&self, signing_input: &[u8], sig64: &str) -> Result<(), ProofError> {
        match self {
            ProofKey::P256 { x, y } => {
                let key = jsonwebtoken::DecodingKey::from_ec_components(x, y)
                    .map_err(|_| ProofError::Jwk)?;
                match jsonwebtoken::crypto::verify(
                    sig64,
                    signing_input,
                    &key,
                    jsonwebtoken::Algorithm::ES256,
                ) {
                    Ok(true) => Ok(()),
                    _ => Err(ProofError::Signature),
                }
            }
            ProofKey::Ed25519 { x } => {
                let key =
                    ed25519_dalek::VerifyingKey::from_bytes(x).map_err(|_| ProofError::Jwk)?;
                let sig: [u8; 64] = URL_SAFE_NO_PAD
                    .decode(sig64)
                    .ok()
                    .and_then(|s| s.try_into().ok())
                    .ok_or(ProofError::Signature)?;
                key.verify_strict(signing_input, &ed25519_dalek::Signature::from_bytes(&sig))
                    .map_err(|_| ProofError::Signature)
            }
        }
    }
}

/// `ath`: base64url SHA-256 of the access token's ASCII (RFC 9449 §4.2).
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// The settings every proof is checked against.
#[derive(Clone)]
pub struct Checker {
    mode: DpopMode,
    window: i64,
    nonce_key: Option<[u8; 32]>,
    /// Origins (`scheme://host[:port]`, as the `url` crate serialises them) an `htu` may name.
    origins: Vec<String>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("mode", &self.mode)
            .field("window", &self.window)
            .field("nonce", &self.nonce_key.is_some())
            .field("origins", &self.origins)
            .finish()
    }
}

/// `scheme://host[:port]` of `url`, normalised (lower-case host, default port dropped);
/// `None` for anything but an absolute http(s) URL without user information.
fn origin_of(url: &url::Url) -> Option<String> {
    let ok = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && url.host().is_some();
    ok.then(|| url.origin().ascii_serialization())
}

impl Checker {
    /// The checker `cfg` asks for. `htu` may name any of `--allowed-origins` and the
    /// issuer, when that is a URL; with neither, the request's `Host` (see
    /// [`Checker::check`]).
    pub fn new(cfg: &Config, master: &MasterKey) -> Self {
        let mut origins: Vec<String> = cfg
            .origins()
            .chain(std::iter::once(cfg.issuer.as_str()))
            .filter_map(|o| url::Url::parse(o).ok())
            .filter_map(|u| origin_of(&u))
            .collect();
        origins.dedup();
        Checker {
            mode: cfg.dpop,
            window: cfg.dpop_iat_window,
            nonce_key: cfg.dpop_nonce.then(|| *master.dpop_nonce_key()),
            origins,
        }
    }

    /// A checker for a resource server ([`crate::verifier`]): `htu` may name `origins`
    /// (the request's `Host` when empty); no server nonces.
    pub fn for_resource(origins: Vec<String>, mode: DpopMode, window: i64) -> Self {
        let mut c = Checker {
            mode,
            window: window.clamp(1, 300),
            nonce_key: None,
            origins: Vec::new(),
        };
        for o in origins {
            c.add_origin(&o);
        }
        c
    }

    /// Accepts `origin` (`https://api.example`) in `htu`; ignored when it is no http(s) origin.
    pub fn add_origin(&mut self, origin: &str) {
        if let Some(o) = url::Url::parse(origin).ok().and_then(|u| origin_of(&u)) {
            if !self.origins.contains(&o) {
                self.origins.push(o);
            }
        }
    }

    /// Sets the mode.
    pub fn set_mode(&mut self, mode: DpopMode) {
        self.mode = mode;
    }

    /// `--dpop`.
    pub fn mode(&self) -> DpopMode {
        self.mode
    }

    /// `--dpop-iat-window`, in seconds.
    pub fn window(&self) -> i64 {
        self.window
    }

    /// Whether proofs must carry a server nonce.
    pub fn nonce_required(&self) -> bool {
        self.nonce_key.is_some()
    }

    fn nonce_for(&self, key: &[u8; 32], period: i64) -> String {
        let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(key)
            .expect("HMAC takes a key of any length");
        mac.update(b"tessera/dpop-nonce/v1");
        mac.update(&period.to_be_bytes());
        let tag = mac.finalize().into_bytes();
        let mut raw = period.to_be_bytes().to_vec();
        raw.extend_from_slice(&tag[..16]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The nonce to hand out at `now` (`None` when nonces are off).
    pub fn nonce(&self, now: i64) -> Option<String> {
        let key = self.nonce_key.as_ref()?;
        Some(self.nonce_for(key, now.div_euclid(NONCE_PERIOD)))
    }

    /// The current nonce as a header value (`None` when nonces are off).
    pub fn nonce_header(&self, now: i64) -> Option<HeaderValue> {
        self.nonce(now).and_then(|n| HeaderValue::from_str(&n).ok())
    }

    fn nonce_ok(&self, presented: Option<&str>, now: i64) -> bool {
        let Some(key) = self.nonce_key.as_ref() else {
            return true;
        };
        let Some(p) = presented else { return false };
        let period = now.div_euclid(NONCE_PERIOD);
        [period, period - 1].iter().any(|&n| {
            let expected = self.nonce_for(key, n);
            expected.len() == p.len()
                && expected
                    .bytes()
                    .zip(p.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
    }

    /// Checks `proof` for a request with `method` to `path` (the request target's path) at
    /// `now`: one compact JWS; `typ` `dpop+jwt`; `alg` ES256 or EdDSA with a public `jwk` of
    /// that kind and nothing else in the header; the signature by that key; `jti`, `htm`,
    /// `htu`, `iat` present; `htm` the method; `htu` (query and fragment ignored, RFC 3986
    /// normalisation) an allowed origin (`host` when none is configured) plus `path`; `iat`
    /// within the window; the nonce when one is required. Not checked here: `jti` reuse
    /// ([`verify_request`]), `ath` and the key binding (they need the credential).
    ///
    /// # Errors
    /// The first check that failed.
    pub fn check(
        &self,
        proof: &str,
        method: &str,
        host: Option<&str>,
        path: &str,
        now: i64,
    ) -> Result<Proof, ProofError> {
        let (h64, c64, s64) =
            crate::jwt::compact_parts(proof, MAX_PROOF_LEN).ok_or(ProofError::Malformed)?;
        let header: ProofHeader = URL_SAFE_NO_PAD
            .decode(h64)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(ProofError::Malformed)?;
        if !header.typ.eq_ignore_ascii_case("dpop+jwt") {
            return Err(ProofError::Typ);
        }
        if !matches!(header.alg.as_str(), "ES256" | "EdDSA") {
            return Err(ProofError::Alg);
        }
        let key = ProofKey::from_jwk(&header.alg, &header.jwk)?;
        key.verify(&proof.as_bytes()[..h64.len() + 1 + c64.len()], s64)?;
        let claims: ProofClaims = URL_SAFE_NO_PAD
            .decode(c64)
            .ok()
            .and_then(|c| serde_json::from_slice(&c).ok())
            .ok_or(ProofError::Claims)?;
        if claims.jti.is_empty() || claims.jti.chars().count() > MAX_JTI_LEN {
            return Err(ProofError::Claims);
        }
        let iat = claims
            .iat
            .as_i64()
            .or_else(|| {
                claims
                    .iat
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .ok_or(ProofError::Claims)?;
        if claims.htm != method {
            return Err(ProofError::Htm);
        }
        self.check_htu(&claims.htu, host, path)?;
        if iat.abs_diff(now) > self.window.unsigned_abs() {
            return Err(ProofError::Iat);
        }
        if !self.nonce_ok(claims.nonce.as_deref(), now) {
            return Err(ProofError::Nonce);
        }
        Ok(Proof {
            jkt: key.thumbprint(),
            ath: claims.ath,
            jti: claims.jti,
            iat,
        })
    }

    fn check_htu(&self, htu: &str, host: Option<&str>, path: &str) -> Result<(), ProofError> {
        let url = url::Url::parse(htu).map_err(|_| ProofError::Htu)?;
        let origin = origin_of(&url).ok_or(ProofError::Htu)?;
        let origin_ok = if self.origins.is_empty() {
            // no configured origin: the request's own host, over either scheme
            host.is_some_and(|h| {
                ["http://", "https://"].iter().any(|s| {
                    url::Url::parse(&format!("{s}{h}"))
                        .ok()
                        .and_then(|u| origin_of(&u))
                        .is_some_and(|o| o == origin)
                })
            })
        } else {
            self.origins.contains(&origin)
        };
        // the request target's path, normalised the way `url` normalises the htu's
        let target = url
            .join(path)
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        if origin_ok && url.path() == target {
            Ok(())
        } else {
            Err(ProofError::Htu)
        }
    }
}

/// The key under which a refresh-token family's binding is kept in the store.
pub fn binding_key(family: &str) -> String {
    format!("dpop:bind:{family}")
}

/// Checks the request's `DPoP` header (if any) with `checker` and records its `jti` in the
/// store's replay cache. `Ok(None)` when there is no header, or DPoP is off.
///
/// # Errors
/// [`ProofError`] for a refused proof; a store failure as [`ApiError`].
pub async fn verify_request(
    checker: &Checker,
    store: &dyn SessionStore,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    now: i64,
) -> Result<Result<Option<Proof>, ProofError>, ApiError> {
    if checker.mode == DpopMode::Off {
        return Ok(Ok(None));
    }
    let mut values = headers.get_all(DPOP_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(Ok(None));
    };
    if values.next().is_some() {
        return Ok(Err(ProofError::Multiple));
    }
    let Ok(text) = value.to_str() else {
        return Ok(Err(ProofError::Malformed));
    };
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let proof = match checker.check(text, method, host, path, now) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    // the jti is remembered for as long as the proof's iat would pass the window check
    let key = format!(
        "dpop:jti:{}",
        URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{}\n{}", proof.jkt, proof.jti)))
    );
    let until = proof.iat.max(now) + checker.window + 1;
    if !store.use_once(&key, until, now).await? {
        return Ok(Err(ProofError::Replayed));
    }
    Ok(Ok(Some(proof)))
}

/// The DPoP side of accepting an access token at a resource, shared by the server's own
/// routes ([`crate::extract::AuthSession`]) and the resource-server verifier
/// ([`crate::verifier::Verifier`]): a bound token (`jkt`) sent with the `DPoP` scheme has its
/// request's proof checked (and its `jti` spent in `replay`); then
/// [`require_access_binding`] decides. `token` and `scheme_dpop` are the presented
/// `Authorization` header's token and scheme.
///
/// # Errors
/// [`ApiError::DpopRefused`] (401 with a `WWW-Authenticate: DPoP` challenge), or the
/// replay store's failure.
pub async fn accept_access(
    checker: &Checker,
    replay: &dyn SessionStore,
    request: &axum::http::request::Parts,
    token: &str,
    scheme_dpop: bool,
    jkt: Option<&str>,
    now: i64,
) -> Result<(), ApiError> {
    let proof = match jkt {
        // only a bound token's request has its proof checked (and its jti spent)
        Some(_) if scheme_dpop => verify_request(
            checker,
            replay,
            &request.headers,
            request.method.as_str(),
            request.uri.path(),
            now,
        )
        .await?
        .map_err(|e| ApiError::DpopRefused(AccessRefusal::Proof(e)))?,
        _ => None,
    };
    require_access_binding(token, jkt, scheme_dpop, proof.as_ref()).map_err(ApiError::DpopRefused)
}

/// The binding rule for a presented access token: a token with `cnf.jkt` goes only with
/// the `DPoP` scheme and a proof from that key whose `ath` is the token's hash; a token
/// without one only with `Bearer`. `scheme_dpop` is whether the request used
/// `Authorization: DPoP`.
///
/// # Errors
/// `invalid_token` (wrong scheme for the token) or the proof's failure.
pub fn require_access_binding(
    token: &str,
    jkt: Option<&str>,
    scheme_dpop: bool,
    proof: Option<&Proof>,
) -> Result<(), AccessRefusal> {
    match (jkt, scheme_dpop) {
        (None, false) => Ok(()),
        (None, true) | (Some(_), false) => Err(AccessRefusal::InvalidToken),
        (Some(bound), true) => {
            let p = proof.ok_or(AccessRefusal::Proof(ProofError::Missing))?;
            if p.ath.as_deref() != Some(ath(token).as_str()) {
                return Err(AccessRefusal::Proof(ProofError::Ath));
            }
            if p.jkt != bound {
                return Err(AccessRefusal::Proof(ProofError::Key));
            }
            Ok(())
        }
    }
}

/// Why a presented access token was refused by the binding rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessRefusal {
    /// The token was sent with the wrong scheme for its binding (`invalid_token`).
    InvalidToken,
    /// The proof is missing or does not fit the token (`invalid_dpop_proof`, or
    /// `use_dpop_nonce` when only the nonce is missing).
    Proof(ProofError),
}

impl AccessRefusal {
    /// The `error` of the `WWW-Authenticate: DPoP` challenge and the problem's `code`.
    pub fn code(&self) -> &'static str {
        match self {
            AccessRefusal::InvalidToken => "invalid_token",
            AccessRefusal::Proof(ProofError::Nonce) => "use_dpop_nonce",
            AccessRefusal::Proof(_) => "invalid_dpop_proof",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker(origins: &[&str]) -> Checker {
        Checker {
            mode: DpopMode::Optional,
            window: 60,
            nonce_key: None,
            origins: origins.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn htu_ignores_query_and_fragment_and_normalises_case_and_default_port() {
        let c = checker(&["https://app.example"]);
        for ok in [
            "https://app.example/auth/refresh",
            "https://APP.example:443/auth/refresh?x=1",
            "https://app.example/auth/refresh#frag",
            "https://app.example/auth/./refresh",
        ] {
            assert_eq!(c.check_htu(ok, None, "/auth/refresh"), Ok(()), "{ok}");
        }
        for bad in [
            "https://evil.example/auth/refresh",
            "http://app.example/auth/refresh",
            "https://app.example:8443/auth/refresh",
            "https://app.example/auth/login",
            "https://user@app.example/auth/refresh",
            "/auth/refresh",
            "not a url",
        ] {
            assert_eq!(
                c.check_htu(bad, None, "/auth/refresh"),
                Err(ProofError::Htu),
                "{bad}"
            );
        }
    }

    #[test]
    fn without_configured_origins_htu_names_the_requests_host() {
        let c = checker(&[]);
        assert_eq!(
            c.check_htu(
                "http://127.0.0.1:9000/api/me",
                Some("127.0.0.1:9000"),
                "/api/me"
            ),
            Ok(())
        );
        assert_eq!(
            c.check_htu(
                "http://127.0.0.1:9001/api/me",
                Some("127.0.0.1:9000"),
                "/api/me"
            ),
            Err(ProofError::Htu)
        );
        assert_eq!(
            c.check_htu("http://127.0.0.1:9000/api/me", None, "/api/me"),
            Err(ProofError::Htu)
        );
    }

    #[test]
    fn extreme_iat_values_are_refused_not_overflowed() {
        let c = checker(&[]);
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        let header = format!(
            r#"{{"typ":"dpop+jwt","alg":"EdDSA","jwk":{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}}}"#
        );
        for iat in [
            "-1e300",
            "1e300",
            "-9223372036854775808",
            "18446744073709551615",
            "1.5",
        ] {
            let claims =
                format!(r#"{{"jti":"j","htm":"GET","htu":"http://h.test/p","iat":{iat}}}"#);
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(&header),
                URL_SAFE_NO_PAD.encode(&claims)
            );
            use ed25519_dalek::Signer as _;
            let sig = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).to_bytes());
            let r = c.check(
                &format!("{input}.{sig}"),
                "GET",
                Some("h.test"),
                "/p",
                1_000_000,
            );
            assert_eq!(r.err(), Some(ProofError::Iat), "iat {iat}");
        }
    }

    #[test]
    fn nonces_hold_for_two_periods_and_belong_to_their_key() {
        let mut c = checker(&[]);
        c.nonce_key = Some([7; 32]);
        let n = c.nonce(1_000_000).expect("nonces on");
        assert!(c.nonce_ok(Some(&n), 1_000_000));
        assert!(c.nonce_ok(Some(&n), 1_000_000 + NONCE_PERIOD));
        assert!(!c.nonce_ok(Some(&n), 1_000_000 + 2 * NONCE_PERIOD));
        assert!(!c.nonce_ok(None, 1_000_000));
        let mut other = c.clone();
        other.nonce_key = Some([8; 32]);
        assert!(!other.nonce_ok(Some(&n), 1_000_000));
        assert!(checker(&[]).nonce_ok(None, 0), "nonces off: none needed");
    }

    #[test]
    fn thumbprint_matches_rfc_7638_example_shape() {
        // RFC 8037 appendix A.3: the Ed25519 key's thumbprint
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .expect("b64")
            .try_into()
            .expect("32 bytes");
        assert_eq!(
            ProofKey::Ed25519 { x }.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}
