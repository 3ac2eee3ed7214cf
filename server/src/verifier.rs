//! Offline access-token verification for resource servers: the APIs behind Tessera check
//! its `at+jwt` tokens themselves, without a round trip per request.
//!
//! A [`Verifier`] holds the issuer's public keys, fetched from its JWKS URL and cached
//! (fetched again when a token names an unknown `kid`, at most once per
//! [`RELOAD_MIN_INTERVAL`] seconds, so forged `kid`s cannot make it hammer the issuer). The
//! [`Verified`] extractor takes `Authorization: Bearer` for a bearer token and
//! `Authorization: DPoP` plus a `DPoP` proof (RFC 9449 §7) for a bound one, runs every check
//! ([`crate::jwt::KeySet::verify`]: pinned `EdDSA`, `typ` `at+jwt`, known `kid`, signature,
//! `iss`, `aud`, `exp`/`iat`/`nbf`; the proof's checks of [`crate::dpop`] with a replay cache
//! of its own), and hands the handler the claims. Refusals are 401 problem+json with a
//! `WWW-Authenticate` challenge for DPoP.
//!
//! What it cannot see offline: a session revoked since the token was issued. Access tokens
//! live `--access-ttl` (5 minutes by default); an API that must notice revocation at once
//! asks `POST /auth/introspect` instead.
//!
//! ```no_run
//! use axum::{routing::get, Json, Router};
//! use tessera_server::verifier::{Verified, Verifier};
//!
//! async fn me(Verified(claims): Verified) -> Json<String> {
//!     Json(format!("hello {}", claims.username))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::from_jwks_url("https://auth.example/.well-known/jwks.json")
//!     .issuer("tessera")
//!     .audience("tessera")
//!     .origin("https://api.example"); // the public origin DPoP proofs name in `htu`
//! let app = Router::new().route("/api/me", get(me)).with_state(verifier);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::clock::{Clock, SystemClock};
use crate::dpop::{self, AccessRefusal, Checker, DpopMode};
use crate::error::ApiError;
use crate::extract::AccessToken;
use crate::jwt::{AccessClaims, KeySet, TokenError};
use crate::state::AppState;
use crate::store::{memory::MemoryStore, SessionStore};

/// The shortest time between two JWKS fetches caused by unknown `kid`s, in seconds.
pub const RELOAD_MIN_INTERVAL: i64 = 10;
/// A fetched JWKS is used at most this long before it is fetched again, in seconds.
pub const JWKS_MAX_AGE: i64 = 300;

enum Keys {
    /// A JWKS fetched over HTTP(S) and cached.
    Remote {
        url: String,
        client: reqwest::Client,
        cached: std::sync::RwLock<Option<Arc<KeySet>>>,
        fetched_at: AtomicI64,
        /// Held while a fetch runs.
        fetching: tokio::sync::Mutex<()>,
    },
    /// This tessera-server's own key set (the demo's `/api/me`).
    Local(AppState),
}

struct Inner {
    keys: Keys,
    issuer: String,
    audience: String,
    leeway: i64,
    checker: Checker,
    /// The DPoP `jti` replay cache.
    replay: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
}

/// Verifies Tessera access tokens offline (see the module docs). Cheap to clone; use it as
/// (or inside) the router's state: [`Verified`] finds it through [`FromRef`].
#[derive(Clone)]
pub struct Verifier(Arc<Inner>);

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.0.issuer)
            .field("audience", &self.0.audience)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for tokens whose keys are published at `url` (tessera-server's
    /// `/.well-known/jwks.json`). Issuer and audience default to `tessera` (the server's
    /// defaults), leeway 5 s, DPoP `optional` with a 60 s window; `htu` is checked against
    /// the origins given with [`Verifier::origin`], or the request's `Host` when none.
    pub fn from_jwks_url(url: impl Into<String>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self::with_keys(Keys::Remote {
            url: url.into(),
            client,
            cached: std::sync::RwLock::new(None),
            fetched_at: AtomicI64::new(i64::MIN),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// A verifier over this server's own keys and store (the `jti` replay cache is then the
    /// shared store, and `htu` follows `--allowed-origins` like the auth routes).
    pub fn local(state: &AppState) -> Self {
        let cfg = state.config();
        Verifier(Arc::new(Inner {
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            leeway: cfg.jwt_leeway,
            checker: state.dpop().clone(),
            replay: state.store().clone(),
            clock: Arc::new(StateClock(state.clone())),
            keys: Keys::Local(state.clone()),
        }))
    }

    fn with_keys(keys: Keys) -> Self {
        Verifier(Arc::new(Inner {
            keys,
            issuer: "tessera".into(),
            audience: "tessera".into(),
            leeway: 5,
            checker: Checker::for_resource(Vec::new(), DpopMode::Optional, 60),
            replay: Arc::new(MemoryStore::new()),
            clock: Arc::new(SystemClock),
        }))
    }

    fn edit(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.0)
            .unwrap_or_else(|_| unreachable!("a Verifier is configured before it is cloned"));
        f(&mut inner);
        Verifier(Arc::new(inner))
    }

    /// The expected `iss`.
    pub fn issuer(self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.edit(|i| i.issuer = issuer)
    }

    /// The expected `aud`.
    pub fn audience(self, audience: impl Into<String>) -> Self {
        let audience = audience.into();
        self.edit(|i| i.audience = audience)
    }

    /// Clock-skew leeway for `exp`/`iat`/`nbf`, in seconds (0 to 300).
    pub fn leeway(self, secs: i64) -> Self {
        self.edit(|i| i.leeway = secs.clamp(0, 300))
    }

    /// A public origin of this API (`https://api.example`): DPoP proofs must name it in
    /// `htu`. Call once per origin.
    pub fn origin(self, origin: &str) -> Self {
        let origin = origin.to_string();
        self.edit(|i| i.checker.add_origin(&origin))
    }

    /// `required`: a bearer (unbound) token is refused; `off`: DPoP-bound tokens are
    /// refused too (they cannot be checked). Default `optional`.
    pub fn dpop(self, mode: DpopMode) -> Self {
        self.edit(|i| i.checker.set_mode(mode))
    }

    /// A custom clock (tests).
    pub fn clock(self, clock: Arc<dyn Clock>) -> Self {
        self.edit(|i| i.clock = clock)
    }

    async fn fetch(&self, url: &str, client: &reqwest::Client) -> Result<KeySet, String> {
        let res = client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("JWKS fetch: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("JWKS fetch: HTTP {}", res.status()));
        }
        let body = res.bytes().await.map_err(|e| format!("JWKS fetch: {e}"))?;
        KeySet::from_jwks(&body, &self.0.issuer, &self.0.audience, self.0.leeway)
    }

    /// The cached key set, fetched first when there is none, it is older than
    /// [`JWKS_MAX_AGE`], or `unknown_kid` asks (rate-limited).
    async fn remote_keys(&self, unknown_kid: bool) -> Result<Arc<KeySet>, ApiError> {
        let Keys::Remote {
            url,
            client,
            cached,
            fetched_at,
            fetching,
        } = &self.0.keys
        else {
            unreachable!("remote_keys on a local verifier")
        };
        let now = self.0.clock.now();
        let current = cached.read().unwrap_or_else(|e| e.into_inner()).clone();
        let last = fetched_at.load(Ordering::Relaxed);
        let stale = now.saturating_sub(last) >= JWKS_MAX_AGE;
        let may_reload = now.saturating_sub(last) >= RELOAD_MIN_INTERVAL;
        let wanted = current.is_none() || stale || unknown_kid;
        let cached_now = || cached.read().unwrap_or_else(|e| e.into_inner()).clone();
        let unavailable = || ApiError::internal("JWKS unavailable (retry pending)");
        match current {
            Some(k) if !wanted => return Ok(k),
            _ if !may_reload => {
                // no fetch due (one ran or started within the interval): wait for the one in
                // flight, if any, and take what the cache holds then
                let _fetching = fetching.lock().await;
                return cached_now().ok_or_else(unavailable);
            }
            _ => {}
        }
        // one fetch at a time: whoever comes while it runs waits for it and uses its result
        // (a cold verifier hit by a burst answers every request, with one fetch)
        let _fetching = fetching.lock().await;
        if fetched_at.load(Ordering::Acquire) != last {
            return cached_now().ok_or_else(unavailable);
        }
        fetched_at.store(now, Ordering::Release);
        match self.fetch(url, client).await {
            Ok(k) => {
                let k = Arc::new(k);
                *cached.write().unwrap_or_else(|e| e.into_inner()) = Some(k.clone());
                Ok(k)
            }
            Err(e) => {
                tracing::warn!(error = %e, "resource verifier: JWKS unavailable");
                cached_now().ok_or_else(|| ApiError::internal(e))
            }
        }
    }

    /// The claims of `token` when it verifies now; `Ok(None)` when it does not.
    ///
    /// # Errors
    /// When the keys cannot be had (JWKS unreachable and nothing cached).
    pub async fn verify_token(&self, token: &str) -> Result<Option<AccessClaims>, ApiError> {
        let now = self.0.clock.now();
        let result = match &self.0.keys {
            Keys::Local(state) => state.verify_access(token, now).await,
            Keys::Remote { .. } => {
                let keys = self.remote_keys(false).await?;
                match keys.verify(token, now) {
                    Err(TokenError::UnknownKey) => self.remote_keys(true).await?.verify(token, now),
                    other => other,
                }
            }
        };
        Ok(result
            .inspect_err(|e| tracing::debug!(error = %e, "resource verifier: token refused"))
            .ok())
    }

    /// Verifies the request's access token and, for a DPoP-bound one, its proof.
    ///
    /// # Errors
    /// `unauthorized` (no or invalid token), [`ApiError::DpopRefused`] (binding rule).
    pub async fn verify_parts(&self, parts: &Parts) -> Result<AccessClaims, ApiError> {
        let access = AccessToken::from_headers(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let claims = self
            .verify_token(&access.token)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let mode = self.0.checker.mode();
        if mode == DpopMode::Required && claims.jkt().is_none()
            || mode == DpopMode::Off && claims.jkt().is_some()
        {
            return Err(ApiError::DpopRefused(AccessRefusal::InvalidToken));
        }
        dpop::accept_access(
            &self.0.checker,
            self.0.replay.as_ref(),
            parts,
            &access.token,
            access.dpop,
            claims.jkt(),
            self.0.clock.now(),
        )
        .await?;
        Ok(claims)
    }
}

/// The app clock of a [`AppState`] (tests drive it by hand).
struct StateClock(AppState);

impl Clock for StateClock {
    fn now(&self) -> i64 {
        self.0.now()
    }
}

/// The verified claims of the request's access token (see the module docs). Needs a
/// [`Verifier`] reachable from the router state.
#[derive(Debug, Clone)]
pub struct Verified(pub AccessClaims);

impl<S> FromRequestParts<S> for Verified
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Verifier::from_ref(state)
            .verify_parts(parts)
            .await
            .map(Verified)
    }
}
