//! `GET /api/me`, the demo protected resource.

use axum::Json;
use serde::Serialize;

use crate::extract::AuthSession;

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
pub async fn me(auth: AuthSession) -> Json<Me> {
    Json(Me {
        sub: auth.claims.sub,
        sid: auth.claims.sid,
        username: auth.claims.username,
    })
}
