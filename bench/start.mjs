#!/usr/bin/env node
// Start-up benchmark: time from `import` of the SDK to a restored session in a fresh tab
// (a signed-in user opens the app again: import + init (wasm compile) + Session.start, which
// restores the session from the HttpOnly refresh cookie), against the time to merely import
// oidc-client-ts (ESM build, unminified, as a bundler would get it) measured in the same run,
// same browser, same server. Prints numbers; asserts nothing.
//
//   node bench/start.mjs [--runs 15] [--compare DIR[,DIR...]] [--only-minimal] [--profile N]
//
// --profile N: then N more fresh tabs of each minimal page under the V8 CPU profiler (CDP
// `Profiler`, 50 µs sampling; it slows the page, so these times are not the ones above): the
// CPU inside `Session.start()`'s synchronous call (samples with the glue's `start` on the
// stack) per start, and the functions with the most self time in it.
//
// --compare DIR,...: other built packages (e.g. main's pkg/) are served at /pkg-b/, /pkg-c/, ...
// (TESSERA_PKG_DIR's at /pkg-a/, served alike) and their minimal pages run in the same runs, in
// a rotating order: an A/B of builds on the same browser, server and load. --only-minimal: only the minimal page(s) and the
// oidc-client-ts import (no demo page, no preload variants): quicker A/B runs.
//
// Also measured in the same runs: a minimal app page (import, init(), Session.start() with
// default options, nothing else: no demo UI rendered between the steps), and where its time
// goes, from the page's own clock: the module and Wasm downloads (Resource Timing), the Wasm
// compile + instantiate, the Web Locks query and tab lock, and the resume's POST
// /auth/refresh (wrapped in the page by an init script that only records times). And both
// pages again with preload hints in <head> (what an app can do), each against the other.

// Both are served by the real tessera-server from one temp www dir (a copy of www/ plus the
// oidc-client-ts module and its one dependency), so both go over the same loopback HTTP.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ROOT, launchBrowser, openDemo, requirePkg, signIn, startServer } from "../tests/e2e/harness.mjs";

const i = process.argv.indexOf("--runs");
const RUNS = i > 0 ? Number(process.argv[i + 1]) : 15;
const ci = process.argv.indexOf("--compare");
const COMPARE = ci > 0 ? process.argv[ci + 1].split(",").map((d) => path.resolve(d)) : [];
const ONLY_MINIMAL = process.argv.includes("--only-minimal");
const pi = process.argv.indexOf("--profile");
const PROFILE = pi > 0 ? Number(process.argv[pi + 1]) : 0;

const OIDC_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>oidc import</title>
<script type="importmap">{"imports":{"jwt-decode":"/vendor/jwt-decode.js"}}</script></head><body>
<script type="module">
const t0 = performance.now();
const oidc = await import("/vendor/oidc-client-ts.js");
const t1 = performance.now();
// What an app does next on start-up: build the manager and read the stored user.
const mgr = new oidc.UserManager({ authority: location.origin, client_id: "bench", redirect_uri: location.href });
const user = await mgr.getUser();
const t2 = performance.now();
window.result = { importMs: t1 - t0, getUserMs: t2 - t0, user: user ? "yes" : "none", nav: t1 };
</script></body></html>`;

const MIN_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tessera start</title></head><body>
<script type="module">
const t0 = performance.now();
const m = await import("/pkg-a/tessera.js");
const t1 = performance.now();
await m.default();
const t2 = performance.now();
const p = m.Session.start({ baseUrl: "/auth" });
const sync = performance.now() - t2; // the call's synchronous part: constructor + init up to its first await
const s = await p;
const t3 = performance.now();
await new Promise((ok) => setTimeout(ok, 0));
window.result = { t0, imported: t1 - t0, initialised: t2 - t0, sync, started: t3 - t0, state: s.state, task: performance.now() - t0, nav: t3 };
</script></body></html>`;

const PRELOAD_TESSERA =
  '<link rel="modulepreload" href="/pkg-a/tessera.js"><link rel="preload" href="/pkg-a/tessera_bg.wasm" as="fetch" type="application/wasm" crossorigin>';
const PRELOAD_OIDC = '<link rel="modulepreload" href="/vendor/oidc-client-ts.js"><link rel="modulepreload" href="/vendor/jwt-decode.js">';

// Records (first) times of what the SDK waits on while starting; changes nothing else.
function probe() {
  const at = (window.__t = {});
  const mark = (k) => { if (!(k in at)) at[k] = performance.now(); };
  const L = navigator.locks;
  if (L) {
    const query = L.query.bind(L);
    // Numbered: the package may make a first (warm-up) query of its own before the driver's.
    let queries = 0;
    L.query = (...a) => {
      const n = ++queries;
      mark(`locks.query ${n} sent`);
      return query(...a).then((r) => (mark(`locks.query ${n} answered`), r));
    };
    const request = L.request.bind(L);
    L.request = (name, o, cb) => {
      const f = typeof o === "function" ? o : cb;
      const kind = String(name).split(":")[1];
      mark(`lock ${kind} requested`);
      const g = (l) => (mark(`lock ${kind} granted`), f(l));
      return typeof o === "function" ? request(name, g) : request(name, o, g);
    };
  }
  const fetch0 = window.fetch;
  window.fetch = function (input, init) {
    const path = new URL(input instanceof Request ? input.url : String(input), location.href).pathname;
    mark(`fetch ${path} called`);
    return fetch0.call(this, input, init).then((r) => (mark(`fetch ${path} resolved`), r));
  };
  const text0 = Response.prototype.text;
  Response.prototype.text = function () {
    const path = new URL(this.url, location.href).pathname;
    mark(`body of ${path} read`);
    return text0.call(this).then((t) => (mark(`body of ${path} in`), t));
  };
  const set0 = Storage.prototype.getItem;
  Storage.prototype.getItem = function (k) {
    mark("first Web Storage read");
    const v = set0.call(this, k);
    mark("first Web Storage read done");
    return v;
  };
  for (const k of ["instantiateStreaming", "instantiate"]) {
    const f = WebAssembly[k];
    WebAssembly[k] = function (...a) {
      mark(`WebAssembly.${k} called`);
      return f.apply(this, a).then((r) => (mark(`WebAssembly.${k} done`), r));
    };
  }
}

function stats(values) {
  const s = [...values].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  return { p50: q(0.5), p90: q(0.9), min: s[0], max: s.at(-1) };
}
const show = (label, v) => {
  const s = stats(v);
  console.log(`  ${label.padEnd(48)} p50 ${s.p50.toFixed(1).padStart(6)} ms  p90 ${s.p90.toFixed(1).padStart(6)} ms  min ${s.min.toFixed(1)}  max ${s.max.toFixed(1)}`);
  return s;
};

async function main() {
  const www = mkdtempSync(path.join(tmpdir(), "tessera-bench-www-"));
  cpSync(path.join(ROOT, "www"), www, { recursive: true });
  mkdirSync(path.join(www, "vendor"));
  cpSync(path.join(ROOT, "node_modules/oidc-client-ts/dist/esm/oidc-client-ts.js"), path.join(www, "vendor/oidc-client-ts.js"));
  cpSync(path.join(ROOT, "node_modules/jwt-decode/build/esm/index.js"), path.join(www, "vendor/jwt-decode.js"));
  writeFileSync(path.join(www, "oidc.html"), OIDC_PAGE);
  writeFileSync(path.join(www, "start.html"), MIN_PAGE);
  // Every build the minimal pages import (TESSERA_PKG_DIR's too, at /pkg-a/) is a copy in the
  // www dir, served alike. The server sends no Cache-Control, so the browser's heuristic
  // freshness follows Last-Modified: a copy made now is revalidated on every load, an older
  // file is not. (Until 2026-12-03 the first build was served from its own dir, whose old
  // mtime let it come from the cache while the --compare copies were revalidated: a bias
  // against them, and the oidc-client-ts files were revalidated too.) All files get one
  // mtime, a day back: each page loads every file alike, from the cache after the warm-up run.
  cpSync(requirePkg(), path.join(www, "pkg-a"), { recursive: true });
  const letters = "bcdefgh";
  COMPARE.forEach((dir, n) => {
    cpSync(dir, path.join(www, `pkg-${letters[n]}`), { recursive: true });
    writeFileSync(path.join(www, `start-${letters[n]}.html`), MIN_PAGE.replace('"/pkg-a/tessera.js"', `"/pkg-${letters[n]}/tessera.js"`));
  });
  // The same two pages with preload hints in <head>, as an app can add them: the module (and
  // the Wasm) start downloading while the page is parsed, not one after the other.
  const head = (links) => (page) => page.replace("</head>", links + "</head>");
  writeFileSync(path.join(www, "start-preload.html"), head(PRELOAD_TESSERA)(MIN_PAGE));
  writeFileSync(path.join(www, "oidc-preload.html"), head(PRELOAD_OIDC)(OIDC_PAGE));
  const day = Date.now() / 1000 - 86400;
  const touch = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) touch(f);
      utimesSync(f, day, day);
    }
  };
  touch(www);

  const server = await startServer({ wwwDir: www });
  const browser = await launchBrowser();
  const ctx = browser.context;
  try {
    // Sign in once; every later fresh tab restores this session.
    const first = await openDemo(ctx, server.url);
    await signIn(first, "alice");
    await first.close();

    const tessera = { imported: [], initialised: [], started: [], restored: 0, refreshMs: [], startedNoJoin: [], restoredNoJoin: 0 };
    ctx.on("requestfinished", (req) => {
      if (new URL(req.url()).pathname === "/auth/refresh") {
        const t = req.timing();
        if (t.responseEnd > 0) tessera.refreshMs.push(t.responseEnd - Math.max(0, t.requestStart));
      }
    });
    const oidc = { importMs: [], getUserMs: [] };
    const minimal = { imported: [], initialised: [], sync: [], started: [], restored: 0, phases: {} };
    const others = COMPARE.map(() => ({ imported: [], initialised: [], sync: [], started: [], restored: 0, phases: {} }));
    // From navigation start (performance.now() at the end): preloads begin before the page's
    // script runs, so the times from its `import` would hide them.
    const preloaded = { started: [], restored: 0, oidc: [], plain: [], plainOidc: [] };
    await ctx.addInitScript(probe);
    const files = ["start.html", ...COMPARE.map((_, n) => `start-${letters[n]}.html`)];
    for (let run = 0; run < RUNS + 1; run++) {
      // Alternate so neither side always runs on a warmer browser.
      const readMarks = async (query) => {
        const page = await openDemo(ctx, server.url, query);
        const m = await page.evaluate(() => ({
          ...Object.fromEntries(performance.getEntriesByType("mark").map((e) => [e.name, e.startTime])),
          state: window.tessera.startedState,
        }));
        await page.close();
        return m;
      };
      const marks = ONLY_MINIMAL ? null : await readMarks("");
      // The same with joinWaitMs=0: no wait for another tab's token before the cookie refresh.
      const noJoin = ONLY_MINIMAL ? null : await readMarks("?join=0");
      const minimalPage = async (file) => {
      const mp = await ctx.newPage();
      await mp.goto(new URL(file, server.url).href);
      await mp.waitForFunction(() => window.result, null, { timeout: 60_000 });
      const mr = await mp.evaluate(() => {
        const r = window.result;
        const at = Object.entries(window.__t).map(([k, v]) => [k, v - r.t0]);
        at.push(["Session.start() resolved", r.started], ["the next task ran", r.task]);
        for (const e of performance.getEntriesByType("resource")) {
          const name = new URL(e.name).pathname.split("/").pop();
          if (["tessera.js", "tessera_bg.wasm", "refresh"].includes(name)) {
            at.push([`${name}: request sent (Resource Timing)`, e.requestStart - r.t0]);
            at.push([`${name}: response end (Resource Timing)`, e.responseEnd - r.t0]);
          }
        }
        return { ...r, at };
      });
      await mp.close();
      return mr;
      };
      // With --compare, rotate which build goes first.
      const got = {};
      for (let k = 0; k < files.length; k++) {
        const f = files[(k + run) % files.length];
        got[f] = await minimalPage(f);
      }
      const mr = got["start.html"];
      const simple = async (file) => {
        const p = await ctx.newPage();
        await p.goto(new URL(file, server.url).href);
        await p.waitForFunction(() => window.result, null, { timeout: 60_000 });
        const x = await p.evaluate(() => window.result);
        await p.close();
        return x;
      };
      const pre = ONLY_MINIMAL ? null : await simple("start-preload.html");
      const oPre = ONLY_MINIMAL ? null : await simple("oidc-preload.html");
      const o = await ctx.newPage();
      await o.goto(new URL("oidc.html", server.url).href);
      await o.waitForFunction(() => window.result);
      const r = await o.evaluate(() => window.result);
      await o.close();
      if (run === 0) continue; // first run warms the HTTP cache and compiled-code caches for both
      if (!ONLY_MINIMAL) {
        const base = marks["tessera:import-start"];
        tessera.imported.push(marks["tessera:imported"] - base);
        tessera.initialised.push(marks["tessera:initialised"] - base);
        tessera.started.push(marks["tessera:started"] - base);
        tessera.startedNoJoin.push(noJoin["tessera:started"] - noJoin["tessera:import-start"]);
        if (noJoin.state === "active") tessera.restoredNoJoin += 1;
        if (marks.state === "active") tessera.restored += 1;
        preloaded.started.push(pre.nav);
        if (pre.state === "active") preloaded.restored += 1;
        preloaded.oidc.push(oPre.nav);
      }
      for (const [into, x] of [[minimal, mr], ...others.map((o, n) => [o, got[files[n + 1]]])]) {
        into.imported.push(x.imported);
        into.initialised.push(x.initialised);
        into.sync.push(x.sync);
        into.started.push(x.started);
        if (x.state === "active") into.restored += 1;
        for (const [k, v] of x.at) (into.phases[k] ||= []).push(v);
      }
      preloaded.plain.push(mr.nav);
      preloaded.plainOidc.push(r.nav);
      oidc.importMs.push(r.importMs);
      oidc.getUserMs.push(r.getUserMs);
    }
    console.log(`start-up bench: ${RUNS} warm runs each, fresh tab per run, Chromium headless, loopback server`);
    console.log(`performance.now() is clamped to 0.1 ms here (not cross-origin isolated)`);
    let t = null;
    if (!ONLY_MINIMAL) {
      show("tessera: import of /pkg/tessera.js", tessera.imported);
      show("tessera: + init() (wasm compile + instantiate)", tessera.initialised);
      t = show("tessera: + Session.start() -> session state", tessera.started);
      console.log(`  sessions restored (state "active" right after start): ${tessera.restored}/${RUNS}`);
      if (tessera.refreshMs.length) show("  of which POST /auth/refresh request->response", tessera.refreshMs);
      show("tessera: same with joinWaitMs=0 (no wait for tabs)", tessera.startedNoJoin);
      console.log(`  sessions restored with joinWaitMs=0: ${tessera.restoredNoJoin}/${RUNS}`);
    }
    const minimalReport = (m, dir) => {
      console.log(`minimal page (import, init(), Session.start() with default options, nothing else), ${dir}:`);
      show("tessera: import of the module", m.imported);
      show("tessera: + init() (wasm compile + instantiate)", m.initialised);
      show("  Session.start()'s synchronous call (in-page CPU)", m.sync);
      const r = show("tessera: + Session.start() -> session state", m.started);
      console.log(`  sessions restored: ${m.restored}/${RUNS}; where the time goes (ms from the import, p50, in time order):`);
      const order = Object.entries(m.phases).map(([k, v]) => [k, stats(v).p50, v.length]).sort((a, b) => a[1] - b[1]);
      for (const [k, p50, n] of order) console.log(`    ${p50.toFixed(1).padStart(7)}  ${k}${n < RUNS ? ` (${n}/${RUNS} runs)` : ""}`);
      return r;
    };
    const mt = minimalReport(minimal, "/pkg-a/ (TESSERA_PKG_DIR)");
    const mtB = others.map((m, n) => [letters[n], minimalReport(m, `/pkg-${letters[n]}/ (${COMPARE[n]})`)]);
    // Paired: each run measures every build back to back, so the per-run difference cancels
    // most of the machine's drift between runs.
    others.forEach((m, n) => {
      const d = m.started.map((v, k) => v - minimal.started[k]);
      const s = stats(d);
      const wins = d.filter((x) => x < 0).length;
      console.log(`  /pkg-${letters[n]}/ minus /pkg-a/, per run (import -> started): median ${s.p50.toFixed(1)} ms, faster in ${wins}/${d.length} runs`);
      for (const [k, label] of [["imported", "import"], ["initialised", "import -> init() done"], ["sync", "Session.start()'s synchronous call"]]) {
        const dk = m[k].map((v, j) => v - minimal[k][j]);
        console.log(`  /pkg-${letters[n]}/ minus /pkg-a/, per run (${label}): median ${stats(dk).p50.toFixed(1)} ms, faster in ${dk.filter((x) => x < 0).length}/${dk.length} runs`);
      }
    });
    const o = show("oidc-client-ts: import (ESM, with jwt-decode)", oidc.importMs);
    show("oidc-client-ts: import + UserManager.getUser()", oidc.getUserMs);
    console.log(
      `  ratio tessera import->started / oidc-client-ts import (p50): ${t ? `demo page ${(t.p50 / o.p50).toFixed(2)}, ` : ""}minimal page ${(mt.p50 / o.p50).toFixed(2)}` +
        mtB.map(([l, m]) => `, minimal page of /pkg-${l}/ ${(m.p50 / o.p50).toFixed(2)}`).join("") + " (goal: <= 1)",
    );
    if (PROFILE) await profile(ctx, server.url, files, PROFILE);
    if (ONLY_MINIMAL) return;
    console.log(`from navigation start (performance.now() when done), without and with preload hints in <head>`);
    console.log(`(modulepreload of the modules; the Wasm as a fetch preload):`);
    const np = show("tessera: minimal page, restored session", preloaded.plain);
    const pt = show("tessera: minimal page + preload hints", preloaded.started);
    console.log(`  sessions restored with hints: ${preloaded.restored}/${RUNS}`);
    const op = show("oidc-client-ts: import done", preloaded.plainOidc);
    const po = show("oidc-client-ts: import done, + modulepreload", preloaded.oidc);
    console.log(`  ratios (p50): without hints ${(np.p50 / op.p50).toFixed(2)}, with hints on both ${(pt.p50 / po.p50).toFixed(2)}`);
  } finally {
    await browser.close();
    await server.close();
    rmSync(www, { recursive: true, force: true });
  }
}

// V8 CPU profiles of `runs` fresh tabs per page (rotating); per page: the sampled time inside
// `Session.start()`'s synchronous call per start, and its functions by self time.
async function profile(ctx, url, files, runs) {
  const per = Object.fromEntries(files.map((f) => [f, { total: 0, starts: 0, self: new Map() }]));
  for (let run = 0; run < runs; run++) {
    for (let k = 0; k < files.length; k++) {
      const f = files[(k + run) % files.length];
      const page = await ctx.newPage();
      const cdp = await ctx.newCDPSession(page);
      await cdp.send("Profiler.enable");
      await cdp.send("Profiler.setSamplingInterval", { interval: 50 });
      await cdp.send("Profiler.start");
      await page.goto(new URL(f, url).href);
      await page.waitForFunction(() => window.result, null, { timeout: 60_000 });
      const { profile: p } = await cdp.send("Profiler.stop");
      await page.close();
      const byId = new Map(p.nodes.map((n) => [n.id, n]));
      const parent = new Map();
      for (const n of p.nodes) for (const c of n.children || []) parent.set(c, n.id);
      // Inside the call: a frame of the glue's `start` (tessera.js) on the sample's stack.
      const inside = new Map();
      const isInside = (id) => {
        if (inside.has(id)) return inside.get(id);
        const n = byId.get(id);
        const cf = n.callFrame;
        const v = (cf.functionName === "start" && cf.url.endsWith("/tessera.js")) || (parent.has(id) && isInside(parent.get(id)));
        inside.set(id, v);
        return v;
      };
      const at = per[f];
      at.starts += 1;
      p.samples.forEach((id, i) => {
        const dt = (p.timeDeltas[i + 1] ?? 0) / 1000; // this sample lasts until the next one
        if (!isInside(id)) return;
        at.total += dt;
        const cf = byId.get(id).callFrame;
        const name = `${cf.functionName || "(anonymous)"} ${cf.url ? cf.url.split("/").pop() + ":" + cf.lineNumber + ":" + cf.columnNumber : ""}`;
        at.self.set(name, (at.self.get(name) || 0) + dt);
      });
    }
  }
  for (const f of files) {
    const at = per[f];
    console.log(`CPU profile of ${f} (${at.starts} starts): ${(at.total / at.starts).toFixed(2)} ms sampled inside Session.start()'s synchronous call per start; self time per start:`);
    for (const [name, ms] of [...at.self].sort((a, b) => b[1] - a[1]).slice(0, 25))
      console.log(`  ${(ms / at.starts).toFixed(2).padStart(7)} ms  ${name}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
