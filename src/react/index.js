// `useSession`: a small React hook over a Tessera `Session` (subpath export `tessera/react`).
//
// It does not import the SDK itself, so it works with either entry (`tessera` or
// `tessera/bundler`) and with a session created anywhere. React is a peer dependency.
//
//   import init, { Session } from "tessera";
//   import { useSession } from "tessera/react";
//   await init();
//   function App() {
//     const { state, login, logout, fetch } = useSession(() => Session.start({ baseUrl: "/auth" }));
//     ...
//   }
//
// Pass a factory and the hook owns the session: it calls the factory once per mounted
// component (React StrictMode's mount → unmount → mount reuses the same start) and disposes
// the session when the component really unmounts. Pass a session instance and the hook only
// subscribes to it; you keep ownership.
//
// The state is read through `useSyncExternalStore`, so a render never shows a state older
// than the session's; events raised while the session started (`session.startEvents`) are
// the hook's first `lastEvent`.
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from "react";
import { SESSION_EVENTS } from "../bindings/events.js";

// Types: ./index.d.ts (what `import("./index.js")` resolves to for the type checker).
/** @typedef {import("./index.js").SessionLike} SessionLike */
/** @typedef {import("./index.js").SessionEvent} SessionEvent */
/** @typedef {import("./index.js").SessionEventName} SessionEventName */
/** @typedef {import("./index.js").HookStateName} HookStateName */
/** @typedef {{ state: HookStateName, lastEvent: SessionEvent | null }} Snapshot */
/** @typedef {{ subscribe(f: () => void): () => void, get(): Snapshot, changed?: () => void }} Store */
/** @typedef {"login" | "verifyMfa" | "logout" | "stayActive" | "fetch"} MethodName */

/** Every event the SDK emits (one list for every binding). */
export { SESSION_EVENTS };

/**
 * @param {unknown} value
 * @returns {value is SessionLike}
 */
function isSession(value) {
  return value !== null && typeof value === "object" && "on" in value && typeof value.on === "function";
}

/**
 * @param {SessionLike | null} session
 * @returns {HookStateName}
 */
function readState(session) {
  if (!session) return "starting";
  try {
    return /** @type {HookStateName} */ (String(session.state));
  } catch {
    return "logged-out";
  }
}

// One store per session: the latest event, and a snapshot object that changes only when the
// state or the event does (what `useSyncExternalStore` compares).
/** @type {WeakMap<SessionLike, Store>} */
const stores = new WeakMap();
/** @type {Store} */
const NONE = { subscribe: () => () => {}, get: () => STARTING };
/** @type {Snapshot} */
const STARTING = Object.freeze({ state: "starting", lastEvent: null });

/**
 * @param {SessionLike | null} session
 * @returns {Store}
 */
function storeOf(session) {
  if (!session) return NONE;
  let st = stores.get(session);
  if (st) return st;
  const first = [...(session.startEvents || [])].pop();
  /** @type {SessionEvent | null} */
  let lastEvent = first ? { type: /** @type {SessionEventName} */ (first.type), detail: first } : null;
  /** @type {Snapshot | null} */
  let snap = null;
  /** @type {Set<() => void>} */
  const listeners = new Set();
  /** @type {Array<(() => void) | void> | null} */
  let offs = null;
  const changed = () => listeners.forEach((f) => f());
  st = {
    subscribe(f) {
      listeners.add(f);
      if (!offs)
        offs = SESSION_EVENTS.map((type) =>
          session.on(type, (detail) => {
            lastEvent = { type, detail };
            changed();
          }),
        );
      return () => {
        listeners.delete(f);
        if (listeners.size || !offs) return;
        for (const off of offs)
          try {
            if (typeof off === "function") off();
          } catch {
            /* disposed */
          }
        offs = null;
      };
    },
    get() {
      const state = readState(session);
      if (!snap || snap.state !== state || snap.lastEvent !== lastEvent) snap = { state, lastEvent };
      return snap;
    },
    changed,
  };
  stores.set(session, st);
  return st;
}

/**
 * Subscribes a component to a Tessera session.
 *
 * @template {SessionLike} S
 * @param {S | (() => S | Promise<S>)} source a `Session`, or a factory that starts one
 *   (called once per mounted component).
 * @returns {import("./index.js").UseSessionResult<S>}
 */
export function useSession(source) {
  const owned = typeof source === "function";
  const factory = useRef(source);
  factory.current = source;
  // The owned session's start, shared by StrictMode's double mount: `mounts` counts live
  // mounts, and the session is disposed only when none is left after the current task.
  const own = useRef(/** @type {{ mounts: number, session: S | null, dead: boolean } | null} */ (null));
  const [started, setStarted] = useState(/** @type {S | null} */ (null));
  const [error, setError] = useState(/** @type {unknown} */ (null));

  useEffect(() => {
    if (!owned) return undefined;
    const fresh = !own.current;
    const o = own.current ?? (own.current = { mounts: 0, session: null, dead: false });
    if (fresh) {
      Promise.resolve()
        .then(() => /** @type {() => S | Promise<S>} */ (factory.current)())
        .then(
          (s) => {
            o.session = s;
            if (o.dead) s?.dispose?.();
            else setStarted(s);
          },
          (err) => o.dead || setError(err),
        );
    }
    o.mounts++;
    return () => {
      o.mounts--;
      setTimeout(() => {
        if (o.mounts) return; // remounted (StrictMode): keep the session
        o.dead = true;
        if (own.current === o) own.current = null;
        try {
          o.session?.dispose();
        } catch {
          /* disposed already */
        }
      }, 0);
    };
  }, [owned]);

  const session = owned ? started : isSession(source) ? /** @type {S} */ (source) : null;
  const store = storeOf(session);
  const snap = useSyncExternalStore(store.subscribe, store.get, () => STARTING);

  const call = useCallback(
    /**
     * @param {MethodName} name
     * @param {...any} args
     */
    async (name, ...args) => {
      if (!session) throw new Error("tessera/react: the session has not started yet");
      try {
        return await /** @type {Record<MethodName, (...a: any[]) => unknown>} */ (/** @type {unknown} */ (session))[name](...args);
      } finally {
        // Methods that change the state without an event (e.g. login → "mfa-required").
        store.changed?.();
      }
    },
    [session, store],
  );

  return {
    session,
    state: snap.state,
    lastEvent: snap.lastEvent,
    error,
    login: useCallback((credentials) => call("login", credentials), [call]),
    verifyMfa: useCallback((code) => call("verifyMfa", code), [call]),
    logout: useCallback((options) => call("logout", options), [call]),
    stayActive: useCallback(() => call("stayActive"), [call]),
    fetch: useCallback((input, init) => /** @type {Promise<Response>} */ (call("fetch", input, init)), [call]),
  };
}
