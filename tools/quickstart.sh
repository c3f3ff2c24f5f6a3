#!/usr/bin/env bash
# herd's quick start: installs what is missing, builds, then runs the demo or
# every test. The README's two commands and CI (.ci/run) call this script.
#
#   bash tools/quickstart.sh deps   # install the packages herd needs, nothing else
#   bash tools/quickstart.sh demo   # install, build, run the demo
#   bash tools/quickstart.sh test   # install, build normal + ASan/UBSan, run all tests
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# groff-base: the ctest man_render renders the manual pages with it.
# libmicrohttpd-dev: herdd --metrics; curl: the ctest herdd_metrics_cli fetches
# with it; iproute2: herdd_discover_cli's network namespace (ip netns).
PACKAGES=(build-essential cmake pkg-config libuv1-dev libxxhash-dev libnanomsg-dev
          libcmocka-dev libjansson-dev libsodium-dev groff-base libmicrohttpd-dev curl
          iproute2)
JOBS=$(nproc 2>/dev/null || echo 2)

# The one place that installs packages (PACKAGES): `deps` does only this; demo
# and test do it first.
install_missing() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "quickstart: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# build DIR [cmake options...]
build() {
    local dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j "$JOBS" >/dev/null
}

# Both builds' tests run even when the first fails; fails if either did.
run_tests() {
    local rc=0
    build build
    build build-asan -DHERD_SANITIZE=ON
    echo "== tests (release build)"
    ctest --test-dir build --output-on-failure -j "$JOBS" || rc=1
    echo "== tests (ASan + UBSan build)"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --test-dir build-asan --output-on-failure -j "$JOBS" || rc=1
    return $rc
}

case "${1:-}" in
deps)
    install_missing
    ;;
demo)
    install_missing
    build build
    bash tools/demo.sh build
    ;;
test)
    install_missing
    run_tests
    ;;
*)
    echo "usage: bash tools/quickstart.sh deps|demo|test" >&2
    exit 2
    ;;
esac
