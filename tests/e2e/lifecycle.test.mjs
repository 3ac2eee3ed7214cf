// The page lifecycle in real Chromium: Tessera keeps no page out of the
// back/forward cache: its tab lock is released on `pagehide` and taken again on `pageshow`.
// (Trusted input as activity is covered by idle.test.mjs, which moves the real mouse.)
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS, openDemo, signIn, startServer, waitForState } from "./harness.mjs";

// Playwright turns the back/forward cache off by default: this file's browser keeps it on.
const env = {};
before(async () => {
  env.server = await startServer();
  env.dir = await mkdtemp(path.join(tmpdir(), "tessera-bfcache-"));
  env.context = await chromium.launchPersistentContext(env.dir, {
    executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    ignoreDefaultArgs: ["--disable-back-forward-cache"],
  });
});
after(async () => {
  await env.context?.close().catch(() => {});
  await env.server?.close();
  if (env.dir) await rm(env.dir, { recursive: true, force: true });
});

// Not-restored reasons that Tessera's own resources would cause.
const OURS = /WebLocks|BroadcastChannel|IndexedDB|WebSocket|Unload|Keepalive|OutstandingNetworkRequest/i;

test("a signed-in page goes into the back/forward cache and comes back with its tab lock", async () => {
  const page = await openDemo(env.context, env.server.url);
  await signIn(page, "alice");
  const cdp = await env.context.newCDPSession(page);
  await cdp.send("Page.enable");
  const notUsed = [];
  cdp.on("Page.backForwardCacheNotUsed", (e) => notUsed.push(...e.notRestoredExplanations.map((x) => x.reason)));
  await page.evaluate(() => {
    window.__shown = [];
    addEventListener("pageshow", (e) => window.__shown.push(e.persisted));
  });
  await page.goto(new URL("style.css", env.server.url).href);
  await page.goBack({ waitUntil: "commit" });
  await page.waitForFunction(() => document.readyState === "complete" && window.tessera?.session);
  await waitForState(page, "active");
  const restored = await page.evaluate(() => window.__shown?.includes(true) ?? false);
  const ours = notUsed.filter((r) => OURS.test(r));
  assert.deepEqual(ours, [], `no back/forward cache blocker from Tessera (all reasons: ${notUsed.join(", ")})`);
  assert.ok(restored, `restored from the back/forward cache (reasons: ${notUsed.join(", ")})`);
  // Back in the page: the tab lock is held again, the session still works.
  const held = await page.evaluate(async () => (await navigator.locks.query()).held.map((l) => l.name));
  assert.ok(held.some((n) => n.startsWith("tessera:tab:")), `tab lock taken again: ${held}`);
  assert.equal(await page.evaluate(async () => (await window.tessera.session.fetch("/api/me")).status), 200);
  await page.close();
});
