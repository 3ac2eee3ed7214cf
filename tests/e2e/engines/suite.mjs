// The multi-tab promises in one browser engine, chosen by TESSERA_E2E_ENGINE:
//   chromium (default; Playwright) · firefox (geckodriver) · webkit (WebKitWebDriver + Xvfb)
// The scenario code is shared (scenarios.mjs); only the backend differs. Scenarios that carry
// a cross-tab promise run again with Web Locks and/or BroadcastChannel removed, so the SDK's
// fallbacks (bus-only refresh coordination, `storage`-event bus) carry them too; each run
// prints and asserts which path it took.
//
// Most of a scenario's time is waiting on the SDK's own timers (token expiry, idle timeout),
// so the scenarios are split over three test files, tests/e2e/engines-{1,2,3}.test.mjs, that
// node --test runs side by side, each with its own browser and servers. SHARDS says which
// scenario runs where; a scenario missing from it (or listed twice) fails every file at load.
//
//   node --test tests/e2e/engines-*.test.mjs                             (Chromium)
//   TESSERA_E2E_ENGINE=firefox node --test tests/e2e/engines-*.test.mjs
//   TESSERA_E2E_ENGINE=webkit node --test tests/e2e/engines-*.test.mjs
import { rm } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { startServer } from "../harness.mjs";
import { engineVersion, ENGINES, launchEngine, stopDisplay } from "./drivers.mjs";
import { startFront, testWwwDir } from "./front.mjs";
import { ENGINE_FACTS, HTTP_COOKIE_SCENARIO, SCENARIOS } from "./scenarios.mjs";

const ENGINE = process.env.TESSERA_E2E_ENGINE ?? "chromium";
if (!ENGINES.includes(ENGINE)) throw new Error(`TESSERA_E2E_ENGINE=${ENGINE}: use one of ${ENGINES.join(", ")}`);
// Over HTTPS where the engine drops Secure cookies on http (see ENGINE_FACTS).
const TLS = !ENGINE_FACTS[ENGINE].secureCookieOverHttp;

/** Every run of the engine suite: a scenario, and again once per fallback it lists. */
const RUNS = [
  ...SCENARIOS.flatMap((sc) =>
    ["", ...(sc.fallbacks ?? [])].map((without) => ({
      label: without ? `${sc.name} [without ${without}]` : sc.name,
      server: sc.server,
      without,
      run: sc.run,
      timeout: ENGINE === "webkit" ? 300_000 : 240_000,
    })),
  ),
  { label: HTTP_COOKIE_SCENARIO.name, tls: false, run: HTTP_COOKIE_SCENARIO.run, timeout: ENGINE === "webkit" ? 180_000 : 120_000 },
];

/** Which file runs which scenario, balanced by their time (the long waits apart). */
export const SHARDS = {
  1: [
    "one refresh per expiry with several tabs",
    "one refresh per expiry with several tabs [without locks,bc]",
    "reload resumes the session",
    HTTP_COOKIE_SCENARIO.name,
  ],
  2: [
    "activity in one tab keeps the others alive; idleness logs all out",
    "login in one tab reaches the others",
    "login in one tab reaches the others [without locks,bc]",
  ],
  3: [
    "logout in one tab logs out and wipes every tab",
    "logout in one tab logs out and wipes every tab [without locks,bc]",
    "cleanup removes what the demo's 'plant site data' writes",
  ],
};

{
  const assigned = Object.values(SHARDS).flat();
  const labels = RUNS.map((r) => r.label);
  const missing = labels.filter((l) => !assigned.includes(l));
  const unknown = assigned.filter((l) => !labels.includes(l));
  const twice = assigned.filter((l, i) => assigned.indexOf(l) !== i);
  if (missing.length || unknown.length || twice.length) {
    throw new Error(
      `tests/e2e/engines/suite.mjs SHARDS must list every scenario run once: ` +
        `missing ${JSON.stringify(missing)}, unknown ${JSON.stringify(unknown)}, twice ${JSON.stringify(twice)}`,
    );
  }
}

/** Registers the node:test suite of shard `n` (a key of SHARDS) in the calling test file. */
export function engineSuite(n) {
  const runs = SHARDS[n].map((label) => RUNS.find((r) => r.label === label));

  // One browser and one server per set of server options for the whole file; each scenario
  // gets a new front on a new port (so a new origin: fresh Web Storage, IndexedDB and caches),
  // no tabs and no cookies.
  let wwwDir;
  let browser;
  const servers = new Map();
  before(async () => {
    wwwDir = await testWwwDir();
    console.log(`# engine: ${engineVersion(ENGINE)}; scenarios over ${TLS ? "https" : "http"} (part ${n} of ${Object.keys(SHARDS).length})`);
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
      const t0 = front.requests[0]?.at ?? 0;
      const seen = front.requests.slice(-15).map((r) => `+${r.at - t0} ms ${r.method} ${r.path} ${r.status || "(no answer yet)"}${r.error ? ` ${r.error}` : ""}`);
      err.message += `\n-- front: last requests (of ${front.requests.length}) --\n${seen.join("\n")}`;
      throw err;
    } finally {
      await mine.closeTabs().catch(() => {});
      await front.close().catch(() => {});
      if (mine === browser) running = false;
    }
  }

  describe(`${ENGINE}: multi-tab scenarios (part ${n})`, () => {
    for (const r of runs) {
      test(r.label, { timeout: r.timeout }, (t) => withEnv({ server: r.server, tls: r.tls ?? TLS, without: r.without ?? "", t }, r.run));
    }
  });
}
