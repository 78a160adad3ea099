#!/usr/bin/env bash
# Where a variant's instructions go, against another: callgrind's self cost per function (inlined
# code counted in the function it was inlined into), per request, for two variants of
# benches/requests.rs built with line tables, and the functions whose cost differs by 3 or more.
# The request loop alone is counted (--toggle-collect), as in benches/instructions.sh; N requests
# after a warm-up, so a run's fixed costs are spread over N.
#   bash benches/where.sh                         # unhandled against pass_through, N=2000
#   bash benches/where.sh error_unhandled error_pass_through
#   BIN=tasks bash benches/where.sh reported plain   # per task (benches/tasks.rs), N tasks
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-requests}
variant=${1:-unhandled}
base=${2:-pass_through}
# The function whose run is counted, in each binary.
case $bin in
  requests) counted='*serve_counted*' ;;
  tasks) counted='*spawn_counted*' ;;
  *) echo "BIN is requests or tasks, not $bin" >&2; exit 2 ;;
esac
n=${N:-2000}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A target directory of its own: line tables change the code a little, and must not replace the
# release build the other scripts count.
target=${CARGO_TARGET_DIR:-target}/where
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --quiet --release --target-dir "$target" \
  -p unhandled-benches --bin "$bin"
for v in "$base" "$variant"; do
  valgrind --tool=callgrind --toggle-collect="$counted" --callgrind-out-file="$work/$v.out" \
    "$target/release/$bin" "$v" "$n" >/dev/null 2>&1
  callgrind_annotate --threshold=100 --auto=no "$work/$v.out" >"$work/$v.txt"
done
python3 - "$work/$base.txt" "$work/$variant.txt" "$n" "$base" "$variant" <<'PY'
import re, sys
def self_costs(path):
    costs = {}
    for line in open(path):
        match = re.match(r'\s*([\d,]+) \([^)]*\)\s+(\S.*)', line)
        if not match or 'PROGRAM TOTALS' in line or '=>' in line:
            continue
        name = re.sub(r'\s*\[[^\]]*\]\s*$', '', match.group(2))
        # "file:function", where file is the inlined code's source: summed by function.
        file, colon, function = name.partition(':')
        if colon and ('/' in file or file.endswith('.S') or file == '???'):
            name = function
        costs[name] = costs.get(name, 0) + int(match.group(1).replace(',', ''))
    return costs
base, variant, n = self_costs(sys.argv[1]), self_costs(sys.argv[2]), float(sys.argv[3])
rows = sorted(((variant.get(k, 0) - base.get(k, 0)) / n, k) for k in set(base) | set(variant))
print(f"| function | {sys.argv[4]} | {sys.argv[5]} | difference |\n|---|---:|---:|---:|")
for difference, name in rows:
    if abs(difference) >= 3:
        short = name if len(name) <= 110 else name[:107] + '...'
        print(f"| `{short}` | {base.get(name, 0) / n:.0f} | {variant.get(name, 0) / n:.0f} | {difference:+.0f} |")
total = sum(difference for difference, _ in rows)
print(f"| all | | | {total:+.0f} |")
PY
