// HTTP to tessera-server: errors with stable codes, the POST helper with its timeout, and
// what a 401's challenge means.

// An error's `code` is the contract; its message defaults to the code in words.
export const words = (code) => String(code).replace(/_/g, " ");
export const error = (code, message, status) => Object.assign(new Error(message || words(code)), { code, status });
export const tokensOk = (b) => b && typeof b.access_token === "string" && b.expires_in >= 0;
export const gone = (s) => s === 401 || s === 403;
// Whether the browser says it is offline (`navigator` may be absent: plain Node in unit tests).
export const offline = () => globalThis.navigator?.onLine === false;
// A 401 means "this bearer is no good" unless a challenge says otherwise (RFC 6750 §3.1).
export const bearerRejected = (r) => {
  const w = r.headers.get("WWW-Authenticate");
  return !w || /error="?invalid_token/i.test(w);
};

// A POST to tessera-server with the SDK's CSRF header, the cookies, an optional JSON body and
// bearer, and a timeout (ms): `{ status, body (parsed JSON or null), retryAfter (ms) }`.
// Rejects on network failure or timeout (`TimeoutError`).
export function post(url, body, bearer, ms) {
  const headers = { "X-Tessera-CSRF": "1" };
  if (body) headers["Content-Type"] = "application/json";
  if (bearer) headers.Authorization = "Bearer " + bearer;
  const init = { method: "POST", credentials: "include", headers, body: body ? JSON.stringify(body) : undefined };
  if (AbortSignal.timeout) init.signal = AbortSignal.timeout(ms);
  return fetch(url, init).then(async (r) => {
    let b = null;
    try {
      b = JSON.parse(await r.text());
    } catch (_) {}
    const ra = parseInt(r.headers.get("Retry-After"), 10);
    return { status: r.status, body: b, retryAfter: ra >= 0 ? ra * 1000 : undefined };
  });
}
