// Logout cleanup: storage, cookies (all paths and domains, partitioned too), IndexedDB,
// Cache Storage, service workers; what is gone is re-read, what is not is reported.

// ---- cleanup --------------------------------------------------------------------------
// Each wipe returns (or resolves to) what is verifiably gone and pushes what is not onto
// `left` as `{ kind, name, why }`. None throws or rejects.

// IndexedDB databases, named or all. A deletion that other connections block is queued by
// the browser, not done: it is reported in `left` as "blocked", not as deleted.
/**
 * @param {string[] | true} names
 * @param {import("tessera").Remaining[]} left
 * @returns {Promise<string[]>}
 */
export async function wipeIndexedDb(names, left) {
  const idb = globalThis.indexedDB;
  if (!idb) return [];
  if (names === true) {
    // Every entry names its database (the DOM typings make the name optional).
    try { names = /** @type {string[]} */ ((await idb.databases()).map((d) => d.name)); } catch (_) { return []; }
  }
  const out = [];
  /** @param {string} name */
  const del = (name) => new Promise((res) => {
    try {
      const q = idb.deleteDatabase(name);
      q.onsuccess = () => res(0);
      q.onerror = () => res("error");
      q.onblocked = () => res("blocked");
    } catch (_) { res("error"); }
  });
  for (const name of names) {
    // Again after an error, twice at most (50 ms, then 250 ms later): the logout's answer
    // (`Clear-Site-Data: "storage"`) has the browser delete the origin's databases itself,
    // which aborts the requests made meanwhile ("The connection was closed", seen in
    // Chromium); a deletion that succeeds afterwards means the database is gone.
    let r = await del(name);
    for (const ms of [50, 250]) if (r === "error") r = await new Promise((ok) => setTimeout(ok, ms)).then(() => del(name));
    if (r) left.push({ kind: "indexedDB", name, why: r });
    else out.push(name);
  }
  return out;
}

/**
 * @param {string[] | true} names
 * @param {import("tessera").Remaining[]} left
 * @returns {Promise<string[]>}
 */
export async function wipeCaches(names, left) {
  const cs = globalThis.caches;
  if (!cs) return [];
  const out = [];
  try {
    const all = names === true;
    // Cleared: it was there and is gone after re-reading, whoever deleted it (the logout
    // answer's Clear-Site-Data may come first: `delete` then finds nothing).
    for (const name of names === true ? await cs.keys() : names)
      if (all || (await cs.has(name)))
        if ((await cs.delete(name)) || !(await cs.has(name))) out.push(name);
        else left.push({ kind: "caches", name, why: "error" });
  } catch (_) {
    left.push({ kind: "caches", name: "*", why: "error" });
  }
  return out;
}

// Every service worker registration of this origin, by scope.
/**
 * @param {unknown} _
 * @param {import("tessera").Remaining[]} left
 * @returns {Promise<string[]>}
 */
export async function wipeWorkers(_, left) {
  const out = [];
  try {
    const sw = globalThis.navigator.serviceWorker;
    const found = await sw.getRegistrations();
    await Promise.all(found.map((r) => r.unregister().catch(() => 0)));
    // Re-read: gone is gone, whoever unregistered it (the logout answer's Clear-Site-Data may
    // come first, and `unregister` then resolves false).
    const still = (await sw.getRegistrations()).map((r) => r.scope);
    for (const { scope } of found)
      if (still.includes(scope)) left.push({ kind: "serviceWorkers", name: scope, why: "error" });
      else out.push(scope);
  } catch (_) {}
  return out;
}

// Clears a web storage: everything but `keep` (`all`) or only the given SDK keys. Returns
// "all" or the number of keys removed (re-read: only keys really gone count); 0 when the
// store is unavailable.
/**
 * @param {"localStorage" | "sessionStorage"} name
 * @param {boolean | undefined} all
 * @param {string[]} keys
 * @param {string[]} keep
 * @param {import("tessera").Remaining[]} left
 * @returns {"all" | number}
 */
export function wipeStorage(name, all, keys, keep, left) {
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
/** @param {string} pathname */
export function cookiePaths(pathname) {
  const out = ["/"];
  let acc = "";
  for (const seg of pathname.split("/").filter(Boolean)) out.push((acc += "/" + seg), acc + "/");
  return out;
}

// Every `domain` attribute a cookie visible on `host` could carry: none (host-only) and each
// dotted suffix of the host name (with and without the leading dot). IPs only have themselves.
/** @param {string} host */
export function cookieDomains(host) {
  const out = [""];
  if (!host) return out;
  if (/^[\d.]+$/.test(host) || host.includes(":")) return out.concat(host);
  for (let h = host; ; h = h.slice(h.indexOf(".") + 1)) {
    out.push(h, "." + h);
    if (!h.includes(".")) return out;
  }
}

/** @param {Document} doc */
export const cookieNames = (doc) => doc.cookie.split(";").map((p) => p.split("=")[0].trim()).filter(Boolean);

// Expires every cookie visible to `doc` on every path prefix × domain suffix of `loc`, each
// also as a `Secure` and a `Secure; Partitioned` (CHIPS) cookie. Returns the names that are
// gone after re-reading `doc.cookie`; names still visible go to `left`. (HttpOnly cookies are
// invisible here; the server's logout expires those.)
/**
 * @param {Document} doc
 * @param {Location} loc
 * @param {import("tessera").Remaining[]} [left]
 */
export function wipeCookies(doc, loc, left) {
  const names = [...new Set(cookieNames(doc))];
  const paths = cookiePaths(loc.pathname), domains = cookieDomains(loc.hostname);
  for (const name of names)
    for (const flags of ["", "; Secure", "; Secure; Partitioned"])
      // Prefixed cookies may only be written with Secure.
      if (flags || !/^__(Secure|Host)-/.test(name))
        for (const p of paths)
          for (const d of domains)
            // `Max-Age=0` expires it (RFC 6265 §5.2.2; every engine the SDK supports).
            doc.cookie = name + "=; Max-Age=0; Path=" + p + (d ? "; Domain=" + d : "") + flags;
  const still = cookieNames(doc);
  for (const name of names)
    if (still.includes(name) && left) left.push({ kind: "cookies", name, why: "unreachable" });
  return names.filter((n) => !still.includes(n));
}
