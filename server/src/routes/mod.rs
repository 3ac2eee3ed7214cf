//! HTTP handlers for the public contract (see the README route table), one file per area.
//! Handlers only translate: typed extractors in, [`crate::service`] calls, typed bodies out.

use axum_extra::extract::cookie::Cookie;
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::REFRESH_COOKIE;
use crate::service::Issued;
use crate::state::AppState;
use crate::store::SessionRecord;

pub mod auth;
pub mod health;
pub mod introspect;
pub mod keys;
pub mod logout;
pub mod me;
pub mod refresh;
pub mod sessions;
pub mod vault;

pub use crate::extract::{CSRF_HEADER, REFRESH_COOKIE as COOKIE_NAME};

/// The session as shown to its owner.
#[derive(Debug, Serialize)]
pub struct SessionView {
    /// Session id.
    pub id: String,
    /// Login name.
    pub user: String,
    /// Whether a second factor was used.
    pub mfa: bool,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Absolute expiry.
    pub expires_at: i64,
    /// Last refresh.
    pub last_seen: i64,
    /// The server's idle timeout in seconds.
    pub idle_timeout: i64,
}

impl SessionView {
    /// The view of `s`.
    pub fn new(state: &AppState, s: &SessionRecord) -> Self {
        SessionView {
            id: s.sid.clone(),
            user: s.username.clone(),
            mfa: s.mfa,
            created_at: s.created_at,
            expires_at: s.expires_at,
            last_seen: s.last_seen,
            idle_timeout: state.config().idle_timeout,
        }
    }
}

/// `200` of login, MFA and refresh.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The access token (JWT).
    pub access_token: String,
    /// `DPoP` for a DPoP-bound session (RFC 9449 §5), else `Bearer`.
    pub token_type: &'static str,
    /// Access-token lifetime in seconds.
    pub expires_in: i64,
    /// The session.
    pub session: SessionView,
    /// The refresh token, in token mode only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl TokenResponse {
    /// The body for `issued`; the refresh token is included only in token mode.
    pub fn new(state: &AppState, issued: &Issued, token_mode: bool) -> Self {
        TokenResponse {
            access_token: issued.access_token.clone(),
            token_type: if issued.jkt.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            expires_in: issued.expires_in,
            session: SessionView::new(state, &issued.session),
            refresh_token: token_mode.then(|| issued.refresh_token.clone()),
        }
    }
}

/// The refresh cookie: `__Host-` prefix, `HttpOnly`, `Secure`, `SameSite=Strict`, `Path=/`.
pub fn refresh_cookie(token: &str, max_age: i64) -> Cookie<'static> {
    let line = format!(
        "{REFRESH_COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
        max_age.max(0)
    );
    Cookie::parse(line).unwrap_or_else(|_| expired_cookie())
}

/// The same attributes as when set, empty value, `Max-Age=0`.
pub fn expired_cookie() -> Cookie<'static> {
    let mut c = Cookie::new(REFRESH_COOKIE, "");
    c.set_path("/");
    c.set_http_only(true);
    c.set_secure(true);
    c.set_same_site(axum_extra::extract::cookie::SameSite::Strict);
    c.set_max_age(Some(Default::default()));
    c
}

/// Fallback for unknown routes outside demo mode.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
