#!/usr/bin/env bash
# The manual pages (tools/man/), two ctests:
#
#   check_man.sh render PAGE...
#     man_render: each page renders without a warning: groff -man -Tutf8 -ww
#     (or man --warnings -l without groff); exit 77 (skipped) with neither.
#
#   check_man.sh coverage HERDD RINGCTL HERDD_PAGE RINGCTL_PAGE
#     man_coverage: the pages cannot fall behind the programs. From the
#     built programs' own --help texts: every flag of herdd has its item in
#     herdd(8); every command of `ringctl --help` has its item in ringctl(1),
#     and every flag of `ringctl --help` and of each `ringctl COMMAND --help`
#     is in the page; every exit code a --help names has its item under EXIT
#     STATUS; every environment variable (HERD_*) a --help names is in the
#     page.
set -uo pipefail

failures=0
fail() {
    echo "check_man: MISSING: $*" >&2
    failures=$((failures + 1))
}

render() {
    local page out
    for page in "$@"; do
        if command -v groff >/dev/null 2>&1; then
            out=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "$page: groff failed"
            [ -z "$out" ] || fail "$page: groff -ww warns:"$'\n'"$out"
            groff -man -Tutf8 -P-cbou "$page" 2>/dev/null | grep "^NAME" >/dev/null ||
                fail "$page: no NAME section rendered"
            echo "check_man: $page: groff -man -Tutf8 -ww: no warning"
        elif command -v man >/dev/null 2>&1; then
            out=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) ||
                fail "$page: man failed"
            [ -z "$out" ] || fail "$page: man --warnings warns:"$'\n'"$out"
            echo "check_man: $page: man --warnings -l: no warning"
        else
            echo "check_man: SKIPPED: neither groff nor man is installed" \
                 "(apt-get install groff-base)"
            exit 77
        fi
    done
}

# roff_of FLAG: the flag as the page's source writes it (every - as \-).
roff_of() { printf '%s' "${1//-/\\-}"; }

# has_flag PAGE FLAG: FLAG in PAGE's source, not as the start of a longer
# flag (--node is not --nodes).
has_flag() {
    local re
    re=$(roff_of "$2" | sed 's/\\/\\\\/g')
    grep -qE -- "${re}([^a-z\\\\]|\\\\[^-]|\$)" "$1"
}

# has_item PAGE WORD: an item of PAGE (.TP) whose tag begins with WORD
# (.B WORD / .BI WORD / .BR WORD, possibly quoted).
has_item() {
    local re
    re=$(roff_of "$2" | sed 's/\\/\\\\/g')
    grep -A1 -x '\.TP' "$1" | grep -E -- "^\\.B[IR]? \"?${re}([ \"]|\\\\f|\$)" >/dev/null
}

# exit_items PAGE: the codes with an item under EXIT STATUS.
exit_items() {
    awk '/^\.SH /{on = ($0 ~ /EXIT STATUS/)} on && /^\.B [0-9]+$/ {print $2}' "$1"
}

# exit_codes TEXT: the exit codes a help text names ("Exit codes: 0 done,
# 1 failed, ..." or "exit 0", "exits 1", "(exit 2)").
exit_codes() {
    tr '\n' ' ' <<<"$1" |
        grep -oE '([Ee]xits? (codes?: )?[0-9]+|[:,] [0-9]+ [a-z])' | grep -oE '[0-9]+' | sort -u
}

check_help() { # check_help NAME HELP_TEXT PAGE
    local name=$1 help=$2 page=$3 code var
    for code in $(exit_codes "$help"); do
        exit_items "$page" | grep -x "$code" >/dev/null || fail "$page: exit code $code ($name names it)"
    done
    for var in $(grep -oE 'HERD_[A-Z_]+' <<<"$help" | sort -u); do
        grep -qF "$var" "$page" || fail "$page: $var ($name names it)"
    done
}

coverage() {
    local herdd=$1 ringctl=$2 hpage=$3 rpage=$4 help flag cmd cmds n=0
    help=$("$herdd" --help) || { fail "herdd --help failed"; return; }
    for flag in $(grep -oE -- '--[a-z][a-z-]*[a-z]' <<<"$help" | sort -u); do
        has_item "$hpage" "$flag" || fail "$hpage: no item for herdd $flag"
        n=$((n + 1))
    done
    [ "$n" -ge 14 ] || fail "herdd --help: only $n flags found: is the parse broken?"
    check_help "herdd --help" "$help" "$hpage"
    echo "check_man: herdd(8): $n flags of herdd --help"

    help=$("$ringctl" --help) || { fail "ringctl --help failed"; return; }
    # commands: the left column of the lines "  COMMAND ARGS   what it does"
    # before "Global options:", and "/ COMMAND" in it (block NODE / unblock NODE)
    cmds=$(sed -n '1,/^Global options:/p' <<<"$help" | grep -E '^  [a-z]' |
        sed -E 's/^  //; s/   +.*//' |
        grep -oE '(^[a-z]+|/ [a-z]+)' | sed 's#^/ ##' | sort -u)
    n=0
    local flags
    flags=$(grep -oE -- '--[a-z][a-z-]*[a-z]' <<<"$help")
    for cmd in $cmds; do
        has_item "$rpage" "$cmd" || fail "$rpage: no item for ringctl $cmd"
        local chelp
        chelp=$("$ringctl" "$cmd" --help) || fail "ringctl $cmd --help failed"
        flags+=$'\n'$(grep -oE -- '--[a-z][a-z-]*[a-z]' <<<"$chelp")
        check_help "ringctl $cmd --help" "$chelp" "$rpage"
        n=$((n + 1))
    done
    [ "$n" -ge 18 ] || fail "ringctl --help: only $n commands found: is the parse broken?"
    local nf=0
    for flag in $(sort -u <<<"$flags"); do
        has_flag "$rpage" "$flag" || fail "$rpage: ringctl $flag"
        nf=$((nf + 1))
    done
    check_help "ringctl --help" "$help" "$rpage"
    echo "check_man: ringctl(1): $n commands, $nf flags of ringctl's --help texts"
}

mode=$1
shift
case "$mode" in
render) render "$@" ;;
coverage) coverage "$@" ;;
*) echo "usage: check_man.sh render PAGE... | coverage HERDD RINGCTL HERDD_PAGE RINGCTL_PAGE" >&2
   exit 2 ;;
esac
if [ "$failures" -gt 0 ]; then
    echo "check_man: $failures missing" >&2
    exit 1
fi
echo "check_man: ok"
