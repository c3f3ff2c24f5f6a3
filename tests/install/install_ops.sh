#!/usr/bin/env bash
# install_ops (ctest): what `cmake --install` gives the people who run herdd,
# in a prefix inside the build:
#   - the man pages herdd(8) and ringctl(1), where man finds them;
#   - herdd@.service, whose ExecStart is the prefix's herdd with
#     --config /etc/herd/%i.conf; the sysusers.d file of the user herd; the
#     example config, in the documentation directory and taken by herdd's
#     parser (checked by test_herdd_config), not in etc/;
#   - systemd-analyze verify has nothing to say of the installed unit
#     (skipped, saying so, where systemd-analyze is missing);
#   - with DESTDIR, the unit names the prefix's herdd, not the staging one.
# Usage: install_ops.sh BUILD_DIR CMAKE BINDIR MANDIR DOCDIR UNITDIR SYSUSERSDIR
# (the directories relative to the prefix, as GNUInstallDirs gives them)
set -euo pipefail
build=$1 cmake=$2 bindir=$3 mandir=$4 docdir=$5 unitdir=$6 sysusersdir=$7
work=$build/install-ops-test
prefix=$work/prefix
rm -rf "$work"
mkdir -p "$work"
step() { echo "== install_ops: $*"; }
fail() { echo "install_ops: FAILED: $*" >&2; exit 1; }

unset DESTDIR
step "cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log"
unit=$prefix/$unitdir/herdd@.service
for f in "$bindir/herdd" "$mandir/man8/herdd.8" "$mandir/man1/ringctl.1" \
         "$unitdir/herdd@.service" "$sysusersdir/herd.conf" "$docdir/example.conf"; do
    [ -f "$prefix/$f" ] || fail "$f not installed"
    echo "installed: $f"
done
[ ! -e "$prefix/etc" ] || fail "something was installed into etc/: $(ls -R "$prefix/etc")"

step "the unit"
want="ExecStart=$prefix/$bindir/herdd --config /etc/herd/%i.conf"
grep -qxF "$want" "$unit" || fail "no '$want' in $unit: $(grep ExecStart "$unit")"
! grep -q "@[A-Z_]*@" "$unit" || fail "an unconfigured @VARIABLE@ in $unit"
for line in User=herd RuntimeDirectory=herd/%i Restart=on-failure RestartPreventExitStatus=2 \
            NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes; do
    grep -qxF "$line" "$unit" || fail "no '$line' in $unit"
done
grep -qE '^u herd ' "$prefix/$sysusersdir/herd.conf" || fail "herd.conf makes no user herd"
grep -qx 'control = ipc:///run/herd/n1/herdd.ctl' "$prefix/$docdir/example.conf" ||
    fail "example.conf: its control socket is not in the unit's RuntimeDirectory"
echo "$want"

if command -v systemd-analyze >/dev/null 2>&1; then
    step "systemd-analyze verify $unit"
    # man:herdd(8) and man:ringctl(1) of Documentation= are looked up in the prefix
    status=0
    MANPATH=$prefix/$mandir SYSTEMD_LOG_COLOR=0 systemd-analyze verify "$unit" \
        >"$work/verify.log" 2>&1 || status=$?
    if [ "$status" != 0 ] || [ -s "$work/verify.log" ]; then
        cat "$work/verify.log" >&2
        fail "systemd-analyze verify: exit $status"
    fi
    echo "systemd-analyze verify: nothing to say"
else
    echo "install_ops: SKIPPED: systemd-analyze is not installed: the unit is not verified"
fi

if command -v man >/dev/null 2>&1; then
    step "man finds the pages in the prefix"
    for page in "8 herdd" "1 ringctl"; do
        # shellcheck disable=SC2086
        found=$(MANPATH=$prefix/$mandir man -w $page) || fail "man -w $page"
        [ "$found" = "$prefix/$mandir/man${page%% *}/${page#* }.${page%% *}" ] ||
            fail "man -w $page: $found"
        echo "man -w $page: $found"
    done
fi

step "DESTDIR=$work/stage cmake --install --prefix /opt/herd"
DESTDIR=$work/stage "$cmake" --install "$build" --prefix /opt/herd >"$work/stage.log"
staged=$work/stage/opt/herd/$unitdir/herdd@.service
[ -f "$staged" ] || fail "no $staged"
want="ExecStart=/opt/herd/$bindir/herdd --config /etc/herd/%i.conf"
grep -qxF "$want" "$staged" || fail "staged unit: $(grep ExecStart "$staged"), wanted $want"
echo "$want"
echo "install_ops: ok"
