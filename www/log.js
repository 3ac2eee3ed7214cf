// @ts-check
// The page's event log: SDK events (typed by the package's declarations) and the page's own
// entries ("api", "planted", "page-error"), newest first, at most LOG_LIMIT lines.

/** @typedef {import("tessera").SessionEvents} SessionEvents */
/** @typedef {SessionEvents[keyof SessionEvents]} SdkEvent */

const LOG_LIMIT = 200;

/**
 * Wall-clock time with milliseconds, e.g. `14:03:07.042`.
 * @param {number} [t] ms since the epoch
 */
export function clock(t = Date.now()) {
  return new Date(t).toLocaleTimeString([], { hour12: false }) + "." + String(t % 1000).padStart(3, "0");
}

/**
 * One line about an SDK event: only fields the package declares for it.
 * @param {SdkEvent} e
 * @returns {string}
 */
export function summarizeEvent(e) {
  switch (e.type) {
    case "login":
    case "refresh":
      return e.expiresAt == null ? "" : `token until ${clock(e.expiresAt)}`;
    case "idle-warning":
      return `logout at ${clock(e.deadline)} (in ${Math.round(e.remainingMs / 1000)} s)`;
    case "logout": {
      const bits = [`reason=${e.reason}`];
      if (e.remaining && e.remaining.length) bits.push(`${e.remaining.length} item(s) could not be removed`);
      return bits.join(" · ");
    }
    case "error":
      return `${e.code}: ${e.message}`;
    default:
      return "";
  }
}

/**
 * Prepends a line to the log list.
 * @param {HTMLElement} list the `<ol>`
 * @param {string} type event name (SDK) or page entry name
 * @param {string} text one-line summary
 * @param {unknown} [detail] shown in full as the line's tooltip
 * @param {number} [at] ms since the epoch
 */
export function appendLog(list, type, text, detail, at = Date.now()) {
  const li = document.createElement("li");
  li.className = `log-item log-${type}`;
  li.dataset.event = type;
  const time = document.createElement("time");
  time.dateTime = new Date(at).toISOString();
  time.textContent = clock(at);
  const name = document.createElement("span");
  name.className = "log-name";
  name.textContent = type;
  const body = document.createElement("span");
  body.className = "log-detail";
  body.textContent = text;
  if (detail !== undefined) li.title = JSON.stringify(detail);
  li.append(time, name, body);
  list.prepend(li);
  while (list.children.length > LOG_LIMIT) list.lastElementChild?.remove();
}
