#!/usr/bin/env bash
# The offline ring demo: how herd places named processes on a three-node
# cluster, and what moves when a fourth node joins or one leaves.
# usage: bash tools/demo.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
ringctl="$build/tools/ringctl"
nodes="node1,node2,node3"

step() { printf '\n== %s\n' "$*"; }

step "the ring of $nodes (128 points each)"
"$ringctl" ring --nodes "$nodes"

step "where ten counters live"
for i in $(seq 1 10); do
    printf 'counter-%-3s -> ' "$i"
    "$ringctl" owner "counter-$i" --nodes "$nodes" --replicas 2 | tr '\n' ' '
    echo
done

step "node4 joins: only keys that go to node4 move"
"$ringctl" diff --nodes "$nodes" --add node4

step "node2 leaves: only node2's keys move"
"$ringctl" diff --nodes "$nodes" --remove node2

step "node1 doubles its weight"
"$ringctl" diff --nodes "$nodes" --weight node1:256

step "the same ring as JSON, for scripts"
"$ringctl" --json owner counter-1 --nodes "$nodes" --replicas 3

# ---- a live cluster -----------------------------------------------------------
herdd="$build/tools/herdd"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/cookie"
chmod 600 "$work/cookie"
port=$(( 20000 + RANDOM % 30000 ))

start_node() { # name port [seed]
    local join=()
    [ -n "${3:-}" ] && join=(--join "tcp://127.0.0.1:$3")
    "$herdd" --name "$1" --listen "tcp://127.0.0.1:$2" "${join[@]}" \
        --cookie-file "$work/cookie" --control "ipc://$work/$1.ctl" 2> "$work/$1.log" &
    pids+=($!)
    disown $! # the demo reports its nodes' ends itself
    for _ in $(seq 1 50); do
        grep -q "herdd: ready" "$work/$1.log" && return 0
        sleep 0.1
    done
    echo "demo: $1 did not start:" >&2
    cat "$work/$1.log" >&2
    return 1
}

step "a live cluster: three herdd nodes on 127.0.0.1, joined through node1"
start_node node1 "$port"
start_node node2 $((port + 1)) "$port"
start_node node3 $((port + 2)) "$port"
sleep 1
"$ringctl" --node "ipc://$work/node1.ctl" members

step "the live ring, as node2 sees it"
"$ringctl" --node "ipc://$work/node2.ctl" ring

step "node3 is killed (SIGKILL): the others declare it down"
kill -9 "${pids[2]}"
sleep 2
"$ringctl" --node "ipc://$work/node1.ctl" members

step "node2 leaves gracefully (SIGTERM)"
kill -TERM "${pids[1]}"
sleep 1
"$ringctl" --node "ipc://$work/node1.ctl" members
echo
echo "demo: done (every node it started is stopped)"
