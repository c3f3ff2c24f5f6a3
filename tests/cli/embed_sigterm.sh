#!/usr/bin/env bash
# embed_sigterm (ctest): an embedding program's SIGTERM keeps its processes'
# state. Two embed_example instances form a cluster; the greeter "welcome"
# answers three greetings; the instance running it gets SIGTERM: it moves
# the child off with its count (herd_node_shutdown), leaves and exits 0, and
# the other instance's copy answers the fourth greeting.
# Usage: embed_sigterm.sh EMBED_EXAMPLE RINGCTL
set -euo pipefail
embed=$1
ringctl=$2
work=$(mktemp -d /tmp/herd-emb-XXXXXX)
tag=e$$
names=("${tag}a" "${tag}b")
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    for n in "${names[@]}"; do rm -f "/tmp/herd-herd-$n.ctl"; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "embed_sigterm: FAILED: $*" >&2
    for f in "$work"/*.log; do [ -e "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }; done
    exit 1
}
ctl() { echo "ipc:///tmp/herd-herd-$1.ctl"; } # herd_control_default_address, cluster "herd"
# greet NAME: the greeter's answer through NAME's control socket
greet() { timeout 10 "$ringctl" --node "$(ctl "$1")" call welcome hi 2>>"$work/ringctl.log"; }

port=$((20000 + RANDOM % 20000))
export HERD_COOKIE=embed-sigterm-secret-0123456789
"$embed" "${names[0]}" "$port" >"$work/a.log" 2>&1 &
pids+=($!)
"$embed" "${names[1]}" "$((port + 1))" "$port" >"$work/b.log" 2>&1 &
pids+=($!)

# the child starts a second after the cluster forms: 30 s at most
reply=
for _ in $(seq 1 150); do
    reply=$(greet "${names[1]}" || true)
    [ -n "$reply" ] && break
    sleep 0.2
done
[ -n "$reply" ] || fail "welcome never answered"
case "$reply" in
    "hi, greeting #1 from "*) ;;
    *) fail "first reply: '$reply'" ;;
esac
greet "${names[0]}" >/dev/null || fail "second greeting"
reply=$(greet "${names[1]}") || fail "third greeting"
case "$reply" in
    "hi, greeting #3 from "*) ;;
    *) fail "third reply: '$reply'" ;;
esac
host=${reply##* from }
if [ "$host" = "${names[0]}" ]; then victim=0; other=1; else victim=1; other=0; fi
[ "$host" = "${names[$victim]}" ] || fail "welcome runs on unknown node '$host'"
echo "ok: welcome runs on $host with 3 greetings"

kill -TERM "${pids[$victim]}"
status=
for _ in $(seq 1 200); do # 40 s at most (the drain's own limit is 30 s)
    if ! kill -0 "${pids[$victim]}" 2>/dev/null; then
        status=0
        wait "${pids[$victim]}" || status=$?
        break
    fi
    sleep 0.2
done
[ -n "$status" ] || fail "$host still runs 40 s after SIGTERM"
[ "$status" = 0 ] || fail "$host exited $status after SIGTERM"
grep -q "left the cluster: every child moved off" "$work/$([ $victim = 0 ] && echo a || echo b).log" \
    || fail "$host did not say it left with every child moved off"
echo "ok: $host drained, left and exited 0"

reply=$(greet "${names[$other]}") || fail "greeting after the SIGTERM"
[ "$reply" = "hi, greeting #4 from ${names[$other]}" ] || fail "after the SIGTERM: '$reply'"
echo "ok: the count survived: $reply"
