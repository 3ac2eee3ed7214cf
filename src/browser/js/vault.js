// The vault: AES-GCM sealing of the token record (WebCrypto), its key ids, the token-mode
// key cookie, base64url.

export const KEY_COOKIE = "tessera_vk";

// The key id of a session: its id, as record-safe characters (the id is no secret: every
// access token carries it as its `sid` claim).
/** @param {string | null | undefined} sid */
export const kidOf = (sid) => sid && String(sid).replace(/[^\w-]/g, "").slice(-43);

// The browser-session-lifetime vault key (token mode): a cookie without Expires (the browser
// drops it at the end of the browsing session), never stored beside the records it seals.
/**
 * @param {boolean} create
 * @returns {import("./types").Bytes | null}
 */
export function sessionKey(create) {
  const m = document.cookie.match(/(?:^|;\s*)tessera_vk=([A-Za-z0-9_-]{43})/);
  if (m) return unb64(m[1]);
  if (!create) return null;
  const k = crypto.getRandomValues(new Uint8Array(32));
  document.cookie = KEY_COOKIE + "=" + b64(k) + "; Path=/; SameSite=Strict" + (location.protocol === "https:" ? "; Secure" : "");
  return k;
}

// ---- crypto ---------------------------------------------------------------------------
// The vault record, version 1, exactly as src/vault.rs defines it (the reference, with the
// native seal/open; the browser test `webcrypto_and_native_records_interoperate` checks that
// both agree): base64url, no padding, of `1 ‖ nonce (12) ‖ ciphertext ‖ tag (16)`, sealed
// with associated data `"tessera-vault" ‖ 1 ‖ len16(origin) ‖ origin ‖ len16(name) ‖ name`.
// Framing lives here, next to WebCrypto, because every call into Wasm with bytes or text
// costs marshalling code in the module and glue.

// base64url without padding.
/** @param {Uint8Array} bytes */
export function b64(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// Strict base64url (trailing `=` tolerated, like vault.rs): the bytes, or null.
/**
 * @param {unknown} text
 * @returns {import("./types").Bytes | null}
 */
export function unb64(text) {
  const t = String(text).replace(/=+$/, "");
  if (/[^\w-]/.test(t) || t.length % 4 === 1) return null;
  return Uint8Array.from(atob(t.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
}

// A string as UTF-8 bytes; anything else as null (what the engine takes as "no text").
/** @param {unknown} s */
export const utf8 = (s) => (typeof s === "string" ? new TextEncoder().encode(s) : null);

// The associated data binding a record to its origin, storage key name and version.
/**
 * @param {string} origin
 * @param {string} name
 */
export function aad(origin, name) {
  const out = [.../** @type {Uint8Array} */ (utf8("tessera-vault")), 1];
  for (const s of [origin, name]) {
    const b = /** @type {Uint8Array} */ (utf8(s));
    const n = Math.min(b.length, 65535);
    out.push(n >> 8, n & 255, ...b);
  }
  return Uint8Array.from(out);
}

// A record's framing: `[nonce, ciphertext ‖ tag]`, or the error code.
/**
 * @param {string} record
 * @returns {[nonce: import("./types").Bytes, sealed: import("./types").Bytes] | "vault_encoding" | "vault_version" | "vault_truncated"}
 */
export function parse(record) {
  const b = unb64(record);
  if (!b) return "vault_encoding";
  if (b.length && b[0] !== 1) return "vault_version";
  if (b.length < 29) return "vault_truncated";
  return [b.subarray(1, 13), b.subarray(13)];
}

// AES-256-GCM through WebCrypto (native code: no cipher in the Wasm module). WebCrypto's
// output layout (ciphertext ‖ 128-bit tag) is the aes-gcm crate's, so records interoperate.
/**
 * @param {boolean} encrypt
 * @param {import("./types").Bytes} key 32 bytes
 * @param {import("./types").Bytes} iv 12 bytes
 * @param {import("./types").Bytes} aad
 * @param {import("./types").Bytes} data
 */
export async function gcm(encrypt, key, iv, aad, data) {
  const s = crypto.subtle;
  const op = encrypt ? "encrypt" : "decrypt";
  const k = await s.importKey("raw", key, "AES-GCM", false, [op]);
  return new Uint8Array(await s[op]({ name: "AES-GCM", iv, additionalData: aad, tagLength: 128 }, k, data));
}
