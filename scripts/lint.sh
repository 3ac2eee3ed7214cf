#!/usr/bin/env bash
# Quality gates, the first layer of scripts/test.sh (also runnable alone):
#   fmt           cargo fmt --all --check                     (both crates: tessera, tessera-server)
#   clippy        cargo clippy --workspace --all-targets -D warnings   (both crates, native)
#   clippy-wasm32 cargo clippy -p tessera --all-targets --target wasm32-unknown-unknown -D warnings
#   bundle        src/browser/session.js is the bundle of src/browser/js/ (scripts/bundle-js.mjs)
#   types         tsc -p tsconfig.json: checkJs, strict, over the JS that ships or demos
#                 (src/browser/js/*.js, src/{react,vue,svelte}/*.js, www/**/*.js) against the
#                 package's declarations, which this gate first generates from the Rust
#                 sources exactly as the package build does (wasm-bindgen) into target/types/.
# Every gate runs even when an earlier one fails; each prints its name, its time and, when it
# fails, its own output; the last lines name the gates that failed. Exit status 1 if any did.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

failed=()
passed=()
gate() { # gate NAME CMD...
  local name="$1"; shift
  local start=$SECONDS
  step "lint/$name: $*"
  if "$@"; then
    passed+=("$name")
    printf '\033[1;32m==> lint/%s passed (%d s)\033[0m\n' "$name" $((SECONDS - start))
  else
    failed+=("$name")
    printf '\033[1;31m==> lint/%s FAILED (%d s)\033[0m\n' "$name" $((SECONDS - start))
  fi
}

# The package's .d.ts: wasm-bindgen emits it from the `typescript_custom_section` in
# src/browser/types.rs; a debug build carries the same section as the release package.
package_types() {
  cargo build --locked --quiet -p tessera --lib --target wasm32-unknown-unknown || return 1
  rm -rf target/types
  wasm-bindgen --target web --out-dir target/types target/wasm32-unknown-unknown/debug/tessera.wasm || return 1
  [ -s target/types/tessera.d.ts ] || { echo "wasm-bindgen wrote no target/types/tessera.d.ts" >&2; return 1; }
}

type_check() {
  if [ ! -x node_modules/.bin/tsc ]; then
    echo "node_modules/.bin/tsc missing: run \`npm ci\` (scripts/setup.sh does)" >&2
    return 1
  fi
  package_types || { echo "could not generate the package's declarations" >&2; return 1; }
  # A check over no files passes: make sure every group is really in the program.
  local files missing=()
  files="$(node_modules/.bin/tsc -p tsconfig.json --listFilesOnly)" || return 1
  for want in "$ROOT/target/types/tessera.d.ts" "$ROOT/src/browser/js/driver.js" "$ROOT/src/react/index.js" \
              "$ROOT/src/vue/index.js" "$ROOT/src/svelte/index.js" "$ROOT/www/main.js"; do
    grep -qx "$want" <<<"$files" || missing+=("$want")
  done
  if [ "${#missing[@]}" -ne 0 ]; then
    echo "tsconfig.json does not reach: ${missing[*]}" >&2
    return 1
  fi
  echo "type-checking $(grep -vc /node_modules/ <<<"$files") files (node_modules excluded from the count)"
  node_modules/.bin/tsc -p tsconfig.json --pretty false
}

gate fmt cargo fmt --all --check
gate clippy cargo clippy --workspace --all-targets --locked --quiet -- -D warnings
gate clippy-wasm32 cargo clippy -p tessera --all-targets --locked --quiet --target wasm32-unknown-unknown -- -D warnings
gate bundle node scripts/bundle-js.mjs --check
gate types type_check

echo
echo "lint gates passed: ${passed[*]:-none}"
if [ "${#failed[@]}" -ne 0 ]; then
  printf '\033[1;31mlint gates FAILED: %s\033[0m\n' "${failed[*]}"
  exit 1
fi
