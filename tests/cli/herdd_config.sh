#!/usr/bin/env bash
# herdd_config_cli (ctest): the built herdd with --config FILE, end to end.
#   - a bad key: exit 2, FILE:LINE and the key on stderr, no node started;
#   - a file that cannot be read: exit 2 naming it;
#   - the file's cookie-file is the one read (a loose cookie: exit 1, "mode"),
#     and a --cookie-file on the command line wins over it;
#   - a node started from the file, with --name on the command line winning:
#     its ready line, then SIGTERM and exit 0.
# Usage: herdd_config.sh HERDD
set -euo pipefail
herdd=$1
work=$(mktemp -d /tmp/herd-cfg-XXXXXX) # short: a unix socket path has at most 107 bytes
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "herdd_config: FAILED: $*" >&2
    for f in "$work"/*.err; do [ -e "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }; done
    exit 1
}
# run NAME WANT_STATUS NEEDLE ARGS...: herdd ARGS exits WANT_STATUS with NEEDLE
# on stderr and never gets ready.
run() {
    local name=$1 want=$2 needle=$3 status=0
    shift 3
    timeout 20 "$herdd" "$@" >"$work/$name.out" 2>"$work/$name.err" || status=$?
    [ "$status" = "$want" ] || fail "$name: exit $status, wanted $want"
    grep -qF -- "$needle" "$work/$name.err" || fail "$name: no '$needle' on stderr"
    ! grep -q "ready" "$work/$name.err" || fail "$name: a node started"
    echo "ok: $name: exit $status: $(grep -F -- "$needle" "$work/$name.err" | head -1)"
}

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/cookie"
chmod 600 "$work/cookie"
cp "$work/cookie" "$work/loose"
chmod 644 "$work/loose"

cat >"$work/bad.conf" <<EOF
# a typo on line 3
name = n1
wieght = 3
EOF
run bad_key 2 "$work/bad.conf:3: unknown key 'wieght'" --config "$work/bad.conf"
printf '\nname = a b\n' >"$work/badname.conf"
run bad_value 2 "$work/badname.conf:2: bad name 'a b'" --config "$work/badname.conf"
run missing 2 "$work/none.conf: cannot read config file" --config "$work/none.conf"

cat >"$work/node.conf" <<EOF
name = cfgnode
listen = ipc://$work/node.sock
control = ipc://$work/node.ctl
cookie-file = $work/loose
log-level = info
EOF
run file_cookie 1 "mode" --config "$work/node.conf"
grep -q "herd info" "$work/file_cookie.err" || fail "file_cookie: the file's log-level = info not taken"
run cli_cookie 1 "cannot read cookie file $work/nope" --config "$work/node.conf" \
    --cookie-file "$work/nope"

# A node from the file; --name and --cookie-file given on the command line win.
"$herdd" --config "$work/node.conf" --name cliname --cookie-file "$work/cookie" \
    >"$work/node.out" 2>"$work/node.err" &
pid=$!
for _ in $(seq 1 200); do # 20 s at most
    grep -q "herdd: ready" "$work/node.err" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
want="herdd: ready name=cliname listen=ipc://$work/node.sock control=ipc://$work/node.ctl"
grep -qF "$want" "$work/node.err" || fail "node: no '$want'"
[ -S "$work/node.ctl" ] || fail "node: no control socket at $work/node.ctl"
echo "ok: node: $want"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" = 0 ] || fail "node: SIGTERM, then exit $status, wanted 0"
echo "ok: node: SIGTERM, exit 0"
echo "herdd_config: ok"
