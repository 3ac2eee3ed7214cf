// The Wasm boundary, declared in Rust (`src/boundary.rs`) and checked against this file by
// `tests/boundary.rs`: input kinds (`Core::handle`), effect kinds (`Core::poll`), what
// `Core::num` reports, states, option names, event names and texts.
export const RESTORE = 0, RESUME = 1, LOGIN_OK = 2, MFA = 3, LOGIN_FAILED = 4, REFRESH_OK = 5,
  REFRESH_REJECTED = 6, REFRESH_FAILED = 7, ACCESS_REJECTED = 8, BUS = 9, SHARED = 10,
  LOCK_GRANTED = 11, LOCK_UNAVAILABLE = 12, LOCK_LOST = 13, TIMER = 14, ACTIVITY = 15,
  STAY = 16, LOGOUT = 17, VISIBLE = 18, ONLINE = 19, LOGIN_STARTED = 20, LOGOUT_DONE = 21;
export const FX_REFRESH = 0, FX_LOGOUT = 1, FX_LOCK = 2, FX_UNLOCK = 3, FX_BROADCAST = 4, FX_SHARED = 5,
  FX_STORE = 6, FX_WIPE = 7, FX_EMIT = 8, FX_LOGIN = 9;
export const NUM_DEADLINE = 0, NUM_PENDING = 1, NUM_REFRESHING = 2, NUM_SEEN = 3, NUM_STATE = 4,
  NUM_BUS_MALFORMED = 5, NUM_SHARED_MALFORMED = 6, NUM_REFRESH_SENT = 7, NUM_IDLE_DEADLINE = 8;
// Indexed by `Core::state`.
/** @type {readonly import("tessera").SessionState[]} */
export const STATES = ["anonymous", "mfa-required", "active", "idle-warning", "logged-out"];
// The `Session.start` options Rust reads, by number (`opt`, `reject` in session.js): the
// settings in the order of `Setting::ALL`, then `webLocks` (`boundary::WEB_LOCKS_OPTION`).
export const OPTIONS = ["idleTimeoutMs", "idleWarningMs", "absoluteTimeoutMs", "refreshLeadMs", "refreshJitterMs",
  "lockWaitMs", "requestTimeoutMs", "activityThrottleMs", "joinWaitMs", "webLocks"];
// Event names, indexed by the event's number (`Event::number`, the order of `EVENT_NAMES`).
/** @type {readonly (keyof import("tessera").SessionEvents)[]} */
export const EVENTS = ["login", "refresh", "idle-warning", "active", "idle", "logout", "error"];
// The texts of `logout` and `error` events by number (`boundary::reason_number`, `code_number`):
// the logout reasons in the order of `LogoutReason::ALL`, then the codes of `ErrorCode::ALL`.
export const TEXTS = ["user", "everywhere", "idle", "expired", "revoked", "reused", "cleared", "lost",
  "refresh_retry", "record_invalid", "session_mismatch"];
