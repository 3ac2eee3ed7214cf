// Type-checked (not run) by run.mjs with `tsc --noEmit`: the package's declarations, reached
// through its `exports`, describe the public contract, and misuse is a type error.
import init, { Session, type SessionOptions, type SessionState } from "tessera";
import { useSession, type UseSessionResult } from "tessera/react";

export async function typed(): Promise<void> {
  await init();
  const options: SessionOptions = {
    baseUrl: "/auth",
    storage: "local",
    idleTimeoutMs: 900_000,
    idleWarningMs: 60_000,
    refreshLeadMs: 60_000,
    channel: "tessera",
    cleanup: { localStorage: true, cookies: true, indexedDB: ["db"], caches: true },
  };
  const session: Session = await Session.start(options);
  const state: SessionState = session.state;
  const off: () => void = session.on("logout", (e) => {
    const reason: string = e.reason;
    void reason;
  });
  session.on("idle-warning", (e) => void (e.remainingMs + 1));
  const afterLogin: SessionState = await session.login({ username: "alice", password: "tessera-demo" });
  const res: Response = await session.fetch("/api/me");
  await session.logout({ everywhere: true });
  session.stayActive();
  off();
  session.dispose();
  void state, afterLogin, res;

  // @ts-expect-error: unknown event names are rejected
  session.on("no-such-event", () => {});
  // @ts-expect-error: storage is one of three names
  await Session.start({ storage: "disk" });
}

export function hookTyped(): UseSessionResult<Session> {
  const result = useSession(() => Session.start({ baseUrl: "/auth" }));
  const s: string = result.state;
  void s;
  return result;
}

// tessera/vue: refs, typed by the session the factory returns.
import { effectScope, type Ref } from "vue";
import { useSession as useVueSession } from "tessera/vue";

export function vueTyped(): void {
  effectScope().run(() => {
    const { state, session, login } = useVueSession(() => Session.start({ baseUrl: "/auth" }));
    const s: string = state.value;
    const typed: Readonly<Ref<Session | null>> = session;
    void s, typed, login({ username: "alice", password: "tessera-demo" });
    // @ts-expect-error: the refs are read-only
    state.value = "active";
  });
}

// tessera/svelte: a readable store of snapshots, with the session's methods.
import { get, type Readable } from "svelte/store";
import { sessionStore, type SessionSnapshot } from "tessera/svelte";

export function svelteTyped(): void {
  const store = sessionStore(() => Session.start({ baseUrl: "/auth" }));
  const readable: Readable<SessionSnapshot<Session>> = store;
  const snap = get(store);
  const s: string = snap.state;
  void readable, s, store.logout({ everywhere: true });
  // @ts-expect-error: a store's value is a snapshot, not a session
  get(store).login({ username: "alice", password: "x" });
}
