// Size report for the npm package: raw, gzip -9 and brotli -q 11 of the Wasm module, the
// JS glue and the snippet modules, and the whole package. Prints numbers; asserts nothing.
// The anchors (msal, auth0, supabase, oidc-client-ts) were measured minified, so JS files are
// also reported after `esbuild --minify` when esbuild can be found (what any bundler ships).
// Usage: node bench/size.mjs [pkg-dir]   (default: pkg)
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { createRequire } from "node:module";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";

const dir = process.argv[2] || "pkg";
const files = [];
(function walk(d) {
  for (const name of readdirSync(d)) {
    const p = join(d, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (/\.(wasm|js|mjs)$/.test(name)) files.push(p);
  }
})(dir);

const measure = (buf) => ({
  raw: buf.length,
  gzip: gzipSync(buf, { level: 9 }).length,
  brotli: brotliCompressSync(buf, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: buf.length },
  }).length,
});
const kb = (n) => (n / 1024).toFixed(1).padStart(7) + " KB";
const total = { raw: 0, gzip: 0, brotli: 0 };
console.log("file".padEnd(56), "raw".padStart(10), "gzip -9".padStart(10), "brotli 11".padStart(10));
for (const f of files.sort()) {
  const m = measure(readFileSync(f));
  for (const k of Object.keys(total)) total[k] += m[k];
  console.log(relative(dir, f).padEnd(56), kb(m.raw), kb(m.gzip), kb(m.brotli));
}
console.log("total (each file compressed separately)".padEnd(56), kb(total.raw), kb(total.gzip), kb(total.brotli));

let esbuild = null;
for (const base of [".", "tests/consumer", "www"]) {
  try {
    esbuild = createRequire(resolve(base, "package.json"))("esbuild");
    break;
  } catch (_) {}
}
let best = total;
if (esbuild) {
  const min = { raw: 0, gzip: 0, brotli: 0 };
  console.log("\nminified JS (esbuild --minify), wasm as is:");
  for (const f of files.sort()) {
    let buf = readFileSync(f);
    if (!f.endsWith(".wasm")) buf = Buffer.from(esbuild.transformSync(buf.toString(), { minify: true, format: "esm" }).code);
    const m = measure(buf);
    for (const k of Object.keys(min)) min[k] += m[k];
    console.log(relative(dir, f).padEnd(56), kb(m.raw), kb(m.gzip), kb(m.brotli));
  }
  console.log("total, minified".padEnd(56), kb(min.raw), kb(min.gzip), kb(min.brotli));
  best = min;
} else {
  console.log("(esbuild not found: no minified figures)");
}
console.log(`\nbudget: < 30 KB brotli (goal < 20.2 KB): as shipped ${(total.brotli / 1024).toFixed(1)} KB, minified ${(best.brotli / 1024).toFixed(1)} KB`);
