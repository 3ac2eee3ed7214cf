#!/usr/bin/env node
// Consumer test: proves the npm package works the way users install and import it.
//
//   node tests/consumer/run.mjs
//
// 1. `npm pack` the built package (pkg/, after scripts/package.mjs) into a tarball;
// 2. install that tarball (not a path alias) plus vite@7 and React into tests/consumer;
// 3. `vite build` the two-page app (plain API + the `tessera/react` hook in StrictMode);
// 4. serve the build with the real `tessera-server --demo --www-dir tests/consumer/dist`
//    (SQLite store in a temp dir) and run both pages in headless Chromium: login, fetch
//    /api/me, logout against the real server.
// Needs pkg/ and target/debug/tessera-server built first (scripts/test.sh does both).
// TESSERA_PKG_DIR and TESSERA_SERVER_BIN override their locations.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { launchBrowser, requirePkg, startServer } from "../e2e/harness.mjs";
import "./packaging.test.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
const DIST = path.join(HERE, "dist");

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { cwd: HERE, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...opts });
}

let server;
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

  // Install vite + react from the lock, and the tarball without touching package.json/lock.
  sh("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", "--no-save", tarball], { stdio: "inherit" });
  const vite = path.join(HERE, "node_modules/vite/bin/vite.js");
  sh(process.execPath, [vite, "build", "--logLevel", "warn"], { stdio: "inherit" });
  // A development build too, under /dev/: React's StrictMode double-mounts only there.
  sh(
    process.execPath,
    [vite, "build", "--mode", "development", "--outDir", "dist/dev", "--base", "/dev/", "--emptyOutDir", "false", "--logLevel", "warn"],
    { stdio: "inherit", env: { ...process.env, NODE_ENV: "development" } },
  );
  server = await startServer({ wwwDir: DIST });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (packDir) rmSync(packDir, { recursive: true, force: true });
});

test("the package is installed from the tarball, not linked", () => {
  const installed = path.join(HERE, "node_modules/tessera");
  assert.equal(lstatSync(installed).isSymbolicLink(), false, "node_modules/tessera is a real directory");
  const files = readdirSync(installed);
  for (const f of ["package.json", "tessera.js", "tessera_bg.wasm", "tessera.d.ts", "README.md", "react"]) {
    assert.ok(files.includes(f), `the tarball ships ${f}`);
  }
  const manifest = JSON.parse(readFileSync(path.join(installed, "package.json"), "utf8"));
  assert.equal(manifest.name, "tessera");
  assert.equal(manifest.types, "./tessera.d.ts");
  assert.ok(manifest.exports["."] && manifest.exports["./react"], "exports . and ./react");
  assert.ok(Array.isArray(manifest.sideEffects), "sideEffects declared");
  assert.equal(manifest.peerDependencies?.react, ">=18");
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
  // src/types-check.ts uses the public API and expects misuse (unknown event, bad storage
  // name) to be a type error; tsc fails if a declaration is missing or too loose.
  try {
    sh(process.execPath, [path.join(HERE, "node_modules/typescript/bin/tsc"), "-p", path.join(HERE, "tsconfig.json")]);
  } catch (err) {
    assert.fail(`tsc reported errors:\n${err.stdout}${err.stderr}`);
  }
});

test("vite build emitted the wasm module as an asset", () => {
  const assets = readdirSync(path.join(DIST, "assets"));
  const wasm = assets.filter((f) => f.endsWith(".wasm"));
  assert.equal(wasm.length, 1, `one .wasm asset in dist/assets: ${assets.join(", ")}`);
  assert.ok(statSync(path.join(DIST, "assets", wasm[0])).size > 1000);
  assert.ok(existsSync(path.join(DIST, "react.html")));
});

async function open(file) {
  const page = await browser.context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  // Non-2xx responses (the 401 of a resume without a cookie) are logged by Chromium as
  // "Failed to load resource"; they are expected answers, not errors of the app.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) page.errors.push(m.text());
  });
  await page.goto(new URL(file, server.url).href);
  return page;
}

test("plain API from the built app: start, login, fetch /api/me, logout", async () => {
  const page = await open("index.html");
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

for (const [label, file, starts] of [
  ["production build", "react.html", 1],
  ["development build, StrictMode double mount", "dev/react.html", 2],
]) {
  test(`React hook (${label}): login, fetch, logout`, async () => {
    const page = await open(file);
    const state = () => page.locator("#state").innerText();
    await page.waitForFunction(() => document.querySelector("#state")?.textContent === "anonymous", null, {
      timeout: 20_000,
    });
    // StrictMode mounts, unmounts and mounts again in development: the hook starts a session
    // each time and disposes the first one; the page must behave as if there were one.
    assert.equal(await page.evaluate(() => window.started), starts, "sessions started by the hook");
    await page.click("#login");
    await page.waitForFunction(() => document.querySelector("#state")?.textContent === "active");
    assert.equal(await page.locator("#last-event").innerText(), "login");
    await page.click("#me");
    await page.waitForFunction(() => document.querySelector("#me-out")?.textContent.startsWith("200"));
    assert.match(await page.locator("#me-out").innerText(), /"username":"alice"/);
    await page.click("#logout");
    await page.waitForFunction(() => document.querySelector("#state")?.textContent === "logged-out");
    assert.equal(await state(), "logged-out");
    assert.equal(await page.locator("#error").innerText(), "");
    assert.deepEqual(page.errors, []);
    await page.close();
  });
}
