// Under a policy without 'wasm-unsafe-eval', init() must fail with the browser's CSP refusal
// (what docs/csp.md tells users to look for).
import init from "tessera";

init().then(
  () => (window.result = { loaded: true, error: null }),
  (err) => (window.result = { loaded: false, error: `${err?.name}: ${err?.message}` }),
);
