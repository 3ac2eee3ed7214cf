//! One-shot administrative commands on the configured store (`tessera-server <command>`):
//! change a password (revoking the user's sessions), enrol or reset TOTP (printing the
//! `otpauth://` URI and a terminal QR code), revoke a user's sessions, run migrations.
//! Passwords are read from standard input, never from the command line.

use crate::state::{AppState, StartupError};
use crate::store::UserRecord;

/// Why an admin command failed (printed; the process exits 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The named user does not exist.
    #[error("no user {0:?}")]
    NoSuchUser(String),
    /// A bad argument or input.
    #[error("{0}")]
    Invalid(String),
    /// The store or the state failed.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// Reading standard input failed.
    #[error("stdin: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads a password (8–1024 bytes) from the first line of `input`.
///
/// # Errors
/// [`AdminError::Invalid`] when it is too short or too long.
pub fn read_password(input: &mut dyn std::io::BufRead) -> Result<String, AdminError> {
    let mut line = String::new();
    input.read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.len() < 8 || password.len() > 1024 {
        return Err(AdminError::Invalid(
            "the password (first line of stdin) must be 8 to 1024 characters".into(),
        ));
    }
    Ok(password)
}

async fn user(state: &AppState, username: &str) -> Result<UserRecord, AdminError> {
    state
        .store()
        .find_user(username)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(username.to_string()))
}

/// `user-passwd`: sets a new password and revokes every session of the user (reason
/// `password_changed`); returns how many were revoked.
///
/// # Errors
/// Unknown user, bad password, store failure.
pub async fn user_passwd(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<usize, AdminError> {
    let u = user(state, username).await?;
    state
        .add_user(username, password, u.totp_secret.as_deref())
        .await?;
    Ok(state
        .store()
        .revoke_user_sessions(&u.id, "password_changed", state.now())
        .await?)
}

/// `user-del`: revokes every session of the user (reason `user_deleted`, which also
/// destroys their vault keys), forgets its TOTP replay state and deletes the user record;
/// returns how many sessions were revoked.
///
/// # Errors
/// Unknown user ([`AdminError::NoSuchUser`]), store failure.
pub async fn user_del(state: &AppState, username: &str) -> Result<usize, AdminError> {
    let u = user(state, username).await?;
    let now = state.now();
    let revoked = state
        .store()
        .revoke_user_sessions(&u.id, "user_deleted", now)
        .await?;
    crate::totp::forget_steps(state.store().as_ref(), &u.id, now).await?;
    if !state.store().delete_user(username).await? {
        return Err(AdminError::NoSuchUser(username.to_string()));
    }
    Ok(revoked)
}

/// One line of `user-list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLine {
    /// Login name.
    pub username: String,
    /// Whether TOTP is enrolled.
    pub totp: bool,
    /// Sessions live now (not revoked, within the idle and absolute lifetimes).
    pub live_sessions: usize,
}

/// `user-list`: every user with whether TOTP is enrolled and how many live sessions it
/// holds; no hash, no secret.
///
/// # Errors
/// Store failure.
pub async fn user_list(state: &AppState) -> Result<Vec<UserLine>, AdminError> {
    let now = state.now();
    let idle = state.config().idle_timeout;
    let mut out = Vec::new();
    for u in state.store().list_users().await? {
        let live_sessions = state
            .store()
            .list_sessions(&u.id)
            .await?
            .iter()
            .filter(|s| s.liveness(now, idle) == crate::store::Liveness::Live)
            .count();
        out.push(UserLine {
            username: u.username,
            totp: u.totp,
            live_sessions,
        });
    }
    Ok(out)
}

/// `totp-enroll` / `totp-reset`: gives the user a fresh 160-bit TOTP secret (replacing
/// any previous one), forgets the replay guard's last accepted step (the new secret's codes
/// start from a clean slate), and returns the secret's `otpauth://` URI (built by
/// `totp-rs`).
///
/// # Errors
/// Unknown user, a name that cannot go into an `otpauth://` label, store failure.
pub async fn totp_set(state: &AppState, username: &str) -> Result<String, AdminError> {
    let mut u = user(state, username).await?;
    let secret = crate::totp::new_secret();
    // the URI (and its label check) before anything is written
    let uri = crate::totp::Totp::from_base32(&secret)
        .and_then(|t| t.otpauth_uri(&state.config().issuer, username))
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    u.totp_secret = Some(secret);
    state.store().upsert_user(&u).await?;
    crate::totp::forget_steps(state.store().as_ref(), &u.id, state.now()).await?;
    Ok(uri)
}

/// `uri` as a QR code drawn with Unicode half blocks (two modules per character row), for
/// scanning from a terminal.
///
/// # Errors
/// When the URI is too long for a QR code.
pub fn qr_terminal(uri: &str) -> Result<String, AdminError> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| AdminError::Invalid(format!("QR code: {e}")))?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// `sessions revoke --user NAME`: revokes every session of the user (reason `admin`).
///
/// # Errors
/// Unknown user, store failure.
pub async fn sessions_revoke_user(state: &AppState, username: &str) -> Result<usize, AdminError> {
    let u = user(state, username).await?;
    Ok(state
        .store()
        .revoke_user_sessions(&u.id, "admin", state.now())
        .await?)
}

/// Reads a password from the process's standard input.
///
/// # Errors
/// See [`read_password`].
pub fn password_from_stdin() -> Result<String, AdminError> {
    read_password(&mut std::io::stdin().lock())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_code_is_drawn_with_half_blocks() {
        let qr = qr_terminal("otpauth://totp/t:a?secret=ABC").expect("qr");
        assert!(qr.lines().count() > 10);
        assert!(qr.contains('▀') || qr.contains('▄') || qr.contains('█'));
    }

    #[test]
    fn passwords_are_bounded() {
        assert!(read_password(&mut "short\n".as_bytes()).is_err());
        assert_eq!(
            read_password(&mut "long enough\r\nrest".as_bytes()).expect("ok"),
            "long enough"
        );
    }
}
