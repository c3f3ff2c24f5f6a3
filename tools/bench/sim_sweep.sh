#!/usr/bin/env bash
# sim_sweep.sh - run every case of every simulation program for many seeds.
#
#   tools/bench/sim_sweep.sh BUILD_DIR [SEEDS] [FIRST_SEED]
#
# SEEDS (default 1000) seeds per case from FIRST_SEED (default 1). The
# programs are SIM_SWEEP_PROGRAMS (names separated by spaces; default every
# simulation program). The cases
# come from the programs themselves (HERD_SIM_LIST=1) and run one process
# each, SIM_SWEEP_JOBS at a time (default: the number of cores), each within
# SIM_SWEEP_TIMEOUT_S seconds (default 120 + 2 per seed), so the sweep ends.
# Once all ran it prints, per case, in order:
#
#   bench sim TEST seeds=N first=S failed=F wall_s=W [figures] [status=WHY]
#   bench sim TEST failed_seed=S t_ms=T reason=WHY     (one per failing seed)
#
# TEST is the cmocka name (HERD_SIM_TEST=TEST HERD_SIM_SEED=S replays a
# seed). A case that dies (a signal, a sanitizer report, its time limit) or
# exits non-zero without failing a seed says so in status=..., counts its
# unfinished seeds as failed and names the seed it died in. Exit status: 0
# when every case passed, 1 when any failed, 2 on a usage or setup error.
set -uo pipefail

read -r -a PROGRAMS <<<"${SIM_SWEEP_PROGRAMS:-test_sim_membership test_sim_registry test_sim_dsup test_sim_sync test_sim_calls test_sim_hostile test_sim_groups}"

usage() {
    echo "usage: $0 BUILD_DIR [SEEDS] [FIRST_SEED]" >&2
    exit 2
}

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
    usage
fi
BUILD=$1
SEEDS=${2:-1000}
FIRST=${3:-1}
[[ $SEEDS =~ ^[1-9][0-9]*$ ]] || usage
[[ $FIRST =~ ^[0-9]+$ ]] || usage
JOBS=${SIM_SWEEP_JOBS:-$(nproc 2>/dev/null || echo 2)}
LIMIT=${SIM_SWEEP_TIMEOUT_S:-$((120 + 2 * SEEDS))}

OUT=$(mktemp -d "${TMPDIR:-/tmp}/sim_sweep.XXXXXX") || exit 2
PIDS=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    for pid in "${PIDS[@]}"; do
        pkill -TERM -P "$pid" 2>/dev/null
        kill "$pid" 2>/dev/null
    done
    rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The cases in the programs' order: PROG[i] runs TEST[i].
PROG=()
TEST=()
for prog in "${PROGRAMS[@]}"; do
    exe=$BUILD/tests/$prog
    if [ ! -x "$exe" ]; then
        echo "sim_sweep: $exe is missing: build $BUILD first" >&2
        exit 2
    fi
    listed=$(HERD_SIM_LIST=1 "$exe") || {
        echo "sim_sweep: $exe did not list its cases" >&2
        exit 2
    }
    [ -n "$listed" ] || {
        echo "sim_sweep: $exe listed no case" >&2
        exit 2
    }
    while read -r test; do
        PROG+=("$prog")
        TEST+=("$test")
    done <<<"$listed"
done

# run_case PROGRAM TEST: its output in $OUT/TEST.out and .err, its exit
# status in .rc, its wall time in .wall.
run_case() {
    local prog=$1 test=$2 t0 rc
    t0=$(date +%s.%N)
    env HERD_SIM_TEST="$test" HERD_SIM_SEEDS="$SEEDS" HERD_SIM_FIRST_SEED="$FIRST" \
        HERD_SIM_PROGRESS=1 timeout -k 10 "$LIMIT" "$BUILD/tests/$prog" \
        >"$OUT/$test.out" 2>"$OUT/$test.err"
    rc=$?
    echo "$(date +%s.%N) $t0" | awk '{ printf "%.2f\n", $1 - $2 }' >"$OUT/$test.wall"
    echo $rc >"$OUT/$test.rc"
}

echo "sim_sweep: ${#TEST[@]} cases, $SEEDS seeds each from $FIRST, $JOBS at a time" >&2
for i in "${!TEST[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
        wait -n
    done
    run_case "${PROG[$i]}" "${TEST[$i]}" &
    PIDS+=($!)
done
wait
PIDS=()

# status_of RC: why a case's process ended, "" when it exited 0.
status_of() {
    local rc=$1
    if [ "$rc" -eq 0 ]; then
        echo ""
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "timeout_${LIMIT}s"
    elif [ "$rc" -gt 128 ]; then
        echo "signal_$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
    else
        echo "exit_$rc"
    fi
}

# report TEST: the case's lines; returns 1 when it failed.
report() {
    local test=$1 case=${1#*_*_}
    local out=$OUT/$test.out rc summary status failed figures last
    rc=$(cat "$OUT/$test.rc" 2>/dev/null || echo 255)
    status=$(status_of "$rc")
    summary=$(grep -m1 -E "^sim $case seeds=[0-9]+ first=[0-9]+ failed=[0-9]+ wall_s=" "$out")
    if [ -n "$summary" ]; then
        failed=$(sed -E 's/.* failed=([0-9]+).*/\1/' <<<"$summary")
        # a case with failing seeds exits 1: that says nothing more
        [ "$failed" -gt 0 ] && [ "$rc" -eq 1 ] && status=""
        figures=${summary#"sim $case "}
        echo "bench sim $test $figures${status:+ status=$status}"
    else
        # died before its summary: the seeds from the one it died in failed
        last=$(grep -E '^seed [0-9]+$' "$OUT/$test.err" | tail -1 | cut -d' ' -f2)
        failed=$(grep -c -E "^$case: seed [0-9]+ FAILED" "$out")
        failed=$((failed + (last ? FIRST + SEEDS - last : SEEDS)))
        echo "bench sim $test seeds=$SEEDS first=$FIRST failed=$failed" \
            "wall_s=$(cat "$OUT/$test.wall") status=${status:-no_summary}"
        if [ -n "$last" ]; then
            echo "bench sim $test failed_seed=$last reason=died (${status:-no_summary}):" \
                "$(grep -m1 -E 'ERROR|runtime error|Assertion|FAILED|Failure' "$OUT/$test.err" ||
                    echo 'no report')"
        fi
    fi
    sed -nE "s/^$case: seed ([0-9]+) FAILED at t=([0-9]+) ms: (.*)$/bench sim $test failed_seed=\1 t_ms=\2 reason=\3/p" "$out"
    [ "$failed" -eq 0 ] && [ -z "$status" ]
}

bad=0
for i in "${!TEST[@]}"; do
    report "${TEST[$i]}" || bad=1
done
exit $bad
