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
