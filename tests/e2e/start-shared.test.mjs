// A write of the shared record made while a tab starts is not lost. With a BroadcastChannel the
// driver adds its `storage` listener only once `Session.start()`'s work is done (the first such
// listener of a page is slow in Chromium: bench/sdk-results.md §1), then reads the shared
// record once more; this test makes another tab log out in that window and checks the starting
// tab still ends logged out.
//
// The other tab runs without BroadcastChannel, so its logout reaches the starting tab only
// through the shared record (with a bus on both sides the bus message would carry it too).
import assert from "node:assert/strict";
import { test } from "node:test";
import { openDemo, signIn, useEnv } from "./harness.mjs";

const env = useEnv();
const SHARED = "tessera:shared:tessera";

/** Opens a page of the server's origin whose module script starts a session; `window.s` is it. */
async function sessionPage(setup = async () => {}) {
  const page = await env.context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const url = new URL("start-shared-test.html", env.server.url).href;
  await page.route(url, (route) =>
    route.fulfill({
      contentType: "text/html",
      body: `<!doctype html><script type="module">
        import init, { Session } from "/pkg/tessera.js";
        await init();
        window.logouts = [];
        const s = await Session.start({ baseUrl: "/auth" });
        s.on("logout", (e) => window.logouts.push(e.reason));
        window.s = s;
      </script>`,
    }),
  );
  await setup(page);
  await page.goto(url);
  page.errors = errors;
  return page;
}

// Bounded above the driver's 30 s settle of a resume (a start may legitimately take that long).
const started = (page) =>
  page.waitForFunction(() => window.s, null, { timeout: 60_000 }).catch((e) => {
    throw new Error(`${e.message}; page errors: ${page.errors.join("; ")}`);
  });

test("a logout written to the shared record while a tab starts reaches that tab", async () => {
  const demo = await openDemo(env.context, env.server.url);
  await signIn(demo, "alice");
  await demo.close();

  // Tab A: no BroadcastChannel (its tab bus is the storage events), restored from the cookie.
  const a = await sessionPage((p) => p.addInitScript(() => delete window.BroadcastChannel));
  await started(a);
  assert.equal(await a.evaluate(() => window.s.state), "active", "tab A restored the session");

  // Tab B starts; its resume's refresh gets the server's real answer, held back until tab A
  // has logged out, so the logout lands while B's `Session.start()` is still running.
  /** @type {(v: { route: import("playwright-core").Route, response: import("playwright-core").APIResponse }) => void} */
  let gotRefresh;
  const held = new Promise((ok) => (gotRefresh = ok));
  let refreshes = 0;
  const b = await sessionPage((p) =>
    p.route(new URL("/auth/refresh", env.server.url).href, async (route) => {
      if (refreshes++) return route.continue();
      gotRefresh({ route, response: await route.fetch() });
    }),
  );
  const { route, response } = await held;
  assert.equal(response.status(), 200, "B's refresh was answered with tokens");

  await a.evaluate(() => window.s.logout());
  assert.equal(await a.evaluate(() => window.s.state), "logged-out");
  const record = await a.evaluate((k) => localStorage.getItem(k), SHARED);
  assert.ok(record, "tab A wrote the shared record");
  // The write is visible to B's page before B's start goes on.
  await b.waitForFunction(([k, v]) => localStorage.getItem(k) === v, [SHARED, record], { timeout: 10_000 });
  assert.equal(await b.evaluate(() => window.s), undefined, "B's Session.start() has not resolved yet");

  await route.fulfill({ response });
  await started(b);
  // Signed out either way: "anonymous" when B saw the logout before its resume's answer (the
  // listener already there), "logged-out" when it saw it after (the re-read once started).
  // Bounded, not timed: without the re-read B stays "active" with the revoked session's token.
  await b
    .waitForFunction(() => ["anonymous", "logged-out"].includes(window.s.state), null, { timeout: 10_000, polling: 20 })
    .catch(async (e) => {
      throw new Error(`tab B is ${await b.evaluate(() => window.s.state)} after tab A's logout: ${e.message}`);
    });
  assert.deepEqual(b.errors, []);
});
