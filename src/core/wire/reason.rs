//! Why a session ended: a wire type (carried on the bus and in the shared record).

/// Why a session ended. Carried over the bus so every tab reports the same reason.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum LogoutReason {
    /// The user logged out (this device).
    User,
    /// The user logged out everywhere (every session of the account).
    Everywhere,
    /// No activity in any tab until the idle deadline.
    Idle,
    /// The absolute session lifetime ran out, or the server answered `session_expired`.
    Expired,
    /// The server answered `session_revoked` or `refresh_invalid`.
    Revoked,
    /// The server detected a replayed refresh token (`refresh_reused`).
    Reused,
    /// The shared record vanished (site data was cleared, e.g. `Clear-Site-Data`).
    Cleared,
    /// Token mode: the newest refresh token was lost with the tab that held it (it crashed
    /// before its broadcast reached anyone, and no vault holds it), so nobody can refresh.
    Lost,
}

impl LogoutReason {
    /// Every reason.
    pub const ALL: [LogoutReason; 8] = [
        LogoutReason::User,
        LogoutReason::Everywhere,
        LogoutReason::Idle,
        LogoutReason::Expired,
        LogoutReason::Revoked,
        LogoutReason::Reused,
        LogoutReason::Cleared,
        LogoutReason::Lost,
    ];

    /// The reason's name in the JavaScript `logout` event.
    pub fn as_str(self) -> &'static str {
        match self {
            LogoutReason::User => "user",
            LogoutReason::Everywhere => "everywhere",
            LogoutReason::Idle => "idle",
            LogoutReason::Expired => "expired",
            LogoutReason::Revoked => "revoked",
            LogoutReason::Reused => "reused",
            LogoutReason::Cleared => "cleared",
            LogoutReason::Lost => "lost",
        }
    }

    /// Maps a server problem `code` of a 401 refresh answer to the reason it ends the session
    /// with; `None` for codes that are not a definitive end (treat those as retryable).
    pub fn from_code(code: &str) -> Option<LogoutReason> {
        match code {
            "refresh_invalid" | "session_revoked" => Some(LogoutReason::Revoked),
            "refresh_reused" => Some(LogoutReason::Reused),
            "session_expired" => Some(LogoutReason::Expired),
            _ => None,
        }
    }

    pub(crate) fn to_u64(self) -> u64 {
        match self {
            LogoutReason::User => 0,
            LogoutReason::Everywhere => 1,
            LogoutReason::Idle => 2,
            LogoutReason::Expired => 3,
            LogoutReason::Revoked => 4,
            LogoutReason::Reused => 5,
            LogoutReason::Cleared => 6,
            LogoutReason::Lost => 7,
        }
    }

    pub(crate) fn from_u64(v: u64) -> Option<LogoutReason> {
        Some(match v {
            0 => LogoutReason::User,
            1 => LogoutReason::Everywhere,
            2 => LogoutReason::Idle,
            3 => LogoutReason::Expired,
            4 => LogoutReason::Revoked,
            5 => LogoutReason::Reused,
            6 => LogoutReason::Cleared,
            7 => LogoutReason::Lost,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_map_server_codes() {
        for v in 0..8 {
            assert_eq!(LogoutReason::from_u64(v).unwrap().to_u64(), v);
        }
        assert_eq!(LogoutReason::from_u64(8), None);
        assert_eq!(
            LogoutReason::from_code("refresh_reused"),
            Some(LogoutReason::Reused)
        );
        assert_eq!(
            LogoutReason::from_code("session_expired"),
            Some(LogoutReason::Expired)
        );
        assert_eq!(
            LogoutReason::from_code("refresh_invalid"),
            Some(LogoutReason::Revoked)
        );
        assert_eq!(LogoutReason::from_code("rate_limited"), None);
        assert_eq!(LogoutReason::Idle.as_str(), "idle");
    }
}
