// What the framework bindings (`tessera/react`, `tessera/vue`, `tessera/svelte`) share: the list
// of events a session emits. One copy, shipped as `tessera/bindings/events.js` beside them;
// tests/boundary.rs holds it (and the types in ./events.d.ts) to the SDK's own declaration.

/** Every event the SDK emits, in a stable order. @type {readonly import("./events.js").SessionEventName[]} */
export const SESSION_EVENTS = Object.freeze(["login", "refresh", "idle-warning", "active", "idle", "logout", "error"]);
