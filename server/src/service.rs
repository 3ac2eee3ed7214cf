//! Transport-free session logic: login (password and TOTP steps), issuing, rotation,
//! revocation, identification of the session a logout is about, introspection and the
//! anomaly policy. Routes translate HTTP into these calls; tests can drive them directly.

use serde::{Deserialize, Serialize};

use crate::config::AnomalyPolicy;
use crate::dpop::{self, DpopMode, Proof, ProofError};
use crate::error::ApiError;
use crate::extract::{network_of, AccessToken, AuthSession, ClientAddr};
use crate::jwt::{AccessClaims, Confirmation};
use crate::secret::{
    b64, client_binding, hash_secret, log_tag, random_bytes, random_token, RefreshToken,
};
use crate::state::AppState;
use crate::store::{
    Liveness, RotateOutcome, RotateRequest, SessionEvent, SessionLimits, SessionRecord,
    TokenPosition, UserRecord,
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
    /// The DPoP key thumbprint the session is bound to (`token_type` `DPoP`), if any.
    pub jkt: Option<String>,
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
    /// The DPoP key of the password step's proof: the TOTP step must come from it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

/// Signs an access token for `s`, never outliving its absolute lifetime, bound to the DPoP
/// key `jkt` when given (`cnf.jkt`).
///
/// # Errors
/// Only when signing fails.
pub fn access_token(
    state: &AppState,
    s: &SessionRecord,
    jkt: Option<&str>,
) -> ApiResult<(String, i64)> {
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
        nbf: None,
        cnf: jkt.map(|j| Confirmation { jkt: j.to_string() }),
    };
    let jwt = state.keys().sign(&claims).map_err(ApiError::internal)?;
    Ok((jwt, ttl))
}

/// Creates a brand-new session for `user` (anti-fixation: nothing the client sent is reused),
/// bound to the DPoP key `jkt` when the request carried a proof.
///
/// # Errors
/// When the store or signing fails.
pub async fn issue(
    state: &AppState,
    user: &UserRecord,
    mfa: bool,
    client: &ClientAddr,
    jkt: Option<&str>,
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
    if let Some(j) = jkt {
        bind(state, &refresh.to_ref().family, j, s.expires_at).await?;
    }
    let refresh = refresh.encode();
    let (jwt, ttl) = access_token(state, &s, jkt)?;
    tracing::info!(sid = %log_tag(&s.sid), user = %log_tag(&s.user_id), mfa, dpop = jkt.is_some(), network = %client.bucket(), user_agent = %client.user_agent, "session created");
    Ok(Issued {
        session: s,
        access_token: jwt,
        expires_in: ttl,
        refresh_token: refresh,
        jkt: jkt.map(str::to_string),
    })
}

fn throttled(retry_after: u64) -> ApiError {
    ApiError::RateLimited { retry_after }
}

/// The password step. Reserves a slot in the throttle counters before any Argon2 work
/// (refunded on success), verifies on the bounded hashing pool, upgrades a hash made with
/// older parameters, and ends the session of a still-live refresh cookie the browser sent
/// (`current_refresh`).
///
/// # Errors
/// `invalid_credentials`, `rate_limited`, `overloaded`, or a store failure.
pub async fn login(
    state: &AppState,
    client: &ClientAddr,
    username: &str,
    password: &str,
    mode: Option<String>,
    current_refresh: Option<&str>,
    proof: Option<&Proof>,
) -> ApiResult<LoginOutcome> {
    require_proof(state, proof)?;
    let account = username.to_lowercase();
    let policy = state.policy();
    let rules = policy.throttle.password_rules(&account, &client.bucket());
    if let Some(retry) = policy.throttle.reserve(&rules, state.now()).await? {
        tracing::warn!(account = %log_tag(&account), network = %client.bucket(), user_agent = %client.user_agent, "login throttled");
        return Err(throttled(retry));
    }
    let user = state.store().find_user(username).await?;
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let pw = password.to_string();
    let verified = policy
        .hashes
        .run(move |h| {
            let ok = h.verify(&pw, phc.as_deref());
            let upgrade = (ok && phc.as_deref().is_some_and(|p| h.needs_rehash(p)))
                .then(|| h.hash(&pw).ok())
                .flatten();
            (ok, upgrade)
        })
        .await;
    let (ok, upgrade) = match verified {
        Ok(v) => v,
        Err(_) => {
            policy.throttle.refund(&rules, state.now()).await?;
            tracing::warn!(network = %client.bucket(), "login refused: password hashing saturated");
            return Err(ApiError::Overloaded { retry_after: 1 });
        }
    };
    let mut user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            tracing::warn!(account = %log_tag(&account), network = %client.bucket(), user_agent = %client.user_agent, "login failed");
            return Err(ApiError::InvalidCredentials);
        }
    };
    policy.throttle.refund(&rules, state.now()).await?;
    if let Some(hash) = upgrade {
        user.password_hash = hash;
        state.store().upsert_user(&user).await?;
        tracing::info!(user = %log_tag(&user.id), "password hash upgraded to the current parameters");
    }
    match identify(state, client, current_refresh, None, proof).await {
        Ok(Caller::Session(old) | Caller::Superseded(old)) => {
            revoke(state, &old.sid, "login", client).await?;
        }
        // a DPoP-bound cookie without its key: the binding rule already ended that session
        Ok(Caller::Nobody) | Err(ApiError::InvalidDpopProof(_)) => {}
        Err(e) => return Err(e),
    }
    if user.totp_secret.is_some() {
        let token = random_token();
        let challenge = serde_json::to_string(&MfaChallenge {
            username: user.username.clone(),
            mode,
            jkt: proof.map(|p| p.jkt.clone()),
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
        tracing::info!(account = %log_tag(&account), network = %client.bucket(), user_agent = %client.user_agent, "password accepted, TOTP required");
        return Ok(LoginOutcome::MfaRequired {
            mfa_token: token,
            expires_in: ttl,
        });
    }
    Ok(LoginOutcome::Session(Box::new(
        issue(state, &user, false, client, proof.map(|p| p.jkt.as_str())).await?,
    )))
}

/// The TOTP step. The challenge's own budget ([`MFA_TOKEN_ATTEMPTS`](crate::throttle::MFA_TOKEN_ATTEMPTS) codes) and the
/// account's TOTP counters are reserved before the code is checked. Returns the session
/// and the `mode` the password step asked for.
///
/// # Errors
/// `mfa_invalid`, `mfa_expired`, `rate_limited`, or a store failure.
pub async fn verify_mfa(
    state: &AppState,
    client: &ClientAddr,
    mfa_token: &str,
    code: &str,
    proof: Option<&Proof>,
) -> ApiResult<(Issued, Option<String>)> {
    require_proof(state, proof)?;
    let now = state.now();
    if mfa_token.len() > 128 {
        return Err(ApiError::MfaExpired);
    }
    let token_hash = hash_secret(mfa_token);
    let key = format!("mfa:{token_hash}");
    let challenge: MfaChallenge = match state.store().get_ephemeral(&key, now).await? {
        Some(c) => serde_json::from_str(&c).map_err(ApiError::internal)?,
        None => return Err(ApiError::MfaExpired),
    };
    let account = challenge.username.to_lowercase();
    if let Some(j) = &challenge.jkt {
        if proof.map(|p| &p.jkt) != Some(j) {
            // the challenge left the client that answered the password step: it dies
            state.store().take_ephemeral(&key, now).await?;
            tracing::warn!(account = %log_tag(&account), network = %client.bucket(), user_agent = %client.user_agent, "mfa step without the password step's DPoP key: challenge ended");
            return Err(ApiError::InvalidDpopProof(if proof.is_some() {
                ProofError::Key
            } else {
                ProofError::Missing
            }));
        }
    }
    let throttle = &state.policy().throttle;
    let mut rules = throttle.mfa_rules(&account, &client.bucket(), &token_hash);
    let token_rule = rules.split_off(rules.len() - 1);
    if throttle.reserve(&token_rule, now).await?.is_some() {
        state.store().take_ephemeral(&key, now).await?;
        tracing::warn!(account = %log_tag(&account), network = %client.bucket(), user_agent = %client.user_agent, "mfa challenge exhausted");
        return Err(ApiError::MfaExpired);
    }
    if let Some(retry) = throttle.reserve(&rules, now).await? {
        throttle.refund(&token_rule, now).await?;
        tracing::warn!(account = %log_tag(&account), network = %client.bucket(), user_agent = %client.user_agent, "mfa throttled");
        return Err(throttled(retry));
    }
    let user = state
        .store()
        .find_user(&challenge.username)
        .await?
        .ok_or(ApiError::MfaExpired)?;
    let secret = user
        .totp_secret
        .as_deref()
        .ok_or_else(|| ApiError::internal("user has no TOTP secret"))
        .and_then(|s| {
            totp::Totp::from_base32(s)
                .map_err(|e| ApiError::internal(format!("user's TOTP secret: {e}")))
        })?;
    let Some(step) = secret.verify(code.trim(), now) else {
        tracing::warn!(account = %log_tag(&account), network = %client.bucket(), user_agent = %client.user_agent, "mfa code rejected");
        return Err(ApiError::MfaInvalid);
    };
    // Replay guard: only a step later than the last accepted one (each code once, and
    // never an older code after a newer one).
    if !totp::accept_step(state.store().as_ref(), &user.id, step, now).await? {
        tracing::warn!(account = %log_tag(&account), network = %client.bucket(), user_agent = %client.user_agent, "mfa code rejected (replayed)");
        return Err(ApiError::MfaInvalid);
    }
    if state.store().take_ephemeral(&key, now).await?.is_none() {
        return Err(ApiError::MfaExpired);
    }
    throttle.refund(&rules, now).await?;
    let jkt = proof.map(|p| p.jkt.as_str());
    Ok((
        issue(state, &user, true, client, jkt).await?,
        challenge.mode,
    ))
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

/// Rotates the presented refresh token (RFC 9700 reuse detection; grace for a token the same
/// client superseded within the window, see [`crate::store::MAX_GRACE_CHAIN`]), then applies
/// the anomaly policy.
///
/// # Errors
/// `refresh_invalid`, `refresh_reused`, `session_revoked`, `session_expired`, or a store failure.
pub async fn rotate(
    state: &AppState,
    client: &ClientAddr,
    presented: Option<&str>,
    proof: Option<&Proof>,
) -> ApiResult<Issued> {
    let presented = presented.ok_or(ApiError::RefreshInvalid)?;
    let key = state.token_key();
    let presented_token = RefreshToken::decode(presented, key).ok_or(ApiError::RefreshInvalid)?;
    let family = presented_token.to_ref().family;
    let bound = match refresh_binding(state, &family, proof).await? {
        Binding::Theft(e) => return Err(theft(state, client, presented, e).await?),
        Binding::Bound(jkt) => Some(jkt),
        Binding::Unbound => {
            require_proof(state, proof)?;
            None
        }
    };
    let successor = presented_token.successor(key);
    let req = RotateRequest {
        presented: presented_token.to_ref(),
        new_hash: successor.to_ref().hash,
        sealed_successor: state
            .master_key()
            .seal_successor(presented_token.secret(), successor.secret()),
        client: binding(client),
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
        RotateOutcome::Rotated(s) => (s, successor.encode()),
        RotateOutcome::Grace { session, chain } => {
            tracing::info!(
                sid = %log_tag(&session.sid),
                behind = chain.len(),
                "refresh within grace: re-sending the current token"
            );
            // each sealed successor opens with the secret the previous one yielded
            let mut secret = *presented_token.secret();
            for sealed in &chain {
                secret = state
                    .master_key()
                    .open_successor(&secret, sealed)
                    .ok_or_else(|| ApiError::internal("grace successor does not open"))?;
            }
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
    // an unbound session refreshed with a proof is bound from now on
    let jkt = match (bound, proof) {
        (Some(j), _) => Some(j),
        (None, Some(p)) => {
            bind(state, &family, &p.jkt, s.expires_at).await?;
            tracing::info!(sid = %log_tag(&s.sid), "session bound to a DPoP key at refresh");
            Some(p.jkt.clone())
        }
        (None, None) => None,
    };
    let (jwt, ttl) = access_token(state, &s, jkt.as_deref())?;
    Ok(Issued {
        session: s,
        access_token: jwt,
        expires_in: ttl,
        refresh_token: token,
        jkt,
    })
}

/// `--dpop required`: a login, MFA step or refresh without a proof is refused.
fn require_proof(state: &AppState, proof: Option<&Proof>) -> ApiResult<()> {
    if proof.is_none() && state.dpop().mode() == DpopMode::Required {
        return Err(ApiError::InvalidDpopProof(ProofError::Missing));
    }
    Ok(())
}

/// Records that the refresh-token family `family` is bound to the DPoP key `jkt`, for as
/// long as the session can live.
async fn bind(state: &AppState, family: &str, jkt: &str, until: i64) -> ApiResult<()> {
    state
        .store()
        .put_ephemeral(&dpop::binding_key(family), jkt, until)
        .await?;
    Ok(())
}

/// What a request's proof says about a refresh token's DPoP binding.
enum Binding {
    /// The family is bound to no key.
    Unbound,
    /// The family is bound to this key, and the proof is from it.
    Bound(String),
    /// The family is bound and the request has no proof from its key: the token was
    /// stolen (or the key lost), which ends the session.
    Theft(ProofError),
}

async fn refresh_binding(
    state: &AppState,
    family: &str,
    proof: Option<&Proof>,
) -> ApiResult<Binding> {
    if state.dpop().mode() == DpopMode::Off {
        return Ok(Binding::Unbound);
    }
    let bound = state
        .store()
        .get_ephemeral(&dpop::binding_key(family), state.now())
        .await?;
    Ok(match (bound, proof) {
        (None, _) => Binding::Unbound,
        (Some(j), Some(p)) if p.jkt == j => Binding::Bound(j),
        (Some(_), Some(_)) => Binding::Theft(ProofError::Key),
        (Some(_), None) => Binding::Theft(ProofError::Missing),
    })
}

/// A bound refresh token presented without a proof from its key: revokes its session
/// (RFC 9449 §5: the token is useless to anyone but the key holder, and its use by
/// anyone else means it leaked) and returns the error to answer with.
///
/// # Errors
/// Only when the store fails.
async fn theft(
    state: &AppState,
    client: &ClientAddr,
    presented: &str,
    why: ProofError,
) -> ApiResult<ApiError> {
    let found = state
        .store()
        .lookup_presented(
            state.token_key(),
            presented,
            state.now(),
            state.config().refresh_grace,
            &binding(client),
        )
        .await?;
    if let Some((s, _)) = found {
        tracing::warn!(sid = %log_tag(&s.sid), why = %why, network = %client.bucket(), user_agent = %client.user_agent, "DPoP-bound refresh token without a proof from its key: session revoked");
        revoke(state, &s.sid, "dpop_key_mismatch", client).await?;
    }
    Ok(ApiError::InvalidDpopProof(why))
}

/// The binding check for a refresh token presented outside `/auth/refresh` (logout, vault
/// key): a bound token without a proof from its key ends its session.
async fn check_refresh_binding(
    state: &AppState,
    client: &ClientAddr,
    presented: &str,
    proof: Option<&Proof>,
) -> ApiResult<()> {
    let Some(t) = RefreshToken::decode(presented, state.token_key()) else {
        return Ok(());
    };
    match refresh_binding(state, &t.to_ref().family, proof).await? {
        Binding::Theft(e) => Err(theft(state, client, presented, e).await?),
        Binding::Bound(_) | Binding::Unbound => Ok(()),
    }
}

/// The client binding the grace rule compares: user agent and network.
fn binding(client: &ClientAddr) -> String {
    client_binding(&client.user_agent, &network_of(&client.address))
}

/// Who a logout-style request speaks for.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A live session, identified by its current (or grace) refresh token or a live
    /// access token.
    Session(SessionRecord),
    /// A superseded refresh token of a live session: a replay (RFC 9700 reuse).
    Superseded(SessionRecord),
    /// Nothing usable.
    Nobody,
}

/// Identifies the caller: the refresh token (body or cookie) first, else a live access
/// token. A dead refresh token does not speak for the user; an access token still may.
/// The grace predecessor speaks for the session only from the client that rotated (same
/// user agent and network, as the refresh grace rule): from anywhere else it is a
/// superseded token ([`Caller::Superseded`]). DPoP: a bound refresh token without a proof
/// from its key ends its session (`invalid_dpop_proof`); a bound access token speaks only
/// with the `DPoP` scheme and a matching proof.
///
/// # Errors
/// `invalid_dpop_proof` as above, or a store failure.
pub async fn identify(
    state: &AppState,
    client: &ClientAddr,
    refresh: Option<&str>,
    access: Option<&AccessToken>,
    proof: Option<&Proof>,
) -> ApiResult<Caller> {
    let now = state.now();
    if let Some(t) = refresh {
        check_refresh_binding(state, client, t, proof).await?;
        if let Some((s, pos)) = state
            .store()
            .lookup_presented(
                state.token_key(),
                t,
                now,
                state.config().refresh_grace,
                &binding(client),
            )
            .await?
        {
            if s.liveness(now, state.config().idle_timeout) == Liveness::Live {
                return Ok(match pos {
                    TokenPosition::Superseded => Caller::Superseded(s),
                    _ => Caller::Session(s),
                });
            }
        }
    }
    if let Some(t) = access {
        if let Some(a) = AuthSession::verify(state, &t.token).await? {
            if dpop::require_access_binding(&t.token, a.claims.jkt(), t.dpop, proof).is_ok() {
                return Ok(Caller::Session(a.session));
            }
        }
    }
    Ok(Caller::Nobody)
}

/// Revokes one session (and destroys its vault key). Returns whether it was live.
///
/// # Errors
/// Only when the store fails.
pub async fn revoke(
    state: &AppState,
    sid: &str,
    reason: &str,
    client: &ClientAddr,
) -> ApiResult<bool> {
    let was_live = state
        .store()
        .revoke_session(sid, reason, state.now())
        .await?;
    if was_live {
        tracing::info!(sid = %log_tag(sid), reason, network = %client.bucket(), user_agent = %client.user_agent, "session revoked");
    }
    Ok(was_live)
}

/// Revokes every session of `user_id`; returns how many were live.
///
/// # Errors
/// Only when the store fails.
pub async fn revoke_user(
    state: &AppState,
    user_id: &str,
    reason: &str,
    client: &ClientAddr,
) -> ApiResult<usize> {
    let n = state
        .store()
        .revoke_user_sessions(user_id, reason, state.now())
        .await?;
    tracing::info!(user = %log_tag(user_id), revoked = n, reason, network = %client.bucket(), user_agent = %client.user_agent, "user sessions revoked");
    Ok(n)
}

/// Sets a new password for `username` (hashed on the bounded pool) and revokes every
/// other live session of the user (ASVS 5.0 V7.4.3); `keep` is the session that made the
/// change, if any. Returns how many sessions were revoked.
///
/// # Errors
/// `not_found` for an unknown user, `overloaded`, or a store failure.
pub async fn change_password(
    state: &AppState,
    username: &str,
    new_password: &str,
    keep: Option<&str>,
) -> ApiResult<usize> {
    let mut user = state
        .store()
        .find_user(username)
        .await?
        .ok_or(ApiError::NotFound)?;
    let pw = new_password.to_string();
    user.password_hash = state
        .policy()
        .hashes
        .run(move |h| h.hash(&pw))
        .await
        .map_err(|_| ApiError::Overloaded { retry_after: 1 })?
        .map_err(ApiError::internal)?;
    state.store().upsert_user(&user).await?;
    let now = state.now();
    let mut revoked = 0;
    for s in state.store().list_sessions(&user.id).await? {
        if Some(s.sid.as_str()) != keep
            && s.liveness(now, state.config().idle_timeout) == Liveness::Live
            && state
                .store()
                .revoke_session(&s.sid, "password_changed", now)
                .await?
        {
            revoked += 1;
        }
    }
    tracing::info!(user = %log_tag(&user.id), revoked, "password changed; other sessions revoked");
    Ok(revoked)
}

/// The vault key of the session the refresh cookie belongs to: the current token, or the
/// grace predecessor from the client that rotated (any other client presenting the
/// predecessor gets `refresh_invalid`).
///
/// # Errors
/// `refresh_invalid`, `session_revoked`, `session_expired`, or a store failure.
pub async fn vault_key(
    state: &AppState,
    client: &ClientAddr,
    presented: Option<&str>,
    proof: Option<&Proof>,
) -> ApiResult<[u8; 32]> {
    let token = presented.ok_or(ApiError::RefreshInvalid)?;
    check_refresh_binding(state, client, token, proof).await?;
    let now = state.now();
    let (s, pos) = state
        .store()
        .lookup_presented(
            state.token_key(),
            token,
            now,
            state.config().refresh_grace,
            &binding(client),
        )
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
    <[u8; 32]>::try_from(key).map_err(|_| ApiError::internal("stored vault key is not 32 bytes"))
}
