// @ts-check
// Tessera demo page: the entry module. Plain ES modules, no framework, no build step.
//
// It imports the SDK the way an application does, `import("tessera")` (index.html's import
// map points that at the server's /pkg/), and is type-checked against the package's own
// declarations (`scripts/lint.sh`). Everything it shows about the session comes from the
// SDK: the state, the events and the getters `user`, `expiresAt` and `idleDeadline`; the
// page adds presentation, a demo authenticator (./totp.js, the same module the e2e tests
// use) and "plant site data" (./sitedata.js) so the logout cleanup has something to remove.
//
// Settings come from the query string so a whole session life fits in a minute:
//   ?idle=20000&warn=10000&lead=5000&storage=local  (also: jitter, throttle, join, channel)
// For tests the page exposes `window.tessera` (the session and every SDK event, oldest
// first) and `window.tesseraDemo` (totp, plant, inventory); see ./globals.d.ts.

import { appendLog, summarizeEvent } from "./log.js";
import { DEMO_DATA_NAME, cookiePaths, inventory, plant } from "./sitedata.js";
import { DEMO_TOTP_SECRET, base32Decode, secondsLeft, totp } from "./totp.js";
import {
  $,
  announce,
  button,
  fatal,
  focusClearedTitle,
  input,
  isSignedIn,
  renderCleared,
  renderFacts,
  renderPanels,
  syncDialog,
  viewFor,
  wireDialog,
} from "./view.js";

/** @typedef {import("tessera").Session} Session */
/** @typedef {import("tessera").SessionOptions} SessionOptions */
/** @typedef {import("tessera").SessionState} SessionState */
/** @typedef {import("tessera").SessionEvents} SessionEvents */
/** @typedef {SessionEvents[keyof SessionEvents]} SdkEvent */
/** @typedef {typeof import("tessera")} Sdk */

/** @type {ReadonlyArray<keyof SessionEvents>} */
const EVENT_NAMES = ["login", "refresh", "idle-warning", "active", "idle", "logout", "error"];

// ---- configuration from the query string ------------------------------------------------

const params = new URLSearchParams(location.search);

/**
 * @param {string} name
 * @param {number} fallback
 */
function numberParam(name, fallback) {
  const raw = params.get(name);
  if (raw === null || raw.trim() === "") return fallback;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

/** @returns {NonNullable<SessionOptions["storage"]>} */
function storageParam() {
  const raw = params.get("storage");
  return raw === "session" || raw === "local" ? raw : "memory";
}

const idleTimeoutMs = numberParam("idle", 900_000);
const idleWarningMs = numberParam("warn", 60_000);

/** @type {SessionOptions & { idleTimeoutMs: number, idleWarningMs: number, refreshLeadMs: number }} */
const config = {
  baseUrl: "/auth",
  storage: storageParam(),
  idleTimeoutMs,
  idleWarningMs,
  refreshLeadMs: numberParam("lead", 60_000),
  channel: params.get("channel") || "tessera",
  // Activity is published to other tabs at most this often (SDK default 5 s). With the short
  // demo timeouts it must be well under the time from last activity to the warning, or the
  // other tabs would warn while this one is in use.
  activityThrottleMs: numberParam(
    "throttle",
    Math.max(200, Math.min(5_000, Math.floor((idleTimeoutMs - idleWarningMs) / 4))),
  ),
  // How long start() waits for another tab's token before resuming with the cookie (SDK default 250 ms).
  ...(params.has("join") ? { joinWaitMs: numberParam("join", 250) } : {}),
  // ?dpop=1: sender-constrained tokens (RFC 9449), the key in IndexedDB.
  ...(params.has("dpop") ? { dpop: true } : {}),
  // Random extra refresh lead (SDK default 5 s); ?jitter=0 makes refresh times exact for tests.
  ...(params.has("jitter") ? { refreshJitterMs: numberParam("jitter", 5_000) } : {}),
  // What logout removes besides the SDK's own keys: everything in Web Storage, and the demo's
  // IndexedDB database and cache (cookies visible to the page are always expired).
  cleanup: {
    localStorage: true,
    sessionStorage: true,
    cookies: true,
    indexedDB: [DEMO_DATA_NAME],
    caches: [DEMO_DATA_NAME],
  },
};

const tabId = Math.random().toString(36).slice(2, 6).toUpperCase();

// ---- test hook ------------------------------------------------------------------------------

/** @type {Window["tessera"]} */
const hook = { session: null, events: [], ready: false, config, tabId, lastInput: 0 };
window.tessera = hook;
// When the user last did something here (tests measure idleness from it; the SDK keeps its
// own, sampled record): when the input happened, which for a pointer move can be hundreds of
// ms before it is dispatched (Chromium aligns moves with frames).
for (const kind of ["pointermove", "pointerdown", "keydown"]) {
  addEventListener(
    kind,
    (e) => e.isTrusted && (hook.lastInput = Date.now() - Math.max(0, performance.now() - e.timeStamp)),
    { capture: true, passive: true },
  );
}
window.tesseraDemo = { totp, base32Decode, plant, inventory, cookiePaths };

// ---- page state -------------------------------------------------------------------------------

/** @type {Sdk | null} */
let sdk = null;
/** @type {Session | null} */
let session = null;
/** @type {Array<() => void>} */
let unsubscribe = [];
/** What the page learnt itself: the user's name (when the SDK has none) and refreshes seen. */
const learnt = { user: /** @type {string | null} */ (null), refreshes: 0 };
/** @type {SessionState | "loading"} */
let lastState = "loading";
let wantLogin = false; // "Sign in again" after a logout: show the form, not the report
let sawLogout = false; // this page saw the session end (so logged-out shows the report)
/** @type {SessionEvents["logout"] | null} the live event object: its lists fill in later */
let lastLogout = null;
let clearedShown = ""; // the report last rendered, to re-render when the SDK adds to it
let stillVisible = false; // the last check found site data left (an async removal not done)
let checking = false; // a check of what the page still sees is running
let rechecks = 0; // checks left before the page stops re-checking what is still visible
let whoamiTried = false; // asked /api/me for the user's name in this sign-in

/** @returns {SessionState | "loading"} */
function state() {
  return session ? session.state : "loading";
}

function render() {
  const s = state();
  const view = viewFor(s, { sawLogout, wantLogin });
  renderPanels(s, view);
  if (s !== lastState) {
    const previous = lastState;
    lastState = s;
    onStateChange(previous, s);
  }
  if (session && isSignedIn(s) && !session.user && !whoamiTried) whoami(session);
  renderFacts(session, { user: (session && session.user) || learnt.user, refreshes: learnt.refreshes });
  syncDialog(s);
  if (view === "cleared" && lastLogout) refreshCleared(lastLogout);
}

/**
 * @param {SessionState | "loading"} previous
 * @param {SessionState | "loading"} s
 */
function onStateChange(previous, s) {
  if (s === "mfa-required") {
    updateTotp();
    $("mfa-code").focus();
  } else if (s === "active" && (previous === "anonymous" || previous === "mfa-required" || previous === "logged-out")) {
    $("account-title").setAttribute("tabindex", "-1");
    $("account-title").focus();
  } else if (s === "logged-out" && viewFor(s, { sawLogout, wantLogin }) === "cleared") {
    focusClearedTitle();
  }
  if (!isSignedIn(s)) {
    learnt.user = null;
    whoamiTried = false;
  }
}

/**
 * Re-renders the logout report when the SDK filled in more of it, or while the page's own
 * check still sees data an asynchronous removal has not finished with.
 * @param {SessionEvents["logout"]} e
 */
function refreshCleared(e) {
  const now = JSON.stringify([e.cleared, e.remaining]);
  if (checking || (now === clearedShown && !stillVisible)) return;
  clearedShown = now;
  checking = true;
  renderCleared(e)
    .then(
      (still) => (stillVisible = still.length > 0),
      () => (stillVisible = true),
    )
    .finally(() => {
      checking = false;
      // Removals finish in the background (the SDK's, the browser's Clear-Site-Data): look
      // again shortly while something is still visible, for a while.
      if (stillVisible && rechecks-- > 0) setTimeout(render, 250);
      else if (JSON.stringify([e.cleared, e.remaining]) !== clearedShown) render();
    });
}

/**
 * The SDK knows the user in the tab that signed in (`session.user`); a tab that joined over
 * the bus asks the demo API, once per sign-in.
 * @param {Session} s
 */
function whoami(s) {
  whoamiTried = true;
  s.fetch("/api/me")
    .then((res) => (res.ok ? res.json() : null))
    .then((me) => {
      if (me && typeof me.username === "string" && s === session) learnt.user = me.username;
      render();
    })
    .catch(() => {});
}

// ---- session wiring ----------------------------------------------------------------------------

/**
 * Event details cross into tests via structured clone; keep only JSON-able data.
 * @param {unknown} value
 */
function plain(value) {
  try {
    return JSON.parse(JSON.stringify(value ?? null));
  } catch {
    return String(value);
  }
}

/** @param {SdkEvent} e */
function onSdkEvent(e) {
  const at = Date.now();
  hook.events.push({ type: e.type, detail: plain(e), at, hr: performance.timeOrigin + performance.now(), tab: tabId });
  appendLog($("log"), e.type, summarizeEvent(e), e, at);
  switch (e.type) {
    case "login":
      wantLogin = false;
      announce(`Signed in${session && session.user ? " as " + session.user : ""}.`);
      break;
    case "refresh":
      learnt.refreshes += 1;
      break;
    case "logout":
      sawLogout = true;
      wantLogin = false;
      lastLogout = e;
      clearedShown = "";
      rechecks = 40;
      announce(`Signed out (${e.reason}).`);
      render();
      focusClearedTitle();
      break;
    case "error":
      announce(`Error: ${e.code}: ${e.message}`);
      break;
    default:
      break;
  }
  render();
}

/** @param {Sdk} mod */
async function startSession(mod) {
  if (session) {
    for (const off of unsubscribe) off();
    unsubscribe = [];
    session.dispose();
  }
  session = await mod.Session.start(config);
  hook.session = session;
  const s = session;
  unsubscribe = EVENT_NAMES.map((name) => s.on(name, onSdkEvent));
  render();
}

// ---- actions ----------------------------------------------------------------------------------

/**
 * A readable message for anything a promise rejected with (the SDK's errors carry a `code`).
 * @param {unknown} err
 */
function errorText(err) {
  if (err instanceof Error) {
    const code = "code" in err && typeof err.code === "string" ? `${err.code}: ` : "";
    return `${code}${err.message}`;
  }
  return String(err);
}

/**
 * @param {string} entry page log entry name
 * @param {unknown} err
 */
function pageError(entry, err) {
  appendLog($("log"), entry, errorText(err));
}

/**
 * @param {HTMLButtonElement} el
 * @param {boolean} busy
 */
function setBusy(el, busy) {
  el.disabled = busy;
  el.setAttribute("aria-busy", busy ? "true" : "false");
}

/** @param {SubmitEvent} ev */
async function login(ev) {
  ev.preventDefault();
  const user = input("username").value.trim();
  const password = input("password").value;
  const errorEl = $("login-error");
  errorEl.hidden = true;
  if (!user || !password) {
    errorEl.textContent = "Enter a username and a password.";
    errorEl.hidden = false;
    (user ? $("password") : $("username")).focus();
    return;
  }
  const submit = button("login-submit");
  setBusy(submit, true);
  try {
    if (sdk && state() === "logged-out") await startSession(sdk);
    if (!session) throw new Error("the SDK has not started");
    await session.login({ username: user, password });
    /** @type {HTMLFormElement} */ ($("login-form")).reset();
  } catch (err) {
    errorEl.textContent = `Sign-in failed — ${errorText(err)}`;
    errorEl.hidden = false;
    input("password").select();
    $("password").focus();
    pageError("page-error", err);
  } finally {
    setBusy(submit, false);
    render();
  }
}

/** @param {SubmitEvent} ev */
async function verifyMfa(ev) {
  ev.preventDefault();
  const code = input("mfa-code").value.trim();
  const errorEl = $("mfa-error");
  errorEl.hidden = true;
  if (!/^\d{6}$/.test(code)) {
    errorEl.textContent = "The code has 6 digits.";
    errorEl.hidden = false;
    $("mfa-code").focus();
    return;
  }
  const submit = button("mfa-submit");
  setBusy(submit, true);
  try {
    if (!session) throw new Error("the SDK has not started");
    await session.verifyMfa(code);
    input("mfa-code").value = "";
  } catch (err) {
    errorEl.textContent = `Verification failed — ${errorText(err)}`;
    errorEl.hidden = false;
    input("mfa-code").select();
    $("mfa-code").focus();
    pageError("page-error", err);
  } finally {
    setBusy(submit, false);
    render();
  }
}

async function cancelMfa() {
  try {
    await session?.logout();
  } catch {
    // Nothing to revoke yet.
  }
  wantLogin = true;
  render();
  $("username").focus();
}

/** @param {boolean} everywhere */
async function logout(everywhere) {
  const el = button(everywhere ? "logout-all" : "logout");
  setBusy(el, true);
  try {
    await session?.logout(everywhere ? { everywhere: true } : undefined);
  } catch (err) {
    announce(`Sign-out: ${errorText(err)}`);
    pageError("page-error", err);
  } finally {
    setBusy(el, false);
    // `await logout()` resolves once the removals finished: show the complete report.
    clearedShown = "";
    render();
  }
}

function stayActive() {
  if (!session) return;
  session.stayActive();
  announce("Staying signed in.");
  render();
}

async function callApi() {
  const out = $("api-result");
  out.hidden = false;
  out.textContent = "…";
  try {
    if (!session) throw new Error("the SDK has not started");
    const res = await session.fetch("/api/me");
    const text = await res.text();
    let body = text;
    try {
      body = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // Not JSON: show it as it came.
    }
    out.textContent = `${res.status} ${res.statusText}\n${body}`;
    appendLog($("log"), "api", `status=${res.status}`);
  } catch (err) {
    out.textContent = `request failed: ${errorText(err)}`;
    pageError("page-error", err);
  }
}

/** @param {SubmitEvent} ev */
function applySettings(ev) {
  ev.preventDefault();
  const next = new URLSearchParams(location.search);
  for (const [name, id] of [["idle", "set-idle"], ["warn", "set-warn"], ["lead", "set-lead"]]) {
    const v = input(id).value.trim();
    if (v === "") next.delete(name);
    else next.set(name, v);
  }
  const storage = input("set-storage").value;
  if (storage === "memory") next.delete("storage");
  else next.set("storage", storage);
  location.search = next.toString();
}

// ---- the demo authenticator ------------------------------------------------------------------

let totpShown = "";
async function updateTotp() {
  if ($("mfa-panel").hidden) return;
  const now = Date.now();
  const left = secondsLeft(now);
  /** @type {HTMLProgressElement} */ ($("totp-progress")).value = left;
  $("totp-left").textContent = `${left} s left`;
  try {
    const code = await totp(DEMO_TOTP_SECRET, now);
    if (code !== totpShown) {
      totpShown = code;
      $("totp-code").textContent = code;
    }
  } catch (err) {
    $("totp-code").textContent = "n/a";
    $("totp-left").textContent = `WebCrypto unavailable: ${errorText(err)}`;
  }
}

// ---- wiring -----------------------------------------------------------------------------------

/**
 * @param {string} id
 * @param {string} user
 */
function fillAccount(id, user) {
  $(id).addEventListener("click", () => {
    input("username").value = user;
    input("password").value = "tessera-demo";
    $("login-submit").focus();
  });
}

function wireUi() {
  $("login-form").addEventListener("submit", login);
  $("mfa-form").addEventListener("submit", verifyMfa);
  $("mfa-cancel").addEventListener("click", cancelMfa);
  fillAccount("fill-alice", "alice");
  fillAccount("fill-bob", "bob");
  $("totp-use").addEventListener("click", async () => {
    input("mfa-code").value = await totp();
    $("mfa-submit").focus();
  });
  $("logout").addEventListener("click", () => logout(false));
  $("logout-all").addEventListener("click", () => logout(true));
  $("call-api").addEventListener("click", callApi);
  $("plant-data").addEventListener("click", async () => {
    try {
      const inv = await plant();
      const n = inv.cookies.length + inv.localStorage.length + inv.sessionStorage.length + 2;
      announce(`Planted ${n} items of site data.`);
      appendLog($("log"), "planted", `${n} items`, inv);
    } catch (err) {
      announce(`Could not plant data: ${errorText(err)}`);
    }
  });
  $("open-tab").addEventListener("click", () => window.open(location.href, "_blank", "noopener"));
  $("clear-log").addEventListener("click", () => $("log").replaceChildren());
  $("sign-in-again").addEventListener("click", () => {
    wantLogin = true;
    render();
    $("username").focus();
  });
  $("settings-form").addEventListener("submit", applySettings);
  input("set-idle").value = String(config.idleTimeoutMs);
  input("set-warn").value = String(config.idleWarningMs);
  input("set-lead").value = String(config.refreshLeadMs);
  input("set-storage").value = config.storage ?? "memory";
  $("fact-tab").textContent = tabId;
  document.title = `Tessera demo · tab ${tabId}`;
  wireDialog({ stay: stayActive, logout: () => logout(false) });
}

// ---- boot ---------------------------------------------------------------------------------------

async function main() {
  wireUi();
  render();
  try {
    performance.mark("tessera:import-start");
    sdk = await import("tessera");
    performance.mark("tessera:imported");
    // init() resolves to the module's exports; `memory` lets tests and benches watch linear memory.
    hook.wasm = await sdk.default();
    performance.mark("tessera:initialised");
  } catch (err) {
    fatal(
      `The Tessera SDK could not be loaded from /pkg/tessera.js (${errorText(err)}). ` +
        "Build it with wasm-pack and start tessera-server --demo.",
    );
    hook.error = errorText(err);
    return;
  }
  try {
    await startSession(sdk);
    performance.mark("tessera:started");
    hook.startedState = state();
  } catch (err) {
    fatal(`Session.start failed: ${errorText(err)}`);
    hook.error = errorText(err);
    return;
  }
  hook.ready = true;
  document.body.dataset.ready = "true";
  setInterval(() => {
    render();
    updateTotp();
  }, 250);
}

main();
