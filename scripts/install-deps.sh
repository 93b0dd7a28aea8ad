#!/usr/bin/env bash
# Installs the Debian packages troupe needs to build and test, when missing.
# Safe to run again: it installs nothing when everything is there.
set -euo pipefail

packages=(
  g++ cmake ninja-build make pkg-config
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libcli11-dev nlohmann-json3-dev
  libsqlite3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-zmq python3-msgpack python3-pytest
  python3-venv
)
case "${1:-}" in
  --bench) packages+=(valgrind gnuplot-nox) ;;
  # The durable peers of `make bench-peers` (docs/durability.md): servers
  # and their C client libraries.
  --bench-peers) packages+=(redis-server rabbitmq-server libhiredis-dev librabbitmq-dev) ;;
  # CPack's DEB generator: dpkg-shlibdeps finds the executable's library
  # dependencies; it uses `file` to find the executables.
  --package) packages+=(dpkg-dev file) ;;
  # libFuzzer with ASan and UBSan (scripts/fuzz.sh): clang's sanitizer and
  # fuzzer runtimes are a package of their own, not a dependency of clang.
  --fuzz) packages+=(clang libclang-rt-14-dev) ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "installing: ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "error: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
