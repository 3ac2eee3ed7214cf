//! `GET /api/me`, the demo protected resource: it verifies the access token the way an API
//! behind Tessera does, with the resource-server verifier ([`crate::verifier`]: offline,
//! DPoP-aware), and, since it runs beside the store, also refuses a revoked session at once.

use axum::extract::{FromRef, State};
use axum::Json;
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Liveness;
use crate::verifier::{Verified, Verifier};

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        Verifier::local(state)
    }
}

/// `200` of `GET /api/me`.
#[derive(Debug, Serialize)]
pub struct Me {
    /// User id.
    pub sub: String,
    /// Session id.
    pub sid: String,
    /// Login name.
    pub username: String,
}

/// `GET /api/me`
pub async fn me(
    State(state): State<AppState>,
    Verified(claims): Verified,
) -> Result<Json<Me>, ApiError> {
    let live = state
        .store()
        .session_status(&claims.sid)
        .await?
        .is_some_and(|s| s.liveness(state.now(), state.config().idle_timeout) == Liveness::Live);
    if !live {
        return Err(ApiError::Unauthorized);
    }
    Ok(Json(Me {
        sub: claims.sub,
        sid: claims.sid,
        username: claims.username,
    }))
}
