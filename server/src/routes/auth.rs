//! `POST /auth/login` and `POST /auth/mfa`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};

use super::{refresh_cookie, TokenResponse};
use crate::error::ApiError;
use crate::extract::{ClientAddr, DpopProof, JsonBody, Mode, REFRESH_COOKIE};
use crate::service::{self, Issued, LoginOutcome};
use crate::state::AppState;

/// Body of `POST /auth/login`.
#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    username: String,
    password: String,
    #[serde(default)]
    mode: Option<String>,
}

/// Body of `POST /auth/mfa`.
#[derive(Debug, Deserialize)]
pub struct MfaRequest {
    mfa_token: String,
    code: String,
    #[serde(default)]
    mode: Option<String>,
}

/// `200` of a password step that needs a TOTP code.
#[derive(Debug, Serialize)]
pub struct MfaRequired {
    /// Always `true`.
    pub mfa_required: bool,
    /// The challenge token for `/auth/mfa`.
    pub mfa_token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
}

/// Answers with the session: the refresh token in the cookie or (token mode) in the body.
pub(crate) fn session_response(
    state: &AppState,
    jar: CookieJar,
    issued: &Issued,
    mode: Mode,
) -> Response {
    let body = TokenResponse::new(state, issued, mode == Mode::Token);
    match mode {
        Mode::Token => Json(body).into_response(),
        Mode::Cookie => {
            let max_age = issued.session.expires_at - state.now();
            (
                jar.add(refresh_cookie(&issued.refresh_token, max_age)),
                Json(body),
            )
                .into_response()
        }
    }
}

/// `POST /auth/login` (a `DPoP` proof binds the new session to its key)
pub async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    DpopProof(proof): DpopProof,
    jar: CookieJar,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let mode = Mode::parse(req.mode.as_deref())?;
    if req.username.is_empty() || req.username.len() > 256 || req.password.len() > 1024 {
        return Err(ApiError::InvalidRequest(
            "username and password are required (bounded length)".into(),
        ));
    }
    let current = jar
        .get(REFRESH_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty());
    match service::login(
        &state,
        &client,
        &req.username,
        &req.password,
        req.mode,
        current.as_deref(),
        proof.as_ref(),
    )
    .await?
    {
        LoginOutcome::Session(issued) => Ok(session_response(&state, jar, &issued, mode)),
        LoginOutcome::MfaRequired {
            mfa_token,
            expires_in,
        } => {
            let body = Json(MfaRequired {
                mfa_required: true,
                mfa_token,
                expires_in,
            });
            // the browser's previous session was ended by this login: its cookie goes too
            Ok(match current {
                Some(_) => (jar.add(super::expired_cookie()), body).into_response(),
                None => body.into_response(),
            })
        }
    }
}

/// `POST /auth/mfa` (a `DPoP` proof binds the new session to its key; it must be the
/// password step's key when that step carried one)
pub async fn mfa(
    State(state): State<AppState>,
    client: ClientAddr,
    DpopProof(proof): DpopProof,
    jar: CookieJar,
    JsonBody(req): JsonBody<MfaRequest>,
) -> Result<Response, ApiError> {
    let (issued, login_mode) =
        service::verify_mfa(&state, &client, &req.mfa_token, &req.code, proof.as_ref()).await?;
    let mode = Mode::parse(req.mode.as_deref().or(login_mode.as_deref()))?;
    Ok(session_response(&state, jar, &issued, mode))
}
