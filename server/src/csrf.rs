//! The Origin / CSRF guard, a middleware layer on every state-changing route (login, MFA,
//! refresh, logout, logout-all, remote revoke, vault key), whatever credential the request
//! carries. Handlers cannot forget it: it runs before their extractors.
//!
//! A present `Origin` must be allow-listed (see [`Config::origins`](crate::Config::origins)).
//! A request without `Origin` is accepted only when it cannot be a cross-site form post:
//! it carries `X-Tessera-CSRF`, or it carries no refresh cookie.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use crate::error::ApiError;
use crate::extract::{CSRF_HEADER, REFRESH_COOKIE};
use crate::state::AppState;

/// Whether `headers` pass the guard.
///
/// # Errors
/// [`ApiError::ForbiddenOrigin`] when they do not.
pub fn check(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let has_csrf_header = headers.get(CSRF_HEADER).is_some_and(|v| !v.is_empty());
    let has_cookie = CookieJar::from_headers(headers)
        .get(REFRESH_COOKIE)
        .is_some_and(|c| !c.value().is_empty());
    match headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("\u{0}"))
    {
        Some(origin) => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            let same = !host.is_empty()
                && (origin == format!("http://{host}") || origin == format!("https://{host}"));
            if same || state.config().origins().any(|o| o == origin) {
                Ok(())
            } else {
                tracing::warn!(origin = %origin.chars().take(100).collect::<String>(), "refused cross-site request");
                Err(ApiError::ForbiddenOrigin)
            }
        }
        None if !has_cookie || has_csrf_header => Ok(()),
        None => Err(ApiError::ForbiddenOrigin),
    }
}

/// The middleware (`axum::middleware::from_fn_with_state(state, csrf::guard)`).
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check(&state, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}
