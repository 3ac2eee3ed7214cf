// Logout cleanup in a real browser: site data planted before logout — cookies on several
// paths (two the page sees, one on a path it cannot see, one HttpOnly), localStorage,
// sessionStorage (in two tabs: it is per tab), an IndexedDB database and a Cache Storage entry —
// is gone after it, in the tab that logged out and in the other one. The SDK expires what the
// page can see; the server's `Clear-Site-Data` answer removes the rest. The server sends only
// `"storage"` by default (`"cookies"` clears every cookie of the registrable domain, sibling
// apps included); this test opts into `--clear-site-data "cookies, storage"`, as a deployment
// that owns its whole domain may.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  openDemo,
  REFRESH_COOKIE,
  SDK_RECORDS,
  signIn,
  sleep,
  storageLeft,
  useEnv,
  waitForEvent,
  waitForState,
} from "./harness.mjs";

const env = useEnv({ args: ["--clear-site-data", "cookies, storage"] }, { resetEachTest: false });

/** What `page` sees, once every store answered (a query can stay unanswered while the browser clears site data). */
async function plantedIn(page) {
  for (let tries = 0; ; tries++) {
    const inv = await page.evaluate(() => window.tesseraDemo.inventory());
    if (!inv.unanswered.length || tries === 5) {
      assert.deepEqual(inv.unanswered, [], "every store answered the inventory");
      return inv;
    }
  }
}

test("logout removes cookies on several paths, Web Storage, IndexedDB and Cache Storage", async () => {
  // Served at /index.html, so cookies with Path=/ and Path=/index.html are both visible here.
  const a = await openDemo(env.context, env.server.url);
  const b = await openDemo(env.context, env.server.url);
  await signIn(a, "alice");
  await waitForState(b, "active");

  const plantedA = await a.evaluate(() => window.tesseraDemo.plant());
  await b.evaluate(() => sessionStorage.setItem("demo:b-draft", "tab B's own session data"));
  // A cookie with a Domain-less, non-default path set the way a server would set one.
  await a.evaluate(() => {
    document.cookie = "app_pref=compact; path=/; SameSite=Lax";
    document.cookie = "app_page=2; path=/index.html; SameSite=Lax";
  });

  // One the page cannot see (Path=/pkg) and one it cannot touch (HttpOnly): only the server's
  // `Clear-Site-Data: "cookies"` on the logout answer can remove these.
  await env.context.addCookies([
    { name: "app_hidden", value: "1", domain: "127.0.0.1", path: "/pkg" },
    { name: "app_httponly", value: "1", domain: "127.0.0.1", path: "/", httpOnly: true },
  ]);
  const jar = await env.context.cookies();
  const paths = new Set(jar.filter((c) => c.name.startsWith("demo_") || c.name.startsWith("app_")).map((c) => c.path));
  assert.deepEqual([...paths].sort(), ["/", "/index.html", "/pkg"], "cookies planted on three paths");
  assert.ok(plantedA.localStorage.includes("demo:theme"));
  assert.ok(plantedA.sessionStorage.includes("demo:draft"));
  assert.ok(plantedA.indexedDb.includes("tessera-demo"), "IndexedDB database planted");
  assert.ok(plantedA.caches.includes("tessera-demo"), "Cache Storage entry planted");

  await a.click("#logout");
  await waitForState(a, "logged-out");
  await waitForState(b, "logged-out");

  // Cookies: none of the planted ones, on any path, and no refresh cookie. The browser applies
  // the logout answer's Clear-Site-Data asynchronously (the tabs may already show logged-out):
  // the jar is read until they are gone, for at most 5 s (as the engine scenarios do).
  const ours = (n) => n.startsWith("demo_") || n.startsWith("app_") || n.startsWith(REFRESH_COOKIE);
  let left = [];
  for (const end = Date.now() + 5_000; ; await sleep(100)) {
    left = (await env.context.cookies()).map((c) => `${c.name}@${c.path}`);
    if (!left.some(ours) || Date.now() > end) break;
  }
  assert.deepEqual(left.filter(ours), [], `cookies left after logout: ${left.join(", ")}`);
  for (const [name, page] of [["A", a], ["B", b]]) {
    const inv = await plantedIn(page);
    assert.deepEqual(inv.cookies, [], `tab ${name}: document.cookie is empty`);
    assert.deepEqual(await storageLeft(page), { local: [], session: [] }, `tab ${name}: Web Storage is empty`);
    assert.ok(
      inv.localStorage.every((k) => SDK_RECORDS.some((p) => k.startsWith(p))),
      `tab ${name}: only the SDK's coordination records are left: ${inv.localStorage}`,
    );
    assert.ok(!inv.indexedDb.includes("tessera-demo"), `tab ${name}: IndexedDB database deleted`);
    assert.ok(!inv.caches.includes("tessera-demo"), `tab ${name}: cache deleted`);
  }

  // The tab that logged out reports what it removed, and the page shows it.
  const logout = await waitForEvent(a, "logout");
  assert.ok(logout.detail?.cleared, "logout event carries a `cleared` report");
  // The page renders its report after its own asynchronous check (IndexedDB, caches), and
  // checks again while something is still visible (a removal still running): wait for the
  // line that says nothing is left, and show what the page saw if it never comes.
  const check = a.locator('[data-testid="cleared-check"]');
  await check
    .and(a.locator(".ok"))
    .waitFor({ timeout: 10_000 })
    .catch(async (err) => {
      const seen = await a.evaluate(() => ({
        view: document.body.dataset.view,
        state: document.body.dataset.state,
        report: document.getElementById("cleared-list")?.innerText,
        events: window.tessera.events.map((e) => e.type),
      }));
      throw new Error(`the page's own check never found the site data gone: ${JSON.stringify(seen)}: ${err.message}`);
    });
  assert.match(await check.innerText(), /Checked: no cookies/);
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.close();
  await b.close();
});
