// Shared helpers for Tessera's end-to-end tests: a real `tessera-server --demo` on a loopback
// port with a SQLite store in a temp dir, and a real headless Chromium (playwright-core,
// /usr/bin/chromium) with a fresh profile. Nothing is mocked.
//
// The test script builds the server (`cargo build -p tessera-server`) and the web package into
// `pkg/` first; these helpers only check that both exist and say what to run if not.
//
// Environment:
//   TESSERA_SERVER_BIN  server binary (default target/debug/tessera-server, or
//                       $CARGO_TARGET_DIR/debug/tessera-server when that exists)
//   TESSERA_PKG_DIR     web package served at /pkg/ (default pkg/)
//   CHROMIUM_BIN        browser (default /usr/bin/chromium)
//   TESSERA_E2E_DEBUG=1 echo server output

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { after, afterEach, before } from "node:test";
import { chromium } from "playwright-core";
import { DEMO_TOTP_SECRET, totp } from "../../www/totp.js";

export { sleep, totp };

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const RESULTS_DIR = path.join(ROOT, "test-results");
export const REFRESH_COOKIE = "__Host-tessera_rt";
export const DEMO_PASSWORD = "tessera-demo";
export const BOB_TOTP_SECRET = DEMO_TOTP_SECRET;
export const DEFINITIVE_END_CODES = ["refresh_invalid", "refresh_reused", "session_revoked", "session_expired"];

/** Chromium flags: headless, root-safe, and quiet on a closed network (docs/toolchain.md). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

// ---- prerequisites -------------------------------------------------------------------------------

/** The server binary to run; throws a clear error when it is not built. */
export function serverBin() {
  const candidates = [];
  if (process.env.TESSERA_SERVER_BIN) candidates.push(path.resolve(ROOT, process.env.TESSERA_SERVER_BIN));
  else {
    candidates.push(path.join(ROOT, "target/debug/tessera-server"));
    if (process.env.CARGO_TARGET_DIR) {
      candidates.push(path.resolve(ROOT, process.env.CARGO_TARGET_DIR, "debug/tessera-server"));
    }
  }
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `tessera-server binary not found (looked at ${candidates.join(", ")}). ` +
        "Build it with `cargo build -p tessera-server` or set TESSERA_SERVER_BIN.",
    );
  }
  return found;
}

/** Throws a clear error when the web package is missing from pkg/. */
export function requirePkg(pkgDir = path.resolve(ROOT, process.env.TESSERA_PKG_DIR ?? "pkg")) {
  for (const file of ["tessera.js", "tessera_bg.wasm"]) {
    if (!existsSync(path.join(pkgDir, file))) {
      throw new Error(
        `${path.join(pkgDir, file)} is missing. Build the web package first: ` +
          "`wasm-pack build --release --target web --out-dir pkg && node scripts/package.mjs pkg` " +
          "(scripts/test.sh does this).",
      );
    }
  }
  return pkgDir;
}

// ---- the server ----------------------------------------------------------------------------------

/**
 * Starts `tessera-server --demo` on 127.0.0.1 with a SQLite store in `dir` (a new temp dir by
 * default). Resolves once the server printed `tessera-server listening on http://…/`.
 *
 * @param {object} [opts]
 * @param {number} [opts.accessTtl]        --access-ttl seconds
 * @param {number} [opts.idleTimeout]      --idle-timeout seconds
 * @param {number} [opts.absoluteTimeout]  --absolute-timeout seconds
 * @param {number} [opts.port]             0 (default) picks a free port
 * @param {string} [opts.dir]              directory for the SQLite file
 * @param {string} [opts.wwwDir] [opts.pkgDir]
 * @param {string[]} [opts.args]           extra flags
 */
export async function startServer(opts = {}) {
  const bin = serverBin();
  const pkgDir = opts.pkgDir ?? requirePkg();
  const dir = opts.dir ?? (await mkdtemp(path.join(tmpdir(), "tessera-e2e-")));
  const ownsDir = !opts.dir;
  const args = [
    "--demo",
    "--listen",
    `127.0.0.1:${opts.port ?? 0}`,
    "--store",
    `sqlite://${path.join(dir, "t.db")}`,
    "--www-dir",
    opts.wwwDir ?? path.join(ROOT, "www"),
    "--pkg-dir",
    pkgDir,
  ];
  if (opts.accessTtl !== undefined) args.push("--access-ttl", String(opts.accessTtl));
  if (opts.idleTimeout !== undefined) args.push("--idle-timeout", String(opts.idleTimeout));
  if (opts.absoluteTimeout !== undefined) args.push("--absolute-timeout", String(opts.absoluteTimeout));
  if (opts.args) args.push(...opts.args);

  const proc = spawn(bin, args, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, TESSERA_DEMO: "1", RUST_BACKTRACE: "1" },
  });
  const logs = [];
  const keep = (line) => {
    logs.push(line);
    if (logs.length > 400) logs.shift();
    if (process.env.TESSERA_E2E_DEBUG) process.stderr.write(`[server] ${line}\n`);
  };
  createInterface({ input: proc.stderr }).on("line", keep);
  const stdout = createInterface({ input: proc.stdout });

  const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`tessera-server did not print its URL within 30 s:\n${logs.slice(-30).join("\n")}`));
    }, 30_000);
    stdout.on("line", (line) => {
      keep(line);
      const m = /tessera-server listening on (http:\/\/[^\s]+?\/?)\s*$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].endsWith("/") ? m[1] : `${m[1]}/`);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`tessera-server exited early (${code ?? signal}) with ${args.join(" ")}:\n${logs.slice(-30).join("\n")}`));
    });
  });
  const port = Number(new URL(url).port);

  const server = {
    url,
    origin: new URL(url).origin,
    port,
    dir,
    proc,
    logs,
    /** Stops the server (SIGTERM, then SIGKILL after 5 s). Keeps the database. */
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(t);
    },
    /** Stops and starts the server again on the same port with the same SQLite file. */
    async restart(extra = {}) {
      await server.stop();
      return startServer({ ...opts, ...extra, dir, port });
    },
    /** Stops the server and removes its temp dir (when this call created it). */
    async close() {
      await server.stop();
      if (ownsDir) await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}

// ---- the browser ---------------------------------------------------------------------------------

/**
 * Launches a fresh Chromium (new temp profile) and returns its single persistent context;
 * every page opened in it shares cookies, storage, BroadcastChannel and Web Locks, like tabs.
 */
export async function launchBrowser() {
  const executablePath = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
  if (!existsSync(executablePath)) throw new Error(`Chromium not found at ${executablePath} (set CHROMIUM_BIN)`);
  const userDataDir = await mkdtemp(path.join(tmpdir(), "tessera-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1200, height: 900 },
  });
  // launchPersistentContext opens one blank page; tests open their own.
  for (const p of context.pages()) await p.close().catch(() => {});
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Leaves `context` as a fresh browser would be: every tab closed, no cookies, no storage.
 * Use in `afterEach`, so a failed test does not leave a live session to the next one.
 */
export async function resetContext(context, url) {
  for (const p of context.pages()) await p.close().catch(() => {});
  await context.clearCookies();
  if (url) {
    const p = await context.newPage();
    await p.goto(new URL("favicon-reset-missing.txt", url).href).catch(() => {});
    await p.evaluate(async () => {
      localStorage.clear();
      sessionStorage.clear();
      for (const db of (await indexedDB.databases?.()) ?? []) if (db.name) indexedDB.deleteDatabase(db.name);
      for (const name of await caches.keys()) await caches.delete(name);
    }).catch(() => {});
    await p.close();
  }
}

/**
 * Opens the demo page in a new tab of `context` and waits until the SDK started
 * (`window.tessera.ready`). Page errors and console errors are collected in `page.errors`.
 */
export async function openDemo(context, url, query = "") {
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (err) => page.errors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    // Chromium logs every non-2xx fetch as "Failed to load resource"; expected 401s (e.g. the
    // resume attempt without a cookie) are not page errors.
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) {
      page.errors.push(`console: ${msg.text()}`);
    }
  });
  const target = new URL(query.startsWith("?") || query === "" ? `index.html${query}` : query, url).href;
  await page.goto(target);
  await waitReady(page);
  return page;
}

/** Waits until the demo page's SDK has started; throws with the page's reason if it failed. */
export async function waitReady(page, timeout = 15_000) {
  await page.waitForFunction(() => window.tessera && (window.tessera.ready || window.tessera.error), null, { timeout });
  const error = await page.evaluate(() => window.tessera.error ?? null);
  if (error) throw new Error(`demo page failed to start: ${error}`);
}

/**
 * The SDK's coordination records in localStorage, neither a token nor a secret, which a logout
 * leaves: the shared record (the logout epoch and token timing: tabs opened later know the
 * session ended, kept for good) and, in cookie mode until the server answered the logout, the
 * owed revoke ("one" or "all": a tab started meanwhile sends it again and adopts no cookie).
 */
export const SDK_RECORDS = ["tessera:shared:", "tessera:revoke:"];

/** Web Storage keys left in `page`, apart from the SDK's coordination records. */
export function storageLeft(page) {
  return page.evaluate(
    (ps) => ({
      local: Object.keys(localStorage).filter((k) => !ps.some((p) => k.startsWith(p))),
      session: Object.keys(sessionStorage).filter((k) => !ps.some((p) => k.startsWith(p))),
    }),
    SDK_RECORDS,
  );
}

/** Waits until no revoke is owed in `page` (the server answered the logout): at most 5 s. */
export async function waitNothingOwed(page) {
  await page.waitForFunction(() => !Object.keys(localStorage).some((k) => k.startsWith("tessera:revoke:")), null, {
    timeout: 5_000,
  });
}

/** The SDK's state in `page`. */
export function stateOf(page) {
  return page.evaluate(() => (window.tessera.session ? String(window.tessera.session.state) : "loading"));
}

/** Waits until `page`'s session is in `state` (one name or a list). */
export async function waitForState(page, state, timeout = 10_000) {
  const wanted = Array.isArray(state) ? state : [state];
  try {
    await page.waitForFunction((w) => w.includes(String(window.tessera?.session?.state)), wanted, {
      timeout,
      polling: 20,
    });
  } catch (err) {
    const now = await stateOf(page).catch(() => "unknown");
    throw new Error(`state ${wanted.join("|")} not reached in ${timeout} ms (is ${now}): ${err.message}`);
  }
}

/** The SDK events `page` saw so far: [{type, detail, at}]. */
export function eventsOf(page, type) {
  return page.evaluate((t) => window.tessera.events.filter((e) => !t || e.type === t), type ?? null);
}

/** Waits for the `n`-th event of `type` in `page` and returns it. */
export async function waitForEvent(page, type, n = 1, timeout = 10_000) {
  await page.waitForFunction(([t, k]) => window.tessera.events.filter((e) => e.type === t).length >= k, [type, n], {
    timeout,
    polling: 20,
  });
  const list = await eventsOf(page, type);
  return list[n - 1];
}

/**
 * Signs in through the page's form; for bob, answers the TOTP step with a code computed here
 * by www/totp.js (the demo's own authenticator module; the server checks it independently).
 */
export async function signIn(page, username = "alice") {
  await page.locator("#login-panel").waitFor({ state: "visible" });
  await page.fill("#username", username);
  await page.fill("#password", DEMO_PASSWORD);
  await page.click("#login-submit");
  if (username === "bob") {
    await waitForState(page, "mfa-required");
    await page.fill("#mfa-code", await totp(BOB_TOTP_SECRET));
    await page.click("#mfa-submit");
  }
  await waitForState(page, "active");
}

/** Reads the HttpOnly refresh cookie from the browser's cookie jar. */
export async function refreshCookie(context) {
  const all = await context.cookies();
  return all.find((c) => c.name === REFRESH_COOKIE) ?? null;
}

/** POSTs to the server from Node (not the browser), e.g. to replay an old refresh cookie. */
export async function postAuth(server, route, { cookie, body, headers = {} } = {}) {
  const res = await fetch(new URL(route, server.url), {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-tessera-csrf": "1",
      origin: server.origin,
      ...(cookie ? { cookie } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* empty or not JSON */
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** Saves a full-page screenshot under test-results/ (gitignored) and returns its path. */
export async function screenshot(page, name) {
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Sets up one server + one browser for a test file and tears both down after it.
 * Use inside `before`/`after` of node:test.
 */
export async function setup(serverOpts = {}) {
  const server = await startServer(serverOpts);
  let browser;
  try {
    browser = await launchBrowser();
  } catch (err) {
    await server.close();
    throw err;
  }
  return {
    server,
    browser,
    context: browser.context,
    async teardown() {
      await browser.close();
      await server.close();
    },
  };
}

/**
 * Registers the node:test hooks of a test file: one server + one browser started before its
 * first test (`setup(serverOpts)`), torn down after its last, and (unless `resetEachTest` is
 * false) the browser context reset between tests. Returns the environment object, filled in
 * once `before` has run: `{ server, browser, context, teardown }`.
 */
export function useEnv(serverOpts = {}, { resetEachTest = true } = {}) {
  const env = {};
  before(async () => {
    Object.assign(env, await setup(serverOpts));
  });
  if (resetEachTest) {
    afterEach(async () => {
      await resetContext(env.context, env.server.url);
    });
  }
  after(async () => {
    await env.teardown?.();
  });
  return env;
}
