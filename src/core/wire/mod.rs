//! The wire layer: every byte format the engine reads or writes, and nothing else.
//!
//! A leaf: it imports nothing from the engine above it.
//!
//! * [`codec`] — LEB128 varints and length-prefixed strings, [`DecodeError`].
//! * [`reason`] — [`LogoutReason`].
//! * [`shared`] — stamps and claims, the shared coordination record ([`Shared`],
//!   [`merge_shared`]) and the vault's [`TokenRecord`].
//! * [`bus`] — the versioned tab-bus [`Msg`].
pub mod bus;
pub mod codec;
pub mod reason;
pub mod shared;

pub use bus::Msg;
pub use codec::DecodeError;
pub use reason::LogoutReason;
pub use shared::{merge_shared, Claim, Shared, Stamp, TokenMeta, TokenRecord};

/// Wall-clock milliseconds since the Unix epoch, always passed in by the caller.
pub type Millis = u64;
