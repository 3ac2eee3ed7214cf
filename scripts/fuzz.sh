#!/usr/bin/env bash
# Fuzzes tessera-server's parsers with cargo-fuzz (libFuzzer).
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 600 s, every target)
# Targets: jwt headers json_bodies store_records dpop_proofs. FUZZ_JOBS=N runs at most N targets at a
# time (default: all at once; FUZZ_JOBS=1 runs them one after another, for small or shared
# machines). Works on stable Rust through RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags; no
# nightly toolchain is needed). Sanitizer: FUZZ_SANITIZER=address (default) or none.
# Logs: server/fuzz/logs/<target>.log; crashes: server/fuzz/artifacts/<target>/. The
# committed corpus server/fuzz/corpus/<target>/ seeds each run; new inputs go to
# server/fuzz/corpus-work/<target>/ (not committed). With FUZZ_MERGE=1, inputs that add
# coverage are merged into the committed corpus afterwards (libFuzzer -merge=1).
# Not part of scripts/test.sh: tests/fuzz_corpus.rs replays the committed corpora in plain
# `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/../server/fuzz"
secs="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(jwt headers json_bodies store_records dpop_proofs)
jobs="${FUZZ_JOBS:-${#targets[@]}}"
san="${FUZZ_SANITIZER:-address}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do cargo fuzz build -O -s "$san" "$t"; done
mkdir -p logs
declare -A pid_of=()
declare -A start_of=()
declare -A secs_of=()
rc=0
reap() { # waits for one running target to finish
  local t
  while :; do
    for t in "${!pid_of[@]}"; do
      if ! kill -0 "${pid_of[$t]}" 2>/dev/null; then
        if ! wait "${pid_of[$t]}"; then
          echo "fuzz $t: FAILED (see server/fuzz/logs/$t.log)"; rc=1
        fi
        secs_of[$t]=$(( $(date +%s) - ${start_of[$t]} ))
        unset "pid_of[$t]"
        return
      fi
    done
    sleep 1
  done
}
for t in "${targets[@]}"; do
  while [ ${#pid_of[@]} -ge "$jobs" ]; do reap; done
  mkdir -p "corpus/$t" "corpus-work/$t"
  start_of[$t]=$(date +%s)
  cargo fuzz run -O -s "$san" "$t" "corpus-work/$t" "corpus/$t" -- -max_total_time="$secs" \
    -rss_limit_mb=1024 -print_final_stats=1 >"logs/$t.log" 2>&1 &
  pid_of[$t]=$!
done
while [ ${#pid_of[@]} -gt 0 ]; do reap; done
for t in "${targets[@]}"; do
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$t.log")
  crashes=$(find "artifacts/$t" -type f 2>/dev/null | wc -l)
  work=$(find "corpus-work/$t" -type f | wc -l)
  echo "== $t: ${secs_of[$t]} s wall, ${execs:-?} execs, ${rate:-?} execs/s, corpus-work $work files, artifacts $crashes"
done
if [ "${FUZZ_MERGE:-0}" = 1 ]; then
  for t in "${targets[@]}"; do
    cargo fuzz run -O -s "$san" "$t" "corpus/$t" "corpus-work/$t" -- -merge=1 >"logs/$t.merge.log" 2>&1
    echo "== $t: corpus now $(ls "corpus/$t" | wc -l) files, $(du -sh "corpus/$t" | cut -f1)"
  done
fi
exit $rc
