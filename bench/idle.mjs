// Idle hot-path benchmark: main-thread cost per activity event in headless
// Chromium. Dispatches 200,000 synthetic mousemove/keydown events on `document`, median of 7
// runs, minus the same loop with no listeners. Prints numbers; asserts nothing.
//   node bench/idle.mjs [pkg-dir]        (default: pkg; build it first, see README)
// Compared: no listener (baseline), a bare passive listener reading `event.timeStamp` (the
// floor), and a signed-in Tessera session (its activity tracker installed by Session.start).
import { chromium } from "playwright-core";
import http from "node:http";
import { readFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";

const pkg = resolve(process.argv[2] || "pkg");
if (!existsSync(join(pkg, "tessera.js"))) {
  console.error(`no package at ${pkg}: build it first (wasm-pack build --release --target web --out-dir pkg)`);
  process.exit(1);
}
const EVENTS = 200_000, RUNS = 7;
const server = http
  .createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/") {
      res.setHeader("content-type", "text/html");
      return res.end("<!doctype html><title>idle bench</title><body></body>");
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

// Everything runs in one page, interleaved per round (baseline, floor, Tessera), so machine
// noise hits all three alike; each figure is the median over the rounds.
const page = await browser.newPage();
await page.goto(origin + "/");
const result = await page.evaluate(async ([events, runs]) => {
  const m = await import("/pkg/tessera.js");
  await m.default();
  const realFetch = globalThis.fetch;
  const json = (o) => new Response(JSON.stringify(o), { status: 200, headers: { "content-type": "application/json" } });
  const loop = () => {
    const t0 = performance.now();
    for (let i = 0; i < events; i++)
      document.dispatchEvent(i & 1 ? new KeyboardEvent("keydown", { key: "a" }) : new MouseEvent("mousemove", { clientX: i & 1023, clientY: 1 }));
    return performance.now() - t0;
  };
  const floor = () => {
    let last = 0;
    const h = (e) => { last = e.timeStamp; };
    for (const k of ["mousemove", "keydown"]) document.addEventListener(k, h, { passive: true });
    const t = loop();
    for (const k of ["mousemove", "keydown"]) document.removeEventListener(k, h, { passive: true });
    return t + last * 0;
  };
  let state = "";
  const tessera = async () => {
    // The auth routes answered in-page: this measures the listener, not the network.
    globalThis.fetch = async () => json({ access_token: "at", token_type: "Bearer", expires_in: 300, session: { user: "alice" } });
    const s = await m.Session.start({ resume: false, idleTimeoutMs: 900000, channel: "bench" + Math.random() });
    await s.login({ username: "alice", password: "x" });
    state = s.state;
    const t = loop();
    s.dispose();
    globalThis.fetch = realFetch;
    return t;
  };
  loop(); floor(); await tessera(); // warm-up
  const r = { none: [], floor: [], tessera: [] };
  for (let i = 0; i < runs; i++) {
    r.none.push(loop());
    r.floor.push(floor());
    r.tessera.push(await tessera());
  }
  const med = (a) => a.sort((x, y) => x - y)[a.length >> 1];
  return { none: med(r.none), floor: med(r.floor), tessera: med(r.tessera), state };
}, [EVENTS, RUNS]);
const none = { ms: result.none }, floor = { ms: result.floor }, tessera = { ms: result.tessera, note: "state " + result.state };

const per = (r) => ((r.ms - none.ms) * 1000) / EVENTS;
console.log(`idle hot path: ${EVENTS} events, median of ${RUNS} runs (Chromium headless)`);
console.log(`  no listener (baseline)     ${none.ms.toFixed(1)} ms total`);
console.log(`  bare passive listener      ${per(floor).toFixed(3)} µs/event above baseline (the floor)`);
console.log(`  Tessera session (${tessera.note})  ${per(tessera).toFixed(3)} µs/event above baseline`);
console.log(`  reference (same method): react-idle-timer 5.7.3 ≈ 0.6 µs, bare listener ≈ 0.49 µs`);
await browser.close();
server.close();
