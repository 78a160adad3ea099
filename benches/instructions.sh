#!/usr/bin/env bash
# Instructions per request, counted by callgrind: unaffected by whatever else the machine does.
# Only the request loop is counted (--toggle-collect), after a warm-up; each variant runs with N
# and 2N requests and the difference divided by N is the per-request cost. Every variant is
# measured RUNS times and the median is shown (randomly seeded hashing still varies a little).
# Variants: benches/requests.rs. The last table compares the same variants built without and with
# unhandled's cargo feature `opentelemetry`.
# The subscriber table: an application's subscriber without and with unhandled::subscriber::layer().
# The frames table: instructions per frame of a streamed response body (benches/frames.rs), the
# body wrappers of unhandled and of tower-http's TraceLayer side by side.
# The tasks table: instructions per task a handler spawns, plain and reported (benches/tasks.rs).
# The stack table (ONLY=stack, not in the default run): unhandled::layer() + LoggingLayer against
# TraceLayer + CatchPanicLayer, at DEBUG and INFO, a 200 and a plain 500; and what fmt costs for
# each stack's failure event alone (event_*).
#   bash benches/instructions.sh           # N=2000 RUNS=3; ONLY=success, errors, subscriber, frames, tasks or feature
#   BEFORE=path/to/requests bash benches/instructions.sh  # also: the same variants built from another commit
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/demo.sh
n=${N:-2000}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --quiet --release -p unhandled-benches --bin requests
cp target/release/requests "$work/requests"
cargo build --quiet --release -p unhandled-benches --bin frames
cp target/release/frames "$work/frames"
cargo build --quiet --release -p unhandled-benches --bin tasks
cp target/release/tasks "$work/tasks"
cargo build --quiet --release -p unhandled-benches --bin requests --features opentelemetry
cp target/release/requests "$work/requests-opentelemetry"
# count BINARY VARIANT REQUESTS: instructions collected in the request loop.
count() {
  valgrind --tool=callgrind --toggle-collect='*serve_counted*' --callgrind-out-file=/dev/null "$1" "$2" "$3" 2>&1 |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
# table BASELINE VARIANT...: one row per variant, with its ratio to the first and what it adds.
table() {
  local base=$1 base_count
  base_count=$(per_request count "$work/requests" "$base")
  printf '| variant | instructions per request | ÷ %s | added to %s |\n|---|---:|---:|---:|\n' "$base" "$base"
  printf '| %s | %d | 1.000 | 0 |\n' "$base" "$base_count"
  shift
  for variant in "$@"; do
    awk -v v="$variant" -v p="$(per_request count "$work/requests" "$variant")" -v b="$base_count" \
      'BEGIN { printf "| %s | %d | %.3f | %d |\n", v, p, p / b, p - b }'
  done
}
# count_frames VARIANT FRAMES: instructions collected while one response of FRAMES frames is read.
count_frames() {
  valgrind --tool=callgrind --toggle-collect='*read_counted*' --callgrind-out-file=/dev/null "$work/frames" "$1" "$2" 2>&1 |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
# count_tasks VARIANT TASKS: instructions collected while one request spawns and awaits TASKS tasks.
count_tasks() {
  valgrind --tool=callgrind --toggle-collect='*spawn_counted*' --callgrind-out-file=/dev/null "$work/tasks" "$1" "$2" 2>&1 |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
# Variants to run, by name (default: all tables).
only=${ONLY:-success errors subscriber frames tasks feature}
if [[ $only == *success* ]]; then
  echo "Successful requests:"; echo
  table bare pass_through unhandled catch_panic logging_disabled
  echo; echo "Two layers, in two Router::layer calls and in one:"; echo
  table unhandled two_layer_calls one_layer_call
fi
if [[ $only == *errors* ]]; then
  echo; echo "Failing requests, against a layer that does nothing (axum's route boxing cancels out):"; echo
  table error_pass_through error_unhandled
  echo
  table status_pass_through status_unhandled
  echo
  table app_error_pass_through app_error_unhandled app_error_extension_logs app_error_trace_logs
fi
if [[ $only == *subscriber* ]]; then
  echo; echo "An application's subscriber (global INFO filter, fmt to a sink), without and with unhandled::subscriber::layer():"; echo
  table subscribed subscribed_layer
  echo
  table subscribed_debug subscribed_debug_layer
fi
if [[ $only == *frames* ]]; then
  echo; echo "Per frame of a streamed response body (a subscriber at DEBUG writing to a sink for all):"; echo
  base_count=$(per_request count_frames pass_through)
  printf '| variant | instructions per frame | added to pass_through |\n|---|---:|---:|\n'
  printf '| pass_through | %d | 0 |\n' "$base_count"
  for variant in unhandled logging trace_layer; do
    per=$(per_request count_frames "$variant")
    printf '| %s | %d | %d |\n' "$variant" "$per" $((per - base_count))
  done
fi
if [[ $only == *stack* ]]; then
  echo; echo "The whole stack, unhandled against tower-http, under a fmt subscriber writing to a sink:"; echo
  printf '| subscriber level | request | unhandled stack | tower-http stack | tower-http ÷ unhandled |\n|---|---|---:|---:|---:|\n'
  for level in debug info; do
    for request in ok 500; do
      ours=$(per_request count "$work/requests" "stack_unhandled_${level}_${request}")
      theirs=$(per_request count "$work/requests" "stack_tower_${level}_${request}")
      awk -v l="${level^^}" -v r="$request" -v o="$ours" -v t="$theirs" \
        'BEGIN { printf "| %s | %s | %d | %d | %.3f |\n", l, (r == "ok" ? 200 : 500), o, t, t / o }'
    done
  done
  echo; echo "A failure event alone, emitted by a handler, under the same subscriber at INFO:"; echo
  table event_none event_message event_tower event_unhandled
fi
if [[ $only == *tasks* ]]; then
  echo; echo "Per task a request's handler spawns, polls and awaits (benches/tasks.rs):"; echo
  printf '| variant | instructions per task | added to its plain spawn |\n|---|---:|---:|\n'
  for pair in "plain reported" "plain_failing reported_failing"; do
    set -- $pair
    base=$(per_request count_tasks "$1")
    per=$(per_request count_tasks "$2")
    printf '| %s | %d | 0 |\n| %s | %d | %d |\n' "$1" "$base" "$2" "$per" $((per - base))
  done
fi
if [[ -n ${BEFORE:-} ]]; then
  echo; echo "The same variants built from $BEFORE and from this tree:"; echo
  printf '| variant | before | now | change |\n|---|---:|---:|---:|\n'
  for variant in unhandled error_unhandled status_unhandled app_error_unhandled logging_disabled logging_to_sink; do
    before=$(per_request count "$BEFORE" "$variant")
    now=$(per_request count "$work/requests" "$variant")
    awk -v v="$variant" -v b="$before" -v n="$now" 'BEGIN { printf "| %s | %d | %d | %+.2f %% |\n", v, b, n, (n - b) * 100 / b }'
  done
fi
if [[ $only == *feature* ]]; then
  echo; echo "The feature opentelemetry: the same variants built without and with it:"; echo
  printf '| variant | without | with | added |\n|---|---:|---:|---:|\n'
  for variant in unhandled unhandled_traceparent error_unhandled logging_to_sink logging_to_sink_traceparent; do
    without=$(per_request count "$work/requests" "$variant")
    with=$(per_request count "$work/requests-opentelemetry" "$variant")
    printf '| %s | %d | %d | %d |\n' "$variant" "$without" "$with" $((with - without))
  done
fi
