// In Node the package resolves to its `node` export condition, whose default `init()` reads
// the .wasm file itself (the web entry's init() would fetch a file: URL, which Node's fetch
// refuses). Separate file: node:test runs each file in its own process, so this init() is
// the first and only one.
import assert from "node:assert/strict";
import { test } from "node:test";
import init, { Session } from "tessera";

test("default init() works in Node without arguments", async () => {
  const exports = await init();
  assert.ok(exports.memory instanceof WebAssembly.Memory, "init resolves to the module's exports");
  assert.equal(typeof Session.start, "function");
  // A second call is free and resolves to the same instance.
  assert.equal(await init(), exports);
});
