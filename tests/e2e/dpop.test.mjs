// DPoP (`dpop: true`, RFC 9449) in a real Chromium, the SDK as shipped (pkg/, with dpop.js
// beside tessera.js).
//
// Part 1, the browser half on its own: tessera-server serves the page and the package; its
// auth routes and the API are answered by the test (Playwright routes), which checks every
// proof the browser sends with WebCrypto (the header's JWK verifies the signature) and its
// claims, and scripts the nonce challenges. Part 2 runs against tessera-server's own DPoP
// (`--dpop required`), nothing answered by the test: sign-in, refreshes across tabs (one per
// expiry), `/api/me`, a copied token refused as `Bearer` and with another key's proof, logout.
import assert from "node:assert/strict";
import { createHash, randomUUID, webcrypto } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { launchBrowser, resetContext, sleep, startServer } from "./harness.mjs";

// A page that loads the package and exposes what the tests drive: `window.start(options)`
// starts a session (kept as `window.S`, its events in `window.E`); `window.dpopKey` is the
// shipped dpop.js's key loader (for the two-tab race).
const PAGE = `<!doctype html><meta charset="utf-8"><title>dpop</title>
<script type="module">
import init, { Session } from "/pkg/tessera.js";
await init();
window.E = [];
window.start = async (o) => {
  window.S = await Session.start(o);
  for (const n of ["login", "refresh", "logout", "error"]) window.S.on(n, (e) => window.E.push(e));
  return window.S.state;
};
// How a start ends: "started", or the error's code.
window.startCode = (o) => window.start(o).then(() => "started", (e) => e.code);
window.loadDpop = () => import("/pkg/dpop.js");
window.ready = true;
</script>`;

const CH = "dpop-e2e";
const DB = `tessera:dpop:${CH}`;

// The server and browser of the running `describe` block (each starts its own).
let server, browser;

/** Registers hooks: a tessera-server (`serverOpts`) serving PAGE, a browser, reset between tests. */
function useDpopEnv(serverOpts) {
  let www;
  before(async () => {
    www = await mkdtemp(path.join(tmpdir(), "tessera-dpop-www-"));
    await writeFile(path.join(www, "index.html"), PAGE);
    server = await startServer({ wwwDir: www, ...serverOpts });
    browser = await launchBrowser();
  });
  afterEach(async () => {
    await browser.context.unrouteAll({ behavior: "ignoreErrors" });
    await resetContext(browser.context, server.url);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await rm(www, { recursive: true, force: true });
  });
}

/** A new tab on PAGE; `skewMs`: its clock (`Date.now`) runs that far off the machine's. */
async function openPage(skewMs = 0) {
  const page = await browser.context.newPage();
  if (skewMs) await page.addInitScript((ms) => ((now) => (Date.now = () => now() + ms))(Date.now), skewMs);
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  await page.goto(new URL("index.html", server.url).href);
  await page.waitForFunction(() => window.ready === true);
  return page;
}

// ---- checking proofs -------------------------------------------------------------------------

const unb64 = (s) => Buffer.from(s, "base64url");
const json = (s) => JSON.parse(unb64(s).toString("utf8"));
const sha256 = (s) => createHash("sha256").update(s, "ascii").digest("base64url");

/**
 * Verifies a proof as a server would (signature by the header's JWK, with WebCrypto) and returns
 * `{ header, claims }`; fails the test on anything RFC 9449 §4.2 (and the SDK's contract) rules out.
 */
async function verify(proofText, { htm, htu, token }) {
  assert.equal(typeof proofText, "string", "a DPoP header was sent");
  const parts = proofText.split(".");
  assert.equal(parts.length, 3, "one compact JWS");
  const header = json(parts[0]);
  const claims = json(parts[1]);
  assert.equal(header.typ, "dpop+jwt");
  assert.equal(header.alg, "ES256");
  assert.deepEqual(Object.keys(header.jwk).sort(), ["crv", "kty", "x", "y"], "the JWK holds the public members only");
  assert.equal(header.jwk.kty, "EC");
  assert.equal(header.jwk.crv, "P-256");
  const key = await webcrypto.subtle.importKey("jwk", header.jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  const sig = unb64(parts[2]);
  assert.equal(sig.length, 64, "ES256 signature: r || s, 64 bytes");
  const ok = await webcrypto.subtle.verify(
    { name: "ECDSA", hash: "SHA-256" },
    key,
    sig,
    Buffer.from(`${parts[0]}.${parts[1]}`, "ascii"),
  );
  assert.ok(ok, "the signature verifies with the header's JWK");
  assert.equal(claims.htm, htm);
  assert.equal(claims.htu, htu);
  assert.ok(Number.isInteger(claims.iat) && Math.abs(claims.iat - Date.now() / 1000) < 60, `iat ${claims.iat} is now`);
  assert.ok(typeof claims.jti === "string" && unb64(claims.jti).length >= 16, "jti: at least 16 random bytes");
  if (token) assert.equal(claims.ath, sha256(token), "ath is the hash of the token sent");
  else assert.equal(claims.ath, undefined, "no ath without a token");
  return { header, claims };
}

/** A JWT-shaped access token (unsigned: only its payload matters to the SDK), bound to `jkt` or not. */
function accessToken(n, jkt) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const payload = { sub: "alice", sid: "s1", n, exp: Math.floor(Date.now() / 1000) + 300 };
  if (jkt) payload.cnf = { jkt };
  return `${enc({ alg: "EdDSA", typ: "at+jwt" })}.${enc(payload)}.c2ln`;
}

/**
 * Answers the auth routes and `/api/*` of the server's origin, and `http://foreign.test/`, in
 * the test; records every request `{ path, method, auth, dpop, url }`. `login` and `api` get
 * their answers from the given functions (called with the request count so far).
 */
async function mockServer({ bind = true, nonceOnLogin = true, nonceOnApi = true } = {}) {
  const seen = [];
  let logins = 0, apis = 0;
  const token = accessToken(1, bind ? "thumb" : null);
  const reply = (route, status, body, headers = {}) =>
    route.fulfill({ status, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  await browser.context.route(`${server.origin}/auth/**`, async (route) => {
    const r = route.request();
    const h = await r.allHeaders();
    const p = new URL(r.url()).pathname;
    seen.push({ path: p, method: r.method(), auth: h.authorization, dpop: h.dpop, url: r.url() });
    if (p === "/auth/login") {
      if (nonceOnLogin && logins++ === 0) return reply(route, 400, { code: "use_dpop_nonce", title: "nonce" }, { "dpop-nonce": "n-login" });
      return reply(route, 200, { access_token: token, token_type: bind ? "DPoP" : "Bearer", expires_in: 300, session: { id: "s1", user: "alice" } });
    }
    if (p === "/auth/refresh") return reply(route, 401, { code: "refresh_invalid" });
    if (p === "/auth/logout" || p === "/auth/logout-all") return route.fulfill({ status: 204 });
    return reply(route, 404, { code: "not_found" });
  });
  await browser.context.route(`${server.origin}/api/**`, async (route) => {
    const r = route.request();
    const h = await r.allHeaders();
    seen.push({ path: new URL(r.url()).pathname, method: r.method(), auth: h.authorization, dpop: h.dpop, url: r.url() });
    if (nonceOnApi && apis++ === 0)
      return route.fulfill({ status: 401, headers: { "www-authenticate": 'DPoP error="use_dpop_nonce"', "dpop-nonce": "n-api" }, body: "" });
    return reply(route, 200, { ok: true });
  });
  await browser.context.route("http://foreign.test/**", async (route) => {
    const r = route.request();
    const h = await r.allHeaders();
    seen.push({ path: "foreign", method: r.method(), auth: h.authorization, dpop: h.dpop, url: r.url() });
    return route.fulfill({ status: 200, headers: { "access-control-allow-origin": "*" }, body: "{}" });
  });
  return { seen, token };
}

const startIn = (page, extra = {}) => page.evaluate((o) => window.start(o), { channel: CH, dpop: true, ...extra });

// ---- part 1: the browser half ---------------------------------------------------------------

describe("DPoP in the browser, the server's answers scripted by the test", () => {
  useDpopEnv({});

  test("dpop: every request to the server and to apiOrigins carries a fresh proof that verifies; claims, scheme and nonces as RFC 9449 says", async () => {
    const { seen, token } = await mockServer();
    const page = await openPage();
    assert.equal(await startIn(page), "anonymous");
    assert.equal(await page.evaluate(() => window.S.login({ username: "alice", password: "pw" })), "active");

    const htuOf = (p) => new URL(p, server.origin).href;
    // The resume at start (a refresh) and the login: each proved; the login retried ONCE, with the nonce.
    const logins = seen.filter((s) => s.path === "/auth/login");
    assert.equal(logins.length, 2, "one retry on use_dpop_nonce, no more");
    const first = await verify(logins[0].dpop, { htm: "POST", htu: htuOf("/auth/login") });
    const second = await verify(logins[1].dpop, { htm: "POST", htu: htuOf("/auth/login") });
    assert.equal(first.claims.nonce, undefined, "no nonce before the server gave one");
    assert.equal(second.claims.nonce, "n-login", "the retry carries the server's nonce");
    const refresh = seen.find((s) => s.path === "/auth/refresh");
    assert.ok(refresh, "the resume at start went out");
    await verify(refresh.dpop, { htm: "POST", htu: htuOf("/auth/refresh") });

    // session.fetch to the page's origin: DPoP scheme (the token is bound), a proof with ath, htu
    // without query and fragment; the 401 asking for a nonce retried once with it.
    const status = await page.evaluate(async () => (await window.S.fetch("/api/data?q=1#frag", { method: "PUT", body: "x" })).status);
    assert.equal(status, 200);
    const api = seen.filter((s) => s.path === "/api/data");
    assert.equal(api.length, 2, "one retry on the nonce challenge, no more");
    for (const a of api) assert.equal(a.auth, `DPoP ${token}`, "a bound token goes with the DPoP scheme");
    const p1 = await verify(api[0].dpop, { htm: "PUT", htu: htuOf("/api/data"), token });
    const p2 = await verify(api[1].dpop, { htm: "PUT", htu: htuOf("/api/data"), token });
    assert.equal(p2.claims.nonce, "n-api", "the API's nonce, remembered for its origin");
    assert.equal(p1.claims.nonce, "n-login", "before the API's challenge: the origin's newest nonce (the login's)");

    // A later request to that origin uses the newest nonce without being asked.
    await page.evaluate(() => window.S.fetch("/api/again"));
    const again = seen.filter((s) => s.path === "/api/again");
    assert.equal(again.length, 1);
    assert.equal((await verify(again[0].dpop, { htm: "GET", htu: htuOf("/api/again"), token })).claims.nonce, "n-api");

    // Never a proof or a token to an origin outside apiOrigins.
    assert.equal(await page.evaluate(async () => (await window.S.fetch("http://foreign.test/x")).status), 200);
    const foreign = seen.filter((s) => s.path === "foreign");
    assert.equal(foreign.length, 1);
    assert.equal(foreign[0].auth, undefined, "no Authorization to a foreign origin");
    assert.equal(foreign[0].dpop, undefined, "no DPoP proof to a foreign origin");

    // Every proof: one key, a fresh jti each.
    const proofs = seen.filter((s) => s.dpop).map((s) => s.dpop);
    const jtis = proofs.map((p) => json(p.split(".")[1]).jti);
    assert.equal(new Set(jtis).size, jtis.length, "never one jti twice");
    const jwks = new Set(proofs.map((p) => JSON.stringify(json(p.split(".")[0]).jwk)));
    assert.equal(jwks.size, 1, "one key for the session");

    // The logout revoke is proved too (and carries the token as DPoP with ath).
    await page.evaluate(() => window.S.logout());
    const out = seen.find((s) => s.path === "/auth/logout");
    assert.ok(out, "the revoke went out");
    assert.equal(out.auth, `DPoP ${token}`);
    await verify(out.dpop, { htm: "POST", htu: htuOf("/auth/logout"), token });
    assert.deepEqual(page.errors, []);
  });

  test("dpop: the private key is not extractable, lives in IndexedDB for the channel, is shared by the tabs and deleted at logout", async () => {
    const { seen } = await mockServer({ nonceOnLogin: false, nonceOnApi: false });
    const a = await openPage();
    await startIn(a);
    await a.evaluate(() => window.S.login({ username: "alice", password: "pw" }));
    const b = await openPage();
    await startIn(b);
    await b.waitForFunction(() => window.S.state === "active");
    await b.evaluate(() => window.S.fetch("/api/from-b"));

    // The stored pair: the private key refuses export; its public half is the proofs' JWK.
    const stored = await a.evaluate(async (db) => {
      const d = await new Promise((ok, no) => {
        const r = indexedDB.open(db);
        r.onsuccess = () => ok(r.result);
        r.onerror = () => no(r.error);
      });
      const pair = await new Promise((ok) => (d.transaction("k").objectStore("k").get(1).onsuccess = (e) => ok(e.target.result)));
      d.close();
      let exported = "exported";
      try {
        await crypto.subtle.exportKey("jwk", pair.privateKey);
      } catch (e) {
        exported = e.name;
      }
      const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
      return { extractable: pair.privateKey.extractable, exported, usages: pair.privateKey.usages, jwk: { kty, crv, x, y } };
    }, DB);
    assert.equal(stored.extractable, false, "the private key is not extractable");
    assert.equal(stored.exported, "InvalidAccessError", "exporting it fails");
    assert.deepEqual(stored.usages, ["sign"]);
    const fromB = seen.find((s) => s.path === "/api/from-b");
    assert.deepEqual(json(fromB.dpop.split(".")[0]).jwk, stored.jwk, "tab B signs with the key tab A created");
    const fromA = seen.find((s) => s.path === "/auth/login");
    assert.deepEqual(json(fromA.dpop.split(".")[0]).jwk, stored.jwk);

    // Logout in A: both tabs wipe; the key's database is gone and reported as cleared.
    const done = await a.evaluate(async () => {
      await window.S.logout();
      return window.E.filter((e) => e.type === "logout").at(-1);
    });
    assert.ok(done.cleared.indexedDB.includes(DB), `cleared.indexedDB lists ${DB}: ${JSON.stringify(done.cleared)}`);
    await b.waitForFunction(() => window.S.state === "logged-out");
    for (let end = Date.now() + 5_000; ; await sleep(100)) {
      const names = await a.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
      if (!names.includes(DB)) break;
      assert.ok(Date.now() < end, `the key's database is still there: ${names}`);
    }
    // The next sign-in gets a new key.
    await a.evaluate(() => window.S.login({ username: "alice", password: "pw" }));
    const next = seen.filter((s) => s.path === "/auth/login").at(-1);
    assert.notDeepEqual(json(next.dpop.split(".")[0]).jwk, stored.jwk, "a new session, a new key");
  });

  test("dpop: two tabs creating the key at once end on one key", async () => {
    const a = await openPage();
    const b = await openPage();
    const jwk = (page) =>
      page.evaluate(async (ch) => {
        const m = await window.loadDpop();
        const k = await m.dpopKey(ch, true);
        return JSON.parse(atob(k.h.replace(/-/g, "+").replace(/_/g, "/"))).jwk;
      }, CH);
    for (let round = 0; round < 5; round++) {
      const [ka, kb] = await Promise.all([jwk(a), jwk(b)]);
      assert.deepEqual(ka, kb, `round ${round}: one key for both tabs`);
      await a.evaluate((db) => new Promise((ok) => (indexedDB.deleteDatabase(db).onsuccess = ok)), DB);
    }
  });

  test("dpop: an unbound token goes as Bearer (with a proof); without dpop no proof is ever sent", async () => {
    const { seen, token } = await mockServer({ bind: false, nonceOnLogin: false, nonceOnApi: false });
    const page = await openPage();
    await startIn(page);
    await page.evaluate(() => window.S.login({ username: "alice", password: "pw" }));
    await page.evaluate(() => window.S.fetch("/api/unbound"));
    const api = seen.find((s) => s.path === "/api/unbound");
    assert.equal(api.auth, `Bearer ${token}`, "no cnf.jkt in the token: Bearer");
    await verify(api.dpop, { htm: "GET", htu: new URL("/api/unbound", server.origin).href, token });
    await page.evaluate(() => window.S.logout());

    const plain = await openPage();
    await plain.evaluate((ch) => window.start({ channel: ch + "-plain" }), CH);
    const before = seen.length;
    await plain.evaluate(() => window.S.login({ username: "alice", password: "pw" }));
    await plain.evaluate(() => window.S.fetch("/api/plain"));
    const later = seen.slice(before);
    assert.ok(later.length >= 2);
    for (const s of later) assert.equal(s.dpop, undefined, `${s.path}: no proof without dpop`);
    assert.equal(later.find((s) => s.path === "/api/plain").auth, `Bearer ${token}`);
    const names = await plain.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
    assert.ok(!names.some((n) => n.startsWith("tessera:dpop:")), "no key without dpop");
    assert.ok(!(await plain.evaluate(() => performance.getEntriesByType("resource").some((e) => e.name.endsWith("/dpop.js")))), "dpop.js not loaded without dpop");
  });

  test("dpop: when dpop.js cannot be loaded (a bundler dropped it, a CSP blocks it) Session.start rejects with dpop_unavailable at once", async () => {
    await browser.context.route("**/pkg/dpop.js", (r) => r.fulfill({ status: 404, body: "gone" }));
    const sent = [];
    browser.context.on("request", (r) => new URL(r.url()).pathname.startsWith("/auth/") && sent.push(r.url()));
    const page = await openPage();
    const t0 = Date.now();
    const code = await page.evaluate((ch) => window.startCode({ channel: ch, dpop: true }), CH);
    assert.equal(code, "dpop_unavailable");
    assert.ok(Date.now() - t0 < 10_000, `rejected after ${Date.now() - t0} ms`);
    assert.deepEqual(sent, [], "no request went out without its proof");
    assert.deepEqual(page.errors, []);
  });

  test("dpop: without IndexedDB (or WebCrypto) Session.start rejects with dpop_unavailable", async () => {
    const page = await openPage();
    const code = await page.evaluate(async (ch) => {
      Object.defineProperty(window, "indexedDB", { value: undefined, configurable: true });
      return window.startCode({ channel: ch, dpop: true });
    }, CH);
    assert.equal(code, "dpop_unavailable");
    const code2 = await page.evaluate(async (ch) => {
      Object.defineProperty(crypto, "subtle", { value: undefined, configurable: true });
      Object.defineProperty(window, "indexedDB", { value: {}, configurable: true });
      return window.startCode({ channel: ch, dpop: true });
    }, CH);
    assert.equal(code2, "dpop_unavailable");
  });
});

// ---- part 2: end to end with tessera-server's DPoP -----------------------------------------------

const ACCESS_TTL_S = 4; // server --access-ttl
const LEAD_MS = 1_500; // refreshLeadMs: a refresh about 2.5 s after each token

/** A proof signed by a key of the test's own (not the page's), claims as a client would make them. */
async function foreignProof(htm, htu, token) {
  const { privateKey, publicKey } = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const { kty, crv, x, y } = await webcrypto.subtle.exportKey("jwk", publicKey);
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const claims = { jti: randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000), ath: sha256(token) };
  const input = `${enc({ typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } })}.${enc(claims)}`;
  const sig = await webcrypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, Buffer.from(input));
  return `${input}.${Buffer.from(sig).toString("base64url")}`;
}

describe("DPoP end to end with tessera-server --dpop required", () => {
  useDpopEnv({ accessTtl: ACCESS_TTL_S, args: ["--dpop", "required"] });

  test("dpop e2e: sign in, refreshes across tabs (one per expiry), /api/me; a copied token is refused as Bearer and with another key; logout deletes the key", async () => {
    const opts = { channel: CH, dpop: true, refreshLeadMs: LEAD_MS, refreshJitterMs: 0, idleTimeoutMs: 600_000, idleWarningMs: 10_000 };
    const refreshes = [];
    const apiAuth = [];
    let meSent = 0;
    browser.context.on("request", async (req) => {
      const p = new URL(req.url()).pathname;
      if (req.method() === "POST" && p === "/auth/refresh") refreshes.push({ at: Date.now(), dpop: await req.headerValue("dpop").catch(() => null) });
      if (p === "/api/me") {
        meSent++;
        apiAuth.push(await req.headerValue("authorization").catch(() => null));
      }
    });
    const statuses = [];
    browser.context.on("response", (res) => {
      if (res.request().method() === "POST" && new URL(res.url()).pathname === "/auth/refresh") statuses.push(res.status());
    });

    const tabs = [await openPage(), await openPage(), await openPage()];
    for (const t of tabs) await t.evaluate((o) => window.start(o), opts);
    assert.equal(await tabs[0].evaluate(() => window.S.login({ username: "alice", password: "tessera-demo" })), "active");
    for (const t of tabs) await t.waitForFunction(() => window.S.state === "active");

    // /api/me with the bound token: DPoP scheme, accepted.
    // The request listener reads headers asynchronously: the latest /api/me header once every
    // request sent so far has been read.
    const lastAuth = async () => {
      for (const end = Date.now() + 5_000; apiAuth.length < meSent; await sleep(20)) assert.ok(Date.now() < end, `read ${apiAuth.length} of ${meSent} /api/me headers`);
      return apiAuth.at(-1);
    };
    assert.equal(await tabs[1].evaluate(async () => (await window.S.fetch("/api/me")).status), 200);
    const auth = await lastAuth();
    assert.match(auth, /^DPoP /, "the server bound the token: it goes with the DPoP scheme");
    const token = auth.slice(5);
    assert.ok(json(token.split(".")[1]).cnf?.jkt, "the access token carries cnf.jkt");

    // Refreshes across the tabs: one per expiry, each proved, each accepted.
    const before = refreshes.length;
    const period = ACCESS_TTL_S * 1000 - LEAD_MS;
    const t0 = Date.now();
    while (refreshes.length - before < 3 && Date.now() < t0 + 5 * period + 5_000) await sleep(200);
    await sleep(period / 2);
    const mine = refreshes.slice(before);
    assert.ok(mine.length >= 3, `saw ${mine.length} refreshes`);
    for (let i = 1; i < mine.length; i++) {
      const gap = mine[i].at - mine[i - 1].at;
      assert.ok(gap > period / 2, `refresh ${i} came ${gap} ms after the previous one (two for one expiry)`);
    }
    for (const r of mine) assert.ok(r.dpop, "every refresh carries a proof");
    assert.ok(statuses.slice(-mine.length).every((s) => s === 200), `every refresh succeeded: ${statuses.join(",")}`);
    for (const [i, t] of tabs.entries()) {
      assert.equal(await t.evaluate(async () => (await window.S.fetch("/api/me")).status), 200, `tab ${i} calls /api/me`);
    }

    // The current token copied out of the page, replayed from elsewhere: refused as Bearer, and
    // with a proof from another key (right method, URL, time and ath).
    await tabs[2].evaluate(() => window.S.fetch("/api/me"));
    const current = (await lastAuth()).slice(5);
    const me = new URL("/api/me", server.origin).href;
    const asBearer = await fetch(me, { headers: { authorization: `Bearer ${current}` } });
    assert.equal(asBearer.status, 401, "a bound token presented as Bearer is refused");
    const otherKey = await fetch(me, { headers: { authorization: `DPoP ${current}`, dpop: await foreignProof("GET", me, current) } });
    assert.equal(otherKey.status, 401, "a bound token with another key's proof is refused");
    assert.match(otherKey.headers.get("www-authenticate") ?? "", /^DPoP /);
    // The page itself still gets through with the same token.
    assert.equal(await tabs[2].evaluate(async () => (await window.S.fetch("/api/me")).status), 200);

    // Logout: every tab ends, the key is deleted and reported.
    const ended = await tabs[0].evaluate(async () => {
      await window.S.logout();
      return window.E.filter((e) => e.type === "logout").at(-1);
    });
    assert.ok(ended.cleared.indexedDB.includes(DB), `cleared.indexedDB: ${JSON.stringify(ended.cleared.indexedDB)}, remaining: ${JSON.stringify(ended.remaining)}`);
    for (const t of tabs) await t.waitForFunction(() => window.S.state === "logged-out");
    for (let end = Date.now() + 5_000; ; await sleep(100)) {
      const names = await tabs[0].evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
      if (!names.includes(DB)) break;
      assert.ok(Date.now() < end, `the key's database is still there: ${names}`);
    }
    for (const t of tabs) assert.deepEqual(t.errors, []);
  });

  test("dpop e2e: the key outlives closed tabs (a new tab resumes with it); once it is lost (site data cleared) the next refresh ends the session", async () => {
    const opts = { channel: CH, dpop: true, idleTimeoutMs: 600_000, idleWarningMs: 10_000 };
    const statuses = [];
    browser.context.on("response", (res) => {
      if (res.request().method() === "POST" && new URL(res.url()).pathname === "/auth/refresh") statuses.push(res.status());
    });
    let page = await openPage();
    await page.evaluate((o) => window.start(o), opts);
    await page.evaluate(() => window.S.login({ username: "alice", password: "tessera-demo" }));
    await page.close();
    // Every tab closed; a new one resumes from the cookie, proving with the stored key.
    page = await openPage();
    assert.equal(await page.evaluate((o) => window.start(o), opts), "active", "resumed with the stored key");
    assert.equal(await page.evaluate(async () => (await window.S.fetch("/api/me")).status), 200);
    await page.close();
    // The key is lost (the cookie stays): the next tab's refresh proves with a new key, which
    // the refresh token is not bound to. Refused; the session does not come back.
    page = await openPage();
    await page.evaluate((db) => new Promise((ok) => (indexedDB.deleteDatabase(db).onsuccess = ok)), DB);
    const before = statuses.length;
    assert.equal(await page.evaluate((o) => window.start(o), opts), "anonymous", "no session without its key");
    const refused = statuses.slice(before);
    assert.ok(refused.length >= 1 && refused.every((s) => s === 400 || s === 401), `refresh answers: ${refused.join(",")}`);
    // Nor with the old key's cookie later: the server revoked the session (theft).
    await page.close();
    page = await openPage();
    assert.equal(await page.evaluate((o) => window.start(o), opts), "anonymous");
  });
  // A user's clock is often minutes off; the server accepts proofs whose `iat` is within 60 s of
  // its own clock. The SDK dates its proofs by the server's clock (its `Date` header).
  for (const skewMin of [-5, 7]) {
    test(`dpop e2e: a browser clock ${Math.abs(skewMin)} min ${skewMin < 0 ? "behind" : "ahead of"} the server's signs in, calls the API and refreshes`, async () => {
      const page = await openPage(skewMin * 60_000);
      assert.ok(Math.abs((await page.evaluate(() => Date.now())) - Date.now() - skewMin * 60_000) < 10_000, "the page's clock is off");
      // A channel of its own: the earlier tests' tabs (on the machine's clock) stay out of it;
      // all tabs of a real browser share one clock.
      const opts = { channel: `${CH}-clock${skewMin}`, dpop: true, refreshLeadMs: LEAD_MS, refreshJitterMs: 0, idleTimeoutMs: 600_000, idleWarningMs: 10_000 };
      await page.evaluate((o) => window.start(o), opts);
      assert.equal(await page.evaluate(() => window.S.login({ username: "alice", password: "tessera-demo" })), "active");
      assert.equal(await page.evaluate(async () => (await window.S.fetch("/api/me")).status), 200);
      await page.waitForFunction(() => window.E.some((e) => e.type === "refresh"), null, { timeout: 3 * ACCESS_TTL_S * 1000 });
      assert.equal(await page.evaluate(async () => (await window.S.fetch("/api/me")).status), 200);
      assert.deepEqual(page.errors, []);
      await page.close();
      // A new tab's first request is the refresh (its proof dated before the page knows the
      // server's clock): refused once as invalid_dpop_proof, not as theft; the retry resumes.
      const next = await openPage(skewMin * 60_000);
      assert.equal(await next.evaluate((o) => window.start(o), opts), "active", "resumed in a new tab");
      assert.equal(await next.evaluate(async () => (await window.S.fetch("/api/me")).status), 200);
      await next.evaluate(() => window.S.logout());
      assert.deepEqual(next.errors, []);
    });
  }
});

describe("DPoP end to end with server nonces (tessera-server --dpop required --dpop-nonce)", () => {
  useDpopEnv({ accessTtl: ACCESS_TTL_S, args: ["--dpop", "required", "--dpop-nonce"] });

  test("dpop e2e nonces: the SDK answers each use_dpop_nonce once with the server's nonce; sign-in, /api/me and refresh succeed", async () => {
    const answers = [];
    browser.context.on("response", async (res) => {
      const p = new URL(res.url()).pathname;
      if (p.startsWith("/auth/") || p === "/api/me") {
        const dpop = await res.request().headerValue("dpop").catch(() => null);
        answers.push({ p, status: res.status(), nonce: dpop ? json(dpop.split(".")[1]).nonce : undefined });
      }
    });
    const page = await openPage();
    await page.evaluate((o) => window.start(o), { channel: CH, dpop: true, refreshLeadMs: LEAD_MS, refreshJitterMs: 0 });
    assert.equal(await page.evaluate(() => window.S.login({ username: "alice", password: "tessera-demo" })), "active");
    assert.equal(await page.evaluate(async () => (await window.S.fetch("/api/me")).status), 200);
    await page.waitForFunction(() => window.E.some((e) => e.type === "refresh"), null, { timeout: 3 * ACCESS_TTL_S * 1000 });
    assert.equal(await page.evaluate(async () => (await window.S.fetch("/api/me")).status), 200);
    const logins = answers.filter((a) => a.p === "/auth/login");
    assert.ok(logins.length <= 2, `at most one retry: ${JSON.stringify(logins)}`);
    assert.equal(logins.at(-1).status, 200);
    assert.ok(logins.at(-1).nonce, "the accepted login proof carries the server's nonce");
    const refreshes = answers.filter((a) => a.p === "/auth/refresh" && a.status === 200);
    assert.ok(refreshes.length >= 1 && refreshes.every((a) => a.nonce), "accepted refreshes carry a nonce");
    // Never two nonce refusals in a row for one request.
    for (let i = 1; i < answers.length; i++)
      assert.ok(!(answers[i].status === 400 && answers[i - 1].status === 400 && answers[i].p === answers[i - 1].p), `two refusals in a row: ${answers[i].p}`);
    assert.deepEqual(page.errors, []);
  });
});
