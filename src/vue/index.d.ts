// Types for `tessera/vue`. The composable works with any object shaped like a Tessera
// `Session` (from `tessera` or `tessera/bundler`), so it does not depend on either entry's types.
import type { Ref } from "vue";

/** The states a session reports, plus `"starting"` before the composable's session exists. */
export type SessionStateName = "anonymous" | "mfa-required" | "active" | "idle-warning" | "logged-out";
export type ComposableStateName = SessionStateName | "starting";

/** Names of the events a session emits. */
export type SessionEventName = "login" | "refresh" | "idle-warning" | "active" | "idle" | "logout" | "error";

/** Every event the SDK emits, in a stable order. */
export declare const SESSION_EVENTS: readonly SessionEventName[];

/** The part of a Tessera `Session` the composable uses. */
export interface SessionLike {
  readonly state: string;
  on(event: SessionEventName, listener: (detail: any) => void): (() => void) | void;
  login(credentials: { username: string; password: string }): Promise<unknown>;
  verifyMfa(code: string): Promise<unknown>;
  logout(options?: { everywhere?: boolean }): Promise<unknown>;
  stayActive(): void;
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  dispose(): void;
}

/** The latest event seen. */
export interface SessionEvent {
  type: SessionEventName;
  detail: any;
}

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
