//! `GET /auth/session`, `GET /auth/sessions`, `DELETE /auth/sessions/{id}`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::SessionView;
use crate::error::ApiError;
use crate::extract::{AuthSession, ClientAddr};
use crate::secret::log_tag;
use crate::service;
use crate::state::AppState;
use crate::store::{Liveness, SessionEvent, StoreError};

/// Page size of `GET /auth/sessions` when `?limit=` is absent.
pub const DEFAULT_PAGE_LIMIT: usize = 50;
/// Largest accepted `?limit=` of `GET /auth/sessions`.
pub const MAX_PAGE_LIMIT: usize = 200;

/// Query of `GET /auth/sessions`: `?limit=` (1..=200, default 50) and `?cursor=` (the
/// `next_cursor` of the previous page).
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    /// Page size.
    pub limit: Option<usize>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// One entry of `GET /auth/sessions`.
#[derive(Debug, Serialize)]
pub struct SessionEntry {
    /// Session id.
    pub id: String,
    /// Whether this is the caller's session.
    pub current: bool,
    /// Whether it is live.
    pub active: bool,
    /// Whether a second factor was used.
    pub mfa: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last refresh.
    pub last_seen: i64,
    /// Absolute expiry.
    pub expires_at: i64,
    /// User agent last seen.
    pub user_agent: String,
    /// Address last seen.
    pub address: String,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// Why.
    pub revoke_reason: Option<String>,
    /// Anomaly and revocation events.
    pub events: Vec<SessionEvent>,
}

/// `200` of `GET /auth/sessions`.
#[derive(Debug, Serialize)]
pub struct SessionList {
    /// Newest first.
    pub sessions: Vec<SessionEntry>,
    /// Cursor of the next page (`?cursor=`), `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /auth/session`
pub async fn current_session(
    State(state): State<AppState>,
    auth: AuthSession,
) -> Json<SessionView> {
    Json(SessionView::new(&state, &auth.session))
}

/// `GET /auth/sessions?limit=&cursor=`: one page of the caller's sessions, newest first.
pub async fn list_sessions(
    State(state): State<AppState>,
    auth: AuthSession,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<SessionList>, ApiError> {
    let Query(q) =
        query.map_err(|_| ApiError::InvalidRequest("limit must be an integer 1..=200".into()))?;
    let limit = match q.limit {
        None => DEFAULT_PAGE_LIMIT,
        Some(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "limit must be an integer 1..=200".into(),
            ))
        }
    };
    if q.cursor.as_ref().is_some_and(|c| c.len() > 512) {
        return Err(ApiError::InvalidRequest("malformed cursor".into()));
    }
    let now = state.now();
    let idle = state.config().idle_timeout;
    let page = match state
        .store()
        .list_sessions_page(&auth.claims.sub, limit, q.cursor.as_deref())
        .await
    {
        Ok(p) => p,
        Err(StoreError::Config(_)) => {
            return Err(ApiError::InvalidRequest("malformed cursor".into()))
        }
        Err(e) => return Err(e.into()),
    };
    let next_cursor = page.next;
    let sessions = page
        .sessions
        .into_iter()
        .map(|s| SessionEntry {
            current: s.sid == auth.claims.sid,
            active: s.liveness(now, idle) == Liveness::Live,
            id: s.sid,
            mfa: s.mfa,
            created_at: s.created_at,
            last_seen: s.last_seen,
            expires_at: s.expires_at,
            user_agent: s.user_agent,
            address: s.address,
            revoked_at: s.revoked_at,
            revoke_reason: s.revoke_reason,
            events: s.events,
        })
        .collect();
    Ok(Json(SessionList {
        sessions,
        next_cursor,
    }))
}

/// `DELETE /auth/sessions/{id}`
pub async fn delete_session(
    State(state): State<AppState>,
    client: ClientAddr,
    auth: AuthSession,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match state.store().get_session(&id).await? {
        Some(t) if t.user_id == auth.claims.sub => {
            service::revoke(&state, &t.sid, "remote_revoke", &client).await?;
            tracing::info!(sid = %log_tag(&t.sid), by = %log_tag(&auth.claims.sid), "session revoked remotely");
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::NotFound),
    }
}
