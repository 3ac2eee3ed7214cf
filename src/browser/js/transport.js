// HTTP to tessera-server: errors with stable codes, the POST helper with its timeout, and
// what a 401's challenge means.

// An error's `code` is the contract; its message defaults to the code in words.
/** @param {unknown} code */
export const words = (code) => String(code).replace(/_/g, " ");
/**
 * @param {import("tessera").SessionErrorCode} code
 * @param {string | 0} [message] the code in words when absent
 * @param {number} [status] the HTTP status
 * @returns {import("tessera").SessionError}
 */
export const error = (code, message, status) => Object.assign(new Error(message || words(code)), { code, status });
/**
 * @param {any} b a server's parsed JSON body (untrusted)
 * @returns {b is import("./types").Tokens}
 */
export const tokensOk = (b) => b && typeof b.access_token === "string" && b.expires_in >= 0;
/** @param {number | undefined} s */
export const gone = (s) => s === 401 || s === 403;
// Whether the browser says it is offline (`navigator` may be absent: plain Node in unit tests).
export const offline = () => globalThis.navigator?.onLine === false;
// A 401 means "this bearer is no good" unless a challenge says otherwise (RFC 6750 §3.1).
/** @param {Response} r */
export const bearerRejected = (r) => {
  const w = r.headers.get("WWW-Authenticate");
  return !w || /error="?invalid_token/i.test(w);
};

// A POST to tessera-server with the SDK's CSRF header, the cookies, an optional JSON body and
// bearer, more headers (`h`: DPoP's), and a timeout (ms): `{ status, body (parsed JSON or
// null), retryAfter (ms), h (its headers) }`. Rejects on network failure or timeout (`TimeoutError`).
/**
 * @param {string} url
 * @param {object | null} body
 * @param {string | null | undefined} bearer
 * @param {number} ms
 * @param {Record<string, string>} [h]
 * @returns {Promise<import("./types").Answer>}
 */
export function post(url, body, bearer, ms, h) {
  /** @type {Record<string, string>} */
  const headers = { "X-Tessera-CSRF": "1" };
  if (body) headers["Content-Type"] = "application/json";
  if (bearer) headers.Authorization = "Bearer " + bearer;
  Object.assign(headers, h);
  /** @type {RequestInit} */
  const init = { method: "POST", credentials: "include", headers, body: body ? JSON.stringify(body) : undefined };
  if (AbortSignal.timeout) init.signal = AbortSignal.timeout(ms);
  return fetch(url, init).then(async (r) => {
    let b = null;
    try {
      b = JSON.parse(await r.text());
    } catch (_) {}
    // Absent: parseInt(null) is NaN, like any text that is no number.
    const ra = parseInt(/** @type {string} */ (r.headers.get("Retry-After")), 10);
    return { status: r.status, body: b, retryAfter: ra >= 0 ? ra * 1000 : undefined, h: r.headers };
  });
}
