//! Messages between tabs of one origin, and their compact codec.
//!
//! Wire format: `[version = 1][tag][fields…]`, integers as LEB128 varints, strings as a
//! varint length plus UTF-8 bytes, optional fields behind a 0/1 flag. Anything else — an
//! unknown version or tag, truncation, trailing bytes, bad UTF-8, out-of-range values — is a
//! [`DecodeError`]; the engine counts it in [`Stats`](crate::core::Stats) and ignores the
//! message. Decoding never panics on any input.
use alloc::string::String;
use alloc::vec::Vec;

use super::codec::{DecodeError, Reader, Writer};
use super::reason::LogoutReason;
use super::shared::{
    read_activity, read_claim, read_meta, write_claim, write_meta, Activity, Claim, TokenMeta,
};

/// The bus protocol version this build speaks.
pub const BUS_VERSION: u8 = 2;

const TAG_TOKEN: u8 = 1;
const TAG_ACTIVITY: u8 = 2;
const TAG_LOGOUT: u8 = 3;
const TAG_TOKEN_REQUEST: u8 = 4;
const TAG_CLAIM: u8 = 5;

/// One message on the tab bus.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Msg {
    /// A tab obtained a token (login, MFA, refresh) or answers a [`Msg::TokenRequest`].
    Token {
        /// The token's metadata (stamp, expiry, session start).
        meta: TokenMeta,
        /// The bearer token.
        access_token: String,
        /// The refresh token in token mode.
        refresh_token: Option<String>,
        /// The signed-in user's name, when known.
        user: Option<String>,
    },
    /// User activity in some tab, in the session it names.
    Activity(Activity),
    /// A tab logged out; every session created before `epoch` ends.
    Logout {
        /// The new logout epoch.
        epoch: u64,
        /// Why.
        reason: LogoutReason,
    },
    /// A tab (new, or one that knows it is behind) asks for the current token. The tab that
    /// obtained the newest token answers; on repeated asks (`attempt` > 0, e.g. that tab is
    /// gone) a pseudo-random quarter of the other holders answer too, so 32 tabs never answer
    /// 32 askers each.
    TokenRequest {
        /// The asking tab.
        tab: u64,
        /// How many times it asked before for the same token.
        attempt: u32,
    },
    /// A refresh claim (also persisted in the shared record).
    Claim(Claim),
}

/// Encodes a [`Msg::Token`] from borrowed parts (no copies of the token strings).
pub(crate) fn encode_token(
    meta: &TokenMeta,
    access_token: &str,
    refresh_token: Option<&str>,
    user: Option<&str>,
) -> Vec<u8> {
    let mut w = Writer::new(BUS_VERSION, TAG_TOKEN);
    write_meta(&mut w, meta)
        .str(access_token)
        .opt_str(refresh_token)
        .opt_str(user)
        .finish()
}

impl Msg {
    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Token {
                meta,
                access_token,
                refresh_token,
                user,
            } => encode_token(
                meta,
                access_token,
                refresh_token.as_deref(),
                user.as_deref(),
            ),
            Msg::Activity(a) => Writer::new(BUS_VERSION, TAG_ACTIVITY)
                .u64(a.epoch)
                .u64(a.session)
                .u64(a.at)
                .finish(),
            Msg::Logout { epoch, reason } => Writer::new(BUS_VERSION, TAG_LOGOUT)
                .u64(*epoch)
                .u64(reason.to_u64())
                .finish(),
            Msg::TokenRequest { tab, attempt } => Writer::new(BUS_VERSION, TAG_TOKEN_REQUEST)
                .u64(*tab)
                .u64(u64::from(*attempt))
                .finish(),
            Msg::Claim(c) => write_claim(&mut Writer::new(BUS_VERSION, TAG_CLAIM), c).finish(),
        }
    }

    /// Decodes one message.
    ///
    /// # Errors
    /// [`DecodeError`] for anything that is not exactly one well-formed message of
    /// version [`BUS_VERSION`].
    pub fn decode(bytes: &[u8]) -> Result<Msg, DecodeError> {
        let (mut r, tag) = Reader::open(bytes, BUS_VERSION)?;
        let msg = match tag {
            TAG_TOKEN => Msg::Token {
                meta: read_meta(&mut r),
                access_token: r.str(),
                refresh_token: r.opt_str(),
                user: r.opt_str(),
            },
            TAG_ACTIVITY => Msg::Activity(read_activity(&mut r)),
            TAG_LOGOUT => Msg::Logout {
                epoch: r.counter(),
                reason: LogoutReason::from_u64(r.u64()).unwrap_or_else(|| {
                    r.fail(DecodeError::Range);
                    LogoutReason::User
                }),
            },
            TAG_TOKEN_REQUEST => Msg::TokenRequest {
                tab: r.u64(),
                attempt: u32::try_from(r.u64()).unwrap_or_else(|_| {
                    r.fail(DecodeError::Range);
                    0
                }),
            },
            TAG_CLAIM => Msg::Claim(read_claim(&mut r)),
            _ => return Err(DecodeError::Tag),
        };
        r.end()?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::wire::shared::Stamp;

    fn samples() -> Vec<Msg> {
        let meta = TokenMeta {
            stamp: Stamp {
                epoch: 1,
                session: 5,
                serial: 2,
                tab: 3,
            },
            issued_at: 10,
            expires_at: 300_010,
            sid: 99,
        };
        vec![
            Msg::Token {
                meta,
                access_token: "eyJ.x.y".into(),
                refresh_token: None,
                user: Some("alice".into()),
            },
            Msg::Token {
                meta,
                access_token: "é".into(),
                refresh_token: Some("r".into()),
                user: None,
            },
            Msg::Activity(Activity {
                epoch: 1,
                session: 5,
                at: 1_764_000_000_000,
            }),
            Msg::Logout {
                epoch: 4,
                reason: LogoutReason::Everywhere,
            },
            Msg::TokenRequest {
                tab: u64::MAX,
                attempt: 7,
            },
            Msg::Claim(Claim {
                serial: 3,
                tab: 1,
                at: 2,
                until: 9,
                base: 1,
            }),
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in samples() {
            assert_eq!(Msg::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn malformed_messages_are_typed_errors() {
        assert_eq!(Msg::decode(&[]), Err(DecodeError::Truncated));
        assert_eq!(Msg::decode(&[9, 1]), Err(DecodeError::Version));
        assert_eq!(Msg::decode(&[BUS_VERSION, 99]), Err(DecodeError::Tag));
        assert_eq!(
            Msg::decode(&[BUS_VERSION, TAG_LOGOUT, 1, 42]),
            Err(DecodeError::Range)
        );
        let mut long = Msg::TokenRequest { tab: 1, attempt: 0 }.encode();
        long.push(0);
        assert_eq!(Msg::decode(&long), Err(DecodeError::Trailing));
        let mut bad = Msg::Token {
            meta: match &samples()[0] {
                Msg::Token { meta, .. } => *meta,
                _ => unreachable!(),
            },
            access_token: "ab".into(),
            refresh_token: None,
            user: None,
        }
        .encode();
        let n = bad.len();
        bad[n - 3] = 0xff; // inside the token string
        assert_eq!(Msg::decode(&bad), Err(DecodeError::Utf8));
    }

    #[test]
    fn implausible_counters_are_range_errors() {
        let forged = Writer::new(BUS_VERSION, TAG_LOGOUT)
            .u64(u64::MAX)
            .u64(0)
            .finish();
        assert_eq!(Msg::decode(&forged), Err(DecodeError::Range));
        let edge = Writer::new(BUS_VERSION, TAG_LOGOUT)
            .u64(crate::core::wire::codec::MAX_COUNTER)
            .u64(0)
            .finish();
        assert!(Msg::decode(&edge).is_ok());
    }

    #[test]
    fn every_truncation_of_every_message_is_an_error() {
        for m in samples() {
            let bytes = m.encode();
            for cut in 0..bytes.len() {
                assert_eq!(
                    Msg::decode(&bytes[..cut]),
                    Err(DecodeError::Truncated),
                    "{m:?} cut at {cut}"
                );
            }
        }
    }

    /// The reader goes on after a failed read (no branch per field, `codec::Reader`), but the
    /// error is the first one, as when every read returned at once.
    #[test]
    fn the_first_failed_read_is_the_error() {
        // An unknown reason, then trailing bytes: the reason's range error.
        let mut m = Writer::new(BUS_VERSION, TAG_LOGOUT).u64(1).u64(42).finish();
        m.extend_from_slice(&[1, 2, 3]);
        assert_eq!(Msg::decode(&m), Err(DecodeError::Range));
        // An epoch beyond `MAX_COUNTER`, then a missing reason: the counter's range error.
        let m = Writer::new(BUS_VERSION, TAG_LOGOUT).u64(u64::MAX).finish();
        assert_eq!(Msg::decode(&m), Err(DecodeError::Range));
        // A bad access token, then the message cut off: the UTF-8 error.
        let meta = match &samples()[0] {
            Msg::Token { meta, .. } => *meta,
            _ => unreachable!(),
        };
        let mut w = Writer::new(BUS_VERSION, TAG_TOKEN);
        write_meta(&mut w, &meta).u64(2);
        let mut m = w.finish();
        m.extend_from_slice(&[0xc3, 0x28]);
        assert_eq!(Msg::decode(&m), Err(DecodeError::Utf8));
        // An attempt beyond `u32`, then trailing bytes: its range error.
        let mut m = Writer::new(BUS_VERSION, TAG_TOKEN_REQUEST)
            .u64(1)
            .u64(1 << 40)
            .finish();
        m.push(0);
        assert_eq!(Msg::decode(&m), Err(DecodeError::Range));
        // A truncated varint is truncated, whatever a later read would say.
        let m = [BUS_VERSION, TAG_ACTIVITY, 0x80];
        assert_eq!(Msg::decode(&m), Err(DecodeError::Truncated));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds = samples().iter().map(Msg::encode).collect::<Vec<_>>();
        for i in 0..20_000 {
            let mut bytes = if i % 2 == 0 {
                let len = (next() % 40) as usize;
                (0..len).map(|_| next() as u8).collect::<Vec<_>>()
            } else {
                seeds[i % seeds.len()].clone()
            };
            // Mutate a few bytes of a valid message (keeps version/tag plausible).
            for _ in 0..(next() % 4) {
                if !bytes.is_empty() {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                }
            }
            let _ = Msg::decode(&bytes);
            let _ = crate::core::wire::shared::Shared::decode(&bytes);
            let _ = crate::core::wire::shared::TokenRecord::decode(&bytes);
        }
    }
}
