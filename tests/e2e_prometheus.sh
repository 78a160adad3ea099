#!/usr/bin/env bash
# End to end with a real Prometheus, on 127.0.0.1 only, bounded in time:
# two demo servers, a known number of requests each (returned errors, panics, an application
# error type's own 500 with and without its cause attached, 404s, logged failures, streamed bodies that
# fail or panic after their head), `promtool check metrics` on each /metrics,
# a Prometheus that scrapes both, and its HTTP API asked for the sums; then the alert rule checked
# and unit-tested with promtool. Everything started here is stopped by process id on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

ensure_prometheus() {
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then return; fi
  echo "installing Debian's prometheus package (its service is not started)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # A policy-rc.d that refuses keeps the package's init script from starting the service.
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [ "$created" = 1 ]; then rm -f "$policy"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work=$(mktemp -d)
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" != 0 ]; then
    for log in "$work"/*.log; do echo "--- $log"; tail -n 20 "$log"; done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

ensure_prometheus
cargo build --quiet --example server
server=${CARGO_TARGET_DIR:-target}/debug/examples/server

# start_server NAME [INTERVAL]: starts the demo on a free port (report interval 1s unless given),
# waits for its "listening on" line, and sets $address and $pid. (Not run in a command
# substitution: its process id must reach $pids here.)
start_server() {
  local name=$1
  ADDR=127.0.0.1:0 RUST_BACKTRACE=0 RUST_LOG=warn UNHANDLED_ERRORS_REPORT_INTERVAL=${2:-1s} \
    "$server" >"$work/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    address=$(sed -n 's|^listening on http://\([0-9.:]*\).*|\1|p' "$work/$name.log")
    if [ -n "$address" ]; then return; fi
    sleep 0.1
  done
  echo "server $name did not start" >&2
  return 1
}

# send ADDRESS PATH COUNT EXPECTED_STATUS
send() {
  local status
  for _ in $(seq "$3"); do
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$1$2")
    if [ "$status" != "$4" ]; then echo "GET $2 on $1 answered $status, expected $4" >&2; return 1; fi
  done
}

# send_stream ADDRESS PATH COUNT: a streamed 200 whose body fails after its first chunk; curl
# sees the head, the chunk and then a closed connection (exit 18), and must see the head.
send_stream() {
  local status
  for _ in $(seq "$3"); do
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$1$2" || true)
    if [ "$status" != 200 ]; then echo "GET $2 on $1 answered $status, expected 200" >&2; return 1; fi
  done
}

start_server a; a=$address
start_server b; b=$address
echo "instances: a=$a b=$b"
send "$a" /error 3 500; send "$a" /panic 2 500; send "$a" /not-found 4 404; send "$a" /ok 5 200
send "$b" /error 7 500; send "$b" /panic 1 500; send "$b" /not-found 2 404; send "$b" /ok 1 200
send "$b" /logged/error 6 500; send "$b" /logged/panic 2 500; send "$b" /logged/app-error 3 500
send "$a" /app-error 4 500; send "$b" /app-error 1 500; send "$b" /app-error/attached 2 500
send_stream "$a" /stream-error 3; send_stream "$b" /stream-error 2; send_stream "$b" /stream-panic 2
send_stream "$b" /logged/stream-error 4; send "$b" /ok 1 200

echo "== promtool check metrics"
for address in "$a" "$b"; do
  curl -s --max-time 5 "http://$address/metrics" >"$work/metrics.txt"
  if ! promtool check metrics <"$work/metrics.txt" >"$work/check.txt" 2>&1; then
    cat "$work/check.txt"; echo "promtool check metrics failed for $address" >&2; exit 1
  fi
  echo "$address: ok$( [ -s "$work/check.txt" ] && printf '; warnings:\n%s' "$(cat "$work/check.txt")")"
done

echo "== Prometheus"
cp examples/prometheus/alerts.yml "$work/alerts.yml"
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: unhandled-demo
    static_configs:
      - targets: ["$a"]
        labels: {demo: a}
      - targets: ["$b"]
        labels: {demo: b}
YAML
prometheus_port=$(free_port)
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prometheus_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)
api="http://127.0.0.1:$prometheus_port/api/v1"

# check_api: polls Prometheus until the targets are up and the sums are exactly what was sent.
python3 - "$api" <<'PY'
import json, sys, time, urllib.parse, urllib.request

api = sys.argv[1]
deadline = time.monotonic() + 90

def get(path, **params):
    url = f"{api}/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]

def query(expr, *labels):
    return {tuple(r["metric"].get(l, "") for l in labels): float(r["value"][1])
            for r in get("query", query=expr)["result"]}

expected_sum = {
    ("/error", "error"): 10.0, ("/panic", "panic"): 3.0,
    ("/app-error", "status"): 5.0, ("/app-error/attached", "error"): 2.0,
    ("/stream-error", "body"): 5.0, ("/stream-panic", "panic"): 2.0,
}
expected_per_instance = {
    ("a", "/error", "error"): 3.0, ("a", "/panic", "panic"): 2.0, ("a", "/app-error", "status"): 4.0,
    ("b", "/error", "error"): 7.0, ("b", "/panic", "panic"): 1.0, ("b", "/app-error", "status"): 1.0,
    ("b", "/app-error/attached", "error"): 2.0,
    ("a", "/stream-error", "body"): 3.0, ("b", "/stream-error", "body"): 2.0,
    ("b", "/stream-panic", "panic"): 2.0,
}
checks = {
    "sum by (route, kind)": (
        lambda: query("sum by (route, kind) (http_server_unhandled_errors_total)", "route", "kind"),
        expected_sum),
    "sum by (demo, route, kind)": (
        lambda: query("sum by (demo, route, kind) (http_server_unhandled_errors_total)", "demo", "route", "kind"),
        expected_per_instance),
}

last = None
while True:
    try:
        targets = get("targets")["activeTargets"]
        up = sorted(t["labels"]["demo"] for t in targets if t["health"] == "up")
        results = {name: run() for name, (run, _) in checks.items()}
        if up == ["a", "b"] and all(results[n] == e for n, (_, e) in checks.items()):
            break
        last = (up, results)
    except (OSError, ValueError) as error:  # Prometheus still starting
        last = error
    if time.monotonic() > deadline:
        sys.exit(f"Prometheus never showed the expected counts; last seen: {last}")
    time.sleep(0.5)

for name, (_, expected) in checks.items():
    print(f"{name}: {results[name]} == expected")
rules = get("rules")["groups"]
health = [(r["name"], r["health"]) for g in rules for r in g["rules"]]
assert health == [("UnhandledErrors", "ok")], health
print(f"rules loaded: {health}")
PY

echo "== promtool check rules / test rules"
promtool check rules examples/prometheus/alerts.yml
promtool test rules examples/prometheus/alerts_test.yml
echo "== SIGTERM: the demo stops gracefully and reports what is pending"
# An hour's interval: only the shutdown can write the report.
start_server term 1h
send "$address" /error 1 500
kill -TERM "$pid"
wait "$pid" || { echo "the demo exited with $? after SIGTERM" >&2; exit 1; }
grep -q "Observed 1 unhandled error in the last" "$work/term.log" ||
  { echo "no report after SIGTERM:" >&2; cat "$work/term.log" >&2; exit 1; }
echo "reported after SIGTERM"
echo "e2e prometheus: passed"
