#!/usr/bin/env bash
# herdd_metrics_cli (ctest): herdd --metrics, end to end, with curl.
#   - two real herdd on 127.0.0.1 with --metrics on free ports; GET /metrics
#     is Prometheus text (its content type, HELP and TYPE lines) whose
#     figures are the cluster's: 2 members up, the names of the counters
#     started, the children running, frames in;
#   - a drain moves children: handoffs committed, each in the duration
#     histogram;
#   - another path is 404, another method 405 (with Allow), HEAD is 200;
#   - a bad --metrics is a usage error (exit 2, the flag named); a port in
#     use is exit 1 "cannot serve --metrics".
# Usage: herdd_metrics.sh HERDD RINGCTL
set -euo pipefail
herdd=$1
ringctl=$2
work=$(mktemp -d /tmp/herd-met-XXXXXX)
pids=()
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
cleanup() {
    stop_started
    rm -rf "$work"
}
trap cleanup EXIT
fail() { fail_with herdd_metrics "$*"; }
command -v curl >/dev/null || fail "curl is not installed (apt-get install curl)"

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
c1=$(free_port); c2=$(free_port); m1=$(free_port); m2=$(free_port)
[ "$m1" != "$m2" ] && [ "$c1" != "$c2" ] || { m2=$(free_port); c2=$(free_port); }

# start NAME CLUSTER_PORT METRICS_PORT [ARGS...]: a node, ready.
start() {
    local name=$1 cport=$2 mport=$3
    shift 3
    "$herdd" --name "$name" --listen "tcp://127.0.0.1:$cport" --cookie-file "$work/cookie" \
        --control "ipc://$work/$name.ctl" --metrics "127.0.0.1:$mport" --log-level info "$@" \
        >"$work/$name.out" 2>"$work/$name.err" &
    pids+=($!)
    for _ in $(seq 1 200); do # 20 s at most
        grep -q "herdd: ready" "$work/$name.err" && return 0
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    fail "$name: not ready"
}
# The page, whole (a pipe into grep -q would cut curl short: exit 23 under pipefail).
scrape() { curl -sS --max-time 5 "http://127.0.0.1:$1/metrics"; }
# value PORT SAMPLE: the value of the sample line SAMPLE (name and labels).
value() {
    { scrape "$1" || true; } |
        awk -v s="$2" '$1 == s {print $2; found = 1} END {if (!found) print "none"}'
}
# wait_value PORT SAMPLE OP WANT: until the sample compares (awk OP), 20 s at most.
wait_value() {
    local v
    for _ in $(seq 1 100); do
        v=$(value "$1" "$2")
        [ "$v" != none ] && awk -v v="$v" -v w="$4" "BEGIN {exit !(v $3 w)}" && {
            echo "ok: :$1 $2 = $v ($3 $4)"
            return 0
        }
        sleep 0.2
    done
    fail ":$1 $2 is $v, wanted $3 $4"
}

start mx1 "$c1" "$m1"
start mx2 "$c2" "$m2" --join "tcp://127.0.0.1:$c1"

# the format: content type, HELP and TYPE before samples
headers=$(curl -sS --max-time 5 -D - -o "$work/page.txt" "http://127.0.0.1:$m1/metrics")
grep -qi '^content-type: text/plain; version=0.0.4' <<<"$headers" || fail "content type: $headers"
grep -qx '# TYPE herd_frames_in_total counter' "$work/page.txt" || fail "no TYPE line"
grep -q '^# HELP herd_members ' "$work/page.txt" || fail "no HELP of herd_members"
grep -qx '# TYPE herd_handoff_duration_seconds histogram' "$work/page.txt" ||
    fail "no handoff duration histogram"
grep -q '^herd_node_info{name="mx1",version="' "$work/page.txt" || fail "no node info"
! grep -qi group "$work/page.txt" || fail "a group figure, and the registry has no groups"
echo "ok: the format"

wait_value "$m1" 'herd_members{state="up"}' == 2
wait_value "$m2" 'herd_members{state="up"}' == 2
wait_value "$m1" herd_frames_in_total '>' 0
wait_value "$m1" 'herd_frames_rejected_total{reason="mac"}' == 0

for i in 1 2 3 4 5 6; do
    "$ringctl" --node "ipc://$work/mx1.ctl" start counter "mc$i" >/dev/null ||
        fail "ringctl start counter mc$i"
done
wait_value "$m1" herd_names '>=' 6
wait_value "$m2" herd_names '>=' 6
wait_value "$m1" herd_children_specs == 6
running1=$(value "$m1" 'herd_children{state="running"}')
running2=$(value "$m2" 'herd_children{state="running"}')
[ $((running1 + running2)) = 6 ] || fail "children running: $running1 + $running2, wanted 6"
echo "ok: children running $running1 + $running2"
wait_value "$m1" 'herd_registry_deltas_total{direction="in"}' '>' 0

# a drain of mx2 moves its children to mx1: handoffs committed and timed
if [ "$running2" -gt 0 ]; then
    "$ringctl" --node "ipc://$work/mx1.ctl" drain mx2 --timeout 20 >/dev/null ||
        fail "ringctl drain mx2"
    wait_value "$m2" herd_handoffs_committed_total '>=' "$running2"
    committed=$(value "$m2" herd_handoffs_committed_total)
    wait_value "$m2" herd_handoff_duration_seconds_count == "$committed"
    wait_value "$m2" 'herd_handoff_duration_seconds_bucket{le="+Inf"}' == "$committed"
    wait_value "$m1" 'herd_children{state="running"}' == 6
else
    fail "mx2 runs none of 6 children: the ring should give it some"
fi

# paths and methods
code() { curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$@"; }
[ "$(code "http://127.0.0.1:$m1/")" = 404 ] || fail "/ is not 404"
[ "$(code "http://127.0.0.1:$m1/metricsx")" = 404 ] || fail "/metricsx is not 404"
[ "$(code -X POST -d x=1 "http://127.0.0.1:$m1/metrics")" = 405 ] || fail "POST is not 405"
[ "$(code -X DELETE "http://127.0.0.1:$m1/metrics")" = 405 ] || fail "DELETE is not 405"
put_headers=$(curl -s -o /dev/null -D - -X PUT -d x "http://127.0.0.1:$m1/metrics")
grep -qi '^allow: GET, HEAD' <<<"$put_headers" || fail "405 without Allow: GET, HEAD"
[ "$(code -I "http://127.0.0.1:$m1/metrics")" = 200 ] || fail "HEAD is not 200"
echo "ok: 404, 405 with Allow, HEAD 200"
page=$(scrape "$m1")
grep -q '^herd_members{state="draining"} 1$' <<<"$page" ||
    fail "after those: no answer, or mx2 not draining"

# a bad --metrics: exit 2 naming the flag; a port in use: exit 1
for bad in "localhost:9100" "127.0.0.1:0" "9100" "127.0.0.1:65536"; do
    status=0
    timeout 20 "$herdd" --name bad --listen "ipc://$work/bad.sock" --cookie-file "$work/cookie" \
        --control "ipc://$work/bad.ctl" --metrics "$bad" >/dev/null 2>"$work/bad.err" || status=$?
    [ "$status" = 2 ] || fail "--metrics $bad: exit $status, wanted 2"
    grep -q -- "--metrics" "$work/bad.err" || fail "--metrics $bad: the flag is not named"
    echo "ok: --metrics $bad: exit 2: $(head -1 "$work/bad.err")"
done
status=0
timeout 20 "$herdd" --name busy --listen "ipc://$work/busy.sock" --cookie-file "$work/cookie" \
    --control "ipc://$work/busy.ctl" --metrics "127.0.0.1:$m1" >/dev/null 2>"$work/busy.err" ||
    status=$?
[ "$status" = 1 ] || fail "--metrics on a port in use: exit $status, wanted 1"
grep -q "cannot serve --metrics at 127.0.0.1:$m1" "$work/busy.err" || fail "port in use: no message"
! grep -q "herdd: ready" "$work/busy.err" || fail "port in use: it got ready"
echo "ok: port in use: exit 1: $(grep -m1 'cannot serve' "$work/busy.err")"

# SIGTERM: both leave and exit 0
for i in 1 0; do
    kill -TERM "${pids[$i]}"
    status=0
    wait "${pids[$i]}" || status=$?
    [ "$status" = 0 ] || fail "node $i: SIGTERM, then exit $status"
done
pids=()
echo "herdd_metrics: ok"
