// `sessionStore`: a Svelte readable store over a Tessera `Session` (subpath export
// `tessera/svelte`).
//
// Like `tessera/react`, it does not import the SDK, so it works with either entry (`tessera`
// or `tessera/bundler`) and with a session created anywhere. Svelte is a peer dependency
// (only `svelte/store` is used, so it works in Svelte 4 and 5 components alike).
//
//   <script>
//     import { Session } from "tessera";
//     import { sessionStore } from "tessera/svelte";
//     const session = sessionStore(() => Session.start({ baseUrl: "/auth" }));
//   </script>
//   <p>{$session.state}</p>
//   <button onclick={() => session.login({ username, password })}>Sign in</button>
//
// The store's value is `{ session, state, lastEvent, error }`. Given a factory, the store owns
// the session: it starts it when the first subscriber arrives and disposes it when the last
// one leaves (a component using `$session` subscribes on mount and leaves on destroy). Given
// a session, it only subscribes; you keep ownership.
import { readable } from "svelte/store";
import { SESSION_EVENTS } from "../bindings/events.js";

// Types: ./index.d.ts (what `import("./index.js")` resolves to for the type checker).
/** @typedef {import("./index.js").SessionLike} SessionLike */
/** @typedef {import("./index.js").SessionEvent} SessionEvent */
/** @typedef {import("./index.js").SessionEventName} SessionEventName */
/** @typedef {import("./index.js").StoreStateName} StoreStateName */
/** @typedef {"login" | "verifyMfa" | "logout" | "stayActive" | "fetch"} MethodName */

/** Every event the SDK emits (one list for every binding). */
export { SESSION_EVENTS };

/**
 * @param {SessionLike | null} session
 * @returns {StoreStateName}
 */
function readState(session) {
  if (!session) return "starting";
  try {
    return /** @type {StoreStateName} */ (String(session.state));
  } catch {
    return "logged-out"; // a disposed wasm-bindgen object throws on access
  }
}

/**
 * @template {SessionLike} S
 * @param {S | null} session
 * @param {SessionEvent | null} [lastEvent]
 * @param {unknown} [error]
 * @returns {import("./index.js").SessionSnapshot<S>}
 */
const snapshot = (session, lastEvent = null, error = null) => ({ session, state: readState(session), lastEvent, error });

/**
 * A readable store of a Tessera session's state, with the session's methods.
 *
 * @template {SessionLike} S
 * @param {S | (() => S | Promise<S>)} source a `Session`, or a factory that starts one
 *   (called when the first subscriber arrives).
 * @returns {import("./index.js").SessionStore<S>}
 */
export function sessionStore(source) {
  const owned = typeof source === "function";
  /** @type {S | null} */
  let current = owned ? null : /** @type {S} */ (source);
  /** @type {(() => void) | null} */
  let push = null;

  const store = readable(snapshot(current), (set) => {
    let alive = true;
    /** @type {S | null} */
    let session = null;
    /** @type {SessionEvent | null} */
    let last = null; // the latest event, kept when a method call re-reads the state
    /** @type {Array<(() => void) | void>} */
    let offs = [];
    push = () => set(snapshot(session, last));
    /** @param {S} s */
    const attach = (s) => {
      session = current = s;
      set(snapshot(s));
      offs = SESSION_EVENTS.map((type) =>
        s.on(type, (detail) => {
          last = { type, detail };
          set(snapshot(s, last));
        }),
      );
    };
    if (owned) {
      // A subscription that ends at once (a server render) never calls the factory.
      Promise.resolve()
        .then(() => (alive ? /** @type {() => S | Promise<S>} */ (source)() : null))
        .then(
          (s) => (alive ? s && attach(s) : s?.dispose?.()),
          (err) => alive && set(snapshot(/** @type {S | null} */ (null), null, err)),
        );
    } else {
      attach(/** @type {S} */ (source));
    }
    return () => {
      alive = false;
      push = null;
      for (const off of offs) {
        try {
          if (typeof off === "function") off();
        } catch {
          /* session disposed */
        }
      }
      if (owned && session) {
        try {
          session.dispose();
        } catch {
          /* disposed already */
        }
        current = null;
      }
    };
  });

  // Methods that change the state without an event (login → "mfa-required") re-read it.
  /**
   * @param {MethodName} name
   * @param {...any} args
   */
  const call = async (name, ...args) => {
    const s = current;
    if (!s) throw new Error("tessera/svelte: the session has not started yet (subscribe to the store first)");
    try {
      return await /** @type {Record<MethodName, (...a: any[]) => unknown>} */ (/** @type {unknown} */ (s))[name](...args);
    } finally {
      push?.();
    }
  };

  return {
    subscribe: store.subscribe,
    login: (credentials) => call("login", credentials),
    verifyMfa: (code) => call("verifyMfa", code),
    logout: (options) => call("logout", options),
    stayActive: () => call("stayActive"),
    fetch: (input, init) => /** @type {Promise<Response>} */ (call("fetch", input, init)),
  };
}
