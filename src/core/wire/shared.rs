//! The shared coordination record and the token record.
//!
//! **Shared record** ([`Shared`]): non-secret coordination state every tab of the origin can
//! read — the logout epoch, the stamp and expiry of the newest token, the pending refresh
//! claim and the origin-wide last activity. The browser layer keeps it in `localStorage`
//! under one key, *always* (also in memory-only token mode: it holds no secret). Writes are
//! max-merges, so concurrent writers never move a field backwards: on
//! [`Effect::PersistShared`](crate::core::Effect::PersistShared) the browser reads the stored
//! bytes, calls [`merge_shared`] and stores the result.
//!
//! **Token record** ([`TokenRecord`]): the access token (and, in token mode, the refresh token)
//! with its metadata. The browser seals it in the vault when persistent storage is configured
//! ([`Effect::StoreToken`](crate::core::Effect::StoreToken)) and hands it back at startup with
//! [`Input::Restore`](crate::core::Input::Restore).
use alloc::string::String;
use alloc::vec::Vec;

use super::codec::{DecodeError, Reader, Writer};
use super::reason::LogoutReason;
use super::Millis;

const SHARED_VERSION: u8 = 2;
const TOKEN_VERSION: u8 = 2;

/// How far ahead of the reader's clock a timestamp from another tab or from storage may be.
/// Tabs of one origin share one wall clock up to this much; anything later is implausible (a
/// clock that jumped ahead, or a forged value): activity counts as happening when first seen,
/// claims are ignored, a token's times are bounded ([`TokenMeta::bounded`]).
pub const CLOCK_TOLERANCE: Millis = 5_000;

/// The longest refresh claim [`merge_shared`] keeps (beyond `now`): a claim reaching further is
/// implausible and would block every tab's refresh for as long.
pub const MAX_CLAIM_SPAN: Millis = 10 * 60_000;

/// The largest jump of the logout epoch one message or record may announce. A larger one is
/// implausible (nobody logs out a million times between two reads) and is ignored.
pub const MAX_EPOCH_STEP: u64 = 1 << 20;

/// The longest access-token lifetime the engine plans with: a token claiming to live longer is
/// refreshed as if it expired after this (a far-future expiry never blocks refreshes).
pub const MAX_TOKEN_LIFETIME: Millis = 24 * 3_600_000;

/// A 64-bit tag of the server's session id (FNV-1a; `0`: unknown). Tokens carry it so that a
/// refresh answer belonging to another session is recognised.
pub fn session_tag(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// Orders tokens origin-wide: a later logout epoch wins, then a later session (login time: a
/// browser holds one refresh cookie, so a newer login supersedes an older session — this also
/// orders sessions correctly when site data, and with it the epoch, was cleared), then a higher
/// serial (every login and refresh takes the highest serial seen plus one), then the tab id as
/// a tie-break. A tab never replaces its token with one of a smaller stamp.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Debug)]
pub struct Stamp {
    /// The logout epoch the session was created in.
    pub epoch: u64,
    /// When the session began (local time of the login answer); the absolute lifetime counts
    /// from here.
    pub session: Millis,
    /// Position in the origin-wide order of issued tokens.
    pub serial: u64,
    /// The tab that obtained the token (tie-break only).
    pub tab: u64,
}

/// What every tab may know about a token without holding it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TokenMeta {
    /// The token's place in the origin-wide order.
    pub stamp: Stamp,
    /// Local receipt time of the answer that carried it.
    pub issued_at: Millis,
    /// `issued_at + expires_in` (immune to client clock skew against the server).
    pub expires_at: Millis,
    /// The server session it belongs to ([`session_tag`] of its id; `0`: unknown).
    pub sid: u64,
}

impl TokenMeta {
    /// Whether the metadata is plausible at `now`: nothing dated after `now + tolerance`, and
    /// a session that began no later than its token.
    pub fn plausible(&self, now: Millis) -> bool {
        let limit = now.saturating_add(CLOCK_TOLERANCE);
        self.issued_at <= limit
            && self.stamp.session <= limit
            && self.stamp.session <= self.issued_at.saturating_add(CLOCK_TOLERANCE)
    }

    /// The same token with its times bounded at `now`: an `issued_at` beyond `now +`
    /// [`CLOCK_TOLERANCE`] (a clock that ran ahead) becomes `now`, the lifetime is kept (at
    /// most [`MAX_TOKEN_LIFETIME`]). The stamp — the token's identity and order — is kept.
    pub fn bounded(&self, now: Millis) -> TokenMeta {
        let mut m = *self;
        if m.issued_at > now.saturating_add(CLOCK_TOLERANCE) {
            let life = m.planned_expiry().saturating_sub(m.issued_at);
            m.issued_at = now;
            m.expires_at = now.saturating_add(life);
        }
        m
    }

    /// The expiry to plan with: `expires_at`, but never more than [`MAX_TOKEN_LIFETIME`]
    /// after `issued_at`.
    pub fn planned_expiry(&self) -> Millis {
        self.expires_at
            .min(self.issued_at.saturating_add(MAX_TOKEN_LIFETIME))
    }
}

/// The last user activity of one session: tied to the session (`epoch`, `session` of its
/// [`Stamp`]), so a new session never inherits an old one's activity.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Activity {
    /// The logout epoch of the session.
    pub epoch: u64,
    /// When the session began ([`Stamp::session`]).
    pub session: Millis,
    /// When the activity happened.
    pub at: Millis,
}

impl Activity {
    /// Whether `self` replaces `old`: a later session's activity, or later activity of the
    /// same session.
    pub fn supersedes(&self, old: &Activity) -> bool {
        (self.epoch, self.session, self.at) > (old.epoch, old.session, old.at)
    }

    /// Whether it is activity of the session of `stamp`.
    pub fn of(&self, stamp: &Stamp) -> bool {
        self.epoch == stamp.epoch && self.session == stamp.session
    }
}

/// A tab's claim that it is refreshing (or backing off from refreshing) the newest token.
/// Other tabs do not send a refresh while a claim is live (`now < until`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Claim {
    /// The serial the refresh will produce.
    pub serial: u64,
    /// The claiming tab.
    pub tab: u64,
    /// When the claim was written.
    pub at: Millis,
    /// The claim is live until this time.
    pub until: Millis,
    /// `issued_at` of the token the claim is about refreshing (0: no token, a resume).
    pub base: Millis,
}

impl Claim {
    /// Whether `self` replaces `old` when both are merged. Symmetric, so every tab and the
    /// storage agree on the winner whatever order they see the two in:
    /// * a claim about a newer token (a later round) wins;
    /// * within a round, a tab's own later claim replaces its earlier one;
    /// * between tabs, a claim made after the other expired wins; of two claims live at the
    ///   same time the earlier wins (first come, first served: a claim whose request is already
    ///   in flight is never overridden by a latecomer), ties by tab id.
    ///
    /// Nothing here compares serials: they restart when site data is cleared.
    pub fn supersedes(&self, old: &Claim) -> bool {
        if self.base != old.base {
            return self.base > old.base;
        }
        if self.tab == old.tab {
            return self.at > old.at || (self.at == old.at && self.until > old.until);
        }
        if self.at >= old.until {
            return true;
        }
        if old.at >= self.until {
            return false;
        }
        (self.at, self.tab) < (old.at, old.tab)
    }
}

/// The shared coordination record (see the module docs).
#[derive(Clone, PartialEq, Eq, Default, Debug)]
pub struct Shared {
    /// The logout epoch: bumped by every logout.
    pub epoch: u64,
    /// Why the last logout happened (belongs to `epoch`).
    pub reason: Option<LogoutReason>,
    /// The newest token anyone obtained.
    pub token: Option<TokenMeta>,
    /// The newest refresh claim.
    pub claim: Option<Claim>,
    /// The origin-wide last user activity of the newest session.
    pub activity: Option<Activity>,
}

impl Shared {
    /// Merges `other` into `self`, field by field, keeping the larger value of each.
    pub fn merge(&mut self, other: &Shared) {
        if other.epoch > self.epoch || (other.epoch == self.epoch && self.reason.is_none()) {
            self.reason = other.reason;
        }
        self.epoch = self.epoch.max(other.epoch);
        if let Some(t) = other.token {
            if self.token.is_none_or(|s| t.stamp > s.stamp) {
                self.token = Some(t);
            }
        }
        if let Some(c) = other.claim {
            if self.claim.is_none_or(|s| c.supersedes(&s)) {
                self.claim = Some(c);
            }
        }
        if let Some(a) = other.activity {
            if self.activity.is_none_or(|s| a.supersedes(&s)) {
                self.activity = Some(a);
            }
        }
    }

    /// Drops every field that is implausible at `now`: timestamps beyond `now +`
    /// [`CLOCK_TOLERANCE`], a claim reaching beyond `now + claim_span`. Returns how many
    /// fields it dropped.
    pub fn sanitize(&mut self, now: Millis, claim_span: Millis) -> u32 {
        let limit = now.saturating_add(CLOCK_TOLERANCE);
        let mut dropped = 0;
        if let Some(t) = self.token.filter(|t| !t.plausible(now)) {
            // A real token (its stamp orders it), with times from a clock that ran ahead.
            self.token = Some(t.bounded(now));
            dropped += 1;
        }
        if self.claim.is_some_and(|c| {
            c.at > limit || c.until > now.saturating_add(claim_span) || c.base > limit
        }) {
            self.claim = None;
            dropped += 1;
        }
        if self
            .activity
            .is_some_and(|a| a.at > limit || a.session > limit)
        {
            self.activity = None;
            dropped += 1;
        }
        dropped
    }

    /// Encodes the record compactly.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(SHARED_VERSION, 0);
        w.u64(self.epoch)
            .opt_u64(self.reason.map(LogoutReason::to_u64));
        match &self.token {
            None => w.u64(0),
            Some(t) => write_meta(w.u64(1), t),
        };
        match &self.claim {
            None => w.u64(0),
            Some(c) => write_claim(w.u64(1), c),
        };
        match &self.activity {
            None => w.u64(0),
            Some(a) => w.u64(1).u64(a.epoch).u64(a.session).u64(a.at),
        };
        w.finish()
    }

    /// Decodes a record written by [`Shared::encode`].
    ///
    /// # Errors
    /// Any [`DecodeError`]: wrong version, truncation, trailing bytes, bad values.
    pub fn decode(bytes: &[u8]) -> Result<Shared, DecodeError> {
        let (mut r, tag) = Reader::open(bytes, SHARED_VERSION)?;
        if tag != 0 {
            return Err(DecodeError::Tag);
        }
        let epoch = r.counter();
        let reason = r.opt_u64().and_then(|v| {
            let reason = LogoutReason::from_u64(v);
            if reason.is_none() {
                r.fail(DecodeError::Range);
            }
            reason
        });
        let token = r.flag().then(|| read_meta(&mut r));
        let claim = r.flag().then(|| read_claim(&mut r));
        let activity = r.flag().then(|| read_activity(&mut r));
        r.end()?;
        Ok(Shared {
            epoch,
            reason,
            token,
            claim,
            activity,
        })
    }
}

/// Merges a freshly written record into the stored one and returns the bytes to store.
/// A stored value that does not decode is replaced (never trusted, never a panic), and
/// stored fields that are implausible at `now` ([`Shared::sanitize`] with
/// [`MAX_CLAIM_SPAN`]) are dropped, so one bad writer (a clock a year ahead) cannot poison
/// the record for good.
pub fn merge_shared(stored: Option<&[u8]>, new: &[u8], now: Millis) -> Vec<u8> {
    let mut out = stored
        .and_then(|s| Shared::decode(s).ok())
        .unwrap_or_default();
    out.sanitize(now, MAX_CLAIM_SPAN);
    match Shared::decode(new) {
        Ok(n) => {
            if out.epoch > n.epoch.saturating_add(MAX_EPOCH_STEP) {
                // A stored epoch implausibly far ahead of the writer's (forged, corrupted):
                // left in place, it would mask every real logout written after it.
                out.epoch = n.epoch;
                out.reason = n.reason;
            }
            out.merge(&n);
            if out.activity.is_some_and(|a| a.epoch > out.epoch) {
                // Activity of a session from an epoch nobody reached: forged.
                out.activity = n.activity.filter(|a| a.epoch <= out.epoch);
            }
        }
        Err(_) => return out.encode(),
    }
    out.encode()
}

/// The token record the browser seals in the vault.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TokenRecord {
    /// The bearer token.
    pub access_token: String,
    /// The refresh token in token mode; `None` in cookie mode.
    pub refresh_token: Option<String>,
    /// The signed-in user's name, when known.
    pub user: Option<String>,
    /// Its metadata.
    pub meta: TokenMeta,
}

impl TokenRecord {
    /// Encodes the record.
    pub fn encode(&self) -> Vec<u8> {
        encode_token_record(
            &self.access_token,
            self.refresh_token.as_deref(),
            self.user.as_deref(),
            &self.meta,
        )
    }

    /// Decodes a record written by [`TokenRecord::encode`].
    ///
    /// # Errors
    /// Any [`DecodeError`].
    pub fn decode(bytes: &[u8]) -> Result<TokenRecord, DecodeError> {
        let (mut r, tag) = Reader::open(bytes, TOKEN_VERSION)?;
        if tag != 0 {
            return Err(DecodeError::Tag);
        }
        let access_token = r.str();
        let refresh_token = r.opt_str();
        let user = r.opt_str();
        let meta = read_meta(&mut r);
        r.end()?;
        Ok(TokenRecord {
            access_token,
            refresh_token,
            user,
            meta,
        })
    }
}

/// Encodes a [`TokenRecord`] from borrowed parts.
pub(crate) fn encode_token_record(
    access_token: &str,
    refresh_token: Option<&str>,
    user: Option<&str>,
    meta: &TokenMeta,
) -> Vec<u8> {
    let mut w = Writer::new(TOKEN_VERSION, 0);
    w.str(access_token).opt_str(refresh_token).opt_str(user);
    write_meta(&mut w, meta).finish()
}

pub(crate) fn write_meta<'w>(w: &'w mut Writer, m: &TokenMeta) -> &'w mut Writer {
    w.u64(m.stamp.epoch)
        .u64(m.stamp.session)
        .u64(m.stamp.serial)
        .u64(m.stamp.tab)
        .u64(m.issued_at)
        .u64(m.expires_at)
        .u64(m.sid)
}

pub(crate) fn read_meta(r: &mut Reader<'_>) -> TokenMeta {
    let stamp = Stamp {
        epoch: r.counter(),
        session: r.u64(),
        serial: r.counter(),
        tab: r.u64(),
    };
    TokenMeta {
        stamp,
        issued_at: r.u64(),
        expires_at: r.u64(),
        sid: r.u64(),
    }
}

pub(crate) fn read_activity(r: &mut Reader<'_>) -> Activity {
    Activity {
        epoch: r.counter(),
        session: r.u64(),
        at: r.u64(),
    }
}

pub(crate) fn write_claim<'w>(w: &'w mut Writer, c: &Claim) -> &'w mut Writer {
    w.u64(c.serial)
        .u64(c.tab)
        .u64(c.at)
        .u64(c.until)
        .u64(c.base)
}

pub(crate) fn read_claim(r: &mut Reader<'_>) -> Claim {
    Claim {
        serial: r.counter(),
        tab: r.u64(),
        at: r.u64(),
        until: r.u64(),
        base: r.u64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(serial: u64) -> TokenMeta {
        TokenMeta {
            stamp: Stamp {
                epoch: 2,
                session: 500,
                serial,
                tab: 7,
            },
            issued_at: 1_000,
            expires_at: 301_000,
            sid: 42,
        }
    }

    #[test]
    fn shared_record_round_trips() {
        let s = Shared {
            epoch: 3,
            reason: Some(LogoutReason::Idle),
            token: Some(meta(9)),
            claim: Some(Claim {
                serial: 10,
                tab: 1,
                at: 5,
                until: 99,
                base: 4,
            }),
            activity: Some(Activity {
                epoch: 3,
                session: 500,
                at: 1_700_000_000_000,
            }),
        };
        assert_eq!(Shared::decode(&s.encode()).unwrap(), s);
        assert_eq!(
            Shared::decode(&Shared::default().encode()).unwrap(),
            Shared::default()
        );
    }

    #[test]
    fn merge_never_moves_a_field_backwards() {
        let newer = Shared {
            epoch: 5,
            reason: Some(LogoutReason::User),
            token: Some(meta(4)),
            claim: None,
            activity: Some(Activity {
                epoch: 2,
                session: 500,
                at: 90,
            }),
        };
        let older = Shared {
            epoch: 4,
            reason: Some(LogoutReason::Idle),
            token: Some(meta(3)),
            claim: None,
            activity: Some(Activity {
                epoch: 2,
                session: 500,
                at: 95,
            }),
        };
        let merged = merge_shared(Some(&newer.encode()), &older.encode(), 1_000);
        let m = Shared::decode(&merged).unwrap();
        assert_eq!(m.epoch, 5);
        assert_eq!(m.reason, Some(LogoutReason::User));
        assert_eq!(m.token.unwrap().stamp.serial, 4);
        assert_eq!(m.activity.unwrap().at, 95);
    }

    #[test]
    fn garbage_in_storage_is_replaced_not_trusted() {
        let new = Shared {
            epoch: 1,
            ..Shared::default()
        }
        .encode();
        let merged = merge_shared(Some(b"\x02\x00\xff"), &new, 0);
        assert_eq!(Shared::decode(&merged).unwrap().epoch, 1);
    }

    #[test]
    fn a_new_session_never_inherits_the_old_sessions_activity() {
        let old = Activity {
            epoch: 1,
            session: 100,
            at: 9_999_999,
        };
        let new = Activity {
            epoch: 2,
            session: 200,
            at: 300,
        };
        assert!(new.supersedes(&old));
        let mut s = Shared {
            activity: Some(old),
            ..Shared::default()
        };
        s.merge(&Shared {
            activity: Some(new),
            ..Shared::default()
        });
        assert_eq!(s.activity, Some(new));
    }

    #[test]
    fn merge_drops_stored_values_from_the_far_future() {
        let now = 1_764_000_000_000;
        let year = 365 * 24 * 3_600_000;
        let poisoned = Shared {
            epoch: 1,
            claim: Some(Claim {
                serial: 1,
                tab: 9,
                at: now,
                until: now + year,
                base: 0,
            }),
            activity: Some(Activity {
                epoch: 1,
                session: now - 10,
                at: now + year,
            }),
            ..Shared::default()
        };
        let fresh = Shared {
            epoch: 1,
            ..Shared::default()
        };
        let m = Shared::decode(&merge_shared(
            Some(&poisoned.encode()),
            &fresh.encode(),
            now,
        ))
        .unwrap();
        assert_eq!(m.claim, None);
        assert_eq!(m.activity, None);
        assert_eq!(m.epoch, 1);
    }

    #[test]
    fn token_record_round_trips_and_rejects_trailing_bytes() {
        let t = TokenRecord {
            access_token: "a.b.c".into(),
            refresh_token: Some("rt".into()),
            user: Some("bob".into()),
            meta: meta(1),
        };
        let mut bytes = t.encode();
        assert_eq!(TokenRecord::decode(&bytes).unwrap(), t);
        bytes.push(0);
        assert_eq!(TokenRecord::decode(&bytes), Err(DecodeError::Trailing));
    }
}
