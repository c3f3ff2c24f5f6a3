#!/usr/bin/env bash
# herd's demo: a local cluster of herdd nodes running a thousand counters
# started by name. It shows the ring, where the counters live and where
# their state is replicated (herdd's counter keeps 2 copies), a fourth node
# joining (counters move to it with their counts), a node killed with
# SIGKILL (its counters restart elsewhere from their replicas, with their
# counts), checks every count, stops every node it started and ends with a
# summary: lost must be 0.
# usage: bash tools/demo.sh [BUILD_DIR] [COUNTERS]
set -euo pipefail
build=${1:-build}
count=${2:-1000}
ringctl="$build/tools/ringctl"
herdd="$build/tools/herdd"
jobs=6 # ringctl requests in flight (spread over the nodes)

step() { printf '\n== %s\n' "$*"; }
say() { printf '   %s\n' "$*"; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/cookie"
chmod 600 "$work/cookie"
port=$((20000 + RANDOM % 30000))

ctl() { # node args...
    local node=$1
    shift
    "$ringctl" --node "ipc://$work/$node.ctl" "$@"
}

start_node() { # name port [seed]
    local join=()
    [ -n "${3:-}" ] && join=(--join "tcp://127.0.0.1:$3")
    "$herdd" --name "$1" --listen "tcp://127.0.0.1:$2" "${join[@]}" \
        --cookie-file "$work/cookie" --control "ipc://$work/$1.ctl" 2> "$work/$1.log" &
    pids+=($!)
    disown $! # the demo reports its nodes' ends itself
    for _ in $(seq 1 100); do
        grep -q "herdd: ready" "$work/$1.log" && return 0
        sleep 0.1
    done
    echo "demo: $1 did not start:" >&2
    cat "$work/$1.log" >&2
    return 1
}

# Run "ringctl ARGS..." for every counter name on stdin ({} in ARGS stands
# for the name, {i} for its increment, incr_of; no ARG has a space), spreading the requests over the given
# nodes, $jobs at a time, a batch of names per shell. Prints "NAME ANSWER".
fan_out() { # nodes-csv ringctl-args...
    NODES=$1 ARGS="${*:2}" RINGCTL=$ringctl WORK=$work xargs -P "$jobs" -n 25 bash -c '
        IFS=, read -ra ns <<< "$NODES"
        IFS=" " read -ra tpl <<< "$ARGS"
        for name; do
            n=${name##*-}
            args=("${tpl[@]/\{\}/$name}")
            args=("${args[@]/\{i\}/$((10#$n % 9 + 1))}")
            echo "$name $("$RINGCTL" --node "ipc://$WORK/${ns[$((10#$n % ${#ns[@]}))]}.ctl" \
                "${args[@]}" 2>&1)"
        done' fan_out
}

names() { seq -f "counter-%04g" 1 "$count"; }
# The increments each counter gets: 1..9 by its number.
incr_of() { echo $((10#${1#counter-} % 9 + 1)); }

# Count children per node: "node N" lines from `ringctl children`.
per_node() { ctl "$1" children | awk 'NR > 1 && $2 != "children" {print $2}' | sort | uniq -c |
    awk '{printf "%s=%s ", $2, $1}'; echo; }

# Wait until NODE sees every counter once, running, none on GONE and some on
# HAS (each if given), and the placement stayed the same for three looks.
wait_settled() { # node deadline-s [gone] [has]
    local end=$((SECONDS + $2)) out last="" same=0
    while [ $SECONDS -lt $end ]; do
        out=$(ctl "$1" children)
        if ! grep -qE ' (missing|moving|arriving|restarting) ' <<< "$out" &&
            [ "$(grep -c '^counter-' <<< "$out")" -eq "$count" ] &&
            { [ -z "${3:-}" ] || ! awk '{print $2}' <<< "$out" | grep -qx "$3"; } &&
            { [ -z "${4:-}" ] || awk '{print $2}' <<< "$out" | grep -qx "$4"; }; then
            [ "$out" = "$last" ] && same=$((same + 1)) || same=0
            last=$out
            [ $same -ge 2 ] && return 0
        else
            last="" same=0
        fi
        sleep 0.2
    done
    echo "demo: the counters did not settle within $2 s" >&2
    return 1
}

# Compare every counter with its expected value; prints "exact wrong".
check_counts() { # node expected-file
    names | fan_out "node1,node3,node4" call {} get > "$work/got" || true
    awk 'NR == FNR {want[$1] = $2; next} {got[$1] = $2}
         END {for (n in want) if (got[n] == want[n]) ok++; else bad++
              printf "%d %d\n", ok, bad}' "$2" "$work/got"
}

step "the ring: three nodes, 128 points each (offline planning with ringctl)"
"$ringctl" ring --nodes node1,node2,node3
step "what moves when node4 joins: only keys that go to node4"
"$ringctl" diff --nodes node1,node2,node3 --add node4 | sed -n 1,8p

step "a live cluster: three herdd nodes on 127.0.0.1"
start_node node1 "$port"
start_node node2 $((port + 1)) "$port"
start_node node3 $((port + 2)) "$port"
for _ in $(seq 1 50); do
    [ "$(ctl node1 members | grep -c ' up ')" -eq 3 ] && break
    sleep 0.1
done
ctl node1 members

step "starting $count counters by name (each runs on its ring owner)"
t0=$(date +%s%N)
names | fan_out "node1,node2,node3" start counter {} | awk -v n="$count" '
    {done++} /started|already/ {ok++}
    done % 250 == 0 {printf "   %d/%d started\n", done, n; fflush()}
    END {if (ok != n) {print "demo: only " ok " started"; exit 1}}'
say "all started in $((($(date +%s%N) - t0) / 1000000)) ms"

step "incrementing each counter 1-9 times (counter-0001 by 2, ...)"
names | while read -r n; do echo "$n $(incr_of "$n")"; done > "$work/expected"
names | fan_out "node1,node2,node3" call {} incr {i} > /dev/null
say "where the counters live: $(per_node node1)"
say "a few of node2's, with their copies (as node2 lists them: the owner knows):"
ctl node2 children node2 | sed -n 1,6p | sed 's/^/   /'
say "counter-0042 from node3: $(ctl node3 call counter-0042 get) (expected $(incr_of counter-0042))"
say "where its state is kept: $(ctl node3 whereis counter-0042 | sed -n 's/^replica set: //p')"
say "replication on node1: $(ctl node1 stats | awk -F'[. ]' '
    $1 == "replication" && $2 ~ /^(puts_out|acks_in|held|settled)$/ {printf "%s %s  ", $2, $3}')"

step "node4 joins: the counters it now owns move to it with their counts"
start_node node4 $((port + 3)) "$port"
t0=$(date +%s%N)
wait_settled node1 30 "" node4
settle_ms=$((($(date +%s%N) - t0) / 1000000))
moved=$(ctl node4 children node4 | grep -c '^counter-' || true)
say "settled within $settle_ms ms (node4's start and 0.4 s of checking included):" \
    "$moved counters moved"
say "where they live now: $(per_node node1)"
say "recent handoffs coordinated by node1:"
ctl node1 handoffs | sed -n 1,6p | sed 's/^/   /'
read -r exact wrong < <(check_counts node1 "$work/expected")
say "counts after the moves: $exact exact, $wrong wrong"
lost_moves=$wrong

step "node2 is killed with SIGKILL: its counters restart on the others from their replicas"
ctl node1 children node2 | awk '/^counter-/ {print $1}' > "$work/on_node2"
restarted=$(wc -l < "$work/on_node2")
kill -9 "${pids[1]}"
t0=$(date +%s%N)
wait_settled node1 30 node2 node4
say "all $count running again after $((($(date +%s%N) - t0) / 1000000)) ms"
say "where they live now: $(per_node node1)"
# every count as before the crash: each answered increment was held by a
# replica before its answer left
read -r exact wrong < <(check_counts node1 "$work/expected")
kept=$(awk 'FILENAME == ARGV[1] {gone[$1] = 1; next}
            FILENAME == ARGV[2] {want[$1] = $2; next}
            gone[$1] && $2 == want[$1] {n++} END {print n + 0}' \
    "$work/on_node2" "$work/expected" "$work/got")
promoted=0
for n in node1 node3 node4; do
    p=$(ctl "$n" stats | awk '$1 == "replication.promoted" {print $2}')
    promoted=$((promoted + ${p:-0}))
done
say "$restarted counters restarted, $kept of them with their counts" \
    "($promoted started from a replica's copy, as the survivors' stats count)"
say "counts after the crash: $exact as expected, $wrong not"

step "stopping every node the demo started"
for i in 0 2 3; do kill -INT "${pids[$i]}" 2>/dev/null || true; done
sleep 0.5

lost=$((lost_moves + wrong))
step "summary"
say "counters:  $count started by name on 3 nodes"
say "moved:     $moved to node4 when it joined (counts kept: $((count - lost_moves)) exact)"
say "restarted: $restarted after node2 was killed ($kept with their counts)"
say "lost:      $lost"
[ "$lost" -eq 0 ]
