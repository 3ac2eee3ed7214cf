//! The tiny byte codec shared by bus messages and persisted records: LEB128 varints and
//! length-prefixed UTF-8 strings. Hand-written to stay small in Wasm (no serde).

use alloc::string::String;
use alloc::vec::Vec;

/// The largest counter (logout epoch, token serial) a decoder accepts: JavaScript's largest
/// safe integer.
pub const MAX_COUNTER: u64 = (1 << 53) - 1;

/// Why a byte string could not be decoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// The version byte is not one this build understands.
    Version,
    /// The tag (message kind) is unknown.
    Tag,
    /// The input ended in the middle of a field.
    Truncated,
    /// Bytes were left over after the last field.
    Trailing,
    /// A string field is not valid UTF-8.
    Utf8,
    /// A field holds a value outside its range (overlong varint, unknown enum value).
    Range,
}

impl DecodeError {
    /// A stable short name for logs and stats.
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeError::Version => "version",
            DecodeError::Tag => "tag",
            DecodeError::Truncated => "truncated",
            DecodeError::Trailing => "trailing",
            DecodeError::Utf8 => "utf8",
            DecodeError::Range => "range",
        }
    }
}

/// Appends fields to a byte buffer.
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(version: u8, tag: u8) -> Writer {
        Writer {
            buf: vec![version, tag],
        }
    }

    #[inline(never)]
    pub(crate) fn u64(&mut self, mut v: u64) -> &mut Self {
        // Into a buffer on the stack, then appended at once: `Vec::push` would be the module's
        // only `push` of bytes (bench/size.md row 45).
        let mut tmp = [0u8; 10];
        let mut n = 0;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                tmp[n] = byte;
                break;
            }
            tmp[n] = byte | 0x80;
            n += 1;
        }
        self.buf.extend_from_slice(&tmp[..=n]);
        self
    }

    pub(crate) fn opt_u64(&mut self, v: Option<u64>) -> &mut Self {
        match v {
            None => self.u64(0),
            Some(v) => self.u64(1).u64(v),
        }
    }

    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    pub(crate) fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            None => self.u64(0),
            Some(s) => self.u64(1).str(s),
        }
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.buf)
    }
}

/// Strict UTF-8 decoding: accepts exactly what `core::str::from_utf8` accepts (no overlong
/// forms, no surrogates, nothing above U+10FFFF; a test holds it to core's validator, and every
/// debug build checks each call against it). Written out because core's validator and its
/// lookup table cost ~1.3 KB of the Wasm module. It only validates, and copies the bytes once
/// they passed: decoding into `char`s and encoding them again into a `String` cost ~160 B
/// more (bench/size.md row 33), which is the one reason for the `unsafe` below.
pub(crate) fn utf8(b: &[u8]) -> Option<String> {
    let mut i = 0;
    while let Some(&lead) = b.get(i) {
        // Continuation bytes to follow, the smallest code point that needs them, the lead's bits.
        let (n, min, mut c) = match lead {
            0x00..=0x7f => (0, 0, u32::from(lead)),
            0xc0..=0xdf => (1, 0x80, u32::from(lead & 0x1f)),
            0xe0..=0xef => (2, 0x800, u32::from(lead & 0x0f)),
            0xf0..=0xf7 => (3, 0x1_0000, u32::from(lead & 0x07)),
            _ => return None,
        };
        // Not `1..=n`: an inclusive range's iterator state costs ~90 B of Wasm here.
        for k in 1..n + 1 {
            let next = *b.get(i + k)?;
            if next & 0xc0 != 0x80 {
                return None;
            }
            c = c << 6 | u32::from(next & 0x3f);
        }
        if c < min || (0xd800..=0xdfff).contains(&c) || c > 0x10_ffff {
            return None;
        }
        i += n + 1;
    }
    debug_assert!(core::str::from_utf8(b).is_ok(), "{b:02x?}");
    // SAFETY: every sequence of `b` was checked above: a lead byte with its continuation bytes,
    // neither overlong nor a surrogate nor above U+10FFFF. That is UTF-8 (RFC 3629 §3).
    #[allow(unsafe_code)]
    Some(unsafe { String::from_utf8_unchecked(b.to_vec()) })
}

/// Reads fields from a byte slice; every read is bounds-checked. A failed read records its
/// error and yields a placeholder (0, `false`, an empty text); the reads after it go on but
/// change nothing, and [`Reader::end`] returns the first error. So a decoder reads its fields
/// one after the other without a branch per field (each `?` on a `Result` costs ~25 B of Wasm
/// at every call site: bench/size.md row 34) and fails exactly where, and as, it did with `?`:
/// every read before the first failure is the same.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    err: Option<DecodeError>,
}

impl<'a> Reader<'a> {
    /// Checks the version byte and returns the reader and the tag.
    pub(crate) fn open(bytes: &'a [u8], version: u8) -> Result<(Reader<'a>, u8), DecodeError> {
        match bytes {
            [] => Err(DecodeError::Truncated),
            [v, ..] if *v != version => Err(DecodeError::Version),
            [_] => Err(DecodeError::Truncated),
            [_, tag, ..] => Ok((
                Reader {
                    bytes,
                    pos: 2,
                    err: None,
                },
                *tag,
            )),
        }
    }

    /// Records `e` unless an earlier read failed already (the first error is the one).
    #[inline(never)]
    pub(crate) fn fail(&mut self, e: DecodeError) {
        self.err = self.err.or(Some(e));
    }

    /// A varint; 0 when it fails.
    #[inline(never)]
    pub(crate) fn u64(&mut self) -> u64 {
        let mut out: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some(&byte) = self.bytes.get(self.pos) else {
                self.fail(DecodeError::Truncated);
                return 0;
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                break;
            }
            out |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return out;
            }
            shift += 7;
            if shift > 63 {
                break;
            }
        }
        self.fail(DecodeError::Range);
        0
    }

    /// A varint of at most `max`; 0 when it fails.
    #[inline(never)]
    fn at_most(&mut self, max: u64) -> u64 {
        match self.u64() {
            v if v <= max => v,
            _ => {
                self.fail(DecodeError::Range);
                0
            }
        }
    }

    /// A counter (logout epoch, serial): at most [`MAX_COUNTER`]. A larger value is
    /// implausible (no browser logs out or refreshes 2^53 times) and would let a forged record
    /// push a counter to where `+ 1` saturates and stops ordering anything.
    pub(crate) fn counter(&mut self) -> u64 {
        self.at_most(MAX_COUNTER)
    }

    /// A 0/1 flag; `false` when it fails.
    pub(crate) fn flag(&mut self) -> bool {
        self.at_most(1) == 1
    }

    pub(crate) fn opt_u64(&mut self) -> Option<u64> {
        self.flag().then(|| self.u64())
    }

    /// A length-prefixed UTF-8 text; empty when it fails.
    pub(crate) fn str(&mut self) -> String {
        let len = self.u64();
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let Some(field) = usize::try_from(len).ok().and_then(|n| rest.get(..n)) else {
            self.fail(DecodeError::Truncated);
            return String::new();
        };
        self.pos += field.len();
        utf8(field).unwrap_or_else(|| {
            self.fail(DecodeError::Utf8);
            String::new()
        })
    }

    pub(crate) fn opt_str(&mut self) -> Option<String> {
        self.flag().then(|| self.str())
    }

    /// The first error of any read, else fails when bytes are left over.
    pub(crate) fn end(&self) -> Result<(), DecodeError> {
        match self.err {
            Some(e) => Err(e),
            None if self.pos == self.bytes.len() => Ok(()),
            None => Err(DecodeError::Trailing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let bytes = Writer::new(1, 9).u64(v).finish();
            let (mut r, tag) = Reader::open(&bytes, 1).unwrap();
            assert_eq!(tag, 9);
            assert_eq!(r.u64(), v);
            r.end().unwrap();
        }
    }

    #[test]
    fn overlong_varint_is_a_range_error() {
        let bytes = [
            1u8, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        let (mut r, _) = Reader::open(&bytes, 1).unwrap();
        assert_eq!(r.u64(), 0);
        assert_eq!(r.end(), Err(DecodeError::Range));
    }

    /// The hand-written decoder accepts exactly what core's validator accepts, and yields the
    /// same text: every 1- and 2-byte input, and every lead byte with continuation candidates at
    /// the edges of each range for 3- and 4-byte inputs.
    #[test]
    fn utf8_agrees_with_core() {
        let check = |b: &[u8]| {
            let core = core::str::from_utf8(b).ok();
            assert_eq!(utf8(b).as_deref(), core, "{b:02x?}");
        };
        for a in 0..=255u8 {
            check(&[a]);
            for b in 0..=255u8 {
                check(&[a, b]);
            }
        }
        let edges = [
            0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf4, 0xff,
        ];
        for a in 0xc0..=255u8 {
            for &b in &edges {
                for &c in &edges {
                    check(&[a, b, c]);
                    for &d in &edges {
                        check(&[a, b, c, d]);
                        check(&[b'x', a, b, c, d, b'y']);
                    }
                }
            }
        }
        check("tessera: jürgen 東京 🦀".as_bytes());
    }

    #[test]
    fn reads_after_a_failure_yield_placeholders_and_keep_the_first_error() {
        // A flag of 2 (range), a text cut short (truncated), a varint.
        let bytes = [1u8, 0, 2, 5, b'a', 7];
        let (mut r, _) = Reader::open(&bytes, 1).unwrap();
        assert!(!r.flag());
        assert_eq!(r.str(), "");
        assert_eq!(r.opt_u64(), None);
        assert_eq!(r.end(), Err(DecodeError::Range));
        let (mut r, _) = Reader::open(&bytes[..3], 1).unwrap();
        assert_eq!(r.u64(), 2);
        assert_eq!(r.end(), Ok(()));
        assert_eq!(r.counter(), 0);
        assert_eq!(r.end(), Err(DecodeError::Truncated));
    }

    #[test]
    fn string_length_beyond_input_is_truncated_not_a_panic() {
        let bytes = [1u8, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, b'a'];
        let (mut r, _) = Reader::open(&bytes, 1).unwrap();
        assert_eq!(r.str(), "");
        assert_eq!(r.end(), Err(DecodeError::Truncated));
    }
}
