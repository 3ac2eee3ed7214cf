//! Logout reasons and the logout epoch.
//!
//! Every logout bumps an origin-wide **logout epoch** (a counter persisted in the shared record
//! and carried by the bus `Logout` message). A session remembers the epoch it was created in;
//! a tab that observes a larger epoch — by bus message, by a storage event, or when it wakes or
//! gains focus and re-reads the shared record — ends its session, so a tab that missed the
//! broadcast still logs out.

use super::bus::Msg;
use super::engine::{Effect, Engine, Event, Phase};
use super::{Millis, SessionState};

/// Why a session ended. Carried over the bus so every tab reports the same reason.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
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

impl Engine {
    /// Ends the session here and everywhere. Order: a new persisted logout epoch and the bus
    /// broadcast FIRST (the other tabs' wipe never needs the server), then the optional server
    /// revoke (its effect carries the credentials it presents, taken before the wipe), then the
    /// local wipe and the event. `send`: `Some(everywhere)` to revoke server-side.
    pub(crate) fn logout_local(&mut self, _now: Millis, reason: LogoutReason, send: Option<bool>) {
        let held = self.held.take();
        let session_epoch = self.shared.token.map_or(0, |t| t.stamp.epoch);
        let epoch = self.shared.epoch.max(session_epoch).saturating_add(1);
        self.shared.epoch = epoch;
        self.shared.reason = Some(reason);
        self.persist_shared();
        self.broadcast(&Msg::Logout { epoch, reason });
        if let Some(everywhere) = send {
            let (access_token, refresh_token) = match held {
                Some(h) => (Some(h.access_token), h.refresh_token),
                None => (None, None),
            };
            self.effects.push_back(Effect::SendLogout {
                everywhere,
                access_token,
                refresh_token,
            });
        }
        self.end_here();
        self.emit(Event::Logout { reason });
    }

    /// Ends a session this tab never joined (found over at startup): a new logout epoch for
    /// every tab (persisted and broadcast first), server revoke, wipe; no local event.
    pub(crate) fn end_unjoined(&mut self, reason: LogoutReason) {
        let epoch = self.shared.epoch.saturating_add(1);
        self.shared.epoch = epoch;
        self.shared.reason = Some(reason);
        self.persist_shared();
        self.broadcast(&Msg::Logout { epoch, reason });
        self.effects.push_back(Effect::SendLogout {
            everywhere: false,
            access_token: None,
            refresh_token: None,
        });
        self.effects.push_back(Effect::Wipe);
    }

    /// Another tab ended the session (or site data was cleared): drop everything here.
    pub(crate) fn logout_remote(&mut self, _now: Millis, reason: LogoutReason) {
        let Some(h) = self.held.take() else { return };
        // Whatever told us, the session's epoch is over: never adopt its tokens again (a bus
        // message still in flight, or queued while this tab was frozen, must not revive it).
        let epoch = h.meta.stamp.epoch.saturating_add(1);
        if epoch > self.shared.epoch {
            self.shared.epoch = epoch;
            self.shared.reason = Some(reason);
        }
        self.end_here();
        if reason == LogoutReason::Cleared {
            // Site data was cleared (e.g. `Clear-Site-Data`): write the logout epoch back so
            // tabs that wake later learn it, not just that the record is gone.
            self.persist_shared();
        }
        self.emit(Event::Logout { reason });
    }

    fn end_here(&mut self) {
        self.release_lock();
        self.phase = Phase::Idle;
        self.last_req = None;
        self.forced = false;
        self.resuming = false;
        self.attempt = 0;
        self.activity_dirty = false;
        self.state = SessionState::LoggedOut;
        self.effects.push_back(Effect::Wipe);
    }

    /// A logout epoch seen on the bus or in the shared record.
    pub(crate) fn observe_epoch(&mut self, now: Millis, epoch: u64, reason: Option<LogoutReason>) {
        if epoch > self.shared.epoch {
            self.shared.epoch = epoch;
            self.shared.reason = reason;
        }
        let dead = match &self.held {
            Some(h) => h.meta.stamp.epoch < self.shared.epoch,
            None => false,
        };
        if dead {
            let r = self.shared.reason.unwrap_or(LogoutReason::User);
            self.logout_remote(now, r);
        }
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
