//! TypeScript declarations of the public API (the generated `.d.ts` carries them).
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS: &'static str = r#"
/** Session lifecycle states. */
export type SessionState = "anonymous" | "mfa-required" | "active" | "idle-warning" | "logged-out";

/** What `logout` removes besides the SDK's own records. */
export interface CleanupOptions {
  /** Clear all of `localStorage` (default: only the SDK's `tessera:` keys). */
  localStorage?: boolean;
  /** Clear all of `sessionStorage` (default: only the SDK's `tessera:` keys). */
  sessionStorage?: boolean;
  /** Expire every cookie visible to the page on every path prefix and domain suffix. */
  cookies?: boolean;
  /** IndexedDB databases to delete: names, or `true` for all (`indexedDB.databases()`). */
  indexedDB?: string[] | true;
  /** Cache Storage entries to delete: names, or `true` for all. */
  caches?: string[] | true;
}

/** Options of `Session.start`. Durations in milliseconds; `0` or `null` disables a limit. */
export interface SessionOptions {
  /** Where the Tessera auth routes live. Default `"/auth"`. */
  baseUrl?: string;
  /**
   * Where the access token lives between page loads. `"memory"` (default) keeps it in this
   * tab only; `"session"` / `"local"` persist it sealed with AES-256-GCM under a key held by
   * the server (released only with the session cookie) or, as a fallback, a key that lives
   * for the browser session. Sealing protects data at rest and detects tampering; it does
   * not protect against script running in the page.
   */
  storage?: "memory" | "session" | "local";
  /** Log out after this long without activity in any tab. Default 900000 (15 min). */
  idleTimeoutMs?: number | null;
  /** Emit `idle-warning` this long before the idle deadline. Default 60000. */
  idleWarningMs?: number;
  /** Refresh the access token this long before it expires. Default 60000. */
  refreshLeadMs?: number;
  /** Random extra refresh lead so clients don't refresh in lockstep. Default 5000. */
  refreshJitterMs?: number;
  /** Absolute session lifetime regardless of activity. Default 8 h. */
  absoluteTimeoutMs?: number | null;
  /** Tabs sharing a name share a session. Default `"tessera"`. */
  channel?: string;
  /** What logout wipes beyond the SDK's own records. */
  cleanup?: CleanupOptions;
  /** `"cookie"` (default): refresh token in an HttpOnly cookie. `"token"`: for cross-site
   * APIs, the refresh token travels in bodies and is kept sealed in the vault. */
  mode?: "cookie" | "token";
  /** Join a session held by another tab or the refresh cookie at start. Default `true`. */
  resume?: boolean;
  /** Publish activity to other tabs at most this often. Default 5000. */
  activityThrottleMs?: number;
  /** How long to wait for the cross-tab refresh lock. Default 8000 (must exceed `requestTimeoutMs`). */
  lockWaitMs?: number;
  /** A refresh without an answer after this long counts as failed. Default 5000 (keep it plus 1 s under the server's refresh grace window). */
  requestTimeoutMs?: number;
  /** How long a starting tab waits for another live tab to hand over its token before it
   * resumes from the refresh cookie. Default 250; skipped when no other tab is alive. */
  joinWaitMs?: number;
  /** Set `false` to coordinate refreshes over the bus even where Web Locks exist. */
  webLocks?: boolean;
}

/** What a logout wiped. Storage fields: `"all"`, or the number of SDK keys removed. */
export interface Cleared {
  memory: true;
  localStorage: "all" | number;
  sessionStorage: "all" | number;
  /** Names of the cookies that were expired. */
  cookies: string[];
  /** Names of the IndexedDB databases deleted. Filled in when the deletions finish (the
   *  `logout` event does not wait for them; `await session.logout()` does). */
  indexedDB: string[];
  /** Names of the Cache Storage entries deleted (filled in like `indexedDB`). */
  caches: string[];
}

/** Why a session ended. */
export type LogoutReason = "user" | "everywhere" | "idle" | "expired" | "revoked" | "reused" | "cleared" | "lost";

/** Event payloads by name. Every payload also carries `type` (the event name). */
export interface SessionEvents {
  /** A session began in this tab (own login, another tab's, or restored). */
  login: { type: "login"; expiresAt?: number; user?: string | null };
  /** The access token was renewed (here or in another tab). */
  refresh: { type: "refresh"; expiresAt?: number };
  /** The idle deadline is near; call `stayActive()` to extend it. */
  "idle-warning": { type: "idle-warning"; deadline: number; remainingMs: number };
  /** Activity after a warning: the session is active again. */
  active: { type: "active" };
  /** The idle deadline passed; a `logout` with reason `"idle"` follows. */
  idle: { type: "idle" };
  /** The session ended in this tab, and what was wiped. */
  logout: { type: "logout"; reason: LogoutReason; cleared: Cleared | null };
  /** Something went wrong (e.g. `vault_tampered`, `storage_unavailable`, `refresh_retry`, `session_mismatch`). */
  error: { type: "error"; code: string; message: string };
}

/** Errors thrown by `login` / `verifyMfa` carry the server's stable problem `code`. */
export interface SessionError extends Error {
  code: string;
  status?: number;
}

export class Session {
  private constructor();
  /** Same as `dispose()`. */
  free(): void;
  /**
   * Starts the session controller: restores a sealed persisted session, joins one held by
   * another tab or the refresh cookie, and starts listening. Events raised while starting
   * are delivered on the next task, so listeners added right after `await` see them.
   * Rejects with code `invalid_options` (the message names the option) when an option is
   * not a number of milliseconds, zero where zero makes no sense, or contradicts another.
   */
  static start(options?: SessionOptions): Promise<Session>;
  /** The current state. */
  readonly state: SessionState;
  /** The signed-in user's name from this tab's login answer, when known. */
  readonly user: string | null;
  /** Diagnostic counters. */
  readonly stats: { busMalformed: number; sharedMalformed: number; refreshSent: number; persistent: boolean };
  /** Signs in. Resolves to the new state (`"active"`, or `"mfa-required"` for TOTP users). */
  login(credentials: { username: string; password: string }): Promise<SessionState>;
  /** Completes a TOTP login with the 6-digit code. */
  verifyMfa(code: string): Promise<SessionState>;
  /** Tells every other tab first (they wipe at once), then revokes on the server (best effort when offline) and wipes this tab. Resolves once the revoke has been answered (or timed out). */
  logout(options?: { everywhere?: boolean }): Promise<void>;
  /** `fetch` with the bearer token; on 401 refreshes once and retries once, never more. */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** Subscribes to an event; returns a function that unsubscribes. */
  on<K extends keyof SessionEvents>(event: K, callback: (e: SessionEvents[K]) => void): () => void;
  /** "Stay signed in": extends the idle deadline in every tab. */
  stayActive(): void;
  /** Drops every listener, timer, lock and channel of this instance. */
  dispose(): void;
}
"#;
