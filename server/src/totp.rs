//! RFC 6238 TOTP (HMAC-SHA-1, 30-second steps), written over `hmac` + `sha1` so the window
//! and the replay rule are explicit. Verified against the RFC 6238 Appendix B vectors.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Step length in seconds (RFC 6238 default).
pub const STEP: i64 = 30;

/// Decodes RFC 4648 base32 (case-insensitive, `=` padding and spaces ignored).
/// Returns `None` on any other character.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let mut buf: u64 = 0;
    let mut bits = 0u32;
    for c in s.chars() {
        let v = match c {
            'A'..='Z' => c as u64 - 'A' as u64,
            'a'..='z' => c as u64 - 'a' as u64,
            '2'..='7' => c as u64 - '2' as u64 + 26,
            '=' | ' ' => continue,
            _ => return None,
        };
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Encodes bytes as RFC 4648 base32 without padding (for new TOTP secrets).
pub fn base32_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
        buf &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// HOTP (RFC 4226) value of `counter` with `digits` digits.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        return 0; // HMAC accepts keys of any length; unreachable in practice
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin = ((h[off] as u32 & 0x7f) << 24)
        | ((h[off + 1] as u32) << 16)
        | ((h[off + 2] as u32) << 8)
        | h[off + 3] as u32;
    bin % 10u32.pow(digits)
}

/// The TOTP step number for Unix time `t`.
pub fn step_at(t: i64) -> i64 {
    t.div_euclid(STEP)
}

/// The 6-digit code for Unix time `t`, zero-padded.
pub fn code_at(key: &[u8], t: i64) -> String {
    format!("{:06}", hotp(key, step_at(t).max(0) as u64, 6))
}

/// Checks a 6-digit `code` at time `now`, accepting the current step and one step either
/// side. Returns the matched step (callers record it so each code is accepted only once).
pub fn verify(key: &[u8], code: &str, now: i64) -> Option<i64> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let want: u32 = code.parse().ok()?;
    let cur = step_at(now);
    // Constant work: always compute all three candidates.
    let mut found = None;
    for step in [cur - 1, cur, cur + 1] {
        if step >= 0 && hotp(key, step as u64, 6) == want && found.is_none() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits, seed "12345678901234567890").
    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let key = b"12345678901234567890";
        let vectors = [
            (59i64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (t, want) in vectors {
            let got = format!("{:08}", hotp(key, step_at(t) as u64, 8));
            assert_eq!(got, want, "T={t}");
        }
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(
            base32_decode("MZXW6YTBOI======").as_deref(),
            Some(&b"foobar"[..])
        );
        assert_eq!(base32_decode("mzxw6ytboi").as_deref(), Some(&b"foobar"[..]));
        assert!(base32_decode("MZ1W").is_none());
        assert_eq!(base32_decode("JBSWY3DPEHPK3PXP").map(|k| k.len()), Some(10));
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        let k = crate::secret::random_bytes();
        assert_eq!(base32_decode(&base32_encode(&k)).as_deref(), Some(&k[..]));
    }

    #[test]
    fn verify_accepts_plus_minus_one_step_only() {
        let key = base32_decode("JBSWY3DPEHPK3PXP").unwrap_or_default();
        let t = 1_700_000_000;
        let code = code_at(&key, t);
        assert_eq!(verify(&key, &code, t), Some(step_at(t)));
        assert_eq!(verify(&key, &code, t + STEP), Some(step_at(t)));
        assert_eq!(verify(&key, &code, t - STEP), Some(step_at(t)));
        assert_eq!(verify(&key, &code, t + 2 * STEP), None);
        assert_eq!(verify(&key, "12345", t), None);
        assert_eq!(verify(&key, "12a456", t), None);
    }
}
