#!/usr/bin/env bash
# Fuzzes tessera-server's parsers with cargo-fuzz (libFuzzer), all targets at once.
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 600 s, every target)
# Works on stable Rust through RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags). Sanitizer:
# FUZZ_SANITIZER=address (default) or none. Logs: server/fuzz/logs/<target>.log; crashes:
# server/fuzz/artifacts/<target>/. The committed corpus server/fuzz/corpus/<target>/ seeds
# each run; new inputs go to server/fuzz/corpus-work/<target>/ (not committed). With
# FUZZ_MERGE=1, inputs that add coverage are merged into the committed corpus afterwards
# (libFuzzer -merge=1). Not part of scripts/test.sh:
# tests/fuzz_corpus.rs replays the committed corpora in plain `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/../server/fuzz"
secs="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(jwt headers json_bodies store_records)
san="${FUZZ_SANITIZER:-address}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O -s "$san"
mkdir -p logs
pids=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "corpus-work/$t"
  cargo fuzz run -O -s "$san" "$t" "corpus-work/$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=1024 \
    -print_final_stats=1 >"logs/$t.log" 2>&1 &
  pids+=($!)
done
rc=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then echo "fuzz ${targets[$i]}: FAILED (see server/fuzz/logs/${targets[$i]}.log)"; rc=1; fi
done
for t in "${targets[@]}"; do
  echo "== $t: $(grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec' "logs/$t.log" | tr '\n' ' ')"
done
if [ "${FUZZ_MERGE:-0}" = 1 ]; then
  for t in "${targets[@]}"; do
    cargo fuzz run -O -s "$san" "$t" "corpus/$t" "corpus-work/$t" -- -merge=1 >"logs/$t.merge.log" 2>&1
    echo "== $t: corpus now $(ls "corpus/$t" | wc -l) files"
  done
fi
exit $rc
