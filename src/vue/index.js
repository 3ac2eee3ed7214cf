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

/** Every event the SDK emits (the same list as `tessera/react` and `tessera/svelte`). */
export const SESSION_EVENTS = Object.freeze(["login", "refresh", "idle-warning", "active", "idle", "logout", "error"]);

function readState(session) {
  if (!session) return "starting";
  try {
    return String(session.state);
  } catch {
    return "logged-out"; // a disposed wasm-bindgen object throws on access
  }
}

/**
 * Subscribes the current effect scope (a component's `setup`, or an `effectScope`) to a
 * Tessera session.
 *
 * @param {object | (() => object | Promise<object>)} source a `Session`, or a factory that
 *   starts one (called once).
 * @returns {{session: import("vue").Ref<object | null>, state: import("vue").Ref<string>,
 *   lastEvent: import("vue").Ref<{type: string, detail: any} | null>, error: import("vue").Ref<unknown>,
 *   login: Function, verifyMfa: Function, logout: Function, stayActive: Function, fetch: Function}}
 */
export function useSession(source) {
  if (!getCurrentScope()) {
    throw new Error("tessera/vue: call useSession() inside setup() or an effectScope(), which own its cleanup");
  }
  const owned = typeof source === "function";
  const session = shallowRef(null);
  const state = shallowRef("starting");
  const lastEvent = shallowRef(null);
  const error = shallowRef(null);
  let alive = true;
  let offs = [];

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
      .then(() => (alive ? source() : null))
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
    attach(source);
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
  const call = async (name, ...args) => {
    const s = session.value;
    if (!s) throw new Error("tessera/vue: the session has not started yet");
    try {
      return await s[name](...args);
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
    fetch: (input, init) => call("fetch", input, init),
  };
}
