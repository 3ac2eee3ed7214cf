// The multi-tab promises of the product, written once against the small browser API of
// drivers.mjs, so the same code runs in Chromium (Playwright) and in Firefox and WebKitGTK
// (WebDriver). Each scenario gets `env`:
//   { engine, browser, server, front, url, without, t }
// where `url` is the front's (every browser request goes through it and is recorded in
// `front.requests`), `server` the demo server behind it (for Node-side checks), and
// `without` the primitives removed in this run ("", "locks", "locks,bc": see front.mjs),
// `t` the node:test context.
import assert from "node:assert/strict";
import { BOB_TOTP_SECRET, DEFINITIVE_END_CODES, DEMO_PASSWORD, postAuth, REFRESH_COOKIE, SDK_RECORDS, sleep, totp } from "../harness.mjs";

/**
 * What differs between engines, as found by these scenarios (the README's browser support
 * table says the same). A scenario asserts each of these, so a change in an engine shows up.
 */
export const ENGINE_FACTS = {
  chromium: { secureCookieOverHttp: true },
  firefox: { secureCookieOverHttp: true },
  // WebKit stores no `Secure` cookie set over http, not even on 127.0.0.1: the HttpOnly
  // refresh cookie `__Host-tessera_rt` is dropped, so a cookie-mode session cannot refresh
  // or survive a reload. Its scenarios run behind the HTTPS front.
  webkit: { secureCookieOverHttp: false },
};

// ---- page-side functions (run in the page: self-contained) --------------------------------------

const pageReady = () =>
  window.tessera && (window.tessera.ready || window.tessera.error)
    ? { ready: !!window.tessera.ready, error: window.tessera.error ? String(window.tessera.error) : null }
    : null;
const pageState = () => (window.tessera && window.tessera.session ? String(window.tessera.session.state) : "loading");
const pageEvents = (type) => window.tessera.events.filter((e) => !type || e.type === type).map((e) => JSON.parse(JSON.stringify(e)));
const pageFetchMe = async () => {
  try {
    const res = await window.tessera.session.fetch("/api/me");
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
    return { status: res.status, username: body && body.username };
  } catch (err) {
    return { status: "rejected", error: String(err && (err.code || err.message || err)) };
  }
};

// ---- helpers ----------------------------------------------------------------------------------

/** Opens the demo in a new tab (with the run's `without`) and waits until the SDK started. */
export async function openDemo(env, query = "") {
  const params = new URLSearchParams(query);
  if (env.without) params.set("without", env.without);
  const qs = params.toString();
  const tab = await env.browser.openTab(new URL(`index.html${qs ? `?${qs}` : ""}`, env.url).href);
  await waitReady(tab);
  return tab;
}

// Where a page that never got ready stands: the demo's hook, its performance marks and the
// resources it loaded (so a stall says whether it got as far as importing the SDK).
const pageProbe = () => ({
  hook: window.tessera
    ? { ready: window.tessera.ready, error: window.tessera.error ? String(window.tessera.error) : null, state: window.tessera.session ? String(window.tessera.session.state) : null, events: (window.tessera.events || []).map((e) => e.type) }
    : null,
  marks: performance.getEntriesByType("mark").map((m) => `${m.name}@${Math.round(m.startTime)}`),
  resources: performance.getEntriesByType("resource").map((r) => `${new URL(r.name).pathname}@${Math.round(r.responseEnd)}`),
  storage: Object.keys(localStorage),
  now: Math.round(performance.now()),
});

export async function waitReady(tab) {
  let r;
  try {
    r = await tab.waitFor(pageReady, null, { timeout: 20_000, what: "demo page ready" });
  } catch (err) {
    const probe = await Promise.race([
      tab.eval(pageProbe).then((p) => JSON.stringify(p), (e) => `probe failed: ${e}`),
      new Promise((ok) => setTimeout(() => ok("probe: the page did not answer in 3 s"), 3_000)),
    ]);
    err.message += `\n-- page --\n${probe}`;
    throw err;
  }
  if (r.error) throw new Error(`demo page failed to start: ${r.error}`);
}

export const stateOf = (tab) => tab.eval(pageState);
export const eventsOf = (tab, type) => tab.eval(pageEvents, type ?? null);
export const fetchMe = (tab) => tab.eval(pageFetchMe);

export async function waitForState(tab, state, timeout = 10_000) {
  const wanted = Array.isArray(state) ? state : [state];
  try {
    await tab.waitFor((w) => w.includes(String(window.tessera && window.tessera.session && window.tessera.session.state)), wanted, {
      timeout,
      what: `state ${wanted.join("|")}`,
    });
  } catch (err) {
    const now = await stateOf(tab).catch(() => "unknown");
    const out = await eventsOf(tab, "logout").catch(() => []);
    const why = out.length ? `; logout reason ${out.at(-1).detail?.reason}` : "";
    throw new Error(`${err.message} (is ${now}${why})`);
  }
}

export async function waitForEvent(tab, type, n = 1, timeout = 10_000) {
  await tab.waitFor(([t, k]) => window.tessera.events.filter((e) => e.type === t).length >= k, [type, n], {
    timeout,
    what: `${n} '${type}' event(s)`,
  });
  return (await eventsOf(tab, type))[n - 1];
}

/** Signs in through the page's form (real typing and clicks); bob answers the TOTP step. */
export async function signIn(tab, username = "alice") {
  await tab.waitFor(() => {
    const el = document.getElementById("login-panel");
    return !!el && !el.hidden && el.offsetParent !== null;
  }, null, { what: "the sign-in form" });
  await tab.fill("#username", username);
  await tab.fill("#password", DEMO_PASSWORD);
  await tab.click("#login-submit");
  if (username === "bob") {
    await waitForState(tab, "mfa-required");
    await tab.fill("#mfa-code", await totp(BOB_TOTP_SECRET));
    await tab.click("#mfa-submit");
  }
  await waitForState(tab, "active");
}

/** Web Storage keys left in the tab, apart from the SDK's coordination records. */
export function storageLeft(tab) {
  return tab.eval(
    (ps) => ({
      local: Object.keys(localStorage).filter((k) => !ps.some((p) => k.startsWith(p))),
      session: Object.keys(sessionStorage).filter((k) => !ps.some((p) => k.startsWith(p))),
    }),
    SDK_RECORDS,
  );
}

/** Cookies the browser would send to `pathname` on the front's origin (HttpOnly included). */
export async function cookiesAt(env, pathname) {
  const tab = await env.browser.openTab(new URL(pathname, env.url).href);
  try {
    return await env.browser.cookies(tab);
  } finally {
    await tab.close();
  }
}

/**
 * Which cross-tab paths the SDK took in these tabs, from the shim's counters, checked against
 * what this run removed: Web Locks or the bus-only fallback for refresh coordination, and
 * BroadcastChannel or `storage` events for the bus. Returns a one-line description.
 */
export async function assertPaths(env, tabs, { expectBus = true } = {}) {
  const probes = [];
  for (const t of tabs) probes.push(await t.eval(() => window.tesseraTestPrimitives ?? null));
  assert.ok(probes.every(Boolean), "the primitives shim ran in every tab (tests/e2e/engines/front.mjs)");
  const noLocks = env.without.includes("locks");
  const noBc = env.without.includes("bc");
  for (const p of probes) {
    assert.equal(p.available.locks, !noLocks, `Web Locks ${noLocks ? "removed" : "available"} in ${env.engine}`);
    assert.equal(p.available.broadcastChannel, !noBc, `BroadcastChannel ${noBc ? "removed" : "available"} in ${env.engine}`);
  }
  const sum = (table) => Object.values(table).reduce((a, b) => a + b, 0);
  const lockUses = probes.reduce((n, p) => n + sum(p.used.locks), 0);
  const channelPosts = probes.reduce((n, p) => n + sum(p.used.channels), 0);
  const storageBusWrites = probes.reduce((n, p) => n + sum(p.used.storageBus), 0);
  if (noLocks) assert.equal(lockUses, 0);
  else assert.ok(lockUses > 0, "the SDK took Web Locks");
  if (expectBus) {
    if (noBc) {
      assert.equal(channelPosts, 0);
      assert.ok(storageBusWrites > 0, "the SDK carried the bus over `storage` events");
    } else {
      assert.ok(channelPosts > 0, "the SDK posted on its BroadcastChannel");
      assert.equal(storageBusWrites, 0, "no bus message went through Web Storage while BroadcastChannel works");
    }
  }
  const line =
    `${env.engine}${env.without ? ` without ${env.without}` : ""}: ` +
    `coordination ${noLocks ? "bus only (no Web Locks)" : `Web Locks (${lockUses} requests)`}, ` +
    `bus ${noBc ? `storage events (${storageBusWrites} writes)` : `BroadcastChannel (${channelPosts} posts)`}`;
  console.log(`# path: ${line}`);
  return line;
}

/** Polls an async Node-side check until it returns something truthy. */
async function until(check, { timeout = 10_000, what = "condition" } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not reached in ${timeout} ms`);
    await sleep(100);
  }
}

async function closeAll(tabs) {
  for (const t of tabs) await t.close().catch(() => {});
}

// ---- the scenarios -----------------------------------------------------------------------------

/** @type {Array<{name: string, server?: object, fallbacks?: string[], run: (env: any) => Promise<void>}>} */
export const SCENARIOS = [
  {
    name: "login in one tab reaches the others",
    fallbacks: ["locks,bc"],
    async run(env) {
      const tabs = [await openDemo(env), await openDemo(env), await openDemo(env)];
      const [a, ...others] = tabs;
      for (const t of others) await waitForState(t, "anonymous");
      await signIn(a, "alice");
      // Without BroadcastChannel no token travels between tabs: each other tab resumes from
      // the cookie itself, and one that resumes alongside another waits for the other's claim
      // to run out (the request timeout, 5 s) before it refreshes (README, Known limits).
      const join = env.without.includes("bc") ? 12_000 : 5_000;
      for (const [i, t] of others.entries()) {
        await waitForState(t, "active", join);
        assert.ok(await waitForEvent(t, "login"), `tab ${i + 1} fired login`);
        assert.deepEqual(await fetchMe(t), { status: 200, username: "alice" }, `tab ${i + 1} calls the API on its own`);
      }
      assert.equal(env.front.count("POST", "/auth/login"), 1, "one login request");
      await assertPaths(env, tabs);
      await a.click("#logout");
      for (const t of others) await waitForState(t, "logged-out");
      await closeAll(tabs);
    },
  },
  {
    name: "one refresh per expiry with several tabs",
    server: { accessTtl: 4 },
    fallbacks: ["locks,bc"],
    async run(env) {
      const TABS = 4;
      const CYCLES = 3;
      const LEAD_MS = 1_500;
      const period = 4_000 - LEAD_MS;
      const query = `lead=${LEAD_MS}&jitter=0&idle=600000&warn=10000`;
      const tabs = [];
      for (let i = 0; i < TABS; i++) tabs.push(await openDemo(env, query));
      // Each tab's start-up resume attempt (a 401 without a cookie) comes before this.
      const since = Date.now();
      await signIn(tabs[0], "alice");
      // Without BroadcastChannel each other tab resumes from the cookie itself and may first
      // wait for another's refresh claim to run out (README, Known limits): 12 s, as in the
      // login scenario (10 s, the default, was missed under load).
      const join = env.without.includes("bc") ? 12_000 : 10_000;
      for (const t of tabs) await waitForState(t, "active", join);
      const start = Date.now();
      const refreshes = () => env.front.requests.filter((r) => r.method === "POST" && r.path === "/auth/refresh" && r.at >= since);
      const deadline = start + (CYCLES + 2) * period + 5_000;
      while (refreshes().length < CYCLES && Date.now() < deadline) await sleep(200);
      // Into the middle of the next period, so no refresh is in flight at the count.
      const lastAt = refreshes().at(-1)?.at ?? Date.now();
      await sleep(Math.max(0, lastAt + period / 2 - Date.now()));
      const seen = refreshes();
      const elapsed = Date.now() - start;
      assert.ok(seen.length >= CYCLES, `saw ${seen.length} refreshes in ${elapsed} ms, want >= ${CYCLES}`);
      const gaps = seen.slice(1).map((r, i) => r.at - seen[i].at);
      // Requests less than half a period apart answer the same expiry.
      const bursts = [1];
      for (const gap of gaps) gap > period / 2 ? bursts.push(1) : (bursts[bursts.length - 1] += 1);
      if (env.without.includes("locks")) {
        // Bus-only coordination (no Web Locks) lets a second tab refresh for the same expiry
        // now and then; the server answers it from its grace window with the same successor,
        // so no tab loses the session. Tracked as a TODO (README, browser support), asserted
        // as no worse than that: never more than two requests for one expiry, all answered.
        // Without BroadcastChannel too, each tab renews its own token: at most one request
        // per tab for one expiry.
        const doubled = bursts.filter((n) => n > 1).length;
        const most = env.without.includes("bc") ? TABS : 2;
        assert.ok(bursts.every((n) => n <= most), `requests per expiry: ${bursts.join(", ")}`);
        // Reported, not marked TODO: a TODO test's failing assertions would not count.
        if (doubled) env.t.diagnostic(`bus-only coordination: ${doubled} of ${bursts.length} expiries refreshed twice`);
      } else {
        for (const [i, gap] of gaps.entries()) {
          assert.ok(gap > period / 2, `refresh ${i + 1} came ${gap} ms after the previous one (two tabs refreshed for one expiry)`);
        }
      }
      assert.deepEqual(seen.map((r) => r.status).filter((s) => s !== 200), [], "every refresh succeeded");
      // Without BroadcastChannel no token travels between tabs (the storage fallback carries
      // a bare nudge, never a token): each tab renews its own token from the cookie when it
      // nears its own expiry (README, Known limits), so within this window a tab sees its own
      // refreshes, if any, not every one; it must stay active with a token the API accepts.
      const noBus = env.without.includes("bc");
      for (const [i, t] of tabs.entries()) {
        const got = (await eventsOf(t, "refresh")).length;
        if (!noBus) assert.ok(got >= seen.length - 1, `tab ${i} saw ${got} of ${seen.length} refresh events`);
        assert.equal(await stateOf(t), "active", `tab ${i} active`);
        assert.equal((await fetchMe(t)).status, 200, `tab ${i} calls the API with the current token`);
      }
      console.log(`# ${env.engine}: ${TABS} tabs, ${seen.length} POST /auth/refresh in ${elapsed} ms, gaps ${gaps.join(", ")} ms`);
      await assertPaths(env, tabs);
      await tabs[0].click("#logout");
      await closeAll(tabs);
    },
  },
  {
    name: "logout in one tab logs out and wipes every tab",
    fallbacks: ["locks,bc"],
    async run(env) {
      const a = await openDemo(env, "storage=local");
      const b = await openDemo(env, "storage=local");
      await signIn(a, "alice");
      await waitForState(b, "active");
      const rt = (await env.browser.cookies(a)).find((c) => c.name === REFRESH_COOKIE);
      assert.ok(rt, `refresh cookie ${REFRESH_COOKIE} is in the jar`);
      assert.equal(rt.httpOnly, true, "refresh cookie is HttpOnly");
      assert.equal(rt.secure, true, "refresh cookie is Secure");
      assert.equal(await a.eval(() => document.cookie.includes("tessera_rt")), false, "the page cannot read it");
      const stored = await b.eval(() => localStorage.length + sessionStorage.length);
      assert.ok(stored > 0, "tab B persisted a sealed record");

      await a.click("#logout");
      await waitForState(b, "logged-out", 5_000);
      const out = await waitForEvent(b, "logout");
      assert.ok(out, "tab B fired logout");
      assert.deepEqual(await storageLeft(b), { local: [], session: [] }, "tab B's Web Storage is wiped");
      assert.notEqual((await fetchMe(b)).status, 200, "no bearer call succeeds in tab B");
      assert.equal((await env.browser.cookies(b)).find((c) => c.name === REFRESH_COOKIE), undefined, "refresh cookie gone");
      assert.equal(env.front.count("POST", "/auth/logout"), 1, "one logout request");
      await until(() => b.eval(() => !Object.keys(localStorage).some((k) => k.startsWith("tessera:revoke:"))), {
        timeout: 5_000,
        what: "nothing owed once the server answered the logout",
      });
      const replay = await postAuth(env.server, "/auth/refresh", { cookie: `${REFRESH_COOKIE}=${rt.value}` });
      assert.equal(replay.status, 401, `old refresh token refused: ${replay.text}`);
      assert.ok(DEFINITIVE_END_CODES.includes(replay.json?.code), `definitive code, got ${replay.json?.code}`);
      await assertPaths(env, [a, b]);
      await b.reload();
      await waitReady(b);
      assert.ok(["anonymous", "logged-out"].includes(await stateOf(b)), "a reload stays signed out");
      // How long `Session.start()` took in the reloaded, signed-out tab (the other tab is open
      // and logged out): a number to watch, not a timed assertion.
      const startMs = await b.eval(() => {
        const m = Object.fromEntries(performance.getEntriesByType("mark").map((x) => [x.name, x.startTime]));
        return Math.round(m["tessera:started"] - m["tessera:initialised"]);
      });
      console.log(`# ${env.engine}${env.without ? ` without ${env.without}` : ""}: start() after the reload took ${startMs} ms`);
      await closeAll([a, b]);
    },
  },
  {
    name: "activity in one tab keeps the others alive; idleness logs all out",
    async run(env) {
      const IDLE_MS = 8_000;
      const WARN_MS = 3_000;
      const query = `idle=${IDLE_MS}&warn=${WARN_MS}&lead=5000`;
      const tabs = [await openDemo(env, query), await openDemo(env, query), await openDemo(env, query)];
      await signIn(tabs[0], "alice");
      // Trusted input (pointer moves, key presses) in tab 0 only, for two idle timeouts, from
      // right after the sign-in (which was activity too).
      const busyUntil = Date.now() + IDLE_MS * 2;
      let step = 0;
      while (Date.now() < busyUntil) {
        step += 1;
        await tabs[0].activity(step);
        await sleep(400);
      }
      // When the page saw the last input (the demo notes it), not when the driver returned.
      const lastActivity = await tabs[0].eval(() => window.tessera.lastInput);
      assert.ok(lastActivity > 0, "the page saw the driver's input");
      for (const [i, t] of tabs.entries()) {
        assert.equal(await stateOf(t), "active", `tab ${i} still active after ${IDLE_MS * 2} ms of activity in tab 0`);
        assert.equal((await eventsOf(t, "idle-warning")).length, 0, `tab ${i} never warned`);
        assert.equal((await eventsOf(t, "logout")).length, 0, `tab ${i} not logged out`);
      }
      // Then nothing: every tab warns, then logs out with reason idle, never before its time
      // counted from the last input (the SDK reports each sample window's last input when the
      // window ends; 100 ms for rounding between the page's clocks).
      const slack = 100;
      for (const [i, t] of tabs.entries()) {
        const w = await waitForEvent(t, "idle-warning", 1, IDLE_MS + 10_000);
        assert.ok(w.at - lastActivity >= IDLE_MS - WARN_MS - slack, `tab ${i} warned ${w.at - lastActivity} ms after the last activity`);
      }
      for (const [i, t] of tabs.entries()) {
        const out = await waitForEvent(t, "logout", 1, WARN_MS + 10_000);
        assert.match(String(out.detail?.reason), /idle/, `tab ${i} logout reason`);
        assert.ok(out.at - lastActivity >= IDLE_MS - slack, `tab ${i} logged out ${out.at - lastActivity} ms after the last activity`);
        await waitForState(t, "logged-out");
      }
      await assertPaths(env, tabs);
      await closeAll(tabs);
    },
  },
  {
    name: "cleanup removes what the demo's 'plant site data' writes",
    // The server's default Clear-Site-Data is "storage" ("cookies" clears the whole
    // registrable domain); like tests/e2e/cleanup.test.mjs, this deployment opts into both.
    server: { args: ["--clear-site-data", "cookies, storage"] },
    async run(env) {
      const a = await openDemo(env);
      const b = await openDemo(env);
      await signIn(a, "alice");
      await waitForState(b, "active");
      const planted = await a.eval(() => window.tesseraDemo.plant());
      await b.eval(() => sessionStorage.setItem("demo:b-draft", "tab B's own data"));
      await a.eval(() => {
        document.cookie = "app_pref=compact; path=/; SameSite=Lax";
        document.cookie = "app_page=2; path=/index.html; SameSite=Lax";
      });
      // One the page cannot see (Path=/pkg) and one it cannot touch (HttpOnly): only the
      // server's Clear-Site-Data answer to the logout removes these.
      await env.browser.addCookie(a, { name: "app_hidden", value: "1", path: "/pkg" });
      await env.browser.addCookie(a, { name: "app_httponly", value: "1", path: "/", httpOnly: true });
      const ours = (list) => list.map((c) => c.name).filter((n) => /^(demo_|app_)/.test(n) || n === REFRESH_COOKIE).sort();
      assert.ok(ours(await cookiesAt(env, "pkg/tessera.js")).includes("app_hidden"), "cookie planted on /pkg");
      assert.ok(ours(await env.browser.cookies(a)).includes("app_httponly"), "HttpOnly cookie planted");
      assert.ok(planted.cookies.length > 0, "the demo planted cookies");
      assert.ok(planted.indexedDb.includes("tessera-demo"), `IndexedDB database planted: ${planted.indexedDb}`);
      assert.ok(planted.caches.includes("tessera-demo"), `Cache Storage entry planted: ${planted.caches}`);
      assert.ok(planted.localStorage.length > 0 && planted.sessionStorage.length > 0, "Web Storage planted");

      await a.click("#logout");
      await waitForState(a, "logged-out");
      await waitForState(b, "logged-out");
      // Cookie deletion by Clear-Site-Data and IndexedDB deletion finish asynchronously.
      for (const where of ["index.html", "pkg/tessera.js"]) {
        assert.deepEqual(ours(await cookiesAt(env, where)), [], `cookies left for /${where}`);
      }
      for (const [name, t] of [["A", a], ["B", b]]) {
        const inv = await until(
          async () => {
            const i = await t.eval(() => window.tesseraDemo.inventory());
            return i.indexedDb.includes("tessera-demo") || i.caches.includes("tessera-demo") ? null : i;
          },
          { timeout: 5_000, what: `tab ${name}: IndexedDB database and cache deleted` },
        );
        assert.deepEqual(inv.cookies, [], `tab ${name}: document.cookie is empty`);
        assert.deepEqual(await storageLeft(t), { local: [], session: [] }, `tab ${name}: Web Storage is empty`);
      }
      const out = await waitForEvent(a, "logout");
      assert.ok(out.detail?.cleared, "the logout event reports what was cleared");
      await assertPaths(env, [a, b]);
      await closeAll([a, b]);
    },
  },
  {
    name: "reload resumes the session",
    async run(env) {
      const a = await openDemo(env);
      const b = await openDemo(env);
      await signIn(a, "alice");
      await waitForState(b, "active");
      // With another tab alive, then alone (from the HttpOnly cookie only: storage is memory).
      await b.reload();
      await waitReady(b);
      await waitForState(b, "active");
      assert.equal((await fetchMe(b)).status, 200, "tab B resumed with another tab open");
      await a.close();
      await b.reload();
      await waitReady(b);
      await waitForState(b, "active");
      assert.deepEqual(await fetchMe(b), { status: 200, username: "alice" }, "tab B resumed alone, from the cookie");
      assert.equal((await eventsOf(b, "logout")).length, 0);
      await b.click("#logout");
      await waitForState(b, "logged-out");
      await b.close();
    },
  },
];

/**
 * The documented difference, asserted: over plain http on loopback the refresh cookie
 * (`Secure`, `__Host-`) is kept by Chromium and Firefox and dropped by WebKit, so in WebKit
 * the session lives only as long as the page (a reload signs out). Always runs over http.
 */
export const HTTP_COOKIE_SCENARIO = {
  name: "over plain http on loopback: the Secure refresh cookie (documented per engine)",
  async run(env) {
    assert.equal(env.front.tls, false);
    const kept = ENGINE_FACTS[env.engine].secureCookieOverHttp;
    const a = await openDemo(env);
    await signIn(a, "alice");
    const rt = (await env.browser.cookies(a)).find((c) => c.name === REFRESH_COOKIE);
    assert.equal(!!rt, kept, `${env.engine} ${kept ? "keeps" : "drops"} a Secure cookie set over http`);
    await a.reload();
    await waitReady(a);
    await waitForState(a, kept ? "active" : ["anonymous", "logged-out"]);
    console.log(`# ${env.engine} over http: refresh cookie ${rt ? "kept" : "dropped"}; after reload ${await stateOf(a)}`);
    await a.close();
  },
};
