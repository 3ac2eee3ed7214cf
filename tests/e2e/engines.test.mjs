// The multi-tab promises in one browser engine, chosen by TESSERA_E2E_ENGINE:
//   chromium (default; Playwright) · firefox (geckodriver) · webkit (WebKitWebDriver + Xvfb)
// The scenario code is shared (tests/e2e/engines/scenarios.mjs); only the backend differs.
// Scenarios that carry a cross-tab promise run again with Web Locks and/or BroadcastChannel
// removed, so the SDK's fallbacks (bus-only refresh coordination, `storage`-event bus) carry them too; each run
// prints and asserts which path it took.
//
//   node --test tests/e2e/engines.test.mjs                             (Chromium)
//   TESSERA_E2E_ENGINE=firefox node --test tests/e2e/engines.test.mjs
//   TESSERA_E2E_ENGINE=webkit node --test tests/e2e/engines.test.mjs
import { rm } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { startServer } from "./harness.mjs";
import { engineVersion, ENGINES, launchEngine, stopDisplay } from "./engines/drivers.mjs";
import { startFront, testWwwDir } from "./engines/front.mjs";
import { ENGINE_FACTS, HTTP_COOKIE_SCENARIO, SCENARIOS } from "./engines/scenarios.mjs";

const ENGINE = process.env.TESSERA_E2E_ENGINE ?? "chromium";
if (!ENGINES.includes(ENGINE)) throw new Error(`TESSERA_E2E_ENGINE=${ENGINE}: use one of ${ENGINES.join(", ")}`);
// Over HTTPS where the engine drops Secure cookies on http (see ENGINE_FACTS).
const TLS = !ENGINE_FACTS[ENGINE].secureCookieOverHttp;

// One browser and one server per set of server options for the whole file; each scenario
// gets a new front on a new port (so a new origin: fresh Web Storage, IndexedDB and caches),
// no tabs and no cookies.
let wwwDir;
let browser;
const servers = new Map();
before(async () => {
  wwwDir = await testWwwDir();
  console.log(`# engine: ${engineVersion(ENGINE)}; scenarios over ${TLS ? "https" : "http"}`);
  // Outside any one test's time: the first start of a browser on a busy machine is slow.
  browser = await launchEngine(ENGINE, { acceptInsecureCerts: true });
  await serverFor({});
}, { timeout: 180_000 });
after(async () => {
  await browser?.close();
  for (const s of servers.values()) await (await s).close().catch(() => {});
  await stopDisplay();
  if (wwwDir) await rm(wwwDir, { recursive: true, force: true });
});

function serverFor(opts = {}) {
  const key = JSON.stringify(opts);
  if (!servers.has(key)) servers.set(key, startServer({ ...opts, wwwDir }));
  return servers.get(key);
}

// A scenario that node:test timed out keeps running in the background; it must not share a
// browser with the next one (it would close or drive the next scenario's tabs).
let running = false;

async function withEnv({ server: serverOpts = {}, tls = TLS, without = "", t }, fn) {
  if (running) {
    const stale = browser;
    browser = await launchEngine(ENGINE, { acceptInsecureCerts: true });
    await stale.close().catch(() => {});
  }
  const mine = browser;
  running = true;
  const server = await serverFor(serverOpts);
  const front = await startFront(server, { tls });
  try {
    await mine.closeTabs();
    await mine.clearCookies(front.url);
    await fn({ engine: ENGINE, browser: mine, server, front, url: front.url, without, t });
  } catch (err) {
    err.message += `\n-- server log (last lines) --\n${server.logs.slice(-15).join("\n")}`;
    throw err;
  } finally {
    await mine.closeTabs().catch(() => {});
    await front.close().catch(() => {});
    if (mine === browser) running = false;
  }
}

describe(`${ENGINE}: multi-tab scenarios`, () => {
  for (const sc of SCENARIOS) {
    for (const without of ["", ...(sc.fallbacks ?? [])]) {
      const label = without ? `${sc.name} [without ${without}]` : sc.name;
      test(label, { timeout: ENGINE === "webkit" ? 300_000 : 240_000 }, (t) => withEnv({ server: sc.server, without, t }, sc.run));
    }
  }
  test(HTTP_COOKIE_SCENARIO.name, { timeout: ENGINE === "webkit" ? 180_000 : 120_000 }, (t) => withEnv({ tls: false, t }, HTTP_COOKIE_SCENARIO.run));
});
