// Types for `tessera/svelte`. The store works with any object shaped like a Tessera `Session`
// (from `tessera` or `tessera/bundler`), so it does not depend on either entry's types.
import type { Readable } from "svelte/store";

import type { SessionLike, SessionEvent, SessionStateName } from "../bindings/events.js";
export type { SessionLike, SessionEvent, SessionStateName, SessionEventName } from "../bindings/events.js";
export { SESSION_EVENTS } from "../bindings/events.js";

/** The session's states, plus `"starting"` before its session exists. */
export type StoreStateName = SessionStateName | "starting";

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
