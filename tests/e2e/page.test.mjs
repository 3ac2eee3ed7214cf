// The demo page and the server's public surface, in one real Chromium against a real server:
// the page renders and is accessible, static assets and JWKS are served, alice and bob
// (with a TOTP code) sign in through the UI, the idle warning is a keyboard-usable modal,
// and screenshots of the signed-out, signed-in and idle-warning states are saved.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  BOB_TOTP_SECRET,
  eventsOf,
  openDemo,
  screenshot,
  signIn,
  stateOf,
  totp,
  useEnv,
  waitForEvent,
  waitForState,
} from "./harness.mjs";

const env = useEnv();

/** RFC 6238 Appendix B, SHA-1: [seconds since the epoch, 8-digit code]. */
const RFC6238_SHA1 = [
  [59, "94287082"],
  [1111111109, "07081804"],
  [1111111111, "14050471"],
  [1234567890, "89005924"],
  [2000000000, "69279037"],
  [20000000000, "65353130"],
];

describe("server surface", () => {
  test("serves the demo page, its assets and the web package on one origin", async () => {
    const { server } = env;
    const html = await fetch(new URL("index.html", server.url));
    assert.equal(html.status, 200);
    assert.match(html.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await html.text(), /<title>Tessera demo/);
    const root = await fetch(server.url);
    assert.equal(root.status, 200, "GET / serves index.html");
    const js = await fetch(new URL("pkg/tessera.js", server.url));
    assert.equal(js.status, 200);
    assert.match(js.headers.get("content-type") ?? "", /javascript/);
    const wasm = await fetch(new URL("pkg/tessera_bg.wasm", server.url));
    assert.equal(wasm.status, 200);
    assert.equal(wasm.headers.get("content-type"), "application/wasm", "streaming compilation needs application/wasm");
    const bytes = new Uint8Array(await wasm.arrayBuffer());
    assert.deepEqual([...bytes.slice(0, 4)], [0x00, 0x61, 0x73, 0x6d], "wasm magic");
  });

  test("publishes Ed25519 signing keys at /.well-known/jwks.json", async () => {
    const res = await fetch(new URL(".well-known/jwks.json", env.server.url));
    assert.equal(res.status, 200);
    const jwks = await res.json();
    assert.ok(Array.isArray(jwks.keys) && jwks.keys.length >= 1, "at least one key");
    for (const key of jwks.keys) {
      assert.equal(key.kty, "OKP");
      assert.equal(key.crv, "Ed25519");
      assert.ok(key.kid, "every key has a kid");
      assert.ok(typeof key.x === "string" && key.x.length >= 43, "public key x present");
      assert.equal(key.d, undefined, "no private part is published");
    }
  });

  test("GET /api/me without a bearer is a 401 problem with code unauthorized", async () => {
    const res = await fetch(new URL("api/me", env.server.url));
    assert.equal(res.status, 401);
    assert.match(res.headers.get("content-type") ?? "", /application\/problem\+json/);
    const body = await res.json();
    assert.equal(body.code, "unauthorized");
    assert.equal(body.status, 401);
  });
});

describe("demo page", () => {
  test("signed out: renders a labelled sign-in form, no errors; screenshot", async () => {
    const page = await openDemo(env.context, env.server.url);
    await waitForState(page, "anonymous");
    assert.equal(await page.locator("#login-panel").isVisible(), true);
    assert.equal(await page.locator("#account-panel").isVisible(), false);
    // Every form control has an accessible name from its <label>.
    assert.equal(await page.getByLabel("Username").count(), 1);
    assert.equal(await page.getByLabel("Password", { exact: true }).count(), 1);
    assert.equal(await page.getByRole("button", { name: "Sign in" }).count(), 1);
    // Every control in the page (visible or not yet shown) is named, the page has a language
    // and one h1, and ids are unique.
    const audit = await page.evaluate(() => {
      const unnamed = [];
      for (const el of document.querySelectorAll("input, select, textarea")) {
        if (el.labels.length === 0 && !el.getAttribute("aria-label")) unnamed.push(el.id || el.name);
      }
      for (const el of document.querySelectorAll("button")) {
        if (!(el.textContent.trim() || el.getAttribute("aria-label"))) unnamed.push(el.id);
      }
      const ids = [...document.querySelectorAll("[id]")].map((e) => e.id);
      return {
        unnamed,
        duplicateIds: ids.filter((id, i) => ids.indexOf(id) !== i),
        lang: document.documentElement.lang,
        h1: document.querySelectorAll("h1").length,
      };
    });
    assert.deepEqual(audit, { unnamed: [], duplicateIds: [], lang: "en", h1: 1 });
    // Keyboard: Tab from the top reaches the skip link first.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.className), "skip-link");
    await screenshot(page, "demo-signed-out");
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test("the page's authenticator is RFC 6238 (Appendix B vectors) and shows the current code for bob", async () => {
    const page = await openDemo(env.context, env.server.url);
    // The page runs www/totp.js, the module the tests use too: check it in the browser's
    // WebCrypto against the RFC's own vectors (SHA-1, 8 digits, seed "12345678901234567890").
    const inPage = await page.evaluate(async (times) => {
      const seed = new TextEncoder().encode("12345678901234567890");
      const out = [];
      for (const t of times) out.push(await window.tesseraDemo.totp(seed, t * 1000, 8));
      return out;
    }, RFC6238_SHA1.map(([t]) => t));
    assert.deepEqual(inPage, RFC6238_SHA1.map(([, code]) => code));
    // bob's second step shows the current code of the demo secret (one of the two codes
    // around a step boundary, if one passed while the page rendered).
    await page.click("#fill-bob");
    await page.click("#login-submit");
    await waitForState(page, "mfa-required");
    const before = await totp();
    await page.locator("#totp-code").filter({ hasText: /^\d{6}$/ }).waitFor();
    const shown = await page.locator("#totp-code").innerText();
    const after = await totp();
    assert.ok(shown === before || shown === after, `page shows ${shown}, expected ${before} or ${after}`);
    assert.match(await page.locator("#totp-secret").innerText(), new RegExp(`^${BOB_TOTP_SECRET}$`));
    await page.close();
  });

  test("keyboard only: sign in and out with Tab and Enter", async () => {
    const page = await openDemo(env.context, env.server.url);
    await waitForState(page, "anonymous");
    const focused = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.className);
    // Skip link, then the two "Use …" buttons, then the username field.
    for (const expected of ["skip-link", "fill-alice", "fill-bob", "username"]) {
      await page.keyboard.press("Tab");
      assert.equal(await focused(), expected);
    }
    await page.keyboard.type("alice");
    await page.keyboard.press("Tab");
    assert.equal(await focused(), "password");
    await page.keyboard.type("tessera-demo");
    await page.keyboard.press("Enter");
    await waitForState(page, "active");
    assert.equal(await focused(), "account-title", "focus moves to the signed-in panel");
    // Tab to "Sign out" and press Enter.
    for (let i = 0; i < 20 && (await focused()) !== "logout"; i++) await page.keyboard.press("Tab");
    assert.equal(await focused(), "logout");
    await page.keyboard.press("Enter");
    await waitForState(page, "logged-out");
    await page.locator("#cleared-panel").waitFor({ state: "visible" });
    assert.equal(await focused(), "cleared-title", "focus moves to the signed-out panel");
    await page.close();
  });

  test("a wrong password shows an error in the form and stays signed out", async () => {
    const page = await openDemo(env.context, env.server.url);
    await page.fill("#username", "alice");
    await page.fill("#password", "not-the-password");
    await page.click("#login-submit");
    await page.locator("#login-error").waitFor({ state: "visible" });
    assert.match(await page.locator("#login-error").innerText(), /fail|invalid|credential/i);
    assert.equal(await stateOf(page), "anonymous");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "password", "focus returns to the password");
    await page.close();
  });

  test("alice signs in, calls /api/me, signs out: screenshots and cleanup report", async () => {
    const page = await openDemo(env.context, env.server.url);
    await signIn(page, "alice");
    assert.equal(await page.locator("#account-panel").isVisible(), true);
    const login = await eventsOf(page, "login");
    assert.equal(login.length, 1, "one login event");
    await page.click("#call-api");
    await page.locator("#api-result").filter({ hasText: "200" }).waitFor();
    const body = await page.locator("#api-result").innerText();
    assert.match(body, /"username": "alice"/);
    // The login event carries the token's expiry: the panel counts down from the server's TTL.
    assert.match(await page.locator("#fact-access").innerText(), /^[45]:\d\d min$/, "access-token countdown");
    assert.match(await page.locator("#fact-idle").innerText(), /^1[45]:\d\d min$/, "idle countdown");
    // The countdowns are the SDK's own getters, not the page's estimate: within a render tick
    // (250 ms) plus rounding to whole seconds of `expiresAt` / `idleDeadline`.
    const shown = await page.evaluate(() => {
      const s = window.tessera.session;
      const secs = (id) => {
        const m = /^(\d+):(\d\d) min$/.exec(document.getElementById(id).textContent);
        return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
      };
      return { now: Date.now(), expiresAt: s.expiresAt, idleDeadline: s.idleDeadline, access: secs("fact-access"), idle: secs("fact-idle") };
    });
    for (const [fact, at] of [["access", shown.expiresAt], ["idle", shown.idleDeadline]]) {
      assert.equal(typeof at, "number", `session getter for ${fact} is a number`);
      const expected = (at - shown.now) / 1000;
      assert.ok(Math.abs(shown[fact] - expected) <= 1.5, `${fact} shows ${shown[fact]} s, the SDK says ${expected.toFixed(1)} s`);
    }
    await screenshot(page, "demo-signed-in");
    await page.click("#logout");
    await waitForState(page, "logged-out");
    await page.locator("#cleared-panel").waitFor({ state: "visible" });
    const logout = await waitForEvent(page, "logout");
    assert.ok(logout.detail && logout.detail.reason, "logout event carries a reason");
    await page.locator("[data-testid=cleared-check]").waitFor();
    await screenshot(page, "demo-signed-out-after-logout");
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test("bob signs in with the TOTP step", async () => {
    const page = await openDemo(env.context, env.server.url);
    await page.click("#fill-bob");
    await page.click("#login-submit");
    await waitForState(page, "mfa-required");
    assert.equal(await page.locator("#mfa-panel").isVisible(), true);
    assert.equal(await page.evaluate(() => document.activeElement?.id), "mfa-code", "focus moves to the code field");
    // A wrong code is refused and the session stays at the second step.
    const good = await totp();
    const bad = String((Number(good) + 500_000) % 1_000_000).padStart(6, "0");
    await page.fill("#mfa-code", bad);
    await page.click("#mfa-submit");
    await page.locator("#mfa-error").waitFor({ state: "visible" });
    assert.equal(await stateOf(page), "mfa-required");
    // The page's helper fills the right code.
    await page.click("#totp-use");
    await page.click("#mfa-submit");
    await waitForState(page, "active");
    await page.click("#call-api");
    await page.locator("#api-result").filter({ hasText: "200" }).waitFor();
    assert.match(await page.locator("#api-result").innerText(), /"username": "bob"/);
    await page.click("#logout");
    await waitForState(page, "logged-out");
    await page.close();
  });

  test("idle warning is a modal: focus inside, Escape keeps the session; screenshot", async () => {
    const page = await openDemo(env.context, env.server.url, "?idle=6000&warn=4000&lead=2000");
    await signIn(page, "alice");
    await waitForState(page, "idle-warning", 10_000);
    const dialog = page.locator("#idle-dialog");
    await dialog.waitFor({ state: "visible" });
    // A real modal: opened with showModal() (the rest of the page is inert), labelled, and
    // focus starts on "Stay signed in". (Any key press is activity, so it also answers the
    // warning: the session returns to active and the dialog closes.)
    const modal = await page.evaluate(() => {
      const d = document.getElementById("idle-dialog");
      return {
        open: d.open,
        modal: d.matches(":modal"),
        label: document.getElementById(d.getAttribute("aria-labelledby"))?.textContent,
        focus: document.activeElement?.id,
      };
    });
    assert.deepEqual(modal, { open: true, modal: true, label: "Are you still there?", focus: "stay" });
    assert.equal(await page.getByRole("dialog", { name: "Are you still there?" }).count(), 1);
    await screenshot(page, "demo-idle-warning");
    await page.keyboard.press("Escape");
    await waitForState(page, "active");
    assert.equal(await page.evaluate(() => document.getElementById("idle-dialog").open), false);
    // Second warning: the Stay button works too; then no answer logs out.
    await waitForState(page, "idle-warning", 10_000);
    await page.locator("#stay").dispatchEvent("click"); // no pointer move first: that alone is activity
    await waitForState(page, "active");
    await waitForState(page, "idle-warning", 10_000);
    await waitForState(page, "logged-out", 10_000);
    const logout = await waitForEvent(page, "logout");
    assert.match(String(logout.detail?.reason), /idle/);
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});
