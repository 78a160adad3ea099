#!/usr/bin/env bash
# Loopback HTTP throughput of the release demo server, side by side: bare (no layer), pass-through
# (a layer that does nothing: what axum's per-route boxing costs any Router::layer) and layered
# (unhandled::layer()). The three servers run at once, all pinned to core 0, and wrk (Debian's
# package) on core 1 loads one at a time, in short bursts: each round loads GET /ok on each
# variant, then the always-failing GET /error on each, the order of the variants rotating from
# round to round, so that the host's slow swings hit every variant alike. Before measuring, the
# script proves which server is which variant (the response header x-unhandled-variant), and
# after, that only the layered one counted /error in /metrics. Prints every round, the medians of
# the per-round ratios per route, and the cost per failing request. 127.0.0.1 only, bounded by
# ROUNDS and DURATION.
#   bash benches/wrk.sh            # ROUNDS=15 DURATION=2s CONNECTIONS=32
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/demo.sh
rounds=${ROUNDS:-15} duration=${DURATION:-2s} connections=${CONNECTIONS:-32}
variants=(bare pass-through layered)

if ! command -v wrk >/dev/null || ! command -v taskset >/dev/null || ! command -v curl >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk util-linux curl >/dev/null
fi
cargo build --quiet --release --example server
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# start VARIANT: serves the demo as VARIANT on core 0; sets address[VARIANT].
declare -A address
start() {
  start_demo "$1" "$work/$1.log" taskset -c 0
  pids+=("$DEMO_PID")
  address[$1]=$DEMO_ADDRESS
}

# rate VARIANT PATH: requests/s of wrk on core 1 against VARIANT's server.
rate() {
  taskset -c 1 wrk -t1 -c"$connections" -d"$duration" "http://${address[$1]}$2" >"$work/wrk.txt"
  if [ "$2" = /ok ] && grep -q "Non-2xx" "$work/wrk.txt"; then cat "$work/wrk.txt" >&2; exit 1; fi
  awk '/^Requests\/sec:/ {print $2}' "$work/wrk.txt"
}

# ratio A B: A / B to four places.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", a / b}'; }
# Server time per failing request is 1/rate (one core serves); a layer's share is the difference.
cost() { awk -v l="$1" -v b="$2" 'BEGIN {printf "%.0f", (1 / l - 1 / b) * 1e9}'; }

for variant in "${variants[@]}"; do start "$variant"; done
declare -A rates
ok_ratios=() error_ratios=() ok_boxing=() error_boxing=() ok_own=() error_own=() costs=() own_costs=()
for round in $(seq "$rounds"); do
  shift_by=$((round % 3))
  order=("${variants[@]:shift_by}" "${variants[@]:0:shift_by}")
  for path in /ok /error; do
    for variant in "${order[@]}"; do rates[$variant$path]=$(rate "$variant" "$path"); done
  done
  ok_ratios+=("$(ratio "${rates[layered/ok]}" "${rates[bare/ok]}")")
  error_ratios+=("$(ratio "${rates[layered/error]}" "${rates[bare/error]}")")
  ok_boxing+=("$(ratio "${rates[pass-through/ok]}" "${rates[bare/ok]}")")
  error_boxing+=("$(ratio "${rates[pass-through/error]}" "${rates[bare/error]}")")
  ok_own+=("$(ratio "${rates[layered/ok]}" "${rates[pass-through/ok]}")")
  error_own+=("$(ratio "${rates[layered/error]}" "${rates[pass-through/error]}")")
  costs+=("$(cost "${rates[layered/error]}" "${rates[bare/error]}")")
  own_costs+=("$(cost "${rates[layered/error]}" "${rates[pass-through/error]}")")
  echo "round $round (${order[*]}): /ok bare ${rates[bare/ok]} pass-through ${rates[pass-through/ok]}" \
    "layered ${rates[layered/ok]} req/s; /error bare ${rates[bare/error]}" \
    "pass-through ${rates[pass-through/error]} layered ${rates[layered/error]} req/s"
done

for variant in "${variants[@]}"; do
  counted=$(curl -s "http://${address[$variant]}/metrics" | grep -c 'http_server_unhandled_errors_total{.*route="/error"' || true)
  if [ "$variant" = layered ] && [ "$counted" = 0 ]; then echo "the layered variant counted no /error" >&2; exit 1; fi
  if [ "$variant" != layered ] && [ "$counted" != 0 ]; then echo "the $variant variant counted /error" >&2; exit 1; fi
done
echo "medians of the per-round ratios:"
echo "  layered / bare:              /ok $(median "${ok_ratios[@]}"), /error $(median "${error_ratios[@]}")"
echo "  pass-through / bare:         /ok $(median "${ok_boxing[@]}"), /error $(median "${error_boxing[@]}")"
echo "  layered / pass-through:      /ok $(median "${ok_own[@]}"), /error $(median "${error_own[@]}")"
echo "median cost per failing request: $(median "${costs[@]}") ns of server time over bare," \
  "$(median "${own_costs[@]}") ns over pass-through"
