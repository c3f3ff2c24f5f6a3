# cli_lib.sh - what the herdd shell tests share (sourced after they set
# `work`, their directory, and `pids`, the processes they started):
#   stop_started   kill -KILL each process of `pids` still alive, by PID
#   fail_with NAME MESSAGE   say NAME: FAILED: MESSAGE and the tail of each
#                  $work/*.err, then exit 1
stop_started() {
    local p
    for p in "${pids[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
}
fail_with() {
    local f
    echo "$1: FAILED: $2" >&2
    for f in "$work"/*.err; do
        [ -e "$f" ] && { echo "--- $f" >&2; tail -25 "$f" >&2; }
    done
    exit 1
}
