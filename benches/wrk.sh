#!/usr/bin/env bash
# Loopback HTTP throughput of the release demo server with and without unhandled::layer(), side
# by side: the server pinned to core 0, wrk (Debian's package) to core 1; the two variants
# alternate ROUNDS times, each loading GET /ok and then the always-failing GET /error. Before a
# variant is measured the script proves which one it is: the response header
# x-unhandled-variant, and after the failing load whether /metrics counted /error (only the
# layered variant does). Prints every round, the median of the pairwise ratios (layered / bare)
# per route, and the cost per failing request. 127.0.0.1 only, bounded by DURATION.
#   bash benches/wrk.sh            # ROUNDS=5 DURATION=5s CONNECTIONS=32
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5} duration=${DURATION:-5s} connections=${CONNECTIONS:-32}

if ! command -v wrk >/dev/null || ! command -v taskset >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk util-linux >/dev/null
fi
cargo build --quiet --release --example server
work=$(mktemp -d)
pid=
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# rate ADDRESS PATH: requests/s of wrk on core 1.
rate() {
  taskset -c 1 wrk -t1 -c"$connections" -d"$duration" "http://$1$2" >"$work/wrk.txt"
  awk '/^Requests\/sec:/ {print $2}' "$work/wrk.txt"
}

# run VARIANT: serves the demo as VARIANT (bare or layered) on core 0; prints "OK_RATE ERROR_RATE".
run() {
  local variant=$1 address= seen counted
  UNHANDLED_BARE=$([ "$variant" = bare ] && echo 1 || echo 0) ADDR=127.0.0.1:0 RUST_LOG=off \
    UNHANDLED_ERRORS_REPORT_INTERVAL=0 taskset -c 0 target/release/examples/server >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    address=$(sed -n 's|^listening on http://\([0-9.:]*\).*|\1|p' "$work/server.log")
    [ -n "$address" ] && break
    sleep 0.1
  done
  [ -n "$address" ] || { cat "$work/server.log" >&2; exit 1; }
  seen=$(curl -s -D - -o /dev/null "http://$address/ok" | tr -d '\r' | sed -n 's/^x-unhandled-variant: //p')
  [ "$seen" = "$variant" ] || { echo "expected variant $variant, the server says '$seen'" >&2; exit 1; }
  local ok error
  ok=$(rate "$address" /ok)
  grep -q "Non-2xx" "$work/wrk.txt" && { cat "$work/wrk.txt" >&2; exit 1; }
  error=$(rate "$address" /error)
  counted=$(curl -s "http://$address/metrics" | grep -c 'http_server_unhandled_errors_total{.*route="/error"' || true)
  if [ "$variant" = layered ] && [ "$counted" = 0 ]; then echo "layered variant counted no /error" >&2; exit 1; fi
  if [ "$variant" = bare ] && [ "$counted" != 0 ]; then echo "bare variant counted /error" >&2; exit 1; fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  echo "$ok $error"
}

ok_ratios=() error_ratios=() costs=()
for round in $(seq "$rounds"); do
  read -r bare_ok bare_error < <(run bare)
  read -r layered_ok layered_error < <(run layered)
  ok_ratios+=("$(awk -v l="$layered_ok" -v b="$bare_ok" 'BEGIN {printf "%.4f", l / b}')")
  error_ratios+=("$(awk -v l="$layered_error" -v b="$bare_error" 'BEGIN {printf "%.4f", l / b}')")
  # Server time per failing request is 1/rate (one core serves); the layer's share is the difference.
  costs+=("$(awk -v l="$layered_error" -v b="$bare_error" 'BEGIN {printf "%.0f", (1 / l - 1 / b) * 1e9}')")
  echo "round $round: /ok bare $bare_ok layered $layered_ok req/s (${ok_ratios[-1]}); /error bare $bare_error layered $layered_error req/s (${error_ratios[-1]}; ${costs[-1]} ns/error)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo "median of pairwise ratios (layered / bare): /ok $(median "${ok_ratios[@]}"), /error $(median "${error_ratios[@]}")"
echo "median cost per failing request: $(median "${costs[@]}") ns of server time"
