#!/usr/bin/env bash
# ab_compare.sh - two builds of one benchmark side by side: run part by part,
# alternating the two binaries (A B, then B A, ...), so each pair of runs
# shares the machine's moment; then print, per figure, the median of A and
# of B and the median of the pairs' ratios B/A.
#
# Usage: ab_compare.sh BIN_A BIN_B PAIRS PART [PART...] [-- ARGS...]
#   each PART is passed as `--only PART`; ARGS go to every run.
# Output lines (DESIGN.md, "Benchmark output"):
#   bench ab <bench>_<metric> <ratio> x a=<median A> b=<median B> pairs=N unit=U
# A figure printed again in one run (another size) gets #2, #3 after its name.
# A ratio above 1 means B's figure is larger (for a rate: faster; for a time
# or a size: slower or larger). Bounded: PAIRS x parts runs, each as long as
# the benchmark's own deadlines let it be.
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 BIN_A BIN_B PAIRS PART [PART...] [-- ARGS...]" >&2
    exit 2
fi
bin_a=$1 bin_b=$2 pairs=$3
shift 3
parts=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do parts+=("$1"); shift; done
[ $# -gt 0 ] && shift
args=("$@")
case $pairs in '' | *[!0-9]*) echo "$0: PAIRS must be a number" >&2; exit 2 ;; esac
[ "$pairs" -ge 1 ] && [ "$pairs" -le 200 ] || { echo "$0: PAIRS must be 1..200" >&2; exit 2; }
for b in "$bin_a" "$bin_b"; do
    [ -x "$b" ] || { echo "$0: $b is not an executable" >&2; exit 2; }
done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run() { # side pair part
    local bin=$bin_a
    [ "$1" = b ] && bin=$bin_b
    "$bin" --only "$3" "${args[@]}" | sed "s/^/$1 $2 /" >>"$out/lines"
}
for ((i = 0; i < pairs; i++)); do
    for part in "${parts[@]}"; do
        if ((i % 2 == 0)); then run a "$i" "$part"; run b "$i" "$part"
        else run b "$i" "$part"; run a "$i" "$part"; fi
    done
done
python3 - "$out/lines" "$pairs" <<'PY'
import statistics, sys
from collections import defaultdict
path, pairs = sys.argv[1], int(sys.argv[2])
vals = defaultdict(lambda: defaultdict(dict))  # key -> pair -> side -> value
units = {}
counts = {}
for line in open(path):
    f = line.split()
    # side pair bench <bench> <metric> <value> <unit> ...
    if len(f) < 7 or f[2] != "bench":
        continue
    key = f[3] + "_" + f[4]
    try:
        v = float(f[5])
    except ValueError:
        continue
    # a figure printed again in one run (another size): its own key
    seen = counts[(f[0], f[1], key)] = counts.get((f[0], f[1], key), 0) + 1
    if seen > 1:
        key += f"#{seen}"
    vals[key][int(f[1])][f[0]] = v
    units[key] = f[6]
for key in sorted(vals):
    both = [p for p in vals[key].values() if "a" in p and "b" in p]
    if not both:
        print(f"ab_compare: {key}: no pair has both figures", file=sys.stderr)
        continue
    ratios = [p["b"] / p["a"] for p in both if p["a"] != 0]
    a = statistics.median(p["a"] for p in both)
    b = statistics.median(p["b"] for p in both)
    r = statistics.median(ratios) if ratios else float("nan")
    print(f"bench ab {key} {r:.3f} x a={a:g} b={b:g} pairs={len(both)} unit={units[key]}")
PY
