// Shared by the framework pages: starts a session the way a user would, and counts starts and
// disposals on `window` so the test can tell that the binding cleaned up after itself.
import { Session } from "tessera";

window.started = 0;
window.disposed = 0;

export function startCounted(channel) {
  window.started += 1;
  return Session.start({ baseUrl: "/auth", channel }).then((session) => {
    const dispose = session.dispose.bind(session);
    session.dispose = () => {
      window.disposed += 1;
      dispose();
    };
    return session;
  });
}
