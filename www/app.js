// Tessera demo page. Plain ES module, no framework.
//
// Everything the page shows comes from the SDK (`/pkg/tessera.js`): the session state, its
// events and its countdowns. The page adds only presentation, a demo TOTP authenticator and a
// "plant site data" button so the logout cleanup has something visible to remove.
//
// Settings come from the query string so a whole session life fits in a minute:
//   ?idle=20000&warn=10000&lead=5000&storage=local  (also: jitter, throttle, join, channel)
// For tests the page exposes `window.tessera = { session, events }` (every SDK event with its
// detail, oldest first) and `window.tesseraDemo` (helpers: totp, plant, inventory).

const EVENT_NAMES = ["login", "refresh", "idle-warning", "active", "idle", "logout", "error"];
const TOTP_SECRET = "4MEMZDELGP554FRQ6OH4LD7PAJIEUSHX";
const DEMO_DATA_NAME = "tessera-demo"; // IndexedDB database and Cache Storage name planted by the demo
const LOG_LIMIT = 200;

const $ = (id) => document.getElementById(id);

// ---- configuration from the query string ------------------------------------------------

const params = new URLSearchParams(location.search);

function numberParam(name, fallback) {
  const raw = params.get(name);
  if (raw === null || raw.trim() === "") return fallback;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

function storageParam() {
  const raw = params.get("storage");
  return raw === "session" || raw === "local" ? raw : "memory";
}

const config = {
  baseUrl: "/auth",
  storage: storageParam(),
  idleTimeoutMs: numberParam("idle", 900_000),
  idleWarningMs: numberParam("warn", 60_000),
  refreshLeadMs: numberParam("lead", 60_000),
  channel: params.get("channel") || "tessera",
  // Activity is published to other tabs at most this often (SDK default 5 s). With the short
  // demo timeouts it must be well under the time from last activity to the warning, or the
  // other tabs would warn while this one is in use.
  activityThrottleMs: numberParam(
    "throttle",
    Math.max(200, Math.min(5_000, Math.floor((numberParam("idle", 900_000) - numberParam("warn", 60_000)) / 4))),
  ),
  // How long start() waits for another tab's token before resuming with the cookie (SDK default 250 ms).
  ...(params.has("join") ? { joinWaitMs: numberParam("join", 250) } : {}),
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

/** @type {{session: any, events: Array<{type: string, detail: any, at: number}>, ready: boolean, config: object}} */
const hook = { session: null, events: [], ready: false, config, tabId };
window.tessera = hook;

// ---- small helpers ---------------------------------------------------------------------------

function plain(value) {
  // Event details cross into tests via structured clone; keep only JSON-able data.
  if (value === undefined) return null;
  try {
    return JSON.parse(JSON.stringify(value, (_k, v) => (v instanceof Map ? Object.fromEntries(v) : v)));
  } catch {
    return String(value);
  }
}

function errorText(err) {
  if (!err) return "unknown error";
  if (typeof err === "string") return err;
  const code = err.code ? `${err.code}: ` : "";
  return `${code}${err.message || err.title || err.detail || String(err)}`;
}

function formatMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  const rest = String(s % 60).padStart(2, "0");
  return m < 60 ? `${m}:${rest} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function clock(t = Date.now()) {
  return new Date(t).toLocaleTimeString([], { hour12: false }) + "." + String(t % 1000).padStart(3, "0");
}

let statusTimer = 0;
function announce(text) {
  const el = $("status");
  el.textContent = text;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => (el.textContent = ""), 6000);
}

function fatal(text) {
  const el = $("fatal");
  el.textContent = text;
  el.hidden = false;
  document.body.dataset.state = "error";
}

// ---- TOTP (RFC 6238, SHA-1, 6 digits, 30 s) with WebCrypto -----------------------------------

function base32Decode(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const clean = text.toUpperCase().replace(/[\s=]/g, "");
  const out = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const idx = alphabet.indexOf(ch);
    if (idx < 0) throw new Error(`invalid base32 character ${ch}`);
    value = (value << 5) | idx;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return new Uint8Array(out);
}

/** The TOTP code of `secret` (base32 or raw bytes) at time `at` (ms since the epoch). */
async function totp(secret = TOTP_SECRET, at = Date.now(), digits = 6, step = 30) {
  const keyBytes = typeof secret === "string" ? base32Decode(secret) : secret;
  const counter = Math.floor(at / 1000 / step);
  const msg = new DataView(new ArrayBuffer(8));
  msg.setUint32(0, Math.floor(counter / 2 ** 32));
  msg.setUint32(4, counter >>> 0);
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, msg.buffer));
  const offset = mac[mac.length - 1] & 0x0f;
  const bin =
    ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(bin % 10 ** digits).padStart(digits, "0");
}

let totpShown = "";
async function updateTotp() {
  if ($("mfa-panel").hidden) return;
  const now = Date.now();
  const left = 30 - (Math.floor(now / 1000) % 30);
  $("totp-progress").value = left;
  $("totp-left").textContent = `${left} s left`;
  try {
    const code = await totp(TOTP_SECRET, now);
    if (code !== totpShown) {
      totpShown = code;
      $("totp-code").textContent = code;
    }
  } catch (err) {
    $("totp-code").textContent = "n/a";
    $("totp-left").textContent = `WebCrypto unavailable: ${errorText(err)}`;
  }
}

// ---- site data the demo plants, and an inventory of what is there -----------------------------

function cookiePaths() {
  // Every path prefix of this page's path on which a cookie is visible here: "/", "/a", "/a/b"...
  const parts = location.pathname.split("/").filter(Boolean);
  const paths = ["/"];
  let acc = "";
  for (const p of parts) {
    acc += "/" + p;
    paths.push(acc);
  }
  return paths;
}

function openDemoDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DEMO_DATA_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore("notes");
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Writes cookies on every visible path, Web Storage keys, an IndexedDB record and a cache entry. */
async function plant() {
  cookiePaths().forEach((path, i) => {
    document.cookie = `demo_c${i}=planted; path=${path}; SameSite=Strict; max-age=3600`;
  });
  localStorage.setItem("demo:theme", "dark");
  localStorage.setItem("demo:recent", JSON.stringify(["invoice-42", "report-7"]));
  sessionStorage.setItem("demo:draft", "Dear team, …");
  const db = await openDemoDb();
  await new Promise((resolve, reject) => {
    const tx = db.transaction("notes", "readwrite");
    tx.objectStore("notes").put({ text: "private note", at: Date.now() }, "note-1");
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  db.close();
  const cache = await caches.open(DEMO_DATA_NAME);
  await cache.put("/demo/cached-profile.json", new Response(JSON.stringify({ user: "cached" })));
  return inventory();
}

/** What site data this page can see right now (names only). */
async function inventory() {
  const cookies = document.cookie
    .split(";")
    .map((c) => c.trim().split("=")[0])
    .filter(Boolean);
  const local = Object.keys(localStorage);
  const session = Object.keys(sessionStorage);
  let databases = [];
  try {
    databases = (await indexedDB.databases()).map((d) => d.name);
  } catch {
    databases = [];
  }
  let cacheNames = [];
  try {
    cacheNames = await caches.keys();
  } catch {
    cacheNames = [];
  }
  return { cookies, localStorage: local, sessionStorage: session, indexedDb: databases, caches: cacheNames };
}

window.tesseraDemo = { totp, base32Decode, plant, inventory, cookiePaths };

// ---- event log --------------------------------------------------------------------------------

function summarize(type, detail) {
  if (!detail || typeof detail !== "object") return detail == null ? "" : String(detail);
  const bits = [];
  for (const key of ["reason", "code", "message", "user", "username", "expiresIn", "expires_in", "source", "tab"]) {
    if (detail[key] !== undefined && detail[key] !== null && typeof detail[key] !== "object") {
      bits.push(`${key}=${detail[key]}`);
    }
  }
  if (type === "logout" && detail.cleared) bits.push(`cleared ${clearedItems(detail.cleared).length} item(s)`);
  return bits.join(" · ");
}

function log(type, detail, at = Date.now()) {
  const li = document.createElement("li");
  li.className = `log-item log-${type}`;
  li.dataset.event = type;
  const time = document.createElement("time");
  time.dateTime = new Date(at).toISOString();
  time.textContent = clock(at);
  const name = document.createElement("span");
  name.className = "log-name";
  name.textContent = type;
  const text = document.createElement("span");
  text.className = "log-detail";
  text.textContent = summarize(type, detail);
  if (detail && typeof detail === "object") li.title = JSON.stringify(detail);
  li.append(time, name, text);
  const list = $("log");
  list.prepend(li);
  while (list.children.length > LOG_LIMIT) list.lastElementChild.remove();
}

// ---- logout cleanup list ----------------------------------------------------------------------

/** Flattens the SDK's `cleared` report (array, or object of arrays/counts) into readable lines. */
function clearedItems(cleared) {
  if (!cleared) return [];
  if (Array.isArray(cleared)) return cleared.map((x) => (typeof x === "string" ? x : JSON.stringify(x)));
  if (typeof cleared !== "object") return [String(cleared)];
  const lines = [];
  for (const [kind, value] of Object.entries(cleared)) {
    if (Array.isArray(value)) {
      for (const item of value) lines.push(`${kind}: ${typeof item === "string" ? item : JSON.stringify(item)}`);
    } else if (typeof value === "number") {
      // A count of removed entries; negative means "cleared entirely".
      if (value > 0) lines.push(`${kind}: ${value} item${value === 1 ? "" : "s"}`);
      else if (value < 0) lines.push(`${kind}: everything`);
    } else if (value === true) {
      lines.push(kind === "memory" ? "access token held in memory" : kind);
    } else if (typeof value === "string" && value) {
      lines.push(`${kind}: ${value === "all" ? "everything" : value}`);
    } else if (value && typeof value === "object") {
      lines.push(`${kind}: ${JSON.stringify(value)}`);
    }
  }
  return lines;
}

async function showCleared(detail) {
  $("logout-reason").textContent = (detail && detail.reason) || "—";
  const list = $("cleared-list");
  list.replaceChildren();
  const items = clearedItems(detail && detail.cleared);
  if (items.length === 0) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "Nothing was left to remove.";
    list.append(li);
  }
  for (const item of items) {
    const li = document.createElement("li");
    li.textContent = item;
    list.append(li);
  }
  // An honest check: what this page can still see after the cleanup.
  const left = await inventory();
  const remaining = [
    ...left.cookies.map((c) => `cookie ${c}`),
    // The SDK's cross-tab record (logout epoch and timing, no token) stays by design.
    ...left.localStorage.filter((k) => !k.startsWith("tessera:shared:")).map((k) => `localStorage ${k}`),
    ...left.sessionStorage.map((k) => `sessionStorage ${k}`),
    ...left.indexedDb.filter((n) => n === DEMO_DATA_NAME).map((n) => `IndexedDB ${n}`),
    ...left.caches.filter((n) => n === DEMO_DATA_NAME).map((n) => `cache ${n}`),
  ];
  const li = document.createElement("li");
  li.className = remaining.length ? "warn" : "ok";
  li.dataset.testid = "cleared-check";
  li.textContent = remaining.length
    ? `Still visible to this page: ${remaining.join(", ")}`
    : "Checked: no cookies, Web Storage, demo database or demo cache remain visible to this page.";
  list.append(li);
}

// ---- views ------------------------------------------------------------------------------------

let session = null;
let wantLoginAfterLogout = false;
let lastState = "";
let username = "";
let refreshes = 0;
let accessExpiresAt = null; // ms since the epoch, local receipt time + expires_in
let idleDeadline = null; // ms since the epoch
let lastLogout = null;
let wasSignedIn = false; // this page saw the session active (so a logout shows the report)

function sessionState() {
  try {
    return session ? String(session.state) : "loading";
  } catch {
    return "logged-out";
  }
}

function view(state) {
  if (state === "anonymous") return "login";
  if (state === "mfa-required") return "mfa";
  if (state === "active" || state === "idle-warning") return "account";
  // The cleanup report only after a logout this page saw; a page opened later just offers sign-in.
  if (state === "logged-out") return (lastLogout || wasSignedIn) && !wantLoginAfterLogout ? "cleared" : "login";
  return "none";
}

function render() {
  const state = sessionState();
  const v = view(state);
  document.body.dataset.state = state;
  document.body.dataset.view = v;
  $("state-chip-text").textContent = state;
  $("fact-state").textContent = state;
  $("login-panel").hidden = v !== "login";
  $("mfa-panel").hidden = v !== "mfa";
  $("account-panel").hidden = v !== "account";
  $("cleared-panel").hidden = v !== "cleared";
  const signedIn = state === "active" || state === "idle-warning";
  $("fact-user").textContent = signedIn && username ? username : "—";
  $("account-user").textContent = username || "you";

  if (state !== lastState) {
    const previous = lastState;
    lastState = state;
    onStateChange(previous, state);
  }
  renderCountdowns();
  syncDialog(state);
}

function focusClearedTitle() {
  const active = document.activeElement;
  if (!active || active === document.body || active.closest("[hidden]") || !active.checkVisibility?.()) {
    $("cleared-title").focus();
  }
}

function onStateChange(previous, state) {
  if (state === "active" || state === "idle-warning") wasSignedIn = true;
  if (state === "mfa-required") {
    updateTotp();
    $("mfa-code").focus();
  } else if (state === "anonymous" && previous === "loading") {
    // first paint: nothing to focus yet; the user can start typing after a Tab.
  } else if (state === "active" && (previous === "anonymous" || previous === "mfa-required" || previous === "logged-out")) {
    $("account-title").setAttribute("tabindex", "-1");
    $("account-title").focus();
  } else if (state === "logged-out" && view(state) === "cleared") {
    focusClearedTitle();
  }
  if (state !== "active" && state !== "idle-warning") {
    accessExpiresAt = null;
    idleDeadline = null;
  }
}

function readNumber(obj, names) {
  if (!obj) return null;
  for (const n of names) {
    try {
      const v = obj[n];
      const num = typeof v === "bigint" ? Number(v) : v;
      if (typeof num === "number" && Number.isFinite(num)) return num;
    } catch {
      /* getter threw: ignore */
    }
  }
  return null;
}

function renderCountdowns() {
  const now = Date.now();
  const state = sessionState();
  const signedIn = state === "active" || state === "idle-warning";
  // Prefer what the SDK knows; fall back to what the page learned from events.
  const sdkAccess = readNumber(session, ["accessTokenExpiresAt", "expiresAt", "accessExpiresAt"]);
  const sdkIdle = readNumber(session, ["idleDeadline", "idleDeadlineAt", "idleExpiresAt"]);
  const access = sdkAccess ?? accessExpiresAt;
  const idle = sdkIdle ?? idleDeadline;
  $("fact-access").textContent = signedIn && access ? formatMs(access - now) : "—";
  $("fact-idle").textContent = signedIn && idle ? formatMs(idle - now) : "—";
  $("idle-left").textContent = idle ? formatMs(idle - now) : "a moment";
  $("fact-refreshes").textContent = String(refreshes);
}

// ---- idle-warning modal --------------------------------------------------------------------------

let focusBeforeDialog = null;

function syncDialog(state) {
  const dialog = $("idle-dialog");
  if (state === "idle-warning" && !dialog.open) {
    focusBeforeDialog = document.activeElement;
    dialog.showModal();
    $("stay").focus();
    announce("You will be signed out soon because of inactivity.");
  } else if (state !== "idle-warning" && dialog.open) {
    dialog.close();
  }
}

function focusables(root) {
  return [...root.querySelectorAll("button, [href], input, select, textarea, [tabindex]:not([tabindex='-1'])")].filter(
    (el) => !el.disabled && !el.hidden,
  );
}

function wireDialog() {
  const dialog = $("idle-dialog");
  dialog.addEventListener("cancel", (ev) => {
    // Escape means "I am here": keep the session, close the warning.
    ev.preventDefault();
    stayActive();
  });
  dialog.addEventListener("keydown", (ev) => {
    if (ev.key !== "Tab") return;
    const items = focusables(dialog);
    if (items.length === 0) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (ev.shiftKey && document.activeElement === first) {
      ev.preventDefault();
      last.focus();
    } else if (!ev.shiftKey && document.activeElement === last) {
      ev.preventDefault();
      first.focus();
    }
  });
  dialog.addEventListener("close", () => {
    if (focusBeforeDialog && document.contains(focusBeforeDialog) && !focusBeforeDialog.closest("[hidden]")) {
      focusBeforeDialog.focus();
    }
    focusBeforeDialog = null;
  });
  $("stay").addEventListener("click", stayActive);
  $("idle-logout").addEventListener("click", () => logout(false));
}

function stayActive() {
  if (!session) return;
  try {
    session.stayActive();
    idleDeadline = Date.now() + config.idleTimeoutMs;
    announce("Staying signed in.");
  } catch (err) {
    log("page-error", { message: errorText(err) });
  }
  render();
}

// ---- session wiring ----------------------------------------------------------------------------

const unsubscribers = [];

function onSdkEvent(type, raw) {
  const detail = plain(raw);
  const at = Date.now();
  hook.events.push({ type, detail, at, hr: performance.timeOrigin + performance.now(), tab: tabId });
  log(type, detail, at);
  const expiresIn = readNumber(detail, ["expiresIn", "expires_in"]);
  const expiresAt = readNumber(detail, ["expiresAt", "accessTokenExpiresAt"]);
  switch (type) {
    case "login":
      wantLoginAfterLogout = false;
      learnUsername(detail);
      idleDeadline = at + config.idleTimeoutMs;
      accessExpiresAt = expiresAt ?? (expiresIn !== null ? at + expiresIn * 1000 : accessExpiresAt);
      announce(`Signed in${username ? " as " + username : ""}.`);
      break;
    case "refresh":
      refreshes += 1;
      accessExpiresAt = expiresAt ?? (expiresIn !== null ? at + expiresIn * 1000 : accessExpiresAt);
      break;
    case "active":
      idleDeadline = readNumber(detail, ["idleDeadline", "deadline"]) ?? at + config.idleTimeoutMs;
      break;
    case "idle-warning": {
      const remaining = readNumber(detail, ["remainingMs", "inMs", "msLeft"]);
      idleDeadline = readNumber(detail, ["idleDeadline", "deadline"]) ?? (remaining !== null ? at + remaining : at + config.idleWarningMs);
      break;
    }
    case "logout":
      lastLogout = detail;
      wantLoginAfterLogout = false;
      showCleared(detail);
      announce(`Signed out (${(detail && detail.reason) || "logout"}).`);
      render();
      focusClearedTitle();
      break;
    case "error":
      announce(`Error: ${errorText(detail)}`);
      break;
    default:
      break;
  }
  render();
}

/**
 * Who is signed in: the SDK knows it in the tab that signed in (`session.user`); a tab that
 * joined over the bus asks the demo API once.
 */
let whoamiPending = false;
function learnUsername(detail) {
  let user = detail && (detail.username || detail.user);
  if (!user) {
    try {
      user = session && session.user;
    } catch {
      user = null;
    }
  }
  if (user && typeof user === "object") user = user.username || user.name || "";
  if (user) {
    username = String(user);
    return;
  }
  if (whoamiPending || !session) return;
  whoamiPending = true;
  Promise.resolve()
    .then(() => session.fetch("/api/me"))
    .then((res) => (res.ok ? res.json() : null))
    .then((me) => {
      if (me && me.username) username = me.username;
      render();
    })
    .catch(() => {})
    .finally(() => (whoamiPending = false));
}

async function startSession(mod) {
  if (session) {
    for (const off of unsubscribers.splice(0)) {
      try {
        off();
      } catch {
        /* already gone */
      }
    }
    try {
      session.dispose();
    } catch {
      /* disposed already */
    }
  }
  session = await mod.Session.start(config);
  hook.session = session;
  for (const name of EVENT_NAMES) {
    const off = session.on(name, (e) => onSdkEvent(name, e));
    if (typeof off === "function") unsubscribers.push(off);
  }
  const state = sessionState();
  if (state === "active" || state === "idle-warning") {
    idleDeadline = Date.now() + config.idleTimeoutMs;
    learnUsername(null);
  }
  render();
}

// Local activity: only used to keep the page's own idle countdown fresh when the SDK does not
// expose its deadline. The SDK observes activity itself.
let lastLocalActivity = 0;
// The SDK shares activity between tabs on its own bus; the page mirrors it for the display
// only, on a separate channel, so an idle tab's countdown follows activity in the others.
const displayChannel = "BroadcastChannel" in window ? new BroadcastChannel(`tessera-demo-display:${config.channel}`) : null;
if (displayChannel) {
  displayChannel.onmessage = (ev) => {
    const at = Number(ev.data && ev.data.activityAt);
    if (Number.isFinite(at) && sessionState() === "active") {
      idleDeadline = Math.max(idleDeadline ?? 0, at + config.idleTimeoutMs);
    }
  };
}

function onLocalActivity() {
  const now = Date.now();
  const interval = Math.min(1000, config.activityThrottleMs);
  if (now - lastLocalActivity < interval) return;
  lastLocalActivity = now;
  const state = sessionState();
  if (state === "active") idleDeadline = now + config.idleTimeoutMs;
  displayChannel?.postMessage({ activityAt: now });
}

// ---- actions ----------------------------------------------------------------------------------

let sdk = null;

function setBusy(button, busy) {
  button.disabled = busy;
  button.setAttribute("aria-busy", busy ? "true" : "false");
}

async function login(ev) {
  ev.preventDefault();
  const form = $("login-form");
  const user = $("username").value.trim();
  const password = $("password").value;
  const errorEl = $("login-error");
  errorEl.hidden = true;
  if (!user || !password) {
    errorEl.textContent = "Enter a username and a password.";
    errorEl.hidden = false;
    (user ? $("password") : $("username")).focus();
    return;
  }
  const button = $("login-submit");
  setBusy(button, true);
  try {
    if (sessionState() === "logged-out") await startSession(sdk);
    username = user;
    await session.login({ username: user, password });
    $("password").value = "";
    form.reset();
  } catch (err) {
    errorEl.textContent = `Sign-in failed — ${errorText(err)}`;
    errorEl.hidden = false;
    $("password").select();
    $("password").focus();
    log("page-error", { message: errorText(err) });
  } finally {
    setBusy(button, false);
    render();
  }
}

async function verifyMfa(ev) {
  ev.preventDefault();
  const code = $("mfa-code").value.trim();
  const errorEl = $("mfa-error");
  errorEl.hidden = true;
  if (!/^\d{6}$/.test(code)) {
    errorEl.textContent = "The code has 6 digits.";
    errorEl.hidden = false;
    $("mfa-code").focus();
    return;
  }
  const button = $("mfa-submit");
  setBusy(button, true);
  try {
    await session.verifyMfa(code);
    $("mfa-code").value = "";
  } catch (err) {
    errorEl.textContent = `Verification failed — ${errorText(err)}`;
    errorEl.hidden = false;
    $("mfa-code").select();
    $("mfa-code").focus();
    log("page-error", { message: errorText(err) });
  } finally {
    setBusy(button, false);
    render();
  }
}

async function cancelMfa() {
  try {
    await session.logout();
  } catch {
    /* nothing to revoke yet */
  }
  wantLoginAfterLogout = true;
  render();
  $("username").focus();
}

async function logout(everywhere) {
  const button = everywhere ? $("logout-all") : $("logout");
  setBusy(button, true);
  try {
    await session.logout(everywhere ? { everywhere: true } : undefined);
  } catch (err) {
    announce(`Sign-out: ${errorText(err)}`);
    log("page-error", { message: errorText(err) });
  } finally {
    setBusy(button, false);
    render();
  }
}

async function callApi() {
  const out = $("api-result");
  out.hidden = false;
  out.textContent = "…";
  try {
    const res = await session.fetch("/api/me");
    const text = await res.text();
    let body = text;
    try {
      body = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      /* not JSON */
    }
    out.textContent = `${res.status} ${res.statusText}\n${body}`;
    log("api", { status: res.status });
  } catch (err) {
    out.textContent = `request failed: ${errorText(err)}`;
    log("page-error", { message: errorText(err) });
  }
}

function openTab() {
  window.open(location.href, "_blank", "noopener");
}

function applySettings(ev) {
  ev.preventDefault();
  const next = new URLSearchParams(location.search);
  for (const [name, id] of [["idle", "set-idle"], ["warn", "set-warn"], ["lead", "set-lead"]]) {
    const v = $(id).value.trim();
    if (v === "") next.delete(name);
    else next.set(name, v);
  }
  const storage = $("set-storage").value;
  if (storage === "memory") next.delete("storage");
  else next.set("storage", storage);
  location.search = next.toString();
}

function wireUi() {
  $("login-form").addEventListener("submit", login);
  $("mfa-form").addEventListener("submit", verifyMfa);
  $("mfa-cancel").addEventListener("click", cancelMfa);
  $("fill-alice").addEventListener("click", () => {
    $("username").value = "alice";
    $("password").value = "tessera-demo";
    $("login-submit").focus();
  });
  $("fill-bob").addEventListener("click", () => {
    $("username").value = "bob";
    $("password").value = "tessera-demo";
    $("login-submit").focus();
  });
  $("totp-use").addEventListener("click", async () => {
    $("mfa-code").value = await totp();
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
      log("planted", inv);
    } catch (err) {
      announce(`Could not plant data: ${errorText(err)}`);
    }
  });
  $("open-tab").addEventListener("click", openTab);
  $("clear-log").addEventListener("click", () => $("log").replaceChildren());
  $("sign-in-again").addEventListener("click", () => {
    wantLoginAfterLogout = true;
    render();
    $("username").focus();
  });
  $("settings-form").addEventListener("submit", applySettings);
  $("set-idle").value = String(config.idleTimeoutMs);
  $("set-warn").value = String(config.idleWarningMs);
  $("set-lead").value = String(config.refreshLeadMs);
  $("set-storage").value = config.storage;
  $("fact-tab").textContent = tabId;
  document.title = `Tessera demo · tab ${tabId}`;
  for (const type of ["pointerdown", "keydown", "wheel", "touchstart", "scroll"]) {
    addEventListener(type, onLocalActivity, { passive: true, capture: true });
  }
  wireDialog();
}

// ---- boot ---------------------------------------------------------------------------------------

async function main() {
  wireUi();
  render();
  try {
    performance.mark("tessera:import-start");
    sdk = await import("/pkg/tessera.js");
    performance.mark("tessera:imported");
    // init() returns the module's exports; `memory` lets tests and benches watch linear memory.
    const exports = await sdk.default();
    hook.wasm = exports ?? null;
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
    hook.startedState = sessionState();
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
