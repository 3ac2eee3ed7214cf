#!/usr/bin/env node
// Turns wasm-pack output into the npm package `tessera`.
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
//   bundler/                        bundler target (wasm-pack --target bundler), subpath export
//                                   `tessera/bundler`, for bundlers with ES-module Wasm
//                                   integration (webpack asyncWebAssembly, vite-plugin-wasm):
//                                   initialises itself on import.
//   react/                          `useSession` hook (src/react), subpath export `tessera/react`,
//                                   React as an optional peer dependency.
//   package.json, README.md         written here.
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

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const NAME = "tessera";

function fail(msg) {
  console.error(`[package] ${msg}`);
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
  } catch {
    return {};
  }
}

function cargoVersion() {
  const toml = readFileSync(path.join(ROOT, "Cargo.toml"), "utf8");
  const m = /\[workspace\.package\][^[]*?\nversion\s*=\s*"([^"]+)"/s.exec(toml);
  return m ? m[1] : "0.0.0";
}

/** Removes wasm-pack's per-directory extras (.gitignore `*`, its manifest, README, licences). */
function stripWasmPackExtras(dir, { licences = false } = {}) {
  for (const f of readdirSync(dir)) {
    if (f === ".gitignore" || f === "package.json" || f === "README.md" || (licences && /^LICEN[CS]E/i.test(f))) {
      rmSync(path.join(dir, f), { force: true });
    }
  }
}

function loadEsbuild() {
  try {
    return createRequire(path.join(ROOT, "package.json"))("esbuild");
  } catch {
    console.warn("[package] esbuild not installed (npm ci): shipping unminified, unbundled JS");
    return null;
  }
}

/**
 * The web entry as ONE minified file: esbuild bundles the wasm-bindgen glue with its snippet
 * modules (the JS driver) and minifies it, then snippets/ goes. One request instead of two,
 * and ~0.3 KB less brotli than two files. The glue hands the snippet's namespace to the Wasm
 * instance as an import object, which bundling keeps intact. (The bundler target keeps its
 * snippets/: there the Wasm module imports them by path.)
 */
function bundleWebEntry(pkg) {
  const esbuild = loadEsbuild();
  if (!esbuild) return;
  const entry = path.join(pkg, `${NAME}.js`);
  const out = esbuild.buildSync({ entryPoints: [entry], bundle: true, minify: true, format: "esm", platform: "browser", write: false });
  writeFileSync(entry, out.outputFiles[0].contents);
  rmSync(path.join(pkg, "snippets"), { recursive: true, force: true });
}

/**
 * Shortens the Wasm import names of the (bundled) web entry: wasm-bindgen names each import
 * `__wbg_<name>_<16 hex digits>` and each import module by a path; those long, incompressible
 * names appear twice, in the module's import section and in the glue's import object. Each
 * is renamed in both places to a short one (`$0`, `$1`, …), but only when it appears exactly
 * once in the JS as a whole token, so nothing else can be hit. Saves ~0.4 KB brotli. Any
 * surprise in the module (an import kind this parser does not know) leaves both files as
 * they are.
 */
function shortenImports(pkg) {
  const wasmFile = path.join(pkg, `${NAME}_bg.wasm`), jsFile = path.join(pkg, `${NAME}.js`);
  const wasm = readFileSync(wasmFile);
  let js = readFileSync(jsFile, "utf8");
  let pos = 8;
  const uleb = () => {
    let n = 0, shift = 0, b;
    do {
      b = wasm[pos++];
      n += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return n;
  };
  const leb = (n) => {
    const out = [];
    do {
      let b = n % 128;
      n = Math.floor(n / 128);
      if (n) b |= 0x80;
      out.push(b);
    } while (n);
    return Buffer.from(out);
  };
  const name = () => {
    const len = uleb();
    const s = wasm.toString("utf8", pos, pos + len);
    pos += len;
    return s;
  };
  const limits = () => {
    const flag = wasm[pos++];
    uleb();
    if (flag & 1) uleb();
  };
  const once = (n) => js.split(n).length === 2 && new RegExp(`(^|[^\\w$])${n.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}($|[^\\w$])`).test(js);
  while (pos < wasm.length) {
    const header = pos;
    const id = wasm[pos++];
    const size = uleb();
    const start = pos;
    if (id !== 2) {
      pos = start + size;
      continue;
    }
    const renames = new Map();
    const parts = [];
    const count = uleb();
    let next = 0;
    const short = (n) => {
      if (!renames.has(n)) renames.set(n, once(n) ? `$${(next++).toString(36)}` : n);
      return renames.get(n);
    };
    for (let i = 0; i < count; i++) {
      const mod = name(), field = name();
      const descStart = pos;
      const kind = wasm[pos++];
      if (kind === 0) uleb(); // function: type index
      else if (kind === 1) (pos++, limits()); // table: reftype, limits
      else if (kind === 2) limits(); // memory
      else if (kind === 3) pos += 2; // global: valtype, mutability
      else return console.warn(`[package] import kind ${kind}: import names left as they are`);
      const m = Buffer.from(short(JSON.stringify(mod)).replace(/^"(.*)"$/, "$1")), f = Buffer.from(short(field));
      parts.push(leb(m.length), m, leb(f.length), f, wasm.subarray(descStart, pos));
    }
    if (pos !== start + size) return console.warn("[package] unexpected import section: names left as they are");
    const body = Buffer.concat([leb(count), ...parts]);
    for (const [from, to] of renames) if (from !== to) js = js.replace(from, () => (from.startsWith('"') ? `"${to}"` : to));
    const out = Buffer.concat([wasm.subarray(0, header), Buffer.from([2]), leb(body.length), body, wasm.subarray(start + size)]);
    // Check before writing: the module still compiles, and every import it now asks for is
    // named in the glue.
    let imports;
    try {
      imports = WebAssembly.Module.imports(new WebAssembly.Module(out));
    } catch (e) {
      return console.warn(`[package] renamed module does not compile (${e.message}): names left as they are`);
    }
    const missing = imports.filter((i) => !js.includes(i.module) || !js.includes(i.name));
    if (missing.length) return console.warn(`[package] ${missing[0].name} not in the glue: names left as they are`);
    writeFileSync(wasmFile, out);
    writeFileSync(jsFile, js);
    console.log(`[package] ${[...renames].filter(([a, b]) => a !== b).length} Wasm import names shortened`);
    return;
  }
}

/**
 * Minifies the shipped JS (the bundler copy's glue and snippets) in place with esbuild's
 * transform (whitespace, local names, comments; exports and imports keep their names). Users
 * download these bytes as they are; the readable sources stay in src/.
 */
function minifyJs(dir) {
  const esbuild = loadEsbuild();
  if (!esbuild) return;
  for (const f of readdirSync(dir, { recursive: true })) {
    const file = path.join(dir, String(f));
    if (!file.endsWith(".js")) continue;
    const { code } = esbuild.transformSync(readFileSync(file, "utf8"), { minify: true, format: "esm" });
    writeFileSync(file, code);
  }
}

function buildBundler() {
  const out = path.join(tmpdir(), `tessera-bundler-${process.pid}`);
  rmSync(out, { recursive: true, force: true });
  const env = { ...process.env, PATH: `${path.join(ROOT, "node_modules/.bin")}${path.delimiter}${process.env.HOME}/.cargo/bin${path.delimiter}${process.env.PATH}` };
  console.log("[package] building the bundler target with wasm-pack");
  execFileSync(
    "wasm-pack",
    ["--quiet", "build", "--release", "--target", "bundler", "--out-dir", out, "--out-name", NAME, "--mode", "no-install"],
    { cwd: ROOT, env, stdio: "inherit" },
  );
  return out;
}

const README = (version) => `# tessera

Browser sessions, handled: login, a sealed token vault, silent refresh, idle timeout,
cross-tab coordination, logout and the cleanup after it — written in Rust, compiled to
WebAssembly. Pairs with the \`tessera-server\` verification server (or any server speaking its
small HTTP contract).

Version ${version}.

## Install

\`\`\`sh
npm install tessera
\`\`\`

## Use

\`\`\`js
import init, { Session } from "tessera";

await init(); // loads tessera_bg.wasm next to the module; call once, repeated calls are free

const session = await Session.start({
  baseUrl: "/auth",            // where /login, /mfa, /refresh, /logout live
  storage: "memory",           // "memory" (default) | "session" | "local" — persisted records are AES-GCM sealed
  idleTimeoutMs: 900_000,      // log out after 15 min without activity in any tab
  idleWarningMs: 60_000,       // "idle-warning" event this long before
  refreshLeadMs: 60_000,       // refresh the access token this long before it expires
  channel: "tessera",          // BroadcastChannel / lock name shared by the tabs
});

session.on("logout", (e) => console.log("signed out:", e.reason, e.cleared));
session.on("idle-warning", () => showStaySignedInDialog(() => session.stayActive()));

await session.login({ username: "alice", password: "…" });
if (session.state === "mfa-required") await session.verifyMfa("123456");

const res = await session.fetch("/api/me"); // adds the bearer; one refresh + retry on 401
await session.logout();                      // or { everywhere: true }
\`\`\`

States: \`anonymous\`, \`mfa-required\`, \`active\`, \`idle-warning\`, \`logged-out\`.
Events: \`login\`, \`refresh\`, \`idle-warning\`, \`active\`, \`idle\`, \`logout\` (\`reason\`,
\`cleared\`), \`error\` (\`code\`, \`message\`). \`session.on()\` returns an unsubscribe function;
\`session.dispose()\` removes every listener and timer.

Every tab of your app that starts a \`Session\` with the same \`channel\` shares the session:
one tab refreshes per expiry, activity anywhere keeps all tabs alive, logout anywhere logs out
and wipes every tab.

## Bundlers

- **Vite**: works out of the box for \`vite build\`. For the dev server, keep the package out of
  dependency pre-bundling so the \`.wasm\` URL stays valid:
  \`optimizeDeps: { exclude: ["tessera"] }\`.
- **webpack 5**, **Rollup**, **esbuild**, plain \`<script type="module">\`: the default entry
  resolves the wasm file with \`new URL("tessera_bg.wasm", import.meta.url)\`; make sure it is
  emitted as an asset (webpack 5 and Vite do this by themselves).
- **ES-module Wasm integration** (webpack \`experiments.asyncWebAssembly\`,
  \`vite-plugin-wasm\`): \`import { Session } from "tessera/bundler"\` initialises itself on
  import, no \`init()\` call.

## React

\`\`\`js
import { useSession } from "tessera/react";

function Account() {
  const { state, login, logout, fetch } = useSession(() => Session.start({ baseUrl: "/auth" }));
  if (state === "starting") return null;
  // …
}
\`\`\`

Given a factory, the hook starts the session on mount and disposes it on unmount (safe under
StrictMode); given a session, it only subscribes. React 18 or 19 is a peer dependency, needed
only for \`tessera/react\`.

## Security notes

- The refresh token lives in an \`HttpOnly; Secure; SameSite=Strict\` \`__Host-\` cookie set
  by the server; the access token stays in memory unless you opt into sealed persistence.
- Persisted records are AES-256-GCM sealed; a record that fails to open is wiped and reported,
  never used.
- Every auth request carries \`X-Tessera-CSRF: 1\`.

## License

MIT OR Apache-2.0
`;

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const pkg = opts.pkg;
  for (const f of [`${NAME}.js`, `${NAME}_bg.wasm`, `${NAME}.d.ts`]) {
    if (!existsSync(path.join(pkg, f))) {
      fail(`${path.join(pkg, f)} missing: run \`wasm-pack build --release --target web --out-dir pkg\` first`);
    }
  }
  const generated = readJson(path.join(pkg, "package.json"));
  const version = generated.version || cargoVersion();
  stripWasmPackExtras(pkg);

  bundleWebEntry(pkg);
  shortenImports(pkg);

  // Bundler target into pkg/bundler.
  const files = [`${NAME}.js`, `${NAME}.d.ts`, `${NAME}_bg.wasm`, `${NAME}_bg.wasm.d.ts`, "react/", "README.md"];
  for (const f of readdirSync(pkg)) if (/^LICEN[CS]E/i.test(f)) files.push(f);
  if (existsSync(path.join(pkg, "snippets"))) files.push("snippets/");
  const exports = {
    ".": { types: `./${NAME}.d.ts`, default: `./${NAME}.js` },
    "./react": { types: "./react/index.d.ts", default: "./react/index.js" },
    [`./${NAME}_bg.wasm`]: `./${NAME}_bg.wasm`,
    "./package.json": "./package.json",
  };
  const sideEffects = ["./snippets/*"];
  if (opts.bundler) {
    const from = opts.bundlerFrom ?? buildBundler();
    if (!existsSync(path.join(from, `${NAME}.js`))) fail(`no bundler build in ${from}`);
    const dest = path.join(pkg, "bundler");
    rmSync(dest, { recursive: true, force: true });
    cpSync(from, dest, { recursive: true });
    if (!opts.bundlerFrom) rmSync(from, { recursive: true, force: true });
    stripWasmPackExtras(dest, { licences: true });
    files.push("bundler/");
    exports["./bundler"] = { types: `./bundler/${NAME}.d.ts`, default: `./bundler/${NAME}.js` };
    // The bundler entry instantiates the module on import: that import must never be dropped.
    sideEffects.push(`./bundler/${NAME}.js`, "./bundler/snippets/*");
  }

  // The bundler copy's JS minified too; react/ stays readable.
  if (opts.bundler) minifyJs(path.join(pkg, "bundler"));

  // React hook.
  const reactSrc = path.join(ROOT, "src", "react");
  const reactDest = path.join(pkg, "react");
  rmSync(reactDest, { recursive: true, force: true });
  mkdirSync(reactDest, { recursive: true });
  for (const f of ["index.js", "index.d.ts"]) cpSync(path.join(reactSrc, f), path.join(reactDest, f));

  const manifest = {
    name: NAME,
    version,
    description:
      generated.description ||
      "Browser session SDK: sealed token vault, silent refresh, idle timeout, cross-tab sync and logout cleanup, in WebAssembly.",
    keywords: ["session", "auth", "refresh-token", "idle-timeout", "logout", "webassembly", "wasm"],
    license: generated.license || "MIT OR Apache-2.0",
    ...(generated.repository ? { repository: generated.repository } : {}),
    type: "module",
    main: `./${NAME}.js`,
    module: `./${NAME}.js`,
    types: `./${NAME}.d.ts`,
    exports,
    files,
    sideEffects,
    peerDependencies: { react: ">=18" },
    peerDependenciesMeta: { react: { optional: true } },
    engines: { node: ">=18" },
  };
  writeFileSync(path.join(pkg, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(path.join(pkg, "README.md"), README(version));
  console.log(`[package] ${NAME}@${version} ready in ${path.relative(ROOT, pkg) || "."} (exports: ${Object.keys(exports).join(" ")})`);
}

main();
