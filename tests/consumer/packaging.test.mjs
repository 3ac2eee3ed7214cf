// The packaging's Wasm import renaming is verified, not trusted (scripts/package/wasm-imports.mjs):
// these tests hand the verifier broken renamings and expect each to be refused. They use the
// built package (pkg/) as the "before" pair. Imported by run.mjs.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { requirePkg } from "../e2e/harness.mjs";
import { linkInNode, readImportSection, verifyRenaming, withImports } from "../../scripts/package/wasm-imports.mjs";

function built() {
  const pkg = requirePkg();
  return { js: readFileSync(path.join(pkg, "tessera.js"), "utf8"), wasm: readFileSync(path.join(pkg, "tessera_bg.wasm")) };
}

test("packaging: the shipped module and glue link in Node and verify against themselves", async () => {
  const pair = built();
  const section = readImportSection(pair.wasm);
  assert.ok(section.imports.length > 10, `imports: ${section.imports.length}`);
  await verifyRenaming(pair, pair);
});

test("packaging: two import names swapped (same signature, different functions) are refused", async () => {
  const pair = built();
  const section = readImportSection(pair.wasm);
  const linked = await linkInNode(pair.js, pair.wasm);
  const code = (i) => String(linked.find((l) => l.module === i.module && l.name === i.name).value);
  // Two function imports of one signature: the module with their names swapped still links
  // against the glue, only the function comparison can tell.
  const fns = section.imports.filter((i) => i.desc[0] === 0);
  let a, b;
  for (const i of fns) {
    b = fns.find((j) => j !== i && j.desc.equals(i.desc) && code(j) !== code(i));
    if (b) {
      a = i;
      break;
    }
  }
  assert.ok(a && b, "two function imports of one signature exist");
  const imports = section.imports.map((i) => (i === a ? { ...i, name: b.name } : i === b ? { ...i, name: a.name } : i));
  const wasm = withImports(pair.wasm, section, imports);
  await assert.rejects(verifyRenaming(pair, { js: pair.js, wasm }), /different function/);
});

test("packaging: a module asking for a name the glue does not provide is refused", async () => {
  const pair = built();
  const section = readImportSection(pair.wasm);
  const imports = section.imports.map((i, n) => (n === 0 ? { ...i, name: `${i.name}_gone` } : i));
  await assert.rejects(verifyRenaming(pair, { js: pair.js, wasm: withImports(pair.wasm, section, imports) }), /does not link/);
});

test("packaging: the import-section parser refuses what it does not know", () => {
  assert.throws(() => readImportSection(Buffer.from("not wasm at all")), /not a Wasm binary/);
  const { wasm } = built();
  const section = readImportSection(wasm);
  // Claim one more byte in the section than its entries use.
  const bad = Buffer.from(wasm);
  const sizeAt = section.header + 1;
  assert.notEqual(bad[sizeAt] & 0x7f, 0x7f, "the size's first LEB byte can take one more");
  bad[sizeAt] += 1;
  assert.throws(() => readImportSection(bad), /import section is|kind|truncated/);
});
