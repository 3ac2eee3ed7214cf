//! `POST /auth/logout` and `POST /auth/logout-all`. Both sit behind the Origin/CSRF
//! layer, which runs before anything here. `Clear-Site-Data` (`--clear-site-data`) is sent
//! only after a session was identified and revoked.

use axum::extract::State;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::expired_cookie;
use crate::error::ApiError;
use crate::extract::{AccessToken, ClientAddr, DpopProof, RefreshCredential};
use crate::service::{self, Caller};
use crate::state::AppState;

const CLEAR_SITE_DATA: HeaderName = HeaderName::from_static("clear-site-data");

fn logged_out(state: &AppState, jar: CookieJar, revoked: bool) -> Response {
    let mut res = (StatusCode::NO_CONTENT, jar.add(expired_cookie())).into_response();
    if revoked {
        if let Some(v) = &state.policy().clear_site_data {
            res.headers_mut().insert(CLEAR_SITE_DATA, v.clone());
        }
    }
    res
}

/// `POST /auth/logout` — always 204 (idempotent), revoking the session if one is identified.
/// A refused DPoP proof counts as none: a DPoP-bound refresh token without a proof from its
/// key ends its session (the binding rule), which is what a logout asks for anyway.
pub async fn logout(
    State(state): State<AppState>,
    client: ClientAddr,
    access: Option<AccessToken>,
    proof: Result<DpopProof, ApiError>,
    cred: RefreshCredential,
) -> Result<Response, ApiError> {
    let proof = proof.ok().and_then(|DpopProof(p)| p);
    let who = service::identify(
        &state,
        &client,
        cred.token.as_deref(),
        access.as_ref(),
        proof.as_ref(),
    );
    let revoked = match who.await {
        Ok(Caller::Session(s) | Caller::Superseded(s)) => {
            service::revoke(&state, &s.sid, "logout", &client).await?;
            true
        }
        Ok(Caller::Nobody) => false,
        // the binding rule revoked the session
        Err(ApiError::InvalidDpopProof(_)) => true,
        Err(e) => return Err(e),
    };
    Ok(logged_out(&state, cred.jar, revoked))
}

/// `POST /auth/logout-all` — revokes every session of the caller's user. Only the current
/// (or grace) refresh token or a live access token speaks for the user; a superseded
/// refresh token is a replay and ends its own family only (`refresh_reused`).
pub async fn logout_all(
    State(state): State<AppState>,
    client: ClientAddr,
    access: Option<AccessToken>,
    DpopProof(proof): DpopProof,
    cred: RefreshCredential,
) -> Result<Response, ApiError> {
    let who = service::identify(
        &state,
        &client,
        cred.token.as_deref(),
        access.as_ref(),
        proof.as_ref(),
    );
    match who.await? {
        Caller::Session(s) => {
            service::revoke_user(&state, &s.user_id, "logout_all", &client).await?;
            Ok(logged_out(&state, cred.jar, true))
        }
        Caller::Superseded(s) => {
            tracing::warn!(sid = %crate::secret::log_tag(&s.sid), network = %client.bucket(), "superseded refresh token on logout-all: family revoked");
            service::revoke(&state, &s.sid, "refresh_reused", &client).await?;
            Err(ApiError::RefreshReused)
        }
        Caller::Nobody => Err(ApiError::Unauthorized),
    }
}
