// The web entry's `init()` and its Wasm source: `init({ module_or_path })` fetches what it is
// given, and a failed download is the error of that `init()`, the next `init()` fetching again.
// Any change to how the package starts its download (bench/sdk-results.md §1, the early
// download measured and not kept) must keep both.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { ROOT, useEnv } from "./harness.mjs";

const env = useEnv();

/** Opens a page on the server's origin whose module script is `body`; resolves to `window.out`. */
async function run(body, setup = async () => {}) {
  const page = await env.context.newPage();
  const wasm = [], errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => {
    if (r.url().endsWith(".wasm")) wasm.push(new URL(r.url()).pathname);
  });
  const url = new URL("start-test.html", env.server.url).href;
  await page.route(url, (route) =>
    route.fulfill({ contentType: "text/html", body: `<!doctype html><script type="module">${body}</script>` }),
  );
  await setup(page);
  await page.goto(url);
  await page.waitForFunction(() => window.out, null, { timeout: 30_000 }).catch((e) => {
    throw new Error(`${e.message}; page errors: ${errors.join("; ")}`);
  });
  const out = await page.evaluate(() => window.out);
  await page.close();
  return { out, wasm };
}

test("init({ module_or_path }) fetches the source given", async () => {
  const bytes = readFileSync(path.join(process.env.TESSERA_PKG_DIR ?? path.join(ROOT, "pkg"), "tessera_bg.wasm"));
  const { out, wasm } = await run(
    `
    import init from "/pkg/tessera.js";
    const exports = await init({ module_or_path: "/elsewhere/engine.wasm" });
    window.out = { memory: exports.memory instanceof WebAssembly.Memory };
  `,
    (page) =>
      page.route(new URL("/elsewhere/engine.wasm", env.server.url).href, (route) =>
        route.fulfill({ contentType: "application/wasm", body: bytes }),
      ),
  );
  assert.equal(out.memory, true);
  assert.ok(wasm.includes("/elsewhere/engine.wasm"), `the given source was fetched: ${wasm}`);
});

test("a failed download is init()'s error; the next init() fetches again", async () => {
  let served = 0;
  const { out, wasm } = await run(
    `
    import init from "/pkg/tessera.js";
    const first = await init().then(() => "ok", (e) => String(e.message));
    const second = await init().then((x) => x.memory instanceof WebAssembly.Memory, (e) => String(e.message));
    window.out = { first, second };
  `,
    (page) =>
      page.route(new URL("/pkg/tessera_bg.wasm", env.server.url).href, (route) =>
        served++ === 0 ? route.fulfill({ status: 404, body: "gone" }) : route.continue(),
      ),
  );
  assert.match(out.first, /404/, "the first init() reports the failed download");
  assert.equal(out.second, true, "the second init() downloaded the module again");
  assert.deepEqual(wasm, ["/pkg/tessera_bg.wasm", "/pkg/tessera_bg.wasm"]);
});
