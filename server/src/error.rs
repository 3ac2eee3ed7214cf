//! Errors: one enum for everything a handler can fail with, rendered as RFC 9457
//! `application/problem+json` with a stable `code`. Internals go to the log, never the client.
//!
//! [`ApiError::meta`] is the one table mapping each variant to its status, wire code and
//! title; everything else (the problem body, headers) derives from it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A boxed error kept as the `source` of an internal failure (logged, never sent).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a request can fail with. Each variant maps to one stable wire `code`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request body or a parameter is malformed (`invalid_request`, 400).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Unknown user or wrong password; deliberately one error for both (`invalid_credentials`, 401).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many attempts (`rate_limited`, 429 with `Retry-After`).
    #[error("rate limited, retry after {retry_after}s")]
    RateLimited {
        /// Seconds until the client may try again.
        retry_after: u64,
    },
    /// The server is saturated (password hashing queue full); try later
    /// (`overloaded`, 503 with `Retry-After`).
    #[error("overloaded, retry after {retry_after}s")]
    Overloaded {
        /// Seconds until the client may try again.
        retry_after: u64,
    },
    /// Wrong or replayed TOTP code (`mfa_invalid`, 401).
    #[error("invalid mfa code")]
    MfaInvalid,
    /// Unknown, used or expired `mfa_token` (`mfa_expired`, 401).
    #[error("mfa token expired")]
    MfaExpired,
    /// Missing or unknown refresh token (`refresh_invalid`, 401).
    #[error("refresh token invalid")]
    RefreshInvalid,
    /// A superseded refresh token was presented; the family is revoked (`refresh_reused`, 401).
    #[error("refresh token reused")]
    RefreshReused,
    /// The session was revoked (`session_revoked`, 401).
    #[error("session revoked")]
    SessionRevoked,
    /// The session passed its idle or absolute lifetime (`session_expired`, 401).
    #[error("session expired")]
    SessionExpired,
    /// Missing or invalid bearer token (`unauthorized`, 401).
    #[error("unauthorized")]
    Unauthorized,
    /// Cross-site request without an allowed `Origin` or the CSRF header (`forbidden_origin`, 403).
    #[error("forbidden origin")]
    ForbiddenOrigin,
    /// No such route or resource (`not_found`, 404).
    #[error("not found")]
    NotFound,
    /// A DPoP proof sent to an auth route was refused (`invalid_dpop_proof`, 400; RFC 9449 §5).
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(crate::dpop::ProofError),
    /// The DPoP proof lacks the server's current nonce (`use_dpop_nonce`, 400; the nonce is
    /// in the `DPoP-Nonce` header; RFC 9449 §8).
    #[error("DPoP nonce required")]
    UseDpopNonce,
    /// A protected resource refused the access token or its DPoP proof: 401 with
    /// `WWW-Authenticate: DPoP error="…"` (RFC 9449 §7.1), code `invalid_token`,
    /// `invalid_dpop_proof` or `use_dpop_nonce`.
    #[error("access refused: {0:?}")]
    DpopRefused(crate::dpop::AccessRefusal),
    /// The store failed (`internal`, 500); the source is logged.
    #[error("store failure")]
    Store(#[from] crate::store::StoreError),
    /// Anything else (`internal`, 500); the source is logged, the client sees a generic message.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

/// The RFC 9457 body.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short human-readable summary.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Human-readable explanation for this occurrence.
    pub detail: String,
    /// Stable machine-readable code (see the README table).
    pub code: String,
}

impl ApiError {
    /// An internal error from anything printable (the text is logged, never sent).
    pub fn internal(e: impl Into<BoxError>) -> Self {
        ApiError::Internal(e.into())
    }

    /// The table: status, stable wire code and title of each variant.
    pub fn meta(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            ApiError::InvalidRequest(_) => (S::BAD_REQUEST, "invalid_request", "Invalid request"),
            ApiError::InvalidCredentials => (
                S::UNAUTHORIZED,
                "invalid_credentials",
                "Invalid credentials",
            ),
            ApiError::RateLimited { .. } => {
                (S::TOO_MANY_REQUESTS, "rate_limited", "Too many requests")
            }
            ApiError::Overloaded { .. } => (S::SERVICE_UNAVAILABLE, "overloaded", "Server busy"),
            ApiError::MfaInvalid => (S::UNAUTHORIZED, "mfa_invalid", "Invalid one-time code"),
            ApiError::MfaExpired => (S::UNAUTHORIZED, "mfa_expired", "MFA challenge expired"),
            ApiError::RefreshInvalid => {
                (S::UNAUTHORIZED, "refresh_invalid", "Invalid refresh token")
            }
            ApiError::RefreshReused => (S::UNAUTHORIZED, "refresh_reused", "Refresh token reused"),
            ApiError::SessionRevoked => (S::UNAUTHORIZED, "session_revoked", "Session revoked"),
            ApiError::SessionExpired => (S::UNAUTHORIZED, "session_expired", "Session expired"),
            ApiError::Unauthorized => (S::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::ForbiddenOrigin => (S::FORBIDDEN, "forbidden_origin", "Forbidden origin"),
            ApiError::NotFound => (S::NOT_FOUND, "not_found", "Not found"),
            ApiError::InvalidDpopProof(_) => {
                (S::BAD_REQUEST, "invalid_dpop_proof", "Invalid DPoP proof")
            }
            ApiError::UseDpopNonce => (S::BAD_REQUEST, "use_dpop_nonce", "DPoP nonce required"),
            ApiError::DpopRefused(r) => (S::UNAUTHORIZED, r.code(), "Unauthorized"),
            ApiError::Store(crate::store::StoreError::Unavailable(_)) => (
                S::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "Session store unavailable",
            ),
            ApiError::Store(_) | ApiError::Internal(_) => {
                (S::INTERNAL_SERVER_ERROR, "internal", "Internal error")
            }
        }
    }

    /// The stable wire code.
    pub fn code(&self) -> &'static str {
        self.meta().1
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.meta().0
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after } | ApiError::Overloaded { retry_after } => {
                Some((*retry_after).max(1))
            }
            ApiError::Store(crate::store::StoreError::Unavailable(_)) => Some(1),
            _ => None,
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::InvalidRequest(why) => why.clone(),
            ApiError::InvalidCredentials => "The username or password is incorrect.".into(),
            ApiError::RateLimited { retry_after } => {
                format!("Too many attempts; retry after {retry_after} seconds.")
            }
            ApiError::Overloaded { retry_after } => {
                format!("The server is busy; retry after {retry_after} seconds.")
            }
            ApiError::MfaInvalid => "The one-time code is wrong or was already used.".into(),
            ApiError::MfaExpired => "The MFA challenge is unknown or expired; log in again.".into(),
            ApiError::RefreshInvalid => "The refresh token is missing or not valid.".into(),
            ApiError::RefreshReused => {
                "A superseded refresh token was presented; the session was revoked.".into()
            }
            ApiError::SessionRevoked => "The session was revoked.".into(),
            ApiError::SessionExpired => "The session expired.".into(),
            ApiError::Unauthorized => "Valid credentials are required.".into(),
            ApiError::ForbiddenOrigin => {
                "Cross-site request refused: Origin not allowed and no X-Tessera-CSRF header."
                    .into()
            }
            ApiError::NotFound => "No such resource.".into(),
            ApiError::InvalidDpopProof(e) => format!("The DPoP proof was refused: {e}."),
            ApiError::UseDpopNonce => {
                "Send a DPoP proof carrying the nonce of the DPoP-Nonce header.".into()
            }
            ApiError::DpopRefused(crate::dpop::AccessRefusal::InvalidToken) => {
                "A DPoP-bound token needs the DPoP scheme and a proof; a bearer token the Bearer scheme.".into()
            }
            ApiError::DpopRefused(crate::dpop::AccessRefusal::Proof(e)) => {
                format!("The DPoP proof was refused: {e}.")
            }
            ApiError::Store(crate::store::StoreError::Unavailable(_)) => {
                "The session store cannot be reached; retry shortly.".into()
            }
            ApiError::Store(_) | ApiError::Internal(_) => "An internal error occurred.".into(),
        }
    }

    /// The problem body this error renders to.
    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.meta();
        Problem {
            kind: format!("https://tessera.invalid/problems/{code}"),
            title: title.into(),
            status: status.as_u16(),
            detail: self.detail(),
            code: code.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(self, ApiError::Store(_) | ApiError::Internal(_)) {
            let source = std::error::Error::source(&self)
                .map(|s| s.to_string())
                .unwrap_or_default();
            tracing::error!(error = %self, source = %source, "internal error");
        }
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut res = (self.status(), body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let ApiError::DpopRefused(r) = &self {
            let challenge = format!(
                "DPoP error=\"{}\", algs=\"{}\"",
                r.code(),
                crate::dpop::ALGS
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        if let Some(secs) = self.retry_after() {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

impl From<crate::dpop::ProofError> for ApiError {
    /// A refused proof at an auth route: a missing nonce asks for one, anything else is
    /// `invalid_dpop_proof`.
    fn from(e: crate::dpop::ProofError) -> Self {
        match e {
            crate::dpop::ProofError::Nonce => ApiError::UseDpopNonce,
            e => ApiError::InvalidDpopProof(e),
        }
    }
}
