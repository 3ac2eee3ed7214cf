//! `POST /auth/refresh`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::auth::session_response;
use super::expired_cookie;
use crate::dpop::ProofError;
use crate::error::ApiError;
use crate::extract::{ClientAddr, DpopProof, Mode, RefreshCredential};
use crate::service;
use crate::state::AppState;

/// `POST /auth/refresh` — rotates the presented refresh token. Errors that end the session
/// for good also clear the cookie (cookie mode). A DPoP-bound token needs a proof from its
/// key; without one the session ends (`invalid_dpop_proof`).
pub async fn refresh(
    State(state): State<AppState>,
    client: ClientAddr,
    proof: Result<DpopProof, ApiError>,
    cred: RefreshCredential,
) -> Response {
    let proof = match proof {
        Ok(DpopProof(p)) => p,
        Err(e) => return e.into_response(),
    };
    match service::rotate(&state, &client, cred.token.as_deref(), proof.as_ref()).await {
        Ok(issued) => session_response(&state, cred.jar, &issued, cred.mode),
        Err(e) => {
            let definitive = matches!(
                e,
                ApiError::RefreshInvalid
                    | ApiError::InvalidDpopProof(ProofError::Missing | ProofError::Key)
                    | ApiError::RefreshReused
                    | ApiError::SessionRevoked
                    | ApiError::SessionExpired
            );
            if definitive && cred.mode == Mode::Cookie {
                (cred.jar.add(expired_cookie()), e).into_response()
            } else {
                e.into_response()
            }
        }
    }
}
