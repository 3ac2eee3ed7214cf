// What stands between a browser engine and the demo server in the cross-engine scenarios:
//
// - `startFront(server, { tls })`: a small reverse proxy on 127.0.0.1 in front of
//   `tessera-server`, over plain HTTP or over HTTPS with a throw-away self-signed certificate.
//   It presents its own origin to the server as the server's (see the handler) and records
//   every request it forwards, so a scenario can count
//   `POST /auth/refresh` the same way in every engine — WebDriver has no network events.
//   WebKit refuses `Secure` cookies over plain http, even on loopback (see README, browser
//   support): the session cookie `__Host-tessera_rt` only lives there behind HTTPS.
// - `testWwwDir()`: a copy of `www/` whose `index.html` first loads `tessera-test-shim.js`,
//   a classic script that runs before the page's module. It records which cross-tab
//   primitives the page has and how often the SDK uses them (`window.tesseraTestPrimitives`),
//   and removes Web Locks and/or BroadcastChannel when the page URL says
//   `?without=locks,bc`, so the SDK's fallback paths carry the same scenarios.
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { ROOT } from "../harness.mjs";

const run = promisify(execFile);
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"]);

let certPromise = null;
/** A self-signed certificate for 127.0.0.1 and localhost, made once per process with openssl. */
function certificate() {
  certPromise ??= (async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "tessera-tls-"));
    const key = path.join(dir, "key.pem");
    const cert = path.join(dir, "cert.pem");
    // prettier-ignore
    await run("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
      "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ]);
    const pair = { key: await readFile(key), cert: await readFile(cert) };
    await rm(dir, { recursive: true, force: true });
    return pair;
  })();
  return certPromise;
}

/**
 * Starts a recording reverse proxy to `server` on a free loopback port.
 * @returns {Promise<{url: string, origin: string, tls: boolean, requests: Array<{method: string, path: string, status: number, at: number, error?: string}>, count: (method: string, pathname: string) => number, close: () => Promise<void>}>}
 */
export async function startFront(server, { tls = false } = {}) {
  const requests = [];
  // One upstream connection per request, never an idle one reused: tessera-server closes a
  // connection left idle for `--keep-alive-timeout` (75 s; 10 s before session 9), and a
  // request written onto one it is closing at that moment (this process's event loop, busy
  // under load, had not yet seen the close) dies unanswered, which the browser would get as
  // this front's 502 — for a module of the demo page, a page that never starts
  // (tests/e2e/front.test.mjs). Browsers retry such a request on a fresh connection; the
  // front need not reuse any.
  const agent = new http.Agent({ keepAlive: false });
  let origin = "";
  const handler = (req, res) => {
    const entry = { method: req.method, path: new URL(req.url, "http://x").pathname, status: 0, at: Date.now() };
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    // The front is the app's public origin, as a reverse proxy in a deployment is; the server
    // trusts only explicitly allowed origins (its own in demo mode). Its own origin is
    // presented as the server's, exactly as `--allowed-origins <front origin>` would allow it;
    // any other Origin passes unchanged, so the server's CSRF guard still refuses it.
    if (headers.origin === origin) headers.origin = `http://127.0.0.1:${server.port}`;
    const upstream = http.request(
      { host: "127.0.0.1", port: server.port, method: req.method, path: req.url, headers, agent },
      (up) => {
        entry.status = up.statusCode;
        const out = [];
        for (let i = 0; i < up.rawHeaders.length; i += 2) {
          if (!HOP_BY_HOP.has(up.rawHeaders[i].toLowerCase())) out.push(up.rawHeaders[i], up.rawHeaders[i + 1]);
        }
        res.writeHead(up.statusCode, up.statusMessage, out);
        up.pipe(res);
      },
    );
    upstream.on("error", (err) => {
      entry.status = 502;
      entry.error = `${err.code || ""} ${err.message}`.trim();
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(`front: upstream error ${err.message}`);
    });
    requests.push(entry);
    req.pipe(upstream);
  };
  const srv = tls ? https.createServer(await certificate(), handler) : http.createServer(handler);
  await new Promise((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", resolve);
  });
  origin = `${tls ? "https" : "http"}://127.0.0.1:${srv.address().port}`;
  return {
    url: `${origin}/`,
    origin,
    tls,
    requests,
    count: (method, pathname) => requests.filter((r) => r.method === method && r.path === pathname).length,
    async close() {
      srv.closeAllConnections?.();
      await new Promise((resolve) => srv.close(resolve));
      agent.destroy();
    },
  };
}

// Runs in the page before the demo's module (a classic script in <head>). Plain ES2020, no
// imports: it is served as a file next to index.html.
const SHIM = `// Test-only (tests/e2e/engines/front.mjs): records which cross-tab primitives the SDK uses,
// and removes some when the URL says ?without=locks,bc.
(function () {
  var without = (new URLSearchParams(location.search).get("without") || "").split(",").filter(Boolean);
  // Per name: lock requests by lock name, posts by channel name, storage-bus writes by key.
  var used = { locks: {}, channels: {}, storageBus: {} };
  var bump = function (table, name) { table[name] = (table[name] || 0) + 1; };
  var probe = { without: without, available: {}, used: used };
  window.tesseraTestPrimitives = probe;
  if (without.indexOf("locks") >= 0) {
    Object.defineProperty(Navigator.prototype, "locks", { configurable: true, get: function () { return undefined; } });
  }
  if (without.indexOf("bc") >= 0) {
    delete window.BroadcastChannel;
  }
  probe.available = {
    locks: !!(navigator.locks && navigator.locks.request),
    broadcastChannel: typeof window.BroadcastChannel === "function",
  };
  if (probe.available.locks) {
    var lm = Object.getPrototypeOf(navigator.locks);
    var request = lm.request;
    lm.request = function (name) { bump(used.locks, String(name)); return request.apply(this, arguments); };
  }
  if (probe.available.broadcastChannel) {
    var BC = window.BroadcastChannel;
    var post = BC.prototype.postMessage;
    BC.prototype.postMessage = function (m) { bump(used.channels, this.name); return post.call(this, m); };
  }
  var setItem = Storage.prototype.setItem;
  Storage.prototype.setItem = function (k, v) {
    if (String(k).indexOf("tessera:bus:") === 0) bump(used.storageBus, String(k));
    return setItem.call(this, k, v);
  };
})();
`;

/** A copy of www/ whose index.html loads the primitives shim first. Returns its directory. */
export async function testWwwDir() {
  const dir = await mkdtemp(path.join(tmpdir(), "tessera-www-"));
  await cp(path.join(ROOT, "www"), dir, { recursive: true });
  const indexFile = path.join(dir, "index.html");
  const html = await readFile(indexFile, "utf8");
  const tag = '<script src="tessera-test-shim.js"></script>';
  const patched = html.replace(/<head>/i, `<head>\n  ${tag}`);
  if (patched === html) throw new Error("www/index.html has no <head> to put the test shim in");
  await writeFile(indexFile, patched);
  await writeFile(path.join(dir, "tessera-test-shim.js"), SHIM);
  return dir;
}
