#!/usr/bin/env bash
# Runs the demo: installs what is missing, builds the Wasm package into pkg/, builds
# tessera-server and starts it in demo mode on 127.0.0.1, serving www/ at / and pkg/ at
# /pkg/ on one origin with a persistent SQLite store under .tessera/. It prints the URL.
# Any tessera-server flag can be passed through, e.g. `bash scripts/demo.sh --access-ttl 30`,
# or set by environment (TESSERA_LISTEN=127.0.0.1:9000 ...).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash scripts/setup.sh
build_pkg
step "building tessera-server"
cargo build --locked --quiet -p tessera-server
mkdir -p .tessera
step "starting the demo (Ctrl-C stops it)"
export TESSERA_DEMO=1
export TESSERA_STORE="${TESSERA_STORE:-sqlite://.tessera/demo.db}"
exec target/debug/tessera-server --demo --www-dir www --pkg-dir pkg "$@"
