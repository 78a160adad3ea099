#!/usr/bin/env bash
# Instructions per successful request, counted by callgrind (deterministic: the same binary and
# input give the same count whatever else the machine does). Each variant runs twice, with N and
# 2N requests; the difference divided by N is the per-request cost, setup cancelled out.
#   bash benches/instructions.sh           # N=2000
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-2000}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo build --quiet --release -p unhandled-benches --bin requests
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/requests "$1" "$2" 2>&1 |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
printf '| variant | instructions per request | ÷ bare | ÷ pass_through |\n|---|---:|---:|---:|\n'
declare -A per
for variant in bare pass_through unhandled catch_panic logging_disabled; do
  one=$(count "$variant" "$n") two=$(count "$variant" $((2 * n)))
  per[$variant]=$(( (two - one) / n ))
done
for variant in bare pass_through unhandled catch_panic logging_disabled; do
  awk -v v="$variant" -v p="${per[$variant]}" -v b="${per[bare]}" -v t="${per[pass_through]}" \
    'BEGIN { printf "| %s | %d | %.3f | %.3f |\n", v, p, p / b, p / t }'
done
