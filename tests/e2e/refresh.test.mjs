// Protocol property 1 in a real browser: with 5 tabs and a short access-token lifetime, each
// expiry produces exactly one `POST /auth/refresh` (requests counted at the browser context,
// which sees every tab's network), over several cycles; every tab gets each new token.
import assert from "node:assert/strict";
import { test } from "node:test";
import { eventsOf, openDemo, signIn, sleep, useEnv, waitForState } from "./harness.mjs";

const ACCESS_TTL_S = 4; // server --access-ttl
const LEAD_MS = 1_500; // SDK refreshLeadMs: refresh about 2.5 s after each token arrives
const TABS = 5;
const CYCLES = 4;

const env = useEnv({ accessTtl: ACCESS_TTL_S }, { resetEachTest: false });

test(`${TABS} tabs, ${CYCLES}+ expiries: exactly one POST /auth/refresh per expiry`, async () => {
  // No refresh jitter, so every expiry falls exactly one period after the previous one.
  const query = `?lead=${LEAD_MS}&jitter=0&idle=600000&warn=10000`;
  const tabs = [];
  for (let i = 0; i < TABS; i++) tabs.push(await openDemo(env.context, env.server.url, query));

  const refreshes = [];
  env.context.on("request", (req) => {
    if (req.method() === "POST" && new URL(req.url()).pathname === "/auth/refresh") {
      refreshes.push({ at: Date.now(), frame: req.frame()?.url() ?? "worker" });
    }
  });
  const responses = [];
  env.context.on("response", (res) => {
    if (res.request().method() === "POST" && new URL(res.url()).pathname === "/auth/refresh") {
      responses.push(res.status());
    }
  });

  await signIn(tabs[0], "alice");
  for (const t of tabs) await waitForState(t, "active");
  const start = Date.now();
  const period = ACCESS_TTL_S * 1000 - LEAD_MS;

  // Watch at least CYCLES expiries go by.
  const deadline = start + (CYCLES + 1) * period + 3_000;
  while (refreshes.length < CYCLES && Date.now() < deadline) await sleep(200);
  // Then wait into the middle of the next period, so no refresh is in flight at the count.
  const lastAt = refreshes.at(-1)?.at ?? Date.now();
  await sleep(Math.max(0, lastAt + period / 2 - Date.now()));
  const elapsed = Date.now() - start;

  assert.ok(refreshes.length >= CYCLES, `saw ${refreshes.length} refreshes in ${elapsed} ms, want >= ${CYCLES}`);
  // No more refreshes than expiries in the elapsed time (jitter may bring each a little early).
  const expiries = Math.floor(elapsed / (period * 0.75)) + 1;
  assert.ok(
    refreshes.length <= expiries,
    `${refreshes.length} refresh requests for at most ${expiries} expiries in ${elapsed} ms`,
  );
  // Exactly one request per expiry: consecutive requests are a lifetime apart, never a burst.
  for (let i = 1; i < refreshes.length; i++) {
    const gap = refreshes[i].at - refreshes[i - 1].at;
    assert.ok(gap > period / 2, `refresh ${i} came ${gap} ms after the previous one (a duplicate for one expiry)`);
  }
  assert.ok(responses.every((s) => s === 200), `every refresh succeeded: ${responses.join(",")}`);

  // Every tab learnt of every new token, and is still active and able to call the API.
  for (const [i, t] of tabs.entries()) {
    const seen = (await eventsOf(t, "refresh")).length;
    assert.ok(seen >= refreshes.length - 1, `tab ${i} saw ${seen} of ${refreshes.length} refresh events`);
    assert.equal(await t.evaluate(() => window.tessera.session.state), "active");
    const status = await t.evaluate(async () => (await window.tessera.session.fetch("/api/me")).status);
    assert.equal(status, 200, `tab ${i} can call the API with the current token`);
  }
  // The demo shows the access-token countdown from the refresh events' expiresAt.
  assert.match(await tabs[2].locator("#fact-access").innerText(), /^\d+ s$/, "access-token countdown shown");
  // Shown and reported counts read in one go: refreshes go on, and one may land between two reads.
  const counts = await tabs[2].evaluate(() => [
    document.getElementById("fact-refreshes")?.textContent,
    String(window.tessera.events.filter((e) => e.type === "refresh").length),
  ]);
  assert.equal(counts[0], counts[1], "the demo shows as many refreshes as the SDK reported");
  for (const t of tabs) assert.deepEqual(t.errors, []);
  console.log(
    `# ${TABS} tabs: ${refreshes.length} POST /auth/refresh over ${elapsed} ms (period ~${period} ms): ` +
      `gaps ${refreshes.slice(1).map((r, i) => r.at - refreshes[i].at).join(", ")} ms`,
  );
  for (const t of tabs) await t.close();
});
