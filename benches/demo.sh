# Shell functions shared by benches/wrk.sh, benches/server_instructions.sh, benches/instructions.sh
# and tests/soak.sh; source it from the repository's root. It defines functions only.

# start_demo VARIANT LOG [COMMAND...]: starts the release demo server (target/release/examples/server)
# on 127.0.0.1 as VARIANT (bare, pass-through, catch-panic, layered, stack or tower-stack:
# examples/server.rs, UNHANDLED_BARE), run under COMMAND when given (taskset, valgrind), its output
# in LOG; the report interval is UNHANDLED_ERRORS_REPORT_INTERVAL, 0 when unset; its log filter
# DEMO_LOG (RUST_LOG), off when unset. Once it listens (within 60 s), sets DEMO_PID and
# DEMO_ADDRESS, and checks that its x-unhandled-variant header names VARIANT.
start_demo() {
  local variant=$1 log=$2 bare seen
  shift 2
  case $variant in
    bare) bare=1 ;;
    pass-through) bare=pass-through ;;
    catch-panic) bare=catch-panic ;;
    layered) bare=0 ;;
    stack | tower-stack) bare=$variant ;;
    *) echo "unknown demo variant $variant" >&2; return 1 ;;
  esac
  UNHANDLED_BARE=$bare ADDR=127.0.0.1:0 RUST_LOG=${DEMO_LOG:-off} RUST_BACKTRACE=0 \
    UNHANDLED_ERRORS_REPORT_INTERVAL=${UNHANDLED_ERRORS_REPORT_INTERVAL:-0} \
    "$@" target/release/examples/server >"$log" 2>&1 &
  DEMO_PID=$!
  DEMO_ADDRESS=
  for _ in $(seq 600); do
    DEMO_ADDRESS=$(sed -n 's|^listening on http://\([0-9.:]*\).*|\1|p' "$log")
    [ -n "$DEMO_ADDRESS" ] && break
    sleep 0.1
  done
  [ -n "$DEMO_ADDRESS" ] || { echo "the demo server did not start:" >&2; cat "$log" >&2; return 1; }
  seen=$(curl -s -D - -o /dev/null "http://$DEMO_ADDRESS/ok" | tr -d '\r' | sed -n 's/^x-unhandled-variant: //p')
  [ "$seen" = "$variant" ] || { echo "expected variant $variant, the server says '$seen'" >&2; return 1; }
}

# median VALUE...: the median of the values (the mean of the middle two for an even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'
}

# per_request COUNT ARG...: what one request costs, counted by `COUNT ARG... REQUESTS` (a command
# printing a total for a run of REQUESTS requests) as the difference between a run of 2N and one
# of N requests, divided by N (N is $n), so that a run's fixed costs cancel out; the median of
# RUNS (default 3) such differences.
per_request() {
  local runs=() one two
  for _ in $(seq "${RUNS:-3}"); do
    one=$("$@" "$n")
    two=$("$@" $((2 * n)))
    runs+=($(((two - one) / n)))
  done
  median "${runs[@]}"
}
