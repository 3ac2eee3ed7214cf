// Prints the size of the built package: the Wasm module and the JS glue,
// raw, gzip -9 and brotli -q 11 (what users download).
// Usage: node scripts/size.mjs [pkgDir]
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";

const dir = process.argv[2] ?? "pkg";
const kb = (n) => (n / 1024).toFixed(1).padStart(7) + " KB";
// Recursive: wasm-bindgen puts JS snippets (inline_js / module imports) under snippets/.
const walk = (d) =>
  readdirSync(d).flatMap((f) => {
    const p = join(d, f);
    return statSync(p).isDirectory() ? walk(p).map((q) => join(f, q)) : [f];
  });
// bundler/ (the alternative `tessera/bundler` entry, its own copy of the module) and react/
// (the optional hook) are not part of what the default import downloads.
const files = walk(dir).filter(
  (f) => (f.endsWith(".wasm") || f.endsWith(".js")) && !f.startsWith("bundler/") && !f.startsWith("react/"),
);
if (files.length === 0) {
  console.error(`size: no .wasm or .js files in ${dir}`);
  process.exit(1);
}
const total = { raw: 0, gz: 0, br: 0 };
console.log(`package size (${dir}):`);
console.log(`  ${"file".padEnd(28)} ${"raw".padStart(10)} ${"gzip -9".padStart(10)} ${"brotli 11".padStart(10)}`);
for (const f of files.sort()) {
  const buf = readFileSync(join(dir, f));
  const raw = buf.length;
  const gz = gzipSync(buf, { level: 9 }).length;
  const br = brotliCompressSync(buf, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw },
  }).length;
  total.raw += raw; total.gz += gz; total.br += br;
  console.log(`  ${f.padEnd(28)} ${kb(raw)} ${kb(gz)} ${kb(br)}`);
}
console.log(`  ${"total".padEnd(28)} ${kb(total.raw)} ${kb(total.gz)} ${kb(total.br)}`);
