// Asynchronous wipes: IndexedDB databases and Cache Storage entries, named or all.
// Each resolves to the list of names it deleted and never rejects.
export async function wipeIndexedDb(names) {
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

export async function wipeCaches(names) {
  const cs = globalThis.caches;
  if (!cs) return [];
  try {
    if (names === true) names = await cs.keys();
    const out = [];
    for (const name of names) if (await cs.delete(name)) out.push(name);
    return out;
  } catch (_) { return []; }
}
