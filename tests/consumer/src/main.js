// Uses the package exactly as its README says: import, init, start, login, fetch, logout.
import init, { Session } from "tessera";

const result = { steps: [], done: false, error: null };
window.result = result;

function step(name, value) {
  result.steps.push({ name, value });
  const li = document.createElement("li");
  li.textContent = `${name}: ${JSON.stringify(value)}`;
  document.getElementById("steps").append(li);
}

async function run() {
  await init();
  const session = await Session.start({ baseUrl: "/auth", channel: "consumer-plain" });
  const events = [];
  for (const name of ["login", "logout", "error"]) session.on(name, (e) => events.push(name));
  step("start", String(session.state));
  await session.login({ username: "alice", password: "tessera-demo" });
  step("login", String(session.state));
  const res = await session.fetch("/api/me");
  step("me", { status: res.status, ...(await res.json()) });
  await session.logout();
  step("logout", String(session.state));
  const bare = await fetch("/api/me");
  step("me-after-logout", bare.status);
  step("events", events);
  session.dispose();
}

run().then(
  () => {
    result.done = true;
    document.getElementById("outcome").textContent = "done";
  },
  (err) => {
    result.error = String(err?.message ?? err);
    result.done = true;
    document.getElementById("outcome").textContent = `error: ${result.error}`;
  },
);
