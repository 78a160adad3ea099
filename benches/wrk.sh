#!/usr/bin/env bash
# Loopback HTTP throughput of the demo server with and without unhandled::layer(), side by side:
# wrk (Debian's package) against GET /ok, alternating the two builds ROUNDS times; prints the
# requests/s of each round, the medians and their ratio. 127.0.0.1 only, bounded by DURATION.
#   bash benches/wrk.sh            # ROUNDS=3 DURATION=10s CONNECTIONS=32
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3} duration=${DURATION:-10s} connections=${CONNECTIONS:-32}

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --quiet --release --example server
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# run VARIANT: serves the demo (UNHANDLED_BARE=1 for the bare router), loads /ok, prints requests/s.
run() {
  local bare=$1 address=
  if [ "$bare" = bare ]; then export UNHANDLED_BARE=1; else unset UNHANDLED_BARE; fi
  ADDR=127.0.0.1:0 RUST_LOG=off target/release/examples/server >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    address=$(sed -n 's|^listening on http://\([0-9.:]*\).*|\1|p' "$work/server.log")
    [ -n "$address" ] && break
    sleep 0.1
  done
  [ -n "$address" ] || { cat "$work/server.log"; exit 1; }
  wrk -t1 -c"$connections" -d"$duration" "http://$address/ok" >"$work/wrk.txt"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  grep -q "Non-2xx" "$work/wrk.txt" && { cat "$work/wrk.txt"; exit 1; }
  awk '/^Requests\/sec:/ {print $2}' "$work/wrk.txt"
}

bare=() layered=()
for round in $(seq "$rounds"); do
  bare+=("$(run bare)")
  layered+=("$(run layered)")
  echo "round $round: bare ${bare[-1]} req/s, unhandled::layer() ${layered[-1]} req/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
b=$(median "${bare[@]}") l=$(median "${layered[@]}")
echo "median: bare $b req/s, unhandled::layer() $l req/s, ratio $(awk -v l="$l" -v b="$b" 'BEGIN {printf "%.3f", l/b}')"
