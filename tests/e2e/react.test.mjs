// `tessera/react` in real React 19 and real Chromium against the real server:
// under StrictMode the factory runs once and one session lives; events raised while
// the session started (a resume from the cookie emits `login`) reach the hook.
//
// The page is the hook's source (src/react/index.js) and React, bundled here with esbuild and
// served on the server's origin through request interception, so the SDK talks to /auth.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { build } from "esbuild";
import { ROOT, openDemo, signIn, useEnv } from "./harness.mjs";

const env = useEnv();

const APP = `
import { StrictMode, createElement as h } from "react";
import { createRoot } from "react-dom/client";
import { useSession } from ${JSON.stringify(path.join(ROOT, "src/react/index.js"))};
window.runApp = (Session) => {
  window.factoryCalls = 0;
  window.seen = [];
  function App() {
    const { state, lastEvent } = useSession(() => { window.factoryCalls++; return Session.start({ baseUrl: "/auth" }); });
    window.seen.push({ state, event: lastEvent && lastEvent.type });
    return h("p", { id: "out" }, state + " " + (lastEvent ? lastEvent.type : "-"));
  }
  createRoot(document.getElementById("root")).render(h(StrictMode, null, h(App)));
};
`;

async function bundle() {
  const out = await build({
    stdin: { contents: APP, resolveDir: ROOT, loader: "js" },
    bundle: true,
    format: "esm",
    write: false,
    define: { "process.env.NODE_ENV": '"development"' },
    logLevel: "silent",
  });
  return out.outputFiles[0].text;
}

test("useSession under StrictMode: one factory call, one session, start events seen", async () => {
  const js = await bundle();
  // A session on the server whose cookie the next page resumes.
  const demo = await openDemo(env.context, env.server.url);
  await signIn(demo, "alice");
  await demo.close();

  const page = await env.context.newPage();
  const url = new URL("react-hook-test.html", env.server.url).href;
  await page.route(new URL("react-hook-*", env.server.url).href, (route) =>
    route.fulfill(
      route.request().url().endsWith(".js")
        ? { contentType: "text/javascript", body: js }
        : {
            contentType: "text/html",
            body: `<!doctype html><div id="root"></div><script type="module">
              import "./react-hook-app.js";
              import init, { Session } from "./pkg/tessera.js";
              await init();
              window.runApp(Session);
            </script>`,
          },
    ),
  );
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("out")?.textContent.startsWith("active"), null, { timeout: 15_000 });
  await page.waitForTimeout(200); // a second (StrictMode) start, if any, would have happened
  assert.equal(await page.evaluate(() => window.factoryCalls), 1, "the factory ran once under StrictMode");
  const locks = await page.evaluate(async () => (await navigator.locks.query()).held.filter((l) => l.name.startsWith("tessera:tab:")).length);
  assert.equal(locks, 1, "one live session");
  const text = await page.locator("#out").textContent();
  assert.equal(text, "active login", "the login raised while starting (cookie resume) reached the hook");
  assert.deepEqual(errors, []);
  await page.close();
});
