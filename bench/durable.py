#!/usr/bin/python3
"""Durable messages against the disk and against durable peers (issue 11).

Prints, in one run on this machine:
- fsync: one 32-byte append + fdatasync (p50, rate): the disk's floor;
- D1: one durable tell in flight, send -> confirmation (p50, p99);
- D2: 1,000 durable tells in flight, consumed by a worker and acknowledged
  as they go (messages/s until the last is confirmed and consumed), with the
  broker's CPU time per durable message;
- with --peers, the same D1 and D2 workload on Redis Streams
  (appendfsync always: XADD is answered after fsync; XREADGROUP + XACK) and
  RabbitMQ (persistent messages to a durable queue, publisher confirms,
  manual acks), each started here on loopback from its Debian package and
  stopped by pid;
- the ceiling: the same traffic not durable (plain asks), which no store
  can beat: on a 2-core machine the client, broker and worker share it;
- the ratios the issue sets as targets: D1 p50 - fsync p50 (<= 150 us),
  D2 / Redis D2 (>= 2), D2 / fsync rate (>= 20), CPU per message (<= 10 us).

It prints; it asserts nothing. `make bench` runs it; `make bench-peers`
adds --peers.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stop(p):
    if p and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def pids_with_env(marker):
    """Pids of processes whose environment holds `marker` (ours: we set it)."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                if marker.encode() in f.read().split(b"\0"):
                    found.append(int(d))
        except OSError:
            pass
    return found


def run_json(argv, timeout=600):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError("%s failed: %s %s" % (argv[0], out.stdout[-500:], out.stderr[-500:]))
    return json.loads(lines[-1])


def troupe_figures(bin_dir, tmp, count, window):
    bench = os.path.join(bin_dir, "troupe-durable-bench")
    figures = {"fsync": run_json([bench, "fsync", "--dir", tmp, "--count", str(count)])}
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    broker = subprocess.Popen([os.path.join(bin_dir, "troupe"), "broker", "--listen", endpoint, "--store",
                               os.path.join(tmp, "bench.store")], stdout=subprocess.PIPE,
                              stderr=open(os.path.join(tmp, "broker.log"), "w"))
    worker = None
    try:
        broker.stdout.readline()
        worker = subprocess.Popen([os.path.join(bin_dir, "troupe-examples-worker"), "--broker", endpoint],
                                  stderr=open(os.path.join(tmp, "worker.log"), "w"))
        time.sleep(1.0)
        figures["d1"] = run_json([bench, "d1", "--broker", endpoint, "--count", str(count)])
        before = cpu_seconds(broker.pid)
        figures["d2"] = run_json([bench, "d2", "--broker", endpoint, "--count", str(count * 25),
                                  "--window", str(window)])
        figures["d2"]["broker_cpu_us_per_message"] = round(
            (cpu_seconds(broker.pid) - before) * 1e6 / (count * 25), 2)
        # The ceiling D2 adds its store to: the same traffic, not durable.
        # A plain ask is the same four messages as a durable tell (request,
        # delivery, the worker's reply, the answer to the client), through
        # the same broker and worker, with nothing written.
        before = cpu_seconds(broker.pid)
        figures["plain"] = run_json([os.path.join(bin_dir, "troupe"), "bench", "--broker", endpoint, "--requests",
                                     str(count * 25), "--window", str(window), "--json", "squares", "square", "7"])
        figures["plain"]["broker_cpu_us_per_message"] = round(
            (cpu_seconds(broker.pid) - before) * 1e6 / (count * 25), 2)
    finally:
        stop(worker)
        stop(broker)
    return figures


def build_peer(name, libs, out_dir):
    src = os.path.join(ROOT, "bench", "peers", name + ".cpp")
    exe = os.path.join(out_dir, name)
    if not os.path.exists(exe) or os.path.getmtime(src) > os.path.getmtime(exe):
        subprocess.run(["g++", "-std=c++20", "-O2", src, "-o", exe] + libs + ["-lpthread"], check=True)
    return exe


def redis_figures(tmp, out_dir, count, window):
    exe = build_peer("durable_redis", ["-lhiredis"], out_dir)
    port = free_port()
    data = os.path.join(tmp, "redis")
    os.makedirs(data)
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", data,
                               "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                              stdout=open(os.path.join(tmp, "redis.log"), "w"), stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        return {"d1": run_json([exe, "d1", str(port), str(count), "1"]),
                "d2": run_json([exe, "d2", str(port), str(count * 25), str(window)])}
    finally:
        stop(server)


def rabbitmq_figures(tmp, out_dir, count, window):
    exe = build_peer("durable_rabbitmq", ["-lrabbitmq"], out_dir)
    port, dist, epmd = free_port(), free_port(), free_port()
    base = os.path.join(tmp, "rabbitmq")
    os.makedirs(base)
    env = dict(os.environ, RABBITMQ_NODENAME="troupe-bench@localhost", RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
               RABBITMQ_NODE_PORT=str(port), RABBITMQ_DIST_PORT=str(dist), RABBITMQ_MNESIA_BASE=base,
               RABBITMQ_LOG_BASE=base, RABBITMQ_CONFIG_FILE=os.path.join(base, "rabbitmq"),
               RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(base, "enabled_plugins"), HOME=base,
               ERL_EPMD_ADDRESS="127.0.0.1", ERL_EPMD_PORT=str(epmd))
    with open(os.path.join(base, "enabled_plugins"), "w") as f:
        f.write("[].\n")
    server = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=env, start_new_session=True,
                              stdout=open(os.path.join(tmp, "rabbitmq.log"), "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                time.sleep(0.5)
        time.sleep(1)
        return {"d1": run_json([exe, "d1", str(port), str(count), "1"]),
                "d2": run_json([exe, "d2", str(port), str(count * 25), str(window)])}
    finally:
        # The server, its Erlang VM and the epmd it started (which leaves
        # the session): each found by the environment we gave it, stopped by pid.
        stop(server)
        for pid in pids_with_env("ERL_EPMD_PORT=%d" % epmd):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("TROUPE_BIN_DIR", os.path.join(ROOT, "build", "bin")))
    ap.add_argument("--count", type=int, default=2000, help="D1 messages (D2: 25 times as many)")
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--peers", action="store_true", help="also Redis Streams and RabbitMQ")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="troupe-durable-bench-", dir="/tmp")
    out = {}
    try:
        out["troupe"] = troupe_figures(a.bin, tmp, a.count, a.window)
        if a.peers:
            peers_dir = os.path.join(os.path.dirname(a.bin), "bench-peers")
            os.makedirs(peers_dir, exist_ok=True)
            for name, fn in (("redis", redis_figures), ("rabbitmq", rabbitmq_figures)):
                try:
                    out[name] = fn(tmp, peers_dir, a.count, a.window)
                except Exception as e:  # a peer that cannot run is reported, not fatal
                    out[name] = {"error": str(e)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t = out["troupe"]
    fs, d1, d2 = t["fsync"], t["d1"], t["d2"]
    print("fdatasync (32 B append): p50 %.0f us, %.0f/s" % (fs["p50_us"], fs["rate"]))
    print("D1 troupe: p50 %.0f us, p99 %.0f us  (p50 - fdatasync p50 = %+.0f us; target <= +150)"
          % (d1["p50_us"], d1["p99_us"], d1["p50_us"] - fs["p50_us"]))
    print("D2 troupe: %.0f msg/s (%.1fx the fdatasync rate; target >= 20x), broker CPU %.2f us/message "
          "(target <= 10)" % (d2["rate"], d2["rate"] / fs["rate"], d2["broker_cpu_us_per_message"]))
    plain = t["plain"]
    print("D2 ceiling: the same traffic not durable (plain asks, same broker and worker): %.0f msg/s, broker CPU "
          "%.2f us/message; D2 / ceiling = %.2f" % (plain["throughput"], plain["broker_cpu_us_per_message"],
                                                  d2["rate"] / plain["throughput"]))
    for name in ("redis", "rabbitmq"):
        if name not in out:
            continue
        p = out[name]
        if "error" in p:
            print("%s: not measured: %s" % (name, p["error"]))
            continue
        print("D1 %s: p50 %.0f us, p99 %.0f us; D2 %s: %.0f msg/s; troupe D2 / %s D2 = %.2fx"
              % (name, p["d1"]["p50_us"], p["d1"]["p99_us"], name, p["d2"]["rate"], name,
                 d2["rate"] / p["d2"]["rate"]))
    if a.json:
        print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
