// The browser driver: performs what the Rust engine (`core`) decides. It feeds the engine
// inputs (time is read in Rust), drains its effects in order, and executes them with the
// browser's APIs: fetch, Web Locks, BroadcastChannel, storage, WebCrypto, cleanup. No policy
// lives here: when to refresh, what a bus message means, when the user is idle, which 401
// codes end a session — all of that is the engine's.

// Input kinds (must match `Core::handle` in mod.rs).
const RESTORE = 0, RESUME = 1, LOGIN_OK = 2, MFA = 3, LOGIN_FAILED = 4, REFRESH_OK = 5,
  REFRESH_REJECTED = 6, REFRESH_FAILED = 7, ACCESS_REJECTED = 8, BUS = 9, SHARED = 10,
  LOCK_GRANTED = 11, LOCK_UNAVAILABLE = 12, LOCK_LOST = 13, TIMER = 14, ACTIVITY = 15,
  STAY = 16, LOGOUT = 17, VISIBLE = 18, ONLINE = 19, LOGIN_STARTED = 20, LOGOUT_DONE = 21;

const MESSAGES = {
  vault_encoding: "stored record is not valid base64url; wiped",
  vault_truncated: "stored record is truncated; wiped",
  vault_version: "stored record has an unknown format version; wiped",
  vault_tampered: "stored record failed authentication; wiped",
  vault_locked: "stored session can no longer be opened (key revoked or gone); wiped",
  vault_unavailable: "WebCrypto AES-GCM is unavailable; the session is not persisted",
  refresh_retry: "token refresh failed; retrying with backoff",
  record_invalid: "stored session record is invalid; wiped",
};
const KEY_COOKIE = "tessera_vk";
// Indexed by `Core::state` (mod.rs).
const STATES = ["anonymous", "mfa-required", "active", "idle-warning", "logged-out"];

const error = (code, message, status) => Object.assign(new Error(message), { code, status });
const tokensOk = (b) => b && typeof b.access_token === "string" && b.expires_in >= 0;

// `Session.start` (in Rust, which creates the engine `core`) resolves to the driver itself:
// its public methods below are the session's API.
// `Session.start` with invalid options (mod.rs): a rejection carrying the code.
export const reject = (code, message) => Promise.reject(error(code, message));

export function start(core, o) {
  const d = new Driver(core, o || {});
  return d.init(o || {}).then(() => d);
}

class Driver {
  constructor(core, o) {
    this.c = core;
    this.base = String(o.baseUrl ?? "/auth").replace(/\/+$/, "");
    const ch = (this.ch = String(o.channel ?? "tessera"));
    this.tokenMode = o.mode === "token";
    this.kind = o.storage === "local" || o.storage === "session" ? o.storage : null;
    this.plan = o.cleanup || {};
    this.tk = "tessera:token:" + ch;
    this.sk = "tessera:shared:" + ch;
    this.bk = "tessera:bus:" + ch;
    this.ls = {};
    this.early = [];
    this.waiters = [];
    this.mem = new Map();
    this.busy = this.dead = false;
    this.refreshing = this.seq = this.timer = 0;
    this.at = -1;
    this.store = this.key = this.mfa = this.lock = this.cleared = this.user = null;
    this.off = [];
  }

  async init(o) {
    const solo = this.alone(o);
    if (this.kind) {
      try {
        const s = globalThis[this.kind + "Storage"];
        s.setItem("tessera:probe", "1");
        s.removeItem("tessera:probe");
        this.store = s;
      } catch (e) {
        this.storageFailed(e);
      }
    }
    this.feedShared();
    this.install(o);
    // The initial online state is an input: a tab that starts offline does not churn retries.
    this.drive(ONLINE, navigator.onLine !== false);
    // A persisted record that fails to open was wiped: the user signs in again rather than
    // being resumed silently from the refresh cookie (issue 6).
    const intact = this.kind ? (await this.restore()) !== false : true;
    if (o.resume !== false && intact && !this.signedIn()) {
      // Alone, the engine skips the join wait: no other tab could answer.
      this.drive(RESUME, await solo);
      // Settle before resolving: until the resume is decided (another tab's token, or the
      // refresh's answer or retryable failure), at most 30 s.
      for (const end = Date.now() + 30000; this.c.pending() && Date.now() < end; ) await this.next(100);
    }
    await solo; // this tab's lock is requested: other tabs starting now see it alive
    // Events raised while starting reach listeners added right after `await start()`.
    const early = this.early;
    this.early = null;
    if (early.length) setTimeout(() => early.forEach(([n, d]) => this.emit(n, d)), 0);
  }

  // Every live tab holds the shared Web Lock `tessera:tab:<channel>` for its lifetime (released
  // on dispose, or by the browser when the page goes). Resolves to true when no other tab held
  // it: this one is alone. Without Web Locks (or with `webLocks: false`): false, unknown.
  async alone(o) {
    const n = "tessera:tab:" + this.ch;
    let q;
    try {
      if (!hasLocks()) return false;
      q = await navigator.locks.query();
      await new Promise((ok) => {
        navigator.locks.request(n, { mode: "shared" }, () => (ok(), this.dead || new Promise((r) => this.off.push(r)))).catch(ok);
      });
    } catch (_) {}
    return !!q && o.webLocks !== false && !q.held.concat(q.pending).some((l) => l.name === n);
  }

  install(o) {
    const listen = (t, k, f) => {
      t.addEventListener(k, f, { passive: true });
      this.off.push(() => t.removeEventListener(k, f, { passive: true }));
    };
    if (typeof BroadcastChannel === "function") {
      this.bc = new BroadcastChannel(this.ch);
      this.bc.onmessage = (e) => this.onBus(e.data);
    }
    listen(window, "storage", (e) => {
      if (e.key === this.sk || e.key === null) {
        this.feedShared();
        this.pump();
      } else if (!this.bc && e.key === this.bk && e.newValue) {
        this.onBus(e.newValue.slice(e.newValue.indexOf("|") + 1));
      }
    });
    listen(window, "online", () => this.drive(ONLINE, true));
    listen(window, "offline", () => this.drive(ONLINE, false));
    const wake = () => {
      this.feedShared();
      this.drive(VISIBLE, true);
    };
    listen(window, "focus", wake);
    listen(window, "pageshow", wake);
    listen(document, "visibilitychange", () => (document.hidden ? this.drive(VISIBLE, false) : wake()));
    // Activity crosses into Wasm at most once per sample window (≤ 1 s).
    const sample = Math.max(16, Math.min(1000, Number(o.activityThrottleMs) || 1000));
    this.tracker = new ActivityTracker(sample, () => this.drive(ACTIVITY));
  }

  onBus(data) {
    // Untrusted: anything but text is handed over as an empty (undecodable) message.
    this.drive(BUS, (typeof data === "string" && unb64(data)) || new Uint8Array());
  }

  post(path, body, bearer, ms) {
    const headers = { "X-Tessera-CSRF": "1" };
    if (body) headers["Content-Type"] = "application/json";
    if (bearer) headers.Authorization = "Bearer " + bearer;
    const init = { method: "POST", credentials: "include", headers, body: body ? JSON.stringify(body) : undefined };
    if (ms && AbortSignal.timeout) init.signal = AbortSignal.timeout(ms);
    return fetch(this.base + path, init).then(async (r) => {
      let b = null;
      try {
        b = JSON.parse(await r.text());
      } catch (_) {}
      const ra = parseInt(r.headers.get("Retry-After"), 10);
      return { status: r.status, body: b, retryAfter: ra >= 0 ? ra * 1000 : undefined };
    });
  }

  // ---- the engine loop -------------------------------------------------------------------

  // `id`: the request an answer belongs to (the id of the effect that asked).
  drive(kind, arg, id) {
    if (this.dead) return;
    this.c.handle(kind, id || 0, arg);
    this.pump();
  }

  pump() {
    for (let e; !this.busy && !this.dead && (e = this.c.poll()); ) this.perform(e);
    this.rearm();
  }

  rearm() {
    if (this.dead) return;
    const t = this.c.deadline();
    if (t === this.at) return;
    clearTimeout(this.timer);
    this.at = t;
    if (t >= 0)
      this.timer = setTimeout(() => {
        this.at = -1;
        this.feedShared();
        this.drive(TIMER);
      }, Math.min(Math.max(0, t - Date.now()), 2147483647));
  }

  // Runs `p` with the effect queue paused (the next effect must wait for it), then resumes.
  pause(p) {
    this.busy = true;
    p.catch(() => {}).then(() => {
      this.busy = false;
      this.pump();
      this.wake();
    });
  }

  feedShared() {
    let v;
    try {
      v = localStorage.getItem(this.sk);
    } catch (_) {
      return; // storage broken: nothing to read (never report "absent")
    }
    // Absent: null; garbage: a byte the engine rejects (and counts).
    if (!this.dead) this.c.handle(SHARED, 0, v === null ? null : unb64(v) || Uint8Array.of(0));
  }

  perform(e) {
    switch (e[0]) {
      case "login": {
        // The engine's id for the login / MFA request `auth()` is about to send.
        const ok = this.authReq;
        this.authReq = null;
        if (ok) ok(e[1]);
        break;
      }
      case "refresh": {
        this.refreshing++;
        const id = e[1];
        const body = this.tokenMode ? { mode: "token", refresh_token: e[2] } : null;
        this.post("/refresh", body, null, 0)
          .then(
            (a) =>
              a.status === 200 && tokensOk(a.body)
                ? [REFRESH_OK, a.body]
                : a.status === 401
                  ? [REFRESH_REJECTED, a.body && a.body.code]
                  : [REFRESH_FAILED, a.status === 200 ? undefined : a.retryAfter],
            () => [REFRESH_FAILED]
          )
          .then(([k, v]) => {
            this.refreshing--;
            this.drive(k, v, id);
            this.wake();
          });
        break;
      }
      case "logout": {
        // Server revoke, best effort and bounded. The other tabs already know (the engine
        // persisted and broadcast the logout first) and the request carries its credentials,
        // so the wipe goes on at once; only `logout()` and a next sign-in wait for the answer.
        const id = e[1];
        const body = e[4] ? { refresh_token: e[4] } : null;
        // Its Clear-Site-Data may have erased the shared record: the engine writes it back.
        this.revoke = this.post(e[2] ? "/logout-all" : "/logout", body, e[3], 5000).catch(() => {}).then(() => {
          this.feedShared();
          this.drive(LOGOUT_DONE, 0, id);
        });
        break;
      }
      case "lock": {
        const id = e[1];
        if (this.lock) this.lock();
        this.lock = lockRequest("tessera:refresh:" + this.ch, e[2], e[3], (code) => {
          if (code === 1) {
            this.feedShared();
            this.drive(LOCK_GRANTED, 0, id);
          } else {
            this.lock = null;
            this.drive(code === 2 ? LOCK_LOST : LOCK_UNAVAILABLE, 0, id);
          }
        });
        if (!this.lock) this.drive(LOCK_UNAVAILABLE, 0, id);
        break;
      }
      case "unlock":
        if (this.lock) this.lock();
        this.lock = null;
        break;
      case "broadcast":
        if (this.bc) this.bc.postMessage(b64(e[1]));
        else
          try {
            localStorage.setItem(this.bk, ++this.seq + "|" + b64(e[1]));
            localStorage.removeItem(this.bk);
          } catch (_) {}
        break;
      case "shared":
        try {
          const s = localStorage.getItem(this.sk);
          localStorage.setItem(this.sk, b64(this.c.merge(s === null ? null : unb64(s), e[1])));
        } catch (_) {}
        break;
      case "store":
        if (this.store) this.pause(this.seal(e[1]));
        break;
      case "wipe":
        this.mem.delete(this.tk); // web storage copies go in the cleanup (and are counted)
        if (!this.store) this.sdel(this.tk);
        this.mfa = this.user = null;
        this.cleared = this.cleanup();
        break;
      case "emit":
        this.emitEngine(e[1], e[2], e[3]);
        break;
    }
  }

  emitEngine(name, v, user) {
    const d = {};
    if (name === "idle-warning") {
      d.deadline = v;
      d.remainingMs = Math.max(0, v - Date.now());
    } else if (name === "logout") {
      d.reason = v;
      d.cleared = this.cleared;
      this.cleared = null;
    } else if (name === "error") {
      d.code = v;
      d.message = MESSAGES[v] || v;
      if (v === "record_invalid") this.sdel(this.tk);
    } else if (name === "refresh" || name === "login") {
      d.expiresAt = v;
      if (name === "login") this.user = d.user = user ?? this.user ?? null;
    }
    this.emit(name, d);
    this.wake();
  }

  emit(name, d) {
    d.type = name;
    if (this.early) return void this.early.push([name, d]);
    for (const f of [...(this.ls[name] || [])])
      try {
        f(d);
      } catch (_) {} // a throwing listener must not break the session
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  next(ms) {
    return new Promise((r) => {
      this.waiters.push(r);
      setTimeout(r, ms);
    });
  }

  async settle() {
    for (let i = 0; this.busy && i < 300; i++) await this.next(50);
  }

  signedIn() {
    const s = this.c.state();
    return s === 2 || s === 3; // active, idle-warning
  }

  // ---- storage with a memory fallback ----------------------------------------------------

  storageFailed(e) {
    this.store = null;
    this.emit("error", {
      code: "storage_unavailable",
      message: "storage failed, tokens kept in memory for this tab: " + ((e && e.message) || e),
    });
  }

  sget(k) {
    if (this.store)
      try {
        return this.store.getItem(k);
      } catch (e) {
        this.storageFailed(e);
      }
    return this.mem.get(k) ?? null;
  }

  sset(k, v) {
    if (this.store)
      try {
        return void this.store.setItem(k, v);
      } catch (e) {
        try {
          this.store.removeItem(k);
        } catch (_) {}
        this.storageFailed(e);
      }
    this.mem.set(k, v);
  }

  sdel(k) {
    if (this.store)
      try {
        this.store.removeItem(k);
      } catch (_) {}
    this.mem.delete(k);
  }

  // ---- the vault ---------------------------------------------------------------------------

  // The server's per-session key (cookie mode), else the browser-session-lifetime key.
  async obtainKey() {
    if (!this.tokenMode) {
      try {
        const a = await this.post("/vault-key", null, null, 10000);
        const k = a.status === 200 && a.body && typeof a.body.key === "string" && unb64(a.body.key);
        if (k && k.length === 32) return [k, true];
        if (a.status === 401) return null;
      } catch (_) {}
    }
    const k = sessionKey(true);
    return k && [k, false];
  }

  async seal(bytes) {
    const k = this.key || (this.key = await this.obtainKey());
    if (!k) return;
    const iv = crypto.getRandomValues(new Uint8Array(12));
    let body;
    try {
      body = await gcm(true, k[0], iv, aad(location.origin, this.tk), bytes);
    } catch (_) {
      return this.fail("vault_unavailable", false);
    }
    this.sset(this.tk, (k[1] ? "s." : "c.") + b64(Uint8Array.of(1, ...iv, ...body)));
  }

  fail(code, wipe) {
    if (wipe) this.sdel(this.tk);
    this.emit("error", { code, message: MESSAGES[code] });
    return false;
  }

  // A persisted record is restored only if it opens; anything else is wiped and reported.
  async restore() {
    const rec = this.sget(this.tk);
    if (!rec) return;
    const server = !rec.startsWith("c.");
    const sealed = /^[sc]\./.test(rec) ? rec.slice(2) : rec;
    let k = server ? await this.obtainKey() : sessionKey(false) && [sessionKey(false), false];
    if (k && server && !k[1]) k = null; // only the server's key opens a server-sealed record
    if (!k) return this.fail("vault_locked", true);
    const parts = parse(sealed);
    if (typeof parts === "string") return this.fail(parts, true);
    let plain;
    try {
      plain = await gcm(false, k[0], parts[0], aad(location.origin, this.tk), parts[1]);
    } catch (_) {
      return this.fail("vault_tampered", true);
    }
    this.key = k;
    this.drive(RESTORE, plain);
  }

  // ---- logout cleanup ----------------------------------------------------------------------

  // Synchronous, so the `logout` event follows at once: tokens, web storage and cookies are
  // gone when it fires. IndexedDB and Cache Storage deletions only start here; their lists in
  // the report fill in as they finish (`logout()` resolves after them).
  cleanup() {
    const p = this.plan;
    // The shared record (the logout epoch) is never removed, so never written back: a copy
    // written back could be older than what another tab stored meanwhile.
    const out = {
      memory: true,
      localStorage: wipeStorage("localStorage", p.localStorage, [this.tk, this.bk], this.sk),
      sessionStorage: wipeStorage("sessionStorage", p.sessionStorage, [this.tk]),
    };
    out.cookies = p.cookies ? wipeCookies(document, location) : [];
    const which = (x) => (x === true || Array.isArray(x) ? x : null);
    const later = (x, f, into) => which(x) && f(x).then((n) => into.push(...n));
    this.wiping = Promise.all([
      later(p.indexedDB, wipeIndexedDb, (out.indexedDB = [])),
      later(p.caches, wipeCaches, (out.caches = [])),
    ]);
    return out;
  }

  // ---- the public methods (the `Session` API, see types.rs) -------------------------------

  get state() {
    return STATES[this.c.state()];
  }

  get stats() {
    const s = this.c.stats();
    return { busMalformed: s[0], sharedMalformed: s[1], refreshSent: s[2], persistent: !!this.store };
  }

  login(c) {
    return this.auth("/login", { username: c && c.username, password: c && c.password });
  }

  verifyMfa(code) {
    if (!this.mfa) return Promise.reject(error("mfa_not_pending", "no login is waiting for a code"));
    return this.auth("/mfa", { mfa_token: this.mfa, code: String(code) });
  }

  async auth(path, body) {
    await this.revoke; // a pending revoke's expired cookie must not land on the new session
    if (this.tokenMode) body.mode = "token";
    let a;
    // The engine dates the session and token expiry from the send time, and answers with the
    // request's id (the "login" effect), which the answer carries back.
    const id = await new Promise((ok, no) => {
      this.authReq = ok;
      this.drive(LOGIN_STARTED);
      if (this.dead) no(error("disposed", "the session was disposed"));
    });
    try {
      a = await this.post(path, body, null, 0);
    } catch (_) {
      throw error("network", "the server could not be reached");
    }
    const b = a.body || {};
    if (a.status === 200) {
      if (b.mfa_required === true) {
        this.mfa = b.mfa_token;
        this.drive(MFA, 0, id);
      } else if (tokensOk(b)) {
        this.mfa = null;
        this.user = (b.session && b.session.user) || null;
        this.drive(LOGIN_OK, b, id);
      } else throw error("invalid_response", "the server's answer has no access token", 200);
      await this.settle();
      return this.state;
    }
    if (b.code === "mfa_expired") {
      this.mfa = null;
      this.drive(LOGIN_FAILED, 0, id);
    }
    throw error(b.code || "http_error", b.detail || b.title || b.code || "request failed", a.status);
  }

  async logout(o) {
    this.drive(LOGOUT, !!(o && o.everywhere));
    await this.settle();
    await this.revoke;
    await this.wiping;
  }

  // Bearer added; on 401 one refresh (through the engine) and one retry, never more.
  async fetch(input, init) {
    const base = new Request(input, init);
    const send = (t) => {
      const r = base.clone();
      if (t) r.headers.set("Authorization", "Bearer " + t);
      return fetch(r);
    };
    const t = this.c.token();
    const res = await send(t);
    if (!t || res.status !== 401) return res;
    this.drive(ACCESS_REJECTED, t); // names the token the 401 refused
    for (const end = Date.now() + 30000; ; await this.next(1000)) {
      const n = this.c.token();
      if (n !== t) return n ? send(n) : res;
      // The 401 forced no refresh (an older token, or one a forced refresh just produced).
      if (this.dead || !this.c.refreshing() || Date.now() >= end) return res;
    }
  }

  on(name, cb) {
    const h = (d) => cb(d);
    (this.ls[name] || (this.ls[name] = new Set())).add(h);
    return () => this.ls[name].delete(h);
  }

  stayActive() {
    this.drive(STAY);
  }

  dispose() {
    this.dead = true;
    clearTimeout(this.timer);
    if (this.lock) this.lock();
    if (this.bc) this.bc.close();
    if (this.tracker) this.tracker.stop();
    this.off.forEach((f) => f());
    this.off = [];
    this.ls = {};
    this.wake();
  }

  free() {
    this.dispose();
  }
}

// The browser-session-lifetime vault key: a cookie without Expires (the browser drops it at
// the end of the browsing session), never stored beside the records it seals.
function sessionKey(create) {
  const m = document.cookie.match(/(?:^|;\s*)tessera_vk=([A-Za-z0-9_-]{43})/);
  if (m) return unb64(m[1]);
  if (!create) return null;
  const k = crypto.getRandomValues(new Uint8Array(32));
  document.cookie = KEY_COOKIE + "=" + b64(k) + "; Path=/; SameSite=Strict" + (location.protocol === "https:" ? "; Secure" : "");
  return k;
}

// ---- activity -------------------------------------------------------------------------
// Idle hot path. Passive listeners that only store the latest event time and call into
// Wasm at most once per throttle window. The per-event cost is one store and one compare.
const KINDS = ["pointermove", "mousemove", "pointerdown", "keydown", "wheel", "touchstart", "scroll", "visibilitychange"];
const OPTS = { passive: true, capture: true };

class ActivityTracker {
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

// ---- locks ----------------------------------------------------------------------------
// navigator.locks binding (web-sys exposes LockManager only behind unstable APIs).
// lockRequest(name, waitMs, steal, cb): cb(1) when granted, cb(0) when the bounded wait ran
// out or the request failed, cb(2) when a held lock was stolen by another tab. Returns a
// function that releases the lock (or cancels the pending request); null without Web Locks.
export function hasLocks() {
  return !!(globalThis.navigator && navigator.locks && navigator.locks.request);
}

function lockRequest(name, waitMs, steal, cb) {
  if (!hasLocks()) return null;
  let release, done = false, granted = false, timer = 0;
  const held = new Promise((r) => { release = r; });
  const opts = {};
  let ac = null;
  if (steal) opts.steal = true;
  else {
    ac = new AbortController();
    opts.signal = ac.signal;
    timer = setTimeout(() => ac.abort(), waitMs);
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

// ---- cleanup --------------------------------------------------------------------------
// Asynchronous wipes: IndexedDB databases and Cache Storage entries, named or all.
// Each resolves to the list of names it deleted and never rejects.
async function wipeIndexedDb(names) {
  const idb = globalThis.indexedDB;
  if (!idb) return [];
  if (names === true) {
    try { names = (await idb.databases()).map((d) => d.name); } catch (_) { return []; }
  }
  const out = [];
  for (const name of names) {
    const ok = await new Promise((res) => {
      try {
        const r = idb.deleteDatabase(name);
        r.onsuccess = () => res(true);
        r.onerror = () => res(false);
        r.onblocked = () => res(true); // deletion is queued; it completes when other connections close
      } catch (_) { res(false); }
    });
    if (ok) out.push(name);
  }
  return out;
}

async function wipeCaches(names) {
  const cs = globalThis.caches;
  if (!cs) return [];
  try {
    if (names === true) names = await cs.keys();
    const out = [];
    for (const name of names) if (await cs.delete(name)) out.push(name);
    return out;
  } catch (_) { return []; }
}

// Clears a web storage: everything but `keep` (`all`) or only the given SDK keys. Returns
// "all" or the number of keys removed; 0 when the store is unavailable.
function wipeStorage(name, all, keys, keep) {
  try {
    const s = globalThis[name];
    if (all) {
      for (const k of Object.keys(s)) if (k !== keep) s.removeItem(k);
      return "all";
    }
    let n = 0;
    for (const k of keys || []) if (s.getItem(k) !== null) s.removeItem(k), n++;
    return n;
  } catch (_) {
    return 0;
  }
}

// Every `path` a cookie visible at `pathname` could have been set with.
function cookiePaths(pathname) {
  const out = ["/"];
  let acc = "";
  for (const seg of pathname.split("/").filter(Boolean)) out.push((acc += "/" + seg), acc + "/");
  return out;
}

// Every `domain` attribute a cookie visible on `host` could carry: none (host-only) and each
// dotted suffix of the host name (with and without the leading dot). IPs only have themselves.
function cookieDomains(host) {
  const out = [""];
  if (!host) return out;
  if (/^[\d.]+$/.test(host) || host.includes(":")) return out.concat(host);
  for (let h = host; ; h = h.slice(h.indexOf(".") + 1)) {
    out.push(h, "." + h);
    if (!h.includes(".")) return out;
  }
}

// Expires every cookie visible to `doc` on every path prefix × domain suffix of `loc`.
// Returns the names found. (HttpOnly cookies are invisible here; the server expires those.)
export function wipeCookies(doc, loc) {
  const names = [];
  const paths = cookiePaths(loc.pathname), domains = cookieDomains(loc.hostname);
  for (const pair of doc.cookie.split(";")) {
    if (!pair.trim()) continue;
    const name = pair.split("=")[0].trim();
    names.push(name);
    // Prefixed cookies may only be written with Secure (harmless on secure origins).
    const secure = /^__(Secure|Host)-/.test(name) ? "; Secure" : "";
    for (const p of paths)
      for (const d of domains)
        doc.cookie = name + "=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=" + p +
          (d ? "; Domain=" + d : "") + secure;
  }
  return names;
}

// ---- crypto ---------------------------------------------------------------------------
// The vault record, version 1, exactly as src/vault.rs defines it (the reference, with the
// native seal/open; the browser test `webcrypto_and_native_records_interoperate` checks that
// both agree): base64url, no padding, of `1 ‖ nonce (12) ‖ ciphertext ‖ tag (16)`, sealed
// with associated data `"tessera-vault" ‖ 1 ‖ len16(origin) ‖ origin ‖ len16(name) ‖ name`.
// Framing lives here, next to WebCrypto, because every call into Wasm with bytes or text
// costs marshalling code in the module and glue.

// base64url without padding.
function b64(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// Strict base64url (trailing `=` tolerated, like vault.rs): the bytes, or null.
function unb64(text) {
  const t = String(text).replace(/=+$/, "");
  if (/[^\w-]/.test(t) || t.length % 4 === 1) return null;
  return Uint8Array.from(atob(t.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
}

// The associated data binding a record to its origin, storage key name and version.
function aad(origin, name) {
  const out = [...new TextEncoder().encode("tessera-vault"), 1];
  for (const s of [origin, name]) {
    const b = new TextEncoder().encode(s);
    const n = Math.min(b.length, 65535);
    out.push(n >> 8, n & 255, ...b);
  }
  return Uint8Array.from(out);
}

// A record's framing: `[nonce, ciphertext ‖ tag]`, or the error code.
function parse(record) {
  const b = unb64(record);
  if (!b) return "vault_encoding";
  if (b.length && b[0] !== 1) return "vault_version";
  if (b.length < 29) return "vault_truncated";
  return [b.subarray(1, 13), b.subarray(13)];
}

// AES-256-GCM through WebCrypto (native code: no cipher in the Wasm module). WebCrypto's
// output layout (ciphertext ‖ 128-bit tag) is the aes-gcm crate's, so records interoperate.
async function gcm(encrypt, key, iv, aad, data) {
  const s = crypto.subtle;
  const op = encrypt ? "encrypt" : "decrypt";
  const k = await s.importKey("raw", key, "AES-GCM", false, [op]);
  return new Uint8Array(await s[op]({ name: "AES-GCM", iv, additionalData: aad, tagLength: 128 }, k, data));
}
