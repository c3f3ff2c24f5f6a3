#!/bin/sh
# fuzz_long.sh - run herd's fuzz targets for a long time (tests/fuzz/).
#
#   tools/bench/fuzz_long.sh HOURS [BUILD_DIR]
#
# HOURS (may be fractional) is shared among the targets. With clang, the
# targets are built with libFuzzer (coverage-guided) and ASan in BUILD_DIR
# (default build-fuzz) from the seeds the plain driver dumps; without clang,
# the plain seeded mutation loop runs instead, a new seed per hour. Prints,
# per target, the runs and runs per second, and any crash input kept
# (libFuzzer writes crash-* into the target's work directory). Exit 1 if a
# target found anything.
set -eu
hours=${1:?usage: fuzz_long.sh HOURS [BUILD_DIR]}
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${2:-$src/build-fuzz}
targets="fuzz_registry_sync fuzz_handoff fuzz_replicas fuzz_control"
n=$(echo "$targets" | wc -w)
secs=$(awk -v h="$hours" -v n="$n" 'BEGIN { s = int(h * 3600 / n); print (s < 1 ? 1 : s) }')
found=0
if command -v clang >/dev/null 2>&1; then
    # the plain driver's build gives the seeds
    cmake -S "$src" -B "$build-seeds" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build-seeds" -j2 --target $targets >/dev/null
    cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DHERD_FUZZ_LIBFUZZER=ON -DHERD_SANITIZE=ON \
        -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
    cmake --build "$build" -j2 --target $targets >/dev/null
    for t in $targets; do
        work=$build/fuzz-work/$t
        mkdir -p "$work/corpus"
        "$build-seeds/tests/$t" -dump="$work/corpus" >/dev/null
        echo "== $t: libFuzzer for $secs s"
        (cd "$work" && "$build/tests/$t" -max_total_time="$secs" -print_final_stats=1 \
            corpus 2>&1 | grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|ERROR|SUMMARY|Test unit written" || true)
        if ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* >/dev/null 2>&1; then
            echo "$t: FOUND: $(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null)"
            found=1
        fi
    done
else
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERD_SANITIZE=ON >/dev/null
    cmake --build "$build" -j2 --target $targets >/dev/null
    for t in $targets; do
        left=$secs
        seed=1
        while [ "$left" -gt 0 ]; do
            chunk=$(( left < 3600 ? left : 3600 ))
            "$build/tests/$t" -runs=18446744073709551615 -max_total_time="$chunk" \
                -seed="$seed" || { echo "$t: FOUND with -seed=$seed"; found=1; }
            left=$(( left - chunk ))
            seed=$(( seed + 1 ))
        done
    done
fi
exit $found
