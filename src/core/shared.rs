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
use super::logout::LogoutReason;
use super::Millis;

const SHARED_VERSION: u8 = 1;
const TOKEN_VERSION: u8 = 1;

/// Orders tokens origin-wide: a later logout epoch wins, then a later session (login time: a
/// browser holds one refresh cookie, so a newer login supersedes an older session — this also
/// orders sessions correctly when site data, and with it the epoch, was cleared), then a higher
/// serial (every login and refresh takes the highest serial seen plus one), then the tab id as
/// a tie-break. A tab never replaces its token with one of a smaller stamp.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[cfg_attr(test, derive(Debug))]
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
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub struct TokenMeta {
    /// The token's place in the origin-wide order.
    pub stamp: Stamp,
    /// Local receipt time of the answer that carried it.
    pub issued_at: Millis,
    /// `issued_at + expires_in` (immune to client clock skew against the server).
    pub expires_at: Millis,
}

/// A tab's claim that it is refreshing (or backing off from refreshing) the newest token.
/// Other tabs do not send a refresh while a claim is live (`now < until`).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
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
#[derive(Clone, PartialEq, Eq, Default)]
#[cfg_attr(test, derive(Debug))]
pub struct Shared {
    /// The logout epoch: bumped by every logout.
    pub epoch: u64,
    /// Why the last logout happened (belongs to `epoch`).
    pub reason: Option<LogoutReason>,
    /// The newest token anyone obtained.
    pub token: Option<TokenMeta>,
    /// The newest refresh claim.
    pub claim: Option<Claim>,
    /// The origin-wide last user activity.
    pub last_activity: Millis,
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
        self.last_activity = self.last_activity.max(other.last_activity);
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
        w.u64(self.last_activity).finish()
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
        let epoch = r.u64()?;
        let reason = match r.opt_u64()? {
            None => None,
            Some(v) => Some(LogoutReason::from_u64(v).ok_or(DecodeError::Range)?),
        };
        let token = if r.flag()? {
            Some(read_meta(&mut r)?)
        } else {
            None
        };
        let claim = if r.flag()? {
            Some(read_claim(&mut r)?)
        } else {
            None
        };
        let last_activity = r.u64()?;
        r.end()?;
        Ok(Shared {
            epoch,
            reason,
            token,
            claim,
            last_activity,
        })
    }
}

/// Merges a freshly written record into the stored one and returns the bytes to store.
/// A stored value that does not decode is replaced (never trusted, never a panic).
pub fn merge_shared(stored: Option<&[u8]>, new: &[u8]) -> Vec<u8> {
    let mut out = stored
        .and_then(|s| Shared::decode(s).ok())
        .unwrap_or_default();
    match Shared::decode(new) {
        Ok(n) => out.merge(&n),
        Err(_) => return out.encode(),
    }
    out.encode()
}

/// The token record the browser seals in the vault.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub struct TokenRecord {
    /// The bearer token.
    pub access_token: String,
    /// The refresh token in token mode; `None` in cookie mode.
    pub refresh_token: Option<String>,
    /// Its metadata.
    pub meta: TokenMeta,
}

impl TokenRecord {
    /// Encodes the record.
    pub fn encode(&self) -> Vec<u8> {
        encode_token_record(
            &self.access_token,
            self.refresh_token.as_deref(),
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
        let access_token = r.str()?;
        let refresh_token = r.opt_str()?;
        let meta = read_meta(&mut r)?;
        r.end()?;
        Ok(TokenRecord {
            access_token,
            refresh_token,
            meta,
        })
    }
}

/// Encodes a [`TokenRecord`] from borrowed parts.
pub(crate) fn encode_token_record(
    access_token: &str,
    refresh_token: Option<&str>,
    meta: &TokenMeta,
) -> Vec<u8> {
    let mut w = Writer::new(TOKEN_VERSION, 0);
    w.str(access_token).opt_str(refresh_token);
    write_meta(&mut w, meta).finish()
}

pub(crate) fn write_meta<'w>(w: &'w mut Writer, m: &TokenMeta) -> &'w mut Writer {
    w.u64(m.stamp.epoch)
        .u64(m.stamp.session)
        .u64(m.stamp.serial)
        .u64(m.stamp.tab)
        .u64(m.issued_at)
        .u64(m.expires_at)
}

pub(crate) fn read_meta(r: &mut Reader<'_>) -> Result<TokenMeta, DecodeError> {
    let stamp = Stamp {
        epoch: r.u64()?,
        session: r.u64()?,
        serial: r.u64()?,
        tab: r.u64()?,
    };
    Ok(TokenMeta {
        stamp,
        issued_at: r.u64()?,
        expires_at: r.u64()?,
    })
}

pub(crate) fn write_claim<'w>(w: &'w mut Writer, c: &Claim) -> &'w mut Writer {
    w.u64(c.serial)
        .u64(c.tab)
        .u64(c.at)
        .u64(c.until)
        .u64(c.base)
}

pub(crate) fn read_claim(r: &mut Reader<'_>) -> Result<Claim, DecodeError> {
    Ok(Claim {
        serial: r.u64()?,
        tab: r.u64()?,
        at: r.u64()?,
        until: r.u64()?,
        base: r.u64()?,
    })
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
            last_activity: 1_700_000_000_000,
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
            last_activity: 90,
        };
        let older = Shared {
            epoch: 4,
            reason: Some(LogoutReason::Idle),
            token: Some(meta(3)),
            claim: None,
            last_activity: 95,
        };
        let merged = merge_shared(Some(&newer.encode()), &older.encode());
        let m = Shared::decode(&merged).unwrap();
        assert_eq!(m.epoch, 5);
        assert_eq!(m.reason, Some(LogoutReason::User));
        assert_eq!(m.token.unwrap().stamp.serial, 4);
        assert_eq!(m.last_activity, 95);
    }

    #[test]
    fn garbage_in_storage_is_replaced_not_trusted() {
        let new = Shared {
            epoch: 1,
            ..Shared::default()
        }
        .encode();
        let merged = merge_shared(Some(b"\x01\x00\xff"), &new);
        assert_eq!(Shared::decode(&merged).unwrap().epoch, 1);
    }

    #[test]
    fn token_record_round_trips_and_rejects_trailing_bytes() {
        let t = TokenRecord {
            access_token: "a.b.c".into(),
            refresh_token: Some("rt".into()),
            meta: meta(1),
        };
        let mut bytes = t.encode();
        assert_eq!(TokenRecord::decode(&bytes).unwrap(), t);
        bytes.push(0);
        assert_eq!(TokenRecord::decode(&bytes), Err(DecodeError::Trailing));
    }
}
