// DPoP (RFC 9449), `dpop: true`: the session's key pair (ECDSA P-256, private key not
// extractable) kept in IndexedDB so the session's tabs share it, one proof per request, whether
// an access token is bound to a key (its `cnf.jkt`), and the servers' newest nonces. The engine
// knows nothing of keys: the driver signs, through `dpop(channel)`.
//
// Shipped as its own file (`dpop.js` beside `tessera.js`): the driver imports it dynamically,
// only when `dpop: true`, so sessions without DPoP download none of it (bench/size.md).

import { b64, utf8 } from "./vault.js";
import { post } from "./transport.js";
import { wipeIndexedDb } from "./cleanup.js";

const EC = { name: "ECDSA", namedCurve: "P-256" };

/** The key as the driver holds it: the private key and the proof header, encoded. @typedef {{ k: CryptoKey, h: string }} DpopKey */

// The newest `DPoP-Nonce` each origin sent (RFC 9449 §8, §9).
/** @type {Map<string, string>} */
export const nonces = new Map();

// How far each origin's clock is ahead of this browser's, in ms, from its `Date` header: a
// proof's `iat` is dated by the server's clock (it accepts ±60 s), and users' clocks are often
// minutes off.
/** @type {Map<string, number>} */
const clocks = new Map();

// The database holding channel `ch`'s key: two apps on one origin never share one.
/** @param {string} ch */
export const dpopDb = (ch) => "tessera:dpop:" + ch;

/**
 * @template T
 * @param {IDBRequest<T>} r
 * @returns {Promise<T>}
 */
const done = (r) => new Promise((ok, no) => ((r.onsuccess = () => ok(r.result)), (r.onerror = () => no(r.error))));

// The session's key pair for channel `ch`, or undefined when there is none and `create` is false.
// Created when absent by add-if-absent, then read again: tabs racing to create one all end on
// the one that was added first. Rejects without IndexedDB or WebCrypto.
/**
 * @param {string} ch
 * @param {boolean} create
 * @returns {Promise<DpopKey | undefined>}
 */
export async function dpopKey(ch, create) {
  const o = indexedDB.open(dpopDb(ch), 1);
  o.onupgradeneeded = () => o.result.createObjectStore("k");
  const db = await done(o);
  /** @param {IDBTransactionMode} m */
  const st = (m) => db.transaction("k", m).objectStore("k");
  /** @type {() => Promise<CryptoKeyPair | undefined>} */
  const get = () => done(st("readonly").get(1));
  try {
    let p = await get();
    if (!p && create) {
      const fresh = await crypto.subtle.generateKey(EC, false, ["sign"]);
      // Another tab's key may have been added meanwhile: this one then fails to add (and is dropped).
      await done(st("readwrite").add(fresh, 1)).catch(() => {});
      p = await get();
    }
    if (!p) return;
    const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", p.publicKey);
    return { k: p.privateKey, h: enc({ typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } }) };
  } finally {
    db.close();
  }
}

/** @param {object} o */
const enc = (o) => b64(/** @type {Uint8Array} */ (utf8(JSON.stringify(o))));

/** @param {ArrayBuffer} b */
const b64b = (b) => b64(new Uint8Array(b));

// A fresh proof for `htm` `url` (its query and fragment dropped), with the origin's newest
// nonce and, when an access token goes along, its hash (`ath`).
/**
 * @param {DpopKey} key
 * @param {string} htm
 * @param {string} url absolute
 * @param {string | null | undefined} token
 */
export async function proof(key, htm, url, token) {
  const u = new URL(url);
  /** @type {Record<string, string | number>} */
  const p = { jti: b64(crypto.getRandomValues(new Uint8Array(16))), htm, htu: u.origin + u.pathname, iat: Math.floor((Date.now() + (clocks.get(u.origin) || 0)) / 1000) };
  const n = nonces.get(u.origin);
  if (n) p.nonce = n;
  if (token) p.ath = b64b(await crypto.subtle.digest("SHA-256", /** @type {import("./types").Bytes} */ (utf8(token))));
  const s = key.h + "." + enc(p);
  // WebCrypto's ECDSA signature is already JWS's r ‖ s (64 bytes).
  return s + "." + b64b(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.k, /** @type {import("./types").Bytes} */ (utf8(s))));
}

// Whether an access token (a JWT) is bound to a key: its payload carries `cnf.jkt`. Anything
// malformed is not (it goes as `Bearer`).
/** @param {string} t */
export const bound = (t) => {
  try {
    return !!JSON.parse(atob(t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).cnf.jkt;
  } catch (_) {
    return false;
  }
};

// Remembers the `DPoP-Nonce` and the clock an answer from `url` carries. True when the clock
// the request's proof was dated by was over 30 s off the server's (worth one more try).
/**
 * @param {string} url
 * @param {Headers} h
 */
const noted = (url, h) => {
  const o = new URL(url).origin, n = h.get("DPoP-Nonce"), off = Date.parse(h.get("Date") || "") - Date.now(), was = clocks.get(o) || 0;
  if (n) nonces.set(o, n);
  // NaN (no `Date`) is neither kept nor "off"
  if (off === off) clocks.set(o, off);
  return Math.abs(off - was) > 30000;
};

/** What the driver calls (`#post`, `fetch`, the logout cleanup). @typedef {ReturnType<typeof dpop>} Dpop */

// The DPoP side of the session on channel `ch`: its key is read once (created when absent)
// and forgotten at logout (`drop`).
/** @param {string} ch */
export function dpop(ch) {
  /** @type {Promise<DpopKey | undefined> | null} */
  let key = null;
  /** @param {boolean} create */
  const get = (create) => {
    const p = (key ||= dpopKey(ch, create));
    // Absent or failed: looked up again next time.
    p.then((k) => k || key !== p || (key = null), () => key === p && (key = null));
    return p;
  };
  /** @param {string} t */
  const scheme = (t) => (bound(t) ? "DPoP " : "Bearer ") + t;
  return {
    // `post` (transport.js) with a fresh proof, tried again (twice at most) when the server asks
    // for its nonce (400 `use_dpop_nonce`) or refused a proof dated by a clock found to be off
    // (400 `invalid_dpop_proof`). A logout never creates a key: it has nothing to prove then.
    /**
     * @param {string} path relative to the page
     * @param {object | null} body
     * @param {string | null | undefined} bearer
     * @param {number} ms
     * @returns {Promise<import("./types").Answer>}
     */
    async post(path, body, bearer, ms) {
      const url = new URL(path, location.href).href;
      for (let again = 0; ; again++) {
        const k = await get(!/\/logout(-all)?$/.test(url));
        /** @type {Record<string, string>} */
        const h = {};
        if (bearer) h.Authorization = scheme(bearer);
        if (k) h.DPoP = await proof(k, "POST", url, bearer);
        const a = await post(url, body, bearer, ms, h);
        const fixed = noted(url, a.h), c = a.status === 400 && a.body && a.body.code;
        if (again > 1 || !k || !(c === "use_dpop_nonce" || (fixed && c === "invalid_dpop_proof"))) return a;
      }
    },
    // `fetch` of a request to an API origin (its `Authorization` set by the driver) with the
    // scheme the token asks for and a fresh proof, tried again on a 401 asking for a nonce or
    // refusing a proof dated by a clock found to be off (as `post`).
    /**
     * @param {Request} req
     * @param {string | undefined} t the access token it carries
     * @returns {Promise<Response>}
     */
    async send(req, t) {
      for (let again = 0; ; again++) {
        const r = req.clone();
        if (t) r.headers.set("Authorization", scheme(t));
        r.headers.set("DPoP", await proof(/** @type {DpopKey} */ (await get(true)), r.method, r.url, t));
        const res = await fetch(r);
        const fixed = noted(r.url, res.headers), w = (res.status === 401 && res.headers.get("WWW-Authenticate")) || "";
        if (again > 1 || !(/use_dpop_nonce/.test(w) || (fixed && /invalid_dpop_proof/.test(w)))) return res;
      }
    },
    // The logout cleanup: the key is forgotten and its database deleted (what is gone, as
    // `wipeIndexedDb` says), unless `keep`: every database goes anyway, or the key now belongs
    // to a newer session.
    /**
     * @param {import("tessera").Remaining[]} left
     * @param {boolean} keep
     * @returns {Promise<string[]>}
     */
    drop(left, keep) {
      key = null;
      return keep ? Promise.resolve([]) : wipeIndexedDb([dpopDb(ch)], left);
    },
  };
}
