#!/usr/bin/python3
"""Bounds and self-healing (issue 12): the issue's figures, measured.

`make bench` runs these as the `bounds` section of bench/run.py; run alone
it measures one build's executables, which is how the figures before and
after issue 12 were taken (docs/performance.md, "Bounds"):

  bench/bounds.py [--bin DIR] [--only S1,S2,...] [--quick] [--json FILE]

Scenarios (each prints, none asserts; every wait and load loop is bounded;
every process is stopped by pid):

  unread     a client sends 20,000 asks with 64 KiB arguments to `echo` and
             never reads: broker RSS, what a polite client sees, RSS 3 s
             after the greedy client left
  names      100 READYs of 10,000 names each from one socket: names kept,
             broker RSS, one `stats` call, a polite client's worst latency,
             an ask to a name nobody hosts any more
  parked     2,000 asks with 512 KiB arguments and a one-day timeout for a
             name whose worker left: broker RSS
  keys       1,000,000 `counter` keys: broker and worker RSS, bytes per key,
             before and after passivation (and after the worker is killed)
  manage     a polite client's worst latency while another calls `stats`
             and `actors` in a loop, with 1,000,000 keys and 100,000 names
  hung       `square_slowly(1, 2147483647)` with a 1 s timeout on a worker
             with --credits 4, then 200 `square` asks
  sigkill    time from SIGKILL of a pool process to `worker_lost`
  fds        400 (tcp) and 1,000 (ipc) connections to a broker limited to
             256 descriptors

Flags that a build does not have (an older broker) are left out, so the
same script measures before and after.
"""
import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time

import msgpack
import zmq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUEST, REPLY, READY, HEARTBEAT, DISCONNECT = 1, 2, 3, 4, 5
SCENARIOS = ["unread", "names", "parked", "keys", "manage", "hung", "sigkill", "fds"]


def header(cmd):
    return b"TRP\x01" + bytes([cmd])


def read(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def rss_mb(pid):
    for line in read("/proc/%d/status" % pid).splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_seconds(pid):
    text = read("/proc/%d/stat" % pid)
    if not text:
        return float("nan")
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


class Procs:
    """Every process started here, stopped by pid (SIGTERM, then SIGKILL)."""

    def __init__(self):
        self.procs = []

    def start(self, args, log, prefix=()):
        with open(log, "wb") as f:
            p = subprocess.Popen(list(prefix) + list(args), stdout=f, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def stop(self, p, timeout=15):
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
                p.wait(timeout=timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(reversed(self.procs)):
            self.stop(p)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


class Raw:
    """A DEALER speaking troupe's protocol by hand (no library), for the
    clients that misbehave on purpose and for exact timing."""

    def __init__(self, ctx, endpoint, rcvhwm=None):
        self.s = ctx.socket(zmq.DEALER)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.setsockopt(zmq.SNDHWM, 0)
        if rcvhwm is not None:
            self.s.setsockopt(zmq.RCVHWM, rcvhwm)
        self.s.connect(endpoint)
        self.next_id = 1

    def send_ask(self, address, method, args, timeout_ms=0, flags=0):
        rid = self.next_id
        self.next_id += 1
        self.s.send_multipart([header(REQUEST), msgpack.packb([rid, address, method, flags, timeout_ms]),
                               msgpack.packb(args, use_bin_type=True)], copy=False)
        return rid

    def recv_reply(self, timeout_s):
        if not self.s.poll(int(timeout_s * 1000)):
            return None
        frames = self.s.recv_multipart()
        if len(frames) != 3 or frames[0] != header(REPLY):
            return ("?", frames)
        rid, status = msgpack.unpackb(frames[1])
        return rid, status, msgpack.unpackb(frames[2], raw=False, strict_map_key=False)

    def ask(self, address, method, args, timeout_s=10.0):
        rid = self.send_ask(address, method, args, int(timeout_s * 1000))
        deadline = time.monotonic() + timeout_s + 2
        while time.monotonic() < deadline:
            r = self.recv_reply(max(0.0, deadline - time.monotonic()))
            if r is None:
                break
            if r[0] == rid:
                return r[1], r[2]
        return "no reply", None

    def close(self):
        self.s.close(0)


class Env:
    def __init__(self, a, tmp):
        self.bin, self.tmp, self.quick = a.bin, tmp, a.quick
        self.procs = Procs()
        self.ctx = zmq.Context()
        self.ctx.set(zmq.MAX_SOCKETS, 8192)
        self.broker_flags = self.flags_of([os.path.join(self.bin, "troupe"), "broker", "--help"])
        self.worker_flags = self.flags_of([os.path.join(self.bin, "troupe-examples-worker"), "--help"])
        self.n = 0

    @staticmethod
    def flags_of(argv):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return set(re.findall(r"--[a-z][a-z0-9-]*", r.stdout))

    def supported(self, flags, known):
        """`flags` without those (and their values) this build does not know."""
        out, i = [], 0
        while i < len(flags):
            f = flags[i]
            has_value = i + 1 < len(flags) and not flags[i + 1].startswith("--")
            if f in known:
                out.append(f)
                if has_value:
                    out.append(flags[i + 1])
            i += 2 if has_value else 1
        return out

    def broker(self, flags=(), transport="tcp", prefix=()):
        self.n += 1
        listen = "tcp://127.0.0.1:*" if transport == "tcp" else "ipc://%s/b%d.sock" % (self.tmp, self.n)
        log = os.path.join(self.tmp, "broker%d.log" % self.n)
        p = self.procs.start([os.path.join(self.bin, "troupe"), "broker", "--listen", listen] +
                             self.supported(list(flags), self.broker_flags), log, prefix)
        ep = wait_for(lambda: (re.search(r"listening on (\S+)", read(log)) or [None, None])[1], 30, "broker")
        return p, ep, log

    def worker(self, endpoint, flags=(), exe="troupe-examples-worker", extra=()):
        self.n += 1
        log = os.path.join(self.tmp, "worker%d.log" % self.n)
        args = [os.path.join(self.bin, exe), "--broker", endpoint]
        args += self.supported(list(flags), self.worker_flags) + list(extra)
        return self.procs.start(args, log), log

    def stats(self, endpoint, method="stats", args=None, timeout_s=30.0):
        c = Raw(self.ctx, endpoint)
        try:
            t0 = time.monotonic()
            status, value = c.ask("$broker", method, args or [], timeout_s)
            return status, value, time.monotonic() - t0
        finally:
            c.close()

    def wait_workers(self, endpoint, n, timeout=30):
        def ok():
            status, value, _ = self.stats(endpoint, timeout_s=2)
            return status == "ok" and value.get("workers", 0) >= n
        wait_for(ok, timeout, "%d worker(s)" % n)


def fmt_mb(x):
    return "%.0f MB" % x if x == x else "n/a"


# ---- scenarios -------------------------------------------------------------------------------------------


def scenario_unread(env):
    """20,000 asks with 64 KiB args to echo, replies never read."""
    n = 5000 if env.quick else 20000
    broker, ep, _ = env.broker()
    env.worker(ep)
    env.wait_workers(ep, 1)
    polite = Raw(env.ctx, ep)
    polite.ask("echo", "echo", ["warm"])
    rss0 = rss_mb(broker.pid)
    greedy = Raw(env.ctx, ep)
    payload = b"x" * 65536
    for _ in range(n):
        greedy.send_ask("echo", "echo", [payload], 600000)
    # Until the broker has handled every ask (replies sent or dropped), bounded.
    deadline = time.monotonic() + 120
    peak = rss0
    while time.monotonic() < deadline:
        peak = max(peak, rss_mb(broker.pid))
        status, st, _ = env.stats(ep, timeout_s=5)
        if status == "ok" and st.get("in_flight", 1) == 0 and st.get("queued", 1) == 0 and \
                st.get("requests", 0) >= n:
            break
        time.sleep(0.2)
    time.sleep(0.5)
    peak = max(peak, rss_mb(broker.pid))
    t0 = time.monotonic()
    status, _ = polite.ask("echo", "echo", ["still there?"], 10)
    polite_ms = (time.monotonic() - t0) * 1000
    _, st, _ = env.stats(ep)
    greedy.close()
    time.sleep(3)
    after = rss_mb(broker.pid)
    env.procs.stop_all()
    out = {"asks": n, "broker_rss_mb_before": rss0, "broker_rss_mb_peak": peak,
           "broker_rss_mb_3s_after_disconnect": after, "polite_status": status, "polite_ms": polite_ms,
           "unsent": (st or {}).get("unsent"), "stats": {k: (st or {}).get(k) for k in
                                                           ("replies", "overloaded", "worker_lost", "workers",
                                                            "over_queued_bytes", "requests")}}
    print("  unread: %d asks x 64 KiB, replies never read: broker %s -> %s (peak), %s 3 s after the client "
          "left; a polite ask: %s in %.1f ms; messages not delivered (stats unsent): %s; %s" %
          (n, fmt_mb(rss0), fmt_mb(peak), fmt_mb(after), status, polite_ms, out["unsent"], out["stats"]))
    return out


def fake_worker_ready(sock, names, credits=1, name="fake"):
    info = {"name": name, "pid": 1, "credits": credits, "actors": names}
    sock.send_multipart([header(READY), msgpack.packb(info)])


def scenario_names(env):
    """100 READYs naming 10,000 names each, from one socket."""
    rounds = 10 if env.quick else 100
    # Names no worker hosts are forgotten after 3 s here (the default is 5 min).
    broker, ep, _ = env.broker(["--forget-names-after-ms", "3000"])
    env.worker(ep)
    env.wait_workers(ep, 1)
    rss0 = rss_mb(broker.pid)
    w = Raw(env.ctx, ep)
    refused = 0
    for r in range(rounds):
        fake_worker_ready(w.s, ["f%03d_%05d" % (r, i) for i in range(10000)])
        w.s.send_multipart([header(HEARTBEAT)])
        # Read the acknowledgement (or refusal) so the next READY follows it.
        if w.s.poll(30000):
            frames = w.s.recv_multipart()
            refused += frames[0] == header(DISCONNECT) and len(frames) == 2
    time.sleep(0.5)
    status, st, stats_s = env.stats(ep, timeout_s=60)
    names = st.get("actors") if isinstance(st.get("actors"), int) else len(st.get("actors", {}))
    names = st.get("names", names)
    rss1 = rss_mb(broker.pid)
    # A polite client's worst latency while one stats call runs.
    polite = Raw(env.ctx, ep)
    polite.ask("squares", "square", [2])
    admin = Raw(env.ctx, ep)
    admin.send_ask("$broker", "stats", [], 60000)
    worst = 0.0
    t_end = time.monotonic() + 2.0
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        polite.ask("squares", "square", [3], 10)
        worst = max(worst, time.monotonic() - t0)
    admin.close()
    # The fake worker leaves without a word; its names stay known.
    w.close()
    time.sleep(3 * 1.0 + 4)  # the heartbeat window (3 s), then the forget time (3 s) and a tick
    t0 = time.monotonic()
    status2, value2 = polite.ask("f000_00001", "m", [], 1.0)
    ask_ms = (time.monotonic() - t0) * 1000
    env.procs.stop_all()
    out = {"readys": rounds, "names": names, "refused_readys": refused, "broker_rss_mb": [rss0, rss1],
           "stats_s": stats_s, "polite_worst_ms": worst * 1000, "unhosted_ask": [status2, ask_ms]}
    print("  names: %d READYs of 10,000 names: %s names kept (%d READYs refused), broker %s -> %s; one stats "
          "call %.3f s; polite worst %.1f ms; an ask to an unhosted name: %s after %.0f ms" %
          (rounds, names, refused, fmt_mb(rss0), fmt_mb(rss1), stats_s, worst * 1000, status2, ask_ms))
    return out


def scenario_parked(env):
    """2,000 asks with 512 KiB args, one-day timeout, for a name whose worker left."""
    n = 500 if env.quick else 2000
    broker, ep, _ = env.broker()
    wp, _ = env.worker(ep)
    env.wait_workers(ep, 1)
    env.procs.stop(wp)
    wait_for(lambda: env.stats(ep)[1].get("workers") == 0, 20, "the worker to leave")
    rss0 = rss_mb(broker.pid)
    c = Raw(env.ctx, ep)
    payload = b"y" * (512 * 1024)
    for _ in range(n):
        c.send_ask("squares", "square", [payload], 86400000)
    statuses = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, st, _ = env.stats(ep)
        if st.get("requests", 0) >= n + 1:
            break
        time.sleep(0.2)
    while True:
        r = c.recv_reply(0.5)
        if r is None:
            break
        statuses[r[1]] = statuses.get(r[1], 0) + 1
    rss1 = rss_mb(broker.pid)
    _, st, _ = env.stats(ep)
    c.close()
    env.procs.stop_all()
    out = {"asks": n, "broker_rss_mb": [rss0, rss1], "queued": st.get("queued"), "replies": statuses}
    print("  parked: %d asks x 512 KiB for a name with no worker: broker %s -> %s, %s queued, answered at "
          "once: %s" % (n, fmt_mb(rss0), fmt_mb(rss1), st.get("queued"), statuses or "none"))
    return out


def bench_client(env, ep, extra, requests, window=1000, max_seconds=600):
    args = [os.path.join(env.bin, "troupe-bench-client"), "--endpoint", ep, "--requests", str(requests),
            "--window", str(window), "--warmup", "0", "--max-seconds", str(max_seconds)] + list(extra)
    r = subprocess.run(args, capture_output=True, text=True, timeout=max_seconds + 60)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"failed": True, "why": (r.stdout + r.stderr)[-300:]}


def scenario_keys(env):
    """1,000,000 counter keys; passivation with --max-instances and --idle-timeout-ms."""
    keys = 100000 if env.quick else 1000000
    rows = []
    for label, wflags in [("no passivation", []),
                          ("--max-instances 10000", ["--max-instances", "10000"]),
                          ("--idle-timeout-ms 2000", ["--idle-timeout-ms", "2000"])]:
        if wflags and wflags[0] not in env.worker_flags:
            continue
        broker, ep, _ = env.broker()
        w, _ = env.worker(ep, wflags)
        env.wait_workers(ep, 1)
        time.sleep(0.3)
        b0, w0 = rss_mb(broker.pid), rss_mb(w.pid)
        r = bench_client(env, ep, ["--address", "counter", "--method", "get", "--args", "none", "--keys",
                                   str(keys)], keys)
        time.sleep(0.5)
        b1, w1 = rss_mb(broker.pid), rss_mb(w.pid)
        _, st, _ = env.stats(ep)
        placed = st.get("keys")
        if placed is None:
            _, act, _ = env.stats(ep, "actors")
            placed = (act or {}).get("counter", {}).get("keys")
        b2, w2, placed2 = b1, w1, placed
        if "--idle-timeout-ms" in wflags:
            time.sleep(4)
            b2, w2 = rss_mb(broker.pid), rss_mb(w.pid)
            _, st, _ = env.stats(ep)
            placed2 = st.get("keys")
        w.send_signal(signal.SIGKILL)
        w.wait(10)
        time.sleep(4)
        b3 = rss_mb(broker.pid)
        env.procs.stop_all()
        row = {"variant": label, "keys": keys, "broker_rss_mb": [b0, b1, b2, b3], "worker_rss_mb": [w0, w1, w2],
               "placed": [placed, placed2], "throughput": r.get("throughput"), "failed": r.get("failed"),
               "broker_bytes_per_key": (b1 - b0) * 1048576 / keys, "worker_bytes_per_key": (w1 - w0) * 1048576 / keys}
        rows.append(row)
        print("  keys (%s): %d keys: broker %s -> %s (%.0f B/key), worker %s -> %s (%.0f B/key), placed %s; "
              "later: broker %s, worker %s, placed %s; after SIGKILL of the worker: broker %s; %s req/s%s" %
              (label, keys, fmt_mb(b0), fmt_mb(b1), row["broker_bytes_per_key"], fmt_mb(w0), fmt_mb(w1),
               row["worker_bytes_per_key"], placed, fmt_mb(b2), fmt_mb(w2), placed2, fmt_mb(b3),
               "%.0f" % (r.get("throughput") or 0), " (load failed: %s)" % r.get("why") if r.get("failed") else ""))
    return rows


def scenario_manage(env):
    """A polite client's worst latency while another calls stats and actors in a loop."""
    keys = 100000 if env.quick else 1000000
    name_workers = 1 if env.quick else 10
    bflags = ["--max-names", "200000"]
    broker, ep, _ = env.broker(bflags)
    env.worker(ep, ["--credits", "1000"])
    for i in range(name_workers):
        env.worker(ep, ["--credits", "1"], exe="troupe-bench-many-names-worker",
                   extra=["--names", "10000", "--name-prefix", "m%02d_" % i])
    env.wait_workers(ep, 1 + name_workers, 60)
    r = bench_client(env, ep, ["--address", "counter", "--method", "get", "--args", "none", "--keys", str(keys)],
                     keys)
    _, st, _ = env.stats(ep)
    polite, admin = Raw(env.ctx, ep), Raw(env.ctx, ep)
    polite.ask("squares", "square", [2])
    calls = {"stats": [], "actors": []}
    worst, lat = 0.0, []
    admin_pending = None
    t_end = time.monotonic() + (3 if env.quick else 10)
    method_i = 0
    while time.monotonic() < t_end:
        if admin_pending is None:
            method = ["stats", "actors"][method_i % 2]
            method_i += 1
            admin_pending = (method, admin.send_ask("$broker", method, [], 60000), time.monotonic())
        t0 = time.monotonic()
        polite.ask("squares", "square", [3], 10)
        dt = time.monotonic() - t0
        lat.append(dt)
        worst = max(worst, dt)
        while admin.s.poll(0):
            rep = admin.recv_reply(0)
            if admin_pending and rep and rep[0] == admin_pending[1]:
                calls[admin_pending[0]].append(time.monotonic() - admin_pending[2])
                admin_pending = None
    lat.sort()
    env.procs.stop_all()
    out = {"keys": keys, "names": st.get("actors") if isinstance(st.get("actors"), int) else len(st.get("actors", {})),
           "polite_worst_ms": worst * 1000, "polite_p99_ms": lat[int(len(lat) * 0.99)] * 1000 if lat else None,
           "polite_asks": len(lat), "stats_calls": len(calls["stats"]), "actors_calls": len(calls["actors"]),
           "stats_max_ms": max(calls["stats"], default=0) * 1000, "actors_max_ms": max(calls["actors"], default=0) * 1000,
           "load_failed": r.get("failed")}
    print("  manage: %s keys, %s names: polite client worst %.1f ms, p99 %.2f ms over %d asks while stats (%d "
          "calls, slowest %.1f ms incl. wait) and actors (%d calls, slowest %.1f ms) ran in a loop" %
          (keys, out["names"], out["polite_worst_ms"], out["polite_p99_ms"] or 0, len(lat), out["stats_calls"],
           out["stats_max_ms"], out["actors_calls"], out["actors_max_ms"]))
    return out


def scenario_hung(env):
    """A method that never ends, asked with a 1 s timeout, then 200 square asks."""
    flags = ["--credits", "4", "--processes", "1", "--deadline-grace-ms", "2000"]
    broker, ep, _ = env.broker()
    w, log = env.worker(ep, flags)
    env.wait_workers(ep, 1)
    c = Raw(env.ctx, ep)
    t0 = time.monotonic()
    status, _ = c.ask("squares", "square_slowly", [1, 2147483647], 1.0)
    # 200 later asks at once, each with a 5 s timeout; then one ask at a
    # time until one succeeds (at most 60 s).
    ids = [c.send_ask("squares", "square", [i], 5000) for i in range(200)]
    results = {}
    pending = set(ids)
    end = time.monotonic() + 15
    while pending and time.monotonic() < end:
        r = c.recv_reply(end - time.monotonic())
        if r and r[0] in pending:
            pending.discard(r[0])
            results[r[1]] = results.get(r[1], 0) + 1
    if pending:
        results["no reply"] = len(pending)
    t_first_ok = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        s, _ = c.ask("squares", "square", [7], 1.0)
        if s == "ok":
            t_first_ok = time.monotonic() - t0
            break
    _, st, _ = env.stats(ep)
    c.close()
    env.procs.stop_all()
    out = {"stuck_ask": status, "later": results, "first_ok_after_s": t_first_ok,
           "time_limits": st.get("time_limit_exceeded"), "workers": st.get("workers")}
    print("  hung: the stuck ask got %s; 200 later square asks: %s; first success %s after the stuck ask; "
          "stats time_limit_exceeded %s" %
          (status, results, "%.1f s" % t_first_ok if t_first_ok else "never", st.get("time_limit_exceeded")))
    return out


def scenario_sigkill(env):
    """Time from SIGKILL of a pool process to worker_lost."""
    rounds = 3 if env.quick else 5
    broker, ep, _ = env.broker()
    w, _ = env.worker(ep, ["--processes", "1"])
    times = []
    c = Raw(env.ctx, ep)
    for _ in range(rounds):
        env.wait_workers(ep, 1)
        s, v = c.ask("echo/pid", "whoami", [])
        if s != "ok":
            continue
        pid = int(v["pid"])
        rid = c.send_ask("squares", "square_slowly", [1, 30000], 60000)
        time.sleep(0.3)
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        status = None
        end = time.monotonic() + 20
        while time.monotonic() < end:
            r = c.recv_reply(end - time.monotonic())
            if r and r[0] == rid:
                status = r[1]
                break
        times.append(((time.monotonic() - t0) * 1000, status))
        time.sleep(0.5)
    c.close()
    env.procs.stop_all()
    ms = [t for t, s in times if s == "worker_lost"]
    print("  sigkill: SIGKILL of a pool process to worker_lost: %s ms (%s)" %
          (", ".join("%.0f" % t for t in ms) or "-", ", ".join(str(s) for _, s in times)))
    return {"ms": ms, "statuses": [s for _, s in times]}


def scenario_fds(env):
    """Connections beyond a 256-descriptor limit, on tcp and ipc."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except ValueError:
        pass
    out = {}
    for transport, n in [("tcp", 400), ("ipc", 1000)]:
        broker, ep, log = env.broker(transport=transport, prefix=["prlimit", "--nofile=256", "--"])
        env.worker(ep)
        env.wait_workers(ep, 1)
        polite = Raw(env.ctx, ep)
        polite.ask("squares", "square", [2])
        socks = []
        cpu0 = cpu_seconds(broker.pid)
        t0 = time.monotonic()
        for _ in range(n):
            s = env.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(ep)
            socks.append(s)
        time.sleep(2)
        cpu = (cpu_seconds(broker.pid) - cpu0) / (time.monotonic() - t0)
        alive = broker.poll() is None
        t1 = time.monotonic()
        status, _ = polite.ask("squares", "square", [3], 5) if alive else ("broker dead", None)
        polite_ms = (time.monotonic() - t1) * 1000
        for s in socks:
            s.close(0)
        time.sleep(1.5)
        fresh = Raw(env.ctx, ep)
        status2, _ = fresh.ask("squares", "square", [4], 5) if broker.poll() is None else ("broker dead", None)
        fresh.close()
        polite.close()
        said = [l for l in read(log).splitlines() if "descriptor" in l or "open files" in l or "Too many" in l]
        code = broker.poll()
        env.procs.stop_all()
        out[transport] = {"connections": n, "broker_alive": alive, "exit": code, "broker_cpu": cpu,
                          "polite": [status, polite_ms], "fresh_after": status2, "log": said[:4]}
        print("  fds (%s, limit 256): %d connections: broker %s, CPU %.0f%% during the flood, polite ask %s "
              "(%.1f ms), a new client afterwards: %s; log: %s" %
              (transport, n, "alive" if alive else "died (%s)" % code, cpu * 100, status, polite_ms, status2,
               " | ".join(said[:3]) or "-"))
    return out


def run(a, results):
    with tempfile.TemporaryDirectory(prefix="troupe-bounds-") as tmp:
        env = Env(a, tmp)
        try:
            for name in a.only.split(","):
                name = name.strip()
                if not name:
                    continue
                try:
                    results[name] = globals()["scenario_" + name](env)
                except Exception as e:  # a failed scenario is reported, the others still run
                    print("  %s: failed: %s" % (name, e))
                    results[name] = {"failed": str(e)}
                finally:
                    env.procs.stop_all()
        finally:
            env.procs.stop_all()
            env.ctx.destroy(0)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("TROUPE_BIN_DIR") or os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    print("bounds (%s):" % a.bin, flush=True)
    results = run(a, {})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
