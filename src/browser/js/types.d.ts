// Types the performer's modules share (JSDoc `import("./types").X`): declarations only, no
// code ships from here. The public API's types come from the package's own declarations
// ("tessera": src/browser/types.rs), so the driver is checked against what users see.
import type { Cleared, ErrorEventCode, LogoutReason, Remaining, SessionErrorCode, SessionEvents } from "tessera";
import type * as B from "./boundary.js";

/** Bytes over their own (never shared) buffer: what WebCrypto takes. */
export type Bytes = Uint8Array<ArrayBuffer>;

/** The Rust engine as the driver holds it: `Core` in src/browser/mod.rs (`impl Core`). */
export interface Core {
  /** Feeds one input (`boundary.js` input kind); `id`: the request an answer belongs to; `n`
   *  its number; `bytes` its bytes or text (UTF-8; a tokens answer's four, `#drive`). */
  handle(kind: number, id: number, n: number, bytes?: Uint8Array | null): void;
  /** The next effect, or `undefined` when the queue is empty. */
  poll(): Effect | undefined;
  /** One number about the engine (`Core::num` in mod.rs): 0 when it wants `TIMER` (wall-clock
   *  ms, or -1), 1 whether the resume is undecided (0/1), 2 whether a refresh is wanted or
   *  under way (0/1), 3 the newest live token serial in the shared record (0: none), 4 the
   *  state (an index into `STATES`), 5 busMalformed, 6 sharedMalformed, 7 refreshSent, 8 the
   *  idle deadline (ms, or -1). */
  num(what: number): number;
  /** The bearer token while signed in. */
  token(): string | undefined;
  /** Frees the engine (wasm-bindgen). */
  free(): void;
  /** The class (`Session`), whose static `merge` max-merges a shared record into the stored one
   *  (null: absent or undecodable): it reads no engine. */
  constructor: { merge(stored: Uint8Array | null, fresh: Uint8Array): Bytes };
}

/** An effect of `Core::poll`, flat (`fx` in session.js): `[kind, id, n, flag, s, t, bytes]`;
 *  which slots a kind uses is written at `#perform` in driver.js. */
export type Effect = [
  kind: (typeof B)[keyof typeof B & `FX_${string}`],
  id: number,
  n: number,
  flag: boolean,
  s: string | undefined,
  t: string | undefined,
  bytes: Bytes,
];

/** Any event's payload, as listeners receive it. */
export type SessionEvent = SessionEvents[keyof SessionEvents];

/** A payload being built (`#emitEngine`): the fields of the events' payloads, each optional. */
export interface EventDraft {
  type?: keyof SessionEvents;
  expiresAt?: number;
  user?: string | null;
  deadline?: number;
  remainingMs?: number;
  reason?: LogoutReason;
  cleared?: Cleared | null;
  remaining?: Remaining[] | null;
  code?: ErrorEventCode;
  message?: string;
}

/** The server's JSON answer as the performer reads it (parsed, untrusted: checked before use
 *  where the engine or the vault depends on it). */
export interface Body {
  access_token?: unknown;
  expires_in?: unknown;
  /** The session the token belongs to. */
  session?: { id?: unknown; user?: unknown };
  mfa_required?: unknown;
  mfa_token?: string;
  /** The vault key (base64url). */
  key?: unknown;
  /** A problem's stable code. */
  code?: SessionErrorCode;
  detail?: string;
  title?: string;
}

/** A body carrying tokens (`tokensOk`). */
export type Tokens = Body & { access_token: string; expires_in: number };

/** An answer of tessera-server (`post` in transport.js). */
export interface Answer {
  status: number;
  /** Parsed JSON, or null. */
  body: Body | null;
  /** `Retry-After` in ms. */
  retryAfter: number | undefined;
  /** Its headers (DPoP reads `DPoP-Nonce`). */
  h: Headers;
}
