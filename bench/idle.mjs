// Idle hot-path benchmark: main-thread cost per activity event in headless Chromium, Tessera
// beside react-idle-timer 5.7 (devDependency, mounted in a React 19 root with its default
// options) in the same page and the same run. Prints numbers; asserts nothing.
//   node bench/idle.mjs [pkg-dir] [--rounds 7] [--inputs 100000] [--trusted 1500]
//                                        (default pkg-dir: pkg; build it first, see README)
//
// Compared, interleaved per round in one page so machine noise hits all alike (medians over
// the rounds): no listener (baseline), a bare passive listener (the floor), a signed-in
// Tessera session with its default activity options (its tracker installed by Session.start),
// and react-idle-timer's `useIdleTimer({ timeout })` with its defaults (200 ms throttle).
//
// A. Synthetic events (the page's own loop): each input is what a browser delivers for it,
//    `pointermove` + `mousemove` for a mouse move, `keydown` for a key. Cheap and precise, but
//    these events are untrusted: Tessera counts only trusted input, so here it shows only its
//    early exit. react-idle-timer takes them like real ones.
// B. Trusted input, as a user's: key presses (Shift, auto-repeat: `keydown` only, no text)
//    sent one at a time through the DevTools protocol (Input.dispatchKeyEvent), so every one
//    goes through Chromium's input pipeline and reaches the listeners with isTrusted; both
//    libraries listen to `keydown`. The cost is the page's ScriptDuration and TaskDuration
//    (Performance.getMetrics) over the presses, per delivered `keydown`, minus the baseline's.
//    (Trusted mouse moves were tried too: Chromium aligns them to animation frames, so each
//    one sent this way takes a frame, ~17 ms, and the page sees at most one per frame.)
// The page is cross-origin isolated (COOP/COEP) so performance.now() is not clamped to 0.1 ms.
import { chromium } from "playwright-core";
import { build } from "esbuild";
import http from "node:http";
import { readFileSync, existsSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const opt = (name, d) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const pkgArg = args.find((a, i) => !a.startsWith("--") && !(i > 0 && args[i - 1].startsWith("--")));
const pkg = resolve(pkgArg || "pkg");
if (!existsSync(join(pkg, "tessera.js"))) {
  console.error(`no package at ${pkg}: build it first (wasm-pack build --release --target web --out-dir pkg)`);
  process.exit(1);
}
const INPUTS = opt("inputs", 100_000), RUNS = opt("rounds", 7), TRUSTED = opt("trusted", 1500);
const ritVersion = JSON.parse(readFileSync(join(ROOT, "node_modules/react-idle-timer/package.json"), "utf8")).version;

// react-idle-timer as an app ships it: bundled with React, production build, minified.
const rit = (
  await build({
    stdin: {
      contents: `
import { createElement, useEffect } from "react";
import { createRoot } from "react-dom/client";
import { useIdleTimer } from "react-idle-timer";
function App({ ready }) {
  useIdleTimer({ timeout: 900000 });
  useEffect(() => ready(), []);
  return null;
}
export function mount() {
  const el = document.body.appendChild(document.createElement("div"));
  const root = createRoot(el);
  return new Promise((ready) => root.render(createElement(App, { ready }))).then(() => () => {
    root.unmount();
    el.remove();
  });
}`,
      resolveDir: ROOT,
      loader: "js",
    },
    bundle: true,
    format: "esm",
    minify: true,
    write: false,
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "error",
  })
).outputFiles[0].text;

const server = http
  .createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
    res.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
    if (path === "/") {
      res.setHeader("content-type", "text/html");
      return res.end("<!doctype html><title>idle bench</title><body style='margin:0;height:100vh'></body>");
    }
    if (path === "/vendor/rit.js") {
      res.setHeader("content-type", "text/javascript");
      return res.end(rit);
    }
    const file = join(pkg, path.replace(/^\/pkg\//, ""));
    if (!path.startsWith("/pkg/") || !existsSync(file)) return res.writeHead(404).end();
    res.setHeader("content-type", file.endsWith(".wasm") ? "application/wasm" : "text/javascript");
    res.end(readFileSync(file));
  })
  .listen(0, "127.0.0.1");
await new Promise((r) => server.once("listening", r));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
await page.goto(origin + "/");

// In-page set-up and tear-down of each contender; `window.bench.count` counts delivered
// keydowns in every configuration alike (its cost is in the baseline too).
await page.evaluate(async () => {
  const m = await import("/pkg/tessera.js");
  await m.default();
  const { mount } = await import("/vendor/rit.js");
  const realFetch = globalThis.fetch;
  const json = (o) => new Response(JSON.stringify(o), { status: 200, headers: { "content-type": "application/json" } });
  const b = (window.bench = { count: 0, state: "", isolated: crossOriginIsolated });
  document.addEventListener("keydown", () => b.count++, { passive: true });
  const floorHandler = (e) => { b.last = e.timeStamp; };
  b.setup = {
    none: async () => () => {},
    floor: async () => {
      for (const k of ["pointermove", "mousemove", "keydown"]) document.addEventListener(k, floorHandler, { passive: true });
      return () => { for (const k of ["pointermove", "mousemove", "keydown"]) document.removeEventListener(k, floorHandler, { passive: true }); };
    },
    tessera: async () => {
      // The auth routes answered in-page: this measures the listener, not the network.
      globalThis.fetch = async () => json({ access_token: "at", token_type: "Bearer", expires_in: 300, session: { user: "alice" } });
      const s = await m.Session.start({ resume: false, idleTimeoutMs: 900000, channel: "bench" + Math.random() });
      await s.login({ username: "alice", password: "x" });
      b.state = s.state;
      return () => { s.dispose(); globalThis.fetch = realFetch; };
    },
    rit: async () => await mount(),
  };
  b.synthetic = (inputs) => {
    const t0 = performance.now();
    for (let i = 0; i < inputs; i++) {
      if (i & 1) document.dispatchEvent(new KeyboardEvent("keydown", { key: "a" }));
      else {
        const x = { clientX: i & 1023, clientY: 1 };
        document.dispatchEvent(new PointerEvent("pointermove", x));
        document.dispatchEvent(new MouseEvent("mousemove", x));
      }
    }
    return performance.now() - t0;
  };
});

const cdp = await page.context().newCDPSession(page);
await cdp.send("Performance.enable");
const metrics = async () => {
  const { metrics } = await cdp.send("Performance.getMetrics");
  const get = (n) => metrics.find((x) => x.name === n).value * 1000; // ms
  return { script: get("ScriptDuration"), task: get("TaskDuration") };
};
const SHIFT = { key: "Shift", code: "ShiftLeft", windowsVirtualKeyCode: 16, nativeVirtualKeyCode: 16 };
const trusted = async (n) => {
  const c0 = await page.evaluate(() => window.bench.count);
  const m0 = await metrics();
  for (let i = 0; i < n; i++) await cdp.send("Input.dispatchKeyEvent", { type: "rawKeyDown", autoRepeat: i > 0, ...SHIFT });
  const m1 = await metrics();
  await cdp.send("Input.dispatchKeyEvent", { type: "keyUp", ...SHIFT });
  const delivered = (await page.evaluate(() => window.bench.count)) - c0;
  return { script: (m1.script - m0.script) / delivered, task: (m1.task - m0.task) / delivered, delivered };
};

const NAMES = ["none", "floor", "tessera", "rit"];
const runOne = async (name, inputs, moves) => {
  await page.evaluate((n) => (window.bench.teardown = null, window.bench.setup[n]().then((f) => { window.bench.teardown = f; })), name);
  const synth = await page.evaluate((k) => window.bench.synthetic(k), inputs);
  const tr = moves ? await trusted(moves) : null;
  await page.evaluate(() => window.bench.teardown());
  return { synth, tr };
};
for (const n of NAMES) await runOne(n, INPUTS / 10, 100); // warm-up
const r = Object.fromEntries(NAMES.map((n) => [n, { synth: [], script: [], task: [], delivered: 0 }]));
for (let i = 0; i < RUNS; i++) {
  // Rotate the order per round so no contender always follows the same one.
  for (let j = 0; j < NAMES.length; j++) {
    const n = NAMES[(i + j) % NAMES.length];
    const x = await runOne(n, INPUTS, TRUSTED);
    r[n].synth.push(x.synth);
    r[n].script.push(x.tr.script);
    r[n].task.push(x.tr.task);
    r[n].delivered += x.tr.delivered;
  }
}
const { state, isolated } = await page.evaluate(() => ({ state: window.bench.state, isolated: window.bench.isolated }));
await browser.close();
server.close();

const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const spread = (a) => `${Math.min(...a).toFixed(3)}..${Math.max(...a).toFixed(3)}`;
const label = {
  none: "no listener (baseline)",
  floor: "bare passive listener (the floor)",
  tessera: `Tessera session (state ${state}, default throttle)`,
  rit: `react-idle-timer ${ritVersion} (useIdleTimer defaults)`,
};
console.log(`idle hot path: Chromium headless, ${RUNS} rounds interleaved in one page, medians (min..max over rounds); crossOriginIsolated ${isolated}`);
console.log(`A. synthetic (untrusted) events: ${INPUTS} inputs per round, mouse move (pointermove + mousemove) and key (keydown) alternating`);
const perSynth = (n) => r[n].synth.map((ms, i) => ((ms - r.none.synth[i]) * 1000) / INPUTS);
console.log(`  ${label.none.padEnd(48)} ${med(r.none.synth).toFixed(1)} ms per round`);
for (const n of NAMES.slice(1)) console.log(`  ${label[n].padEnd(48)} ${med(perSynth(n)).toFixed(3)} µs/input above baseline  (${spread(perSynth(n))})`);
console.log(`  (Tessera ignores untrusted events: this is its early exit, not its hot path; see B)`);
console.log(`B. trusted key presses (keydown) through Chromium's input pipeline: ${TRUSTED} per round, ` +
  `${r.none.delivered} delivered to the baseline in all`);
const perTr = (n, k) => r[n][k].map((v, i) => (v - r.none[k][i]) * 1000);
console.log(`  ${label.none.padEnd(48)} script ${(med(r.none.script) * 1000).toFixed(2)} µs/key, task ${(med(r.none.task) * 1000).toFixed(1)} µs/key`);
for (const n of NAMES.slice(1))
  console.log(`  ${label[n].padEnd(48)} script ${med(perTr(n, "script")).toFixed(2).padStart(6)} µs/key above baseline (${spread(perTr(n, "script"))}), ` +
    `task ${med(perTr(n, "task")).toFixed(1).padStart(5)} µs (${spread(perTr(n, "task"))})`);
