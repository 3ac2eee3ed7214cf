# Shared helpers for scripts/demo.sh and scripts/test.sh (sourced, not run).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# npm's wasm-opt (binaryen 132) must come before any system wasm-opt: Debian's v108
# cannot parse current rustc output (docs/toolchain.md).
export PATH="$ROOT/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

step() { printf '\n\033[1;36m==> %s\033[0m\n' "$*"; }

# Builds the SDK's npm package into pkg/ (web target: the demo imports it as an ES
# module) and prints its size.
build_pkg() {
  step "building the Wasm package (wasm-pack, release, web target) into pkg/"
  # The JS performer wasm-bindgen imports is the bundle of src/browser/js/: never stale.
  node scripts/bundle-js.mjs --check || return 1
  rm -rf pkg  # wasm-pack does not clean between targets (docs/toolchain.md)
  wasm-pack --quiet build --release --target web --out-dir pkg --mode no-install
  node scripts/package.mjs pkg  # package.json, bundled + minified JS, bundler/ and react/ entries
  node bench/size.mjs pkg
}
