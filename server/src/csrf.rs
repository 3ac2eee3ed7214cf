//! The Origin / CSRF guard, a middleware layer on every state-changing route (login, MFA,
//! refresh, logout, logout-all, remote revoke, vault key), whatever credential the request
//! carries. Handlers cannot forget it: it runs before their extractors.
//!
//! - A present `Origin` must be one of `--allowed-origins` (demo mode adds its own loopback
//!   origin). `Host` is never used to decide "same origin": it is as client-controlled as
//!   the rest of the request.
//! - Without `Origin` (non-browser clients; browsers send it on every cross-origin and
//!   every same-origin POST), the request must not look like something a cross-site form
//!   can send: a form content type (`application/x-www-form-urlencoded`,
//!   `multipart/form-data`, `text/plain`) or a refresh cookie needs `X-Tessera-CSRF`, which
//!   a form cannot set; `Sec-Fetch-Site: cross-site` is refused outright.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use crate::error::ApiError;
use crate::extract::{CSRF_HEADER, REFRESH_COOKIE};
use crate::state::AppState;

fn form_like(headers: &HeaderMap) -> bool {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?").to_ascii_lowercase());
    ct.is_some_and(|ct| {
        let essence = ct.split(';').next().unwrap_or("").trim().to_string();
        matches!(
            essence.as_str(),
            "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain" | "?"
        )
    })
}

/// Whether `headers` pass the guard.
///
/// # Errors
/// [`ApiError::ForbiddenOrigin`] when they do not.
pub fn check(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    check_origins(state.config().origins(), headers)
}

/// [`check`] against an explicit origin allowlist (pure: no state).
///
/// # Errors
/// [`ApiError::ForbiddenOrigin`] when the headers do not pass.
pub fn check_origins<'a>(
    mut allowed: impl Iterator<Item = &'a str>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let has_csrf_header = headers.get(CSRF_HEADER).is_some_and(|v| !v.is_empty());
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("\u{0}");
        return if allowed.any(|o| o == origin) {
            Ok(())
        } else {
            tracing::warn!(origin = %origin.chars().take(100).collect::<String>(), "refused cross-site request");
            Err(ApiError::ForbiddenOrigin)
        };
    }
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    let has_cookie = CookieJar::from_headers(headers)
        .get(REFRESH_COOKIE)
        .is_some_and(|c| !c.value().is_empty());
    if cross_site || ((form_like(headers) || has_cookie) && !has_csrf_header) {
        tracing::warn!("refused request without Origin that a cross-site form could send");
        return Err(ApiError::ForbiddenOrigin);
    }
    Ok(())
}

/// The middleware (`axum::middleware::from_fn_with_state(state, csrf::guard)`).
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check(&state, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}
