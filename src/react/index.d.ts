// Types for `tessera/react`. The hook works with any object shaped like a Tessera `Session`
// (from `tessera` or `tessera/bundler`), so it does not depend on either entry's types.

import type { SessionLike, SessionEvent, SessionStateName } from "../bindings/events.js";
export type { SessionLike, SessionEvent, SessionStateName, SessionEventName } from "../bindings/events.js";
export { SESSION_EVENTS } from "../bindings/events.js";

/** The session's states, plus `"starting"` before its session exists. */
export type HookStateName = SessionStateName | "starting";

export interface UseSessionResult<S extends SessionLike = SessionLike> {
  /** The session, or `null` while a factory is still starting it. */
  session: S | null;
  /** The session's state (`useSyncExternalStore`: re-read after every event and method call). */
  state: HookStateName;
  /** The most recent event, or `null`. */
  lastEvent: SessionEvent | null;
  /** Why the factory failed, if it did. */
  error: unknown;
  login(credentials: { username: string; password: string }): Promise<unknown>;
  verifyMfa(code: string): Promise<unknown>;
  logout(options?: { everywhere?: boolean }): Promise<unknown>;
  stayActive(): Promise<unknown>;
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
}

/**
 * Subscribes a component to a Tessera session.
 *
 * Pass a factory (`() => Session.start(options)`) and the hook owns the session: the factory
 * runs once per mounted component (StrictMode's mount, unmount, mount reuses that start) and the
 * session is disposed when the component really unmounts. Pass a session and the hook only
 * subscribes to it. The state is read with `useSyncExternalStore`; events raised while the
 * session started reach `lastEvent`.
 *
 * @example
 * const { state, login, logout } = useSession(() => Session.start({ baseUrl: "/auth" }));
 */
export declare function useSession<S extends SessionLike>(source: S | (() => S | Promise<S>)): UseSessionResult<S>;
