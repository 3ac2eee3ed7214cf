//! # tessera-server
//!
//! The verification server of Tessera: issues, verifies, rotates and revokes browser
//! sessions following OWASP's Session Management Cheat Sheet, ASVS V3, RFC 9700 (refresh
//! token rotation with reuse detection), RFC 9068/8725 (JWT access tokens) and RFC 6238 (TOTP).
//!
//! The application is a function, [`app`], so tests drive it without a socket:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tessera_server::{app, config::Config, state::AppState};
//! let state = AppState::from_config(Config::for_tests()).await?;
//! let router = app(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod clock;
pub mod config;
pub mod csrf;
pub mod dpop;
pub mod error;
pub mod extract;
pub mod fsmode;
#[doc(hidden)]
pub mod fuzz_api;
pub mod jwt;
pub mod keyring;
pub mod master_key;
pub mod metrics;
pub mod net;
pub mod password;
pub mod policy;
pub mod routes;
pub mod secret;
pub mod serve;
pub mod service;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod totp;
pub mod verifier;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::{delete, get, post};
use axum::Router;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

pub use config::Config;
pub use state::AppState;

/// How long revoked or expired session records stay in the store after their absolute
/// expiry (so the sessions list can still show them), in seconds.
pub const SESSION_RETENTION: i64 = 86_400;

/// Spawns the housekeeping task. Every few seconds it destroys secrets that outlived their
/// use ([`SessionStore::shred`](store::SessionStore::shred): vault keys of expired sessions,
/// grace successors past the grace window); hourly it deletes sessions whose absolute
/// lifetime ended more than [`SESSION_RETENTION`] ago, and expired short-lived values.
pub fn spawn_housekeeping(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = state.config().refresh_grace.clamp(1, 10) as u64;
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
        let mut round: u64 = 0;
        loop {
            tick.tick().await;
            let cfg = state.config();
            match state
                .store()
                .shred(state.now(), cfg.idle_timeout, cfg.refresh_grace)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::debug!(shredded = n, "housekeeping: expired secrets destroyed"),
                Err(e) => tracing::warn!(error = %e, "housekeeping (shred) failed"),
            }
            round += 1;
            if !(round - 1).is_multiple_of(3600 / every) {
                continue;
            }
            match state
                .store()
                .purge_expired(state.now(), SESSION_RETENTION)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "housekeeping: old sessions deleted"),
                Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
            }
        }
    })
}

/// Builds the router: auth routes, the demo resource, JWKS, and (in demo mode) the static
/// demo page and package.
pub fn app(state: AppState) -> Router {
    let cfg = state.config().clone();
    // Every state-changing route sits behind the Origin/CSRF guard, whatever credential
    // (cookie, body token, bearer, none) the request carries.
    let guarded = Router::new()
        .route("/auth/login", post(routes::auth::login))
        .route("/auth/mfa", post(routes::auth::mfa))
        .route("/auth/refresh", post(routes::refresh::refresh))
        .route("/auth/logout", post(routes::logout::logout))
        .route("/auth/logout-all", post(routes::logout::logout_all))
        .route(
            "/auth/sessions/{id}",
            delete(routes::sessions::delete_session),
        )
        .route("/auth/vault-key", post(routes::vault::vault_key))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::guard,
        ));
    // Every layer below is applied once, as one stack: each `Router::layer` call wraps every
    // route in another boxed service, cloned and called (with a boxed future) per request.
    // `--dpop-nonce`: every auth and resource response carries the current nonce
    let nonce = state.dpop().nonce_required().then(|| {
        let state = state.clone();
        SetResponseHeaderLayer::overriding(
            HeaderName::from_static(dpop::NONCE_HEADER),
            move |_: &axum::response::Response| state.dpop().nonce_header(state.now()),
        )
    });
    let auth = Router::new()
        .merge(guarded)
        .route("/auth/session", get(routes::sessions::current_session))
        .route("/auth/sessions", get(routes::sessions::list_sessions))
        .route("/auth/introspect", post(routes::introspect::introspect))
        .route("/api/me", get(routes::me::me))
        // OWASP: responses carrying tokens must never be cached.
        .layer(
            tower::ServiceBuilder::new()
                .option_layer(nonce)
                .layer(SetResponseHeaderLayer::overriding(
                    header::PRAGMA,
                    HeaderValue::from_static("no-cache"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                )),
        );

    let mut router = Router::new()
        .merge(auth)
        .route("/.well-known/jwks.json", get(routes::keys::jwks))
        .merge(routes::health::router(cfg.metrics_listen.is_none()));

    if cfg.demo {
        let pkg = ServeDir::new(&cfg.pkg_dir);
        let www = ServeDir::new(&cfg.www_dir).append_index_html_on_directories(true);
        router = router.nest_service("/pkg", pkg).fallback_service(www);
    } else {
        router = router.fallback(routes::not_found);
    }

    let origins: Vec<HeaderValue> = cfg
        .origins()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let cors = (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static(routes::CSRF_HEADER),
                HeaderName::from_static(dpop::DPOP_HEADER),
            ])
            // a cross-origin SDK reads the DPoP nonce, the resource challenge and the
            // server's clock (it dates its DPoP proofs by it)
            .expose_headers([
                HeaderName::from_static(dpop::NONCE_HEADER),
                header::WWW_AUTHENTICATE,
                header::DATE,
            ])
            .max_age(std::time::Duration::from_secs(600))
    });
    // outermost first
    let stack = tower::ServiceBuilder::new()
        // request id, tracing span, metrics: outside the timeouts, so a timed-out
        // request is still logged and counted
        .layer(telemetry::RequestIdLayer)
        .layer(telemetry::trace_layer())
        .layer(telemetry::TrackLayer(state.clone()))
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
            cfg.body_timeout.max(1),
        )))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(cfg.request_timeout.max(1)),
        ))
        .option_layer(cors)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(DefaultBodyLimit::max(64 * 1024));
    router.layer(stack).with_state(state)
}
