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
// Pass a factory and the hook owns the session: it starts it on mount and disposes it on
// unmount (React StrictMode's mount → unmount → mount leaves exactly one live session).
// Pass a session instance and the hook only subscribes to it; you keep ownership.
import { useCallback, useEffect, useRef, useState } from "react";

/** Every event the SDK emits (DESIGN.md public contract). */
export const SESSION_EVENTS = Object.freeze(["login", "refresh", "idle-warning", "active", "idle", "logout", "error"]);

function isSession(value) {
  return value !== null && typeof value === "object" && typeof value.on === "function";
}

function readState(session) {
  if (!session) return "starting";
  try {
    return String(session.state);
  } catch {
    // A disposed wasm-bindgen object throws on access.
    return "logged-out";
  }
}

/**
 * Subscribes a component to a Tessera session.
 *
 * @param {object | (() => object | Promise<object>)} source a `Session`, or a factory that
 *   starts one (called once per mount).
 * @returns {{session: object | null, state: string, lastEvent: {type: string, detail: any} | null,
 *   error: unknown, login: Function, verifyMfa: Function, logout: Function, stayActive: Function,
 *   fetch: Function}}
 */
export function useSession(source) {
  const owned = typeof source === "function";
  const factory = useRef(source);
  factory.current = source;

  const [session, setSession] = useState(() => (isSession(source) ? source : null));
  const [snapshot, setSnapshot] = useState(() => ({ state: readState(isSession(source) ? source : null), lastEvent: null }));
  const [error, setError] = useState(null);

  // Owned mode: start on mount, dispose on unmount. Borrowed mode: follow the prop.
  useEffect(() => {
    if (!owned) {
      setSession(isSession(source) ? source : null);
      return undefined;
    }
    let alive = true;
    let started = null;
    Promise.resolve()
      .then(() => factory.current())
      .then(
        (s) => {
          if (!alive) {
            s?.dispose?.();
            return;
          }
          started = s;
          setSession(s);
        },
        (err) => {
          if (alive) setError(err);
        },
      );
    return () => {
      alive = false;
      if (started) {
        try {
          started.dispose();
        } catch {
          /* disposed already */
        }
      }
      setSession(null);
    };
    // A new factory function every render must not restart the session: key on the mode.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [owned, owned ? null : source]);

  // Follow the session's events; every event re-reads the state.
  useEffect(() => {
    setSnapshot({ state: readState(session), lastEvent: null });
    if (!session) return undefined;
    const offs = SESSION_EVENTS.map((type) =>
      session.on(type, (detail) => setSnapshot({ state: readState(session), lastEvent: { type, detail } })),
    );
    return () => {
      for (const off of offs) {
        try {
          if (typeof off === "function") off();
        } catch {
          /* session disposed */
        }
      }
    };
  }, [session]);

  // Methods that change the state without an event (e.g. login → "mfa-required") re-read it.
  const sync = useCallback(() => setSnapshot((s) => ({ ...s, state: readState(session) })), [session]);
  const call = useCallback(
    async (name, ...args) => {
      if (!session) throw new Error("tessera/react: the session has not started yet");
      try {
        return await session[name](...args);
      } finally {
        sync();
      }
    },
    [session, sync],
  );

  return {
    session,
    state: snapshot.state,
    lastEvent: snapshot.lastEvent,
    error,
    login: useCallback((credentials) => call("login", credentials), [call]),
    verifyMfa: useCallback((code) => call("verifyMfa", code), [call]),
    logout: useCallback((options) => call("logout", options), [call]),
    stayActive: useCallback(() => call("stayActive"), [call]),
    fetch: useCallback((input, init) => call("fetch", input, init), [call]),
  };
}
