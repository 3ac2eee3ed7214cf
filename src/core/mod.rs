//! The sans-IO session engine. No `web_sys`, no clock, no randomness: time and entropy
//! are inputs, browser work is returned as effects.

/// The lifecycle state of a session as the JavaScript API reports it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// No session.
    Anonymous,
    /// Password accepted; a TOTP code is required to finish.
    MfaRequired,
    /// Signed in.
    Active,
    /// Signed in, and the idle deadline is near.
    IdleWarning,
    /// The session ended in this tab.
    LoggedOut,
}

impl SessionState {
    /// The state's name in the JavaScript API.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Anonymous => "anonymous",
            SessionState::MfaRequired => "mfa-required",
            SessionState::Active => "active",
            SessionState::IdleWarning => "idle-warning",
            SessionState::LoggedOut => "logged-out",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_match_the_public_contract() {
        assert_eq!(SessionState::Anonymous.as_str(), "anonymous");
        assert_eq!(SessionState::MfaRequired.as_str(), "mfa-required");
        assert_eq!(SessionState::IdleWarning.as_str(), "idle-warning");
        assert_eq!(SessionState::LoggedOut.as_str(), "logged-out");
    }
}
