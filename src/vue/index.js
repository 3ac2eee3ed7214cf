// `useSession`: a Vue 3 composable over a Tessera `Session` (subpath export `tessera/vue`).
//
// Like `tessera/react`, it does not import the SDK, so it works with either entry (`tessera`
// or `tessera/bundler`) and with a session created anywhere. Vue is a peer dependency.
//
//   <script setup>
//   import { Session } from "tessera";
//   import { useSession } from "tessera/vue";
//   const { state, login, logout, fetch } = useSession(() => Session.start({ baseUrl: "/auth" }));
//   </script>
//   <template><p>{{ state }}</p></template>
//
// Pass a factory and the composable owns the session: it starts it at once (in the browser;
// during a server render it does nothing and the state stays "starting") and disposes it
// when the calling scope (the component, or an `effectScope`) is disposed. Pass a session
// and it only subscribes; you keep ownership. Either way the subscriptions end with the scope.
import { getCurrentScope, onScopeDispose, shallowRef } from "vue";
import { SESSION_EVENTS } from "../bindings/events.js";

// Types: ./index.d.ts (what `import("./index.js")` resolves to for the type checker).
/** @typedef {import("./index.js").SessionLike} SessionLike */
/** @typedef {import("./index.js").SessionEvent} SessionEvent */
/** @typedef {import("./index.js").SessionEventName} SessionEventName */
/** @typedef {import("./index.js").ComposableStateName} ComposableStateName */
/** @typedef {"login" | "verifyMfa" | "logout" | "stayActive" | "fetch"} MethodName */

/** Every event the SDK emits (one list for every binding). */
export { SESSION_EVENTS };

/**
 * @param {SessionLike | null} session
 * @returns {ComposableStateName}
 */
function readState(session) {
  if (!session) return "starting";
  try {
    return /** @type {ComposableStateName} */ (String(session.state));
  } catch {
    return "logged-out"; // a disposed wasm-bindgen object throws on access
  }
}

/**
 * Subscribes the current effect scope (a component's `setup`, or an `effectScope`) to a
 * Tessera session.
 *
 * @template {SessionLike} S
 * @param {S | (() => S | Promise<S>)} source a `Session`, or a factory that starts one
 *   (called once).
 * @returns {import("./index.js").UseSessionResult<S>}
 */
export function useSession(source) {
  if (!getCurrentScope()) {
    throw new Error("tessera/vue: call useSession() inside setup() or an effectScope(), which own its cleanup");
  }
  const owned = typeof source === "function";
  const session = /** @type {import("vue").ShallowRef<S | null>} */ (shallowRef(null));
  const state = shallowRef(/** @type {ComposableStateName} */ ("starting"));
  const lastEvent = shallowRef(/** @type {SessionEvent | null} */ (null));
  const error = shallowRef(/** @type {unknown} */ (null));
  let alive = true;
  /** @type {Array<(() => void) | void>} */
  let offs = [];

  /** @param {S} s */
  const attach = (s) => {
    session.value = s;
    state.value = readState(s);
    offs = SESSION_EVENTS.map((type) =>
      s.on(type, (detail) => {
        state.value = readState(s);
        lastEvent.value = { type, detail };
      }),
    );
  };

  // During a server render (no `window`) nothing starts: the state stays "starting", and the
  // browser starts the session after hydration.
  if (owned && typeof window !== "undefined") {
    Promise.resolve()
      .then(() => (alive ? /** @type {() => S | Promise<S>} */ (source)() : null))
      .then(
        (s) => {
          if (!alive) return void s?.dispose?.();
          if (s) attach(s);
        },
        (err) => {
          if (alive) error.value = err;
        },
      );
  } else if (!owned) {
    attach(/** @type {S} */ (source));
  }

  onScopeDispose(() => {
    alive = false;
    for (const off of offs) {
      try {
        if (typeof off === "function") off();
      } catch {
        /* session disposed */
      }
    }
    offs = [];
    if (owned && session.value) {
      try {
        session.value.dispose();
      } catch {
        /* disposed already */
      }
    }
    session.value = null;
  });

  // Methods that change the state without an event (login → "mfa-required") re-read it.
  /**
   * @param {MethodName} name
   * @param {...any} args
   */
  const call = async (name, ...args) => {
    const s = session.value;
    if (!s) throw new Error("tessera/vue: the session has not started yet");
    try {
      return await /** @type {Record<MethodName, (...a: any[]) => unknown>} */ (/** @type {unknown} */ (s))[name](...args);
    } finally {
      if (alive) state.value = readState(s);
    }
  };

  return {
    // Shallow refs (typed read-only): the session object itself is never proxied.
    session,
    state,
    lastEvent,
    error,
    login: (credentials) => call("login", credentials),
    verifyMfa: (code) => call("verifyMfa", code),
    logout: (options) => call("logout", options),
    stayActive: () => call("stayActive"),
    fetch: (input, init) => /** @type {Promise<Response>} */ (call("fetch", input, init)),
  };
}
