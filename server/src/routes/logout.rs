//! `POST /auth/logout` and `POST /auth/logout-all`.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::expired_cookie;
use crate::error::ApiError;
use crate::extract::{Bearer, RefreshCredential};
use crate::service;
use crate::state::AppState;

fn logged_out(jar: CookieJar) -> Response {
    (
        StatusCode::NO_CONTENT,
        jar.add(expired_cookie()),
        [(
            HeaderName::from_static("clear-site-data"),
            HeaderValue::from_static("\"cookies\", \"storage\""),
        )],
    )
        .into_response()
}

/// `POST /auth/logout` — always 204 (idempotent), revoking the session if one is identified.
pub async fn logout(
    State(state): State<AppState>,
    bearer: Option<Bearer>,
    cred: RefreshCredential,
) -> Result<Response, ApiError> {
    let bearer = bearer.map(|b| b.0);
    if let Some(s) = service::identify(&state, cred.token.as_deref(), bearer.as_deref()).await? {
        service::revoke(&state, &s.sid, "logout").await?;
    }
    Ok(logged_out(cred.jar))
}

/// `POST /auth/logout-all` — revokes every session of the caller's user.
pub async fn logout_all(
    State(state): State<AppState>,
    bearer: Option<Bearer>,
    cred: RefreshCredential,
) -> Result<Response, ApiError> {
    let bearer = bearer.map(|b| b.0);
    let s = service::identify(&state, cred.token.as_deref(), bearer.as_deref())
        .await?
        .filter(|s| {
            s.liveness(state.now(), state.config().idle_timeout) == crate::store::Liveness::Live
        })
        .ok_or(ApiError::Unauthorized)?;
    service::revoke_user(&state, &s.user_id, "logout_all").await?;
    Ok(logged_out(cred.jar))
}
