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

/** Every event the SDK emits (the same list as `tessera/react` and `tessera/vue`). */
export const SESSION_EVENTS = Object.freeze(["login", "refresh", "idle-warning", "active", "idle", "logout", "error"]);

function readState(session) {
  if (!session) return "starting";
  try {
    return String(session.state);
  } catch {
    return "logged-out"; // a disposed wasm-bindgen object throws on access
  }
}

const snapshot = (session, lastEvent = null, error = null) => ({ session, state: readState(session), lastEvent, error });

/**
 * A readable store of a Tessera session's state, with the session's methods.
 *
 * @param {object | (() => object | Promise<object>)} source a `Session`, or a factory that
 *   starts one (called when the first subscriber arrives).
 */
export function sessionStore(source) {
  const owned = typeof source === "function";
  let current = owned ? null : source;
  let push = null;

  const store = readable(snapshot(current), (set) => {
    let alive = true;
    let session = null;
    let last = null; // the latest event, kept when a method call re-reads the state
    let offs = [];
    push = () => set(snapshot(session, last));
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
        .then(() => (alive ? source() : null))
        .then(
          (s) => (alive ? s && attach(s) : s?.dispose?.()),
          (err) => alive && set(snapshot(null, null, err)),
        );
    } else {
      attach(source);
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
  const call = async (name, ...args) => {
    const s = current;
    if (!s) throw new Error("tessera/svelte: the session has not started yet (subscribe to the store first)");
    try {
      return await s[name](...args);
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
    fetch: (input, init) => call("fetch", input, init),
  };
}
