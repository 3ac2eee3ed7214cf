//! Typed request extractors: every handler states what it needs in its signature, and a
//! missing or malformed input is rejected here, as `application/problem+json`, before the
//! handler runs.
//!
//! - [`JsonBody`]: a JSON body (an empty body reads as `{}`), rejection `invalid_request`.
//! - [`ClientAddr`]: the caller's address, network bucket and user agent.
//! - [`Bearer`]: the `Authorization: Bearer` token, rejection `unauthorized`.
//! - [`AuthSession`]: a verified access token whose session is live.
//! - [`RefreshCredential`]: the refresh token from the body (token mode) or the cookie.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{
    ConnectInfo, FromRequest, FromRequestParts, OptionalFromRequestParts, Request,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum_extra::extract::cookie::CookieJar;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::ApiError;
use crate::jwt::AccessClaims;
use crate::state::AppState;
use crate::store::{Liveness, SessionRecord, SessionStatus};

/// Name of the refresh-token cookie.
pub const REFRESH_COOKIE: &str = "__Host-tessera_rt";
/// Header an SDK request carries to prove it is not a cross-site form post.
pub const CSRF_HEADER: &str = "x-tessera-csrf";

/// A JSON request body deserialized into `T`. An empty (or all-whitespace) body reads as
/// `{}`, so bodies whose fields are all optional may be omitted. Malformed JSON is a 400
/// `invalid_request` problem.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> JsonBody<T> {
    /// Parses raw bytes with the rules above.
    ///
    /// # Errors
    /// [`ApiError::InvalidRequest`] naming the JSON error.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            body
        };
        serde_json::from_slice(body)
            .map(JsonBody)
            .map_err(|e| ApiError::InvalidRequest(format!("malformed JSON body: {e}")))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::InvalidRequest(format!("unreadable body: {e}")))?;
        Self::parse(&body)
    }
}

/// Who is calling: address, network bucket and user agent.
#[derive(Debug, Clone)]
pub struct ClientAddr {
    /// `User-Agent` (truncated to 256 bytes).
    pub user_agent: String,
    /// Client IP address, or `unknown`.
    pub address: String,
}

impl ClientAddr {
    /// The network this client belongs to for anomaly detection (see [`network_of`]).
    pub fn network(&self) -> String {
        network_of(&self.address)
    }

    /// The throttling bucket (IPv4 /32, IPv6 /64), also what auth logs record.
    pub fn bucket(&self) -> String {
        crate::throttle::bucket(&self.address)
    }
}

fn truncated_user_agent(headers: &HeaderMap) -> String {
    let mut ua: String = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if ua.len() > 256 {
        let mut cut = 256;
        while !ua.is_char_boundary(cut) {
            cut -= 1;
        }
        ua.truncate(cut);
    }
    ua
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user_agent = truncated_user_agent(&parts.headers);
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| {
                crate::net::client_ip(
                    c.0.ip(),
                    parts
                        .headers
                        .get_all("x-forwarded-for")
                        .iter()
                        .filter_map(|v| v.to_str().ok()),
                    &state.policy().proxies,
                )
                .to_string()
            })
            .unwrap_or_else(|| "unknown".into());
        Ok(ClientAddr {
            user_agent,
            address,
        })
    }
}

/// The network an address belongs to for anomaly detection: IPv4 /24, IPv6 /64.
pub fn network_of(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Err(_) => address.to_string(),
    }
}

/// The token of an `Authorization: Bearer …` header.
#[derive(Debug, Clone)]
pub struct Bearer(pub String);

impl Bearer {
    /// The bearer token in `headers`, if any.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        AccessToken::from_headers(headers)
            .filter(|a| !a.dpop)
            .map(|a| Bearer(a.token))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Bearer::from_headers(&parts.headers).ok_or(ApiError::Unauthorized)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Bearer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(Bearer::from_headers(&parts.headers))
    }
}

/// An access token as presented in `Authorization`: `Bearer <token>`, or `DPoP <token>` for
/// a DPoP-bound one (RFC 9449 §7.1). Which scheme is right is decided with the token's
/// claims ([`crate::dpop::require_access_binding`]).
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The token.
    pub token: String,
    /// Whether the `DPoP` scheme was used.
    pub dpop: bool,
}

impl AccessToken {
    /// The access token in `headers`, if any.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        let token = token.trim();
        let dpop = if scheme.eq_ignore_ascii_case("dpop") {
            true
        } else if scheme.eq_ignore_ascii_case("bearer") {
            false
        } else {
            return None;
        };
        (!token.is_empty()).then(|| AccessToken {
            token: token.to_string(),
            dpop,
        })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for AccessToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(AccessToken::from_headers(&parts.headers))
    }
}

/// The request's DPoP proof, checked ([`crate::dpop::verify_request`]: every check of
/// RFC 9449 §4.3 but the credential-specific ones, and the `jti` replay cache). `None`
/// without a `DPoP` header or with `--dpop off`. Rejection (auth routes):
/// `invalid_dpop_proof`, or `use_dpop_nonce` when only the nonce is missing.
#[derive(Debug, Clone)]
pub struct DpopProof(pub Option<crate::dpop::Proof>);

impl DpopProof {
    async fn check(
        parts: &Parts,
        state: &AppState,
    ) -> Result<Result<Option<crate::dpop::Proof>, crate::dpop::ProofError>, ApiError> {
        crate::dpop::verify_request(
            state.dpop(),
            state.store().as_ref(),
            &parts.headers,
            parts.method.as_str(),
            parts.uri.path(),
            state.now(),
        )
        .await
    }
}

impl FromRequestParts<AppState> for DpopProof {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match DpopProof::check(parts, state).await? {
            Ok(p) => Ok(DpopProof(p)),
            Err(e) => {
                tracing::debug!(error = %e, "DPoP proof refused");
                Err(e.into())
            }
        }
    }
}

/// The claims of `token` when it verifies at `now`; a refused bearer is logged (debug) and
/// gives `None`. Both [`AuthSession`] and [`LiveToken`] start here.
async fn verified_claims(state: &AppState, token: &str, now: i64) -> Option<AccessClaims> {
    match state.verify_access(token, now).await {
        Ok(claims) => Some(claims),
        Err(e) => {
            tracing::debug!(error = %e, "bearer rejected");
            None
        }
    }
}

/// A verified access token whose session is live.
#[derive(Debug, Clone)]
pub struct AuthSession {
    /// The token's claims.
    pub claims: AccessClaims,
    /// Its session.
    pub session: SessionRecord,
}

impl AuthSession {
    /// Verifies `token` and loads its session; `Ok(None)` when the token is not valid or
    /// the session is not live.
    ///
    /// # Errors
    /// Only when the store fails.
    pub async fn verify(state: &AppState, token: &str) -> Result<Option<Self>, ApiError> {
        let now = state.now();
        let Some(claims) = verified_claims(state, token, now).await else {
            return Ok(None);
        };
        let Some(session) = state.store().get_session(&claims.sid).await? else {
            return Ok(None);
        };
        Ok(
            (session.liveness(now, state.config().idle_timeout) == Liveness::Live)
                .then_some(AuthSession { claims, session }),
        )
    }
}

/// A verified access token whose session is live, checked with the store's liveness-only
/// read ([`SessionStore::session_status`](crate::store::SessionStore::session_status)): what
/// introspection needs, without loading (and decrypting) the session's secrets.
#[derive(Debug, Clone)]
pub struct LiveToken {
    /// The token's claims.
    pub claims: AccessClaims,
    /// Its session's status (live at the time of the check).
    pub status: SessionStatus,
}

impl LiveToken {
    /// Verifies `token` and checks that its session is live; `Ok(None)` when the token is
    /// not valid or the session is revoked, expired or unknown.
    ///
    /// # Errors
    /// Only when the store fails.
    pub async fn verify(state: &AppState, token: &str) -> Result<Option<Self>, ApiError> {
        let now = state.now();
        let Some(claims) = verified_claims(state, token, now).await else {
            return Ok(None);
        };
        let Some(status) = state.store().session_status(&claims.sid).await? else {
            return Ok(None);
        };
        Ok(
            (status.liveness(now, state.config().idle_timeout) == Liveness::Live)
                .then_some(LiveToken { claims, status }),
        )
    }
}

impl FromRequestParts<AppState> for AuthSession {
    type Rejection = ApiError;

    /// `Authorization: Bearer` for a bearer token; `Authorization: DPoP` plus a proof from
    /// the bound key (with `ath`) for a DPoP-bound one. Refusals of the binding rule are 401
    /// with a `WWW-Authenticate: DPoP` challenge ([`ApiError::DpopRefused`]).
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let access = AccessToken::from_headers(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let auth = AuthSession::verify(state, &access.token)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        crate::dpop::accept_access(
            state.dpop(),
            state.store().as_ref(),
            parts,
            &access.token,
            access.dpop,
            auth.claims.jkt(),
            state.now(),
        )
        .await?;
        Ok(auth)
    }
}

/// Where a refresh token came from, which decides where its successor goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The HttpOnly `__Host-` cookie (default).
    Cookie,
    /// The JSON body (`{refresh_token}`), for cross-site APIs.
    Token,
}

impl Mode {
    /// Parses the optional `mode` member of a login body.
    ///
    /// # Errors
    /// `invalid_request` for anything but `cookie` or `token`.
    pub fn parse(m: Option<&str>) -> Result<Mode, ApiError> {
        match m {
            None | Some("cookie") => Ok(Mode::Cookie),
            Some("token") => Ok(Mode::Token),
            Some(other) => Err(ApiError::InvalidRequest(format!(
                "unknown mode {other:?} (cookie|token)"
            ))),
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct RefreshBody {
    #[serde(default)]
    pub(crate) refresh_token: Option<String>,
}

/// The refresh token a request presents: `{refresh_token}` in the JSON body (token mode),
/// else the refresh cookie (cookie mode). Also carries the request's cookie jar.
#[derive(Debug, Clone)]
pub struct RefreshCredential {
    /// The presented token, if any.
    pub token: Option<String>,
    /// Where it came from (cookie mode when none was presented).
    pub mode: Mode,
    /// The request's cookies (to answer with an updated jar).
    pub jar: CookieJar,
}

impl<S: Send + Sync> FromRequest<S> for RefreshCredential {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(req.headers());
        let JsonBody(body) = JsonBody::<RefreshBody>::from_request(req, state).await?;
        let (token, mode) = match body.refresh_token {
            Some(t) => (Some(t), Mode::Token),
            None => (
                jar.get(REFRESH_COOKIE)
                    .map(|c| c.value().to_string())
                    .filter(|v| !v.is_empty()),
                Mode::Cookie,
            ),
        };
        Ok(RefreshCredential { token, mode, jar })
    }
}
