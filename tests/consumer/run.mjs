#!/usr/bin/env node
// Consumer test: proves the npm package works the way users install and import it.
//
//   node tests/consumer/run.mjs
//
// 1. `npm pack` the built package (pkg/, after scripts/package.mjs) into a tarball;
// 2. install that tarball (not a path alias) into two apps, each from its own lockfile:
//    tests/consumer (Vite 7 with React, Vue and Svelte pages; webpack 5; TypeScript; the Node
//    unit tests) and tests/consumer/next (Next.js App Router);
// 3. build them: `vite build` (production, and development for React StrictMode), webpack 5
//    in production mode, `next build`;
// 4. run a real `tessera-server --demo` (SQLite in a temp dir) serving the Vite and webpack
//    builds, and `next start` forwarding /auth and /api to it; drive every page in headless
//    Chromium: sign in, fetch /api/me, cross-tab logout, unmount cleanup;
// 5. run the Node unit tests (tests/consumer/node: `initSync`, default `init()`, sessions
//    without a browser) with `node --test`.
// Needs pkg/ and target/debug/tessera-server built first (scripts/test.sh does both).
// TESSERA_PKG_DIR and TESSERA_SERVER_BIN override their locations. Prints how long each
// build step took.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { launchBrowser, requirePkg, startServer } from "../e2e/harness.mjs";
import "./packaging.test.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const NEXT = path.join(HERE, "next");
const DIST = path.join(HERE, "dist");
const BINDINGS = ["react", "vue", "svelte"];

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { cwd: HERE, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...opts });
}

/** Runs `fn`, printing how long it took (the consumer layer's time budget is watched). */
function timed(label, fn) {
  const t = Date.now();
  const out = fn();
  console.log(`# ${label}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  return out;
}

/** Runs a command in the background; resolves when it exits 0, rejects with its output otherwise. */
function spawnTimed(label, cmd, args, opts) {
  const t = Date.now();
  const proc = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
  const out = [];
  proc.stdout.on("data", (d) => out.push(d));
  proc.stderr.on("data", (d) => out.push(d));
  return new Promise((resolve, reject) => {
    proc.once("error", reject);
    proc.once("exit", (code) => {
      console.log(`# ${label}: ${((Date.now() - t) / 1000).toFixed(1)} s (in the background)`);
      if (code === 0) resolve();
      else reject(new Error(`${label} failed (${code}):\n${Buffer.concat(out).toString()}`));
    });
  });
}

/** A free port, held (listening) until `release()`: nothing else started meanwhile (the
 *  tessera-server binding port 0) can be handed the same port by the kernel. */
function reservePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => resolve({ port: s.address().port, release: () => new Promise((r) => s.close(() => r())) }));
  });
}

/** Installs the lockfile's dependencies (when missing) and the tarball, leaving both files as they are. */
function install(dir, tarball) {
  if (!existsSync(path.join(dir, "node_modules"))) {
    sh("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, stdio: "inherit" });
  }
  sh("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", "--no-save", tarball], { cwd: dir, stdio: "inherit" });
}

/** `next start` on 127.0.0.1:port; resolves once it answers. */
async function startNext(port, env) {
  const proc = spawn(process.execPath, [path.join(NEXT, "node_modules/next/dist/bin/next"), "start", "-p", String(port), "-H", "127.0.0.1"], {
    cwd: NEXT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs = [];
  proc.stdout.on("data", (d) => logs.push(String(d)));
  proc.stderr.on("data", (d) => logs.push(String(d)));
  const url = `http://127.0.0.1:${port}/`;
  for (const end = Date.now() + 60_000; ; await new Promise((r) => setTimeout(r, 250))) {
    if (proc.exitCode !== null) throw new Error(`next start exited (${proc.exitCode}):\n${logs.join("")}`);
    try {
      const r = await fetch(url, { method: "HEAD" });
      // Only Next's own answer counts (another server on the port would answer too).
      if (!/next/i.test(r.headers.get("x-powered-by") ?? "")) throw new Error(`not Next.js: ${r.headers.get("server")}`);
      break;
    } catch {
      if (Date.now() > end) throw new Error(`next start did not answer within 60 s:\n${logs.join("")}`);
    }
  }
  return {
    url,
    logs,
    close: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once("exit", resolve);
        proc.kill("SIGTERM");
      }),
  };
}

let server;
let next;
let browser;
let tarball;
let packDir;

before(async () => {
  const pkgDir = requirePkg();
  const manifest = JSON.parse(readFileSync(path.join(pkgDir, "package.json"), "utf8"));
  if (manifest.name !== "tessera" || !manifest.exports?.["./react"]) {
    throw new Error(`${pkgDir}/package.json is wasm-pack's, not the package's: run \`node scripts/package.mjs ${pkgDir}\``);
  }
  packDir = mkdtempSync(path.join(tmpdir(), "tessera-pack-"));
  const packed = JSON.parse(sh("npm", ["pack", pkgDir, "--json", "--pack-destination", packDir]));
  tarball = path.join(packDir, packed[0].filename);
  console.log(`# packed ${packed[0].filename}: ${packed[0].size} bytes, ${packed[0].entryCount} files`);

  timed("install (Vite/webpack app, Next.js app)", () => {
    install(HERE, tarball);
    install(NEXT, tarball);
  });

  // The Next.js app is its own origin that forwards /auth and /api to the server (whose URL
  // its build bakes in): the server starts first and allows that origin. `next build` runs
  // beside the Vite and webpack builds.
  // The port stays reserved until `next start`: released early, the kernel handed it to the
  // tessera-server started next now and then, and `next start` found it taken while the
  // readiness probe got the server's answer.
  const reserved = await reservePort();
  const nextPort = reserved.port;
  server = await startServer({ wwwDir: DIST, args: ["--allowed-origins", `http://127.0.0.1:${nextPort}`] });
  const env = { ...process.env, NEXT_TELEMETRY_DISABLED: "1", TESSERA_SERVER_URL: server.origin };
  const nextBuilt = spawnTimed("next build", process.execPath, [path.join(NEXT, "node_modules/next/dist/bin/next"), "build"], { cwd: NEXT, env });
  nextBuilt.catch(() => {}); // awaited below; a failing Vite build must not leave it unhandled

  const vite = path.join(HERE, "node_modules/vite/bin/vite.js");
  timed("vite build (production + development)", () => {
    sh(process.execPath, [vite, "build", "--logLevel", "warn"], { stdio: "inherit" });
    // A development build too, under /dev/: React's StrictMode double-mounts only there.
    sh(
      process.execPath,
      [vite, "build", "--mode", "development", "--outDir", "dist/dev", "--base", "/dev/", "--emptyOutDir", "false", "--logLevel", "warn"],
      { stdio: "inherit", env: { ...process.env, NODE_ENV: "development" } },
    );
  });
  timed("webpack build (production)", () => sh(process.execPath, [path.join(HERE, "webpack/build.mjs")], { stdio: "inherit" }));

  await nextBuilt;
  await reserved.release();
  next = await startNext(nextPort, env);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await next?.close();
  await server?.close();
  if (packDir) rmSync(packDir, { recursive: true, force: true });
});

// ---- the package as installed --------------------------------------------------------------------

test("the package is installed from the tarball, not linked, with every entry and its licences", () => {
  const installed = path.join(HERE, "node_modules/tessera");
  assert.equal(lstatSync(installed).isSymbolicLink(), false, "node_modules/tessera is a real directory");
  const files = readdirSync(installed);
  for (const f of ["package.json", "tessera.js", "tessera_bg.wasm", "tessera.d.ts", "README.md", "LICENSE-MIT", "LICENSE-APACHE", "node", "bundler", ...BINDINGS]) {
    assert.ok(files.includes(f), `the tarball ships ${f}`);
  }
  assert.match(readFileSync(path.join(installed, "LICENSE-APACHE"), "utf8"), /Apache License\s+Version 2\.0/);
  assert.match(readFileSync(path.join(installed, "LICENSE-MIT"), "utf8"), /Permission is hereby granted, free of charge/);
  const manifest = JSON.parse(readFileSync(path.join(installed, "package.json"), "utf8"));
  assert.equal(manifest.name, "tessera");
  assert.equal(manifest.license, "MIT OR Apache-2.0");
  assert.equal(manifest.types, "./tessera.d.ts");
  for (const e of [".", "./bundler", ...BINDINGS.map((b) => `./${b}`)]) assert.ok(manifest.exports[e], `exports ${e}`);
  assert.equal(manifest.exports["."].node, "./node/index.js", "Node gets the entry whose init() reads the file");
  assert.ok(Array.isArray(manifest.sideEffects), "sideEffects declared");
  // Framework packages: optional peers, never dependencies.
  assert.equal(manifest.dependencies, undefined, "no dependencies");
  for (const fw of ["react", "vue", "svelte"]) {
    assert.ok(manifest.peerDependencies?.[fw], `${fw} is a peer dependency`);
    assert.equal(manifest.peerDependenciesMeta?.[fw]?.optional, true, `${fw} is optional`);
  }
});

test("the default entry imports no framework, and every binding lists the events of the .d.ts", async () => {
  const installed = path.join(HERE, "node_modules/tessera");
  const main = readFileSync(path.join(installed, "tessera.js"), "utf8");
  for (const fw of ["react", "vue", "svelte"]) {
    assert.doesNotMatch(main, new RegExp(`from\\s*["']${fw}`), `tessera.js imports nothing from ${fw}`);
  }
  // The event names, declared once in the package's SessionEvents interface.
  const dts = readFileSync(path.join(installed, "tessera.d.ts"), "utf8");
  const block = /interface SessionEvents \{([\s\S]*?)\n\}/.exec(dts)?.[1] ?? "";
  const declared = [...block.matchAll(/^\s*"?([\w-]+)"?: \{/gm)].map((m) => m[1]);
  assert.ok(declared.length >= 7, `events found in tessera.d.ts: ${declared}`);
  const out = sh(process.execPath, [
    "--input-type=module",
    "-e",
    `const lists = {};
     for (const b of ${JSON.stringify(BINDINGS)}) lists[b] = (await import("tessera/" + b)).SESSION_EVENTS;
     console.log(JSON.stringify(lists));`,
  ]);
  const lists = JSON.parse(out.trim().split("\n").at(-1));
  for (const b of BINDINGS) assert.deepEqual([...lists[b]].sort(), [...declared].sort(), `tessera/${b} follows every event`);
});

test("the tessera/bundler entry instantiates itself on import (ES-module Wasm integration)", () => {
  // Node's --experimental-wasm-modules implements the same `import * as wasm from "x.wasm"`
  // integration that webpack's asyncWebAssembly and vite-plugin-wasm provide.
  const out = sh(process.execPath, [
    "--experimental-wasm-modules",
    "--no-warnings",
    "--input-type=module",
    "-e",
    `const m = await import("tessera/bundler");
     const r = await import("tessera/react");
     const pkg = (await import("tessera/package.json", { with: { type: "json" } })).default;
     console.log(JSON.stringify({ session: typeof m.Session?.start, hook: typeof r.useSession, name: pkg.name }));`,
  ]);
  assert.deepEqual(JSON.parse(out.trim().split("\n").at(-1)), { session: "function", hook: "function", name: "tessera" });
});

test("TypeScript finds the declarations through `exports` (tsc --noEmit, strict)", () => {
  // src/types-check.ts uses the public API and every binding, and expects misuse (unknown
  // event, bad storage name) to be a type error; tsc fails if a declaration is missing or too loose.
  try {
    sh(process.execPath, [path.join(HERE, "node_modules/typescript/bin/tsc"), "-p", path.join(HERE, "tsconfig.json")]);
  } catch (err) {
    assert.fail(`tsc reported errors:\n${err.stdout}${err.stderr}`);
  }
});

test("Node unit tests (node:test): initSync, default init(), sessions without a browser", () => {
  const t = Date.now();
  let out;
  try {
    out = sh(process.execPath, ["--test", "--test-reporter=spec", path.join(HERE, "node")]);
  } catch (err) {
    assert.fail(`node --test tests/consumer/node failed:\n${err.stdout}${err.stderr}`);
  }
  const passed = Number(/^ℹ pass (\d+)/m.exec(out)?.[1]);
  const failed = Number(/^ℹ fail (\d+)/m.exec(out)?.[1]);
  console.log(`# node unit tests: ${passed} passed, ${failed} failed in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  assert.equal(failed, 0);
  assert.ok(passed >= 4, `ran the Node tests (${passed} passed):\n${out}`);
});

// ---- builds --------------------------------------------------------------------------------------

test("vite build emitted the wasm module as an asset", () => {
  const assets = readdirSync(path.join(DIST, "assets"));
  const wasm = assets.filter((f) => f.endsWith(".wasm"));
  assert.equal(wasm.length, 1, `one .wasm asset in dist/assets: ${assets.join(", ")}`);
  assert.ok(statSync(path.join(DIST, "assets", wasm[0])).size > 1000);
  for (const page of ["react.html", "vue.html", "svelte.html"]) assert.ok(existsSync(path.join(DIST, page)), page);
});

test("webpack 5 emitted the wasm module as an asset", () => {
  const files = readdirSync(path.join(DIST, "webpack"));
  const wasm = files.filter((f) => f.endsWith(".wasm"));
  assert.equal(wasm.length, 1, `one .wasm asset in dist/webpack: ${files.join(", ")}`);
  assert.ok(statSync(path.join(DIST, "webpack", wasm[0])).size > 1000);
});

// ---- in the browser ------------------------------------------------------------------------------

/** A test starts signed out: no refresh cookie left by an earlier test (cookies ignore ports). */
async function signedOut() {
  await browser.context.clearCookies();
}

async function open(url) {
  const page = await browser.context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  // Non-2xx responses (the 401 of a resume without a cookie) are logged by Chromium as
  // "Failed to load resource"; they are expected answers, not errors of the app.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) page.errors.push(m.text());
  });
  await page.goto(url);
  return page;
}

for (const [label, file] of [
  ["Vite", "index.html"],
  ["webpack 5", "webpack/index.html"],
]) {
  test(`plain API from the ${label} build: start, login, fetch /api/me, logout`, async () => {
    await signedOut();
    const page = await open(new URL(file, server.url).href);
    await page.waitForFunction(() => window.result?.done, null, { timeout: 20_000 });
    const result = await page.evaluate(() => window.result);
    assert.equal(result.error, null, `no error: ${result.error}`);
    const steps = Object.fromEntries(result.steps.map((s) => [s.name, s.value]));
    assert.equal(steps.start, "anonymous");
    assert.equal(steps.login, "active");
    assert.equal(steps.me.status, 200);
    assert.equal(steps.me.username, "alice");
    assert.equal(steps.logout, "logged-out");
    assert.equal(steps["me-after-logout"], 401);
    assert.ok(steps.events.includes("login") && steps.events.includes("logout"), `events: ${steps.events}`);
    assert.deepEqual(page.errors, []);
    await page.close();
  });
}

test("CSP: under a strict policy with 'wasm-unsafe-eval' the app works; without it init() is refused", async () => {
  await signedOut();
  const ok = await open(new URL("csp.html", server.url).href);
  await ok.waitForFunction(() => window.result?.done, null, { timeout: 20_000 });
  const result = await ok.evaluate(() => window.result);
  assert.equal(result.error, null, `no error under 'wasm-unsafe-eval': ${result.error}`);
  assert.deepEqual(
    result.steps.filter((s) => ["login", "logout"].includes(s.name)).map((s) => s.value),
    ["active", "logged-out"],
  );
  assert.deepEqual(ok.errors, []);
  await ok.close();

  const denied = await open(new URL("csp-denied.html", server.url).href);
  await denied.waitForFunction(() => window.result, null, { timeout: 20_000 });
  const refused = await denied.evaluate(() => window.result);
  assert.equal(refused.loaded, false, "the module must not compile without 'wasm-unsafe-eval'");
  // Chromium's words: "CompileError: WebAssembly.instantiateStreaming(): Compiling or
  // instantiating WebAssembly module violates the following Content Security policy directive
  // because 'unsafe-eval' is not an allowed source of script …" (docs/csp.md quotes it).
  assert.match(refused.error, /^CompileError: .*Content Security [Pp]olicy.*'unsafe-eval'/, "the browser's CSP refusal");
  await denied.close();
});

const text = (page, sel) => page.locator(sel).innerText();
const stateIs = (page, want, timeout = 20_000) =>
  page.waitForFunction((w) => document.querySelector("#state")?.textContent === w, want, { timeout });

/**
 * The check every framework page passes: two tabs of the app; sign in in one and the other
 * follows; fetch /api/me with the bearer; sign out in the other tab and both end logged out;
 * unmounting the app disposes every session the binding started.
 */
async function frameworkScenario(url, { starts = 1 } = {}) {
  const a = await open(url);
  await stateIs(a, "anonymous");
  const b = await open(url);
  await stateIs(b, "anonymous");
  // React's StrictMode mounts, unmounts and mounts again in development: the binding still
  // calls the factory once (one session), and the page behaves as with one mount.
  assert.equal(await a.evaluate(() => window.started), starts, "sessions started by the binding");

  await a.click("#login");
  await stateIs(a, "active");
  assert.equal(await text(a, "#last-event"), "login");
  await stateIs(b, "active"); // the other tab joined over the bus

  await a.click("#me");
  await a.waitForFunction(() => document.querySelector("#me-out")?.textContent.startsWith("200"));
  assert.match(await text(a, "#me-out"), /"username":"alice"/);

  await b.click("#logout");
  await stateIs(b, "logged-out");
  await stateIs(a, "logged-out"); // cross-tab logout
  assert.equal(await text(a, "#last-event"), "logout");
  for (const p of [a, b]) {
    assert.equal(await text(p, "#error"), "");
    assert.deepEqual(p.errors, []);
  }

  // Cleanup: unmounting disposes every session the binding started (StrictMode's too).
  await a.evaluate(() => window.unmountApp());
  await a.waitForFunction(() => window.disposed === window.started, null, { timeout: 5_000 }).catch(() => {});
  assert.deepEqual(await a.evaluate(() => [window.started, window.disposed]), [starts, starts], "[started, disposed]");
  await a.close();
  await b.close();
}

for (const [label, file, starts] of [
  ["React hook, production build", "react.html", 1],
  ["React hook, development build, StrictMode double mount", "dev/react.html", 1],
  ["Vue composable", "vue.html", 1],
  ["Svelte store", "svelte.html", 1],
]) {
  test(`${label}: sign in, fetch, cross-tab logout, cleanup on unmount`, async () => {
    await signedOut();
    await frameworkScenario(new URL(file, server.url).href, { starts });
  });
}

test("Next.js App Router: the server render imports tessera and tessera/react", async () => {
  const res = await fetch(next.url);
  assert.equal(res.status, 200);
  const html = await res.text();
  // The server component imported the package; the client component was server-rendered
  // in its initial state (no session in Node).
  assert.match(html, /<output id="server-import">Session\.start: function, init: function<\/output>/);
  assert.match(html, /<output id="state">starting<\/output>/);
});

test("Next.js App Router: a client component signs in with useSession, fetches, signs out", async () => {
  await signedOut();
  const page = await open(next.url);
  await stateIs(page, "anonymous");
  await page.click("#login");
  await stateIs(page, "active");
  await page.click("#me");
  await page.waitForFunction(() => document.querySelector("#me-out")?.textContent.startsWith("200"));
  assert.match(await text(page, "#me-out"), /"username":"alice"/);
  await page.click("#logout");
  await stateIs(page, "logged-out");
  assert.equal(await text(page, "#error"), "");
  assert.deepEqual(page.errors, []);
  await page.close();
});
