// Types for `tessera/vue`. The composable works with any object shaped like a Tessera
// `Session` (from `tessera` or `tessera/bundler`), so it does not depend on either entry's types.
import type { Ref } from "vue";

import type { SessionLike, SessionEvent, SessionStateName } from "../bindings/events.js";
export type { SessionLike, SessionEvent, SessionStateName, SessionEventName } from "../bindings/events.js";
export { SESSION_EVENTS } from "../bindings/events.js";

/** The session's states, plus `"starting"` before its session exists. */
export type ComposableStateName = SessionStateName | "starting";

export interface UseSessionResult<S extends SessionLike = SessionLike> {
  /** The session, or `null` while a factory is still starting it (and after disposal). */
  readonly session: Readonly<Ref<S | null>>;
  /** The session's state; re-read after every event and every method call. */
  readonly state: Readonly<Ref<ComposableStateName>>;
  /** The most recent event, or `null`. */
  readonly lastEvent: Readonly<Ref<SessionEvent | null>>;
  /** Why the factory failed, if it did. */
  readonly error: Readonly<Ref<unknown>>;
  login(credentials: { username: string; password: string }): Promise<unknown>;
  verifyMfa(code: string): Promise<unknown>;
  logout(options?: { everywhere?: boolean }): Promise<unknown>;
  stayActive(): Promise<unknown>;
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
}

/**
 * Subscribes the current effect scope (a component's `setup()`, or an `effectScope()`) to a
 * Tessera session; throws when called outside one.
 *
 * Pass a factory (`() => Session.start(options)`) and the composable owns the session: it is
 * started at once and disposed with the scope (`onScopeDispose`). Pass a session and the
 * composable only subscribes to it.
 *
 * @example
 * const { state, login, logout } = useSession(() => Session.start({ baseUrl: "/auth" }));
 */
export declare function useSession<S extends SessionLike>(source: S | (() => S | Promise<S>)): UseSessionResult<S>;
