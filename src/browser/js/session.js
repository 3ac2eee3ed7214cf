// The browser driver: performs what the Rust engine (`core`) decides. It feeds the engine
// inputs (time is read in Rust), drains its effects in order, and executes them with the
// browser's APIs: fetch, Web Locks, BroadcastChannel, storage, WebCrypto, cleanup. No policy
// lives here: when to refresh, what a bus message means, when the user is idle, which 401
// codes end a session — all of that is the engine's.
//
// This is the entry module: `scripts/bundle-js.mjs` bundles it with the modules in
// `src/browser/js/` into `src/browser/session.js`, the one file wasm-bindgen imports.

// driver.js first: its first import, boundary.js, then opens the bundle, and the boundary's
// numeric constants come before any function, where the minifier inlines them (a function
// declared above them could run before they are set, so it keeps them as variables there).
import { Driver } from "./driver.js";
import { error } from "./transport.js";
import { OPTIONS } from "./boundary.js";

// `Session.start` (in Rust, which creates the engine `core`) resolves to the driver itself:
// its public methods below are the session's API. Outside a browser page it rejects before
// anything is opened (no channel, listener or lock).
// `Session.start` with invalid options (mod.rs): a rejection carrying the code, the message
// naming the option (given by its number in `OPTIONS`).
/**
 * @param {number} option
 * @param {string} problem
 */
export const reject = (option, problem) => Promise.reject(error("invalid_options", OPTIONS[option] + ": " + problem));

// One effect of `Core::poll` (mod.rs) as an array; the bytes are copied out of Wasm memory.
/**
 * @param {number} k @param {number} id @param {number} n @param {boolean} f
 * @param {string | undefined} s @param {string | undefined} t @param {Uint8Array} b
 */
export const fx = (k, id, n, f, s, t, b) => [k, id, n, f, s, t, b.slice()];
// A `Session.start` option (by its number in `OPTIONS`) as `config_from` (mod.rs) reads it: -1
// absent (or the options not an object, or the read threw), 0 for null, a finite number >= 0 as
// itself, -3 for `false`, -2 for anything else.
/**
 * @param {any} o
 * @param {number} k
 */
export const opt = (o, k) => {
  try {
    const v = o && typeof o === "object" ? o[OPTIONS[k]] : void 0;
    return v === void 0 ? -1 : v === null ? 0 : v === false ? -3 : typeof v === "number" && v >= 0 && v < 1 / 0 ? v : -2;
  } catch {
    return -1;
  }
};
// 32 random bits for the engine's seeds (`random_u64` in mod.rs); 0 without WebCrypto.
export const rnd = () => {
  try {
    return crypto.getRandomValues(new Uint32Array(1))[0];
  } catch {
    return 0;
  }
};

/**
 * @param {import("./types").Core} core
 * @param {import("tessera").SessionOptions | null | undefined} o as the page passed them (not an
 *   object, from plain JS: none)
 * @returns {Promise<Driver>}
 */
export function start(core, o) {
  o = o && typeof o === "object" ? o : {};
  /** @type {Driver} */
  let d;
  try {
    if (typeof window !== "object" || typeof document !== "object" || typeof location !== "object")
      throw error("unsupported_environment");
    d = new Driver(core, o);
  } catch (e) {
    core.free();
    return Promise.reject(e);
  }
  // A start that fails half way releases what it opened (channel, listeners, locks, timers).
  return d.init(o).then(
    () => d,
    (e) => {
      d.dispose();
      throw e;
    }
  );
}

export { hasLocks } from "./locks.js";
export { wipeCookies } from "./cleanup.js";
