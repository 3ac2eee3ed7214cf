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

/** `name` as a whole identifier in the glue (`$1` does not match inside `$10`). */
const token = (name) => new RegExp(`(?<![\\w$])${name.replace(/[$]/g, "\\$")}(?![\\w$])`, "g");

/** The function imports whose names appear exactly once in the glue (so a text swap is exact). */
function swappable({ js, wasm }) {
  const section = readImportSection(wasm);
  const fns = section.imports.filter((i) => i.desc[0] === 0 && (js.match(token(i.name)) || []).length === 1);
  return { section, fns };
}

test("packaging: the shipped module and glue link in Node and verify against themselves", async () => {
  const pair = built();
  const { section, fns } = swappable(pair);
  assert.ok(section.imports.length > 10, `imports: ${section.imports.length}`);
  // Enough names that occur once in the glue for the swap test below (23 imports, 7 of them
  // unique in today's glue: esbuild reuses the short names for its own identifiers).
  assert.ok(fns.length >= 2, `import names unique in the glue: ${fns.length}`);
  await verifyRenaming(pair, pair);
});

test("packaging: swapping two import names in the glue only is refused", async () => {
  const pair = built();
  const { fns } = swappable(pair);
  const linked = await linkInNode(pair.js, pair.wasm);
  const code = (i) => String(linked.find((l) => l.module === i.module && l.name === i.name).value);
  // Two imports of one signature: the swapped module still links, only the function
  // comparison can tell.
  let a, b;
  for (const i of fns) {
    b = fns.find((j) => j !== i && j.desc.equals(i.desc) && code(j) !== code(i));
    if (b) {
      a = i;
      break;
    }
  }
  assert.ok(a && b, "two function imports of one signature exist");
  const js = pair.js
    .replace(token(a.name), () => "\u0000")
    .replace(token(b.name), () => a.name)
    .replace("\u0000", () => b.name);
  await assert.rejects(verifyRenaming(pair, { js, wasm: pair.wasm }), /different function/);
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
