//! `POST /auth/introspect` (RFC 7662 shape).

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{Bearer, JsonBody, LiveToken};
use crate::state::AppState;

#[derive(Deserialize)]
pub(crate) struct IntrospectRequest {
    pub(crate) token: String,
}

/// The claims of an active token.
#[derive(Debug, Serialize)]
pub struct ActiveToken {
    /// User id.
    pub sub: String,
    /// Session id.
    pub sid: String,
    /// Login name.
    pub username: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Token id.
    pub jti: String,
    /// `DPoP` for a DPoP-bound token, else `Bearer` (RFC 9449 §6.2).
    pub token_type: &'static str,
    /// Whether the session used a second factor.
    pub mfa: bool,
    /// The DPoP key a bound token is confirmed by (`{jkt}`, RFC 9449 §6.2): the resource
    /// server must check the request's proof against it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::jwt::Confirmation>,
}

/// `200` of `POST /auth/introspect`: `{active: false}` or `{active: true, …claims}`.
#[derive(Debug, Serialize)]
pub struct Introspection {
    /// Whether the token is valid and its session live.
    pub active: bool,
    /// The details of an active token.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub token: Option<ActiveToken>,
}

pub(crate) fn form_token(body: &[u8]) -> Option<String> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|s| s.split('&').find_map(|kv| kv.strip_prefix("token=")))
        .map(|t| t.replace('+', " "))
}

/// Whether the request body is form-encoded (read from the parts; the handler needs no copy
/// of the whole header map for it).
pub struct FormEncoded(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for FormEncoded {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(FormEncoded(
            parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded")),
        ))
    }
}

/// `POST /auth/introspect` — accepts JSON `{token}` or form-encoded `token=`. The caller
/// must present the resource-server secret as `Authorization: Bearer <secret>` (RFC 7662
/// §2.1); without a configured secret every call is 401.
pub async fn introspect(
    State(state): State<AppState>,
    bearer: Option<Bearer>,
    FormEncoded(is_form): FormEncoded,
    body: Bytes,
) -> Result<Json<Introspection>, ApiError> {
    if !state
        .policy()
        .introspection_allowed(bearer.as_ref().map(|b| b.0.as_str()))
    {
        tracing::warn!("introspection refused: missing or wrong resource-server secret");
        return Err(ApiError::Unauthorized);
    }
    let token = if is_form {
        form_token(&body).ok_or_else(|| ApiError::InvalidRequest("token is required".into()))?
    } else {
        JsonBody::<IntrospectRequest>::parse(&body)?.0.token
    };
    let token = LiveToken::verify(&state, &token)
        .await?
        .map(|a| ActiveToken {
            sub: a.claims.sub,
            sid: a.claims.sid,
            username: a.claims.username,
            exp: a.claims.exp,
            iat: a.claims.iat,
            iss: a.claims.iss,
            aud: a.claims.aud,
            jti: a.claims.jti,
            token_type: if a.claims.cnf.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            mfa: a.status.mfa,
            cnf: a.claims.cnf,
        });
    Ok(Json(Introspection {
        active: token.is_some(),
        token,
    }))
}
