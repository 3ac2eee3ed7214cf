//! HTTP handlers for the public contract (see the README route table).

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::AnomalyPolicy;
use crate::error::ApiError;
use crate::jwt::AccessClaims;
use crate::secret::{
    b64, client_binding, hash_secret, log_tag, random_bytes, random_token, RefreshToken,
};
use crate::state::AppState;
use crate::store::{
    Liveness, RotateOutcome, RotateRequest, SessionEvent, SessionLimits, SessionRecord,
    TokenPosition, UserRecord,
};
use crate::totp;

/// Name of the refresh-token cookie.
pub const REFRESH_COOKIE: &str = "__Host-tessera_rt";
/// Header an SDK request carries to prove it is not a cross-site form post.
pub const CSRF_HEADER: &str = "x-tessera-csrf";

type ApiResult<T> = Result<T, ApiError>;

// ---------------------------------------------------------------------------------------
// request plumbing

fn parse_json<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidRequest(format!("malformed JSON body: {e}")))
}

/// Who is calling: user agent and address (the `ConnectInfo` peer, or the first
/// `X-Forwarded-For` hop with `--trust-proxy`).
#[derive(Debug, Clone)]
pub struct Client {
    /// `User-Agent` (truncated to 256 bytes).
    pub user_agent: String,
    /// Client IP address, or `unknown`.
    pub address: String,
}

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mut user_agent: String = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if user_agent.len() > 256 {
            let mut cut = 256;
            while !user_agent.is_char_boundary(cut) {
                cut -= 1;
            }
            user_agent.truncate(cut);
        }
        let forwarded = state
            .config()
            .trust_proxy
            .then(|| parts.headers.get("x-forwarded-for"))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let address = forwarded
            .or(peer)
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(Client {
            user_agent,
            address,
        })
    }
}

/// The network an address belongs to for anomaly detection: IPv4 /24, IPv6 /64.
pub fn network_of(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Err(_) => address.to_string(),
    }
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == REFRESH_COOKIE)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Cross-site request protection. A present `Origin` must be same-origin (matches `Host`)
/// or allow-listed, always. A cookie-authenticated request additionally needs either such
/// an `Origin` or the `X-Tessera-CSRF` header (which a cross-site form cannot send, and a
/// cross-site script cannot send without passing the CORS allowlist).
fn check_origin(
    state: &AppState,
    headers: &HeaderMap,
    cookie_authenticated: bool,
) -> ApiResult<()> {
    let has_csrf_header = headers.get(CSRF_HEADER).is_some_and(|v| !v.is_empty());
    match headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("\u{0}"))
    {
        Some(origin) => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            let same = !host.is_empty()
                && (origin == format!("http://{host}") || origin == format!("https://{host}"));
            if same || state.config().origins().any(|o| o == origin) {
                Ok(())
            } else {
                tracing::warn!(origin = %origin.chars().take(100).collect::<String>(), "refused cross-site request");
                Err(ApiError::ForbiddenOrigin)
            }
        }
        None if !cookie_authenticated || has_csrf_header => Ok(()),
        None => Err(ApiError::ForbiddenOrigin),
    }
}

fn refresh_cookie(token: &str, max_age: i64) -> HeaderValue {
    let v = format!(
        "{REFRESH_COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
        max_age.max(0)
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The same attributes as when set, empty value, `Max-Age=0`.
fn expired_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-tessera_rt=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
    )
}

fn with_cookie(mut res: Response, cookie: HeaderValue) -> Response {
    res.headers_mut().append(header::SET_COOKIE, cookie);
    res
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Cookie,
    Token,
}

fn parse_mode(m: Option<&str>) -> ApiResult<Mode> {
    match m {
        None | Some("cookie") => Ok(Mode::Cookie),
        Some("token") => Ok(Mode::Token),
        Some(other) => Err(ApiError::InvalidRequest(format!(
            "unknown mode {other:?} (cookie|token)"
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// issuing

fn session_json(state: &AppState, s: &SessionRecord) -> serde_json::Value {
    json!({
        "id": s.sid,
        "user": s.username,
        "mfa": s.mfa,
        "created_at": s.created_at,
        "expires_at": s.expires_at,
        "last_seen": s.last_seen,
        "idle_timeout": state.config().idle_timeout,
    })
}

fn access_token(state: &AppState, s: &SessionRecord) -> ApiResult<(String, i64)> {
    let now = state.now();
    // never outlive the session's absolute lifetime
    let ttl = state.config().access_ttl.min(s.expires_at - now).max(1);
    let claims = AccessClaims {
        iss: state.keys().issuer().to_string(),
        aud: state.keys().audience().to_string(),
        sub: s.user_id.clone(),
        sid: s.sid.clone(),
        iat: now,
        exp: now + ttl,
        jti: b64(&random_bytes()[..16]),
        username: s.username.clone(),
    };
    let jwt = state.keys().sign(&claims).map_err(ApiError::Internal)?;
    Ok((jwt, ttl))
}

async fn start_session(
    state: &AppState,
    user: &UserRecord,
    mfa: bool,
    mode: Mode,
    client: &Client,
) -> ApiResult<Response> {
    let now = state.now();
    // Anti-fixation: a brand-new id and token every time; nothing the client sent is reused.
    let mut s = SessionRecord::new(
        random_token(),
        user,
        now,
        state.config().absolute_timeout,
        mfa,
    );
    s.user_agent = client.user_agent.clone();
    s.address = client.address.clone();
    let refresh = RefreshToken::generate(state.token_key());
    let limits = SessionLimits {
        max_per_user: state.config().max_sessions_per_user,
        idle: state.config().idle_timeout,
    };
    let revoked = state
        .store()
        .create_session(&s, &refresh.to_ref(), &limits)
        .await?;
    for old in &revoked {
        tracing::info!(sid = %log_tag(old), "session revoked: per-user session limit");
    }
    let refresh = refresh.encode();
    let (jwt, ttl) = access_token(state, &s)?;
    tracing::info!(sid = %log_tag(&s.sid), user = %log_tag(&s.user_id), mfa, "session created");
    let mut body = json!({
        "access_token": jwt,
        "token_type": "Bearer",
        "expires_in": ttl,
        "session": session_json(state, &s),
    });
    let res = match mode {
        Mode::Token => {
            body["refresh_token"] = json!(refresh);
            Json(body).into_response()
        }
        Mode::Cookie => with_cookie(
            Json(body).into_response(),
            refresh_cookie(&refresh, s.expires_at - now),
        ),
    };
    Ok(res)
}

// ---------------------------------------------------------------------------------------
// login + MFA

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
    #[serde(default)]
    mode: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct MfaChallenge {
    username: String,
    mode: Option<String>,
}

fn limited(state: &AppState, client: &Client, account: &str) -> ApiResult<()> {
    let now = state.now();
    state
        .0
        .address_limiter
        .check(&client.address, now)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    state
        .0
        .account_limiter
        .check(account, now)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })
}

fn record_failure(state: &AppState, client: &Client, account: &str) {
    let now = state.now();
    state.0.address_limiter.fail(&client.address, now);
    state.0.account_limiter.fail(account, now);
}

/// `POST /auth/login`
pub async fn login(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    check_origin(&state, &headers, false)?;
    let req: LoginRequest = parse_json(&body)?;
    let mode = parse_mode(req.mode.as_deref())?;
    if req.username.is_empty() || req.username.len() > 256 || req.password.len() > 1024 {
        return Err(ApiError::InvalidRequest(
            "username and password are required (bounded length)".into(),
        ));
    }
    let account = req.username.to_lowercase();
    limited(&state, &client, &account)?;
    let user = state.store().find_user(&req.username).await?;
    let hasher = state.0.hasher.clone();
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let password = req.password;
    let ok = tokio::task::spawn_blocking(move || hasher.verify(&password, phc.as_deref()))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            record_failure(&state, &client, &account);
            tracing::warn!(account = %log_tag(&account), "login failed");
            return Err(ApiError::InvalidCredentials);
        }
    };
    state.0.account_limiter.clear(&account);
    if user.totp_secret.is_some() {
        let token = random_token();
        let challenge = serde_json::to_string(&MfaChallenge {
            username: user.username.clone(),
            mode: req.mode,
        })
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        let ttl = state.config().mfa_ttl;
        state
            .store()
            .put_ephemeral(
                &format!("mfa:{}", hash_secret(&token)),
                &challenge,
                state.now() + ttl,
            )
            .await?;
        return Ok(
            Json(json!({ "mfa_required": true, "mfa_token": token, "expires_in": ttl }))
                .into_response(),
        );
    }
    start_session(&state, &user, false, mode, &client).await
}

#[derive(Deserialize)]
struct MfaRequest {
    mfa_token: String,
    code: String,
    #[serde(default)]
    mode: Option<String>,
}

/// `POST /auth/mfa`
pub async fn mfa(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    check_origin(&state, &headers, false)?;
    let req: MfaRequest = parse_json(&body)?;
    let now = state.now();
    state
        .0
        .address_limiter
        .check(&client.address, now)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    if req.mfa_token.len() > 128 {
        return Err(ApiError::MfaExpired);
    }
    let key = format!("mfa:{}", hash_secret(&req.mfa_token));
    let challenge: MfaChallenge = match state.store().get_ephemeral(&key, now).await? {
        Some(c) => serde_json::from_str(&c)
            .map_err(|e| ApiError::Internal(format!("mfa challenge: {e}")))?,
        None => return Err(ApiError::MfaExpired),
    };
    let mode = parse_mode(req.mode.as_deref().or(challenge.mode.as_deref()))?;
    let account = challenge.username.to_lowercase();
    limited(&state, &client, &account)?;
    let user = state
        .store()
        .find_user(&challenge.username)
        .await?
        .ok_or(ApiError::MfaExpired)?;
    let secret = user
        .totp_secret
        .as_deref()
        .ok_or_else(|| ApiError::Internal("user has no TOTP secret".into()))
        .and_then(|s| {
            totp::Totp::from_base32(s)
                .map_err(|e| ApiError::Internal(format!("user's TOTP secret: {e}")))
        })?;
    let Some(step) = secret.verify(req.code.trim(), now) else {
        record_failure(&state, &client, &account);
        tracing::warn!(account = %log_tag(&account), "mfa code rejected");
        return Err(ApiError::MfaInvalid);
    };
    // Replay guard: only a step later than the last accepted one (each code once, and
    // never an older code after a newer one).
    if !totp::accept_step(state.store().as_ref(), &user.id, step, now).await? {
        record_failure(&state, &client, &account);
        tracing::warn!(account = %log_tag(&account), "mfa code replayed");
        return Err(ApiError::MfaInvalid);
    }
    if state.store().take_ephemeral(&key, now).await?.is_none() {
        return Err(ApiError::MfaExpired);
    }
    state.0.account_limiter.clear(&account);
    start_session(&state, &user, true, mode, &client).await
}

// ---------------------------------------------------------------------------------------
// refresh

#[derive(Deserialize, Default)]
struct RefreshRequest {
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    mode: Option<String>,
}

/// Compares the client with what the session last saw; records anomalies; may revoke.
async fn anomaly_check(state: &AppState, s: &SessionRecord, client: &Client) -> ApiResult<()> {
    let now = state.now();
    let mut events = Vec::new();
    if !s.user_agent.is_empty() && s.user_agent != client.user_agent {
        events.push(SessionEvent {
            at: now,
            kind: "user_agent_changed".into(),
            detail: format!("{} -> {}", s.user_agent, client.user_agent),
        });
    }
    let (old_net, new_net) = (network_of(&s.address), network_of(&client.address));
    if !s.address.is_empty() && old_net != new_net {
        events.push(SessionEvent {
            at: now,
            kind: "network_changed".into(),
            detail: format!("{old_net} -> {new_net}"),
        });
    }
    if events.is_empty() {
        if s.address != client.address {
            state
                .store()
                .update_client(&s.sid, &client.user_agent, &client.address, None)
                .await?;
        }
        return Ok(());
    }
    for e in &events {
        tracing::warn!(sid = %log_tag(&s.sid), kind = %e.kind, "session anomaly");
        state
            .store()
            .update_client(&s.sid, &client.user_agent, &client.address, Some(e))
            .await?;
    }
    if state.config().anomaly_policy == AnomalyPolicy::Revoke {
        state.store().revoke_session(&s.sid, "anomaly", now).await?;
        state
            .store()
            .update_client(
                &s.sid,
                &client.user_agent,
                &client.address,
                Some(&SessionEvent {
                    at: now,
                    kind: "revoked".into(),
                    detail: "anomaly policy".into(),
                }),
            )
            .await?;
        return Err(ApiError::SessionRevoked);
    }
    Ok(())
}

/// Errors that end the session for good clear the cookie too (cookie mode).
fn definitive(e: ApiError, mode: Mode) -> Response {
    let clear = matches!(
        e,
        ApiError::RefreshInvalid
            | ApiError::RefreshReused
            | ApiError::SessionRevoked
            | ApiError::SessionExpired
    );
    let res = e.into_response();
    if clear && mode == Mode::Cookie {
        with_cookie(res, expired_cookie())
    } else {
        res
    }
}

/// `POST /auth/refresh`
pub async fn refresh(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: RefreshRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RefreshRequest::default()
    } else {
        match parse_json(&body) {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        }
    };
    let (presented, mode) = match req.refresh_token {
        Some(t) => (Some(t), Mode::Token),
        None => (cookie_value(&headers), Mode::Cookie),
    };
    if let Err(e) = check_origin(&state, &headers, mode == Mode::Cookie) {
        return e.into_response();
    }
    match do_refresh(&state, &client, presented.as_deref()).await {
        Ok((s, token, ttl, jwt)) => {
            let now = state.now();
            let mut body = json!({
                "access_token": jwt,
                "token_type": "Bearer",
                "expires_in": ttl,
                "session": session_json(&state, &s),
            });
            match mode {
                Mode::Token => {
                    body["refresh_token"] = json!(token);
                    Json(body).into_response()
                }
                Mode::Cookie => with_cookie(
                    Json(body).into_response(),
                    refresh_cookie(&token, s.expires_at - now),
                ),
            }
        }
        Err(e) => definitive(e, mode),
    }
}

async fn do_refresh(
    state: &AppState,
    client: &Client,
    presented: Option<&str>,
) -> ApiResult<(SessionRecord, String, i64, String)> {
    let presented = presented.ok_or(ApiError::RefreshInvalid)?;
    let key = state.token_key();
    let presented_token = RefreshToken::decode(presented, key).ok_or(ApiError::RefreshInvalid)?;
    let successor = presented_token.successor(key);
    let req = RotateRequest {
        presented: presented_token.to_ref(),
        new_hash: successor.to_ref().hash,
        sealed_successor: state
            .master_key()
            .seal_successor(presented_token.secret(), successor.secret()),
        client: client_binding(&client.user_agent, &network_of(&client.address)),
        now: state.now(),
        grace: state.config().refresh_grace,
        idle: state.config().idle_timeout,
    };
    let (s, token) = match state.store().rotate(&req).await? {
        RotateOutcome::Rotated(s) => (s, successor.encode()),
        RotateOutcome::Grace { session, sealed } => {
            tracing::info!(sid = %log_tag(&session.sid), "refresh within grace: re-sending successor");
            let secret = state
                .master_key()
                .open_successor(presented_token.secret(), &sealed)
                .ok_or_else(|| ApiError::Internal("grace successor does not open".into()))?;
            (session, presented_token.with_secret(key, secret).encode())
        }
        RotateOutcome::Reused { sid } => {
            tracing::warn!(sid = %log_tag(&sid), "refresh token reuse: family revoked");
            return Err(ApiError::RefreshReused);
        }
        RotateOutcome::Revoked => return Err(ApiError::SessionRevoked),
        RotateOutcome::Expired => return Err(ApiError::SessionExpired),
        RotateOutcome::Unknown => return Err(ApiError::RefreshInvalid),
    };
    anomaly_check(state, &s, client).await?;
    let (jwt, ttl) = access_token(state, &s)?;
    Ok((s, token, ttl, jwt))
}

// ---------------------------------------------------------------------------------------
// logout

/// Finds the session a logout-style request is about: refresh cookie, body
/// `refresh_token`, or bearer access token.
async fn identify(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<(Option<SessionRecord>, Mode)> {
    let req: RefreshRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RefreshRequest::default()
    } else {
        parse_json(body)?
    };
    let now = state.now();
    let grace = state.config().refresh_grace;
    let live = |s: &SessionRecord| s.liveness(now, state.config().idle_timeout) == Liveness::Live;
    let mut found: Option<(SessionRecord, Mode)> = None;
    if let Some(t) = req.refresh_token {
        check_origin(state, headers, false)?;
        found = state
            .store()
            .lookup_presented(state.token_key(), &t, now, grace)
            .await?
            .map(|(s, _)| (s, Mode::Token));
    } else if let Some(t) = cookie_value(headers) {
        check_origin(state, headers, true)?;
        found = state
            .store()
            .lookup_presented(state.token_key(), &t, now, grace)
            .await?
            .map(|(s, _)| (s, Mode::Cookie));
    }
    // A dead refresh token does not speak for the user; a valid bearer token still may.
    if !found.as_ref().is_some_and(|(s, _)| live(s)) {
        if let Some(t) = bearer(headers) {
            check_origin(state, headers, false)?;
            if let Ok(c) = state.keys().verify(t, now) {
                if let Some(s) = state.store().get_session(&c.sid).await?.filter(|s| live(s)) {
                    return Ok((Some(s), Mode::Token));
                }
            }
        }
    }
    Ok(match found {
        Some((s, m)) => (Some(s), m),
        None => (None, Mode::Cookie),
    })
}

fn logged_out() -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, expired_cookie());
    h.insert(
        "clear-site-data",
        HeaderValue::from_static("\"cookies\", \"storage\""),
    );
    res
}

/// `POST /auth/logout` — always 204 (idempotent), revoking the session if one is identified.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (s, _) = identify(&state, &headers, &body).await?;
    if let Some(s) = s {
        if state
            .store()
            .revoke_session(&s.sid, "logout", state.now())
            .await?
        {
            tracing::info!(sid = %log_tag(&s.sid), "logout");
        }
    }
    Ok(logged_out())
}

/// `POST /auth/logout-all` — revokes every session of the caller's user.
pub async fn logout_all(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (s, _) = identify(&state, &headers, &body).await?;
    let s = s
        .filter(|s| s.liveness(state.now(), state.config().idle_timeout) == Liveness::Live)
        .ok_or(ApiError::Unauthorized)?;
    let n = state
        .store()
        .revoke_user_sessions(&s.user_id, "logout_all", state.now())
        .await?;
    tracing::info!(user = %log_tag(&s.user_id), revoked = n, "logout everywhere");
    Ok(logged_out())
}

// ---------------------------------------------------------------------------------------
// bearer-authenticated routes

/// Verifies the bearer token and that its session is live.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> ApiResult<(AccessClaims, SessionRecord)> {
    let token = bearer(headers).ok_or(ApiError::Unauthorized)?;
    let now = state.now();
    let claims = state.keys().verify(token, now).map_err(|e| {
        tracing::debug!(error = %e, "bearer rejected");
        ApiError::Unauthorized
    })?;
    let s = state
        .store()
        .get_session(&claims.sid)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    match s.liveness(now, state.config().idle_timeout) {
        Liveness::Live => Ok((claims, s)),
        _ => Err(ApiError::Unauthorized),
    }
}

/// `GET /api/me`
pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let (c, _) = authenticate(&state, &headers).await?;
    Ok(Json(json!({ "sub": c.sub, "sid": c.sid, "username": c.username })).into_response())
}

/// `GET /auth/session`
pub async fn current_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (_, s) = authenticate(&state, &headers).await?;
    Ok(Json(session_json(&state, &s)).into_response())
}

/// `GET /auth/sessions`
pub async fn list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (c, _) = authenticate(&state, &headers).await?;
    let now = state.now();
    let idle = state.config().idle_timeout;
    let list: Vec<_> = state
        .store()
        .list_sessions(&c.sub)
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "id": s.sid,
                "current": s.sid == c.sid,
                "active": s.liveness(now, idle) == Liveness::Live,
                "mfa": s.mfa,
                "created_at": s.created_at,
                "last_seen": s.last_seen,
                "expires_at": s.expires_at,
                "user_agent": s.user_agent,
                "address": s.address,
                "revoked_at": s.revoked_at,
                "revoke_reason": s.revoke_reason,
                "events": s.events,
            })
        })
        .collect();
    Ok(Json(json!({ "sessions": list })).into_response())
}

/// `DELETE /auth/sessions/{id}`
pub async fn delete_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    check_origin(&state, &headers, false)?;
    let (c, _) = authenticate(&state, &headers).await?;
    let target = state.store().get_session(&id).await?;
    match target {
        Some(t) if t.user_id == c.sub => {
            state
                .store()
                .revoke_session(&t.sid, "remote_revoke", state.now())
                .await?;
            tracing::info!(sid = %log_tag(&t.sid), by = %log_tag(&c.sid), "session revoked remotely");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(ApiError::NotFound),
    }
}

// ---------------------------------------------------------------------------------------
// vault key, introspection, JWKS

/// `POST /auth/vault-key` — only with the refresh cookie (HttpOnly), never a bearer.
pub async fn vault_key(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    check_origin(&state, &headers, true)?;
    let token = cookie_value(&headers).ok_or(ApiError::RefreshInvalid)?;
    let now = state.now();
    let (s, pos) = state
        .store()
        .lookup_presented(state.token_key(), &token, now, state.config().refresh_grace)
        .await?
        .ok_or(ApiError::RefreshInvalid)?;
    match s.liveness(now, state.config().idle_timeout) {
        Liveness::Revoked => return Err(ApiError::SessionRevoked),
        Liveness::Expired => return Err(ApiError::SessionExpired),
        Liveness::Live => {}
    }
    if pos == TokenPosition::Superseded {
        return Err(ApiError::RefreshInvalid);
    }
    let key = s.vault_key.ok_or(ApiError::SessionRevoked)?;
    Ok(Json(json!({ "key": b64(&key) })).into_response())
}

#[derive(Deserialize)]
struct IntrospectRequest {
    token: String,
}

/// `POST /auth/introspect` — RFC 7662 shape; accepts JSON or form-encoded `token=`.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let token = if is_form {
        std::str::from_utf8(&body)
            .ok()
            .and_then(|s| s.split('&').find_map(|kv| kv.strip_prefix("token=")))
            .map(|t| t.replace('+', " "))
            .ok_or_else(|| ApiError::InvalidRequest("token is required".into()))?
    } else {
        parse_json::<IntrospectRequest>(&body)?.token
    };
    let now = state.now();
    let inactive = || Ok(Json(json!({ "active": false })).into_response());
    let Ok(c) = state.keys().verify(&token, now) else {
        return inactive();
    };
    let Some(s) = state.store().get_session(&c.sid).await? else {
        return inactive();
    };
    if s.liveness(now, state.config().idle_timeout) != Liveness::Live {
        return inactive();
    }
    Ok(Json(json!({
        "active": true,
        "sub": c.sub,
        "sid": c.sid,
        "username": c.username,
        "exp": c.exp,
        "iat": c.iat,
        "iss": c.iss,
        "aud": c.aud,
        "jti": c.jti,
        "token_type": "Bearer",
        "mfa": s.mfa,
    }))
    .into_response())
}

/// `GET /.well-known/jwks.json`
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut res = Json(state.keys().jwks()).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

/// Fallback for unknown routes outside demo mode.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
