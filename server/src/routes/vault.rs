//! `POST /auth/vault-key`.

use axum::extract::State;
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::{ClientAddr, DpopProof, REFRESH_COOKIE};
use crate::secret::b64;
use crate::service;
use crate::state::AppState;

/// `200` of `POST /auth/vault-key`.
#[derive(Debug, Serialize)]
pub struct VaultKey {
    /// base64url AES-256 key.
    pub key: String,
}

/// `POST /auth/vault-key` — only with the refresh cookie (HttpOnly), never a bearer.
pub async fn vault_key(
    State(state): State<AppState>,
    client: ClientAddr,
    DpopProof(proof): DpopProof,
    jar: CookieJar,
) -> Result<Json<VaultKey>, ApiError> {
    let token = jar
        .get(REFRESH_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty());
    let key = service::vault_key(&state, &client, token.as_deref(), proof.as_ref()).await?;
    Ok(Json(VaultKey { key: b64(&key) }))
}
