// Trusted user input, sampled, as engine activity.

// ---- activity -------------------------------------------------------------------------
// Idle hot path. Passive listeners that compare the event's time with the last one reported
// and call into Wasm about once per sample window: the first input of a window at once, and
// the last input the window held back when the window ends (one timer per window), so that
// the idle deadline counts from the user's last input, not from the first of its window.
// Only trusted user input counts (a script's synthetic events do not keep a session alive);
// `scroll` only when asked for (it also fires for programmatic scrolling and media).
export const KINDS = ["pointermove", "pointerdown", "keydown", "wheel", "touchstart"];
export const OPTS = { passive: true, capture: true };

// The listener for `KINDS` (the driver adds it with `OPTS` and removes it on dispose).
/**
 * @param {number} windowMs the sample window
 * @param {(timeStamp: number) => void} onActive called with the reported input's
 *   `Event.timeStamp` (when it happened, not when it was dispatched)
 */
export function activity(windowMs, onActive) {
  let sent = -1e12;
  let last = sent;
  let timer = 0;
  const flush = () => {
    timer = 0;
    if (last > sent) onActive((sent = last));
  };
  /** @param {Event} e */
  return (e) => {
    if (!e.isTrusted) return;
    const t = e.timeStamp;
    if (t - sent >= windowMs) onActive((sent = t));
    else if (t > last) {
      last = t;
      timer ||= setTimeout(flush, sent + windowMs - t);
    }
  };
}
