// One small browser API for the cross-engine scenarios, with two backends:
//
//   Playwright (playwright-core)  → Chromium (/usr/bin/chromium), as in the rest of tests/e2e
//   WebDriver (selenium-webdriver) → Firefox ESR through geckodriver, and WebKitGTK's
//                                    MiniBrowser through WebKitWebDriver (on an Xvfb display)
//
// A scenario sees only this:
//   browser.engine / browser.version
//   browser.openTab(url)  → tab          browser.cookies(tab) → [{name, value, path, httpOnly, secure}]
//   browser.addCookie(tab, cookie)       browser.close()        (cookies sent to the tab's URL)
//   tab.eval(fn, arg)     runs fn(arg) in the page (fn must be self-contained; may be async)
//   tab.waitFor(fn, arg, {timeout, what})  polls fn(arg) in the page until truthy; returns it
//   tab.click(css) · tab.fill(css, text) · tab.activity(step) (trusted input) · tab.reload()
//   tab.close()  ·  browser.closeTabs()  ·  browser.clearCookies(url) (every cookie of url's host)
//
// WebDriver drives one browsing context at a time, so the backend switches to the tab before
// each command and serialises commands across tabs. Switching also brings that tab to the
// front (it is how a user moves between tabs); the other tabs are in the background, with
// whatever throttling the engine applies there.
//
// Environment: CHROMIUM_BIN (/usr/bin/chromium), FIREFOX_BIN (/usr/bin/firefox-esr),
// GECKODRIVER_BIN (geckodriver on PATH or ~/.cargo/bin), WEBKIT_DRIVER_BIN (/usr/bin/WebKitWebDriver),
// MINIBROWSER_BIN (WebKitGTK's MiniBrowser), TESSERA_E2E_DEBUG=1 (driver output).
import { spawn, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { chromium } from "playwright-core";
import { Builder, By, Capabilities, Key } from "selenium-webdriver";
import { Command, Name as CommandName } from "selenium-webdriver/lib/command.js";
import { CHROMIUM_ARGS } from "../harness.mjs";

export const ENGINES = ["chromium", "firefox", "webkit"];

// ---- locating the binaries ---------------------------------------------------------------------

function onPath(name) {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const p = path.join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  return null;
}

function firstExisting(what, candidates, hint) {
  const found = candidates.find((p) => p && existsSync(p));
  if (!found) throw new Error(`${what} not found (looked at ${candidates.filter(Boolean).join(", ")}). ${hint}`);
  return found;
}

const SETUP_HINT = "Run `bash scripts/setup.sh`, which installs it.";

/** Paths of every binary an engine needs; throws with what to run when one is missing. */
export function engineBinaries(engine) {
  switch (engine) {
    case "chromium":
      return { browser: firstExisting("Chromium", [process.env.CHROMIUM_BIN ?? "/usr/bin/chromium"], SETUP_HINT) };
    case "firefox":
      return {
        browser: firstExisting("Firefox", [process.env.FIREFOX_BIN, "/usr/bin/firefox-esr", "/usr/bin/firefox"], SETUP_HINT),
        driver: firstExisting(
          "geckodriver",
          [process.env.GECKODRIVER_BIN, onPath("geckodriver"), path.join(process.env.CARGO_HOME ?? path.join(homedir(), ".cargo"), "bin/geckodriver")],
          SETUP_HINT,
        ),
      };
    case "webkit":
      return {
        browser: firstExisting(
          "WebKitGTK MiniBrowser",
          [
            process.env.MINIBROWSER_BIN,
            "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
            "/usr/lib/aarch64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
            "/usr/libexec/webkit2gtk-4.1/MiniBrowser",
          ],
          SETUP_HINT,
        ),
        driver: firstExisting("WebKitWebDriver", [process.env.WEBKIT_DRIVER_BIN, "/usr/bin/WebKitWebDriver"], SETUP_HINT),
        xvfb: firstExisting("Xvfb", ["/usr/bin/Xvfb"], SETUP_HINT),
      };
    default:
      throw new Error(`unknown engine ${engine} (one of ${ENGINES.join(", ")})`);
  }
}

/** The version string each engine reports for itself (for the README table and test output). */
export function engineVersion(engine) {
  const bins = engineBinaries(engine);
  const out = (cmd, args) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  switch (engine) {
    case "chromium":
      return out(bins.browser, ["--version"]);
    case "firefox":
      return `${out(bins.browser, ["--version"])}, ${out(bins.driver, ["--version"]).split("\n")[0]}`;
    case "webkit":
      return `WebKitGTK ${out("dpkg-query", ["-W", "-f=${Version}", "webkit2gtk-driver"])} (WebKitWebDriver, MiniBrowser)`;
  }
}

// ---- shared helpers ------------------------------------------------------------------------------

async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Spawns a long-running helper process; `stop()` ends it (TERM, then KILL). */
function spawnHelper(name, cmd, args, env = process.env, extraStdio = []) {
  const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe", ...extraStdio], env });
  const logs = [];
  const keep = (chunk) => {
    const text = chunk.toString();
    logs.push(text);
    if (logs.length > 200) logs.shift();
    if (process.env.TESSERA_E2E_DEBUG) process.stderr.write(`[${name}] ${text}`);
  };
  proc.stdout.on("data", keep);
  proc.stderr.on("data", keep);
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  return {
    proc,
    logs,
    exited,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function waitForPort(port, helper, what, timeout = 20_000) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (helper.proc.exitCode !== null) throw new Error(`${what} exited early:\n${helper.logs.join("").slice(-2000)}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => (s.destroy(), resolve(true)));
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`${what} did not listen on ${port} within ${timeout} ms:\n${helper.logs.join("").slice(-2000)}`);
}

/** Polls `check()` until it returns a truthy value; throws `what` with the last value on timeout. */
async function poll(check, { timeout = 10_000, interval = 25, what = "condition" } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() >= end) throw new Error(`${what} not reached in ${timeout} ms`);
    await sleep(interval);
  }
}

// ---- Xvfb (WebKitGTK needs a display) -----------------------------------------------------------

let xvfb = null;
/** Starts one Xvfb for this process (it picks a free display number) and returns `:N`. */
async function display(bin) {
  if (xvfb) return xvfb.display;
  const helper = spawnHelper("xvfb", bin, ["-displayfd", "3", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"], process.env, ["pipe"]);
  const number = await new Promise((resolve, reject) => {
    let text = "";
    helper.proc.stdio[3].on("data", (d) => {
      text += d.toString();
      if (text.includes("\n")) resolve(text.trim());
    });
    helper.exited.then(() => reject(new Error(`Xvfb exited early: ${helper.logs.join("")}`)));
    setTimeout(() => reject(new Error("Xvfb did not report a display in 10 s")), 10_000);
  });
  xvfb = { helper, display: `:${number}` };
  return xvfb.display;
}

/** Stops the Xvfb started by this process, if any. */
export async function stopDisplay() {
  if (xvfb) await xvfb.helper.stop();
  xvfb = null;
}

// ---- Playwright backend (Chromium) --------------------------------------------------------------

async function launchPlaywright({ acceptInsecureCerts }) {
  const { browser: executablePath } = engineBinaries("chromium");
  const userDataDir = await mkdtemp(path.join(tmpdir(), "tessera-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1200, height: 900 },
    ignoreHTTPSErrors: acceptInsecureCerts,
  });
  for (const p of context.pages()) await p.close().catch(() => {});
  const version = context.browser()?.version() ?? execFileSync(executablePath, ["--version"], { encoding: "utf8" }).trim();

  function tabOf(page) {
    return {
      async eval(fn, arg) {
        return page.evaluate(fn, arg);
      },
      async waitFor(fn, arg, { timeout = 10_000, what = "condition" } = {}) {
        try {
          const handle = await page.waitForFunction(fn, arg, { timeout, polling: 20 });
          return handle.jsonValue();
        } catch (err) {
          throw new Error(`${what} not reached in ${timeout} ms: ${err.message.split("\n")[0]}`);
        }
      },
      async click(css) {
        await page.click(css);
      },
      async fill(css, text) {
        await page.fill(css, text);
      },
      async activity(step) {
        if (step % 2) await page.mouse.move(100 + (step % 50) * 5, 200 + (step % 7) * 10);
        else await page.keyboard.press("Shift");
      },
      async reload() {
        await page.reload();
      },
      async url() {
        return page.url();
      },
      async close() {
        await page.close();
      },
    };
  }

  return {
    engine: "chromium",
    backend: "playwright",
    version: `Chromium ${version}`,
    async openTab(url) {
      const page = await context.newPage();
      await page.goto(url);
      return tabOf(page);
    },
    async closeTabs() {
      for (const p of context.pages()) await p.close().catch(() => {});
    },
    async clearCookies() {
      await context.clearCookies();
    },
    async cookies(tab) {
      return (await context.cookies(await tab.url())).map(({ name, value, path, httpOnly, secure }) => ({ name, value, path, httpOnly, secure }));
    },
    async addCookie(_tab, cookie) {
      const domain = cookie.domain ?? "127.0.0.1";
      await context.addCookies([{ ...cookie, domain, path: cookie.path ?? "/" }]);
    },
    async close() {
      await context.close().catch(() => {});
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

// ---- WebDriver backend (Firefox, WebKitGTK) -----------------------------------------------------

function webdriverCapabilities(engine, bins, { acceptInsecureCerts }) {
  if (engine === "firefox") {
    return {
      browserName: "firefox",
      acceptInsecureCerts,
      "moz:firefoxOptions": {
        binary: bins.browser,
        args: ["-headless"],
        prefs: {
          // Quiet on a closed network; nothing here changes what the page can do.
          "app.update.disabledForTesting": true,
          "browser.safebrowsing.malware.enabled": false,
          "browser.safebrowsing.phishing.enabled": false,
          "network.captive-portal-service.enabled": false,
          "network.connectivity-service.enabled": false,
          "datareporting.policy.dataSubmissionEnabled": false,
          "toolkit.telemetry.reportingpolicy.firstRun": false,
        },
      },
    };
  }
  return {
    browserName: "MiniBrowser",
    acceptInsecureCerts,
    "webkitgtk:browserOptions": { binary: bins.browser, args: ["--automation"] },
  };
}

async function launchWebDriver(engine, { acceptInsecureCerts }) {
  const bins = engineBinaries(engine);
  const port = await freePort();
  let env = process.env;
  let args;
  if (engine === "firefox") {
    args = ["--port", String(port), "--host", "127.0.0.1", "--log", process.env.TESSERA_E2E_DEBUG ? "debug" : "warn"];
  } else {
    env = { ...process.env, DISPLAY: await display(bins.xvfb) };
    args = [`--port=${port}`, "--host=local"];
  }
  const helper = spawnHelper(path.basename(bins.driver), bins.driver, args, env);
  let driver;
  try {
    await waitForPort(port, helper, path.basename(bins.driver));
    driver = await new Builder()
      .usingServer(`http://127.0.0.1:${port}`)
      .withCapabilities(new Capabilities(webdriverCapabilities(engine, bins, { acceptInsecureCerts })))
      .build();
  } catch (err) {
    await helper.stop();
    throw err;
  }
  const caps = await driver.getCapabilities();
  const version = `${caps.getBrowserName()} ${caps.getBrowserVersion()}`;
  // Firefox opens real tabs (switching brings one to the front; the others are hidden, with
  // Firefox's background throttling). MiniBrowser under WebKitWebDriver does not bring a
  // switched-to tab to the front: it stays hidden and input actions never reach it. So in
  // WebKitGTK each "tab" is a top-level window of the same browser session (same cookies,
  // storage, BroadcastChannel and Web Locks), all visible on the Xvfb display.
  const tabKind = engine === "webkit" ? "window" : "tab";
  // Each WebKitWebDriver command takes 0.3-0.6 s here (Firefox's: ~20 ms), and a page load
  // with the Wasm module several seconds: upper bounds on waits stretch by this factor.
  const slowness = engine === "webkit" ? 3 : 1;
  // The window WebDriver opened stays as a "home" tab (never closed, so the session lives on).
  const home = await driver.getWindowHandle();

  // One command at a time, each in the right tab.
  let queue = Promise.resolve();
  let current = home;
  const inTab = (handle, fn) => {
    const next = queue.then(async () => {
      if (current !== handle) {
        await driver.switchTo().window(handle);
        current = handle;
      }
      return fn(driver);
    });
    queue = next.catch(() => {});
    return next;
  };
  const script = (fn) => `return (${fn.toString()}).apply(null, arguments);`;

  function tabOf(handle) {
    const tab = {
      handle,
      async eval(fn, arg) {
        return inTab(handle, (d) => d.executeScript(script(fn), arg === undefined ? null : arg));
      },
      async waitFor(fn, arg, { timeout = 10_000, what = "condition" } = {}) {
        return poll(() => tab.eval(fn, arg), { timeout: timeout * slowness, what });
      },
      async click(css) {
        await inTab(handle, async (d) => (await d.findElement(By.css(css))).click());
      },
      async fill(css, text) {
        await inTab(handle, async (d) => {
          const el = await d.findElement(By.css(css));
          await el.clear();
          await el.sendKeys(text);
        });
      },
      async activity(step) {
        // A raw W3C "Perform Actions" with only the source it needs: selenium's Actions
        // builder also declares a wheel source, and WebKitWebDriver never answers that.
        const source = step % 2
          ? { type: "pointer", id: "mouse", parameters: { pointerType: "mouse" },
              actions: [{ type: "pointerMove", duration: 0, origin: "viewport", x: 100 + (step % 50) * 5, y: 200 + (step % 7) * 10 }] }
          : { type: "key", id: "keyboard", actions: [{ type: "keyDown", value: Key.SHIFT }, { type: "keyUp", value: Key.SHIFT }] };
        await inTab(handle, (d) => d.execute(new Command(CommandName.ACTIONS).setParameter("actions", [source])));
      },
      async reload() {
        await inTab(handle, (d) => d.navigate().refresh());
      },
      async url() {
        return inTab(handle, (d) => d.getCurrentUrl());
      },
      async close() {
        await inTab(handle, async (d) => {
          await d.close();
          await d.switchTo().window(home);
          current = home;
        });
      },
    };
    return tab;
  }

  return {
    engine,
    backend: "webdriver",
    version,
    driver,
    async openTab(url) {
      const handle = await inTab(current, async (d) => {
        await d.switchTo().newWindow(tabKind);
        current = await d.getWindowHandle();
        await d.get(url);
        return current;
      });
      return tabOf(handle);
    },
    async closeTabs() {
      await inTab(current, async (d) => {
        for (const h of await d.getAllWindowHandles()) {
          if (h === home) continue;
          await d.switchTo().window(h);
          await d.close();
        }
        await d.switchTo().window(home);
        current = home;
      });
    },
    async clearCookies(url) {
      // WebDriver deletes the cookies of the current document: load one on that host first.
      const tab = await this.openTab(url);
      await inTab(tab.handle, (d) => d.manage().deleteAllCookies());
      await tab.close();
    },
    async cookies(tab) {
      // WebDriver returns the cookies of the tab's document (HttpOnly ones included).
      return inTab(tab.handle, async (d) =>
        (await d.manage().getCookies()).map(({ name, value, path, httpOnly, secure }) => ({ name, value, path, httpOnly, secure })),
      );
    },
    async addCookie(tab, cookie) {
      await inTab(tab.handle, (d) => d.manage().addCookie({ ...cookie, path: cookie.path ?? "/" }));
    },
    async close() {
      await Promise.race([queue, sleep(5_000)]); // a hung command must not keep the browser alive
      await driver.quit().catch(() => {});
      await helper.stop();
    },
  };
}

/**
 * Launches a fresh browser of `engine` (new profile; every tab shares its cookies and storage).
 * `acceptInsecureCerts` lets it load the scenarios' self-signed HTTPS front.
 */
export async function launchEngine(engine, { acceptInsecureCerts = false } = {}) {
  if (engine === "chromium") return launchPlaywright({ acceptInsecureCerts });
  if (engine === "firefox" || engine === "webkit") return launchWebDriver(engine, { acceptInsecureCerts });
  throw new Error(`unknown engine ${engine} (one of ${ENGINES.join(", ")})`);
}
