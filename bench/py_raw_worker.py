#!/usr/bin/python3
"""The baseline for the Python worker: a raw pyzmq + msgpack worker loop.

Nothing of troupe is in it. It speaks docs/protocol.md to a troupe broker:
READY once (name, pid, credits, actors ["squares"]), then for every REQUEST
[hdr][meta][args]: unpack meta (the id) and args ([x]), compute x*x, pack
[id, "ok"] and the value, send the REPLY; a HEARTBEAT every 0.5 s. It is
written to be the fastest honest Python for that job, so that the Python
worker can be measured against what Python itself can do on this machine:

- it drains without polling: a blocking recv (RCVTIMEO 100 ms, so a stop or
  a heartbeat is never late) returns at once while messages wait;
- it reads a REQUEST as three plain recv() calls and sends the REPLY as
  three send() calls: with pyzmq 24, recv_multipart asks
  zmq_getsockopt(RCVMORE) per frame through a path that costs about as much
  as two recv() calls, and both loop in Python (docs/performance.md, "The
  Python worker"); send is the backend's, without pyzmq's Python-level
  wrapper (which adds only draft-socket options), with int flags;
- it reuses one msgpack Packer and calls msgpack.unpackb without options;
- frames are bytes (copy=True): for frames of a few bytes, pyzmq's zero-copy
  Frame objects cost more than the copy they save.

What it leaves out, and the troupe worker does not: it trusts the broker's
framing (a message with a wrong number of frames would desynchronise it),
checks no types or limits, hosts one fixed method, and neither watches the
broker's liveness nor stops gracefully (SIGTERM ends it at once).

  py_raw_worker.py ENDPOINT [--credits N] [--name NAME]
"""
import argparse
import os
import signal
import sys
import time

import msgpack
import zmq

REQUEST = b"TRP\x01\x01"
REPLY = b"TRP\x01\x02"
READY = b"TRP\x01\x03"
HEARTBEAT = b"TRP\x01\x04"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("--credits", type=int, default=1000)
    ap.add_argument("--name", default="py-raw-worker-%d" % os.getpid())
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, 100000)
    s.setsockopt(zmq.RCVHWM, 100000)
    s.setsockopt(zmq.RCVTIMEO, 100)
    s.connect(a.endpoint)
    s.send(READY, zmq.SNDMORE)
    s.send(msgpack.packb({"name": a.name, "pid": os.getpid(), "credits": a.credits, "actors": ["squares"]}))
    print("py raw worker ready", flush=True)

    # send without pyzmq's Python-level wrapper (it only adds draft-socket
    # options and costs as much as the send itself); int flags, not enums.
    recv, send, more = s.recv, super(zmq.Socket, s).send, int(zmq.SNDMORE)
    unpackb, pack = msgpack.unpackb, msgpack.Packer().pack
    monotonic, Again = time.monotonic, zmq.Again
    next_beat = monotonic() + 0.5
    while True:
        try:
            hdr = recv()
        except Again:
            hdr = None
        if hdr == REQUEST:
            meta = recv()
            (x,) = unpackb(recv())
            send(REPLY, more)
            send(pack([unpackb(meta)[0], "ok"]), more)
            send(pack(x * x))
        elif hdr is not None:
            while s.get(zmq.RCVMORE):  # a heartbeat has no body; anything else is skipped
                recv()
        now = monotonic()
        if now >= next_beat:
            send(HEARTBEAT)
            next_beat = now + 0.5


if __name__ == "__main__":
    main()
