// Size report for the npm package: raw, gzip -9 and brotli -q 11 of every shipped .wasm/.js
// file, grouped by what a user downloads. Prints numbers; asserts nothing.
//
//   node bench/size.mjs [pkg-dir]   (default: pkg, as built by scripts/lib.sh build_pkg)
//
// "default import" is what `import init, { Session } from "tessera"` fetches: the bundled,
// minified tessera.js and tessera_bg.wasm (scripts/package.mjs). The bundler subpath and the
// React hook are alternatives / extras, reported on their own. The anchors were measured the
// same way (minified + brotli -q 11 of a typical import); bench/size.md has the history.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";

const dir = process.argv[2] || "pkg";
const files = [];
(function walk(d) {
  for (const name of readdirSync(d)) {
    const p = join(d, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (/\.(wasm|js|mjs)$/.test(name)) files.push(relative(dir, p));
  }
})(dir);
if (!files.length) {
  console.error(`no .wasm/.js files in ${dir}: build the package first (scripts/lib.sh build_pkg)`);
  process.exit(1);
}

const measure = (buf) => ({
  raw: buf.length,
  gzip: gzipSync(buf, { level: 9 }).length,
  brotli: brotliCompressSync(buf, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: buf.length },
  }).length,
});
const kb = (n) => (n / 1024).toFixed(1).padStart(7) + " KB";
// Each subdirectory is an alternative or extra entry; only the top-level files are what the
// default import downloads.
const GROUPS = {
  bundler: "bundler subpath (tessera/bundler)",
  node: "Node entry (export condition `node`)",
  react: "React hook (tessera/react)",
  vue: "Vue composable (tessera/vue)",
  svelte: "Svelte store (tessera/svelte)",
};
// dpop.js (top level, and beside the bundler's driver snippet) is fetched only with `dpop: true`.
const group = (f) =>
  f.endsWith("dpop.js")
    ? `DPoP, loaded with \`dpop: true\` (${f})`
    : f.includes("/") ? GROUPS[f.split("/")[0]] ?? `other (${f.split("/")[0]}/)` : "default import";
const totals = new Map();
console.log("file".padEnd(48), "raw".padStart(10), "gzip -9".padStart(10), "brotli 11".padStart(10));
for (const f of files.sort((a, b) => group(a).localeCompare(group(b)) || a.localeCompare(b))) {
  const m = measure(readFileSync(join(dir, f)));
  const t = totals.get(group(f)) ?? { raw: 0, gzip: 0, brotli: 0 };
  for (const k of Object.keys(t)) t[k] += m[k];
  totals.set(group(f), t);
  console.log(f.padEnd(48), kb(m.raw), kb(m.gzip), kb(m.brotli));
}
console.log();
for (const [g, t] of totals) console.log(`total, ${g}`.padEnd(48), kb(t.raw), kb(t.gzip), kb(t.brotli));

const shipped = (totals.get("default import")?.brotli ?? 0) / 1024;
const anchors = [
  ["msal-browser", 68.0],
  ["auth0-spa-js", 55.0],
  ["budget", 30.0],
  ["supabase auth-js (goal)", 20.2],
  ["oidc-client-ts (moonshot)", 15.6],
];
console.log(`\ndefault import, brotli: ${shipped.toFixed(1)} KB (${totals.get("default import")?.brotli ?? 0} bytes)`);
for (const [name, size] of anchors) {
  console.log(`  vs ${name.padEnd(28)} ${size.toFixed(1).padStart(5)} KB  ${shipped < size ? "under" : "OVER"} by ${Math.abs(size - shipped).toFixed(1)} KB`);
}
