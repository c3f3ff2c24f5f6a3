#!/usr/bin/env bash
# herdd_discover_cli (ctest): herdd --discover, end to end, in a network
# namespace of its own (root needed: without it the test fails, it does not
# skip). In the namespace /etc/hosts is /etc/netns/NS/hosts, where one name
# has three addresses, and no DNS server answers.
#   - three herdd on tcp://127.0.0.{1,2,3}:PORT, each with only
#     --discover dns:herd-peers:PORT, find each other: 3 members up on
#     each; none takes its own address as a seed;
#   - an address gone from the name is dropped from the seeds (logged);
#   - a node whose name does not resolve logs it, keeps running, tries again,
#     and joins once the name resolves;
#   - --discover range:FIRST-LAST:PORT joins the same cluster;
#   - bad specs: exit 2 with the reason.
# The namespace and /etc/netns/NS go at the end (trap), and only the
# processes this test started are stopped, by PID.
# Usage: herdd_discover.sh HERDD RINGCTL
set -euo pipefail
herdd=$1
ringctl=$2
ns=herdtest$$
port=7101
work=$(mktemp -d /tmp/herd-disc-XXXXXX)
pids=()
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
ns_made=0
cleanup() {
    stop_started
    if [ "$ns_made" = 1 ]; then
        ip netns del "$ns" 2>/dev/null || true
        rm -rf "/etc/netns/$ns"
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { fail_with herdd_discover "$*"; }
in_ns() { ip netns exec "$ns" "$@"; }

# ---- bad specs (no namespace needed) ---------------------------------------------
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/cookie"
chmod 600 "$work/cookie"
bad() { # bad SPEC NEEDLE [more args]
    local spec=$1 needle=$2 status=0
    shift 2
    timeout 20 "$herdd" --name bad --listen "ipc://$work/bad.sock" --cookie-file "$work/cookie" \
        --control "ipc://$work/bad.ctl" --discover "$spec" "$@" >/dev/null 2>"$work/bad.err" ||
        status=$?
    [ "$status" = 2 ] || fail "--discover $spec: exit $status, wanted 2"
    grep -qF -- "$needle" "$work/bad.err" || fail "--discover $spec: no '$needle'"
    echo "ok: --discover $spec: exit 2: $(head -1 "$work/bad.err")"
}
bad "srv:herd:7001" "unknown kind 'srv'"
bad "dns:herd" "--discover wants dns:NAME:PORT or range:FIRST-LAST:PORT"
bad "dns:herd:70000" "port '70000' is not 1-65535"
bad "range:10.0.0.0-10.0.4.0:7001" "holds 1025 addresses; at most 1024"
bad "range:10.0.0.9-10.0.0.1:7001" "goes backwards"
bad "dns:herd:7001" "--discover-interval-ms wants a whole number 100-3600000" \
    --discover-interval-ms 50
rm -f "$work/bad.err"

# ---- the namespace --------------------------------------------------------------
[ "$(id -u)" = 0 ] || fail "not root: network namespaces cannot be made (run as root)"
ip netns add "$ns" || fail "ip netns add $ns failed"
ns_made=1
mkdir -p "/etc/netns/$ns"
hosts="/etc/netns/$ns/hosts"
# written in place (same inode): running nodes see /etc/hosts through a bind mount
write_hosts() { printf '%s\n' "127.0.0.1 localhost" "$@" >"$hosts"; }
write_hosts "127.0.0.1 herd-peers" "127.0.0.2 herd-peers" "127.0.0.3 herd-peers"
echo "nameserver 127.0.0.1" >"/etc/netns/$ns/resolv.conf" # nobody answers: fails at once
in_ns ip link set lo up || fail "cannot bring lo up in $ns"
echo "ok: namespace $ns with herd-peers -> 127.0.0.1 127.0.0.2 127.0.0.3"

# start NAME IP ARGS...: herdd in the namespace on tcp://IP:PORT, ready.
start() {
    local name=$1 ip=$2
    shift 2
    # ip itself, not a shell function: $! must be herdd's PID (ip netns exec
    # execs it), not a subshell's whose signals herdd would never see
    ip netns exec "$ns" "$herdd" --name "$name" --listen "tcp://$ip:$port" \
        --cookie-file "$work/cookie" --control "ipc://$work/$name.ctl" --log-level info "$@" \
        >"$work/$name.out" 2>"$work/$name.err" &
    pids+=($!)
    for _ in $(seq 1 200); do # 20 s at most
        if grep -qs "herdd: ready" "$work/$name.err"; then
            [ "$(readlink "/proc/${pids[-1]}/exe")" = "$(readlink -f "$herdd")" ] ||
                fail "$name: PID ${pids[-1]} is not herdd"
            return 0
        fi
        kill -0 "${pids[-1]}" 2>/dev/null || fail "$name: exited before ready"
        sleep 0.1
    done
    fail "$name: not ready in 20 s"
}
ups() {
    { in_ns "$ringctl" --json --node "ipc://$work/$1.ctl" members 2>/dev/null || true; } |
        { grep -o '"state": *"up"' || true; } | wc -l
}
# wait_ups NODE N: NODE sees N members up (20 s at most).
wait_ups() {
    local n=0
    for _ in $(seq 1 100); do
        n=$(ups "$1")
        [ "$n" = "$2" ] && { echo "ok: $1 sees $2 members up"; return 0; }
        sleep 0.2
    done
    fail "$1 sees $n members up, wanted $2"
}
# wait_log NODE TEXT: TEXT in NODE's log (20 s at most).
wait_log() {
    for _ in $(seq 1 100); do
        grep -qF -- "$2" "$work/$1.err" && { echo "ok: $1 logged '$2'"; return 0; }
        sleep 0.2
    done
    fail "$1 did not log '$2'"
}

disc=(--discover "dns:herd-peers:$port" --discover-interval-ms 300)
start d1 127.0.0.1 "${disc[@]}"
start d2 127.0.0.2 "${disc[@]}"
start d3 127.0.0.3 "${disc[@]}"
for n in d1 d2 d3; do wait_ups "$n" 3; done
# each took the other two as seeds, never itself
for i in 1 2 3; do
    for j in 1 2 3; do
        if [ "$i" = "$j" ]; then
            ! grep -q "new seed tcp://127.0.0.$j:$port" "$work/d$i.err" ||
                fail "d$i took its own address as a seed"
        else
            grep -q "new seed tcp://127.0.0.$j:$port" "$work/d$i.err" ||
                fail "d$i did not take tcp://127.0.0.$j:$port as a seed"
        fi
    done
done
echo "ok: each node took the two others as seeds, not itself"

# 127.0.0.3 goes from the name: dropped from the seeds (the member stays)
write_hosts "127.0.0.1 herd-peers" "127.0.0.2 herd-peers"
wait_log d1 "seed gone, dropped: tcp://127.0.0.3:$port"
wait_log d2 "seed gone, dropped: tcp://127.0.0.3:$port"
wait_ups d1 3

# a name that does not resolve: logged, retried, not fatal; joins once it does
start d4 127.0.0.4 --discover "dns:herd-late:$port" --discover-interval-ms 200
wait_log d4 "herd-late does not resolve"
for _ in $(seq 1 50); do
    [ "$(grep -c "herd-late does not resolve" "$work/d4.err")" -ge 3 ] && break
    sleep 0.1
done
tries=$(grep -c "herd-late does not resolve" "$work/d4.err")
[ "$tries" -ge 3 ] || fail "d4 tried $tries times, wanted 3 or more"
kill -0 "${pids[3]}" || fail "d4 exited on a name that does not resolve"
[ "$(ups d4)" = 1 ] || fail "d4 joined something without seeds"
echo "ok: d4 logged the failure $tries times and runs alone"
write_hosts "127.0.0.1 herd-peers" "127.0.0.2 herd-peers" "127.0.0.1 herd-late"
wait_log d4 "new seed tcp://127.0.0.1:$port"
wait_ups d4 4
wait_ups d1 4

# a range: 127.0.0.1-127.0.0.3 holds members; .5 is itself and not a seed
start d5 127.0.0.5 --discover "range:127.0.0.1-127.0.0.5:$port"
wait_ups d5 5
! grep -q "new seed tcp://127.0.0.5:$port" "$work/d5.err" || fail "d5 took itself as a seed"
grep -q "new seed tcp://127.0.0.4:$port" "$work/d5.err" || fail "d5: no seed 127.0.0.4"
echo "ok: d5 joined through a range, not through itself"

# SIGTERM: every node leaves and exits 0
for i in 4 3 2 1 0; do
    kill -TERM "${pids[$i]}"
done
for i in 4 3 2 1 0; do
    status=0
    timeout 40 tail --pid="${pids[$i]}" -f /dev/null || fail "node $i did not exit after SIGTERM"
    wait "${pids[$i]}" || status=$?
    [ "$status" = 0 ] || fail "node $i: SIGTERM, then exit $status"
done
pids=()
echo "herdd_discover: ok"
