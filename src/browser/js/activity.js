// Trusted user input, throttled, as engine activity.

// ---- activity -------------------------------------------------------------------------
// Idle hot path. Passive listeners that only compare the event's time with the last one
// sent and call into Wasm at most once per throttle window. The per-event cost is one compare.
// Only trusted user input counts (a script's synthetic events do not keep a session alive);
// `scroll` only when asked for (it also fires for programmatic scrolling and media).
export const KINDS = ["pointermove", "pointerdown", "keydown", "wheel", "touchstart"];
export const OPTS = { passive: true, capture: true };

// The listener for `KINDS` (the driver adds it with `OPTS` and removes it on dispose).
/**
 * @param {number} windowMs the throttle window
 * @param {() => void} onActive called at most once per window
 */
export function activity(windowMs, onActive) {
  let sent = -1e12;
  /** @param {Event} e */
  return (e) => {
    if (e.isTrusted && e.timeStamp - sent >= windowMs) {
      sent = e.timeStamp;
      onActive();
    }
  };
}
