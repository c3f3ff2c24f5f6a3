#!/usr/bin/env bash
# ringctl_watch_cli (ctest): `ringctl watch` against a real herdd, end to end.
#   - watch --json in the background: a name registered with `ringctl
#     register` comes as a name_registered object, a child started with
#     `ringctl start counter` as child_started, one object a line;
#   - herdd killed (-KILL, by its PID) and started again: watch says on
#     stderr that it lost the node and that it answers again, tells
#     node_restarted, and goes on with the new node's events;
#   - SIGINT ends it at once with exit 0; a second watcher, in the human
#     form (TIME KIND NAME pid=... node=...), ends on SIGTERM likewise;
#   - herdd stopped (SIGINT) while a watcher waits: herdd exits 0 (with the
#     sanitizers' builds: nothing leaked), the watcher says the loss;
#   - --timeout-ms ends it with exit 0, also when the node never answers;
#     usage errors exit 2.
# Every wait is bounded. Usage: ringctl_watch.sh HERDD RINGCTL
set -euo pipefail
herdd=$1
ringctl=$2
work=$(mktemp -d /tmp/herd-watch-XXXXXX) # short: a unix socket path has at most 107 bytes
pids=()
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
cleanup() {
    stop_started
    rm -rf "$work"
}
trap cleanup EXIT
fail() { fail_with ringctl_watch "$*"; }

# A port nothing listens on now (bash's /dev/tcp connect is refused).
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    fail "no free port found"
}

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/cookie"
chmod 600 "$work/cookie"
port=$(free_port)
ctl="ipc://$work/n1.ctl"
herdd_pid=

# start_node LOG: herdd n1, ready (20 s at most).
start_node() {
    "$herdd" --name n1 --listen "tcp://127.0.0.1:$port" --cookie-file "$work/cookie" \
        --control "$ctl" --log-level info >"$work/$1.out" 2>"$work/$1.err" &
    herdd_pid=$!
    pids+=("$herdd_pid")
    for _ in $(seq 1 200); do
        grep -q "herdd: ready" "$work/$1.err" && return 0
        kill -0 "$herdd_pid" 2>/dev/null || break
        sleep 0.1
    done
    fail "$1: herdd not ready"
}
rc() { timeout 20 "$ringctl" --node "$ctl" "$@"; }

# wait_line FILE REGEX [SECONDS]: until a line of FILE matches (grep -E).
wait_line() {
    local tries=$((${3:-15} * 10))
    for _ in $(seq 1 "$tries"); do
        grep -qE -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no line /$2/ in $(basename "$1") within ${3:-15} s: $(tail -5 "$1" 2>/dev/null)"
}

# live WATCH_OUT TAG: register probe names until the watcher prints one: its
# first request ("from now") is answered, so what follows is seen.
live() {
    for i in $(seq 1 20); do
        rc register "probe-$2-$i" >/dev/null
        for _ in $(seq 1 10); do
            grep -q "probe-$2-$i" "$1" 2>/dev/null && return 0
            sleep 0.1
        done
    done
    fail "the watcher into $(basename "$1") prints nothing"
}

# ends PID SIGNAL: the process ends on SIGNAL within 2 s (at once, not at
# the end of the request it waits on, 3.5 s); its exit status in $ended
# (not a subshell: only this shell can wait for it).
ended=
ends() {
    sleep 0.3 # well inside a request's wait
    kill "-$2" "$1"
    for _ in $(seq 1 20); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$1" 2>/dev/null && fail "watch still runs 2 s after SIG$2"
    ended=0
    wait "$1" || ended=$?
}

start_node n1a
"$ringctl" --node "$ctl" watch --json >"$work/json.out" 2>"$work/json.err" &
watcher=$!
pids+=("$watcher")
live "$work/json.out" j

# a name, then a child: their events, one JSON object a line
rc register watched-1 >/dev/null
wait_line "$work/json.out" '"kind":"name_registered".*"name":"watched-1","pid":"n1/[0-9]+/[0-9]+","node":"n1"'
rc start counter wc-1 >/dev/null
wait_line "$work/json.out" '"kind":"child_started".*"name":"wc-1","pid":"n1/'
bad=$(grep -cvE '^\{.*\}$' "$work/json.out" || true)
[ "$bad" = 0 ] || fail "$bad lines of watch --json are not one object each"
echo "ok: name_registered and child_started as JSON lines"

# the node restarts: watch loses it, finds it again, and goes on
kill -KILL "$herdd_pid"
wait "$herdd_pid" 2>/dev/null || true
wait_line "$work/json.err" "lost the node at $ctl" 15
start_node n1b
wait_line "$work/json.err" "the node at $ctl answers again" 15
wait_line "$work/json.out" '"kind":"node_restarted"' 15
rc register after-restart >/dev/null
wait_line "$work/json.out" '"kind":"name_registered".*"name":"after-restart"'
[ "$(grep -c 'lost the node' "$work/json.err")" = 1 ] || fail "the loss is said more than once"
restart_line=$(grep -n '"node_restarted"' "$work/json.out" | head -1 | cut -d: -f1)
after_line=$(grep -n '"after-restart"' "$work/json.out" | head -1 | cut -d: -f1)
[ "$restart_line" -lt "$after_line" ] || fail "the new node's event came before node_restarted"
echo "ok: herdd restarted: lost, answers again, node_restarted, its events"

ends "$watcher" INT
[ "$ended" = 0 ] || fail "watch ended by SIGINT: exit $ended, wanted 0"
echo "ok: SIGINT: exit 0"

# the human form, and SIGTERM
"$ringctl" --node "$ctl" watch >"$work/human.out" 2>"$work/human.err" &
watcher=$!
pids+=("$watcher")
live "$work/human.out" h
grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z name_registered probe-h-[0-9]+ pid=n1/[0-9]+/[0-9]+ node=n1$' \
    "$work/human.out" || fail "no human line for a probe: $(head -3 "$work/human.out")"
ends "$watcher" TERM
[ "$ended" = 0 ] || fail "watch ended by SIGTERM: exit $ended, wanted 0"
echo "ok: human lines; SIGTERM: exit 0"

# herdd stops (SIGINT: it leaves at once) while a watcher waits on it: the
# stop answers the waiting request, herdd exits 0, and the watcher says it
# lost the node at once, not after its request's wait
"$ringctl" --node "$ctl" watch >"$work/stop.out" 2>"$work/stop.err" &
watcher=$!
pids+=("$watcher")
live "$work/stop.out" s
sleep 0.3
kill -INT "$herdd_pid"
for _ in $(seq 1 100); do
    kill -0 "$herdd_pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$herdd_pid" 2>/dev/null && fail "herdd still runs 10 s after SIGINT"
status=0
wait "$herdd_pid" || status=$?
[ "$status" = 0 ] || fail "herdd stopped with a watcher waiting: exit $status, wanted 0"
wait_line "$work/stop.err" "lost the node at $ctl" 2
ends "$watcher" INT
[ "$ended" = 0 ] || fail "watch of a stopped node ended by SIGINT: exit $ended, wanted 0"
echo "ok: herdd stopped under a waiting watcher: exit 0, the loss said"

# --timeout-ms, with a node and without one
start_node n1c
start_s=$SECONDS
status=0
timeout 20 "$ringctl" --node "$ctl" watch --timeout-ms 700 >/dev/null 2>&1 || status=$?
[ "$status" = 0 ] || fail "watch --timeout-ms 700: exit $status, wanted 0"
status=0
timeout 20 "$ringctl" --node "ipc://$work/none.ctl" watch --timeout-ms 1200 \
    >/dev/null 2>"$work/none.err" || status=$?
[ "$status" = 0 ] || fail "watch of no node --timeout-ms: exit $status, wanted 0"
[ "$(grep -c 'lost the node' "$work/none.err")" = 1 ] || fail "no node: not said once"
[ $((SECONDS - start_s)) -lt 10 ] || fail "--timeout-ms took $((SECONDS - start_s)) s"
echo "ok: --timeout-ms: exit 0"

# usage errors: exit 2
for args in "watch --bogus" "watch extra" "watch --timeout-ms 0" "watch --timeout-ms x" \
    "watch --timeout-ms"; do
    status=0
    # shellcheck disable=SC2086 # the words of args are the arguments
    timeout 20 "$ringctl" --node "$ctl" $args >/dev/null 2>&1 || status=$?
    [ "$status" = 2 ] || fail "ringctl $args: exit $status, wanted 2"
done
status=0
env -u HERD_NODE timeout 20 "$ringctl" watch >/dev/null 2>&1 || status=$?
[ "$status" = 2 ] || fail "watch without a node: exit $status, wanted 2"
echo "ok: usage errors exit 2"
echo "ringctl_watch: ok"
