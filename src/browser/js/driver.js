// The driver: feeds the engine its inputs, drains its effects in order and performs them.

import { RESTORE, RESUME, LOGIN_OK, MFA, LOGIN_FAILED, REFRESH_OK, REFRESH_REJECTED, REFRESH_FAILED, ACCESS_REJECTED, BUS, SHARED, LOCK_GRANTED, LOCK_UNAVAILABLE, LOCK_LOST, TIMER, ACTIVITY, STAY, LOGOUT, VISIBLE, ONLINE, LOGIN_STARTED, LOGOUT_DONE, FX_REFRESH, FX_LOGOUT, FX_LOCK, FX_UNLOCK, FX_BROADCAST, FX_SHARED, FX_STORE, FX_WIPE, FX_EMIT, FX_LOGIN, NUM_DEADLINE, NUM_PENDING, NUM_REFRESHING, NUM_SEEN, NUM_STATE, NUM_BUS_MALFORMED, NUM_SHARED_MALFORMED, NUM_REFRESH_SENT, NUM_IDLE_DEADLINE, STATES, EVENTS, TEXTS } from "./boundary.js";
import { words, error, tokensOk, gone, bearerRejected, offline, post } from "./transport.js";
import { kidOf, sessionKey, b64, unb64, aad, parse, gcm, utf8 } from "./vault.js";
import { KINDS, OPTS, activity } from "./activity.js";
import { hasLocks, lockRequest } from "./locks.js";
import { wipeIndexedDb, wipeCaches, wipeWorkers, wipeStorage, wipeCookies } from "./cleanup.js";

// Typed as the well-known symbol (which it is, where the engine has one) so that the class
// implements `[Symbol.dispose]` of the package's `Session`.
/** @type {typeof Symbol.dispose} */
export const DISPOSE = /** @type {typeof Symbol.dispose} */ (Symbol.dispose || Symbol.for("Symbol.dispose"));

/** @typedef {import("tessera").SessionOptions} SessionOptions */
/** @typedef {import("tessera").SessionEvents} SessionEvents */
/** @typedef {import("./types").SessionEvent} SessionEvent */
/** @typedef {import("./types").EventDraft} EventDraft */
/** @typedef {import("./types").Answer} Answer */
/** @typedef {import("./types").Tokens} Tokens */
/** @typedef {import("./types").Bytes} Bytes */
/** A vault key: the session it seals for, its bytes, whether the server holds it. @typedef {{ kid: string, k: Bytes, server: boolean }} VaultKey */
/** The tab lock: `r` releases it once granted. @typedef {{ r?: (v?: unknown) => void }} Held */

/** @typedef {import("tessera").Session} Session */

/** @implements {Session} */
export class Driver {
  // Secrets and the engine (which holds the tokens) are private: no script reaches them
  // through the session object.
  /** @type {import("./types").Core} */ #c; // the engine
  /** @type {VaultKey | null | undefined} */ #key; // the vault key in use: { kid, k, server }
  /** @type {string | null | undefined} */ #sid; // the server's id of the session whose token this tab obtained
  /** @type {string | null | undefined} */ #kid; // the key id of the restored record's session
  /** @type {string | null | undefined} */ #mfa;
  /** @type {string | null | undefined} */ #user;
  /** @type {number | null | undefined} */ #exp;
  #gen = 0; // bumped by every wipe: a seal or key fetch started before it is dropped
  #seals = 0;
  #lid = 0; // the engine's id for the login request about to go out
  /** @type {boolean | undefined} */ #own; // set while the engine handles this tab's own login / refresh / restore
  /** @type {Held | null | undefined} */ #held; // the tab lock: its release, once granted
  #revokes = 0;
  /** @type {Promise<unknown> | null | undefined} */ #paying; // the owed revoke in flight
  /** @type {Set<string>} */ #origins; // apiOrigins
  /** @type {string} */ #rk; // the owed-revoke key
  /** @type {number} */ #lt; // login timeout
  /** @type {(() => void) | null | undefined} */ #retry; // what to retry when the vault key is back
  #tries = 0;
  #owedTries = 0; // failed sends of the owed revoke in a row
  #ups = 0; // `online` events so far (`#due`)
  /** @type {number | undefined} */ #seen; // the shared record's newest token serial at the last resume on a nudge
  /** @type {Promise<unknown> | undefined} */ #sealing;
  /** @type {boolean | undefined} */ #warned;
  // internal state (private: minified to short names)
  /** @type {string} */ #base;
  /** @type {string} */ #ch;
  /** @type {boolean} */ #tokenMode;
  /** @type {"local" | "session" | null} */ #kind;
  /** @type {import("tessera").CleanupOptions} */ #plan;
  /** @type {number} */ #t;
  /** @type {string} */ #tk;
  /** @type {string} */ #sk;
  /** @type {string} */ #bk;
  /** @type {Record<string, Set<(e: SessionEvent) => void | PromiseLike<unknown>>>} */ #ls;
  /** @type {Array<[keyof SessionEvents, SessionEvent]> | null} */ #early;
  /** @type {Array<() => void>} */ #waiters;
  /** @type {false | import("tessera").SessionState} */ #dead; // after `dispose()`: the state it had then
  /** @type {number} */ #seq;
  /** @type {ReturnType<typeof setTimeout> | number} */ #timer;
  /** @type {number} */ #at;
  /** @type {Storage | null} */ #store;
  /** @type {(() => void) | null} */ #lock;
  /** @type {import("tessera").Cleared | null} */ #cleared;
  /** @type {import("tessera").Remaining[] | null} */ #remaining;
  /** @type {Array<() => void>} */ #off;
  /** @type {BroadcastChannel | undefined} */ #bc;
  /** @type {Promise<unknown> | undefined} */ #wiping;
  /** @type {Promise<unknown> | undefined} */ #revoke;
  /** @type {Promise<import("./dpop.js").Dpop> | false | 0} */ #dp; // `dpop: true`: the DPoP module (dpop.js), loaded at start

  /**
   * @param {import("./types").Core} core
   * @param {SessionOptions} o
   */
  constructor(core, o) {
    this.#c = core;
    this.#base = String(o.baseUrl ?? "/auth").replace(/\/+$/, "");
    const ch = (this.#ch = String(o.channel ?? "tessera"));
    this.#tokenMode = o.mode === "token";
    this.#kind = o.storage === "local" || o.storage === "session" ? o.storage : null;
    this.#plan = o.cleanup || {};
    /** @type {(v: any, d: number) => number} */ // an option as passed (mod.rs checked it)
    const ms = (v, d) => (v > 0 ? +v : d);
    this.#t = ms(o.requestTimeoutMs, 5000);
    this.#lt = ms(o.loginTimeoutMs, 30000);
    // Origins that get the bearer (default: the page's and baseUrl's).
    /** @param {string} u */
    const url = (u) => new URL(u, location.href).origin;
    try {
      this.#origins = new Set(Array.isArray(o.apiOrigins) ? o.apiOrigins.map(url) : [location.origin, url(this.#base)]);
    } catch (_) {
      throw error("invalid_options", "apiOrigins");
    }
    // DPoP (its own file, loaded only when asked for) needs WebCrypto (a secure context) and
    // IndexedDB (the key the tabs share).
    if ((this.#dp = o.dpop === true && (globalThis.crypto?.subtle && globalThis.indexedDB ? import("./dpop.js").then((m) => m.dpop(ch)) : 0)) === 0)
      throw error("dpop_unavailable");
    this.#tk = "tessera:token:" + ch;
    this.#sk = "tessera:shared:" + ch;
    this.#bk = "tessera:bus:" + ch;
    this.#rk = "tessera:revoke:" + ch;
    this.#ls = {};
    this.#early = [];
    /** @type {ReadonlyArray<SessionEvent>} */
    this.startEvents = [];
    this.#waiters = [];
    this.#dead = false;
    this.#seq = this.#timer = 0;
    this.#at = -1;
    this.#store = this.#lock = this.#cleared = this.#remaining = null;
    this.#off = [];
  }

  /** @param {SessionOptions} o */
  async init(o) {
    const solo = this.#alone(o);
    if (this.#kind) {
      try {
        const s = globalThis[/** @type {"localStorage" | "sessionStorage"} */ (this.#kind + "Storage")];
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
    this.#drive(ONLINE, !offline());
    // `dpop.js` (a file of its own) must be there before the first request: without it (a
    // bundler dropped it, a CSP blocks it) no request could carry its proof.
    if (this.#dp) await this.#dp.catch(() => Promise.reject(error("dpop_unavailable")));
    await this.#settleRevoke();
    // A persisted record that fails to open was wiped: the user signs in again rather than
    // being resumed silently from the refresh cookie. One whose key is only
    // unavailable for now is kept: the tab resumes from the cookie or the other tabs.
    const intact = this.#kind ? (await this.#restore()) !== false : true;
    if (o.resume !== false && intact && !this.#signedIn()) {
      const sent = this.#c.num(NUM_REFRESH_SENT), revokes = this.#revokes;
      // Alone, the engine skips the join wait: no other tab could answer.
      this.#drive(RESUME, await solo);
      // Settle before resolving: until the resume is decided (another tab's token, or the
      // refresh's answer or retryable failure), at most 30 s.
      for (const end = Date.now() + 30000; !this.#dead && this.#c.num(NUM_PENDING) && Date.now() < end; ) await this.#next(100);
      // The engine declines to resume after a logout. When that logout reached the server
      // (no revoke is owed), a cookie present now belongs to a session created since (a
      // server-rendered login, an SSO redirect): adopt it like a login.
      if (!this.#dead && !this.#signedIn() && this.#c.num(NUM_REFRESH_SENT) === sent && this.#revokes === revokes) await this.#adoptCookie();
    }
    await solo; // this tab's lock is requested: other tabs starting now see it alive
    // Events raised while starting reach listeners added right after `await start()`.
    const early = /** @type {Array<[keyof SessionEvents, SessionEvent]>} */ (this.#early); // null only from here on
    this.#early = null;
    this.startEvents = Object.freeze(early.map((x) => x[1]));
    setTimeout(() => {
      early.forEach(([n, d]) => this.#emit(n, d));
      // With a tab bus: the `storage` listener, off the start's path (`#install`), then the
      // shared record once more, so that a write made while starting is not missed.
      if (this.#bc && !this.#dead) {
        this.#listenStorage();
        this.#feedShared();
        this.#pump();
      }
    }, 0);
  }

  async #adoptCookie() {
    if (this.#tokenMode || offline() || this.#owed()) return;
    const id = this.#loginId();
    const a = await this.#post("/refresh", null, null, this.#t).catch(() => /** @type {Partial<Answer>} */ ({}));
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
  /**
   * @param {SessionOptions} o
   * @returns {Promise<boolean>}
   */
  async #alone(o) {
    let q;
    try {
      if (!hasLocks()) return false;
      q = await navigator.locks.query();
      await this.#hold();
    } catch (_) {}
    const n = "tessera:tab:" + this.#ch;
    // The DOM typings make the snapshot's lists optional; browsers always fill both.
    return !!q && o.webLocks !== false && !/** @type {LockInfo[]} */ (q.held).concat(/** @type {LockInfo[]} */ (q.pending)).some((l) => l.name === n);
  }

  /** @returns {Promise<void> | undefined} */
  #hold() {
    if (!hasLocks() || this.#held || this.#dead) return;
    /** @type {Held} */
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

  /** @param {SessionOptions} o */
  #install(o) {
    /** @type {<K extends keyof (WindowEventMap & DocumentEventMap)>(t: EventTarget, k: K, f: (e: (WindowEventMap & DocumentEventMap)[K]) => void, opts?: AddEventListenerOptions) => void} */
    const listen = (t, k, f, opts = { passive: true }) => {
      t.addEventListener(k, /** @type {EventListener} */ (f), opts);
      // Removal matches on `capture`: the same options as when added.
      this.#off.push(() => t.removeEventListener(k, /** @type {EventListener} */ (f), opts));
    };
    if (typeof BroadcastChannel === "function") {
      this.#bc = new BroadcastChannel(this.#ch);
      this.#bc.onmessage = (e) => this.#onBus(e.data);
    } else this.#fail("bus_unavailable");
    // The first `storage` listener of a page is slow in Chromium (it connects the page's storage
    // areas: a round trip to the browser process, ms to 100s of ms under load). With a tab bus
    // it only catches up from the shared record, so `init` adds it once the start is done
    // (`#listenStorage`); without one the storage events are the bus: added at once.
    if (!this.#bc) this.#listenStorage();
    listen(window, "online", () => {
      this.#ups++;
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
    // Activity crosses into Wasm about once per sample window (≤ 1 s), with the wall-clock
    // time of the input it reports (an event's `timeStamp` counts from the page's time origin).
    const sample = Math.max(16, Math.min(1000, Number(o.activityThrottleMs) || 1000));
    const input = activity(sample, (t) => this.#drive(ACTIVITY, Date.now() - Math.max(0, performance.now() - t)));
    for (const k of o.scrollActivity === true ? [...KINDS, "scroll"] : KINDS)
      listen(document, /** @type {"keydown"} */ (k), input, OPTS);
  }

  #listenStorage() {
    const f = (/** @type {StorageEvent} */ e) => {
      // Without a tab bus the shared record is how a login elsewhere becomes known (its
      // write may come after the bus nudge): both lead to `#nudged`.
      if (e.key === this.#sk || e.key === null) {
        if (this.#bc) {
          this.#feedShared();
          this.#pump();
        } else this.#nudged(true);
      } else if (!this.#bc && (e.key === this.#bk || e.key === this.#tk) && e.newValue) this.#nudged(false);
    };
    window.addEventListener("storage", f);
    this.#off.push(() => window.removeEventListener("storage", f));
  }

  /** @param {unknown} data a message from another tab (untrusted) */
  #onBus(data) {
    // The shared record first: a message queued while this tab was frozen may be older than
    // what the origin stores now (a logout since followed by a new login).
    this.#feedShared();
    // Untrusted: anything but text is handed over as an empty (undecodable) message.
    this.#drive(BUS, (typeof data === "string" && unb64(data)) || new Uint8Array());
  }

  // The storage-event fallback carries no payload, only "something changed": catch up from
  // the shared record, the sealed vault record, or (not signed in) the server's cookie.
  /** @param {boolean} shared the nudge is a write of the shared record (not of the vault record) */
  #nudged(shared) {
    this.#feedShared();
    this.#pump();
    if (this.#signedIn()) return;
    if (this.#store) return void (shared || this.#restore());
    // Once per token the shared record names (another tab's login or refresh), never on its
    // other writes (claims, activity): tabs without a session would re-resume each other's
    // resumes forever, each new one superseding the last.
    const t = this.#c.num(NUM_SEEN);
    if (t && t !== this.#seen) (this.#seen = t), this.#drive(RESUME, true);
  }

  /**
   * @param {string} path
   * @param {object | null} body
   * @param {string | null | undefined} bearer
   * @param {number} ms
   */
  #post(path, body, bearer, ms) {
    const u = this.#base + path;
    return this.#dp ? this.#dp.then((d) => d.post(u, body, bearer, ms)) : post(u, body, bearer, ms);
  }

  // ---- the engine loop -------------------------------------------------------------------

  // `id`: the request an answer belongs to (the id of the effect that asked).
  // No JS value crosses into Wasm (`Core::handle`): bytes (bus message, token record) as
  // bytes, a text (problem code, refused token) as UTF-8, a flag or number as a number, a
  // tokens answer (an object) as `expires_in` and its four texts in one array, each followed
  // by 0xff, an absent one as 0xfe (neither byte occurs in UTF-8; `tokens_from` in mod.rs).
  /**
   * @param {number} kind an input kind (boundary.js)
   * @param {any} [arg]
   * @param {number} [id]
   */
  #drive(kind, arg, id) {
    if (this.#dead) return;
    const o = arg && typeof arg === "object" && !(arg instanceof Uint8Array) && arg;
    /** @type {number[]} */
    const texts = [];
    // A loop, not a spread: a spread of a huge text (a hostile answer) would overflow the stack.
    if (o) for (const t of [o.access_token, o.refresh_token, o.session?.id, o.session?.user]) {
      for (const b of utf8(t) || [254]) texts.push(b);
      texts.push(255);
    }
    this.#c.handle(
      kind,
      id || 0,
      o ? (typeof o.expires_in === "number" ? o.expires_in : NaN) : +arg,
      o ? Uint8Array.from(texts) : arg instanceof Uint8Array ? arg : utf8(arg)
    );
    this.#pump();
  }

  #pump() {
    for (let e; !this.#dead && (e = this.#c.poll()); ) this.#perform(e);
    this.#rearm();
  }

  #rearm() {
    if (this.#dead) return;
    const t = this.#c.num(NUM_DEADLINE);
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
    if (!this.#dead) this.#c.handle(SHARED, 0, 0, v === null ? null : unb64(v) || Uint8Array.of(0));
    return v;
  }

  // e: [kind, id, n, flag, s, t, bytes] (`fx`); per kind: refresh (id, s: refresh token),
  // logout (id, flag: everywhere, s: bearer, t: refresh token), lock (id, n: wait, flag:
  // steal), broadcast / shared / store (bytes), emit (id: the event's number in `EVENTS`, n:
  // time, or with the flag its text's number in `TEXTS`, t: text), login (id).
  /** @param {import("./types").Effect} e */
  #perform(e) {
    switch (e[0]) {
      case FX_REFRESH: {
        const id = e[1];
        const body = this.#tokenMode ? { mode: "token", refresh_token: e[4] } : null;
        this.#post("/refresh", body, null, this.#t)
          .then(
            /** @returns {[kind: number, value?: unknown]} */
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
            if ((this.#own = k === REFRESH_OK)) this.#answered(/** @type {Tokens} */ (v));
            this.#drive(k, v, id);
            this.#own = false;
            this.#wake();
          });
        break;
      }
      case FX_LOGOUT: {
        // Server revoke, bounded. The other tabs already know (the engine persisted and
        // broadcast the logout first) and the request carries its credentials, so the wipe
        // goes on at once; only `logout()` and a next sign-in wait for the answer. In cookie
        // mode it is owed until answered, written down before it is sent: a tab started
        // while it is on its way, or after this page was closed or left first, sends it
        // again (the cookie names the session) and adopts no cookie. One that fails
        // (offline, 5xx) is retried with backoff and when back online.
        this.#revokes++;
        const id = e[1], all = e[3], ups = this.#ups;
        const body = e[5] ? { refresh_token: e[5] } : null;
        const mark = this.#tokenMode ? null : (all ? "all " : "one ") + Math.random();
        if (mark) lset(this.#rk, mark);
        // Its Clear-Site-Data may have erased the shared record: the engine writes it back.
        this.#revoke = this.#post(all ? "/logout-all" : "/logout", body, e[4], 5000)
          .then((a) => a.status < 500 && a.status !== 429, () => false)
          .then((ok) => {
            // Unless another tab paid it meanwhile (a sign-in sends an owed revoke first).
            if (mark && this.#owed() === mark) ok ? lset(this.#rk) : this.#owe(ups);
            this.#feedShared();
            this.#drive(LOGOUT_DONE, 0, id);
          });
        break;
      }
      case FX_LOCK: {
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
      case FX_UNLOCK:
        if (this.#lock) this.#lock();
        this.#lock = null;
        break;
      case FX_BROADCAST:
        if (this.#bc) this.#bc.postMessage(b64(e[6]));
        // Without BroadcastChannel: a bare nudge, never the message (it may carry a token).
        else lset(this.#bk, ++this.#seq + "|" + Date.now()) && lset(this.#bk);
        break;
      case FX_SHARED:
        try {
          const s = localStorage.getItem(this.#sk);
          localStorage.setItem(this.#sk, b64(this.#c.constructor.merge(s === null ? null : unb64(s), e[6])));
        } catch (_) {}
        break;
      case FX_STORE:
        // Never pauses the effects behind it: a logout right after goes out at once, and the
        // wipe's generation drops this seal if it finishes later.
        if (this.#store) this.#sealing = this.#seal(e[6]);
        break;
      case FX_WIPE:
        this.#gen++;
        // Web storage copies go in the cleanup (and are counted).
        this.#key = this.#sid = this.#kid = this.#retry = this.#mfa = this.#user = this.#exp = null;
        this.#tries = 0;
        this.#cleanup(e[3]);
        break;
      case FX_EMIT:
        this.#emitEngine(EVENTS[e[1]], e[2], e[3] ? TEXTS[e[2]] : e[5]);
        break;
      case FX_LOGIN:
        this.#lid = e[1];
        break;
    }
  }

  // The server's answer that produced this tab's token names the session.
  /** @param {Tokens | undefined} b */
  #answered(b) {
    const s = b && b.session;
    if (s && typeof s.id === "string") this.#sid = s.id;
    if (s && typeof s.user === "string") this.#user = s.user;
  }

  /**
   * @param {Tokens} b
   * @param {number} id
   */
  #loggedIn(b, id) {
    // A new session: never the previous one's key.
    this.#mfa = this.#key = this.#sid = this.#kid = this.#user = null;
    this.#answered(b);
    this.#own = true;
    this.#drive(LOGIN_OK, b, id);
    this.#own = false;
  }

  /**
   * n: the event's time (deadline, expiry); v: its text (reason, code, user).
   * @param {keyof SessionEvents} name
   * @param {number} n
   * @param {string} [v]
   */
  #emitEngine(name, n, v) {
    /** @type {EventDraft} */
    const d = {};
    if (name === "idle-warning") {
      d.deadline = n;
      d.remainingMs = Math.max(0, n - Date.now());
    } else if (name === "logout") {
      d.reason = /** @type {import("tessera").LogoutReason} */ (v);
      d.cleared = this.#cleared;
      d.remaining = this.#remaining;
      this.#cleared = this.#remaining = null;
    } else if (name === "error") {
      d.code = /** @type {import("tessera").ErrorEventCode} */ (v);
      d.message = words(String(v));
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

  /**
   * @param {keyof SessionEvents} name
   * @param {EventDraft} d
   */
  #emit(name, d) {
    d.type = name;
    // Complete now that it carries its type.
    if (this.#early) return void this.#early.push([name, /** @type {SessionEvent} */ (d)]);
    for (const f of [...(this.#ls[name] || [])])
      try {
        const r = f(/** @type {SessionEvent} */ (d));
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

  /**
   * @param {number} ms
   * @returns {Promise<void>}
   */
  #next(ms) {
    return new Promise((r) => {
      this.#waiters.push(r);
      setTimeout(r, ms);
    });
  }

  #signedIn() {
    if (this.#dead) return false;
    const s = this.#c.num(NUM_STATE);
    return s === 2 || s === 3; // active, idle-warning
  }

  // ---- storage ----------------------------------------------------------------------------

  /** @param {any} e what the storage threw */
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
  /** @param {string} k */
  #sget(k) {
    try {
      return this.#store ? this.#store.getItem(k) : null;
    } catch (e) {
      this.#storageFailed(e);
    }
  }

  /**
   * @param {string} k
   * @param {string} v
   */
  #sset(k, v) {
    try {
      if (this.#store) this.#store.setItem(k, v);
    } catch (e) {
      this.#sdel(k);
      this.#storageFailed(e);
    }
  }

  /** @param {string} k */
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
    const v = this.#owed(), ups = this.#ups;
    if (!v || this.#dead) return;
    if (this.#signedIn()) return void lset(this.#rk);
    return (this.#paying ||= this.#post(v.startsWith("all") ? "/logout-all" : "/logout", null, null, this.#t)
      .then((a) => a.status < 500 && a.status !== 429, () => false)
      .then((ok) => {
        this.#paying = null;
        if (ok) {
          this.#owedTries = 0;
          // Not a revoke owed since by a newer logout (its own mark).
          if (this.#owed() === v) lset(this.#rk);
        } else this.#owe(ups);
      }));
  }

  // The revoke is owed (its send failed, `ups` as in `#due`): sent again when the browser comes
  // back online, and meanwhile with backoff, so that a server's 5xx does not leave the
  // session alive on the server until the next page load.
  /** @param {number} ups */
  #owe(ups) {
    this.#later(() => this.#settleRevoke(), this.#due(ups, ++this.#owedTries));
  }

  // When to try again after the `n`th failure in a row of a request sent when `ups` `online`
  // events had been seen: at once if the browser came back online since (that failure says
  // nothing about the network now), else after a backoff of 5 s doubling, at most 5 min.
  /**
   * @param {number} ups
   * @param {number} n
   */
  #due(ups, n) {
    return ups !== this.#ups ? 0 : Math.min(3e5, 5000 * 2 ** (n - 1));
  }

  // ---- the vault ---------------------------------------------------------------------------
  // A record is `<s|c>.<kid>.<sealed>`: `s` sealed with the server's per-session key (cookie
  // mode), `c` with the browser-session key (token mode). `kid` names the session (its id)
  // and is part of the associated data: a record opens only with its own session's key.

  // The key for session `kid`: "gone" (the server refused: revoked, expired), "unavailable"
  // (5xx, 429, network, timeout: try again later), or `{kid, k, server}`.
  /**
   * @param {string} kid
   * @param {boolean} create
   * @returns {Promise<VaultKey | "gone" | "unavailable">}
   */
  async #obtainKey(kid, create) {
    const c = this.#key;
    if (c && c.kid === kid) return c;
    const gen = this.#gen;
    let k;
    if (!this.#tokenMode) {
      const a = await this.#post("/vault-key", null, null, this.#t).catch(() => /** @type {Partial<Answer>} */ ({}));
      if (gone(a.status)) return "gone";
      k = a.status === 200 && a.body && typeof a.body.key === "string" && unb64(a.body.key);
      if (!k || k.length !== 32) return "unavailable";
    } else if (!(k = sessionKey(create))) return "gone";
    const v = { kid, k, server: !this.#tokenMode };
    if (gen === this.#gen) this.#key = v;
    return v;
  }

  /**
   * @param {Bytes} bytes
   * @returns {Promise<unknown>}
   */
  async #seal(bytes) {
    const gen = this.#gen, n = ++this.#seals, ups = this.#ups;
    const kid = kidOf(this.#sid) || this.#kid || "-";
    const k = await this.#obtainKey(kid, true);
    const stale = () => gen !== this.#gen || n !== this.#seals; // a wipe or a newer seal won
    if (stale() || k === "gone") return;
    // Retried later and when back online; a newer seal or a wipe cancels it.
    if (k === "unavailable") return this.#unavailable(() => stale() || (this.#sealing = this.#seal(bytes)), ups);
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

  // The vault key is unavailable for now: reported once per outage, `f` retried at the time
  // `#due` gives (`ups`: the count of `online` events when the failed request was sent) and at
  // once when the browser comes back online.
  /**
   * @param {() => unknown} f
   * @param {number} ups
   */
  #unavailable(f, ups) {
    if (!this.#tries++) this.#fail("vault_unavailable", false);
    this.#retry = () => {
      this.#retry = null;
      f();
    };
    this.#later(() => this.#retry && this.#retry(), this.#due(ups, this.#tries));
  }

  /**
   * @param {() => unknown} f
   * @param {number} ms
   */
  #later(f, ms) {
    const t = setTimeout(() => this.#dead || f(), ms);
    this.#off.push(() => clearTimeout(t));
  }

  /**
   * @param {import("tessera").ErrorEventCode} code
   * @param {boolean} [wipe]
   * @returns {false}
   */
  #fail(code, wipe) {
    if (wipe) this.#sdel(this.#tk);
    this.#emit("error", { code, message: words(code) });
    return false;
  }

  // A persisted record is restored only if it opens; anything else is wiped and reported,
  // except a key that is only unavailable for now: the record stays, the restore is retried.
  async #restore() {
    const rec = this.#sget(this.#tk), ups = this.#ups;
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
    if (k === "unavailable") return void this.#unavailable(() => this.#signedIn() || this.#restore(), ups);
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
  // `tabOnly`: a newer session owns what the origin shares; only this tab's copies go.
  /** @param {boolean} tabOnly */
  #cleanup(tabOnly) {
    const p = tabOnly ? { sessionStorage: this.#plan.sessionStorage } : this.#plan;
    /** @type {import("tessera").Remaining[]} */
    const left = (this.#remaining = []);
    // The shared record (the logout epoch) is never removed, so never written back: a copy
    // written back could be older than what another tab stored meanwhile.
    // A `Cleared` once its lists are added, right below and before anything reads it (in one
    // literal it would cost package bytes).
    const out = (this.#cleared = /** @type {import("tessera").Cleared} */ ({
      memory: true,
      localStorage: tabOnly ? [] : wipeStorage("localStorage", p.localStorage, [this.#tk, this.#bk], [this.#sk, this.#rk], left),
      sessionStorage: wipeStorage("sessionStorage", p.sessionStorage, [this.#tk], [], left),
    }));
    out.cookies = p.cookies ? wipeCookies(document, location, left) : [];
    /** @param {string[] | boolean | undefined} x */
    const which = (x) => (x === true || Array.isArray(x) ? x : null);
    /** @type {(x: string[] | boolean | undefined, f: (names: string[] | true, left: import("tessera").Remaining[]) => Promise<string[]>, into: string[]) => unknown} */
    const later = (x, f, into) => which(x) && f(/** @type {string[] | true} */ (x), left).then((n) => into.push(...n));
    this.#wiping = Promise.all([
      later(p.indexedDB, wipeIndexedDb, (out.indexedDB = [])),
      later(p.caches, wipeCaches, (out.caches = [])),
      later(p.serviceWorkers === true, wipeWorkers, (out.serviceWorkers = [])),
      // The DPoP key goes with the session (listed under `indexedDB`).
      this.#dp && this.#dp.then((d) => d.drop(left, tabOnly || p.indexedDB === true)).then((n) => out.indexedDB.push(...n)),
    ]);
  }

  // ---- the public methods (the `Session` API, see types.rs) -------------------------------

  get state() {
    return this.#dead || STATES[this.#c.num(NUM_STATE)];
  }

  // Both are set by the `login` event, which comes before any signed-in state.
  get user() {
    return this.#signedIn() ? /** @type {string | null} */ (this.#user) : null;
  }

  get expiresAt() {
    return this.#signedIn() ? /** @type {number | null} */ (this.#exp) : null;
  }

  get idleDeadline() {
    const t = this.#signedIn() ? this.#c.num(NUM_IDLE_DEADLINE) : -1;
    return t >= 0 ? t : null;
  }

  get stats() {
    /** @param {number} i */
    const s = (i) => (this.#dead ? 0 : this.#c.num(i));
    return { busMalformed: s(NUM_BUS_MALFORMED), sharedMalformed: s(NUM_SHARED_MALFORMED), refreshSent: s(NUM_REFRESH_SENT), persistent: !!this.#store };
  }

  /** @param {{ username: string, password: string }} c */
  login(c) {
    return this.#auth("/login", { username: c && c.username, password: c && c.password });
  }

  /** @param {string} code */
  verifyMfa(code) {
    if (!this.#mfa) return Promise.reject(error("mfa_not_pending"));
    return this.#auth("/mfa", { mfa_token: this.#mfa, code: String(code) });
  }

  #alive() {
    if (this.#dead) throw error("disposed");
  }

  /**
   * @param {string} path
   * @param {Record<string, unknown>} body
   * @returns {Promise<import("tessera").SessionState>}
   */
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
    } catch (/** @type {any} */ e) {
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

  /** @param {{ everywhere?: boolean }} [o] */
  async logout(o) {
    this.#alive();
    this.#drive(LOGOUT, !!(o && o.everywhere));
    await this.#revoke;
    await this.#wiping;
  }

  // Bearer (with `dpop`: DPoP and a proof) only to `apiOrigins`; on a 401 from there (an invalid
  // token, not another challenge) one refresh through the engine and one retry, never more.
  /**
   * @param {RequestInfo | URL} input
   * @param {RequestInit} [init]
   */
  async fetch(input, init) {
    this.#alive();
    const base = new Request(input, init);
    const ours = this.#origins.has(new URL(base.url).origin), dp = ours && this.#dp;
    /** @param {string | undefined} t */
    const send = (t) => {
      const r = base.clone();
      if (t) r.headers.set("Authorization", "Bearer " + t);
      return dp ? dp.then((d) => d.send(r, t)) : fetch(r);
    };
    const t = ours ? this.#c.token() : undefined;
    const res = await send(t);
    if (!t || res.status !== 401 || !bearerRejected(res) || this.#dead) return res;
    this.#drive(ACCESS_REJECTED, t); // names the token the 401 refused
    for (const end = Date.now() + 30000; ; await this.#next(1000)) {
      this.#alive();
      const n = this.#c.token();
      if (n !== t) return n ? send(n) : res;
      // The 401 forced no refresh (an older token, or one a forced refresh just produced).
      if (!this.#c.num(NUM_REFRESHING) || Date.now() >= end) return res;
    }
  }

  /**
   * @template {keyof SessionEvents} K
   * @param {K} name
   * @param {(e: SessionEvents[K]) => void} cb
   */
  on(name, cb) {
    /** @param {SessionEvent} d */
    const h = (d) => cb(/** @type {SessionEvents[K]} */ (d));
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
/**
 * @param {string} k
 * @param {string} [v]
 */
export function lset(k, v) {
  try {
    v === undefined ? localStorage.removeItem(k) : localStorage.setItem(k, v);
    return true;
  } catch (_) {
    return false;
  }
}
