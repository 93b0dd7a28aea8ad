"""Load generator for the Celery peer: B1 (one in flight) and B2 (window).
Prints one JSON line."""
import collections
import json
import sys
import time

import celery_tasks


def pct(v, p):
    v = sorted(v)
    return v[int(p * (len(v) - 1) + 0.5)] if v else 0.0


def main():
    b1, b2, window, warmup = (int(x) for x in sys.argv[1:5])
    sq = celery_tasks.square
    for i in range(warmup):
        sq.delay(i).get(timeout=30)
    lat = []
    for i in range(b1):
        t = time.perf_counter()
        sq.delay(i).get(timeout=30)
        lat.append((time.perf_counter() - t) * 1e6)
    q = collections.deque()
    done = errors = 0
    t0 = time.perf_counter()
    for i in range(b2):
        if len(q) >= window:
            if q.popleft().get(timeout=60) is None:
                errors += 1
            done += 1
        q.append(sq.delay(i))
    while q:
        q.popleft().get(timeout=60)
        done += 1
    secs = time.perf_counter() - t0
    print(json.dumps({"b1_requests": b1, "p50_us": pct(lat, 0.5), "p99_us": pct(lat, 0.99),
                      "p999_us": pct(lat, 0.999), "b2_requests": b2, "window": window,
                      "throughput": done / secs, "errors": errors}))


if __name__ == "__main__":
    main()
