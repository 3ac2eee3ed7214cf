#!/usr/bin/env bash
# Idempotent setup: installs what the demo and the tests need, and nothing that is
# already present at the right version. Called by scripts/demo.sh and scripts/test.sh,
# so a fresh machine needs no manual step. Safe to run again and again.
#
# What it installs (only when missing):
#   Debian:   chromium, chromium-driver, redis-server   (apt-get)
#             firefox-esr; webkit2gtk-driver (WebKitWebDriver + WebKitGTK's MiniBrowser) and
#             xvfb (WebKitGTK needs a display); openssl (the HTTPS front of the WebKit e2e runs)
#   rustup:   the toolchain pinned in rust-toolchain.toml, its wasm32 target and rust-src
#   cargo:    wasm-pack 0.15.1, wasm-bindgen-cli at the exact version in Cargo.lock,
#             geckodriver 0.37.1 (Firefox's WebDriver, for wasm-pack and the e2e tests)
#   npm:      the dev tooling in package.json (binaryen for wasm-opt, esbuild, typescript,
#             playwright-core, selenium-webdriver)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WASM_PACK_VERSION="0.15.1"
GECKODRIVER_VERSION="0.37.1"
# The CLI must equal the library version wasm-bindgen in Cargo.lock (TOOLCHAIN pitfall 2).
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)"

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] FAILED:\033[0m %s\n' "$*" >&2; exit 1; }

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# ---- Debian packages -------------------------------------------------------------------
need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
[ -x /usr/bin/firefox-esr ] || need_apt+=(firefox-esr)
[ -x /usr/bin/WebKitWebDriver ] || need_apt+=(webkit2gtk-driver)
[ -x /usr/bin/Xvfb ] || need_apt+=(xvfb)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ "${#need_apt[@]}" -gt 0 ]; then
  say "installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq || die "apt-get update (needed for ${need_apt[*]})"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null \
    || die "apt-get install ${need_apt[*]}"
  # Redis is started by the test scripts on their own port; the distro service is not needed.
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
fi

# ---- Rust toolchain + wasm32 target -------------------------------------------------------
command -v rustup >/dev/null 2>&1 || die "rustup is not on PATH (the Rust toolchain is required)"
targets="$(rustup target list --installed 2>/dev/null || true)"  # read whole: grep -q would close the pipe early
if ! grep -qx wasm32-unknown-unknown <<<"$targets"; then
  say "adding rustup target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown >/dev/null || die "rustup target add wasm32-unknown-unknown"
fi
# The package build rebuilds `core`/`alloc` for the module from the toolchain's sources.
components="$(rustup component list --installed 2>/dev/null || true)"  # read whole: grep -q would close the pipe early
if ! grep -q '^rust-src' <<<"$components"; then
  say "adding rustup component rust-src"
  rustup component add rust-src >/dev/null || die "rustup component add rust-src"
fi

# ---- cargo-installed tools ----------------------------------------------------------------
if [ "$(wasm-pack --version 2>/dev/null || true)" != "wasm-pack $WASM_PACK_VERSION" ]; then
  say "installing wasm-pack $WASM_PACK_VERSION (about 90 s, once)"
  cargo install wasm-pack --version "$WASM_PACK_VERSION" --locked --quiet || die "cargo install wasm-pack $WASM_PACK_VERSION"
fi
if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2-3 min, once)"
  # Without --locked: its lockfile pins a webpki-roots version the registry here lacks.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --quiet || die "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION"
fi

# awk reads all of its input: `head -1` would close the pipe early and geckodriver panics on it.
if [ "$(geckodriver --version 2>/dev/null | awk 'NR == 1 {print $2}')" != "$GECKODRIVER_VERSION" ]; then
  say "installing geckodriver $GECKODRIVER_VERSION (Firefox's WebDriver; about 2-3 min, once)"
  cargo install geckodriver --version "$GECKODRIVER_VERSION" --locked --quiet \
    || cargo install geckodriver --version "$GECKODRIVER_VERSION" --quiet \
    || die "cargo install geckodriver $GECKODRIVER_VERSION"
fi

# ---- npm dev tooling ----------------------------------------------------------------------
if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -x node_modules/.bin/esbuild ] || [ ! -x node_modules/.bin/tsc ] || [ ! -d node_modules/playwright-core ] \
   || [ ! -d node_modules/selenium-webdriver ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  command -v npm >/dev/null 2>&1 || die "npm is not on PATH (Node.js 20+ is required)"
  say "installing npm dev tooling (binaryen, esbuild, typescript, playwright-core, selenium-webdriver)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null || die "npm ci"
fi

say "ready: $(wasm-pack --version), $(wasm-bindgen --version), wasm-opt $(node_modules/.bin/wasm-opt --version | awk '{print $3}'), $(redis-server --version | awk '{print $1, $3}')"
say "browsers: $(/usr/bin/chromium --version 2>/dev/null | head -1); $(/usr/bin/firefox-esr --version 2>/dev/null | head -1) + $(geckodriver --version | awk 'NR == 1'); WebKitGTK $(dpkg-query -W -f='${Version}' webkit2gtk-driver 2>/dev/null) (WebKitWebDriver, Xvfb)"
