#!/usr/bin/env bash
# Builds the consumer project in this directory against troupe one way and
# runs it: the installed `troupe broker`, the consumer's worker (a pool of
# 2), the consumer's client and a `troupe call`, then checks what they print.
#
#   run.sh find_package     WORK_DIR PREFIX          troupe installed in PREFIX
#   run.sh add_subdirectory WORK_DIR PREFIX SOURCE   troupe's source tree added to the project
#
# Both run PREFIX/bin/troupe. The add_subdirectory route builds the
# consumer's two executables and what they link (troupe's protocol, client
# and worker libraries), not troupe's broker and CLI: the time goes to what
# only that route can show.
# CMAKE_GENERATOR, CMAKE_BUILD_TYPE and CXX are taken from the environment.
# Every process it starts is stopped by pid on exit, also on failure, and
# every wait is bounded.
set -euo pipefail
route=$1 work=$2 prefix=$3 source=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
build=$work/build
jobs=${TROUPE_CONSUMER_JOBS:-$(nproc)}

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

troupe=$prefix/bin/troupe
targets=()
case $route in
  find_package) configure=(-DCMAKE_PREFIX_PATH="$prefix" -DTROUPE_SOURCE_DIR=) ;;
  add_subdirectory)
    configure=(-DTROUPE_SOURCE_DIR="$source")
    targets=(--target shop-worker shop-client) ;;
  *) fail "unknown route '$route'" ;;
esac

echo "== configure and build ($route)"
timeout 120 cmake -S "$here" -B "$build" "${configure[@]}" >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; fail "configure"; }
timeout 480 cmake --build "$build" -j "$jobs" "${targets[@]}" || fail "build"

if [[ $route == add_subdirectory ]]; then
  # Not the top-level project: troupe's tests, examples and benchmarks and
  # its install rules are off unless the parent turns them on.
  for option in TROUPE_BUILD_TESTS TROUPE_BUILD_EXAMPLES TROUPE_BUILD_BENCH TROUPE_INSTALL; do
    grep -q "^$option:BOOL=OFF$" "$build/CMakeCache.txt" || fail "$option is not OFF inside a parent project"
  done
fi

if [[ $route == find_package ]]; then
  # The package came from PREFIX, not from anywhere else on the system.
  found=$(sed -n 's/^troupe_DIR:PATH=//p' "$build/CMakeCache.txt")
  [[ $(realpath "$found") == "$(realpath "$prefix")"/* ]] || fail "troupe found in '$found', not under $prefix"
  # Without CMake: the client and the worker again, built with the
  # installed troupe.pc as docs/using.md shows. The client runs below.
  pc=$(dirname "$(find "$prefix" -name troupe.pc | head -1)")
  flags=$(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs troupe) || fail "pkg-config troupe"
  echo "== c++ -std=c++20 client.cpp \$(pkg-config --cflags --libs troupe), and worker.cpp actors.cpp"
  # shellcheck disable=SC2086  # the flags are words
  timeout 300 "${CXX:-c++}" -std=c++20 "$here/client.cpp" $flags -o "$build/shop-client-pkg-config" ||
    fail "client with pkg-config"
  # shellcheck disable=SC2086
  timeout 300 "${CXX:-c++}" -std=c++20 "$here/worker.cpp" "$here/actors.cpp" $flags \
    -o "$build/shop-worker-pkg-config" || fail "worker with pkg-config"
  listed=$(timeout 10 "$build/shop-worker-pkg-config" --list)
  [[ $listed == $'cart: add count\npricing: quote' ]] || fail "the pkg-config worker lists '$listed'"
fi

echo "== broker ($troupe), worker pool, client"
endpoint="ipc://$tmp/broker.sock"
"$troupe" broker --listen "$endpoint" >"$tmp/broker.out" 2>"$tmp/broker.err" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$tmp/broker.out" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$tmp/broker.out" || { cat "$tmp/broker.err"; fail "broker did not start"; }

"$build/shop-worker" --broker "$endpoint" --processes 2 2>"$tmp/worker.err" &
pids+=($!)
for _ in $(seq 100); do
  timeout 5 "$troupe" stats --broker "$endpoint" --timeout-ms 500 2>/dev/null | grep -q '"workers":2' && break
  sleep 0.1
done
timeout 5 "$troupe" stats --broker "$endpoint" --timeout-ms 1000 | grep -q '"workers":2' ||
  { cat "$tmp/worker.err"; fail "the worker pool did not register"; }

expected='cart/alice apples = 7, cart/bob apples = 0
pears: 540 cents (discounted)'
clients=("$build/shop-client")
[[ $route == find_package ]] && clients+=("$build/shop-client-pkg-config")
for client in "${clients[@]}"; do
  # Each run adds 7 apples to alice's cart: a second client sees 14.
  out=$(timeout 60 "$client" "$endpoint") || { cat "$tmp/worker.err"; fail "$(basename "$client") exited with an error"; }
  echo "$out"
  [[ $out == "$expected" ]] || fail "$(basename "$client") printed the above, expected:
$expected"
  expected=${expected/apples = 7/apples = 14}
done

# The keyed actor's state from the command line, in whatever worker holds it.
count=$(timeout 30 "$troupe" call --broker "$endpoint" --timeout-ms 10000 cart/alice count '"apples"')
echo "troupe call cart/alice count '\"apples\"' -> $count"
want=$((7 * ${#clients[@]}))
[[ $count == "$want" ]] || fail "troupe call printed '$count', expected $want"
echo "ok: $route"
