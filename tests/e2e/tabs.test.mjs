// Cross-tab login and logout in one browser context (the tabs share cookies, storage,
// BroadcastChannel and Web Locks), against the real server with its SQLite store.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DEFINITIVE_END_CODES,
  eventsOf,
  openDemo,
  postAuth,
  REFRESH_COOKIE,
  refreshCookie,
  signIn,
  stateOf,
  storageLeft,
  useEnv,
  waitForEvent,
  waitNothingOwed,
  waitForState,
} from "./harness.mjs";

const env = useEnv();

test("login in tab A makes tab B active without a reload", async () => {
  const a = await openDemo(env.context, env.server.url);
  const b = await openDemo(env.context, env.server.url);
  await waitForState(b, "anonymous");
  const navigations = [];
  b.on("framenavigated", (f) => f === b.mainFrame() && navigations.push(f.url()));

  await signIn(a, "alice");
  await waitForState(b, "active", 5_000);
  await waitForEvent(b, "login");
  assert.deepEqual(navigations, [], "tab B was not reloaded");
  assert.equal(await b.locator("#account-panel").isVisible(), true, "tab B shows the signed-in view");

  // Tab B can use the session on its own: a bearer call succeeds from B.
  const status = await b.evaluate(async () => (await window.tessera.session.fetch("/api/me")).status);
  assert.equal(status, 200);

  await a.click("#logout");
  await waitForState(b, "logged-out");
  await a.close();
  await b.close();
});

test("the page's 'Open another tab' button opens a tab that joins the session", async () => {
  const a = await openDemo(env.context, env.server.url, "?idle=600000&warn=10000");
  await signIn(a, "alice");
  const [b] = await Promise.all([env.context.waitForEvent("page"), a.click("#open-tab")]);
  await b.waitForLoadState();
  assert.equal(new URL(b.url()).search, "?idle=600000&warn=10000", "the new tab keeps the demo settings");
  await b.waitForFunction(() => window.tessera?.ready);
  await waitForState(b, "active", 5_000);
  await b.locator("#account-user").filter({ hasText: "alice" }).waitFor({ timeout: 5_000 });
  await a.click("#logout");
  await waitForState(b, "logged-out");
});

test("logout in tab A logs out and wipes tab B; the old refresh token is rejected", async () => {
  const a = await openDemo(env.context, env.server.url, "?storage=local");
  const b = await openDemo(env.context, env.server.url, "?storage=local");
  await signIn(a, "alice");
  await waitForState(b, "active");

  const rt = await refreshCookie(env.context);
  assert.ok(rt, `refresh cookie ${REFRESH_COOKIE} is set`);
  assert.equal(rt.httpOnly, true, "refresh cookie is HttpOnly");
  assert.equal(rt.secure, true, "refresh cookie is Secure");
  assert.equal(rt.sameSite, "Strict", "refresh cookie is SameSite=Strict");
  assert.equal(rt.path, "/", "refresh cookie has Path=/");
  // Something of B's session lives in B's storage before logout (sealed token record).
  const before = await b.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length }));
  assert.ok(before.local + before.session > 0, "tab B persisted a sealed record");

  const clicked = Date.now();
  const logoutCall = a.waitForResponse((r) => new URL(r.url()).pathname === "/auth/logout");
  await a.click("#logout");
  await waitForState(b, "logged-out", 5_000);
  const logoutB = await waitForEvent(b, "logout");
  assert.ok(logoutB, "tab B fired a logout event");
  assert.ok(logoutB.at >= clicked, "tab B's logout follows the click (latency is measured by bench/tabs.mjs)");

  // B is wiped: no storage, no session, bearer calls no longer work.
  // Only the SDK's cross-tab coordination record (logout epoch, no secret) may remain.
  assert.deepEqual(await storageLeft(b), { local: [], session: [] }, "tab B's Web Storage is empty");
  assert.equal(await b.locator("#cleared-panel").isVisible(), true);
  const status = await b.evaluate(async () => {
    try {
      return (await window.tessera.session.fetch("/api/me")).status;
    } catch {
      return "rejected";
    }
  });
  assert.notEqual(status, 200, "no bearer call succeeds after logout");
  assert.equal(await refreshCookie(env.context), null, "the refresh cookie is gone from the browser");

  // The server refuses the old refresh token, with a definitive code.
  assert.equal((await logoutCall).status(), 204, "POST /auth/logout answered 204");
  await waitNothingOwed(a);
  const replay = await postAuth(env.server, "/auth/refresh", { cookie: `${REFRESH_COOKIE}=${rt.value}` });
  assert.equal(replay.status, 401, `old refresh token rejected: ${replay.text}`);
  assert.ok(DEFINITIVE_END_CODES.includes(replay.json?.code), `definitive code, got ${replay.json?.code}`);

  // A reload of B stays signed out.
  await b.reload();
  await b.waitForFunction(() => window.tessera?.ready);
  assert.ok(["anonymous", "logged-out"].includes(await stateOf(b)));
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.close();
  await b.close();
});

test("logout everywhere ends the session in this browser and revokes other devices", async () => {
  const a = await openDemo(env.context, env.server.url);
  await signIn(a, "alice");
  // A second "device": a session created from Node with its own cookie.
  const other = await postAuth(env.server, "/auth/login", { body: { username: "alice", password: "tessera-demo" } });
  assert.equal(other.status, 200, other.text);
  const setCookie = other.headers.get("set-cookie") ?? "";
  const m = new RegExp(`${REFRESH_COOKIE}=([^;]+)`).exec(setCookie);
  assert.ok(m, "login from Node got a refresh cookie");
  const otherCookie = `${REFRESH_COOKIE}=${m[1]}`;

  // The page flips to logged-out at once; the revocation is the server's answer to the call.
  const [res] = await Promise.all([
    a.waitForResponse((r) => new URL(r.url()).pathname === "/auth/logout-all"),
    a.click("#logout-all"),
  ]);
  assert.equal(res.status(), 204);
  await waitForState(a, "logged-out");
  const refused = await postAuth(env.server, "/auth/refresh", { cookie: otherCookie });
  assert.equal(refused.status, 401, `other device's session is revoked: ${refused.text}`);
  assert.ok(DEFINITIVE_END_CODES.includes(refused.json?.code));
  await a.close();
});

test("a tab opened while the logout's revoke is on its way does not sign the user back in", async (t) => {
  const a = await openDemo(env.context, env.server.url);
  await signIn(a, "alice");
  const rt = await refreshCookie(env.context);
  assert.ok(rt, "signed in with a refresh cookie");
  // A slow network: the revoke is held on its way to the server (the page waits for it, or
  // is closed or left before it gets there); a tab opened meanwhile starts with the cookie.
  let held = null;
  await env.context.route("**/auth/logout", (route) => (held ? route.continue() : (held = route)));
  t.after(() => env.context.unroute("**/auth/logout"));
  await a.evaluate(() => void (window.__out = window.tessera.session.logout()));
  await waitForState(a, "logged-out");
  assert.ok(held, "the revoke was sent");
  const b = await openDemo(env.context, env.server.url);

  // Before the fix B found no owed revoke and adopted the logged-out session's cookie.
  assert.ok(["anonymous", "logged-out"].includes(await stateOf(b)), `B is signed out, is ${await stateOf(b)}`);
  const replay = await postAuth(env.server, "/auth/refresh", { cookie: `${REFRESH_COOKIE}=${rt.value}` });
  assert.equal(replay.status, 401, `B sent the owed revoke: ${replay.text}`);
  assert.ok(DEFINITIVE_END_CODES.includes(replay.json?.code), `definitive code, got ${replay.json?.code}`);
  // A's revoke arrives late; once answered, nothing is owed any more.
  await held.continue();
  await a.evaluate(() => window.__out);
  const owed = await b.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("tessera:revoke:")));
  assert.deepEqual(owed, [], "nothing owed once answered");
  assert.equal(await stateOf(b), "anonymous");
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.close();
  await b.close();
});
