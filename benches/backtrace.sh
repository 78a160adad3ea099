#!/usr/bin/env bash
# What a backtrace costs, in instructions (callgrind): benches/backtrace.rs makes 16 errors at 16
# places, 40 frames deep, with backtraces on (RUST_BACKTRACE=1: each takes its one capture of the
# interval) and off (RUST_BACKTRACE=0); then resolves each to frame lines, twice.
#   bash benches/backtrace.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
# Line tables, as the reporting manual advises for release builds: resolution reads them.
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --quiet --release -p unhandled-benches --bin backtrace
count() {
  RUST_BACKTRACE=$1 valgrind --tool=callgrind --toggle-collect="$2" --callgrind-out-file=/dev/null \
    target/release/backtrace 2>&1 | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
off=$(count 0 '*capture_counted*')
on=$(count 1 '*capture_counted*')
# The first resolution alone: the second is its own function, collected separately.
both=$(count 1 '*resolve_counted*')
again=$(count 1 '*resolve_again_counted*')
RUST_BACKTRACE=1 target/release/backtrace
awk -v off="$off" -v on="$on" -v both="$both" -v again="$again" 'BEGIN {
  printf "| | instructions |\n|---|---:|\n"
  printf "| 16 errors, backtraces off | %d |\n", off
  printf "| 16 errors, each taking a backtrace | %d |\n", on
  printf "| one capture (the difference ÷ 16) | %d |\n", (on - off) / 16
  printf "| resolving the 16 the first time (reads the debug info) | %d |\n", both - again
  printf "| resolving the 16 again, per backtrace | %d |\n", again / 16
}'
