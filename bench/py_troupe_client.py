#!/usr/bin/python3
"""troupe's Python clients on the load bench/py_raw_client.py generates.

  py_troupe_client.py ENDPOINT --via map|async|async-map|ask [--requests N] [--warmup N] [--window W]

- ``map``: ``Client.map("squares", "square", range(N), window=W)``.
- ``async``: one ``AsyncClient``, W tasks each awaiting ``ask`` in a loop
  (W asks in flight at all times) until N asks are done.
- ``async-map``: ``AsyncClient.map(..., window=W)``.
- ``ask``: the blocking single-request loop, ``Client.ask`` N times.

Prints one JSON line like py_raw_client.py (cpu_us: CPU time of this process
per request). Needs ``troupe`` importable
(bench/run.py puts clients/python on PYTHONPATH).
"""
import argparse
import asyncio
import json
import time

import troupe


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("--via", required=True, choices=["map", "async", "async-map", "ask"])
    ap.add_argument("--requests", type=int, default=50000)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--window", type=int, default=1000)
    a = ap.parse_args()
    clock = time.perf_counter
    out = {"requests": a.requests, "window": 1 if a.via == "ask" else a.window, "via": a.via}

    if a.via in ("map", "ask"):
        with troupe.Client(a.endpoint, timeout=60) as c:
            if a.via == "map":
                c.map("squares", "square", range(a.warmup), window=a.window)
                t0, c0 = clock(), time.process_time()
                c.map("squares", "square", range(a.requests), window=a.window)
                out["seconds"], out["cpu_us"] = clock() - t0, (time.process_time() - c0) * 1e6 / a.requests
            else:
                for i in range(a.warmup):
                    c.ask("squares", "square", i)
                lat = []
                ask = c.ask
                t0, c0 = clock(), time.process_time()
                for i in range(a.requests):
                    t1 = clock()
                    ask("squares", "square", i % 100000)
                    lat.append(clock() - t1)
                out["seconds"], out["cpu_us"] = clock() - t0, (time.process_time() - c0) * 1e6 / a.requests
                lat.sort()
                out["p50_us"] = lat[len(lat) // 2] * 1e6
                out["p99_us"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6
    else:
        async def run():
            async with troupe.AsyncClient(a.endpoint, timeout=60) as c:
                async def closed_loop(n):
                    left = [n]

                    async def task():
                        while left[0] > 0:
                            left[0] -= 1
                            await c.ask("squares", "square", left[0] % 100000)

                    await asyncio.gather(*(task() for _ in range(min(a.window, n))))

                if a.via == "async":
                    await closed_loop(a.warmup)
                    t0, c0 = clock(), time.process_time()
                    await closed_loop(a.requests)
                else:
                    await c.map("squares", "square", range(a.warmup), window=a.window)
                    t0, c0 = clock(), time.process_time()
                    await c.map("squares", "square", range(a.requests), window=a.window)
                out["seconds"], out["cpu_us"] = clock() - t0, (time.process_time() - c0) * 1e6 / a.requests

        asyncio.run(run())
    out["throughput"] = a.requests / out["seconds"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
