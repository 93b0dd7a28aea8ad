#!/usr/bin/python3
"""Peers on the same payload (square(x) on an integer), tcp loopback:
the floor and troupe (for reference, in the same run), CAF 0.17 remote
actors, and Celery with Redis as broker and result backend.

`make bench-peers` runs this through run_peers.sh, which installs the
Debian packages and builds the CAF peer first. Prints tables; asserts
nothing. Every process is stopped by pid at the end.

  bench/peers/run_peers.py [--rounds 3] [--out DIR]
"""
import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench_run", os.path.join(os.path.dirname(HERE), "run.py"))
R = importlib.util.module_from_spec(spec)
spec.loader.exec_module(R)  # Procs, System, client, tables; installs the cleanup handlers
CAF = os.path.join(R.ROOT, "build", "bench-peers", "caf-peer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_json(args, timeout, env=None, cwd=None):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"failed": True, "why": (r.stdout + r.stderr)[-400:]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(R.ROOT, "build", "bench-results"))
    ap.add_argument("--celery-b1", type=int, default=2000)
    ap.add_argument("--celery-b2", type=int, default=10000)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="troupe-peers-")
    B1, B2, W = 20000, 200000, 1000
    res = {"floor": [], "troupe": [], "caf": [], "celery": []}
    print("peers: machine %s, load %s" % (R.machine()["cpu"], os.getloadavg()), flush=True)

    systems = {k: R.System(k, "tcp", tmp, tag="peer-" + k) for k in ["floor", "troupe"]}
    caf_server = None
    if os.path.exists(CAF):
        log = os.path.join(tmp, "caf-server.log")
        caf_server = R.PROCS.start([CAF, "--mode=server", "--port=0"], log)
        port = R.wait_for(lambda: (R.re.search(r"caf listening on (\d+)", R.read(log)) or [None, None])[1], 30,
                          "caf server")
    else:
        print("CAF peer not built (%s): skipped" % CAF)
    for rnd in range(a.rounds):
        for k in ["floor", "troupe"]:
            b1 = R.client(systems[k].endpoint, B1, 1)
            b2 = R.client(systems[k].endpoint, B2, W)
            res[k].append({"p50_us": b1.get("p50_us"), "p99_us": b1.get("p99_us"), "p999_us": b1.get("p999_us"),
                           "throughput": b2.get("throughput"), "failed": b1.get("failed") or b2.get("failed")})
        if caf_server:
            r = run_json([CAF, "--mode=client", "--port=%s" % port, "--b1=%d" % B1, "--b2=%d" % B2,
                          "--window=%d" % W, "--warmup=1000"], 600)
            res["caf"].append(r)
        print("  round %d: %s" % (rnd + 1, {k: (v[-1].get("p50_us"), v[-1].get("throughput")) for k, v in res.items()
                                            if v}), flush=True)
    if caf_server:
        R.PROCS.stop(caf_server)
    for s in systems.values():
        s.stop()

    # Celery: one round, smaller counts (it is two orders of magnitude slower).
    try:
        import celery  # noqa: F401
        have_celery = True
    except ImportError:
        have_celery = False
        print("python3-celery is not installed: Celery skipped")
    if have_celery:
        port = free_port()
        redis = R.PROCS.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", tmp], os.path.join(tmp, "redis.log"))
        R.wait_for(lambda: "Ready to accept connections" in R.read(os.path.join(tmp, "redis.log")), 30, "redis")
        env = dict(os.environ, TROUPE_BENCH_REDIS="redis://127.0.0.1:%d/0" % port, PYTHONPATH=HERE)
        clog = os.path.join(tmp, "celery.log")
        worker = R.PROCS.start(["/usr/bin/python3", "-m", "celery", "-A", "celery_tasks", "worker", "--pool=solo",
                                "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                               clog, env=env, cwd=HERE)
        R.wait_for(lambda: "ready." in R.read(clog), 60, "celery worker")
        r = run_json(["/usr/bin/python3", os.path.join(HERE, "celery_client.py"), str(a.celery_b1),
                      str(a.celery_b2), str(W), "200"], 900, env=env, cwd=HERE)
        res["celery"].append(r)
        R.PROCS.stop(worker)
        R.PROCS.stop(redis)
    R.PROCS.stop_all()

    with open(os.path.join(a.out, "peers.json"), "w") as f:
        json.dump(res, f, indent=1)
    floor_p50 = R.med(R.values(res["floor"], "p50_us"))
    floor_tp = R.med(R.values(res["floor"], "throughput"))
    rows = []
    for k, label in [("floor", "floor (ZeroMQ forwarder)"), ("troupe", "troupe"), ("caf", "CAF 0.17 remote actor"),
                     ("celery", "Celery 5.2 + Redis 7 (solo pool)")]:
        runs = res[k]
        if not runs:
            rows.append([label, "not run", "", "", "", "", ""])
            continue
        p50, tp = R.values(runs, "p50_us"), R.values(runs, "throughput")
        rows.append([label, len(runs), R.fmt(R.med(p50)), R.fmt(R.med(R.values(runs, "p99_us"))),
                     R.fmt(R.med(tp)), R.fmt(R.med(p50) / floor_p50) if p50 else "-",
                     R.fmt(R.med(tp) / floor_tp) if tp else "-"])
    R.table("Peers on tcp loopback: B1 = one in flight (%d; Celery %d), B2 = window %d (%d; Celery %d)" % (
        B1, a.celery_b1, W, B2, a.celery_b2),
        ["system", "rounds", "B1 p50 µs", "B1 p99 µs", "B2 req/s", "p50 / floor", "B2 / floor"], rows)
    print("\nraw results: " + os.path.join(a.out, "peers.json"))


if __name__ == "__main__":
    main()
