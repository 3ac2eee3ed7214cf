// Protocol property 4/5 in a real browser: a tampered (or garbage) persisted session record is
// wiped, never used, and the user is asked to sign in again; nothing throws in the page.
import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import { openDemo, setup, signIn, stateOf, waitForState, waitReady, resetContext } from "./harness.mjs";

let env;
before(async () => {
  env = await setup();
});
afterEach(async () => {
  await resetContext(env.context, env.server.url);
});
after(async () => {
  await env?.teardown();
});

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

for (const area of ["local", "session"]) {
  for (const [how, tamper] of Object.entries(tamperings)) {
    test(`${area}Storage record ${how}: wiped, sign-in asked, no crash`, async () => {
      const query = `?storage=${area}`;
      const page = await openDemo(env.context, env.server.url, query);
      await signIn(page, "alice");
      const entries = await sdkEntries(page, area);
      assert.ok(entries.length > 0, `the SDK persisted a record in ${area}Storage`);
      for (const [, value] of entries) {
        assert.ok(!/eyJ[\w-]+\.[\w-]+\./.test(value), "no readable JWT in storage: the record is sealed");
      }
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
      await waitForState(page, ["anonymous", "logged-out"], 5_000);
      // The tampered values are gone (wiped, not kept and not re-used).
      const after = await sdkEntries(page, area);
      for (const [k, v] of tampered) {
        assert.ok(!after.some(([k2, v2]) => k2 === k && v2 === v), `tampered record ${k} was wiped`);
      }
      // The user is asked to sign in again.
      await page.locator("#sign-in-again, #login-submit").first().waitFor({ state: "visible" });
      const view = await page.evaluate(() => document.body.dataset.view);
      assert.ok(["login", "cleared"].includes(view), `sign-in is offered (view ${view})`);
      assert.deepEqual(page.errors, [], "no page errors");
      // And signing in again works.
      if (view === "cleared") await page.click("#sign-in-again");
      await signIn(page, "alice");
      assert.equal(await stateOf(page), "active");
      await page.click("#logout");
      await waitForState(page, "logged-out");
      await page.close();
    });
  }
}
