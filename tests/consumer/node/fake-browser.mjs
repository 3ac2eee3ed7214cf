// The few browser globals the SDK's driver touches, for unit tests in plain Node (node:test,
// or vitest's `node` environment). Under jsdom or happy-dom none of this is needed. What
// Node already has is used as it is: fetch/Request/Response, BroadcastChannel (instances in
// one process talk to each other, so two sessions on one channel behave like two tabs),
// WebCrypto, EventTarget, timers. Web Locks are absent in Node: the SDK then coordinates
// refreshes over the bus, as in a browser without them.
//
//   import { installFakeBrowser } from "./fake-browser.mjs";
//   const restore = installFakeBrowser({ origin: "http://app.test" });
//   ... tests ...
//   restore();

/** A Web Storage (`localStorage`) in memory. */
export class MemoryStorage {
  #map = new Map();
  get length() {
    return this.#map.size;
  }
  key(i) {
    return [...this.#map.keys()][i] ?? null;
  }
  getItem(k) {
    return this.#map.has(String(k)) ? this.#map.get(String(k)) : null;
  }
  setItem(k, v) {
    this.#map.set(String(k), String(v));
  }
  removeItem(k) {
    this.#map.delete(String(k));
  }
  clear() {
    this.#map.clear();
  }
}

/**
 * Installs `window`, `document`, `location`, `localStorage` and `sessionStorage` on
 * `globalThis` and returns a function that removes them again.
 *
 * @param {{ origin?: string }} [options] the page's origin (default `http://app.test`)
 */
export function installFakeBrowser({ origin = "http://app.test" } = {}) {
  const added = {
    window: Object.assign(new EventTarget(), { isFake: true }),
    document: Object.assign(new EventTarget(), { cookie: "", hidden: false, visibilityState: "visible" }),
    location: new URL("/", origin),
    localStorage: new MemoryStorage(),
    sessionStorage: new MemoryStorage(),
  };
  const saved = {};
  for (const [k, v] of Object.entries(added)) {
    saved[k] = Object.getOwnPropertyDescriptor(globalThis, k);
    Object.defineProperty(globalThis, k, { value: v, configurable: true, writable: true });
  }
  return () => {
    for (const [k, d] of Object.entries(saved)) {
      if (d) Object.defineProperty(globalThis, k, d);
      else delete globalThis[k];
    }
  };
}

/**
 * A fake Tessera server for `globalThis.fetch`: answers the SDK's routes under
 * `${origin}/auth` and a protected `${origin}/api/me` the way tessera-server does (see
 * docs/server-contract.md), and records every request. One user, alice / `password`.
 */
export function fakeServer({ origin = "http://app.test", ttl = 300 } = {}) {
  const requests = [];
  let serial = 0;
  let access = null; // the valid access token
  let refresh = false; // whether the (pretend HttpOnly) refresh cookie is set
  const json = (status, body) =>
    new Response(body === undefined ? null : JSON.stringify(body), {
      status,
      headers: body === undefined ? {} : { "content-type": status >= 400 ? "application/problem+json" : "application/json" },
    });
  const tokens = () => {
    access = `at-${++serial}`;
    refresh = true;
    return json(200, { access_token: access, token_type: "Bearer", expires_in: ttl, session: { user: "alice" } });
  };
  const handler = async (input, init) => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    const body = req.method === "POST" ? await req.text() : "";
    requests.push({ method: req.method, path: url.pathname, authorization: req.headers.get("authorization"), csrf: req.headers.get("x-tessera-csrf"), body });
    if (url.origin !== origin) return json(404, { code: "not_found" });
    switch (`${req.method} ${url.pathname}`) {
      case "POST /auth/login": {
        const { username, password } = JSON.parse(body || "{}");
        if (username === "alice" && password === "password") return tokens();
        return json(401, { code: "invalid_credentials", title: "Invalid credentials", status: 401 });
      }
      case "POST /auth/refresh":
        return refresh ? tokens() : json(401, { code: "refresh_invalid", title: "Invalid refresh token", status: 401 });
      case "POST /auth/logout":
        access = null;
        refresh = false;
        return json(204);
      case "GET /api/me":
        return req.headers.get("authorization") === `Bearer ${access}` && access
          ? json(200, { username: "alice" })
          : json(401, { code: "unauthorized", status: 401 });
      default:
        return json(404, { code: "not_found", status: 404 });
    }
  };
  return {
    requests,
    fetch: handler,
    /** Makes the current access token invalid, as an expiry or key rotation would. */
    expireAccess() {
      access = `expired-${serial}`;
    },
  };
}
