// The server restarted mid-session with its SQLite store: the browser session continues —
// the next refresh rotates against the persisted session and bearer calls keep working.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { eventsOf, launchBrowser, openDemo, signIn, sleep, startServer, waitForEvent } from "./harness.mjs";

const ACCESS_TTL_S = 4;
const LEAD_MS = 1_500;

let server;
let browser;
before(async () => {
  server = await startServer({ accessTtl: ACCESS_TTL_S });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

test("server restart (SQLite) mid-session: the session continues", async () => {
  const page = await openDemo(browser.context, server.url, `?lead=${LEAD_MS}&idle=600000&warn=10000`);
  await signIn(page, "alice");
  await waitForEvent(page, "refresh", 1, ACCESS_TTL_S * 1000 + 3_000);
  const refreshStatuses = [];
  browser.context.on("response", (res) => {
    if (new URL(res.url()).pathname === "/auth/refresh") refreshStatuses.push(res.status());
  });

  // Stop the server; the page keeps its state while the server is away.
  const { dir, port } = server;
  await server.stop();
  await sleep(500);
  assert.equal(await page.evaluate(() => window.tessera.session.state), "active");
  server = await startServer({ accessTtl: ACCESS_TTL_S, dir, port });
  assert.equal(server.port, port, "restarted on the same origin");

  // At least two more refreshes happen against the restarted server, and they succeed.
  const seen = (await eventsOf(page, "refresh")).length;
  await waitForEvent(page, "refresh", seen + 2, 3 * ACCESS_TTL_S * 1000 + 5_000);
  assert.ok(refreshStatuses.includes(200), `a refresh after the restart succeeded: ${refreshStatuses.join(",")}`);
  assert.equal(await page.evaluate(() => window.tessera.session.state), "active");
  assert.equal((await eventsOf(page, "logout")).length, 0, "no logout");
  const me = await page.evaluate(async () => {
    const res = await window.tessera.session.fetch("/api/me");
    return { status: res.status, body: await res.json() };
  });
  assert.equal(me.status, 200);
  assert.equal(me.body.username, "alice");
  await page.click("#logout");
  await page.close();
});
