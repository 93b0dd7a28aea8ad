#!/usr/bin/python3
"""The figures of issue 11, measured on real processes (docs/durability.md).

1. loss: 10,000 tells `journal/x add TAG` from one producer, the broker
   SIGKILLed after 5,000 and restarted after an outage (1 s, then 5 s).
   Without --durable the tells are plain; with it they are durable and the
   producer re-sends what the broker has not confirmed, under the same
   message ids, as the client libraries do. Printed: tells applied (from the
   worker's journal), lost, duplicates, and the live instances of
   journal/x at the end (one activation per key: should be 1).
2. comeback: a worker busy with 64 slow asks (300 ms each) when the broker
   is SIGKILLed and restarted: how long until the name answers again, and
   how many of the old broker's requests still ran after the restart.

It speaks the wire protocol with pyzmq (docs/protocol.md), so the same
script measures builds without durability: --bin DIR of the build to
measure. It prints; it asserts nothing.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

import msgpack
import zmq

HEADER = b"TRP\x01"
REQUEST, REPLY = 1, 2
FLAG_TELL, FLAG_DURABLE = 1, 2


def header(cmd):
    return HEADER + bytes([cmd])


class cluster:
    def __init__(self, bin_dir, tmp, durable):
        self.bin = bin_dir
        self.tmp = tmp
        self.endpoint = "ipc://" + os.path.join(tmp, "broker.sock")
        self.journal = os.path.join(tmp, "journal.txt")
        self.durable = durable
        self.broker = None
        self.workers = []

    def start_broker(self):
        args = [os.path.join(self.bin, "troupe"), "broker", "--listen", self.endpoint]
        if self.durable:
            args += ["--store", os.path.join(self.tmp, "store.db")]
        self.broker = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(os.path.join(self.tmp, "broker.log"), "a"))
        line = self.broker.stdout.readline()
        if b"listening" not in line:
            raise RuntimeError("broker did not start: %r" % line)

    def kill_broker(self):
        self.broker.send_signal(signal.SIGKILL)
        self.broker.wait()

    def start_worker(self, name, credits=64):
        env = dict(os.environ, TROUPE_JOURNAL=self.journal)
        w = subprocess.Popen([os.path.join(self.bin, "troupe-test-journal-worker"), "--broker", self.endpoint,
                              "--name", name, "--credits", str(credits)],
                             env=env, stderr=open(os.path.join(self.tmp, name + ".log"), "a"))
        self.workers.append(w)
        return w

    def stop(self):
        for p in self.workers + ([self.broker] if self.broker else []):
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()


class producer:
    def __init__(self, endpoint):
        self.ctx = zmq.Context()
        self.s = self.ctx.socket(zmq.DEALER)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.connect(endpoint)
        self.next_id = 1

    def send(self, address, method, args, tell=False, durable=False, mid=None, timeout_ms=60000):
        cid = self.next_id
        self.next_id += 1
        flags = (FLAG_TELL if tell else 0) | (FLAG_DURABLE if durable else 0)
        meta = [cid, address, method, flags, timeout_ms]
        if durable:
            meta.append({"id": mid})
        self.s.send_multipart([header(REQUEST), msgpack.packb(meta), msgpack.packb(args)])
        return cid

    def replies(self, wait_ms):
        out = []
        if self.s.poll(wait_ms):
            while True:
                try:
                    f = self.s.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if len(f) == 3 and f[0] == header(REPLY):
                    meta = msgpack.unpackb(f[1])
                    out.append((meta[0], meta[1], msgpack.unpackb(f[2])))
        return out

    def ask(self, address, method, args, timeout_s=2.0):
        cid = self.send(address, method, args, timeout_ms=int(timeout_s * 1000))
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            for rid, status, value in self.replies(50):
                if rid == cid:
                    return status, value
        return "no_reply", None

    def close(self):
        self.s.close()
        self.ctx.term()


def read_journal(path, address):
    adds, live = {}, {}
    if not os.path.exists(path):
        return adds, live
    for line in open(path):
        p = line.split()
        if len(p) < 3 or p[1] != address:
            continue
        if p[0] == "add":
            adds[p[2]] = adds.get(p[2], 0) + 1
        elif p[0] == "new":
            live[p[2]] = live.get(p[2], 0) + 1
        elif p[0] == "del":
            live[p[2]] = live.get(p[2], 0) - 1
    return adds, live


def wait_quiet(path, seconds=2.0, limit=60.0):
    """Waits until the journal stops growing for `seconds` (at most `limit`)."""
    end = time.monotonic() + limit
    last, since = -1, time.monotonic()
    while time.monotonic() < end:
        size = os.path.getsize(path) if os.path.exists(path) else 0
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        time.sleep(0.1)


def run_loss(bin_dir, durable, outage, n=10000):
    with tempfile.TemporaryDirectory(prefix="troupe-fig-") as tmp:
        c = cluster(bin_dir, tmp, durable)
        try:
            c.start_broker()
            c.start_worker("w1")
            c.start_worker("w2")
            p = producer(c.endpoint)
            # Both workers registered, and journal/x placed, before we start.
            for _ in range(100):
                if p.ask("journal/x", "get", [], 0.5)[0] == "ok":
                    break
            tags = ["t%d" % i for i in range(n)]
            unconfirmed = {}
            def send(i):
                cid = p.send("journal/x", "add", [tags[i]], tell=True, durable=durable, mid="fig-" + tags[i])
                unconfirmed[cid] = i
            for i in range(n // 2):
                send(i)
            p.replies(0)
            c.kill_broker()
            time.sleep(outage)
            c.start_broker()
            for i in range(n // 2, n):
                send(i)
            if durable:
                # Re-send, under the same message ids, what is not confirmed.
                deadline = time.monotonic() + 120
                while unconfirmed and time.monotonic() < deadline:
                    got = p.replies(1000)
                    for rid, status, _ in got:
                        if status == "ok":
                            unconfirmed.pop(rid, None)
                    if not got:
                        for cid, i in list(unconfirmed.items()):
                            del unconfirmed[cid]
                            send(i)
            wait_quiet(c.journal)
            visible = p.ask("journal/x", "get", [], 5.0)
            p.close()
            adds, live = read_journal(c.journal, "journal/x")
            applied = sum(1 for t in tags if adds.get(t, 0) > 0)
            dups = sum(max(0, adds.get(t, 0) - 1) for t in tags)
            alive = sum(1 for pid, k in live.items() if k > 0)
            return {"applied": applied, "lost": n - applied, "duplicates": dups,
                    "visible": visible[1] if visible[0] == "ok" else visible[0],
                    "instances": alive, "unconfirmed": len(unconfirmed) if durable else None}
        finally:
            c.stop()


def run_two_instances(bin_dir, durable):
    """journal/x lives on a worker that is busy when the broker restarts;
    the other worker registers first. How many live instances of journal/x
    are there at the end?"""
    with tempfile.TemporaryDirectory(prefix="troupe-fig-") as tmp:
        c = cluster(bin_dir, tmp, durable)
        try:
            c.start_broker()
            c.start_worker("w1")
            c.start_worker("w2")
            p = producer(c.endpoint)
            for _ in range(100):
                if p.ask("journal/x", "get", [], 0.5)[0] == "ok":
                    break
            for i in range(30):  # 3 s of work for the worker holding journal/x
                p.send("journal/x", "slow_add", ["slow%d" % i, 100], tell=True)
            time.sleep(0.3)
            c.kill_broker()
            time.sleep(1)
            c.start_broker()
            for i in range(100):
                p.send("journal/x", "add", ["after%d" % i], tell=True, durable=durable, mid="two-%d" % i)
            time.sleep(1)
            wait_quiet(c.journal, 2.0, 30)
            visible = p.ask("journal/x", "get", [], 5.0)
            p.close()
            adds, live = read_journal(c.journal, "journal/x")
            after = sum(1 for i in range(100) if adds.get("after%d" % i, 0) > 0)
            return {"instances": sum(1 for k in live.values() if k > 0), "after_applied": after,
                    "visible": visible[1] if visible[0] == "ok" else visible[0]}
        finally:
            c.stop()


def run_comeback(bin_dir, durable):
    with tempfile.TemporaryDirectory(prefix="troupe-fig-") as tmp:
        c = cluster(bin_dir, tmp, durable)
        try:
            c.start_broker()
            c.start_worker("busy", credits=64)
            p = producer(c.endpoint)
            for _ in range(100):
                if p.ask("journal", "get", [], 0.5)[0] == "ok":
                    break
            for i in range(64):
                p.send("journal", "slow_add", ["old%d" % i, 300], timeout_ms=60000)
            time.sleep(0.5)  # the worker is busy with the first, holds the rest
            c.kill_broker()
            c.start_broker()
            restarted = time.monotonic()
            took, status = None, None
            while time.monotonic() - restarted < 40:
                status, _ = p.ask("journal", "get", [], 0.3)
                if status == "ok":
                    took = time.monotonic() - restarted
                    break
            wait_quiet(c.journal, 1.0, 30)
            p.close()
            ran_old = 0
            for line in open(c.journal):
                parts = line.split()
                if parts and parts[0] == "add" and parts[2].startswith("old"):
                    ran_old += 1
            return {"answered_after_s": round(took, 2) if took else "never (40 s)", "old_requests_run": ran_old,
                    "last_status": status}
        finally:
            c.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("TROUPE_BIN_DIR", "build/bin"))
    ap.add_argument("--durable", action="store_true", help="durable tells, --store on the broker")
    ap.add_argument("--only", choices=["loss", "two", "comeback"])
    a = ap.parse_args()
    mode = "durable" if a.durable else "plain"
    if a.only in (None, "loss"):
        for outage in (1, 5):
            r = run_loss(a.bin, a.durable, outage)
            print("loss %s outage %d s: %s" % (mode, outage, r), flush=True)
    if a.only in (None, "two"):
        print("two instances %s: %s" % (mode, run_two_instances(a.bin, a.durable)), flush=True)
    if a.only in (None, "comeback"):
        print("comeback %s: %s" % (mode, run_comeback(a.bin, a.durable)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
