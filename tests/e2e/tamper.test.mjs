// Protocol property 4/5 in a real browser: a tampered (or garbage) persisted session record is
// wiped, never used, and the user is asked to sign in again; nothing throws in the page.
import assert from "node:assert/strict";
import { test } from "node:test";
import { openDemo, signIn, stateOf, useEnv, waitForState, waitReady } from "./harness.mjs";

const env = useEnv();

/** The SDK's own Web Storage entries (the demo's keys start with "demo:"). */
function sdkEntries(page, area) {
  return page.evaluate((a) => {
    const s = a === "local" ? localStorage : sessionStorage;
    return Object.keys(s)
      .filter((k) => !k.startsWith("demo:"))
      .map((k) => [k, s.getItem(k)]);
  }, area);
}

const tamperings = {
  "one flipped character in the middle": (v) => {
    const i = Math.floor(v.length / 2);
    const c = v[i] === "A" ? "B" : "A";
    return v.slice(0, i) + c + v.slice(i + 1);
  },
  "truncated": (v) => v.slice(0, Math.floor(v.length / 3)),
  "not the record format": () => "{\"v\":99,\"garbage\":[1,2,3]}",
  "binary junk": () => "\u0000\uffff\ud800 not base64 %%%",
};

/** Signs in with sealed persistence in `area` and returns the SDK's record(s) once written. */
async function signInPersisted(page, area) {
  await signIn(page, "alice");
  // The record is sealed with the server-held vault key, fetched after login: wait for it.
  await page.waitForFunction(
    (a) => Object.keys(a === "local" ? localStorage : sessionStorage).some((k) => k.startsWith("tessera:token:")),
    area,
    { timeout: 5_000 },
  );
  return (await sdkEntries(page, area)).filter(([k]) => k.startsWith("tessera:token:"));
}

async function tamperAndReload(page, area, entries, tamper) {
  const tampered = entries.map(([k, v]) => [k, tamper(v)]);
  await page.evaluate(
    ([a, list]) => {
      const s = a === "local" ? localStorage : sessionStorage;
      for (const [k, v] of list) s.setItem(k, v);
    },
    [area, tampered],
  );
  await page.reload();
  await waitReady(page);
  return tampered;
}

for (const area of ["local", "session"]) {
  for (const [how, tamper] of Object.entries(tamperings)) {
    test(`${area}Storage record ${how}: wiped, reported, never used, sign-in asked; no crash`, async () => {
      const page = await openDemo(env.context, env.server.url, `?storage=${area}`);
      const entries = await signInPersisted(page, area);
      assert.ok(entries.length > 0, `the SDK persisted a record in ${area}Storage`);
      for (const [, value] of entries) {
        assert.ok(!/eyJ[\w-]+\.[\w-]+\./.test(value), "no readable JWT in storage: the record is sealed");
      }
      const tampered = await tamperAndReload(page, area, entries, tamper);
      await page.waitForFunction(() => window.tessera.events.some((e) => e.type === "error"), null, { timeout: 5_000 });
      await waitForState(page, ["anonymous", "logged-out", "active"], 5_000);
      await page.waitForTimeout(300); // a resume, if any, would have started by now

      // Reported with a stable code…
      const errors = await page.evaluate(() => window.tessera.events.filter((e) => e.type === "error").map((e) => e.detail));
      assert.ok(
        errors.some((e) => /^(vault_(tampered|encoding|truncated|version)|record_invalid)$/.test(e?.code)),
        `an error event reports the bad record: ${JSON.stringify(errors)}`,
      );
      if (how === "one flipped character in the middle") {
        assert.ok(errors.some((e) => e?.code === "vault_tampered"), "a flipped bit fails authentication");
      }
      // …wiped…
      const after = await sdkEntries(page, area);
      for (const [k, v] of tampered) {
        assert.ok(!after.some(([k2, v2]) => k2 === k && v2 === v), `tampered record ${k} was wiped`);
      }
      // …never used, and the session is over: no silent resume from the refresh cookie, the
      // user is asked to sign in again.
      assert.notEqual(await stateOf(page), "active", "the bad record did not restore a session");
      assert.ok(["anonymous", "logged-out"].includes(await stateOf(page)));
      await page.locator("#login-submit").waitFor({ state: "visible", timeout: 2_000 });
      assert.equal(
        await page.evaluate(async () => (await window.tessera.session.fetch("/api/me")).status),
        401,
        "no bearer is used after the wipe",
      );
      assert.deepEqual(page.errors, [], "no page errors");
      // Signing in again works.
      await signIn(page, "alice");
      assert.equal(await stateOf(page), "active");
      await page.close();
    });
  }
}
