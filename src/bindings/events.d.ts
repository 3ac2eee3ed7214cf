// Types shared by the framework bindings (`tessera/react`, `tessera/vue`, `tessera/svelte`).
// They describe any object shaped like a Tessera `Session` (from `tessera` or
// `tessera/bundler`), so the bindings depend on neither entry's types. tests/boundary.rs holds
// the unions to the SDK's own declaration.

/** The states a session reports. */
export type SessionStateName = "anonymous" | "mfa-required" | "active" | "idle-warning" | "logged-out";

/** Names of the events a session emits. */
export type SessionEventName = "login" | "refresh" | "idle-warning" | "active" | "idle" | "logout" | "error";

/** Every event the SDK emits, in a stable order. */
export declare const SESSION_EVENTS: readonly SessionEventName[];

/** The part of a Tessera `Session` the bindings use. */
export interface SessionLike {
  readonly state: string;
  /** Events raised while the session started (the React hook's first `lastEvent` is the last one). */
  readonly startEvents?: ReadonlyArray<{ type: string }>;
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
