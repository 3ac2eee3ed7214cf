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

const KEY_COOKIE = "tessera_vk";
// Indexed by `Core::state` (mod.rs).
const STATES = ["anonymous", "mfa-required", "active", "idle-warning", "logged-out"];

// An error's `code` is the contract; its message defaults to the code in words.
const words = (code) => String(code).replace(/_/g, " ");
const error = (code, message, status) => Object.assign(new Error(message || words(code)), { code, status });
const tokensOk = (b) => b && typeof b.access_token === "string" && b.expires_in >= 0;
const gone = (s) => s === 401 || s === 403;
// A 401 means "this bearer is no good" unless a challenge says otherwise (RFC 6750 §3.1).
const bearerRejected = (r) => {
  const w = r.headers.get("WWW-Authenticate");
  return !w || /error="?invalid_token/i.test(w);
};
const DISPOSE = Symbol.dispose || Symbol.for("Symbol.dispose");

// `Session.start` (in Rust, which creates the engine `core`) resolves to the driver itself:
// its public methods below are the session's API. Outside a browser page it rejects before
// anything is opened (no channel, listener or lock).
// `Session.start` with invalid options (mod.rs): a rejection carrying the code, the message
// naming the option.
export const reject = (option, problem) => Promise.reject(error("invalid_options", option + ": " + problem));

export function start(core, o) {
  o = o && typeof o === "object" ? o : {};
  let d;
  try {
    if (typeof window !== "object" || typeof document !== "object" || typeof location !== "object")
      throw error("unsupported_environment");
    d = new Driver(core, o);
  } catch (e) {
    core.free();
    return Promise.reject(e);
  }
  return d.init(o).then(() => d);
}

class Driver {
  // Secrets and the engine (which holds the tokens) are private: no script reaches them
  // through the session object.
  #c; // the engine
  #key; // the vault key in use: { kid, k, server }
  #sid; // the server's id of the session whose token this tab obtained
  #kid; // the key id of the restored record's session
  #mfa;
  #user;
  #exp;
  #gen = 0; // bumped by every wipe: a seal or key fetch started before it is dropped
  #seals = 0;
  #lid = 0; // the engine's id for the login request about to go out
  #own; // set while the engine handles this tab's own login / refresh / restore
  #held; // the tab lock: its release, once granted
  #revokes = 0;
  #paying; // the owed revoke in flight
  #origins; // apiOrigins
  #rk; // the owed-revoke key
  #lt; // login timeout
  #retry; // what to retry when the vault key is back
  #tries = 0;
  #seen; // the shared record at the last nudge
  #sealing;
  #warned;
  #base; #ch; #tokenMode; #kind; #plan; #t; #tk; #sk; #bk; #ls; #early; #waiters; #dead; #seq; #timer; #at; #store; #lock; #cleared; #remaining; #off; #bc; #wiping; #revoke; #tracker; // internal state (private: minified to short names)

  constructor(core, o) {
    this.#c = core;
    this.#base = String(o.baseUrl ?? "/auth").replace(/\/+$/, "");
    const ch = (this.#ch = String(o.channel ?? "tessera"));
    this.#tokenMode = o.mode === "token";
    this.#kind = o.storage === "local" || o.storage === "session" ? o.storage : null;
    this.#plan = o.cleanup || {};
    const ms = (v, d) => (v > 0 ? +v : d);
    this.#t = ms(o.requestTimeoutMs, 5000);
    this.#lt = ms(o.loginTimeoutMs, 30000);
    // Origins that get the bearer (default: the page's and baseUrl's).
    const url = (u) => new URL(u, location.href).origin;
    try {
      this.#origins = new Set(Array.isArray(o.apiOrigins) ? o.apiOrigins.map(url) : [location.origin, url(this.#base)]);
    } catch (_) {
      throw error("invalid_options", "apiOrigins");
    }
    this.#tk = "tessera:token:" + ch;
    this.#sk = "tessera:shared:" + ch;
    this.#bk = "tessera:bus:" + ch;
    this.#rk = "tessera:revoke:" + ch;
    this.#ls = {};
    this.#early = [];
    this.startEvents = [];
    this.#waiters = [];
    this.#dead = false;
    this.#seq = this.#timer = 0;
    this.#at = -1;
    this.#store = this.#lock = this.#cleared = this.#remaining = null;
    this.#off = [];
  }

  async init(o) {
    const solo = this.#alone(o);
    if (this.#kind) {
      try {
        const s = globalThis[this.#kind + "Storage"];
        s.setItem("tessera:probe", "1");
        s.removeItem("tessera:probe");
        this.#store = s;
      } catch (e) {
        this.#storageFailed(e);
      }
    }
    this.#feedShared();
    this.#install(o);
    // The initial online state is an input: a tab that starts offline does not churn retries.
    this.#drive(ONLINE, navigator.onLine !== false);
    await this.#settleRevoke();
    // A persisted record that fails to open was wiped: the user signs in again rather than
    // being resumed silently from the refresh cookie (issue 6). One whose key is only
    // unavailable for now is kept: the tab resumes from the cookie or the other tabs.
    const intact = this.#kind ? (await this.#restore()) !== false : true;
    if (o.resume !== false && intact && !this.#signedIn()) {
      const sent = this.#c.stats()[2], revokes = this.#revokes;
      // Alone, the engine skips the join wait: no other tab could answer.
      this.#drive(RESUME, await solo);
      // Settle before resolving: until the resume is decided (another tab's token, or the
      // refresh's answer or retryable failure), at most 30 s.
      for (const end = Date.now() + 30000; !this.#dead && this.#c.pending() && Date.now() < end; ) await this.#next(100);
      // The engine declines to resume after a logout. When that logout reached the server
      // (no revoke is owed), a cookie present now belongs to a session created since (a
      // server-rendered login, an SSO redirect): adopt it like a login.
      if (!this.#dead && !this.#signedIn() && this.#c.stats()[2] === sent && this.#revokes === revokes) await this.#adoptCookie();
    }
    await solo; // this tab's lock is requested: other tabs starting now see it alive
    // Events raised while starting reach listeners added right after `await start()`.
    const early = this.#early;
    this.#early = null;
    this.startEvents = Object.freeze(early.map((x) => x[1]));
    if (early.length) setTimeout(() => early.forEach(([n, d]) => this.#emit(n, d)), 0);
  }

  async #adoptCookie() {
    if (this.#tokenMode || navigator.onLine === false || this.#owed()) return;
    const id = this.#loginId();
    const a = await this.#post("/refresh", null, null, this.#t).catch(() => ({}));
    if (a.status === 200 && tokensOk(a.body) && !this.#signedIn()) this.#loggedIn(a.body, id);
    else this.#drive(LOGIN_FAILED, 0, id);
  }

  // Tells the engine a login request (a login, an MFA code, a cookie adoption) goes out now:
  // it dates the session and the token expiry from the send time and answers with the
  // request's id (the "login" effect), which the answer carries back.
  #loginId() {
    this.#drive(LOGIN_STARTED);
    return this.#lid;
  }

  // Every live tab holds the shared Web Lock `tessera:tab:<channel>` while it is shown
  // (released on dispose and `pagehide`, taken again on `pageshow`). Resolves to true when no
  // other tab held it: this one is alone. Without Web Locks (or with `webLocks: false`): false.
  async #alone(o) {
    let q;
    try {
      if (!hasLocks()) return false;
      q = await navigator.locks.query();
      await this.#hold();
    } catch (_) {}
    const n = "tessera:tab:" + this.#ch;
    return !!q && o.webLocks !== false && !q.held.concat(q.pending).some((l) => l.name === n);
  }

  #hold() {
    if (!hasLocks() || this.#held || this.#dead) return;
    const me = (this.#held = {});
    return new Promise((ok) => {
      navigator.locks
        .request("tessera:tab:" + this.#ch, { mode: "shared" }, () => {
          ok();
          // Let go at once if the page was hidden (or disposed) before the grant.
          if (this.#held === me) return new Promise((r) => (me.r = r));
        })
        .catch(ok);
    });
  }

  #unhold() {
    const h = this.#held;
    this.#held = null;
    if (h && h.r) h.r();
  }

  #install(o) {
    const listen = (t, k, f) => {
      t.addEventListener(k, f, { passive: true });
      this.#off.push(() => t.removeEventListener(k, f, { passive: true }));
    };
    if (typeof BroadcastChannel === "function") {
      this.#bc = new BroadcastChannel(this.#ch);
      this.#bc.onmessage = (e) => this.#onBus(e.data);
    } else this.#fail("bus_unavailable");
    listen(window, "storage", (e) => {
      if (e.key === this.#sk || e.key === null) {
        this.#feedShared();
        this.#pump();
      } else if (!this.#bc && (e.key === this.#bk || e.key === this.#tk) && e.newValue) this.#nudged();
    });
    listen(window, "online", () => {
      this.#drive(ONLINE, true);
      this.#settleRevoke();
      if (this.#retry) this.#retry();
    });
    listen(window, "offline", () => this.#drive(ONLINE, false));
    const wake = () => {
      this.#feedShared();
      this.#drive(VISIBLE, true);
    };
    listen(window, "focus", wake);
    // The back/forward cache keeps no page that holds a Web Lock: let go on the way out,
    // take the tab lock again when the page comes back.
    listen(window, "pagehide", () => {
      this.#unhold();
      if (this.#lock) {
        this.#lock();
        this.#lock = null;
        this.#drive(LOCK_LOST);
      }
    });
    listen(window, "pageshow", (e) => {
      if (e.persisted) this.#hold();
      wake();
    });
    listen(document, "visibilitychange", () => (document.hidden ? this.#drive(VISIBLE, false) : wake()));
    // Activity crosses into Wasm at most once per sample window (≤ 1 s).
    const sample = Math.max(16, Math.min(1000, Number(o.activityThrottleMs) || 1000));
    this.#tracker = new ActivityTracker(sample, o.scrollActivity === true, () => this.#drive(ACTIVITY));
  }

  #onBus(data) {
    // Untrusted: anything but text is handed over as an empty (undecodable) message.
    this.#drive(BUS, (typeof data === "string" && unb64(data)) || new Uint8Array());
  }

  // The storage-event fallback carries no payload, only "something changed": catch up from
  // the shared record, the sealed vault record, or (not signed in) the server's cookie.
  #nudged() {
    const s = this.#feedShared();
    this.#pump();
    if (this.#signedIn()) return;
    if (this.#store) this.#restore();
    // Once per change of the shared record: two tabs without a session never ping-pong.
    else if (s !== this.#seen) (this.#seen = s), this.#drive(RESUME, true);
  }

  #post(path, body, bearer, ms) {
    const headers = { "X-Tessera-CSRF": "1" };
    if (body) headers["Content-Type"] = "application/json";
    if (bearer) headers.Authorization = "Bearer " + bearer;
    const init = { method: "POST", credentials: "include", headers, body: body ? JSON.stringify(body) : undefined };
    if (AbortSignal.timeout) init.signal = AbortSignal.timeout(ms);
    return fetch(this.#base + path, init).then(async (r) => {
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
  #drive(kind, arg, id) {
    if (this.#dead) return;
    // Bytes (bus message, token record, shared record) cross as bytes, anything else as a value.
    this.#c.handle(kind, id || 0, arg, arg instanceof Uint8Array ? arg : null);
    this.#pump();
  }

  #pump() {
    for (let e; !this.#dead && (e = this.#c.poll()); ) this.#perform(e);
    this.#rearm();
  }

  #rearm() {
    if (this.#dead) return;
    const t = this.#c.deadline();
    if (t === this.#at) return;
    clearTimeout(this.#timer);
    this.#at = t;
    if (t >= 0)
      this.#timer = setTimeout(() => {
        this.#at = -1;
        this.#feedShared();
        this.#drive(TIMER);
      }, Math.min(Math.max(0, t - Date.now()), 2147483647));
  }

  #feedShared() {
    let v;
    try {
      v = localStorage.getItem(this.#sk);
    } catch (e) {
      if (!this.#kind) this.#storageFailed(e);
      return; // storage broken: nothing to read (never report "absent")
    }
    // Absent: null; garbage: a byte the engine rejects (and counts).
    if (!this.#dead) this.#c.handle(SHARED, 0, null, v === null ? null : unb64(v) || Uint8Array.of(0));
    return v;
  }

  // e: [kind, id, n, flag, s, t, bytes] (`fx`); per kind: refresh (id, s: refresh token),
  // logout (id, flag: everywhere, s: bearer, t: refresh token), lock (id, n: wait, flag:
  // steal), broadcast / shared / store (bytes), emit (s: name, n: time, t: text), login (id).
  #perform(e) {
    switch (e[0]) { // the effect kinds of `Core::poll` (mod.rs)
      case 0: { // refresh
        const id = e[1];
        const body = this.#tokenMode ? { mode: "token", refresh_token: e[4] } : null;
        this.#post("/refresh", body, null, this.#t)
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
            // The answer names the session its token belongs to (a resume may begin one).
            if ((this.#own = k === REFRESH_OK)) this.#answered(v);
            this.#drive(k, v, id);
            this.#own = false;
            this.#wake();
          });
        break;
      }
      case 1: { // logout
        // Server revoke, bounded. The other tabs already know (the engine persisted and
        // broadcast the logout first) and the request carries its credentials, so the wipe
        // goes on at once; only `logout()` and a next sign-in wait for the answer. One that
        // does not arrive (offline, 5xx) is owed: retried with the cookie when back online.
        this.#revokes++;
        const id = e[1], all = e[3];
        const body = e[5] ? { refresh_token: e[5] } : null;
        // Its Clear-Site-Data may have erased the shared record: the engine writes it back.
        this.#revoke = this.#post(all ? "/logout-all" : "/logout", body, e[4], 5000)
          .then((a) => a.status < 500 && a.status !== 429, () => false)
          .then((ok) => {
            if (!ok && !this.#tokenMode) lset(this.#rk, all ? "all" : "one");
            this.#feedShared();
            this.#drive(LOGOUT_DONE, 0, id);
          });
        break;
      }
      case 2: { // lock
        const id = e[1];
        if (this.#lock) this.#lock();
        this.#lock = lockRequest("tessera:refresh:" + this.#ch, e[2], e[3], (code) => {
          if (code === 1) {
            this.#feedShared();
            this.#drive(LOCK_GRANTED, 0, id);
          } else {
            this.#lock = null;
            this.#drive(code === 2 ? LOCK_LOST : LOCK_UNAVAILABLE, 0, id);
          }
        });
        if (!this.#lock) this.#drive(LOCK_UNAVAILABLE, 0, id);
        break;
      }
      case 3: // unlock
        if (this.#lock) this.#lock();
        this.#lock = null;
        break;
      case 4: // broadcast
        if (this.#bc) this.#bc.postMessage(b64(e[6]));
        // Without BroadcastChannel: a bare nudge, never the message (it may carry a token).
        else lset(this.#bk, ++this.#seq + "|" + Date.now()) && lset(this.#bk);
        break;
      case 5: // shared
        try {
          const s = localStorage.getItem(this.#sk);
          localStorage.setItem(this.#sk, b64(this.#c.merge(s === null ? null : unb64(s), e[6])));
        } catch (_) {}
        break;
      case 6: // store
        // Never pauses the effects behind it: a logout right after goes out at once, and the
        // wipe's generation drops this seal if it finishes later.
        if (this.#store) this.#sealing = this.#seal(e[6]);
        break;
      case 7: // wipe
        this.#gen++;
        this.#key = this.#sid = this.#kid = this.#retry = null;
    this.#tries = 0;
        // Web storage copies go in the cleanup (and are counted).
        this.#mfa = this.#user = this.#exp = null;
        this.#cleanup();
        break;
      case 8: // emit
        this.#emitEngine(e[4], e[2], e[5]);
        break;
      case 9: // login: the id of the login request about to go out (`#loginId`)
        this.#lid = e[1];
        break;
    }
  }

  // The server's answer that produced this tab's token names the session.
  #answered(b) {
    const s = b && b.session;
    if (s && typeof s.id === "string") this.#sid = s.id;
    if (s && typeof s.user === "string") this.#user = s.user;
  }

  #loggedIn(b, id) {
    this.#mfa = null;
    this.#key = this.#sid = this.#kid = null; // a new session: never the previous one's key
    this.#user = null;
    this.#answered(b);
    this.#own = true;
    this.#drive(LOGIN_OK, b, id);
    this.#own = false;
  }

  // n: the event's time (deadline, expiry); v: its text (reason, code, user).
  #emitEngine(name, n, v) {
    const d = {};
    if (name === "idle-warning") {
      d.deadline = n;
      d.remainingMs = Math.max(0, n - Date.now());
    } else if (name === "logout") {
      d.reason = v;
      d.cleared = this.#cleared;
      d.remaining = this.#remaining;
      this.#cleared = this.#remaining = null;
    } else if (name === "error") {
      d.code = v;
      d.message = words(v);
      if (v === "record_invalid") this.#sdel(this.#tk);
    } else if (name === "refresh" || name === "login") {
      d.expiresAt = this.#exp = n;
      // Another tab's session adopted: its key is not ours to reuse.
      if (name === "login") {
        if (!this.#own) this.#key = this.#sid = this.#kid = this.#user = null;
        d.user = this.#user = v ?? this.#user ?? null;
      }
    }
    this.#emit(name, d);
    this.#wake();
  }

  #emit(name, d) {
    d.type = name;
    if (this.#early) return void this.#early.push([name, d]);
    for (const f of [...(this.#ls[name] || [])])
      try {
        const r = f(d);
        if (r && typeof r.then === "function") r.then(null, reportError);
      } catch (x) {
        reportError(x); // a throwing listener must not break the session, nor vanish
      }
  }

  #wake() {
    const w = this.#waiters;
    this.#waiters = [];
    w.forEach((f) => f());
  }

  #next(ms) {
    return new Promise((r) => {
      this.#waiters.push(r);
      setTimeout(r, ms);
    });
  }

  #signedIn() {
    if (this.#dead) return false;
    const s = this.#c.state();
    return s === 2 || s === 3; // active, idle-warning
  }

  // ---- storage ----------------------------------------------------------------------------

  #storageFailed(e) {
    this.#store = null;
    if (this.#warned) return;
    this.#warned = true;
    this.#emit("error", {
      code: "storage_unavailable",
      message: "storage failed, memory used: " + ((e && e.message) || e),
    });
  }

  // The vault's storage; nothing is kept once it failed (the engine holds the token).
  #sget(k) {
    try {
      return this.#store ? this.#store.getItem(k) : null;
    } catch (e) {
      this.#storageFailed(e);
    }
  }

  #sset(k, v) {
    try {
      if (this.#store) this.#store.setItem(k, v);
    } catch (e) {
      this.#sdel(k);
      this.#storageFailed(e);
    }
  }

  #sdel(k) {
    try {
      if (this.#store) this.#store.removeItem(k);
    } catch (_) {}
  }

  // ---- offline logout: the owed revoke ------------------------------------------------------

  #owed() {
    try {
      return localStorage.getItem(this.#rk);
    } catch (_) {
      return null;
    }
  }

  // Sends a revoke that an offline logout could not (cookie mode: the cookie identifies the
  // session). Never while signed in: the cookie then belongs to a newer session.
  #settleRevoke() {
    const v = this.#owed();
    if (!v || this.#dead) return;
    if (this.#signedIn()) return void lset(this.#rk);
    return (this.#paying ||= this.#post(v === "all" ? "/logout-all" : "/logout", null, null, this.#t)
      .then((a) => a.status < 500 && a.status !== 429 && lset(this.#rk), () => {})
      .then(() => (this.#paying = null)));
  }

  // ---- the vault ---------------------------------------------------------------------------
  // A record is `<s|c>.<kid>.<sealed>`: `s` sealed with the server's per-session key (cookie
  // mode), `c` with the browser-session key (token mode). `kid` names the session (its id)
  // and is part of the associated data: a record opens only with its own session's key.

  // The key for session `kid`: "gone" (the server refused: revoked, expired), "unavailable"
  // (5xx, 429, network, timeout: try again later), or `{kid, k, server}`.
  async #obtainKey(kid, create) {
    const c = this.#key;
    if (c && c.kid === kid) return c;
    const gen = this.#gen;
    let k;
    if (!this.#tokenMode) {
      const a = await this.#post("/vault-key", null, null, this.#t).catch(() => ({}));
      if (gone(a.status)) return "gone";
      k = a.status === 200 && a.body && typeof a.body.key === "string" && unb64(a.body.key);
      if (!k || k.length !== 32) return "unavailable";
    } else if (!(k = sessionKey(create))) return "gone";
    const v = { kid, k, server: !this.#tokenMode };
    if (gen === this.#gen) this.#key = v;
    return v;
  }

  async #seal(bytes) {
    const gen = this.#gen, n = ++this.#seals;
    const kid = kidOf(this.#sid) || this.#kid || "-";
    const k = await this.#obtainKey(kid, true);
    const stale = () => gen !== this.#gen || n !== this.#seals; // a wipe or a newer seal won
    if (stale() || k === "gone") return;
    // Retried later and when back online; a newer seal or a wipe cancels it.
    if (k === "unavailable") return this.#unavailable(() => stale() || (this.#sealing = this.#seal(bytes)));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    let body;
    try {
      body = await gcm(true, k.k, iv, aad(location.origin, this.#tk + "." + kid), bytes);
    } catch (_) {
      return this.#fail("vault_unavailable", false);
    }
    if (!stale()) this.#sset(this.#tk, (k.server ? "s." : "c.") + kid + "." + b64(Uint8Array.of(1, ...iv, ...body)));
    this.#tries = 0;
  }

  // The vault key is unavailable for now: reported once per outage, `f` retried with backoff
  // (5 s doubling, at most 5 min) and at once when the browser comes back online.
  #unavailable(f) {
    if (!this.#tries++) this.#fail("vault_unavailable", false);
    this.#retry = () => {
      this.#retry = null;
      f();
    };
    this.#later(() => this.#retry && this.#retry(), Math.min(3e5, 5000 * 2 ** this.#tries));
  }

  #later(f, ms) {
    const t = setTimeout(() => this.#dead || f(), ms);
    this.#off.push(() => clearTimeout(t));
  }

  #fail(code, wipe) {
    if (wipe) this.#sdel(this.#tk);
    this.#emit("error", { code, message: words(code) });
    return false;
  }

  // A persisted record is restored only if it opens; anything else is wiped and reported,
  // except a key that is only unavailable for now: the record stays, the restore is retried.
  async #restore() {
    const rec = this.#sget(this.#tk);
    if (!rec) return;
    const m = /^([sc])\.([\w-]{1,43})\.(.*)$/s.exec(rec);
    if (!m) return this.#fail("vault_encoding", true);
    const [, kind, kid, sealed] = m;
    const parts = parse(sealed);
    if (typeof parts === "string") return this.#fail(parts, true);
    // Only the server's key opens a server-sealed record; only this browser session's key a
    // locally sealed one.
    const k = (kind === "s") === this.#tokenMode ? "gone" : await this.#obtainKey(kid, false);
    if (k === "gone") return this.#fail("vault_locked", true);
    if (k === "unavailable") return void this.#unavailable(() => this.#signedIn() || this.#restore());
    let plain;
    try {
      plain = await gcm(false, k.k, parts[0], aad(location.origin, this.#tk + "." + kid), parts[1]);
    } catch (_) {
      this.#key = null;
      return this.#fail("vault_tampered", true);
    }
    if (this.#dead || this.#sget(this.#tk) !== rec) return; // rewritten meanwhile: that one wins
    this.#own = true;
    this.#drive(RESTORE, plain);
    this.#own = false;
    if (this.#signedIn()) this.#kid = kid;
    // The record belonged to a session that ended while no tab was open: the engine wiped
    // it. Say so, with what was cleared.
    if (this.#cleared) this.#emitEngine("logout", 0, "expired");
  }

  // ---- logout cleanup ----------------------------------------------------------------------

  // Synchronous, so the `logout` event follows at once: tokens, web storage and cookies are
  // gone when it fires. IndexedDB, Cache Storage and service worker removals only start here;
  // their lists (and `remaining`) fill in as they finish (`logout()` resolves after them).
  // Everything listed as cleared was checked to be gone; `remaining` says what is not and why.
  #cleanup() {
    const p = this.#plan;
    const left = (this.#remaining = []);
    // The shared record (the logout epoch) is never removed, so never written back: a copy
    // written back could be older than what another tab stored meanwhile.
    const out = (this.#cleared = {
      memory: true,
      localStorage: wipeStorage("localStorage", p.localStorage, [this.#tk, this.#bk], [this.#sk, this.#rk], left),
      sessionStorage: wipeStorage("sessionStorage", p.sessionStorage, [this.#tk], [], left),
    });
    out.cookies = p.cookies ? wipeCookies(document, location, left) : [];
    const which = (x) => (x === true || Array.isArray(x) ? x : null);
    const later = (x, f, into) => which(x) && f(x, left).then((n) => into.push(...n));
    this.#wiping = Promise.all([
      later(p.indexedDB, wipeIndexedDb, (out.indexedDB = [])),
      later(p.caches, wipeCaches, (out.caches = [])),
      later(p.serviceWorkers === true, wipeWorkers, (out.serviceWorkers = [])),
    ]);
  }

  // ---- the public methods (the `Session` API, see types.rs) -------------------------------

  get state() {
    return this.#dead || STATES[this.#c.state()];
  }

  get user() {
    return this.#signedIn() ? this.#user : null;
  }

  get expiresAt() {
    return this.#signedIn() ? this.#exp : null;
  }

  get idleDeadline() {
    const t = this.#signedIn() ? this.#c.stats()[3] : -1;
    return t >= 0 ? t : null;
  }

  get stats() {
    const s = this.#dead ? [0, 0, 0] : this.#c.stats();
    return { busMalformed: s[0], sharedMalformed: s[1], refreshSent: s[2], persistent: !!this.#store };
  }

  login(c) {
    return this.#auth("/login", { username: c && c.username, password: c && c.password });
  }

  verifyMfa(code) {
    if (!this.#mfa) return Promise.reject(error("mfa_not_pending"));
    return this.#auth("/mfa", { mfa_token: this.#mfa, code: String(code) });
  }

  #alive() {
    if (this.#dead) throw error("disposed");
  }

  async #auth(path, body) {
    this.#alive();
    await this.#revoke; // a pending revoke's expired cookie must not land on the new session
    await this.#settleRevoke(); // an owed one goes out before the cookie is replaced
    lset(this.#rk);
    if (this.#tokenMode) body.mode = "token";
    let a;
    const id = this.#loginId();
    try {
      a = await this.#post(path, body, null, this.#lt);
    } catch (e) {
      throw e && e.name === "TimeoutError"
        ? error("timeout")
        : error("network");
    }
    this.#alive();
    const b = a.body || {};
    if (a.status === 200) {
      if (b.mfa_required === true) {
        this.#mfa = b.mfa_token;
        this.#drive(MFA, 0, id);
      } else if (tokensOk(b)) this.#loggedIn(b, id);
      else throw error("invalid_response", 0, 200);
      await this.#sealing;
      return this.state;
    }
    if (b.code === "mfa_expired") {
      this.#mfa = null;
      this.#drive(LOGIN_FAILED, 0, id);
    }
    throw error(b.code || "http_error", b.detail || b.title, a.status);
  }

  async logout(o) {
    this.#alive();
    this.#drive(LOGOUT, !!(o && o.everywhere));
    await this.#revoke;
    await this.#wiping;
  }

  // Bearer only to `apiOrigins`; on a 401 from there (an invalid token, not another
  // challenge) one refresh through the engine and one retry, never more.
  async fetch(input, init) {
    this.#alive();
    const base = new Request(input, init);
    const send = (t) => {
      const r = base.clone();
      if (t) r.headers.set("Authorization", "Bearer " + t);
      return fetch(r);
    };
    const t = this.#origins.has(new URL(base.url).origin) ? this.#c.token() : undefined;
    const res = await send(t);
    if (!t || res.status !== 401 || !bearerRejected(res) || this.#dead) return res;
    this.#drive(ACCESS_REJECTED, t); // names the token the 401 refused
    for (const end = Date.now() + 30000; ; await this.#next(1000)) {
      this.#alive();
      const n = this.#c.token();
      if (n !== t) return n ? send(n) : res;
      // The 401 forced no refresh (an older token, or one a forced refresh just produced).
      if (!this.#c.refreshing() || Date.now() >= end) return res;
    }
  }

  on(name, cb) {
    const h = (d) => cb(d);
    (this.#ls[name] || (this.#ls[name] = new Set())).add(h);
    return () => this.#ls[name] && this.#ls[name].delete(h);
  }

  stayActive() {
    this.#drive(STAY);
  }

  // Frees the engine and releases every listener, timer, lock and channel. Idempotent.
  dispose() {
    if (this.#dead) return;
    this.#dead = this.state; // what `state` reads from now on
    clearTimeout(this.#timer);
    if (this.#lock) this.#lock();
    this.#unhold();
    if (this.#bc) this.#bc.close();
    if (this.#tracker) this.#tracker.stop();
    this.#off.forEach((f) => f());
    this.#off = [];
    this.#ls = {};
    this.#c.free();
    this.#wake();
  }

  free() {
    this.dispose();
  }

  [DISPOSE]() {
    this.dispose();
  }
}

// localStorage set (or remove, without a value), never throwing; true when it worked.
function lset(k, v) {
  try {
    v === undefined ? localStorage.removeItem(k) : localStorage.setItem(k, v);
    return true;
  } catch (_) {
    return false;
  }
}

// The key id of a session: its id, as record-safe characters (the id is no secret: every
// access token carries it as its `sid` claim).
const kidOf = (sid) => sid && String(sid).replace(/[^\w-]/g, "").slice(-43);

// The browser-session-lifetime vault key (token mode): a cookie without Expires (the browser
// drops it at the end of the browsing session), never stored beside the records it seals.
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
// Only trusted user input counts (a script's synthetic events do not keep a session alive);
// `scroll` only when asked for (it also fires for programmatic scrolling and media).
const KINDS = ["pointermove", "pointerdown", "keydown", "wheel", "touchstart"];
const OPTS = { passive: true, capture: true };

class ActivityTracker {
  constructor(windowMs, scroll, onActive) {
    let last = -1e12, sent = -1e12;
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

// ---- locks ----------------------------------------------------------------------------
// navigator.locks binding (web-sys exposes LockManager only behind unstable APIs).
// lockRequest(name, waitMs, steal, cb): cb(1) when granted, cb(0) when the bounded wait ran
// out or the request failed, cb(2) when a held lock was stolen by another tab. Returns a
// function that releases the lock (or cancels the pending request); null without Web Locks.
// One effect of `Core::poll` (mod.rs) as an array; the bytes are copied out of Wasm memory.
export const fx = (k, id, n, f, s, t, b) => [k, id, n, f, s, t, b.slice()];
// `Core::stats` (mod.rs): numbers as an array.
export const list = (...a) => a;

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
// Each wipe returns (or resolves to) what is verifiably gone and pushes what is not onto
// `left` as `{ kind, name, why }`. None throws or rejects.

// IndexedDB databases, named or all. A deletion that other connections block is queued by
// the browser, not done: it is reported in `left` as "blocked", not as deleted.
async function wipeIndexedDb(names, left) {
  const idb = globalThis.indexedDB;
  if (!idb) return [];
  if (names === true) {
    try { names = (await idb.databases()).map((d) => d.name); } catch (_) { return []; }
  }
  const out = [];
  for (const name of names) {
    const r = await new Promise((res) => {
      try {
        const q = idb.deleteDatabase(name);
        q.onsuccess = () => res(0);
        q.onerror = () => res("error");
        q.onblocked = () => res("blocked");
      } catch (_) { res("error"); }
    });
    if (r) left.push({ kind: "indexedDB", name, why: r });
    else out.push(name);
  }
  return out;
}

async function wipeCaches(names, left) {
  const cs = globalThis.caches;
  if (!cs) return [];
  const out = [];
  try {
    if (names === true) names = await cs.keys();
    for (const name of names) if (await cs.delete(name)) out.push(name);
  } catch (_) {
    left.push({ kind: "caches", name: "*", why: "error" });
  }
  return out;
}

// Every service worker registration of this origin, by scope.
async function wipeWorkers(_, left) {
  const out = [];
  try {
    for (const r of await navigator.serviceWorker.getRegistrations())
      if (await r.unregister().catch(() => 0)) out.push(r.scope);
      else left.push({ kind: "serviceWorkers", name: r.scope, why: "error" });
  } catch (_) {}
  return out;
}

// Clears a web storage: everything but `keep` (`all`) or only the given SDK keys. Returns
// "all" or the number of keys removed (re-read: only keys really gone count); 0 when the
// store is unavailable.
function wipeStorage(name, all, keys, keep, left) {
  try {
    const s = globalThis[name];
    const list = all ? Object.keys(s).filter((k) => !keep.includes(k)) : keys.filter((k) => s.getItem(k) !== null);
    for (const k of list) s.removeItem(k);
    const stuck = list.filter((k) => s.getItem(k) !== null);
    for (const k of stuck) left.push({ kind: name, name: k, why: "error" });
    return all && !stuck.length ? "all" : list.length - stuck.length;
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

const cookieNames = (doc) => doc.cookie.split(";").map((p) => p.split("=")[0].trim()).filter(Boolean);

// Expires every cookie visible to `doc` on every path prefix × domain suffix of `loc`, each
// also as a `Secure` and a `Secure; Partitioned` (CHIPS) cookie. Returns the names that are
// gone after re-reading `doc.cookie`; names still visible go to `left`. (HttpOnly cookies are
// invisible here; the server's logout expires those.)
export function wipeCookies(doc, loc, left) {
  const names = [...new Set(cookieNames(doc))];
  const paths = cookiePaths(loc.pathname), domains = cookieDomains(loc.hostname);
  for (const name of names)
    for (const flags of ["", "; Secure", "; Secure; Partitioned"])
      // Prefixed cookies may only be written with Secure.
      if (flags || !/^__(Secure|Host)-/.test(name))
        for (const p of paths)
          for (const d of domains)
            doc.cookie = name + "=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=" + p + (d ? "; Domain=" + d : "") + flags;
  const still = cookieNames(doc);
  for (const name of names)
    if (still.includes(name) && left) left.push({ kind: "cookies", name, why: "unreachable" });
  return names.filter((n) => !still.includes(n));
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
