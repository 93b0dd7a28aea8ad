#!/bin/sh
# `make bench-peers`: install the peers' Debian packages, build the CAF peer,
# run bench/peers/run_peers.py.
set -e
cd "$(dirname "$0")/../.."
need=""
for p in python3-celery python3-redis redis-server libcaf-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
  echo "installing:$need"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
mkdir -p build/bench-peers
if [ ! -x build/bench-peers/caf-peer ] || [ bench/peers/caf_peer.cpp -nt build/bench-peers/caf-peer ]; then
  echo "building build/bench-peers/caf-peer"
  g++ -std=c++17 -O2 bench/peers/caf_peer.cpp -o build/bench-peers/caf-peer -lcaf_io -lcaf_core -lpthread
fi
exec /usr/bin/python3 bench/peers/run_peers.py "$@"
