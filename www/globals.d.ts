// What the demo page (./main.js) puts on `window` for the end-to-end tests and benches.
import type { InitOutput, Session, SessionEvents, SessionOptions } from "tessera";
import type { Inventory } from "./sitedata.js";

/** One SDK event as the page saw it (details copied to plain JSON). */
export interface DemoEvent {
  type: keyof SessionEvents;
  detail: unknown;
  /** `Date.now()` when the page received it. */
  at: number;
  /** High-resolution receipt time (`performance.timeOrigin + performance.now()`). */
  hr: number;
  /** This tab's short random id. */
  tab: string;
}

/** `window.tessera`: the page's session and what it saw. */
export interface DemoHook {
  session: Session | null;
  events: DemoEvent[];
  /** The SDK loaded and `Session.start` resolved. */
  ready: boolean;
  config: SessionOptions;
  tabId: string;
  /** The Wasm module's exports (`init()`'s result). */
  wasm?: InitOutput;
  /** The state `Session.start` resolved in. */
  startedState?: string;
  /** Why the page could not start. */
  error?: string;
  /** When (`Date.now()`) the page last saw trusted pointer or key input; 0 before any. */
  lastInput: number;
}

/** `window.tesseraDemo`: the page's helpers. */
export interface DemoHelpers {
  totp: typeof import("./totp.js").totp;
  base32Decode: typeof import("./totp.js").base32Decode;
  plant: () => Promise<Inventory>;
  inventory: () => Promise<Inventory>;
  cookiePaths: () => string[];
}

declare global {
  interface Window {
    tessera: DemoHook;
    tesseraDemo: DemoHelpers;
  }
}
