#!/usr/bin/env node
// DPoP proof cost in a real page (`dpop: true`): the shipped pkg/dpop.js in headless Chromium,
// served by tessera-server from a temp www dir. Prints numbers; asserts nothing.
//
//   node bench/dpop.mjs [--runs 3] [--proofs 300]
//
// Per run, in one page: key creation (generateKey + IndexedDB add-if-absent + re-read + public
// JWK export, the database deleted before each), key load (IndexedDB read + export: a tab's
// first request), proof creation without and with an access token (`ath`: one SHA-256 more),
// each one after the other, and 100 proofs signed at once; the page's long tasks (main thread
// busy ≥ 50 ms, PerformanceObserver `longtask`) over the proof runs are counted. `performance.now()`
// is clamped to 0.1 ms here (not cross-origin isolated).
import { execSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { launchBrowser, startServer } from "../tests/e2e/harness.mjs";

const arg = (name, d) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const RUNS = arg("--runs", 3);
const PROOFS = arg("--proofs", 300);

const PAGE = `<!doctype html><meta charset="utf-8"><title>dpop bench</title>
<script type="module">
import * as d from "/pkg/dpop.js";
const now = () => performance.now();
const stats = (a) => {
  a.sort((x, y) => x - y);
  const q = (p) => a[Math.min(a.length - 1, Math.floor(p * a.length))];
  return { n: a.length, p50: q(0.5), p95: q(0.95), max: a.at(-1) };
};
const drop = (ch) => new Promise((ok) => (indexedDB.deleteDatabase(d.dpopDb(ch)).onsuccess = ok));
window.run = async (proofs) => {
  const ch = "bench";
  const create = [], load = [], bare = [], ath = [];
  for (let i = 0; i < 20; i++) {
    await drop(ch);
    const t = now();
    await d.dpopKey(ch, true);
    create.push(now() - t);
  }
  for (let i = 0; i < 50; i++) {
    const t = now();
    await d.dpopKey(ch, false);
    load.push(now() - t);
  }
  const k = await d.dpopKey(ch, false);
  const seen = [];
  const lt = new PerformanceObserver((l) => seen.push(...l.getEntries()));
  lt.observe({ type: "longtask" });
  const url = location.origin + "/api/me?x=1";
  // An access token of a typical size (a JWT of ~900 characters).
  const token = "eyJ" + "x".repeat(900);
  for (let i = 0; i < 30; i++) await d.proof(k, "GET", url, token); // warm-up
  for (let i = 0; i < proofs; i++) {
    const t = now();
    await d.proof(k, "POST", url, null);
    bare.push(now() - t);
  }
  for (let i = 0; i < proofs; i++) {
    const t = now();
    await d.proof(k, "GET", url, token);
    ath.push(now() - t);
  }
  let t = now();
  await Promise.all(Array.from({ length: 100 }, () => d.proof(k, "GET", url, token)));
  const burst = now() - t;
  await new Promise((ok) => setTimeout(ok, 50)); // the observer's last entries
  const long = lt.takeRecords().concat(seen.splice(0));
  await drop(ch);
  return { create: stats(create), load: stats(load), bare: stats(bare), ath: stats(ath), burst, long: long.length, longMax: Math.max(0, ...long.map((e) => e.duration)) };
};
window.ready = true;
</script>`;

const www = mkdtempSync(path.join(tmpdir(), "tessera-dpop-bench-"));
writeFileSync(path.join(www, "index.html"), PAGE);
const uptime = () => execSync("uptime").toString().trim();
console.log(`# before: ${uptime()}`);
const server = await startServer({ wwwDir: www });
const browser = await launchBrowser();
const f = (x) => x.toFixed(2).padStart(7);
const row = (name, s) => console.log(`${name.padEnd(34)} n=${String(s.n).padStart(4)}  p50 ${f(s.p50)} ms  p95 ${f(s.p95)} ms  max ${f(s.max)} ms`);
try {
  const page = await browser.context.newPage();
  await page.goto(new URL("index.html", server.url).href);
  await page.waitForFunction(() => window.ready === true);
  console.log(`# Chromium ${browser.context.browser()?.version() ?? "(persistent context)"}, ${PROOFS} proofs per kind per run`);
  for (let r = 1; r <= RUNS; r++) {
    const x = await page.evaluate((n) => window.run(n), PROOFS);
    console.log(`\nrun ${r} (${uptime()})`);
    row("key created (+ IndexedDB add, read)", x.create);
    row("key loaded (IndexedDB read)", x.load);
    row("proof, no token", x.bare);
    row("proof with ath (900-char token)", x.ath);
    console.log(`${"100 proofs at once".padEnd(34)} ${f(x.burst)} ms in all`);
    console.log(`${"long tasks (≥ 50 ms) while signing".padEnd(34)} ${x.long}${x.long ? `, longest ${f(x.longMax)} ms` : ""}`);
  }
} finally {
  await browser.close();
  await server.close();
  rmSync(www, { recursive: true, force: true });
}
console.log(`\n# after: ${uptime()}`);
