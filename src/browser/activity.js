// Idle hot path. Passive listeners that only store the latest event time and call into
// Wasm at most once per throttle window. The per-event cost is one store and one compare.
const KINDS = ["pointermove", "mousemove", "pointerdown", "keydown", "wheel", "touchstart", "scroll", "visibilitychange"];
const OPTS = { passive: true, capture: true };

export class ActivityTracker {
  constructor(windowMs, onActive) {
    let last = -1e12, sent = -1e12;
    const h = (e) => {
      last = e.timeStamp;
      if (last - sent >= windowMs) { sent = last; onActive(); }
    };
    this.h = h;
    this.last = () => last;
    for (const k of KINDS) document.addEventListener(k, h, OPTS);
  }
  // Wall-clock milliseconds of the latest activity seen (reported or not).
  lastActivity() {
    return Date.now() - (performance.now() - this.last());
  }
  stop() {
    for (const k of KINDS) document.removeEventListener(k, this.h, OPTS);
  }
}
