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
  # The shipped module only (both targets; tests and native builds are untouched): panic
  # locations without file paths, `Debug` compiled out. A panic is a trap there and nothing
  # formats, so nothing is lost (bench/size.md: -78 B brotli). `-Z` flags on the pinned stable
  # compiler need RUSTC_BOOTSTRAP=1, set for these two commands only. RUSTFLAGS replaces the
  # target rustflags of .cargo/config.toml, so its stack size is repeated here.
  # `core` and `alloc` are rebuilt from rust-src for the module (CARGO_UNSTABLE_BUILD_STD) with
  # `-Cpanic=immediate-abort`: a panic anywhere, the standard library's included, is a bare trap,
  # so no panic message or location is left in the data segment (bench/size.md: -542 B brotli).
  local flags="-C link-arg=-zstack-size=65536 -Zlocation-detail=none -Zfmt-debug=none -Zunstable-options -Cpanic=immediate-abort"
  local std="core,alloc"
  RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=$std RUSTFLAGS="$flags" wasm-pack --quiet build --release --target web --out-dir pkg --mode no-install
  # package.json, bundled + minified JS, bundler/ and react/ entries (its bundler build inherits
  # the flags)
  RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=$std RUSTFLAGS="$flags" node scripts/package.mjs pkg
  node bench/size.mjs pkg
}
