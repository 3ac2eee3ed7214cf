// Shortening the Wasm import names of the web entry, verified (used by scripts/package.mjs;
// the verifier is tested by tests/consumer/packaging.test.mjs).
//
// wasm-bindgen names each import `__wbg_<name>_<16 hex digits>` and each import module by a
// path; those long, incompressible names appear twice, in the module's import section and in
// the glue's import object. Each is renamed in both places to a short one (`$0`, `$1`, …), but
// only when it appears exactly once in the JS as a whole token. Saves ~0.4 KB brotli.
//
// Verified, not trusted: the original and the renamed module are each instantiated against
// their glue in Node, and every import of the renamed module must receive the very function
// (same source) the original received under its old name. Any difference is an error.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

/** Reads the import section of a Wasm binary: `{ header, end, imports: [{module, name, desc}] }`, or null. */
export function readImportSection(wasm) {
  if (wasm.length < 8 || wasm.readUInt32LE(0) !== 0x6d736100) throw new Error("not a Wasm binary");
  let pos = 8;
  const uleb = () => {
    let n = 0, shift = 0, b;
    do {
      if (pos >= wasm.length) throw new Error("truncated LEB128");
      b = wasm[pos++];
      n += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return n;
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
  while (pos < wasm.length) {
    const header = pos;
    const id = wasm[pos++];
    const size = uleb();
    const start = pos;
    if (id !== 2) {
      pos = start + size;
      continue;
    }
    const imports = [];
    const count = uleb();
    for (let i = 0; i < count; i++) {
      const module = name(), field = name();
      const descStart = pos;
      const kind = wasm[pos++];
      if (kind === 0) uleb(); // function: type index
      else if (kind === 1) (pos++, limits()); // table: reftype, limits
      else if (kind === 2) limits(); // memory
      else if (kind === 3) pos += 2; // global: valtype, mutability
      else throw new Error(`import ${module}.${field} has kind ${kind}, which this parser does not know`);
      imports.push({ module, name: field, desc: wasm.subarray(descStart, pos) });
    }
    if (pos !== start + size) throw new Error(`import section is ${size} bytes, parsed ${pos - start}`);
    return { header, end: start + size, imports };
  }
  return null;
}

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

/** The module with its import section rebuilt from `imports` (same order and descriptors). */
export function withImports(wasm, section, imports) {
  const parts = [leb(imports.length)];
  for (const i of imports) {
    const m = Buffer.from(i.module), f = Buffer.from(i.name);
    parts.push(leb(m.length), m, leb(f.length), f, i.desc);
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([wasm.subarray(0, section.header), Buffer.from([2]), leb(body.length), body, wasm.subarray(section.end)]);
}

/**
 * Instantiates `wasm` against the glue `js` in this Node process (through the glue's own
 * `initSync`) and returns what the glue handed to each import, in the module's import order:
 * `[{module, name, kind, value}]`. Throws when the module does not link.
 */
export async function linkInNode(js, wasm) {
  const dir = mkdtempSync(path.join(tmpdir(), "tessera-link-"));
  const file = path.join(dir, "glue.mjs");
  writeFileSync(file, js);
  const Instance = WebAssembly.Instance;
  let seen = null;
  WebAssembly.Instance = function (module, imports) {
    seen = imports;
    return new Instance(module, imports);
  };
  try {
    const glue = await import(pathToFileURL(file).href);
    if (typeof glue.initSync !== "function") throw new Error("the glue exports no initSync");
    glue.initSync({ module: new WebAssembly.Module(wasm) });
  } finally {
    WebAssembly.Instance = Instance;
    rmSync(dir, { recursive: true, force: true });
  }
  if (!seen) throw new Error("initSync did not instantiate the module");
  return WebAssembly.Module.imports(new WebAssembly.Module(wasm)).map((i) => ({ ...i, value: seen[i.module]?.[i.name] }));
}

/** A function's source without its own name (method shorthand `name(a){…}` prints the name). */
const source = (f) => String(f).replace(/^(async\s+)?[\w$]+\s*(?=\()/, "$1");

/**
 * Throws unless the module/glue pair `after` links in Node and hands every import (by
 * position) the same kind of value, and for functions the same source, as `before` does.
 */
export async function verifyRenaming(before, after) {
  const was = await linkInNode(before.js, before.wasm);
  let now;
  try {
    now = await linkInNode(after.js, after.wasm);
  } catch (e) {
    throw new Error(`the renamed module does not link against the renamed glue: ${e.message}`);
  }
  if (was.length !== now.length) throw new Error(`${was.length} imports before renaming, ${now.length} after`);
  was.forEach((b, i) => {
    const a = now[i];
    const what = `import ${i} (${b.module}.${b.name} -> ${a.module}.${a.name})`;
    if (b.kind !== a.kind) throw new Error(`${what}: kind ${b.kind} became ${a.kind}`);
    if (typeof b.value !== typeof a.value) throw new Error(`${what}: ${typeof b.value} became ${typeof a.value}`);
    if (typeof b.value === "function" && source(b.value) !== source(a.value)) {
      throw new Error(`${what}: the glue now hands the module a different function`);
    }
  });
}

/** Renames the imports of `wasmFile` and their keys in `jsFile` in place, verified. Returns a summary. */
export async function shortenImports(wasmFile, jsFile) {
  const wasm = readFileSync(wasmFile);
  const before = readFileSync(jsFile, "utf8");
  let js = before;
  const section = readImportSection(wasm);
  if (!section) throw new Error("the module has no import section");
  const escape = (n) => n.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const once = (n) => js.split(n).length === 2 && new RegExp(`(^|[^\\w$])${escape(n)}($|[^\\w$])`).test(js);
  const renames = new Map();
  let next = 0;
  const short = (n) => {
    if (!renames.has(n)) renames.set(n, once(n) ? `$${(next++).toString(36)}` : n);
    return renames.get(n);
  };
  // Module names appear in the JS as quoted keys; field names as bare or quoted keys.
  const renamed = section.imports.map((i) => ({
    module: short(JSON.stringify(i.module)).replace(/^"(.*)"$/, "$1"),
    name: short(i.name),
    desc: i.desc,
  }));
  for (const [from, to] of renames) if (from !== to) js = js.replace(from, () => (from.startsWith('"') ? `"${to}"` : to));
  const out = withImports(wasm, section, renamed);
  await verifyRenaming({ js: before, wasm }, { js, wasm: out });
  writeFileSync(wasmFile, out);
  writeFileSync(jsFile, js);
  const kept = section.imports.filter((i) => renames.get(i.name) === i.name).map((i) => i.name);
  return {
    renamed: [...renames].filter(([a, b]) => a !== b).length,
    saved: wasm.length - out.length + before.length - js.length,
    kept,
  };
}

/** The export section of `wasm`: `{ header, end, exports: [{ name, kind, index }] }`, or null. */
export function readExportSection(wasm) {
  let pos = 8;
  const u32 = () => {
    let r = 0, s = 0, b;
    do {
      b = wasm[pos++];
      r += (b & 0x7f) * 2 ** s;
      s += 7;
    } while (b & 0x80);
    return r;
  };
  while (pos < wasm.length) {
    const header = pos;
    const id = wasm[pos++];
    const size = u32();
    const start = pos;
    if (id !== 7) {
      pos = start + size;
      continue;
    }
    const exports = [];
    for (let n = u32(); n > 0; n--) {
      const len = u32();
      const name = wasm.subarray(pos, pos + len).toString("utf8");
      pos += len;
      const kind = wasm[pos++];
      exports.push({ name, kind, index: u32() });
    }
    if (pos !== start + size) throw new Error(`export section is ${size} bytes, parsed ${pos - start}`);
    return { header, end: start + size, exports };
  }
  return null;
}

/**
 * Renames the module's exports that the glue `jsFile` (minified: `<instance exports>.name`)
 * uses, in both files, in place. Only names that occur in the glue solely as a property
 * access are renamed (`memory` keeps its name). Verified: the pair links in Node through the
 * glue's own `initSync` (which calls the renamed start function), every renamed property the
 * glue reads is an export of the new module, and no old name is left in the glue.
 */
export async function shortenExports(wasmFile, jsFile) {
  const wasm = readFileSync(wasmFile);
  const before = readFileSync(jsFile, "utf8");
  const section = readExportSection(wasm);
  if (!section) throw new Error("the module has no export section");
  const count = (re) => (before.match(re) || []).length;
  const renames = new Map();
  let next = 0;
  for (const e of section.exports) {
    if (e.name === "memory" || !/^[A-Za-z_][\w]*$/.test(e.name)) continue;
    const any = count(new RegExp(`(?<![\\w$])${e.name}(?![\\w$])`, "g"));
    const access = count(new RegExp(`\\.${e.name}(?![\\w$])`, "g"));
    if (any > 0 && any === access) renames.set(e.name, `$${(next++).toString(36)}`);
  }
  let js = before;
  for (const [from, to] of renames) js = js.replace(new RegExp(`\\.${from}(?![\\w$])`, "g"), () => `.${to}`);
  const parts = [leb(section.exports.length)];
  for (const e of section.exports) {
    const n = Buffer.from(renames.get(e.name) ?? e.name);
    parts.push(leb(n.length), n, Buffer.from([e.kind]), leb(e.index));
  }
  const body = Buffer.concat(parts);
  const out = Buffer.concat([wasm.subarray(0, section.header), Buffer.from([7]), leb(body.length), body, wasm.subarray(section.end)]);
  const names = new Set(WebAssembly.Module.exports(new WebAssembly.Module(out)).map((e) => e.name));
  for (const to of renames.values()) if (!names.has(to)) throw new Error(`export ${to} missing after renaming`);
  for (const from of renames.keys())
    if (new RegExp(`(?<![\\w$])${from}(?![\\w$])`).test(js)) throw new Error(`the glue still names ${from}`);
  await linkInNode(js, out);
  writeFileSync(wasmFile, out);
  writeFileSync(jsFile, js);
  return { renamed: renames.size, saved: wasm.length - out.length + before.length - js.length };
}
