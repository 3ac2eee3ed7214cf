// The `tessera/react` hook in a StrictMode app (no JSX, so no React plugin is needed).
import init from "tessera";
import { useSession } from "tessera/react";
import { StrictMode, createElement as h, useState } from "react";
import { createRoot } from "react-dom/client";
import { startCounted } from "./counting.js";

await init();

function App() {
  const { state, lastEvent, error, login, logout, fetch } = useSession(() => startCounted("consumer-react"));
  const [me, setMe] = useState("");
  const [problem, setProblem] = useState("");
  const guard = (fn) => () => fn().catch((e) => setProblem(String(e?.message ?? e)));
  return h(
    "main",
    null,
    h("h1", null, "tessera consumer: React hook"),
    h("p", null, "state: ", h("output", { id: "state" }, state)),
    h("p", null, "last event: ", h("output", { id: "last-event" }, lastEvent ? lastEvent.type : "")),
    h("p", { id: "error" }, error ? String(error) : problem),
    h(
      "button",
      { id: "login", onClick: guard(() => login({ username: "alice", password: "tessera-demo" })) },
      "Sign in",
    ),
    h(
      "button",
      {
        id: "me",
        onClick: guard(async () => {
          const res = await fetch("/api/me");
          setMe(`${res.status} ${JSON.stringify(await res.json())}`);
        }),
      },
      "Who am I",
    ),
    h("button", { id: "logout", onClick: guard(() => logout()) }, "Sign out"),
    h("pre", { id: "me-out" }, me),
  );
}

const root = createRoot(document.getElementById("root"));
root.render(h(StrictMode, null, h(App)));
// The test unmounts the app to check that the hook disposed its session.
window.unmountApp = () => root.unmount();
