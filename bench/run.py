#!/usr/bin/python3
"""troupe benchmarks against the floor (a minimal ZeroMQ forwarder).

`make bench` runs this after `make build`. It prints tables of medians,
ranges and troupe/floor ratios, writes every raw measurement as JSON to
--out (default build/bench-results/) and draws PNG plots with gnuplot when
it is installed. It never asserts: targets are printed as met / missed.

Every process it starts runs on loopback or ipc:// under a temp dir and is
stopped by pid at the end (also on Ctrl-C); every wait is bounded.

  bench/run.py [--rounds 3] [--quick] [--only SECTIONS] [--out DIR] [--bin DIR]

SECTIONS is a comma list of: floor, compare, credits, fanin, window, client,
keys, names, memory, callgrind, micro, pyworker, pyclient, curve, bounds (default: all). troupe always runs
with its default settings except where a section says otherwise (credits).
--bin (or $TROUPE_BIN_DIR) names the directory of the executables (default
build/bin). The floor/troupe sections pin the broker and the client to one
core and the worker(s) to another (PLACEMENT; --no-pin turns it off);
--nice N runs every benchmark process at niceness N (as root, e.g. -10) on
a machine shared with builds.
"""
import argparse
import atexit
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The executables: --bin DIR, else $TROUPE_BIN_DIR, else build/bin.
BIN = os.environ.get("TROUPE_BIN_DIR") or os.path.join(ROOT, "build", "bin")
SECTIONS = ["floor", "compare", "credits", "fanin", "window", "client", "keys", "names", "memory", "callgrind",
            "micro"]
SECTIONS += ["pyworker", "pyclient"]  # the Python worker and clients against raw pyzmq (issues 15, 13)
SECTIONS += ["curve"]  # B1/B2 with CURVE against plaintext, troupe and the floor (issue 10)
SECTIONS += ["bounds"]  # memory per key with passivation, management under load, SIGKILL to worker_lost (issue 12)


# ---- processes ---------------------------------------------------------------

class Procs:
    """Every process started here, stopped by pid (SIGTERM, then SIGKILL)."""

    def __init__(self):
        self.procs = []

    def start(self, args, log, **kw):
        f = open(log, "wb")
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
        f.close()
        self.procs.append(p)
        return p

    def stop(self, p, timeout=15):
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(reversed(self.procs)):
            self.stop(p)


PROCS = Procs()
atexit.register(PROCS.stop_all)


def on_signal(signum, _frame):
    PROCS.stop_all()
    sys.exit(128 + signum)


signal.signal(signal.SIGINT, on_signal)
signal.signal(signal.SIGTERM, on_signal)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


def read(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def listening_endpoint(log):
    m = re.search(r"listening on (\S+)", read(log))
    return m.group(1) if m else None


def cpu_seconds(pid):
    """utime + stime of all threads of pid, in seconds."""
    fields = read("/proc/%d/stat" % pid).rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def ctx_switches(pid):
    """Voluntary + involuntary context switches summed over the threads of pid."""
    n = 0
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return 0
    for t in tasks:
        for line in read("/proc/%d/task/%s/status" % (pid, t)).splitlines():
            if line.startswith("voluntary_ctxt_switches") or line.startswith("nonvoluntary_ctxt_switches"):
                n += int(line.split()[1])
    return n


def proc_counters(pid):
    """CPU seconds and context switches of pid: all threads, and its main
    thread alone (tid == pid: the thread that runs the broker's loop or the
    worker's methods). The main thread's voluntary switches are the times it
    went to sleep waiting for messages, so requests / those = messages
    handled per wake-up."""
    tick = float(os.sysconf("SC_CLK_TCK"))
    c = {"cpu": 0.0, "cs": 0, "main_cpu": 0.0, "main_sleeps": 0}
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return c
    for t in tasks:
        stat = read("/proc/%d/task/%s/stat" % (pid, t)).rsplit(")", 1)
        if len(stat) < 2:
            continue
        f = stat[1].split()
        cpu = (int(f[11]) + int(f[12])) / tick
        vol = invol = 0
        for line in read("/proc/%d/task/%s/status" % (pid, t)).splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                vol = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                invol = int(line.split()[1])
        c["cpu"] += cpu
        c["cs"] += vol + invol
        if int(t) == pid:
            c["main_cpu"] += cpu
            c["main_sleeps"] += vol
    return c


def sum_counters(pids):
    total = {"cpu": 0.0, "cs": 0, "main_cpu": 0.0, "main_sleeps": 0}
    for pid in pids:
        for k, v in proc_counters(pid).items():
            total[k] += v
    return total


def measure(system, requests, window, warmup=1000, extra=(), max_seconds=300):
    """One client run against `system`, with what it cost the broker and the
    worker process(es): CPU µs per request, context switches per 1,000
    requests, and messages the main thread handled per wake-up."""
    bp, wps = system.broker.pid, system.worker_pids()
    b0, w0 = proc_counters(bp), sum_counters(wps)
    r = client(system.endpoint, requests, window, warmup=warmup, extra=extra, max_seconds=max_seconds,
               cpus=system.client_cpus)
    b1, w1 = proc_counters(bp), sum_counters(wps)
    if "--keys" in extra:  # the client warms up with at least one request per key
        warmup = max(warmup, int(list(extra)[list(extra).index("--keys") + 1]))
    n = float(requests + warmup)
    for who, x0, x1 in [("broker", b0, b1), ("worker", w0, w1)]:
        r[who + "_cpu_us"] = (x1["cpu"] - x0["cpu"]) * 1e6 / n
        r[who + "_main_cpu_us"] = (x1["main_cpu"] - x0["main_cpu"]) * 1e6 / n
        r[who + "_cs_per_1k"] = (x1["cs"] - x0["cs"]) * 1000.0 / n
        sleeps = x1["main_sleeps"] - x0["main_sleeps"]
        r[who + "_per_wakeup"] = n / sleeps if sleeps > 0 else n
    return r


def round_line(label, r):
    if r.get("failed"):
        return "  %s: FAILED: %s" % (label, r.get("why"))
    return ("  %s: %s req/s, p50 %s µs; broker %s µs CPU, %s cs/1k, %s msgs/wake-up; worker %s µs CPU, %s cs/1k, "
            "%s msgs/wake-up" % (label, fmt(r["throughput"]), fmt(r["p50_us"]), fmt(r.get("broker_cpu_us", 0)),
                                 fmt(r.get("broker_cs_per_1k", 0)), fmt(r.get("broker_per_wakeup", 0)),
                                 fmt(r.get("worker_cpu_us", 0)), fmt(r.get("worker_cs_per_1k", 0)),
                                 fmt(r.get("worker_per_wakeup", 0))))


def rss_kib(pid):
    for line in read("/proc/%d/status" % pid).splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


# Where the processes of the floor/troupe sections run. On this 2-core
# machine the unpinned runs were bimodal (the same system at 200k or 450k
# req/s from one round to the next, with 3-4x the context switches in the
# slow rounds); pinned, they repeat within a few percent. Broker and client
# on one core and the worker(s) on the other is the placement at which the
# floor was fastest and steadiest (section floor measures the others), so
# it is the default; --no-pin turns it off. None: not pinned.
PLACEMENT = {"broker": {0}, "client": {0}, "worker": {1}}
PLACEMENTS = {
    "broker+client, worker": {"broker": {0}, "client": {0}, "worker": {1}},
    "broker, worker+client": {"broker": {0}, "client": {1}, "worker": {1}},
    "broker+worker, client": {"broker": {0}, "client": {1}, "worker": {0}},
    "not pinned": None,
}


def pin_process(pid, cpus):
    """Pins every thread of pid (and its children's: a pool) to cpus."""
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            os.sched_setaffinity(int(t), cpus)
            for c in read("/proc/%d/task/%s/children" % (pid, t)).split():
                pin_process(int(c), cpus)
    except (FileNotFoundError, ProcessLookupError):
        pass


class System:
    """A running broker (troupe or floor) plus its worker process(es).

    troupe runs with its default settings unless `credits` is given (issue
    13: troupe is measured as users get it). `workers` > 1 starts a pool:
    troupe's `--processes N` (one supervisor forking N worker processes),
    or N floor workers. `floor_args` / `floor_worker_args` select the
    floor's variants (bench/floor_*.cpp). `pin`: True for PLACEMENT, or a
    placement of PLACEMENTS; measure() runs the client where it says."""

    def __init__(self, kind, transport, tmp, worker="examples", credits=None, broker_prefix=(), worker_prefix=(),
                 tag="", worker_args=(), workers=1, floor_args=(), floor_worker_args=(), pin=False, broker_args=()):
        self.kind, self.tmp = kind, tmp
        tag = tag or kind
        listen = "tcp://127.0.0.1:*" if transport == "tcp" else "ipc://%s/%s.sock" % (tmp, tag)
        blog = os.path.join(tmp, tag + "-broker.log")
        if kind == "floor":
            args = [os.path.join(BIN, "troupe-floor-forwarder"), listen] + list(floor_args)
        else:
            args = [os.path.join(BIN, "troupe"), "broker", "--listen", listen] + list(broker_args)
        self.broker = PROCS.start(list(broker_prefix) + args, blog)
        self.endpoint = wait_for(lambda: listening_endpoint(blog), 60, kind + " broker to listen")
        self.workers = []
        if kind == "floor":
            for i in range(workers):
                wlog = os.path.join(tmp, "%s-worker%s.log" % (tag, i or ""))
                self.workers.append(PROCS.start(list(worker_prefix) + [os.path.join(BIN, "troupe-floor-worker"),
                                                                       self.endpoint] + list(floor_worker_args), wlog))
            wait_for(lambda: read(blog).count("floor worker ready") >= workers, 30, "floor workers")
        else:
            exe = "troupe-examples-worker" if worker == "examples" else "troupe-bench-many-names-worker"
            wargs = [os.path.join(BIN, exe), "--broker", self.endpoint]
            if credits is not None:
                wargs += ["--credits", str(credits)]
            if workers > 1:
                wargs += ["--processes", str(workers)]
            wlog = os.path.join(tmp, tag + "-worker.log")
            self.workers.append(PROCS.start(list(worker_prefix) + wargs + list(worker_args), wlog))
            wait_for(lambda: self.troupe_ready(workers), 60, "troupe worker(s) to register")
        self.worker = self.workers[0]
        self.placement = PLACEMENT if pin is True else (pin or None)
        self.client_cpus = None
        if self.placement:
            pin_process(self.broker.pid, self.placement["broker"])
            for p in self.workers:
                pin_process(p.pid, self.placement["worker"])
            self.client_cpus = self.placement["client"]
        time.sleep(0.2)

    def troupe_ready(self, n=1):
        r = subprocess.run([os.path.join(BIN, "troupe"), "call", "--broker", self.endpoint, "--timeout-ms", "2000",
                            "$broker", "workers"], capture_output=True, text=True, timeout=20)
        try:
            return r.returncode == 0 and len(json.loads(r.stdout)) >= n
        except ValueError:
            return False

    def worker_pids(self):
        """Every worker process: for a troupe pool, the supervisor's children too."""
        pids = [p.pid for p in self.workers]
        for p in self.workers:
            for t in os.listdir("/proc/%d/task" % p.pid) if os.path.exists("/proc/%d/task" % p.pid) else []:
                for c in read("/proc/%d/task/%s/children" % (p.pid, t)).split():
                    pids.append(int(c))
        return pids

    def stop(self):
        for w in self.workers:
            PROCS.stop(w)
        PROCS.stop(self.broker, timeout=120)


def client(endpoint, requests, window, warmup=1000, extra=(), max_seconds=300, cpus=None):
    args = [os.path.join(BIN, "troupe-bench-client"), "--endpoint", endpoint, "--requests", str(requests),
            "--window", str(window), "--warmup", str(warmup), "--max-seconds", str(max_seconds)] + list(extra)
    r = subprocess.run(args, capture_output=True, text=True, timeout=max_seconds + 60,
                       preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {"failed": True, "why": (r.stdout + r.stderr)[-300:]}
    if r.returncode != 0 and not out.get("failed"):
        out["failed"] = True
        out["why"] = "exit %d, errors %s" % (r.returncode, out.get("errors"))
    return out


# ---- statistics and printing -------------------------------------------------

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def rng(xs):
    return "%s..%s" % (fmt(min(xs)), fmt(max(xs))) if xs else "-"


def fmt(x):
    if x != x:
        return "nan"
    if abs(x) >= 10000:
        return "%.0f" % x
    if abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    return "%.2f" % x


def table(title, header, rows):
    print("\n### " + title + "\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    sys.stdout.flush()


def ratio(num, den):
    """The ratio of the medians of two lists of values, or "-"."""
    return fmt(med(num) / med(den)) if num and den and med(den) else "-"


def values(runs, key):
    return [r[key] for r in runs if not r.get("failed")]


TARGETS = []


def target(name, value, limit, higher_is_better):
    ok = value >= limit if higher_is_better else value <= limit
    TARGETS.append((name, value, ("≥ " if higher_is_better else "≤ ") + fmt(limit), "met" if ok else "MISSED"))


# ---- sections ----------------------------------------------------------------

FLOOR_VARIANTS = [
    # name, forwarder args, worker args, placement (True: PLACEMENT)
    ("floor: blocking forwarder and worker, minimal decode; cores: broker+client, worker", [], [], True),
    ("forwarder: zmq_poll, then up to 64 with DONTWAIT", ["--poll", "64"], [], True),
    ("forwarder: receive up to 16, then send them", ["--batch", "16"], [], True),
    ("worker: zmq_poll, then up to 1024 with DONTWAIT", [], ["--poll", "1024"], True),
    ("worker: receive up to 16, then answer them", [], ["--batch", "16"], True),
    ("worker: msgpack-c unpacker into a reused zone", [], ["--decode", "msgpack-c"], True),
    ("the previous floor (zmq_poll in both, msgpack-c)", ["--poll", "64"],
     ["--poll", "1024", "--decode", "msgpack-c"], True),
] + [("placement " + name, [], [], placement or None) for name, placement in PLACEMENTS.items()
     if placement != PLACEMENTS["broker+client, worker"]]


def paired(runs_a, runs_b, key="throughput"):
    """Per-round ratios a/b (robust against the machine's drift between rounds)."""
    return [x[key] / y[key] for x, y in zip(runs_a, runs_b) if not x.get("failed") and not y.get("failed")]


def section_floor(a, tmp, results):
    """Is the floor the fastest? Its variants (programs, placements) alternated, B2 over tcp."""
    variants = FLOOR_VARIANTS if PLACEMENT else [v for v in FLOOR_VARIANTS if not v[0].startswith("placement")]
    systems = [System("floor", "tcp", tmp, tag="floorvar%d" % i, floor_args=fa, floor_worker_args=wa, pin=pl)
               for i, (_, fa, wa, pl) in enumerate(variants)]
    runs = [[] for _ in systems]
    try:
        for rnd in range(a.rounds):
            for i, sy in enumerate(systems):
                r = measure(sy, a.b2_requests, 1000)
                runs[i].append(r)
                print(round_line("round %d, %s" % (rnd + 1, variants[i][0]), r), flush=True)
    finally:
        for sy in systems:
            sy.stop()
    results["floor"] = {variants[i][0]: runs[i] for i in range(len(systems))}
    rows = []
    for i, (name, _, _, _) in enumerate(variants):
        tp = values(runs[i], "throughput")
        ratios = paired(runs[i], runs[0])
        rows.append([name, fmt(med(tp)), rng(tp), fmt(med(values(runs[i], "broker_cpu_us"))),
                     fmt(med(values(runs[i], "worker_cpu_us"))),
                     "-" if i == 0 else "%s (%s)" % (fmt(med(ratios)), " ".join(fmt(x) for x in ratios))])
    table("The floor against its variants (B2, window 1000, tcp, %d rounds alternating)" % a.rounds,
          ["variant", "median req/s", "range", "broker CPU µs/req", "worker CPU µs/req",
           "variant/floor (per round)"], rows)


def section_compare(a, tmp, results):
    """B1 and B2, floor and troupe (default settings) alternately, tcp and ipc."""
    out = results.setdefault("compare", {})
    for transport in ["tcp", "ipc"]:
        systems = {k: System(k, transport, tmp, tag=k + "-" + transport, pin=True) for k in ["floor", "troupe"]}
        runs = {k: {"b1": [], "b2": []} for k in systems}
        try:
            for rnd in range(a.rounds):
                for k in ["floor", "troupe"]:
                    b1 = client(systems[k].endpoint, a.b1_requests, 1, warmup=1000, cpus=systems[k].client_cpus)
                    b2 = measure(systems[k], a.b2_requests, 1000)
                    runs[k]["b1"].append(b1)
                    runs[k]["b2"].append(b2)
                    print(round_line("%s %s round %d: B1 p50 %s µs p99 %s µs; B2" % (
                        transport, k, rnd + 1, fmt(b1.get("p50_us", float("nan"))),
                        fmt(b1.get("p99_us", float("nan")))), b2), flush=True)
        finally:
            for sy in systems.values():
                sy.stop()
        out[transport] = runs
        rows = []
        for metric, b, key in [("B1 p50 (µs)", "b1", "p50_us"), ("B1 p99 (µs)", "b1", "p99_us"),
                               ("B1 p99.9 (µs)", "b1", "p999_us"), ("B2 throughput (req/s)", "b2", "throughput"),
                               ("B2 p50 (µs)", "b2", "p50_us"),
                               ("B2 broker CPU µs/request", "b2", "broker_cpu_us"),
                               ("B2 broker main thread CPU µs/request", "b2", "broker_main_cpu_us"),
                               ("B2 worker CPU µs/request", "b2", "worker_cpu_us"),
                               ("B2 broker context switches / 1000 req", "b2", "broker_cs_per_1k"),
                               ("B2 worker context switches / 1000 req", "b2", "worker_cs_per_1k"),
                               ("B2 broker messages per wake-up", "b2", "broker_per_wakeup"),
                               ("B2 worker messages per wake-up", "b2", "worker_per_wakeup")]:
            f, t = values(runs["floor"][b], key), values(runs["troupe"][b], key)
            rows.append([metric, fmt(med(f)), rng(f), fmt(med(t)), rng(t), ratio(t, f)])
        table("B1 / B2 over %s (%d rounds, alternating; median and range; troupe with its defaults)" % (
            transport, a.rounds), ["metric", "floor", "floor range", "troupe", "troupe range", "troupe/floor"], rows)
        r1 = paired(runs["troupe"]["b1"], runs["floor"]["b1"], "p50_us")
        r2 = paired(runs["troupe"]["b2"], runs["floor"]["b2"])
        print("per-round ratios, %s: B1 p50 %s; B2 %s" % (transport, " ".join(fmt(x) for x in r1),
                                                          " ".join(fmt(x) for x in r2)))
        if r1:
            target("B1 p50 troupe/floor, %s (median of per-round ratios)" % transport, med(r1), 1.15, False)
        if r2:
            target("B2 troupe/floor, %s (median of per-round ratios)" % transport, med(r2), 0.75, True)


def section_credits(a, tmp, results):
    """B2 against the floor: troupe's default, and workers started with
    --credits 64 (the default before the adaptive window) and 8, tcp."""
    variants = [("floor", None), ("troupe, default settings", None), ("troupe, --credits 64", 64),
                ("troupe, --credits 8", 8)]
    systems = [System("floor" if i == 0 else "troupe", "tcp", tmp, credits=c, tag="credits%d" % i, pin=True)
               for i, (_, c) in enumerate(variants)]
    runs = [[] for _ in systems]
    try:
        for rnd in range(a.rounds):
            for i, sy in enumerate(systems):
                r = measure(sy, a.b2_requests, 1000)
                runs[i].append(r)
                print(round_line("round %d, %s" % (rnd + 1, variants[i][0]), r), flush=True)
    finally:
        for sy in systems:
            sy.stop()
    results["credits"] = {variants[i][0]: runs[i] for i in range(len(systems))}
    rows = []
    for i, (name, _) in enumerate(variants):
        ratios = paired(runs[i], runs[0])
        rows.append([name, fmt(med(values(runs[i], "throughput"))), rng(values(runs[i], "throughput")),
                     fmt(med(values(runs[i], "p50_us"))), fmt(med(values(runs[i], "broker_cpu_us"))),
                     fmt(med(values(runs[i], "worker_cpu_us"))), fmt(med(values(runs[i], "broker_cs_per_1k"))),
                     fmt(med(values(runs[i], "worker_cs_per_1k"))), fmt(med(values(runs[i], "worker_per_wakeup"))),
                     "-" if i == 0 else "%s (%s)" % (fmt(med(ratios)), " ".join(fmt(x) for x in ratios))])
    table("B2 (window 1000, tcp) against the worker's credits (%d rounds alternating)" % a.rounds,
          ["system", "median req/s", "range", "p50 µs", "broker CPU µs/req", "worker CPU µs/req", "broker cs/1k",
           "worker cs/1k", "worker msgs/wake-up", "ratio to floor (per round)"], rows)


def section_fanin(a, tmp, results):
    """50 clients x 20 in flight against a pool of 4 worker processes, tcp:
    the floor (its forwarder round-robins over 4 floor workers) and troupe
    (`--processes 4`, default settings), alternately."""
    extra = ["--clients", str(a.fanin_clients)]
    systems = {"floor": System("floor", "tcp", tmp, tag="fanin-floor", workers=a.fanin_workers, pin=True),
               "troupe": System("troupe", "tcp", tmp, tag="fanin-troupe", workers=a.fanin_workers, pin=True)}
    runs = {k: [] for k in systems}
    try:
        for rnd in range(a.rounds):
            for k, sy in systems.items():
                r = measure(sy, a.b2_requests, a.fanin_window, extra=extra)
                runs[k].append(r)
                print(round_line("round %d, %s" % (rnd + 1, k), r), flush=True)
    finally:
        for sy in systems.values():
            sy.stop()
    results["fanin"] = runs
    rows = []
    for metric, key in [("throughput (req/s)", "throughput"), ("p50 (µs)", "p50_us"), ("p99 (µs)", "p99_us"),
                        ("broker CPU µs/request", "broker_cpu_us"), ("workers' CPU µs/request", "worker_cpu_us"),
                        ("broker context switches / 1000 req", "broker_cs_per_1k"),
                        ("workers' context switches / 1000 req", "worker_cs_per_1k")]:
        f, t = values(runs["floor"], key), values(runs["troupe"], key)
        rows.append([metric, fmt(med(f)), rng(f), fmt(med(t)), rng(t), ratio(t, f)])
    table("Fan-in: %d clients x %d in flight, pool of %d worker processes, tcp (%d rounds alternating)" % (
        a.fanin_clients, a.fanin_window, a.fanin_workers, a.rounds),
        ["metric", "floor", "floor range", "troupe", "troupe range", "troupe/floor"], rows)
    ratios = paired(runs["troupe"], runs["floor"])
    if ratios:
        print("per-round ratios troupe/floor: %s" % " ".join(fmt(x) for x in ratios))
        target("fan-in troupe/floor (median of per-round ratios)", med(ratios), 0.75, True)


def section_window(a, tmp, results):
    """Throughput against window size, both systems, ipc."""
    windows = [1, 4, 16, 64, 256, 1000]
    systems = {k: System(k, "ipc", tmp, tag=k + "-window", pin=True) for k in ["floor", "troupe"]}
    runs = {k: {w: [] for w in windows} for k in systems}
    for _ in range(max(1, a.rounds - 1)):
        for w in windows:
            n = a.window_requests if w > 1 else max(2000, a.window_requests // 10)
            for k in ["floor", "troupe"]:
                runs[k][w].append(client(systems[k].endpoint, n, w, warmup=500, cpus=systems[k].client_cpus))
    for s in systems.values():
        s.stop()
    results["window"] = {k: {str(w): v for w, v in d.items()} for k, d in runs.items()}
    rows = []
    for w in windows:
        f, t = values(runs["floor"][w], "throughput"), values(runs["troupe"][w], "throughput")
        rows.append([w, fmt(med(f)), fmt(med(t)), ratio(t, f)])
    table("Throughput (req/s) against window, ipc", ["window", "floor", "troupe", "troupe/floor"], rows)


def section_client(a, tmp, results):
    """The load generator itself against the floor: raw DEALER vs troupe::client."""
    s = System("floor", "ipc", tmp, tag="floor-client", pin=True)
    runs = {}
    try:
        for _ in range(a.rounds):
            for via in ["raw", "troupe-client"]:
                for w, n in [(1, a.b1_requests), (1000, a.b2_requests)]:
                    runs.setdefault("%s w%d" % (via, w), []).append(
                        client(s.endpoint, n, w, warmup=1000, extra=["--via", via], cpus=s.client_cpus))
    finally:
        s.stop()
    results["client"] = runs
    rows = []
    for w in [1, 1000]:
        r, t = runs["raw w%d" % w], runs["troupe-client w%d" % w]
        for key in (["p50_us", "p99_us"] if w == 1 else ["throughput"]):
            rv, tv = values(r, key), values(t, key)
            rows.append(["window %d %s" % (w, key), fmt(med(rv)), fmt(med(tv)),
                         fmt(med(tv) / med(rv)) if rv and tv else "-"])
    table("Client side against the floor (ipc): raw DEALER vs troupe::client::ask_raw",
          ["metric", "raw DEALER", "troupe::client", "ratio"], rows)


def alternate_troupe(a, tmp, worker, variants, tag):
    """B2 on one troupe system, alternating between variants (client args)."""
    s = System("troupe", "ipc", tmp, worker=worker, tag=tag, pin=True)
    runs = {name: [] for name, _ in variants}
    try:
        for rnd in range(a.rounds):
            for name, extra in variants:
                # CPU per request says which process a variant costs more in.
                r = measure(s, a.b2_requests, 1000, extra=extra, max_seconds=600)
                runs[name].append(r)
                print(round_line("%s round %d, %s" % (tag, rnd + 1, name), r), flush=True)
    finally:
        s.stop()
    return runs


def paired_ratios(num, den, key="throughput"):
    return [n[key] / d[key] for n, d in zip(num, den) if not n.get("failed") and not d.get("failed")]


def section_keys(a, tmp, results):
    variants = [("1 key", ["--address", "counter", "--method", "get", "--args", "none", "--keys", "1"]),
                ("%d keys" % a.keys, ["--address", "counter", "--method", "get", "--args", "none",
                                      "--keys", str(a.keys)])]
    runs = alternate_troupe(a, tmp, "examples", variants, "keys")
    results["keys"] = runs
    table("B2 with one key vs %d keys (counter/KEY get, ipc, troupe)" % a.keys,
          ["variant", "median req/s", "range", "broker CPU µs/req", "worker CPU µs/req"],
          [[name, fmt(med(values(runs[name], "throughput"))), rng(values(runs[name], "throughput")),
            fmt(med(values(runs[name], "broker_cpu_us"))), fmt(med(values(runs[name], "worker_cpu_us")))]
           for name, _ in variants])
    paired = paired_ratios(runs[variants[1][0]], runs[variants[0][0]])
    if paired:
        print("per-round ratios %d keys / 1 key: %s" % (a.keys, " ".join(fmt(x) for x in paired)))
        target("%d keys / 1 key (B2, median of per-round ratios)" % a.keys, med(paired), 0.9, True)


def section_names(a, tmp, results):
    variants = [("1 name", ["--names", "1"]), ("1000 names", ["--names", "1000"])]
    runs = alternate_troupe(a, tmp, "names", variants, "names")
    # The same one-name load on a worker that hosts only that name: shows
    # what hosting 1000 names costs even when only one of them is used.
    s = System("troupe", "ipc", tmp, worker="names", tag="names-one", worker_args=["--names", "1"], pin=True)
    try:
        runs["1 name, worker hosts 1"] = [client(s.endpoint, a.b2_requests, 1000, warmup=1000,
                                                 extra=["--names", "1"], cpus=s.client_cpus)
                                          for _ in range(a.rounds)]
    finally:
        s.stop()
    h = values(runs["1 name, worker hosts 1"], "throughput")
    print("  worker hosting 1 name: %s req/s (median of %d)" % (fmt(med(h)), len(h)))
    results["names"] = runs
    one, many = values(runs["1 name"], "throughput"), values(runs["1000 names"], "throughput")
    table("B2 with one actor name vs 1000 names (nNNNN square, ipc, troupe)", ["variant", "median req/s", "range"],
          [["1 name (worker hosts 1000)", fmt(med(one)), rng(one)],
           ["1000 names (worker hosts 1000)", fmt(med(many)), rng(many)],
           ["1 name (worker hosts 1)", fmt(med(h)), rng(h)]])
    paired = paired_ratios(runs["1000 names"], runs["1 name"])
    if paired:
        print("per-round ratios 1000 names / 1 name: %s" % " ".join(fmt(x) for x in paired))
        target("1000 names / 1 name (B2, median of per-round ratios)", med(paired), 0.9, True)
    if h and many:
        target("1000 names / 1 name on a worker hosting only it (B2)", med(many) / med(h), 0.9, True)


def section_memory(a, tmp, results):
    s = System("troupe", "ipc", tmp, tag="memory")
    try:
        b0, w0 = rss_kib(s.broker.pid), rss_kib(s.worker.pid)
        r = client(s.endpoint, 1000, 1000, warmup=0, max_seconds=900,
                   extra=["--address", "counter", "--method", "get", "--args", "none", "--keys", str(a.memory_keys)])
        time.sleep(0.5)
        b1, w1 = rss_kib(s.broker.pid), rss_kib(s.worker.pid)
    finally:
        s.stop()
    n = a.memory_keys
    bpk = (b1 - b0) * 1024.0 / n
    wpk = (w1 - w0) * 1024.0 / n
    results["memory"] = {"keys": n, "broker_rss_kib": [b0, b1], "worker_rss_kib": [w0, w1], "client": r,
                         "broker_bytes_per_key": bpk, "worker_bytes_per_instance": wpk}
    table("Memory with %d placed keys (counter/KEY, VmRSS before/after)" % n,
          ["process", "VmRSS before (KiB)", "after (KiB)", "bytes per key"],
          [["broker", b0, b1, fmt(bpk)],
           ["worker", w0, w1, "%s (actor object: 8 bytes; overhead %s)" % (fmt(wpk), fmt(wpk - 8))]])
    if r.get("failed"):
        print("  (load failed: %s)" % r.get("why"))
    target("broker bytes per placed key", bpk, 200, False)


def callgrind_total(path):
    for line in read(path).splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError("no totals in " + path)


def section_callgrind(a, tmp, results):
    if not shutil.which("valgrind"):
        print("\n(valgrind not installed: callgrind section skipped)")
        return
    out = results.setdefault("callgrind", {})
    n1, n2 = a.cg_requests // 5, a.cg_requests
    for window in [1, 100]:
        for kind in ["floor", "troupe"]:
            totals = {}
            for n in [n1, n2]:
                cg = os.path.join(tmp, "callgrind.%s.w%d.%d.out" % (kind, window, n))
                s = System(kind, "ipc", tmp, tag="cg-%s-%d-%d" % (kind, window, n),
                           broker_prefix=["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg])
                try:
                    r = client(s.endpoint, n, window, warmup=0, max_seconds=900)
                finally:
                    s.stop()
                if r.get("failed"):
                    print("  callgrind %s window %d: load failed: %s" % (kind, window, r.get("why")))
                totals[n] = callgrind_total(cg)
                if n == n2 and window == 100:
                    keep = os.path.join(a.out, "callgrind.%s.w%d.out" % (kind, window))
                    shutil.copy(cg, keep)
                    ann = subprocess.run(["callgrind_annotate", "--threshold=99.5", cg], capture_output=True,
                                         text=True, timeout=120).stdout
                    with open(os.path.join(a.out, "callgrind.%s.w%d.txt" % (kind, window)), "w") as f:
                        f.write(ann)
            per = (totals[n2] - totals[n1]) / float(n2 - n1)
            out["%s_w%d" % (kind, window)] = {"totals": totals, "per_request": per}
    # The worker processes, window 100, broker native.
    for kind in ["floor", "troupe"]:
        totals = {}
        for n in [n1, n2]:
            cg = os.path.join(tmp, "callgrind.%s-worker.%d.out" % (kind, n))
            s = System(kind, "ipc", tmp, tag="cgw-%s-%d" % (kind, n),
                       worker_prefix=["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg])
            try:
                r = client(s.endpoint, n, 100, warmup=0, max_seconds=900)
            finally:
                s.stop()
            if r.get("failed"):
                print("  callgrind %s worker: load failed: %s" % (kind, r.get("why")))
            totals[n] = callgrind_total(cg)
            if n == n2:
                ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=95", cg],
                                     capture_output=True, text=True, timeout=120).stdout
                with open(os.path.join(a.out, "callgrind.%s-worker.w100.inclusive.txt" % kind), "w") as f:
                    f.write(ann)
        out["%s_worker_w100" % kind] = {"totals": totals, "per_request": (totals[n2] - totals[n1]) / float(n2 - n1)}
    fw, tw = out["floor_worker_w100"]["per_request"], out["troupe_worker_w100"]["per_request"]
    table("Instructions per request in the worker process (callgrind, ipc, window 100)",
          ["floor worker", "troupe worker", "troupe/floor"], [[fmt(fw), fmt(tw), fmt(tw / fw)]])
    rows = []
    for window in [1, 100]:
        f, t = out["floor_w%d" % window]["per_request"], out["troupe_w%d" % window]["per_request"]
        rows.append([window, fmt(f), fmt(t), fmt(t / f)])
        target("broker instructions/request ÷ floor, window %d" % window, t / f, 1.5, False)
    table("Instructions per routed request in the broker process (callgrind, ipc, (Ir(N2)-Ir(N1))/(N2-N1), "
          "N1=%d, N2=%d)" % (n1, n2), ["window", "floor forwarder", "troupe broker", "troupe/floor"], rows)
    ann = read(os.path.join(a.out, "callgrind.troupe.w100.txt"))
    lines = [l for l in ann.splitlines() if re.match(r"^\s*[\d,]+ \(", l)][:25]
    print("\nTop functions of the troupe broker (self instructions, window 100, %d requests + startup):\n" % n2)
    print("```\n" + "\n".join(lines) + "\n```")


def section_micro(a, tmp, results):
    out = results.setdefault("micro", {})
    rows = []
    for m in ["codec", "dispatch"]:
        exe = os.path.join(BIN, "troupe-micro-" + m)
        if not os.path.exists(exe):
            print("(%s not built: Google Benchmark missing)" % exe)
            continue
        r = subprocess.run([exe, "--benchmark_format=json", "--benchmark_min_time=0.2",
                            "--benchmark_repetitions=3", "--benchmark_report_aggregates_only=true"],
                           capture_output=True, text=True, timeout=600)
        data = json.loads(r.stdout)
        out[m] = data
        for b in data["benchmarks"]:
            if b.get("aggregate_name") == "median":
                rows.append([b["run_name"], "%.1f" % b["cpu_time"], b["time_unit"]])
    table("Micro-benchmarks (Google Benchmark, median of 3 repetitions, CPU time)", ["benchmark", "time", "unit"],
          rows)

    # client::map must be linear: its cost per input at 160k inputs against
    # 10k (it starts its own broker and worker, stopped by pid).
    exe = os.path.join(BIN, "troupe-micro-map")
    if not os.path.exists(exe):
        print("(%s not built)" % exe)
        return
    r = subprocess.run([exe, "--rounds", "1" if a.quick else "3"], capture_output=True, text=True, timeout=600)
    per_input = dict(re.findall(r"^\s*([\d,]+) inputs:\s*([\d.]+) us/input", r.stdout, re.M))
    if r.returncode != 0 or len(per_input) != 2:
        print("(troupe-micro-map failed: %s)" % (r.stderr.strip() or r.stdout.strip()))
        return
    small, large = float(per_input["10,000"]), float(per_input["160,000"])
    out["map"] = {"us_per_input_10k": small, "us_per_input_160k": large}
    table("client::map, cost per input (window 64, ipc)", ["inputs", "µs/input"],
          [["10,000", fmt(small)], ["160,000", fmt(large)], ["160k ÷ 10k", fmt(large / small)]])
    target("map cost per input, 160k ÷ 10k inputs", large / small, 1.5, False)


# ---- Python worker and clients (issues 15 and 13) ---------------------------

PY = sys.executable  # /usr/bin/python3 under `make bench`: it sees python3-zmq and python3-msgpack
PY_PKG = os.path.join(ROOT, "clients", "python")


def py_env():
    """The environment for Python processes: the troupe package from the tree."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PY_PKG, env.get("PYTHONPATH")]))
    return env


def registered_workers(endpoint):
    r = subprocess.run([os.path.join(BIN, "troupe"), "call", "--broker", endpoint, "--timeout-ms", "2000",
                        "$broker", "workers"], capture_output=True, text=True, timeout=20)
    try:
        return len(json.loads(r.stdout)) if r.returncode == 0 else 0
    except ValueError:
        return 0


class PyWorkerSystem:
    """A troupe broker (default settings) plus one worker process started
    from `worker_argv(endpoint)`: a Python worker, the raw pyzmq loop, or the
    C++ examples worker."""

    def __init__(self, tmp, tag, transport, worker_argv):
        listen = "tcp://127.0.0.1:*" if transport == "tcp" else "ipc://%s/%s.sock" % (tmp, tag)
        blog = os.path.join(tmp, tag + "-broker.log")
        self.broker = PROCS.start([os.path.join(BIN, "troupe"), "broker", "--listen", listen], blog)
        self.endpoint = wait_for(lambda: listening_endpoint(blog), 60, tag + " broker to listen")
        self.worker = PROCS.start(worker_argv(self.endpoint), os.path.join(tmp, tag + "-worker.log"), env=py_env())
        wait_for(lambda: registered_workers(self.endpoint) >= 1, 60, tag + " worker to register")
        self.client_cpus = None
        if PLACEMENT:  # as in the floor/troupe sections: broker and client on one core, the worker on the other
            pin_process(self.broker.pid, PLACEMENT["broker"])
            pin_process(self.worker.pid, PLACEMENT["worker"])
            self.client_cpus = PLACEMENT["client"]
        time.sleep(0.2)

    def stop(self):
        PROCS.stop(self.worker)
        PROCS.stop(self.broker, timeout=120)


def py_client(argv, max_seconds=300, cpus=None):
    """Runs one of bench/py_*_client.py; its last line of output is JSON."""
    try:
        r = subprocess.run([PY] + argv, capture_output=True, text=True, timeout=max_seconds, env=py_env(),
                           preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    except subprocess.TimeoutExpired:
        return {"failed": True, "why": "no result within %d s" % max_seconds}
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {"failed": True, "why": (r.stdout + r.stderr)[-300:]}
    if r.returncode != 0:
        out["failed"] = True
    return out


def per_round(num, den, key):
    """Per-round ratios num/den of `key`, rounds where both ran."""
    return [n[key] / d[key] for n, d in zip(num, den)
            if not n.get("failed") and not d.get("failed") and d.get(key)]


def placement_words():
    return "broker and client on one core, worker on the other" if PLACEMENT else "not pinned"


def section_pyworker(a, tmp, results):
    """B1 and B2 against one worker process: the raw pyzmq loop, troupe's
    Python worker, and the C++ worker for scale; alternating, tcp."""
    sys.path.insert(0, PY_PKG)
    from troupe.worker import DEFAULT_CREDITS  # the raw loop gets the same credits as troupe's default
    bench = os.path.join(ROOT, "bench")
    kinds = [
        ("raw", "raw pyzmq loop (bench/py_raw_worker.py)",
         lambda ep: [PY, os.path.join(bench, "py_raw_worker.py"), ep, "--credits", str(DEFAULT_CREDITS)]),
        ("troupe", "troupe Python worker (python3 -m troupe.worker, defaults)",
         lambda ep: [PY, "-m", "troupe.worker", os.path.join(bench, "py_actors.py"), "--broker", ep]),
        ("cpp", "C++ worker (troupe-examples-worker, defaults)",
         lambda ep: [os.path.join(BIN, "troupe-examples-worker"), "--broker", ep]),
    ]
    systems = {k: PyWorkerSystem(tmp, "pyw-" + k, "tcp", argv) for k, _, argv in kinds}
    runs = {k: {"b1": [], "b2": []} for k in systems}
    try:
        for rnd in range(a.rounds):
            # B1 in five slices, the systems alternating slice by slice: this
            # machine's latency shifts between modes (50 / 100+ µs for every
            # system) over seconds, and a round's p50 is the median of its slices.
            slices = {k: [] for k in systems}
            for _ in range(5):
                for k in systems:
                    slices[k].append(client(systems[k].endpoint, max(200, a.py_b1_requests // 5), 1, warmup=100,
                                            cpus=systems[k].client_cpus))
            for k in systems:
                s = systems[k]
                ok = [x for x in slices[k] if not x.get("failed")]
                b1 = {"p50_us": med([x["p50_us"] for x in ok]), "slices": slices[k]} if ok else slices[k][0]
                c0, x0 = cpu_seconds(s.worker.pid), ctx_switches(s.worker.pid)
                b2 = client(s.endpoint, a.py_b2_requests, 1000, warmup=1000, cpus=s.client_cpus)
                c1, x1 = cpu_seconds(s.worker.pid), ctx_switches(s.worker.pid)
                n = a.py_b2_requests + 1000
                b2["worker_cpu_us"] = (c1 - c0) * 1e6 / n
                b2["worker_cs_per_1k"] = (x1 - x0) * 1000.0 / n
                runs[k]["b1"].append(b1)
                runs[k]["b2"].append(b2)
                print("  round %d %s: B1 p50 %s µs; B2 %s req/s, worker %s µs CPU/request%s" % (
                    rnd + 1, k, fmt(b1.get("p50_us", float("nan"))), fmt(b2.get("throughput", float("nan"))),
                    fmt(b2["worker_cpu_us"]),
                    "  FAILED: " + str(b1.get("why") or b2.get("why")) if b1.get("failed") or b2.get("failed")
                    else ""), flush=True)
    finally:
        for s in systems.values():
            s.stop()
    results["pyworker"] = {"credits_raw": DEFAULT_CREDITS, **runs}
    rows = []
    for k, label, _ in kinds:
        b1, b2 = runs[k]["b1"], runs[k]["b2"]
        r2 = per_round(b2, runs["raw"]["b2"], "throughput")
        r1 = per_round(b1, runs["raw"]["b1"], "p50_us")
        rows.append([label, fmt(med(values(b2, "throughput"))), rng(values(b2, "throughput")),
                     "%s (%s)" % (fmt(med(r2)), rng(r2)) if r2 else "-",
                     fmt(med(values(b1, "p50_us"))), "%s (%s)" % (fmt(med(r1)), rng(r1)) if r1 else "-",
                     fmt(med(values(b2, "worker_cpu_us"))), fmt(med(values(b2, "worker_cs_per_1k")))])
    table("One worker process: troupe's Python worker against a raw pyzmq loop (tcp, %d rounds alternating, "
          "squares.square, troupe broker with defaults; raw loop with %d credits; B1 p50: median of 5 slices "
          "alternating with the other systems; %s)" % (a.rounds, DEFAULT_CREDITS, placement_words()),
          ["worker", "B2 req/s (window 1000)", "range", "÷ raw, per round (range)", "B1 p50 µs",
           "÷ raw, per round (range)", "worker CPU µs/req (B2)", "worker cs/1k req"], rows)
    r2 = per_round(runs["troupe"]["b2"], runs["raw"]["b2"], "throughput")
    r1 = per_round(runs["troupe"]["b1"], runs["raw"]["b1"], "p50_us")
    if r2:
        target("Python worker B2 ÷ raw pyzmq loop (median of per-round ratios)", med(r2), 0.5, True)
    if r1:
        target("Python worker B1 p50 ÷ raw pyzmq loop (median of per-round ratios)", med(r1), 1.15, False)


def section_pyclient(a, tmp, results):
    """troupe's Python clients against a raw pyzmq DEALER loop, one broker
    and C++ worker (defaults), alternating, tcp."""
    bench = os.path.join(ROOT, "bench")
    raw, tr = os.path.join(bench, "py_raw_client.py"), os.path.join(bench, "py_troupe_client.py")
    nw, nb = str(a.py_client_requests), str(a.py_b1_requests)
    s = PyWorkerSystem(tmp, "pyclient", "tcp", lambda ep: [os.path.join(BIN, "troupe-examples-worker"),
                                                           "--broker", ep])
    variants = [
        ("raw w1000", [raw, s.endpoint, "--window", "1000", "--requests", nw]),
        ("Client.map", [tr, s.endpoint, "--via", "map", "--window", "1000", "--requests", nw]),
        ("AsyncClient", [tr, s.endpoint, "--via", "async", "--window", "1000", "--requests", nw]),
        ("AsyncClient.map", [tr, s.endpoint, "--via", "async-map", "--window", "1000", "--requests", nw]),
        ("raw blocking", [raw, s.endpoint, "--window", "1", "--requests", nb, "--warmup", "500"]),
        ("Client.ask", [tr, s.endpoint, "--via", "ask", "--requests", nb, "--warmup", "500"]),
    ]
    runs = {name: [] for name, _ in variants}
    try:
        for rnd in range(a.rounds):
            for name, argv in variants:
                r = py_client(argv, cpus=s.client_cpus)
                runs[name].append(r)
                print("  round %d %s: %s req/s%s%s" % (
                    rnd + 1, name, fmt(r.get("throughput", float("nan"))),
                    ", p50 %s µs" % fmt(r["p50_us"]) if "p50_us" in r else "",
                    "  FAILED: " + str(r.get("why")) if r.get("failed") else ""), flush=True)
    finally:
        s.stop()
    results["pyclient"] = runs
    rows = []
    for name, base, key in [("Client.map", "raw w1000", "throughput"), ("AsyncClient", "raw w1000", "throughput"),
                            ("AsyncClient.map", "raw w1000", "throughput"),
                            ("Client.ask", "raw blocking", "p50_us")]:
        pr = per_round(runs[name], runs[base], key)
        cpu = per_round(runs[name], runs[base], "cpu_us")
        rows.append(["%s (%s)" % (name, "req/s, 1000 in flight" if key == "throughput" else "p50 µs, 1 in flight"),
                     fmt(med(values(runs[base], key))), fmt(med(values(runs[name], key))),
                     fmt(med(pr)) if pr else "-", rng(pr),
                     "%s / %s" % (fmt(med(values(runs[base], "cpu_us"))), fmt(med(values(runs[name], "cpu_us")))),
                     fmt(med(cpu)) if cpu else "-"])
    table("Python clients against a raw pyzmq DEALER loop (tcp, %d rounds alternating, squares.square on the C++ "
          "worker, broker and worker with defaults; %s)" % (a.rounds, placement_words()),
          ["client", "raw pyzmq", "troupe", "troupe ÷ raw (median per round)", "per-round range",
           "client CPU µs/req raw / troupe", "CPU troupe ÷ raw"], rows)
    for name, base, key, limit, higher in [("Client.map", "raw w1000", "throughput", 0.6, True),
                                           ("AsyncClient", "raw w1000", "throughput", 0.4, True),
                                           ("Client.ask", "raw blocking", "p50_us", 1.2, False)]:
        pr = per_round(runs[name], runs[base], key)
        if pr:
            target("Python %s ÷ raw pyzmq (%s, median of per-round ratios)" % (name, key), med(pr), limit, higher)


# ---- plots -------------------------------------------------------------------

def section_bounds(a, tmp, results):
    """Issue 12, from bench/bounds.py (which has more scenarios when run alone):
    broker and worker RSS and bytes per key at 1,000,000 keys with and without
    passivation; a polite client's worst latency while another calls `stats`
    and `actors` in a loop at 1,000,000 keys and 100,000 names; time from
    SIGKILL of a pool process to `worker_lost`. Prints, never asserts."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bounds  # noqa: PLC0415 (bench/bounds.py, next to this file)
    results["bounds"] = bounds.run(argparse.Namespace(bin=BIN, quick=a.quick, only="keys,manage,sigkill"), {})


def section_curve(a, tmp, results):
    """Issue 10, from bench/curve_bench.py: B1 and B2 of the floor and troupe,
    each plaintext and with CURVE, alternating in one run; and ZeroMQ's own
    cost of CURVE per frame."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import curve_bench  # noqa: PLC0415 (bench/curve_bench.py, next to this file)
    curve_bench.section(sys.modules[__name__], a, tmp, results)


def plots(a, results):
    if not shutil.which("gnuplot"):
        print("\n(gnuplot not installed: no plots; apt-get install gnuplot-nox)")
        return
    made = []
    if "compare" in results:
        dat = os.path.join(a.out, "latency.dat")
        with open(dat, "w") as f:
            f.write("# label p50 p99 p999\n")
            for transport, runs in results["compare"].items():
                for k in ["floor", "troupe"]:
                    b1 = runs[k]["b1"]
                    f.write('"%s %s" %f %f %f\n' % (k, transport, med(values(b1, "p50_us")),
                                                    med(values(b1, "p99_us")), med(values(b1, "p999_us"))))
        png = os.path.join(a.out, "latency.png")
        script = """set terminal pngcairo size 900,500 noenhanced
set output '%s'
set title 'B1: one request in flight, latency percentiles (median of rounds)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set ylabel 'microseconds (log scale)'
set key top left
set grid ytics
plot '%s' using 2:xtic(1) title 'p50', '' using 3 title 'p99', '' using 4 title 'p99.9'
""" % (png, dat)
        subprocess.run(["gnuplot"], input=script, text=True, timeout=60)
        made.append(png)
    if "window" in results:
        dat = os.path.join(a.out, "window.dat")
        with open(dat, "w") as f:
            f.write("# window floor troupe\n")
            for w in results["window"]["floor"]:
                f.write("%s %f %f\n" % (w, med(values(results["window"]["floor"][w], "throughput")),
                                        med(values(results["window"]["troupe"][w], "throughput"))))
        png = os.path.join(a.out, "throughput_window.png")
        script = """set terminal pngcairo size 900,500 noenhanced
set output '%s'
set title 'Throughput against requests in flight (ipc, median of rounds)'
set logscale x
set xlabel 'window (requests in flight)'
set ylabel 'requests per second'
set key top left
set grid
plot '%s' using 1:2 with linespoints lw 2 title 'floor', '' using 1:3 with linespoints lw 2 title 'troupe'
""" % (png, dat)
        subprocess.run(["gnuplot"], input=script, text=True, timeout=60)
        made.append(png)
    for p in made:
        print("plot: " + p)


# ---- main --------------------------------------------------------------------

def machine():
    cpu = "?"
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = read("/proc/meminfo").splitlines()[0].split()[1]
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_kib": int(mem), "kernel": os.uname().release,
            "load_before": os.getloadavg()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smaller counts, for trying the harness")
    ap.add_argument("--only", default=",".join(SECTIONS))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench-results"))
    ap.add_argument("--plots-only", action="store_true", help="redraw the plots from OUT/results.json")
    ap.add_argument("--bin", help="directory of the executables (default: $TROUPE_BIN_DIR or build/bin)")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin broker, client and workers to cores (see PLACEMENT)")
    ap.add_argument("--nice", type=int, default=0,
                    help="run every benchmark process at this niceness (e.g. -10, as root): on a machine shared "
                         "with builds it keeps them from taking the benchmark's cores; floor and troupe alike")
    a = ap.parse_args()
    if a.nice:
        os.nice(a.nice)  # inherited by every process started from here
    global PLACEMENT
    if a.no_pin or len(os.sched_getaffinity(0)) < 2:
        PLACEMENT = None
    else:  # the first two cores this process may use
        first, second = sorted(os.sched_getaffinity(0))[:2]
        for p in PLACEMENTS.values():
            for k, v in (p or {}).items():
                p[k] = {first if v == {0} else second}
        PLACEMENT = PLACEMENTS["broker+client, worker"]
    if a.bin:
        global BIN  # noqa: PLW0603
        BIN = os.path.abspath(a.bin)
    if a.plots_only:
        with open(os.path.join(a.out, "results.json")) as f:
            plots(a, json.load(f))
        return
    a.b1_requests, a.b2_requests, a.window_requests = 20000, 200000, 50000
    a.keys, a.memory_keys, a.cg_requests = 100000, 1000000, 10000
    a.fanin_clients, a.fanin_window, a.fanin_workers = 50, 20, 4
    if a.quick:
        a.b1_requests, a.b2_requests, a.window_requests = 2000, 20000, 10000
        a.keys, a.memory_keys, a.cg_requests = 10000, 50000, 2000
    # Python worker and clients (sections pyworker, pyclient).
    a.py_b1_requests, a.py_b2_requests, a.py_client_requests = (1000, 10000, 10000) if a.quick else (5000, 100000, 100000)
    os.makedirs(a.out, exist_ok=True)
    for exe in ["troupe", "troupe-examples-worker", "troupe-floor-forwarder", "troupe-floor-worker",
                "troupe-bench-client", "troupe-bench-many-names-worker"]:
        if not os.path.exists(os.path.join(BIN, exe)):
            sys.exit("missing %s/%s: run `make build` first" % (BIN, exe))
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    results = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "rounds": a.rounds,
               "quick": a.quick, "nice": a.nice, "bin": BIN}
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        results["commit"] = head
    except OSError:
        pass
    print("troupe benchmarks: %s, %d cores, load %s, commit %s, niceness %d, executables in %s" % (
        results["machine"]["cpu"], results["machine"]["cores"],
        " ".join("%.2f" % x for x in results["machine"]["load_before"]), results.get("commit"), a.nice, BIN),
        flush=True)
    tmp = tempfile.mkdtemp(prefix="troupe-bench-")
    try:
        for name in SECTIONS:
            if name in only:
                print("\n== %s" % name, flush=True)
                t0 = time.monotonic()
                globals()["section_" + name](a, tmp, results)
                print("(%s took %.0f s)" % (name, time.monotonic() - t0), flush=True)
    finally:
        PROCS.stop_all()
        results["machine"]["load_after"] = os.getloadavg()
        with open(os.path.join(a.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        shutil.rmtree(tmp, ignore_errors=True)
    plots(a, results)
    if TARGETS:
        table("Targets (ratios measured in this run)", ["target", "measured", "goal", ""],
              [[n, fmt(v), g, s] for n, v, g, s in TARGETS])
    print("\nraw results: " + os.path.join(a.out, "results.json"))


if __name__ == "__main__":
    main()
