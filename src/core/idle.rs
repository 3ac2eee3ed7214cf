//! Idle policy: one origin-wide last-activity time shared over the bus and the shared record;
//! a warning `idle_warning` before the deadline; activity or "stay signed in" in any tab
//! extends it; the deadline logs every tab out; the absolute lifetime holds regardless.
//!
//! Every decision compares deadlines with the wall-clock `now` of the current input, so a
//! timer that fires hours late (laptop sleep) or a clock jump is judged by the time it is.
//! A tab re-reads the shared record before acting on a timer, so activity published by a tab
//! whose bus message was lost still counts.
use super::engine::{Engine, Event};
use super::wire::shared::Activity;
use super::wire::{LogoutReason, Msg, Stamp};
use super::{Millis, SessionState};

impl Engine {
    /// Local activity at `at` (≤ `now`; `force`: "stay signed in", always published at once).
    #[inline(never)]
    pub(crate) fn on_activity(&mut self, now: Millis, at: Millis, force: bool) {
        let Some(stamp) = self.held.as_ref().map(|h| h.meta.stamp) else {
            return;
        };
        self.note_activity(&stamp, at);
        let due = now >= self.idle.sent.saturating_add(self.cfg.activity_throttle);
        if force || due || self.state == SessionState::IdleWarning {
            self.publish_activity(now);
        } else {
            self.idle.dirty = true;
        }
    }

    fn publish_activity(&mut self, now: Millis) {
        self.idle.sent = now;
        self.idle.dirty = false;
        if self.cfg.faults().disable_shared_activity {
            return;
        }
        let Some(stamp) = self.held.as_ref().map(|h| h.meta.stamp) else {
            return;
        };
        self.persist_shared();
        let m = Msg::Activity(Activity {
            epoch: stamp.epoch,
            session: stamp.session,
            at: self.activity_of(&stamp),
        });
        self.broadcast(&m);
    }

    /// Trailing publish of throttled activity.
    #[inline(never)]
    pub(crate) fn tick_activity(&mut self, now: Millis) {
        if self.idle.dirty && now >= self.idle.sent.saturating_add(self.cfg.activity_throttle) {
            if self.held.is_some() {
                self.publish_activity(now);
            } else {
                self.idle.dirty = false;
            }
        }
    }

    /// Whether a session that began at `session` is over by `now`: its absolute lifetime ran
    /// out, or no activity anywhere (as the shared record knows it) since the idle timeout.
    pub(crate) fn session_over(&self, now: Millis, stamp: &Stamp) -> bool {
        let session = stamp.session;
        let abs = self
            .cfg
            .absolute_lifetime
            .is_some_and(|a| now >= session.saturating_add(a));
        let last = self.activity_of(stamp).max(session);
        let idle = self
            .cfg
            .idle_timeout
            .is_some_and(|t| now >= last.saturating_add(t));
        abs || idle
    }

    /// `fresh`: the shared record was just re-read, so the origin-wide last activity is
    /// current; warnings and the idle logout wait for such an input (the engine asks for a
    /// timer right away when one is overdue).
    #[inline(never)]
    pub(crate) fn tick_idle(&mut self, now: Millis, fresh: bool) {
        let (started, last) = match &self.held {
            Some(h) => (
                h.meta.stamp.session,
                self.activity_of(&h.meta.stamp).max(h.meta.stamp.session),
            ),
            None => return,
        };
        if let Some(abs) = self.cfg.absolute_lifetime {
            if now >= started.saturating_add(abs) {
                self.logout_local(now, LogoutReason::Expired, Some(false));
                return;
            }
        }
        let timeout = match self.cfg.idle_timeout {
            Some(t) => t,
            None => return,
        };
        let deadline = last.saturating_add(timeout);
        let warn_at = deadline.saturating_sub(self.cfg.idle_warning);
        if now >= deadline {
            if fresh {
                self.emit(Event::Idle);
                self.logout_local(now, LogoutReason::Idle, Some(false));
            }
        } else if now >= warn_at {
            if fresh && self.state == SessionState::Active {
                self.state = SessionState::IdleWarning;
                self.emit(Event::IdleWarning { deadline });
            }
        } else if self.state == SessionState::IdleWarning {
            self.state = SessionState::Active;
            self.emit(Event::Active);
        }
    }

    pub(crate) fn idle_deadlines(&self, consider: &mut impl FnMut(Millis)) {
        let Some(h) = &self.held else { return };
        if let Some(abs) = self.cfg.absolute_lifetime {
            consider(h.meta.stamp.session.saturating_add(abs));
        }
        if let Some(timeout) = self.cfg.idle_timeout {
            // An overdue deadline not yet acted on (no fresh input since): a timer right away.
            let soon = self.now.saturating_add(1);
            let last = self.activity_of(&h.meta.stamp).max(h.meta.stamp.session);
            let deadline = last.saturating_add(timeout);
            consider(deadline.max(soon));
            if self.state == SessionState::Active {
                consider(deadline.saturating_sub(self.cfg.idle_warning).max(soon));
            }
        }
    }
}
