//! Transport-free session logic: login (password and TOTP steps), issuing, rotation,
//! revocation, identification of the session a logout is about, introspection and the
//! anomaly policy. Routes translate HTTP into these calls; tests can drive them directly.

use serde::{Deserialize, Serialize};

use crate::config::AnomalyPolicy;
use crate::error::ApiError;
use crate::extract::{network_of, AuthSession, ClientAddr};
use crate::jwt::AccessClaims;
use crate::secret::{
    b64, decode_token, hash_secret, log_tag, open_successor, random_bytes, random_token,
    seal_successor,
};
use crate::state::AppState;
use crate::store::{
    Liveness, RotateOutcome, RotateRequest, SessionEvent, SessionRecord, TokenPosition, UserRecord,
};
use crate::totp;

type ApiResult<T> = Result<T, ApiError>;

/// A freshly issued (or rotated) session: what the client receives.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The session.
    pub session: SessionRecord,
    /// The signed access token.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// The new refresh token (goes to the cookie or the body).
    pub refresh_token: String,
}

/// The result of the password step.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// Logged in.
    Session(Box<Issued>),
    /// A TOTP code is needed: present `mfa_token` with it to `/auth/mfa`.
    MfaRequired {
        /// The one-time challenge token.
        mfa_token: String,
        /// Its lifetime in seconds.
        expires_in: i64,
    },
}

/// What the store keeps for a pending MFA challenge.
#[derive(Serialize, Deserialize)]
pub(crate) struct MfaChallenge {
    pub username: String,
    pub mode: Option<String>,
}

/// Signs an access token for `s`, never outliving its absolute lifetime.
///
/// # Errors
/// Only when signing fails.
pub fn access_token(state: &AppState, s: &SessionRecord) -> ApiResult<(String, i64)> {
    let now = state.now();
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
    let jwt = state.keys().sign(&claims).map_err(ApiError::internal)?;
    Ok((jwt, ttl))
}

/// Creates a brand-new session for `user` (anti-fixation: nothing the client sent is reused).
///
/// # Errors
/// When the store or signing fails.
pub async fn issue(
    state: &AppState,
    user: &UserRecord,
    mfa: bool,
    client: &ClientAddr,
) -> ApiResult<Issued> {
    let now = state.now();
    let mut s = SessionRecord::new(
        random_token(),
        user,
        now,
        state.config().absolute_timeout,
        mfa,
    );
    s.user_agent = client.user_agent.clone();
    s.address = client.address.clone();
    let refresh = b64(&random_bytes());
    state
        .store()
        .create_session(&s, &hash_secret(&refresh))
        .await?;
    let (jwt, ttl) = access_token(state, &s)?;
    tracing::info!(sid = %log_tag(&s.sid), user = %log_tag(&s.user_id), mfa, "session created");
    Ok(Issued {
        session: s,
        access_token: jwt,
        expires_in: ttl,
        refresh_token: refresh,
    })
}

fn limited(state: &AppState, client: &ClientAddr, account: &str) -> ApiResult<()> {
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

fn record_failure(state: &AppState, client: &ClientAddr, account: &str) {
    let now = state.now();
    state.0.address_limiter.fail(&client.address, now);
    state.0.account_limiter.fail(account, now);
}

/// The password step.
///
/// # Errors
/// `invalid_credentials`, `rate_limited`, or a store failure.
pub async fn login(
    state: &AppState,
    client: &ClientAddr,
    username: &str,
    password: &str,
    mode: Option<String>,
) -> ApiResult<LoginOutcome> {
    let account = username.to_lowercase();
    limited(state, client, &account)?;
    let user = state.store().find_user(username).await?;
    let hasher = state.0.hasher.clone();
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let password = password.to_string();
    let ok = tokio::task::spawn_blocking(move || hasher.verify(&password, phc.as_deref()))
        .await
        .map_err(ApiError::internal)?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            record_failure(state, client, &account);
            tracing::warn!(account = %log_tag(&account), "login failed");
            return Err(ApiError::InvalidCredentials);
        }
    };
    state.0.account_limiter.clear(&account);
    if user.totp_secret.is_some() {
        let token = random_token();
        let challenge = serde_json::to_string(&MfaChallenge {
            username: user.username.clone(),
            mode,
        })
        .map_err(ApiError::internal)?;
        let ttl = state.config().mfa_ttl;
        state
            .store()
            .put_ephemeral(
                &format!("mfa:{}", hash_secret(&token)),
                &challenge,
                state.now() + ttl,
            )
            .await?;
        return Ok(LoginOutcome::MfaRequired {
            mfa_token: token,
            expires_in: ttl,
        });
    }
    Ok(LoginOutcome::Session(Box::new(
        issue(state, &user, false, client).await?,
    )))
}

/// The TOTP step. Returns the session and the `mode` the password step asked for.
///
/// # Errors
/// `mfa_invalid`, `mfa_expired`, `rate_limited`, or a store failure.
pub async fn verify_mfa(
    state: &AppState,
    client: &ClientAddr,
    mfa_token: &str,
    code: &str,
) -> ApiResult<(Issued, Option<String>)> {
    let now = state.now();
    state
        .0
        .address_limiter
        .check(&client.address, now)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    if mfa_token.len() > 128 {
        return Err(ApiError::MfaExpired);
    }
    let key = format!("mfa:{}", hash_secret(mfa_token));
    let challenge: MfaChallenge = match state.store().get_ephemeral(&key, now).await? {
        Some(c) => serde_json::from_str(&c).map_err(ApiError::internal)?,
        None => return Err(ApiError::MfaExpired),
    };
    let account = challenge.username.to_lowercase();
    limited(state, client, &account)?;
    let user = state
        .store()
        .find_user(&challenge.username)
        .await?
        .ok_or(ApiError::MfaExpired)?;
    let secret = user
        .totp_secret
        .as_deref()
        .and_then(totp::base32_decode)
        .ok_or_else(|| ApiError::internal("user has no usable TOTP secret"))?;
    let Some(step) = totp::verify(&secret, code.trim(), now) else {
        record_failure(state, client, &account);
        tracing::warn!(account = %log_tag(&account), "mfa code rejected");
        return Err(ApiError::MfaInvalid);
    };
    // Each code (time step) is accepted once per user, for as long as it could be valid.
    let once = format!("totp:{}:{step}", user.id);
    if !state
        .store()
        .use_once(&once, (step + 2) * totp::STEP, now)
        .await?
    {
        record_failure(state, client, &account);
        tracing::warn!(account = %log_tag(&account), "mfa code replayed");
        return Err(ApiError::MfaInvalid);
    }
    if state.store().take_ephemeral(&key, now).await?.is_none() {
        return Err(ApiError::MfaExpired);
    }
    state.0.account_limiter.clear(&account);
    Ok((issue(state, &user, true, client).await?, challenge.mode))
}

/// Compares the client with what the session last saw; records anomalies; may revoke.
///
/// # Errors
/// `session_revoked` when the anomaly policy revoked the session, or a store failure.
pub async fn anomaly_check(
    state: &AppState,
    s: &SessionRecord,
    client: &ClientAddr,
) -> ApiResult<()> {
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

/// Rotates the presented refresh token (RFC 9700 reuse detection, grace for the immediate
/// predecessor), then applies the anomaly policy.
///
/// # Errors
/// `refresh_invalid`, `refresh_reused`, `session_revoked`, `session_expired`, or a store failure.
pub async fn rotate(
    state: &AppState,
    client: &ClientAddr,
    presented: Option<&str>,
) -> ApiResult<Issued> {
    let presented = presented.ok_or(ApiError::RefreshInvalid)?;
    let raw = decode_token(presented).ok_or(ApiError::RefreshInvalid)?;
    let successor = random_bytes();
    let req = RotateRequest {
        presented_hash: hash_secret(presented),
        new_hash: hash_secret(&b64(&successor)),
        sealed_successor: seal_successor(&raw, &successor),
        now: state.now(),
        grace: state.config().refresh_grace,
        idle: state.config().idle_timeout,
    };
    let started = std::time::Instant::now();
    let outcome = state.store().rotate(&req).await;
    state.metrics().store_op("rotate", started.elapsed());
    let outcome = outcome?;
    state.metrics().refresh(&outcome);
    let (s, token) = match outcome {
        RotateOutcome::Rotated(s) => (s, b64(&successor)),
        RotateOutcome::Grace { session, sealed } => {
            tracing::info!(sid = %log_tag(&session.sid), "refresh within grace: re-sending successor");
            (session, b64(&open_successor(&raw, &sealed)))
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
    Ok(Issued {
        session: s,
        access_token: jwt,
        expires_in: ttl,
        refresh_token: token,
    })
}

/// Finds the session a logout-style request is about: the refresh token (body or cookie),
/// else a live bearer access token.
///
/// # Errors
/// Only when the store fails.
pub async fn identify(
    state: &AppState,
    refresh: Option<&str>,
    bearer: Option<&str>,
) -> ApiResult<Option<SessionRecord>> {
    let now = state.now();
    let live = |s: &SessionRecord| s.liveness(now, state.config().idle_timeout) == Liveness::Live;
    let mut found = None;
    if let Some(t) = refresh {
        found = state
            .store()
            .lookup_refresh(&hash_secret(t), now, state.config().refresh_grace)
            .await?
            .map(|(s, _)| s);
    }
    // A dead refresh token does not speak for the user; a valid bearer token still may.
    if !found.as_ref().is_some_and(live) {
        if let Some(t) = bearer {
            if let Some(a) = AuthSession::verify(state, t).await? {
                return Ok(Some(a.session));
            }
        }
    }
    Ok(found)
}

/// Revokes one session (and destroys its vault key). Returns whether it was live.
///
/// # Errors
/// Only when the store fails.
pub async fn revoke(state: &AppState, sid: &str, reason: &str) -> ApiResult<bool> {
    let was_live = state
        .store()
        .revoke_session(sid, reason, state.now())
        .await?;
    if was_live {
        tracing::info!(sid = %log_tag(sid), reason, "session revoked");
    }
    Ok(was_live)
}

/// Revokes every session of `user_id`; returns how many were live.
///
/// # Errors
/// Only when the store fails.
pub async fn revoke_user(state: &AppState, user_id: &str, reason: &str) -> ApiResult<usize> {
    let n = state
        .store()
        .revoke_user_sessions(user_id, reason, state.now())
        .await?;
    tracing::info!(user = %log_tag(user_id), revoked = n, reason, "user sessions revoked");
    Ok(n)
}

/// The vault key of the session the refresh cookie belongs to (current or grace token only).
///
/// # Errors
/// `refresh_invalid`, `session_revoked`, `session_expired`, or a store failure.
pub async fn vault_key(state: &AppState, presented: Option<&str>) -> ApiResult<[u8; 32]> {
    let token = presented.ok_or(ApiError::RefreshInvalid)?;
    let now = state.now();
    let (s, pos) = state
        .store()
        .lookup_refresh(&hash_secret(token), now, state.config().refresh_grace)
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
    s.vault_key.ok_or(ApiError::SessionRevoked)
}
