//! Errors: one enum for everything a handler can fail with, rendered as RFC 9457
//! `application/problem+json` with a stable `code`. Internals go to the log, never the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

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
    /// Anything else; the detail is logged, the client sees a generic message (`internal`, 500).
    #[error("internal error: {0}")]
    Internal(String),
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
    /// The stable wire code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::MfaInvalid => "mfa_invalid",
            ApiError::MfaExpired => "mfa_expired",
            ApiError::RefreshInvalid => "refresh_invalid",
            ApiError::RefreshReused => "refresh_reused",
            ApiError::SessionRevoked => "session_revoked",
            ApiError::SessionExpired => "session_expired",
            ApiError::Unauthorized => "unauthorized",
            ApiError::ForbiddenOrigin => "forbidden_origin",
            ApiError::NotFound => "not_found",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ForbiddenOrigin => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "Invalid request",
            ApiError::InvalidCredentials => "Invalid credentials",
            ApiError::RateLimited { .. } => "Too many requests",
            ApiError::MfaInvalid => "Invalid one-time code",
            ApiError::MfaExpired => "MFA challenge expired",
            ApiError::RefreshInvalid => "Invalid refresh token",
            ApiError::RefreshReused => "Refresh token reused",
            ApiError::SessionRevoked => "Session revoked",
            ApiError::SessionExpired => "Session expired",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::ForbiddenOrigin => "Forbidden origin",
            ApiError::NotFound => "Not found",
            ApiError::Internal(_) => "Internal error",
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::InvalidRequest(why) => why.clone(),
            ApiError::InvalidCredentials => "The username or password is incorrect.".into(),
            ApiError::RateLimited { retry_after } => {
                format!("Too many attempts; retry after {retry_after} seconds.")
            }
            ApiError::MfaInvalid => "The one-time code is wrong or was already used.".into(),
            ApiError::MfaExpired => "The MFA challenge is unknown or expired; log in again.".into(),
            ApiError::RefreshInvalid => "The refresh token is missing or not valid.".into(),
            ApiError::RefreshReused => {
                "A superseded refresh token was presented; the session was revoked.".into()
            }
            ApiError::SessionRevoked => "The session was revoked.".into(),
            ApiError::SessionExpired => "The session expired.".into(),
            ApiError::Unauthorized => "A valid bearer token is required.".into(),
            ApiError::ForbiddenOrigin => {
                "Cross-site request refused: Origin not allowed and no X-Tessera-CSRF header."
                    .into()
            }
            ApiError::NotFound => "No such resource.".into(),
            ApiError::Internal(_) => "An internal error occurred.".into(),
        }
    }

    /// The problem body this error renders to.
    pub fn problem(&self) -> Problem {
        let code = self.code();
        Problem {
            kind: format!("https://tessera.invalid/problems/{code}"),
            title: self.title().into(),
            status: self.status().as_u16(),
            detail: self.detail(),
            code: code.into(),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(format!("store: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(why) = &self {
            tracing::error!(error = %why, "internal error");
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
        if let ApiError::RateLimited { retry_after } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}
