// Types for `tessera/react`. The hook works with any object shaped like a Tessera `Session`
// (from `tessera` or `tessera/bundler`), so it does not depend on either entry's types.

/** The states a session reports, plus `"starting"` before the hook's session exists. */
export type SessionStateName = "anonymous" | "mfa-required" | "active" | "idle-warning" | "logged-out";
export type HookStateName = SessionStateName | "starting";

/** Names of the events a session emits. */
export type SessionEventName = "login" | "refresh" | "idle-warning" | "active" | "idle" | "logout" | "error";

/** Every event the SDK emits, in a stable order. */
export declare const SESSION_EVENTS: readonly SessionEventName[];

/** The part of a Tessera `Session` the hook uses. */
export interface SessionLike {
  readonly state: string;
  /** Events raised while the session started; the hook's first `lastEvent` is the last one. */
  readonly startEvents?: ReadonlyArray<{ type: string }>;
  on(event: SessionEventName, listener: (detail: any) => void): (() => void) | void;
  login(credentials: { username: string; password: string }): Promise<unknown>;
  verifyMfa(code: string): Promise<unknown>;
  logout(options?: { everywhere?: boolean }): Promise<unknown>;
  stayActive(): void;
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  dispose(): void;
}

/** The latest event seen by the hook. */
export interface SessionEvent {
  type: SessionEventName;
  detail: any;
}

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
