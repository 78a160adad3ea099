#!/usr/bin/env bash
# Instructions the release demo server spends per HTTP request, counted by callgrind: what
# benches/wrk.sh measures in time, without the machine's noise. curl sends the requests one after
# another over one keep-alive connection on 127.0.0.1; only the connection's task is counted
# (--toggle-collect on axum::serve's handle_connection: reading, parsing, routing, the layers, the
# handler, writing; not tokio's scheduler, not the kernel). Each variant serves N and then 2N
# requests after a warm-up; the difference divided by N is the per-request count, the median of
# RUNS runs is shown. Before counting, the script checks the server's x-unhandled-variant header.
# Variants (examples/server.rs, UNHANDLED_BARE): bare (no layer), pass-through (a layer that does
# nothing: axum's per-route boxing alone), catch-panic (tower-http's CatchPanicLayer), layered
# (unhandled::layer()).
# ONLY=stack: the whole stack a user runs instead, stack (unhandled::layer() + LoggingLayer) against
# tower-stack (tower-http's TraceLayer + CatchPanicLayer), GET /ok and GET /app-error (a plain 500),
# the demo's fmt subscriber at INFO (RUST_LOG=info) and with both stacks' request events at DEBUG.
#   bash benches/server_instructions.sh     # N=500 RUNS=3; PATHS="/ok" for one path; ONLY=stack
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/demo.sh
n=${N:-500}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
cargo build --quiet --release --example server
work=$(mktemp -d)
pid=
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# requests ADDRESS PATH COUNT: a curl config sending COUNT requests on one connection.
requests() {
  for _ in $(seq "$3"); do printf 'url = "http://%s%s"\noutput = "/dev/null"\n' "$1" "$2"; done >"$work/curl.cfg"
}

# count VARIANT PATH REQUESTS: instructions of the server's connection tasks.
count() {
  start_demo "$1" "$work/server.log" \
    valgrind --tool=callgrind --toggle-collect='*handle_connection*' --callgrind-out-file=/dev/null
  pid=$DEMO_PID
  requests "$DEMO_ADDRESS" "$2" 10
  curl -s -K "$work/curl.cfg"
  requests "$DEMO_ADDRESS" "$2" "$3"
  curl -s -K "$work/curl.cfg"
  kill -INT "$pid"
  wait "$pid" || true
  pid=
  sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$work/server.log"
}

if [ "${ONLY:-}" = stack ]; then
  echo
  echo "The whole stack, instructions of the server per request:"
  echo
  printf '| RUST_LOG | request | stack | tower-stack | tower-stack ÷ stack |\n|---|---|---:|---:|---:|\n'
  for log in info,tower_http=debug,unhandled=debug info; do
    for path in /ok /app-error; do
      ours=$(DEMO_LOG=$log per_request count stack "$path")
      theirs=$(DEMO_LOG=$log per_request count tower-stack "$path")
      awk -v l="$log" -v p="$path" -v o="$ours" -v t="$theirs" \
        'BEGIN { printf "| `%s` | `GET %s` | %d | %d | %.3f |\n", l, p, o, t, t / o }'
    done
  done
  exit 0
fi

for path in ${PATHS:-/ok /error}; do
  echo
  echo "GET $path, instructions of the server per request:"
  echo
  printf '| variant | instructions per request | ÷ bare | added to bare |\n|---|---:|---:|---:|\n'
  base=
  for variant in bare pass-through catch-panic layered; do
    value=$(per_request count "$variant" "$path")
    base=${base:-$value}
    awk -v v="$variant" -v p="$value" -v b="$base" \
      'BEGIN { printf "| %s | %d | %.3f | %d |\n", v, p, p / b, p - b }'
  done
done
