// A user's unit test in plain Node (node:test), with the package installed from its tarball:
// load the module with `initSync`, then drive sessions against a fake server and two
// in-process "tabs" — no browser. Run by ../run.mjs.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Session, initSync } from "tessera";
import { fakeServer, installFakeBrowser } from "./fake-browser.mjs";

const ORIGIN = "http://app.test";
let restore;
let server;
const realFetch = globalThis.fetch;

before(() => {
  // `import.meta.resolve` finds the file through the package's `exports`.
  initSync({ module: readFileSync(fileURLToPath(import.meta.resolve("tessera/tessera_bg.wasm"))) });
  restore = installFakeBrowser({ origin: ORIGIN });
  server = fakeServer({ origin: ORIGIN });
  globalThis.fetch = server.fetch;
});

after(() => {
  globalThis.fetch = realFetch;
  restore();
});

const options = (extra = {}) => ({ baseUrl: `${ORIGIN}/auth`, channel: "node-test", ...extra });
const next = (session, event) => new Promise((resolve) => {
  const off = session.on(event, (e) => (off(), resolve(e)));
});

test("start without a refresh cookie ends anonymous, after asking the server once", async () => {
  const before = server.requests.length;
  const session = await Session.start(options());
  try {
    assert.equal(session.state, "anonymous");
    const asked = server.requests.slice(before);
    assert.deepEqual(asked.map((r) => r.path), ["/auth/refresh"]);
    assert.equal(asked[0].csrf, "1", "auth requests carry X-Tessera-CSRF");
  } finally {
    session.dispose();
  }
});

test("login, bearer on fetch, one refresh + retry on 401, logout", async () => {
  const session = await Session.start(options({ resume: false }));
  try {
    const events = [];
    for (const name of ["login", "refresh", "logout", "error"]) session.on(name, (e) => events.push(e));
    await assert.rejects(session.login({ username: "alice", password: "wrong" }), (e) => e.code === "invalid_credentials" && e.status === 401);
    assert.equal(session.state, "anonymous");

    assert.equal(await session.login({ username: "alice", password: "password" }), "active");
    assert.equal(session.user, "alice");
    const me = await session.fetch(`${ORIGIN}/api/me`);
    assert.equal(me.status, 200);
    assert.equal(server.requests.at(-1).authorization, "Bearer at-1");

    server.expireAccess();
    const mark = server.requests.length;
    const retried = await session.fetch(`${ORIGIN}/api/me`);
    assert.equal(retried.status, 200, "the retry with the refreshed token succeeds");
    assert.deepEqual(
      server.requests.slice(mark).map((r) => `${r.path} ${r.authorization ?? ""}`.trim()),
      ["/api/me Bearer at-1", "/auth/refresh", "/api/me Bearer at-2"],
    );

    await session.logout();
    assert.equal(session.state, "logged-out");
    assert.equal(server.requests.at(-1).path, "/auth/logout");
    const logout = events.find((e) => e.type === "logout");
    assert.equal(logout?.reason, "user");
    assert.ok(events.some((e) => e.type === "login"), `events: ${events.map((e) => e.type)}`);
  } finally {
    session.dispose();
  }
});

test("two sessions on one channel behave like two tabs: login and logout reach both", async () => {
  const a = await Session.start(options({ resume: false, channel: "node-tabs" }));
  const b = await Session.start(options({ resume: false, channel: "node-tabs" }));
  try {
    const bLogin = next(b, "login");
    await a.login({ username: "alice", password: "password" });
    await bLogin;
    assert.equal(b.state, "active", "the other tab joined the session over BroadcastChannel");

    const aLogout = next(a, "logout");
    await b.logout();
    assert.equal((await aLogout).reason, "user");
    assert.equal(a.state, "logged-out");
  } finally {
    a.dispose();
    b.dispose();
  }
});
