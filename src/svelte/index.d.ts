// Types for `tessera/svelte`. The store works with any object shaped like a Tessera `Session`
// (from `tessera` or `tessera/bundler`), so it does not depend on either entry's types.
import type { Readable } from "svelte/store";

/** The states a session reports, plus `"starting"` before the store's session exists. */
export type SessionStateName = "anonymous" | "mfa-required" | "active" | "idle-warning" | "logged-out";
export type StoreStateName = SessionStateName | "starting";

/** Names of the events a session emits. */
export type SessionEventName = "login" | "refresh" | "idle-warning" | "active" | "idle" | "logout" | "error";

/** Every event the SDK emits, in a stable order. */
export declare const SESSION_EVENTS: readonly SessionEventName[];

/** The part of a Tessera `Session` the store uses. */
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

/** The store's value. */
export interface SessionSnapshot<S extends SessionLike = SessionLike> {
  /** The session, or `null` while a factory is still starting it. */
  session: S | null;
  /** The session's state; re-read after every event and every method call. */
  state: StoreStateName;
  /** The most recent event, or `null`. */
  lastEvent: SessionEvent | null;
  /** Why the factory failed, if it did. */
  error: unknown;
}

export interface SessionStore<S extends SessionLike = SessionLike> extends Readable<SessionSnapshot<S>> {
  login(credentials: { username: string; password: string }): Promise<unknown>;
  verifyMfa(code: string): Promise<unknown>;
  logout(options?: { everywhere?: boolean }): Promise<unknown>;
  stayActive(): Promise<unknown>;
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
}

/**
 * A readable store of a Tessera session.
 *
 * Pass a factory (`() => Session.start(options)`) and the store owns the session: it is
 * started when the first subscriber arrives and disposed when the last one leaves. Pass a
 * session and the store only subscribes to it. The methods throw until the session exists.
 *
 * @example
 * const session = sessionStore(() => Session.start({ baseUrl: "/auth" }));
 * // in markup: {$session.state}
 */
export declare function sessionStore<S extends SessionLike>(source: S | (() => S | Promise<S>)): SessionStore<S>;
