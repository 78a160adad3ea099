#!/usr/bin/env bash
# Instructions per request, counted by callgrind: unaffected by whatever else the machine does.
# Only the request loop is counted (--toggle-collect), after a warm-up; each variant runs with N
# and 2N requests and the difference divided by N is the per-request cost. Every variant is
# measured RUNS times and the median is shown (randomly seeded hashing still varies a little).
# Variants: benches/requests.rs.
#   bash benches/instructions.sh           # N=2000 RUNS=3; ONLY=errors for the failing tables
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-2000}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo build --quiet --release -p unhandled-benches --bin requests
once() {
  local one two
  one=$(valgrind --tool=callgrind --toggle-collect='*serve_counted*' --callgrind-out-file=/dev/null target/release/requests "$1" "$n" 2>&1 |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p')
  two=$(valgrind --tool=callgrind --toggle-collect='*serve_counted*' --callgrind-out-file=/dev/null target/release/requests "$1" $((2 * n)) 2>&1 |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p')
  echo $(( (two - one) / n ))
}
per_request() {
  for _ in $(seq "${RUNS:-3}"); do once "$1"; done | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}
# table BASELINE VARIANT...: one row per variant, with its ratio to the first and what it adds.
table() {
  local base=$1 base_count
  base_count=$(per_request "$base")
  printf '| variant | instructions per request | ÷ %s | added to %s |\n|---|---:|---:|---:|\n' "$base" "$base"
  printf '| %s | %d | 1.000 | 0 |\n' "$base" "$base_count"
  shift
  for variant in "$@"; do
    awk -v v="$variant" -v p="$(per_request "$variant")" -v b="$base_count" \
      'BEGIN { printf "| %s | %d | %.3f | %d |\n", v, p, p / b, p - b }'
  done
}
# Variants to run, by name (default: all tables).
only=${ONLY:-success errors}
if [[ $only == *success* ]]; then
  echo "Successful requests:"; echo
  table bare pass_through unhandled catch_panic logging_disabled
fi
if [[ $only == *errors* ]]; then
  echo; echo "Failing requests, against a layer that does nothing (axum's route boxing cancels out):"; echo
  table error_pass_through error_unhandled
  echo
  table app_error_pass_through app_error_extension_logs app_error_trace_logs
fi
