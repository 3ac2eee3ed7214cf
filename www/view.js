// @ts-check
// Presentation: which panel shows for a session state, the live facts read from the SDK's
// getters, the logout report built from the `logout` event's typed `cleared` / `remaining`,
// and the idle-warning modal. Nothing here talks to the server.

import { DEMO_DATA_NAME, inventory } from "./sitedata.js";

/** @typedef {import("tessera").Session} Session */
/** @typedef {import("tessera").SessionState} SessionState */
/** @typedef {import("tessera").Cleared} Cleared */
/** @typedef {import("tessera").Remaining} Remaining */
/** @typedef {import("tessera").SessionEvents["logout"]} LogoutEvent */
/** @typedef {"login" | "mfa" | "account" | "cleared" | "none"} View */

/**
 * The SDK's coordination records in localStorage, no token and no secret, stay by design: the
 * cross-tab record (logout epoch and timing) for good, the owed revoke until the server answers.
 */
const SDK_RECORDS = ["tessera:shared:", "tessera:revoke:"];

/**
 * The element with id `id`; a missing one is a bug in index.html, reported by name.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el;
}

/**
 * A form control by id (typed, so `.value` is checked).
 * @param {string} id
 * @returns {HTMLInputElement}
 */
export function input(id) {
  const el = $(id);
  if (!(el instanceof HTMLInputElement || el instanceof HTMLSelectElement)) throw new Error(`#${id} is not a form control`);
  return /** @type {HTMLInputElement} */ (el);
}

/**
 * A button by id.
 * @param {string} id
 * @returns {HTMLButtonElement}
 */
export function button(id) {
  const el = $(id);
  if (!(el instanceof HTMLButtonElement)) throw new Error(`#${id} is not a button`);
  return el;
}

/** @param {SessionState | "loading"} state */
export function isSignedIn(state) {
  return state === "active" || state === "idle-warning";
}

/**
 * A duration for people: `42 s`, `4:05 min`, `2 h 3 min`; `—` for no value.
 * @param {number | null} ms
 */
export function formatMs(ms) {
  if (ms === null || !Number.isFinite(ms)) return "—";
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  const rest = String(s % 60).padStart(2, "0");
  return m < 60 ? `${m}:${rest} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

let statusTimer = 0;
/**
 * A polite one-line status (screen readers announce it), cleared after 6 s.
 * @param {string} text
 */
export function announce(text) {
  const el = $("status");
  el.textContent = text;
  clearTimeout(statusTimer);
  statusTimer = window.setTimeout(() => (el.textContent = ""), 6000);
}

/**
 * A problem that stops the page from working at all.
 * @param {string} text
 */
export function fatal(text) {
  const el = $("fatal");
  el.textContent = text;
  el.hidden = false;
  document.body.dataset.state = "error";
}

/**
 * Which panel a state shows. The logout report only after a logout this page saw (and not
 * once the user asked to sign in again); a page opened later just offers sign-in.
 * @param {SessionState | "loading"} state
 * @param {{ sawLogout: boolean, wantLogin: boolean }} flags
 * @returns {View}
 */
export function viewFor(state, { sawLogout, wantLogin }) {
  if (state === "anonymous") return "login";
  if (state === "mfa-required") return "mfa";
  if (isSignedIn(state)) return "account";
  if (state === "logged-out") return sawLogout && !wantLogin ? "cleared" : "login";
  return "none";
}

/**
 * Shows the panel of `view` and the state chip.
 * @param {SessionState | "loading"} state
 * @param {View} view
 */
export function renderPanels(state, view) {
  document.body.dataset.state = state;
  document.body.dataset.view = view;
  $("state-chip-text").textContent = state;
  $("fact-state").textContent = state;
  $("login-panel").hidden = view !== "login";
  $("mfa-panel").hidden = view !== "mfa";
  $("account-panel").hidden = view !== "account";
  $("cleared-panel").hidden = view !== "cleared";
}

/**
 * The live facts, straight from the SDK's getters (`user`, `expiresAt`, `idleDeadline`).
 * @param {Session | null} session
 * @param {{ user: string | null, refreshes: number }} page what the page learnt itself
 */
export function renderFacts(session, page) {
  const now = Date.now();
  const state = session ? session.state : "loading";
  const signedIn = isSignedIn(state);
  const expiresAt = session && signedIn ? session.expiresAt : null;
  const idleDeadline = session && signedIn ? session.idleDeadline : null;
  $("fact-user").textContent = signedIn && page.user ? page.user : "—";
  $("account-user").textContent = page.user || "you";
  $("fact-access").textContent = expiresAt === null ? "—" : formatMs(expiresAt - now);
  $("fact-idle").textContent = idleDeadline === null ? "—" : formatMs(idleDeadline - now);
  $("idle-left").textContent = idleDeadline === null ? "a moment" : formatMs(idleDeadline - now);
  $("fact-refreshes").textContent = String(page.refreshes);
}

/**
 * Readable lines for the SDK's `cleared` report.
 * @param {Cleared} cleared
 * @returns {string[]}
 */
export function clearedLines(cleared) {
  const lines = ["access token held in memory"];
  for (const kind of /** @type {const} */ (["localStorage", "sessionStorage"])) {
    const v = cleared[kind];
    if (v === "all") lines.push(`${kind}: everything`);
    else if (v > 0) lines.push(`${kind}: ${v} SDK key${v === 1 ? "" : "s"}`);
  }
  for (const name of cleared.cookies) lines.push(`cookie: ${name}`);
  for (const name of cleared.indexedDB) lines.push(`IndexedDB: ${name}`);
  for (const name of cleared.caches) lines.push(`cache: ${name}`);
  for (const scope of cleared.serviceWorkers ?? []) lines.push(`service worker: ${scope}`);
  return lines;
}

/**
 * Readable lines for what the SDK could not remove.
 * @param {Remaining[] | null} remaining
 */
export function remainingLines(remaining) {
  return (remaining ?? []).map((r) => `could not remove ${r.kind} ${r.name} (${r.why})`);
}

/**
 * Fills the signed-out panel from a `logout` event, then checks what this page can still
 * see. The event's `cleared` lists fill in as the asynchronous removals (IndexedDB, caches)
 * finish, so the page calls this again when they change.
 * @param {LogoutEvent} e
 * @returns {Promise<string[]>} what is still visible (empty: nothing)
 */
export async function renderCleared(e) {
  $("logout-reason").textContent = e.reason;
  const lines = [...(e.cleared ? clearedLines(e.cleared) : []), ...remainingLines(e.remaining)];
  const left = await inventory();
  const still = [
    ...left.cookies.map((c) => `cookie ${c}`),
    ...left.localStorage.filter((k) => !SDK_RECORDS.some((p) => k.startsWith(p))).map((k) => `localStorage ${k}`),
    ...left.sessionStorage.map((k) => `sessionStorage ${k}`),
    ...left.indexedDb.filter((n) => n === DEMO_DATA_NAME).map((n) => `IndexedDB ${n}`),
    ...left.caches.filter((n) => n === DEMO_DATA_NAME).map((n) => `cache ${n}`),
    ...left.unanswered.map((store) => `${store} (did not answer yet)`),
  ];
  const items = lines.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  });
  const check = document.createElement("li");
  check.className = still.length ? "warn" : "ok";
  check.dataset.testid = "cleared-check";
  check.textContent = still.length
    ? `Still visible to this page: ${still.join(", ")}`
    : "Checked: no cookies, Web Storage, demo database or demo cache remain visible to this page.";
  $("cleared-list").replaceChildren(...items, check);
  return still;
}

/** Focuses the signed-out heading unless the user is already somewhere visible. */
export function focusClearedTitle() {
  const active = document.activeElement;
  if (!active || active === document.body || active.closest("[hidden]") || !active.checkVisibility?.()) {
    $("cleared-title").focus();
  }
}

// ---- the idle-warning modal -------------------------------------------------------------------

/** @type {Element | null} */
let focusBeforeDialog = null;

/**
 * Opens the modal on `idle-warning`, closes it on any other state.
 * @param {SessionState | "loading"} state
 */
export function syncDialog(state) {
  const dialog = /** @type {HTMLDialogElement} */ ($("idle-dialog"));
  if (state === "idle-warning" && !dialog.open) {
    focusBeforeDialog = document.activeElement;
    dialog.showModal();
    $("stay").focus();
    announce("You will be signed out soon because of inactivity.");
  } else if (state !== "idle-warning" && dialog.open) {
    dialog.close();
  }
}

/** @param {HTMLElement} root */
function focusables(root) {
  return [
    ...root.querySelectorAll("button, [href], input, select, textarea, [tabindex]:not([tabindex='-1'])"),
  ].filter((el) => el instanceof HTMLElement && !el.hidden && !(el instanceof HTMLButtonElement && el.disabled));
}

/**
 * Escape and "Stay signed in" answer the warning; Tab stays inside; focus returns on close.
 * @param {{ stay: () => void, logout: () => void }} actions
 */
export function wireDialog(actions) {
  const dialog = $("idle-dialog");
  dialog.addEventListener("cancel", (ev) => {
    // Escape means "I am here": keep the session, close the warning.
    ev.preventDefault();
    actions.stay();
  });
  dialog.addEventListener("keydown", (ev) => {
    if (ev.key !== "Tab") return;
    const items = focusables(dialog);
    if (items.length === 0) return;
    const first = /** @type {HTMLElement} */ (items[0]);
    const last = /** @type {HTMLElement} */ (items[items.length - 1]);
    if (ev.shiftKey && document.activeElement === first) {
      ev.preventDefault();
      last.focus();
    } else if (!ev.shiftKey && document.activeElement === last) {
      ev.preventDefault();
      first.focus();
    }
  });
  dialog.addEventListener("close", () => {
    const back = focusBeforeDialog;
    focusBeforeDialog = null;
    if (back instanceof HTMLElement && document.contains(back) && !back.closest("[hidden]")) back.focus();
  });
  $("stay").addEventListener("click", actions.stay);
  $("idle-logout").addEventListener("click", actions.logout);
}
