// A tab the browser froze (Page Lifecycle "frozen": a background tab, a discarded-then-restored
// one) runs no task while frozen and, when it thaws, receives every message queued meanwhile, in
// order. Its late handling of an old session's end must not undo what happened since in the
// other tabs. Headless Chromium does not hold BroadcastChannel messages for
// `Page.setWebLifecycleState: frozen`, so tab C holds them itself (an init script queues its
// bus messages and storage events until told to thaw), which is what a frozen tab sees.
import assert from "node:assert/strict";
import { test } from "node:test";
import { openDemo, signIn, stateOf, useEnv, waitForState, waitReady, sleep } from "./harness.mjs";

const env = useEnv();

// Runs in tab C before the page's scripts: while `window.__held` is an array, incoming bus
// messages and storage events wait in it; `window.__thaw()` delivers them in order.
function holdable() {
  const held = (deliver) => (window.__held ? window.__held.push(deliver) : deliver());
  const Real = BroadcastChannel;
  window.BroadcastChannel = class extends Real {
    set onmessage(f) {
      super.onmessage = f && ((e) => held(() => f.call(this, e)));
    }
    get onmessage() {
      return super.onmessage;
    }
  };
  const add = EventTarget.prototype.addEventListener;
  EventTarget.prototype.addEventListener = function (type, f, o) {
    if (type === "storage" && typeof f === "function") return add.call(this, type, (e) => held(() => f.call(this, e)), o);
    return add.call(this, type, f, o);
  };
  // `stale`: while the first held message is handled, `localStorage` reads show what they
  // showed at the freeze: another tab's writes reach a tab asynchronously, and a thawing tab
  // can take a queued bus message before them (session 10: C wiped the new session's data).
  let stale = null;
  const get = Storage.prototype.getItem;
  Storage.prototype.getItem = function (k) {
    return stale && this === localStorage ? (k in stale ? stale[k] : null) : get.call(this, k);
  };
  window.__freeze = (lag) => {
    window.__held = [];
    stale = null;
    if (lag) window.__lag = Object.fromEntries(Object.keys(localStorage).map((k) => [k, get.call(localStorage, k)]));
  };
  window.__thaw = () => {
    const q = window.__held || [];
    window.__held = null;
    q.forEach((f, i) => {
      stale = i === 0 ? window.__lag || null : null;
      f();
    });
    stale = null;
    return q.length;
  };
}

async function idbNames(page) {
  return page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name).sort());
}

for (const [dpop, lag] of [[false, false], [true, false], [false, true]]) {
  const variant = dpop ? " (DPoP)" : lag ? " (its view of localStorage lagging)" : "";
  test(`a tab frozen through a logout and a new login does not end the new session when it thaws${variant}`, async () => {
    const q = `?storage=local${dpop ? "&dpop=1" : ""}`;
    const a = await openDemo(env.context, env.server.url, q);
    const b = await openDemo(env.context, env.server.url, q);
    const c = await env.context.newPage();
    await c.addInitScript(holdable);
    await c.goto(new URL(`index.html${q}`, env.server.url).href);
    await waitReady(c);
    await signIn(a, "alice");
    await waitForState(b, "active");
    await waitForState(c, "active");
    await c.evaluate((lag) => window.__freeze(lag), lag);
    await a.click("#logout");
    await waitForState(b, "logged-out", 5_000);
    await b.click("#sign-in-again");
    await signIn(b, "alice");
    await waitForState(a, "active");
    const keysBefore = dpop ? await idbNames(b) : [];
    if (dpop) assert.ok(keysBefore.includes("tessera:dpop:tessera"), "the new session has its DPoP key");
    // The new session's app data, written before C thaws.
    await b.evaluate(() => localStorage.setItem("app:draft", "new session"));
    const delivered = await c.evaluate(() => window.__thaw());
    assert.ok(delivered > 0, "tab C had messages held");
    await waitForState(c, "active", 5_000);
    const out = await c.evaluate(() => window.tessera.events.filter((e) => e.type === "logout").map((e) => e.detail));
    assert.equal(out.length, 1, "C reports the old session's end once");
    assert.equal(out[0].reason, "user");
    assert.deepEqual(out[0].cleared.localStorage, [], "C's late wipe leaves localStorage to the new session");
    assert.deepEqual(out[0].cleared.cookies, [], "and the cookies");
    await sleep(500); // C's IndexedDB part of the wipe is asynchronous: give it time to act

    assert.equal(await b.evaluate(() => localStorage.getItem("app:draft")), "new session", "the new session's app data stays");
    if (dpop) assert.deepEqual(await idbNames(b), keysBefore, "the new session's DPoP key stays");
    assert.equal(await stateOf(b), "active", "tab B keeps its new session");
    assert.equal(await stateOf(a), "active", "tab A keeps it too");
    // B alone, reloaded: it must refresh from its cookie (with its key, under DPoP).
    await a.close();
    await c.close();
    await b.reload();
    await waitReady(b);
    await waitForState(b, "active", 10_000);
    const me = await b.evaluate(() => window.tessera.session.fetch("/api/me").then((r) => r.status));
    assert.equal(me, 200, "the new session still calls the API");
  });
}
