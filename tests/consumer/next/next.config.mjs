// The Next.js app serves the pages; tessera-server (TESSERA_SERVER_URL, set by ../run.mjs at
// build time) keeps the auth routes and the API. The browser sees one origin: Next forwards
// /auth/* and /api/* to the server, a common way to put an auth server behind an app.
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

const server = process.env.TESSERA_SERVER_URL;
if (!server) throw new Error("set TESSERA_SERVER_URL (the tessera-server origin) to build this app");

export default {
  // This app has its own lockfile inside the repository: it is the root, not the repository.
  turbopack: { root: dirname(fileURLToPath(import.meta.url)) },
  async rewrites() {
    return [
      { source: "/auth/:path*", destination: `${server}/auth/:path*` },
      { source: "/api/:path*", destination: `${server}/api/:path*` },
    ];
  },
};
