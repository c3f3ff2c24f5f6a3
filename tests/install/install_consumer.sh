#!/usr/bin/env bash
# install_consumer (ctest): install this build into a prefix inside it, then,
# out of the tree and against that prefix only:
#   - herdd --version, ringctl --version, libherd.so's soname;
#   - every installed header compiled alone as C11 (-std=c11, no feature macro)
#     and all of them as C++17 (g++ -fsyntax-only), then a C++ program run;
#   - consumer.c built with pkg-config (cc $(pkg-config --cflags --libs herd))
#     and run;
#   - cmake_consumer/ (find_package(herd), herd::herd and herd::herd_static)
#     built and both programs run.
# Each consumer starts a node (cluster, registry, supervisor, control socket),
# calls a child of its own and prints herd_version().
# Usage: install_consumer.sh BUILD_DIR CMAKE CC LIBDIR VERSION
set -euo pipefail
build=$1 cmake=$2 cc=$3 libdir=$4 version=$5
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$build/install-test
prefix=$work/prefix
rm -rf "$work"
mkdir -p "$work"
step() { echo "== install_consumer: $*"; }
fail() { echo "install_consumer: FAILED: $*" >&2; exit 1; }
# Control and cluster sockets of this run (short paths: a unix socket path has
# at most 107 bytes).
sock=/tmp/herd-install-$$
cleanup() { rm -f "$sock"-*; }
trap cleanup EXIT

unset DESTDIR # the prefix is the whole destination
step "cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log"
for f in bin/herdd bin/ringctl "$libdir/libherd.so" "$libdir/libherd.so.${version%%.*}" \
         "$libdir/libherd.so.$version" "$libdir/libherd.a" include/herd/herd.h \
         include/herd/herd_version.h "$libdir/pkgconfig/herd.pc" \
         "$libdir/cmake/herd/herdConfig.cmake" "$libdir/cmake/herd/herdConfigVersion.cmake"; do
    [ -e "$prefix/$f" ] || fail "$f not installed"
done
soname=$(objdump -p "$prefix/$libdir/libherd.so.$version" | awk '$1 == "SONAME" {print $2}')
[ "$soname" = "libherd.so.${version%%.*}" ] || fail "soname '$soname'"
[ "$("$prefix/bin/herdd" --version)" = "herdd $version" ] || fail "herdd --version"
[ "$("$prefix/bin/ringctl" --version)" = "ringctl $version" ] || fail "ringctl --version"
echo "soname $soname; $("$prefix/bin/herdd" --version); $("$prefix/bin/ringctl" --version)"

step "libherd.so exports herd_ names only"
exported=$(nm -D --defined-only "$prefix/$libdir/libherd.so.$version" | awk '{print $NF}')
[ -n "$exported" ] || fail "no symbol exported"
bad=$(printf '%s\n' "$exported" | grep -v '^herd_' || true)
[ -z "$bad" ] || fail "exported without the herd_ prefix: $(echo $bad)"
echo "$(printf '%s\n' "$exported" | wc -l) symbols, every one herd_*"

export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
export LD_LIBRARY_PATH=$prefix/$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
cflags=$(pkg-config --cflags herd)
libs=$(pkg-config --libs herd)
echo "pkg-config herd $(pkg-config --modversion herd): $cflags $libs"
[ "$(pkg-config --modversion herd)" = "$version" ] || fail "herd.pc version"

step "each installed header alone, C11"
headers=()
for h in "$prefix"/include/herd/*.h; do
    headers+=("herd/$(basename "$h")")
    printf '#include <herd/%s>\n' "$(basename "$h")" >"$work/one.c"
    "$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only $cflags "$work/one.c" ||
        fail "herd/$(basename "$h") as C11"
done
echo "${#headers[@]} headers: ${headers[*]}"

# g++ comes with build-essential (tools/quickstart.sh): without it the C++
# checks cannot run, and that is a failure, not a skip
command -v g++ >/dev/null 2>&1 || fail "g++ not found (apt-get install g++): the C++ checks cannot run"
step "every installed header as C++17, and a C++ program"
printf '#include <%s>\n' "${headers[@]}" >"$work/all.cpp"
g++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only $cflags "$work/all.cpp" ||
    fail "headers as C++17"
g++ -std=c++17 -Wall -Wextra -Werror $cflags "$here/consumer.cpp" -o "$work/consumer_cxx" \
    $libs || fail "C++ program"
"$work/consumer_cxx" || fail "C++ program run"

step "consumer.c with pkg-config"
"$cc" -std=c11 -Wall -Wextra -Werror $cflags "$here/consumer.c" -o "$work/consumer_pc" $libs ||
    fail "pkg-config build"
# grep reads all of ldd's output (grep -q would stop early, and pipefail
# would take ldd's SIGPIPE for a failure)
ldd "$work/consumer_pc" | grep "$prefix/$libdir/libherd.so" >/dev/null ||
    fail "not the installed libherd.so"
"$work/consumer_pc" "ipc://$sock-pc.sock" "ipc://$sock-pc.ctl" || fail "pkg-config consumer run"

step "cmake_consumer with find_package(herd)"
unset PKG_CONFIG_PATH LD_LIBRARY_PATH
"$cmake" -S "$here/cmake_consumer" -B "$work/cmake_consumer" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/cmake_consumer.log" ||
    { cat "$work/cmake_consumer.log"; fail "find_package(herd) configure"; }
"$cmake" --build "$work/cmake_consumer" >>"$work/cmake_consumer.log" 2>&1 ||
    { cat "$work/cmake_consumer.log"; fail "find_package(herd) build"; }
"$work/cmake_consumer/consumer" "ipc://$sock-cm.sock" "ipc://$sock-cm.ctl" ||
    fail "herd::herd consumer run"
"$work/cmake_consumer/consumer_static" "ipc://$sock-cs.sock" "ipc://$sock-cs.ctl" ||
    fail "herd::herd_static consumer run"
echo "install_consumer: ok"
