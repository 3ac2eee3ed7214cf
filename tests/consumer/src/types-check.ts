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
