"use client";
// A client component: server-rendered once (hooks in their initial state, no effects), then
// hydrated in the browser, where `useSession` starts the session. `init()` runs in the factory,
// i.e. only in the browser.
import { useState } from "react";
import init, { Session } from "tessera";
import { useSession } from "tessera/react";

export default function Account() {
  const { state, lastEvent, error, login, logout, fetch } = useSession(() =>
    init().then(() => Session.start({ baseUrl: "/auth", channel: "consumer-next" })),
  );
  const [me, setMe] = useState("");
  const [problem, setProblem] = useState("");
  const guard = (fn) => () => fn().catch((e) => setProblem(String(e?.message ?? e)));
  return (
    <section>
      <p>
        state: <output id="state">{state}</output>
      </p>
      <p>
        last event: <output id="last-event">{lastEvent ? lastEvent.type : ""}</output>
      </p>
      <p id="error">{error ? String(error) : problem}</p>
      <button id="login" onClick={guard(() => login({ username: "alice", password: "tessera-demo" }))}>
        Sign in
      </button>
      <button
        id="me"
        onClick={guard(async () => {
          const res = await fetch("/api/me");
          setMe(`${res.status} ${JSON.stringify(await res.json())}`);
        })}
      >
        Who am I
      </button>
      <button id="logout" onClick={guard(() => logout())}>
        Sign out
      </button>
      <pre id="me-out">{me}</pre>
    </section>
  );
}
