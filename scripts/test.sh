#!/usr/bin/env bash
# Runs every test of Tessera, in layers, and exits non-zero if any single test fails:
#   0. lint     quality gates (scripts/lint.sh): rustfmt, clippy -D warnings for both crates
#               (native and wasm32), tsc --checkJs over the shipped and demo JavaScript
#   1. native   `cargo nextest run --workspace` and the doc tests (`cargo test --workspace`
#               where cargo-nextest is missing): the sans-IO engine and its multi-tab
#               simulator, the vault, and the server (router tests, real HTTP on loopback,
#               SQLite, and a real redis-server that the store tests start themselves)
#   2. browser  `wasm-pack test --headless --chrome`: the SDK in headless Chromium (tests/web/)
#      browser-firefox  the same browser tests in headless Firefox ESR (geckodriver)
#   3. e2e      Playwright (playwright-core + /usr/bin/chromium) against the demo server,
#               including the engine-agnostic multi-tab scenarios (tests/e2e/engines-*.test.mjs),
#               test files side by side
#      e2e-firefox / e2e-webkit  those scenarios again in Firefox ESR and WebKitGTK, through
#               WebDriver (selenium-webdriver; WebKitGTK on an Xvfb display, behind HTTPS)
#   4. consumer the npm package installed from `npm pack` into a Vite app, in Chromium
# Each layer's time is printed at the end.
# Installs what is missing first (scripts/setup.sh). Every layer runs even when an
# earlier one fails, so one run shows every failure; the exit code is non-zero if any did.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash scripts/setup.sh || exit 1

failed=()
passed=()
timings=()
run() { # run NAME CMD...
  local name="$1"; shift
  local t0=$SECONDS
  step "$name: $*"
  if "$@"; then passed+=("$name"); else failed+=("$name"); printf '\033[1;31m==> %s FAILED\033[0m\n' "$name"; fi
  timings+=("$name $((SECONDS - t0))s")
}

run lint bash scripts/lint.sh
# cargo-nextest runs the test binaries side by side (cargo test runs them one after the other),
# each test in its own process, six at a time: most server tests wait on real processes
# (redis-server, Sentinel failovers, a Cluster, slow-client timeouts), not on the CPU. Every
# test runs (--no-fail-fast, no retries); the long ones start first (.config/nextest.toml).
# Doc tests are not nextest's: `cargo test --doc`.
# Without cargo-nextest, `cargo test --workspace` runs the same tests one binary at a time.
native_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    local rc=0
    cargo nextest run --workspace --locked --no-fail-fast --test-threads "${TESSERA_NATIVE_THREADS:-6}" || rc=1
    cargo test --workspace --locked --doc || rc=1
    return "$rc"
  fi
  echo "cargo-nextest not found: cargo test runs the binaries one at a time"
  cargo test --workspace --locked
}
run native native_tests
# The browser tests are one binary (tests/web/: the runner bundles it and starts the browser
# once); the page runs every test of it in turn, longer than the runner's default 20 s budget.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-240}"
run browser wasm-pack test --headless --chrome --mode no-install
run browser-firefox wasm-pack test --headless --firefox --mode no-install
run package build_pkg
run server-binary cargo build --locked -p tessera-server
if ls tests/e2e/*.test.mjs >/dev/null 2>&1; then
  # Test files side by side: each has its own server(s) on free ports, its own browser with a
  # new profile, and spends most of its time waiting on the SDK's timers (token expiry, idle
  # timeout), not on the CPU. The multi-tab scenarios are split over engines-{1,2,3}.test.mjs
  # (tests/e2e/engines/suite.mjs) for the same reason. WebKitGTK runs its parts one after the
  # other: each WebKitWebDriver command takes 0.3-0.6 s, and with a second WebKitGTK beside it
  # the idle scenario's input reached tab 0 too late (it warned while in use; seen twice).
  run e2e node --test --test-concurrency=3 tests/e2e/
  run e2e-firefox env TESSERA_E2E_ENGINE=firefox node --test --test-concurrency=3 tests/e2e/engines-*.test.mjs
  run e2e-webkit env TESSERA_E2E_ENGINE=webkit node --test --test-concurrency=1 tests/e2e/engines-*.test.mjs
else
  failed+=("e2e (no tests/e2e/*.test.mjs found)")
fi
if [ -f tests/consumer/run.mjs ]; then
  run consumer node tests/consumer/run.mjs
else
  failed+=("consumer (tests/consumer/run.mjs missing)")
fi

echo
echo "layer times: $(IFS=,; echo "${timings[*]}" | sed 's/,/, /g')"
echo "layers passed: ${passed[*]:-none}"
[ "${#failed[@]}" -eq 0 ] || echo "layers FAILED: ${failed[*]}"
echo "test layers: ${#passed[@]} passed, ${#failed[@]} failed"
[ "${#failed[@]}" -eq 0 ]
