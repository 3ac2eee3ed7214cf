// @ts-check
// TOTP (RFC 6238: HOTP of RFC 4226 over a time counter) with WebCrypto's HMAC.
//
// The one implementation in the project: the demo page's authenticator shows it, and the
// end-to-end tests (tests/e2e/harness.mjs, in Node 20+, which has the same `crypto.subtle`)
// import this file to answer bob's second step. It is checked against the RFC 6238
// Appendix B vectors (tests/e2e/totp.test.mjs) and, through the sign-in tests, against the
// server's own TOTP verification.

/** bob's demo secret (base32, 160 bits; SHA-1, 6 digits, 30 s), seeded by `tessera-server --demo`. */
export const DEMO_TOTP_SECRET = "4MEMZDELGP554FRQ6OH4LD7PAJIEUSHX";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/**
 * Decodes RFC 4648 base32 (case-insensitive; spaces and `=` padding ignored).
 * @param {string} text
 * @returns {Uint8Array<ArrayBuffer>}
 * @throws {Error} on a character outside the base32 alphabet
 */
export function base32Decode(text) {
  const clean = text.toUpperCase().replace(/[\s=]/g, "");
  const out = new Uint8Array(new ArrayBuffer(Math.floor((clean.length * 5) / 8)));
  let bits = 0;
  let value = 0;
  let n = 0;
  for (const ch of clean) {
    const idx = ALPHABET.indexOf(ch);
    if (idx < 0) throw new Error(`invalid base32 character ${JSON.stringify(ch)}`);
    value = ((value << 5) | idx) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (value >>> bits) & 0xff;
    }
  }
  return out;
}

/**
 * The TOTP code of `secret` at time `at`.
 * @param {string | Uint8Array<ArrayBuffer>} [secret] base32 text or the raw key bytes
 * @param {number} [at] ms since the epoch
 * @param {number} [digits] code length (RFC 6238 uses 6 or 8)
 * @param {number} [step] time step in seconds
 * @returns {Promise<string>} the code, zero-padded to `digits`
 */
export async function totp(secret = DEMO_TOTP_SECRET, at = Date.now(), digits = 6, step = 30) {
  const key = typeof secret === "string" ? base32Decode(secret) : secret;
  const counter = Math.floor(at / 1000 / step);
  const msg = new DataView(new ArrayBuffer(8));
  msg.setUint32(0, Math.floor(counter / 2 ** 32));
  msg.setUint32(4, counter >>> 0);
  const hmac = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", hmac, msg.buffer));
  // Dynamic truncation (RFC 4226 §5.3).
  const offset = mac[mac.length - 1] & 0x0f;
  const bin = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(bin % 10 ** digits).padStart(digits, "0");
}

/**
 * Seconds left before the code of time `at` changes.
 * @param {number} [at] ms since the epoch
 * @param {number} [step] time step in seconds
 */
export function secondsLeft(at = Date.now(), step = 30) {
  return step - (Math.floor(at / 1000) % step);
}
