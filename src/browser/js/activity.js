// Trusted user input, throttled, as engine activity.

// ---- activity -------------------------------------------------------------------------
// Idle hot path. Passive listeners that only store the latest event time and call into
// Wasm at most once per throttle window. The per-event cost is one store and one compare.
// Only trusted user input counts (a script's synthetic events do not keep a session alive);
// `scroll` only when asked for (it also fires for programmatic scrolling and media).
export const KINDS = ["pointermove", "pointerdown", "keydown", "wheel", "touchstart"];
export const OPTS = { passive: true, capture: true };

export class ActivityTracker {
  /**
   * @param {number} windowMs the throttle window
   * @param {boolean} scroll whether `scroll` counts
   * @param {() => void} onActive called at most once per window
   */
  constructor(windowMs, scroll, onActive) {
    let last = -1e12, sent = -1e12;
    /** @param {Event} e */
    const h = (e) => {
      if (!e.isTrusted) return;
      last = e.timeStamp;
      if (last - sent >= windowMs) { sent = last; onActive(); }
    };
    this.h = h;
    this.kinds = scroll ? KINDS.concat("scroll") : KINDS;
    for (const k of this.kinds) document.addEventListener(k, h, OPTS);
  }
  stop() {
    for (const k of this.kinds) document.removeEventListener(k, this.h, OPTS);
  }
}
