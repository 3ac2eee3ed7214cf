// @ts-check
// Site data the demo plants so the logout cleanup has something visible to remove, and an
// inventory of what the page can still see (the "honest check" after a logout).

/** The IndexedDB database and Cache Storage entry the demo plants (and asks the SDK to remove). */
export const DEMO_DATA_NAME = "tessera-demo";

/**
 * @typedef {object} Inventory names of the site data visible to this page
 * @property {string[]} cookies
 * @property {string[]} localStorage
 * @property {string[]} sessionStorage
 * @property {string[]} indexedDb
 * @property {string[]} caches
 * @property {string[]} unanswered the stores that did not answer in time (IndexedDB, caches)
 */

/** How long a storage query may take before the inventory says it did not answer. */
const QUERY_MS = 1_000;

/**
 * `p`'s value, or `null` when it has not settled within `ms`: a browser busy clearing site
 * data (the logout answer's `Clear-Site-Data`) can leave a query pending for good — seen in
 * Chromium: `indexedDB.databases()` never answered, and the page's check never showed.
 * @template T
 * @param {Promise<T>} p
 * @param {number} ms
 * @returns {Promise<T | null>}
 */
function within(p, ms) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const late = new Promise((resolve) => (timer = setTimeout(() => resolve(null), ms)));
  return /** @type {Promise<T | null>} */ (Promise.race([p, late])).finally(() => clearTimeout(timer));
}

/** Every path prefix of this page's path, on each of which a cookie is visible here: "/", "/a", "/a/b"… */
export function cookiePaths() {
  const paths = ["/"];
  let acc = "";
  for (const part of location.pathname.split("/").filter(Boolean)) {
    acc += "/" + part;
    paths.push(acc);
  }
  return paths;
}

/** @returns {Promise<IDBDatabase>} */
function openDemoDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DEMO_DATA_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore("notes");
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/**
 * Writes cookies on every visible path, Web Storage keys, an IndexedDB record and a cache entry.
 * @returns {Promise<Inventory>} what is visible afterwards
 */
export async function plant() {
  cookiePaths().forEach((path, i) => {
    document.cookie = `demo_c${i}=planted; path=${path}; SameSite=Strict; max-age=3600`;
  });
  localStorage.setItem("demo:theme", "dark");
  localStorage.setItem("demo:recent", JSON.stringify(["invoice-42", "report-7"]));
  sessionStorage.setItem("demo:draft", "Dear team, …");
  const db = await openDemoDb();
  await new Promise((resolve, reject) => {
    const tx = db.transaction("notes", "readwrite");
    tx.objectStore("notes").put({ text: "private note", at: Date.now() }, "note-1");
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  db.close();
  const cache = await caches.open(DEMO_DATA_NAME);
  await cache.put("/demo/cached-profile.json", new Response(JSON.stringify({ user: "cached" })));
  return inventory();
}

/**
 * What site data this page can see right now (names only).
 * @returns {Promise<Inventory>}
 */
export async function inventory() {
  const cookies = document.cookie
    .split(";")
    .map((c) => c.trim().split("=")[0])
    .filter(Boolean);
  /** @type {string[]} */
  const unanswered = [];
  /** @type {string[]} */
  let indexedDb = [];
  try {
    const dbs = await within(indexedDB.databases(), QUERY_MS);
    if (dbs) indexedDb = dbs.flatMap((d) => (d.name ? [d.name] : []));
    else unanswered.push("IndexedDB");
  } catch {
    // indexedDB.databases() is missing in some browsers: report nothing rather than guess.
  }
  /** @type {string[]} */
  let cacheNames = [];
  try {
    const names = await within(caches.keys(), QUERY_MS);
    if (names) cacheNames = names;
    else unanswered.push("Cache Storage");
  } catch {
    // Cache Storage needs a secure context.
  }
  return {
    cookies,
    localStorage: Object.keys(localStorage),
    sessionStorage: Object.keys(sessionStorage),
    indexedDb,
    caches: cacheNames,
    unanswered,
  };
}
