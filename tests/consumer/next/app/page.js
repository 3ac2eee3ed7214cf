// A server component: it renders on the server only. Importing the package here must not
// crash (no `window` at import time); it cannot start a session (no browser), so it only
// reports what it found. The client component below does the signing in.
import * as tessera from "tessera";
import Account from "./account";

export const dynamic = "force-dynamic"; // rendered per request by `next start`, not only at build

export default function Page() {
  return (
    <main>
      <h1>tessera consumer: Next.js</h1>
      <p>
        server render saw <output id="server-import">{`Session.start: ${typeof tessera.Session?.start}, init: ${typeof tessera.default}`}</output>
      </p>
      <Account />
    </main>
  );
}
