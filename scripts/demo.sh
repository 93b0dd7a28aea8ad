#!/usr/bin/env bash
# `make demo`: a broker and a pool of 3 worker processes on loopback, the
# example clients against them, then a graceful stop of everything started.
set -euo pipefail
bin=${TROUPE_BIN_DIR:-build/bin}
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

"$bin/troupe" broker --listen 'tcp://127.0.0.1:*' >"$tmp/broker.out" 2>"$tmp/broker.err" &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$tmp/broker.out" 2>/dev/null && break; sleep 0.1; done
endpoint=$(sed -n 's/^troupe broker listening on //p' "$tmp/broker.out")
[[ -n "$endpoint" ]] || { echo "broker did not start:"; cat "$tmp/broker.err"; exit 1; }
echo "== broker on $endpoint; starting a pool of 3 worker processes"

"$bin/troupe-examples-worker" --broker "$endpoint" --processes 3 2>"$tmp/workers.err" &
pool=$!
pids+=($pool)
for _ in $(seq 100); do
  "$bin/troupe" stats --broker "$endpoint" --timeout-ms 500 2>/dev/null | grep -q '"workers":3' && break
  sleep 0.1
done

echo "== troupe call squares square 7"
"$bin/troupe" call --broker "$endpoint" squares square 7
echo "== 8 inputs on squares (example-squares-pool)"
"$bin/example-squares-pool" "$endpoint"
echo "== vectorize over arrays (example-vectorize-apply)"
"$bin/example-vectorize-apply" "$endpoint"
echo "== keyed counters (example-counter-keys)"
"$bin/example-counter-keys" "$endpoint"
echo "== an error: troupe call squares square '\"seven\"'"
"$bin/troupe" call --broker "$endpoint" squares square '"seven"' || true
echo "== broker stats"
"$bin/troupe" stats --broker "$endpoint"

echo "== stopping the pool (SIGTERM): each instance is destroyed once, in its own process"
kill -TERM "$pool"
for _ in $(seq 100); do kill -0 "$pool" 2>/dev/null || break; sleep 0.1; done
wait "$pool" || true
grep -E "squares (constructed|destroyed)|kernel built" "$tmp/workers.err" | sort
echo "== squares instances built: $(grep -c 'squares constructed' "$tmp/workers.err"), destroyed: $(grep -c 'squares destroyed' "$tmp/workers.err")"
