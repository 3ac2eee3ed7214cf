// Web Locks: the refresh lock and its availability.

// ---- locks ----------------------------------------------------------------------------
// navigator.locks binding (web-sys exposes LockManager only behind unstable APIs).
// lockRequest(name, waitMs, steal, cb): cb(1) when granted, cb(0) when the bounded wait ran
// out or the request failed, cb(2) when a held lock was stolen by another tab. Returns a
// function that releases the lock (or cancels the pending request); null without Web Locks.
export function hasLocks() {
  return !!(globalThis.navigator && navigator.locks && navigator.locks.request);
}

/**
 * @param {string} name
 * @param {number} waitMs
 * @param {boolean} steal
 * @param {(code: 0 | 1 | 2) => void} cb
 * @returns {(() => void) | null}
 */
export function lockRequest(name, waitMs, steal, cb) {
  if (!hasLocks()) return null;
  /** @type {(v?: unknown) => void} */
  let release;
  let done = false, granted = false, timer = 0;
  const held = new Promise((r) => { release = r; });
  /** @type {LockOptions} */
  const opts = {};
  /** @type {AbortController | null} */
  let ac = null;
  if (steal) opts.steal = true;
  else {
    ac = new AbortController();
    opts.signal = ac.signal;
    timer = setTimeout(() => /** @type {AbortController} */ (ac).abort(), waitMs);
  }
  navigator.locks.request(name, opts, () => {
    clearTimeout(timer);
    if (done) return;
    granted = true;
    cb(1);
    return held;
  }).catch(() => {
    clearTimeout(timer);
    if (!done) { done = true; cb(granted ? 2 : 0); }
  });
  return () => { done = true; clearTimeout(timer); if (ac && !granted) ac.abort(); release(); };
}
