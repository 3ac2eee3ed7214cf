//! Refresh policy.
//!
//! * Each token is refreshed at `expires_at - lead - jitter`, where `expires_at` is the local
//!   receipt time plus `expires_in`, `lead` is capped at half the token's lifetime and the
//!   jitter is drawn from the engine's seed.
//! * Exactly one tab refreshes per expiry: the tab takes the origin-wide lock (Web Locks, or
//!   claims in the shared record without them), then re-checks the shared record — a newer
//!   token, a live claim of another tab, or a logout means it does not send. Before sending it
//!   writes a claim (`serial`, `until = now + request_timeout`) so that no other tab sends while
//!   the answer is pending. A lock holder that dies releases the lock (Web Locks) or lets its
//!   claim expire; one that sleeps is robbed of the lock after `lock_wait` (steal), so nobody is
//!   blocked beyond `request_timeout + 2 * lock_wait`.
//! * After the answer the tab re-checks again: an answer for a logged-out session, or one that is
//!   not newer than a token already seen, is dropped (never adopt an older token).
//! * Retryable failures back off exponentially (`backoff_base`…`backoff_cap`, jitter in the upper
//!   half, at least `Retry-After`); going `online` retries at once, and so does a failure of a
//!   request sent before the network came back. The failing tab keeps its
//!   claim alive during the backoff so other tabs do not pile in.
//! * A definitive rejection ends the session in every tab with the server's reason, unless a
//!   newer token appeared meanwhile (then the rejection concerned a superseded token).
use super::engine::{
    bump, diag, mul_pow2, Asks, Effect, Engine, ErrorCode, Event, Held, Jitter, Pending, Phase,
    RequestId, Tokens, MAX_RETRY_AFTER, MIN_REFRESH_GAP,
};
use super::wire::shared::session_tag;
use super::wire::{Claim, LogoutReason, Msg, Shared, Stamp, TokenMeta};
use super::{Millis, SessionState};

impl Engine {
    #[inline(never)]
    pub(crate) fn on_resume(&mut self, now: Millis) {
        if self.held.is_some() || !matches!(self.refresh.phase, Phase::Idle) {
            return;
        }
        // Ask the other tabs first; a live one answers with its token.
        self.broadcast(&Msg::TokenRequest {
            tab: self.tab,
            attempt: 0,
        });
        // After a logout in this browser (and no login since) never revive the session from
        // the cookie: a logout that could not reach the server (offline) must not be undone
        // by a reload.
        let logged_out = self.shared.epoch > 0
            && self
                .shared
                .token
                .is_none_or(|t| t.stamp.epoch < self.shared.epoch);
        if logged_out && !self.cfg.faults().disable_epoch {
            return;
        }
        // The last session idled out (or hit its absolute lifetime) while no tab was open to log
        // it out: end it now — revoke it server-side and record the logout — instead of
        // reviving it. This tab simply stays anonymous.
        if let Some(t) = self
            .shared
            .token
            .filter(|t| t.stamp.epoch >= self.shared.epoch)
        {
            if self.session_over(now, &t.stamp) {
                let reason = if self
                    .cfg
                    .absolute_lifetime
                    .is_some_and(|a| now >= t.stamp.session.saturating_add(a))
                {
                    LogoutReason::Expired
                } else {
                    LogoutReason::Idle
                };
                self.end_unjoined(reason);
                return;
            }
        }
        self.refresh.resuming = true;
        let wait = if self.refresh.alone {
            0
        } else {
            self.cfg.join_wait
        };
        self.refresh.phase = Phase::Joining {
            until: now.saturating_add(wait),
        };
    }

    /// The newest token this tab knows of, held or only seen in the shared record.
    fn target(&self) -> Option<TokenMeta> {
        let seen = self
            .shared
            .token
            .filter(|t| t.stamp.epoch >= self.shared.epoch);
        match (&self.held, seen) {
            (Some(h), Some(s)) if s.stamp > h.meta.stamp => Some(s),
            (Some(h), _) => Some(h.meta),
            (None, s) => s,
        }
    }

    fn behind(&self) -> bool {
        match (&self.held, self.target()) {
            (Some(h), Some(t)) => t.stamp > h.meta.stamp,
            _ => false,
        }
    }

    fn lead(&self, m: &TokenMeta) -> Millis {
        let life = m.planned_expiry().saturating_sub(m.issued_at);
        self.cfg.refresh_lead.min(life / 2)
    }

    fn ensure_jitter(&mut self, m: &TokenMeta) {
        if self.refresh.jitter.serial != m.stamp.serial {
            let max = self.cfg.refresh_jitter.min(self.lead(m) / 2);
            self.refresh.jitter = Jitter {
                serial: m.stamp.serial,
                ms: self.rng.upto(max),
            };
        }
    }

    /// When the token `m` is due for refresh.
    fn due(&self, m: &TokenMeta) -> Millis {
        let jitter = if self.refresh.jitter.serial == m.stamp.serial {
            self.refresh.jitter.ms
        } else {
            0
        };
        m.planned_expiry()
            .saturating_sub(self.lead(m))
            .saturating_sub(jitter)
            .max(self.earliest_refresh(m))
    }

    /// Refreshes of one session are rate-limited: none earlier than [`MIN_REFRESH_GAP`] after
    /// the token it replaces was issued, whatever the server's `expires_in` or 401s say.
    fn earliest_refresh(&self, m: &TokenMeta) -> Millis {
        if self.cfg.faults().no_rate_limit {
            0
        } else {
            m.issued_at.saturating_add(MIN_REFRESH_GAP)
        }
    }

    /// A live claim of another tab for a token newer than `t`.
    /// A claim matters while it is about the newest token `t` (or a newer one): a token
    /// obtained after the claim was made was its answer, or made it moot.
    fn live_claim(&self, now: Millis, t: Option<TokenMeta>) -> Option<Claim> {
        if self.cfg.faults().disable_lock {
            return None;
        }
        let c = self.shared.claim?;
        let relevant = t.is_none_or(|t| c.base >= t.issued_at);
        (c.tab != self.tab && now < c.until && relevant).then_some(c)
    }

    fn needs_refresh(&self, now: Millis) -> bool {
        let Some(h) = &self.held else {
            return self.refresh.resuming;
        };
        if self.behind() {
            if h.refresh_token.is_some() {
                // Token mode: our refresh token is superseded; presenting it would trip the
                // server's reuse detection. Only the newest token (asked for over the bus) may
                // refresh.
                return false;
            }
            // Cookie mode, our token ran out and asking the other tabs for the newest one
            // failed repeatedly (its holder is gone, or there is no bus): refresh ourselves —
            // the cookie is the newest refresh token, so this is simply its refresh, a little
            // early. After a 401 (the server says our token is dead, a call waits) one
            // unanswered ask is enough.
            let patience = if self.refresh.forced { 1 } else { 3 };
            let dead = self.refresh.forced || now >= h.meta.planned_expiry();
            if dead && self.refresh.asks.attempt >= patience {
                return true;
            }
        }
        if self.refresh.forced && !self.behind() {
            return self
                .target()
                .is_some_and(|t| now >= self.earliest_refresh(&t));
        }
        self.target().is_some_and(|t| now >= self.due(&t))
    }

    #[inline(never)]
    pub(crate) fn tick_refresh(&mut self, now: Millis) {
        if let Some(t) = self.target() {
            self.ensure_jitter(&t);
        }
        match self.refresh.phase {
            Phase::Idle => {
                if self.newest_token_lost(now) {
                    self.logout_local(now, LogoutReason::Lost, Some(false));
                    return;
                }
                self.ask_if_behind(now);
                if self.held.is_none() || !self.online {
                    return;
                }
                if self.needs_refresh(now) && self.live_claim(now, self.target()).is_none() {
                    self.start_lock(now);
                }
            }
            Phase::Joining { until } => {
                if self.held.is_some() {
                    self.refresh.phase = Phase::Idle;
                } else if now >= until && self.online {
                    self.start_lock(now);
                }
            }
            Phase::Locking => {}
            Phase::Claiming { until, serial } => {
                if now >= until {
                    let ours = self
                        .shared
                        .claim
                        .is_some_and(|c| c.tab == self.tab && c.serial == serial);
                    if ours {
                        self.decide_under_lock(now, Some(serial));
                    } else {
                        self.stand_down(now);
                    }
                }
            }
            Phase::InFlight { since, .. } => {
                if now >= since.saturating_add(self.cfg.request_timeout) {
                    self.on_refresh_failed(now, None, None);
                }
            }
            Phase::Backoff { until, .. } => {
                if now >= until && self.online && (self.held.is_some() || self.refresh.resuming) {
                    self.refresh.phase = Phase::Idle;
                    if self.live_claim(now, self.target()).is_none() {
                        self.start_lock(now);
                    }
                }
            }
        }
    }

    /// Asks other tabs for the newest token when the shared record names a token this tab
    /// lacks and needs: its own ran out (the bus message carrying the new one was lost), or it
    /// holds none while a session is live (a login elsewhere whose broadcast it missed).
    /// Repeats while the need lasts, after `4 * join_wait`, doubling up to 32 times that.
    pub(crate) fn ask_if_behind(&mut self, now: Millis) {
        if !self.wants_token(now) {
            return;
        }
        let serial = self.target().map_or(0, |t| t.stamp.serial);
        let Asks {
            serial: asked,
            at,
            attempt,
        } = self.refresh.asks;
        let attempt = if asked < serial {
            0
        } else if now >= at.saturating_add(self.ask_every()) {
            attempt.saturating_add(1)
        } else {
            return;
        };
        self.refresh.asks = Asks {
            serial,
            at: now,
            attempt,
        };
        self.broadcast(&Msg::TokenRequest {
            tab: self.tab,
            attempt,
        });
    }

    /// Token mode: the newest refresh token, which we lack, ran out long enough ago that its
    /// holder would have refreshed it if it were alive (a live holder refreshes before expiry,
    /// bounded by the lock wait, a request timeout and the longest backoff). Nobody can refresh
    /// any more; a vault copy would have been restored ([`Input::Restore`] on the vault's
    /// storage event).
    fn newest_token_lost(&self, now: Millis) -> bool {
        let (Some(h), Some(t)) = (&self.held, self.target()) else {
            return false;
        };
        h.refresh_token.is_some()
            && t.stamp > h.meta.stamp
            && now >= t.planned_expiry().saturating_add(self.lost_after())
    }

    fn lost_after(&self) -> Millis {
        let span = self
            .cfg
            .lock_wait
            .saturating_add(self.cfg.request_timeout)
            .saturating_add(self.cfg.backoff_cap);
        mul_pow2(span, 1)
    }

    /// The pause before asking again.
    fn ask_every(&self) -> Millis {
        let base = mul_pow2(self.cfg.join_wait, 2).max(1);
        mul_pow2(base, self.refresh.asks.attempt.min(5))
    }

    /// Whether to answer a [`Msg::TokenRequest`]: only with a live, newest-known token; the tab
    /// that obtained it always, others on repeated asks and only a pseudo-random quarter of
    /// them (the answer is a broadcast: every holder answering every asker is quadratic).
    pub(crate) fn should_answer(&self, now: Millis, asker: u64, attempt: u32) -> bool {
        let Some(h) = &self.held else { return false };
        if self.access_token().is_none() || now >= h.meta.planned_expiry() || self.behind() {
            return false;
        }
        if h.meta.stamp.tab == self.tab {
            return true;
        }
        let mix = (self.tab
            ^ asker.rotate_left(29)
            ^ u64::from(attempt).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_mul(0xbf58_476d_1ce4_e5b9);
        attempt > 0 && mix >> 62 == 0
    }

    fn wants_token(&self, now: Millis) -> bool {
        let Some(t) = self.target() else { return false };
        match &self.held {
            // Behind within our session: only once our token ran out (or a 401 said so). A
            // newer session (a login elsewhere) supersedes ours at once.
            Some(h) => {
                t.stamp > h.meta.stamp
                    && (now >= h.meta.planned_expiry()
                        || self.refresh.forced
                        || t.stamp.session != h.meta.stamp.session)
            }
            None => {
                !self.refresh.resuming
                    && matches!(
                        self.state,
                        SessionState::Anonymous | SessionState::LoggedOut
                    )
                    && now < t.planned_expiry()
            }
        }
    }

    pub(crate) fn refresh_deadlines(&self, consider: &mut impl FnMut(Millis)) {
        if self.wants_token(self.now) {
            consider(self.refresh.asks.at.saturating_add(self.ask_every()));
        }
        if let (Some(h), Some(t)) = (&self.held, self.target()) {
            if h.refresh_token.is_some() && t.stamp > h.meta.stamp {
                consider(t.planned_expiry().saturating_add(self.lost_after()));
            }
        }
        match self.refresh.phase {
            Phase::Idle => {
                if let (Some(h), Some(t)) = (&self.held, self.target()) {
                    consider(self.due(&t));
                    consider(h.meta.planned_expiry());
                    if self.refresh.forced {
                        consider(self.earliest_refresh(&t));
                    }
                    if let Some(c) = self.live_claim(self.now, Some(t)) {
                        consider(c.until);
                    }
                }
            }
            Phase::Joining { until }
            | Phase::Claiming { until, .. }
            | Phase::Backoff { until, .. } => consider(until),
            Phase::InFlight { since, .. } => {
                consider(since.saturating_add(self.cfg.request_timeout))
            }
            Phase::Locking => {}
        }
    }

    fn start_lock(&mut self, now: Millis) {
        if self.cfg.faults().disable_lock {
            self.send_refresh(now, None);
        } else if self.cfg.web_locks {
            self.refresh.phase = Phase::Locking;
            let id = self.new_id();
            self.refresh.lock_id = Some(id);
            self.effects.push(Effect::AcquireLock {
                id,
                wait: self.cfg.lock_wait,
                steal: false,
            });
        } else {
            let serial = self.max_serial().saturating_add(1);
            let claim = Claim {
                serial,
                tab: self.tab,
                base: self.claim_base(),
                at: now,
                until: now.saturating_add(
                    self.cfg
                        .claim_settle
                        .saturating_add(self.cfg.request_timeout),
                ),
            };
            self.write_claim(claim);
            self.refresh.phase = Phase::Claiming {
                until: now.saturating_add(self.cfg.claim_settle),
                serial,
            };
        }
    }

    /// What a claim written now is about: the newest token's `issued_at` (0 for none).
    fn claim_base(&self) -> Millis {
        self.target().map_or(0, |t| t.issued_at)
    }

    fn write_claim(&mut self, claim: Claim) {
        let s = Shared {
            claim: Some(claim),
            ..Shared::default()
        };
        self.shared.merge(&s);
        self.effects.push(Effect::PersistShared(s.encode()));
        if !self.cfg.web_locks {
            self.broadcast(&Msg::Claim(claim));
        }
    }

    #[inline(never)]
    pub(crate) fn on_lock_granted(&mut self, now: Millis, id: RequestId) {
        let current = self.refresh.lock_id == Some(id);
        if !current {
            self.superseded();
            if self.refresh.phase == Phase::Locking {
                // A newer lock request is pending; this grant belongs to one it replaced.
                return;
            }
        }
        self.refresh.lock_held = true;
        if !current || self.refresh.phase != Phase::Locking {
            self.release_lock();
            return;
        }
        self.decide_under_lock(now, None);
    }

    /// Holding the lock (or a won claim): re-check shared state, then send or stand down.
    /// (Behind on a token we lack whose refresh is due, cookie mode refreshes anyway: the
    /// request presents the newest cookie, so it is that token's one refresh.)
    fn decide_under_lock(&mut self, now: Millis, serial: Option<u64>) {
        if !self.needs_refresh(now) {
            self.stand_down(now);
            return;
        }
        if self.live_claim(now, self.target()).is_some() {
            self.stand_down(now);
            return;
        }
        self.send_refresh(now, serial);
    }

    fn stand_down(&mut self, now: Millis) {
        self.refresh.phase = Phase::Idle;
        self.release_lock();
        if self.held.is_none() && self.refresh.resuming {
            // Still joining: another tab's refresh is pending; its token will arrive over the
            // bus, or we try again when its claim runs out.
            let until = self
                .live_claim(now, self.target())
                .map_or(now.saturating_add(self.ask_every()), |c| c.until);
            self.refresh.phase = Phase::Joining { until };
        }
        self.ask_if_behind(now);
    }

    /// The server session a refresh sent now is about (`0`: unknown, e.g. a resume).
    fn refreshed_sid(&self) -> u64 {
        self.held.as_ref().map_or(0, |h| h.meta.sid)
    }

    #[inline(never)]
    fn send_refresh(&mut self, now: Millis, serial: Option<u64>) {
        let serial = serial.unwrap_or_else(|| self.max_serial().saturating_add(1));
        let epoch = match &self.held {
            Some(h) => h.meta.stamp.epoch,
            None => self.shared.epoch,
        };
        if !self.cfg.faults().disable_lock {
            let until = now.saturating_add(self.cfg.request_timeout);
            self.write_claim(Claim {
                serial,
                tab: self.tab,
                base: self.claim_base(),
                at: now,
                until,
            });
        }
        let refresh_token = self.held.as_ref().and_then(|h| h.refresh_token.clone());
        let id = self.new_id();
        self.effects.push(Effect::SendRefresh { id, refresh_token });
        let presented = self.held.as_ref().map(|h| h.meta.stamp);
        let req = Pending {
            id,
            serial,
            epoch,
            presented,
            sid: self.refreshed_sid(),
            forced: self.refresh.forced,
        };
        self.refresh.phase = Phase::InFlight { since: now, req };
        self.refresh.last_req = Some(req);
        self.refresh.forced = false;
        bump(&mut self.stats.refresh_sent);
    }

    /// The request an answer belongs to. After a timeout the engine may have moved on (backoff,
    /// a new lock request) while the answer was only delayed — a tab frozen mid-request gets
    /// it when it thaws — so the last request sent still takes its answer: dropping a rotated
    /// refresh token would make the next request present a superseded one.
    pub(crate) fn pending_request(&self) -> Option<Pending> {
        match self.refresh.phase {
            Phase::InFlight { req, .. } | Phase::Backoff { req, .. } => Some(req),
            _ => self.refresh.last_req,
        }
    }

    /// Whether the session changed since `req` was sent (a login here or elsewhere, a logout):
    /// then its answer says nothing about the session we hold now.
    fn session_changed(&self, req: &Pending) -> bool {
        let held = self.held.as_ref().map(|h| h.meta.stamp);
        match (req.presented, held) {
            (Some(p), Some(h)) => p.session != h.session || p.epoch != h.epoch,
            (None, None) => false,
            _ => true,
        }
    }

    fn stale(&mut self) {
        diag(&mut self.stats.stale_answers);
    }

    /// The request an answer with `id` belongs to: the pending one, or none (superseded).
    fn answered(&mut self, id: RequestId) -> Option<Pending> {
        match self.pending_request() {
            Some(req) if req.id == id => Some(req),
            Some(_) => {
                self.superseded();
                None
            }
            None => {
                self.stale();
                None
            }
        }
    }

    /// Whether an answer of server session `got` belongs to another session than the one
    /// `req` refreshed: the token it presented, or for a resume the live session the shared
    /// record names (the cookie may have been replaced by another login meanwhile).
    fn foreign_answer(&self, req: &Pending, got: u64) -> bool {
        if self.cfg.faults().ignore_session || got == 0 {
            return false;
        }
        let expected = match req.presented {
            Some(_) => req.sid,
            None => self
                .shared
                .token
                .filter(|s| s.stamp.epoch == req.epoch)
                .map_or(0, |s| s.sid),
        };
        expected != 0 && expected != got
    }

    #[inline(never)]
    pub(crate) fn on_refresh_ok(&mut self, now: Millis, id: RequestId, t: Tokens) {
        let Some(req) = self.answered(id) else {
            return;
        };
        let (serial, epoch) = (req.serial, req.epoch);
        self.refresh.phase = Phase::Idle;
        self.refresh.last_req = None;
        self.refresh.attempt = 0;
        if self.session_changed(&req) {
            self.stale();
            self.release_lock();
            return;
        }
        let got = t.session.as_deref().map_or(0, session_tag);
        if self.foreign_answer(&req, got) {
            // Alice's refresh answered after Bob logged in (or the reverse): these tokens are
            // not the session this tab refreshed. Refused, reported; the other session's
            // token reaches this tab over the bus.
            diag(&mut self.stats.foreign_session);
            self.release_lock();
            self.refresh.resuming = false;
            self.emit(Event::Error {
                code: ErrorCode::SessionMismatch,
            });
            return;
        }
        let session = match (req.presented, self.shared.token) {
            (Some(p), _) => p.session,
            (None, Some(s)) if s.stamp.epoch == epoch => s.stamp.session,
            _ => now,
        };
        let stamp = Stamp {
            epoch,
            session,
            serial,
            tab: self.tab,
        };
        // A newer token of the session is known (another tab refreshed too): drop this answer
        // and take that one — unless this tab holds nothing and that token is of the very
        // server session this answer is for. Such a tab is resuming, and the newer token may
        // never reach it (without BroadcastChannel tokens do not travel between tabs); its own
        // answer is as good, and waiting would leave it anonymous until the next refresh.
        let seen_newer = self
            .shared
            .token
            .is_some_and(|s| s.stamp >= stamp && (self.held.is_some() || got == 0 || s.sid != got));
        let ended = epoch < self.shared.epoch;
        if ended || seen_newer {
            // A logout since the request ended its session: a resume is decided (signed
            // out), nothing will come to wait for.
            if ended {
                self.refresh.resuming = false;
            }
            self.stale();
            self.release_lock();
            self.ask_if_behind(now);
            return;
        }
        let sid = if got != 0 { got } else { req.sid };
        let meta = TokenMeta {
            stamp,
            issued_at: now,
            expires_at: now.saturating_add(self.lifetime(t.expires_in_ms)),
            sid,
        };
        let refresh_token = t
            .refresh_token
            .or_else(|| self.held.as_ref().and_then(|h| h.refresh_token.clone()));
        let user = t
            .user
            .or_else(|| self.held.as_ref().and_then(|h| h.user.clone()));
        let held = Held {
            access_token: t.access_token,
            refresh_token,
            user,
            meta,
            from_forced: req.forced,
        };
        if self.adopt(now, held) {
            self.persist_shared();
            self.store_token();
            self.broadcast_token();
        } else {
            self.stale();
        }
        self.release_lock();
    }

    #[inline(never)]
    pub(crate) fn on_refresh_rejected(&mut self, now: Millis, id: RequestId, reason: LogoutReason) {
        let Some(req) = self.answered(id) else {
            return;
        };
        let (serial, epoch) = (req.serial, req.epoch);
        self.refresh.phase = Phase::Idle;
        self.refresh.last_req = None;
        self.refresh.attempt = 0;
        self.release_lock();
        if self.session_changed(&req) {
            // The answer concerns a session we no longer hold (or a resume that a login
            // overtook): it ends nothing.
            self.refresh.resuming = false;
            self.stale();
            return;
        }
        if self.held.is_none() {
            // A resume attempt without a live cookie: stay anonymous, quietly.
            self.refresh.resuming = false;
            return;
        }
        let presented = self.held.as_ref().map(|h| h.meta.stamp);
        let newer = match (self.shared.token, presented) {
            (Some(s), Some(p)) => {
                s.stamp > p && (s.stamp.session != p.session || s.stamp.serial >= serial)
            }
            _ => false,
        };
        if epoch < self.shared.epoch || newer {
            self.stale();
            return;
        }
        self.logout_local(now, reason, None);
    }

    /// `id`: the failed request (`None`: the request in flight timed out here).
    #[inline(never)]
    pub(crate) fn on_refresh_failed(
        &mut self,
        now: Millis,
        id: Option<RequestId>,
        retry_after: Option<Millis>,
    ) {
        // Only the request in flight can fail; a late failure of an earlier one changes nothing.
        let Phase::InFlight { req, since } = self.refresh.phase else {
            if id.is_some() {
                self.superseded();
            } else {
                self.stale();
            }
            return;
        };
        if id.is_some_and(|id| id != req.id) {
            self.superseded();
            return;
        }
        // Whatever the server says, no wait beyond MAX_RETRY_AFTER (a claim covering a longer
        // wait would look forged to the other tabs).
        let retry_after = retry_after.map(|r| r.min(MAX_RETRY_AFTER));
        let serial = req.serial;
        self.refresh.attempt = self.refresh.attempt.saturating_add(1);
        let exp = mul_pow2(self.cfg.backoff_base, (self.refresh.attempt - 1).min(30))
            .min(self.cfg.backoff_cap);
        let delay = if self.online && self.back_online >= since {
            // Sent before the network came back: this failure says nothing about the network
            // now, and no later `online` event will cut the backoff short. Retry at once
            // (unless the server, reached after all, asked for a wait).
            retry_after.unwrap_or(0)
        } else {
            (exp / 2 + self.rng.upto(exp / 2)).max(retry_after.unwrap_or(0))
        };
        let until = now.saturating_add(delay);
        if !self.cfg.faults().disable_lock {
            // Keep other tabs from piling in while we back off; if we die, the claim expires.
            let claim_until = until.saturating_add(self.cfg.request_timeout);
            self.write_claim(Claim {
                serial,
                tab: self.tab,
                base: self.claim_base(),
                at: now,
                until: claim_until,
            });
        }
        self.release_lock();
        self.refresh.phase = Phase::Backoff { until, req };
        self.emit(Event::Error {
            code: ErrorCode::RefreshRetry,
        });
    }

    #[inline(never)]
    pub(crate) fn on_lock_unavailable(&mut self, now: Millis, id: RequestId) {
        if self.refresh.lock_id != Some(id) {
            self.superseded();
            return;
        }
        if self.refresh.phase != Phase::Locking {
            return;
        }
        if !self.needs_refresh(now) {
            self.refresh.phase = Phase::Idle;
            return;
        }
        // The holder died or sleeps: take the lock (the re-check under the lock still applies).
        diag(&mut self.stats.lock_steals);
        let id = self.new_id();
        self.refresh.lock_id = Some(id);
        self.effects.push(Effect::AcquireLock {
            id,
            wait: self.cfg.lock_wait,
            steal: true,
        });
    }

    #[inline(never)]
    pub(crate) fn on_lock_lost(&mut self, _now: Millis, id: RequestId) {
        if self.refresh.lock_id != Some(id) {
            self.superseded();
            return;
        }
        self.refresh.lock_id = None;
        self.refresh.lock_held = false;
        if self.refresh.phase == Phase::Locking {
            self.refresh.phase = Phase::Idle;
        }
    }
}
