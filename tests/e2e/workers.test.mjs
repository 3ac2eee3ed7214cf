// `cleanup: { serviceWorkers: true }` in a real Chromium against tessera-server: a service worker
// the app registered is unregistered at logout and reported in `cleared.serviceWorkers`; with
// the logout answer's `Clear-Site-Data: "storage"` (which unregisters it too) it is gone all the
// same and never reported as remaining; without the option the worker stays.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { launchBrowser, resetContext, startServer } from "./harness.mjs";

// `window.run(cleanup)`: registers /sw.js, starts a session with that cleanup, signs in, logs
// out, and answers with the logout event's report and the registrations left after it.
const PAGE = `<!doctype html><meta charset="utf-8"><title>workers</title>
<script type="module">
import init, { Session } from "/pkg/tessera.js";
await init();
window.run = async (cleanup) => {
  const reg = await navigator.serviceWorker.register("/sw.js");
  const scopes = async () => (await navigator.serviceWorker.getRegistrations()).map((r) => r.scope);
  const before = await scopes();
  const s = await Session.start({ channel: "workers", resume: false, cleanup });
  let out = null;
  s.on("logout", (e) => (out = e));
  await s.login({ username: "alice", password: "tessera-demo" });
  await s.logout();
  const left = await scopes();
  s.dispose();
  return { scope: reg.scope, before, cleared: out && out.cleared.serviceWorkers, remaining: out && out.remaining, left };
};
window.ready = true;
</script>`;

function useWorkerEnv(serverArgs) {
  const env = {};
  before(async () => {
    env.www = await mkdtemp(path.join(tmpdir(), "tessera-workers-www-"));
    await writeFile(path.join(env.www, "index.html"), PAGE);
    await writeFile(path.join(env.www, "sw.js"), "self.addEventListener('fetch', () => {});\n");
    env.server = await startServer({ wwwDir: env.www, args: serverArgs });
    env.browser = await launchBrowser();
  });
  afterEach(async () => {
    await resetContext(env.browser.context, env.server.url);
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.close();
    if (env.www) await rm(env.www, { recursive: true, force: true });
  });
  return env;
}

async function run(env, cleanup, { unregisteredFirst = false } = {}) {
  const page = await env.browser.context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(new URL("index.html", env.server.url).href);
  await page.waitForFunction(() => window.ready === true);
  // Someone else (Clear-Site-Data) unregisters it just before the SDK does: the SDK's call
  // then finds nothing to do and resolves false, as Chromium's does in that race.
  if (unregisteredFirst)
    await page.evaluate(() => {
      const real = ServiceWorkerRegistration.prototype.unregister;
      ServiceWorkerRegistration.prototype.unregister = function () {
        return real.call(this).then(() => false);
      };
    });
  const r = await page.evaluate((c) => window.run(c), cleanup);
  // Unregistered now; a new page finds none either.
  const fresh = await page.evaluate(async () => (await navigator.serviceWorker.getRegistrations()).map((x) => x.scope));
  await page.close();
  assert.deepEqual(errors, []);
  assert.deepEqual(r.before, [r.scope], "the app's worker was registered");
  return { ...r, fresh };
}

describe("service workers at logout, Clear-Site-Data off", () => {
  const env = useWorkerEnv(["--clear-site-data", ""]);

  test("without serviceWorkers: true the app's worker stays", async () => {
    const r = await run(env, {});
    assert.deepEqual(r.cleared, [], `reported: ${JSON.stringify(r.cleared)}`);
    assert.deepEqual(r.left, [r.scope], "still registered");
  });

  test("cleanup: { serviceWorkers: true } unregisters it and says so", async () => {
    const r = await run(env, { serviceWorkers: true });
    assert.deepEqual(r.cleared, [r.scope], `cleared.serviceWorkers: ${JSON.stringify(r.cleared)}, remaining: ${JSON.stringify(r.remaining)}`);
    assert.deepEqual(r.remaining, []);
    assert.deepEqual(r.left, [], "none left after logout()");
    assert.deepEqual(r.fresh, []);
  });

  test("a worker someone else unregistered first is cleared, not remaining", async () => {
    const r = await run(env, { serviceWorkers: true }, { unregisteredFirst: true });
    assert.deepEqual(r.cleared, [r.scope], `cleared.serviceWorkers: ${JSON.stringify(r.cleared)}, remaining: ${JSON.stringify(r.remaining)}`);
    assert.deepEqual(r.remaining, []);
    assert.deepEqual(r.left, []);
  });
});

describe("service workers at logout, the server's Clear-Site-Data: \"storage\" (the default)", () => {
  const env = useWorkerEnv([]);

  // The SDK lists what it found and is gone. Its first look at the registrations races the
  // answer's Clear-Site-Data (3 runs in 24 under load found none left to find): the worker
  // is gone either way, and never reported as remaining.
  test("cleanup: { serviceWorkers: true }: gone whoever unregistered it first, never reported remaining", async () => {
    const r = await run(env, { serviceWorkers: true });
    const said = `cleared.serviceWorkers: ${JSON.stringify(r.cleared)}, remaining: ${JSON.stringify(r.remaining)}`;
    assert.ok(r.cleared.length === 0 || (r.cleared.length === 1 && r.cleared[0] === r.scope), said);
    assert.deepEqual(r.remaining, [], said);
    assert.deepEqual(r.left, []);
    assert.deepEqual(r.fresh, []);
  });
});
