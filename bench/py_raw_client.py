#!/usr/bin/python3
"""The baseline for the Python client: a raw pyzmq + msgpack DEALER loop.

Nothing of troupe is in it. It sends troupe REQUESTs (docs/protocol.md) for
``squares.square(i)`` and reads the REPLYs, decoding each reply's meta and
value as any client must. Written to be the fastest honest Python for that
job (see bench/py_raw_worker.py for why frames are sent and received one by
one, and why bytes rather than zero-copy Frames):

- ``--window W`` (default 1000): W requests in flight; every reply read lets
  one more request go. Prints the throughput.
- ``--window 1``: the blocking single-request loop (send, wait for the
  reply, repeat). Prints latency percentiles.

It trusts the broker's framing and matches no ids (the one peer answers
every request once); it ends with exit 1 when no reply comes for 10 s.

  py_raw_client.py ENDPOINT [--requests N] [--warmup N] [--window W]

Prints one JSON line: requests, seconds, window, throughput, p50_us, p99_us,
and cpu_us: CPU time of this process (all its threads) per request.
"""
import argparse
import itertools
import json
import sys
import time

import msgpack
import zmq

REQUEST = b"TRP\x01\x01"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("--requests", type=int, default=50000)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--window", type=int, default=1000)
    a = ap.parse_args()

    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, 100000)
    s.setsockopt(zmq.RCVHWM, 100000)
    s.setsockopt(zmq.RCVTIMEO, 10000)
    s.connect(a.endpoint)

    # send without pyzmq's Python-level wrapper (it only adds draft-socket
    # options and costs as much as the send itself); int flags, not enums.
    recv, send, more = s.recv, super(zmq.Socket, s).send, int(zmq.SNDMORE)
    pack, unpackb = msgpack.Packer().pack, msgpack.unpackb
    clock = time.perf_counter
    ids = itertools.count(1)

    def request(i):
        send(REQUEST, more)
        send(pack([next(ids), "squares", "square", 0, 60000]), more)
        send(pack([i % 100000]))

    def reply():
        recv()
        id_, status = unpackb(recv())
        value = unpackb(recv())
        if status != "ok":
            raise RuntimeError("error reply %s: %r" % (status, value))
        return value

    def windowed(n, w):
        sent = done = 0
        while sent < min(w, n):
            request(sent)
            sent += 1
        while done < n:
            reply()
            done += 1
            if sent < n:
                request(sent)
                sent += 1

    def blocking(n, lat):
        for i in range(n):
            t0 = clock()
            request(i)
            reply()
            lat.append(clock() - t0)

    out = {"requests": a.requests, "window": a.window}
    try:
        if a.window == 1:
            blocking(a.warmup, [])
            lat = []
            t0, c0 = clock(), time.process_time()
            blocking(a.requests, lat)
            out["seconds"], out["cpu_us"] = clock() - t0, (time.process_time() - c0) * 1e6 / a.requests
            lat.sort()
            out["p50_us"] = lat[len(lat) // 2] * 1e6
            out["p99_us"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6
        else:
            windowed(a.warmup, a.window)
            t0, c0 = clock(), time.process_time()
            windowed(a.requests, a.window)
            out["seconds"], out["cpu_us"] = clock() - t0, (time.process_time() - c0) * 1e6 / a.requests
    except zmq.Again:
        print(json.dumps({"failed": True, "why": "no reply for 10 s"}))
        sys.exit(1)
    out["throughput"] = a.requests / out["seconds"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
