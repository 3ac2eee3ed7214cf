#!/usr/bin/env node
// Turns wasm-pack output into the npm package `tessera`. Every step either works or fails the
// build: a missing tool, an unexpected module or a mismatch between module and glue is an
// error, never a warning that ships a bigger or broken package.
//
//   node scripts/package.mjs [PKG_DIR] [--bundler-from DIR | --no-bundler]
//
// Layout (PKG_DIR, default `pkg/`):
//   tessera.js, tessera_bg.wasm, tessera.d.ts   web target (wasm-pack --target web), the glue
//                                   and its snippets/ bundled into tessera.js and minified:
//                                   the main entry. Plain <script type="module">, Vite, webpack 5
//                                   and Rollup all load it; `await init()` fetches the wasm via
//                                   `new URL("tessera_bg.wasm", import.meta.url)`. The demo
//                                   server serves this same directory at /pkg/.
//   dpop.js                         DPoP (`dpop: true`, src/browser/js/dpop.js and what it imports),
//                                   minified: the driver imports it dynamically (`./dpop.js`
//                                   beside the entry; in bundler/, beside the driver's snippet),
//                                   so sessions without DPoP never download it.
//   node/                           the main entry under the `node` export condition: the same
//                                   module, but `init()` without arguments reads the wasm file
//                                   (Node's fetch refuses file: URLs).
//   bundler/                        bundler target (wasm-pack --target bundler), subpath export
//                                   `tessera/bundler`, for bundlers with ES-module Wasm
//                                   integration (webpack asyncWebAssembly, vite-plugin-wasm):
//                                   initialises itself on import.
//   react/ vue/ svelte/ bindings/   framework bindings (src/react, src/vue, src/svelte; their shared
//                                   event list and types in src/bindings), subpath
//                                   exports; each framework an optional peer dependency.
//   package.json, README.md,        from scripts/package/ (package.template.json gets the version
//   LICENSE-MIT, LICENSE-APACHE     from wasm-pack's manifest or Cargo.toml; the rest is copied).
//   docs/                           the user guides (docs/*.md) the README links to.
//
// PKG_DIR must already hold the web target (scripts/lib.sh build_pkg runs
// `wasm-pack build --release --target web --out-dir pkg` first). Unless --no-bundler is given,
// the bundler target is built here with wasm-pack into a temp dir (or taken from
// --bundler-from DIR) and copied into PKG_DIR/bundler.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { readImportSection, shortenExports, shortenImports } from "./package/wasm-imports.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TEMPLATES = path.join(ROOT, "scripts", "package");
const NAME = "tessera";
/** Framework bindings shipped as subpath exports, each from src/<name>/index.{js,d.ts}. */
const FRAMEWORKS = ["react", "vue", "svelte"];

function fail(msg) {
  console.error(`[package] error: ${msg}`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { pkg: path.join(ROOT, "pkg"), bundlerFrom: null, bundler: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--no-bundler") opts.bundler = false;
    else if (a === "--bundler-from") opts.bundlerFrom = path.resolve(argv[++i] ?? fail("--bundler-from needs a DIR"));
    else if (a === "-h" || a === "--help") {
      console.log("usage: node scripts/package.mjs [PKG_DIR] [--bundler-from DIR | --no-bundler]");
      process.exit(0);
    } else if (a.startsWith("-")) fail(`unknown option ${a}`);
    else opts.pkg = path.resolve(a);
  }
  return opts;
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    if (e.code === "ENOENT") return {};
    return fail(`${file}: ${e.message}`);
  }
}

function cargoVersion() {
  const toml = readFileSync(path.join(ROOT, "Cargo.toml"), "utf8");
  const m = /\[workspace\.package\][^[]*?\nversion\s*=\s*"([^"]+)"/s.exec(toml);
  return m ? m[1] : fail("no [workspace.package] version in Cargo.toml");
}

/** Removes wasm-pack's per-directory extras (.gitignore `*`, its manifest, README, licences). */
function stripWasmPackExtras(dir) {
  for (const f of readdirSync(dir)) {
    if (f === ".gitignore" || f === "package.json" || f === "README.md" || /^LICEN[CS]E/i.test(f)) {
      rmSync(path.join(dir, f), { force: true });
    }
  }
}

let esbuildModule;
/** esbuild from the workspace's node_modules (`npm ci`); without it the build stops. */
function esbuild() {
  if (esbuildModule) return esbuildModule;
  try {
    esbuildModule = createRequire(path.join(ROOT, "package.json"))("esbuild");
  } catch (e) {
    fail(`esbuild is required (run \`npm ci\` in ${ROOT}, or bash scripts/setup.sh): ${e.message}`);
  }
  return esbuildModule;
}

/**
 * The web entry as ONE minified file: esbuild bundles the wasm-bindgen glue with its snippet
 * modules (the JS driver) and minifies it, then snippets/ goes. One request instead of two,
 * and ~0.3 KB less brotli than two files. The glue hands the snippet's namespace to the Wasm
 * instance as an import object, which bundling keeps intact. (The bundler target keeps its
 * snippets/: there the Wasm module imports them by path.)
 */
async function bundleWebEntry(pkg) {
  const entry = path.join(pkg, `${NAME}.js`);
  const wasm = readFileSync(path.join(pkg, `${NAME}_bg.wasm`));
  writeFileSync(entry, snippetImports(dropInternalDispose(shortenGlueMessages(readFileSync(entry, "utf8"))), wasm));
  const out = await esbuild().build({ entryPoints: [entry], bundle: true, minify: true, format: "esm", platform: "browser", write: false, logLevel: "error",
    // The driver's `import("./dpop.js")` stays a dynamic import of the file beside this one.
    plugins: [DPOP_APART],
    // The glue's own bookkeeping on `Session` objects (never read outside this file; the
    // class's instances stay inside the driver): short names.
    mangleProps: /^__(wbg_ptr|destroy_into_raw|wrap)$/,
  });
  writeFileSync(entry, out.outputFiles[0].contents);
  rmSync(path.join(pkg, "snippets"), { recursive: true, force: true });
}

/**
 * wasm-bindgen imports the driver's module once per `extern` block the Wasm module calls into
 * directly (`import * as importN from "<snippet>"`, and `"<snippet>": importN` in the import
 * object): the same module under the same key twice, and a namespace object that esbuild
 * builds with its `__export` helper (every export of the driver as a getter). The import
 * object instead gets one key per module with exactly the functions the Wasm module imports
 * from it (read from its import section): the same functions, the key once in the glue (so
 * `shortenImports` shortens it in both files), no namespace object (bench/size.md). A key
 * whose value is not a namespace import of that very module fails the build.
 */
function snippetImports(js, wasm) {
  const section = readImportSection(wasm);
  const seen = new Set();
  const imports = [];
  js = js.replace(/^\s*("\.\/snippets\/[^"\n]+"): (import\d+),\n/gm, (line, key, id) => {
    if (!js.includes(`import * as ${id} from ${key}`)) fail(`glue import object: ${key} is not the module ${id}`);
    if (seen.has(key)) return "";
    seen.add(key);
    const names = [...new Set((section?.imports ?? []).filter((i) => JSON.stringify(i.module) === key).map((i) => i.name))];
    for (const n of names) if (!/^[A-Za-z_$][\w$]*$/.test(n)) fail(`snippet import ${n} is not a plain name`);
    const local = (n) => `__wbg_snippet_${seen.size}_${n}`;
    imports.push(`import { ${names.map((n) => `${n} as ${local(n)}`).join(", ")} } from ${key};`);
    return line.replace(`: ${id},`, `: { ${names.map((n) => `${n}: ${local(n)}`).join(", ")} },`);
  });
  js = js.replace(/^import \* as import\d+ from "\.\/snippets\/[^"\n]+"\n/gm, "");
  if (/import \* as import\d+/.test(js)) fail("glue: a namespace import of a snippet is left");
  return imports.join("\n") + "\n" + js;
}

/**
 * The glue's console warnings (and its failed-fetch error), shortened (the default import ships them; ~0.1 KB brotli).
 * Only the wording changes: every check, and every warning's condition, stays as generated.
 * A message that is not found fails the build (a new wasm-bindgen reworded its glue: look
 * at it again rather than ship the long text silently).
 */
const GLUE_MESSAGES = [
  [
    "`WebAssembly.instantiateStreaming` failed because your server does not serve Wasm with `application/wasm` MIME type. Falling back to `WebAssembly.instantiate` which is slower. Original error:\\n",
    "tessera: serve the .wasm as application/wasm (slower fallback used):",
  ],
  ["failed to fetch Wasm: ${module.status} ${module.statusText} fetching '${module.url}'", "tessera: wasm ${module.status} ${module.url}"],
  ["using deprecated parameters for `initSync()`; pass a single object instead", "tessera: initSync({ module }) expected"],
  ["using deprecated parameters for the initialization function; pass a single object instead", "tessera: init({ module_or_path }) expected"],
];

function shortenGlueMessages(js) {
  for (const [long, short] of GLUE_MESSAGES) {
    if (!js.includes(long)) fail(`wasm-bindgen glue changed: message not found: ${long.slice(0, 60)}...`);
    js = js.split(long).join(short);
  }
  return js;
}

/**
 * wasm-bindgen gives every exported class `[Symbol.dispose]` (an alias of `free`). The one
 * class here (`Session`, the engine handle) only carries the public static `Session.start`: its
 * instances never leave the driver, which frees them itself in `dispose()`. The alias goes from
 * the default import (bench/size.md). Not found: the build fails (look at the glue again).
 */
const GLUE_DISPOSE = "if (Symbol.dispose) Session.prototype[Symbol.dispose] = Session.prototype.free;\n";

function dropInternalDispose(js) {
  if (!js.includes(GLUE_DISPOSE)) fail("wasm-bindgen glue changed: the Session dispose alias not found");
  return js.replace(GLUE_DISPOSE, "");
}

// ---- DPoP, a file of its own ------------------------------------------------------------------

/** Leaves the driver's dynamic `import("./dpop.js")` alone (the file is placed, not bundled). */
const DPOP_APART = {
  name: "dpop-apart",
  setup(b) {
    b.onResolve({ filter: /^\.\/dpop\.js$/ }, (a) => (a.kind === "dynamic-import" ? { path: "./dpop.js", external: true } : undefined));
  },
};

/** src/browser/js/dpop.js with what it imports, one minified ES module. */
function dpopModule() {
  const out = esbuild().buildSync({ entryPoints: [path.join(ROOT, "src/browser/js/dpop.js")], bundle: true, minify: true, format: "esm", platform: "browser", write: false });
  return out.outputFiles[0].contents;
}

/** Every directory under `dir` holding the driver's snippet (`session.js` with the dynamic import). */
function snippetDirs(dir) {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => path.basename(f) === "session.js" && readFileSync(path.join(dir, f), "utf8").includes("./dpop.js"))
    .map((f) => path.join(dir, path.dirname(f)));
}

// ---- the rest ----------------------------------------------------------------------------------

/**
 * Minifies the shipped JS (the bundler copy's glue and snippets) in place with esbuild's
 * transform (whitespace, local names, comments; exports and imports keep their names). Users
 * download these bytes as they are; the readable sources stay in src/.
 */
function minifyJs(dir) {
  for (const f of readdirSync(dir, { recursive: true })) {
    const file = path.join(dir, String(f));
    if (!file.endsWith(".js")) continue;
    // treeShaking: drops what no export reaches (the boundary's constants, once inlined).
    const { code } = esbuild().transformSync(readFileSync(file, "utf8"), { minify: true, format: "esm", treeShaking: true });
    writeFileSync(file, code);
  }
}

function buildBundler() {
  const out = path.join(tmpdir(), `tessera-bundler-${process.pid}`);
  rmSync(out, { recursive: true, force: true });
  const env = { ...process.env, PATH: `${path.join(ROOT, "node_modules/.bin")}${path.delimiter}${process.env.HOME}/.cargo/bin${path.delimiter}${process.env.PATH}` };
  console.log("[package] building the bundler target with wasm-pack");
  try {
    execFileSync(
      "wasm-pack",
      ["--quiet", "build", "--release", "--target", "bundler", "--out-dir", out, "--out-name", NAME, "--mode", "no-install"],
      { cwd: ROOT, env, stdio: "inherit" },
    );
  } catch (e) {
    fail(`wasm-pack (bundler target) failed: ${e.message}`);
  }
  return out;
}

/**
 * The `node` export condition's entry: everything of the main entry, and an `init()` that
 * reads the wasm file itself when called without a source (Node's fetch refuses file: URLs,
 * so the web glue's default cannot work there). The file name is held in a variable so that
 * server bundlers (Next.js, Vite SSR) leave the URL alone instead of emitting an asset.
 */
const NODE_ENTRY = `// The \`node\` export condition of tessera: the main entry, with an init() that reads the
// wasm file itself (Node's fetch refuses file: URLs). initSync({ module: bytes }) works too.
import init from "../${NAME}.js";
export * from "../${NAME}.js";
const file = "../${NAME}_bg.wasm";
export default async function initNode(source) {
  const plain = source !== null && typeof source === "object" && Object.getPrototypeOf(source) === Object.prototype;
  if (source === undefined || (plain && source.module_or_path === undefined)) {
    const { readFile } = await import("node:fs/promises");
    source = { module_or_path: await readFile(new URL(file, import.meta.url)) };
  }
  return init(source);
}
`;

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const pkg = opts.pkg;
  for (const f of [`${NAME}.js`, `${NAME}_bg.wasm`, `${NAME}.d.ts`]) {
    if (!existsSync(path.join(pkg, f))) {
      fail(`${path.join(pkg, f)} missing: run \`wasm-pack build --release --target web --out-dir pkg\` first`);
    }
  }
  for (const f of ["package.template.json", "README.md", "LICENSE-MIT", "LICENSE-APACHE"]) {
    if (!existsSync(path.join(TEMPLATES, f))) fail(`template ${path.join(TEMPLATES, f)} missing`);
  }
  const generated = readJson(path.join(pkg, "package.json"));
  const version = generated.version || cargoVersion();
  stripWasmPackExtras(pkg);

  await bundleWebEntry(pkg);
  const dpopJs = dpopModule();
  writeFileSync(path.join(pkg, "dpop.js"), dpopJs);
  try {
    const r = await shortenImports(path.join(pkg, `${NAME}_bg.wasm`), path.join(pkg, `${NAME}.js`));
    console.log(
      `[package] ${r.renamed} Wasm import names shortened (${r.saved} bytes raw), verified by linking in Node` +
        (r.kept.length ? `; kept (not unique in the glue): ${r.kept.join(" ")}` : ""),
    );
  } catch (e) {
    fail(`shortening the Wasm import names failed: ${e.message}`);
  }
  try {
    const r = await shortenExports(path.join(pkg, `${NAME}_bg.wasm`), path.join(pkg, `${NAME}.js`));
    console.log(`[package] ${r.renamed} Wasm export names shortened (${r.saved} bytes raw), verified by linking in Node`);
  } catch (e) {
    fail(`shortening the Wasm export names failed: ${e.message}`);
  }

  const manifest = JSON.parse(readFileSync(path.join(TEMPLATES, "package.template.json"), "utf8"));
  manifest.version = version;
  manifest.files.splice(1, 0, "dpop.js");

  // Node entry.
  mkdirSync(path.join(pkg, "node"), { recursive: true });
  writeFileSync(path.join(pkg, "node", "index.js"), NODE_ENTRY);

  // Bundler target into pkg/bundler, its JS minified too.
  const dest = path.join(pkg, "bundler");
  rmSync(dest, { recursive: true, force: true });
  if (opts.bundler) {
    const from = opts.bundlerFrom ?? buildBundler();
    if (!existsSync(path.join(from, `${NAME}.js`))) fail(`no bundler build in ${from}`);
    cpSync(from, dest, { recursive: true });
    if (!opts.bundlerFrom) rmSync(from, { recursive: true, force: true });
    stripWasmPackExtras(dest);
    minifyJs(dest);
    const dirs = snippetDirs(dest);
    if (dirs.length !== 1) fail(`bundler/: expected one driver snippet importing ./dpop.js, found ${dirs.length}`);
    writeFileSync(path.join(dirs[0], "dpop.js"), dpopJs);
  } else {
    delete manifest.exports["./bundler"];
    manifest.files = manifest.files.filter((f) => f !== "bundler/");
    manifest.sideEffects = manifest.sideEffects.filter((f) => !f.startsWith("./bundler/"));
  }

  // Framework bindings, readable as written.
  for (const fw of FRAMEWORKS) {
    const to = path.join(pkg, fw);
    rmSync(to, { recursive: true, force: true });
    mkdirSync(to, { recursive: true });
    for (const f of ["index.js", "index.d.ts"]) cpSync(path.join(ROOT, "src", fw, f), path.join(to, f));
  }
  // What the bindings share (their event list and types), imported by each as ../bindings/events.js.
  rmSync(path.join(pkg, "bindings"), { recursive: true, force: true });
  cpSync(path.join(ROOT, "src", "bindings"), path.join(pkg, "bindings"), { recursive: true });

  for (const f of ["README.md", "LICENSE-MIT", "LICENSE-APACHE"]) cpSync(path.join(TEMPLATES, f), path.join(pkg, f));
  // The guides the README links to (docs/*.md), so its links work inside node_modules too.
  rmSync(path.join(pkg, "docs"), { recursive: true, force: true });
  mkdirSync(path.join(pkg, "docs"));
  for (const f of readdirSync(path.join(ROOT, "docs"))) if (f.endsWith(".md")) cpSync(path.join(ROOT, "docs", f), path.join(pkg, "docs", f));
  writeFileSync(path.join(pkg, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);

  // Every file the manifest lists and every export target must exist.
  for (const f of manifest.files) if (!existsSync(path.join(pkg, f))) fail(`package.json lists ${f}, which is not in ${pkg}`);
  const targets = Object.values(manifest.exports).flatMap((t) => (typeof t === "string" ? [t] : Object.values(t)));
  for (const t of targets) if (!existsSync(path.join(pkg, t))) fail(`export target ${t} is not in ${pkg}`);
  console.log(`[package] ${NAME}@${version} ready in ${path.relative(ROOT, pkg) || "."} (exports: ${Object.keys(manifest.exports).join(" ")})`);
}

await main();
