//! The at-rest token vault: AES-256-GCM sealing of the records the SDK persists.
//!
//! Pure and deterministic: the caller passes the key and a fresh random 96-bit nonce
//! (the browser layer draws it from `crypto.getRandomValues` for every write), so the
//! same code runs and is tested natively.
//!
//! # Record format (version 1)
//!
//! A record is the base64url (no padding) text of
//! `version (1 byte) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`.
//! The associated data binds the record to where it may be read:
//! `"tessera-vault" ‖ version ‖ len(origin) ‖ origin ‖ len(name) ‖ name` (lengths as
//! 2-byte big-endian), so a record copied to another origin or another storage key,
//! or relabelled with another version, fails to open.
//!
//! # Threat model
//!
//! Sealing protects data at rest (a copied profile, a storage dump, a device that was
//! offline when its session was revoked: with the server-held vault key the record can
//! no longer be opened once the session is gone) and detects tampering. It does **not**
//! stop script running in the page: anything that runs in the origin can call the SDK,
//! or read the token from memory, exactly as the SDK itself does. Defend against XSS
//! with CSP and Trusted Types; the vault is not a substitute.
//!
//! # Examples
//!
//! ```
//! use tessera::vault::{open, seal, VaultKey};
//!
//! let key = VaultKey::from_bytes([7; 32]);
//! let record = seal(&key, &[1; 12], "https://app.example", "tessera:s", b"token");
//! let plain = open(&key, "https://app.example", "tessera:s", &record).unwrap();
//! assert_eq!(plain, b"token");
//! assert!(open(&key, "https://evil.example", "tessera:s", &record).is_err());
//! ```
use alloc::string::String;
use alloc::vec::Vec;

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit, Nonce, Tag};
use aes_gcm::{Aes256Gcm, Key};

/// The record format version written by [`seal`].
pub const FORMAT_VERSION: u8 = 1;
/// Length of the nonce in bytes (96 bits).
pub const NONCE_LEN: usize = 12;
/// Length of the authentication tag in bytes.
pub const TAG_LEN: usize = 16;
/// Length of the key in bytes (AES-256).
pub const KEY_LEN: usize = 32;
const DOMAIN: &[u8] = b"tessera-vault";

/// Why a record could not be opened. Every case means: wipe the record, never use it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum VaultError {
    /// The record is not base64url text.
    Encoding,
    /// The record is shorter than a version, a nonce and a tag.
    Truncated,
    /// The record carries a format version this build does not read.
    UnsupportedVersion,
    /// Authentication failed: ciphertext, nonce, tag or associated data (origin, key
    /// name) were altered, or the key is not the one that sealed it.
    Tampered,
    /// A vault key was not exactly 32 bytes of base64url.
    BadKey,
}

impl VaultError {
    /// A stable, machine-readable code, used as the `error` event's `code`.
    pub fn code(self) -> &'static str {
        match self {
            VaultError::Encoding => "vault_encoding",
            VaultError::Truncated => "vault_truncated",
            VaultError::UnsupportedVersion => "vault_version",
            VaultError::Tampered => "vault_tampered",
            VaultError::BadKey => "vault_key",
        }
    }

    /// A short human-readable description.
    pub fn message(self) -> &'static str {
        match self {
            VaultError::Encoding => "stored record is not valid base64url; wiped",
            VaultError::Truncated => "stored record is truncated; wiped",
            VaultError::UnsupportedVersion => "stored record has an unknown format version; wiped",
            VaultError::Tampered => "stored record failed authentication; wiped",
            VaultError::BadKey => "vault key is malformed",
        }
    }
}

impl core::fmt::Display for VaultError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for VaultError {}

/// A 256-bit vault key. Never stored beside the records it seals.
#[derive(Clone, PartialEq, Eq)]
pub struct VaultKey([u8; KEY_LEN]);

impl VaultKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        VaultKey(bytes)
    }

    /// Parses the server's `{key}` value: base64url without padding, exactly 32 bytes.
    ///
    /// # Errors
    /// [`VaultError::BadKey`] when the text is not base64url or not 32 bytes long.
    pub fn from_base64url(text: &str) -> Result<Self, VaultError> {
        let bytes = base64url_decode(text).ok_or(VaultError::BadKey)?;
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| VaultError::BadKey)?;
        Ok(VaultKey(arr))
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

fn associated_data(version: u8, origin: &str, name: &str) -> Vec<u8> {
    let mut ad = Vec::with_capacity(DOMAIN.len() + 5 + origin.len() + name.len());
    ad.extend_from_slice(DOMAIN);
    ad.push(version);
    for part in [origin.as_bytes(), name.as_bytes()] {
        // Lengths are capped at 16 bits; longer parts are still bound by their bytes.
        let len = part.len().min(u16::MAX as usize) as u16;
        ad.extend_from_slice(&len.to_be_bytes());
        ad.extend_from_slice(part);
    }
    ad
}

fn cipher(key: &VaultKey) -> Aes256Gcm {
    Aes256Gcm::new(<&Key<Aes256Gcm>>::from(&key.0))
}

/// AES-256-GCM over `data` in place; returns the tag. `None` only for inputs longer
/// than GCM allows (far beyond anything the SDK stores).
fn aead_seal(
    key: &VaultKey,
    nonce: &[u8; NONCE_LEN],
    ad: &[u8],
    data: &mut [u8],
) -> Option<[u8; TAG_LEN]> {
    let tag = cipher(key)
        .encrypt_inout_detached(<&Nonce<Aes256Gcm>>::from(nonce), ad, InOutBuf::from(data))
        .ok()?;
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag.as_slice());
    Some(out)
}

fn aead_open(key: &VaultKey, nonce: &[u8], ad: &[u8], data: &mut [u8], tag: &[u8]) -> bool {
    let (Ok(nonce), Ok(tag)) = (
        <&[u8; NONCE_LEN]>::try_from(nonce),
        <&[u8; TAG_LEN]>::try_from(tag),
    ) else {
        return false;
    };
    let (nonce, tag) = (
        <&Nonce<Aes256Gcm>>::from(nonce),
        <&Tag<Aes256Gcm>>::from(tag),
    );
    cipher(key)
        .decrypt_inout_detached(nonce, ad, InOutBuf::from(data), tag)
        .is_ok()
}

/// The parts of a well-formed record: the nonce and `ciphertext ‖ tag`.
pub struct SealedParts {
    /// The record's 96-bit nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the 16-byte tag (the layout WebCrypto's AES-GCM uses too).
    pub body: Vec<u8>,
}

/// The associated data of a current-version record stored under `name` on `origin`.
pub fn associated_data_for(origin: &str, name: &str) -> Vec<u8> {
    associated_data(FORMAT_VERSION, origin, name)
}

/// Frames a nonce and `ciphertext ‖ tag` as record text (version byte first).
pub fn frame(nonce: &[u8; NONCE_LEN], body: &[u8]) -> String {
    let mut buf = Vec::with_capacity(1 + NONCE_LEN + body.len());
    buf.push(FORMAT_VERSION);
    buf.extend_from_slice(nonce);
    buf.extend_from_slice(body);
    base64url_encode(&buf)
}

/// Checks a record's framing (encoding, length, version) without opening it.
///
/// # Errors
/// [`VaultError::Encoding`], [`VaultError::UnsupportedVersion`] or [`VaultError::Truncated`].
pub fn parse(record: &str) -> Result<SealedParts, VaultError> {
    let bytes = base64url_decode(record).ok_or(VaultError::Encoding)?;
    let Some(&version) = bytes.first() else {
        return Err(VaultError::Truncated);
    };
    if version != FORMAT_VERSION {
        return Err(VaultError::UnsupportedVersion);
    }
    if bytes.len() < 1 + NONCE_LEN + TAG_LEN {
        return Err(VaultError::Truncated);
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&bytes[1..1 + NONCE_LEN]);
    Ok(SealedParts {
        nonce,
        body: bytes[1 + NONCE_LEN..].to_vec(),
    })
}

/// Seals `plaintext` for storage under `name` on `origin` with a caller-supplied nonce.
///
/// The nonce must be fresh and random for every call (96 bits drawn from a CSPRNG);
/// reusing a nonce under one key breaks AES-GCM.
pub fn seal(
    key: &VaultKey,
    nonce: &[u8; NONCE_LEN],
    origin: &str,
    name: &str,
    plaintext: &[u8],
) -> String {
    let ad = associated_data_for(origin, name);
    let mut body = Vec::with_capacity(plaintext.len() + TAG_LEN);
    body.extend_from_slice(plaintext);
    match aead_seal(key, nonce, &ad, &mut body) {
        Some(tag) => body.extend_from_slice(&tag),
        // Unreachable for anything storable; a record without a tag fails to open later.
        None => body.clear(),
    }
    frame(nonce, &body)
}

/// Opens a record written by [`seal`] for the same `origin` and `name`.
///
/// # Errors
/// A typed [`VaultError`] for every failure: not base64url, too short, unknown version,
/// or failed authentication (any altered bit in ciphertext, nonce, tag or associated data).
pub fn open(key: &VaultKey, origin: &str, name: &str, record: &str) -> Result<Vec<u8>, VaultError> {
    let SealedParts { nonce, mut body } = parse(record)?;
    let ad = associated_data_for(origin, name);
    let tag_at = body.len() - TAG_LEN;
    let (data, tag) = body.split_at_mut(tag_at);
    if !aead_open(key, &nonce, &ad, data, tag) {
        return Err(VaultError::Tampered);
    }
    body.truncate(tag_at);
    Ok(body)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Encodes bytes as base64url without padding.
pub fn base64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
        }
    }
    out
}

/// Decodes base64url (padding tolerated at the end only). `None` on any other byte or an
/// impossible length.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=').as_bytes();
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'-' => 62,
                b'_' => 63,
                _ => return None,
            };
            n |= u32::from(v) << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const ORIGIN: &str = "https://app.example";
    const NAME: &str = "tessera:session";

    fn key() -> VaultKey {
        VaultKey::from_bytes([0x42; 32])
    }

    /// McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16 (AES-256, AAD);
    /// the same vectors appear in NIST's GCM validation suite.
    #[test]
    fn aes256_gcm_known_answer_vector() {
        let k: [u8; 32] = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .try_into()
            .unwrap();
        let iv: [u8; 12] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let mut data = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
        let key = VaultKey::from_bytes(k);
        let tag = aead_seal(&key, &iv, &aad, &mut data).unwrap();
        assert_eq!(data, hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"));
        assert_eq!(tag.to_vec(), hex("76fc6ece0f4e1768cddf8853bb2d551b"));
        assert!(aead_open(&key, &iv, &aad, &mut data, &tag));
        assert_eq!(data[0], 0xd9);
    }

    /// Test case 14: zero key, zero IV, one zero block.
    #[test]
    fn aes256_gcm_zero_vector() {
        let key = VaultKey::from_bytes([0; 32]);
        let mut data = [0u8; 16];
        let tag = aead_seal(&key, &[0; 12], &[], &mut data).unwrap();
        assert_eq!(data.to_vec(), hex("cea7403d4d606b6e074ec5d3baf39d18"));
        assert_eq!(tag.to_vec(), hex("d0d1c8a799996bf0265b98b5d48ab919"));
    }

    #[test]
    fn round_trip_and_fresh_nonce_changes_record() {
        let a = seal(&key(), &[1; 12], ORIGIN, NAME, b"{\"t\":\"abc\"}");
        let b = seal(&key(), &[2; 12], ORIGIN, NAME, b"{\"t\":\"abc\"}");
        assert_ne!(a, b);
        assert_eq!(open(&key(), ORIGIN, NAME, &a).unwrap(), b"{\"t\":\"abc\"}");
        assert_eq!(open(&key(), ORIGIN, NAME, &b).unwrap(), b"{\"t\":\"abc\"}");
        let empty = seal(&key(), &[3; 12], ORIGIN, NAME, b"");
        assert_eq!(open(&key(), ORIGIN, NAME, &empty).unwrap(), b"");
    }

    fn flip(record: &str, index: usize) -> String {
        let mut bytes = base64url_decode(record).unwrap();
        bytes[index] ^= 0x01;
        base64url_encode(&bytes)
    }

    #[test]
    fn every_flipped_bit_region_is_rejected() {
        let rec = seal(&key(), &[9; 12], ORIGIN, NAME, b"secret-token-value");
        let len = base64url_decode(&rec).unwrap().len();
        // nonce, first and last ciphertext byte, first and last tag byte
        for i in [
            1,
            12,
            1 + NONCE_LEN,
            len - TAG_LEN - 1,
            len - TAG_LEN,
            len - 1,
        ] {
            assert_eq!(
                open(&key(), ORIGIN, NAME, &flip(&rec, i)),
                Err(VaultError::Tampered),
                "byte {i}"
            );
        }
        // exhaustive over every bit of the record body
        let bytes = base64url_decode(&rec).unwrap();
        for i in 1..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert_eq!(
                    open(&key(), ORIGIN, NAME, &base64url_encode(&b)),
                    Err(VaultError::Tampered)
                );
            }
        }
    }

    #[test]
    fn associated_data_binds_origin_name_and_key() {
        let rec = seal(&key(), &[9; 12], ORIGIN, NAME, b"x");
        assert_eq!(
            open(&key(), "https://app.example:8443", NAME, &rec),
            Err(VaultError::Tampered)
        );
        assert_eq!(
            open(&key(), ORIGIN, "tessera:other", &rec),
            Err(VaultError::Tampered)
        );
        assert_eq!(
            open(&VaultKey::from_bytes([0x43; 32]), ORIGIN, NAME, &rec),
            Err(VaultError::Tampered)
        );
        // length prefixes keep ("ab","c") and ("a","bc") apart
        let r = seal(&key(), &[9; 12], "ab", "c", b"x");
        assert_eq!(open(&key(), "a", "bc", &r), Err(VaultError::Tampered));
    }

    #[test]
    fn truncation_version_and_encoding_are_typed() {
        let rec = seal(&key(), &[9; 12], ORIGIN, NAME, b"payload");
        let bytes = base64url_decode(&rec).unwrap();
        for cut in [0, 1, 5, 1 + NONCE_LEN, 1 + NONCE_LEN + TAG_LEN - 1] {
            let e = open(&key(), ORIGIN, NAME, &base64url_encode(&bytes[..cut]));
            assert_eq!(e, Err(VaultError::Truncated), "cut {cut}");
        }
        // dropping ciphertext bytes but keeping enough length fails authentication
        let e = open(
            &key(),
            ORIGIN,
            NAME,
            &base64url_encode(&bytes[..bytes.len() - 1]),
        );
        assert_eq!(e, Err(VaultError::Tampered));
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(
            open(&key(), ORIGIN, NAME, &base64url_encode(&v2)),
            Err(VaultError::UnsupportedVersion)
        );
        v2[0] = 0;
        assert_eq!(
            open(&key(), ORIGIN, NAME, &base64url_encode(&v2)),
            Err(VaultError::UnsupportedVersion)
        );
        assert_eq!(
            open(&key(), ORIGIN, NAME, "not base64!"),
            Err(VaultError::Encoding)
        );
        assert_eq!(
            open(&key(), ORIGIN, NAME, "{\"json\":1}"),
            Err(VaultError::Encoding)
        );
        assert_eq!(open(&key(), ORIGIN, NAME, "A"), Err(VaultError::Encoding));
        for e in [
            VaultError::Encoding,
            VaultError::Truncated,
            VaultError::UnsupportedVersion,
            VaultError::Tampered,
            VaultError::BadKey,
        ] {
            assert!(e.code().starts_with("vault_"));
            assert!(!e.message().is_empty());
        }
    }

    #[test]
    fn base64url_round_trips_and_rejects_garbage() {
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
            assert_eq!(base64url_decode(&base64url_encode(&data)).unwrap(), data);
        }
        assert_eq!(base64url_encode(b"\xfb\xff"), "-_8");
        assert_eq!(base64url_decode("Zm9vYg==").unwrap(), b"foob");
        assert!(base64url_decode("Zm+v").is_none());
        assert!(base64url_decode("Zm/v").is_none());
        assert!(base64url_decode("Zm9v\u{e9}").is_none());
    }

    #[test]
    fn vault_key_parsing() {
        let text = base64url_encode(&[5; 32]);
        assert_eq!(
            VaultKey::from_base64url(&text).unwrap().as_bytes(),
            &[5; 32]
        );
        assert!(VaultKey::from_base64url(&base64url_encode(&[5; 31])).is_err());
        assert!(VaultKey::from_base64url(&base64url_encode(&[5; 33])).is_err());
        assert!(VaultKey::from_base64url("**").is_err());
        assert!(VaultKey::from_base64url("").is_err());
    }
}
