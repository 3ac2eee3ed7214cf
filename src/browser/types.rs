//! TypeScript declarations of the public API (the generated `.d.ts` carries them).
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS: &'static str = r#"
// `Symbol.dispose` where the TypeScript lib in use predates it (as Node's own types do).
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}

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
  /** Unregister every service worker of this origin. */
  serviceWorkers?: boolean;
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
  /** Origins whose requests through `session.fetch` get the bearer token (URLs or origins).
   * Default: the page's origin and `baseUrl`'s. Every other origin gets no credentials, and
   * its 401 never triggers a refresh. */
  apiOrigins?: string[];
  /** A login or MFA request without an answer after this long fails with code `timeout`.
   * Default 30000. */
  loginTimeoutMs?: number;
  /** Count `scroll` as user activity (it also fires for scripted scrolling). Default `false`:
   * only trusted pointer, key, wheel and touch input counts. */
  scrollActivity?: boolean;
  /** Sender-constrained tokens (DPoP, RFC 9449): the session gets an ECDSA P-256 key pair whose
   * private key cannot be exported, kept in IndexedDB (`tessera:dpop:<channel>`, shared by the
   * session's tabs, deleted at logout), and every request to the server and through
   * `session.fetch` to `apiOrigins` carries a fresh proof; a bound token goes as
   * `Authorization: DPoP`. A bound session whose key is lost (site data cleared) ends at its next
   * refresh. Without WebCrypto (a secure context) or IndexedDB, `start` rejects with
   * `dpop_unavailable`. Default `false`. */
  dpop?: boolean;
}

/** What a logout wiped in this tab, each entry checked to be gone after the wipe. Storage
 *  fields: `"all"`, or the number of SDK keys removed. What the origin shares (`localStorage`,
 *  cookies, IndexedDB, caches, service workers) is wiped by the tab where the session ended; in
 *  the tabs that learn of it from that one, those lists are empty. */
export interface Cleared {
  memory: true;
  localStorage: "all" | number;
  sessionStorage: "all" | number;
  /** Names of the cookies that were expired and are no longer visible to the page. */
  cookies: string[];
  /** Names of the IndexedDB databases deleted. Filled in when the deletions finish (the
   *  `logout` event does not wait for them; `await session.logout()` does). */
  indexedDB: string[];
  /** Names of the Cache Storage entries deleted (filled in like `indexedDB`). */
  caches: string[];
  /** Scopes of the service workers unregistered (filled in like `indexedDB`). */
  serviceWorkers: string[];
}

/** Something a logout could not remove, and why. HttpOnly cookies are invisible to the page:
 *  the server's logout response expires them. */
export interface Remaining {
  kind: "cookies" | "localStorage" | "sessionStorage" | "indexedDB" | "caches" | "serviceWorkers";
  name: string;
  /** `"blocked"`: an IndexedDB deletion waits for other connections to close. */
  why: "blocked" | "error" | string;
}

/** Why a session ended. `lost`: the session could not be kept (e.g. its token was lost). */
export type LogoutReason = "user" | "everywhere" | "idle" | "expired" | "revoked" | "reused" | "cleared" | "lost";

/** Codes of the `error` event. */
export type ErrorEventCode =
  | "vault_encoding" | "vault_truncated" | "vault_version" | "vault_tampered" | "vault_locked"
  | "vault_unavailable" | "record_invalid" | "refresh_retry" | "storage_unavailable" | "bus_unavailable"
  | "session_mismatch";

/** Codes of the errors that methods and `Session.start` reject with: the SDK's own, and the
 *  server's stable problem codes. */
export type SessionErrorCode =
  | "network" | "timeout" | "invalid_response" | "http_error" | "mfa_not_pending" | "disposed"
  | "unsupported_environment" | "invalid_options" | "dpop_unavailable"
  | "invalid_credentials" | "mfa_invalid" | "mfa_expired" | "rate_limited" | "forbidden_origin"
  | "invalid_request" | "unauthorized" | "internal" | "invalid_dpop_proof" | "use_dpop_nonce";

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
  /** The session ended in this tab, what was wiped, and what could not be (filled in as the
   *  asynchronous removals finish). */
  logout: { type: "logout"; reason: LogoutReason; cleared: Cleared | null; remaining: Remaining[] | null };
  /** Something went wrong that the application may want to show. */
  error: { type: "error"; code: ErrorEventCode; message: string };
}

/** Errors thrown by the methods and `Session.start` carry a stable `code`. */
export interface SessionError extends Error {
  code: SessionErrorCode;
  status?: number;
}

/** What `Session.start` resolves to. */
export interface Session {
  /** The current state (after `dispose()`: the state it had then). */
  readonly state: SessionState;
  /** The signed-in user's name from the server's answer, when this tab got one. */
  readonly user: string | null;
  /** When the access token expires (ms since the epoch), while signed in. */
  readonly expiresAt: number | null;
  /** When the session ends without activity (ms since the epoch), while signed in with an
   *  idle timeout. */
  readonly idleDeadline: number | null;
  /** Events raised while `start` ran (also delivered to listeners added right after it). */
  readonly startEvents: ReadonlyArray<SessionEvents[keyof SessionEvents]>;
  /** Diagnostic counters. */
  readonly stats: { busMalformed: number; sharedMalformed: number; refreshSent: number; persistent: boolean };
  /** Signs in. Resolves to the new state (`"active"`, or `"mfa-required"` for TOTP users). */
  login(credentials: { username: string; password: string }): Promise<SessionState>;
  /** Completes a TOTP login with the 6-digit code. */
  verifyMfa(code: string): Promise<SessionState>;
  /** Tells every other tab first (they wipe at once), then revokes on the server (best effort when offline) and wipes this tab. Resolves once the revoke has been answered (or timed out). */
  logout(options?: { everywhere?: boolean }): Promise<void>;
  /** `fetch` with the bearer token for `apiOrigins` (none for any other origin); on a 401 from
   *  there refreshes once and retries once, never more. Rejects with `disposed` after `dispose()`. */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** Subscribes to an event; returns a function that unsubscribes. */
  on<K extends keyof SessionEvents>(event: K, callback: (e: SessionEvents[K]) => void): () => void;
  /** "Stay signed in": extends the idle deadline in every tab. */
  stayActive(): void;
  /** Frees the engine and drops every listener, timer, lock and channel. Idempotent. */
  dispose(): void;
  /** Same as `dispose()`. */
  free(): void;
  /** `using session = await Session.start(…)` disposes it at the end of the scope. */
  [Symbol.dispose](): void;
}

/** Starts sessions. */
export const Session: {
  /**
   * Starts the session controller: restores a sealed persisted session, joins one held by
   * another tab or the refresh cookie, and starts listening. Events raised while starting
   * are delivered on the next task, so listeners added right after `await` see them.
   * Rejects with `unsupported_environment` outside a browser page (opening nothing) and
   * `invalid_options` (the message names the option) when an option is not a number of
   * milliseconds, is zero where zero makes no sense, or contradicts another.
   */
  start(options?: SessionOptions): Promise<Session>;
};
"#;
