// `Session.start` outside a browser page: it rejects with
// `unsupported_environment` and opens nothing (no BroadcastChannel, which would also keep
// Node's event loop alive), instead of half-starting and throwing.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { ROOT, requirePkg } from "./harness.mjs";

test("Session.start outside a browser rejects with unsupported_environment and opens nothing", async () => {
  const pkg = requirePkg();
  const mod = await import(pathToFileURL(path.join(pkg, "tessera.js")).href);
  mod.initSync({ module: readFileSync(path.join(pkg, "tessera_bg.wasm")) });
  const Real = globalThis.BroadcastChannel;
  let opened = 0;
  globalThis.BroadcastChannel = class extends Real {
    constructor(name) {
      super(name);
      opened++;
      this.close();
    }
  };
  try {
    await assert.rejects(mod.Session.start({ channel: "node-env" }), (e) => e.code === "unsupported_environment");
    await assert.rejects(mod.Session.start(), (e) => e.code === "unsupported_environment");
    assert.equal(opened, 0, "no channel was opened");
  } finally {
    globalThis.BroadcastChannel = Real;
  }
  assert.ok(ROOT);
});
