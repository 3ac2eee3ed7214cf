//! Logout behaviour and the logout epoch (the reasons themselves are wire types:
//! [`LogoutReason`]).
//!
//! Every logout bumps an origin-wide **logout epoch** (a counter persisted in the shared record
//! and carried by the bus `Logout` message). A session remembers the epoch it was created in;
//! a tab that observes a larger epoch — by bus message, by a storage event, or when it wakes or
//! gains focus and re-reads the shared record — ends its session, so a tab that missed the
//! broadcast still logs out.

use super::engine::{Effect, Engine, Event};
use super::wire::{LogoutReason, Msg};
use super::{Millis, SessionState};

impl Engine {
    /// Ends the session here and everywhere. Order: a new persisted logout epoch and the bus
    /// broadcast FIRST (the other tabs' wipe never needs the server), then the optional server
    /// revoke (its effect carries the credentials it presents, taken before the wipe), then the
    /// local wipe and the event. `send`: `Some(everywhere)` to revoke server-side.
    #[inline(never)]
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
            let id = self.new_id();
            self.logout_id = Some(id);
            self.effects.push(Effect::SendLogout {
                id,
                everywhere,
                access_token,
                refresh_token,
            });
        }
        self.end_here(false);
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
        let id = self.new_id();
        self.logout_id = Some(id);
        self.effects.push(Effect::SendLogout {
            id,
            everywhere: false,
            access_token: None,
            refresh_token: None,
        });
        self.effects.push(Effect::Wipe { tab_only: false });
    }

    /// Another tab ended the session (`here`: false), or this tab found the shared record gone
    /// (`here`: true, reason `cleared`): drop everything here.
    pub(crate) fn logout_remote(&mut self, _now: Millis, reason: LogoutReason, here: bool) {
        let Some(h) = self.held.take() else { return };
        // Whatever told us, the session's epoch is over: never adopt its tokens again (a bus
        // message still in flight, or queued while this tab was frozen, must not revive it).
        let epoch = h.meta.stamp.epoch.saturating_add(1);
        if epoch > self.shared.epoch {
            self.shared.epoch = epoch;
            self.shared.reason = Some(reason);
        }
        // What the origin shares (Web Storage, cookies, IndexedDB, caches, the DPoP key) went
        // with the tab where the session ended, in the task that told the others: here only
        // this tab's own copies go. Wiping it again here could only hurt: a session begun
        // since (this tab was frozen while the user logged out and signed in again) owns it,
        // and this tab's view of the shared record may not show that yet (another tab's
        // `localStorage` write reaches this one asynchronously, possibly after the bus message).
        // When this tab itself found the record gone, nobody else wiped: everything goes,
        // unless the record shows a session begun since.
        let ended = h.meta.stamp.epoch;
        let tab_only = !here
            || self
                .shared
                .token
                .is_some_and(|t| t.stamp.epoch > ended && t.stamp.epoch >= self.shared.epoch);
        self.end_here(tab_only);
        if reason == LogoutReason::Cleared {
            // Site data was cleared (e.g. `Clear-Site-Data`): write the logout epoch back so
            // tabs that wake later learn it, not just that the record is gone.
            self.persist_shared();
        }
        self.emit(Event::Logout { reason });
    }

    /// The session ended here: one reset of the parts (the lock released first).
    #[inline(never)]
    fn end_here(&mut self, tab_only: bool) {
        self.release_lock();
        self.refresh.reset();
        self.idle.reset();
        self.state = SessionState::LoggedOut;
        self.effects.push(Effect::Wipe { tab_only });
    }

    /// A logout epoch seen on the bus or in the shared record.
    #[inline(never)]
    pub(crate) fn observe_epoch(&mut self, now: Millis, epoch: u64, reason: Option<LogoutReason>) {
        if self.epoch_implausible(epoch) {
            self.implausible(1);
        } else if epoch > self.shared.epoch {
            self.shared.epoch = epoch;
            self.shared.reason = reason;
        }
        let dead = match &self.held {
            Some(h) => h.meta.stamp.epoch < self.shared.epoch,
            None => false,
        };
        if dead {
            let r = self.shared.reason.unwrap_or(LogoutReason::User);
            self.logout_remote(now, r, false);
        }
    }
}
