//! `GET /healthz` (the process answers), `GET /readyz` (the store answers and the signing
//! keys are loaded) and `GET /metrics` (Prometheus / OpenMetrics text).

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::AppState;

/// The longest a readiness probe waits for the store.
pub const READY_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The probe routes (`/healthz`, `/readyz`), plus `/metrics` when `with_metrics`.
pub fn router(with_metrics: bool) -> Router<AppState> {
    let r = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if with_metrics {
        r.route("/metrics", get(metrics))
    } else {
        r
    }
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `200 {"status":"ok"}` while the process serves requests.
pub async fn healthz() -> Response {
    no_store(Json(json!({"status": "ok"})).into_response())
}

/// `200 {"status":"ready"}` when the store answers within [`READY_STORE_TIMEOUT`] and the
/// signing keys are loaded; otherwise `503 {"status":"unready","store":…,"keys":…}`.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let store_ok = matches!(
        tokio::time::timeout(READY_STORE_TIMEOUT, state.store().get_meta("signing_keys")).await,
        Ok(Ok(_))
    );
    state.metrics().store_op("ping", started.elapsed());
    let keys_ok = state
        .keys()
        .jwks()
        .get("keys")
        .and_then(|k| k.as_array())
        .is_some_and(|k| !k.is_empty());
    let body = |s: &str| {
        json!({
            "status": s,
            "store": if store_ok { "ok" } else { "unreachable" },
            "keys": if keys_ok { "ok" } else { "missing" },
        })
    };
    let res = if store_ok && keys_ok {
        (StatusCode::OK, Json(body("ready"))).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(body("unready"))).into_response()
    };
    no_store(res)
}

/// `/metrics` alone, for the separate `--metrics-listen` listener.
pub fn metrics_only(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The metrics exposition; the live-session gauge is counted in the store first (on a
/// store failure it keeps its last value and the failure is logged).
pub async fn metrics(State(state): State<AppState>) -> Response {
    let started = std::time::Instant::now();
    match state
        .store()
        .count_live_sessions(state.now(), state.config().idle_timeout)
        .await
    {
        Ok(n) => state.metrics().set_live_sessions(n),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count live sessions"),
    }
    state.metrics().store_op("count_live", started.elapsed());
    let mut res = state.metrics().render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    no_store(res)
}
