#!/usr/bin/env bash
# Loopback HTTP throughput of the release demo server, side by side: bare (no layer), pass-through
# (a layer that does nothing: what axum's per-route boxing costs any Router::layer) and layered
# (unhandled::layer()). The server is pinned to core 0, wrk (Debian's package) to core 1; the
# variants alternate ROUNDS times, each loading GET /ok and then the always-failing GET /error.
# Before a variant is measured the script proves which one it is: the response header
# x-unhandled-variant, and after the failing load whether /metrics counted /error (only the
# layered variant does). Prints every round, the medians of the pairwise ratios per route, and
# the cost per failing request. 127.0.0.1 only, bounded by DURATION.
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
  case $variant in bare) bare=1 ;; pass-through) bare=pass-through ;; *) bare=0 ;; esac
  UNHANDLED_BARE=$bare ADDR=127.0.0.1:0 RUST_LOG=off \
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
  if [ "$variant" != layered ] && [ "$counted" != 0 ]; then echo "$variant variant counted /error" >&2; exit 1; fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  echo "$ok $error"
}

# ratio A B: A / B to four places.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", a / b}'; }
# Server time per failing request is 1/rate (one core serves); a layer's share is the difference.
cost() { awk -v l="$1" -v b="$2" 'BEGIN {printf "%.0f", (1 / l - 1 / b) * 1e9}'; }
ok_ratios=() error_ratios=() ok_boxing=() error_boxing=() ok_own=() error_own=() costs=() own_costs=()
for round in $(seq "$rounds"); do
  read -r bare_ok bare_error < <(run bare)
  read -r pass_ok pass_error < <(run pass-through)
  read -r layered_ok layered_error < <(run layered)
  ok_ratios+=("$(ratio "$layered_ok" "$bare_ok")")
  error_ratios+=("$(ratio "$layered_error" "$bare_error")")
  ok_boxing+=("$(ratio "$pass_ok" "$bare_ok")")
  error_boxing+=("$(ratio "$pass_error" "$bare_error")")
  ok_own+=("$(ratio "$layered_ok" "$pass_ok")")
  error_own+=("$(ratio "$layered_error" "$pass_error")")
  costs+=("$(cost "$layered_error" "$bare_error")")
  own_costs+=("$(cost "$layered_error" "$pass_error")")
  echo "round $round: /ok bare $bare_ok pass-through $pass_ok layered $layered_ok req/s;" \
    "/error bare $bare_error pass-through $pass_error layered $layered_error req/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo "medians of the pairwise ratios:"
echo "  layered / bare:              /ok $(median "${ok_ratios[@]}"), /error $(median "${error_ratios[@]}")"
echo "  pass-through / bare:         /ok $(median "${ok_boxing[@]}"), /error $(median "${error_boxing[@]}")"
echo "  layered / pass-through:      /ok $(median "${ok_own[@]}"), /error $(median "${error_own[@]}")"
echo "median cost per failing request: $(median "${costs[@]}") ns of server time over bare," \
  "$(median "${own_costs[@]}") ns over pass-through"
