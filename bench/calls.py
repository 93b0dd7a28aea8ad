#!/usr/bin/python3
"""Actors that call actors (issue 14): what the extra hop costs.

In one run, on one broker and one examples worker process:

  direct   a client asks squares.square(3)
  relayed  a client asks relay/r.forward("squares", "square", [3]); relay
           (a troupe::task method) asks squares.square(3) from inside the
           worker and awaits it

Each is measured with `troupe bench`, one request in flight (latency) and
then 64. An actor-to-actor ask should cost about one more broker round
trip, not a new connection: the relayed p50 at window 1 is about twice
the direct one (more on a loaded machine: the reply reaches the awaiting
method through the worker's caller thread). At window 64 every relayed
call goes to the one instance relay/r, which is non-reentrant: they queue
behind it, one at a time, so that line measures the queue, not the hop.

Serving while methods await: the examples worker runs as ONE process, and
a Python worker hosts `sleeper` (bench/py_sleeper.py), whose nap(ms) blocks
its own process. Throughput of asks to counter/x on the examples worker is
measured alone, then while 32 relay instances (relay/w0..w31) each await
sleeper.nap(250) (the naps run one after another, so every relay is
suspended for the whole measurement: up to 8 s). The ratio should be about
1: an awaiting coroutine holds no thread. Prints numbers and ratios;
asserts nothing. Every process is stopped by pid.

  bench/calls.py [--bin DIR] [--requests N]
"""
import argparse
import json
import shutil
import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench(troupe, endpoint, window, requests, *call):
    out = subprocess.run([troupe, "bench", "--broker", endpoint, "--requests", str(requests), "--window", str(window),
                          "--warmup", "500", "--json", *call], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit(f"troupe bench {' '.join(call)} failed: {out.stderr}")
    return json.loads(out.stdout)


PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
AWAITING, NAP_MS = 32, 250


def python_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.join(ROOT, "clients", "python"),
                                                      env.get("PYTHONPATH")]))
    return env


def in_flight(troupe, endpoint, worker_prefix):
    """Requests the broker has out at workers whose name starts with `worker_prefix`."""
    r = subprocess.run([troupe, "call", "--broker", endpoint, "$broker", "workers"],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        return 0
    return sum(w["in_flight"] for w in json.loads(r.stdout) if w["name"].startswith(worker_prefix))


def serving_while_awaiting(troupe, endpoint, requests):
    keyed = ("counter/x", "get")
    alone = bench(troupe, endpoint, 64, requests, *keyed)
    # Each relay's forward is a coroutine awaiting sleeper.nap on the Python
    # worker; the asks run as separate `troupe call` processes, stopped by pid.
    callers = [subprocess.Popen([troupe, "call", "--broker", endpoint, "--timeout-ms", "60000", f"relay/w{i}",
                                 "forward", '"sleeper"', '"nap"', f"[{NAP_MS}]"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(AWAITING)]
    try:
        deadline = time.monotonic() + 10
        while in_flight(troupe, endpoint, "troupe-examples-worker") < AWAITING and time.monotonic() < deadline:
            time.sleep(0.05)
        awaiting_before = in_flight(troupe, endpoint, "troupe-examples-worker")
        busy = bench(troupe, endpoint, 64, requests, *keyed)
        awaiting_after = in_flight(troupe, endpoint, "troupe-examples-worker")
    finally:
        for c in callers:
            try:
                c.wait(timeout=AWAITING * NAP_MS / 1000 + 30)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()
    failed = sum(1 for c in callers if c.returncode != 0)
    print(f"serving while awaiting (one worker process, window 64, {keyed[0]}.{keyed[1]}):")
    print(f"  alone               {alone['throughput']:9.0f} req/s  p50 {alone['p50_us']:7.1f} us")
    print(f"  {AWAITING} methods awaiting {busy['throughput']:9.0f} req/s  p50 {busy['p50_us']:7.1f} us  "
          f"(the worker held {awaiting_before} requests before, {awaiting_after} after)")
    print(f"  awaiting/alone: throughput x{busy['throughput'] / alone['throughput']:.2f}"
          + (f"  ({failed} relay call(s) failed)" if failed else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--requests", type=int, default=20000)
    args = ap.parse_args()
    troupe = os.path.join(args.bin, "troupe")
    with tempfile.TemporaryDirectory() as tmp:
        endpoint = f"ipc://{tmp}/broker.sock"
        procs = []
        try:
            procs.append(subprocess.Popen([troupe, "broker", "--listen", endpoint], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            procs.append(subprocess.Popen([os.path.join(args.bin, "troupe-examples-worker"), "--broker", endpoint],
                                          stderr=subprocess.DEVNULL))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                r = subprocess.run([troupe, "call", "--broker", endpoint, "--timeout-ms", "500", "squares", "square",
                                    "1"], capture_output=True, text=True)
                if r.returncode == 0:
                    break
                time.sleep(0.1)
            else:
                sys.exit("the broker and worker did not come up within 10 s")
            procs.append(subprocess.Popen([PYTHON, "-m", "troupe.worker", "--broker", endpoint,
                                           os.path.join(ROOT, "bench", "py_sleeper.py")],
                                          env=python_env(), stderr=subprocess.DEVNULL))
            direct = ("squares", "square", "3")
            relayed = ("relay/r", "forward", '"squares"', '"square"', "[3]")
            for window in (1, 64):
                d = bench(troupe, endpoint, window, args.requests, *direct)
                r = bench(troupe, endpoint, window, args.requests, *relayed)
                print(f"window {window:3}: direct  {d['throughput']:9.0f} req/s  p50 {d['p50_us']:7.1f} us  "
                      f"p99 {d['p99_us']:7.1f} us")
                print(f"            relayed {r['throughput']:9.0f} req/s  p50 {r['p50_us']:7.1f} us  "
                      f"p99 {r['p99_us']:7.1f} us")
                print(f"            relayed/direct: p50 x{r['p50_us'] / d['p50_us']:.2f}, "
                      f"throughput x{r['throughput'] / d['throughput']:.2f}")
            serving_while_awaiting(troupe, endpoint, args.requests)
        finally:
            for p in reversed(procs):
                p.send_signal(signal.SIGTERM)
            for p in reversed(procs):
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


if __name__ == "__main__":
    main()
