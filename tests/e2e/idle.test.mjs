// Protocol property 3 in a real browser: activity in one tab keeps every tab alive; with no
// activity anywhere, every tab warns and then logs out, on time.
import assert from "node:assert/strict";
import { test } from "node:test";
import { eventsOf, openDemo, signIn, sleep, useEnv, waitForEvent, waitForState } from "./harness.mjs";

const IDLE_MS = 6_000;
const WARN_MS = 3_000;
const TABS = 3;

const env = useEnv();

test("activity in one tab keeps all alive; none => warning, then logout in all", async () => {
  const query = `?idle=${IDLE_MS}&warn=${WARN_MS}&lead=5000`;
  const tabs = [];
  for (let i = 0; i < TABS; i++) tabs.push(await openDemo(env.context, env.server.url, query));
  await signIn(tabs[0], "alice");
  for (const t of tabs) await waitForState(t, "active");

  // Move the mouse / press keys in tab 0 only, for well over one idle timeout.
  const busyUntil = Date.now() + IDLE_MS * 2;
  let step = 0;
  while (Date.now() < busyUntil) {
    step += 1;
    if (step % 2) await tabs[0].mouse.move(100 + (step % 50) * 5, 200 + (step % 7) * 10);
    else await tabs[0].keyboard.press("Shift");
    await sleep(500);
  }
  // When the page saw the last input (the demo notes it): the test's own clock after an input
  // call returns can be hundreds of ms late on a loaded machine.
  const lastActivity = await tabs[0].evaluate(() => window.tessera.lastInput);
  assert.ok(lastActivity > 0, "the page saw the test's input");
  // The idle countdown shown in an untouched tab follows the activity in tab 0.
  const shown = await tabs[2].locator("#fact-idle").innerText();
  assert.ok(/^\d+ s$/.test(shown) && parseInt(shown, 10) > (IDLE_MS - WARN_MS) / 1000, `tab 2 shows ${shown}`);
  for (const [i, t] of tabs.entries()) {
    assert.equal(await t.evaluate(() => window.tessera.session.state), "active", `tab ${i} still active`);
    const warnings = await eventsOf(t, "idle-warning");
    assert.equal(warnings.length, 0, `tab ${i} never warned while tab 0 was in use`);
    const logouts = await eventsOf(t, "logout");
    assert.equal(logouts.length, 0, `tab ${i} was not logged out`);
  }

  // Now nobody touches anything: each tab warns, then logs out (reason idle), counted from the
  // last input (the SDK reports the last input of each sample window when the window ends; a
  // 100 ms margin for rounding between the page's clocks). Before that, the deadline counted
  // from the first input of a window, up to a window (750 ms here) plus a pointer move's
  // dispatch delay (hundreds of ms under load) before the last: run5 of session 9 saw a
  // warning 1782 ms after the last input instead of 3000.
  const quietFrom = lastActivity;
  const slack = 100;
  for (const [i, t] of tabs.entries()) {
    const w = await waitForEvent(t, "idle-warning", 1, IDLE_MS + 6_000);
    const warnedAfter = w.at - quietFrom;
    assert.ok(
      warnedAfter >= IDLE_MS - WARN_MS - slack && warnedAfter <= IDLE_MS - WARN_MS + 5_000,
      `tab ${i} warned ${warnedAfter} ms after the last activity (expected ~${IDLE_MS - WARN_MS})`,
    );
  }
  assert.equal(await tabs[1].locator("#idle-dialog").isVisible(), true, "the warning is shown in every tab");
  for (const [i, t] of tabs.entries()) {
    const out = await waitForEvent(t, "logout", 1, WARN_MS + 6_000);
    const loggedOutAfter = out.at - quietFrom;
    assert.match(String(out.detail?.reason), /idle/, `tab ${i} reason`);
    assert.ok(
      loggedOutAfter >= IDLE_MS - slack && loggedOutAfter <= IDLE_MS + 5_000,
      `tab ${i} logged out ${loggedOutAfter} ms after the last activity (expected ~${IDLE_MS})`,
    );
    await waitForState(t, "logged-out");
  }
  for (const t of tabs) assert.deepEqual(t.errors, []);
  for (const t of tabs) await t.close();
});

test("the idle deadline counts from the last input, not the first of its sample window", async () => {
  const idle = 20_000;
  const t = await openDemo(env.context, env.server.url, `?idle=${idle}&warn=10000&lead=5000&throttle=1000`);
  await signIn(t, "alice");
  await waitForState(t, "active");
  // Three key presses inside one 1 s sample window: the first is reported at once, the last
  // when the window ends.
  for (let i = 0; i < 3; i++) {
    if (i) await sleep(300);
    await t.keyboard.press("Shift");
  }
  await sleep(1_500);
  const { last, deadline } = await t.evaluate(() => ({
    last: window.tessera.lastInput,
    deadline: window.tessera.session.idleDeadline,
  }));
  assert.ok(last > 0 && typeof deadline === "number", `input ${last}, deadline ${deadline}`);
  const off = deadline - idle - last;
  assert.ok(Math.abs(off) <= 100, `the deadline counts from ${off} ms after the last input (expected 0)`);
  assert.deepEqual(t.errors, []);
  await t.close();
});

test("'Stay signed in' in one tab answers the warning in every tab", async () => {
  const query = `?idle=${IDLE_MS}&warn=${WARN_MS}&lead=5000`;
  const a = await openDemo(env.context, env.server.url, query);
  const b = await openDemo(env.context, env.server.url, query);
  await signIn(a, "alice");
  await waitForState(b, "active");
  await waitForState(a, "idle-warning", IDLE_MS + 3_000);
  await waitForState(b, "idle-warning", 3_000);
  await b.locator("#stay").dispatchEvent("click"); // the button itself, without a pointer move (activity)
  await waitForState(b, "active");
  await waitForState(a, "active", 2_000);
  assert.equal(await a.locator("#idle-dialog").isVisible(), false, "tab A's warning closed too");
  assert.equal((await eventsOf(a, "logout")).length, 0);
  await a.click("#logout");
  await waitForState(b, "logged-out");
  await a.close();
  await b.close();
});
